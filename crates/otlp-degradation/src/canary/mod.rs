//! Canary traffic split: shift traffic from a stable to a canary target in steps, compare
//! the two on every call, promote on success and roll back at once on a regression.
//!
//! The caller owns the two targets (exporters, later API upstreams) and asks
//! [`CanarySplit::pick`] which one a call goes to, then reports how the call went with
//! [`CanarySplit::record`]. The split:
//!
//! - holds each configured step ([`CanaryConfig::steps`], e.g. 1 %, 5 %, 25 %, 50 %,
//!   100 %) for at least [`CanaryConfig::step_hold`] and [`CanaryConfig::min_calls_per_step`]
//!   canary calls, then advances; after the last step the canary is promoted for good;
//! - once a step has [`CanaryConfig::min_calls_to_judge`] canary calls, compares on every
//!   record the canary's error rate and latency with the stable target's in the same step
//!   (or, when the stable target gets too little traffic, as at 100 %, with the last step
//!   where it got enough) and rolls back at once, weight 0, on a regression beyond
//!   [`CanaryConfig::max_error_rate_increase`] or [`CanaryConfig::max_latency_ratio`]
//!   (plus [`CanaryConfig::latency_slack`]);
//! - records every decision as a `tracing` event and in a bounded history.
//!
//! Choosing a target is lock-free (one atomic weight, one atomic random step); recording
//! takes a short mutex, which is noise next to the network call being recorded.
//!
//! ```
//! use std::time::Duration;
//! use otlp_degradation::canary::{CanaryConfig, CanarySplit, CanaryState, Target};
//!
//! let split = CanarySplit::new(CanaryConfig {
//!     steps: vec![0.1, 1.0],
//!     min_calls_per_step: 10,
//!     min_calls_to_judge: 10,
//!     step_hold: Duration::ZERO,
//!     seed: Some(7),
//!     ..CanaryConfig::default()
//! })?;
//! assert_eq!(split.state(), CanaryState::Stepping { step: 0 });
//!
//! // The canary fails every call: rolled back as soon as it has been judged.
//! for _ in 0..10 {
//!     split.record(Target::Stable, true, Duration::from_millis(3));
//!     split.record(Target::Canary, false, Duration::from_millis(3));
//! }
//! assert_eq!(split.state(), CanaryState::RolledBack);
//! assert_eq!(split.pick(), Target::Stable);
//! # Ok::<(), otlp_degradation::canary::CanaryConfigError>(())
//! ```

mod config;
mod decision;
mod window;

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

pub use config::{CanaryConfig, CanaryConfigError, LatencyStatistic};
pub use decision::{CanaryDecision, DecisionKind, DecisionReason};
pub use window::WindowStats;

use window::Window;

/// One of the two targets a call can go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The target known to work.
    Stable,
    /// The target being rolled out.
    Canary,
}

impl Target {
    /// Lower-case name for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Target::Stable => "stable",
            Target::Canary => "canary",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CanaryState {
    /// At step `step` (an index into [`CanaryConfig::steps`]).
    Stepping {
        /// The current step.
        step: usize,
    },
    /// Every step passed: the canary takes all traffic.
    Promoted,
    /// A regression (or an operator) stopped the rollout: the canary takes no traffic.
    RolledBack,
}

impl CanaryState {
    /// Whether the rollout is over (promoted or rolled back).
    pub const fn is_final(self) -> bool {
        !matches!(self, CanaryState::Stepping { .. })
    }

    /// Packed into one word so [`CanarySplit::state`] is a single atomic load.
    fn pack(self) -> u64 {
        match self {
            CanaryState::Stepping { step } => (step as u64) << 2,
            CanaryState::Promoted => 1,
            CanaryState::RolledBack => 2,
        }
    }

    fn unpack(word: u64) -> CanaryState {
        match word & 3 {
            1 => CanaryState::Promoted,
            2 => CanaryState::RolledBack,
            _ => CanaryState::Stepping {
                step: (word >> 2) as usize,
            },
        }
    }
}

/// A copy of a split's state and counters.
#[derive(Debug, Clone, PartialEq)]
pub struct CanarySnapshot {
    /// Where the rollout stands.
    pub state: CanaryState,
    /// The canary's share of traffic now.
    pub weight: f64,
    /// When the current step (or the final state) began.
    pub step_started: Instant,
    /// The canary's calls in the current step.
    pub canary: WindowStats,
    /// The stable target's calls in the current step.
    pub stable: WindowStats,
    /// The stable numbers of the last step in which the stable target had enough calls
    /// to judge against, if any.
    pub baseline: Option<WindowStats>,
    /// Canary calls recorded since the split was created.
    pub canary_calls_total: u64,
    /// Failed canary calls since the split was created.
    pub canary_errors_total: u64,
    /// Stable calls recorded since the split was created.
    pub stable_calls_total: u64,
    /// Failed stable calls since the split was created.
    pub stable_errors_total: u64,
}

/// `1.0` as a fixed-point weight: a random `u32` below the weight picks the canary, so
/// `2^32` always does and `0` never does.
const ONE: u64 = 1 << 32;

fn weight_to_fixed(weight: f64) -> u64 {
    (weight.clamp(0.0, 1.0) * ONE as f64).round() as u64
}

/// SplitMix64's finalizer: turns a counter or a weak hash into well-mixed bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a: fixed keys, so every gateway instance maps a key to the same target (unlike
/// `RandomState`). Its weak high bits are repaired by [`mix`].
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

#[derive(Debug)]
struct Rollout {
    state: CanaryState,
    step_started: Instant,
    canary: Window,
    stable: Window,
    baseline: Option<WindowStats>,
    history: VecDeque<CanaryDecision>,
    canary_calls_total: u64,
    canary_errors_total: u64,
    stable_calls_total: u64,
    stable_errors_total: u64,
}

/// Shifts traffic from a stable to a canary target in steps; see the
/// [module documentation](self).
pub struct CanarySplit {
    config: CanaryConfig,
    /// Fixed-point canary weight (see [`ONE`]), read by every pick.
    weight: AtomicU64,
    /// The same weight as configured (`f64` bits), so reports show `0.01`, not the
    /// nearest fixed-point value.
    weight_bits: AtomicU64,
    /// [`CanaryState::pack`]ed state, for lock-free reads.
    state: AtomicU64,
    /// SplitMix64 state: each pick adds the golden gamma and mixes the result.
    rng: AtomicU64,
    rollout: Mutex<Rollout>,
}

impl fmt::Debug for CanarySplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CanarySplit")
            .field("state", &self.state())
            .field("weight", &self.weight())
            .finish_non_exhaustive()
    }
}

impl CanarySplit {
    /// A split at its first step, starting now.
    ///
    /// # Errors
    ///
    /// The first invalid field of `config` ([`CanaryConfig::validate`]).
    pub fn new(config: CanaryConfig) -> Result<CanarySplit, CanaryConfigError> {
        config.validate()?;
        let now = Instant::now();
        let first = config.steps[0];
        let seed = config
            .seed
            .unwrap_or_else(|| RandomState::new().hash_one(0x63_61_6e_61_72_79u64));
        let split = CanarySplit {
            weight: AtomicU64::new(weight_to_fixed(first)),
            weight_bits: AtomicU64::new(first.to_bits()),
            state: AtomicU64::new(CanaryState::Stepping { step: 0 }.pack()),
            rng: AtomicU64::new(seed),
            rollout: Mutex::new(Rollout {
                state: CanaryState::Stepping { step: 0 },
                step_started: now,
                canary: Window::new(),
                stable: Window::new(),
                baseline: None,
                history: VecDeque::with_capacity(config.history_len.min(1024)),
                canary_calls_total: 0,
                canary_errors_total: 0,
                stable_calls_total: 0,
                stable_errors_total: 0,
            }),
            config,
        };
        {
            let mut rollout = split.lock();
            let decision = CanaryDecision {
                at: now,
                kind: DecisionKind::Started,
                reason: DecisionReason::Start,
                from_step: 0,
                to_step: 0,
                from_weight: 0.0,
                to_weight: first,
                canary: WindowStats::default(),
                stable: WindowStats::default(),
            };
            split.publish(&mut rollout, decision);
        }
        Ok(split)
    }

    /// The configuration.
    pub fn config(&self) -> &CanaryConfig {
        &self.config
    }

    /// The canary's share of traffic now, in `[0, 1]` (lock-free).
    pub fn weight(&self) -> f64 {
        f64::from_bits(self.weight_bits.load(Relaxed))
    }

    /// Where the rollout stands (lock-free).
    pub fn state(&self) -> CanaryState {
        CanaryState::unpack(self.state.load(Relaxed))
    }

    /// The target for one call, at random by the current weight: lock-free, one atomic
    /// add and a few multiplications.
    #[inline]
    pub fn pick(&self) -> Target {
        let r = mix(self
            .rng
            .fetch_add(GOLDEN_GAMMA, Relaxed)
            .wrapping_add(GOLDEN_GAMMA));
        self.target_for(r)
    }

    /// The target for a call identified by `key` (a tenant, a session, a trace id):
    /// the same key always gets the same answer at the same weight, on every instance
    /// of the same build. As the weight grows, a key that went to the canary stays there.
    pub fn pick_for_key<K: Hash + ?Sized>(&self, key: &K) -> Target {
        let mut hasher = KeyHasher(0xCBF2_9CE4_8422_2325);
        key.hash(&mut hasher);
        self.target_for(mix(hasher.finish()))
    }

    #[inline]
    fn target_for(&self, random: u64) -> Target {
        if (random >> 32) < self.weight.load(Relaxed) {
            Target::Canary
        } else {
            Target::Stable
        }
    }

    /// Report how a call to `target` went. Runs the regression check (once the step has
    /// enough canary calls) and the promotion check; returns the decision this call
    /// caused, if any. Calls recorded after the rollout ended only count in the totals.
    pub fn record(
        &self,
        target: Target,
        success: bool,
        latency: Duration,
    ) -> Option<CanaryDecision> {
        let now = Instant::now();
        let mut rollout = self.lock();
        match target {
            Target::Canary => {
                rollout.canary_calls_total += 1;
                rollout.canary_errors_total += u64::from(!success);
            }
            Target::Stable => {
                rollout.stable_calls_total += 1;
                rollout.stable_errors_total += u64::from(!success);
            }
        }
        if rollout.state.is_final() {
            return None;
        }
        match target {
            Target::Canary => rollout.canary.record(success, latency),
            Target::Stable => rollout.stable.record(success, latency),
        }
        self.decide(&mut rollout, now)
    }

    /// Run the promotion check without a new call, e.g. from a timer when traffic is
    /// sparse and the step's hold time ends between calls. The decision taken, if any.
    pub fn evaluate(&self) -> Option<CanaryDecision> {
        let now = Instant::now();
        let mut rollout = self.lock();
        if rollout.state.is_final() {
            return None;
        }
        self.decide(&mut rollout, now)
    }

    /// Stop the rollout now: weight 0, state [`CanaryState::RolledBack`]. `None` when it
    /// had already ended.
    pub fn roll_back(&self, why: impl Into<String>) -> Option<CanaryDecision> {
        let now = Instant::now();
        let mut rollout = self.lock();
        if rollout.state.is_final() {
            return None;
        }
        let canary = rollout.canary.stats(self.config.latency_statistic);
        let stable = self.reference(&rollout).unwrap_or_default();
        Some(self.finish_rollback(
            &mut rollout,
            now,
            DecisionReason::Operator(why.into()),
            canary,
            stable,
        ))
    }

    /// The decisions taken so far, oldest first (at most [`CanaryConfig::history_len`]).
    pub fn history(&self) -> Vec<CanaryDecision> {
        self.lock().history.iter().cloned().collect()
    }

    /// A copy of the state and counters.
    pub fn snapshot(&self) -> CanarySnapshot {
        let rollout = self.lock();
        CanarySnapshot {
            state: rollout.state,
            weight: self.weight(),
            step_started: rollout.step_started,
            canary: rollout.canary.stats(self.config.latency_statistic),
            stable: rollout.stable.stats(self.config.latency_statistic),
            baseline: rollout.baseline,
            canary_calls_total: rollout.canary_calls_total,
            canary_errors_total: rollout.canary_errors_total,
            stable_calls_total: rollout.stable_calls_total,
            stable_errors_total: rollout.stable_errors_total,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rollout> {
        // The rollout's invariants hold between statements, so a panic elsewhere while
        // the lock was held leaves nothing half-written worth refusing to read.
        self.rollout.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stable numbers to compare the canary with: this step's, when the stable target
    /// had enough calls, else the last step's that had.
    fn reference(&self, rollout: &Rollout) -> Option<WindowStats> {
        if rollout.stable.calls() >= self.config.min_calls_to_judge {
            Some(rollout.stable.stats(self.config.latency_statistic))
        } else {
            rollout.baseline
        }
    }

    /// The regression, if the canary has one against `stable`. Without any stable
    /// numbers the canary's error rate is compared with zero and its latency is not
    /// judged (there is nothing to compare it with).
    fn regression(
        &self,
        canary: &WindowStats,
        stable: Option<&WindowStats>,
    ) -> Option<DecisionReason> {
        let stable_rate = stable.map_or(0.0, |s| s.error_rate);
        if canary.error_rate - stable_rate > self.config.max_error_rate_increase {
            return Some(DecisionReason::ErrorRateRegression {
                canary: canary.error_rate,
                stable: stable_rate,
                max_increase: self.config.max_error_rate_increase,
            });
        }
        let (Some(c), Some(s)) = (canary.latency, stable.and_then(|s| s.latency)) else {
            return None;
        };
        let ratio = if s.is_zero() {
            f64::INFINITY
        } else {
            c.as_secs_f64() / s.as_secs_f64()
        };
        if ratio > self.config.max_latency_ratio && c.saturating_sub(s) > self.config.latency_slack
        {
            return Some(DecisionReason::LatencyRegression {
                canary: c,
                stable: s,
                ratio,
                max_ratio: self.config.max_latency_ratio,
            });
        }
        None
    }

    fn decide(&self, rollout: &mut Rollout, now: Instant) -> Option<CanaryDecision> {
        let CanaryState::Stepping { step } = rollout.state else {
            return None;
        };
        let canary_calls = rollout.canary.calls();
        let held = now.saturating_duration_since(rollout.step_started);
        let may_advance =
            held >= self.config.step_hold && canary_calls >= self.config.min_calls_per_step;
        // A stable call can move the reference too, so judge after either kind of call
        // once the canary has enough calls.
        if canary_calls < self.config.min_calls_to_judge && !may_advance {
            return None;
        }
        let canary = rollout.canary.stats(self.config.latency_statistic);
        let stable = self.reference(rollout);
        if let Some(reason) = self.regression(&canary, stable.as_ref()) {
            return Some(self.finish_rollback(
                rollout,
                now,
                reason,
                canary,
                stable.unwrap_or_default(),
            ));
        }
        if !may_advance {
            return None;
        }
        if rollout.stable.calls() >= self.config.min_calls_to_judge {
            rollout.baseline = Some(rollout.stable.stats(self.config.latency_statistic));
        }
        let from_weight = self.config.steps[step];
        let (kind, next_state, to_step, to_weight) = match self.config.steps.get(step + 1) {
            Some(&w) => (
                DecisionKind::Advanced,
                CanaryState::Stepping { step: step + 1 },
                step + 1,
                w,
            ),
            None => (DecisionKind::Promoted, CanaryState::Promoted, step, 1.0),
        };
        self.enter(rollout, now, next_state, to_weight);
        let decision = CanaryDecision {
            at: now,
            kind,
            reason: DecisionReason::StepPassed { held },
            from_step: step,
            to_step,
            from_weight,
            to_weight,
            canary,
            stable: stable.unwrap_or_default(),
        };
        self.publish(rollout, decision.clone());
        Some(decision)
    }

    fn finish_rollback(
        &self,
        rollout: &mut Rollout,
        now: Instant,
        reason: DecisionReason,
        canary: WindowStats,
        stable: WindowStats,
    ) -> CanaryDecision {
        let step = match rollout.state {
            CanaryState::Stepping { step } => step,
            _ => self.config.steps.len() - 1,
        };
        let from_weight = self.weight();
        self.enter(rollout, now, CanaryState::RolledBack, 0.0);
        let decision = CanaryDecision {
            at: now,
            kind: DecisionKind::RolledBack,
            reason,
            from_step: step,
            to_step: step,
            from_weight,
            to_weight: 0.0,
            canary,
            stable,
        };
        self.publish(rollout, decision.clone());
        decision
    }

    fn enter(&self, rollout: &mut Rollout, now: Instant, state: CanaryState, weight: f64) {
        rollout.state = state;
        rollout.step_started = now;
        rollout.canary.reset();
        rollout.stable.reset();
        self.weight.store(weight_to_fixed(weight), Relaxed);
        self.weight_bits.store(weight.to_bits(), Relaxed);
        self.state.store(state.pack(), Relaxed);
    }

    fn publish(&self, rollout: &mut Rollout, decision: CanaryDecision) {
        match decision.kind {
            DecisionKind::RolledBack => tracing::warn!(
                target: "otlp_degradation::canary",
                decision = decision.kind.as_str(),
                step = decision.from_step,
                from_weight = decision.from_weight,
                to_weight = decision.to_weight,
                canary_calls = decision.canary.calls,
                canary_error_rate = decision.canary.error_rate,
                stable_calls = decision.stable.calls,
                stable_error_rate = decision.stable.error_rate,
                canary_latency = ?decision.canary.latency,
                stable_latency = ?decision.stable.latency,
                "canary rolled back: {}",
                decision.reason
            ),
            _ => tracing::info!(
                target: "otlp_degradation::canary",
                decision = decision.kind.as_str(),
                from_step = decision.from_step,
                to_step = decision.to_step,
                from_weight = decision.from_weight,
                to_weight = decision.to_weight,
                canary_calls = decision.canary.calls,
                canary_error_rate = decision.canary.error_rate,
                stable_calls = decision.stable.calls,
                stable_error_rate = decision.stable.error_rate,
                canary_latency = ?decision.canary.latency,
                stable_latency = ?decision.stable.latency,
                "canary {}: {}",
                decision.kind.as_str(),
                decision.reason
            ),
        }
        if rollout.history.len() == self.config.history_len {
            rollout.history.pop_front();
        }
        rollout.history.push_back(decision);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_packs_losslessly() {
        for state in [
            CanaryState::Stepping { step: 0 },
            CanaryState::Stepping { step: 7 },
            CanaryState::Promoted,
            CanaryState::RolledBack,
        ] {
            assert_eq!(CanaryState::unpack(state.pack()), state);
        }
    }

    #[test]
    fn fixed_point_extremes() {
        assert_eq!(weight_to_fixed(0.0), 0);
        assert_eq!(weight_to_fixed(1.0), ONE);
        // Every random u32 is below ONE, none below 0.
        const { assert!((u64::MAX >> 32) < ONE) };
    }
}
