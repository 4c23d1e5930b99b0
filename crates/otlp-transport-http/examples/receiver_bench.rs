//! A receiver to point an HTTP load generator at (`h2load`, `wrk`): the OTLP/HTTP
//! receiver on 127.0.0.1 with a sink that only counts what it accepts, and request
//! bodies to send written next to it.
//!
//! ```text
//! cargo run --release -p otlp-transport-http --example receiver_bench -- \
//!     [--port N] [--workers N] [--seconds N] [--validation full|framing] [--out DIR]
//! ```
//!
//! - binds `127.0.0.1:<port>` (default 0: any free port) and prints
//!   `listening 127.0.0.1:PORT`;
//! - writes `DIR/traces-100.pb` and `DIR/traces-100.json` (default DIR
//!   `target/receiver-bench`, relative to the working directory): one trace request of
//!   100 spans with 10 string attributes each, about 38 KB in protobuf, the same shape
//!   as the project's reference request (`otlp-benches`' `trace_request(1, 100, 10)`);
//! - serves on a multi-thread tokio runtime of `--workers` threads (default 1) until
//!   SIGINT (ctrl-c) or `--seconds` (default 600, so it never runs unbounded), then
//!   prints the requests, items and bytes accepted and the receiver's own counters.
//!
//! The receiver is the default configuration apart from the address and validation:
//! `--validation full` (the default) decodes every protobuf body with prost,
//! `--validation framing` only walks its framing. OTLP/JSON is always decoded.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use otlp_core::Encoding;
use otlp_core::codec::encode;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use otlp_core::sink::{Accepted, BoxFuture, Sink};
use otlp_core::{Payload, Refusal};
use otlp_transport_http::receiver::{HttpReceiver, HttpReceiverConfig, Sinks, Validation};

/// Accepts everything, counting payloads, items and body bytes.
#[derive(Debug, Default)]
struct Counting {
    payloads: AtomicU64,
    items: AtomicU64,
    bytes: AtomicU64,
}

impl Sink for Counting {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        self.payloads.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(payload.items(), Ordering::Relaxed);
        self.bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        Box::pin(async { Ok(Accepted::full()) })
    }
}

#[derive(Debug)]
struct Args {
    port: u16,
    workers: usize,
    seconds: u64,
    validation: Validation,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        workers: 1,
        seconds: 600,
        validation: Validation::Full,
        out: PathBuf::from("target/receiver-bench"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
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
            "-h" | "--help" => {
                return Err(
                    "usage: receiver_bench [--port N] [--workers N] [--seconds N] \
                            [--validation full|framing] [--out DIR]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn string_kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// One resource, one scope, `spans` spans of `attributes` string attributes each: the
/// shape of `otlp_benches::trace_request(1, spans, attributes)` (this crate is
/// publishable and cannot depend on the benches crate).
fn trace_request(spans: u64, attributes: usize) -> ExportTraceServiceRequest {
    let spans = (1..=spans)
        .map(|n| {
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&(n / 8 + 1).to_be_bytes());
            trace_id[8..].copy_from_slice(&0x5a5a_5a5a_0000_0000u64.to_be_bytes());
            let start = 1_764_000_000_000_000_000 + n * 1_000_000;
            Span {
                trace_id: trace_id.to_vec(),
                span_id: (n + 1).to_be_bytes().to_vec(),
                parent_span_id: if n.is_multiple_of(8) {
                    Vec::new()
                } else {
                    n.to_be_bytes().to_vec()
                },
                name: format!("GET /api/v1/items/{}", n % 100),
                kind: span::SpanKind::Server as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 250_000 + n % 1000,
                attributes: (0..attributes)
                    .map(|a| {
                        string_kv(
                            &format!("app.attr.{a}"),
                            format!("val-{a}-{:06}", n % 1_000_000),
                        )
                    })
                    .collect(),
                status: Some(Status::default()),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string_kv("service.name", "service-0".into()),
                    string_kv("host.name", "host-0.example.internal".into()),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bench.instrumentation".into(),
                    version: "1.0.0".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn write_bodies(out: &PathBuf) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let request = trace_request(100, 10);
    for (encoding, name) in [
        (Encoding::Protobuf, "traces-100.pb"),
        (Encoding::Json, "traces-100.json"),
    ] {
        let body = encode(encoding, &request);
        let path = out.join(name);
        std::fs::write(&path, &body)?;
        println!("wrote {} ({} bytes, 100 spans)", path.display(), body.len());
    }
    Ok(())
}

async fn serve(args: Args) -> Result<(), Box<dyn Error>> {
    let sink = Arc::new(Counting::default());
    let config = HttpReceiverConfig::builder()
        .addr(format!("127.0.0.1:{}", args.port))
        .validation(args.validation)
        .build()?;
    let receiver = HttpReceiver::bind(config, Sinks::all(sink.clone())).await?;
    println!(
        "listening {} (workers {}, validation {:?}, at most {} s)",
        receiver.local_addr(),
        args.workers,
        args.validation,
        args.seconds
    );
    let started = tokio::time::Instant::now();
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            result?;
            println!("SIGINT after {:.1} s", started.elapsed().as_secs_f64());
        }
        () = tokio::time::sleep(Duration::from_secs(args.seconds)) => {
            println!("--seconds {} elapsed", args.seconds);
        }
    }
    let metrics = receiver.metrics();
    let report = receiver.shutdown(Duration::from_secs(2)).await?;
    println!(
        "received: {} requests, {} items, {} bytes (after decompression)",
        sink.payloads.load(Ordering::Relaxed),
        sink.items.load(Ordering::Relaxed),
        sink.bytes.load(Ordering::Relaxed),
    );
    let snapshot = metrics.snapshot();
    println!("receiver traces: {:?}", snapshot.traces);
    println!("receiver connections: {:?}", snapshot.connections);
    println!("shutdown: {report:?}");
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    write_bodies(&args.out)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()?
        .block_on(serve(args))
}
