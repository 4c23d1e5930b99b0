//! Interop: what our exporter sends is decoded by an implementation not written here,
//! the Python `opentelemetry-proto` package.
//!
//! `interop/python/capture_decode.py` (in the `proto` venv of `interop/setup-venv.sh`)
//! is a small capture server that parses every body with
//! `opentelemetry.proto.collector.*_pb2` and writes it back out as OTLP/JSON
//! (`json_format.MessageToDict`, ids converted from base64 to hex). The test reads those
//! files with `otlp_core`'s OTLP/JSON decoder and asserts that every span, attribute,
//! data point and log record equals what was sent:
//!
//! 1. traces, metrics and logs requests through [`HttpExporter`], protobuf, plain and gzip;
//! 2. SDK spans and log records through the SDK adapters, whose protobuf is written
//!    straight from the SDK's data: compared with `opentelemetry_proto::transform`'s
//!    messages for the same data.
//!
//! Skips, loudly, only when `python3` is not installed.

mod exporter_support;

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use exporter_support::python::{python_available, repo_root, setup_venv};
use exporter_support::{bounded, logs, metrics, test_exporter, traces};
use opentelemetry::logs::{
    AnyValue as LogValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity,
};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogProcessor, SdkLogRecord, SdkLoggerProvider};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use otlp_core::codec::json;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::{Compression, OtlpRequest};
use otlp_transport_http::sdk::{ExportRuntime, LogsExporter, TraceExporter};

/// The capture server, killed with its process group if the test fails.
struct Capture {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Capture {
    fn start(venv: &Path, out: PathBuf) -> Capture {
        std::fs::create_dir_all(&out).unwrap();
        let mut child = Command::new(venv.join("bin/python"))
            .arg(repo_root().join("interop/python/capture_decode.py"))
            .arg("--out")
            .arg(&out)
            .arg("--timeout")
            .arg("90")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start capture_decode.py");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the script never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("capture_decode.py did not print its port ({other:?}); stderr:\n{err}");
            }
        };
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Capture { child, port, out }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server (POST /shutdown) and waits for the script to exit.
    fn finish(mut self) {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .write_all(b"POST /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        for _ in 0..500 {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut stderr) = self.child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                assert!(
                    status.success(),
                    "capture_decode.py: {status}; stderr:\n{err}"
                );
                let errors = self.out.join("errors.txt");
                assert!(
                    !errors.exists(),
                    "the Python decoder rejected requests:\n{}",
                    std::fs::read_to_string(errors).unwrap_or_default()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("capture_decode.py did not exit after /shutdown");
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                // `-s KILL --`: procps kill reads `-KILL -PGID` as `kill -1` (every process).
                .args(["-s", "KILL", "--"])
                .arg(format!("-{}", self.child.id()))
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "interop-sdk"),
            KeyValue::new("host.cores", 2),
        ])
        .build()
}

fn span_data(i: u64) -> SpanData {
    let at = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_000 + i * 1_000);
    let mut events = SpanEvents::default();
    if i.is_multiple_of(2) {
        events.events.push(opentelemetry::trace::Event::new(
            "retry",
            at,
            vec![
                KeyValue::new("attempt", 2),
                KeyValue::new("backoff.ms", 12.5),
            ],
            1,
        ));
    }
    let mut links = SpanLinks::default();
    if i.is_multiple_of(3) {
        links.links.push(opentelemetry::trace::Link::new(
            SpanContext::new(
                TraceId::from(77),
                SpanId::from(88),
                TraceFlags::SAMPLED,
                true,
                TraceState::NONE,
            ),
            vec![KeyValue::new("link.reason", "batch")],
            0,
        ));
    }
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(0x5b8e_fff7_9803_8103_d269_b633_813f_c600_u128 + u128::from(i)),
            SpanId::from(0xeee1_9b7e_c3c1_b100 + i),
            TraceFlags::SAMPLED,
            false,
            if i == 1 {
                TraceState::from_key_value([("vendor", "v1")]).unwrap()
            } else {
                TraceState::NONE
            },
        ),
        parent_span_id: if i == 0 {
            SpanId::INVALID
        } else {
            SpanId::from(0xeee1_9b7e_c3c1_b100)
        },
        parent_span_is_remote: false,
        span_kind: if i == 0 {
            SpanKind::Server
        } else {
            SpanKind::Client
        },
        name: Cow::Owned(format!("operation {i}")),
        start_time: at,
        end_time: at + Duration::from_millis(5 + i),
        attributes: vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("retries", i as i64),
            KeyValue::new("ratio", 0.5 + i as f64),
            KeyValue::new("cached", i.is_multiple_of(2)),
            KeyValue::new(
                "tags",
                opentelemetry::Value::Array(
                    vec![opentelemetry::StringValue::from("a"), "b".into()].into(),
                ),
            ),
            KeyValue::new("unicode", "h\u{e9}llo \u{1F600}"),
        ],
        dropped_attributes_count: 0,
        events,
        links,
        status: match i % 3 {
            0 => Status::Unset,
            1 => Status::Ok,
            _ => Status::error("upstream timed out"),
        },
        instrumentation_scope: InstrumentationScope::builder("interop.sdk")
            .with_version("0.1.0")
            .build(),
    }
}

/// Keeps a copy of every log record, to compute what the transform would send.
#[derive(Debug, Default)]
struct Keep(Arc<Mutex<Vec<(SdkLogRecord, InstrumentationScope)>>>);

impl LogProcessor for Keep {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        self.0.lock().unwrap().push((record.clone(), scope.clone()));
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn sorted_traces(mut r: ExportTraceServiceRequest) -> ExportTraceServiceRequest {
    for rs in &mut r.resource_spans {
        rs.scope_spans
            .sort_by_key(|s| s.scope.clone().unwrap_or_default().name);
        // The SDK keeps resource attributes in a hash map: their order is arbitrary.
        if let Some(resource) = &mut rs.resource {
            resource.attributes.sort_by(|a, b| a.key.cmp(&b.key));
        }
    }
    r
}

fn sorted_logs(mut r: ExportLogsServiceRequest) -> ExportLogsServiceRequest {
    for rl in &mut r.resource_logs {
        rl.scope_logs
            .sort_by_key(|s| s.scope.clone().unwrap_or_default().name);
        if let Some(resource) = &mut rl.resource {
            resource.attributes.sort_by(|a, b| a.key.cmp(&b.key));
        }
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_opentelemetry_proto_decodes_what_we_send() {
    if !python_available() {
        return;
    }
    let venv = tokio::task::spawn_blocking(|| setup_venv("proto"))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("exporter-interop-{}", std::process::id()));
    let capture = Capture::start(&venv, out);

    // 1. Requests through the exporter: protobuf, then protobuf with gzip.
    let (t, m, l) = (traces(25), metrics(4), logs(12));
    for compression in [Compression::None, Compression::Gzip] {
        let exporter = test_exporter(&capture.url())
            .compression(compression)
            .build()
            .unwrap();
        bounded("traces", exporter.export_traces(&t)).await.unwrap();
        bounded("metrics", exporter.export_metrics(&m))
            .await
            .unwrap();
        bounded("logs", exporter.export_logs(&l)).await.unwrap();
    }

    // 2. SDK data through the adapters' own protobuf writer.
    let exporter = test_exporter(&capture.url()).build().unwrap();
    let mut spans = TraceExporter::new(exporter.clone())
        .with_runtime(ExportRuntime::Handle(tokio::runtime::Handle::current()));
    spans.set_resource(&resource());
    let batch: Vec<SpanData> = (0..12).map(span_data).collect();
    bounded("SDK spans", spans.export(batch.clone()))
        .await
        .unwrap();
    let expected_sdk_traces = ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            batch,
            &ResourceAttributesWithSchema::from(&resource()),
        ),
    };

    let kept = Keep::default();
    let records = Arc::clone(&kept.0);
    let logger_provider = SdkLoggerProvider::builder()
        .with_log_processor(kept)
        .with_batch_exporter(LogsExporter::new(exporter))
        .with_resource(resource())
        .build();
    let logger = logger_provider.logger_with_scope(
        InstrumentationScope::builder("interop.sdk.logs")
            .with_version("0.1.0")
            .build(),
    );
    for i in 0..6_i64 {
        let mut record = logger.create_log_record();
        record
            .set_timestamp(UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_000 + i as u64));
        record.set_observed_timestamp(UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_001_000));
        record.set_severity_number(
            [Severity::Info, Severity::Error, Severity::Debug][i as usize % 3],
        );
        record.set_severity_text(["INFO", "ERROR", "DEBUG"][i as usize % 3]);
        record.set_body(match i % 3 {
            0 => LogValue::from(format!("message {i}")),
            1 => LogValue::Bytes(Box::new(vec![0, 159, 146, 150])),
            _ => LogValue::ListAny(Box::new(vec![LogValue::Int(i), LogValue::Double(2.5)])),
        });
        record.add_attribute("user.id", i);
        if i % 2 == 0 {
            record.set_trace_context(
                TraceId::from(0xabc),
                SpanId::from(0xdef),
                Some(TraceFlags::SAMPLED),
            );
        }
        if i == 3 {
            record.set_event_name("checkout.failed");
        }
        logger.emit(record);
    }
    tokio::task::spawn_blocking(move || logger_provider.shutdown().unwrap())
        .await
        .unwrap();
    let records = records.lock().unwrap().clone();
    let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
        records.iter().map(|(r, s)| (r, s)).collect();
    let expected_sdk_logs = ExportLogsServiceRequest {
        resource_logs: group_logs_by_resource_and_scope(
            &LogBatch::new(&refs),
            &ResourceAttributesWithSchema::from(&resource()),
        ),
    };

    let capture = tokio::task::spawn_blocking(move || {
        let out = capture.out.clone();
        let port = capture.port;
        capture.finish();
        (out, port)
    });
    let (out, _port) = capture.await.unwrap();
    let decoded = Decoded(out);

    // 1: every request equals what was sent, message for message.
    assert_eq!(decoded.count("traces"), 3);
    assert_eq!(decoded.count("metrics"), 2);
    assert_eq!(decoded.count("logs"), 3);
    for n in 1..=2 {
        let got: ExportTraceServiceRequest = decoded.request("traces", n);
        assert_eq!(got.item_count(), 25);
        assert_eq!(got, t, "traces request {n}");
        let got: ExportMetricsServiceRequest = decoded.request("metrics", n);
        assert_eq!(got.item_count(), 12);
        assert_eq!(got, m, "metrics request {n}");
        let got: ExportLogsServiceRequest = decoded.request("logs", n);
        assert_eq!(got.item_count(), 12);
        assert_eq!(got, l, "logs request {n}");
    }
    assert!(
        decoded
            .meta("traces", 1)
            .contains(r#""encoding": "identity""#)
    );
    assert!(decoded.meta("traces", 2).contains(r#""encoding": "gzip""#));
    assert!(
        decoded
            .meta("logs", 2)
            .contains(r#""content-encoding": "gzip""#)
    );

    // 2: the SDK adapters' protobuf, decoded by Python, is what the transform builds.
    let got: ExportTraceServiceRequest = decoded.request("traces", 3);
    assert_eq!(got.item_count(), 12);
    assert_eq!(sorted_traces(got), sorted_traces(expected_sdk_traces));
    let got: ExportLogsServiceRequest = decoded.request("logs", 3);
    assert_eq!(got.item_count(), 6);
    assert_eq!(sorted_logs(got), sorted_logs(expected_sdk_logs));
}

/// The capture's output directory after the script exited.
struct Decoded(PathBuf);

impl Decoded {
    fn request<T: json::JsonMessage>(&self, signal: &str, n: usize) -> T {
        let path = self.0.join(format!("{signal}.{n}.json"));
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn meta(&self, signal: &str, n: usize) -> String {
        std::fs::read_to_string(self.0.join(format!("{signal}.{n}.meta.json"))).unwrap()
    }

    fn count(&self, signal: &str) -> usize {
        (1..)
            .take_while(|n| self.0.join(format!("{signal}.{n}.json")).exists())
            .count()
    }
}

impl Drop for Decoded {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
