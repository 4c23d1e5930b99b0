//! The receiver against slow and greedy clients, and its shutdown, over real sockets.
//!
//! Socket timeouts run on real time (hyper's timers and the kernel cannot be paused), so
//! they are short here: 200-300 ms. Every wait is bounded (`support::STEP`); no test
//! sleeps to let something happen, except where the point is that nothing happens for
//! a while (a connection over the limit is not served while the limit is reached).

mod support;

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use otlp_transport_http::receiver::{
    ConnectionLimitPolicy, HttpReceiver, HttpReceiverConfig, Sinks,
};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const HEAD: &str = "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n";

#[tokio::test]
async fn slowloris_headers_are_cut_off() {
    let receiver = start(
        HttpReceiverConfig::builder().header_read_timeout(Duration::from_millis(200)),
        TestSink::new(),
    )
    .await;
    let addr = receiver.local_addr();

    // Half a request head, then nothing: hyper closes after the header timeout.
    let started = tokio::time::Instant::now();
    let mut stream = raw(addr, b"POST /v1/logs HTTP/1.1\r\nHost: x\r\n").await;
    let (answer, closed) = read_until_closed(&mut stream).await;
    assert!(closed, "the connection should be closed");
    assert!(!answer.contains("200"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(150));

    // A connection that says nothing at all (not even enough to tell HTTP/1 from
    // HTTP/2) is closed after the same timeout.
    let mut silent = raw(addr, b"").await;
    let (_, closed) = read_until_closed(&mut silent).await;
    assert!(closed, "a silent connection should be closed");

    let reply = send(addr, post_protobuf("/v1/logs", &logs(1))).await;
    assert_eq!(reply.status, 200);
    eventually("both slow connections counted as closed", || {
        receiver.metrics().snapshot().connections.active == 0
    })
    .await;
}

#[tokio::test]
async fn slow_body_gets_408_and_the_connection_closed() {
    let sink = TestSink::new();
    let receiver = start(
        HttpReceiverConfig::builder().body_read_timeout(Duration::from_millis(300)),
        sink.clone(),
    )
    .await;
    let addr = receiver.local_addr();

    // 10 of the 100 announced bytes, then a stall.
    let mut stream = raw(
        addr,
        format!("{HEAD}Content-Length: 100\r\n\r\n0123456789").as_bytes(),
    )
    .await;
    let (answer, closed) = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 300ms"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(closed);
    assert_eq!(sink.len(), 0);

    let reply = send(addr, post_protobuf("/v1/logs", &logs(1))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(receiver.metrics().snapshot().logs.responses_with(408), 1);
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let receiver = start(
        HttpReceiverConfig::builder().idle_timeout(Duration::from_millis(300)),
        TestSink::new(),
    )
    .await;
    let addr = receiver.local_addr();

    // h2c: one request, then silence; the receiver sends GOAWAY and closes.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = absolute(addr, "http", post_protobuf("/v1/logs", &logs(1)));
    let reply = collect(sender.send_request(request).await.unwrap()).await;
    assert_eq!(reply.status, 200);
    let ended = bounded("the idle h2 connection to end", connection).await;
    assert!(ended.unwrap().is_ok(), "a graceful close, not an error");
    assert_eq!(receiver.metrics().snapshot().connections.idle_closed, 1);
}

#[tokio::test]
async fn connections_over_the_limit_wait_in_the_backlog() {
    let receiver = start(
        HttpReceiverConfig::builder()
            .max_connections(1)
            .connection_limit_policy(ConnectionLimitPolicy::Wait),
        TestSink::new(),
    )
    .await;
    let addr = receiver.local_addr();

    // Connection A holds the only slot (keep-alive, one request served).
    let request = format!("{HEAD}Content-Length: 0\r\n\r\n");
    let mut a = raw(addr, request.as_bytes()).await;
    let answer = read_response(&mut a).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Connection B: the kernel completes it, the receiver does not serve it yet.
    let mut b = raw(addr, request.as_bytes()).await;
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), b.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "B must not be served while A holds the slot"
    );

    // A closes: B is accepted and served.
    drop(a);
    let answer = read_response(&mut b).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(receiver.metrics().snapshot().connections.accepted, 2);
}

#[tokio::test]
async fn connections_over_the_limit_are_closed() {
    let receiver = start(
        HttpReceiverConfig::builder()
            .max_connections(1)
            .connection_limit_policy(ConnectionLimitPolicy::Close),
        TestSink::new(),
    )
    .await;
    let addr = receiver.local_addr();
    let request = format!("{HEAD}Content-Length: 0\r\n\r\n");
    let mut a = raw(addr, request.as_bytes()).await;
    assert!(read_response(&mut a).await.starts_with("HTTP/1.1 200"));

    let mut b = raw(addr, request.as_bytes()).await;
    let (answer, closed) = read_until_closed(&mut b).await;
    assert!(
        closed && answer.is_empty(),
        "B is closed unanswered: {answer:?}"
    );
    assert_eq!(receiver.metrics().snapshot().connections.closed_at_limit, 1);

    drop(a);
    eventually("A's slot to be free", || {
        receiver.metrics().snapshot().connections.active == 0
    })
    .await;
    let reply = send(addr, post_protobuf("/v1/logs", &logs(1))).await;
    assert_eq!(reply.status, 200);
}

/// Read one HTTP/1.1 response with a `Content-Length` body from a raw connection.
async fn read_response(stream: &mut TcpStream) -> String {
    bounded("a response", async {
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before a whole response");
            received.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if received.len() >= end + 4 + length {
                    return text;
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let gate = Arc::new(Notify::new());
    let sink = TestSink::gated(gate.clone());
    let receiver = start(HttpReceiverConfig::builder(), sink.clone()).await;
    let addr = receiver.local_addr();

    // A request that is in the sink when the shutdown begins.
    let in_flight = tokio::spawn(send(addr, post_protobuf("/v1/traces", &traces(3))));
    sink.arrived(1).await;
    let handle = receiver.shutdown_handle();
    handle.shutdown(Duration::from_secs(10));
    let join = tokio::spawn(receiver.join());

    // New connections are refused once the listener is closed.
    eventually("the listener to close", || {
        std::net::TcpStream::connect(addr).is_err()
    })
    .await;

    // The in-flight request still completes.
    gate.notify_one();
    let reply = bounded("the in-flight request", in_flight).await.unwrap();
    assert_eq!(reply.status, 200, "{reply:?}");
    let report = bounded("the shutdown", join).await.unwrap().unwrap();
    assert_eq!(report.connections_aborted, 0);
    assert_eq!(report.connections_closed, 1);
    assert_eq!(sink.len(), 1);
}

#[tokio::test]
async fn shutdown_cuts_off_what_outlives_the_grace_period() {
    let gate = Arc::new(Notify::new());
    let sink = TestSink::gated(gate);
    let receiver = start(HttpReceiverConfig::builder(), sink.clone()).await;
    let addr = receiver.local_addr();

    // An h2 connection with a request stuck in the sink, and an idle HTTP/1.1 one.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = absolute(addr, "http", post_protobuf("/v1/traces", &traces(1)));
    let stuck = tokio::spawn(async move { sender.send_request(request).await });
    sink.arrived(1).await;
    // (A GET: answered without the gated sink.)
    let mut idle = raw(addr, b"GET /v1/logs HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 405"));

    let report = bounded(
        "the shutdown",
        receiver.shutdown(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    assert_eq!(report.connections_aborted, 1, "{report:?}");
    assert_eq!(report.connections_closed, 1, "{report:?}");
    let outcome = bounded("the stuck request", stuck).await.unwrap();
    assert!(outcome.is_err(), "cut off: {outcome:?}");
    // The request's sink call was dropped with it, not left running.
    eventually("the stuck sink call to be dropped", || {
        sink.cancelled.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    // The idle HTTP/1.1 connection was closed gracefully.
    let (_, closed) = read_until_closed(&mut idle).await;
    assert!(closed);
}

#[tokio::test]
async fn shutdown_by_signal() {
    let token = CancellationToken::new();
    let config = HttpReceiverConfig::builder()
        .addr("127.0.0.1:0")
        .shutdown_grace(Duration::from_secs(1))
        .build()
        .unwrap();
    let receiver = HttpReceiver::bind_with_shutdown(
        config,
        Sinks::all(TestSink::new()),
        token.clone().cancelled_owned(),
    )
    .await
    .unwrap();
    let addr = receiver.local_addr();
    let mut keep_alive = raw(addr, format!("{HEAD}Content-Length: 0\r\n\r\n").as_bytes()).await;
    assert!(
        read_response(&mut keep_alive)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let join = tokio::spawn(receiver.join());
    token.cancel();
    let report = bounded("the shutdown", join).await.unwrap().unwrap();
    assert_eq!(report.connections_aborted, 0);
    assert!(TcpStream::connect(addr).await.is_err());
    // A connection written to after the shutdown is simply closed.
    let _ = keep_alive.write_all(b"x").await;
    let (_, closed) = read_until_closed(&mut keep_alive).await;
    assert!(closed);
}
