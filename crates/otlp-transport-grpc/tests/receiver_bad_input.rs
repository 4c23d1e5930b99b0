//! Bad input against the OTLP/gRPC receiver: malformed protobuf, oversized messages,
//! compression bombs, wrong content types and methods, HTTP/1.1 on the HTTP/2 port,
//! unsupported encodings, broken framing, slow messages, many streams at once. After
//! each, the receiver still serves a good call.

mod receiver_support;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body::Frame;
use otlp_core::{GrpcCode, Signal};
use otlp_transport_grpc::receiver::{ConnectionLimitPolicy, GrpcReceiverConfig, Validation};
use receiver_support::{
    Client, TestSink, bounded, encode, export_error, frame, grpc_request, request, send_h2, start,
    traces,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tonic::Code;
use tonic::codec::CompressionEncoding;

#[path = "../../otlp-core/tests/support/bombs.rs"]
mod bombs;

/// A good call still succeeds, on a fresh connection.
async fn still_serves(addr: SocketAddr) {
    Client::connect(addr)
        .await
        .export(Signal::Traces, request(Signal::Traces, 2))
        .await
        .expect("the receiver still serves good calls");
}

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument() {
    let sink = TestSink::new();
    let receiver = start(GrpcReceiverConfig::builder(), sink.clone()).await;
    let mut client = Client::connect(receiver.local_addr()).await;

    // A length-delimited field claiming 5 bytes with none following; and a wire type 7.
    for garbage in [&[0x0a, 0x05][..], &[0x0f, 0x01, 0x02][..]] {
        let status = client
            .export(Signal::Traces, Bytes::copy_from_slice(garbage))
            .await
            .expect_err("malformed");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains("ExportTraceServiceRequest"),
            "{status:?}"
        );
        assert!(!export_error(&status).is_retryable());
    }
    assert_eq!(sink.len(), 0);
    let traces = receiver.metrics().snapshot().traces;
    assert_eq!(traces.rejected, 2);
    assert_eq!(traces.responses_with(GrpcCode::InvalidArgument), 2);
    still_serves(receiver.local_addr()).await;
}

/// A span whose name (field 5) is invalid UTF-8: fine framing, invalid content.
fn span_with_bad_utf8() -> Bytes {
    let span = [0x2a, 0x01, 0xff];
    let mut scope = vec![0x12, span.len() as u8];
    scope.extend_from_slice(&span);
    let mut resource = vec![0x12, scope.len() as u8];
    resource.extend_from_slice(&scope);
    let mut body = vec![0x0a, resource.len() as u8];
    body.extend_from_slice(&resource);
    Bytes::from(body)
}

#[tokio::test]
async fn validation_full_rejects_what_framing_lets_through() {
    let full_sink = TestSink::new();
    let full = start(GrpcReceiverConfig::builder(), full_sink.clone()).await;
    let status = Client::connect(full.local_addr())
        .await
        .export(Signal::Traces, span_with_bad_utf8())
        .await
        .expect_err("a full decode sees the bad UTF-8");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    let framing_sink = TestSink::new();
    let framing = start(
        GrpcReceiverConfig::builder().validation(Validation::Framing),
        framing_sink.clone(),
    )
    .await;
    let mut client = Client::connect(framing.local_addr()).await;
    client
        .export(Signal::Traces, span_with_bad_utf8())
        .await
        .expect("framing only: accepted");
    assert_eq!(framing_sink.payloads()[0].items(), 1);
    // Framing still refuses broken framing.
    let status = client
        .export(Signal::Traces, Bytes::from_static(&[0x0a, 0x05]))
        .await
        .expect_err("truncated");
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn oversized_messages_are_final_resource_exhausted() {
    let limit = 64 * 1024;
    let sink = TestSink::new();
    let receiver = start(
        GrpcReceiverConfig::builder().max_message_bytes(limit),
        sink.clone(),
    )
    .await;
    let big = encode(&traces(2000));
    assert!(big.len() > 2 * limit);

    let mut client = Client::connect(receiver.local_addr()).await;
    let status = client
        .export(Signal::Traces, big.clone())
        .await
        .expect_err("too large");
    // tonic says OUT_OF_RANGE, which OTLP clients would retry forever.
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains(&limit.to_string()), "{status:?}");
    let err = export_error(&status);
    assert!(!err.is_retryable(), "must not be retried: {err}");

    // Compressed, the same message is small on the wire but too large inflated.
    let mut gzip = Client::connect(receiver.local_addr())
        .await
        .compressing(CompressionEncoding::Gzip);
    let status = gzip
        .export(Signal::Traces, big.clone())
        .await
        .expect_err("too large after decompression");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(!export_error(&status).is_retryable());

    // A frame that declares more than the limit is refused before its bytes arrive.
    let reply = send_h2(
        receiver.local_addr(),
        grpc_request(Signal::Traces.grpc_path(), frame(false, &big), &[]),
    )
    .await;
    assert_eq!(reply.grpc().code(), Code::ResourceExhausted, "{reply:?}");

    assert_eq!(sink.len(), 0);
    let traces = receiver.metrics().snapshot().traces;
    assert_eq!(traces.responses_with(GrpcCode::ResourceExhausted), 3);
    assert_eq!(traces.responses_with(GrpcCode::OutOfRange), 0);
    still_serves(receiver.local_addr()).await;
}

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_bombs_stop_at_the_limit() {
    let limit = 4 * bombs::MIB;
    let sink = TestSink::new();
    let receiver = start(
        GrpcReceiverConfig::builder().max_message_bytes(limit),
        sink.clone(),
    )
    .await;

    let raw = bombs::raw_deflate_zeros(bombs::GIB);
    let cases = [
        ("gzip", bombs::gzip_zeros(&raw, bombs::GIB)),
        ("zstd", bombs::zstd_zeros(bombs::GIB, 17, false)),
        ("deflate", bombs::zlib_zeros(&raw, bombs::GIB)),
    ];
    drop(raw);
    // Peak resident memory, reset where the kernel allows it (process-wide: other tests
    // of this binary may add a little, never a gigabyte).
    let measured = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kib("VmRSS:");
    for (encoding, bomb) in &cases {
        assert!(
            bomb.len() < limit,
            "{encoding}: {} bytes on the wire",
            bomb.len()
        );
        let started = Instant::now();
        let reply = send_h2(
            receiver.local_addr(),
            grpc_request(
                Signal::Traces.grpc_path(),
                frame(true, bomb),
                &[("grpc-encoding", encoding)],
            ),
        )
        .await;
        let status = reply.grpc();
        assert_eq!(
            status.code(),
            Code::ResourceExhausted,
            "{encoding}: {status:?}"
        );
        assert!(!export_error(&status).is_retryable(), "{encoding}");
        eprintln!(
            "{encoding}: 1 GiB bomb ({} KiB) refused in {:?}",
            bomb.len() / 1024,
            started.elapsed()
        );
    }
    if let (true, Some(before), Some(peak)) = (measured, before, status_kib("VmHWM:")) {
        let grown = peak.saturating_sub(before) * 1024;
        eprintln!("peak resident memory grew {} KiB", grown / 1024);
        assert!(
            grown < 256 * bombs::MIB,
            "decompression must stop at the limit: grew {grown} bytes"
        );
    } else {
        eprintln!("memory not measured: /proc/self/clear_refs or VmHWM unavailable");
    }
    assert_eq!(sink.len(), 0);
    still_serves(receiver.local_addr()).await;
}

#[tokio::test]
async fn wrong_content_type_and_method_are_http_errors() {
    let sink = TestSink::new();
    let receiver = start(GrpcReceiverConfig::builder(), sink.clone()).await;
    let addr = receiver.local_addr();
    let body = frame(false, &request(Signal::Traces, 1));

    // Not gRPC at all: HTTP 415, so a plain HTTP client does not read it as success.
    for content_type in ["application/x-protobuf", "application/json", "text/plain"] {
        let reply = send_h2(
            addr,
            grpc_request(
                Signal::Traces.grpc_path(),
                body.clone(),
                &[("content-type", content_type)],
            ),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{reply:?}"
        );
        assert_eq!(reply.grpc().code(), Code::InvalidArgument, "{reply:?}");
    }
    // gRPC, but not protobuf: a gRPC status.
    let reply = send_h2(
        addr,
        grpc_request(
            Signal::Traces.grpc_path(),
            body.clone(),
            &[("content-type", "application/grpc+json")],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.grpc().code(), Code::InvalidArgument, "{reply:?}");

    let mut get = grpc_request(Signal::Traces.grpc_path(), Bytes::new(), &[]);
    *get.method_mut() = http::Method::GET;
    let reply = send_h2(addr, get).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{reply:?}");
    assert_eq!(reply.header("allow"), "POST");

    assert_eq!(sink.len(), 0);
    assert_eq!(receiver.metrics().snapshot().traces.rejected, 5);
    still_serves(addr).await;
}

#[tokio::test]
async fn http1_on_the_http2_port_is_refused() {
    let sink = TestSink::new();
    let receiver = start(GrpcReceiverConfig::builder(), sink.clone()).await;
    let addr = receiver.local_addr();

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .write_all(
            b"POST /opentelemetry.proto.collector.trace.v1.TraceService/Export HTTP/1.1\r\n\
              host: 127.0.0.1\r\ncontent-type: application/grpc\r\ncontent-length: 5\r\n\r\n\
              \x00\x00\x00\x00\x00",
        )
        .await
        .unwrap();
    // The server expects the HTTP/2 preface: it closes the connection (after a GOAWAY
    // frame at most), and never answers in HTTP/1.1.
    let mut received = Vec::new();
    let closed = bounded("close", async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed);
    assert!(
        !received.starts_with(b"HTTP/1"),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    assert_eq!(sink.len(), 0);
    still_serves(addr).await;
}

#[tokio::test]
async fn unsupported_grpc_encoding_is_unimplemented() {
    let sink = TestSink::new();
    let receiver = start(GrpcReceiverConfig::builder(), sink.clone()).await;
    let addr = receiver.local_addr();
    let body = frame(true, &request(Signal::Traces, 1));

    let reply = send_h2(
        addr,
        grpc_request(Signal::Traces.grpc_path(), body, &[("grpc-encoding", "br")]),
    )
    .await;
    assert_eq!(reply.grpc().code(), Code::Unimplemented, "{reply:?}");
    let accepted = reply.header("grpc-accept-encoding");
    for coding in ["gzip", "zstd", "deflate"] {
        assert!(accepted.contains(coding), "{accepted:?}");
    }

    // A receiver configured without compression refuses a tonic client's gzip.
    let plain_sink = TestSink::new();
    let plain = start(
        GrpcReceiverConfig::builder().accept_compression([]),
        plain_sink.clone(),
    )
    .await;
    let status = Client::connect(plain.local_addr())
        .await
        .compressing(CompressionEncoding::Gzip)
        .export(Signal::Traces, request(Signal::Traces, 1))
        .await
        .expect_err("gzip not accepted");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(sink.len() + plain_sink.len(), 0);
    still_serves(addr).await;
    still_serves(plain.local_addr()).await;
}

/// Extra request headers: (name, value).
type Headers<'a> = &'a [(&'a str, &'a str)];

#[tokio::test]
async fn broken_framing_is_refused() {
    let sink = TestSink::new();
    let receiver = start(GrpcReceiverConfig::builder(), sink.clone()).await;
    let addr = receiver.local_addr();
    let message = request(Signal::Traces, 1);

    // Compressed flag without grpc-encoding: INTERNAL, as the gRPC spec demands.
    let reply = send_h2(
        addr,
        grpc_request(Signal::Traces.grpc_path(), frame(true, &message), &[]),
    )
    .await;
    assert_eq!(reply.grpc().code(), Code::Internal, "{reply:?}");

    // A frame that ends before its declared length; a frame flag that is neither 0
    // nor 1; corrupt gzip; no message at all.
    let mut truncated = frame(false, &message).to_vec();
    truncated.truncate(truncated.len() - 3);
    let mut bad_flag = frame(false, &message).to_vec();
    bad_flag[0] = 7;
    let cases: [(&str, Bytes, Headers<'_>); 4] = [
        ("truncated", Bytes::from(truncated), &[]),
        ("bad flag", Bytes::from(bad_flag), &[]),
        (
            "corrupt gzip",
            frame(true, b"not gzip at all"),
            &[("grpc-encoding", "gzip")],
        ),
        ("empty body", Bytes::new(), &[]),
    ];
    for (what, body, headers) in cases {
        let reply = send_h2(
            addr,
            grpc_request(Signal::Traces.grpc_path(), body, headers),
        )
        .await;
        let status = reply.grpc();
        assert_ne!(status.code(), Code::Ok, "{what}: {reply:?}");
        assert!(!export_error(&status).is_retryable(), "{what}: {status:?}");
    }
    assert_eq!(sink.len(), 0);
    still_serves(addr).await;
}

/// A request body that sends `first` and then nothing, never ending.
struct Trickle(Option<Bytes>);

impl http_body::Body for Trickle {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.0.take() {
            Some(first) => Poll::Ready(Some(Ok(Frame::data(first)))),
            None => Poll::Pending,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_message_that_never_completes_is_deadline_exceeded() {
    let sink = TestSink::new();
    let receiver = start(
        GrpcReceiverConfig::builder().message_read_timeout(Duration::from_secs(5)),
        sink.clone(),
    )
    .await;
    let message = frame(false, &request(Signal::Traces, 10));
    let half = message.slice(..message.len() / 2);
    let request = http::Request::post(format!("http://127.0.0.1{}", Signal::Traces.grpc_path()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Trickle(Some(half)))
        .unwrap();

    let started = Instant::now();
    let reply = send_h2(receiver.local_addr(), request).await;
    let status = reply.grpc();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{reply:?}");
    assert!(
        status.message().contains("message_read_timeout"),
        "{status:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_eq!(sink.len(), 0);
    assert_eq!(
        receiver
            .metrics()
            .snapshot()
            .traces
            .responses_with(GrpcCode::DeadlineExceeded),
        1
    );
    still_serves(receiver.local_addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_at_once_are_all_served_within_the_stream_limit() {
    const CONNECTIONS: usize = 2;
    const CALLS: usize = 200;
    const STREAMS: u32 = 8;
    let sink = TestSink::new();
    let receiver = start(
        GrpcReceiverConfig::builder().max_concurrent_streams(STREAMS),
        sink.clone(),
    )
    .await;
    let mut clients = Vec::new();
    let body = request(Signal::Logs, 3);
    for _ in 0..CONNECTIONS {
        let mut client = Client::connect(receiver.local_addr()).await;
        // One call first: once it is answered the client has the server's SETTINGS
        // (its stream limit) and queues calls beyond it. Before that, h2 may open more
        // streams than the limit and the server refuses them (REFUSED_STREAM).
        client
            .export(Signal::Logs, body.clone())
            .await
            .expect("warm-up call");
        clients.push(client);
    }
    sink.take();
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let mut client = clients[i % CONNECTIONS].clone();
            let body = body.clone();
            tokio::spawn(async move { client.export(Signal::Logs, body).await })
        })
        .collect();
    for call in calls {
        bounded("call", call).await.unwrap().expect("OK");
    }
    assert_eq!(sink.len(), CALLS);
    let in_flight = sink.max_in_flight.load(Ordering::SeqCst);
    assert!(
        in_flight <= CONNECTIONS * STREAMS as usize,
        "{in_flight} sink calls at once over {CONNECTIONS} connections of {STREAMS} streams"
    );
    let logs = receiver.metrics().snapshot().logs;
    assert_eq!(logs.accepted, (CALLS + CONNECTIONS) as u64);
    assert_eq!(logs.items_accepted, 3 * (CALLS + CONNECTIONS) as u64);
    assert_eq!(
        receiver.listener_metrics().snapshot().connections.accepted,
        CONNECTIONS as u64
    );
    still_serves(receiver.local_addr()).await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_and_counted() {
    let sink = TestSink::new();
    let receiver = start(
        GrpcReceiverConfig::builder()
            .max_connections(2)
            .connection_limit_policy(ConnectionLimitPolicy::Close),
        sink.clone(),
    )
    .await;
    let addr = receiver.local_addr();
    let mut first = Client::connect(addr).await;
    let mut second = Client::connect(addr).await;
    for client in [&mut first, &mut second] {
        client
            .export(Signal::Traces, request(Signal::Traces, 1))
            .await
            .unwrap();
    }

    let status = Client::over(
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy(),
    )
    .export(Signal::Traces, request(Signal::Traces, 1))
    .await
    .expect_err("a third connection is closed");
    // A transport failure, which exporters retry: nothing was accepted.
    assert!(export_error(&status).is_retryable(), "{status:?}");
    let listener = receiver.listener_metrics();
    assert!(listener.snapshot().connections.closed_at_limit >= 1);

    drop(first);
    receiver_support::eventually("a connection slot frees", || {
        listener.snapshot().connections.active == 1
    })
    .await;
    still_serves(addr).await;
    assert_eq!(sink.len(), 3);
}
