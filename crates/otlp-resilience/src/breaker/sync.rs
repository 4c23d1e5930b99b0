//! The atomics the breaker's state machine and window are built on.
//!
//! The breaker's internals are generic over [`AtomicCell`] so that the very same code
//! can be model-checked with `loom`'s atomics (`tests/breaker_loom.rs` implements the
//! trait for `loom::sync::atomic::AtomicU64`); the public types use
//! `std::sync::atomic::AtomicU64`, and the generics compile away.

pub(crate) use std::sync::atomic::Ordering;

/// A 64-bit atomic cell: `std`'s `AtomicU64`, or a model checker's.
pub trait AtomicCell: Send + Sync + 'static {
    /// A cell holding `value`.
    fn new(value: u64) -> Self;
    /// Atomic load.
    fn load(&self, order: Ordering) -> u64;
    /// Atomic store.
    fn store(&self, value: u64, order: Ordering);
    /// Atomic add, returning the previous value.
    fn fetch_add(&self, value: u64, order: Ordering) -> u64;
    /// Atomic compare-and-exchange (strong).
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
    /// Lets another thread run while this one waits for a transition to finish (a few
    /// straight-line instructions). Only operator actions ever wait.
    fn spin() {
        std::thread::yield_now();
    }
}

impl AtomicCell for std::sync::atomic::AtomicU64 {
    #[inline]
    fn new(value: u64) -> Self {
        std::sync::atomic::AtomicU64::new(value)
    }

    #[inline]
    fn load(&self, order: Ordering) -> u64 {
        std::sync::atomic::AtomicU64::load(self, order)
    }

    #[inline]
    fn store(&self, value: u64, order: Ordering) {
        std::sync::atomic::AtomicU64::store(self, value, order);
    }

    #[inline]
    fn fetch_add(&self, value: u64, order: Ordering) -> u64 {
        std::sync::atomic::AtomicU64::fetch_add(self, value, order)
    }

    #[inline]
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        std::sync::atomic::AtomicU64::compare_exchange(self, current, new, success, failure)
    }
}

/// Keeps a value on its own cache line(s) so writes to its neighbours do not slow down
/// readers of it (128 bytes: x86 prefetches cache lines in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}
