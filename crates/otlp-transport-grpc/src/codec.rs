//! The pass-through codec: gRPC messages as encoded protobuf bytes.
//!
//! tonic frames, compresses and decompresses messages; a codec turns one framed message
//! into a value and back. [`BytesCodec`] does no protobuf work at all: the encoder copies
//! the bytes of an encoded `Export*ServiceRequest` into the frame, and the decoder hands
//! out the frame's bytes as a [`Bytes`] that shares tonic's receive buffer (no copy). The
//! exporter therefore sends a [`Payload`](otlp_core::Payload) exactly as the pipeline
//! holds it, and the receiver gives the pipeline the bytes the client sent, so the
//! gateway forwards at copy speed. Stages that must look inside decode, and only they.

use bytes::{Buf, BufMut, Bytes};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// A [`Codec`] whose messages are encoded protobuf bytes, in both directions.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = BytesEncoder;
    type Decoder = BytesDecoder;

    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> BytesDecoder {
        BytesDecoder
    }
}

/// Writes encoded bytes into a gRPC frame as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.len());
        dst.put(item);
        Ok(())
    }
}

/// Hands out a gRPC frame's bytes without copying them.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesDecoder;

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = src.remaining();
        // `DecodeBuf::copy_to_bytes` splits tonic's `BytesMut`: a reference, not a copy.
        Ok(Some(src.copy_to_bytes(len)))
    }
}

// Tested through tonic in tests/receiver.rs (bytes arrive identical to what was sent)
// and tests/exporter.rs (the server receives the payload's exact bytes): tonic's
// `EncodeBuf` / `DecodeBuf` cannot be built outside tonic, so no unit test here.
