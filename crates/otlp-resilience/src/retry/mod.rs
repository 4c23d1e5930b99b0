//! Retry with exponential backoff and full jitter, a time limit, per-attempt timeouts,
//! the server's retry delay, and a retry budget.
//!
//! A [`RetryPolicy`] retries a failed call while all of these hold:
//!
//! - the classifier says the error is retryable ([`OtlpClassifier`] by default: the OTLP
//!   rules of [`otlp_core::ExportError::is_retryable`]; an `Ok`, a partial success
//!   included, is never retried);
//! - fewer than `max_attempts` attempts were made;
//! - the next attempt would start within `max_elapsed` of the first one (no attempt starts
//!   after it; if the delay would cross it, the policy gives up at once instead of
//!   sleeping for nothing);
//! - if the server said when to retry (`Retry-After`, gRPC `RetryInfo`), it asked for at
//!   most `max_server_delay` (see [`ServerDelayOverCap`] for what happens otherwise);
//! - the [`RetryBudget`] has a token (retries add at most a configured fraction of load).
//!
//! The delay before the next attempt is the server's delay when it gave one, otherwise a
//! [`Backoff`] draw: uniform in `[0, min(max_backoff, initial_backoff * multiplier^(n-1))]`
//! before retry `n`. A per-attempt timeout (`attempt_timeout`) makes a hung attempt a
//! retryable failure.
//!
//! It is usable as a tower middleware ([`RetryLayer`], [`Retry`]: the request type must
//! be `Clone`, which for `otlp_core::Payload` is a reference-count increment of its
//! `Bytes`) or directly with [`RetryPolicy::run`].
//!
//! Metrics (OpenTelemetry counters with the policy's `name`):
//! `otlp.resilience.retry.attempts`, `otlp.resilience.retry.retries` and
//! `otlp.resilience.retry.give_ups` (with a `reason`: `not_retryable`, `exhausted`,
//! `budget_exhausted`, `timeout`, `server_delay_too_long`). Each retry logs a `debug`
//! event with the attempt number and the delay.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::{Duration, SystemTime};
//! use otlp_core::ExportError;
//! use otlp_resilience::retry::{RetryError, RetryPolicy};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let policy = RetryPolicy::builder()
//!     .name("upstream-a")
//!     .max_attempts(4)
//!     .initial_backoff(Duration::from_millis(100))
//!     .max_backoff(Duration::from_secs(2))
//!     .max_elapsed(Duration::from_secs(10))
//!     .build();
//!
//! // Fails twice with 503 (the second time asking for 1 s), then succeeds.
//! let calls = AtomicU32::new(0);
//! let result = policy
//!     .run(|| async {
//!         match calls.fetch_add(1, Ordering::Relaxed) {
//!             0 => Err(ExportError::from_http(503, None, None, b"", SystemTime::now())),
//!             1 => Err(ExportError::from_http(503, Some("1"), None, b"", SystemTime::now())),
//!             _ => Ok("exported"),
//!         }
//!     })
//!     .await;
//! assert_eq!(result, Ok("exported"));
//! assert_eq!(calls.load(Ordering::Relaxed), 3);
//!
//! // Bad data is not retried.
//! let result: Result<(), _> = policy
//!     .run(|| async { Err(ExportError::from_http(400, None, None, b"", SystemTime::now())) })
//!     .await;
//! assert!(matches!(result, Err(RetryError::NotRetryable(_))));
//! # });
//! ```
//!
//! As a tower layer:
//!
//! ```
//! use std::time::Duration;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use otlp_core::ExportError;
//! use otlp_resilience::classify::AnyError;
//! use otlp_resilience::retry::RetryPolicy;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let policy = RetryPolicy::builder().classifier(AnyError).max_attempts(3).build();
//! let mut svc = ServiceBuilder::new()
//!     .layer(policy.layer())
//!     .service_fn(|req: bytes::Bytes| async move { Ok::<_, ExportError>(req.len()) });
//! let n = svc.ready().await.unwrap().call(bytes::Bytes::from_static(b"abc")).await.unwrap();
//! assert_eq!(n, 3);
//! # });
//! ```

mod backoff;
mod budget;
mod error;
mod future;
mod layer;
mod policy;
mod service;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::metrics::Meter;

pub use backoff::Backoff;
pub use budget::RetryBudget;
pub use error::RetryError;
pub use future::{ResponseFuture, RunFuture};
pub use layer::RetryLayer;
pub use policy::ServerDelayOverCap;
pub use service::Retry;

use crate::classify::{OtlpClassifier, RetryClassify};
use policy::{PolicyInner, RetryMetrics};

/// Default for [`RetryPolicyBuilder::max_attempts`]: 5 (first attempt included), as the
/// OpenTelemetry SDKs' exporter retry.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Default for [`RetryPolicyBuilder::max_elapsed`]: 30 s.
pub const DEFAULT_MAX_ELAPSED: Duration = Duration::from_secs(30);
/// Default for [`RetryPolicyBuilder::max_server_delay`]: 10 s.
pub const DEFAULT_MAX_SERVER_DELAY: Duration = Duration::from_secs(10);

/// A retry policy: how often, how long and when to retry. Cheap to clone (an `Arc`);
/// clones share the retry budget.
///
/// Build with [`RetryPolicy::builder`]; use with [`RetryPolicy::run`] or as a tower layer
/// with [`RetryPolicy::layer`]. See the [module docs](self).
pub struct RetryPolicy<C = OtlpClassifier> {
    inner: Arc<PolicyInner<C>>,
}

impl<C> Clone for RetryPolicy<C> {
    fn clone(&self) -> Self {
        RetryPolicy {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C> fmt::Debug for RetryPolicy<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Default for RetryPolicy<OtlpClassifier> {
    /// The defaults of [`RetryPolicy::builder`].
    fn default() -> Self {
        RetryPolicy::builder().build()
    }
}

impl RetryPolicy<OtlpClassifier> {
    /// A builder with the defaults: 5 attempts, backoff 1 s doubling up to 5 s with full
    /// jitter, 30 s max elapsed, no per-attempt timeout, server delays honored up to 10 s
    /// (longer: give up), the default [`RetryBudget`] (20 % + 10/s over 10 s), and the
    /// OTLP classifier.
    pub fn builder() -> RetryPolicyBuilder<OtlpClassifier> {
        RetryPolicyBuilder {
            name: Arc::from("retry"),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::default(),
            max_elapsed: Some(DEFAULT_MAX_ELAPSED),
            attempt_timeout: None,
            max_server_delay: DEFAULT_MAX_SERVER_DELAY,
            over_cap: ServerDelayOverCap::GiveUp,
            budget: Some(Arc::new(RetryBudget::default())),
            classifier: OtlpClassifier,
            jitter_seed: None,
            meter: None,
        }
    }
}

impl<C> RetryPolicy<C> {
    /// Runs `make_attempt` until it succeeds or the policy gives up. Each attempt is a
    /// new future from `make_attempt` (so it can clone what it sends).
    ///
    /// Dropping the returned future stops: no further attempt starts.
    pub fn run<M, F, T, E>(&self, make_attempt: M) -> RunFuture<M, F, E, C>
    where
        M: FnMut() -> F,
        F: Future<Output = Result<T, E>>,
        C: RetryClassify<E>,
    {
        RunFuture::new(Arc::clone(&self.inner), make_attempt)
    }

    /// A tower layer applying this policy.
    pub fn layer(&self) -> RetryLayer<C> {
        RetryLayer::new(self.clone())
    }

    /// The policy's name (the `name` attribute of its metrics).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Attempts per call, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    /// The backoff between attempts when the server gives no delay.
    pub fn backoff(&self) -> Backoff {
        self.inner.backoff
    }

    /// No attempt starts later than this after the first one.
    pub fn max_elapsed(&self) -> Option<Duration> {
        self.inner.max_elapsed
    }

    /// The timeout of each attempt.
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.inner.attempt_timeout
    }

    /// The longest server-requested delay honored.
    pub fn max_server_delay(&self) -> Duration {
        self.inner.max_server_delay
    }

    /// What happens when the server asks for more than [`Self::max_server_delay`].
    pub fn server_delay_over_cap(&self) -> ServerDelayOverCap {
        self.inner.over_cap
    }

    /// The retry budget, if any.
    pub fn budget(&self) -> Option<&Arc<RetryBudget>> {
        self.inner.budget.as_ref()
    }

    /// The classifier deciding which errors are retried.
    pub fn classifier(&self) -> &C {
        &self.inner.classifier
    }

    pub(crate) fn shared(&self) -> &Arc<PolicyInner<C>> {
        &self.inner
    }
}

/// Builds a [`RetryPolicy`]; see [`RetryPolicy::builder`] for the defaults.
pub struct RetryPolicyBuilder<C> {
    name: Arc<str>,
    max_attempts: u32,
    backoff: Backoff,
    max_elapsed: Option<Duration>,
    attempt_timeout: Option<Duration>,
    max_server_delay: Duration,
    over_cap: ServerDelayOverCap,
    budget: Option<Arc<RetryBudget>>,
    classifier: C,
    jitter_seed: Option<u64>,
    meter: Option<Meter>,
}

impl<C> fmt::Debug for RetryPolicyBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicyBuilder")
            .field("name", &self.name)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("max_elapsed", &self.max_elapsed)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_server_delay", &self.max_server_delay)
            .field("server_delay_over_cap", &self.over_cap)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl<C> RetryPolicyBuilder<C> {
    /// The `name` attribute of the metrics and logs (default `"retry"`); name it after
    /// the downstream.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Attempts per call, the first included (default 5). `0` is taken as `1` (no retry).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The whole backoff at once.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The ceiling of the first retry's jittered delay (default 1 s).
    pub fn initial_backoff(mut self, initial: Duration) -> Self {
        self.backoff = Backoff::new(initial, self.backoff.max(), self.backoff.multiplier());
        self
    }

    /// The cap on every backoff delay (default 5 s).
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.backoff = Backoff::new(self.backoff.initial(), max, self.backoff.multiplier());
        self
    }

    /// How much the ceiling grows per retry (default 2; below 1 is taken as 1).
    pub fn backoff_multiplier(mut self, multiplier: f64) -> Self {
        self.backoff = Backoff::new(self.backoff.initial(), self.backoff.max(), multiplier);
        self
    }

    /// No attempt starts later than this after the first one started (default 30 s;
    /// `None`: no limit). An attempt already running is not cut short: bound it with
    /// [`Self::attempt_timeout`], so a call takes at most `max_elapsed + attempt_timeout`.
    pub fn max_elapsed(mut self, max: impl Into<Option<Duration>>) -> Self {
        self.max_elapsed = max.into();
        self
    }

    /// The timeout of each attempt (default none). A timed-out attempt is dropped and
    /// counts as a retryable failure.
    pub fn attempt_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.attempt_timeout = timeout.into();
        self
    }

    /// The longest delay the server may ask for (`Retry-After`, `RetryInfo`) that the
    /// policy waits inside a call (default 10 s).
    pub fn max_server_delay(mut self, max: Duration) -> Self {
        self.max_server_delay = max;
        self
    }

    /// What to do when the server asks for more than [`Self::max_server_delay`] (default
    /// [`ServerDelayOverCap::GiveUp`]).
    pub fn server_delay_over_cap(mut self, action: ServerDelayOverCap) -> Self {
        self.over_cap = action;
        self
    }

    /// The retry budget (default [`RetryBudget::default`]).
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(Arc::new(budget));
        self
    }

    /// A retry budget shared with other policies (e.g. every exporter to one upstream).
    pub fn shared_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// No retry budget: only the attempt and time limits bound retries.
    pub fn no_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// Which errors are retried, and after what delay (default [`OtlpClassifier`]).
    pub fn classifier<C2>(self, classifier: C2) -> RetryPolicyBuilder<C2> {
        RetryPolicyBuilder {
            name: self.name,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            max_elapsed: self.max_elapsed,
            attempt_timeout: self.attempt_timeout,
            max_server_delay: self.max_server_delay,
            over_cap: self.over_cap,
            budget: self.budget,
            classifier,
            jitter_seed: self.jitter_seed,
            meter: self.meter,
        }
    }

    /// Seeds the jitter so delays are reproducible (tests); every call then draws the
    /// same sequence. By default each call draws from a fresh random seed.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// The meter for the policy's counters (default
    /// `opentelemetry::global::meter("otlp-resilience")`).
    pub fn meter(mut self, meter: Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// The policy.
    pub fn build(self) -> RetryPolicy<C> {
        let meter = self
            .meter
            .unwrap_or_else(|| opentelemetry::global::meter("otlp-resilience"));
        let metrics = RetryMetrics::new(&meter, &self.name);
        RetryPolicy {
            inner: Arc::new(PolicyInner {
                name: self.name,
                max_attempts: self.max_attempts,
                backoff: self.backoff,
                max_elapsed: self.max_elapsed,
                attempt_timeout: self.attempt_timeout,
                max_server_delay: self.max_server_delay,
                over_cap: self.over_cap,
                budget: self.budget,
                classifier: self.classifier,
                jitter_seed: self.jitter_seed,
                metrics,
            }),
        }
    }
}
