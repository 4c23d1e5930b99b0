//! Queue throughput: pushes into the disk queue under each fsync policy (1 and 16
//! concurrent pushers, 1 KiB and 64 KiB payloads), the memory queue for comparison, and
//! pop + ack (bodies from the in-memory cache, and read back from segment files after a
//! reopen). Throughput is reported in payload bytes; divide by 376 B for spans/s.
//!
//! `cargo bench -p otlp-gateway --bench queue -- --warm-up-time 1 --measurement-time 3`

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use otlp_core::{Payload, Signal};
use otlp_gateway::config::FsyncPolicy;
use otlp_gateway::pipeline::queue::{DiskQueue, DiskQueueConfig, MemoryQueue, PopLimits, Queue};
use tempfile::TempDir;
use tokio::runtime::Runtime;
use tokio::time::Instant;

const SIZES: [usize; 2] = [1024, 64 * 1024];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn config(dir: &TempDir, fsync: FsyncPolicy) -> DiskQueueConfig {
    DiskQueueConfig {
        dir: dir.path().join("q"),
        name: "bench".into(),
        max_bytes: 1 << 40,
        segment_bytes: 32 << 20,
        fsync,
        fsync_interval: Duration::from_secs(1),
        retry_after: Duration::from_secs(1),
    }
}

fn payload(size: usize) -> Payload {
    Payload::new(
        Signal::Traces,
        Bytes::from(vec![7u8; size]),
        (size / 376) as u64,
    )
    .with_tenant("tenant-a")
}

/// Time `iters` pushes spread over `pushers` tasks.
async fn push_many(queue: Arc<dyn Queue>, pushers: u64, iters: u64, size: usize) -> Duration {
    let body = payload(size);
    let start = Instant::now();
    let tasks: Vec<_> = (0..pushers)
        .map(|t| {
            let queue = Arc::clone(&queue);
            let body = body.clone();
            let n = iters / pushers + u64::from(t < iters % pushers);
            tokio::spawn(async move {
                for _ in 0..n {
                    queue.push(body.clone()).await.expect("push");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("pusher");
    }
    start.elapsed()
}

fn bench_push(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("queue_push");
    group.sample_size(10);
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for pushers in [1u64, 16] {
            for (label, policy) in [
                ("disk_always", Some(FsyncPolicy::Always)),
                ("disk_interval", Some(FsyncPolicy::Interval)),
                ("disk_never", Some(FsyncPolicy::Never)),
                ("memory", None),
            ] {
                let id = BenchmarkId::new(format!("{label}/{pushers}_pushers"), size);
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        rt.block_on(async {
                            let dir = TempDir::new().expect("tempdir");
                            let queue: Arc<dyn Queue> = match policy {
                                Some(p) => {
                                    Arc::new(DiskQueue::open(config(&dir, p)).await.expect("open"))
                                }
                                None => Arc::new(MemoryQueue::new(
                                    "bench",
                                    1 << 40,
                                    Duration::from_secs(1),
                                )),
                            };
                            push_many(queue, pushers, iters, size).await
                        })
                    });
                });
            }
        }
    }
    group.finish();
}

fn bench_pop_ack(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("queue_pop_ack");
    group.sample_size(10);
    let limits = PopLimits {
        max_items: u64::MAX,
        max_bytes: 1 << 20,
        linger: Duration::ZERO,
    };
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for label in ["memory", "disk_cached", "disk_replayed"] {
            group.bench_function(BenchmarkId::new(label, size), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let dir = TempDir::new().expect("tempdir");
                        let queue: Arc<dyn Queue> = if label == "memory" {
                            Arc::new(MemoryQueue::new("bench", 1 << 40, Duration::from_secs(1)))
                        } else {
                            Arc::new(
                                DiskQueue::open(config(&dir, FsyncPolicy::Never))
                                    .await
                                    .expect("open"),
                            )
                        };
                        push_many(Arc::clone(&queue), 2, iters, size).await;
                        let queue = if label == "disk_replayed" {
                            drop(queue);
                            Arc::new(
                                DiskQueue::open(config(&dir, FsyncPolicy::Never))
                                    .await
                                    .expect("reopen"),
                            ) as Arc<dyn Queue>
                        } else {
                            queue
                        };
                        let start = Instant::now();
                        let mut left = iters as usize;
                        while left > 0 {
                            let lease = queue.pop(limits).await.expect("lease");
                            left -= lease.entries.len();
                            queue.ack(lease);
                        }
                        start.elapsed()
                    })
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_push, bench_pop_ack);
criterion_main!(benches);
