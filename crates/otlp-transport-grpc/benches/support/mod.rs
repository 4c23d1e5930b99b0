//! What the OTLP/gRPC benches and `examples/grpc_receiver_bench.rs` share: a bare tonic
//! server (the minimal upstream of the exporter benches, and the ceiling reference of
//! the receiver bench), a sink that counts, and the project's reference trace request.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use otlp_core::sink::{Accepted, BoxFuture, Sink};
use otlp_core::{OtlpRequest, Payload, Refusal, Signal};
use otlp_transport_grpc::codec::BytesCodec;
use otlp_transport_grpc::receiver::Validation;
use tonic::codec::CompressionEncoding;
use tonic::server::Grpc;
use tonic::transport::server::TcpIncoming;

/// What the bare tonic server does with a message before answering OK with an empty
/// `Export*ServiceResponse`.
#[derive(Clone)]
pub(crate) enum Work {
    /// Nothing: a minimal upstream for exporters.
    Nothing,
    /// What our receiver does: validate as `validation` says, make a `Payload` (bytes as
    /// received, items counted) and hand it to `sink`; a refusal becomes its status.
    Sink {
        sink: Arc<dyn Sink>,
        validation: Validation,
    },
}

/// Serves the three OTLP `Export` methods (any path, in fact) on `listener` with
/// `tonic::transport::Server` and the pass-through codec, accepting gzip and zstd,
/// `TCP_NODELAY` on every connection, at most `max_streams` streams per connection.
/// Runs until the process ends.
pub(crate) async fn serve_tonic(listener: tokio::net::TcpListener, work: Work, max_streams: u32) {
    let service = tower::service_fn(move |request: http::Request<tonic::body::Body>| {
        let work = work.clone();
        async move {
            let signal = Signal::ALL
                .into_iter()
                .find(|s| s.grpc_path() == request.uri().path())
                .unwrap_or(Signal::Traces);
            let mut grpc = Grpc::new(BytesCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(64 << 20);
            let call = tower::service_fn(move |call: tonic::Request<Bytes>| {
                let work = work.clone();
                async move {
                    handle(signal, &work, call.into_inner()).await?;
                    Ok::<_, tonic::Status>(tonic::Response::new(Bytes::new()))
                }
            });
            Ok::<_, Infallible>(grpc.unary(call, request).await)
        }
    });
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let served = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(max_streams))
        .serve_with_incoming(service, incoming)
        .await;
    if let Err(e) = served {
        eprintln!("bare tonic server stopped: {e}");
    }
}

async fn handle(signal: Signal, work: &Work, message: Bytes) -> Result<(), tonic::Status> {
    let Work::Sink { sink, validation } = work else {
        return Ok(());
    };
    let payload = match validation {
        Validation::Full => match signal {
            Signal::Traces => full::<ExportTraceServiceRequest>(message),
            Signal::Metrics => full::<ExportMetricsServiceRequest>(message),
            Signal::Logs => full::<ExportLogsServiceRequest>(message),
        },
        _ => Payload::from_encoded(signal, message).map_err(|e| e.to_string()),
    }
    .map_err(tonic::Status::invalid_argument)?;
    match sink.accept(payload).await {
        Ok(_) => Ok(()),
        Err(refusal) => Err(tonic::Status::unavailable(refusal.to_string())),
    }
}

fn full<T: OtlpRequest>(message: Bytes) -> Result<Payload, String> {
    let request: T = otlp_core::codec::protobuf::decode(&message).map_err(|e| e.to_string())?;
    Ok(Payload::new(T::SIGNAL, message, request.item_count()))
}

/// Accepts everything, counting payloads, items and bytes.
#[derive(Debug, Default)]
pub(crate) struct Counting {
    pub(crate) payloads: AtomicU64,
    pub(crate) items: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

impl Sink for Counting {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        self.payloads.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(payload.items(), Ordering::Relaxed);
        self.bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        Box::pin(async { Ok(Accepted::full()) })
    }
}

/// `message` as one uncompressed gRPC length-prefixed message (flag 0, 4-byte
/// big-endian length), the request body of a unary call.
pub(crate) fn grpc_frame(message: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(message.len()).expect("message under 4 GiB"));
    frame.put_slice(message);
    frame.freeze()
}

fn string_kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// One resource, one scope, `spans` spans of `attributes` string attributes each: the
/// project's reference shape (`otlp_benches::trace_request(1, spans, attributes)`, also
/// in `otlp-transport-http`'s `receiver_bench` example), about 376 bytes a span with 10
/// attributes. Publishable crates cannot depend on the benches crate, hence the copy.
pub(crate) fn trace_request(spans: u64, attributes: usize) -> ExportTraceServiceRequest {
    let spans = (1..=spans)
        .map(|n| {
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&(n / 8 + 1).to_be_bytes());
            trace_id[8..].copy_from_slice(&0x5a5a_5a5a_0000_0000u64.to_be_bytes());
            let start = 1_764_000_000_000_000_000 + n * 1_000_000;
            Span {
                trace_id: trace_id.to_vec(),
                span_id: (n + 1).to_be_bytes().to_vec(),
                parent_span_id: if n.is_multiple_of(8) {
                    Vec::new()
                } else {
                    n.to_be_bytes().to_vec()
                },
                name: format!("GET /api/v1/items/{}", n % 100),
                kind: span::SpanKind::Server as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 250_000 + n % 1000,
                attributes: (0..attributes)
                    .map(|a| {
                        string_kv(
                            &format!("app.attr.{a}"),
                            format!("val-{a}-{:06}", n % 1_000_000),
                        )
                    })
                    .collect(),
                status: Some(Status::default()),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string_kv("service.name", "service-0".into()),
                    string_kv("host.name", "host-0.example.internal".into()),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bench.instrumentation".into(),
                    version: "1.0.0".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
