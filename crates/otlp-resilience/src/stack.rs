//! The documented order of the layers, assembled in one place.
//!
//! # Outbound (exporters, proxied upstreams): [`ResilienceStack`]
//!
//! ```text
//!  caller
//!    │
//!    ▼
//!  Retry ───────────── backoff + jitter, Retry-After, retry budget, max elapsed
//!    │  (each attempt ▼ goes through everything below)
//!  CircuitBreaker ──── rejects fast while the upstream is unhealthy
//!    │
//!  ConcurrencyLimit ── bounds in-flight calls (fixed or adaptive)
//!    │
//!  Timeout ─────────── bounds each attempt
//!    │
//!    ▼
//!  upstream (HTTP / gRPC client)
//! ```
//!
//! Why this order:
//!
//! - **Retry outermost**, so every attempt passes the breaker and the limit again: an
//!   open breaker stops a retry loop at once (its rejection carries when to come back,
//!   which the retry honors like a server's `Retry-After`, or gives up on when it is too
//!   far), and a call sleeping in backoff holds no concurrency slot.
//! - **Breaker outside the timeout**, so the breaker sees a timed-out attempt as a failure.
//!   With the timeout outside, it would drop the breaker's future instead: a cancelled call
//!   counts as nothing, and an upstream that hangs would never open the breaker.
//! - **Concurrency limit inside the breaker**: an open breaker rejects before taking a
//!   slot, and a call the limit refuses (it never reached the upstream) is ignored by the
//!   breaker instead of counted against the upstream.
//! - **Timeout innermost**: it bounds the upstream call only; the wait for a slot is
//!   bounded by the limit's own `wait_up_to`, and the slot is freed as soon as the
//!   timeout fires.
//!
//! Rate limiting does not belong here: it protects a service from its callers, so it goes
//! on inbound routes. An exporter that must not exceed an upstream's quota can put a
//! [`RateLimitLayer`] with `wait_up_to` between the
//! retry and the breaker.
//!
//! # Inbound (receivers, API routes): [`InboundStack`]
//!
//! ```text
//!  client ─▶ RateLimit ─▶ ConcurrencyLimit (shed) ─▶ Timeout ─▶ route
//! ```
//!
//! The rate limit comes first: it is the cheapest refusal, it is per tenant (fairness),
//! and a refused request takes no slot. The concurrency limit sheds what the process
//! cannot take now (a 503 with a retry delay); the timeout bounds the work of one request.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use otlp_core::ExportError;
//! use otlp_resilience::breaker::{CircuitBreaker, CircuitBreakerConfig, SlidingWindow};
//! use otlp_resilience::retry::{RetryError, RetryPolicy};
//! use otlp_resilience::stack::ResilienceStack;
//! use tower::{Layer, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let stack = ResilienceStack::builder()
//!     .retry(RetryPolicy::builder().name("collector").max_attempts(3).build())
//!     .breaker(CircuitBreaker::new(
//!         CircuitBreakerConfig::builder()
//!             .name("collector")
//!             .sliding_window(SlidingWindow::count(10))
//!             .minimum_calls(4)
//!             .build()
//!             .unwrap(),
//!     ))
//!     .attempt_timeout(Duration::from_secs(5))
//!     .build();
//!
//! // An upstream that always answers 503.
//! let upstream = tower::service_fn(|_body: bytes::Bytes| async {
//!     Err::<(), _>(ExportError::from_http(503, None, None, b"", SystemTime::now()))
//! });
//! let client = stack.layer(upstream);
//! let result = client.oneshot(bytes::Bytes::from_static(b"spans")).await;
//! assert!(matches!(result, Err(RetryError::Exhausted { attempts: 3, .. })));
//! assert_eq!(stack.breaker().snapshot().totals.failure, 3);
//! # });
//! ```

use std::fmt;
use std::time::Duration;

use tower::Layer;

use crate::breaker::{CircuitBreaker, CircuitBreakerLayer, CircuitBreakerService};
use crate::classify::OtlpClassifier;
use crate::concurrency::ConcurrencyLimitLayer;
use crate::rate_limit::{RateLimit, RateLimitLayer};
use crate::retry::{Retry, RetryPolicy};
use crate::timeout::{Timeout, TimeoutLayer};

/// Default per-attempt timeout of [`ResilienceStack`]: 10 s, the OpenTelemetry exporters'
/// default (`OTEL_EXPORTER_OTLP_TIMEOUT`).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default outbound concurrency limit of [`ResilienceStack`]: 32 calls in flight.
pub const DEFAULT_OUTBOUND_CONCURRENCY: usize = 32;
/// Default wait for an outbound slot: 1 s, then the call is refused as overloaded (and
/// retried with backoff).
pub const DEFAULT_OUTBOUND_SLOT_WAIT: Duration = Duration::from_secs(1);
/// Default inbound concurrency limit of [`InboundStack`]: 1024 requests in flight, the
/// rest shed at once.
pub const DEFAULT_INBOUND_CONCURRENCY: usize = 1024;
/// Default inbound request timeout of [`InboundStack`]: 30 s.
pub const DEFAULT_INBOUND_TIMEOUT: Duration = Duration::from_secs(30);

/// The outbound service: `Retry(CircuitBreaker(ConcurrencyLimit(Timeout(S))))`.
///
/// `L` is the concurrency layer ([`ConcurrencyLimitLayer`] or
/// [`AdaptiveConcurrencyLimitLayer`](crate::concurrency::AdaptiveConcurrencyLimitLayer)),
/// `RC` the retry's classifier, `BC` the breaker's.
pub type ResilientService<S, L = ConcurrencyLimitLayer, RC = OtlpClassifier, BC = OtlpClassifier> =
    Retry<CircuitBreakerService<<L as Layer<Timeout<S>>>::Service, BC>, RC>;

/// The outbound layers in the recommended order (see the [module docs](self)):
/// retry -> circuit breaker -> concurrency limit -> per-attempt timeout.
///
/// Services made from one stack share its retry budget, breaker and concurrency limit:
/// build one stack per upstream.
pub struct ResilienceStack<L = ConcurrencyLimitLayer, RC = OtlpClassifier, BC = OtlpClassifier> {
    retry: RetryPolicy<RC>,
    breaker: CircuitBreakerLayer<BC>,
    concurrency: L,
    timeout: TimeoutLayer,
}

impl ResilienceStack {
    /// A builder with the defaults: [`RetryPolicy::default`], [`CircuitBreaker::default`]
    /// with the OTLP classifier, a fixed limit of [`DEFAULT_OUTBOUND_CONCURRENCY`] calls
    /// waiting up to [`DEFAULT_OUTBOUND_SLOT_WAIT`] for a slot, and a
    /// [`DEFAULT_ATTEMPT_TIMEOUT`] per attempt.
    pub fn builder() -> ResilienceStackBuilder {
        ResilienceStackBuilder {
            retry: RetryPolicy::default(),
            breaker: CircuitBreakerLayer::new(CircuitBreaker::default()),
            concurrency: ConcurrencyLimitLayer::new(DEFAULT_OUTBOUND_CONCURRENCY)
                .wait_up_to(DEFAULT_OUTBOUND_SLOT_WAIT),
            timeout: TimeoutLayer::new(DEFAULT_ATTEMPT_TIMEOUT),
        }
    }
}

impl<L, RC, BC> ResilienceStack<L, RC, BC> {
    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy<RC> {
        &self.retry
    }

    /// The circuit breaker (to subscribe to its events, read its state, or force it
    /// open).
    pub fn breaker(&self) -> &CircuitBreaker {
        self.breaker.breaker()
    }

    /// The concurrency layer.
    pub fn concurrency(&self) -> &L {
        &self.concurrency
    }

    /// The per-attempt timeout.
    pub fn attempt_timeout(&self) -> Duration {
        self.timeout.timeout()
    }
}

impl<L: Clone, RC, BC: Clone> Clone for ResilienceStack<L, RC, BC> {
    fn clone(&self) -> Self {
        ResilienceStack {
            retry: self.retry.clone(),
            breaker: self.breaker.clone(),
            concurrency: self.concurrency.clone(),
            timeout: self.timeout,
        }
    }
}

impl<L: fmt::Debug, RC, BC: fmt::Debug> fmt::Debug for ResilienceStack<L, RC, BC> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResilienceStack")
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<S, L, RC, BC> Layer<S> for ResilienceStack<L, RC, BC>
where
    L: Layer<Timeout<S>>,
    BC: Clone,
{
    type Service = ResilientService<S, L, RC, BC>;

    fn layer(&self, inner: S) -> Self::Service {
        let attempt = self.timeout.layer(inner);
        let limited = self.concurrency.layer(attempt);
        let guarded = self.breaker.layer(limited);
        Retry::new(guarded, self.retry.clone())
    }
}

/// Builds a [`ResilienceStack`]; see [`ResilienceStack::builder`] for the defaults.
pub struct ResilienceStackBuilder<
    L = ConcurrencyLimitLayer,
    RC = OtlpClassifier,
    BC = OtlpClassifier,
> {
    retry: RetryPolicy<RC>,
    breaker: CircuitBreakerLayer<BC>,
    concurrency: L,
    timeout: TimeoutLayer,
}

impl<L: fmt::Debug, RC, BC: fmt::Debug> fmt::Debug for ResilienceStackBuilder<L, RC, BC> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResilienceStackBuilder")
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<L, RC, BC> ResilienceStackBuilder<L, RC, BC> {
    /// The retry policy (outermost).
    pub fn retry<RC2>(self, policy: RetryPolicy<RC2>) -> ResilienceStackBuilder<L, RC2, BC> {
        ResilienceStackBuilder {
            retry: policy,
            breaker: self.breaker,
            concurrency: self.concurrency,
            timeout: self.timeout,
        }
    }

    /// The circuit breaker, keeping the current classifier (the OTLP rules by default).
    pub fn breaker(self, breaker: CircuitBreaker) -> ResilienceStackBuilder<L, RC, OtlpClassifier> {
        self.breaker_layer(CircuitBreakerLayer::new(breaker))
    }

    /// The circuit breaker layer, with its classifier.
    pub fn breaker_layer<BC2>(
        self,
        layer: CircuitBreakerLayer<BC2>,
    ) -> ResilienceStackBuilder<L, RC, BC2> {
        ResilienceStackBuilder {
            retry: self.retry,
            breaker: layer,
            concurrency: self.concurrency,
            timeout: self.timeout,
        }
    }

    /// The concurrency layer: a [`ConcurrencyLimitLayer`] or an
    /// [`AdaptiveConcurrencyLimitLayer`](crate::concurrency::AdaptiveConcurrencyLimitLayer).
    pub fn concurrency<L2>(self, layer: L2) -> ResilienceStackBuilder<L2, RC, BC> {
        ResilienceStackBuilder {
            retry: self.retry,
            breaker: self.breaker,
            concurrency: layer,
            timeout: self.timeout,
        }
    }

    /// The timeout of each attempt (innermost).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = TimeoutLayer::new(timeout);
        self
    }

    /// The stack.
    pub fn build(self) -> ResilienceStack<L, RC, BC> {
        ResilienceStack {
            retry: self.retry,
            breaker: self.breaker,
            concurrency: self.concurrency,
            timeout: self.timeout,
        }
    }
}

/// The inbound service: `RateLimit(ConcurrencyLimit(Timeout(S)))`.
///
/// `RL` is the limiter ([`RateLimiter`](crate::rate_limit::RateLimiter), a
/// [`Keyed`](crate::rate_limit::Keyed) limiter, or an `Arc` of either); `CL` the
/// concurrency layer.
pub type InboundService<S, RL, CL = ConcurrencyLimitLayer> =
    RateLimit<<CL as Layer<Timeout<S>>>::Service, RL>;

/// The inbound layers in the recommended order (see the [module docs](self)): rate limit
/// -> concurrency limit (load shedding) -> timeout.
///
/// ```
/// use std::num::NonZeroU32;
/// use std::sync::Arc;
/// use otlp_resilience::rate_limit::{KeyedRateLimiter, Quota, RateLimitError, RateLimitLayer};
/// use otlp_resilience::stack::InboundStack;
/// use tower::{Layer, ServiceExt};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// struct Req { tenant: &'static str }
/// let per_tenant = Arc::new(KeyedRateLimiter::<&'static str>::new(
///     Quota::per_second(NonZeroU32::new(1).unwrap()),
/// ));
/// let stack = InboundStack::builder(RateLimitLayer::keyed(per_tenant, |r: &Req| Some(r.tenant))).build();
/// let route = stack.layer(tower::service_fn(|_: Req| async { Ok::<_, std::io::Error>("accepted") }));
/// assert!(route.clone().oneshot(Req { tenant: "a" }).await.is_ok());
/// let refused = route.oneshot(Req { tenant: "a" }).await;
/// assert!(matches!(refused, Err(RateLimitError::Limited(_))));
/// # });
/// ```
pub struct InboundStack<RL, CL = ConcurrencyLimitLayer> {
    rate_limit: RateLimitLayer<RL>,
    concurrency: CL,
    timeout: TimeoutLayer,
}

impl<RL> InboundStack<RL> {
    /// A builder around `rate_limit`, with the defaults: a fixed limit of
    /// [`DEFAULT_INBOUND_CONCURRENCY`] requests that sheds at once, and a
    /// [`DEFAULT_INBOUND_TIMEOUT`] per request.
    pub fn builder(rate_limit: RateLimitLayer<RL>) -> InboundStackBuilder<RL> {
        InboundStackBuilder {
            rate_limit,
            concurrency: ConcurrencyLimitLayer::new(DEFAULT_INBOUND_CONCURRENCY),
            timeout: TimeoutLayer::new(DEFAULT_INBOUND_TIMEOUT),
        }
    }
}

impl<RL, CL> InboundStack<RL, CL> {
    /// The rate limit layer.
    pub fn rate_limit(&self) -> &RateLimitLayer<RL> {
        &self.rate_limit
    }

    /// The concurrency layer.
    pub fn concurrency(&self) -> &CL {
        &self.concurrency
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout.timeout()
    }
}

impl<RL: Clone, CL: Clone> Clone for InboundStack<RL, CL> {
    fn clone(&self) -> Self {
        InboundStack {
            rate_limit: self.rate_limit.clone(),
            concurrency: self.concurrency.clone(),
            timeout: self.timeout,
        }
    }
}

impl<RL: fmt::Debug, CL: fmt::Debug> fmt::Debug for InboundStack<RL, CL> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundStack")
            .field("rate_limit", &self.rate_limit)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<S, RL, CL> Layer<S> for InboundStack<RL, CL>
where
    RL: Clone,
    CL: Layer<Timeout<S>>,
{
    type Service = InboundService<S, RL, CL>;

    fn layer(&self, inner: S) -> Self::Service {
        let bounded = self.timeout.layer(inner);
        let shed = self.concurrency.layer(bounded);
        self.rate_limit.layer(shed)
    }
}

/// Builds an [`InboundStack`]; see [`InboundStack::builder`] for the defaults.
pub struct InboundStackBuilder<RL, CL = ConcurrencyLimitLayer> {
    rate_limit: RateLimitLayer<RL>,
    concurrency: CL,
    timeout: TimeoutLayer,
}

impl<RL: fmt::Debug, CL: fmt::Debug> fmt::Debug for InboundStackBuilder<RL, CL> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundStackBuilder")
            .field("rate_limit", &self.rate_limit)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<RL, CL> InboundStackBuilder<RL, CL> {
    /// The concurrency layer (load shedding: keep its wait at zero or short).
    pub fn concurrency<CL2>(self, layer: CL2) -> InboundStackBuilder<RL, CL2> {
        InboundStackBuilder {
            rate_limit: self.rate_limit,
            concurrency: layer,
            timeout: self.timeout,
        }
    }

    /// The timeout of each request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = TimeoutLayer::new(timeout);
        self
    }

    /// The stack.
    pub fn build(self) -> InboundStack<RL, CL> {
        InboundStack {
            rate_limit: self.rate_limit,
            concurrency: self.concurrency,
            timeout: self.timeout,
        }
    }
}
