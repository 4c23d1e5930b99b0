//! Building responses: success bodies and `google.rpc.Status` error bodies in the
//! request's encoding.
//!
//! Every refusal that `otlp-core` knows goes through [`Refusal::http_status`],
//! [`Refusal::http_body`] and [`Refusal::retry_after_header`]; only the HTTP-level
//! failures that have no `Refusal` (unknown path, wrong method, body timeout) build their
//! `Status` here, with the code gRPC's HTTP mapping gives them.

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, ALLOW, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Response, StatusCode, Version};
use http_body_util::Full;
use otlp_core::codec::{self, Message};
use otlp_core::compression::Compression;
use otlp_core::error::RpcStatus;
use otlp_core::{Encoding, GrpcCode, Refusal};

use super::metrics::Outcome;

/// The body type of every response the receiver sends.
pub type ResponseBody = Full<Bytes>;

/// The encoding of an error body: the request's, when its `Content-Type` is an OTLP one;
/// otherwise OTLP/JSON, which a person with curl can read and an OTLP client parses as
/// it parses any `Status` (the response's `Content-Type` says which it is).
pub(crate) fn reply_encoding(headers: &HeaderMap) -> Encoding {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Encoding::from_content_type)
        .unwrap_or(Encoding::Json)
}

/// A success response carrying `message` in `encoding`.
pub(crate) fn success<T: Message>(encoding: Encoding, message: &T) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(codec::encode(encoding, message)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    response
}

/// Why a request was not accepted, with everything needed to answer it.
#[derive(Debug)]
pub(crate) struct Failure {
    status: StatusCode,
    body: FailureBody,
    outcome: Outcome,
    /// Close the HTTP/1 connection after answering: the body was not read to its end.
    close: bool,
    /// `Allow: POST` on 405.
    allow_post: bool,
    /// `Accept-Encoding` on a 415 for an unsupported `Content-Encoding`.
    accept_encoding: bool,
}

#[derive(Debug)]
enum FailureBody {
    Refusal(Refusal),
    Status(RpcStatus),
}

impl Failure {
    /// The request was not acceptable before it reached the sink.
    pub(crate) fn rejected(refusal: Refusal) -> Failure {
        Failure::from_refusal(refusal, Outcome::Rejected)
    }

    /// The sink refused a valid request.
    pub(crate) fn refused(refusal: Refusal) -> Failure {
        Failure::from_refusal(refusal, Outcome::Refused)
    }

    fn from_refusal(refusal: Refusal, outcome: Outcome) -> Failure {
        Failure {
            status: StatusCode::from_u16(refusal.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: FailureBody::Refusal(refusal),
            outcome,
            close: false,
            allow_post: false,
            accept_encoding: false,
        }
    }

    fn http(status: StatusCode, code: GrpcCode, message: String) -> Failure {
        Failure {
            status,
            body: FailureBody::Status(RpcStatus {
                code: code as i32,
                message,
                details: Vec::new(),
            }),
            outcome: Outcome::Rejected,
            close: false,
            allow_post: false,
            accept_encoding: false,
        }
    }

    /// 404: no signal is served at `path`.
    pub(crate) fn not_found(message: String) -> Failure {
        Failure::http(StatusCode::NOT_FOUND, GrpcCode::Unimplemented, message)
    }

    /// 405 with `Allow: POST`.
    pub(crate) fn method_not_allowed(method: &http::Method) -> Failure {
        let mut failure = Failure::http(
            StatusCode::METHOD_NOT_ALLOWED,
            GrpcCode::Unimplemented,
            format!("method {method} is not allowed; OTLP/HTTP export requests use POST"),
        );
        failure.allow_post = true;
        failure
    }

    /// 408: the body did not arrive within the body read timeout.
    pub(crate) fn body_timeout(timeout: std::time::Duration) -> Failure {
        Failure::http(
            StatusCode::REQUEST_TIMEOUT,
            GrpcCode::DeadlineExceeded,
            format!(
                "the request body did not arrive within {timeout:?}; check the client's network or send smaller batches"
            ),
        )
        .closing()
    }

    /// Mark the connection for closing (HTTP/1): the request body was not read to its end.
    pub(crate) fn closing(mut self) -> Failure {
        self.close = true;
        self
    }

    /// Add `Accept-Encoding` with the supported codings (RFC 9110 §15.5.16).
    pub(crate) fn with_accept_encoding(mut self) -> Failure {
        self.accept_encoding = true;
        self
    }

    pub(crate) fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The response in `encoding`; `version` decides whether `Connection: close` can be
    /// sent (HTTP/2 has no such header).
    pub(crate) fn into_response(
        self,
        encoding: Encoding,
        version: Version,
    ) -> Response<ResponseBody> {
        let mut retry_after = None;
        let body = match &self.body {
            FailureBody::Refusal(refusal) => {
                retry_after = refusal.retry_after_header();
                refusal.http_body(encoding)
            }
            FailureBody::Status(status) => match encoding {
                Encoding::Protobuf => codec::protobuf::encode(status),
                Encoding::Json => Bytes::from(status.to_json()),
            },
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(encoding.content_type()),
        );
        if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(RETRY_AFTER, value);
        }
        if self.allow_post {
            headers.insert(ALLOW, HeaderValue::from_static("POST"));
        }
        if self.accept_encoding {
            headers.insert(
                ACCEPT_ENCODING,
                HeaderValue::from_static(Compression::ACCEPT_ENCODING),
            );
        }
        if self.close && version <= Version::HTTP_11 {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refusals_keep_their_mapping() {
        let response = Failure::refused(Refusal::Unavailable {
            reason: "queue full".into(),
            retry_after: Duration::from_millis(1500),
        })
        .into_response(Encoding::Json, Version::HTTP_11);
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[RETRY_AFTER], "2");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    }

    #[test]
    fn http_failures_have_status_bodies() {
        let response = Failure::method_not_allowed(&http::Method::GET)
            .into_response(Encoding::Protobuf, Version::HTTP_11);
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()[ALLOW], "POST");
        let response = Failure::body_timeout(Duration::from_secs(1))
            .into_response(Encoding::Json, Version::HTTP_2);
        assert_eq!(response.status(), 408);
        assert!(response.headers().get(CONNECTION).is_none(), "not on h2");
    }

    #[test]
    fn error_encoding_follows_the_request() {
        let mut headers = HeaderMap::new();
        assert_eq!(reply_encoding(&headers), Encoding::Json);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        assert_eq!(reply_encoding(&headers), Encoding::Protobuf);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(reply_encoding(&headers), Encoding::Json);
    }
}
