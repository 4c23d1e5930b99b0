//! Per-tenant rate limit in items (spans, data points, log records) per second.
//!
//! Written here rather than taken from `otlp-resilience`'s `KeyedRateLimiter`, which
//! counts one cell per call: a tenant's cost is the items it sends, and one request may
//! carry one span or ten thousand. A token bucket per tenant refills at `rate` items/s up
//! to `burst`; a request takes its item count or is refused whole with the time until the
//! bucket will hold enough (a request larger than the burst passes when the bucket is
//! full, so large batches are slowed, never starved). Tenants beyond `max_tenants` share
//! one overflow bucket, so memory stays bounded whatever tenant names clients invent;
//! when the map is full, buckets that have been idle long enough to be full again are
//! forgotten (at most one sweep a second), so the bound does not lock out new tenants for
//! good. A request refused later in the pipeline gets its items back ([`TenantLimiter::refund`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The overflow bucket's key.
const OVERFLOW: &str = "\u{0}overflow";

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct Settings {
    rate: f64,
    burst: f64,
    max_tenants: usize,
}

/// Item-weighted token buckets per tenant.
#[derive(Debug)]
pub struct TenantLimiter {
    enabled: AtomicBool,
    settings: Mutex<Settings>,
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    map: HashMap<Arc<str>, Bucket>,
    last_sweep: Option<Instant>,
}

impl TenantLimiter {
    /// `rate` items/s per tenant with bursts up to `burst` items (at least `rate`).
    pub fn new(rate: u64, burst: u64, max_tenants: usize) -> TenantLimiter {
        TenantLimiter {
            enabled: AtomicBool::new(rate > 0),
            settings: Mutex::new(Settings::from(rate, burst, max_tenants)),
            buckets: Mutex::new(Buckets::default()),
        }
    }

    /// Change the limits (configuration reload); tenants keep their buckets.
    pub fn set_limits(&self, rate: u64, burst: u64, max_tenants: usize) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) =
            Settings::from(rate, burst, max_tenants);
        self.enabled.store(rate > 0, Ordering::Relaxed);
    }

    /// Whether a limit is set (rate 0 means none).
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Take `items` from `tenant`'s bucket, or say how long until it could.
    ///
    /// # Errors
    ///
    /// The retry delay when the bucket holds too little.
    pub fn check(&self, tenant: &Arc<str>, items: u64, now: Instant) -> Result<(), Duration> {
        let (rate, burst, max_tenants) = {
            let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
            (s.rate, s.burst, s.max_tenants)
        };
        if rate <= 0.0 {
            return Ok(());
        }
        let mut guard = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let buckets = &mut *guard;
        if !buckets.map.contains_key(tenant)
            && buckets.map.len() >= max_tenants
            && buckets
                .last_sweep
                .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            // Forget tenants idle long enough for their bucket to be full again: they
            // lose nothing, and new tenants get their own bucket.
            let refill = Duration::from_secs_f64(burst / rate);
            buckets
                .map
                .retain(|_, b| now.saturating_duration_since(b.updated) < refill);
            buckets.last_sweep = Some(now);
        }
        let key: Arc<str> = if buckets.map.contains_key(tenant) || buckets.map.len() < max_tenants {
            tenant.clone()
        } else {
            Arc::from(OVERFLOW)
        };
        let bucket = buckets.map.entry(key).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        let want = items as f64;
        if bucket.tokens >= want || (want > burst && bucket.tokens >= burst) {
            bucket.tokens -= want;
            return Ok(());
        }
        let missing = want.min(burst) - bucket.tokens;
        Err(Duration::from_secs_f64((missing / rate).max(0.001)).min(Duration::from_secs(60)))
    }

    /// Give back `items` taken by [`check`](Self::check) for a request that a later
    /// stage refused (the client will send it again).
    pub fn refund(&self, tenant: &Arc<str>, items: u64) {
        let burst = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .burst;
        let mut guard = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let key: &str = if guard.map.contains_key(tenant) {
            tenant
        } else {
            OVERFLOW
        };
        if let Some(bucket) = guard.map.get_mut(key) {
            bucket.tokens = (bucket.tokens + items as f64).min(burst);
        }
    }

    /// Tenants tracked now (the overflow bucket counts as one).
    pub fn tenants(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }
}

impl Settings {
    fn from(rate: u64, burst: u64, max_tenants: usize) -> Settings {
        Settings {
            rate: rate as f64,
            burst: burst.max(rate) as f64,
            max_tenants: max_tenants.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn items_refill_at_the_rate_and_refusals_say_when() {
        let limiter = TenantLimiter::new(1000, 1000, 10);
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        let t0 = Instant::now();
        assert!(limiter.check(&a, 600, t0).is_ok());
        let wait = limiter.check(&a, 600, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(200));
        // Another tenant has its own bucket.
        assert!(limiter.check(&b, 1000, t0).is_ok());
        assert!(limiter.check(&a, 600, t0 + wait).is_ok());
        // Larger than the burst: passes only on a full bucket, never starved.
        assert!(limiter.check(&a, 5000, t0 + wait).is_err());
        assert!(
            limiter
                .check(&a, 5000, t0 + wait + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tenants_beyond_the_bound_share_one_bucket() {
        let limiter = TenantLimiter::new(10, 10, 2);
        let now = Instant::now();
        for name in ["a", "b", "c", "d", "e"] {
            let _ = limiter.check(&Arc::from(name), 4, now);
        }
        assert_eq!(limiter.tenants(), 3);
        // c, d and e share the overflow bucket: 8 of 10 taken, e refused, 2 left.
        assert!(limiter.check(&Arc::from("f"), 3, now).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_tenants_are_forgotten_when_the_map_is_full() {
        let limiter = TenantLimiter::new(10, 10, 2);
        let t0 = Instant::now();
        assert!(limiter.check(&Arc::from("a"), 10, t0).is_ok());
        assert!(limiter.check(&Arc::from("b"), 10, t0).is_ok());
        // Two seconds later both buckets are full again: "c" gets its own bucket.
        let later = t0 + Duration::from_secs(2);
        assert!(limiter.check(&Arc::from("c"), 10, later).is_ok());
        assert!(limiter.check(&Arc::from("d"), 10, later).is_ok());
        assert_eq!(limiter.tenants(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refund_gives_the_items_back() {
        let limiter = TenantLimiter::new(100, 100, 10);
        let a: Arc<str> = Arc::from("a");
        let now = Instant::now();
        assert!(limiter.check(&a, 100, now).is_ok());
        assert!(limiter.check(&a, 50, now).is_err());
        limiter.refund(&a, 100);
        assert!(limiter.check(&a, 100, now).is_ok());
    }

    #[test]
    fn rate_zero_is_no_limit() {
        let limiter = TenantLimiter::new(0, 0, 1);
        assert!(!limiter.is_enabled());
        let now = Instant::now();
        assert!(limiter.check(&Arc::from("x"), u64::MAX, now).is_ok());
    }
}
