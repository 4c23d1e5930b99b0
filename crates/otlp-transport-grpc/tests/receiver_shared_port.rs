//! One port serving OTLP/gRPC and OTLP/HTTP: the content type decides.

mod receiver_support;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use otlp_core::{GrpcCode, Signal};
use otlp_transport_grpc::receiver::{AuthConfig, GrpcReceiverConfig};
use otlp_transport_http::receiver::HttpReceiverConfig;
use receiver_support::{Client, TestSink, bounded, frame, request, send_h2, start};
use tokio::net::TcpStream;

/// POST `body` over HTTP/1.1 on a new connection; status, headers and body.
async fn post_http1(
    addr: std::net::SocketAddr,
    path: &str,
    content_type: &str,
    body: Bytes,
    extra: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, Bytes) {
    bounded("HTTP/1.1 exchange", async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        let mut builder = Request::post(path)
            .header("host", "127.0.0.1")
            .header("content-type", content_type);
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        let response = sender
            .send_request(builder.body(Full::new(body)).unwrap())
            .await
            .expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        (parts.status, parts.headers, body)
    })
    .await
}

#[tokio::test]
async fn one_port_serves_grpc_and_otlp_http() {
    let sink = TestSink::new();
    let receiver = start(
        GrpcReceiverConfig::builder().serve_http(HttpReceiverConfig::default()),
        sink.clone(),
    )
    .await;
    let addr = receiver.local_addr();

    // gRPC, HTTP/2.
    let grpc_body = request(Signal::Traces, 2);
    Client::connect(addr)
        .await
        .export(Signal::Traces, grpc_body.clone())
        .await
        .expect("gRPC OK");
    // OTLP/HTTP protobuf over HTTP/1.1.
    let http_body = request(Signal::Logs, 3);
    let (status, headers, _) = post_http1(
        addr,
        "/v1/logs",
        "application/x-protobuf",
        http_body.clone(),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/x-protobuf");
    // OTLP/JSON over HTTP/1.1.
    let (status, _, body) = post_http1(
        addr,
        "/v1/metrics",
        "application/json",
        Bytes::from_static(br#"{"resourceMetrics":[]}"#),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "{}");
    // OTLP/HTTP over HTTP/2 (h2c) goes to OTLP/HTTP too: the content type decides.
    let h2_http = http::Request::post(format!("http://127.0.0.1{}", Signal::Logs.http_path()))
        .header("content-type", "application/x-protobuf")
        .body(Full::new(http_body.clone()))
        .unwrap();
    assert_eq!(send_h2(addr, h2_http).await.status, StatusCode::OK);

    let payloads = sink.take();
    assert_eq!(payloads.len(), 4);
    assert_eq!(payloads[0].body(), &grpc_body);
    assert_eq!(payloads[1].body(), &http_body);
    assert_eq!(payloads[1].signal(), Signal::Logs);
    assert_eq!(payloads[2].signal(), Signal::Metrics);
    assert_eq!(payloads[3].body(), &http_body);

    // Counters: gRPC calls in the gRPC metrics, OTLP/HTTP requests and every connection
    // in the listener's.
    assert_eq!(receiver.metrics().snapshot().requests(), 1);
    let http = receiver.listener_metrics().snapshot();
    assert_eq!(http.logs.accepted, 2);
    assert_eq!(http.metrics.accepted, 1);
    assert_eq!(http.connections.accepted, 4);
}

#[tokio::test]
async fn grpc_over_http1_is_refused_on_the_shared_port() {
    let sink = TestSink::new();
    let receiver = start(
        GrpcReceiverConfig::builder().serve_http(HttpReceiverConfig::default()),
        sink.clone(),
    )
    .await;
    let (status, headers, _) = post_http1(
        receiver.local_addr(),
        Signal::Traces.grpc_path(),
        "application/grpc",
        frame(false, &request(Signal::Traces, 1)),
        &[("te", "trailers")],
    )
    .await;
    assert_eq!(status, StatusCode::HTTP_VERSION_NOT_SUPPORTED);
    assert_eq!(headers["grpc-status"], "12");
    assert_eq!(sink.len(), 0);
    assert_eq!(
        receiver
            .metrics()
            .snapshot()
            .traces
            .responses_with(GrpcCode::Unimplemented),
        1
    );
}

#[tokio::test]
async fn each_protocol_keeps_its_own_auth_answer() {
    let sink = TestSink::new();
    let receiver = start(
        GrpcReceiverConfig::builder()
            .auth(AuthConfig::bearer(["grpc-key"]))
            .serve_http(
                HttpReceiverConfig::builder()
                    .auth(AuthConfig::bearer(["http-key"]))
                    .build()
                    .unwrap(),
            ),
        sink.clone(),
    )
    .await;
    let addr = receiver.local_addr();
    let body = request(Signal::Traces, 1);

    // OTLP/HTTP answers 401; gRPC answers UNAUTHENTICATED in an HTTP 200.
    let (status, _, _) = post_http1(
        addr,
        "/v1/traces",
        "application/x-protobuf",
        body.clone(),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let status = Client::connect(addr)
        .await
        .export(Signal::Traces, body.clone())
        .await
        .expect_err("no credentials");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let (status, _, _) = post_http1(
        addr,
        "/v1/traces",
        "application/x-protobuf",
        body.clone(),
        &[("authorization", "Bearer http-key")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    Client::connect(addr)
        .await
        .call(
            Signal::Traces.grpc_path(),
            body,
            &[("authorization", "Bearer grpc-key")],
        )
        .await
        .expect("gRPC with its key");
    assert_eq!(sink.len(), 2);
}
