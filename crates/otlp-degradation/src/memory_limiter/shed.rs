//! How the memory limiter asks the pipeline to drop work above the hard threshold.

use std::fmt;

/// Something holding data that can be dropped to free memory: the gateway's queues.
///
/// Called when memory passes the hard threshold and again at every check while it stays
/// above. Implementations drop their lowest-priority work first (e.g. the oldest
/// non-error batches), count what they dropped as data lost to the memory limit, and
/// return quickly: the call runs on the task that noticed the pressure, possibly one
/// admitting a request.
pub trait Shed: Send + Sync {
    /// Drop about `bytes` bytes of held data, lowest priority first; the bytes actually
    /// dropped (0 when there was nothing left to drop).
    fn shed(&self, bytes: u64) -> u64;
}

/// A [`Shed`] from a closure `Fn(bytes) -> bytes_dropped`.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use otlp_degradation::memory_limiter::{Shed, ShedFn};
///
/// let held = AtomicU64::new(1_000);
/// let shed = ShedFn(|bytes: u64| {
///     let drop = bytes.min(held.load(Ordering::Relaxed));
///     held.fetch_sub(drop, Ordering::Relaxed);
///     drop
/// });
/// assert_eq!(shed.shed(300), 300);
/// assert_eq!(shed.shed(5_000), 700);
/// ```
pub struct ShedFn<F>(pub F);

impl<F: Fn(u64) -> u64 + Send + Sync> Shed for ShedFn<F> {
    fn shed(&self, bytes: u64) -> u64 {
        (self.0)(bytes)
    }
}

impl<F> fmt::Debug for ShedFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShedFn")
    }
}

impl<S: Shed + ?Sized> Shed for std::sync::Arc<S> {
    fn shed(&self, bytes: u64) -> u64 {
        (**self).shed(bytes)
    }
}
