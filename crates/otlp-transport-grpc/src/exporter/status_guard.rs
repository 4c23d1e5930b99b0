//! Keeps an upstream's undecodable `grpc-status-details-bin` from panicking the exporter.
//!
//! tonic 0.14.9's `Status::from_header_map` base64-decodes that value with
//! `.expect(..)`, and its client calls it on the response headers (a trailers-only
//! answer) and on the trailers. A buggy or hostile server sending a value that is not
//! base64 would therefore panic the task awaiting the call: the gateway's exporter
//! worker. This layer sits between tonic's `Grpc` client and the `Channel` and checks the
//! value with tonic's own decoder settings before tonic sees it. A value tonic would
//! reject is removed; the status code stays as the server sent it (so the call is
//! classified as the server meant) and `grpc-message` says what happened. Values tonic
//! accepts, padded or not (the gRPC spec allows both), pass unchanged.
//!
//! Remove this module once tonic returns an error instead of panicking there.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::Service;

/// The decoder tonic 0.14.9 uses for `grpc-status-details-bin` (its `util::base64::STANDARD`:
/// standard alphabet, padding optional, no trailing bits). Same settings, same verdicts:
/// base64 0.22 (tonic's) and 0.23 (ours) decode alike; the unit tests below check the
/// verdicts against tonic itself.
const TONIC_DETAILS_DECODER: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
const GRPC_STATUS_DETAILS: HeaderName = HeaderName::from_static("grpc-status-details-bin");

/// Appended to (or set as) `grpc-message`; printable ASCII without `%`, so it is valid
/// next to the server's percent-encoded text.
const NOTE: &str = "the server sent undecodable status details (grpc-status-details-bin is not base64); they were dropped";

/// A `Service` around the channel whose responses never carry a
/// `grpc-status-details-bin` that tonic cannot decode.
#[derive(Debug, Clone)]
pub(crate) struct StatusGuard<S> {
    inner: S,
}

impl<S> StatusGuard<S> {
    pub(crate) fn new(inner: S) -> StatusGuard<S> {
        StatusGuard { inner }
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for StatusGuard<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<GuardedBody<ResBody>>;
    type Error = S::Error;
    type Future = GuardedResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        GuardedResponse {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The channel's response future, with the response headers checked.
    #[derive(Debug)]
    pub(crate) struct GuardedResponse<F> {
        #[pin]
        inner: F,
    }
}

impl<F, B, E> Future for GuardedResponse<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<GuardedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = ready!(self.project().inner.poll(cx))?;
        // tonic reads a status from the headers of every response (trailers-only answers).
        drop_undecodable_details(response.headers_mut());
        Poll::Ready(Ok(response.map(|inner| GuardedBody { inner })))
    }
}

pin_project! {
    /// A response body whose trailers are checked.
    #[derive(Debug)]
    pub(crate) struct GuardedBody<B> {
        #[pin]
        inner: B,
    }
}

impl<B: Body> Body for GuardedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut frame = ready!(self.project().inner.poll_frame(cx));
        if let Some(Ok(frame)) = &mut frame
            && let Some(trailers) = frame.trailers_mut()
        {
            drop_undecodable_details(trailers);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Removes a `grpc-status-details-bin` that tonic would fail to decode (it reads only the
/// first value) and notes that in `grpc-message`, keeping `grpc-status`.
fn drop_undecodable_details(headers: &mut HeaderMap) {
    let Some(details) = headers.get(GRPC_STATUS_DETAILS) else {
        return;
    };
    if TONIC_DETAILS_DECODER.decode(details.as_bytes()).is_ok() {
        return;
    }
    tracing::warn!(
        grpc_status = ?headers.get(GRPC_STATUS),
        "the upstream sent a grpc-status-details-bin that is not base64; dropped it (the status code is kept)"
    );
    headers.remove(GRPC_STATUS_DETAILS);
    // tonic reads details only next to a `grpc-status`; without one there is no status
    // to explain, and adding one would change the answer.
    if !headers.contains_key(GRPC_STATUS) {
        return;
    }
    let message = match headers.get(GRPC_MESSAGE) {
        Some(original) if !original.is_empty() => {
            let mut text = original.as_bytes().to_vec();
            text.extend_from_slice(b" (");
            text.extend_from_slice(NOTE.as_bytes());
            text.push(b')');
            HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static(NOTE))
        }
        _ => HeaderValue::from_static(NOTE),
    };
    headers.insert(GRPC_MESSAGE, message);
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use bytes::Bytes;
    use http_body_util::BodyExt as _;

    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    /// Whether tonic itself decodes `value` (it panics when it does not).
    fn tonic_accepts(value: &[u8]) -> bool {
        let map = headers(&[("grpc-status", b"14"), ("grpc-status-details-bin", value)]);
        catch_unwind(AssertUnwindSafe(|| tonic::Status::from_header_map(&map))).is_ok()
    }

    #[test]
    fn agrees_with_tonic_on_what_decodes() {
        let cases: [&[u8]; 16] = [
            b"",
            b"AAEC",         // padded, no padding needed
            b"AAE=",         // padded
            b"AAE",          // unpadded (the gRPC spec requires accepting it)
            b"AA==",         // padded
            b"AA",           // unpadded
            b"AA=",          // short padding
            b"AAE==",        // too much padding
            b"A",            // impossible length
            b"AB",           // non-zero trailing bits
            b"!!!notbase64", // not the alphabet
            b"AA-_",         // URL-safe alphabet
            b"AA E",         // space
            b"AA==AA==",     // padding in the middle
            b"=",            // padding only
            b"\xffAA",       // not ASCII (an obs-text header byte)
        ];
        for value in cases {
            let tonic = tonic_accepts(value);
            let ours = TONIC_DETAILS_DECODER.decode(value).is_ok();
            assert_eq!(ours, tonic, "{:?}", String::from_utf8_lossy(value));
        }
        // The cases cover both verdicts.
        assert!(tonic_accepts(b"AAE") && !tonic_accepts(b"!!!notbase64"));
    }

    #[test]
    fn drops_only_undecodable_details_keeping_the_code() {
        let mut bad = headers(&[
            ("grpc-status", b"8"),
            ("grpc-message", b"quota%20exceeded"),
            ("grpc-status-details-bin", b"!!!notbase64"),
        ]);
        drop_undecodable_details(&mut bad);
        assert!(bad.get(GRPC_STATUS_DETAILS).is_none());
        assert_eq!(bad[GRPC_STATUS], "8");
        let status = tonic::Status::from_header_map(&bad).unwrap();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.message(), format!("quota exceeded ({NOTE})"));
        assert!(status.details().is_empty());

        let mut no_message = headers(&[("grpc-status", b"14"), ("grpc-status-details-bin", b"AB")]);
        drop_undecodable_details(&mut no_message);
        let status = tonic::Status::from_header_map(&no_message).unwrap();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), NOTE);

        // No status: nothing to explain, and none is invented.
        let mut no_status = headers(&[("grpc-status-details-bin", b"%%%")]);
        drop_undecodable_details(&mut no_status);
        assert!(no_status.is_empty());

        for good in [&b"AAE"[..], b"AAE=", b""] {
            let original = headers(&[
                ("grpc-status", b"14"),
                ("grpc-message", b"later"),
                ("grpc-status-details-bin", good),
            ]);
            let mut checked = original.clone();
            drop_undecodable_details(&mut checked);
            assert_eq!(checked, original);
        }
    }

    /// A body of ready frames.
    struct Frames(std::collections::VecDeque<Frame<Bytes>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    #[tokio::test]
    async fn checks_the_trailers_and_passes_data_through() {
        let body = GuardedBody {
            inner: Frames(
                [
                    Frame::data(Bytes::from_static(b"\0\0\0\0\0")),
                    Frame::trailers(headers(&[
                        ("grpc-status", b"8"),
                        ("grpc-status-details-bin", b"!!!notbase64"),
                    ])),
                ]
                .into(),
            ),
        };
        let collected = body.collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap();
        assert_eq!(collected.to_bytes(), Bytes::from_static(b"\0\0\0\0\0"));
        assert_eq!(trailers[GRPC_STATUS], "8");
        assert_eq!(trailers[GRPC_MESSAGE], NOTE);
        assert!(trailers.get(GRPC_STATUS_DETAILS).is_none());
    }
}
