//! [`OtlpGrpcService`]: the receiver as a `tower::Service`, for
//! [`GrpcReceiver`](super::GrpcReceiver) or for mounting in your own hyper server.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, Request, StatusCode, Version};
use otlp_core::codec::DecodeError;
use otlp_core::proto::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use otlp_core::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use otlp_core::proto::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otlp_core::sink::BoxFuture;
use otlp_core::{
    Compression, GrpcCode, OtlpRequest, OtlpResponse, PartialSuccess, Payload, Refusal, Signal,
    Sink,
};
use otlp_transport_http::receiver::{
    Credentials, OtlpHttpService, Outcome, ReceiverMetrics, Sinks, TenantSource, Validation,
};
use prost::Message as _;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::server::{Grpc, UnaryService};
use tower::{Service, ServiceExt};

use super::body::{BoxError, MeteredBody};
use super::config::GrpcReceiverConfig;
use super::metrics::GrpcReceiverMetrics;
use super::status::{
    GrpcResponse, code_of, http_error, refusal_status, remap_out_of_range, status_response,
};
use crate::codec::BytesCodec;

/// The OTLP/gRPC receiver as a `tower::Service` over `http::Request`s: the three
/// `Export` methods, configured by a [`GrpcReceiverConfig`], handing each request
/// message to its signal's [`Sink`] as the bytes the client sent (no decode and
/// re-encode; [`Validation::Full`] decodes only to check).
///
/// It takes any request body with `Bytes` data (hyper's `Incoming`, tonic's `Body`),
/// never fails (every problem is a gRPC status), and is always ready. Clones share the
/// sinks, the concurrency limit and the [`GrpcReceiverMetrics`]. Serve it over HTTP/2
/// (gRPC needs it), e.g. with [`otlp_transport_http::receiver::serve`] and
/// [`GrpcReceiverConfig::listener`], which is what [`GrpcReceiver`](super::GrpcReceiver)
/// does.
///
/// ```
/// use std::sync::Arc;
/// use bytes::{BufMut, Bytes, BytesMut};
/// use http::{Request, Version};
/// use http_body_util::{BodyExt, Full};
/// use otlp_core::sink::{Accepted, BoxFuture, Sink};
/// use otlp_core::{Payload, Refusal, Signal};
/// use otlp_transport_grpc::receiver::{GrpcReceiverConfig, OtlpGrpcService, Sinks};
/// use tower::ServiceExt;
///
/// struct Count(std::sync::atomic::AtomicU64);
/// impl Sink for Count {
///     fn accept(&self, p: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
///         self.0.fetch_add(p.items(), std::sync::atomic::Ordering::Relaxed);
///         Box::pin(async { Ok(Accepted::full()) })
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let sink = Arc::new(Count(Default::default()));
/// let service = OtlpGrpcService::new(&GrpcReceiverConfig::default(), Sinks::all(sink.clone()));
///
/// // One gRPC message: uncompressed flag, big-endian length, an empty
/// // ExportLogsServiceRequest (zero bytes).
/// let mut frame = BytesMut::new();
/// frame.put_u8(0);
/// frame.put_u32(0);
/// let request = Request::post(Signal::Logs.grpc_path())
///     .version(Version::HTTP_2)
///     .header("content-type", "application/grpc")
///     .body(Full::new(frame.freeze()))
///     .unwrap();
/// let response = service.clone().oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 200);
/// let body = response.into_body().collect().await.unwrap();
/// assert_eq!(body.trailers().unwrap()["grpc-status"], "0");
/// assert_eq!(service.metrics().snapshot().logs.accepted, 1);
/// # });
/// ```
#[derive(Clone)]
pub struct OtlpGrpcService {
    inner: Arc<Inner>,
    http: Option<OtlpHttpService>,
}

struct Inner {
    sinks: Sinks,
    max_message_bytes: usize,
    validation: Validation,
    accept: Vec<CompressionEncoding>,
    compress_responses: bool,
    message_read_timeout: Duration,
    calls: Arc<Semaphore>,
    max_concurrent_calls: usize,
    overload_retry_after: Duration,
    credentials: Option<Credentials>,
    tenant: TenantSource,
    metrics: Arc<GrpcReceiverMetrics>,
}

impl fmt::Debug for OtlpGrpcService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("OtlpGrpcService")
            .field("sinks", &inner.sinks)
            .field("max_message_bytes", &inner.max_message_bytes)
            .field("validation", &inner.validation)
            .field("accept", &inner.accept)
            .field("compress_responses", &inner.compress_responses)
            .field("message_read_timeout", &inner.message_read_timeout)
            .field("max_concurrent_calls", &inner.max_concurrent_calls)
            .field("auth", &inner.credentials)
            .field("tenant", &inner.tenant)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl OtlpGrpcService {
    /// The receiver's service for `config` (its listener, TLS and connection settings
    /// are not used here) handing payloads to `sinks`. With
    /// [`serve_http`](super::GrpcReceiverConfigBuilder::serve_http), requests that are
    /// not gRPC go to an OTLP/HTTP service with the same sinks.
    pub fn new(config: &GrpcReceiverConfig, sinks: Sinks) -> OtlpGrpcService {
        let http = config
            .http
            .as_ref()
            .map(|http| OtlpHttpService::new(http, sinks.clone()));
        let accept = config
            .accept_compression
            .iter()
            .filter_map(|c| match c {
                Compression::Gzip => Some(CompressionEncoding::Gzip),
                Compression::Zstd => Some(CompressionEncoding::Zstd),
                Compression::Deflate => Some(CompressionEncoding::Deflate),
                Compression::None => None,
            })
            .collect();
        OtlpGrpcService {
            inner: Arc::new(Inner {
                sinks,
                max_message_bytes: config.max_message_bytes,
                validation: config.validation,
                accept,
                compress_responses: config.compress_responses,
                message_read_timeout: config.message_read_timeout,
                calls: Arc::new(Semaphore::new(config.max_concurrent_calls)),
                max_concurrent_calls: config.max_concurrent_calls,
                overload_retry_after: config.overload_retry_after,
                credentials: config.credentials.clone(),
                tenant: config.tenant.clone(),
                metrics: Arc::new(GrpcReceiverMetrics::default()),
            }),
            http,
        }
    }

    /// The call counters of this service (shared by its clones).
    pub fn metrics(&self) -> Arc<GrpcReceiverMetrics> {
        self.inner.metrics.clone()
    }

    /// The OTLP/HTTP request counters, when this service also serves OTLP/HTTP.
    pub fn http_metrics(&self) -> Option<Arc<ReceiverMetrics>> {
        self.http.as_ref().map(OtlpHttpService::metrics)
    }
}

impl<B> Service<Request<B>> for OtlpGrpcService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError> + Send,
{
    type Response = GrpcResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        if let Some(http) = &self.http
            && content_type(request.headers()) == ContentType::NotGrpc
        {
            let http = http.clone();
            return ResponseFuture {
                inner: Box::pin(async move {
                    let response = match http.oneshot(request).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    };
                    Ok(response.map(Body::new))
                }),
            };
        }
        let inner = self.inner.clone();
        ResponseFuture {
            inner: Box::pin(async move { Ok(inner.handle(request).await) }),
        }
    }
}

/// The response future of [`OtlpGrpcService`].
pub struct ResponseFuture {
    inner: BoxFuture<'static, Result<GrpcResponse, Infallible>>,
}

impl Future for ResponseFuture {
    type Output = Result<GrpcResponse, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

/// What a request's `content-type` says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContentType {
    /// `application/grpc` or `application/grpc+proto`.
    GrpcProtobuf,
    /// gRPC with another message format (`application/grpc+json`).
    GrpcOther,
    /// Anything else, gRPC-Web included.
    NotGrpc,
}

const GRPC_PLUS: &str = "application/grpc+";

fn content_type(headers: &HeaderMap) -> ContentType {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return ContentType::NotGrpc;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let is = |candidate: &str| essence.eq_ignore_ascii_case(candidate);
    if is("application/grpc") || is("application/grpc+proto") {
        ContentType::GrpcProtobuf
    } else if essence.len() > GRPC_PLUS.len()
        && essence
            .get(..GRPC_PLUS.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(GRPC_PLUS))
    {
        ContentType::GrpcOther
    } else {
        ContentType::NotGrpc
    }
}

/// The signal whose `Export` method is at `path`.
fn signal_of(path: &str) -> Option<Signal> {
    Signal::ALL.into_iter().find(|s| s.grpc_path() == path)
}

impl Inner {
    async fn handle<B>(self: Arc<Self>, request: Request<B>) -> GrpcResponse
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError> + Send,
    {
        let started = Instant::now();
        let signal = signal_of(request.uri().path());
        let outcome = Arc::new(OnceLock::new());
        let received = Arc::new(AtomicU64::new(0));
        let response = self
            .respond(signal, request, started, &outcome, &received)
            .await;
        let code = code_of(&response);
        let outcome = outcome.get().copied().unwrap_or(if code == GrpcCode::Ok {
            Outcome::Accepted
        } else {
            Outcome::Rejected
        });
        self.metrics
            .record_bytes_received(signal, received.load(Ordering::Relaxed));
        self.metrics.record_response(signal, outcome, code);
        response
    }

    async fn respond<B>(
        &self,
        signal: Option<Signal>,
        request: Request<B>,
        started: Instant,
        outcome: &Arc<OnceLock<Outcome>>,
        received: &Arc<AtomicU64>,
    ) -> GrpcResponse
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError> + Send,
    {
        let (mut parts, body) = request.into_parts();
        if parts.method != Method::POST {
            return http_error(
                StatusCode::METHOD_NOT_ALLOWED,
                tonic::Status::unimplemented(format!(
                    "gRPC calls are POST requests, not {}",
                    parts.method
                )),
            );
        }
        match content_type(&parts.headers) {
            ContentType::GrpcProtobuf => {}
            ContentType::GrpcOther => {
                return status_response(refusal_status(&Refusal::UnsupportedMediaType(format!(
                    "{:?} is not supported; OTLP/gRPC messages are protobuf: send application/grpc",
                    parts.headers.get(CONTENT_TYPE)
                ))));
            }
            ContentType::NotGrpc => {
                return http_error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    refusal_status(&Refusal::UnsupportedMediaType(format!(
                        "this port serves OTLP/gRPC: content-type {:?} is not application/grpc",
                        parts.headers.get(CONTENT_TYPE)
                    ))),
                );
            }
        }
        if parts.version < Version::HTTP_2 {
            // Only reachable when the port also serves OTLP/HTTP (HTTP/1.1 allowed).
            return http_error(
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                tonic::Status::unimplemented(
                    "gRPC needs HTTP/2: connect with HTTP/2 (prior knowledge, or ALPN h2 over TLS)",
                ),
            );
        }
        if let Some(credentials) = &self.credentials {
            match credentials.check(&parts.headers) {
                Ok(key) => {
                    parts.extensions.insert(key);
                }
                Err(refusal) => return status_response(refusal_status(&refusal)),
            }
        }
        let Some(signal) = signal else {
            return status_response(tonic::Status::unimplemented(format!(
                "no OTLP method at {:?}; this receiver serves {}, {} and {}",
                parts.uri.path(),
                Signal::Traces.grpc_path(),
                Signal::Metrics.grpc_path(),
                Signal::Logs.grpc_path(),
            )));
        };
        let Some(sink) = self.sinks.get(signal).cloned() else {
            return status_response(tonic::Status::unimplemented(format!(
                "this receiver does not accept {signal}"
            )));
        };
        let tenant = match self.tenant(&parts) {
            Ok(tenant) => tenant,
            Err(refusal) => return status_response(refusal_status(&refusal)),
        };
        // Taken before the message is read, so the limit bounds the memory held by
        // messages, not only the sink calls.
        let Ok(permit) = self.calls.clone().try_acquire_owned() else {
            let _ = outcome.set(Outcome::Refused);
            return status_response(refusal_status(&Refusal::Unavailable {
                reason: format!(
                    "the receiver is serving its limit of {} calls (max_concurrent_calls)",
                    self.max_concurrent_calls
                ),
                retry_after: self.overload_retry_after,
            }));
        };
        let body = MeteredBody::new(body, started, self.message_read_timeout, received.clone());
        let request = Request::from_parts(parts, body);
        let export = Export {
            signal,
            sink,
            tenant,
            validation: self.validation,
            metrics: self.metrics.clone(),
            outcome: outcome.clone(),
        };
        let response = self.grpc().unary(export, request).await;
        drop(permit);
        remap_out_of_range(response, self.max_message_bytes)
    }

    /// tonic's unary handler for one call: framing, `grpc-encoding`, decompression
    /// bounded by the message limit, status trailers.
    fn grpc(&self) -> Grpc<BytesCodec> {
        let mut grpc = Grpc::new(BytesCodec).max_decoding_message_size(self.max_message_bytes);
        for encoding in &self.accept {
            grpc = grpc.accept_compressed(*encoding);
            if self.compress_responses {
                grpc = grpc.send_compressed(*encoding);
            }
        }
        grpc
    }

    fn tenant(&self, parts: &http::request::Parts) -> Result<Option<Arc<str>>, Refusal> {
        match &self.tenant {
            TenantSource::None => Ok(None),
            TenantSource::Header(name) => Ok(parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(Arc::from)),
            TenantSource::Custom(f) => f(parts),
        }
    }
}

/// The `Export` call once tonic has read the message: validate, hand to the sink,
/// answer.
#[derive(Clone)]
struct Export {
    signal: Signal,
    sink: Arc<dyn Sink>,
    tenant: Option<Arc<str>>,
    validation: Validation,
    metrics: Arc<GrpcReceiverMetrics>,
    outcome: Arc<OnceLock<Outcome>>,
}

impl UnaryService<Bytes> for Export {
    type Response = Bytes;
    type Future = BoxFuture<'static, Result<tonic::Response<Bytes>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.export(request.into_inner()).await })
    }
}

impl Export {
    async fn export(self, message: Bytes) -> Result<tonic::Response<Bytes>, tonic::Status> {
        let signal = self.signal;
        self.metrics
            .record_bytes_decompressed(signal, message.len());
        let mut payload = match to_payload(signal, self.validation, message) {
            Ok(payload) => payload,
            Err(refusal) => {
                let _ = self.outcome.set(Outcome::Rejected);
                return Err(refusal_status(&refusal));
            }
        };
        if let Some(tenant) = self.tenant {
            payload = payload.with_tenant(tenant);
        }
        let items = payload.items();
        match self.sink.accept(payload).await {
            Ok(accepted) => {
                let partial = accepted.partial_success;
                let rejected = partial.as_ref().map_or(0, |p| p.rejected.min(items));
                self.metrics
                    .record_items(signal, items - rejected, rejected);
                let _ = self.outcome.set(if partial.is_some() {
                    Outcome::PartiallyAccepted
                } else {
                    Outcome::Accepted
                });
                Ok(tonic::Response::new(export_response(signal, partial)))
            }
            Err(refusal) => {
                self.metrics.record_items(signal, 0, items);
                let _ = self.outcome.set(Outcome::Refused);
                Err(refusal_status(&refusal))
            }
        }
    }
}

/// Check a request message as `validation` says and make the pipeline's unit of work
/// from it: the client's bytes as they are.
fn to_payload(signal: Signal, validation: Validation, message: Bytes) -> Result<Payload, Refusal> {
    let result = match (validation, signal) {
        (Validation::Full, Signal::Traces) => decode_full::<ExportTraceServiceRequest>(message),
        (Validation::Full, Signal::Metrics) => decode_full::<ExportMetricsServiceRequest>(message),
        (Validation::Full, Signal::Logs) => decode_full::<ExportLogsServiceRequest>(message),
        (Validation::Framing, _) => Payload::from_encoded(signal, message),
    };
    result.map_err(|e| {
        Refusal::BadData(format!(
            "{e} (the message of {} must be an {})",
            signal.grpc_path(),
            request_name(signal)
        ))
    })
}

fn decode_full<T: OtlpRequest>(message: Bytes) -> Result<Payload, DecodeError> {
    let request: T = otlp_core::codec::protobuf::decode(&message)?;
    // prost read every byte, so the client's bytes are valid as they are: forward them
    // instead of re-encoding.
    Ok(Payload::new(T::SIGNAL, message, request.item_count()))
}

const fn request_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "ExportTraceServiceRequest",
        Signal::Metrics => "ExportMetricsServiceRequest",
        Signal::Logs => "ExportLogsServiceRequest",
    }
}

fn export_response(signal: Signal, partial: Option<PartialSuccess>) -> Bytes {
    let encoded = match signal {
        Signal::Traces => ExportTraceServiceResponse::with_partial_success(partial).encode_to_vec(),
        Signal::Metrics => {
            ExportMetricsServiceResponse::with_partial_success(partial).encode_to_vec()
        }
        Signal::Logs => ExportLogsServiceResponse::with_partial_success(partial).encode_to_vec(),
    };
    Bytes::from(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let ct = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, v.parse().unwrap());
            content_type(&headers)
        };
        assert_eq!(ct("application/grpc"), ContentType::GrpcProtobuf);
        assert_eq!(ct("Application/GRPC+proto"), ContentType::GrpcProtobuf);
        assert_eq!(
            ct("application/grpc; charset=utf-8"),
            ContentType::GrpcProtobuf
        );
        assert_eq!(ct("application/grpc+json"), ContentType::GrpcOther);
        assert_eq!(ct("application/grpc-web"), ContentType::NotGrpc);
        assert_eq!(ct("application/grpc+"), ContentType::NotGrpc);
        assert_eq!(ct("application/x-protobuf"), ContentType::NotGrpc);
        assert_eq!(content_type(&HeaderMap::new()), ContentType::NotGrpc);
    }

    #[test]
    fn methods_route_to_signals() {
        for signal in Signal::ALL {
            assert_eq!(signal_of(signal.grpc_path()), Some(signal));
        }
        assert_eq!(signal_of("/v1/traces"), None);
    }

    #[test]
    fn payloads_are_the_client_bytes() {
        let request = ExportLogsServiceRequest::default();
        let bytes = Bytes::from(request.encode_to_vec());
        for validation in [Validation::Full, Validation::Framing] {
            let payload = to_payload(Signal::Logs, validation, bytes.clone()).unwrap();
            assert_eq!(payload.body(), &bytes);
        }
        let err = to_payload(
            Signal::Traces,
            Validation::Full,
            Bytes::from_static(&[0x0a, 5]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("ExportTraceServiceRequest"),
            "{err}"
        );
        assert_eq!(err.grpc_code(), GrpcCode::InvalidArgument);
    }
}
