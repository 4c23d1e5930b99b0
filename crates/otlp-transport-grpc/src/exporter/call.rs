//! One unary gRPC call on one backend: send the encoded request as it is, classify the
//! answer through `otlp-core`.

use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::uri::PathAndQuery;
use otlp_core::codec;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceResponse;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceResponse;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceResponse;
use otlp_core::sink::Accepted;
use otlp_core::{Compression, Encoding, ExportError, OtlpResponse, Signal};
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataMap;

use super::balance::Backend;
use crate::codec::BytesCodec;

use super::status_guard::StatusGuard;

/// How one signal's calls look.
#[derive(Debug, Clone)]
pub(crate) struct CallSettings {
    pub(crate) signal: Signal,
    pub(crate) path: PathAndQuery,
    pub(crate) headers: HeaderMap,
    pub(crate) timeout: Duration,
    pub(crate) compression: Option<CompressionEncoding>,
    pub(crate) max_decoding_message_size: usize,
}

impl CallSettings {
    pub(crate) fn new(
        signal: Signal,
        headers: HeaderMap,
        timeout: Duration,
        compression: Compression,
        max_decoding_message_size: usize,
    ) -> CallSettings {
        CallSettings {
            signal,
            path: PathAndQuery::from_static(signal.grpc_path()),
            headers,
            timeout,
            compression: match compression {
                Compression::None => None,
                Compression::Gzip => Some(CompressionEncoding::Gzip),
                Compression::Zstd => Some(CompressionEncoding::Zstd),
                Compression::Deflate => Some(CompressionEncoding::Deflate),
            },
            max_decoding_message_size,
        }
    }
}

impl Backend {
    /// One call with `body` (an encoded `Export*ServiceRequest`), bounded by the timeout,
    /// which is also sent as `grpc-timeout`.
    pub(crate) async fn call(
        &self,
        settings: &CallSettings,
        body: Bytes,
    ) -> Result<Accepted, ExportError> {
        let channel = self.channel()?;
        let _in_flight = self.start_call();
        // StatusGuard: tonic 0.14.9 panics on a status-details trailer that is not base64.
        let mut grpc = tonic::client::Grpc::new(StatusGuard::new(channel))
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .accept_compressed(CompressionEncoding::Deflate)
            .max_decoding_message_size(settings.max_decoding_message_size);
        if let Some(encoding) = settings.compression {
            grpc = grpc.send_compressed(encoding);
        }
        let mut request = tonic::Request::from_parts(
            MetadataMap::from_headers(settings.headers.clone()),
            tonic::Extensions::new(),
            body,
        );
        request.set_timeout(settings.timeout);
        let exchange = async {
            grpc.ready()
                .await
                .map_err(|e| ExportError::Transport(chain(&e)))?;
            grpc.unary(request, settings.path.clone(), BytesCodec)
                .await
                .map_err(|status| {
                    if timed_out(&status) {
                        // tonic's channel enforces the `grpc-timeout` it sends, racing
                        // the timeout below: the same event, reported the same way.
                        ExportError::Timeout(settings.timeout)
                    } else if response_too_large(&status) {
                        ExportError::InvalidResponse(format!(
                            "the server answered, but its response is larger than max_decoding_message_size ({} bytes): {}",
                            settings.max_decoding_message_size,
                            status.message()
                        ))
                    } else {
                        status_error(status)
                    }
                })
        };
        let response = match tokio::time::timeout(settings.timeout, exchange).await {
            Ok(result) => result?,
            Err(_elapsed) => return Err(ExportError::Timeout(settings.timeout)),
        };
        decode_success(settings.signal, response.get_ref())
    }
}

/// A status the server sent is classified by its code and details; one tonic made up
/// from a local error (it has a source: connection refused or reset, a broken HTTP/2
/// stream) is a transport error, retryable whatever code tonic chose for it.
pub(crate) fn status_error(status: tonic::Status) -> ExportError {
    match status.source() {
        Some(source) => {
            let detail = chain(source);
            let text = if detail.contains(status.message()) {
                detail
            } else {
                format!("{}: {detail}", status.message())
            };
            ExportError::Transport(text)
        }
        None => ExportError::from_grpc(status.code() as i32, status.message(), status.details()),
    }
}

/// Whether tonic gave up waiting (its `TimeoutExpired` somewhere in the sources).
fn timed_out(status: &tonic::Status) -> bool {
    let mut source = status.source();
    while let Some(e) = source {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Whether tonic refused to read the response for its size. It reports that as a local
/// OUT_OF_RANGE status, which would read as the retryable server code; but the server
/// has answered (it took the data), so sending it again would duplicate it. tonic says
/// so only in its message.
fn response_too_large(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::OutOfRange
        && status
            .message()
            .starts_with("Error, decoded message length too large")
}

/// An error and its sources, `: `-separated, without repeats and without the bare
/// "transport error" layer (`ExportError::Transport` says that already).
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if text != "transport error" && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The answer to an OK call: full success for an empty message, else the decoded
/// `Export*ServiceResponse`'s partial success.
pub(crate) fn decode_success(signal: Signal, body: &[u8]) -> Result<Accepted, ExportError> {
    if body.is_empty() {
        return Ok(Accepted::full());
    }
    let partial = match signal {
        Signal::Traces => decode::<ExportTraceServiceResponse>(body),
        Signal::Metrics => decode::<ExportMetricsServiceResponse>(body),
        Signal::Logs => decode::<ExportLogsServiceResponse>(body),
    }
    .map_err(|e| {
        ExportError::InvalidResponse(format!(
            "the server accepted the data (gRPC OK) but its response is not a valid {signal} Export*ServiceResponse: {e}"
        ))
    })?;
    Ok(Accepted {
        partial_success: partial,
    })
}

fn decode<R: OtlpResponse + codec::Message>(
    body: &[u8],
) -> Result<Option<otlp_core::PartialSuccess>, codec::DecodeError> {
    codec::decode::<R>(Encoding::Protobuf, body).map(|r| r.partial_success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlp_core::error::{RETRY_INFO_TYPE_URL, RetryInfo, RpcStatus};
    use otlp_core::{GrpcCode, PartialSuccess};
    use prost::Message as _;

    #[test]
    fn success_messages() {
        assert_eq!(decode_success(Signal::Logs, b""), Ok(Accepted::full()));
        let partial = PartialSuccess {
            rejected: 2,
            message: "too old".into(),
        };
        let body = codec::encode(
            Encoding::Protobuf,
            &ExportTraceServiceResponse::with_partial_success(Some(partial.clone())),
        );
        assert_eq!(
            decode_success(Signal::Traces, &body)
                .unwrap()
                .partial_success,
            Some(partial)
        );
        let err = decode_success(Signal::Metrics, b"\xff\xff").unwrap_err();
        assert!(matches!(err, ExportError::InvalidResponse(_)), "{err}");
        assert!(!err.is_retryable());
    }

    #[test]
    fn server_statuses_follow_the_spec_and_local_ones_are_transport() {
        let details = RpcStatus {
            code: GrpcCode::ResourceExhausted as i32,
            message: "slow down".into(),
            details: vec![prost_types_any(Duration::from_millis(1500))],
        }
        .encode_to_vec();
        let status = tonic::Status::with_details(
            tonic::Code::ResourceExhausted,
            "slow down",
            Bytes::from(details),
        );
        let err = status_error(status);
        assert!(err.is_retryable(), "{err}");
        assert_eq!(err.retry_delay(), Some(Duration::from_millis(1500)));
        let err = status_error(tonic::Status::resource_exhausted("quota"));
        assert!(!err.is_retryable(), "{err}");
        let err = status_error(tonic::Status::invalid_argument("bad span"));
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("bad span"), "{err}");

        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let status = tonic::Status::from_error(Box::new(io));
        let err = status_error(status);
        assert!(matches!(err, ExportError::Transport(_)), "{err:?}");
        assert!(err.to_string().contains("reset by peer"), "{err}");
    }

    fn prost_types_any(delay: Duration) -> prost_types::Any {
        prost_types::Any {
            type_url: RETRY_INFO_TYPE_URL.to_owned(),
            value: RetryInfo {
                retry_delay: Some(prost_types::Duration {
                    seconds: delay.as_secs() as i64,
                    nanos: delay.subsec_nanos() as i32,
                }),
            }
            .encode_to_vec(),
        }
    }
}
