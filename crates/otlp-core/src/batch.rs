//! Batching: join small payloads into fewer, larger ones, and cut payloads that are too
//! large, without decoding.
//!
//! Exporting one request per incoming request wastes round trips and upstream CPU on
//! small requests, while one huge request can exceed an upstream's message limit. A
//! [`Batcher`] sits between the two: it collects payloads until a batch holds
//! [`BatchConfig::max_items`] items or [`BatchConfig::max_bytes`] bytes, or its oldest
//! data is [`BatchConfig::max_age`] old.
//!
//! Joining is concatenation: two encoded `Export*ServiceRequest`s concatenated are one
//! valid request whose resource lists are joined (protobuf merges repeated fields). Each
//! batch is copied once, into a buffer of exactly its size (a batch of one payload is not
//! copied at all). Cutting uses [`crate::wire`]: on resource boundaries first, then scope,
//! then item boundaries.
//!
//! ```
//! use std::time::Duration;
//! use otlp_core::batch::{BatchConfig, Batcher};
//! use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
//! use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
//! use otlp_core::{Payload, Signal};
//!
//! let request = |spans| ExportTraceServiceRequest {
//!     resource_spans: vec![ResourceSpans {
//!         scope_spans: vec![ScopeSpans { spans: vec![Span::default(); spans], ..Default::default() }],
//!         ..Default::default()
//!     }],
//! };
//! let config = BatchConfig { max_items: 100, ..BatchConfig::default() };
//! let mut batcher = Batcher::new(Signal::Traces, config)?;
//!
//! // Small requests wait for company...
//! assert!(batcher.push(Payload::from_request(&request(30)))?.is_empty());
//! assert!(batcher.push(Payload::from_request(&request(30)))?.is_empty());
//! // ...until a batch is full: 100 spans go out at once.
//! let full = batcher.push(Payload::from_request(&request(40)))?;
//! assert_eq!(full.len(), 1);
//! assert_eq!(full[0].items(), 100);
//!
//! // A request that does not fit beside the pending data starts the next batch.
//! assert!(batcher.push(Payload::from_request(&request(50)))?.is_empty());
//! let sent = batcher.push(Payload::from_request(&request(60)))?;
//! assert_eq!(sent[0].items(), 50);
//! assert_eq!(batcher.pending_items(), 60);
//!
//! // The rest leaves when its deadline passes (or on flush at shutdown).
//! let deadline = batcher.deadline().expect("data pending");
//! let rest = batcher.poll_expired(deadline).expect("expired");
//! assert_eq!(rest.items(), 60);
//! let decoded: ExportTraceServiceRequest = rest.decode()?;
//! assert_eq!(decoded.resource_spans.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use crate::codec::DecodeError;
use crate::payload::{Payload, PayloadHeader};
use crate::signal::Signal;
use crate::wire;

/// When a [`Batcher`] sends a batch: whichever limit is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most items (spans, data points, log records) in one batch. Default 8192, the
    /// OpenTelemetry Collector's batch size: large enough to amortise a round trip,
    /// small enough that one batch encodes in about a millisecond.
    pub max_items: u64,
    /// Most encoded bytes in one batch. Default 4 MiB, the default maximum message size
    /// of gRPC servers (including the Collector's OTLP receiver): a larger batch would be
    /// refused upstream. A single item larger than this is sent alone, never dropped.
    pub max_bytes: usize,
    /// Longest time the oldest pending data waits before its batch is sent, even if not
    /// full. Default 200 ms, the Collector's batch timeout: batching gains little beyond
    /// it, and it bounds the latency the gateway adds.
    pub max_age: Duration,
}

impl BatchConfig {
    /// The longest accepted [`BatchConfig::max_age`]: holding telemetry longer than this
    /// in memory risks losing it on a crash for no gain in batch size.
    pub const MAX_AGE_LIMIT: Duration = Duration::from_secs(3600);

    /// Check the limits.
    ///
    /// # Errors
    ///
    /// [`BatchConfigError`] naming the field that is out of range.
    pub fn validate(&self) -> Result<(), BatchConfigError> {
        if self.max_items == 0 {
            return Err(BatchConfigError::ZeroMaxItems);
        }
        if self.max_bytes == 0 {
            return Err(BatchConfigError::ZeroMaxBytes);
        }
        if self.max_age.is_zero() {
            return Err(BatchConfigError::ZeroMaxAge);
        }
        if self.max_age > Self::MAX_AGE_LIMIT {
            return Err(BatchConfigError::MaxAgeTooLong(self.max_age));
        }
        Ok(())
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_items: 8192,
            max_bytes: 4 * 1024 * 1024,
            max_age: Duration::from_millis(200),
        }
    }
}

/// A [`BatchConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchConfigError {
    /// `max_items` is 0.
    #[error("batch max_items is 0: set it to at least 1 (the default is 8192)")]
    ZeroMaxItems,
    /// `max_bytes` is 0.
    #[error("batch max_bytes is 0: set it to at least 1 (the default is 4 MiB)")]
    ZeroMaxBytes,
    /// `max_age` is 0.
    #[error(
        "batch max_age is 0: set it above 0 (the default is 200 ms), or call flush after every push to disable batching"
    )]
    ZeroMaxAge,
    /// `max_age` is longer than [`BatchConfig::MAX_AGE_LIMIT`].
    #[error("batch max_age {0:?} is longer than the 1 hour limit: lower it")]
    MaxAgeTooLong(Duration),
}

/// Why [`Batcher::push`] refused a payload. The payload is handed back, so nothing is
/// lost: route it elsewhere or reject it upstream.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The payload holds another signal than the batcher's.
    #[error(
        "payload holds {actual}, but this batcher batches {expected}: push it to the batcher of its signal"
    )]
    SignalMismatch {
        /// The batcher's signal.
        expected: Signal,
        /// The payload's signal.
        actual: Signal,
        /// The refused payload.
        payload: Box<Payload>,
    },
    /// The payload is larger than a batch and its protobuf framing is malformed, so it
    /// cannot be split. Treat it as bad data (400 / `INVALID_ARGUMENT`); validate bodies
    /// from peers with [`Payload::from_encoded`] to catch this at the edge.
    #[error("a payload too large for one batch cannot be split: {source}")]
    Malformed {
        /// What is wrong with the framing.
        #[source]
        source: DecodeError,
        /// The refused payload.
        payload: Box<Payload>,
    },
    /// The payload is larger than a batch, and cutting it would multiply its size because
    /// its resource, scope or metric fields take most of a batch and must be repeated in
    /// every piece (see [`wire::SplitGrowth`]). Reject it as bad data (400 /
    /// `INVALID_ARGUMENT`), or raise [`BatchConfig::max_bytes`].
    #[error("a payload too large for one batch cannot be split: {source}")]
    SplitTooLarge {
        /// Sizes involved.
        #[source]
        source: wire::SplitGrowth,
        /// The refused payload.
        payload: Box<Payload>,
    },
}

impl BatchError {
    /// The refused payload.
    pub fn into_payload(self) -> Payload {
        match self {
            BatchError::SignalMismatch { payload, .. }
            | BatchError::Malformed { payload, .. }
            | BatchError::SplitTooLarge { payload, .. } => *payload,
        }
    }
}

/// Collects payloads of one signal into batches bounded by a [`BatchConfig`].
///
/// A batcher holds one signal because a batch is one `Export*ServiceRequest`. It is
/// meant to hold one tenant too: the gateway keeps one batcher per signal and tenant, so
/// each tenant's batches fill at their own pace and carry its tenant. Should payloads of
/// different tenants reach one batcher anyway, a change of tenant sends the pending
/// batch first, so a batch never mixes tenants.
///
/// Items are never dropped, duplicated or reordered: batches leave in the order their
/// data arrived, and a payload split across batches keeps its items in order. A payload
/// that fits in the current batch is appended whole; one that does not fit is the start
/// of the next batch; one larger than a batch is cut into pieces that each fit an empty
/// batch (see [`wire::split_to_fit`]), and each piece follows the same rule. Cutting only
/// what cannot fit keeps requests intact where possible, at the price of some batches
/// below the limits.
///
/// The batcher does not watch the clock: call [`Batcher::poll_expired`] at
/// [`Batcher::deadline`] (e.g. with `tokio::time::sleep_until`), and [`Batcher::flush`]
/// at shutdown.
#[derive(Debug)]
pub struct Batcher {
    signal: Signal,
    config: BatchConfig,
    /// Request bodies (whole payloads or resource entries) in arrival order.
    pending: Vec<Bytes>,
    items: u64,
    bytes: usize,
    oldest: Option<Instant>,
    tenant: Option<Arc<str>>,
}

impl Batcher {
    /// A batcher for `signal` with `config`.
    ///
    /// # Errors
    ///
    /// [`BatchConfigError`] when the config is out of range.
    pub fn new(signal: Signal, config: BatchConfig) -> Result<Batcher, BatchConfigError> {
        config.validate()?;
        Ok(Batcher {
            signal,
            config,
            pending: Vec::new(),
            items: 0,
            bytes: 0,
            oldest: None,
            tenant: None,
        })
    }

    /// The signal this batcher takes.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// The limits.
    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    /// Add a payload; returns the batches that became full, oldest first (often none).
    ///
    /// An empty payload (no bytes) is ignored.
    ///
    /// # Errors
    ///
    /// [`BatchError::SignalMismatch`] for a payload of another signal;
    /// [`BatchError::Malformed`] and [`BatchError::SplitTooLarge`] for a payload too large
    /// for one batch that cannot be cut (malformed framing, or headers that would be
    /// repeated out of proportion). All hand the payload back and leave the batcher
    /// unchanged.
    pub fn push(&mut self, payload: Payload) -> Result<Vec<Payload>, BatchError> {
        if payload.signal() != self.signal {
            return Err(BatchError::SignalMismatch {
                expected: self.signal,
                actual: payload.signal(),
                payload: Box::new(payload),
            });
        }
        if payload.is_empty() {
            return Ok(Vec::new());
        }

        // Work out the pieces before touching any state, so an error changes nothing.
        let units: Vec<(Bytes, u64)> = if self.fits_empty(payload.items(), payload.len()) {
            vec![(payload.body().clone(), payload.items())]
        } else {
            match wire::split_to_fit(
                self.signal,
                payload.body(),
                self.config.max_items,
                self.config.max_bytes,
            ) {
                Ok(entries) => entries
                    .into_iter()
                    .map(|entry| {
                        let items = entry.items();
                        (entry.into_encoded(), items)
                    })
                    .collect(),
                Err(wire::SplitError::Malformed(source)) => {
                    return Err(BatchError::Malformed {
                        source,
                        payload: Box::new(payload),
                    });
                }
                Err(wire::SplitError::Growth(source)) => {
                    return Err(BatchError::SplitTooLarge {
                        source,
                        payload: Box::new(payload),
                    });
                }
            }
        };
        let (header, _) = payload.into_parts();

        let mut full = Vec::new();
        if !self.pending.is_empty() && self.tenant != header.tenant {
            full.extend(self.take());
        }
        for (bytes, items) in units {
            if !self.pending.is_empty() && !self.fits(items, bytes.len()) {
                full.extend(self.take());
            }
            self.append(bytes, items, &header);
            if self.items >= self.config.max_items || self.bytes >= self.config.max_bytes {
                full.extend(self.take());
            }
        }
        Ok(full)
    }

    /// When the pending batch must be sent: the oldest pending data's arrival time plus
    /// [`BatchConfig::max_age`]. `None` when nothing is pending.
    pub fn deadline(&self) -> Option<Instant> {
        self.oldest
            .map(|oldest| oldest.checked_add(self.config.max_age).unwrap_or(oldest))
    }

    /// The pending batch, if its [deadline](Batcher::deadline) is at or before `now`.
    pub fn poll_expired(&mut self, now: Instant) -> Option<Payload> {
        match self.deadline() {
            Some(deadline) if deadline <= now => self.take(),
            _ => None,
        }
    }

    /// The pending batch, whatever its age (e.g. at shutdown). `None` when empty.
    pub fn flush(&mut self) -> Option<Payload> {
        self.take()
    }

    /// Items in the pending batch.
    pub fn pending_items(&self) -> u64 {
        self.items
    }

    /// Encoded bytes in the pending batch.
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn fits_empty(&self, items: u64, bytes: usize) -> bool {
        items <= self.config.max_items && bytes <= self.config.max_bytes
    }

    fn fits(&self, items: u64, bytes: usize) -> bool {
        self.items.saturating_add(items) <= self.config.max_items
            && self.bytes.saturating_add(bytes) <= self.config.max_bytes
    }

    fn append(&mut self, bytes: Bytes, items: u64, header: &PayloadHeader) {
        if self.pending.is_empty() {
            self.tenant.clone_from(&header.tenant);
        }
        self.items = self.items.saturating_add(items);
        self.bytes += bytes.len();
        self.pending.push(bytes);
        self.oldest = Some(match self.oldest {
            Some(oldest) => oldest.min(header.received_at),
            None => header.received_at,
        });
    }

    fn take(&mut self) -> Option<Payload> {
        let received_at = self.oldest.take()?;
        let body = if self.pending.len() == 1 {
            self.pending.pop().unwrap_or_default()
        } else {
            let mut joined = BytesMut::with_capacity(self.bytes);
            for part in self.pending.drain(..) {
                joined.extend_from_slice(&part);
            }
            joined.freeze()
        };
        let header = PayloadHeader {
            signal: self.signal,
            items: std::mem::take(&mut self.items),
            tenant: self.tenant.take(),
            received_at,
        };
        self.bytes = 0;
        Some(Payload::from_parts(header, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
    use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
    use crate::proto::common::v1::InstrumentationScope;
    use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use crate::request::OtlpRequest;

    fn span(name: &str) -> Span {
        Span {
            trace_id: vec![7; 16],
            span_id: vec![8; 8],
            name: name.into(),
            ..Default::default()
        }
    }

    /// One resource, one scope, `n` spans named `{tag}.{i}`.
    fn request(tag: &str, n: usize) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: tag.into(),
                        ..Default::default()
                    }),
                    spans: (0..n).map(|i| span(&format!("{tag}.{i}"))).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn names(payloads: &[Payload]) -> Vec<String> {
        payloads
            .iter()
            .flat_map(|p| {
                let r: ExportTraceServiceRequest = p.decode().expect("valid batch");
                assert_eq!(r.item_count(), p.items());
                r.resource_spans
                    .into_iter()
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans)
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn config(max_items: u64, max_bytes: usize) -> BatchConfig {
        BatchConfig {
            max_items,
            max_bytes,
            max_age: Duration::from_millis(200),
        }
    }

    #[test]
    fn default_config_is_valid() {
        let config = BatchConfig::default();
        assert_eq!(config.max_items, 8192);
        assert_eq!(config.max_bytes, 4 << 20);
        assert_eq!(config.max_age, Duration::from_millis(200));
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn rejects_unusable_configs() {
        let ok = BatchConfig::default();
        let cases = [
            (
                BatchConfig { max_items: 0, ..ok },
                BatchConfigError::ZeroMaxItems,
            ),
            (
                BatchConfig { max_bytes: 0, ..ok },
                BatchConfigError::ZeroMaxBytes,
            ),
            (
                BatchConfig {
                    max_age: Duration::ZERO,
                    ..ok
                },
                BatchConfigError::ZeroMaxAge,
            ),
            (
                BatchConfig {
                    max_age: Duration::from_secs(7200),
                    ..ok
                },
                BatchConfigError::MaxAgeTooLong(Duration::from_secs(7200)),
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(Batcher::new(Signal::Logs, config).unwrap_err(), expected);
        }
    }

    #[test]
    fn joins_small_payloads_by_concatenation() {
        let mut batcher = Batcher::new(Signal::Traces, config(10, 1 << 20)).unwrap();
        let a = Payload::from_request(&request("a", 2));
        let b = Payload::from_request(&request("b", 3));
        let expected: Vec<u8> = [a.body().to_vec(), b.body().to_vec()].concat();
        assert!(batcher.push(a).unwrap().is_empty());
        assert!(batcher.push(b).unwrap().is_empty());
        assert_eq!(batcher.pending_items(), 5);
        assert_eq!(batcher.pending_bytes(), expected.len());
        let batch = batcher.flush().unwrap();
        assert_eq!(batch.body().as_ref(), expected.as_slice());
        assert_eq!(batch.items(), 5);
        assert_eq!(names(&[batch]), ["a.0", "a.1", "b.0", "b.1", "b.2"]);
        assert!(batcher.is_empty());
        assert_eq!(batcher.flush(), None);
        assert_eq!(batcher.deadline(), None);
    }

    #[test]
    fn a_batch_of_one_payload_is_not_copied() {
        let mut batcher = Batcher::new(Signal::Traces, config(10, 1 << 20)).unwrap();
        let a = Payload::from_request(&request("a", 2));
        let ptr = a.body().as_ptr();
        batcher.push(a).unwrap();
        assert_eq!(batcher.flush().unwrap().body().as_ptr(), ptr);
    }

    #[test]
    fn sends_when_full_and_starts_anew_when_the_next_does_not_fit() {
        let mut batcher = Batcher::new(Signal::Traces, config(5, 1 << 20)).unwrap();
        assert!(
            batcher
                .push(Payload::from_request(&request("a", 3)))
                .unwrap()
                .is_empty()
        );
        // 3 + 3 > 5: the pending batch leaves, "b" starts the next one.
        let out = batcher
            .push(Payload::from_request(&request("b", 3)))
            .unwrap();
        assert_eq!(names(&out), ["a.0", "a.1", "a.2"]);
        // 3 + 2 = 5: full, sent at once.
        let out = batcher
            .push(Payload::from_request(&request("c", 2)))
            .unwrap();
        assert_eq!(names(&out), ["b.0", "b.1", "b.2", "c.0", "c.1"]);
        assert!(batcher.is_empty());
    }

    #[test]
    fn splits_payloads_larger_than_a_batch() {
        let mut batcher = Batcher::new(Signal::Traces, config(4, 1 << 20)).unwrap();
        assert!(
            batcher
                .push(Payload::from_request(&request("a", 1)))
                .unwrap()
                .is_empty()
        );
        // 11 spans: cut into pieces of 4, 4 and 3 spans. The first piece does not fit
        // beside "a", so "a" leaves alone; the last piece stays pending.
        let out = batcher
            .push(Payload::from_request(&request("b", 11)))
            .unwrap();
        let sizes: Vec<u64> = out.iter().map(Payload::items).collect();
        assert_eq!(sizes, [1, 4, 4]);
        assert_eq!(batcher.pending_items(), 3);
        let mut all = names(&out);
        all.extend(names(&batcher.flush().into_iter().collect::<Vec<_>>()));
        let expected: Vec<String> = std::iter::once("a.0".to_owned())
            .chain((0..11).map(|i| format!("b.{i}")))
            .collect();
        assert_eq!(all, expected);
        // Every piece repeats the scope.
        for batch in &out {
            let r: ExportTraceServiceRequest = batch.decode().unwrap();
            for s in r.resource_spans.iter().flat_map(|r| &r.scope_spans) {
                assert!(s.scope.is_some());
            }
        }
    }

    #[test]
    fn an_oversized_item_travels_alone() {
        let mut big = request("big", 1);
        big.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(2000);
        let small = Payload::from_request(&request("s", 1));
        let limit = 4 * small.len();
        let mut batcher = Batcher::new(Signal::Traces, config(100, limit)).unwrap();
        assert!(batcher.push(small).unwrap().is_empty());
        let out = batcher.push(Payload::from_request(&big)).unwrap();
        assert_eq!(out.len(), 2, "pending batch, then the big span alone");
        assert_eq!(out[0].items(), 1);
        assert_eq!(out[1].items(), 1);
        assert!(out[1].len() > limit);
        assert!(batcher.is_empty());
    }

    #[test]
    fn refuses_other_signals_and_hands_the_payload_back() {
        let mut batcher = Batcher::new(Signal::Traces, BatchConfig::default()).unwrap();
        let logs = Payload::from_request(&ExportLogsServiceRequest::default());
        let err = batcher.push(logs.clone()).unwrap_err();
        assert!(matches!(
            err,
            BatchError::SignalMismatch {
                expected: Signal::Traces,
                actual: Signal::Logs,
                ..
            }
        ));
        assert!(err.to_string().contains("batcher of its signal"));
        assert_eq!(err.into_payload(), logs);
    }

    #[test]
    fn refuses_malformed_payloads_that_need_a_split_without_changing_state() {
        let mut batcher = Batcher::new(Signal::Traces, config(2, 1 << 20)).unwrap();
        batcher
            .push(Payload::from_request(&request("a", 1)))
            .unwrap();
        let bad = Payload::new(Signal::Traces, Bytes::from_static(&[0x0a, 0x7f, 0x00]), 3);
        let err = batcher.push(bad.clone()).unwrap_err();
        assert!(matches!(err, BatchError::Malformed { .. }), "{err}");
        assert_eq!(err.into_payload(), bad);
        assert_eq!(batcher.pending_items(), 1);
    }

    #[test]
    fn refuses_splits_that_would_multiply_the_payload() {
        use crate::proto::common::v1::{AnyValue, KeyValue, any_value};
        use crate::proto::resource::v1::Resource;
        // 200 KiB of resource attributes, then 20 000 empty spans (2 bytes each).
        let mut huge = request("h", 0);
        huge.resource_spans[0].resource = Some(Resource {
            attributes: vec![KeyValue {
                key: "blob".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("x".repeat(200 << 10))),
                }),
                key_strindex: 0,
            }],
            ..Default::default()
        });
        huge.resource_spans[0].scope_spans[0].spans = vec![Span::default(); 20_000];
        let payload = Payload::from_request(&huge);
        // One span per batch would mean 20 000 copies of the resource: 4 GB.
        let mut batcher = Batcher::new(Signal::Traces, config(1, 1 << 20)).unwrap();
        let err = batcher.push(payload.clone()).unwrap_err();
        let BatchError::SplitTooLarge { source, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(source.input, payload.len());
        assert!(err.to_string().contains("raise the byte limit"), "{err}");
        assert_eq!(err.into_payload(), payload);
        assert!(batcher.is_empty());

        // With a batch limit the headers do not dominate, it is cut as usual.
        let mut batcher = Batcher::new(Signal::Traces, config(5000, 4 << 20)).unwrap();
        let out = batcher.push(payload).unwrap();
        let total: u64 = out.iter().map(Payload::items).sum::<u64>() + batcher.pending_items();
        assert_eq!(total, 20_000);
    }

    #[test]
    fn ignores_empty_payloads() {
        let mut batcher = Batcher::new(Signal::Traces, BatchConfig::default()).unwrap();
        let empty = Payload::from_request(&ExportTraceServiceRequest::default());
        assert!(batcher.push(empty).unwrap().is_empty());
        assert!(batcher.is_empty());
        assert_eq!(batcher.deadline(), None);
    }

    #[test]
    fn never_mixes_tenants() {
        let mut batcher = Batcher::new(Signal::Traces, BatchConfig::default()).unwrap();
        let p = |tag, tenant: Option<&str>| {
            let p = Payload::from_request(&request(tag, 1));
            match tenant {
                Some(t) => p.with_tenant(t),
                None => p,
            }
        };
        assert!(batcher.push(p("a", Some("acme"))).unwrap().is_empty());
        assert!(batcher.push(p("b", Some("acme"))).unwrap().is_empty());
        let out = batcher.push(p("c", Some("globex"))).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].header().tenant.as_deref(), Some("acme"));
        assert_eq!(names(&out), ["a.0", "b.0"]);
        let out = batcher.push(p("d", None)).unwrap();
        assert_eq!(out[0].header().tenant.as_deref(), Some("globex"));
        let last = batcher.flush().unwrap();
        assert_eq!(last.header().tenant, None);
        assert_eq!(names(&[last]), ["d.0"]);
    }

    #[test]
    fn expires_by_the_oldest_arrival() {
        let max_age = Duration::from_millis(200);
        let mut batcher = Batcher::new(Signal::Traces, config(100, 1 << 20)).unwrap();
        let t0 = Instant::now();
        let newer = Payload::from_request(&request("a", 1))
            .with_received_at(t0 + Duration::from_millis(50));
        // Restored from a queue: older than what is already pending.
        let older = Payload::from_request(&request("b", 1)).with_received_at(t0);
        batcher.push(newer).unwrap();
        assert_eq!(
            batcher.deadline(),
            Some(t0 + Duration::from_millis(50) + max_age)
        );
        batcher.push(older).unwrap();
        assert_eq!(batcher.deadline(), Some(t0 + max_age));

        assert_eq!(
            batcher.poll_expired(t0 + max_age - Duration::from_millis(1)),
            None
        );
        let batch = batcher.poll_expired(t0 + max_age).expect("expired");
        assert_eq!(batch.header().received_at, t0);
        assert_eq!(batch.items(), 2);
        assert_eq!(batcher.deadline(), None);
        assert_eq!(batcher.poll_expired(t0 + Duration::from_secs(10)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_follows_paused_tokio_time() {
        let mut batcher = Batcher::new(Signal::Traces, BatchConfig::default()).unwrap();
        batcher
            .push(Payload::from_request(&request("a", 1)))
            .unwrap();
        let deadline = batcher.deadline().unwrap();
        tokio::time::advance(Duration::from_millis(199)).await;
        assert_eq!(batcher.poll_expired(Instant::now()), None);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(Instant::now(), deadline);
        assert!(batcher.poll_expired(Instant::now()).is_some());
    }
}
