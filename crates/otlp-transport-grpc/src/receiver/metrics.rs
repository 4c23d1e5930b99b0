//! Call counters of the OTLP/gRPC receiver: plain atomics, read with
//! [`GrpcReceiverMetrics::snapshot`].
//!
//! Connection counters live in the listener's
//! [`ReceiverMetrics`](otlp_transport_http::receiver::ReceiverMetrics), shared with the
//! OTLP/HTTP receiver; these count calls, keyed by signal and by gRPC status code.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use otlp_core::{GrpcCode, Signal};
use otlp_transport_http::receiver::Outcome;

/// Every gRPC code, in numeric order (0..=16).
const CODES: usize = 17;

#[derive(Debug, Default)]
struct SignalCounters {
    outcomes: [AtomicU64; Outcome::ALL.len()],
    codes: [AtomicU64; CODES],
    items_accepted: AtomicU64,
    items_refused: AtomicU64,
    bytes_received: AtomicU64,
    bytes_decompressed: AtomicU64,
}

impl SignalCounters {
    fn snapshot(&self) -> GrpcSignalSnapshot {
        let outcome = |o: Outcome| self.outcomes[o.index()].load(Relaxed);
        GrpcSignalSnapshot {
            accepted: outcome(Outcome::Accepted),
            partially_accepted: outcome(Outcome::PartiallyAccepted),
            refused: outcome(Outcome::Refused),
            rejected: outcome(Outcome::Rejected),
            responses: self
                .codes
                .iter()
                .enumerate()
                .map(|(code, n)| (GrpcCode::from_i32(code as i32), n.load(Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            items_accepted: self.items_accepted.load(Relaxed),
            items_refused: self.items_refused.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            bytes_decompressed: self.bytes_decompressed.load(Relaxed),
        }
    }
}

/// The call counters of one OTLP/gRPC receiver (shared by all its connections). Every
/// counter only grows. The gateway exports them; this crate has no metrics dependency.
///
/// ```
/// use otlp_core::{GrpcCode, Signal};
/// use otlp_transport_grpc::receiver::GrpcReceiverMetrics;
/// use otlp_transport_http::receiver::Outcome;
///
/// let metrics = GrpcReceiverMetrics::default();
/// metrics.record_response(Some(Signal::Logs), Outcome::Refused, GrpcCode::Unavailable);
/// let snapshot = metrics.snapshot();
/// assert_eq!(snapshot.signal(Signal::Logs).refused, 1);
/// assert_eq!(snapshot.logs.responses_with(GrpcCode::Unavailable), 1);
/// ```
#[derive(Debug, Default)]
pub struct GrpcReceiverMetrics {
    /// Traces, metrics, logs, then calls to a method that names no signal.
    signals: [SignalCounters; 4],
}

impl GrpcReceiverMetrics {
    /// A copy of every counter. Counters are read one by one, so a snapshot taken while
    /// calls are served may be off by the calls in flight.
    pub fn snapshot(&self) -> GrpcReceiverMetricsSnapshot {
        GrpcReceiverMetricsSnapshot {
            traces: self.signals[0].snapshot(),
            metrics: self.signals[1].snapshot(),
            logs: self.signals[2].snapshot(),
            unrouted: self.signals[3].snapshot(),
        }
    }

    fn counters(&self, signal: Option<Signal>) -> &SignalCounters {
        // The slot after the signals' holds what named no signal.
        &self.signals[signal.map_or(Signal::ALL.len(), Signal::index)]
    }

    /// One answered call and its gRPC status code.
    pub fn record_response(&self, signal: Option<Signal>, outcome: Outcome, code: GrpcCode) {
        let c = self.counters(signal);
        c.outcomes[outcome.index()].fetch_add(1, Relaxed);
        // GrpcCode's discriminants are its numeric values, 0..=16.
        c.codes[(code as usize).min(CODES - 1)].fetch_add(1, Relaxed);
    }

    /// Items the sink accepted and refused for one call.
    pub fn record_items(&self, signal: Signal, accepted: u64, refused: u64) {
        let c = self.counters(Some(signal));
        c.items_accepted.fetch_add(accepted, Relaxed);
        c.items_refused.fetch_add(refused, Relaxed);
    }

    /// Bytes of one call's request body as they arrived (gRPC framing included,
    /// compressed or not).
    pub fn record_bytes_received(&self, signal: Option<Signal>, bytes: u64) {
        self.counters(signal)
            .bytes_received
            .fetch_add(bytes, Relaxed);
    }

    /// Bytes of one call's request message after decompression.
    pub fn record_bytes_decompressed(&self, signal: Signal, bytes: usize) {
        self.counters(Some(signal))
            .bytes_decompressed
            .fetch_add(bytes as u64, Relaxed);
    }
}

/// A copy of an OTLP/gRPC receiver's call counters, see
/// [`GrpcReceiverMetrics::snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrpcReceiverMetricsSnapshot {
    /// Calls to `TraceService/Export`.
    pub traces: GrpcSignalSnapshot,
    /// Calls to `MetricsService/Export`.
    pub metrics: GrpcSignalSnapshot,
    /// Calls to `LogsService/Export`.
    pub logs: GrpcSignalSnapshot,
    /// Calls to any other path (answered `UNIMPLEMENTED`, or an HTTP error when they
    /// were not gRPC at all), counted here so a scan of the port shows up. Calls are
    /// counted by their path, whatever else is wrong with them.
    pub unrouted: GrpcSignalSnapshot,
}

impl GrpcReceiverMetricsSnapshot {
    /// The counters of one signal.
    pub fn signal(&self, signal: Signal) -> &GrpcSignalSnapshot {
        match signal {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        }
    }

    /// Calls answered, all methods together.
    pub fn requests(&self) -> u64 {
        [&self.traces, &self.metrics, &self.logs, &self.unrouted]
            .iter()
            .map(|s| s.requests())
            .sum()
    }
}

/// The call counters of one signal's method.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrpcSignalSnapshot {
    /// Calls the sink took whole (`OK`).
    pub accepted: u64,
    /// Calls the sink took with some items rejected (`OK` with `partial_success`).
    pub partially_accepted: u64,
    /// Valid calls the sink or the receiver's concurrency limit refused.
    pub refused: u64,
    /// Calls refused before the sink: bad data, too large, bad encoding, auth, timeouts.
    pub rejected: u64,
    /// Answers by gRPC status code, `(code, count)` in numeric code order, zero counts
    /// left out.
    pub responses: Vec<(GrpcCode, u64)>,
    /// Items (spans, data points, log records) the sink accepted.
    pub items_accepted: u64,
    /// Items of valid calls the sink refused, plus those a partial success rejected.
    pub items_refused: u64,
    /// Request body bytes read off the wire (gRPC framing included, compressed or not).
    pub bytes_received: u64,
    /// Request message bytes after decompression.
    pub bytes_decompressed: u64,
}

impl GrpcSignalSnapshot {
    /// Calls answered, whatever the outcome.
    pub fn requests(&self) -> u64 {
        self.accepted + self.partially_accepted + self.refused + self.rejected
    }

    /// How many answers had `code`.
    pub fn responses_with(&self, code: GrpcCode) -> u64 {
        self.responses
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(0, |(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_by_signal_outcome_and_code() {
        let m = GrpcReceiverMetrics::default();
        m.record_response(Some(Signal::Traces), Outcome::Accepted, GrpcCode::Ok);
        m.record_response(
            Some(Signal::Traces),
            Outcome::Rejected,
            GrpcCode::Unauthenticated,
        );
        m.record_response(None, Outcome::Rejected, GrpcCode::Unimplemented);
        m.record_items(Signal::Traces, 5, 1);
        m.record_bytes_received(Some(Signal::Traces), 100);
        m.record_bytes_decompressed(Signal::Traces, 300);
        let s = m.snapshot();
        assert_eq!(s.traces.requests(), 2);
        assert_eq!(
            s.traces.responses,
            vec![(GrpcCode::Ok, 1), (GrpcCode::Unauthenticated, 1)]
        );
        assert_eq!((s.traces.items_accepted, s.traces.items_refused), (5, 1));
        assert_eq!(
            (s.traces.bytes_received, s.traces.bytes_decompressed),
            (100, 300)
        );
        assert_eq!(s.unrouted.responses_with(GrpcCode::Unimplemented), 1);
        assert_eq!(s.requests(), 3);
        assert_eq!(s.logs, GrpcSignalSnapshot::default());
    }
}
