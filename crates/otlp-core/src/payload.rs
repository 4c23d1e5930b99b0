//! The unit of work that flows through a pipeline: encoded protobuf bytes plus a header.
//!
//! Keeping the unit encoded makes batching a concatenation (two serialized
//! `Export*ServiceRequest`s concatenated are one valid message whose resource lists are
//! joined), lets a durable queue store the bytes as they are, and lets an exporter forward
//! them without re-encoding. Only stages that must look inside decode.

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use crate::codec::DecodeError;
use crate::request::OtlpRequest;
use crate::signal::Signal;

/// What a pipeline stage needs to know about a [`Payload`] without decoding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadHeader {
    /// Which signal the bytes encode.
    pub signal: Signal,
    /// Number of items (spans, data points, log records) in the body.
    pub items: u64,
    /// The tenant the data belongs to, when the receiver determined one.
    pub tenant: Option<Arc<str>>,
    /// When the data arrived (from `tokio::time`, so tests can pause time).
    pub received_at: Instant,
}

/// An encoded OTLP `Export*ServiceRequest` (binary protobuf) and its [`PayloadHeader`].
///
/// ```
/// use otlp_core::{Payload, Signal, OtlpRequest};
/// use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
///
/// let payload = Payload::from_request(&ExportLogsServiceRequest::default());
/// assert_eq!(payload.signal(), Signal::Logs);
/// let back: ExportLogsServiceRequest = payload.decode().unwrap();
/// assert_eq!(back.item_count(), 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    header: PayloadHeader,
    body: Bytes,
}

impl Payload {
    /// A payload from bytes already known to encode `items` items of `signal`.
    ///
    /// The caller vouches for the count; use [`Payload::from_encoded`] for bytes from
    /// outside, which counts (and so validates the framing of) the items.
    pub fn new(signal: Signal, body: Bytes, items: u64) -> Payload {
        Payload {
            header: PayloadHeader {
                signal,
                items,
                tenant: None,
                received_at: Instant::now(),
            },
            body,
        }
    }

    /// A payload from encoded bytes received from a peer: the items are counted by
    /// walking the protobuf framing (no full decode), which also rejects malformed framing.
    pub fn from_encoded(signal: Signal, body: Bytes) -> Result<Payload, DecodeError> {
        let items = crate::wire::count_items(signal, &body)?;
        Ok(Payload::new(signal, body, items))
    }

    /// Encode a request message into a payload.
    pub fn from_request<T: OtlpRequest>(request: &T) -> Payload {
        let body = crate::codec::protobuf::encode(request);
        Payload::new(T::SIGNAL, body, request.item_count())
    }

    /// Decode the body as the request message of its signal.
    ///
    /// # Errors
    ///
    /// [`DecodeError::SignalMismatch`] when `T` is not the payload's signal, or the
    /// protobuf error when the bytes are malformed.
    pub fn decode<T: OtlpRequest>(&self) -> Result<T, DecodeError> {
        if T::SIGNAL != self.header.signal {
            return Err(DecodeError::SignalMismatch {
                expected: T::SIGNAL,
                actual: self.header.signal,
            });
        }
        crate::codec::protobuf::decode(&self.body)
    }

    /// Set the tenant.
    #[must_use]
    pub fn with_tenant(mut self, tenant: impl Into<Arc<str>>) -> Payload {
        self.header.tenant = Some(tenant.into());
        self
    }

    /// Set the arrival time (e.g. when restoring a payload from a durable queue).
    #[must_use]
    pub fn with_received_at(mut self, at: Instant) -> Payload {
        self.header.received_at = at;
        self
    }

    /// The header.
    pub fn header(&self) -> &PayloadHeader {
        &self.header
    }

    /// The signal.
    pub fn signal(&self) -> Signal {
        self.header.signal
    }

    /// Number of items.
    pub fn items(&self) -> u64 {
        self.header.items
    }

    /// Encoded size in bytes.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// Whether the body is empty (an empty request is valid protobuf with no items).
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The encoded request (cheap to clone).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Split into header and body.
    pub fn into_parts(self) -> (PayloadHeader, Bytes) {
        (self.header, self.body)
    }

    /// Reassemble from parts.
    pub fn from_parts(header: PayloadHeader, body: Bytes) -> Payload {
        Payload { header, body }
    }
}
