//! [`OtlpHttpService`]: the receiver as a `tower::Service`, for [`HttpReceiver`] or for
//! mounting in your own hyper or axum server.
//!
//! The stack, outermost first: CORS (when configured; answers preflights), auth (when
//! configured; 401 before anything is read), then the OTLP handler: route, method,
//! content type, content encoding, tenant, declared length, bounded body read, bounded
//! decompression, validation, sink, response.
//!
//! [`HttpReceiver`]: super::HttpReceiver

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, EXPECT};
use http::{HeaderMap, Method, Request, Response, Version};
use http_body_util::BodyExt;
use otlp_core::compression::{Compression, decompress_bytes};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceResponse;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceResponse;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceResponse;
use otlp_core::sink::BoxFuture;
use otlp_core::{Encoding, Limits, OtlpResponse, PartialSuccess, Refusal, Signal, Sink};
use tokio::time::Instant;
use tower::util::Either;
use tower::{Service, ServiceBuilder};
use tower_http::cors::Cors;

use super::auth::{Auth, AuthLayer};
use super::config::{HttpReceiverConfig, TenantSource, Validation};
use super::decode::{self, BoxError, DRAIN_MAX_BYTES, ReadError, RequestBody};
use super::metrics::{Outcome, ReceiverMetrics};
use super::reply::{self, Failure, ResponseBody, reply_encoding};
use super::routes::{Routes, Sinks};

type WithAuth = Either<Auth<Handler>, Handler>;
type Stack = Either<Cors<WithAuth>, WithAuth>;
type StackFuture = <Stack as Service<Request<RequestBody>>>::Future;

/// The OTLP/HTTP receiver as a `tower::Service`: CORS, auth and the OTLP handler, as
/// configured in an [`HttpReceiverConfig`].
///
/// It takes any request body with `Bytes` data (hyper's `Incoming`, axum's `Body`,
/// `http_body_util::Full`), never fails (every problem is an HTTP answer), and is always
/// ready. Clones share the sinks and the [`ReceiverMetrics`].
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use http::Request;
/// use http_body_util::{BodyExt, Full};
/// use otlp_core::sink::{Accepted, BoxFuture, Sink};
/// use otlp_core::{Payload, Refusal};
/// use otlp_transport_http::receiver::{HttpReceiverConfig, OtlpHttpService, Sinks};
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
/// let service = OtlpHttpService::new(&HttpReceiverConfig::default(), Sinks::all(sink.clone()));
///
/// let body = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"hi"}}]}]}]}"#;
/// let request = Request::post("/v1/logs")
///     .header("content-type", "application/json")
///     .body(Full::new(Bytes::from(body)))
///     .unwrap();
/// let response = service.clone().oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "{}");
/// assert_eq!(sink.0.load(std::sync::atomic::Ordering::Relaxed), 1);
/// assert_eq!(service.metrics().snapshot().logs.items_accepted, 1);
/// # });
/// ```
#[derive(Clone)]
pub struct OtlpHttpService {
    stack: Stack,
    metrics: Arc<ReceiverMetrics>,
}

impl fmt::Debug for OtlpHttpService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpHttpService")
            .field("handler", &self.handler_inner())
            .finish_non_exhaustive()
    }
}

impl OtlpHttpService {
    /// The receiver's service for `config` (its listener, TLS and connection settings
    /// are not used here) handing payloads to `sinks`.
    pub fn new(config: &HttpReceiverConfig, sinks: Sinks) -> OtlpHttpService {
        let metrics = Arc::new(ReceiverMetrics::default());
        let routes = Routes::new(&config.paths);
        let handler = Handler {
            inner: Arc::new(HandlerInner {
                routes: routes.clone(),
                sinks,
                limits: config.limits,
                validation: config.validation,
                body_read_timeout: config.body_read_timeout,
                tenant: config.tenant.clone(),
                metrics: metrics.clone(),
            }),
        };
        let auth = config.credentials.clone().map(|credentials| {
            let metrics = metrics.clone();
            AuthLayer::new(credentials).on_reject(Arc::new(move |parts| {
                metrics.record_response(routes.signal(parts.uri.path()), Outcome::Rejected, 401);
            }))
        });
        let stack = ServiceBuilder::new()
            .option_layer(config.cors.clone())
            .option_layer(auth)
            .service(handler);
        OtlpHttpService { stack, metrics }
    }

    /// The counters of this service (shared by its clones).
    pub fn metrics(&self) -> Arc<ReceiverMetrics> {
        self.metrics.clone()
    }

    fn handler_inner(&self) -> &HandlerInner {
        let with_auth = match &self.stack {
            Either::Left(cors) => cors.get_ref(),
            Either::Right(with_auth) => with_auth,
        };
        match with_auth {
            Either::Left(auth) => &auth.get_ref().inner,
            Either::Right(handler) => &handler.inner,
        }
    }
}

impl<B> Service<Request<B>> for OtlpHttpService
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request<RequestBody>>::poll_ready(&mut self.stack, cx)
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        let request = request.map(|body| body.map_err(Into::into).boxed_unsync());
        ResponseFuture {
            inner: self.stack.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`OtlpHttpService`].
    pub struct ResponseFuture {
        #[pin]
        inner: StackFuture,
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

/// The OTLP handler at the bottom of the stack.
#[derive(Clone)]
pub(crate) struct Handler {
    inner: Arc<HandlerInner>,
}

struct HandlerInner {
    routes: Routes,
    sinks: Sinks,
    limits: Limits,
    validation: Validation,
    body_read_timeout: Duration,
    tenant: TenantSource,
    metrics: Arc<ReceiverMetrics>,
}

impl fmt::Debug for HandlerInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("routes", &self.routes)
            .field("sinks", &self.sinks)
            .field("limits", &self.limits)
            .field("validation", &self.validation)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl Service<Request<RequestBody>> for Handler {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<ResponseBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { Ok(inner.handle(request).await) })
    }
}

/// A successful export: the response and how to count it.
struct Exported {
    response: Response<ResponseBody>,
    outcome: Outcome,
}

impl HandlerInner {
    async fn handle(&self, request: Request<RequestBody>) -> Response<ResponseBody> {
        let (parts, body) = request.into_parts();
        let signal = self.routes.signal(parts.uri.path());
        let error_encoding = reply_encoding(&parts.headers);
        let version = parts.version;
        match self.export(signal, &parts, body).await {
            Ok(exported) => {
                self.metrics.record_response(signal, exported.outcome, 200);
                exported.response
            }
            Err(failure) => {
                let outcome = failure.outcome();
                let response = failure.into_response(error_encoding, version);
                self.metrics
                    .record_response(signal, outcome, response.status().as_u16());
                response
            }
        }
    }

    async fn export(
        &self,
        signal: Option<Signal>,
        parts: &http::request::Parts,
        mut body: RequestBody,
    ) -> Result<Exported, Failure> {
        let path = parts.uri.path();
        let Some(signal) = signal else {
            return Err(Failure::not_found(format!(
                "no OTLP signal is served at {path:?}; POST traces, metrics and logs to {}, {} and {}",
                self.path_of(Signal::Traces),
                self.path_of(Signal::Metrics),
                self.path_of(Signal::Logs),
            )));
        };
        let Some(sink) = self.sinks.get(signal) else {
            return Err(Failure::not_found(format!(
                "this receiver does not accept {signal}"
            )));
        };
        if parts.method != Method::POST {
            return Err(Failure::method_not_allowed(&parts.method));
        }
        let encoding = content_type(&parts.headers)?;
        let compression = content_encoding(&parts.headers)?;
        let tenant = self.tenant(parts)?;

        let declared = declared_length(&parts.headers)?;
        if let Some(len) = declared
            && let Err(too_large) = self.limits.check_len(compression, len)
        {
            if len <= DRAIN_MAX_BYTES {
                linger(parts, body);
            }
            return Err(Failure::rejected(too_large.into()).closing());
        }

        let deadline = Instant::now() + self.body_read_timeout;
        let wire = match decode::read_body(&mut body, self.limits.body_buf(compression), deadline)
            .await
        {
            Ok(wire) => wire,
            Err(ReadError::TooLarge(too_large)) => {
                linger(parts, body);
                return Err(Failure::rejected(too_large.into()).closing());
            }
            Err(ReadError::Timeout) => return Err(Failure::body_timeout(self.body_read_timeout)),
            Err(ReadError::Body(e)) => {
                return Err(Failure::rejected(Refusal::BadData(format!(
                    "the request body could not be read: {e}"
                )))
                .closing());
            }
        };
        drop(body);
        self.metrics.record_bytes_received(signal, wire.len());

        let decompressed = decompress_bytes(compression, wire, self.limits.max_body_bytes())
            .map_err(|e| Failure::rejected(e.into()))?;
        self.metrics
            .record_bytes_decompressed(signal, decompressed.len());

        let mut payload = decode::to_payload(signal, encoding, self.validation, decompressed)
            .map_err(Failure::rejected)?;
        if let Some(tenant) = tenant {
            payload = payload.with_tenant(tenant);
        }
        let items = payload.items();
        match sink.accept(payload).await {
            Ok(accepted) => {
                let partial = accepted.partial_success;
                let rejected = partial.as_ref().map_or(0, |p| p.rejected.min(items));
                self.metrics
                    .record_items(signal, items - rejected, rejected);
                Ok(Exported {
                    outcome: if partial.is_some() {
                        Outcome::PartiallyAccepted
                    } else {
                        Outcome::Accepted
                    },
                    response: success(signal, encoding, partial),
                })
            }
            Err(refusal) => {
                self.metrics.record_items(signal, 0, items);
                Err(Failure::refused(refusal))
            }
        }
    }

    fn path_of(&self, signal: Signal) -> &str {
        self.routes.path(signal)
    }

    fn tenant(&self, parts: &http::request::Parts) -> Result<Option<Arc<str>>, Failure> {
        match &self.tenant {
            TenantSource::None => Ok(None),
            TenantSource::Header(name) => Ok(parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(Arc::from)),
            TenantSource::Custom(f) => f(parts).map_err(Failure::rejected),
        }
    }
}

fn success(
    signal: Signal,
    encoding: Encoding,
    partial: Option<PartialSuccess>,
) -> Response<ResponseBody> {
    match signal {
        Signal::Traces => reply::success(
            encoding,
            &ExportTraceServiceResponse::with_partial_success(partial),
        ),
        Signal::Metrics => reply::success(
            encoding,
            &ExportMetricsServiceResponse::with_partial_success(partial),
        ),
        Signal::Logs => reply::success(
            encoding,
            &ExportLogsServiceResponse::with_partial_success(partial),
        ),
    }
}

/// The body encoding named by `Content-Type`: 415 when missing or not an OTLP one.
fn content_type(headers: &HeaderMap) -> Result<Encoding, Failure> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(Failure::rejected(Refusal::UnsupportedMediaType(
            "missing Content-Type; send application/x-protobuf or application/json".to_owned(),
        )));
    };
    value
        .to_str()
        .ok()
        .and_then(Encoding::from_content_type)
        .ok_or_else(|| {
            Failure::rejected(Refusal::UnsupportedMediaType(format!(
                "content type {:?} is not supported; send application/x-protobuf or application/json",
                String::from_utf8_lossy(value.as_bytes())
            )))
        })
}

/// The coding named by `Content-Encoding` (several header lines count as stacked
/// codings): 415 with `Accept-Encoding` when unsupported.
fn content_encoding(headers: &HeaderMap) -> Result<Compression, Failure> {
    let mut values = headers.get_all(CONTENT_ENCODING).iter();
    let Some(first) = values.next() else {
        return Ok(Compression::None);
    };
    let mut joined = String::from_utf8_lossy(first.as_bytes()).into_owned();
    for more in values {
        joined.push_str(", ");
        joined.push_str(&String::from_utf8_lossy(more.as_bytes()));
    }
    Compression::from_content_encoding(&joined)
        .map_err(|e| Failure::rejected(e.into()).with_accept_encoding())
}

/// The `Content-Length`, if given. hyper already refuses a malformed one on HTTP/1; a
/// value that still does not parse (another server) is bad data.
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, Failure> {
    match headers.get(CONTENT_LENGTH) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| {
                Failure::rejected(Refusal::BadData(
                    "Content-Length is not a number".to_owned(),
                ))
                .closing()
            }),
    }
}

/// Keep reading a refused HTTP/1 body for a short, bounded while so the client gets the
/// answer rather than a reset (see [`decode::drain`]). Not when the client waits for
/// `100 Continue` (reading would invite the body), and not on HTTP/2, where refusing a
/// stream does not disturb the connection.
fn linger(parts: &http::request::Parts, body: RequestBody) {
    let expects_continue = parts
        .headers
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if parts.version <= Version::HTTP_11 && !expects_continue {
        tokio::spawn(decode::drain(body));
    }
}
