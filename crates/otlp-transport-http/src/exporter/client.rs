//! One HTTP request: build it, send it with reqwest, classify the answer through
//! `otlp-core`.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method};
use otlp_core::codec;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceResponse;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceResponse;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceResponse;
use otlp_core::sink::Accepted;
use otlp_core::{Compression, Encoding, ExportError, OtlpResponse, Signal};
use otlp_resilience::breaker::CircuitBreaker;

use super::config::{HttpExporterBuilder, HttpVersion, SignalSettings};
use super::error::ConfigError;

/// How much of an error response's body is read: enough for any `google.rpc.Status` a
/// server sends, little enough that a misbehaving one cannot make us buffer much.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Where one signal's requests go and how they look.
pub(crate) struct Route {
    pub(crate) settings: SignalSettings,
    pub(crate) endpoint: Arc<str>,
    headers: HeaderMap,
    client: reqwest::Client,
    pub(crate) breaker: Option<CircuitBreaker>,
    max_response_bytes: usize,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("settings", &self.settings)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl Route {
    pub(crate) fn new(
        settings: SignalSettings,
        client: reqwest::Client,
        breaker: Option<CircuitBreaker>,
        builder: &HttpExporterBuilder,
    ) -> Result<Route, ConfigError> {
        let mut headers = settings.headers().clone();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(settings.protocol().encoding().content_type()),
        );
        if settings.compression() != Compression::None {
            headers.insert(
                CONTENT_ENCODING,
                HeaderValue::from_static(settings.compression().as_str()),
            );
        }
        let agent = HeaderValue::from_str(&builder.common.user_agent).map_err(|_| {
            ConfigError::InvalidHeader {
                key: "user_agent()".to_owned(),
                entry: builder.common.user_agent.clone(),
                reason: "not a valid HTTP header value".to_owned(),
            }
        })?;
        headers.insert(USER_AGENT, agent);
        Ok(Route {
            endpoint: Arc::from(settings.endpoint()),
            settings,
            headers,
            client,
            breaker,
            max_response_bytes: builder.max_response_bytes,
        })
    }

    pub(crate) fn signal(&self) -> Signal {
        self.settings.signal()
    }

    pub(crate) fn encoding(&self) -> Encoding {
        self.settings.protocol().encoding()
    }

    /// One request with `body` (already encoded and compressed), bounded by the timeout.
    pub(crate) async fn send_once(&self, body: Bytes) -> Result<Accepted, ExportError> {
        let timeout = self.settings.timeout();
        match tokio::time::timeout(timeout, self.exchange(body)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(ExportError::Timeout(timeout)),
        }
    }

    async fn exchange(&self, body: Bytes) -> Result<Accepted, ExportError> {
        let mut request = reqwest::Request::new(Method::POST, self.settings.url().clone());
        *request.headers_mut() = self.headers.clone();
        *request.body_mut() = Some(reqwest::Body::from(body));
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| request_error(&e, self.settings.timeout()))?;
        let status = response.status();
        let content_type = header_text(response.headers(), CONTENT_TYPE.as_str());
        if status.is_success() {
            let body = read_body(&mut response, self.max_response_bytes)
                .await
                .map_err(|e| match e {
                    ReadError::TooLarge => ExportError::InvalidResponse(format!(
                        "the server accepted the data (HTTP {status}) but its response body is larger than {} bytes",
                        self.max_response_bytes
                    )),
                    ReadError::Http(e) => ExportError::InvalidResponse(format!(
                        "the server accepted the data (HTTP {status}) but its response body could not be read: {}",
                        chain(&e)
                    )),
                })?;
            return decode_success(
                self.signal(),
                self.encoding(),
                content_type.as_deref(),
                &body,
            )
            .map_err(|reason| {
                ExportError::InvalidResponse(format!(
                    "the server accepted the data (HTTP {status}) but {reason}"
                ))
            });
        }
        let retry_after = header_text(response.headers(), RETRY_AFTER.as_str());
        // An error body that cannot be read completely (the server closed early) is
        // classified with what arrived: the status decides what happens next.
        let body = read_prefix(&mut response, MAX_ERROR_BODY_BYTES).await;
        Err(ExportError::from_http(
            status.as_u16(),
            retry_after.as_deref(),
            content_type.as_deref(),
            &body,
            SystemTime::now(),
        ))
    }
}

/// Builds the reqwest client for one TLS configuration.
pub(crate) fn build_client(
    tls: rustls::ClientConfig,
    builder: &HttpExporterBuilder,
) -> Result<reqwest::Client, ConfigError> {
    let mut client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        // The design's known trap: without it, HTTP/2 requests wait on delayed ACKs.
        .tcp_nodelay(true)
        .connect_timeout(builder.common.connect_timeout)
        .pool_idle_timeout(builder.pool_idle_timeout)
        .pool_max_idle_per_host(builder.pool_max_idle_per_host)
        // A redirected POST may turn into a GET (301, 302, 303): surface redirects as the
        // error they are for an OTLP endpoint instead.
        .redirect(reqwest::redirect::Policy::none());
    client = match builder.http_version {
        HttpVersion::Auto => client,
        HttpVersion::Http1Only => client.http1_only(),
        HttpVersion::Http2Only => client.http2_prior_knowledge(),
    };
    client.build().map_err(|e| ConfigError::Client(chain(&e)))
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A reqwest error as an OTLP export error: a timeout, or the transport failed
/// (connection refused or reset, TLS handshake, DNS).
fn request_error(error: &reqwest::Error, timeout: Duration) -> ExportError {
    if error.is_timeout() && !error.is_connect() {
        ExportError::Timeout(timeout)
    } else {
        ExportError::Transport(chain(error))
    }
}

/// An error and its sources, `: `-separated (reqwest's own message omits the cause).
fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

enum ReadError {
    TooLarge,
    Http(reqwest::Error),
}

async fn read_body(response: &mut reqwest::Response, limit: usize) -> Result<Bytes, ReadError> {
    // The usual answer is one chunk: keep it as it is, copy only when there are more.
    let mut first: Option<Bytes> = None;
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        let total = first.as_ref().map_or(0, Bytes::len) + body.len() + chunk.len();
        if total > limit {
            return Err(ReadError::TooLarge);
        }
        match first.take() {
            None if body.is_empty() => first = Some(chunk),
            Some(earlier) => {
                body.extend_from_slice(&earlier);
                body.extend_from_slice(&chunk);
            }
            None => body.extend_from_slice(&chunk),
        }
    }
    Ok(first.unwrap_or_else(|| body.freeze()))
}

async fn read_prefix(response: &mut reqwest::Response, limit: usize) -> Bytes {
    let mut body = BytesMut::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    body.freeze()
}

/// The answer to a 2xx: full success for an empty body or one that is not OTLP (a
/// proxy's "OK"), else the decoded `Export*ServiceResponse`'s partial success.
fn decode_success(
    signal: Signal,
    request_encoding: Encoding,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Accepted, String> {
    if body.is_empty() {
        return Ok(Accepted::full());
    }
    let encoding = match content_type {
        Some(ct) => match Encoding::from_content_type(ct) {
            Some(encoding) => encoding,
            None => {
                tracing::debug!(
                    content_type = ct,
                    "success response in a non-OTLP content type; taken as full success"
                );
                return Ok(Accepted::full());
            }
        },
        None => request_encoding,
    };
    let partial = match signal {
        Signal::Traces => decode::<ExportTraceServiceResponse>(encoding, body)?,
        Signal::Metrics => decode::<ExportMetricsServiceResponse>(encoding, body)?,
        Signal::Logs => decode::<ExportLogsServiceResponse>(encoding, body)?,
    };
    Ok(Accepted {
        partial_success: partial,
    })
}

fn decode<R: OtlpResponse + codec::Message>(
    encoding: Encoding,
    body: &[u8],
) -> Result<Option<otlp_core::PartialSuccess>, String> {
    codec::decode::<R>(encoding, body)
        .map(|r| r.partial_success())
        .map_err(|e| format!("its body is not a valid {encoding} Export*ServiceResponse: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlp_core::PartialSuccess;
    use otlp_core::codec::encode;

    #[test]
    fn success_bodies() {
        let partial = PartialSuccess {
            rejected: 3,
            message: "3 spans too old".into(),
        };
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            let body = encode(
                encoding,
                &ExportTraceServiceResponse::with_partial_success(Some(partial.clone())),
            );
            let got = decode_success(
                Signal::Traces,
                encoding,
                Some(encoding.content_type()),
                &body,
            );
            assert_eq!(got.unwrap().partial_success, Some(partial.clone()));
            // Without a content type, the request's encoding is used.
            let got = decode_success(Signal::Traces, encoding, None, &body);
            assert_eq!(got.unwrap().partial_success, Some(partial.clone()));
        }
        assert_eq!(
            decode_success(Signal::Logs, Encoding::Protobuf, None, b""),
            Ok(Accepted::full())
        );
        assert_eq!(
            decode_success(Signal::Logs, Encoding::Protobuf, Some("text/plain"), b"OK"),
            Ok(Accepted::full())
        );
        let err = decode_success(
            Signal::Metrics,
            Encoding::Json,
            Some("application/json"),
            b"{",
        )
        .unwrap_err();
        assert!(err.contains("not a valid json"), "{err}");
    }
}
