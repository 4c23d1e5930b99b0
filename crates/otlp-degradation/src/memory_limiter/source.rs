//! Where the memory limiter gets its readings.

use std::sync::{Mutex, PoisonError};

use crate::resources::{LimitSource, MemoryLimit, MemoryReading, ResourceError, Resources};

/// Something that reports how much memory is used and what the limit is.
///
/// [`Resources`] is the real one (`/proc` and cgroup v2); [`ScriptedMemory`] returns
/// what a test sets, so tests need no real memory growth.
pub trait MemorySource: Send + Sync + 'static {
    /// A reading now. Called from the check interval's task: it should take microseconds,
    /// not block on anything slow.
    ///
    /// # Errors
    ///
    /// When memory use cannot be read; the limiter then keeps its last reading.
    fn read(&self) -> Result<MemoryReading, ResourceError>;
}

impl MemorySource for Resources {
    fn read(&self) -> Result<MemoryReading, ResourceError> {
        self.memory()
    }
}

/// A [`MemorySource`] that returns what it was last told, for tests and for callers that
/// measure memory themselves.
///
/// ```
/// use otlp_degradation::memory_limiter::{MemorySource, ScriptedMemory};
///
/// let memory = ScriptedMemory::new(100, 1_000);
/// memory.set_used(850);
/// let reading = memory.read().unwrap();
/// assert_eq!((reading.used_bytes(), reading.limit.bytes), (850, 1_000));
/// ```
#[derive(Debug)]
pub struct ScriptedMemory {
    reading: Mutex<Result<MemoryReading, String>>,
}

impl ScriptedMemory {
    /// `used` bytes of a cgroup limit of `limit` bytes.
    pub fn new(used: u64, limit: u64) -> ScriptedMemory {
        ScriptedMemory {
            reading: Mutex::new(Ok(reading(used, limit))),
        }
    }

    /// Report `used` bytes from now on (same limit).
    pub fn set_used(&self, used: u64) {
        let mut slot = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        let limit = slot.as_ref().map_or(0, |r| r.limit.bytes);
        *slot = Ok(reading(used, limit));
    }

    /// Report exactly `reading` from now on.
    pub fn set(&self, reading: MemoryReading) {
        *self.reading.lock().unwrap_or_else(PoisonError::into_inner) = Ok(reading);
    }

    /// Fail every read with `reason` until the next `set`/`set_used`.
    pub fn fail(&self, reason: impl Into<String>) {
        *self.reading.lock().unwrap_or_else(PoisonError::into_inner) = Err(reason.into());
    }
}

fn reading(used: u64, limit: u64) -> MemoryReading {
    MemoryReading {
        rss_bytes: used,
        cgroup_bytes: Some(used),
        limit: MemoryLimit {
            bytes: limit,
            source: LimitSource::Cgroup,
        },
    }
}

impl MemorySource for ScriptedMemory {
    fn read(&self) -> Result<MemoryReading, ResourceError> {
        match &*self.reading.lock().unwrap_or_else(PoisonError::into_inner) {
            Ok(reading) => Ok(*reading),
            Err(reason) => Err(ResourceError::Parse {
                path: "scripted".into(),
                reason: reason.clone(),
            }),
        }
    }
}

impl<S: MemorySource> MemorySource for std::sync::Arc<S> {
    fn read(&self) -> Result<MemoryReading, ResourceError> {
        (**self).read()
    }
}
