//! Binary protobuf: prost, with an exact-size buffer on encode.

use bytes::Bytes;

use super::DecodeError;

/// Decode a message from its binary protobuf encoding.
///
/// This is `prost::Message::decode` on a byte slice: no copy of the input is made first,
/// so it runs at plain prost speed (see `docs/benchmarks.md`).
///
/// # Errors
///
/// [`DecodeError::Protobuf`] when the bytes are malformed.
pub fn decode<T: prost::Message + Default>(bytes: &[u8]) -> Result<T, DecodeError> {
    Ok(T::decode(bytes)?)
}

/// Encode a message into a buffer of exactly its encoded length.
pub fn encode<T: prost::Message>(message: &T) -> Bytes {
    Bytes::from(message.encode_to_vec())
}
