//! Interop: what our OTLP/gRPC exporter sends is decoded by an implementation not
//! written here.
//!
//! `interop/python/capture_grpc.py` (in the `grpc` venv of `interop/setup-venv.sh`) is
//! an OTLP/gRPC server made of `grpcio` and the generated `opentelemetry-proto` service
//! classes: every request is decoded by the official Python message classes, and
//! re-encoded from them into `<signal>.<n>.pb`. Those files, decoded here, must equal
//! the messages we sent (prost equality), so nothing was lost or changed on the way:
//!
//! 1. traces, metrics and logs requests that set every field of those messages (all
//!    but the profiles-only string-table indexes) through [`GrpcExporter`], plain and
//!    gzip (a byte-counting relay shows the compression on the wire), with a metadata
//!    entry the server requires (`--require-header`); without it the server answers
//!    UNAUTHENTICATED, which is not retried; zstd, which grpcio cannot read, fails
//!    without a retry;
//! 2. a partial success (`--partial-success N`) comes back as
//!    `Accepted::partial_success`, counted and not retried;
//! 3. the SDK path: spans and log records from `SdkTracerProvider` and
//!    `SdkLoggerProvider` through our `sdk::TraceExporter` and `sdk::LogsExporter`
//!    equal what the SDK's own transform makes of them.
//!
//! These tests never skip: without `python3` they fail, saying why.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::logs::{
    AnyValue as LogValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity,
};
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status as SdkStatus, TraceContextExt as _,
    TraceFlags, TraceId, TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, InstrumentationScope, KeyValue as SdkKeyValue, Value};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogProcessor, SdkLogRecord, SdkLoggerProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor};
use otlp_core::codec::protobuf;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope as ProtoScope, KeyValue, KeyValueList,
    any_value,
};
use otlp_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlp_core::proto::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint, exemplar, exponential_histogram_data_point, metric,
    number_data_point, summary_data_point,
};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use otlp_core::{Compression, ExportError, GrpcCode, OtlpRequest, PartialSuccess};
use otlp_transport_grpc::exporter::{FailureReason, GrpcExporter, GrpcExporterBuilder};
use otlp_transport_grpc::sdk::{LogsExporter, TraceExporter};
use prost::Message as _;
use support::python::{self, CaptureGrpc};
use support::tonic_server::bounded;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The metadata entry capture_grpc.py requires (`--require-header`).
const AUTH_KEY: &str = "authorization";
const AUTH_VALUE: &str = "Bearer exporter-interop";

/// 2023-11-14T22:13:20Z in Unix nanoseconds.
const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;
/// 2^53 + 1: an integer a double would corrupt.
const BIG_INT: i64 = (1 << 53) + 1;

/// Starting capture_grpc.py takes about half a second; the first venv install from PyPI
/// takes longer (the helper bounds that itself).
const START: Duration = Duration::from_secs(660);
/// Stopping it: the helper's own limit plus a margin.
const STOP: Duration = Duration::from_secs(30);

// --- the capture server -------------------------------------------------------------

/// capture_grpc.py with `args`, started off the runtime (it blocks while Python starts).
async fn capture(out: &Path, args: &[&str]) -> (CaptureGrpc, String) {
    let out = out.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let (capture, port) = tokio::time::timeout(
        START,
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            python::spawn_capture_grpc(&out, &args)
        }),
    )
    .await
    .expect("capture_grpc.py started in time")
    .expect("capture_grpc.py start thread");
    (capture, format!("http://127.0.0.1:{port}"))
}

/// Closes capture_grpc.py's stdin and waits for it to exit cleanly.
async fn stop(capture: CaptureGrpc) -> Output {
    let output = tokio::time::timeout(STOP, tokio::task::spawn_blocking(move || capture.stop()))
        .await
        .expect("capture_grpc.py stopped in time")
        .expect("capture_grpc.py stop thread")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "capture_grpc.py exited with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every request of `T`'s signal the Python classes decoded, re-encoded by them and
/// decoded here, in arrival order.
fn captured<T: OtlpRequest>(out: &Path) -> Vec<T> {
    let signal = T::SIGNAL.to_string();
    python::captured_requests(out, &signal)
        .iter()
        .enumerate()
        .map(|(n, bytes)| {
            protobuf::decode(bytes)
                .unwrap_or_else(|e| panic!("{signal}.{}.pb does not decode: {e}", n + 1))
        })
        .collect()
}

fn meta(out: &Path, signal: &str, n: usize) -> String {
    let path = out.join(format!("{signal}.{n}.meta.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn exporter(url: &str) -> GrpcExporterBuilder {
    GrpcExporter::builder()
        .no_env()
        .endpoint(url)
        .timeout(Duration::from_secs(10))
}

/// A TCP relay in front of capture_grpc.py that counts the bytes clients send through
/// it. Its tasks end with the test's runtime.
struct Relay {
    addr: SocketAddr,
    sent: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(upstream_url: &str) -> Relay {
        let upstream: SocketAddr = upstream_url
            .trim_start_matches("http://")
            .parse()
            .expect("capture address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay_connection(client, upstream, Arc::clone(&counter)));
            }
        });
        Relay { addr, sent, accept }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay_connection(client: TcpStream, upstream: SocketAddr, sent: Arc<AtomicU64>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    // Without it a call waits on delayed ACKs (DESIGN.md, known traps).
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    // Counted once the bytes are on their way: a reader of the counter
                    // after an answer sees every byte of the call.
                    sent.fetch_add(n as u64, Ordering::SeqCst);
                }
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

// --- 1. requests through the exporter -----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_decodes_what_we_send() {
    let out = tempfile::tempdir().expect("temp dir");
    let required = format!("{AUTH_KEY}={AUTH_VALUE}");
    let (capture, url) = capture(out.path(), &["--require-header", &required]).await;

    // grpcio does not show a call's grpc-encoding to the servicer, so bytes on the wire
    // are what show that gzip was used (and that grpcio inflated it).
    let relay = Relay::start(&url).await;

    let (t, m, l) = (traces(), metrics(), logs());
    let mut wire_bytes = Vec::new();
    for compression in [Compression::None, Compression::Gzip] {
        let before = relay.sent();
        let exporter = exporter(&relay.url())
            .header(AUTH_KEY, AUTH_VALUE)
            .compression(compression)
            .build()
            .expect("exporter");
        for accepted in [
            bounded("traces", exporter.export_traces(&t)).await,
            bounded("metrics", exporter.export_metrics(&m)).await,
            bounded("logs", exporter.export_logs(&l)).await,
        ] {
            let accepted = accepted.unwrap_or_else(|e| panic!("{compression:?}: {e}"));
            assert_eq!(accepted.partial_success, None, "full success");
        }
        let stats = exporter.stats();
        assert_eq!((stats.exports, stats.requests), (3, 3), "{stats:?}");
        assert_eq!(
            stats.items_accepted,
            t.item_count() + m.item_count() + l.item_count()
        );
        wire_bytes.push(relay.sent() - before);
    }
    let encoded: usize = [t.encoded_len(), m.encoded_len(), l.encoded_len()]
        .iter()
        .sum();
    assert!(
        wire_bytes[0] > encoded as u64,
        "plain: every message byte went over the wire ({wire_bytes:?}, {encoded} encoded)"
    );
    assert!(
        wire_bytes[1] * 2 < wire_bytes[0],
        "gzip: much less over the wire than plain ({wire_bytes:?})"
    );

    // Without the metadata entry: UNAUTHENTICATED, not retried, nothing stored.
    let unauthenticated = exporter(&url).build().expect("exporter");
    let failure = bounded("traces without metadata", unauthenticated.export_traces(&t))
        .await
        .expect_err("the server requires the metadata entry");
    assert_eq!(failure.reason(), FailureReason::NotRetryable, "{failure}");
    assert_eq!(failure.attempts(), 1, "not retried: {failure}");
    assert_eq!(failure.items(), t.item_count());
    assert!(
        matches!(
            failure.error(),
            ExportError::Grpc { code: GrpcCode::Unauthenticated, message, .. }
                if message.contains(AUTH_KEY)
        ),
        "{failure}"
    );

    // grpcio has no zstd: it answers INTERNAL ("Error parsing 'grpc-encoding'
    // metadata"), which is not retried.
    let zstd = exporter(&url)
        .header(AUTH_KEY, AUTH_VALUE)
        .compression(Compression::Zstd)
        .build()
        .expect("exporter");
    let failure = bounded("logs with zstd", zstd.export_logs(&l))
        .await
        .expect_err("grpcio cannot read zstd");
    assert_eq!(failure.reason(), FailureReason::NotRetryable, "{failure}");
    assert_eq!(failure.attempts(), 1, "not retried: {failure}");
    assert!(
        matches!(
            failure.error(),
            ExportError::Grpc {
                code: GrpcCode::Internal | GrpcCode::Unimplemented,
                ..
            }
        ),
        "{failure}"
    );

    let output = stop(capture).await;
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "DONE 7");

    // Every request, as the Python classes decoded it, equals what we sent.
    let got: Vec<ExportTraceServiceRequest> = captured(out.path());
    assert_eq!(
        got.len(),
        2,
        "plain and gzip; the unauthenticated call not stored"
    );
    for (n, got) in got.iter().enumerate() {
        assert_eq!(got, &t, "traces request {}", n + 1);
    }
    let got: Vec<ExportMetricsServiceRequest> = captured(out.path());
    assert_eq!(got.len(), 2);
    for (n, got) in got.iter().enumerate() {
        assert_eq!(got, &m, "metrics request {}", n + 1);
    }
    let got: Vec<ExportLogsServiceRequest> = captured(out.path());
    assert_eq!(got.len(), 2, "plain and gzip; the zstd call not stored");
    for (n, got) in got.iter().enumerate() {
        assert_eq!(got, &l, "logs request {}", n + 1);
    }

    // The metadata the server saw: the required entry and our user agent on every call.
    let auth = format!(r#"["{AUTH_KEY}", "{AUTH_VALUE}"]"#);
    for signal in python::SIGNALS {
        for n in [1, 2] {
            let meta = meta(out.path(), signal, n);
            assert!(meta.contains(&auth), "{signal}.{n}: {meta}");
            assert!(
                meta.contains(r#"["user-agent", "otlp-rust/"#),
                "{signal}.{n}: {meta}"
            );
        }
    }
    let summary = std::fs::read_to_string(out.path().join("capture.json")).expect("capture.json");
    assert!(
        summary.contains(r#""accepted": {"logs": 2, "metrics": 2, "traces": 2}"#),
        "{summary}"
    );
    assert!(
        summary.contains(r#""rejected": {"logs": 0, "metrics": 0, "traces": 1}"#),
        "{summary}"
    );
}

// --- 2. partial success -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_success_from_grpcio_is_surfaced() {
    let out = tempfile::tempdir().expect("temp dir");
    let required = format!("{AUTH_KEY}={AUTH_VALUE}");
    let (capture, url) = capture(
        out.path(),
        &["--partial-success", "2", "--require-header", &required],
    )
    .await;
    let exporter = exporter(&url)
        .header(AUTH_KEY, AUTH_VALUE)
        .compression(Compression::Gzip)
        .build()
        .expect("exporter");

    let (t, m, l) = (traces(), metrics(), logs());
    let expected = Some(PartialSuccess {
        rejected: 2,
        message: "capture_grpc: rejected 2 on request".to_owned(),
    });
    for accepted in [
        bounded("traces", exporter.export_traces(&t)).await,
        bounded("metrics", exporter.export_metrics(&m)).await,
        bounded("logs", exporter.export_logs(&l)).await,
    ] {
        let accepted = accepted.expect("accepted, with a partial success");
        assert_eq!(accepted.partial_success, expected);
    }
    let stats = exporter.stats();
    assert_eq!(
        stats.requests, 3,
        "partial success is not retried: {stats:?}"
    );
    assert_eq!(stats.partial_successes, 3);
    assert_eq!(stats.items_rejected, 6);
    assert_eq!(
        stats.items_accepted,
        t.item_count() + m.item_count() + l.item_count() - 6
    );
    assert_eq!(stats.failed_exports, 0);

    stop(capture).await;
    // The data was delivered all the same.
    assert_eq!(captured::<ExportTraceServiceRequest>(out.path()), [t]);
    assert_eq!(captured::<ExportMetricsServiceRequest>(out.path()), [m]);
    assert_eq!(captured::<ExportLogsServiceRequest>(out.path()), [l]);
}

// --- 3. the SDK adapters ------------------------------------------------------------

/// Keeps every ended span and emitted log record, to compute what the SDK's transform
/// makes of them.
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

fn sdk_resource() -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder_empty()
        .with_attributes([
            SdkKeyValue::new("service.name", "grpc-exporter-interop"),
            SdkKeyValue::new("service.instance.id", "rs-0002"),
            SdkKeyValue::new("host.cores", 2_i64),
        ])
        .with_schema_url(
            [SdkKeyValue::new("deployment.environment.name", "test")],
            "https://opentelemetry.io/schemas/1.26.0",
        )
        .build()
}

fn at(offset_ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(T0 + offset_ns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_providers_through_our_adapters() {
    let out = tempfile::tempdir().expect("temp dir");
    let required = format!("{AUTH_KEY}={AUTH_VALUE}");
    let (capture, url) = capture(out.path(), &["--require-header", &required]).await;
    let exporter = exporter(&url)
        .header(AUTH_KEY, AUTH_VALUE)
        .compression(Compression::Gzip)
        .build()
        .expect("exporter");
    let keep = Keep::default();

    // The SDK's own thread-based batch processors, as users set them up.
    let tracer_provider = SdkTracerProvider::builder()
        .with_span_processor(keep.clone())
        .with_batch_exporter(TraceExporter::new(exporter.clone()))
        .with_resource(sdk_resource())
        .build();
    emit_spans(&tracer_provider);
    let logger_provider = SdkLoggerProvider::builder()
        .with_log_processor(keep.clone())
        .with_batch_exporter(LogsExporter::new(exporter.clone()))
        .with_resource(sdk_resource())
        .build();
    emit_logs(&logger_provider);

    // Shutdown exports what the processors hold and blocks until it is sent.
    bounded(
        "SDK shutdown",
        tokio::task::spawn_blocking(move || {
            tracer_provider
                .shutdown()
                .expect("tracer provider shut down");
            logger_provider
                .shutdown()
                .expect("logger provider shut down");
        }),
    )
    .await
    .expect("shutdown thread");
    let stats = exporter.stats();
    assert_eq!(stats.failed_exports, 0, "{stats:?}");
    stop(capture).await;

    let sdk_resource = ResourceAttributesWithSchema::from(&sdk_resource());
    let kept_spans = keep.spans.lock().unwrap().clone();
    assert_eq!(kept_spans.len(), 5);
    let expected = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(kept_spans, &sdk_resource),
    };
    let got: Vec<ExportTraceServiceRequest> = captured(out.path());
    assert!(!got.is_empty(), "spans arrived");
    let got = flat_spans(&got);
    assert_eq!(got, flat_spans(std::slice::from_ref(&expected)));
    // And field by field, a few of the things emitted.
    let root = got
        .iter()
        .map(|(.., s)| s)
        .find(|s| s.name == "POST /checkout")
        .expect("the root span");
    assert_eq!(root.kind, span::SpanKind::Server as i32);
    assert_eq!(
        (root.start_time_unix_nano, root.end_time_unix_nano),
        (T0, T0 + 250 * MS)
    );
    assert_eq!(root.events[0].name, "payment.authorized");
    assert_eq!(
        root.status.as_ref().map(|s| (s.code, s.message.as_str())),
        Some((status::StatusCode::Error as i32, "card declined"))
    );
    let (resource, _, schema_url, _) = &got[0];
    assert_eq!(
        resource
            .as_ref()
            .map(|r| r.attributes.len())
            .unwrap_or_default(),
        4
    );
    assert_eq!(schema_url, "https://opentelemetry.io/schemas/1.26.0");

    let kept_logs = keep.logs.lock().unwrap().clone();
    assert_eq!(kept_logs.len(), 4);
    let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
        kept_logs.iter().map(|(r, s)| (r, s)).collect();
    let expected = ExportLogsServiceRequest {
        resource_logs: group_logs_by_resource_and_scope(&LogBatch::new(&refs), &sdk_resource),
    };
    let got: Vec<ExportLogsServiceRequest> = captured(out.path());
    assert!(!got.is_empty(), "log records arrived");
    let got = flat_logs(&got);
    assert_eq!(got, flat_logs(std::slice::from_ref(&expected)));
    let bodies: Vec<_> = got
        .iter()
        .map(|(.., r)| r.body.clone().and_then(|b| b.value))
        .collect();
    assert_eq!(
        bodies[0],
        Some(any_value::Value::StringValue("order created".to_owned()))
    );
    assert_eq!(bodies[3], Some(any_value::Value::IntValue(BIG_INT)));
}

fn sdk_scope(name: &'static str) -> InstrumentationScope {
    InstrumentationScope::builder(name)
        .with_version("2.0.0")
        .with_schema_url("https://opentelemetry.io/schemas/1.26.0")
        .with_attributes([SdkKeyValue::new("scope.kind", "interop")])
        .build()
}

fn emit_spans(provider: &SdkTracerProvider) {
    let tracer = provider.tracer_with_scope(sdk_scope("interop.sdk.http"));
    let mut root = tracer
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_start_time(at(0))
        .with_attributes([
            SdkKeyValue::new("http.request.method", "POST"),
            SdkKeyValue::new("int.big", BIG_INT),
            SdkKeyValue::new("double.e", std::f64::consts::E),
            SdkKeyValue::new("bool.false", false),
            SdkKeyValue::new(
                "array.string",
                Value::Array(Array::String(vec!["a".into(), "\u{1F600}".into()])),
            ),
            SdkKeyValue::new("array.int", Value::Array(Array::I64(vec![i64::MIN, 0]))),
        ])
        .start(&tracer);
    root.add_event_with_timestamp(
        "payment.authorized",
        at(30 * MS),
        vec![SdkKeyValue::new("amount.cents", 1999_i64)],
    );
    root.set_status(SdkStatus::error("card declined"));
    let cx = Context::current_with_span(root);

    let linked = SpanContext::new(
        TraceId::from(0x00f0_67aa_0ba9_02b7_0000_0000_0000_00ab_u128),
        SpanId::from(0x0def_u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("vendor", "v1")]).expect("valid trace state"),
    );
    let mut client = tracer
        .span_builder("POST /payments")
        .with_kind(SpanKind::Client)
        .with_start_time(at(20 * MS))
        .with_links(vec![Link::new(
            linked,
            vec![SdkKeyValue::new("link.kind", "follows")],
            0,
        )])
        .start_with_context(&tracer, &cx);
    client.set_status(SdkStatus::Ok);
    client.end_with_timestamp(at(120 * MS));

    // A second scope: the request groups spans by scope.
    let db = provider.tracer_with_scope(sdk_scope("interop.sdk.db"));
    for (i, kind) in [SpanKind::Internal, SpanKind::Producer, SpanKind::Consumer]
        .into_iter()
        .enumerate()
    {
        let i = i as u64;
        let mut span = db
            .span_builder(format!("db step {i}"))
            .with_kind(kind)
            .with_start_time(at((130 + i) * MS))
            .with_attributes([SdkKeyValue::new("db.rows", i as i64)])
            .start_with_context(&db, &cx);
        span.end_with_timestamp(at((131 + i) * MS));
    }
    cx.span().end_with_timestamp(at(250 * MS));
}

fn emit_logs(provider: &SdkLoggerProvider) {
    let logger = provider.logger_with_scope(sdk_scope("interop.sdk.logs"));
    let mut record = logger.create_log_record();
    record.set_timestamp(at(5_000 * MS));
    record.set_observed_timestamp(at(5_000 * MS + 500));
    record.set_severity_number(Severity::Info);
    record.set_severity_text("INFO");
    record.set_body("order created".into());
    record.set_event_name("order.created");
    record.add_attribute("order.id", BIG_INT);
    record.set_trace_context(
        TraceId::from(0x5b8e_fff7_9803_8103_d269_b633_813f_c600_u128),
        SpanId::from(0xeee1_9b7e_c3c1_b100_u64),
        Some(TraceFlags::SAMPLED),
    );
    logger.emit(record);

    let mut record = logger.create_log_record();
    record.set_timestamp(at(5_001 * MS));
    record.set_severity_number(Severity::Error);
    record.set_severity_text("ERROR");
    record.set_body(LogValue::ListAny(Box::new(vec![
        LogValue::Int(1),
        LogValue::Double(2.5),
        LogValue::Bytes(Box::new(vec![0x00, 0xff])),
    ])));
    logger.emit(record);

    let mut record = logger.create_log_record();
    record.set_timestamp(at(5_002 * MS));
    record.set_severity_number(Severity::Warn2);
    record.set_body(LogValue::Map(Box::new(
        [
            ("retry".into(), LogValue::Int(2)),
            ("reason".into(), LogValue::String("slow upstream".into())),
            ("ok".into(), LogValue::Boolean(false)),
        ]
        .into_iter()
        .collect(),
    )));
    record.add_attribute("component", "payments");
    logger.emit(record);

    let mut record = logger.create_log_record();
    record.set_observed_timestamp(at(5_003 * MS));
    record.set_severity_number(Severity::Fatal);
    record.set_body(LogValue::Int(BIG_INT));
    logger.emit(record);
}

/// A resource with its attributes in key order: the SDK keeps them in a hash map, so
/// two encodings of one resource may list them differently.
fn sorted_resource(resource: Option<&Resource>) -> Option<Resource> {
    resource.cloned().map(|mut r| {
        r.attributes.sort_by(|a, b| a.key.cmp(&b.key));
        r
    })
}

/// Every span with its resource, scope and the scope's schema URL, in export order
/// within a scope; equal for two sets of requests that carry the same spans however
/// they were split into calls and however scopes were ordered.
fn flat_spans(
    requests: &[ExportTraceServiceRequest],
) -> Vec<(Option<Resource>, Option<ProtoScope>, String, Span)> {
    let mut spans = Vec::new();
    for rs in requests.iter().flat_map(|r| &r.resource_spans) {
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
    // Scopes are grouped through a hash map: order by scope, keeping span order.
    spans.sort_by_key(|(_, scope, ..)| scope.as_ref().map(|s| s.name.clone()));
    spans
}

/// Every log record with its resource, scope and schema URL, in export order; map
/// bodies sorted by key (the SDK holds them in a hash map).
fn flat_logs(
    requests: &[ExportLogsServiceRequest],
) -> Vec<(Option<Resource>, Option<ProtoScope>, String, LogRecord)> {
    let mut records = Vec::new();
    for rl in requests.iter().flat_map(|r| &r.resource_logs) {
        for sl in &rl.scope_logs {
            for record in &sl.log_records {
                let mut record = record.clone();
                if let Some(any_value::Value::KvlistValue(map)) =
                    record.body.as_mut().and_then(|b| b.value.as_mut())
                {
                    map.values.sort_by(|a, b| a.key.cmp(&b.key));
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

// --- requests that use every field --------------------------------------------------

fn value(v: any_value::Value) -> AnyValue {
    AnyValue { value: Some(v) }
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(value(v)),
        ..Default::default()
    }
}

fn string(s: &str) -> any_value::Value {
    any_value::Value::StringValue(s.to_owned())
}

/// One attribute of every value type, nested ones included, and text that trips up
/// encoders.
fn every_value_type() -> Vec<KeyValue> {
    use any_value::Value::{BoolValue, BytesValue, DoubleValue, IntValue, KvlistValue};
    vec![
        kv(
            "string",
            string("h\u{e9}llo \u{2713} \u{1F600} \"q\" \\ \n\t\u{1} </script>"),
        ),
        kv("string.empty", string("")),
        kv("bool", BoolValue(true)),
        kv("int.big", IntValue(BIG_INT)),
        kv("int.min", IntValue(i64::MIN)),
        kv("int.max", IntValue(i64::MAX)),
        kv("double.max", DoubleValue(f64::MAX)),
        kv("double.tiny", DoubleValue(f64::MIN_POSITIVE)),
        kv("double.subnormal", DoubleValue(5e-324)),
        kv("double.inf", DoubleValue(f64::INFINITY)),
        kv("double.neg_inf", DoubleValue(f64::NEG_INFINITY)),
        kv("bytes", BytesValue(vec![0x00, 0xff, 0x7f, 0x80])),
        kv("bytes.empty", BytesValue(Vec::new())),
        kv(
            "array",
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![
                    value(IntValue(1)),
                    value(string("two")),
                    value(DoubleValue(3.5)),
                    value(BoolValue(false)),
                    AnyValue { value: None },
                ],
            }),
        ),
        kv(
            "array.empty",
            any_value::Value::ArrayValue(ArrayValue { values: vec![] }),
        ),
        kv(
            "map",
            KvlistValue(KeyValueList {
                values: vec![
                    kv("user.id", IntValue(42)),
                    kv(
                        "roles",
                        any_value::Value::ArrayValue(ArrayValue {
                            values: vec![value(string("admin")), value(string("dev"))],
                        }),
                    ),
                    kv(
                        "nested",
                        KvlistValue(KeyValueList {
                            values: vec![kv("deep", BytesValue(vec![1, 2, 3]))],
                        }),
                    ),
                    KeyValue {
                        key: "no.value".to_owned(),
                        value: None,
                        ..Default::default()
                    },
                ],
            }),
        ),
        kv("map.empty", KvlistValue(KeyValueList { values: vec![] })),
    ]
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", string(service)),
            kv("service.instance.id", string("i-0123")),
            kv("host.cores", any_value::Value::IntValue(2)),
        ],
        dropped_attributes_count: 1,
        entity_refs: vec![EntityRef {
            schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
            r#type: "service".to_owned(),
            id_keys: vec!["service.name".to_owned(), "service.instance.id".to_owned()],
            description_keys: vec!["host.cores".to_owned()],
        }],
    })
}

fn scope(name: &str) -> Option<ProtoScope> {
    Some(ProtoScope {
        name: name.to_owned(),
        version: "1.2.3".to_owned(),
        attributes: vec![kv("scope.kind", string("interop"))],
        dropped_attributes_count: 2,
    })
}

fn trace_id(i: u64) -> Vec<u8> {
    let mut id = [0u8; 16];
    // A leading zero byte and all bits set elsewhere: no trimming, no sign trouble.
    id[1..9].copy_from_slice(&(u64::MAX - i).to_be_bytes());
    id[9..].copy_from_slice(&i.to_be_bytes()[1..]);
    id.to_vec()
}

fn span_id(i: u64) -> Vec<u8> {
    (0x00f0_67aa_0ba9_0200 + i).to_be_bytes().to_vec()
}

/// 2 resources, 3 scopes, 24 spans: every span kind and status code, events, links,
/// trace states, flags, dropped counts, attributes of every value type.
fn traces() -> ExportTraceServiceRequest {
    let span = |i: u64| Span {
        trace_id: trace_id(i / 4),
        span_id: span_id(i),
        trace_state: if i.is_multiple_of(3) {
            "vendor=v1,other=o\u{7e}".to_owned()
        } else {
            String::new()
        },
        parent_span_id: if i.is_multiple_of(4) {
            Vec::new()
        } else {
            span_id(i - i % 4)
        },
        flags: [0x100, 0x301, 0x001, 0][i as usize % 4],
        name: format!("operation {i} \u{e9}"),
        kind: (i % 6) as i32,
        start_time_unix_nano: T0 + i * MS,
        end_time_unix_nano: T0 + i * MS + 5 * MS + i,
        attributes: if i == 0 {
            every_value_type()
        } else {
            vec![
                kv("http.request.method", string("GET")),
                kv("retries", any_value::Value::IntValue(i as i64)),
            ]
        },
        dropped_attributes_count: (i % 2) as u32,
        events: (0..i % 3)
            .map(|e| span::Event {
                time_unix_nano: T0 + i * MS + e,
                name: format!("event {e}"),
                attributes: vec![kv("attempt", any_value::Value::IntValue(e as i64))],
                dropped_attributes_count: e as u32,
            })
            .collect(),
        dropped_events_count: (i % 5) as u32,
        links: if i % 2 == 1 {
            vec![span::Link {
                trace_id: trace_id(1000 + i),
                span_id: span_id(1000 + i),
                trace_state: "k=v".to_owned(),
                attributes: vec![kv("link.kind", string("follows"))],
                dropped_attributes_count: 1,
                flags: 0x301,
            }]
        } else {
            Vec::new()
        },
        dropped_links_count: (i % 2) as u32,
        status: match i % 4 {
            0 => None,
            1 => Some(Status {
                message: String::new(),
                code: status::StatusCode::Ok as i32,
            }),
            2 => Some(Status {
                message: "upstream timed out".to_owned(),
                code: status::StatusCode::Error as i32,
            }),
            _ => Some(Status::default()),
        },
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource("checkout"),
                scope_spans: vec![
                    ScopeSpans {
                        scope: scope("interop.http"),
                        spans: (0..10).map(span).collect(),
                        schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
                    },
                    ScopeSpans {
                        scope: scope("interop.db"),
                        spans: (10..16).map(span).collect(),
                        schema_url: String::new(),
                    },
                ],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
            },
            ResourceSpans {
                resource: resource("payments"),
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: (16..24).map(span).collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

fn exemplar(i: u64, v: exemplar::Value) -> Exemplar {
    Exemplar {
        filtered_attributes: vec![kv("user.id", any_value::Value::IntValue(i as i64))],
        time_unix_nano: T0 + i,
        span_id: span_id(i),
        trace_id: trace_id(i),
        value: Some(v),
    }
}

/// Every metric type with both temporalities, exemplars, flags and metadata: 14 data
/// points.
fn metrics() -> ExportMetricsServiceRequest {
    let number = |i: u64, v: number_data_point::Value| NumberDataPoint {
        attributes: vec![kv("cpu", string(&i.to_string()))],
        start_time_unix_nano: T0,
        time_unix_nano: T0 + 10 * MS + i,
        exemplars: if i == 0 {
            vec![exemplar(i, exemplar::Value::AsInt(-3))]
        } else {
            Vec::new()
        },
        flags: (i == 2) as u32,
        value: Some(v),
    };
    let cumulative = AggregationTemporality::Cumulative as i32;
    let delta = AggregationTemporality::Delta as i32;
    let metrics = [
        Metric {
            name: "system.cpu.utilization".to_owned(),
            description: "CPU in use, 0 to 1.".to_owned(),
            unit: "1".to_owned(),
            metadata: vec![kv("source", string("procfs"))],
            data: Some(metric::Data::Gauge(Gauge {
                data_points: (0..3)
                    .map(|i| number(i, number_data_point::Value::AsDouble(0.25 * i as f64)))
                    .collect(),
            })),
        },
        Metric {
            name: "orders.created".to_owned(),
            description: "Orders placed.".to_owned(),
            unit: "{order}".to_owned(),
            metadata: Vec::new(),
            data: Some(metric::Data::Sum(Sum {
                data_points: (0..3)
                    .map(|i| number(i, number_data_point::Value::AsInt(BIG_INT + i as i64)))
                    .collect(),
                aggregation_temporality: cumulative,
                is_monotonic: true,
            })),
        },
        Metric {
            name: "queue.depth.change".to_owned(),
            unit: "{item}".to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![number(0, number_data_point::Value::AsInt(i64::MIN))],
                aggregation_temporality: delta,
                is_monotonic: false,
            })),
            ..Default::default()
        },
        Metric {
            name: "http.server.request.duration".to_owned(),
            unit: "s".to_owned(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: (0..3)
                    .map(|i| HistogramDataPoint {
                        attributes: vec![kv("http.route", string(&format!("/r/{i}")))],
                        start_time_unix_nano: T0,
                        time_unix_nano: T0 + 10 * MS,
                        count: 6 + i,
                        sum: if i == 1 { None } else { Some(12.5 * i as f64) },
                        bucket_counts: vec![1, 2, 3 + i],
                        explicit_bounds: vec![0.005, 0.25],
                        exemplars: vec![exemplar(i, exemplar::Value::AsDouble(0.2))],
                        flags: 0,
                        min: Some(0.001),
                        max: if i == 2 { None } else { Some(9.75) },
                    })
                    .collect(),
                aggregation_temporality: delta,
            })),
            ..Default::default()
        },
        Metric {
            name: "payload.size".to_owned(),
            unit: "By".to_owned(),
            data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: (0..2)
                    .map(|i| ExponentialHistogramDataPoint {
                        attributes: vec![kv("direction", string(["in", "out"][i as usize]))],
                        start_time_unix_nano: T0,
                        time_unix_nano: T0 + 10 * MS,
                        count: 10,
                        sum: Some(1234.5),
                        scale: [-3, 20][i as usize],
                        zero_count: 1,
                        positive: Some(exponential_histogram_data_point::Buckets {
                            offset: -2,
                            bucket_counts: vec![1, 0, 4],
                        }),
                        negative: Some(exponential_histogram_data_point::Buckets {
                            offset: 5,
                            bucket_counts: vec![2, 2],
                        }),
                        flags: 0,
                        exemplars: vec![exemplar(i, exemplar::Value::AsDouble(-1.5))],
                        min: Some(-40.0),
                        max: Some(900.0),
                        zero_threshold: 1e-9,
                    })
                    .collect(),
                aggregation_temporality: cumulative,
            })),
            ..Default::default()
        },
        Metric {
            name: "rpc.latency.summary".to_owned(),
            unit: "ms".to_owned(),
            data: Some(metric::Data::Summary(Summary {
                data_points: (0..2)
                    .map(|i| SummaryDataPoint {
                        attributes: vec![kv("rpc.method", string("Export"))],
                        start_time_unix_nano: T0,
                        time_unix_nano: T0 + 10 * MS + i,
                        count: 100,
                        sum: 2500.25,
                        quantile_values: vec![
                            summary_data_point::ValueAtQuantile {
                                quantile: 0.0,
                                value: 1.0,
                            },
                            summary_data_point::ValueAtQuantile {
                                quantile: 0.99,
                                value: 87.5,
                            },
                            summary_data_point::ValueAtQuantile {
                                quantile: 1.0,
                                value: 120.0,
                            },
                        ],
                        flags: i as u32,
                    })
                    .collect(),
            })),
            ..Default::default()
        },
        Metric {
            name: "no.data".to_owned(),
            description: "A metric without a data field.".to_owned(),
            ..Default::default()
        },
    ];
    let (first, second) = metrics.split_at(3);
    ExportMetricsServiceRequest {
        resource_metrics: vec![
            ResourceMetrics {
                resource: resource("checkout"),
                scope_metrics: vec![ScopeMetrics {
                    scope: scope("interop.metrics"),
                    metrics: first.to_vec(),
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
                }],
                schema_url: String::new(),
            },
            ResourceMetrics {
                resource: None,
                scope_metrics: vec![
                    ScopeMetrics {
                        scope: scope("interop.metrics.more"),
                        metrics: second.to_vec(),
                        schema_url: String::new(),
                    },
                    ScopeMetrics::default(),
                ],
                schema_url: "https://opentelemetry.io/schemas/1.24.0".to_owned(),
            },
        ],
    }
}

/// 12 log records: every body type (and none), every severity range, trace context,
/// flags, event names, dropped counts.
fn logs() -> ExportLogsServiceRequest {
    let record = |i: u64| {
        let attributes = every_value_type();
        let body = match i % 6 {
            0 => Some(value(string(&format!("record {i}")))),
            1 => attributes[15].value.clone(),
            2 => attributes[13].value.clone(),
            3 => Some(value(any_value::Value::BytesValue(vec![0, 159, 146, 150]))),
            4 => Some(value(any_value::Value::IntValue(BIG_INT))),
            _ => None,
        };
        LogRecord {
            time_unix_nano: if i == 11 { 0 } else { T0 + 5_000 * MS + i },
            observed_time_unix_nano: T0 + 5_000 * MS + i + 500,
            severity_number: [0, 1, 5, 9, 13, 17, 21, 24][i as usize % 8],
            severity_text: [
                "", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "FATAL4",
            ][i as usize % 8]
                .to_owned(),
            body,
            attributes: if i == 1 {
                attributes
            } else {
                vec![kv("component", string("auth"))]
            },
            dropped_attributes_count: (i % 3) as u32,
            flags: (i % 2) as u32,
            trace_id: if i.is_multiple_of(2) {
                trace_id(i)
            } else {
                Vec::new()
            },
            span_id: if i.is_multiple_of(2) {
                span_id(i)
            } else {
                Vec::new()
            },
            event_name: if i.is_multiple_of(4) {
                format!("interop.event.{i}")
            } else {
                String::new()
            },
        }
    };
    ExportLogsServiceRequest {
        resource_logs: vec![
            ResourceLogs {
                resource: resource("checkout"),
                scope_logs: vec![ScopeLogs {
                    scope: scope("interop.logs"),
                    log_records: (0..8).map(record).collect(),
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
                }],
                schema_url: String::new(),
            },
            ResourceLogs {
                resource: resource("payments"),
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: (8..12).map(record).collect(),
                    schema_url: String::new(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.24.0".to_owned(),
            },
        ],
    }
}

#[test]
fn the_requests_are_what_the_docs_say() {
    let t = traces();
    assert_eq!(t.item_count(), 24);
    let spans: Vec<&Span> = t
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let mut kinds: Vec<i32> = spans.iter().map(|s| s.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds, [0, 1, 2, 3, 4, 5], "every span kind");
    assert!(
        spans
            .iter()
            .any(|s| !s.links.is_empty() && !s.events.is_empty())
    );
    assert_eq!(metrics().item_count(), 14);
    assert_eq!(logs().item_count(), 12);
    let bodies: Vec<_> = logs()
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|r| r.body.as_ref().and_then(|b| b.value.clone()))
        .collect();
    assert!(matches!(bodies[1], Some(any_value::Value::KvlistValue(_))));
    assert!(matches!(bodies[2], Some(any_value::Value::ArrayValue(_))));
    assert!(bodies[5].is_none());
}
