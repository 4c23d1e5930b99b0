//! Protobuf and OTLP/JSON codecs for the OTLP request and response messages.
//!
//! [`decode`] and [`encode`] pick the codec from an [`Encoding`], so a receiver can
//! serve both content types from one code path and answer in the request's encoding.

pub mod json;
pub mod protobuf;

use bytes::Bytes;

use crate::signal::{Encoding, Signal};

/// A message both codecs can read and write: the three requests and three responses.
pub trait Message: prost::Message + Default + json::JsonMessage {}

impl<T: prost::Message + Default + json::JsonMessage> Message for T {}

/// Why a body could not be decoded. Bad data: answer 400 / INVALID_ARGUMENT, never retry.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a valid protobuf encoding of the expected message.
    // The inner error is part of the message, not a `source`, so that error reporters
    // that print the chain (`{:#}` in anyhow) do not print it twice.
    #[error("invalid protobuf: {0}")]
    Protobuf(prost::DecodeError),
    /// The bytes are not valid OTLP/JSON for the expected message.
    #[error("invalid OTLP/JSON: {0}")]
    Json(json::JsonError),
    /// The payload holds another signal than the one asked for.
    #[error("payload holds {actual}, not {expected}")]
    SignalMismatch {
        /// The signal asked for.
        expected: Signal,
        /// The signal the payload holds.
        actual: Signal,
    },
}

impl From<prost::DecodeError> for DecodeError {
    fn from(err: prost::DecodeError) -> DecodeError {
        DecodeError::Protobuf(err)
    }
}

impl From<json::JsonError> for DecodeError {
    fn from(err: json::JsonError) -> DecodeError {
        DecodeError::Json(err)
    }
}

/// Decode `bytes` in `encoding`.
///
/// ```
/// use otlp_core::codec::{decode, encode};
/// use otlp_core::Encoding;
/// use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
///
/// let json = br#"{"resourceSpans":[]}"#;
/// let req: ExportTraceServiceRequest = decode(Encoding::Json, json).unwrap();
/// let proto = encode(Encoding::Protobuf, &req);
/// assert!(proto.is_empty());
/// ```
///
/// # Errors
///
/// [`DecodeError`] naming what is wrong with the input.
pub fn decode<T: Message>(encoding: Encoding, bytes: &[u8]) -> Result<T, DecodeError> {
    match encoding {
        Encoding::Protobuf => protobuf::decode(bytes),
        Encoding::Json => Ok(json::from_slice(bytes)?),
    }
}

/// Encode `message` in `encoding`.
pub fn encode<T: Message>(encoding: Encoding, message: &T) -> Bytes {
    match encoding {
        Encoding::Protobuf => protobuf::encode(message),
        Encoding::Json => Bytes::from(json::to_vec(message)),
    }
}
