//! Property tests of the wire walker and the batcher over generated OTLP requests:
//! whatever the requests and limits, batching loses, duplicates and reorders no item,
//! keeps every item with its resource and scope, and respects the limits; the walker's
//! counts agree with prost, and no input makes either panic.

use std::time::Duration;

use bytes::Bytes;
use otlp_core::batch::{BatchConfig, Batcher};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::logs::v1::{ResourceLogs, ScopeLogs};
use otlp_core::proto::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics, metric};
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans};
use otlp_core::{OtlpRequest, Payload, Signal, wire};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use prost::Message;
use tokio::time::Instant;

// The strategies of `otlp_core::testing`, compiled in directly: a crate cannot
// dev-depend on itself to turn on its `testing` feature.
#[allow(dead_code, unreachable_pub)]
#[path = "../src/testing.rs"]
mod testing;

/// One item with its context, every part encoded: resource and scope without their
/// lists, the metric without its data points (empty for traces and logs), the item.
type Located = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

/// A request whose items can be listed in order with their context.
trait Items: OtlpRequest {
    fn items(&self) -> Vec<Located>;
}

impl Items for ExportTraceServiceRequest {
    fn items(&self) -> Vec<Located> {
        let mut out = Vec::new();
        for r in &self.resource_spans {
            let rh = ResourceSpans {
                scope_spans: Vec::new(),
                ..r.clone()
            }
            .encode_to_vec();
            for s in &r.scope_spans {
                let sh = ScopeSpans {
                    spans: Vec::new(),
                    ..s.clone()
                }
                .encode_to_vec();
                for span in &s.spans {
                    out.push((rh.clone(), sh.clone(), Vec::new(), span.encode_to_vec()));
                }
            }
        }
        out
    }
}

impl Items for ExportLogsServiceRequest {
    fn items(&self) -> Vec<Located> {
        let mut out = Vec::new();
        for r in &self.resource_logs {
            let rh = ResourceLogs {
                scope_logs: Vec::new(),
                ..r.clone()
            }
            .encode_to_vec();
            for s in &r.scope_logs {
                let sh = ScopeLogs {
                    log_records: Vec::new(),
                    ..s.clone()
                }
                .encode_to_vec();
                for record in &s.log_records {
                    out.push((rh.clone(), sh.clone(), Vec::new(), record.encode_to_vec()));
                }
            }
        }
        out
    }
}

/// A metric's data points encoded, and the metric with its data points removed.
fn split_metric(m: &Metric) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut header = m.clone();
    let points = match &mut header.data {
        Some(metric::Data::Gauge(d)) => std::mem::take(&mut d.data_points)
            .iter()
            .map(Message::encode_to_vec)
            .collect(),
        Some(metric::Data::Sum(d)) => std::mem::take(&mut d.data_points)
            .iter()
            .map(Message::encode_to_vec)
            .collect(),
        Some(metric::Data::Histogram(d)) => std::mem::take(&mut d.data_points)
            .iter()
            .map(Message::encode_to_vec)
            .collect(),
        Some(metric::Data::ExponentialHistogram(d)) => std::mem::take(&mut d.data_points)
            .iter()
            .map(Message::encode_to_vec)
            .collect(),
        Some(metric::Data::Summary(d)) => std::mem::take(&mut d.data_points)
            .iter()
            .map(Message::encode_to_vec)
            .collect(),
        None => Vec::new(),
    };
    (header.encode_to_vec(), points)
}

impl Items for ExportMetricsServiceRequest {
    fn items(&self) -> Vec<Located> {
        let mut out = Vec::new();
        for r in &self.resource_metrics {
            let rh = ResourceMetrics {
                scope_metrics: Vec::new(),
                ..r.clone()
            }
            .encode_to_vec();
            for s in &r.scope_metrics {
                let sh = ScopeMetrics {
                    metrics: Vec::new(),
                    ..s.clone()
                }
                .encode_to_vec();
                for m in &s.metrics {
                    let (mh, points) = split_metric(m);
                    for point in points {
                        out.push((rh.clone(), sh.clone(), mh.clone(), point));
                    }
                }
            }
        }
        out
    }
}

fn arb_config() -> impl Strategy<Value = BatchConfig> {
    (
        prop_oneof![1u64..=4, 1u64..=40, Just(8192)],
        prop_oneof![1usize..=64, 64usize..=2048, Just(4 << 20)],
        (1u64..=400).prop_map(Duration::from_millis),
    )
        .prop_map(|(max_items, max_bytes, max_age)| BatchConfig {
            max_items,
            max_bytes,
            max_age,
        })
}

/// Push `requests` (each arriving `gap` ms after the previous), polling for expired
/// batches at every arrival, then flush; check every batch and that the items come out
/// exactly as they went in.
fn check_batching<R: Items>(
    requests: Vec<(R, u64)>,
    config: BatchConfig,
) -> Result<(), TestCaseError> {
    let signal = R::SIGNAL;
    let mut batcher = Batcher::new(signal, config).expect("valid config");
    let t0 = Instant::now();
    let mut now = t0;
    let mut expected = Vec::new();
    let mut batches = Vec::new();
    for (request, gap) in &requests {
        now += Duration::from_millis(*gap);
        if let Some(batch) = batcher.poll_expired(now) {
            prop_assert!(batch.header().received_at + config.max_age <= now);
            batches.push(batch);
        }
        expected.extend(request.items());
        let payload = Payload::from_request(request).with_received_at(now);
        batches.extend(batcher.push(payload).expect("same signal, valid bytes"));
        if let Some(deadline) = batcher.deadline() {
            prop_assert!(deadline > now || batcher.pending_items() == 0);
        }
    }
    batches.extend(batcher.flush());
    prop_assert!(batcher.is_empty());
    prop_assert_eq!(batcher.pending_items(), 0);
    prop_assert_eq!(batcher.pending_bytes(), 0);

    let mut got = Vec::new();
    for batch in &batches {
        prop_assert_eq!(batch.signal(), signal);
        prop_assert!(!batch.is_empty());
        let decoded: R = batch
            .decode()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decoded.item_count(), batch.items());
        prop_assert_eq!(
            wire::count_items(signal, batch.body()).unwrap(),
            batch.items()
        );
        prop_assert!(batch.items() <= config.max_items);
        prop_assert!(
            batch.len() <= config.max_bytes || batch.items() <= 1,
            "{} bytes, {} items, limit {}",
            batch.len(),
            batch.items(),
            config.max_bytes
        );
        prop_assert!(batch.header().received_at >= t0 && batch.header().received_at <= now);
        got.extend(decoded.items());
    }
    prop_assert_eq!(got.len(), expected.len());
    prop_assert!(
        got == expected,
        "items lost, duplicated, reordered or moved"
    );
    Ok(())
}

fn arrivals<S: Strategy>(requests: S) -> impl Strategy<Value = Vec<(S::Value, u64)>> {
    proptest::collection::vec((requests, 0u64..300), 0..6)
}

/// Overwrite a few bytes of `bytes`, then maybe truncate: mostly invalid, sometimes valid
/// in surprising ways.
fn mutate(mut bytes: Vec<u8>, edits: &[(Index, u8)], cut: Option<Index>) -> Vec<u8> {
    if !bytes.is_empty() {
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
    }
    bytes
}

/// For a mutated body: nothing panics, and when prost accepts it, the walker agrees on
/// the count, and splitting keeps exactly the decoded items.
fn check_mutated<R: Items>(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let signal = R::SIGNAL;
    let counted = wire::count_items(signal, &bytes);
    let body = Bytes::from(bytes);
    let split = wire::split_to_fit(signal, &body, 2, 48);
    let mut batcher = Batcher::new(
        signal,
        BatchConfig {
            max_items: 3,
            max_bytes: 64,
            ..BatchConfig::default()
        },
    )
    .expect("valid config");
    let pushed = batcher.push(Payload::new(signal, body.clone(), 100));
    if let Ok(decoded) = R::decode(body.clone()) {
        prop_assert_eq!(counted.unwrap(), decoded.item_count());
        let pieces = split.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let joined: Vec<u8> = pieces.iter().flat_map(|p| p.encoded().to_vec()).collect();
        let rejoined =
            R::decode(joined.as_slice()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(rejoined.items() == decoded.items());
        prop_assert!(pushed.is_ok());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn batching_traces_keeps_every_span(
        requests in arrivals(testing::arb_trace_request()),
        config in arb_config(),
    ) {
        check_batching(requests, config)?;
    }

    #[test]
    fn batching_metrics_keeps_every_data_point(
        requests in arrivals(testing::arb_metrics_request()),
        config in arb_config(),
    ) {
        check_batching(requests, config)?;
    }

    #[test]
    fn batching_logs_keeps_every_record(
        requests in arrivals(testing::arb_logs_request()),
        config in arb_config(),
    ) {
        check_batching(requests, config)?;
    }

    #[test]
    fn count_agrees_with_prost_on_concatenations(
        a in testing::arb_metrics_request(),
        b in testing::arb_metrics_request(),
        t in testing::arb_trace_request(),
        l in testing::arb_logs_request(),
    ) {
        let joined = [a.encode_to_vec(), b.encode_to_vec()].concat();
        let decoded = ExportMetricsServiceRequest::decode(joined.as_slice()).unwrap();
        prop_assert_eq!(wire::count_items(Signal::Metrics, &joined).unwrap(), decoded.item_count());
        prop_assert_eq!(decoded.item_count(), a.item_count() + b.item_count());
        prop_assert_eq!(wire::count_items(Signal::Traces, &t.encode_to_vec()).unwrap(), t.item_count());
        prop_assert_eq!(wire::count_items(Signal::Logs, &l.encode_to_vec()).unwrap(), l.item_count());
    }

    #[test]
    fn mutated_traces_never_panic_and_agree_when_valid(
        request in testing::arb_trace_request(),
        edits in proptest::collection::vec((any::<Index>(), any::<u8>()), 0..3),
        cut in proptest::option::of(any::<Index>()),
    ) {
        check_mutated::<ExportTraceServiceRequest>(mutate(request.encode_to_vec(), &edits, cut))?;
    }

    #[test]
    fn mutated_metrics_never_panic_and_agree_when_valid(
        request in testing::arb_metrics_request(),
        edits in proptest::collection::vec((any::<Index>(), any::<u8>()), 0..3),
        cut in proptest::option::of(any::<Index>()),
    ) {
        check_mutated::<ExportMetricsServiceRequest>(mutate(request.encode_to_vec(), &edits, cut))?;
    }

    #[test]
    fn mutated_logs_never_panic_and_agree_when_valid(
        request in testing::arb_logs_request(),
        edits in proptest::collection::vec((any::<Index>(), any::<u8>()), 0..3),
        cut in proptest::option::of(any::<Index>()),
    ) {
        check_mutated::<ExportLogsServiceRequest>(mutate(request.encode_to_vec(), &edits, cut))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_mutated::<ExportTraceServiceRequest>(bytes.clone())?;
        check_mutated::<ExportMetricsServiceRequest>(bytes.clone())?;
        check_mutated::<ExportLogsServiceRequest>(bytes)?;
    }
}
