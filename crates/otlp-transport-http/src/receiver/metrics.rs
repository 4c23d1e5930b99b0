//! Receiver counters: plain atomics, read with [`ReceiverMetrics::snapshot`].
//!
//! The gateway exports these later (Prometheus text on its admin port); this crate has
//! no metrics dependency. Every counter only grows, except
//! [`ConnectionSnapshot::active`], which is a gauge.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use otlp_core::Signal;

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// The sink took every item (HTTP 200).
    Accepted,
    /// The sink took the request but rejected some items (HTTP 200 with
    /// `partial_success`).
    PartiallyAccepted,
    /// The request was valid but the sink refused it (backpressure, throttling, an
    /// internal error): HTTP 429, 503, 500 and the like. Retryable ones carry
    /// `Retry-After`.
    Refused,
    /// The request itself was wrong and never reached the sink: bad data, too large,
    /// unsupported media type or encoding, unknown path, wrong method, missing or bad
    /// credentials, a body that did not arrive in time.
    Rejected,
}

impl Outcome {
    /// Every outcome, in a stable order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Accepted,
        Outcome::PartiallyAccepted,
        Outcome::Refused,
        Outcome::Rejected,
    ];

    /// Lower-case name for metric labels: `accepted`, `partially_accepted`, `refused`,
    /// `rejected`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::PartiallyAccepted => "partially_accepted",
            Outcome::Refused => "refused",
            Outcome::Rejected => "rejected",
        }
    }

    /// The outcome's position in [`Outcome::ALL`], e.g. to index an array of counters.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The statuses the receiver answers with; anything else lands in
/// [`SignalSnapshot::other_responses`].
const STATUSES: [u16; 13] = [
    200, 400, 401, 403, 404, 405, 408, 413, 415, 429, 500, 502, 503,
];

#[derive(Debug, Default)]
struct SignalCounters {
    outcomes: [AtomicU64; Outcome::ALL.len()],
    statuses: [AtomicU64; STATUSES.len()],
    other_statuses: AtomicU64,
    items_accepted: AtomicU64,
    items_refused: AtomicU64,
    bytes_received: AtomicU64,
    bytes_decompressed: AtomicU64,
}

impl SignalCounters {
    fn snapshot(&self) -> SignalSnapshot {
        let outcome = |o: Outcome| self.outcomes[o.index()].load(Relaxed);
        SignalSnapshot {
            accepted: outcome(Outcome::Accepted),
            partially_accepted: outcome(Outcome::PartiallyAccepted),
            refused: outcome(Outcome::Refused),
            rejected: outcome(Outcome::Rejected),
            responses: STATUSES
                .iter()
                .zip(&self.statuses)
                .map(|(status, n)| (*status, n.load(Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            other_responses: self.other_statuses.load(Relaxed),
            items_accepted: self.items_accepted.load(Relaxed),
            items_refused: self.items_refused.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            bytes_decompressed: self.bytes_decompressed.load(Relaxed),
        }
    }
}

/// The counters of one receiver (shared by all its connections): plain atomics, read
/// with [`ReceiverMetrics::snapshot`]. Every counter only grows, except
/// [`ConnectionSnapshot::active`], a gauge. The gateway exports them; this crate has no
/// metrics dependency.
///
/// ```
/// use otlp_core::Signal;
/// use otlp_transport_http::receiver::ReceiverMetrics;
///
/// let metrics = ReceiverMetrics::default();
/// let snapshot = metrics.snapshot();
/// assert_eq!(snapshot.signal(Signal::Traces).requests(), 0);
/// assert_eq!(snapshot.connections.active, 0);
/// ```
#[derive(Debug, Default)]
pub struct ReceiverMetrics {
    /// Traces, metrics, logs, then requests whose path named no signal.
    signals: [SignalCounters; 4],
    connections_accepted: AtomicU64,
    connections_active: AtomicU64,
    connections_closed_at_limit: AtomicU64,
    connections_idle_closed: AtomicU64,
    tls_handshake_failures: AtomicU64,
}

impl ReceiverMetrics {
    /// A copy of every counter. Counters are read one by one, so a snapshot taken while
    /// requests are served may be off by the requests in flight.
    pub fn snapshot(&self) -> ReceiverMetricsSnapshot {
        ReceiverMetricsSnapshot {
            traces: self.signals[0].snapshot(),
            metrics: self.signals[1].snapshot(),
            logs: self.signals[2].snapshot(),
            unrouted: self.signals[3].snapshot(),
            connections: ConnectionSnapshot {
                accepted: self.connections_accepted.load(Relaxed),
                active: self.connections_active.load(Relaxed),
                closed_at_limit: self.connections_closed_at_limit.load(Relaxed),
                idle_closed: self.connections_idle_closed.load(Relaxed),
                tls_handshake_failures: self.tls_handshake_failures.load(Relaxed),
            },
        }
    }

    fn counters(&self, signal: Option<Signal>) -> &SignalCounters {
        // The slot after the signals' holds what named no signal.
        &self.signals[signal.map_or(Signal::ALL.len(), Signal::index)]
    }

    /// One answered request: `status` is the HTTP status (an OTLP/gRPC receiver that
    /// shares these counters records its gRPC code in its own counters instead).
    pub fn record_response(&self, signal: Option<Signal>, outcome: Outcome, status: u16) {
        let c = self.counters(signal);
        c.outcomes[outcome.index()].fetch_add(1, Relaxed);
        match STATUSES.iter().position(|s| *s == status) {
            Some(i) => c.statuses[i].fetch_add(1, Relaxed),
            None => c.other_statuses.fetch_add(1, Relaxed),
        };
    }

    /// Items the sink accepted and refused for one request.
    pub fn record_items(&self, signal: Signal, accepted: u64, refused: u64) {
        let c = self.counters(Some(signal));
        c.items_accepted.fetch_add(accepted, Relaxed);
        c.items_refused.fetch_add(refused, Relaxed);
    }

    /// Bytes of one request body as they arrived on the wire.
    pub fn record_bytes_received(&self, signal: Signal, bytes: usize) {
        self.counters(Some(signal))
            .bytes_received
            .fetch_add(bytes as u64, Relaxed);
    }

    /// Bytes of one request body after decompression.
    pub fn record_bytes_decompressed(&self, signal: Signal, bytes: usize) {
        self.counters(Some(signal))
            .bytes_decompressed
            .fetch_add(bytes as u64, Relaxed);
    }

    /// A connection was accepted.
    pub fn connection_opened(&self) {
        self.connections_accepted.fetch_add(1, Relaxed);
        self.connections_active.fetch_add(1, Relaxed);
    }

    /// An accepted connection ended.
    pub fn connection_closed(&self) {
        self.connections_active.fetch_sub(1, Relaxed);
    }

    /// An accepted connection ended.
    pub fn connection_closed_at_limit(&self) {
        self.connections_closed_at_limit.fetch_add(1, Relaxed);
    }

    /// A connection was closed for idleness.
    pub fn connection_idle_closed(&self) {
        self.connections_idle_closed.fetch_add(1, Relaxed);
    }

    /// A TLS handshake failed or timed out.
    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.fetch_add(1, Relaxed);
    }
}

/// A copy of a receiver's counters, see [`ReceiverMetrics::snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverMetricsSnapshot {
    /// Requests to the traces path.
    pub traces: SignalSnapshot,
    /// Requests to the metrics path.
    pub metrics: SignalSnapshot,
    /// Requests to the logs path.
    pub logs: SignalSnapshot,
    /// Requests to a path that names no signal (404), counted here so a scan of the port
    /// shows up.
    pub unrouted: SignalSnapshot,
    /// Connection counters.
    pub connections: ConnectionSnapshot,
}

impl ReceiverMetricsSnapshot {
    /// The counters of one signal.
    pub fn signal(&self, signal: Signal) -> &SignalSnapshot {
        match signal {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        }
    }

    /// Requests answered, all paths together.
    pub fn requests(&self) -> u64 {
        [&self.traces, &self.metrics, &self.logs, &self.unrouted]
            .iter()
            .map(|s| s.requests())
            .sum()
    }
}

/// The counters of one signal's path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalSnapshot {
    /// Requests the sink took whole.
    pub accepted: u64,
    /// Requests the sink took with some items rejected.
    pub partially_accepted: u64,
    /// Valid requests the sink refused.
    pub refused: u64,
    /// Requests refused before the sink (bad input, auth, limits).
    pub rejected: u64,
    /// Responses by HTTP status, `(status, count)` in ascending status order, zero
    /// counts left out.
    pub responses: Vec<(u16, u64)>,
    /// Responses with a status not in the fixed list (none today; kept so that a count
    /// is never lost).
    pub other_responses: u64,
    /// Items (spans, data points, log records) the sink accepted.
    pub items_accepted: u64,
    /// Items of valid requests the sink refused, plus those a partial success rejected.
    pub items_refused: u64,
    /// Body bytes read off the wire, as sent (compressed or not).
    pub bytes_received: u64,
    /// Body bytes after decompression (equal to the wire bytes for uncompressed bodies).
    pub bytes_decompressed: u64,
}

impl SignalSnapshot {
    /// Requests answered, whatever the outcome.
    pub fn requests(&self) -> u64 {
        self.accepted + self.partially_accepted + self.refused + self.rejected
    }

    /// How many responses had `status`.
    pub fn responses_with(&self, status: u16) -> u64 {
        self.responses
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    }
}

/// Connection counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionSnapshot {
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections open now (a gauge).
    pub active: u64,
    /// Connections closed right after accept because `max_connections` were open
    /// ([`ConnectionLimitPolicy::Close`](super::ConnectionLimitPolicy::Close)).
    pub closed_at_limit: u64,
    /// Connections closed by the receiver for idleness (no request within
    /// `idle_timeout`, or no first request within `header_read_timeout`).
    pub idle_closed: u64,
    /// TLS handshakes that failed or timed out (including clients without a
    /// certificate when one is required).
    pub tls_handshake_failures: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_by_signal_outcome_and_status() {
        let m = ReceiverMetrics::default();
        m.record_response(Some(Signal::Logs), Outcome::Accepted, 200);
        m.record_response(Some(Signal::Logs), Outcome::Refused, 503);
        m.record_response(None, Outcome::Rejected, 404);
        m.record_response(None, Outcome::Rejected, 418);
        m.record_items(Signal::Logs, 7, 2);
        let s = m.snapshot();
        assert_eq!(s.logs.requests(), 2);
        assert_eq!(s.logs.responses, vec![(200, 1), (503, 1)]);
        assert_eq!(s.logs.responses_with(503), 1);
        assert_eq!((s.logs.items_accepted, s.logs.items_refused), (7, 2));
        assert_eq!(s.unrouted.rejected, 2);
        assert_eq!(s.unrouted.other_responses, 1);
        assert_eq!(s.requests(), 4);
        assert_eq!(s.traces, SignalSnapshot::default());
    }
}
