//! Concurrency limits: a fixed limit with load shedding or a bounded wait, and an adaptive
//! limit that finds itself from observed latency.
//!
//! - [`ConcurrencyLimiter`], [`ConcurrencyLimitLayer`] / [`ConcurrencyLimit`]: at most N
//!   calls in flight (a tokio semaphore with owned permits). Over the limit a call is
//!   refused at once ([`Overloaded`]: load shedding, the default) or waits up to a bound
//!   ([`ConcurrencyLimitLayer::wait_up_to`]). The slot is freed when the call completes
//!   or is cancelled.
//! - [`AdaptiveLimiter`], [`AdaptiveConcurrencyLimitLayer`] / [`AdaptiveConcurrencyLimit`]:
//!   the same, with a limit that a [`LimitAlgorithm`] moves after each completed call:
//!   [`Aimd`] (additive increase, multiplicative decrease on failures and slow calls) or
//!   [`Gradient`] (Netflix gradient2: shrink when latency rises above its long-term
//!   average, grow while it does not). Results are classified with
//!   [`Classify`](crate::classify::Classify): a failure is a drop signal, an ignored
//!   result no sample.
//!
//! Both layers take the slot in `call`, not in `poll_ready` (see [`ConcurrencyLimit`] for
//! why), so cloned services that are polled but not called hold nothing. Metrics:
//! `otlp.resilience.concurrency.in_flight` and `.limit` (gauges read at collection time),
//! `.rejected` (counter), each with a `name` attribute.
//!
//! ```
//! use std::time::Duration;
//! use otlp_resilience::classify::OtlpClassifier;
//! use otlp_resilience::concurrency::{
//!     AdaptiveConcurrencyLimitLayer, AdaptiveLimiter, ConcurrencyError, ConcurrencyLimitLayer, Gradient,
//! };
//! use tower::{Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let upstream = tower::service_fn(|_: ()| async {
//!     tokio::time::sleep(Duration::from_millis(10)).await;
//!     Ok::<_, otlp_core::ExportError>(())
//! });
//!
//! // Fixed: one call at a time, shed the rest.
//! let mut fixed = ConcurrencyLimitLayer::new(1).layer(upstream.clone());
//! let first = fixed.ready().await.unwrap().call(());
//! let second = fixed.ready().await.unwrap().call(()).await;
//! assert!(matches!(second, Err(ConcurrencyError::Overloaded(_))));
//! first.await.unwrap();
//!
//! // Adaptive: the limit follows latency.
//! let limiter = AdaptiveLimiter::new(Gradient::builder().initial_limit(10).build());
//! let layer = AdaptiveConcurrencyLimitLayer::new(limiter.clone())
//!     .classify(OtlpClassifier)
//!     .wait_up_to(Duration::from_millis(50));
//! let mut svc = layer.layer(upstream);
//! svc.ready().await.unwrap().call(()).await.unwrap();
//! assert!(limiter.limit() >= 1);
//! # }
//! ```

mod adaptive;
mod error;
mod fixed;
mod metrics;

pub use adaptive::{
    AdaptiveConcurrencyLimit, AdaptiveConcurrencyLimitLayer, AdaptiveLimitFuture, AdaptiveLimiter,
    AdaptiveLimiterBuilder, Aimd, AimdBuilder, Gradient, GradientBuilder, LimitAlgorithm, Sample,
    Token,
};
pub use error::{ConcurrencyError, Overloaded};
pub use fixed::{
    ConcurrencyLimit, ConcurrencyLimitFuture, ConcurrencyLimitLayer, ConcurrencyLimiter,
    ConcurrencyLimiterBuilder, Permit,
};
