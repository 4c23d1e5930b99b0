//! # otlp-resilience
//!
//! Resilience middleware for outbound calls (exporters, proxied upstreams) and inbound
//! routes, each a `tower::Layer` + `Service` pair that also works through a plain async
//! API, and composable in one documented order ([`stack`]):
//!
//! | module | what it does |
//! |---|---|
//! | [`breaker`] | circuit breaker: count- or time-based sliding window, failure-rate and slow-call-rate thresholds, exactly N half-open probes, forced-open / disabled, events and metrics; lock-free when closed |
//! | [`rate_limit`] | GCRA rate limiter (governor's state stores), direct or keyed per tenant / IP / route, quotas changeable at run time without losing state, reject or bounded wait, bounded key memory |
//! | [`retry`] | exponential backoff with full jitter, max attempts and elapsed time, per-attempt timeout, server `Retry-After` / `RetryInfo` honoured (capped), lock-free retry budget |
//! | [`timeout`] | per-call timeout with a typed error |
//! | [`concurrency`] | fixed limit (shed or bounded wait) and adaptive limits (AIMD, gradient) learned from latency |
//! | [`classify`] | what a result means: the OTLP rules from `otlp-core` ([`classify::OtlpClassifier`]) or your own predicate |
//! | [`stack`] | the recommended outbound and inbound orders, assembled |
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use otlp_core::ExportError;
//! use otlp_resilience::breaker::{CircuitBreaker, CircuitBreakerConfig};
//! use otlp_resilience::retry::RetryPolicy;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let breaker = CircuitBreaker::new(CircuitBreakerConfig::builder().name("collector").build().unwrap());
//! let retry = RetryPolicy::builder().name("collector").max_attempts(3).build();
//!
//! // Each attempt goes through the breaker; 503 is retryable per the OTLP spec.
//! let mut calls = 0;
//! let result = retry
//!     .run(|| {
//!         calls += 1;
//!         let breaker = breaker.clone();
//!         async move {
//!             breaker
//!                 .call(|| async {
//!                     Err::<(), _>(ExportError::from_http(503, Some("1"), None, b"", SystemTime::now()))
//!                 })
//!                 .await
//!         }
//!     })
//!     .await;
//! assert!(result.is_err());
//! assert_eq!(calls, 3);
//! # });
//! ```
//!
//! Operator guide (every knob, defaults and why, the layer order):
//! `docs/resilience.md` in the repository.
//!
//! This crate has no feature flags.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod breaker;
pub mod classify;
pub mod concurrency;
pub mod rate_limit;
pub mod retry;
pub mod stack;
pub mod timeout;

pub use breaker::{
    BreakerError, BreakerOpen, CircuitBreaker, CircuitBreakerConfig, CircuitBreakerLayer,
};
pub use classify::{
    AnyError, Classify, OtlpClassifier, OtlpError, Outcome, RetryClassify, RetryDecision,
};
pub use concurrency::{
    AdaptiveConcurrencyLimitLayer, AdaptiveLimiter, ConcurrencyError, ConcurrencyLimitLayer,
    ConcurrencyLimiter, Overloaded,
};
pub use rate_limit::{
    KeyedRateLimiter, Quota, RateLimitError, RateLimitLayer, RateLimited, RateLimiter,
};
pub use retry::{RetryBudget, RetryError, RetryLayer, RetryPolicy};
pub use stack::{InboundStack, ResilienceStack};
pub use timeout::{TimeoutError, TimeoutLayer};
