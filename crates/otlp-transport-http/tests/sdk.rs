//! The exporter under the official OpenTelemetry SDK: real `SdkTracerProvider`,
//! `SdkLoggerProvider`, `SdkMeterProvider` (and `tracing-opentelemetry`) sending to our
//! receiver, with the SDK's thread-based processors, its tokio-runtime processors and its
//! simple processors; failures and partial successes as the SDK sees them; and the same
//! request as `opentelemetry-otlp` sends for the same spans.

mod exporter_support;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use exporter_support::{Collect, ScriptedServer, Step, bounded, fast_retry, test_exporter};
use opentelemetry::logs::{
    AnyValue as LogValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity,
};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter as _;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanEvents, SpanExporter, SpanLinks};
use otlp_core::codec::{self, protobuf};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otlp_core::proto::common::v1::any_value;
use otlp_core::{Encoding, OtlpRequest, OtlpResponse, PartialSuccess, Payload, Signal};
use otlp_transport_http::exporter::Protocol;
use otlp_transport_http::receiver::{HttpReceiver, HttpReceiverConfig, RunningReceiver, Sinks};
use otlp_transport_http::sdk::{ExportRuntime, LogsExporter, MetricsExporter, TraceExporter};

async fn receiver() -> (RunningReceiver, Arc<Collect>) {
    let sink = Collect::new();
    let config = HttpReceiverConfig::builder()
        .addr("127.0.0.1:0")
        .build()
        .unwrap();
    let receiver = HttpReceiver::bind(config, Sinks::all(sink.clone()))
        .await
        .unwrap();
    (receiver, sink)
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "sdk-test"),
            KeyValue::new("service.instance.id", "rs-0001"),
        ])
        .build()
}

/// Every payload of `signal`, merged into one request (payloads concatenate).
fn merged<T: OtlpRequest>(payloads: &[Payload]) -> T {
    let mut bytes = Vec::new();
    for payload in payloads.iter().filter(|p| p.signal() == T::SIGNAL) {
        bytes.extend_from_slice(payload.body());
    }
    protobuf::decode(&bytes).unwrap()
}

fn string_attr(attrs: &[otlp_core::proto::common::v1::KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            other => Some(format!("{other:?}")),
        }
    })
}

/// Shuts the providers down off the runtime (their shutdown blocks until exported).
async fn shut_down(f: impl FnOnce() + Send + 'static) {
    bounded("SDK shutdown", tokio::task::spawn_blocking(f))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_with_the_default_batch_processors() {
    let (receiver, sink) = receiver().await;
    let exporter = test_exporter(&format!("http://{}", receiver.local_addr()))
        .build()
        .unwrap();

    // Traces: the SDK's thread-based BatchSpanProcessor.
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(TraceExporter::new(exporter.clone()))
        .with_resource(resource())
        .build();
    let tracer = tracer_provider.tracer_with_scope(
        InstrumentationScope::builder("sdk-test.traces")
            .with_version("1.0.0")
            .build(),
    );
    tracer.in_span("GET /orders/{id}", |cx| {
        let span = opentelemetry::trace::TraceContextExt::span(&cx);
        span.set_attribute(KeyValue::new("http.response.status_code", 200));
        span.add_event("cache.miss", vec![KeyValue::new("cache.key", "order:42")]);
        tracer.in_span("SELECT orders", |_| {});
    });

    // Logs: the SDK's thread-based BatchLogProcessor.
    let logger_provider = SdkLoggerProvider::builder()
        .with_batch_exporter(LogsExporter::new(exporter.clone()))
        .with_resource(resource())
        .build();
    let logger = logger_provider.logger("sdk-test.logs");
    for i in 0..3 {
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Warn);
        record.set_severity_text("WARN");
        record.set_body(LogValue::from(format!("disk {i} almost full")));
        record.add_attribute("disk", i64::from(i));
        logger.emit(record);
    }

    // Metrics: a PeriodicReader (its own thread); shutdown collects once more.
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(MetricsExporter::new(exporter.clone())).build())
        .with_resource(resource())
        .build();
    let meter = meter_provider.meter("sdk-test.metrics");
    let counter = meter.u64_counter("orders").build();
    counter.add(3, &[KeyValue::new("region", "eu")]);
    counter.add(4, &[KeyValue::new("region", "us")]);
    meter
        .f64_histogram("latency")
        .with_unit("ms")
        .build()
        .record(12.5, &[]);

    shut_down(move || {
        tracer_provider.shutdown().unwrap();
        logger_provider.shutdown().unwrap();
        meter_provider.shutdown().unwrap();
    })
    .await;

    let payloads = sink.payloads();
    let traces: ExportTraceServiceRequest = merged(&payloads);
    let spans: Vec<_> = traces
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["GET /orders/{id}", "SELECT orders"]);
    let rs = &traces.resource_spans[0];
    let resource_attrs = &rs.resource.as_ref().unwrap().attributes;
    assert_eq!(
        string_attr(resource_attrs, "service.name").as_deref(),
        Some("sdk-test")
    );
    let scope = rs.scope_spans[0].scope.as_ref().unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("sdk-test.traces", "1.0.0")
    );
    let parent = spans.iter().find(|s| s.name == "GET /orders/{id}").unwrap();
    let child = spans.iter().find(|s| s.name == "SELECT orders").unwrap();
    assert_eq!(child.parent_span_id, parent.span_id);
    assert_eq!(child.trace_id, parent.trace_id);
    assert_eq!(parent.events[0].name, "cache.miss");

    let logs: ExportLogsServiceRequest = merged(&payloads);
    let records: Vec<_> = logs
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .collect();
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r.severity_number == Severity::Warn as i32)
    );
    assert_eq!(
        string_attr(
            &logs.resource_logs[0].resource.as_ref().unwrap().attributes,
            "service.name"
        )
        .as_deref(),
        Some("sdk-test")
    );

    let metrics: ExportMetricsServiceRequest = merged(&payloads);
    let names: Vec<&str> = metrics
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| m.name.as_str())
        .collect();
    assert!(
        names.contains(&"orders") && names.contains(&"latency"),
        "{names:?}"
    );
    assert!(metrics.item_count() >= 3);

    let stats = exporter.stats();
    assert_eq!(stats.failed_exports, 0);
    assert_eq!(stats.items_accepted, sink.items());
    receiver.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_runtime_processors_and_json() {
    use opentelemetry_sdk::logs::log_processor_with_async_runtime::BatchLogProcessor;
    use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
    use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;

    let (receiver, sink) = receiver().await;
    let exporter = test_exporter(&format!("http://{}", receiver.local_addr()))
        .protocol(Protocol::HttpJson)
        .build()
        .unwrap();
    // Requests on the test's own runtime this time.
    let here = ExportRuntime::Handle(tokio::runtime::Handle::current());
    let tracer_provider = SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(
                TraceExporter::new(exporter.clone()).with_runtime(here.clone()),
                Tokio,
            )
            .build(),
        )
        .with_resource(resource())
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_log_processor(
            BatchLogProcessor::builder(
                LogsExporter::new(exporter.clone()).with_runtime(here.clone()),
                Tokio,
            )
            .build(),
        )
        .with_resource(resource())
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(
            PeriodicReader::builder(
                MetricsExporter::new(exporter.clone())
                    .with_runtime(here)
                    .with_temporality(Temporality::Delta),
                Tokio,
            )
            .build(),
        )
        .build();
    tracer_provider.tracer("json").in_span("json span", |_| {});
    let logger = logger_provider.logger("json");
    let mut record = logger.create_log_record();
    record.set_body(LogValue::from("json log"));
    logger.emit(record);
    meter_provider
        .meter("json")
        .u64_counter("hits")
        .build()
        .add(1, &[]);
    shut_down(move || {
        tracer_provider.shutdown().unwrap();
        logger_provider.shutdown().unwrap();
        meter_provider.shutdown().unwrap();
    })
    .await;
    let payloads = sink.payloads();
    let traces: ExportTraceServiceRequest = merged(&payloads);
    assert_eq!(traces.item_count(), 1);
    assert_eq!(
        traces.resource_spans[0].scope_spans[0].spans[0].name,
        "json span"
    );
    let logs: ExportLogsServiceRequest = merged(&payloads);
    assert_eq!(logs.item_count(), 1);
    let metrics: ExportMetricsServiceRequest = merged(&payloads);
    assert_eq!(metrics.item_count(), 1);
    receiver.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[test]
fn simple_processor_without_any_tokio_runtime() {
    // The receiver runs on its own runtime; the SDK calls the exporter from this plain
    // thread, blocking on it, as `SimpleSpanProcessor` does.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (receiver, sink) = runtime.block_on(receiver());
    let exporter = runtime
        .block_on(async { test_exporter(&format!("http://{}", receiver.local_addr())).build() })
        .unwrap();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(TraceExporter::new(exporter))
        .build();
    let tracer = provider.tracer("simple");
    for i in 0..3 {
        tracer.in_span(format!("simple {i}"), |_| {});
    }
    // Each span was exported when it ended.
    assert_eq!(sink.items(), 3);
    provider.shutdown().unwrap();
    runtime
        .block_on(receiver.shutdown(Duration::from_secs(5)))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_tracing_opentelemetry() {
    use tracing_subscriber::layer::SubscriberExt as _;

    let (receiver, sink) = receiver().await;
    let exporter = test_exporter(&format!("http://{}", receiver.local_addr()))
        .build()
        .unwrap();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(TraceExporter::new(exporter))
        .with_resource(resource())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("tracing")));
    tracing::subscriber::with_default(subscriber, || {
        let request = tracing::info_span!("handle_request", order.id = 42_i64);
        request.in_scope(|| {
            tracing::info_span!("query_db", db.system = "postgresql").in_scope(|| {});
        });
    });
    shut_down(move || provider.shutdown().unwrap()).await;

    let traces: ExportTraceServiceRequest = merged(&sink.payloads());
    let spans: Vec<_> = traces
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let request = spans
        .iter()
        .find(|s| s.name == "handle_request")
        .expect("request span");
    let query = spans
        .iter()
        .find(|s| s.name == "query_db")
        .expect("query span");
    assert_eq!(query.parent_span_id, request.span_id);
    assert_eq!(
        string_attr(&query.attributes, "db.system").as_deref(),
        Some("postgresql")
    );
    receiver.shutdown(Duration::from_secs(5)).await.unwrap();
}

fn span_data(i: u64) -> SpanData {
    let at = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_000 + i * 1_000);
    let mut events = SpanEvents::default();
    events.events.push(opentelemetry::trace::Event::new(
        "retry",
        at,
        vec![KeyValue::new("attempt", 2)],
        0,
    ));
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(0xabcd_u128 + u128::from(i)),
            SpanId::from(0x1000 + i),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        ),
        parent_span_id: SpanId::from(0x99),
        parent_span_is_remote: false,
        span_kind: SpanKind::Client,
        name: Cow::Owned(format!("call {i}")),
        start_time: at,
        end_time: at + Duration::from_millis(3),
        attributes: vec![
            KeyValue::new("peer.service", "inventory"),
            KeyValue::new("retries", i as i64),
        ],
        dropped_attributes_count: 0,
        events,
        links: SpanLinks::default(),
        status: if i.is_multiple_of(2) {
            Status::Ok
        } else {
            Status::error("timeout")
        },
        instrumentation_scope: InstrumentationScope::builder("sdk-test.direct").build(),
    }
}

#[tokio::test]
async fn the_same_request_as_opentelemetry_otlp() {
    // opentelemetry-otlp builds its reqwest client without a TLS configuration, which
    // with `rustls-no-provider` needs a process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = ScriptedServer::always(Step::ok()).await;
    let batch: Vec<SpanData> = (0..20).map(span_data).collect();

    let mut ours = TraceExporter::new(test_exporter(&server.url()).build().unwrap())
        .with_runtime(ExportRuntime::Handle(tokio::runtime::Handle::current()));
    // One resource for both: it keeps its attributes in a hash map, and two instances
    // may iterate them in different orders.
    let resource = resource();
    ours.set_resource(&resource);
    ours.export(batch.clone()).await.unwrap();

    use opentelemetry_otlp::WithExportConfig as _;
    let mut theirs = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", server.url()))
        .build()
        .unwrap();
    theirs.set_resource(&resource);
    theirs.export(batch).await.unwrap();

    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 2);
    assert_eq!(
        arrivals[0].header("content-type"),
        arrivals[1].header("content-type")
    );
    // One scope: the very same bytes.
    assert_eq!(arrivals[0].body, arrivals[1].body);
}

#[tokio::test]
async fn failures_and_partial_success_as_the_sdk_sees_them() {
    let status = otlp_core::error::RpcStatus {
        code: 3,
        message: "span 0 has no name".to_owned(),
        details: Vec::new(),
    };
    let partial = ExportTraceServiceResponse::with_partial_success(Some(PartialSuccess {
        rejected: 1,
        message: "one span too large".to_owned(),
    }));
    let server = ScriptedServer::start(
        vec![
            Step::status(400).body("application/x-protobuf", protobuf::encode(&status)),
            Step::ok().body(
                "application/x-protobuf",
                codec::encode(Encoding::Protobuf, &partial),
            ),
        ],
        Step::status(503),
    )
    .await;
    let exporter = test_exporter(&server.url())
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let spans = TraceExporter::new(exporter.clone());

    match spans.export(vec![span_data(0), span_data(1)]).await {
        Err(OTelSdkError::InternalFailure(message)) => {
            assert!(message.contains("2 spans not delivered"), "{message}");
            assert!(
                message.contains("HTTP 400: span 0 has no name"),
                "{message}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    // A partial success is a success for the SDK; the counts are in the stats.
    spans
        .export(vec![span_data(2), span_data(3)])
        .await
        .unwrap();
    let stats = exporter.stats();
    assert_eq!(
        (
            stats.partial_successes,
            stats.items_rejected,
            stats.items_accepted
        ),
        (1, 1, 1)
    );
    // 503 twice: retried, then reported.
    let err = spans.export(vec![span_data(4)]).await.unwrap_err();
    assert!(err.to_string().contains("after 2 attempt(s)"), "{err}");
    assert_eq!(server.requests(), 4);

    // Shutting one adapter down leaves the shared exporter working for the others.
    spans.shutdown().unwrap();
    assert!(matches!(
        spans.export(vec![span_data(5)]).await,
        Err(OTelSdkError::AlreadyShutdown)
    ));
    assert!(matches!(
        spans.shutdown(),
        Err(OTelSdkError::AlreadyShutdown)
    ));
    let metrics = MetricsExporter::new(exporter.clone());
    assert_eq!(metrics.temporality(), Temporality::Cumulative);
    assert!(!exporter.is_shut_down());
    assert_eq!(
        exporter.settings(Signal::Traces).protocol(),
        Protocol::HttpProtobuf
    );
}
