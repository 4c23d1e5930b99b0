//! Traces requests whose span ids the test knows, and a client that sends them with our
//! OTLP/gRPC exporter and says which ones the gateway acknowledged.
//!
//! Span `i` of a run with base `B` has span id `B + i` and trace id `(B << 64) | i`, so
//! ids never collide across runs with distinct bases and a missing one names its index.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use otlp_core::{Compression, ExportError, GrpcCode};
use otlp_transport_grpc::exporter::GrpcExporter;

use super::delivered::hex;

/// Nanoseconds of 2023-11-14T22:13:20Z, the first span's start.
const T0: u64 = 1_700_000_000_000_000_000;

/// The span id of span `i` of run `base`, as lowercase hex.
pub(crate) fn span_id_hex(base: u64, i: u64) -> String {
    hex(&base.wrapping_add(i).to_be_bytes())
}

fn attr(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// Spans `range` of run `base` in one request; every `error_every`-th span (`i %
/// error_every == 0`, none when 0) has an ERROR status; `padding` bytes of attribute
/// text per span make requests as large as a test needs.
pub(crate) fn traces_request(
    base: u64,
    range: Range<u64>,
    error_every: u64,
    padding: usize,
) -> ExportTraceServiceRequest {
    let pad = "x".repeat(padding);
    let spans = range
        .map(|i| {
            let error = error_every != 0 && i % error_every == 0;
            let trace_id = ((u128::from(base) << 64) | u128::from(i)).to_be_bytes();
            Span {
                trace_id: trace_id.to_vec(),
                span_id: base.wrapping_add(i).to_be_bytes().to_vec(),
                name: format!("e2e span {i}"),
                kind: span::SpanKind::Server as i32,
                start_time_unix_nano: T0 + i * 1_000_000,
                end_time_unix_nano: T0 + i * 1_000_000 + 500_000,
                attributes: vec![
                    attr("load.index", any_value::Value::IntValue(i as i64)),
                    attr(
                        "http.route",
                        any_value::Value::StringValue("/orders/{id}".into()),
                    ),
                    attr("load.padding", any_value::Value::StringValue(pad.clone())),
                ],
                status: Some(Status {
                    code: if error {
                        status::StatusCode::Error as i32
                    } else {
                        status::StatusCode::Ok as i32
                    },
                    message: if error {
                        "e2e error".into()
                    } else {
                        String::new()
                    },
                }),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attr(
                    "service.name",
                    any_value::Value::StringValue("gateway-e2e".into()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "gateway_e2e".into(),
                    version: "1".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Our OTLP/gRPC exporter to `addr` as a plain client: no retry, no circuit breaker, no
/// environment, so each call's result is the gateway's own answer.
pub(crate) fn grpc_client(addr: SocketAddr) -> GrpcExporter {
    GrpcExporter::builder()
        .endpoint(format!("http://{addr}"))
        .no_env()
        .no_retry()
        .no_circuit_breaker()
        .compression(Compression::None)
        .timeout(Duration::from_secs(15))
        .build()
        .expect("a valid gRPC exporter configuration")
}

/// How the gateway answered one request.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// Success: the spans are the gateway's responsibility now.
    Accepted,
    /// A refusal the OTLP spec says to retry, with the delay the gateway gave.
    Retryable(String),
    /// Anything else (a refusal that must not happen for valid data, or no answer).
    Other(String),
}

/// Classifies a gRPC exporter error per the OTLP spec: UNAVAILABLE, or RESOURCE_EXHAUSTED
/// with RetryInfo, is a retryable refusal.
pub(crate) fn classify_grpc(error: &ExportError) -> Answer {
    match error {
        ExportError::Grpc {
            code: GrpcCode::Unavailable,
            ..
        }
        | ExportError::Grpc {
            code: GrpcCode::ResourceExhausted,
            has_retry_info: true,
            ..
        } => Answer::Retryable(error.to_string()),
        other => Answer::Other(other.to_string()),
    }
}

/// Sends spans `range` of run `base` to `client` in requests of `per_request` spans; returns
/// the ids of the acknowledged ones and the errors of the others (in order).
pub(crate) async fn send_spans(
    client: &GrpcExporter,
    base: u64,
    range: Range<u64>,
    per_request: u64,
    error_every: u64,
) -> (Vec<String>, Vec<String>) {
    let mut acked = Vec::new();
    let mut errors = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let end = (start + per_request).min(range.end);
        let request = traces_request(base, start..end, error_every, 64);
        match client.export_traces(&request).await {
            Ok(_) => acked.extend((start..end).map(|i| span_id_hex(base, i))),
            Err(failure) => errors.push(failure.to_string()),
        }
        start = end;
    }
    (acked, errors)
}

/// Like [`send_spans`], but each request is retried (bounded: `attempts`, 200 ms apart)
/// until acknowledged, as an SDK would, and requests are `pace` apart; returns the ids
/// acknowledged and the errors seen.
pub(crate) async fn send_spans_retrying(
    client: &GrpcExporter,
    base: u64,
    range: Range<u64>,
    per_request: u64,
    attempts: u32,
    pace: Duration,
) -> (Vec<String>, Vec<String>) {
    let mut acked = Vec::new();
    let mut errors = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let end = (start + per_request).min(range.end);
        let request = traces_request(base, start..end, 0, 64);
        for _ in 0..attempts {
            match client.export_traces(&request).await {
                Ok(_) => {
                    acked.extend((start..end).map(|i| span_id_hex(base, i)));
                    break;
                }
                Err(failure) => {
                    errors.push(failure.to_string());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        start = end;
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
    }
    (acked, errors)
}
