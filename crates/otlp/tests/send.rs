//! `otlp send` end to end: the real binary against real OTLP/HTTP and OTLP/gRPC receivers
//! on 127.0.0.1.

use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use otlp_core::sink::{Accepted, BoxFuture, Sink};
use otlp_core::{Payload, Refusal, Signal};

/// Counts items per signal.
#[derive(Default)]
struct Counting {
    items: [AtomicU64; 3],
}

impl Sink for Counting {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        self.items[payload.signal().index()].fetch_add(payload.items(), Ordering::Relaxed);
        Box::pin(async { Ok(Accepted::full()) })
    }
}

async fn otlp(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_otlp"))
            .args(&args)
            .output()
            .expect("run the otlp binary")
    })
    .await
    .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_exactly_count_items_over_http_and_grpc() {
    use otlp_transport_grpc::receiver::{GrpcReceiver, GrpcReceiverConfig};
    use otlp_transport_http::receiver::{HttpReceiver, HttpReceiverConfig, Sinks};

    let sink = Arc::new(Counting::default());
    let http = HttpReceiver::bind(
        HttpReceiverConfig::builder()
            .addr("127.0.0.1:0")
            .build()
            .unwrap(),
        Sinks::all(sink.clone()),
    )
    .await
    .unwrap();
    let grpc = GrpcReceiver::bind(
        GrpcReceiverConfig::builder()
            .addr("127.0.0.1:0")
            .build()
            .unwrap(),
        otlp_transport_grpc::receiver::Sinks::all(sink.clone()),
    )
    .await
    .unwrap();

    let http_url = format!("http://{}", http.local_addr());
    let out = otlp(&[
        "send",
        "--endpoint",
        &http_url,
        "--signal",
        "traces",
        "--count",
        "1234",
        "--batch",
        "100",
        "--rate",
        "20000",
        "--concurrency",
        "2",
        "--header",
        "x-test=1",
        "--timeout",
        "5s",
    ])
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("sent 1234 spans in 13 requests"),
        "{stdout}"
    );
    assert!(stdout.contains("accepted: 1234 spans"), "{stdout}");
    assert!(stdout.contains("OTLP/HTTP protobuf"), "{stdout}");
    assert!(stdout.contains("p50") && stdout.contains("p99"), "{stdout}");
    assert_eq!(
        sink.items[Signal::Traces.index()].load(Ordering::Relaxed),
        1234
    );

    let grpc_url = format!("grpc://{}", grpc.local_addr());
    let out = otlp(&[
        "send",
        "--endpoint",
        &grpc_url,
        "--signal",
        "metrics",
        "--count",
        "777",
        "--batch",
        "50",
        "--compression",
        "gzip",
        "--timeout",
        "5s",
    ])
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("accepted: 777 data points"), "{stdout}");
    assert!(stdout.contains("OTLP/gRPC"), "{stdout}");
    assert_eq!(
        sink.items[Signal::Metrics.index()].load(Ordering::Relaxed),
        777
    );

    // An http:// URL spoken to in gRPC when asked (the gRPC port serves gRPC only).
    let plain = format!("http://{}", grpc.local_addr());
    let out = otlp(&[
        "send",
        "--endpoint",
        &plain,
        "--protocol",
        "grpc",
        "--signal",
        "logs",
        "--count",
        "10",
        "--timeout",
        "5s",
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(sink.items[Signal::Logs.index()].load(Ordering::Relaxed), 10);

    http.shutdown(Duration::from_secs(5)).await.unwrap();
    grpc.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn an_endpoint_that_takes_nothing_exits_non_zero_with_the_reason() {
    // Bind then drop: a port that refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = otlp(&[
        "send",
        "--endpoint",
        &url,
        "--signal",
        "logs",
        "--count",
        "20",
        "--batch",
        "10",
        "--timeout",
        "2s",
    ])
    .await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("nothing was accepted"), "{stderr}");
    assert!(stderr.contains("transport error"), "{stderr}");
    // The summary is printed all the same.
    assert!(
        text(&out.stdout).contains("refused:  20 log records"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn bad_arguments_are_clear_errors() {
    let out = otlp(&["send", "--endpoint", "localhost:4317", "--signal", "traces"]).await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("invalid endpoint \"localhost:4317\""),
        "{stderr}"
    );

    let out = otlp(&[
        "send",
        "--endpoint",
        "http://127.0.0.1:4318",
        "--signal",
        "bogus",
    ])
    .await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("bogus"), "{}", text(&out.stderr));

    let out = otlp(&[
        "send",
        "--endpoint",
        "http://127.0.0.1:4318",
        "--signal",
        "traces",
        "--header",
        "novalue",
    ])
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("NAME=VALUE"),
        "{}",
        text(&out.stderr)
    );
}
