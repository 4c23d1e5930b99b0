//! Interop: the official OpenTelemetry SDKs export to our OTLP/gRPC receiver, and
//! everything they were told to emit arrives intact.
//!
//! 1. Rust: `opentelemetry_sdk` providers with `opentelemetry-otlp`'s tonic exporters
//!    (`with_tonic()`), driven by the SDK's tokio-runtime processors (tonic needs a
//!    runtime): plain, and gzip with an `authorization: Bearer` metadata entry that the
//!    receiver's bearer auth checks. What arrives is compared with what the SDK's own
//!    transform makes of the same spans and log records (kept by a second processor),
//!    and field by field with what the test emitted. A wrong token is refused with
//!    UNAUTHENTICATED and nothing reaches the sink.
//! 2. Python: `interop/python/emit_grpc.py` (the SDK with
//!    `opentelemetry-exporter-otlp-proto-grpc` 1.45.2, in the `grpc` venv of
//!    `interop/setup-venv.sh`), plain, and gzip with a bearer token: the bytes the sink
//!    got are byte for byte the `sent-<signal>.<n>.pb` files the script wrote, and the
//!    counts, ids, names and log bodies equal its `summary.json`.
//!
//! The receiver records each call's `grpc-encoding` and `user-agent` as the payload's
//! tenant, which shows which peer sent it and whether it really compressed.
//!
//! These tests never skip: without `python3` the Python ones fail, saying why.

mod receiver_support;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use opentelemetry::logs::{
    AnyValue as LogValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity,
};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, InstrumentationScope, KeyValue, SpanId, TraceId, Value};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::log_processor_with_async_runtime::BatchLogProcessor;
use opentelemetry_sdk::logs::{LogBatch, LogProcessor, SdkLogRecord, SdkLoggerProvider};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{
    IdGenerator, SdkTracerProvider, SpanData, SpanExporter as _, SpanProcessor,
};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{
    AnyValue, InstrumentationScope as ProtoScope, KeyValue as ProtoKeyValue, any_value,
};
use otlp_core::proto::logs::v1::LogRecord;
use otlp_core::proto::metrics::v1::{Metric, metric, number_data_point};
use otlp_core::proto::resource::v1::Resource as ProtoResource;
use otlp_core::proto::trace::v1::{Span, span, status};
use otlp_core::{GrpcCode, OtlpRequest, Payload, Signal};
use otlp_transport_grpc::receiver::{
    AuthConfig, GrpcReceiverConfig, RunningGrpcReceiver, TenantFn, TenantSource,
};
use receiver_support::{TestSink, bounded, start};
use support::python;

/// 2023-11-14T22:13:20Z in Unix nanoseconds: every emitted timestamp is an offset from it.
const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;
/// 2^53 + 1: an integer a double would corrupt.
const BIG_INT: i64 = (1 << 53) + 1;

const TRACE_ID: u128 = 0x00c4_1e55_77b3_4da6_a3ce_929d_0e0e_4736;
const FIRST_SPAN_ID: u64 = 0x00f0_67aa_0ba9_0200;
const LINKED_TRACE: u128 = 0xffff_ffff_ffff_ffff_ffff_ffff_ffff_fffe;
const LINKED_SPAN: u64 = 0x8000_0000_0000_0001;

/// The bearer token of the authenticated runs.
const TOKEN: &str = "interop-s3cret";

/// How long one Python script run may take, start-up and venv check included (the
/// helper kills it after `python::RUN_TIMEOUT`).
const PYTHON_RUN: Duration = Duration::from_secs(120);
/// The first venv install downloads from PyPI; later calls return at once.
const VENV_SETUP: Duration = Duration::from_secs(660);

fn at(offset_ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(T0 + offset_ns)
}

fn span_id(n: u64) -> Vec<u8> {
    (FIRST_SPAN_ID + n).to_be_bytes().to_vec()
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

/// Keeps every ended span and emitted log record, to compute what the SDK's transform
/// (the one `opentelemetry-otlp` encodes with) makes of them.
#[derive(Debug, Default, Clone)]
struct Keep {
    spans: Arc<Mutex<Vec<SpanData>>>,
    logs: Arc<Mutex<Vec<(SdkLogRecord, InstrumentationScope)>>>,
}

impl SpanProcessor for Keep {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.spans.lock().unwrap().push(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

impl LogProcessor for Keep {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        self.logs
            .lock()
            .unwrap()
            .push((record.clone(), scope.clone()));
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
}

/// The tenant of every call: its `grpc-encoding` (identity when absent) and
/// `user-agent`, as `ENCODING|USER-AGENT`.
fn call_info() -> TenantSource {
    let f: TenantFn = Arc::new(|parts: &http::request::Parts| {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let encoding = header("grpc-encoding").unwrap_or_else(|| "identity".to_owned());
        let agent = header("user-agent").unwrap_or_default();
        Ok(Some(format!("{encoding}|{agent}").into()))
    });
    TenantSource::Custom(f)
}

fn tenant_parts(payload: &Payload) -> (String, String) {
    let tenant = payload.header().tenant.as_deref().expect("a tenant");
    let (encoding, agent) = tenant.split_once('|').expect("ENCODING|AGENT");
    (encoding.to_owned(), agent.to_owned())
}

async fn receiver(auth: bool, sink: Arc<TestSink>) -> RunningGrpcReceiver {
    let mut builder = GrpcReceiverConfig::builder().tenant(call_info());
    if auth {
        builder = builder.auth(AuthConfig::bearer([TOKEN]));
    }
    start(builder, sink).await
}

// --- Rust: opentelemetry-otlp with tonic ---------------------------------------------

/// How the official exporters are set up for one run.
#[derive(Debug, Clone, Copy)]
struct Setup {
    gzip: bool,
    token: Option<&'static str>,
}

/// `builder` (an `opentelemetry-otlp` exporter builder after `with_tonic()`) pointed at
/// `endpoint` with the run's compression and metadata.
fn configure<B: WithExportConfig + WithTonicConfig>(builder: B, endpoint: &str, setup: Setup) -> B {
    let mut builder = builder
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(10));
    if setup.gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    if let Some(token) = setup.token {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ASCII metadata"),
        );
        builder = builder.with_metadata(metadata);
    }
    builder
}

fn rust_resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "rust-grpc-interop"),
            KeyValue::new("service.instance.id", "rs-0001"),
            KeyValue::new("host.cores", 2_i64),
        ])
        .build()
}

fn rust_scope() -> InstrumentationScope {
    InstrumentationScope::builder("interop.rust.grpc")
        .with_version("1.2.3")
        .with_schema_url("https://opentelemetry.io/schemas/1.26.0")
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rust_sdk_tonic_plain() {
    rust_sdk_round_trip(Setup {
        gzip: false,
        token: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rust_sdk_tonic_gzip_with_bearer_metadata() {
    rust_sdk_round_trip(Setup {
        gzip: true,
        token: Some(TOKEN),
    })
    .await;
}

async fn rust_sdk_round_trip(setup: Setup) {
    let sink = TestSink::new();
    let receiver = receiver(setup.token.is_some(), sink.clone()).await;
    let endpoint = format!("http://{}", receiver.local_addr());
    let keep = Keep::default();

    // --- traces
    let exporter = configure(
        opentelemetry_otlp::SpanExporter::builder().with_tonic(),
        &endpoint,
        setup,
    )
    .build()
    .expect("span exporter");
    let tracer_provider = SdkTracerProvider::builder()
        .with_span_processor(keep.clone())
        .with_span_processor(BatchSpanProcessor::builder(exporter, Tokio).build())
        .with_id_generator(CountingIds::default())
        .with_resource(rust_resource())
        .build();
    emit_spans(&tracer_provider);

    // --- metrics
    let exporter = configure(
        opentelemetry_otlp::MetricExporter::builder().with_tonic(),
        &endpoint,
        setup,
    )
    .build()
    .expect("metric exporter");
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(
            // Collected once, at shutdown.
            PeriodicReader::builder(exporter, Tokio)
                .with_interval(Duration::from_secs(3600))
                .build(),
        )
        .with_resource(rust_resource())
        .build();
    let _observable = emit_metrics(&meter_provider);

    // --- logs
    let exporter = configure(
        opentelemetry_otlp::LogExporter::builder().with_tonic(),
        &endpoint,
        setup,
    )
    .build()
    .expect("log exporter");
    let logger_provider = SdkLoggerProvider::builder()
        .with_log_processor(keep.clone())
        .with_log_processor(BatchLogProcessor::builder(exporter, Tokio).build())
        .with_resource(rust_resource())
        .build();
    emit_logs(&logger_provider);

    // Shutting a provider down exports what it holds (the meter provider collects once
    // more) and blocks its thread until the export is done: off the runtime.
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
    .expect("shutdown thread");

    let payloads = sink.take();
    let expected_encoding = if setup.gzip { "gzip" } else { "identity" };
    for p in &payloads {
        let (encoding, agent) = tenant_parts(p);
        assert_eq!(encoding, expected_encoding, "{} call", p.signal());
        assert!(
            agent.contains("OTel-OTLP-Exporter-Rust"),
            "sent by opentelemetry-otlp: {agent}"
        );
        // The receiver's item count (a framing walk) matches a full decode.
        assert_eq!(p.items(), decoded_items(p), "{} payload", p.signal());
    }

    // 1. Whole messages: what arrived is what the SDK's transform builds from the
    //    same spans and log records.
    let traces: ExportTraceServiceRequest = merged(&payloads);
    let kept_spans = keep.spans.lock().unwrap().clone();
    let expected = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            kept_spans,
            &ResourceAttributesWithSchema::from(&rust_resource()),
        ),
    };
    assert_eq!(flat_spans(&traces), flat_spans(&expected));

    let logs: ExportLogsServiceRequest = merged(&payloads);
    let kept_logs = keep.logs.lock().unwrap().clone();
    let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
        kept_logs.iter().map(|(r, s)| (r, s)).collect();
    let expected = ExportLogsServiceRequest {
        resource_logs: group_logs_by_resource_and_scope(
            &LogBatch::new(&refs),
            &ResourceAttributesWithSchema::from(&rust_resource()),
        ),
    };
    assert_eq!(flat_logs(&logs), flat_logs(&expected));

    // 2. Field by field against what the test emitted.
    check_rust_spans(&traces);
    let metrics: ExportMetricsServiceRequest = merged(&payloads);
    check_rust_metrics(&metrics);
    check_rust_logs(&logs);

    let snapshot = receiver.metrics().snapshot();
    assert_eq!(snapshot.traces.items_accepted, 3);
    assert_eq!(snapshot.metrics.items_accepted, 7);
    assert_eq!(snapshot.metrics.accepted, 1, "one collection, one call");
    assert_eq!(snapshot.logs.items_accepted, 4);
    assert_eq!(
        snapshot.requests(),
        snapshot.traces.accepted + snapshot.metrics.accepted + snapshot.logs.accepted,
        "every call accepted: {snapshot:?}"
    );
    assert_eq!(snapshot.requests(), payloads.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_tonic_with_a_wrong_token_is_unauthenticated() {
    let sink = TestSink::new();
    let receiver = receiver(true, sink.clone()).await;
    let endpoint = format!("http://{}", receiver.local_addr());

    // A real span from the SDK, kept instead of exported.
    let keep = Keep::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(keep.clone())
        .with_id_generator(CountingIds::default())
        .build();
    let tracer = provider.tracer_with_scope(rust_scope());
    tracer.span_builder("GET /health").start(&tracer).end();
    let batch = keep.spans.lock().unwrap().clone();
    assert_eq!(batch.len(), 1);

    // A wrong token, and none at all.
    for (token, gzip) in [(Some("wrong-token"), false), (None, true)] {
        let exporter = configure(
            opentelemetry_otlp::SpanExporter::builder().with_tonic(),
            &endpoint,
            Setup { gzip, token },
        )
        .build()
        .expect("span exporter");
        let result = bounded("export with a wrong token", exporter.export(batch.clone())).await;
        let error = result.expect_err("the receiver refuses a wrong token");
        assert!(
            error.to_string().contains("Unauthenticated"),
            "UNAUTHENTICATED, not retried: {error}"
        );
    }
    assert!(sink.take().is_empty(), "nothing reached the sink");
    let snapshot = receiver.metrics().snapshot();
    assert_eq!(
        snapshot.traces.responses_with(GrpcCode::Unauthenticated),
        2,
        "{snapshot:?}"
    );
    assert_eq!(snapshot.requests(), 2, "one call each: not retried");
}

fn emit_spans(provider: &SdkTracerProvider) {
    let tracer = provider.tracer_with_scope(rust_scope());
    // Span 0: the server span, every attribute value type.
    let mut root = tracer
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_start_time(at(0))
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("int.big", BIG_INT),
            KeyValue::new("int.min", i64::MIN),
            KeyValue::new("int.max", i64::MAX),
            KeyValue::new("double.pi", std::f64::consts::PI),
            KeyValue::new("double.tiny", f64::MIN_POSITIVE),
            KeyValue::new("bool.true", true),
            KeyValue::new(
                "array.string",
                Value::Array(Array::String(vec!["a".into(), "\u{e9}\u{1F600}".into()])),
            ),
            KeyValue::new("array.int", Value::Array(Array::I64(vec![-1, 0, BIG_INT]))),
            KeyValue::new("array.double", Value::Array(Array::F64(vec![0.5, -2.25]))),
            KeyValue::new("array.bool", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("string.unicode", "h\u{e9}llo \u{2713} \"q\" \\ \n\t\u{1}"),
            KeyValue::new("string.empty", ""),
        ])
        .start(&tracer);
    root.add_event_with_timestamp(
        "payment.authorized",
        at(30 * MS),
        vec![
            KeyValue::new("amount.cents", 1999_i64),
            KeyValue::new("currency", "EUR"),
        ],
    );
    root.add_event_with_timestamp("cache.miss", at(31 * MS), vec![]);
    root.set_status(Status::error("card declined"));
    let cx = Context::current_with_span(root);

    // Span 1: a client child with a link to a remote span that carries a trace state.
    let linked = SpanContext::new(
        TraceId::from_bytes(LINKED_TRACE.to_be_bytes()),
        SpanId::from_bytes(LINKED_SPAN.to_be_bytes()),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("vendor", "v1")]).expect("valid trace state"),
    );
    let mut child = tracer
        .span_builder("POST /payments")
        .with_kind(SpanKind::Client)
        .with_start_time(at(20 * MS))
        .with_links(vec![Link::new(
            linked,
            vec![KeyValue::new("link.kind", "follows")],
            0,
        )])
        .with_attributes([KeyValue::new("server.port", 8443_i64)])
        .start_with_context(&tracer, &cx);
    child.set_status(Status::Ok);
    child.end_with_timestamp(at(120 * MS));

    // Span 2: a producer child without attributes.
    let mut producer = tracer
        .span_builder("publish receipt")
        .with_kind(SpanKind::Producer)
        .with_start_time(at(130 * MS))
        .start_with_context(&tracer, &cx);
    producer.end_with_timestamp(at(140 * MS));

    cx.span().end_with_timestamp(at(250 * MS));
}

fn check_rust_spans(request: &ExportTraceServiceRequest) {
    let resource = request.resource_spans[0]
        .resource
        .as_ref()
        .expect("resource");
    assert_eq!(
        string_attr(&resource.attributes, "service.name"),
        Some("rust-grpc-interop")
    );
    assert_eq!(int_attr(&resource.attributes, "host.cores"), Some(2));
    let scope_spans: Vec<_> = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .collect();
    let scope = scope_spans[0].scope.as_ref().expect("scope");
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("interop.rust.grpc", "1.2.3")
    );
    assert_eq!(
        scope_spans[0].schema_url,
        "https://opentelemetry.io/schemas/1.26.0"
    );
    let spans: BTreeMap<&str, &Span> = scope_spans
        .iter()
        .flat_map(|s| &s.spans)
        .map(|s| (s.name.as_str(), s))
        .collect();
    assert_eq!(spans.len(), 3, "{:?}", spans.keys());
    let trace_id = TRACE_ID.to_be_bytes().to_vec();

    let root = spans["POST /checkout"];
    assert_eq!(root.trace_id, trace_id, "leading zero byte kept");
    assert_eq!(root.span_id, span_id(0));
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.kind, span::SpanKind::Server as i32);
    assert_eq!(
        (root.start_time_unix_nano, root.end_time_unix_nano),
        (T0, T0 + 250 * MS)
    );
    assert_eq!(
        string_attr(&root.attributes, "http.request.method"),
        Some("POST")
    );
    assert_eq!(int_attr(&root.attributes, "int.big"), Some(BIG_INT));
    assert_eq!(int_attr(&root.attributes, "int.min"), Some(i64::MIN));
    assert_eq!(int_attr(&root.attributes, "int.max"), Some(i64::MAX));
    assert_eq!(
        attr(&root.attributes, "double.pi"),
        Some(&any_value::Value::DoubleValue(std::f64::consts::PI))
    );
    assert_eq!(
        attr(&root.attributes, "double.tiny"),
        Some(&any_value::Value::DoubleValue(f64::MIN_POSITIVE))
    );
    assert_eq!(
        attr(&root.attributes, "bool.true"),
        Some(&any_value::Value::BoolValue(true))
    );
    assert_eq!(
        array_attr(&root.attributes, "array.string"),
        [
            any_value::Value::StringValue("a".into()),
            any_value::Value::StringValue("\u{e9}\u{1F600}".into())
        ]
    );
    assert_eq!(
        array_attr(&root.attributes, "array.int"),
        [
            any_value::Value::IntValue(-1),
            any_value::Value::IntValue(0),
            any_value::Value::IntValue(BIG_INT)
        ]
    );
    assert_eq!(
        array_attr(&root.attributes, "array.double"),
        [
            any_value::Value::DoubleValue(0.5),
            any_value::Value::DoubleValue(-2.25)
        ]
    );
    assert_eq!(
        array_attr(&root.attributes, "array.bool"),
        [
            any_value::Value::BoolValue(true),
            any_value::Value::BoolValue(false)
        ]
    );
    assert_eq!(
        string_attr(&root.attributes, "string.unicode"),
        Some("h\u{e9}llo \u{2713} \"q\" \\ \n\t\u{1}")
    );
    assert_eq!(string_attr(&root.attributes, "string.empty"), Some(""));
    assert_eq!(root.attributes.len(), 13);
    assert_eq!(root.dropped_attributes_count, 0);
    let events: Vec<(&str, u64)> = root
        .events
        .iter()
        .map(|e| (e.name.as_str(), e.time_unix_nano))
        .collect();
    assert_eq!(
        events,
        [
            ("payment.authorized", T0 + 30 * MS),
            ("cache.miss", T0 + 31 * MS)
        ]
    );
    assert_eq!(
        int_attr(&root.events[0].attributes, "amount.cents"),
        Some(1999)
    );
    assert_eq!(
        string_attr(&root.events[0].attributes, "currency"),
        Some("EUR")
    );
    assert!(root.events[1].attributes.is_empty());
    let status = root.status.as_ref().expect("status");
    assert_eq!(
        (status.code, status.message.as_str()),
        (status::StatusCode::Error as i32, "card declined")
    );

    let child = spans["POST /payments"];
    assert_eq!(child.trace_id, trace_id);
    assert_eq!(child.span_id, span_id(1));
    assert_eq!(child.parent_span_id, span_id(0));
    assert_eq!(child.kind, span::SpanKind::Client as i32);
    assert_eq!(
        (child.start_time_unix_nano, child.end_time_unix_nano),
        (T0 + 20 * MS, T0 + 120 * MS)
    );
    assert_eq!(int_attr(&child.attributes, "server.port"), Some(8443));
    assert_eq!(child.links.len(), 1);
    let link = &child.links[0];
    assert_eq!(link.trace_id, LINKED_TRACE.to_be_bytes().to_vec());
    assert_eq!(link.span_id, LINKED_SPAN.to_be_bytes().to_vec());
    assert_eq!(link.trace_state, "vendor=v1");
    assert_eq!(string_attr(&link.attributes, "link.kind"), Some("follows"));
    assert_eq!(
        child.status.as_ref().map(|s| s.code),
        Some(status::StatusCode::Ok as i32)
    );

    let producer = spans["publish receipt"];
    assert_eq!(producer.parent_span_id, span_id(0));
    assert_eq!(producer.span_id, span_id(2));
    assert_eq!(producer.kind, span::SpanKind::Producer as i32);
    assert_eq!(
        (producer.start_time_unix_nano, producer.end_time_unix_nano),
        (T0 + 130 * MS, T0 + 140 * MS)
    );
    assert!(producer.attributes.is_empty() && producer.events.is_empty());
}

/// Records every kind of instrument; returns the observable gauge, which must live until
/// the last collection.
fn emit_metrics(provider: &SdkMeterProvider) -> opentelemetry::metrics::ObservableGauge<f64> {
    let meter = provider.meter_with_scope(rust_scope());
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
        value.record(v, &[KeyValue::new("currency", "EUR")]);
    }
    let depth = meter.i64_gauge("queue.depth").build();
    depth.record(-7, &[KeyValue::new("queue", "q1")]);
    let inflight = meter.i64_up_down_counter("requests.inflight").build();
    inflight.add(4, &[]);
    inflight.add(-1, &[]);
    let big = meter.i64_gauge("big.gauge").build();
    big.record(BIG_INT, &[]);
    meter
        .f64_observable_gauge("cpu.temperature")
        .with_unit("Cel")
        .with_callback(|observer| observer.observe(41.5, &[KeyValue::new("core", 0_i64)]))
        .build()
}

fn check_rust_metrics(request: &ExportMetricsServiceRequest) {
    let resource = request.resource_metrics[0]
        .resource
        .as_ref()
        .expect("resource");
    assert_eq!(
        string_attr(&resource.attributes, "service.name"),
        Some("rust-grpc-interop")
    );
    let scope_metrics: Vec<_> = request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .collect();
    assert_eq!(
        scope_metrics[0]
            .scope
            .as_ref()
            .map(|s| (s.name.as_str(), s.version.as_str())),
        Some(("interop.rust.grpc", "1.2.3"))
    );
    let metrics = by_name(request);
    assert_eq!(
        metrics.keys().copied().collect::<Vec<_>>(),
        [
            "big.gauge",
            "cpu.temperature",
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
            assert_eq!(h.aggregation_temporality, 2, "cumulative");
            let p = &h.data_points[0];
            assert_eq!(
                (p.count, p.sum, p.min, p.max),
                (3, Some(555.0), Some(5.0), Some(500.0))
            );
            assert_eq!(p.explicit_bounds, [10.0, 100.0]);
            assert_eq!(p.bucket_counts, [1, 1, 1]);
            assert_eq!(string_attr(&p.attributes, "currency"), Some("EUR"));
        }
        other => panic!("order.value is a histogram: {other:?}"),
    }
    let gauge_point = |name: &str| match &metrics[name].data {
        Some(metric::Data::Gauge(g)) => {
            assert_eq!(g.data_points.len(), 1, "{name}");
            g.data_points[0].clone()
        }
        other => panic!("{name} is a gauge: {other:?}"),
    };
    let depth = gauge_point("queue.depth");
    assert_eq!(depth.value, Some(number_data_point::Value::AsInt(-7)));
    assert_eq!(string_attr(&depth.attributes, "queue"), Some("q1"));
    assert_eq!(
        gauge_point("big.gauge").value,
        Some(number_data_point::Value::AsInt(BIG_INT))
    );
    let temperature = gauge_point("cpu.temperature");
    assert_eq!(metrics["cpu.temperature"].unit, "Cel");
    assert_eq!(
        temperature.value,
        Some(number_data_point::Value::AsDouble(41.5))
    );
    assert_eq!(int_attr(&temperature.attributes, "core"), Some(0));
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
    let points: usize = metrics.values().map(|m| point_count(m)).sum();
    assert_eq!(points, 7);
}

fn emit_logs(provider: &SdkLoggerProvider) {
    let logger = provider.logger_with_scope(rust_scope());
    let mut record = logger.create_log_record();
    record.set_timestamp(at(5_000 * MS));
    record.set_observed_timestamp(at(5_000 * MS + 500));
    record.set_severity_number(Severity::Info);
    record.set_severity_text("INFO");
    record.set_body("order created \u{1F600}".into());
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
        LogValue::Double(2.5),
    ])));
    record.add_attribute("payload", LogValue::Bytes(Box::new(vec![0x00, 0xff])));
    logger.emit(record);

    let mut record = logger.create_log_record();
    record.set_timestamp(at(5_002 * MS));
    record.set_observed_timestamp(at(5_002 * MS));
    record.set_severity_number(Severity::Warn);
    record.set_severity_text("WARN");
    let mut map = HashMap::new();
    map.insert("retry".into(), LogValue::Int(2));
    map.insert("reason".into(), LogValue::String("slow upstream".into()));
    map.insert(
        "nested".into(),
        LogValue::ListAny(Box::new(vec![LogValue::Bytes(Box::new(vec![7]))])),
    );
    record.set_body(LogValue::Map(Box::new(map)));
    logger.emit(record);

    let mut record = logger.create_log_record();
    record.set_observed_timestamp(at(5_003 * MS));
    record.set_severity_number(Severity::Fatal);
    record.set_body(LogValue::Int(BIG_INT));
    logger.emit(record);
}

fn check_rust_logs(request: &ExportLogsServiceRequest) {
    let scope = request.resource_logs[0].scope_logs[0]
        .scope
        .as_ref()
        .expect("scope");
    assert_eq!(scope.name, "interop.rust.grpc");
    let records: Vec<&LogRecord> = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .collect();
    assert_eq!(records.len(), 4);
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
        body(info),
        Some(&any_value::Value::StringValue(
            "order created \u{1F600}".into()
        ))
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
    match body(error) {
        Some(any_value::Value::ArrayValue(list)) => {
            let values: Vec<_> = list.values.iter().map(|v| v.value.clone()).collect();
            assert_eq!(
                values,
                [
                    Some(any_value::Value::IntValue(1)),
                    Some(any_value::Value::StringValue("two".into())),
                    Some(any_value::Value::BoolValue(false)),
                    Some(any_value::Value::DoubleValue(2.5))
                ]
            );
        }
        other => panic!("list body: {other:?}"),
    }
    assert_eq!(
        attr(&error.attributes, "payload"),
        Some(&any_value::Value::BytesValue(vec![0x00, 0xff]))
    );
    assert!(error.trace_id.is_empty() && error.span_id.is_empty());

    let warn = records[2];
    assert_eq!(
        (warn.severity_number, warn.severity_text.as_str()),
        (13, "WARN")
    );
    match body(warn) {
        Some(any_value::Value::KvlistValue(map)) => {
            assert_eq!(map.values.len(), 3);
            assert_eq!(int_attr(&map.values, "retry"), Some(2));
            assert_eq!(string_attr(&map.values, "reason"), Some("slow upstream"));
            assert_eq!(
                array_attr(&map.values, "nested"),
                [any_value::Value::BytesValue(vec![7])]
            );
        }
        other => panic!("map body: {other:?}"),
    }

    let fatal = records[3];
    assert_eq!(fatal.severity_number, 21);
    assert_eq!(fatal.time_unix_nano, 0, "no timestamp set");
    assert_eq!(fatal.observed_time_unix_nano, T0 + 5_003 * MS);
    assert_eq!(body(fatal), Some(&any_value::Value::IntValue(BIG_INT)));
}

// --- Python: opentelemetry-exporter-otlp-proto-grpc ---------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_grpc_plain() {
    python_round_trip(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_grpc_gzip_with_bearer_metadata() {
    python_round_trip(true).await;
}

/// emit_grpc.py to our receiver: plain without auth, or gzip with a bearer token the
/// receiver requires.
async fn python_round_trip(gzip_and_auth: bool) {
    tokio::time::timeout(
        VENV_SETUP,
        tokio::task::spawn_blocking(python::setup_grpc_venv),
    )
    .await
    .expect("venv set up in time")
    .expect("venv setup thread");

    let sink = TestSink::new();
    let receiver = receiver(gzip_and_auth, sink.clone()).await;
    let out = tempfile::tempdir().expect("temp dir");
    let header = format!("authorization=Bearer {TOKEN}");
    let args: Vec<&str> = if gzip_and_auth {
        vec!["--compression", "gzip", "--header", &header]
    } else {
        vec![]
    };
    let output = tokio::time::timeout(
        PYTHON_RUN,
        python::emit_grpc(receiver.local_addr(), out.path(), &args),
    )
    .await
    .expect("emit_grpc.py finished in time")
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "emit_grpc.py failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = read_summary(out.path());
    assert_eq!(summary.at("ok"), &Json::Bool(true), "{summary:?}");

    let payloads = sink.take();
    let expected_encoding = if gzip_and_auth { "gzip" } else { "identity" };
    for p in &payloads {
        let (encoding, agent) = tenant_parts(p);
        assert_eq!(encoding, expected_encoding, "{} call", p.signal());
        assert!(
            agent.contains("OTel-OTLP-Exporter-Python") && agent.contains("grpc-python"),
            "sent by the Python gRPC exporter: {agent}"
        );
        assert_eq!(p.items(), decoded_items(p), "{} payload", p.signal());
    }

    // Byte for byte what the exporter sent, in call order, for every signal.
    for (signal, name) in [
        (Signal::Traces, "traces"),
        (Signal::Metrics, "metrics"),
        (Signal::Logs, "logs"),
    ] {
        let sent = python::sent_requests(out.path(), name);
        let got: Vec<&[u8]> = payloads
            .iter()
            .filter(|p| p.signal() == signal)
            .map(|p| p.body().as_ref())
            .collect();
        assert_eq!(
            got.len(),
            sent.len(),
            "{name}: calls received vs sent-{name}.*.pb"
        );
        assert!(!sent.is_empty(), "{name}: emit_grpc.py sent nothing");
        for (n, (got, sent)) in got.iter().zip(&sent).enumerate() {
            assert!(
                *got == sent.as_slice(),
                "{name} call {}: {} bytes received, {} bytes sent, not identical",
                n + 1,
                got.len(),
                sent.len()
            );
        }
        assert_eq!(
            summary.at("requests").at(name).count(),
            sent.len() as u64,
            "{name}: summary.json's count"
        );
        assert_eq!(summary.at("failed_requests").at(name).count(), 0);
    }

    // What summary.json says was sent, read from what arrived.
    let traces: ExportTraceServiceRequest = merged(&payloads);
    let spans: Vec<&Span> = traces
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let summary_spans = summary.at("traces").at("spans").items();
    assert_eq!(
        spans.len() as u64,
        summary.at("traces").at("span_count").count()
    );
    assert_eq!(spans.len(), summary_spans.len());
    for (span, expected) in spans.iter().zip(summary_spans) {
        assert_eq!(span.name, expected.at("name").text());
        assert_eq!(hex(&span.trace_id), expected.at("trace_id").text());
        assert_eq!(hex(&span.span_id), expected.at("span_id").text());
        assert_eq!(
            hex(&span.parent_span_id),
            expected.at("parent_span_id").text()
        );
    }

    let metrics: ExportMetricsServiceRequest = merged(&payloads);
    let names: Vec<&str> = by_name(&metrics).keys().copied().collect();
    let summary_names: Vec<&str> = summary
        .at("metrics")
        .at("metric_names")
        .items()
        .iter()
        .map(Summary::text)
        .collect();
    assert_eq!(names, summary_names);
    assert_eq!(
        metrics.item_count(),
        summary.at("metrics").at("data_point_count").count()
    );

    let logs: ExportLogsServiceRequest = merged(&payloads);
    let records: Vec<&LogRecord> = logs
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .collect();
    assert_eq!(
        records.len() as u64,
        summary.at("logs").at("record_count").count()
    );
    let bodies: Vec<Json> = records
        .iter()
        .map(|r| any_value_json(r.body.as_ref()))
        .collect();
    assert_eq!(
        bodies.as_slice(),
        summary.at("logs").at("bodies").items(),
        "log bodies"
    );

    let snapshot = receiver.metrics().snapshot();
    assert_eq!(snapshot.traces.items_accepted, traces.item_count());
    assert_eq!(snapshot.metrics.items_accepted, metrics.item_count());
    assert_eq!(snapshot.logs.items_accepted, logs.item_count());
    assert_eq!(snapshot.requests(), payloads.len() as u64, "{snapshot:?}");
    if gzip_and_auth {
        assert!(
            snapshot.traces.bytes_received < snapshot.traces.bytes_decompressed,
            "traces came gzip-compressed: {:?}",
            snapshot.traces
        );
    }
}

fn read_summary(dir: &Path) -> Json {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str::<Json>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An `AnyValue` as `google.protobuf.json_format.MessageToDict` renders it (what
/// emit_grpc.py writes into summary.json): lowerCamelCase keys, 64-bit integers as
/// strings, bytes as base64, default-valued fields left out; `{}` for no value.
fn any_value_json(value: Option<&AnyValue>) -> Json {
    let Some(value) = value.and_then(|v| v.value.as_ref()) else {
        return Json::Object(serde_json::Map::new());
    };
    let (key, inner) = match value {
        any_value::Value::StringValue(s) => ("stringValue", Json::String(s.clone())),
        any_value::Value::BoolValue(b) => ("boolValue", Json::Bool(*b)),
        any_value::Value::IntValue(i) => ("intValue", Json::String(i.to_string())),
        any_value::Value::DoubleValue(d) if d.is_finite() => ("doubleValue", Json::from(*d)),
        any_value::Value::DoubleValue(d) => (
            "doubleValue",
            Json::String(
                if d.is_nan() {
                    "NaN"
                } else if *d > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .to_owned(),
            ),
        ),
        any_value::Value::StringValueStrindex(i) => ("stringValueStrindex", Json::from(*i)),
        any_value::Value::BytesValue(b) => (
            "bytesValue",
            Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        ),
        any_value::Value::ArrayValue(a) => (
            "arrayValue",
            repeated(a.values.iter().map(|v| any_value_json(Some(v))).collect()),
        ),
        any_value::Value::KvlistValue(kv) => (
            "kvlistValue",
            repeated(
                kv.values
                    .iter()
                    .map(|kv| {
                        let mut entry = serde_json::Map::new();
                        if !kv.key.is_empty() {
                            entry.insert("key".to_owned(), Json::String(kv.key.clone()));
                        }
                        if let Some(v) = &kv.value {
                            entry.insert("value".to_owned(), any_value_json(Some(v)));
                        }
                        Json::Object(entry)
                    })
                    .collect(),
            ),
        ),
    };
    Json::Object(serde_json::Map::from_iter([(key.to_owned(), inner)]))
}

/// `{"values": [...]}`, or `{}` when empty (json_format leaves empty repeated fields out).
fn repeated(values: Vec<Json>) -> Json {
    let mut object = serde_json::Map::new();
    if !values.is_empty() {
        object.insert("values".to_owned(), Json::Array(values));
    }
    Json::Object(object)
}

// --- helpers ------------------------------------------------------------------------

/// Every payload of `T`'s signal decoded and joined into one request (the resource
/// lists concatenated, as protobuf concatenation does).
fn merged<T: OtlpRequest>(payloads: &[Payload]) -> T {
    let mut bytes = Vec::new();
    for p in payloads.iter().filter(|p| p.signal() == T::SIGNAL) {
        p.decode::<T>().expect("payload decodes");
        bytes.extend_from_slice(p.body());
    }
    otlp_core::codec::protobuf::decode(&bytes).expect("joined payloads decode")
}

fn decoded_items(payload: &Payload) -> u64 {
    match payload.signal() {
        Signal::Traces => payload
            .decode::<ExportTraceServiceRequest>()
            .map(|r| r.item_count()),
        Signal::Metrics => payload
            .decode::<ExportMetricsServiceRequest>()
            .map(|r| r.item_count()),
        Signal::Logs => payload
            .decode::<ExportLogsServiceRequest>()
            .map(|r| r.item_count()),
    }
    .expect("payload decodes")
}

/// A resource with its attributes in key order: the SDK keeps them in a hash map, so
/// two encodings of one resource may list them differently.
fn sorted_resource(resource: Option<&ProtoResource>) -> Option<ProtoResource> {
    resource.cloned().map(|mut r| {
        r.attributes.sort_by(|a, b| a.key.cmp(&b.key));
        r
    })
}

/// Every span with its resource and scope, in export order: equal for two requests
/// that carry the same spans however they were split into calls.
fn flat_spans(
    request: &ExportTraceServiceRequest,
) -> Vec<(Option<ProtoResource>, Option<ProtoScope>, String, Span)> {
    let mut spans = Vec::new();
    for rs in &request.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                spans.push((
                    sorted_resource(rs.resource.as_ref()),
                    ss.scope.clone(),
                    ss.schema_url.clone(),
                    span.clone(),
                ));
            }
        }
    }
    spans
}

/// Every log record with its resource and scope, in export order; map bodies sorted by
/// key (the SDK holds them in a hash map).
fn flat_logs(
    request: &ExportLogsServiceRequest,
) -> Vec<(Option<ProtoResource>, Option<ProtoScope>, String, LogRecord)> {
    let mut records = Vec::new();
    for rl in &request.resource_logs {
        for sl in &rl.scope_logs {
            for record in &sl.log_records {
                let mut record = record.clone();
                if let Some(body) = &mut record.body {
                    sort_maps(body);
                }
                records.push((
                    sorted_resource(rl.resource.as_ref()),
                    sl.scope.clone(),
                    sl.schema_url.clone(),
                    record,
                ));
            }
        }
    }
    records
}

fn sort_maps(value: &mut AnyValue) {
    match &mut value.value {
        Some(any_value::Value::KvlistValue(kv)) => {
            kv.values.sort_by(|a, b| a.key.cmp(&b.key));
            for entry in &mut kv.values {
                if let Some(v) = &mut entry.value {
                    sort_maps(v);
                }
            }
        }
        Some(any_value::Value::ArrayValue(array)) => array.values.iter_mut().for_each(sort_maps),
        _ => {}
    }
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

fn body(record: &LogRecord) -> Option<&any_value::Value> {
    record.body.as_ref().and_then(|b| b.value.as_ref())
}

fn attr<'a>(attributes: &'a [ProtoKeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()
        .and_then(|v| v.value.as_ref())
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

fn array_attr(attributes: &[ProtoKeyValue], key: &str) -> Vec<any_value::Value> {
    match attr(attributes, key) {
        Some(any_value::Value::ArrayValue(array)) => array
            .values
            .iter()
            .map(|v| v.value.clone().expect("array element has a value"))
            .collect(),
        other => panic!("{key} is an array: {other:?}"),
    }
}

/// summary.json is read with serde_json; these accessors panic with the key when the
/// document is not shaped as emit_grpc.py writes it.
type Json = serde_json::Value;

trait Summary {
    fn at(&self, key: &str) -> &Json;
    fn count(&self) -> u64;
    fn text(&self) -> &str;
    fn items(&self) -> &[Json];
}

impl Summary for Json {
    fn at(&self, key: &str) -> &Json {
        self.as_object()
            .and_then(|map| map.get(key))
            .unwrap_or_else(|| panic!("summary.json: no key {key} in {self}"))
    }

    fn count(&self) -> u64 {
        serde_json::Value::as_u64(self)
            .unwrap_or_else(|| panic!("summary.json: {self} is not a count"))
    }

    fn text(&self) -> &str {
        serde_json::Value::as_str(self)
            .unwrap_or_else(|| panic!("summary.json: {self} is not a string"))
    }

    fn items(&self) -> &[Json] {
        serde_json::Value::as_array(self)
            .map(Vec::as_slice)
            .unwrap_or_else(|| panic!("summary.json: {self} is not an array"))
    }
}
