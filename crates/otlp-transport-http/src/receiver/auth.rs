//! Authentication: bearer tokens or API keys, checked in constant time. The user-facing
//! documentation is on [`AuthLayer`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use otlp_core::Refusal;
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use super::config::ConfigError;
use super::reply::reply_encoding;

/// The value of `WWW-Authenticate` on a 401.
pub const WWW_AUTHENTICATE_VALUE: &str = r#"Bearer realm="otlp""#;

/// Which credentials a receiver accepts: the valid keys and where clients may send them.
///
/// Build with [`AuthConfig::bearer`] or [`AuthConfig::api_key`], combine with
/// [`AuthConfig::with_bearer`] / [`AuthConfig::with_api_key_header`], then hand it to
/// [`HttpReceiverConfigBuilder::auth`](super::HttpReceiverConfigBuilder::auth) (which
/// validates it) or call [`AuthConfig::validate`] for a bare [`AuthLayer`]. Debug output
/// never shows the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    keys: Vec<String>,
    bearer: bool,
    api_key_header: Option<String>,
}

impl AuthConfig {
    /// Accept `Authorization: Bearer KEY` for any of `keys`.
    pub fn bearer<I, K>(keys: I) -> AuthConfig
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        AuthConfig {
            keys: keys.into_iter().map(Into::into).collect(),
            bearer: true,
            api_key_header: None,
        }
    }

    /// Accept any of `keys` as the value of `header` (for example `x-api-key`).
    pub fn api_key<I, K>(header: impl Into<String>, keys: I) -> AuthConfig
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        AuthConfig {
            keys: keys.into_iter().map(Into::into).collect(),
            bearer: false,
            api_key_header: Some(header.into()),
        }
    }

    /// Also accept the keys as bearer tokens.
    #[must_use]
    pub fn with_bearer(mut self) -> AuthConfig {
        self.bearer = true;
        self
    }

    /// Also accept the keys in `header`.
    #[must_use]
    pub fn with_api_key_header(mut self, header: impl Into<String>) -> AuthConfig {
        self.api_key_header = Some(header.into());
        self
    }

    /// Check the settings and prepare them for the request path.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoAuthKeys`], [`ConfigError::EmptyAuthKey`] or
    /// [`ConfigError::HeaderName`] (field `auth.api_key_header`).
    pub fn validate(&self) -> Result<Credentials, ConfigError> {
        if self.keys.is_empty() {
            return Err(ConfigError::NoAuthKeys);
        }
        if let Some(index) = self.keys.iter().position(|k| k.trim().is_empty()) {
            return Err(ConfigError::EmptyAuthKey { index });
        }
        let header = match &self.api_key_header {
            None => None,
            Some(name) => Some(HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                ConfigError::HeaderName {
                    field: "auth.api_key_header",
                    value: name.clone(),
                }
            })?),
        };
        if header.as_ref() == Some(&AUTHORIZATION) {
            return Err(ConfigError::HeaderName {
                field: "auth.api_key_header",
                value: "authorization (use AuthConfig::bearer for the Authorization header)"
                    .to_owned(),
            });
        }
        Ok(Credentials {
            inner: Arc::new(CredentialsInner {
                keys: self
                    .keys
                    .iter()
                    .map(|k| k.trim().as_bytes().to_vec())
                    .collect(),
                bearer: self.bearer || header.is_none(),
                header,
            }),
        })
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("keys", &format_args!("[{} redacted]", self.keys.len()))
            .field("bearer", &self.bearer)
            .field("api_key_header", &self.api_key_header)
            .finish()
    }
}

/// Validated credentials, cheap to clone; made by [`AuthConfig::validate`].
#[derive(Clone)]
pub struct Credentials {
    inner: Arc<CredentialsInner>,
}

struct CredentialsInner {
    keys: Vec<Vec<u8>>,
    bearer: bool,
    header: Option<HeaderName>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "keys",
                &format_args!("[{} redacted]", self.inner.keys.len()),
            )
            .field("bearer", &self.inner.bearer)
            .field("api_key_header", &self.inner.header)
            .finish()
    }
}

/// Put into a request's extensions when its credentials matched: the index of the
/// matching key in the configured list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthenticatedKey {
    /// Position of the key in [`AuthConfig`]'s list.
    pub index: usize,
}

impl Credentials {
    /// Check the request headers: `Ok` with the matching key, or the refusal to send.
    ///
    /// # Errors
    ///
    /// [`Refusal::Unauthenticated`] naming what is missing or wrong.
    pub fn check(&self, headers: &HeaderMap) -> Result<AuthenticatedKey, Refusal> {
        let inner = &*self.inner;
        let mut presented = false;
        let mut matched = None;
        if inner.bearer {
            for value in headers.get_all(AUTHORIZATION) {
                if let Some(token) = bearer_token(value.as_bytes()) {
                    presented = true;
                    matched = matched.or(self.find(token));
                }
            }
        }
        if let Some(header) = &inner.header {
            for value in headers.get_all(header) {
                presented = true;
                matched = matched.or(self.find(value.as_bytes().trim_ascii()));
            }
        }
        match matched {
            Some(index) => Ok(AuthenticatedKey { index }),
            None if presented => Err(Refusal::Unauthenticated(
                "the credentials are not valid for this receiver".to_owned(),
            )),
            None => Err(Refusal::Unauthenticated(self.missing_message())),
        }
    }

    /// The index of the key equal to `candidate`, comparing with every key in constant
    /// time.
    fn find(&self, candidate: &[u8]) -> Option<usize> {
        let mut found = None;
        for (index, key) in self.inner.keys.iter().enumerate() {
            // No early exit: every key is compared whatever matched before.
            if bool::from(key.as_slice().ct_eq(candidate)) {
                found = Some(index);
            }
        }
        found
    }

    /// The API key header, when keys are accepted in one.
    pub(crate) fn api_key_header(&self) -> Option<&HeaderName> {
        self.inner.header.as_ref()
    }

    fn missing_message(&self) -> String {
        let inner = &*self.inner;
        match (&inner.header, inner.bearer) {
            (Some(h), true) => format!(
                "missing credentials: send `Authorization: Bearer <key>` or the key in the `{h}` header"
            ),
            (Some(h), false) => {
                format!("missing credentials: send the API key in the `{h}` header")
            }
            (None, _) => "missing credentials: send `Authorization: Bearer <key>`".to_owned(),
        }
    }
}

/// `Bearer TOKEN` (scheme case-insensitive, RFC 9110 §11.1) -> `TOKEN`.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Called with the refused request's headers and path, e.g. to count it.
pub(crate) type RejectHook = Arc<dyn Fn(&http::request::Parts) + Send + Sync>;

/// A `tower::Layer` that lets through only requests with valid credentials: a bearer
/// token (`Authorization: Bearer ...`) or an API key in a header, checked against
/// several valid keys in constant time.
///
/// It works in front of any service whose response body can be made from [`Bytes`]
/// (the receiver uses it inside [`OtlpHttpService`](super::OtlpHttpService)). A request without valid credentials gets
/// 401 with `WWW-Authenticate: Bearer realm="otlp"` and a `google.rpc.Status` body
/// (`UNAUTHENTICATED`) in the request's encoding. A request that passes carries an
/// [`AuthenticatedKey`] extension naming which key matched, for tenant lookup later.
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use otlp_transport_http::receiver::{AuthConfig, AuthLayer};
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let auth = AuthConfig::bearer(["k1", "k2"]).validate()?;
/// let inner = service_fn(|_req: Request<()>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("ok"))))
/// });
/// let service = AuthLayer::new(auth).layer(inner);
///
/// let denied = service.clone().oneshot(Request::new(())).await.unwrap();
/// assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(denied.headers()["www-authenticate"], r#"Bearer realm="otlp""#);
///
/// let ok = Request::builder().header("authorization", "Bearer k2").body(()).unwrap();
/// assert_eq!(service.oneshot(ok).await.unwrap().status(), StatusCode::OK);
/// # Ok::<(), otlp_transport_http::receiver::ConfigError>(())
/// # }).unwrap();
/// ```
///
/// Comparison: every configured key is compared with every presented credential with
/// `subtle::ConstantTimeEq`, without stopping at the first match, so the time taken does
/// not reveal how much of a key was right or which key matched. It does reveal, as
/// nearly every implementation does, whether the presented value had the length of some
/// key.
#[derive(Clone)]
pub struct AuthLayer {
    credentials: Credentials,
    on_reject: Option<RejectHook>,
}

impl AuthLayer {
    /// Check requests against `credentials`.
    pub fn new(credentials: Credentials) -> AuthLayer {
        AuthLayer {
            credentials,
            on_reject: None,
        }
    }

    pub(crate) fn on_reject(mut self, hook: RejectHook) -> AuthLayer {
        self.on_reject = Some(hook);
        self
    }
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Clone, Debug)]
pub struct Auth<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S> Auth<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = AuthFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.layer.credentials.check(request.headers()) {
            Ok(key) => {
                let mut request = request;
                request.extensions_mut().insert(key);
                AuthFuture {
                    kind: Kind::Inner {
                        future: self.inner.call(request),
                    },
                }
            }
            Err(refusal) => {
                let (parts, _body) = request.into_parts();
                if let Some(hook) = &self.layer.on_reject {
                    hook(&parts);
                }
                AuthFuture {
                    kind: Kind::Denied {
                        response: Some(unauthorized(&parts.headers, &refusal)),
                    },
                }
            }
        }
    }
}

fn unauthorized<B: From<Bytes>>(request_headers: &HeaderMap, refusal: &Refusal) -> Response<B> {
    let encoding = reply_encoding(request_headers);
    let mut response = Response::new(B::from(refusal.http_body(encoding)));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    headers.insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(WWW_AUTHENTICATE_VALUE),
    );
    response
}

pin_project_lite::pin_project! {
    /// The response future of [`Auth`].
    pub struct AuthFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner {
            #[pin]
            future: F,
        },
        Denied {
            response: Option<Response<B>>,
        },
    }
}

impl<F, B, E> Future for AuthFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx),
            KindProj::Denied { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("AuthFuture polled after completion"),
            },
        }
    }
}

impl<F, B> fmt::Debug for AuthFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match &self.kind {
            Kind::Inner { .. } => "AuthFuture::Inner",
            Kind::Denied { .. } => "AuthFuture::Denied",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn bearer_scheme_parsing() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer   abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"BEARER abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Bearerabc"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bear"), None);
    }

    #[test]
    fn several_keys_and_both_places() {
        let creds = AuthConfig::bearer(["one", "two"])
            .with_api_key_header("X-Api-Key")
            .validate()
            .unwrap();
        assert_eq!(
            creds.check(&headers(&[("authorization", "Bearer two")])),
            Ok(AuthenticatedKey { index: 1 })
        );
        assert_eq!(
            creds.check(&headers(&[("x-api-key", " one ")])),
            Ok(AuthenticatedKey { index: 0 })
        );
        let wrong = creds
            .check(&headers(&[("authorization", "Bearer three")]))
            .unwrap_err();
        assert!(wrong.to_string().contains("not valid"), "{wrong}");
        let missing = creds.check(&headers(&[])).unwrap_err();
        assert!(missing.to_string().contains("x-api-key"), "{missing}");
        // A prefix of a key is not the key.
        assert!(creds.check(&headers(&[("x-api-key", "tw")])).is_err());
    }

    #[test]
    fn api_key_only_ignores_bearer() {
        let creds = AuthConfig::api_key("x-api-key", ["k"]).validate().unwrap();
        assert!(
            creds
                .check(&headers(&[("authorization", "Bearer k")]))
                .is_err()
        );
        assert!(creds.check(&headers(&[("x-api-key", "k")])).is_ok());
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(matches!(
            AuthConfig::bearer(Vec::<String>::new()).validate(),
            Err(ConfigError::NoAuthKeys)
        ));
        assert!(matches!(
            AuthConfig::bearer(["a", " "]).validate(),
            Err(ConfigError::EmptyAuthKey { index: 1 })
        ));
        assert!(matches!(
            AuthConfig::api_key("bad header", ["a"]).validate(),
            Err(ConfigError::HeaderName { .. })
        ));
        let shown = format!("{:?}", AuthConfig::bearer(["secret-key"]));
        assert!(!shown.contains("secret-key"), "{shown}");
    }
}
