//! The trace-id sampling decision per span (target: at most 10 ns).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use otlp_core::proto::trace::v1::Span;
use otlp_degradation::TraceIdRatioSampler;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn ids(n: usize) -> Vec<[u8; 16]> {
    let mut state = 1;
    (0..n)
        .map(|_| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&splitmix(&mut state).to_be_bytes());
            id[8..].copy_from_slice(&splitmix(&mut state).to_be_bytes());
            id
        })
        .collect()
}

fn sampling(c: &mut Criterion) {
    let sampler = TraceIdRatioSampler::new(0.1);
    let ids = ids(1024);
    let spans: Vec<Span> = ids
        .iter()
        .map(|id| Span {
            trace_id: id.to_vec(),
            ..Default::default()
        })
        .collect();

    let mut group = c.benchmark_group("sampling");
    // One decision on an id the optimiser cannot see through.
    group.bench_function("decision", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(&sampler).should_keep(black_box(&ids[i]))
        })
    });
    // Decisions over ids laid out contiguously: the cost of the decision itself.
    group.throughput(Throughput::Elements(ids.len() as u64));
    group.bench_function("decision_x1024", |b| {
        b.iter(|| {
            black_box(&ids)
                .iter()
                .filter(|id| sampler.should_keep(id))
                .count()
        })
    });
    // The decision as `apply` makes it: from a span's `trace_id` bytes, length checked.
    group.bench_function("span_trace_id_x1024", |b| {
        b.iter(|| {
            black_box(&spans)
                .iter()
                .filter(|s| sampler.should_keep_id(&s.trace_id) == Some(true))
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, sampling);
criterion_main!(benches);
