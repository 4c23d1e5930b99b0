//! The decisions of a retry policy, apart from any future or service: after a failed
//! attempt, wait how long, or give up why.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Meter};
use tokio::time::Instant;

use super::backoff::Backoff;
use super::budget::RetryBudget;
use super::error::RetryError;
use crate::classify::RetryDecision;

/// What to do when the server asks for a delay longer than `max_server_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerDelayOverCap {
    /// Give up at once with [`RetryError::ServerDelayTooLong`], which carries the
    /// requested delay so the caller can keep the data and send it later (the default:
    /// retrying before the server said it is ready mostly earns another refusal, and
    /// holding a call open for minutes ties up a worker).
    #[default]
    GiveUp,
    /// Wait `max_server_delay` and retry anyway.
    WaitCap,
}

/// Why the policy stopped retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GiveUp {
    NotRetryable,
    Exhausted,
    Budget,
    Timeout,
    ServerDelayTooLong(Duration),
}

impl GiveUp {
    fn index(self) -> usize {
        match self {
            GiveUp::NotRetryable => 0,
            GiveUp::Exhausted => 1,
            GiveUp::Budget => 2,
            GiveUp::Timeout => 3,
            GiveUp::ServerDelayTooLong(_) => 4,
        }
    }

    const REASONS: [&'static str; 5] = [
        "not_retryable",
        "exhausted",
        "budget_exhausted",
        "timeout",
        "server_delay_too_long",
    ];
}

/// Counters of one retry policy: `otlp.resilience.retry.attempts`, `.retries` and
/// `.give_ups` (with a `reason` attribute), each with the policy's `name`.
pub(crate) struct RetryMetrics {
    attempts: Counter<u64>,
    retries: Counter<u64>,
    give_ups: Counter<u64>,
    name: [KeyValue; 1],
    give_up_attrs: [[KeyValue; 2]; 5],
}

impl RetryMetrics {
    pub(crate) fn new(meter: &Meter, name: &Arc<str>) -> RetryMetrics {
        let name_kv = KeyValue::new("name", name.to_string());
        let give_up_attrs = GiveUp::REASONS.map(|r| [name_kv.clone(), KeyValue::new("reason", r)]);
        RetryMetrics {
            attempts: meter
                .u64_counter("otlp.resilience.retry.attempts")
                .with_description("Attempts made, first attempts included")
                .build(),
            retries: meter
                .u64_counter("otlp.resilience.retry.retries")
                .with_description("Attempts after the first")
                .build(),
            give_ups: meter
                .u64_counter("otlp.resilience.retry.give_ups")
                .with_description("Calls that ended in an error, by reason")
                .build(),
            name: [name_kv],
            give_up_attrs,
        }
    }

    pub(crate) fn attempt(&self, first: bool) {
        self.attempts.add(1, &self.name);
        if !first {
            self.retries.add(1, &self.name);
        }
    }

    pub(crate) fn give_up(&self, why: GiveUp) {
        self.give_ups.add(1, &self.give_up_attrs[why.index()]);
    }
}

/// Everything a retry policy knows; shared by all calls through an `Arc`.
pub(crate) struct PolicyInner<C> {
    pub(crate) name: Arc<str>,
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) max_elapsed: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) max_server_delay: Duration,
    pub(crate) over_cap: ServerDelayOverCap,
    pub(crate) budget: Option<Arc<RetryBudget>>,
    pub(crate) classifier: C,
    pub(crate) jitter_seed: Option<u64>,
    pub(crate) metrics: RetryMetrics,
}

impl<C> fmt::Debug for PolicyInner<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
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

impl<C> PolicyInner<C> {
    /// Called once per call, before its first attempt, which starts at `now`.
    pub(crate) fn on_first_attempt(&self, now: Instant) {
        if let Some(budget) = &self.budget {
            budget.deposit_at(now);
        }
        self.metrics.attempt(true);
    }

    /// The random source of one call: seeded from the policy's seed (tests) or from
    /// fastrand's thread-local generator.
    pub(crate) fn rng(&self) -> fastrand::Rng {
        match self.jitter_seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        }
    }

    /// After attempt number `attempts` (1-based) failed with `decision`: the delay before
    /// the next attempt, or why to stop. Takes a budget token only when it retries.
    pub(crate) fn next_delay(
        &self,
        decision: RetryDecision,
        attempts: u32,
        started: Instant,
        rng: &mut fastrand::Rng,
    ) -> Result<Duration, GiveUp> {
        let server_delay = match decision {
            RetryDecision::DoNotRetry => return Err(GiveUp::NotRetryable),
            RetryDecision::Retry { after } => after,
        };
        if attempts >= self.max_attempts {
            return Err(GiveUp::Exhausted);
        }
        let delay = match server_delay {
            Some(asked) if asked > self.max_server_delay => match self.over_cap {
                ServerDelayOverCap::GiveUp => return Err(GiveUp::ServerDelayTooLong(asked)),
                ServerDelayOverCap::WaitCap => self.max_server_delay,
            },
            Some(asked) => asked,
            None => self.backoff.delay(attempts, rng),
        };
        if let Some(max_elapsed) = self.max_elapsed {
            // No attempt starts after the deadline: if the next one would, stop now
            // rather than sleep for nothing.
            let next_start = Instant::now().saturating_duration_since(started) + delay;
            if next_start > max_elapsed {
                return Err(GiveUp::Timeout);
            }
        }
        if let Some(budget) = &self.budget
            && !budget.try_withdraw()
        {
            return Err(GiveUp::Budget);
        }
        Ok(delay)
    }

    /// The error for giving up, recording it.
    ///
    /// `error` is the error of the last attempt, `None` if it timed out; `previous` the
    /// last error an earlier attempt returned.
    pub(crate) fn give_up<E>(
        &self,
        why: GiveUp,
        attempts: u32,
        started: Instant,
        error: Option<E>,
        previous: Option<E>,
    ) -> RetryError<E> {
        self.metrics.give_up(why);
        tracing::debug!(
            retry.name = %self.name,
            attempts,
            reason = GiveUp::REASONS[why.index()],
            "giving up"
        );
        let error = match error {
            Some(error) => error,
            // The last attempt timed out: whatever the reason, report a timeout.
            None => {
                return RetryError::Timeout {
                    attempts,
                    elapsed: started.elapsed(),
                    last: previous,
                };
            }
        };
        match why {
            GiveUp::NotRetryable => RetryError::NotRetryable(error),
            GiveUp::Exhausted => RetryError::Exhausted {
                attempts,
                last: error,
            },
            GiveUp::Budget => RetryError::BudgetExhausted {
                attempts,
                last: error,
            },
            GiveUp::Timeout => RetryError::Timeout {
                attempts,
                elapsed: started.elapsed(),
                last: Some(error),
            },
            GiveUp::ServerDelayTooLong(requested) => RetryError::ServerDelayTooLong {
                attempts,
                requested,
                last: error,
            },
        }
    }
}
