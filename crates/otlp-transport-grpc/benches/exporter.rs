//! Our OTLP/gRPC exporter against `opentelemetry-otlp`'s tonic exporter, both driven
//! through the SDK's `SpanExporter` trait with the same batches of 512 `SpanData` of
//! realistic shape (the OTLP/HTTP exporter bench's, shared), to the same minimal gRPC
//! server in this process (`tonic::transport::Server` on 127.0.0.1:0, its own thread,
//! the pass-through codec, an empty `ExportTraceServiceResponse` once the message is read).
//!
//! ```text
//! cargo bench -p otlp-transport-grpc --bench exporter
//! ```
//!
//! Two parts, in one run, measured as the OTLP/HTTP exporter bench does:
//!
//! 1. criterion, wall time per export of 512 spans (batch cloning excluded with
//!    `iter_batched`), reported as spans per second;
//! 2. CPU: interleaved rounds (every exporter in turn, 40 batches a round, clones made
//!    before the round) until each has run 4 s; process CPU time (`utime + stime` of
//!    `/proc/self/stat`) around each round only, and the server thread's own CPU
//!    subtracted to give the client side.
//!
//! Rows: `opentelemetry-otlp`; ours with the call on the caller's runtime
//! (`ExportRuntime::Handle`, the same arrangement as `opentelemetry-otlp`); ours with the
//! default background export thread; then both with gzip (tonic's gzip on both sides).

#[path = "../../otlp-transport-http/benches/support/mod.rs"]
mod shared;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use otlp_core::Compression;
use otlp_transport_grpc::exporter::GrpcExporter;
use otlp_transport_grpc::sdk::{ExportRuntime, TraceExporter};
use shared::{BATCH, Rounds, batch, resource};
use support::Work;
use tokio::runtime::Runtime;

/// The in-process server: its address and the path of its thread's `stat` file.
fn start_server() -> (SocketAddr, String) {
    shared::server_thread("bench-server", |listener| {
        support::serve_tonic(listener, Work::Nothing, 100)
    })
}

/// An exporter under test (`opentelemetry-otlp`'s tonic exporter is large, hence the box).
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
    let otlp = |gzip: bool| {
        let mut exporter = runtime.block_on(async {
            let builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(&url);
            let builder = if gzip {
                builder.with_compression(opentelemetry_otlp::Compression::Gzip)
            } else {
                builder
            };
            builder.build().expect("opentelemetry-otlp exporter")
        });
        exporter.set_resource(&resource());
        Subject::Otlp(Box::new(exporter))
    };
    let ours = |runtime: ExportRuntime, compression: Compression| {
        let exporter = GrpcExporter::builder()
            .no_env()
            .endpoint(&url)
            .compression(compression)
            .build()
            .expect("our exporter");
        let mut e = TraceExporter::new(exporter).with_runtime(runtime);
        e.set_resource(&resource());
        Subject::Ours(e)
    };
    let caller = || ExportRuntime::Handle(runtime.handle().clone());
    vec![
        ("opentelemetry-otlp", otlp(false)),
        ("ours, caller's runtime", ours(caller(), Compression::None)),
        (
            "ours, background thread",
            ours(ExportRuntime::Background, Compression::None),
        ),
        ("opentelemetry-otlp, gzip", otlp(true)),
        (
            "ours, caller's runtime, gzip",
            ours(caller(), Compression::Gzip),
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
    let exports: Vec<shared::Subject<'_, Vec<SpanData>>> = subjects
        .iter()
        .map(|(name, subject)| {
            let export: Box<dyn Fn(Vec<SpanData>) + '_> =
                Box::new(|batch| subject.export(&runtime, batch));
            (*name, export)
        })
        .collect();
    let rows = shared::cpu_rounds(&exports, &batch(), &rounds);
    // Uncompressed rows against the uncompressed baseline, gzip rows against gzip.
    shared::compare(&rows[1], &rows[0]);
    shared::compare(&rows[2], &rows[0]);
    shared::compare(&rows[4], &rows[3]);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
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
        let mut group = criterion.benchmark_group("grpc_export_512_spans");
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
