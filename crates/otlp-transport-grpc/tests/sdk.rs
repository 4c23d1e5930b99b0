//! The gRPC exporter under the official OpenTelemetry SDK: real `SdkTracerProvider`,
//! `SdkLoggerProvider` and `SdkMeterProvider` sending to the scripted tonic server, which
//! decodes everything intact; the SDK's thread-based processors and its simple
//! processor on a thread without any tokio runtime; failures and partial successes as
//! the SDK sees them; and the same request as `opentelemetry-otlp`'s tonic exporter
//! sends for the same spans.

mod support;

use std::borrow::Cow;
use std::time::{Duration, UNIX_EPOCH};

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
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanEvents, SpanExporter, SpanLinks};
use otlp_core::codec::protobuf;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::any_value;
use otlp_core::{OtlpRequest, Signal};
use otlp_transport_grpc::sdk::{ExportRuntime, LogsExporter, MetricsExporter, TraceExporter};
use support::tonic_server::{Arrival, Step, TonicServer, bounded, fast_retry, test_exporter};
use tonic::Code;

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "sdk-test"),
            KeyValue::new("service.instance.id", "rs-0001"),
        ])
        .build()
}

/// Every call of `T`'s signal, merged into one request (encoded requests concatenate).
fn merged<T: OtlpRequest>(arrivals: &[Arrival]) -> T {
    let mut bytes = Vec::new();
    for arrival in arrivals.iter().filter(|a| a.signal() == Some(T::SIGNAL)) {
        bytes.extend_from_slice(&arrival.body);
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

/// Runs an SDK call that blocks its thread (provider shutdown) off the runtime.
async fn blocking(f: impl FnOnce() + Send + 'static) {
    bounded("SDK call", tokio::task::spawn_blocking(f))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_with_the_default_batch_processors() {
    let server = TonicServer::always(Step::ok()).await;
    let exporter = test_exporter(&server.url()).build().unwrap();

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

    blocking(move || {
        tracer_provider.shutdown().unwrap();
        logger_provider.shutdown().unwrap();
        meter_provider.shutdown().unwrap();
    })
    .await;

    let arrivals = server.arrivals();
    let traces: ExportTraceServiceRequest = merged(&arrivals);
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
    assert_eq!(
        string_attr(&rs.resource.as_ref().unwrap().attributes, "service.name").as_deref(),
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
    assert_eq!(
        string_attr(&parent.attributes, "http.response.status_code").as_deref(),
        Some("IntValue(200)")
    );

    let logs: ExportLogsServiceRequest = merged(&arrivals);
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
            .all(|r| r.severity_number == Severity::Warn as i32 && r.severity_text == "WARN")
    );
    let mut bodies: Vec<String> = records
        .iter()
        .map(|r| match r.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            other => panic!("body {other:?}"),
        })
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        [
            "disk 0 almost full",
            "disk 1 almost full",
            "disk 2 almost full"
        ]
    );

    let metrics: ExportMetricsServiceRequest = merged(&arrivals);
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
    assert!(
        arrivals
            .iter()
            .all(|a| a.header("content-type") == "application/grpc")
    );

    let stats = exporter.stats();
    assert_eq!(stats.failed_exports, 0);
    assert_eq!(
        stats.items_accepted,
        traces.item_count() + logs.item_count() + metrics.item_count()
    );
}

#[test]
fn simple_processor_without_any_tokio_runtime() {
    // The server runs on its own runtime; the SDK calls the exporter from this plain
    // thread, blocking on it, as `SimpleSpanProcessor` does.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TonicServer::always(Step::ok()));
    // Built outside any runtime: connections open on first use, where calls run.
    let exporter = test_exporter(&server.url()).build().unwrap();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(TraceExporter::new(exporter))
        .build();
    let tracer = provider.tracer("simple");
    for i in 0..3 {
        tracer.in_span(format!("simple {i}"), |_| {});
    }
    // Each span was exported when it ended.
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 3);
    let names: Vec<String> = arrivals
        .iter()
        .map(|a| {
            let request: ExportTraceServiceRequest = protobuf::decode(&a.body).unwrap();
            request.resource_spans[0].scope_spans[0].spans[0]
                .name
                .clone()
        })
        .collect();
    assert_eq!(names, ["simple 0", "simple 1", "simple 2"]);
    provider.shutdown().unwrap();
    drop(server);
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
    let server = TonicServer::always(Step::ok()).await;
    let batch: Vec<SpanData> = (0..20).map(span_data).collect();

    let mut ours = TraceExporter::new(test_exporter(&server.url()).build().unwrap())
        .with_runtime(ExportRuntime::Handle(tokio::runtime::Handle::current()));
    // One resource for both: it keeps its attributes in a hash map, and two instances
    // may iterate them in different orders.
    let resource = resource();
    ours.set_resource(&resource);
    bounded("export", ours.export(batch.clone())).await.unwrap();

    use opentelemetry_otlp::WithExportConfig as _;
    let mut theirs = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(server.url())
        .build()
        .unwrap();
    theirs.set_resource(&resource);
    bounded("export", theirs.export(batch)).await.unwrap();

    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 2);
    assert_eq!(arrivals[0].path, arrivals[1].path);
    // One scope: the very same bytes.
    assert_eq!(arrivals[0].body, arrivals[1].body);
}

#[tokio::test]
async fn failures_and_partial_success_as_the_sdk_sees_them() {
    let server = TonicServer::script(
        vec![
            Step::status(Code::InvalidArgument),
            Step::partial(1, "one span too large"),
        ],
        Step::status(Code::Unavailable),
    )
    .await;
    let exporter = test_exporter(&server.url())
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let spans = TraceExporter::new(exporter.clone());

    match bounded("export", spans.export(vec![span_data(0), span_data(1)])).await {
        Err(OTelSdkError::InternalFailure(message)) => {
            assert!(message.contains("2 spans not delivered"), "{message}");
            assert!(message.contains("INVALID_ARGUMENT"), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    // A partial success is a success for the SDK; the counts are in the stats.
    bounded("export", spans.export(vec![span_data(2), span_data(3)]))
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
    // UNAVAILABLE twice: retried, then reported.
    let err = bounded("export", spans.export(vec![span_data(4)]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("after 2 attempt(s)"), "{err}");
    assert_eq!(server.count(), 4);

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
    assert!(!exporter.is_shut_down());
    let metrics = MetricsExporter::new(exporter.clone()).with_temporality(Temporality::Delta);
    assert_eq!(metrics.temporality(), Temporality::Delta);
    assert_eq!(
        metrics.grpc_exporter().settings(Signal::Metrics).endpoint(),
        server.url()
    );
}
