//! From request body to [`Payload`]: bounded reading, bounded decompression, validation.
//!
//! The order matters for memory: the declared `Content-Length` is checked before a byte
//! is read ([`Limits::check_len`](otlp_core::Limits::check_len)), the streamed body is
//! collected into a [`BoundedBuf`] that refuses to grow past the wire limit, and
//! decompression stops at the body limit. A request therefore never costs more than the
//! wire limit plus the body limit, whatever the client claims or sends.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use otlp_core::codec::{self, DecodeError};
use otlp_core::limits::{BoundedBuf, TooLarge};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::{Encoding, OtlpRequest, Payload, Refusal, Signal};
use tokio::time::Instant;

use super::config::Validation;

/// The error type of boxed bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body type inside the receiver: whatever the server or framework gives,
/// boxed once at the edge.
pub(crate) type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// More than the wire limit arrived.
    TooLarge(TooLarge),
    /// The body did not finish before the deadline.
    Timeout,
    /// The connection failed or the framing was broken (a reset stream, bad chunking).
    Body(BoxError),
}

/// Collect `body` into `buf` until its end, failing at the deadline or past the limit.
/// `body` stays with the caller, so what is left of it can be drained or dropped.
pub(crate) async fn read_body(
    body: &mut RequestBody,
    mut buf: BoundedBuf,
    deadline: Instant,
) -> Result<Bytes, ReadError> {
    let collect = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(ReadError::Body)?;
            // Trailers are legal in HTTP but carry nothing for OTLP: ignored.
            if let Ok(data) = frame.into_data() {
                buf.push(&data).map_err(ReadError::TooLarge)?;
            }
        }
        Ok(())
    };
    match tokio::time::timeout_at(deadline, collect).await {
        Ok(Ok(())) => Ok(buf.into_bytes()),
        Ok(Err(e)) => Err(e),
        Err(_elapsed) => Err(ReadError::Timeout),
    }
}

/// How long a refused body is still read (and thrown away) so that the client, which
/// may still be sending, gets the answer instead of a connection reset.
pub(crate) const DRAIN_MAX_TIME: Duration = Duration::from_secs(2);
/// How many bytes of a refused body are read and thrown away at most.
pub(crate) const DRAIN_MAX_BYTES: u64 = 1 << 20;

/// Read and discard what is left of a body, bounded by [`DRAIN_MAX_BYTES`] and
/// [`DRAIN_MAX_TIME`]. An HTTP/1 server that closes its socket while unread bytes sit in
/// its receive buffer makes the kernel send a reset, which can destroy the response
/// still on its way to the client; reading on for a short, bounded while avoids that
/// for the common case of a body a little over the limit ("lingering close").
pub(crate) async fn drain(mut body: RequestBody) {
    let mut left = DRAIN_MAX_BYTES;
    let _ = tokio::time::timeout(DRAIN_MAX_TIME, async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                match left.checked_sub(data.len() as u64) {
                    Some(rest) => left = rest,
                    None => return,
                }
            }
        }
    })
    .await;
}

/// Validate a decompressed body as `signal`'s request in `encoding` and make the
/// pipeline's unit of work from it (protobuf bytes; OTLP/JSON is re-encoded once).
///
/// # Errors
///
/// [`Refusal::BadData`] naming the message and what is wrong with the body.
pub(crate) fn to_payload(
    signal: Signal,
    encoding: Encoding,
    validation: Validation,
    body: Bytes,
) -> Result<Payload, Refusal> {
    let result = match signal {
        Signal::Traces => decode_as::<ExportTraceServiceRequest>(encoding, validation, body),
        Signal::Metrics => decode_as::<ExportMetricsServiceRequest>(encoding, validation, body),
        Signal::Logs => decode_as::<ExportLogsServiceRequest>(encoding, validation, body),
    };
    result.map_err(|e| {
        Refusal::BadData(format!(
            "{e} (the body of a {} request must be an {} in {})",
            signal,
            request_name(signal),
            match encoding {
                Encoding::Protobuf => "binary protobuf",
                Encoding::Json => "OTLP/JSON",
            }
        ))
    })
}

fn decode_as<T: OtlpRequest + codec::Message>(
    encoding: Encoding,
    validation: Validation,
    body: Bytes,
) -> Result<Payload, DecodeError> {
    match (encoding, validation) {
        (Encoding::Protobuf, Validation::Full) => {
            let request: T = codec::protobuf::decode(&body)?;
            // prost read every byte, so the client's bytes are valid as they are:
            // forward them instead of re-encoding.
            Ok(Payload::new(T::SIGNAL, body, request.item_count()))
        }
        (Encoding::Protobuf, Validation::Framing) => Payload::from_encoded(T::SIGNAL, body),
        (Encoding::Json, _) => {
            let request: T = codec::json::from_slice(&body)?;
            Ok(Payload::from_request(&request))
        }
    }
}

const fn request_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "ExportTraceServiceRequest",
        Signal::Metrics => "ExportMetricsServiceRequest",
        Signal::Logs => "ExportLogsServiceRequest",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlp_core::limits::LimitKind;

    #[test]
    fn bad_bodies_name_the_message() {
        let err = to_payload(
            Signal::Logs,
            Encoding::Protobuf,
            Validation::Full,
            Bytes::from_static(&[0x0a, 0x05]),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ExportLogsServiceRequest"), "{text}");
        assert!(text.contains("invalid protobuf"), "{text}");
        let err = to_payload(
            Signal::Traces,
            Encoding::Json,
            Validation::Framing,
            Bytes::from_static(b"{\"resourceSpans\": 1}"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("OTLP/JSON"), "{err}");
    }

    #[test]
    fn framing_skips_item_contents() {
        // A span (field 2 of ScopeSpans) whose name (field 5) is invalid UTF-8: framing
        // is fine, a full decode is not.
        let span = [0x2a, 0x01, 0xff];
        let mut scope = vec![0x12, span.len() as u8];
        scope.extend_from_slice(&span);
        let mut resource = vec![0x12, scope.len() as u8];
        resource.extend_from_slice(&scope);
        let mut body = vec![0x0a, resource.len() as u8];
        body.extend_from_slice(&resource);
        let body = Bytes::from(body);
        let payload = to_payload(
            Signal::Traces,
            Encoding::Protobuf,
            Validation::Framing,
            body.clone(),
        )
        .unwrap();
        assert_eq!(payload.items(), 1);
        assert!(
            to_payload(Signal::Traces, Encoding::Protobuf, Validation::Full, body).is_err(),
            "a full decode sees the bad UTF-8"
        );
    }

    /// A body that yields fixed chunks.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl hyper::body::Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn read_body_stops_at_the_limit() {
        let chunks = (0..10).map(|_| Bytes::from_static(&[0u8; 100])).collect();
        let mut body = Chunks(chunks).boxed_unsync();
        let err = read_body(
            &mut body,
            BoundedBuf::new(450, LimitKind::Wire),
            Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ReadError::TooLarge(t) if t.limit == 450));

        let chunks = (0..4).map(|_| Bytes::from_static(&[1u8; 100])).collect();
        let mut body = Chunks(chunks).boxed_unsync();
        let bytes = read_body(
            &mut body,
            BoundedBuf::new(450, LimitKind::Wire),
            Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(bytes.len(), 400);
    }
}
