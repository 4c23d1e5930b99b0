//! The GCRA step and the run-time changeable quota.
//!
//! governor keeps its GCRA parameters in an immutable field, so a governor limiter's quota
//! cannot change. The *state* of GCRA, though, is one number per key: the theoretical
//! arrival time (TAT), the instant at which the key's bucket is full again. That number
//! does not depend on the quota, so we keep governor's state stores
//! ([`InMemoryState`](governor::state::InMemoryState) and its keyed map) and run the GCRA
//! step ourselves against a quota that can be swapped: [`QuotaCell`], a sequence lock over
//! two atomics. Readers take no lock and write nothing (four plain loads on x86), writers
//! (a quota change, rare) serialise on the sequence number itself.
//!
//! Measured alternative: a governor `RateLimiter` per quota behind an `RwLock<Arc<_>>`
//! sharing one state store. Every check then pays a read-lock acquire and release (two
//! atomic read-modify-writes on a shared cache line); see `benches/rate_limit.rs` for the
//! numbers.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::Duration;

use governor::Quota;
use governor::nanos::Nanos;

/// GCRA parameters in nanoseconds: `t` is the emission interval (one cell replenishes every
/// `t`), `tau` the burst tolerance (`t * (burst - 1)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) t: u64,
    pub(crate) tau: u64,
}

impl Params {
    pub(crate) fn from_quota(quota: Quota) -> Params {
        let t = duration_nanos(quota.replenish_interval()).max(1);
        let tau = t.saturating_mul(u64::from(quota.burst_size().get() - 1));
        Params { t, tau }
    }

    /// The quota these parameters came from (`tau` is always a multiple of `t`).
    pub(crate) fn quota(self) -> Quota {
        let burst = u32::try_from(1 + self.tau / self.t).unwrap_or(u32::MAX);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        match Quota::with_period(Duration::from_nanos(self.t)) {
            Some(q) => q.allow_burst(burst),
            // t >= 1 by construction; keep a valid quota regardless.
            None => Quota::per_second(NonZeroU32::MAX).allow_burst(burst),
        }
    }
}

/// Saturating conversion: a `Duration` longer than 584 years becomes `u64::MAX` nanoseconds.
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A quota that can be read without locks while another thread replaces it.
#[derive(Debug)]
pub(crate) struct QuotaCell {
    /// Even: stable; odd: a write is in progress.
    seq: AtomicU64,
    t: AtomicU64,
    tau: AtomicU64,
}

impl QuotaCell {
    pub(crate) fn new(quota: Quota) -> QuotaCell {
        let p = Params::from_quota(quota);
        QuotaCell {
            seq: AtomicU64::new(0),
            t: AtomicU64::new(p.t),
            tau: AtomicU64::new(p.tau),
        }
    }

    /// The current parameters, never a mix of an old and a new quota.
    #[inline]
    pub(crate) fn load(&self) -> Params {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            let t = self.t.load(Ordering::Relaxed);
            let tau = self.tau.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            let s2 = self.seq.load(Ordering::Relaxed);
            if s1 == s2 && s1 & 1 == 0 {
                return Params { t, tau };
            }
            std::hint::spin_loop();
        }
    }

    /// The quota as last set.
    pub(crate) fn quota(&self) -> Quota {
        self.load().quota()
    }

    /// Replaces the quota. Readers that started before see the old parameters, readers
    /// after see the new ones; none sees a mix.
    pub(crate) fn store(&self, quota: Quota) {
        let p = Params::from_quota(quota);
        // Take the write side: move the sequence from even to odd.
        let s = loop {
            let s = self.seq.load(Ordering::Relaxed);
            if s & 1 == 0
                && self
                    .seq
                    .compare_exchange_weak(
                        s,
                        s.wrapping_add(1),
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                break s;
            }
            std::hint::spin_loop();
        };
        fence(Ordering::Release);
        self.t.store(p.t, Ordering::Relaxed);
        self.tau.store(p.tau, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }
}

/// Keeps a contended atomic on cache lines of its own (128 bytes: x86 prefetches lines in
/// pairs), so threads that only read the quota and clock fields next to it do not suffer
/// when another thread's compare-and-swap takes the line.
#[repr(align(128))]
#[derive(Debug, Default)]
pub(crate) struct Padded<T>(pub(crate) T);

/// What one GCRA step decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Admitted; the caller may go after this many nanoseconds (0: at once). A non-zero
    /// wait is a reservation: the cell is already taken.
    Admit { wait: u64 },
    /// Not admitted; the request would conform in this many nanoseconds.
    Reject { retry_after: u64 },
}

/// One GCRA step: given the stored TAT (`None`: never seen or evicted, equivalent to a
/// full bucket), the current time and the parameters, decide and return the new TAT.
///
/// `max_wait` turns GCRA into a bounded queue: a request that would conform within
/// `max_wait` is admitted with a reservation (the TAT moves forward now) and told how long
/// to wait, so concurrent waiters never race for the same cell.
#[inline]
pub(crate) fn step(
    tat: Option<Nanos>,
    now: u64,
    p: Params,
    max_wait: u64,
) -> Result<(Decision, Nanos), Decision> {
    let tat = tat.map_or(now, Nanos::as_u64);
    let earliest = tat.saturating_sub(p.tau);
    if now >= earliest {
        let next = tat.max(now).saturating_add(p.t);
        return Ok((Decision::Admit { wait: 0 }, Nanos::new(next)));
    }
    let wait = earliest - now;
    if wait <= max_wait {
        // tat > now here, so max(tat, now) = tat.
        Ok((
            Decision::Admit { wait },
            Nanos::new(tat.saturating_add(p.t)),
        ))
    } else {
        Err(Decision::Reject { retry_after: wait })
    }
}

/// Runs [`step`] on one governor state cell (compare-and-swap loop inside governor).
#[inline]
pub(crate) fn step_state(
    state: &governor::state::InMemoryState,
    now: u64,
    p: Params,
    max_wait: u64,
) -> Decision {
    use governor::state::{NotKeyed, StateStore};
    match state.measure_and_replace(&NotKeyed::NonKey, |tat| step(tat, now, p, max_wait)) {
        Ok(d) | Err(d) => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(per_sec: u32, burst: u32) -> Quota {
        Quota::per_second(NonZeroU32::new(per_sec).expect("non-zero"))
            .allow_burst(NonZeroU32::new(burst).expect("non-zero"))
    }

    #[test]
    fn params_follow_quota() {
        let p = Params::from_quota(quota(10, 5));
        assert_eq!(p.t, 100_000_000);
        assert_eq!(p.tau, 400_000_000);
        let p = Params::from_quota(quota(10, 1));
        assert_eq!(p.tau, 0);
    }

    #[test]
    fn step_admits_burst_then_rejects_with_exact_retry_after() {
        let p = Params::from_quota(quota(10, 3));
        let mut tat = None;
        for _ in 0..3 {
            let (d, next) = step(tat, 0, p, 0).expect("within burst");
            assert_eq!(d, Decision::Admit { wait: 0 });
            tat = Some(next);
        }
        assert_eq!(
            step(tat, 0, p, 0).err(),
            Some(Decision::Reject {
                retry_after: 100_000_000
            })
        );
        // Exactly at the retry time it conforms.
        assert!(step(tat, 100_000_000, p, 0).is_ok());
    }

    #[test]
    fn step_reserves_within_max_wait() {
        let p = Params::from_quota(quota(10, 1));
        let (_, tat) = step(None, 0, p, 0).expect("first");
        let (d, tat2) = step(Some(tat), 0, p, 150_000_000).expect("reserved");
        assert_eq!(d, Decision::Admit { wait: 100_000_000 });
        // The next one would wait 200 ms: beyond the bound.
        assert_eq!(
            step(Some(tat2), 0, p, 150_000_000).err(),
            Some(Decision::Reject {
                retry_after: 200_000_000
            })
        );
    }

    #[test]
    fn params_round_trip_to_quota() {
        for q in [quota(10, 5), quota(1, 1), quota(1000, 64), quota(3, 7)] {
            assert_eq!(Params::from_quota(q).quota(), q);
        }
    }

    #[test]
    fn quota_cell_swaps_whole_parameters() {
        let cell = QuotaCell::new(quota(10, 5));
        cell.store(quota(1000, 1));
        assert_eq!(cell.load(), Params::from_quota(quota(1000, 1)));
        assert_eq!(cell.quota(), quota(1000, 1));
    }

    #[test]
    fn quota_cell_readers_never_see_a_mix() {
        let cell = std::sync::Arc::new(QuotaCell::new(quota(10, 5)));
        let a = Params::from_quota(quota(10, 5));
        let b = Params::from_quota(quota(1000, 2));
        let writer = {
            let cell = cell.clone();
            std::thread::spawn(move || {
                for i in 0..20_000 {
                    cell.store(if i % 2 == 0 {
                        quota(1000, 2)
                    } else {
                        quota(10, 5)
                    });
                }
            })
        };
        for _ in 0..200_000 {
            let p = cell.load();
            assert!(p == a || p == b, "torn read {p:?}");
        }
        writer.join().expect("writer");
    }
}
