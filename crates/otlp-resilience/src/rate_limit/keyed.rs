//! The keyed limiter: one bucket per key (tenant, client IP, route), bounded in memory.

use std::borrow::Cow;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::Quota;
use governor::clock::{Clock, Reference};
use governor::nanos::Nanos;
use governor::state::InMemoryState;
use governor::state::keyed::{DefaultKeyedStateStore, ShrinkableKeyedStateStore};
use opentelemetry::metrics::{Meter, ObservableGauge};

use super::clock::TokioClock;
use super::error::RateLimited;
use super::gcra::{Decision, Params, QuotaCell, duration_nanos, step_state};
use super::metrics::{Metrics, default_meter};

/// What a keyed limiter does with a new key when it already tracks
/// [`max_keys`](KeyedRateLimiterBuilder::max_keys) keys and a sweep freed none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyOverflow {
    /// Untracked keys share one extra bucket with the same quota (default): memory stays
    /// bounded, established keys keep their own buckets, and a flood of new keys is limited
    /// as one client instead of being let through or locking everyone out.
    #[default]
    SharedBucket,
    /// Refuse requests of untracked keys until a sweep frees room; the refusal's
    /// `retry_after` is the time until the next sweep may run.
    Reject,
}

/// A GCRA rate limiter with one bucket per key.
///
/// Built on governor's keyed state store ([`DefaultKeyedStateStore`]: a mutex-guarded hash
/// map of atomic cells) and governor's stale-key eviction (`retain_recent`). On top of
/// governor it adds:
///
/// - a quota that can change at run time without resetting any key ([`set_quota`](Self::set_quota));
/// - bounded memory: at most `max_keys` keys, stale keys evicted every `sweep_interval`
///   (amortised on the request path, no background task) and on demand when full. A key
///   is stale when its bucket is full again: it then behaves exactly like an absent key,
///   so evicting it changes no decision;
/// - a policy for new keys when the table is full ([`KeyOverflow`]).
///
/// ```
/// use std::net::IpAddr;
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use otlp_resilience::rate_limit::{KeyedRateLimiter, Quota};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let per_ip = KeyedRateLimiter::<IpAddr>::builder(Quota::per_second(NonZeroU32::new(1).unwrap()))
///     .max_keys(10_000)
///     .sweep_interval(Duration::from_secs(30))
///     .build();
/// let a: IpAddr = "10.0.0.1".parse().unwrap();
/// let b: IpAddr = "10.0.0.2".parse().unwrap();
/// assert!(per_ip.check_key(&a).is_ok());
/// assert!(per_ip.check_key(&a).is_err()); // a is over its rate ...
/// assert!(per_ip.check_key(&b).is_ok());  // ... b is not.
/// # }
/// ```
pub struct KeyedRateLimiter<K: Hash + Eq + Clone, C: Clock = TokioClock> {
    store: DefaultKeyedStateStore<K>,
    overflow: InMemoryState,
    quota: QuotaCell,
    clock: C,
    start: C::Instant,
    max_keys: usize,
    when_full: KeyOverflow,
    sweep_interval: u64,
    /// Nanoseconds since `start` when the next periodic sweep is due.
    next_sweep: AtomicU64,
    /// Earliest time a sweep forced by a full table may run again.
    next_forced_sweep: AtomicU64,
    key_count: Arc<AtomicU64>,
    name: Cow<'static, str>,
    metrics: Metrics,
    _keys_gauge: ObservableGauge<u64>,
}

/// Default of [`KeyedRateLimiterBuilder::max_keys`].
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// Default of [`KeyedRateLimiterBuilder::sweep_interval`].
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);

impl<K: Hash + Eq + Clone> KeyedRateLimiter<K, TokioClock> {
    /// A limiter with `quota` per key and the defaults: at most [`DEFAULT_MAX_KEYS`] keys,
    /// swept every [`DEFAULT_SWEEP_INTERVAL`], new keys share a bucket when full.
    pub fn new(quota: Quota) -> KeyedRateLimiter<K, TokioClock> {
        KeyedRateLimiter::builder(quota).build()
    }

    /// A builder for the bounds, the overflow policy, the name, meter and clock.
    pub fn builder(quota: Quota) -> KeyedRateLimiterBuilder<K, TokioClock> {
        KeyedRateLimiterBuilder {
            quota,
            clock: TokioClock::default(),
            max_keys: DEFAULT_MAX_KEYS,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            when_full: KeyOverflow::default(),
            name: Cow::Borrowed("rate_limit"),
            meter: None,
            _key: std::marker::PhantomData,
        }
    }
}

/// What [`KeyedRateLimiter::decide`] found, before the key is attached.
enum Found {
    Admit(u64),
    Reject(u64, Params),
}

impl<K: Hash + Eq + Clone, C: Clock> KeyedRateLimiter<K, C> {
    #[inline]
    fn now(&self) -> u64 {
        self.clock.now().duration_since(self.start).as_u64()
    }

    /// Takes one cell of `key`'s bucket if one is free now.
    #[inline]
    pub fn check_key(&self, key: &K) -> Result<(), RateLimited<K>> {
        self.reserve_key(key, Duration::ZERO).map(|_| ())
    }

    /// Takes one cell of `key`'s bucket, waiting at most `max_wait` for it; see
    /// [`RateLimiter::reserve`](super::RateLimiter::reserve) for the booking semantics.
    #[inline]
    pub fn reserve_key(&self, key: &K, max_wait: Duration) -> Result<Duration, RateLimited<K>> {
        match self.decide(key, duration_nanos(max_wait)) {
            Found::Admit(wait) => Ok(Duration::from_nanos(wait)),
            Found::Reject(retry_after, params) => Err(RateLimited::new(
                key.clone(),
                Duration::from_nanos(retry_after),
                params,
            )),
        }
    }

    /// Waits until `key` has a free cell, at most `max_wait`; refuses at once if that is
    /// not enough.
    pub async fn until_key_ready(&self, key: &K, max_wait: Duration) -> Result<(), RateLimited<K>> {
        let wait = self.reserve_key(key, max_wait)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    fn decide(&self, key: &K, max_wait: u64) -> Found {
        let now = self.now();
        let params = self.quota.load();
        self.maybe_sweep(now);
        let decision = {
            let mut map = self.store.lock();
            if let Some(state) = map.get(key) {
                Some(step_state(state, now, params, max_wait))
            } else if map.len() < self.max_keys {
                let state = map.entry(key.clone()).or_default();
                let d = step_state(state, now, params, max_wait);
                self.key_count.store(map.len() as u64, Ordering::Relaxed);
                Some(d)
            } else {
                None
            }
        };
        let decision = match decision {
            Some(d) => d,
            None => self.decide_when_full(key, now, params, max_wait),
        };
        match decision {
            Decision::Admit { wait: 0 } => Found::Admit(0),
            Decision::Admit { wait } => {
                self.metrics.delayed();
                Found::Admit(wait)
            }
            Decision::Reject { retry_after } => {
                self.metrics.rejected();
                Found::Reject(retry_after, params)
            }
        }
    }

    #[cold]
    fn decide_when_full(&self, key: &K, now: u64, params: Params, max_wait: u64) -> Decision {
        if self.try_forced_sweep(now) {
            let mut map = self.store.lock();
            if map.len() < self.max_keys {
                let state = map.entry(key.clone()).or_default();
                let d = step_state(state, now, params, max_wait);
                self.key_count.store(map.len() as u64, Ordering::Relaxed);
                return d;
            }
            // A key may have been inserted by someone else meanwhile.
            if let Some(state) = map.get(key) {
                return step_state(state, now, params, max_wait);
            }
        }
        match self.when_full {
            KeyOverflow::SharedBucket => step_state(&self.overflow, now, params, max_wait),
            KeyOverflow::Reject => {
                let next = self.next_forced_sweep.load(Ordering::Relaxed);
                Decision::Reject {
                    retry_after: next.saturating_sub(now).max(params.t),
                }
            }
        }
    }

    /// Runs the periodic sweep if it is due; exactly one caller wins the due sweep.
    #[inline]
    fn maybe_sweep(&self, now: u64) {
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_sweep
                .compare_exchange(
                    due,
                    now.saturating_add(self.sweep_interval),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.sweep_at(now);
        }
    }

    /// A sweep because the table is full, at most once per tenth of the sweep interval so
    /// that a flood of new keys cannot make every request scan the table.
    fn try_forced_sweep(&self, now: u64) -> bool {
        let allowed = self.next_forced_sweep.load(Ordering::Relaxed);
        let gap = (self.sweep_interval / 10).max(1);
        now >= allowed
            && self
                .next_forced_sweep
                .compare_exchange(
                    allowed,
                    now.saturating_add(gap),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
            && {
                self.sweep_at(now);
                true
            }
    }

    fn sweep_at(&self, now: u64) -> usize {
        let before = self.store.len();
        // A key whose theoretical arrival time is not after now has a full bucket: it is
        // indistinguishable from an absent key.
        self.store.retain_recent(Nanos::new(now));
        let mut map = self.store.lock();
        let len = map.len();
        // Give memory back after a burst of keys has gone stale.
        if map.capacity() > 64 && map.capacity() > len.saturating_mul(4) {
            map.shrink_to_fit();
        }
        self.key_count.store(len as u64, Ordering::Relaxed);
        before.saturating_sub(len)
    }

    /// Evicts every stale key now and returns how many were evicted. The limiter also does
    /// this by itself every `sweep_interval`; call it to free memory sooner.
    pub fn sweep(&self) -> usize {
        let now = self.now();
        self.sweep_at(now)
    }

    /// Replaces the quota of every key. No key loses its state: what a key has used of
    /// its burst still counts against the new quota.
    pub fn set_quota(&self, quota: Quota) {
        self.quota.store(quota);
    }

    /// The quota in force.
    pub fn quota(&self) -> Quota {
        self.quota.quota()
    }

    /// Keys tracked now (stale ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// The most keys this limiter tracks.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// The name used in metrics and logs.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<K: Hash + Eq + Clone, C: Clock> fmt::Debug for KeyedRateLimiter<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("name", &self.name)
            .field("quota", &self.quota())
            .field("keys", &self.key_count.load(Ordering::Relaxed))
            .field("max_keys", &self.max_keys)
            .field("when_full", &self.when_full)
            .finish_non_exhaustive()
    }
}

/// Builds a [`KeyedRateLimiter`].
#[must_use]
pub struct KeyedRateLimiterBuilder<K, C> {
    quota: Quota,
    clock: C,
    max_keys: usize,
    sweep_interval: Duration,
    when_full: KeyOverflow,
    name: Cow<'static, str>,
    meter: Option<Meter>,
    _key: std::marker::PhantomData<fn(K)>,
}

impl<K: Hash + Eq + Clone, C: Clock> KeyedRateLimiterBuilder<K, C> {
    /// The most keys tracked at once (default [`DEFAULT_MAX_KEYS`]; at least 1). Each key
    /// costs its own size plus about 16 bytes of map overhead and 8 of state.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// How often stale keys are evicted (default [`DEFAULT_SWEEP_INTERVAL`]). The sweep
    /// runs on the request path of whichever request comes first after the interval,
    /// and holds the map's lock for a pass over the table.
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// What to do with new keys when the table is full (default
    /// [`KeyOverflow::SharedBucket`]).
    pub fn when_full(mut self, policy: KeyOverflow) -> Self {
        self.when_full = policy;
        self
    }

    /// The `name` attribute of the metrics (default `"rate_limit"`).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The meter for the instruments (default: the global meter `otlp-resilience`).
    pub fn meter(mut self, meter: Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Another clock (default [`TokioClock`]).
    pub fn clock<C2: Clock>(self, clock: C2) -> KeyedRateLimiterBuilder<K, C2> {
        KeyedRateLimiterBuilder {
            quota: self.quota,
            clock,
            max_keys: self.max_keys,
            sweep_interval: self.sweep_interval,
            when_full: self.when_full,
            name: self.name,
            meter: self.meter,
            _key: std::marker::PhantomData,
        }
    }

    /// The limiter.
    pub fn build(self) -> KeyedRateLimiter<K, C> {
        let meter = self.meter.unwrap_or_else(default_meter);
        let metrics = Metrics::new(&meter, self.name.clone());
        let key_count = Arc::new(AtomicU64::new(0));
        let keys_gauge = metrics.keys_gauge(&meter, key_count.clone());
        let sweep_interval = duration_nanos(self.sweep_interval).max(1);
        let start = self.clock.now();
        KeyedRateLimiter {
            store: DefaultKeyedStateStore::default(),
            overflow: InMemoryState::default(),
            quota: QuotaCell::new(self.quota),
            clock: self.clock,
            start,
            max_keys: self.max_keys,
            when_full: self.when_full,
            sweep_interval,
            next_sweep: AtomicU64::new(sweep_interval),
            next_forced_sweep: AtomicU64::new(0),
            key_count,
            name: self.name,
            metrics,
            _keys_gauge: keys_gauge,
        }
    }
}

impl<K, C: fmt::Debug> fmt::Debug for KeyedRateLimiterBuilder<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiterBuilder")
            .field("quota", &self.quota)
            .field("clock", &self.clock)
            .field("max_keys", &self.max_keys)
            .field("sweep_interval", &self.sweep_interval)
            .field("when_full", &self.when_full)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;
    use tokio::time::advance;

    fn quota(per_sec: u32, burst: u32) -> Quota {
        Quota::per_second(NonZeroU32::new(per_sec).expect("non-zero"))
            .allow_burst(NonZeroU32::new(burst).expect("non-zero"))
    }

    #[tokio::test(start_paused = true)]
    async fn keys_have_independent_buckets() {
        let l = KeyedRateLimiter::<&str>::new(quota(10, 2));
        l.check_key(&"a").expect("a1");
        l.check_key(&"a").expect("a2");
        let e = l.check_key(&"a").expect_err("a over");
        assert_eq!(*e.key(), "a");
        assert_eq!(e.retry_after(), Duration::from_millis(100));
        l.check_key(&"b").expect("b unaffected");
        assert_eq!(l.len(), 2);
        advance(Duration::from_millis(100)).await;
        l.check_key(&"a").expect("a replenished");
    }

    #[tokio::test(start_paused = true)]
    async fn reserve_key_books_cells_in_order() {
        let l = KeyedRateLimiter::<u32>::new(quota(10, 1));
        assert_eq!(
            l.reserve_key(&1, Duration::from_secs(1)),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            l.reserve_key(&1, Duration::from_secs(1)),
            Ok(Duration::from_millis(100))
        );
        assert_eq!(
            l.reserve_key(&1, Duration::from_secs(1)),
            Ok(Duration::from_millis(200))
        );
        let e = l
            .reserve_key(&1, Duration::from_millis(250))
            .expect_err("300 ms > bound");
        assert_eq!(e.retry_after(), Duration::from_millis(300));
        let t0 = tokio::time::Instant::now();
        l.until_key_ready(&2, Duration::ZERO)
            .await
            .expect("other key");
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn set_quota_keeps_every_key_state() {
        let l = KeyedRateLimiter::<u8>::new(quota(10, 5));
        for _ in 0..5 {
            l.check_key(&1).expect("burst of 1");
        }
        l.check_key(&2).expect("2 used one");
        l.set_quota(quota(10, 10));
        assert_eq!(l.quota(), quota(10, 10));
        // Key 1 used 5 of the old burst: it gets 5 more, key 2 gets 9.
        let admitted = |k: u8| (0..20).filter(|_| l.check_key(&k).is_ok()).count();
        assert_eq!(admitted(1), 5);
        assert_eq!(admitted(2), 9);
        assert_eq!(admitted(3), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn periodic_sweep_evicts_only_stale_keys() {
        let l = KeyedRateLimiter::<u32>::builder(quota(1, 1))
            .sweep_interval(Duration::from_secs(5))
            .build();
        for k in 0..100 {
            l.check_key(&k).expect("new key");
        }
        assert_eq!(l.len(), 100);
        advance(Duration::from_secs(4)).await;
        // Not due yet: nothing evicted, though every key is stale.
        l.check_key(&1000).expect("new key");
        assert_eq!(l.len(), 101);
        advance(Duration::from_millis(1500)).await;
        // Due: key 1000 (used 1.5 s ago, bucket full again after 1 s) is stale too; key 7
        // is used right now, inside the same call, after the sweep.
        l.check_key(&7).expect("stale key is like new");
        assert_eq!(l.len(), 1);
        // A key that is still paying off its burst survives a sweep.
        l.check_key(&8).expect("fresh");
        assert_eq!(l.sweep(), 0);
        advance(Duration::from_secs(1)).await;
        assert_eq!(l.sweep(), 2);
        assert!(l.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn full_table_sweeps_then_shares_overflow_bucket() {
        let l = KeyedRateLimiter::<u32>::builder(quota(1, 1))
            .max_keys(3)
            .sweep_interval(Duration::from_secs(100))
            .build();
        assert_eq!(l.max_keys(), 3);
        for k in 0..3 {
            l.check_key(&k).expect("tracked");
        }
        // Full and nothing stale: new keys share one bucket.
        l.check_key(&10).expect("overflow bucket first cell");
        let e = l.check_key(&11).expect_err("overflow bucket used");
        assert_eq!(*e.key(), 11);
        assert_eq!(l.len(), 3);
        // Once keys are stale, a full table sweeps (at most every 10 s here) and tracks
        // the new key on its own.
        advance(Duration::from_secs(10)).await;
        l.check_key(&12).expect("sweep made room");
        assert_eq!(l.len(), 1);
        for k in 13..15 {
            l.check_key(&k).expect("room");
        }
        assert_eq!(l.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn full_table_reject_policy() {
        let l = KeyedRateLimiter::<u32>::builder(quota(1, 1))
            .max_keys(1)
            .sweep_interval(Duration::from_secs(100))
            .when_full(KeyOverflow::Reject)
            .build();
        l.check_key(&1).expect("tracked");
        // The forced sweep runs (nothing stale) and sets the next one 10 s away.
        let e = l.check_key(&2).expect_err("full");
        assert_eq!(e.retry_after(), Duration::from_secs(10));
        advance(Duration::from_secs(10)).await;
        l.check_key(&2).expect("swept");
        assert!(format!("{l:?}").contains("Reject"));
    }

    #[tokio::test(start_paused = true)]
    async fn fake_clock_and_name() {
        let clock = governor::clock::FakeRelativeClock::default();
        let l = KeyedRateLimiter::<u8>::builder(quota(1, 1))
            .clock(clock.clone())
            .name("per-tenant")
            .meter(opentelemetry::global::meter("test"))
            .build();
        assert_eq!(l.name(), "per-tenant");
        l.check_key(&1).expect("first");
        assert!(l.check_key(&1).is_err());
        clock.advance(Duration::from_secs(1));
        l.check_key(&1).expect("advanced");
    }
}
