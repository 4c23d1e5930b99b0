//! The memory queue: a bounded FIFO of [`Payload`]s, lost on a crash.
//!
//! The waiting/leasing logic (`LeaseCore`) is shared with the disk queue, which keeps
//! index entries instead of payloads in it.
//!
//! Semantics both backends share:
//! - [`Queue::pop`] waits for one entry, then lingers up to [`PopLimits::linger`] for more
//!   until the next entry would pass `max_items` or `max_bytes`; the first entry is always
//!   taken, however large. Entries leave in push order; a nacked lease goes back in front,
//!   in its order.
//! - After [`Queue::close`], pushes fail with [`QueueError::Closed`] and pops drain the
//!   ready entries; a pop returns `None` when the queue is closed and nothing is ready at
//!   that moment, even if leases are still out. Should such a lease be nacked later, the
//!   next pop returns its entries again (workers that keep popping after a nack see them).
//! - An entry larger than the whole byte bound is taken when the queue is empty, so it
//!   cannot be refused forever; otherwise the bound is never passed.

use std::collections::{HashMap, VecDeque};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::BoxFuture;
use otlp_core::Payload;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Lease, PopLimits, Queue, QueueError};
use crate::metrics::QueueMetrics;

/// What [`LeaseCore`] needs to know about an entry to fill a lease.
pub(crate) trait LeaseEntry {
    /// Items in the entry.
    fn entry_items(&self) -> u64;
    /// Payload bytes of the entry.
    fn entry_bytes(&self) -> usize;
}

impl LeaseEntry for Payload {
    fn entry_items(&self) -> u64 {
        self.items()
    }
    fn entry_bytes(&self) -> usize {
        self.len()
    }
}

#[derive(Debug)]
struct CoreState<E> {
    ready: VecDeque<E>,
    leased: HashMap<u64, Vec<E>>,
    next_lease: u64,
    closed: bool,
}

/// Ready list, leases and waiting poppers: the part of a queue that does not care where
/// entries are stored.
#[derive(Debug)]
pub(crate) struct LeaseCore<E> {
    state: Mutex<CoreState<E>>,
    notify: Notify,
}

impl<E: LeaseEntry + Clone> LeaseCore<E> {
    pub(crate) fn new() -> Self {
        LeaseCore {
            state: Mutex::new(CoreState {
                ready: VecDeque::new(),
                leased: HashMap::new(),
                next_lease: 1,
                closed: false,
            }),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CoreState<E>> {
        // A panic while holding the lock leaves the lists consistent (every mutation is
        // a single push/pop), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append entries at the back and wake poppers.
    pub(crate) fn push_back(&self, entries: impl IntoIterator<Item = E>) {
        self.lock().ready.extend(entries);
        self.notify.notify_waiters();
    }

    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Remove a lease (ack): its entries, or `None` for an unknown or finished lease.
    pub(crate) fn take(&self, id: u64) -> Option<Vec<E>> {
        self.lock().leased.remove(&id)
    }

    /// Put a lease's entries back in front, in their order. `false` for an unknown lease.
    pub(crate) fn nack(&self, id: u64) -> bool {
        let mut st = self.lock();
        let Some(entries) = st.leased.remove(&id) else {
            return false;
        };
        for e in entries.into_iter().rev() {
            st.ready.push_front(e);
        }
        drop(st);
        self.notify.notify_waiters();
        true
    }

    /// Remove from a lease the entries `gone` selects and return them.
    pub(crate) fn split_lease(&self, id: u64, gone: impl FnMut(&E) -> bool) -> Vec<E> {
        let mut st = self.lock();
        let Some(entries) = st.leased.remove(&id) else {
            return Vec::new();
        };
        let (gone, keep): (Vec<E>, Vec<E>) = entries.into_iter().partition(gone);
        if !keep.is_empty() {
            st.leased.insert(id, keep);
        }
        gone
    }

    /// Wait for entries and lease them (see the module docs for the rules).
    pub(crate) async fn pop(&self, limits: PopLimits) -> Option<(u64, Vec<E>)> {
        let mut taken = Taken {
            core: self,
            entries: Vec::new(),
            items: 0,
            bytes: 0,
        };
        // Wait for the first entry. `enable` registers the waiter before the state is
        // checked, so a push between the check and the await is not missed.
        loop {
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                if let Some(first) = st.ready.pop_front() {
                    taken.add(first);
                    taken.fill(&mut st.ready, limits);
                    break;
                }
                if st.closed {
                    return None;
                }
            }
            notified.await;
        }
        if !taken.is_full(limits) && !limits.linger.is_zero() {
            let deadline = Instant::now() + limits.linger;
            loop {
                let mut notified = pin!(self.notify.notified());
                notified.as_mut().enable();
                {
                    let mut st = self.lock();
                    let stopped = taken.fill(&mut st.ready, limits);
                    if stopped || st.closed {
                        break;
                    }
                }
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep_until(deadline) => {
                        let mut st = self.lock();
                        taken.fill(&mut st.ready, limits);
                        break;
                    }
                }
            }
        }
        let entries = std::mem::take(&mut taken.entries);
        let mut st = self.lock();
        let id = st.next_lease;
        st.next_lease += 1;
        st.leased.insert(id, entries.clone());
        Some((id, entries))
    }
}

/// Entries taken by a pop that has not finished; put back in front if the pop is
/// cancelled (dropped) while lingering.
struct Taken<'a, E: LeaseEntry + Clone> {
    core: &'a LeaseCore<E>,
    entries: Vec<E>,
    items: u64,
    bytes: usize,
}

impl<E: LeaseEntry + Clone> Taken<'_, E> {
    fn add(&mut self, e: E) {
        self.items += e.entry_items();
        self.bytes += e.entry_bytes();
        self.entries.push(e);
    }

    fn is_full(&self, limits: PopLimits) -> bool {
        self.items >= limits.max_items || self.bytes >= limits.max_bytes
    }

    /// Take ready entries while they fit; `true` once the lease cannot grow any more
    /// (the limits are reached or the next entry would pass them).
    fn fill(&mut self, ready: &mut VecDeque<E>, limits: PopLimits) -> bool {
        while let Some(next) = ready.front() {
            if self.items + next.entry_items() > limits.max_items
                || self.bytes + next.entry_bytes() > limits.max_bytes
            {
                return true;
            }
            if let Some(e) = ready.pop_front() {
                self.add(e);
            }
        }
        self.is_full(limits)
    }
}

impl<E: LeaseEntry + Clone> Drop for Taken<'_, E> {
    fn drop(&mut self) {
        if self.entries.is_empty() {
            return;
        }
        let mut st = self.core.lock();
        for e in self.entries.drain(..).rev() {
            st.ready.push_front(e);
        }
        drop(st);
        self.core.notify.notify_waiters();
    }
}

/// Reserve `add` bytes under `max` (an entry is always admitted into an empty queue).
pub(crate) fn reserve(held: &AtomicU64, add: u64, max: u64) -> Result<(), u64> {
    held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
        (cur == 0 || cur.saturating_add(add) <= max).then_some(cur + add)
    })
    .map(|_| ())
}

/// A bounded in-memory queue; entries are lost when the process ends.
///
/// ```
/// use std::time::Duration;
/// use otlp_core::{Payload, Signal};
/// use otlp_gateway::pipeline::queue::{MemoryQueue, PopLimits, Queue};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let queue = MemoryQueue::new("upstream", 1 << 20, Duration::from_secs(1));
/// queue.push(Payload::new(Signal::Logs, bytes::Bytes::from_static(b"x"), 1)).await.unwrap();
/// let limits = PopLimits { max_items: 100, max_bytes: 1 << 20, linger: Duration::ZERO };
/// let lease = queue.pop(limits).await.unwrap();
/// assert_eq!(lease.entries.len(), 1);
/// queue.ack(lease);
/// assert_eq!(queue.metrics().acked.load(std::sync::atomic::Ordering::Relaxed), 1);
/// # });
/// ```
#[derive(Debug)]
pub struct MemoryQueue {
    name: String,
    max_bytes: u64,
    retry_after: Duration,
    core: LeaseCore<Payload>,
    held: AtomicU64,
    metrics: Arc<QueueMetrics>,
}

impl MemoryQueue {
    /// A queue named `name` (the route) holding at most `max_bytes` of payload; a refused
    /// push suggests retrying after `retry_after`.
    pub fn new(name: impl Into<String>, max_bytes: u64, retry_after: Duration) -> MemoryQueue {
        let name = name.into();
        MemoryQueue {
            metrics: Arc::new(QueueMetrics::new(name.clone(), "memory", max_bytes)),
            name,
            max_bytes,
            retry_after,
            core: LeaseCore::new(),
            held: AtomicU64::new(0),
        }
    }

    fn release(&self, entries: &[Payload]) {
        let bytes: u64 = entries.iter().map(|p| p.len() as u64).sum();
        self.held.fetch_sub(bytes, Ordering::AcqRel);
        self.metrics.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.metrics
            .depth
            .fetch_sub(entries.len() as u64, Ordering::Relaxed);
        self.metrics
            .acked
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
    }
}

impl Queue for MemoryQueue {
    fn push(&self, payload: Payload) -> BoxFuture<'_, Result<(), QueueError>> {
        Box::pin(async move {
            if self.core.is_closed() {
                return Err(QueueError::Closed(self.name.clone()));
            }
            let len = payload.len() as u64;
            if let Err(bytes) = reserve(&self.held, len, self.max_bytes) {
                return Err(QueueError::Full {
                    queue: self.name.clone(),
                    bytes,
                    capacity: self.max_bytes,
                    retry_after: self.retry_after,
                });
            }
            self.metrics.bytes.fetch_add(len, Ordering::Relaxed);
            self.metrics.depth.fetch_add(1, Ordering::Relaxed);
            self.metrics.pushed.fetch_add(1, Ordering::Relaxed);
            self.core.push_back([payload]);
            Ok(())
        })
    }

    fn has_room(&self, bytes: usize) -> bool {
        let held = self.held.load(Ordering::Acquire);
        !self.core.is_closed() && (held == 0 || held.saturating_add(bytes as u64) <= self.max_bytes)
    }

    fn pop(&self, limits: PopLimits) -> BoxFuture<'_, Option<Lease>> {
        Box::pin(async move {
            let (id, entries) = self.core.pop(limits).await?;
            Some(Lease { id, entries })
        })
    }

    fn ack(&self, lease: Lease) {
        match self.core.take(lease.id) {
            Some(entries) => self.release(&entries),
            None => {
                tracing::debug!(queue = %self.name, lease = lease.id, "ack of an unknown lease ignored")
            }
        }
    }

    fn nack(&self, lease: Lease) {
        if !self.core.nack(lease.id) {
            tracing::debug!(queue = %self.name, lease = lease.id, "nack of an unknown lease ignored");
        }
    }

    fn close(&self) {
        self.core.close();
    }

    fn sync(&self) -> BoxFuture<'_, Result<(), QueueError>> {
        Box::pin(async { Ok(()) })
    }

    fn metrics(&self) -> &Arc<QueueMetrics> {
        &self.metrics
    }
}
