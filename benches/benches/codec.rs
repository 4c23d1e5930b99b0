//! Decode and encode of the reference request (1000 spans, 10 attributes each):
//! protobuf through `otlp-core` next to plain prost on the same bytes, OTLP/JSON, and the
//! framing walk that counts items without decoding.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use otlp_benches::trace_request;
use otlp_core::codec::{json, protobuf};
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::{Signal, wire};
use prost::Message;

fn codec(c: &mut Criterion) {
    let request = trace_request(1, 1000, 10);
    let proto = request.encode_to_vec();
    let json_bytes = json::to_vec(&request);

    let mut g = c.benchmark_group("protobuf");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("decode/prost", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(black_box(proto.as_slice())).unwrap())
    });
    g.bench_function("decode/otlp-core", |b| {
        b.iter(|| protobuf::decode::<ExportTraceServiceRequest>(black_box(&proto)).unwrap())
    });
    g.bench_function("encode/prost", |b| {
        b.iter(|| black_box(&request).encode_to_vec())
    });
    g.bench_function("encode/otlp-core", |b| {
        b.iter(|| protobuf::encode(black_box(&request)))
    });
    g.bench_function("count_items/wire", |b| {
        b.iter(|| wire::count_items(Signal::Traces, black_box(&proto)).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("decode", |b| {
        b.iter(|| json::from_slice::<ExportTraceServiceRequest>(black_box(&json_bytes)).unwrap())
    });
    g.bench_function("encode", |b| b.iter(|| json::to_vec(black_box(&request))));
    g.finish();

    eprintln!(
        "reference request: {} spans, protobuf {} bytes ({} per span), OTLP/JSON {} bytes",
        1000,
        proto.len(),
        proto.len() / 1000,
        json_bytes.len()
    );
}

criterion_group!(benches, codec);
criterion_main!(benches);
