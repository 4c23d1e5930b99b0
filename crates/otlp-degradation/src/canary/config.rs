//! What a canary rollout does: its steps, how long each is held, and what counts as a
//! regression.

use std::time::Duration;

/// Which latency number of a window is compared between canary and stable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyStatistic {
    /// The arithmetic mean: steady, but blind to a slow tail.
    Mean,
    /// A quantile in `(0, 1]`, e.g. `0.9` for p90 (read from a log-linear histogram with
    /// about 6 % resolution).
    Quantile(f64),
}

impl Default for LatencyStatistic {
    /// p90. A step sees tens to a few hundred canary calls in practice; over that many, p99
    /// is the slowest call or two, so one cold connection or pause would roll back a
    /// healthy canary. p90 needs about one call in ten to be slow, which a real tail
    /// regression produces. Pick `Quantile(0.99)` when steps see thousands of calls.
    fn default() -> LatencyStatistic {
        LatencyStatistic::Quantile(0.9)
    }
}

/// Configuration of a [`CanarySplit`](super::CanarySplit).
///
/// The defaults suit an exporter target that sees tens of calls a second; each field
/// says why its default is what it is.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryConfig {
    /// The canary's share of traffic at each step, strictly increasing, each in `(0, 1]`.
    /// After the last step passes the canary takes all traffic (`1.0`), whether or not
    /// the list ends with `1.0`; ending with `1.0` holds and judges full traffic once more
    /// against the stable baseline before declaring it promoted.
    ///
    /// Default `[0.01, 0.05, 0.25, 0.5, 1.0]`: a broken canary first hurts 1 % of
    /// traffic, and each step at most doubles-to-quintuples the exposure.
    pub steps: Vec<f64>,
    /// The least time each step is held before it may be promoted. Default 60 s: several
    /// batch and export cycles, so a regression that needs some load or a connection
    /// refresh to show has a chance to.
    pub step_hold: Duration,
    /// The least canary calls a step must see before it may be promoted (a step held for
    /// its time without traffic proves nothing). Default 100.
    pub min_calls_per_step: u64,
    /// Canary calls in the current step before the regression check runs; from then on it
    /// runs on every recorded call, so a regression rolls back at once rather than at the
    /// end of the step. Default 20: one failed call out of the first three is not a 33 %
    /// error rate worth a rollback, while 20 calls already show a real jump.
    pub min_calls_to_judge: u64,
    /// Roll back when the canary's error rate exceeds the stable one by more than this
    /// (absolute, `0.05` = five percentage points). Default 0.05: clearly worse than
    /// stable, yet above the noise of a few unlucky calls in a window of 20 to 100.
    pub max_error_rate_increase: f64,
    /// Which latency number is compared. Default p90 (see [`LatencyStatistic`]).
    pub latency_statistic: LatencyStatistic,
    /// Roll back when the canary's latency statistic exceeds the stable one times this
    /// ratio... Default 1.5: a 50 % slowdown is a regression an operator wants to know about.
    pub max_latency_ratio: f64,
    /// ...and by more than this absolute difference. Default 5 ms: below it, loopback and
    /// scheduler noise would double a sub-millisecond latency without anyone noticing.
    pub latency_slack: Duration,
    /// How many decisions [`CanarySplit::history`](super::CanarySplit::history) keeps
    /// (oldest dropped first). Default 64: a whole rollout and a few restarts.
    pub history_len: usize,
    /// Seed of the random choice in [`CanarySplit::pick`](super::CanarySplit::pick), for
    /// reproducible tests. Default `None`: a random seed per split.
    pub seed: Option<u64>,
}

impl Default for CanaryConfig {
    fn default() -> CanaryConfig {
        CanaryConfig {
            steps: vec![0.01, 0.05, 0.25, 0.5, 1.0],
            step_hold: Duration::from_secs(60),
            min_calls_per_step: 100,
            min_calls_to_judge: 20,
            max_error_rate_increase: 0.05,
            latency_statistic: LatencyStatistic::default(),
            max_latency_ratio: 1.5,
            latency_slack: Duration::from_millis(5),
            history_len: 64,
            seed: None,
        }
    }
}

/// A [`CanaryConfig`] field with a value that cannot work. The message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CanaryConfigError {
    /// `steps` is empty.
    #[error("canary.steps is empty; list at least one traffic share, e.g. [0.05, 0.5, 1.0]")]
    NoSteps,
    /// A step is outside `(0, 1]` or not a number.
    #[error("canary.steps[{index}] = {value} is not a share in (0, 1]; write 5 % as 0.05")]
    StepOutOfRange {
        /// Position in `steps`.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A step is not larger than the one before it.
    #[error(
        "canary.steps[{index}] = {value} does not exceed the step before it; list shares in increasing order"
    )]
    StepsNotIncreasing {
        /// Position in `steps`.
        index: usize,
        /// The value.
        value: f64,
    },
    /// `min_calls_per_step` is zero.
    #[error("canary.min_calls_per_step is 0; a step needs at least one canary call to be judged")]
    ZeroMinCallsPerStep,
    /// `min_calls_to_judge` is zero.
    #[error("canary.min_calls_to_judge is 0; set it to at least 1 (default 20)")]
    ZeroMinCallsToJudge,
    /// `max_error_rate_increase` is outside `[0, 1]`.
    #[error(
        "canary.max_error_rate_increase = {0} is not in [0, 1]; it is an absolute difference of error rates, e.g. 0.05"
    )]
    ErrorRateIncreaseOutOfRange(f64),
    /// `max_latency_ratio` is below 1 or not finite.
    #[error(
        "canary.max_latency_ratio = {0} must be a finite number of at least 1.0 (e.g. 1.5 = 50 % slower)"
    )]
    LatencyRatioOutOfRange(f64),
    /// The latency quantile is outside `(0, 1]`.
    #[error("canary.latency_statistic quantile {0} is not in (0, 1]; use e.g. 0.9 for p90")]
    QuantileOutOfRange(f64),
    /// `history_len` is zero.
    #[error("canary.history_len is 0; keep at least one decision")]
    ZeroHistory,
}

impl CanaryConfig {
    /// Check every field; the first problem found.
    ///
    /// # Errors
    ///
    /// A [`CanaryConfigError`] naming the field and what to write instead.
    pub fn validate(&self) -> Result<(), CanaryConfigError> {
        if self.steps.is_empty() {
            return Err(CanaryConfigError::NoSteps);
        }
        let mut previous = 0.0;
        for (index, &value) in self.steps.iter().enumerate() {
            // `!(a && b)` also catches NaN.
            if !(value > 0.0 && value <= 1.0) {
                return Err(CanaryConfigError::StepOutOfRange { index, value });
            }
            if value <= previous {
                return Err(CanaryConfigError::StepsNotIncreasing { index, value });
            }
            previous = value;
        }
        if self.min_calls_per_step == 0 {
            return Err(CanaryConfigError::ZeroMinCallsPerStep);
        }
        if self.min_calls_to_judge == 0 {
            return Err(CanaryConfigError::ZeroMinCallsToJudge);
        }
        if !(0.0..=1.0).contains(&self.max_error_rate_increase) {
            return Err(CanaryConfigError::ErrorRateIncreaseOutOfRange(
                self.max_error_rate_increase,
            ));
        }
        if !(self.max_latency_ratio.is_finite() && self.max_latency_ratio >= 1.0) {
            return Err(CanaryConfigError::LatencyRatioOutOfRange(
                self.max_latency_ratio,
            ));
        }
        if let LatencyStatistic::Quantile(q) = self.latency_statistic
            && !(q > 0.0 && q <= 1.0)
        {
            return Err(CanaryConfigError::QuantileOutOfRange(q));
        }
        if self.history_len == 0 {
            return Err(CanaryConfigError::ZeroHistory);
        }
        Ok(())
    }
}
