//! The OTLP/HTTP receiver over real sockets on 127.0.0.1: both encodings, compression,
//! every kind of bad input (each with its status and a clear message, the receiver still
//! serving afterwards), sink refusals and partial success, auth, CORS, h2c, TLS and
//! mutual TLS, tenant hook, framing-only validation, counters.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use otlp_core::codec::{self, json};
use otlp_core::compression::{Compression, compress};
use otlp_core::proto::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otlp_core::{Encoding, ExportError, GrpcCode, OtlpResponse, PartialSuccess, Refusal, Signal};
use otlp_transport_http::receiver::{
    AuthConfig, CorsConfig, HttpReceiver, HttpReceiverConfig, PemSource, Sinks, TenantSource,
    TlsConfig, Validation,
};
use rustls::pki_types::ServerName;
use support::certs::TestPki;
use support::*;
use tokio::net::TcpStream;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// A valid request, to show the receiver still serves after a bad one.
async fn still_serving(addr: std::net::SocketAddr) {
    let reply = send(addr, post_protobuf("/v1/logs", &logs(1))).await;
    assert_eq!(
        reply.status, 200,
        "the receiver should still serve: {reply:?}"
    );
}

#[tokio::test]
async fn protobuf_and_json_on_one_port() {
    let sink = TestSink::new();
    let receiver = start(HttpReceiverConfig::builder(), sink.clone()).await;
    let addr = receiver.local_addr();

    let sent_traces = traces(3);
    let reply = send(addr, post_protobuf("/v1/traces", &sent_traces)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), PROTOBUF);
    let response: ExportTraceServiceResponse = codec::protobuf::decode(&reply.body).unwrap();
    assert_eq!(response.partial_success(), None);

    let sent_logs = logs(4);
    let reply = send(addr, post("/v1/logs", JSON, json::to_vec(&sent_logs))).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), JSON);
    assert_eq!(&reply.body[..], b"{}");

    let sent_metrics = metrics(5);
    let reply = send(
        addr,
        post(
            "/v1/metrics",
            "application/json; charset=utf-8",
            json::to_vec(&sent_metrics),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");

    let payloads = sink.take();
    assert_eq!(payloads.len(), 3);
    assert_eq!(payloads[0].signal(), Signal::Traces);
    assert_eq!(payloads[0].items(), 3);
    assert_eq!(
        payloads[0].decode::<ExportTraceServiceRequest>().unwrap(),
        sent_traces
    );
    assert_eq!(payloads[0].header().tenant, None);
    // JSON arrives in the pipeline as protobuf, unchanged in content.
    assert_eq!(payloads[1].items(), 4);
    assert_eq!(
        payloads[1].decode::<ExportLogsServiceRequest>().unwrap(),
        sent_logs
    );
    assert_eq!(payloads[2].items(), 5);
    assert_eq!(
        payloads[2].decode::<ExportMetricsServiceRequest>().unwrap(),
        sent_metrics
    );

    let snapshot = receiver.metrics().snapshot();
    assert_eq!(snapshot.traces.accepted, 1);
    assert_eq!(snapshot.traces.items_accepted, 3);
    assert_eq!(snapshot.logs.items_accepted, 4);
    assert_eq!(snapshot.metrics.items_accepted, 5);
    assert_eq!(snapshot.requests(), 3);
    receiver.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn compressed_bodies_are_decompressed() {
    let sink = TestSink::new();
    let receiver = start(HttpReceiverConfig::builder(), sink.clone()).await;
    let addr = receiver.local_addr();
    let sent = traces(50);
    let encoded = codec::protobuf::encode(&sent);
    let mut wire_total = 0;
    for compression in [Compression::Gzip, Compression::Zstd, Compression::Deflate] {
        let body = compress(compression, &encoded);
        wire_total += body.len();
        let mut request = post("/v1/traces", PROTOBUF, body);
        request
            .headers_mut()
            .insert("content-encoding", compression.as_str().parse().unwrap());
        let reply = send(addr, request).await;
        assert_eq!(reply.status, 200, "{compression}: {reply:?}");
    }
    for payload in sink.take() {
        assert_eq!(payload.decode::<ExportTraceServiceRequest>().unwrap(), sent);
    }
    let snapshot = receiver.metrics().snapshot();
    assert_eq!(snapshot.traces.bytes_received, wire_total as u64);
    assert_eq!(snapshot.traces.bytes_decompressed, 3 * encoded.len() as u64);
    assert!(snapshot.traces.bytes_received < snapshot.traces.bytes_decompressed);
}

#[tokio::test]
async fn bad_input_gets_the_right_status_and_message() {
    let sink = TestSink::new();
    let limit = 64 * 1024;
    let receiver = start(
        HttpReceiverConfig::builder().max_body_bytes(limit),
        sink.clone(),
    )
    .await;
    let addr = receiver.local_addr();

    // Malformed protobuf: a length running past the end.
    let reply = send(addr, post("/v1/traces", PROTOBUF, &[0x0a, 0x05][..])).await;
    reply.assert_refused(400, &["invalid protobuf", "ExportTraceServiceRequest"]);
    assert_eq!(reply.encoding(), Encoding::Protobuf);
    assert_eq!(reply.rpc_status().code, GrpcCode::InvalidArgument as i32);
    still_serving(addr).await;

    // Malformed OTLP/JSON: the message names where.
    let body = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abc"}]}]}]}"#;
    let reply = send(addr, post("/v1/traces", JSON, body)).await;
    reply.assert_refused(
        400,
        &[
            "resourceSpans[0].scopeSpans[0].spans[0].traceId",
            "32 hex digits",
        ],
    );
    assert_eq!(reply.encoding(), Encoding::Json);
    let reply = send(addr, post("/v1/logs", JSON, "{not json")).await;
    reply.assert_refused(400, &["invalid OTLP/JSON"]);
    still_serving(addr).await;

    // Wrong or missing content type: 415, answered in JSON.
    let reply = send(addr, post("/v1/traces", "text/plain", "hello")).await;
    reply.assert_refused(415, &["text/plain", "application/x-protobuf"]);
    assert_eq!(reply.encoding(), Encoding::Json);
    let reply = send(addr, post("/v1/traces", "", "hello")).await;
    reply.assert_refused(415, &["missing Content-Type"]);

    // Wrong method: 405 with Allow.
    for method in ["GET", "PUT", "DELETE"] {
        let request = Request::builder()
            .method(method)
            .uri("/v1/metrics")
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let reply = send(addr, request).await;
        reply.assert_refused(405, &[method, "POST"]);
        assert_eq!(reply.header("allow"), "POST");
    }

    // Unknown path: 404 naming the served paths.
    let reply = send(addr, post("/v1/profiles", PROTOBUF, Bytes::new())).await;
    reply.assert_refused(404, &["/v1/profiles", "/v1/traces"]);

    // Unsupported Content-Encoding: 415 and what is supported.
    let mut request = post_protobuf("/v1/traces", &traces(1));
    request
        .headers_mut()
        .insert("content-encoding", "br".parse().unwrap());
    let reply = send(addr, request).await;
    reply.assert_refused(415, &["\"br\""]);
    assert_eq!(
        reply.header("accept-encoding"),
        Compression::ACCEPT_ENCODING
    );

    // A gzip bomb: 4 KiB inflating to 4 MiB, far past the 64 KiB limit.
    let bomb = compress(Compression::Gzip, &vec![0u8; 4 << 20]);
    assert!(bomb.len() < limit / 4);
    let mut request = post("/v1/traces", PROTOBUF, bomb);
    request
        .headers_mut()
        .insert("content-encoding", "gzip".parse().unwrap());
    let reply = send(addr, request).await;
    reply.assert_refused(413, &["inflates beyond the 64 KiB limit"]);
    still_serving(addr).await;

    // Truncated gzip: corrupt, 400.
    let whole = compress(Compression::Gzip, &codec::protobuf::encode(&traces(20)));
    let mut request = post("/v1/traces", PROTOBUF, whole.slice(..whole.len() / 2));
    request
        .headers_mut()
        .insert("content-encoding", "gzip".parse().unwrap());
    let reply = send(addr, request).await;
    reply.assert_refused(400, &["gzip body is corrupt"]);

    // Oversized by Content-Length: refused before the body is read. The client waits
    // for 100 Continue, so the receiver must answer without reading anything.
    let mut stream = raw(
        addr,
        format!(
            "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            100 << 20
        )
        .as_bytes(),
    )
    .await;
    let (answer, closed) = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("exceeds the 64 KiB limit"), "{answer}");
    assert!(closed, "the connection is closed after a refused body");

    // Oversized with Content-Length, body sent at once (no Expect).
    let reply = send(addr, post("/v1/traces", PROTOBUF, vec![0u8; limit + 1])).await;
    reply.assert_refused(413, &["send smaller batches"]);
    still_serving(addr).await;

    // Oversized without Content-Length: a chunked stream, cut off at the limit.
    let mut head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    let chunk = vec![0x0a_u8; 8 * 1024];
    for _ in 0..16 {
        head.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        head.extend_from_slice(&chunk);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"0\r\n\r\n");
    let mut stream = raw(addr, &head).await;
    let (answer, closed) = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("exceeds the 64 KiB limit"), "{answer}");
    assert!(closed);
    still_serving(addr).await;

    assert_eq!(
        sink.len(),
        5,
        "only the still_serving requests reached the sink"
    );
    let snapshot = receiver.metrics().snapshot();
    assert_eq!(snapshot.traces.accepted, 0);
    assert_eq!(snapshot.traces.responses_with(413), 4);
    assert_eq!(snapshot.traces.responses_with(400), 3);
    assert_eq!(snapshot.traces.responses_with(415), 3);
    assert_eq!(snapshot.logs.responses_with(400), 1);
    assert_eq!(snapshot.metrics.responses_with(405), 3);
    assert_eq!(snapshot.unrouted.responses_with(404), 1);
    assert_eq!(snapshot.logs.accepted, 5);
}

#[tokio::test]
async fn a_signal_without_a_sink_is_not_served() {
    let sink = TestSink::new();
    let config = HttpReceiverConfig::builder()
        .addr("127.0.0.1:0")
        .path(Signal::Traces, "/otlp/spans")
        .build()
        .unwrap();
    let receiver = HttpReceiver::bind(config, Sinks::none().with(Signal::Traces, sink.clone()))
        .await
        .unwrap();
    let addr = receiver.local_addr();
    let reply = send(addr, post_protobuf("/otlp/spans", &traces(2))).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = send(addr, post_protobuf("/v1/traces", &traces(2))).await;
    reply.assert_refused(404, &["/otlp/spans"]);
    let reply = send(addr, post_protobuf("/v1/logs", &logs(2))).await;
    reply.assert_refused(404, &["does not accept logs"]);
    assert_eq!(sink.len(), 1);

    let err = HttpReceiver::bind(HttpReceiverConfig::default(), Sinks::none())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no sinks"), "{err}");
}

#[tokio::test]
async fn sink_refusals_map_to_retryable_statuses() {
    let sink = TestSink::bounded(1);
    let receiver = start(HttpReceiverConfig::builder(), sink.clone()).await;
    let addr = receiver.local_addr();

    sink.answer_with(Answer::Refuse(Refusal::Unavailable {
        reason: "queue full".into(),
        retry_after: Duration::from_millis(2500),
    }));
    for (encoding, content_type, body) in [
        (
            Encoding::Protobuf,
            PROTOBUF,
            codec::protobuf::encode(&traces(2)),
        ),
        (Encoding::Json, JSON, Bytes::from(json::to_vec(&traces(2)))),
    ] {
        let reply = send(addr, post("/v1/traces", content_type, body)).await;
        reply.assert_refused(503, &["queue full"]);
        assert_eq!(reply.header("retry-after"), "3");
        assert_eq!(reply.encoding(), encoding);
        let status = reply.rpc_status();
        assert_eq!(status.code, GrpcCode::Unavailable as i32);
        assert_eq!(status.retry_delay(), Some(Duration::from_millis(2500)));
        // What an OTLP exporter makes of it: retry, after the announced delay.
        let err = ExportError::from_http(
            503,
            Some(reply.header("retry-after")),
            Some(reply.header("content-type")),
            &reply.body,
            SystemTime::now(),
        );
        assert!(err.is_retryable());
        assert_eq!(err.retry_delay(), Some(Duration::from_secs(3)));
    }

    sink.answer_with(Answer::Refuse(Refusal::Throttled {
        reason: "tenant over its rate".into(),
        retry_after: Duration::from_secs(7),
    }));
    let reply = send(addr, post_protobuf("/v1/logs", &logs(1))).await;
    reply.assert_refused(429, &["tenant over its rate"]);
    assert_eq!(reply.header("retry-after"), "7");

    sink.answer_with(Answer::Refuse(Refusal::Internal("disk failed".into())));
    let reply = send(addr, post_protobuf("/v1/logs", &logs(1))).await;
    reply.assert_refused(500, &["disk failed"]);
    assert_eq!(reply.header("retry-after"), "");

    // The bounded sink: one payload fits, the next is refused with 503.
    sink.answer_with(Answer::Accept);
    assert_eq!(
        send(addr, post_protobuf("/v1/logs", &logs(1))).await.status,
        200
    );
    let reply = send(addr, post_protobuf("/v1/logs", &logs(3))).await;
    reply.assert_refused(503, &["test sink holds 1 payloads"]);
    assert_eq!(reply.header("retry-after"), "2");

    let snapshot = receiver.metrics().snapshot();
    assert_eq!(snapshot.traces.refused, 2);
    assert_eq!(snapshot.traces.items_refused, 4);
    assert_eq!(snapshot.logs.refused, 3);
    assert_eq!(snapshot.logs.responses_with(429), 1);
    assert_eq!(snapshot.logs.responses_with(503), 1);
    assert_eq!(snapshot.logs.items_accepted, 1);
}

#[tokio::test]
async fn partial_success_in_both_encodings() {
    let sink = TestSink::new();
    let receiver = start(HttpReceiverConfig::builder(), sink.clone()).await;
    let addr = receiver.local_addr();
    sink.answer_with(Answer::Partial {
        rejected: 2,
        message: "2 spans older than 24 h dropped".into(),
    });
    let expected = Some(PartialSuccess {
        rejected: 2,
        message: "2 spans older than 24 h dropped".into(),
    });

    let reply = send(addr, post_protobuf("/v1/traces", &traces(5))).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let response: ExportTraceServiceResponse = codec::protobuf::decode(&reply.body).unwrap();
    assert_eq!(response.partial_success(), expected);

    let reply = send(addr, post("/v1/traces", JSON, json::to_vec(&traces(5)))).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let text = std::str::from_utf8(&reply.body).unwrap();
    assert_eq!(
        text,
        r#"{"partialSuccess":{"rejectedSpans":"2","errorMessage":"2 spans older than 24 h dropped"}}"#
    );
    let response: ExportTraceServiceResponse = json::from_slice(&reply.body).unwrap();
    assert_eq!(response.partial_success(), expected);

    let reply = send(addr, post_protobuf("/v1/logs", &logs(3))).await;
    let response: ExportLogsServiceResponse = codec::protobuf::decode(&reply.body).unwrap();
    assert_eq!(response.partial_success().unwrap().rejected, 2);

    let snapshot = receiver.metrics().snapshot();
    assert_eq!(snapshot.traces.partially_accepted, 2);
    assert_eq!(snapshot.traces.items_accepted, 6);
    assert_eq!(snapshot.traces.items_refused, 4);
}

#[tokio::test]
async fn auth_bearer_and_api_key() {
    let sink = TestSink::new();
    let receiver = start(
        HttpReceiverConfig::builder()
            .auth(AuthConfig::bearer(["key-one", "key-two"]).with_api_key_header("x-api-key")),
        sink.clone(),
    )
    .await;
    let addr = receiver.local_addr();

    let reply = send(addr, post_protobuf("/v1/traces", &traces(1))).await;
    reply.assert_refused(401, &["missing credentials", "Bearer", "x-api-key"]);
    assert_eq!(reply.header("www-authenticate"), r#"Bearer realm="otlp""#);
    assert_eq!(reply.encoding(), Encoding::Protobuf);
    assert_eq!(reply.rpc_status().code, GrpcCode::Unauthenticated as i32);

    for bad in ["Bearer key-three", "Bearer key-on", "Basic a2V5LW9uZQ=="] {
        let mut request = post("/v1/traces", JSON, json::to_vec(&traces(1)));
        request
            .headers_mut()
            .insert("authorization", bad.parse().unwrap());
        let reply = send(addr, request).await;
        assert_eq!(reply.status, 401, "{bad}: {reply:?}");
        assert_eq!(reply.encoding(), Encoding::Json);
        assert_eq!(reply.header("www-authenticate"), r#"Bearer realm="otlp""#);
    }
    assert_eq!(sink.len(), 0, "nothing unauthenticated reaches the sink");

    for (header, value) in [
        ("authorization", "Bearer key-one"),
        ("authorization", "bearer key-two"),
        ("x-api-key", "key-two"),
    ] {
        let mut request = post_protobuf("/v1/traces", &traces(1));
        request.headers_mut().insert(header, value.parse().unwrap());
        let reply = send(addr, request).await;
        assert_eq!(reply.status, 200, "{header}: {value}: {reply:?}");
    }
    assert_eq!(sink.len(), 3);
    let snapshot = receiver.metrics().snapshot();
    assert_eq!(snapshot.traces.responses_with(401), 4);
    assert_eq!(snapshot.traces.accepted, 3);
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    let sink = TestSink::new();
    let receiver = start(
        HttpReceiverConfig::builder()
            .auth(AuthConfig::bearer(["k"]))
            .cors(
                CorsConfig::new(["https://app.example.com"])
                    .allowed_headers(["x-request-id"])
                    .max_age(Duration::from_secs(600)),
            ),
        sink.clone(),
    )
    .await;
    let addr = receiver.local_addr();

    // A preflight carries no credentials and is answered before auth.
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/v1/traces")
            .header("host", "127.0.0.1")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization,x-request-id",
            )
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let reply = send(addr, preflight("https://app.example.com")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        "https://app.example.com"
    );
    assert!(
        reply
            .header("access-control-allow-methods")
            .contains("POST")
    );
    let allowed = reply.header("access-control-allow-headers").to_owned();
    for h in [
        "content-type",
        "authorization",
        "x-request-id",
        "content-encoding",
    ] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    assert_eq!(reply.header("access-control-max-age"), "600");

    // Another origin: no allow-origin, the browser blocks.
    let reply = send(addr, preflight("https://evil.example.org")).await;
    assert_eq!(reply.header("access-control-allow-origin"), "");

    // The actual request carries the CORS headers too, 401 included.
    let mut request = post("/v1/traces", JSON, json::to_vec(&traces(1)));
    request
        .headers_mut()
        .insert("origin", "https://app.example.com".parse().unwrap());
    let reply = send(addr, request).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        "https://app.example.com"
    );
    let mut request = post("/v1/traces", JSON, json::to_vec(&traces(1)));
    request
        .headers_mut()
        .insert("origin", "https://app.example.com".parse().unwrap());
    request
        .headers_mut()
        .insert("authorization", "Bearer k".parse().unwrap());
    let reply = send(addr, request).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        "https://app.example.com"
    );
    assert_eq!(sink.len(), 1);

    // Without CORS, OPTIONS is just a wrong method.
    let plain = start(HttpReceiverConfig::builder(), TestSink::new()).await;
    let reply = send(plain.local_addr(), preflight("https://app.example.com")).await;
    reply.assert_refused(405, &["OPTIONS"]);
}

#[tokio::test]
async fn h2c_prior_knowledge_and_http1_on_one_port() {
    let sink = TestSink::new();
    let receiver = start(
        HttpReceiverConfig::builder().max_concurrent_streams(4),
        sink.clone(),
    )
    .await;
    let addr = receiver.local_addr();

    let reply = send(addr, post_protobuf("/v1/traces", &traces(2))).await;
    assert_eq!(
        (reply.status.as_u16(), reply.version),
        (200, http::Version::HTTP_11)
    );
    let reply = send_h2(addr, post_protobuf("/v1/traces", &traces(3))).await;
    assert_eq!(
        (reply.status.as_u16(), reply.version),
        (200, http::Version::HTTP_2)
    );
    let reply = send_h2(addr, post("/v1/logs", JSON, json::to_vec(&logs(2)))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"{}");
    let reply = send_h2(addr, post("/v1/logs", PROTOBUF, &[0xff][..])).await;
    reply.assert_refused(400, &["invalid protobuf"]);

    // Many requests multiplexed on one h2 connection, more than the stream limit. Once
    // the client has the server's SETTINGS (after a first exchange) it queues the rest;
    // before that the server refuses excess streams with REFUSED_STREAM.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let first = absolute(addr, "http", post_protobuf("/v1/traces", &traces(1)));
    assert_eq!(
        collect(sender.send_request(first).await.unwrap())
            .await
            .status,
        200
    );
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..12 {
        let mut sender = sender.clone();
        requests.spawn(async move {
            let request = absolute(addr, "http", post_protobuf("/v1/traces", &traces(i + 1)));
            collect(sender.send_request(request).await.unwrap()).await
        });
    }
    let mut done = 0;
    while let Some(reply) = bounded("12 multiplexed requests", requests.join_next()).await {
        assert_eq!(reply.unwrap().status, 200);
        done += 1;
    }
    assert_eq!(done, 12);
    let snapshot = receiver.metrics().snapshot();
    assert_eq!(
        snapshot.traces.items_accepted,
        2 + 3 + 1 + (1..=12).sum::<u64>()
    );
    assert_eq!(snapshot.connections.accepted, 5);
}

#[tokio::test]
async fn tls_and_mutual_tls() {
    let pki = TestPki::new();
    let sink = TestSink::new();

    // TLS, PEM from memory; HTTP/1.1 and h2 by ALPN.
    let receiver = start(
        HttpReceiverConfig::builder().tls(TlsConfig::new(
            PemSource::memory(pki.server_cert_pem.clone()),
            PemSource::memory(pki.server_key_pem.clone()),
        )),
        sink.clone(),
    )
    .await;
    let addr = receiver.local_addr();
    let reply = send_tls(&pki, addr, b"http/1.1", false).await.unwrap();
    assert_eq!(
        (reply.status.as_u16(), reply.version),
        (200, http::Version::HTTP_11)
    );
    let reply = send_tls(&pki, addr, b"h2", false).await.unwrap();
    assert_eq!(
        (reply.status.as_u16(), reply.version),
        (200, http::Version::HTTP_2)
    );
    // Plain HTTP to a TLS port: the handshake fails, nothing is served.
    let mut stream = raw(addr, b"POST /v1/logs HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (answer, closed) = read_until_closed(&mut stream).await;
    assert!(!answer.contains("HTTP/1.1 200") && closed, "{answer}");
    receiver.shutdown(Duration::from_secs(5)).await.unwrap();

    // Mutual TLS, PEM from files: a client without a certificate is turned away.
    let dir = std::env::temp_dir().join(format!("otlp-receiver-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, pem) in [
        ("server.crt", &pki.server_cert_pem),
        ("server.key", &pki.server_key_pem),
        ("ca.crt", &pki.ca_pem),
    ] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
    let receiver = start(
        HttpReceiverConfig::builder().tls(
            TlsConfig::new(
                PemSource::file(dir.join("server.crt")),
                PemSource::file(dir.join("server.key")),
            )
            .with_client_ca(PemSource::file(dir.join("ca.crt"))),
        ),
        sink.clone(),
    )
    .await;
    let addr = receiver.local_addr();
    let reply = send_tls(&pki, addr, b"h2", true).await.unwrap();
    assert_eq!(reply.status, 200);
    let reply = send_tls(&pki, addr, b"http/1.1", true).await.unwrap();
    assert_eq!(reply.status, 200);
    let refused = send_tls(&pki, addr, b"http/1.1", false).await;
    assert!(refused.is_err(), "no client certificate: {refused:?}");
    eventually("the failed handshake is counted", || {
        receiver
            .metrics()
            .snapshot()
            .connections
            .tls_handshake_failures
            == 1
    })
    .await;
    assert_eq!(sink.len(), 4);
    std::fs::remove_dir_all(&dir).unwrap();

    // A key that does not match its certificate is a configuration error.
    let other = TestPki::new();
    let err = HttpReceiverConfig::builder()
        .tls(TlsConfig::new(
            PemSource::memory(pki.server_cert_pem.clone()),
            PemSource::memory(other.server_key_pem.clone()),
        ))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("`tls`"), "{err}");
}

/// One logs request over TLS with `alpn`; `Err` with what failed.
async fn send_tls(
    pki: &TestPki,
    addr: std::net::SocketAddr,
    alpn: &[u8],
    client_cert: bool,
) -> Result<Reply, String> {
    bounded("TLS exchange", async {
        let connector = tokio_rustls::TlsConnector::from(pki.client_config(&[alpn], client_cert));
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let request = post_protobuf("/v1/logs", &logs(1));
        let response = if alpn == b"h2" {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .map_err(|e| format!("h2: {e}"))?;
            tokio::spawn(connection);
            sender
                .send_request(absolute(addr, "https", request))
                .await
                .map_err(|e| format!("request: {e}"))?
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| format!("http1: {e}"))?;
            tokio::spawn(connection);
            sender
                .send_request(request)
                .await
                .map_err(|e| format!("request: {e}"))?
        };
        Ok(collect(response).await)
    })
    .await
}

#[tokio::test]
async fn framing_validation_trusts_senders() {
    // A span whose name is invalid UTF-8: framing is intact, the contents are not.
    let span = [0x2a, 0x01, 0xff];
    let scope = [&[0x12, span.len() as u8][..], &span].concat();
    let resource = [&[0x12, scope.len() as u8][..], &scope].concat();
    let body = Bytes::from([&[0x0a, resource.len() as u8][..], &resource].concat());

    let sink = TestSink::new();
    let full = start(HttpReceiverConfig::builder(), sink.clone()).await;
    let reply = send(
        full.local_addr(),
        post("/v1/traces", PROTOBUF, body.clone()),
    )
    .await;
    reply.assert_refused(400, &["invalid protobuf"]);
    assert_eq!(sink.len(), 0, "the bad body never reaches a batch");

    let framing = start(
        HttpReceiverConfig::builder().validation(Validation::Framing),
        sink.clone(),
    )
    .await;
    let reply = send(
        framing.local_addr(),
        post("/v1/traces", PROTOBUF, body.clone()),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let payloads = sink.take();
    assert_eq!((payloads[0].items(), payloads[0].body()), (1, &body));
    // Broken framing is still refused.
    let reply = send(
        framing.local_addr(),
        post("/v1/traces", PROTOBUF, &[0x0a, 0x09, 0x12][..]),
    )
    .await;
    reply.assert_refused(400, &["ExportTraceServiceRequest"]);
}

#[tokio::test]
async fn tenant_hook_sets_the_payload_tenant() {
    let sink = TestSink::new();
    let receiver = start(
        HttpReceiverConfig::builder().tenant(TenantSource::Header("x-tenant".parse().unwrap())),
        sink.clone(),
    )
    .await;
    let mut request = post_protobuf("/v1/logs", &logs(1));
    request
        .headers_mut()
        .insert("x-tenant", "acme".parse().unwrap());
    assert_eq!(send(receiver.local_addr(), request).await.status, 200);
    assert_eq!(
        send(receiver.local_addr(), post_protobuf("/v1/logs", &logs(1)))
            .await
            .status,
        200
    );
    let payloads = sink.take();
    assert_eq!(payloads[0].header().tenant.as_deref(), Some("acme"));
    assert_eq!(payloads[1].header().tenant, None);

    // A custom hook can refuse.
    let receiver = start(
        HttpReceiverConfig::builder().tenant(TenantSource::Custom(Arc::new(|parts| {
            match parts.headers.get("x-tenant") {
                Some(_) => Ok(Some("known".into())),
                None => Err(Refusal::PermissionDenied("no tenant given".into())),
            }
        }))),
        sink.clone(),
    )
    .await;
    let reply = send(receiver.local_addr(), post_protobuf("/v1/logs", &logs(1))).await;
    reply.assert_refused(403, &["no tenant given"]);
}
