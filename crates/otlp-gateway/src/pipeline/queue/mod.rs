//! Where data waits for its exporter: one queue per route (an exporter, or a group that
//! shares one), in memory or on disk.
//!
//! Contract every backend keeps:
//! - [`Queue::push`] returns `Ok` only once the entry is stored as durably as the backend
//!   promises (the disk queue: written, and fsynced under `fsync = "always"`); the gateway
//!   acknowledges the client only after every matching queue said `Ok`.
//! - A push that would pass the byte bound is refused with [`QueueError::Full`] and a
//!   retry delay; nothing is dropped to make room.
//! - [`Queue::pop`] hands out a [`Lease`]; its entries stay counted in depth and bytes until
//!   [`Queue::ack`] (delivered, or dropped by reason) removes them, or [`Queue::nack`]
//!   puts them back in front for another try. After a crash, every entry not acked is
//!   replayed (at least once delivery).

pub mod disk;
pub mod memory;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use otlp_core::Payload;

use crate::metrics::QueueMetrics;

/// How much one [`Queue::pop`] may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PopLimits {
    /// Most items (spans, points, records) over the leased entries. The first entry is
    /// always taken, even when it alone is larger.
    pub max_items: u64,
    /// Most bytes over the leased entries (the first entry is always taken).
    pub max_bytes: usize,
    /// Once one entry is available, wait at most this long for more to fill the lease.
    pub linger: Duration,
}

/// Entries handed to one worker.
#[derive(Debug)]
pub struct Lease {
    /// Identifies the lease to [`Queue::ack`] and [`Queue::nack`].
    pub id: u64,
    /// The entries, oldest first. Each payload keeps its header (signal, items, tenant).
    pub entries: Vec<Payload>,
}

impl Lease {
    /// Items over all entries.
    pub fn items(&self) -> u64 {
        self.entries.iter().map(Payload::items).sum()
    }

    /// Bytes over all entries.
    pub fn bytes(&self) -> usize {
        self.entries.iter().map(Payload::len).sum()
    }
}

/// Why a push failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The byte bound would be passed; try again after `retry_after`.
    #[error("queue {queue} is full ({bytes} of {capacity} bytes)")]
    Full {
        /// The queue's name.
        queue: String,
        /// Bytes held now.
        bytes: u64,
        /// The bound.
        capacity: u64,
        /// Suggested client retry delay.
        retry_after: Duration,
    },
    /// The queue was closed (shutdown).
    #[error("queue {0} is closed")]
    Closed(String),
    /// Writing failed (disk full, I/O error); nothing was stored.
    #[error("queue {queue}: {message}")]
    Io {
        /// The queue's name.
        queue: String,
        /// The error.
        message: String,
    },
}

/// A queue backend.
pub trait Queue: Send + Sync + std::fmt::Debug + 'static {
    /// Append an entry; `Ok` once stored per the backend's durability promise.
    fn push(&self, payload: Payload) -> BoxFuture<'_, Result<(), QueueError>>;

    /// Whether `bytes` more would fit now (a hint checked before pushing to several
    /// queues, so a fan-out rarely stores data in some queues and refuses in another).
    fn has_room(&self, bytes: usize) -> bool;

    /// Wait for entries and lease them; `None` once the queue is closed and has nothing
    /// left that is not leased.
    fn pop(&self, limits: PopLimits) -> BoxFuture<'_, Option<Lease>>;

    /// The lease's entries are done with (delivered or dropped by reason): remove them.
    fn ack(&self, lease: Lease);

    /// The lease's entries were not delivered: put them back in front.
    fn nack(&self, lease: Lease);

    /// Stop taking pushes; pops drain what is left and then return `None`.
    fn close(&self);

    /// Force everything appended so far to stable storage (no-op in memory).
    fn sync(&self) -> BoxFuture<'_, Result<(), QueueError>>;

    /// The queue's gauges and counters (shared with the metrics registry).
    fn metrics(&self) -> &Arc<QueueMetrics>;

    /// Records found corrupt (checksum mismatch, torn tail) when the queue was opened;
    /// the gateway counts their items as dropped for `corrupt`. Zero in memory.
    fn corrupt_records(&self) -> u64 {
        0
    }
}

pub use disk::{DiskQueue, DiskQueueConfig};
pub use memory::MemoryQueue;
