//! A counting OTLP upstream for the gateway benchmark (`cargo xtask bench gateway`): an
//! OTLP/gRPC and an OTLP/HTTP receiver on 127.0.0.1 that walk the protobuf framing only
//! (`Validation::Framing`), count requests, items and bytes, and answer at once.
//!
//! ```text
//! cargo run --release -p otlp-gateway --example bench_upstream -- [--seconds N] [--workers N]
//! ```
//!
//! - Prints `listening grpc=127.0.0.1:PORT http=127.0.0.1:PORT` once both listen (ports
//!   chosen by the system).
//! - Each line read on standard input prints one line
//!   `stats requests=R items=I bytes=B` on standard output (what was accepted so far), so
//!   the benchmark reads counters exactly when it wants without signals.
//! - Stops at the end of standard input, on SIGINT / SIGTERM, or after `--seconds`
//!   (default 900, so it never runs unbounded), printing `total ...` first.
//!
//! Runs on a multi-thread tokio runtime of `--workers` threads (default 1).

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use otlp_core::{Accepted, Payload, Refusal, Sink};
use otlp_transport_grpc::receiver::{GrpcReceiver, GrpcReceiverConfig, Sinks as GrpcSinks};
use otlp_transport_http::receiver::{HttpReceiver, HttpReceiverConfig, Sinks, Validation};
use tokio::signal::unix::{SignalKind, signal};

/// Counts what it accepts; answers at once.
#[derive(Debug, Default)]
struct Counting {
    requests: AtomicU64,
    items: AtomicU64,
    bytes: AtomicU64,
}

impl Counting {
    fn line(&self) -> String {
        format!(
            "requests={} items={} bytes={}",
            self.requests.load(Ordering::Relaxed),
            self.items.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed)
        )
    }
}

type Answer<'a> = Pin<Box<dyn Future<Output = Result<Accepted, Refusal>> + Send + 'a>>;

impl Sink for Counting {
    fn accept(&self, payload: Payload) -> Answer<'_> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(payload.items(), Ordering::Relaxed);
        self.bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        Box::pin(async { Ok(Accepted::full()) })
    }
}

#[derive(Debug)]
struct Args {
    seconds: u64,
    workers: usize,
}

const USAGE: &str = "usage: bench_upstream [--seconds N] [--workers N]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 900,
        workers: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut number = || -> Result<u64, String> {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .parse::<u64>()
                .map_err(|e| format!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--seconds" => args.seconds = number()?.max(1),
            "--workers" => {
                args.workers = usize::try_from(number()?.clamp(1, 64)).unwrap_or(1);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

async fn serve(args: Args) -> Result<(), Box<dyn Error>> {
    let sink = Arc::new(Counting::default());
    let grpc = GrpcReceiver::bind(
        GrpcReceiverConfig::builder()
            .addr("127.0.0.1:0")
            .validation(Validation::Framing)
            .max_message_bytes(64 << 20)
            .build()?,
        GrpcSinks::all(sink.clone()),
    )
    .await?;
    let http = HttpReceiver::bind(
        HttpReceiverConfig::builder()
            .addr("127.0.0.1:0")
            .validation(Validation::Framing)
            .max_body_bytes(64 << 20)
            .build()?,
        Sinks::all(sink.clone()),
    )
    .await?;
    println!(
        "listening grpc={} http={}",
        grpc.local_addr(),
        http.local_addr()
    );

    let deadline = tokio::time::sleep(Duration::from_secs(args.seconds));
    tokio::pin!(deadline);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    // Standard input on a plain thread (tokio's `io-std` is not among our features): one
    // message a line; the channel closes at the end of input.
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<()>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            if line.is_err() || tx.send(()).is_err() {
                break;
            }
        }
    });
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(()) => println!("stats {}", sink.line()),
                None => break,
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
            () = &mut deadline => break,
        }
    }
    println!("total {}", sink.line());
    let _ = grpc.shutdown(Duration::from_secs(1)).await;
    let _ = http.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()?
        .block_on(serve(args))
}
