//! The breaker's state packed into one `u64`, so every transition and every half-open
//! permit is a single compare-and-swap.
//!
//! ```text
//! bits  0..3   tag: CLOSED, OPEN, HALF_OPEN, FORCED_OPEN, DISABLED, TRANSIT
//! bit   3      EVAL (closed): failures were seen below the minimum number of calls, so
//!              successes must evaluate the rates too until the minimum is reached
//!              ARMED (open): a timer task moves the breaker to half-open when the wait
//!              is over, so rejections do not read the clock
//! bits  4..14  half-open: probes outstanding      | transit: the target tag
//! bits 14..24  half-open: probes completed
//! bits 24..34  half-open: probes that failed
//! bits 34..44  half-open: probes that were slow
//! bits 44..64  generation: +1 on every transition, so a permit from an earlier state
//!              can never be mistaken for one of the current state
//! ```
//!
//! `TRANSIT` is held by the one thread that won the transition's CAS while it sets the
//! open-until time, clears the window, etc.; nobody else changes the word meanwhile.

use super::BreakerState;

pub(crate) const TAG_MASK: u64 = 0b111;
pub(crate) const CLOSED: u64 = 0;
pub(crate) const OPEN: u64 = 1;
pub(crate) const HALF_OPEN: u64 = 2;
pub(crate) const FORCED_OPEN: u64 = 3;
pub(crate) const DISABLED: u64 = 4;
pub(crate) const TRANSIT: u64 = 5;

pub(crate) const EVAL: u64 = 1 << 3;
/// The same bit in an OPEN word: the automatic half-open timer is armed.
pub(crate) const ARMED: u64 = 1 << 3;

const FIELD_MASK: u64 = (1 << 10) - 1;
/// The largest number of half-open probes the word can count.
pub(crate) const MAX_PROBES: u32 = 1000;
const OUTSTANDING_SHIFT: u32 = 4;
const COMPLETED_SHIFT: u32 = 14;
const FAILED_SHIFT: u32 = 24;
const SLOW_SHIFT: u32 = 34;
const TARGET_SHIFT: u32 = 4;
const GEN_SHIFT: u32 = 44;
const GEN_MASK: u64 = (1 << 20) - 1;

/// One outstanding probe, to add or subtract.
pub(crate) const ONE_OUTSTANDING: u64 = 1 << OUTSTANDING_SHIFT;

#[inline]
pub(crate) const fn tag(word: u64) -> u64 {
    word & TAG_MASK
}

#[inline]
pub(crate) const fn generation(word: u64) -> u32 {
    ((word >> GEN_SHIFT) & GEN_MASK) as u32
}

#[inline]
pub(crate) const fn next_generation(word: u64) -> u32 {
    ((generation(word) as u64 + 1) & GEN_MASK) as u32
}

/// A plain word (no probe fields) with `tag` and generation `gen`.
#[inline]
pub(crate) const fn word(tag: u64, generation: u32) -> u64 {
    tag | ((generation as u64 & GEN_MASK) << GEN_SHIFT)
}

/// The transit word announcing a transition to `target`.
#[inline]
pub(crate) const fn transit(target: u64, generation: u32) -> u64 {
    word(TRANSIT, generation) | (target << TARGET_SHIFT)
}

#[inline]
pub(crate) const fn transit_target(word: u64) -> u64 {
    (word >> TARGET_SHIFT) & TAG_MASK
}

/// The half-open probe counters of a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probes {
    pub(crate) outstanding: u32,
    pub(crate) completed: u32,
    pub(crate) failed: u32,
    pub(crate) slow: u32,
}

impl Probes {
    #[inline]
    pub(crate) const fn of(word: u64) -> Probes {
        Probes {
            outstanding: ((word >> OUTSTANDING_SHIFT) & FIELD_MASK) as u32,
            completed: ((word >> COMPLETED_SHIFT) & FIELD_MASK) as u32,
            failed: ((word >> FAILED_SHIFT) & FIELD_MASK) as u32,
            slow: ((word >> SLOW_SHIFT) & FIELD_MASK) as u32,
        }
    }

    /// `word` with its probe fields replaced by `self`.
    #[inline]
    pub(crate) const fn apply(self, word: u64) -> u64 {
        let cleared = word
            & !((FIELD_MASK << OUTSTANDING_SHIFT)
                | (FIELD_MASK << COMPLETED_SHIFT)
                | (FIELD_MASK << FAILED_SHIFT)
                | (FIELD_MASK << SLOW_SHIFT));
        cleared
            | ((self.outstanding as u64 & FIELD_MASK) << OUTSTANDING_SHIFT)
            | ((self.completed as u64 & FIELD_MASK) << COMPLETED_SHIFT)
            | ((self.failed as u64 & FIELD_MASK) << FAILED_SHIFT)
            | ((self.slow as u64 & FIELD_MASK) << SLOW_SHIFT)
    }
}

/// The public state a word stands for (a transit word stands for its target).
pub(crate) const fn public_state(word: u64) -> BreakerState {
    let t = match tag(word) {
        TRANSIT => transit_target(word),
        t => t,
    };
    state_of_tag(t)
}

pub(crate) const fn state_of_tag(tag: u64) -> BreakerState {
    match tag {
        OPEN => BreakerState::Open,
        HALF_OPEN => BreakerState::HalfOpen,
        FORCED_OPEN => BreakerState::ForcedOpen,
        DISABLED => BreakerState::Disabled,
        _ => BreakerState::Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let w = word(HALF_OPEN, 12345);
        let p = Probes {
            outstanding: 3,
            completed: 1000,
            failed: 7,
            slow: 999,
        };
        let w2 = p.apply(w);
        assert_eq!(tag(w2), HALF_OPEN);
        assert_eq!(generation(w2), 12345);
        assert_eq!(Probes::of(w2), p);
        assert_eq!(Probes::of(w2 - ONE_OUTSTANDING).outstanding, 2);
    }

    #[test]
    fn generation_wraps_and_transit_keeps_target() {
        let w = word(CLOSED, GEN_MASK as u32);
        assert_eq!(next_generation(w), 0);
        let t = transit(OPEN, 7);
        assert_eq!(tag(t), TRANSIT);
        assert_eq!(transit_target(t), OPEN);
        assert_eq!(public_state(t), BreakerState::Open);
        assert_eq!(generation(t), 7);
        assert_eq!(
            public_state(word(DISABLED, 1) | EVAL),
            BreakerState::Disabled
        );
    }
}
