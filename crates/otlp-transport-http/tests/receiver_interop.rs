//! Interop: the official OpenTelemetry SDKs export to our receiver over OTLP/HTTP, and
//! everything they were told to emit arrives intact.
//!
//! 1. Rust: `opentelemetry_sdk` providers with `opentelemetry-otlp`'s HTTP exporters and
//!    their async reqwest client (driven by the SDK's tokio-runtime processors, which
//!    that client needs), once with `http/protobuf` and once with `http/json`. Spans,
//!    attributes, events, links, statuses, metric points and log records are compared
//!    field by field with what the test emitted.
//! 2. Python: `interop/python/send_http.py` in the `proto` venv
//!    (`interop/setup-venv.sh proto`) sends traces (gzip), metrics and logs through the
//!    Python SDK and `opentelemetry-exporter-otlp-proto-http`; counts and contents are
//!    checked. Skips, loudly, only when `python3` is not installed.
//!
//! The receiver records the request's `Content-Type` as the payload's tenant
//! (`TenantSource::Header`), which shows which encoding each exporter really used.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::logs::{
    AnyValue as LogValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity,
};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue, SpanId, TraceId};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::logs::log_processor_with_async_runtime::BatchLogProcessor;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{IdGenerator, SdkTracerProvider};
use otlp_core::Payload;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, KeyValue as ProtoKeyValue, any_value};
use otlp_core::proto::logs::v1::LogRecord;
use otlp_core::proto::metrics::v1::{Metric, metric, number_data_point};
use otlp_core::proto::trace::v1::{Span, status};
use otlp_transport_http::receiver::{HttpReceiverConfig, TenantSource};
use support::python;
use support::*;

/// 2023-11-14T22:13:20Z in Unix nanoseconds: every emitted timestamp is an offset from it.
const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;
/// 2^53 + 1: an integer a JSON number parsed as f64 would corrupt.
const BIG_INT: i64 = (1 << 53) + 1;

const TRACE_ID: u128 = 0x5b8e_fff7_9803_8103_d269_b633_813f_c600;
const FIRST_SPAN_ID: u64 = 0xeee1_9b7e_c3c1_b100;
const LINKED_TRACE: u128 = 0x00f0_67aa_0ba9_02b7_0000_0000_0000_00ab;
const LINKED_SPAN: u64 = 0x0000_0000_0000_0def;

fn at(offset_ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(T0 + offset_ns)
}

/// Ids the test can predict: one trace id, span ids counting up.
#[derive(Debug, Default)]
struct CountingIds {
    next_span: AtomicU64,
}

impl IdGenerator for CountingIds {
    fn new_trace_id(&self) -> TraceId {
        TraceId::from_bytes(TRACE_ID.to_be_bytes())
    }

    fn new_span_id(&self) -> SpanId {
        let n = self.next_span.fetch_add(1, Ordering::Relaxed);
        SpanId::from_bytes((FIRST_SPAN_ID + n).to_be_bytes())
    }
}

fn span_id(n: u64) -> Vec<u8> {
    (FIRST_SPAN_ID + n).to_be_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rust_sdk_http_protobuf() {
    rust_sdk_round_trip(Protocol::HttpBinary, "application/x-protobuf").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rust_sdk_http_json() {
    rust_sdk_round_trip(Protocol::HttpJson, "application/json").await;
}

async fn rust_sdk_round_trip(protocol: Protocol, content_type: &str) {
    // This crate builds reqwest with `rustls-no-provider` (ring only, no aws-lc); a
    // reqwest client built without its own TLS config, as opentelemetry-otlp's default
    // one is, then needs a process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sink = TestSink::new();
    let receiver = start(
        HttpReceiverConfig::builder().tenant(TenantSource::Header("content-type".parse().unwrap())),
        sink.clone(),
    )
    .await;
    let base = format!("http://{}", receiver.local_addr());
    let resource = Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "rust-interop"),
            KeyValue::new("service.instance.id", "rs-0001"),
        ])
        .build();
    let scope = InstrumentationScope::builder("interop.rust")
        .with_version("1.2.3")
        .build();

    // --- traces
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(format!("{base}/v1/traces"))
        .build()
        .expect("span exporter");
    let tracer_provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter, Tokio).build())
        .with_id_generator(CountingIds::default())
        .with_resource(resource.clone())
        .build();
    emit_spans(&tracer_provider, scope.clone());

    // --- metrics
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(format!("{base}/v1/metrics"))
        .build()
        .expect("metric exporter");
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(
            PeriodicReader::builder(exporter, Tokio)
                .with_interval(Duration::from_secs(3600))
                .build(),
        )
        .with_resource(resource.clone())
        .build();
    emit_metrics(&meter_provider, scope.clone());

    // --- logs
    let exporter = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(format!("{base}/v1/logs"))
        .build()
        .expect("log exporter");
    let logger_provider = SdkLoggerProvider::builder()
        .with_log_processor(BatchLogProcessor::builder(exporter, Tokio).build())
        .with_resource(resource)
        .build();
    emit_logs(&logger_provider, scope);

    // Shutting a provider down exports what it holds (the meter provider collects once
    // more), and blocks its thread until the export finished: off the runtime.
    bounded(
        "SDK shutdown",
        tokio::task::spawn_blocking(move || {
            tracer_provider
                .shutdown()
                .expect("tracer provider shut down");
            meter_provider.shutdown().expect("meter provider shut down");
            logger_provider
                .shutdown()
                .expect("logger provider shut down");
        }),
    )
    .await
    .unwrap();

    let payloads = sink.take();
    for p in &payloads {
        assert_eq!(
            p.header().tenant.as_deref(),
            Some(content_type),
            "the exporter used {content_type}"
        );
    }
    let traces: ExportTraceServiceRequest = merged(&payloads);
    let metrics: ExportMetricsServiceRequest = merged(&payloads);
    let logs: ExportLogsServiceRequest = merged(&payloads);
    check_rust_spans(&traces);
    check_rust_metrics(&metrics);
    check_rust_logs(&logs);

    let snapshot = receiver.metrics().snapshot();
    assert_eq!(snapshot.traces.items_accepted, 3);
    assert_eq!(snapshot.logs.items_accepted, 2);
    assert_eq!(snapshot.metrics.items_accepted, 6);
    assert_eq!(snapshot.metrics.accepted, 1, "one collection, one request");
    assert_eq!(
        snapshot.requests(),
        snapshot.traces.accepted + snapshot.metrics.accepted + snapshot.logs.accepted,
        "every request accepted"
    );
}

fn emit_spans(provider: &SdkTracerProvider, scope: InstrumentationScope) {
    let tracer = provider.tracer_with_scope(scope);
    // Span 0: the server span.
    let mut root = tracer
        .span_builder("GET /orders/{id}")
        .with_kind(SpanKind::Server)
        .with_start_time(at(0))
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("int.big", BIG_INT),
            KeyValue::new("int.min", i64::MIN),
            KeyValue::new("double.pi", std::f64::consts::PI),
            KeyValue::new("bool.true", true),
            KeyValue::new(
                "array.string",
                opentelemetry::Value::Array(
                    vec![
                        opentelemetry::StringValue::from("a"),
                        opentelemetry::StringValue::from("\u{e9}\u{1F600}"),
                    ]
                    .into(),
                ),
            ),
            KeyValue::new("string.unicode", "h\u{e9}llo \u{2713} \"q\" \\ \n"),
        ])
        .start(&tracer);
    root.add_event_with_timestamp(
        "cache.miss",
        at(10 * MS),
        vec![KeyValue::new("cache.key", "order:42")],
    );
    root.set_status(Status::error("upstream timed out"));
    let cx = Context::current_with_span(root);

    // Span 1: a client child with a link to a remote span.
    let linked = SpanContext::new(
        TraceId::from_bytes(LINKED_TRACE.to_be_bytes()),
        SpanId::from_bytes(LINKED_SPAN.to_be_bytes()),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let mut child = tracer
        .span_builder("SELECT orders")
        .with_kind(SpanKind::Client)
        .with_start_time(at(20 * MS))
        .with_links(vec![Link::new(
            linked,
            vec![KeyValue::new("link.reason", "batch")],
            0,
        )])
        .with_attributes([KeyValue::new("db.rows", 3_i64)])
        .start_with_context(&tracer, &cx);
    child.set_status(Status::Ok);
    child.end_with_timestamp(at(120 * MS));

    // Span 2: an internal child.
    let mut internal = tracer
        .span_builder("render")
        .with_start_time(at(130 * MS))
        .start_with_context(&tracer, &cx);
    internal.end_with_timestamp(at(140 * MS));

    cx.span().end_with_timestamp(at(250 * MS));
}

fn check_rust_spans(request: &ExportTraceServiceRequest) {
    let resource = request.resource_spans[0]
        .resource
        .as_ref()
        .expect("resource");
    assert_eq!(
        string_attr(&resource.attributes, "service.name"),
        Some("rust-interop")
    );
    let scope_spans: Vec<_> = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .collect();
    let scope = scope_spans[0].scope.as_ref().expect("scope");
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("interop.rust", "1.2.3")
    );
    let spans: BTreeMap<&str, &Span> = scope_spans
        .iter()
        .flat_map(|s| &s.spans)
        .map(|s| (s.name.as_str(), s))
        .collect();
    assert_eq!(spans.len(), 3, "{:?}", spans.keys());
    let trace_id = TRACE_ID.to_be_bytes().to_vec();

    let root = spans["GET /orders/{id}"];
    assert_eq!(root.trace_id, trace_id);
    assert_eq!(root.span_id, span_id(0));
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.kind, 2, "SERVER");
    assert_eq!(
        (root.start_time_unix_nano, root.end_time_unix_nano),
        (T0, T0 + 250 * MS)
    );
    assert_eq!(int_attr(&root.attributes, "int.big"), Some(BIG_INT));
    assert_eq!(int_attr(&root.attributes, "int.min"), Some(i64::MIN));
    assert_eq!(
        attr(&root.attributes, "double.pi"),
        Some(&any_value::Value::DoubleValue(std::f64::consts::PI))
    );
    assert_eq!(
        attr(&root.attributes, "bool.true"),
        Some(&any_value::Value::BoolValue(true))
    );
    assert_eq!(
        string_attr(&root.attributes, "string.unicode"),
        Some("h\u{e9}llo \u{2713} \"q\" \\ \n")
    );
    match attr(&root.attributes, "array.string") {
        Some(any_value::Value::ArrayValue(array)) => {
            let values: Vec<_> = array.values.iter().map(|v| v.value.clone()).collect();
            assert_eq!(
                values,
                [
                    Some(any_value::Value::StringValue("a".into())),
                    Some(any_value::Value::StringValue("\u{e9}\u{1F600}".into()))
                ]
            );
        }
        other => panic!("array.string: {other:?}"),
    }
    assert_eq!(root.attributes.len(), 7);
    assert_eq!(root.events.len(), 1);
    assert_eq!(root.events[0].name, "cache.miss");
    assert_eq!(root.events[0].time_unix_nano, T0 + 10 * MS);
    assert_eq!(
        string_attr(&root.events[0].attributes, "cache.key"),
        Some("order:42")
    );
    let status = root.status.as_ref().expect("status");
    assert_eq!(
        (status.code, status.message.as_str()),
        (status::StatusCode::Error as i32, "upstream timed out")
    );

    let child = spans["SELECT orders"];
    assert_eq!(child.trace_id, trace_id);
    assert_eq!(child.span_id, span_id(1));
    assert_eq!(child.parent_span_id, span_id(0));
    assert_eq!(child.kind, 3, "CLIENT");
    assert_eq!(
        (child.start_time_unix_nano, child.end_time_unix_nano),
        (T0 + 20 * MS, T0 + 120 * MS)
    );
    assert_eq!(int_attr(&child.attributes, "db.rows"), Some(3));
    assert_eq!(child.links.len(), 1);
    let link = &child.links[0];
    assert_eq!(
        link.trace_id,
        LINKED_TRACE.to_be_bytes().to_vec(),
        "leading zero byte kept"
    );
    assert_eq!(link.span_id, LINKED_SPAN.to_be_bytes().to_vec());
    assert_eq!(string_attr(&link.attributes, "link.reason"), Some("batch"));
    assert_eq!(
        child.status.as_ref().map(|s| s.code),
        Some(status::StatusCode::Ok as i32)
    );

    let internal = spans["render"];
    assert_eq!(internal.parent_span_id, span_id(0));
    assert_eq!(internal.kind, 1, "INTERNAL");
    assert_eq!(
        (internal.start_time_unix_nano, internal.end_time_unix_nano),
        (T0 + 130 * MS, T0 + 140 * MS)
    );
}

fn emit_metrics(provider: &SdkMeterProvider, scope: InstrumentationScope) {
    let meter = provider.meter_with_scope(scope);
    let orders = meter
        .u64_counter("orders.created")
        .with_description("Orders placed.")
        .with_unit("{order}")
        .build();
    orders.add(3, &[KeyValue::new("region", "eu")]);
    orders.add(2, &[KeyValue::new("region", "us")]);
    orders.add(4, &[KeyValue::new("region", "eu")]);
    let value = meter
        .f64_histogram("order.value")
        .with_unit("EUR")
        .with_boundaries(vec![10.0, 100.0])
        .build();
    for v in [5.0, 50.0, 500.0] {
        value.record(v, &[]);
    }
    let depth = meter.i64_gauge("queue.depth").build();
    depth.record(-7, &[KeyValue::new("queue", "q1")]);
    let inflight = meter.i64_up_down_counter("requests.inflight").build();
    inflight.add(4, &[]);
    inflight.add(-1, &[]);
    let big = meter.i64_gauge("big.gauge").build();
    big.record(BIG_INT, &[]);
}

fn check_rust_metrics(request: &ExportMetricsServiceRequest) {
    let scope_metrics: Vec<_> = request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .collect();
    assert_eq!(
        scope_metrics[0].scope.as_ref().map(|s| s.name.as_str()),
        Some("interop.rust")
    );
    let metrics = by_name(request);
    assert_eq!(
        metrics.keys().copied().collect::<Vec<_>>(),
        [
            "big.gauge",
            "order.value",
            "orders.created",
            "queue.depth",
            "requests.inflight"
        ]
    );

    let orders = metrics["orders.created"];
    assert_eq!(
        (orders.description.as_str(), orders.unit.as_str()),
        ("Orders placed.", "{order}")
    );
    match &orders.data {
        Some(metric::Data::Sum(sum)) => {
            assert!(sum.is_monotonic);
            assert_eq!(sum.aggregation_temporality, 2, "cumulative");
            let mut points: Vec<(String, Option<number_data_point::Value>)> = sum
                .data_points
                .iter()
                .map(|p| {
                    (
                        string_attr(&p.attributes, "region")
                            .unwrap_or("")
                            .to_owned(),
                        p.value,
                    )
                })
                .collect();
            points.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(
                points,
                [
                    ("eu".to_owned(), Some(number_data_point::Value::AsInt(7))),
                    ("us".to_owned(), Some(number_data_point::Value::AsInt(2)))
                ]
            );
            assert!(
                sum.data_points
                    .iter()
                    .all(|p| p.time_unix_nano > 0 && p.start_time_unix_nano > 0)
            );
        }
        other => panic!("orders.created is a sum: {other:?}"),
    }
    match &metrics["order.value"].data {
        Some(metric::Data::Histogram(h)) => {
            assert_eq!(metrics["order.value"].unit, "EUR");
            let p = &h.data_points[0];
            assert_eq!(
                (p.count, p.sum, p.min, p.max),
                (3, Some(555.0), Some(5.0), Some(500.0))
            );
            assert_eq!(p.explicit_bounds, [10.0, 100.0]);
            assert_eq!(p.bucket_counts, [1, 1, 1]);
        }
        other => panic!("order.value is a histogram: {other:?}"),
    }
    match &metrics["queue.depth"].data {
        Some(metric::Data::Gauge(g)) => {
            assert_eq!(
                g.data_points[0].value,
                Some(number_data_point::Value::AsInt(-7))
            );
            assert_eq!(
                string_attr(&g.data_points[0].attributes, "queue"),
                Some("q1")
            );
        }
        other => panic!("queue.depth is a gauge: {other:?}"),
    }
    match &metrics["big.gauge"].data {
        Some(metric::Data::Gauge(g)) => {
            assert_eq!(
                g.data_points[0].value,
                Some(number_data_point::Value::AsInt(BIG_INT))
            );
        }
        other => panic!("big.gauge is a gauge: {other:?}"),
    }
    match &metrics["requests.inflight"].data {
        Some(metric::Data::Sum(sum)) => {
            assert!(!sum.is_monotonic);
            assert_eq!(
                sum.data_points[0].value,
                Some(number_data_point::Value::AsInt(3))
            );
        }
        other => panic!("requests.inflight is a sum: {other:?}"),
    }
}

fn emit_logs(provider: &SdkLoggerProvider, scope: InstrumentationScope) {
    let logger = provider.logger_with_scope(scope);
    let mut record = logger.create_log_record();
    record.set_timestamp(at(5_000 * MS));
    record.set_observed_timestamp(at(5_000 * MS + 500));
    record.set_severity_number(Severity::Info);
    record.set_severity_text("INFO");
    record.set_body("order created".into());
    record.set_event_name("order.created");
    record.add_attribute("order.id", BIG_INT);
    record.set_trace_context(
        TraceId::from_bytes(TRACE_ID.to_be_bytes()),
        SpanId::from_bytes(FIRST_SPAN_ID.to_be_bytes()),
        Some(TraceFlags::SAMPLED),
    );
    logger.emit(record);

    let mut record = logger.create_log_record();
    record.set_timestamp(at(5_001 * MS));
    record.set_observed_timestamp(at(5_001 * MS));
    record.set_severity_number(Severity::Error);
    record.set_severity_text("ERROR");
    record.set_body(LogValue::ListAny(Box::new(vec![
        LogValue::Int(1),
        LogValue::String("two".into()),
        LogValue::Boolean(false),
    ])));
    record.add_attribute("payload", LogValue::Bytes(Box::new(vec![0x00, 0xff])));
    logger.emit(record);
}

fn check_rust_logs(request: &ExportLogsServiceRequest) {
    let records: Vec<&LogRecord> = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .collect();
    assert_eq!(records.len(), 2);
    let info = records[0];
    assert_eq!(
        (info.time_unix_nano, info.observed_time_unix_nano),
        (T0 + 5_000 * MS, T0 + 5_000 * MS + 500)
    );
    assert_eq!(
        (info.severity_number, info.severity_text.as_str()),
        (9, "INFO")
    );
    assert_eq!(
        info.body.as_ref().and_then(|b| b.value.as_ref()),
        Some(&any_value::Value::StringValue("order created".into()))
    );
    assert_eq!(info.event_name, "order.created");
    assert_eq!(int_attr(&info.attributes, "order.id"), Some(BIG_INT));
    assert_eq!(info.trace_id, TRACE_ID.to_be_bytes().to_vec());
    assert_eq!(info.span_id, span_id(0));
    assert_eq!(info.flags & 0xff, 1, "sampled");

    let error = records[1];
    assert_eq!(
        (error.severity_number, error.severity_text.as_str()),
        (17, "ERROR")
    );
    match error.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::ArrayValue(list)) => {
            let values: Vec<_> = list.values.iter().map(|v| v.value.clone()).collect();
            assert_eq!(
                values,
                [
                    Some(any_value::Value::IntValue(1)),
                    Some(any_value::Value::StringValue("two".into())),
                    Some(any_value::Value::BoolValue(false))
                ]
            );
        }
        other => panic!("list body: {other:?}"),
    }
    assert_eq!(
        attr(&error.attributes, "payload"),
        Some(&any_value::Value::BytesValue(vec![0x00, 0xff]))
    );
    assert!(error.trace_id.is_empty());
}

// --- Python -------------------------------------------------------------------------

const PY_TRACE_ID: u128 = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736;
const PY_SPAN_IDS: [u64; 3] = [0x1000_0000_0000_0001, 0x0000_0000_0000_00f2, u64::MAX];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_http_protobuf() {
    if !python::python_available() {
        return;
    }
    let venv = tokio::task::spawn_blocking(|| python::setup_venv("proto"))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));

    let sink = TestSink::new();
    let receiver = start(
        HttpReceiverConfig::builder().tenant(TenantSource::Header("content-type".parse().unwrap())),
        sink.clone(),
    )
    .await;
    let endpoint = format!("http://{}", receiver.local_addr());
    let output = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(venv.join("bin/python"));
        cmd.arg(python::repo_root().join("interop/python/send_http.py"))
            .arg(&endpoint);
        python::run_bounded(cmd, python::RUN_TIMEOUT)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "send_http.py failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let payloads = sink.take();
    for p in &payloads {
        assert_eq!(p.header().tenant.as_deref(), Some("application/x-protobuf"));
    }
    let snapshot = receiver.metrics().snapshot();
    assert_eq!(
        (
            snapshot.traces.accepted,
            snapshot.metrics.accepted,
            snapshot.logs.accepted
        ),
        (1, 1, 1),
        "one request per signal"
    );
    assert!(
        snapshot.traces.bytes_received < snapshot.traces.bytes_decompressed,
        "traces came gzip-compressed: {:?}",
        snapshot.traces
    );
    check_python_spans(&merged(&payloads));
    check_python_metrics(&merged(&payloads));
    check_python_logs(&merged(&payloads));
}

fn check_python_spans(request: &ExportTraceServiceRequest) {
    let resource = request.resource_spans[0]
        .resource
        .as_ref()
        .expect("resource");
    assert_eq!(
        string_attr(&resource.attributes, "service.name"),
        Some("python-interop")
    );
    let scope_spans = &request.resource_spans[0].scope_spans[0];
    let scope = scope_spans.scope.as_ref().expect("scope");
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("interop.python", "0.1.0")
    );
    let spans: BTreeMap<&str, &Span> = scope_spans
        .spans
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    assert_eq!(spans.len(), 3, "{:?}", spans.keys());
    let trace_id = PY_TRACE_ID.to_be_bytes().to_vec();
    let id = |i: usize| PY_SPAN_IDS[i].to_be_bytes().to_vec();

    let root = spans["POST /checkout"];
    assert_eq!(
        (root.trace_id.clone(), root.span_id.clone()),
        (trace_id.clone(), id(0))
    );
    assert_eq!(root.kind, 2, "SERVER");
    assert_eq!(
        (root.start_time_unix_nano, root.end_time_unix_nano),
        (T0, T0 + 100 * MS)
    );
    assert_eq!(
        string_attr(&root.attributes, "http.request.method"),
        Some("POST")
    );
    assert_eq!(int_attr(&root.attributes, "int.big"), Some(BIG_INT));
    assert_eq!(
        attr(&root.attributes, "double.quarter"),
        Some(&any_value::Value::DoubleValue(0.25))
    );
    assert_eq!(
        attr(&root.attributes, "bool.flag"),
        Some(&any_value::Value::BoolValue(true))
    );
    assert_eq!(root.events[0].name, "payment.authorized");
    assert_eq!(root.events[0].time_unix_nano, T0 + 30 * MS);
    assert_eq!(
        int_attr(&root.events[0].attributes, "amount.cents"),
        Some(1999)
    );
    let status = root.status.as_ref().expect("status");
    assert_eq!((status.code, status.message.as_str()), (2, "card declined"));

    let client = spans["POST /payments"];
    assert_eq!(
        (client.span_id.clone(), client.parent_span_id.clone()),
        (id(1), id(0))
    );
    assert_eq!(client.kind, 3, "CLIENT");
    assert_eq!(
        client.links[0].trace_id,
        LINKED_TRACE.to_be_bytes().to_vec()
    );
    assert_eq!(client.links[0].span_id, LINKED_SPAN.to_be_bytes().to_vec());
    assert_eq!(
        string_attr(&client.links[0].attributes, "link.kind"),
        Some("follows")
    );

    let render = spans["render receipt"];
    assert_eq!(
        (render.span_id.clone(), render.parent_span_id.clone()),
        (id(2), id(0))
    );
    assert_eq!(
        (render.start_time_unix_nano, render.end_time_unix_nano),
        (T0 + 50 * MS, T0 + 60 * MS)
    );
}

fn check_python_metrics(request: &ExportMetricsServiceRequest) {
    let metrics = by_name(request);
    assert_eq!(
        metrics.keys().copied().collect::<Vec<_>>(),
        [
            "order.value",
            "orders.created",
            "queue.depth",
            "requests.inflight"
        ]
    );
    match &metrics["orders.created"].data {
        Some(metric::Data::Sum(sum)) => {
            assert!(sum.is_monotonic);
            let mut values: Vec<_> = sum
                .data_points
                .iter()
                .map(|p| {
                    (
                        string_attr(&p.attributes, "region")
                            .unwrap_or("")
                            .to_owned(),
                        p.value,
                    )
                })
                .collect();
            values.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(
                values,
                [
                    ("eu".to_owned(), Some(number_data_point::Value::AsInt(3))),
                    ("us".to_owned(), Some(number_data_point::Value::AsInt(2)))
                ]
            );
        }
        other => panic!("orders.created: {other:?}"),
    }
    match &metrics["order.value"].data {
        Some(metric::Data::Histogram(h)) => {
            let p = &h.data_points[0];
            assert_eq!(
                (p.count, p.sum, p.min, p.max),
                (3, Some(555.0), Some(5.0), Some(500.0))
            );
            assert_eq!(
                (p.explicit_bounds.as_slice(), p.bucket_counts.as_slice()),
                (&[10.0, 100.0][..], &[1, 1, 1][..])
            );
        }
        other => panic!("order.value: {other:?}"),
    }
    match &metrics["queue.depth"].data {
        Some(metric::Data::Gauge(g)) => {
            assert_eq!(
                g.data_points[0].value,
                Some(number_data_point::Value::AsInt(-7))
            );
        }
        other => panic!("queue.depth: {other:?}"),
    }
    match &metrics["requests.inflight"].data {
        Some(metric::Data::Sum(sum)) => {
            assert!(!sum.is_monotonic);
            assert_eq!(
                sum.data_points[0].value,
                Some(number_data_point::Value::AsInt(3))
            );
        }
        other => panic!("requests.inflight: {other:?}"),
    }
    let points: usize = metrics.values().map(|m| point_count(m)).sum();
    assert_eq!(points, 5);
}

fn check_python_logs(request: &ExportLogsServiceRequest) {
    let records: Vec<&LogRecord> = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .collect();
    assert_eq!(records.len(), 3);
    let info = records[0];
    assert_eq!(
        (info.time_unix_nano, info.observed_time_unix_nano),
        (T0 + 5_000 * MS, T0 + 5_000 * MS + 500)
    );
    assert_eq!(
        (info.severity_number, info.severity_text.as_str()),
        (9, "INFO")
    );
    assert_eq!(info.event_name, "order.created");
    assert_eq!(info.trace_id, PY_TRACE_ID.to_be_bytes().to_vec());
    assert_eq!(info.span_id, PY_SPAN_IDS[0].to_be_bytes().to_vec());
    assert_eq!(int_attr(&info.attributes, "order.id"), Some(BIG_INT));
    assert_eq!(
        info.body.as_ref().and_then(|b| b.value.as_ref()),
        Some(&any_value::Value::StringValue("order created".into()))
    );
    match records[1].body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::KvlistValue(map)) => {
            assert_eq!(int_attr(&map.values, "retry"), Some(2));
            assert_eq!(string_attr(&map.values, "reason"), Some("slow upstream"));
        }
        other => panic!("map body: {other:?}"),
    }
    assert_eq!(records[1].severity_number, 13, "WARN");
    assert_eq!(
        records[2].body.as_ref().and_then(|b| b.value.as_ref()),
        Some(&any_value::Value::BytesValue(vec![0x00, 0xff]))
    );
    assert_eq!(
        string_attr(&records[2].attributes, "error.type"),
        Some("timeout")
    );
}

// --- helpers ------------------------------------------------------------------------

/// Every payload of `T`'s signal decoded and joined into one request (the resource
/// lists concatenated, as protobuf concatenation would).
fn merged<T: otlp_core::OtlpRequest>(payloads: &[Payload]) -> T {
    let mut bytes = Vec::new();
    for p in payloads.iter().filter(|p| p.signal() == T::SIGNAL) {
        p.decode::<T>().expect("payload decodes");
        bytes.extend_from_slice(p.body());
    }
    otlp_core::codec::protobuf::decode(&bytes).expect("joined payloads decode")
}

fn by_name(request: &ExportMetricsServiceRequest) -> BTreeMap<&str, &Metric> {
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| (m.name.as_str(), m))
        .collect()
}

fn point_count(metric: &Metric) -> usize {
    match &metric.data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

fn attr<'a>(attributes: &'a [ProtoKeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn string_attr<'a>(attributes: &'a [ProtoKeyValue], key: &str) -> Option<&'a str> {
    match attr(attributes, key)? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn int_attr(attributes: &[ProtoKeyValue], key: &str) -> Option<i64> {
    match attr(attributes, key)? {
        any_value::Value::IntValue(i) => Some(*i),
        _ => None,
    }
}
