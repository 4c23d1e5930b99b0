//! JSONL file sink throughput: exports of 1-span and 512-span trace batches from 1 and 4
//! concurrent exporters, through the sink's writer thread, against the alternative
//! design (each line written from `spawn_blocking` under a mutex, with the same "in the
//! file when export resolves" promise). Throughput is in bytes of JSON written; the line
//! sizes are printed so lines/s can be read off. Also the load generator that feeds it
//! (`loadgen/*`): building and encoding fresh 512-item batches per signal, and handing
//! out a pooled batch, in items per second.
//!
//! `cargo bench -p otlp-gateway --bench file_sink -- --warm-up-time 1 --measurement-time 3`

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use otlp_core::codec::json;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::{Exporter, Payload, Signal};
use otlp_gateway::loadgen::{Generator, GeneratorConfig};
use otlp_gateway::pipeline::file_sink::{FileSink, FileSinkConfig};
use tokio::runtime::Runtime;
use tokio::time::Instant;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The alternative: encode on the caller, write and flush in `spawn_blocking`.
struct BlockingSink {
    file: Arc<Mutex<File>>,
}

impl BlockingSink {
    async fn export(&self, payload: Payload) {
        let request: ExportTraceServiceRequest = payload.decode().expect("valid");
        let mut line = json::to_vec(&request);
        line.push(b'\n');
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = file.lock().expect("lock");
            f.write_all(&line).expect("write");
        })
        .await
        .expect("join");
    }
}

async fn run<F, Fut>(exporters: u64, iters: u64, payload: &Payload, export: F) -> Duration
where
    F: Fn(Payload) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..exporters)
        .map(|t| {
            let export = export.clone();
            let payload = payload.clone();
            let n = iters / exporters + u64::from(t < iters % exporters);
            tokio::spawn(async move {
                for _ in 0..n {
                    export(payload.clone()).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("exporter task");
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    for spans in [1usize, 512] {
        let payload = Generator::new(GeneratorConfig {
            batch_items: spans,
            ..GeneratorConfig::new(Signal::Traces)
        })
        .next_payload();
        let line_len = json::to_vec(
            &payload
                .decode::<ExportTraceServiceRequest>()
                .expect("valid"),
        )
        .len()
            + 1;
        eprintln!(
            "file_sink: {spans}-span batch = {} B protobuf, {line_len} B JSON line",
            payload.len()
        );
        let mut group = c.benchmark_group(format!("file_sink/{spans}_spans"));
        group.throughput(Throughput::Bytes(line_len as u64));
        for exporters in [1u64, 4] {
            let dir = tempfile::tempdir().expect("tempdir");
            let sink = Arc::new(
                FileSink::open(FileSinkConfig {
                    rotate_bytes: 1 << 30,
                    ..FileSinkConfig::new(dir.path())
                })
                .expect("open"),
            );
            group.bench_with_input(
                BenchmarkId::new("writer_thread", exporters),
                &exporters,
                |b, &exporters| {
                    b.iter_custom(|iters| {
                        let sink = sink.clone();
                        rt.block_on(run(exporters, iters, &payload, move |p| {
                            let sink = sink.clone();
                            async move {
                                sink.export(p).await.expect("export");
                            }
                        }))
                    })
                },
            );
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.path().join("blocking.jsonl"))
                .expect("open");
            let blocking = Arc::new(BlockingSink {
                file: Arc::new(Mutex::new(file)),
            });
            group.bench_with_input(
                BenchmarkId::new("spawn_blocking", exporters),
                &exporters,
                |b, &exporters| {
                    b.iter_custom(|iters| {
                        let blocking = blocking.clone();
                        rt.block_on(run(exporters, iters, &payload, move |p| {
                            let blocking = blocking.clone();
                            async move { blocking.export(p).await }
                        }))
                    })
                },
            );
        }
        group.finish();
    }
}

fn generate(c: &mut Criterion) {
    let mut group = c.benchmark_group("loadgen");
    group.throughput(Throughput::Elements(512));
    for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
        let mut generator = Generator::new(GeneratorConfig::new(signal));
        group.bench_function(BenchmarkId::new("fresh_batch", signal.as_str()), |b| {
            b.iter(|| generator.next_payload())
        });
    }
    let pool = Generator::new(GeneratorConfig::new(Signal::Traces)).pool(64);
    group.bench_function("pooled_batch", |b| b.iter(|| pool.next_payload()));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench, generate
}
criterion_main!(benches);
