//! Our OTLP/HTTP exporter against `opentelemetry-otlp`'s (http-proto, async reqwest
//! client), both driven through the SDK's `SpanExporter` trait with the same batches of
//! 512 `SpanData` of realistic shape, to the same minimal HTTP server in this process
//! (hyper on 127.0.0.1:0, its own thread, 200 with an empty body after reading the body).
//!
//! ```text
//! cargo bench -p otlp-transport-http --bench exporter
//! ```
//!
//! Two parts, in one run:
//!
//! 1. criterion, wall time per export of 512 spans (batch cloning excluded with
//!    `iter_batched`), reported as spans per second;
//! 2. CPU: interleaved rounds (every exporter in turn, 40 batches a round, clones made
//!    before the round) until each has run 4 s; process CPU time (`utime + stime` of
//!    `/proc/self/stat`, 100 ticks per second) around each round only, and the server
//!    thread's own CPU (`/proc/self/task/TID/stat`) to tell exporter from server cost.
//!
//! Rows: `opentelemetry-otlp`; ours with the request on the caller's runtime
//! (`ExportRuntime::Handle`, the same arrangement as `opentelemetry-otlp`); ours with
//! the default background export thread.

use std::borrow::Cow;
use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry::trace::{
    Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use otlp_transport_http::exporter::HttpExporter;
use otlp_transport_http::sdk::{ExportRuntime, TraceExporter};
use tokio::runtime::Runtime;

const BATCH: usize = 512;

/// The in-process server: its address and the path of its thread's `stat` file.
fn start_server() -> (SocketAddr, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bench-server".into())
        .spawn(move || {
            let stat = std::fs::read_link("/proc/thread-self")
                .map(|p| format!("/proc/{}/stat", p.display()))
                .unwrap_or_default();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send((listener.local_addr().expect("addr"), stat))
                    .expect("report address");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let service = service_fn(
                            |request: http::Request<hyper::body::Incoming>| async move {
                                let _ = request.into_body().collect().await;
                                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new())))
                            },
                        );
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        })
        .expect("server thread");
    rx.recv().expect("server address")
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "checkout"),
            KeyValue::new("service.version", "1.4.2"),
            KeyValue::new("deployment.environment.name", "production"),
            KeyValue::new("host.name", "checkout-7f9c6d5b8-x2k4p"),
        ])
        .build()
}

/// 512 spans: a server span and client children, ten attributes each (static and owned
/// strings, integers), an event on every fourth, an error status on every tenth.
fn batch() -> Vec<SpanData> {
    let scope = InstrumentationScope::builder("checkout.http")
        .with_version("0.9.1")
        .build();
    let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    (0..BATCH as u64)
        .map(|i| {
            let start: SystemTime = t0 + Duration::from_micros(i * 250);
            let mut events = SpanEvents::default();
            if i % 4 == 0 {
                events.events.push(Event::new(
                    "cache.miss",
                    start + Duration::from_micros(30),
                    vec![KeyValue::new("cache.key", format!("cart:{}", 9000 + i))],
                    0,
                ));
            }
            SpanData {
                span_context: SpanContext::new(
                    TraceId::from(
                        0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128 + u128::from(i / 8),
                    ),
                    SpanId::from(0x00f0_67aa_0ba9_02b7 + i),
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::NONE,
                ),
                parent_span_id: if i % 8 == 0 {
                    SpanId::INVALID
                } else {
                    SpanId::from(0x00f0_67aa_0ba9_02b7 + i - i % 8)
                },
                parent_span_is_remote: false,
                span_kind: if i % 8 == 0 {
                    SpanKind::Server
                } else {
                    SpanKind::Client
                },
                name: if i % 8 == 0 {
                    Cow::Borrowed("POST /api/cart/{id}/checkout")
                } else {
                    Cow::Owned(format!("SELECT cart_items WHERE cart_id = ${}", i % 8))
                },
                start_time: start,
                end_time: start + Duration::from_micros(180 + i % 50),
                attributes: vec![
                    KeyValue::new("http.request.method", "POST"),
                    KeyValue::new("url.path", format!("/api/cart/{}/checkout", 9000 + i / 8)),
                    KeyValue::new("http.response.status_code", 200_i64),
                    KeyValue::new("server.address", "checkout.internal"),
                    KeyValue::new("server.port", 8443_i64),
                    KeyValue::new("network.protocol.version", "1.1"),
                    KeyValue::new(
                        "user_agent.original",
                        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
                    ),
                    KeyValue::new("db.system.name", "postgresql"),
                    KeyValue::new("db.namespace", "carts"),
                    KeyValue::new("enduser.id", format!("user-{}", 100_000 + i)),
                ],
                dropped_attributes_count: 0,
                events,
                links: SpanLinks::default(),
                status: if i % 10 == 9 {
                    Status::error("deadline exceeded")
                } else {
                    Status::Unset
                },
                instrumentation_scope: scope.clone(),
            }
        })
        .collect()
}

/// An exporter under test.
enum Subject {
    Otlp(opentelemetry_otlp::SpanExporter),
    Ours(TraceExporter),
}

impl Subject {
    fn export(&self, runtime: &Runtime, batch: Vec<SpanData>) {
        let result = match self {
            Subject::Otlp(e) => runtime.block_on(e.export(batch)),
            Subject::Ours(e) => runtime.block_on(e.export(batch)),
        };
        result.expect("export");
    }
}

fn subjects(addr: SocketAddr, runtime: &Runtime) -> Vec<(&'static str, Subject)> {
    let url = format!("http://{addr}");
    let mut otlp = runtime.block_on(async {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(format!("{url}/v1/traces"))
            .build()
            .expect("opentelemetry-otlp exporter")
    });
    otlp.set_resource(&resource());
    let ours = |runtime: ExportRuntime| {
        let exporter = HttpExporter::builder()
            .no_env()
            .endpoint(&url)
            .build()
            .expect("our exporter");
        let mut e = TraceExporter::new(exporter).with_runtime(runtime);
        e.set_resource(&resource());
        e
    };
    vec![
        ("opentelemetry-otlp", Subject::Otlp(otlp)),
        (
            "ours, caller's runtime",
            Subject::Ours(ours(ExportRuntime::Handle(runtime.handle().clone()))),
        ),
        (
            "ours, background thread",
            Subject::Ours(ours(ExportRuntime::Background)),
        ),
    ]
}

/// `utime + stime` in clock ticks from a `/proc/.../stat` file.
fn cpu_ticks(path: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

/// Linux reports CPU time in USER_HZ ticks, 100 per second on every mainstream kernel.
const TICK: Duration = Duration::from_millis(10);

#[derive(Default, Clone)]
struct Totals {
    spans: u64,
    wall: Duration,
    process_ticks: u64,
    server_ticks: u64,
    rounds: Vec<f64>,
}

fn cpu_report(addr: SocketAddr, server_stat: &str, quick: bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let subjects = subjects(addr, &runtime);
    let template = batch();
    let per_round = if quick { 2 } else { 40 };
    let target = if quick {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(4)
    };
    // Warm up connections and allocators.
    for (_, subject) in &subjects {
        for _ in 0..3 {
            subject.export(&runtime, template.clone());
        }
    }
    let mut totals = vec![Totals::default(); subjects.len()];
    while totals.iter().any(|t| t.wall < target) {
        for (i, (_, subject)) in subjects.iter().enumerate() {
            let batches: Vec<Vec<SpanData>> = (0..per_round).map(|_| template.clone()).collect();
            let (p0, s0) = (cpu_ticks("/proc/self/stat"), cpu_ticks(server_stat));
            let started = tokio::time::Instant::now();
            for b in batches {
                subject.export(&runtime, black_box(b));
            }
            let wall = started.elapsed();
            let (p1, s1) = (cpu_ticks("/proc/self/stat"), cpu_ticks(server_stat));
            let t = &mut totals[i];
            let spans = (per_round * BATCH) as u64;
            t.spans += spans;
            t.wall += wall;
            t.process_ticks += p1 - p0;
            t.server_ticks += s1 - s0;
            t.rounds.push(spans as f64 / wall.as_secs_f64());
        }
    }
    println!();
    println!("CPU per span, {BATCH}-span batches, interleaved rounds of {per_round} batches:");
    println!(
        "{:<26} {:>12} {:>14} {:>14} {:>14}",
        "exporter", "spans/s", "process µs/span", "server µs/span", "client µs/span"
    );
    let per_span =
        |ticks: u64, spans: u64| (TICK * ticks as u32).as_secs_f64() * 1e6 / spans as f64;
    let mut rows = Vec::new();
    for ((name, _), t) in subjects.iter().zip(&totals) {
        let mut rounds = t.rounds.clone();
        rounds.sort_by(f64::total_cmp);
        let median = rounds[rounds.len() / 2];
        let process = per_span(t.process_ticks, t.spans);
        let server = per_span(t.server_ticks, t.spans);
        println!(
            "{name:<26} {median:>12.0} {process:>14.2} {server:>14.2} {:>14.2}",
            process - server
        );
        rows.push((median, process, process - server));
    }
    let (base_rate, base_cpu, base_client) = rows[0];
    for ((name, _), (rate, cpu, client)) in subjects.iter().zip(&rows).skip(1) {
        println!(
            "{name}: {:.2}x the throughput of opentelemetry-otlp, {:.2}x its process CPU per span ({:.2}x client side)",
            rate / base_rate,
            cpu / base_cpu,
            client / base_client
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    // opentelemetry-otlp builds its reqwest client without a TLS configuration; with
    // reqwest's `rustls-no-provider` that needs a process-wide provider (ours passes its own).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (addr, server_stat) = start_server();

    let mut criterion = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6))
        .configure_from_args();
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let subjects = subjects(addr, &runtime);
        let template = batch();
        let mut group = criterion.benchmark_group("export_512_spans");
        group.throughput(Throughput::Elements(BATCH as u64));
        for (name, subject) in &subjects {
            group.bench_function(*name, |b| {
                b.iter_batched(
                    || template.clone(),
                    |batch| subject.export(&runtime, batch),
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }
    criterion.final_summary();
    cpu_report(addr, &server_stat, quick);
}
