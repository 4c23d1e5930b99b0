//! A gRPC server to point an HTTP/2 load generator at (`h2load`): our OTLP/gRPC receiver,
//! or a bare tonic server doing the same work as a ceiling reference, on 127.0.0.1 with a
//! sink that only counts what it accepts; and a client that checks the answers are
//! `grpc-status: 0`, which `h2load` does not look at.
//!
//! ```text
//! cargo run --release -p otlp-transport-grpc --example grpc_receiver_bench -- \
//!     [--server ours|tonic] [--port N] [--workers N] [--seconds N] \
//!     [--validation full|framing] [--out DIR]
//! cargo run --release -p otlp-transport-grpc --example grpc_receiver_bench -- \
//!     --check 127.0.0.1:PORT [--file FILE] [--count N]
//! ```
//!
//! Serving (the default):
//!
//! - writes `DIR/traces-10.grpc` and `DIR/traces-1000.grpc` (default DIR
//!   `target/grpc-receiver-bench`, relative to the working directory): request bodies of
//!   a unary `TraceService/Export` call, one uncompressed gRPC message each (flag 0,
//!   4-byte big-endian length, an `ExportTraceServiceRequest` of 10 or 1000 spans with
//!   10 string attributes each, the project's reference shape);
//! - binds `127.0.0.1:<port>` (default 0: any free port) and prints
//!   `listening 127.0.0.1:PORT`;
//! - `--server ours` (default): `GrpcReceiver` with its default configuration apart from
//!   the address and `--validation` (`full`, the default, decodes every message with
//!   prost; `framing` walks its framing only). `--server tonic`:
//!   `tonic::transport::Server` with the pass-through codec, at most 100 streams per
//!   connection like ours, doing the same work per call (the same validation, a
//!   `Payload` to the same sink), without our receiver's checks, limits and counters;
//! - serves on a multi-thread tokio runtime of `--workers` threads (default 1); prints
//!   a `stats` line (calls answered OK, calls in all, items) on SIGUSR1; stops on SIGINT
//!   or after `--seconds` (default 600, so it never runs unbounded) and prints the totals.
//!
//! Checking (`--check ADDR`): sends the message of `--file` (default
//! `DIR/traces-10.grpc`) `--count` times (default 5) with a tonic client, each call
//! bounded by 10 s, and exits non-zero unless every answer was OK with no partial success.

#[path = "../benches/support/mod.rs"]
mod support;

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::uri::PathAndQuery;
use otlp_core::codec::protobuf;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceResponse;
use otlp_core::{GrpcCode, Signal};
use otlp_transport_grpc::codec::BytesCodec;
use otlp_transport_grpc::receiver::{GrpcReceiver, GrpcReceiverConfig, Sinks, Validation};
use support::{Counting, Work};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Ours,
    Tonic,
}

#[derive(Debug)]
struct Args {
    server: Server,
    port: u16,
    workers: usize,
    seconds: u64,
    validation: Validation,
    out: PathBuf,
    check: Option<SocketAddr>,
    file: Option<PathBuf>,
    count: u32,
}

const USAGE: &str = "usage: grpc_receiver_bench [--server ours|tonic] [--port N] [--workers N] \
                     [--seconds N] [--validation full|framing] [--out DIR]\n       \
                     grpc_receiver_bench --check ADDR [--file FILE] [--count N] [--out DIR]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        server: Server::Ours,
        port: 0,
        workers: 1,
        seconds: 600,
        validation: Validation::Full,
        out: PathBuf::from("target/grpc-receiver-bench"),
        check: None,
        file: None,
        count: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => {
                args.server = match value()?.as_str() {
                    "ours" => Server::Ours,
                    "tonic" => Server::Tonic,
                    other => return Err(format!("--server: ours or tonic, not {other}")),
                };
            }
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--workers" => {
                args.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?;
                if args.workers == 0 {
                    return Err("--workers must be at least 1".into());
                }
            }
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?;
            }
            "--validation" => {
                args.validation = match value()?.as_str() {
                    "full" => Validation::Full,
                    "framing" => Validation::Framing,
                    other => return Err(format!("--validation: full or framing, not {other}")),
                };
            }
            "--out" => args.out = PathBuf::from(value()?),
            "--check" => {
                let addr: SocketAddr = value()?.parse().map_err(|e| format!("--check: {e}"))?;
                if !addr.ip().is_loopback() {
                    return Err("--check: a 127.0.0.1 address (this is a local benchmark)".into());
                }
                args.check = Some(addr);
            }
            "--file" => args.file = Some(PathBuf::from(value()?)),
            "--count" => {
                args.count = value()?.parse().map_err(|e| format!("--count: {e}"))?;
                if args.count == 0 || args.count > 10_000 {
                    return Err("--count: 1 to 10000".into());
                }
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn write_bodies(out: &PathBuf) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    for spans in [10, 1000] {
        let message = protobuf::encode(&support::trace_request(spans, 10));
        let frame = support::grpc_frame(&message);
        let path = out.join(format!("traces-{spans}.grpc"));
        std::fs::write(&path, &frame)?;
        println!(
            "wrote {} ({} bytes: 5-byte gRPC prefix + {} bytes of protobuf, {spans} spans)",
            path.display(),
            frame.len(),
            message.len()
        );
    }
    Ok(())
}

/// The counters the `stats` line and the totals print.
struct Counters {
    sink: Arc<Counting>,
    receiver: Option<Arc<otlp_transport_grpc::receiver::GrpcReceiverMetrics>>,
}

impl Counters {
    /// `(calls answered OK, calls answered, items accepted)`. The bare tonic server's
    /// only counter is the sink's, so its OK calls and calls are the calls the sink took.
    fn read(&self) -> (u64, u64, u64) {
        let items = self.sink.items.load(Ordering::Relaxed);
        match &self.receiver {
            Some(metrics) => {
                let snapshot = metrics.snapshot();
                (
                    snapshot.traces.responses_with(GrpcCode::Ok),
                    snapshot.requests(),
                    items,
                )
            }
            None => {
                let calls = self.sink.payloads.load(Ordering::Relaxed);
                (calls, calls, items)
            }
        }
    }
}

async fn serve(args: Args) -> Result<(), Box<dyn Error>> {
    let sink = Arc::new(Counting::default());
    let addr = format!("127.0.0.1:{}", args.port);
    let (local, receiver) = match args.server {
        Server::Ours => {
            let config = GrpcReceiverConfig::builder()
                .addr(addr)
                .validation(args.validation)
                .build()?;
            let receiver = GrpcReceiver::bind(config, Sinks::all(sink.clone())).await?;
            (receiver.local_addr(), Some(receiver))
        }
        Server::Tonic => {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            let local = listener.local_addr()?;
            let work = Work::Sink {
                sink: sink.clone(),
                validation: args.validation,
            };
            tokio::spawn(support::serve_tonic(listener, work, 100));
            (local, None)
        }
    };
    let counters = Counters {
        sink: sink.clone(),
        receiver: receiver.as_ref().map(|r| r.metrics()),
    };
    println!(
        "listening {local} (server {:?}, workers {}, validation {:?}, at most {} s)",
        args.server, args.workers, args.validation, args.seconds
    );
    let started = tokio::time::Instant::now();
    let deadline = tokio::time::sleep(Duration::from_secs(args.seconds));
    tokio::pin!(deadline);
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = usr1.recv() => {
                let (ok, calls, items) = counters.read();
                println!("stats ok={ok} calls={calls} items={items}");
            }
            _ = int.recv() => {
                println!("SIGINT after {:.1} s", started.elapsed().as_secs_f64());
                break;
            }
            () = &mut deadline => {
                println!("--seconds {} elapsed", args.seconds);
                break;
            }
        }
    }
    let (ok, calls, items) = counters.read();
    println!(
        "received: {calls} calls, {ok} answered OK, {items} spans, {} message bytes",
        sink.bytes.load(Ordering::Relaxed),
    );
    if let Some(receiver) = receiver {
        let snapshot = receiver.metrics().snapshot();
        println!("receiver traces: {:?}", snapshot.traces);
        println!(
            "receiver connections: {:?}",
            receiver.listener_metrics().snapshot().connections
        );
        let report = receiver.shutdown(Duration::from_secs(2)).await?;
        println!("shutdown: {report:?}");
    }
    Ok(())
}

/// Sends the file's message `count` times; every answer must be OK with an empty
/// (or partial-success-free) `ExportTraceServiceResponse`.
async fn check(addr: SocketAddr, file: PathBuf, count: u32) -> Result<(), Box<dyn Error>> {
    let frame = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut prefix = frame
        .get(..5)
        .ok_or("the file is shorter than a gRPC prefix")?;
    let (flag, len) = (prefix.get_u8(), prefix.get_u32() as usize);
    if flag != 0 || frame.len() != 5 + len {
        return Err(format!(
            "{}: not one uncompressed gRPC message (flag {flag}, length {len}, file {} bytes)",
            file.display(),
            frame.len()
        )
        .into());
    }
    let message = Bytes::from(frame).slice(5..);
    let channel = tokio::time::timeout(
        Duration::from_secs(10),
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect(),
    )
    .await
    .map_err(|_| format!("no connection to {addr} within 10 s"))??;
    let mut ok = 0;
    for n in 1..=count {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        let call = async {
            grpc.ready().await.map_err(|e| e.to_string())?;
            grpc.unary(
                tonic::Request::new(message.clone()),
                PathAndQuery::from_static(Signal::Traces.grpc_path()),
                BytesCodec,
            )
            .await
            .map_err(|status| {
                format!(
                    "grpc-status {} ({:?}): {}",
                    status.code() as i32,
                    status.code(),
                    status.message()
                )
            })
        };
        let response = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .map_err(|_| format!("call {n}: no answer within 10 s"))?
            .map_err(|e| format!("call {n}: {e}"))?;
        let decoded: ExportTraceServiceResponse =
            protobuf::decode(response.get_ref()).map_err(|e| {
                format!("call {n}: the OK response is no ExportTraceServiceResponse: {e}")
            })?;
        if let Some(partial) = decoded
            .partial_success
            .filter(|p| p.rejected_spans != 0 || !p.error_message.is_empty())
        {
            return Err(format!("call {n}: partial success {partial:?}").into());
        }
        ok += 1;
    }
    println!(
        "check: {ok}/{count} calls of {} ({} bytes) to {addr} answered grpc-status 0 (OK), no partial success",
        file.display(),
        message.len()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    if let Some(addr) = args.check {
        let file = args
            .file
            .clone()
            .unwrap_or_else(|| args.out.join("traces-10.grpc"));
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(check(addr, file, args.count));
    }
    write_bodies(&args.out)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()?
        .block_on(serve(args))
}
