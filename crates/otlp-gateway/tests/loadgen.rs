//! The load generator's data, and the send driver against real receivers on 127.0.0.1.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{KeyValue, any_value};
use otlp_core::proto::logs::v1::SeverityNumber;
use otlp_core::proto::metrics::v1::metric::Data;
use otlp_core::proto::trace::v1::status::StatusCode;
use otlp_core::sink::{Accepted, BoxFuture, Sink};
use otlp_core::{OtlpRequest, Payload, Refusal, Signal};
use otlp_gateway::loadgen::send::{SendConfig, SendError, SendProtocol, send};
use otlp_gateway::loadgen::{Generator, GeneratorConfig};
use prost::Message as _;

fn generator(signal: Signal, items: usize, seed: u64) -> Generator {
    Generator::new(GeneratorConfig {
        batch_items: items,
        seed,
        ..GeneratorConfig::new(signal)
    })
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

#[test]
fn equal_seeds_give_equal_data_and_other_seeds_other_data() {
    for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
        let mut a = generator(signal, 50, 42);
        let mut b = generator(signal, 50, 42);
        let mut c = generator(signal, 50, 43);
        for _ in 0..5 {
            let (pa, pb, pc) = (a.next_payload(), b.next_payload(), c.next_payload());
            assert_eq!(pa.body(), pb.body(), "{signal}");
            assert_ne!(pa.body(), pc.body(), "{signal}");
        }
    }
}

#[test]
fn batches_hold_exactly_the_items_asked_for_and_decode_with_prost() {
    for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
        let mut g = generator(signal, 100, 1);
        for items in [1, 7, 100, 1000] {
            let p = g.payload_with_items(items);
            assert_eq!(p.items(), items as u64, "{signal}");
            assert_eq!(p.signal(), signal);
            let counted = match signal {
                Signal::Traces => ExportTraceServiceRequest::decode(p.body().clone())
                    .unwrap()
                    .item_count(),
                Signal::Metrics => ExportMetricsServiceRequest::decode(p.body().clone())
                    .unwrap()
                    .item_count(),
                Signal::Logs => ExportLogsServiceRequest::decode(p.body().clone())
                    .unwrap()
                    .item_count(),
            };
            assert_eq!(counted, items as u64, "{signal} {items}");
            // The wire walk the receivers use agrees.
            assert_eq!(
                Payload::from_encoded(signal, p.body().clone())
                    .unwrap()
                    .items(),
                items as u64
            );
        }
        assert_eq!(g.next_payload().items(), 100);
    }
}

#[test]
fn spans_average_about_376_bytes_with_ten_attributes() {
    let mut g = generator(Signal::Traces, 1000, 1);
    let mut bytes = 0;
    let mut spans = 0;
    for _ in 0..10 {
        let p = g.next_payload();
        bytes += p.len();
        spans += p.items() as usize;
        let r: ExportTraceServiceRequest = p.decode().unwrap();
        for rs in &r.resource_spans {
            for span in &rs.scope_spans[0].spans {
                assert_eq!(span.attributes.len(), 10);
                assert!(matches!(
                    attr(&span.attributes, "http.status_code"),
                    Some(any_value::Value::IntValue(_))
                ));
            }
        }
    }
    let per_span = bytes as f64 / spans as f64;
    println!("loadgen: {per_span:.1} bytes per span (1000-span batches)");
    assert!((340.0..=420.0).contains(&per_span), "{per_span}");
}

#[test]
fn error_ratio_is_respected() {
    for (ratio, lo, hi) in [(0.0, 0.0, 0.0), (0.1, 0.08, 0.12), (1.0, 1.0, 1.0)] {
        let mut g = Generator::new(GeneratorConfig {
            batch_items: 1000,
            error_ratio: ratio,
            ..GeneratorConfig::new(Signal::Traces)
        });
        let (mut errors, mut spans) = (0, 0);
        for _ in 0..10 {
            let r: ExportTraceServiceRequest = g.next_payload().decode().unwrap();
            for span in r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
            {
                spans += 1;
                if span.status.as_ref().map(|s| s.code) == Some(StatusCode::Error as i32) {
                    errors += 1;
                }
            }
        }
        let share = errors as f64 / spans as f64;
        assert!((lo..=hi).contains(&share), "ratio {ratio}: {share}");

        let mut g = Generator::new(GeneratorConfig {
            batch_items: 10_000,
            error_ratio: ratio,
            ..GeneratorConfig::new(Signal::Logs)
        });
        let r: ExportLogsServiceRequest = g.next_payload().decode().unwrap();
        let records: Vec<_> = r
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| &sl.log_records)
            .collect();
        let share = records
            .iter()
            .filter(|l| l.severity_number == SeverityNumber::Error as i32)
            .count() as f64
            / records.len() as f64;
        assert!((lo..=hi).contains(&share), "logs ratio {ratio}: {share}");
    }
}

#[test]
fn traces_have_one_root_and_parents_in_the_same_trace() {
    let mut g = generator(Signal::Traces, 2000, 5);
    let r: ExportTraceServiceRequest = g.next_payload().decode().unwrap();
    let spans: Vec<_> = r
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .collect();
    let by_id: HashMap<&[u8], &[u8]> = spans
        .iter()
        .map(|s| (s.span_id.as_slice(), s.trace_id.as_slice()))
        .collect();
    assert_eq!(by_id.len(), spans.len(), "span ids are unique");
    let mut roots: HashMap<&[u8], usize> = HashMap::new();
    for s in &spans {
        assert_eq!(s.trace_id.len(), 16);
        assert_eq!(s.span_id.len(), 8);
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
        if s.parent_span_id.is_empty() {
            *roots.entry(&s.trace_id).or_default() += 1;
        } else {
            assert_eq!(
                by_id.get(s.parent_span_id.as_slice()),
                Some(&s.trace_id.as_slice()),
                "the parent of {:?} is in the same trace",
                s.name
            );
        }
    }
    let traces: HashSet<&[u8]> = spans.iter().map(|s| s.trace_id.as_slice()).collect();
    assert_eq!(roots.len(), traces.len(), "every trace has a root");
    assert!(roots.values().all(|&n| n == 1), "one root a trace");
    assert!(
        traces.len() > 100 && traces.len() < 2000,
        "{}",
        traces.len()
    );
    // Realistic names and resources.
    assert!(spans.iter().any(|s| s.name == "GET /api/orders/{id}"));
    let services = Generator::new(GeneratorConfig::new(Signal::Traces))
        .config()
        .services;
    assert!(r.resource_spans.len() <= services);
    for rs in &r.resource_spans {
        let attrs = &rs.resource.as_ref().unwrap().attributes;
        for key in ["service.name", "host.name", "k8s.pod.name"] {
            assert!(attr(attrs, key).is_some(), "{key}");
        }
    }
}

#[test]
fn metrics_mix_gauges_sums_and_histograms() {
    let r: ExportMetricsServiceRequest = generator(Signal::Metrics, 500, 3)
        .next_payload()
        .decode()
        .unwrap();
    let metrics: Vec<_> = r
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .collect();
    let (mut gauges, mut sums, mut histograms) = (0, 0, 0);
    for m in metrics {
        match m.data.as_ref().unwrap() {
            Data::Gauge(_) => gauges += 1,
            Data::Sum(s) => {
                assert!(s.is_monotonic);
                sums += 1;
            }
            Data::Histogram(h) => {
                for dp in &h.data_points {
                    assert_eq!(dp.bucket_counts.len(), dp.explicit_bounds.len() + 1);
                    assert_eq!(dp.count, dp.bucket_counts.iter().sum::<u64>());
                    assert!(attr(&dp.attributes, "http.route").is_some());
                }
                histograms += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(gauges > 0 && sums > 0 && histograms > 0);
}

#[test]
fn a_pool_cycles_its_batches() {
    let mut g = generator(Signal::Logs, 10, 1);
    let pool = g.pool(3);
    assert_eq!(pool.len(), 3);
    assert_eq!(pool.total_items(), 30);
    let first: Vec<_> = (0..3).map(|_| pool.next_payload()).collect();
    assert_ne!(first[0].body(), first[1].body());
    assert_eq!(pool.next_payload().body(), first[0].body());
}

/// Counts what arrives; refuses everything when `refuse` is set.
#[derive(Default)]
struct Counting {
    items: AtomicU64,
    requests: AtomicU64,
    refuse: bool,
}

impl Sink for Counting {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        Box::pin(async move {
            if self.refuse {
                return Err(Refusal::Unavailable {
                    reason: "test says no".into(),
                    retry_after: Duration::from_secs(1),
                });
            }
            self.items.fetch_add(payload.items(), Ordering::Relaxed);
            self.requests.fetch_add(1, Ordering::Relaxed);
            Ok(Accepted::full())
        })
    }
}

#[tokio::test]
async fn sends_exactly_count_items_over_http_and_grpc() {
    use otlp_transport_grpc::receiver::{GrpcReceiver, GrpcReceiverConfig};
    use otlp_transport_http::receiver::{HttpReceiver, HttpReceiverConfig, Sinks};

    let http_sink = Arc::new(Counting::default());
    let http = HttpReceiver::bind(
        HttpReceiverConfig::builder()
            .addr("127.0.0.1:0")
            .build()
            .unwrap(),
        Sinks::all(http_sink.clone()),
    )
    .await
    .unwrap();
    let grpc_sink = Arc::new(Counting::default());
    let grpc = GrpcReceiver::bind(
        GrpcReceiverConfig::builder()
            .addr("127.0.0.1:0")
            .build()
            .unwrap(),
        otlp_transport_grpc::receiver::Sinks::all(grpc_sink.clone()),
    )
    .await
    .unwrap();

    for (signal, endpoint, sink, protocol) in [
        (
            Signal::Traces,
            format!("http://{}", http.local_addr()),
            &http_sink,
            SendProtocol::Http,
        ),
        (
            Signal::Logs,
            format!("grpc://{}", grpc.local_addr()),
            &grpc_sink,
            SendProtocol::Grpc,
        ),
    ] {
        let before = sink.items.load(Ordering::Relaxed);
        let summary = send(
            SendConfig {
                count: Some(2_345),
                batch_items: 100,
                concurrency: 3,
                rate: Some(50_000.0),
                ..SendConfig::new(endpoint, signal)
            },
            std::future::pending(),
        )
        .await
        .unwrap();
        assert_eq!(summary.protocol, protocol);
        assert_eq!(summary.items_sent, 2_345, "{summary}");
        assert_eq!(summary.items_accepted, 2_345, "{summary}");
        assert_eq!(summary.requests, 24, "23 full batches and one of 45");
        assert_eq!(summary.items_refused(), 0);
        assert_eq!(sink.items.load(Ordering::Relaxed) - before, 2_345);
        assert_eq!(summary.latency.count(), 24);
        let text = summary.to_string();
        assert!(text.contains("accepted: 2345"), "{text}");
        assert!(text.contains("p99"), "{text}");
    }
    http.shutdown(Duration::from_secs(5)).await.unwrap();
    grpc.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn refusals_are_counted_by_status() {
    use otlp_transport_http::receiver::{HttpReceiver, HttpReceiverConfig, Sinks};
    let sink = Arc::new(Counting {
        refuse: true,
        ..Counting::default()
    });
    let http = HttpReceiver::bind(
        HttpReceiverConfig::builder()
            .addr("127.0.0.1:0")
            .build()
            .unwrap(),
        Sinks::all(sink.clone()),
    )
    .await
    .unwrap();
    let summary = send(
        SendConfig {
            count: Some(300),
            batch_items: 100,
            ..SendConfig::new(format!("http://{}", http.local_addr()), Signal::Metrics)
        },
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(summary.items_accepted, 0);
    assert_eq!(summary.refused["HTTP 503"].items, 300, "{summary}");
    assert_eq!(summary.refused["HTTP 503"].requests, 3);
    assert!(summary.to_string().contains("test says no"), "{summary}");
    http.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn an_endpoint_nobody_listens_on_refuses_everything_with_a_transport_error() {
    // Bind then drop: a port that refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let summary = send(
        SendConfig {
            count: Some(10),
            batch_items: 5,
            timeout: Duration::from_secs(2),
            ..SendConfig::new(format!("grpc://127.0.0.1:{port}"), Signal::Traces)
        },
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(summary.items_accepted, 0);
    assert_eq!(summary.items_refused(), 10, "{summary}");
    assert!(summary.refused.contains_key("transport error"), "{summary}");
}

#[tokio::test]
async fn bad_settings_are_clear_errors() {
    for endpoint in ["localhost:4317", "ftp://host:21", "http://"] {
        let err = send(
            SendConfig::new(endpoint, Signal::Traces),
            std::future::pending(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SendError::Endpoint { .. }), "{err}");
        assert!(err.to_string().contains(endpoint), "{err}");
    }
    let err = send(
        SendConfig {
            rate: Some(0.0),
            ..SendConfig::new("http://127.0.0.1:4318", Signal::Traces)
        },
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("rate"), "{err}");
}

#[tokio::test]
async fn stopping_ends_the_run_with_a_summary() {
    use otlp_transport_http::receiver::{HttpReceiver, HttpReceiverConfig, Sinks};
    let sink = Arc::new(Counting::default());
    let http = HttpReceiver::bind(
        HttpReceiverConfig::builder()
            .addr("127.0.0.1:0")
            .build()
            .unwrap(),
        Sinks::all(sink.clone()),
    )
    .await
    .unwrap();
    // A run of an hour at 1000 spans/s, stopped after the first batches.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(send(
        SendConfig {
            duration: Some(Duration::from_secs(3600)),
            rate: Some(1000.0),
            batch_items: 10,
            ..SendConfig::new(format!("http://{}", http.local_addr()), Signal::Traces)
        },
        async move {
            let _ = rx.await;
        },
    ));
    for _ in 0..2000 {
        if sink.requests.load(Ordering::Relaxed) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tx.send(()).unwrap();
    let summary = run.await.unwrap().unwrap();
    assert!(summary.interrupted);
    assert!(summary.items_accepted >= 30, "{summary}");
    assert_eq!(summary.items_accepted, sink.items.load(Ordering::Relaxed));
    assert!(summary.to_string().contains("interrupted"));
    http.shutdown(Duration::from_secs(5)).await.unwrap();
}
