//! Memory limiter: refuse new data before memory runs out, and shed queued data when it
//! nearly has.
//!
//! A [`MemoryLimiter`] compares memory use with two thresholds ([`MemoryLimiterConfig`]):
//!
//! | pressure | memory use | new data | held data |
//! |---|---|---|---|
//! | [`MemoryPressure::Normal`] | below soft | admitted | kept |
//! | [`MemoryPressure::Soft`] | soft ..< hard | refused: [`Refusal::Throttled`] (429 / RESOURCE_EXHAUSTED + `RetryInfo`) | kept |
//! | [`MemoryPressure::Hard`] | hard and above | refused: [`Refusal::Unavailable`] (503 / UNAVAILABLE) | [`Shed`] hooks drop lowest priority first |
//!
//! Both refusals are retryable and carry a retry delay, so clients back off instead of
//! losing data. Thresholds are bytes or shares of the memory limit: cgroup v2
//! `memory.max` in a container, the host's memory outside one (see
//! [`crate::resources`]); defaults 80 % and 90 %, the margin to the limit explained at
//! [`MemoryLimiterConfig`].
//!
//! Memory is read every [`MemoryLimiterConfig::check_interval`] by a task
//! ([`MemoryLimiter::spawn_monitor`]) into atomics. Admission ([`MemoryLimiter::admit`])
//! reads those atomics and adds the bytes admitted since the last reading (tracked by the
//! [`MemoryPermit`] each admission returns), so a burst between two readings is counted
//! before it is allocated rather than one interval later. Admission never reads files and
//! never locks.
//!
//! ```
//! use std::sync::Arc;
//! use otlp_degradation::memory_limiter::{
//!     MemoryLimiter, MemoryLimiterConfig, MemoryPressure, ScriptedMemory, Threshold,
//! };
//!
//! let memory = Arc::new(ScriptedMemory::new(500, 1_000)); // 500 of 1000 bytes used
//! let limiter = MemoryLimiter::new(MemoryLimiterConfig::default(), memory.clone())?;
//! assert_eq!(limiter.snapshot().soft_bytes, 800);
//!
//! let permit = limiter.admit(200).expect("500 + 200 is below 800");
//! assert!(limiter.admit(200).is_err(), "500 + 200 in flight + 200 would pass soft");
//! drop(permit); // the request is done
//! assert!(limiter.admit(200).is_ok());
//!
//! memory.set_used(950);
//! limiter.refresh();
//! assert_eq!(limiter.pressure(), MemoryPressure::Hard);
//! # Ok::<(), otlp_degradation::memory_limiter::MemoryLimiterError>(())
//! ```

mod config;
mod shed;
mod sink;
mod source;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use otlp_core::Refusal;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::resources::{LimitSource, ResourceError};

pub use config::{MemoryLimiterConfig, MemoryLimiterError, Threshold};
pub use shed::{Shed, ShedFn};
pub use sink::MemoryLimitedSink;
pub use source::{MemorySource, ScriptedMemory};

/// How close memory use is to the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum MemoryPressure {
    /// Below the soft threshold: data is admitted.
    #[default]
    Normal = 0,
    /// At or above soft, below hard: new data is throttled.
    Soft = 1,
    /// At or above hard: new data is refused and queued data shed.
    Hard = 2,
}

impl MemoryPressure {
    /// Lower-case name for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            MemoryPressure::Normal => "normal",
            MemoryPressure::Soft => "soft",
            MemoryPressure::Hard => "hard",
        }
    }

    fn from_u8(value: u8) -> MemoryPressure {
        match value {
            0 => MemoryPressure::Normal,
            1 => MemoryPressure::Soft,
            _ => MemoryPressure::Hard,
        }
    }
}

impl fmt::Display for MemoryPressure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A copy of a limiter's state and counters. Counters only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimiterSnapshot {
    /// Pressure now (from the last reading plus growth admitted since).
    pub pressure: MemoryPressure,
    /// Memory used at the last reading.
    pub used_bytes: u64,
    /// Bytes held by admitted requests that have not finished.
    pub in_flight_bytes: u64,
    /// What admission compares with the thresholds: `used_bytes` plus the growth of
    /// `in_flight_bytes` since the last reading.
    pub estimated_bytes: u64,
    /// The memory limit at the last reading.
    pub limit_bytes: u64,
    /// Where the limit comes from.
    pub limit_source: LimitSource,
    /// Soft threshold in bytes.
    pub soft_bytes: u64,
    /// Hard threshold in bytes.
    pub hard_bytes: u64,
    /// Highest memory use seen by a reading.
    pub peak_used_bytes: u64,
    /// Requests admitted.
    pub admitted: u64,
    /// Bytes admitted.
    pub admitted_bytes: u64,
    /// Requests refused above soft (throttled).
    pub refused_soft: u64,
    /// Requests refused above hard (unavailable).
    pub refused_hard: u64,
    /// Times a [`Shed`] hook was asked to drop data.
    pub shed_calls: u64,
    /// Bytes the hooks reported dropping.
    pub shed_bytes: u64,
    /// Successful readings.
    pub readings: u64,
    /// Failed readings (the last good one stays in use).
    pub read_errors: u64,
    /// Changes of pressure.
    pub transitions: u64,
}

struct Shared {
    config: MemoryLimiterConfig,
    source: Box<dyn MemorySource>,
    sheds: Mutex<Vec<Arc<dyn Shed>>>,
    /// Set while hooks run, so the monitor and an admitting task never shed twice for
    /// the same excess.
    shedding: AtomicBool,

    used: AtomicU64,
    in_flight: AtomicU64,
    /// `in_flight` when `used` was read: that much was already in memory then, so only
    /// in-flight growth beyond it is added to the reading.
    in_flight_at_reading: AtomicU64,
    limit: AtomicU64,
    limit_source: AtomicU8,
    soft: AtomicU64,
    hard: AtomicU64,
    /// The pressure last announced by an event.
    reported: AtomicU8,
    reading_failed: AtomicBool,

    peak_used: AtomicU64,
    admitted: AtomicU64,
    admitted_bytes: AtomicU64,
    refused_soft: AtomicU64,
    refused_hard: AtomicU64,
    shed_calls: AtomicU64,
    shed_bytes: AtomicU64,
    readings: AtomicU64,
    read_errors: AtomicU64,
    transitions: AtomicU64,
}

/// Refuses new data above a soft memory threshold and sheds held data above a hard one;
/// see the [module documentation](self). Cheap to clone: clones share one state.
#[derive(Clone)]
pub struct MemoryLimiter {
    shared: Arc<Shared>,
}

impl fmt::Debug for MemoryLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLimiter")
            .field("config", &self.shared.config)
            .field("pressure", &self.pressure())
            .finish_non_exhaustive()
    }
}

/// Memory admitted for one request; dropping it returns the bytes (call it when the
/// request's data has been handed on or discarded).
#[must_use = "dropping the permit at once releases the admitted bytes"]
pub struct MemoryPermit {
    shared: Arc<Shared>,
    bytes: u64,
}

impl MemoryPermit {
    /// The bytes this permit holds.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl fmt::Debug for MemoryPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPermit")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Drop for MemoryPermit {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(self.bytes, Relaxed);
    }
}

fn limit_source_from_u8(value: u8) -> LimitSource {
    if value == 0 {
        LimitSource::Cgroup
    } else {
        LimitSource::Host
    }
}

fn limit_source_to_u8(source: LimitSource) -> u8 {
    match source {
        LimitSource::Cgroup => 0,
        LimitSource::Host => 1,
    }
}

impl MemoryLimiter {
    /// A limiter reading `source` (usually [`Resources::detect()`](crate::resources::Resources::detect)).
    /// Takes a first reading now, so the thresholds are known and checked before any data
    /// arrives; call [`spawn_monitor`](Self::spawn_monitor) to keep reading.
    ///
    /// # Errors
    ///
    /// An invalid configuration, soft not below hard or hard above the limit at the first
    /// reading, or a first reading that failed.
    pub fn new(
        config: MemoryLimiterConfig,
        source: impl MemorySource,
    ) -> Result<MemoryLimiter, MemoryLimiterError> {
        config.validate()?;
        let reading = source.read()?;
        let (soft, hard) = config.resolve(reading.limit.bytes, reading.limit.source)?;
        let used = reading.used_bytes();
        let limiter = MemoryLimiter {
            shared: Arc::new(Shared {
                config,
                source: Box::new(source),
                sheds: Mutex::new(Vec::new()),
                shedding: AtomicBool::new(false),
                used: AtomicU64::new(used),
                in_flight: AtomicU64::new(0),
                in_flight_at_reading: AtomicU64::new(0),
                limit: AtomicU64::new(reading.limit.bytes),
                limit_source: AtomicU8::new(limit_source_to_u8(reading.limit.source)),
                soft: AtomicU64::new(soft),
                hard: AtomicU64::new(hard),
                reported: AtomicU8::new(MemoryPressure::Normal as u8),
                reading_failed: AtomicBool::new(false),
                peak_used: AtomicU64::new(used),
                admitted: AtomicU64::new(0),
                admitted_bytes: AtomicU64::new(0),
                refused_soft: AtomicU64::new(0),
                refused_hard: AtomicU64::new(0),
                shed_calls: AtomicU64::new(0),
                shed_bytes: AtomicU64::new(0),
                readings: AtomicU64::new(1),
                read_errors: AtomicU64::new(0),
                transitions: AtomicU64::new(0),
            }),
        };
        tracing::info!(
            target: "otlp_degradation::memory_limiter",
            used_bytes = used,
            limit_bytes = reading.limit.bytes,
            limit_source = ?reading.limit.source,
            soft_bytes = soft,
            hard_bytes = hard,
            "memory limiter started"
        );
        limiter.shared.observe();
        Ok(limiter)
    }

    /// Add a hook that drops held data above the hard threshold. Hooks are asked in the
    /// order they were added, each for what the ones before it did not free: add the
    /// queue holding the least valuable data first.
    pub fn add_shed(&self, shed: impl Shed + 'static) {
        self.shared
            .sheds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(shed));
    }

    /// The configuration.
    pub fn config(&self) -> &MemoryLimiterConfig {
        &self.shared.config
    }

    /// Pressure now: the last reading plus growth admitted since (lock-free, a few
    /// atomic loads).
    pub fn pressure(&self) -> MemoryPressure {
        self.shared.level_of(self.shared.estimate())
    }

    /// Whether new data would be admitted now, without reserving any bytes (for a
    /// receiver that does not know a request's size yet). A refusal is counted; a pass
    /// is not counted as an admission.
    ///
    /// # Errors
    ///
    /// The refusal to send the client: [`Refusal::Throttled`] above soft,
    /// [`Refusal::Unavailable`] above hard, each with its retry delay.
    pub fn check(&self) -> Result<(), Refusal> {
        let shared = &self.shared;
        let estimate = shared.estimate();
        let level = shared.level_of(estimate);
        if shared.report(level) && level == MemoryPressure::Hard {
            shared.shed();
        }
        match level {
            MemoryPressure::Normal => Ok(()),
            _ => Err(shared.refusal(level, estimate)),
        }
    }

    /// Admit a request holding `bytes` bytes: reserve them until the returned permit is
    /// dropped. Refused when memory use plus these bytes would reach the soft threshold.
    /// Lock-free: a few atomic operations.
    ///
    /// # Errors
    ///
    /// [`Refusal::Throttled`] when the request would take memory use to soft or beyond,
    /// [`Refusal::Unavailable`] when to hard or beyond; each with the configured retry
    /// delay and counted in the [snapshot](Self::snapshot).
    pub fn admit(&self, bytes: u64) -> Result<MemoryPermit, Refusal> {
        let shared = &self.shared;
        // Reserve first, then check: concurrent admissions each see the others' bytes, so
        // they cannot all slip under the threshold together.
        let before = shared.in_flight.fetch_add(bytes, Relaxed);
        let with = shared.estimate_with_in_flight(before.saturating_add(bytes));
        let level = shared.level_of(with);
        if level == MemoryPressure::Normal {
            shared.report(level);
            shared.admitted.fetch_add(1, Relaxed);
            shared.admitted_bytes.fetch_add(bytes, Relaxed);
            return Ok(MemoryPermit {
                shared: Arc::clone(shared),
                bytes,
            });
        }
        shared.in_flight.fetch_sub(bytes, Relaxed);
        // The announced pressure reflects what is held, not the refused request.
        shared.observe();
        Err(shared.refusal(level, with))
    }

    /// Read memory now (what the monitor task does every interval): updates the
    /// thresholds if the limit changed, announces a change of pressure, and above hard
    /// asks the [`Shed`] hooks to drop data. The pressure after the reading.
    pub fn refresh(&self) -> MemoryPressure {
        self.shared.refresh()
    }

    /// Spawn the task that calls [`refresh`](Self::refresh) every
    /// [`MemoryLimiterConfig::check_interval`] (the first at once). It ends when the last
    /// clone of this limiter (and every permit) is dropped, or when aborted.
    ///
    /// Readings are small reads of `/proc` and cgroup files, done on the runtime thread:
    /// microseconds, cheaper than handing them to a blocking thread.
    pub fn spawn_monitor(&self) -> JoinHandle<()> {
        let weak = Arc::downgrade(&self.shared);
        let period = self.shared.config.check_interval;
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(shared) = weak.upgrade() else {
                    break;
                };
                shared.refresh();
            }
        })
    }

    /// A copy of the state and counters.
    pub fn snapshot(&self) -> MemoryLimiterSnapshot {
        let s = &self.shared;
        let estimated_bytes = s.estimate();
        MemoryLimiterSnapshot {
            pressure: s.level_of(estimated_bytes),
            used_bytes: s.used.load(Relaxed),
            in_flight_bytes: s.in_flight.load(Relaxed),
            estimated_bytes,
            limit_bytes: s.limit.load(Relaxed),
            limit_source: limit_source_from_u8(s.limit_source.load(Relaxed)),
            soft_bytes: s.soft.load(Relaxed),
            hard_bytes: s.hard.load(Relaxed),
            peak_used_bytes: s.peak_used.load(Relaxed),
            admitted: s.admitted.load(Relaxed),
            admitted_bytes: s.admitted_bytes.load(Relaxed),
            refused_soft: s.refused_soft.load(Relaxed),
            refused_hard: s.refused_hard.load(Relaxed),
            shed_calls: s.shed_calls.load(Relaxed),
            shed_bytes: s.shed_bytes.load(Relaxed),
            readings: s.readings.load(Relaxed),
            read_errors: s.read_errors.load(Relaxed),
            transitions: s.transitions.load(Relaxed),
        }
    }
}

/// Clears the shedding flag even if a hook panics.
struct ShedGuard<'a>(&'a AtomicBool);

impl Drop for ShedGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Relaxed);
    }
}

impl Shared {
    fn estimate(&self) -> u64 {
        self.estimate_with_in_flight(self.in_flight.load(Relaxed))
    }

    fn estimate_with_in_flight(&self, in_flight: u64) -> u64 {
        let growth = in_flight.saturating_sub(self.in_flight_at_reading.load(Relaxed));
        self.used.load(Relaxed).saturating_add(growth)
    }

    fn level_of(&self, bytes: u64) -> MemoryPressure {
        if bytes >= self.hard.load(Relaxed) {
            MemoryPressure::Hard
        } else if bytes >= self.soft.load(Relaxed) {
            MemoryPressure::Soft
        } else {
            MemoryPressure::Normal
        }
    }

    /// Announce the current pressure; shed when it has just become hard.
    fn observe(&self) -> MemoryPressure {
        let level = self.level_of(self.estimate());
        if self.report(level) && level == MemoryPressure::Hard {
            self.shed();
        }
        level
    }

    /// Record `level` as the announced pressure; `true` when it changed.
    fn report(&self, level: MemoryPressure) -> bool {
        // A plain load first: the hot path (admission at Normal) then never writes.
        if self.reported.load(Relaxed) == level as u8 {
            return false;
        }
        let previous = MemoryPressure::from_u8(self.reported.swap(level as u8, Relaxed));
        if previous == level {
            return false;
        }
        self.transitions.fetch_add(1, Relaxed);
        let used_bytes = self.used.load(Relaxed);
        let estimated_bytes = self.estimate();
        let soft_bytes = self.soft.load(Relaxed);
        let hard_bytes = self.hard.load(Relaxed);
        let limit_bytes = self.limit.load(Relaxed);
        if level > previous {
            tracing::warn!(
                target: "otlp_degradation::memory_limiter",
                from = previous.as_str(),
                to = level.as_str(),
                used_bytes,
                estimated_bytes,
                soft_bytes,
                hard_bytes,
                limit_bytes,
                "memory pressure rose to {level}: {}",
                match level {
                    MemoryPressure::Hard => "refusing new data and shedding queued data",
                    _ => "throttling new data",
                }
            );
        } else {
            tracing::info!(
                target: "otlp_degradation::memory_limiter",
                from = previous.as_str(),
                to = level.as_str(),
                used_bytes,
                estimated_bytes,
                soft_bytes,
                hard_bytes,
                limit_bytes,
                "memory pressure fell to {level}"
            );
        }
        true
    }

    fn refusal(&self, level: MemoryPressure, estimate: u64) -> Refusal {
        let limit = self.limit.load(Relaxed);
        let source = match limit_source_from_u8(self.limit_source.load(Relaxed)) {
            LimitSource::Cgroup => "cgroup",
            LimitSource::Host => "host",
        };
        match level {
            MemoryPressure::Hard => {
                self.refused_hard.fetch_add(1, Relaxed);
                Refusal::Unavailable {
                    reason: format!(
                        "memory use {estimate} bytes would reach the hard limit of {} bytes ({source} limit {limit} bytes); shedding queued data",
                        self.hard.load(Relaxed)
                    ),
                    retry_after: self.config.hard_retry_after,
                }
            }
            _ => {
                self.refused_soft.fetch_add(1, Relaxed);
                Refusal::Throttled {
                    reason: format!(
                        "memory use {estimate} bytes would reach the soft limit of {} bytes ({source} limit {limit} bytes)",
                        self.soft.load(Relaxed)
                    ),
                    retry_after: self.config.retry_after,
                }
            }
        }
    }

    fn refresh(&self) -> MemoryPressure {
        // Read in-flight before memory: what is admitted in between then counts as growth
        // on top of a reading that may already include it (counted twice, never missed).
        let in_flight = self.in_flight.load(Relaxed);
        match self.source.read() {
            Ok(reading) => {
                let used = reading.used_bytes();
                let limit = reading.limit.bytes;
                if limit != self.limit.load(Relaxed)
                    || limit_source_to_u8(reading.limit.source) != self.limit_source.load(Relaxed)
                {
                    self.set_limit(limit, reading.limit.source);
                }
                self.used.store(used, Relaxed);
                self.in_flight_at_reading.store(in_flight, Relaxed);
                self.peak_used.fetch_max(used, Relaxed);
                self.readings.fetch_add(1, Relaxed);
                if self.reading_failed.swap(false, Relaxed) {
                    tracing::info!(
                        target: "otlp_degradation::memory_limiter",
                        used_bytes = used,
                        "memory readings work again"
                    );
                }
            }
            Err(error) => {
                self.read_errors.fetch_add(1, Relaxed);
                if !self.reading_failed.swap(true, Relaxed) {
                    self.warn_read_failed(&error);
                }
            }
        }
        let level = self.level_of(self.estimate());
        self.report(level);
        // Above hard, shed on every reading until memory is back under it: what the hooks
        // freed last time may not have been enough.
        if level == MemoryPressure::Hard {
            self.shed();
        }
        level
    }

    fn warn_read_failed(&self, error: &ResourceError) {
        tracing::warn!(
            target: "otlp_degradation::memory_limiter",
            %error,
            used_bytes = self.used.load(Relaxed),
            "cannot read memory use; keeping the last reading until it can"
        );
    }

    /// New thresholds for a changed limit (a container resized in place). A limit that
    /// makes the configuration impossible (hard above it, soft not below hard) is
    /// announced and the thresholds are clamped under it rather than ignoring the limit.
    fn set_limit(&self, limit: u64, source: LimitSource) {
        let (soft, hard) = match self.config.resolve(limit, source) {
            Ok(thresholds) => thresholds,
            Err(error) => {
                let hard = self.config.hard.resolve(limit).min(limit);
                let soft = self.config.soft.resolve(limit).min(hard.saturating_sub(1));
                tracing::warn!(
                    target: "otlp_degradation::memory_limiter",
                    %error,
                    soft_bytes = soft,
                    hard_bytes = hard,
                    "the memory limit changed under the configured thresholds; clamping them"
                );
                (soft, hard)
            }
        };
        tracing::info!(
            target: "otlp_degradation::memory_limiter",
            limit_bytes = limit,
            limit_source = ?source,
            soft_bytes = soft,
            hard_bytes = hard,
            "memory limit changed"
        );
        self.limit.store(limit, Relaxed);
        self.limit_source.store(limit_source_to_u8(source), Relaxed);
        self.soft.store(soft, Relaxed);
        self.hard.store(hard, Relaxed);
    }

    /// Ask the hooks to bring memory back under soft, so data flows again once they have.
    fn shed(&self) {
        if self.shedding.swap(true, Relaxed) {
            return;
        }
        let _guard = ShedGuard(&self.shedding);
        let excess = self.estimate().saturating_sub(self.soft.load(Relaxed));
        let sheds: Vec<Arc<dyn Shed>> = self
            .sheds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut remaining = excess;
        for shed in &sheds {
            if remaining == 0 {
                break;
            }
            let freed = shed.shed(remaining);
            self.shed_calls.fetch_add(1, Relaxed);
            self.shed_bytes.fetch_add(freed, Relaxed);
            remaining = remaining.saturating_sub(freed);
        }
        tracing::warn!(
            target: "otlp_degradation::memory_limiter",
            excess_bytes = excess,
            freed_bytes = excess - remaining,
            hooks = sheds.len(),
            "memory above the hard limit: shed queued data"
        );
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}
