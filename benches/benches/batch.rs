//! Batching: joining many small payloads into one (concatenation), and cutting an
//! oversized payload on resource/scope/item boundaries, on the reference span shape.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use otlp_benches::trace_request;
use otlp_core::{BatchConfig, Batcher, Payload, Signal};

fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch");

    // 100 requests of 10 spans each (the shape of many small SDK exports) into one batch.
    let small: Vec<Payload> = (0..100)
        .map(|_| Payload::from_request(&trace_request(1, 10, 10)))
        .collect();
    g.throughput(Throughput::Elements(1000));
    g.bench_function("join/100x10-spans", |b| {
        b.iter_batched(
            || small.clone(),
            |payloads| {
                let mut batcher = Batcher::new(Signal::Traces, BatchConfig::default()).unwrap();
                for p in payloads {
                    black_box(batcher.push(p).unwrap());
                }
                batcher.flush().unwrap()
            },
            BatchSize::SmallInput,
        )
    });

    // One request of 1000 spans in 10 resources, cut into batches of at most 100 spans.
    let big = Payload::from_request(&trace_request(10, 1000, 10));
    let config = BatchConfig {
        max_items: 100,
        ..BatchConfig::default()
    };
    g.bench_function("split/1000-spans-into-100", |b| {
        b.iter_batched(
            || big.clone(),
            |payload| {
                let mut batcher = Batcher::new(Signal::Traces, config).unwrap();
                let out = batcher.push(payload).unwrap();
                (out, batcher.flush())
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, batch);
criterion_main!(benches);
