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

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use otlp_transport_http::exporter::HttpExporter;
use otlp_transport_http::sdk::{ExportRuntime, TraceExporter};
use support::{BATCH, Rounds, batch, resource};
use tokio::runtime::Runtime;

/// The in-process server: its address and the path of its thread's `stat` file.
fn start_server() -> (SocketAddr, String) {
    support::server_thread("bench-server", |listener| async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service =
                    service_fn(|request: http::Request<hyper::body::Incoming>| async move {
                        let _ = request.into_body().collect().await;
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new())))
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// An exporter under test.
enum Subject {
    Otlp(Box<opentelemetry_otlp::SpanExporter>),
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
        ("opentelemetry-otlp", Subject::Otlp(Box::new(otlp))),
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

fn cpu_report(addr: SocketAddr, server_stat: &str, quick: bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let subjects = subjects(addr, &runtime);
    let per_round = if quick { 2 } else { 40 };
    let rounds = Rounds {
        title: format!(
            "CPU per span, {BATCH}-span batches, interleaved rounds of {per_round} batches:"
        ),
        items: BATCH as u64,
        per_round,
        target: if quick {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(4)
        },
        threads: &[("server", server_stat)],
    };
    let exports: Vec<support::Subject<'_, Vec<SpanData>>> = subjects
        .iter()
        .map(|(name, subject)| {
            let export: Box<dyn Fn(Vec<SpanData>) + '_> =
                Box::new(|batch| subject.export(&runtime, batch));
            (*name, export)
        })
        .collect();
    let rows = support::cpu_rounds(&exports, &batch(), &rounds);
    for row in &rows[1..] {
        support::compare(row, &rows[0]);
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
