//! Degradation levels and the lock-free cell the hot path reads them from.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

/// How hard the pipeline sheds work, from nothing dropped to errors only.
///
/// Levels are ordered: `Normal < Light < Moderate < Heavy < Emergency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum DegradationLevel {
    /// Everything is kept.
    #[default]
    Normal = 0,
    /// First step: sample, strip denied attributes (verbose ones from `Moderate` on).
    Light = 1,
    /// Second step.
    Moderate = 2,
    /// Third step.
    Heavy = 3,
    /// Last step: keep errors (and what the policy marks critical) only.
    Emergency = 4,
}

impl DegradationLevel {
    /// Every level, lowest first.
    pub const ALL: [DegradationLevel; 5] = [
        DegradationLevel::Normal,
        DegradationLevel::Light,
        DegradationLevel::Moderate,
        DegradationLevel::Heavy,
        DegradationLevel::Emergency,
    ];

    /// Lower-case name for logs, metric labels and configuration: `normal`, `light`,
    /// `moderate`, `heavy`, `emergency`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DegradationLevel::Normal => "normal",
            DegradationLevel::Light => "light",
            DegradationLevel::Moderate => "moderate",
            DegradationLevel::Heavy => "heavy",
            DegradationLevel::Emergency => "emergency",
        }
    }

    /// Position in [`DegradationLevel::ALL`] (0 for `Normal` .. 4 for `Emergency`).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The level at `index` in [`DegradationLevel::ALL`]; indexes past the end give
    /// `Emergency`.
    pub const fn from_index(index: usize) -> DegradationLevel {
        match index {
            0 => DegradationLevel::Normal,
            1 => DegradationLevel::Light,
            2 => DegradationLevel::Moderate,
            3 => DegradationLevel::Heavy,
            _ => DegradationLevel::Emergency,
        }
    }

    /// One level lower (`Normal` stays `Normal`).
    pub const fn down(self) -> DegradationLevel {
        match self {
            DegradationLevel::Normal => DegradationLevel::Normal,
            other => DegradationLevel::from_index(other.index() - 1),
        }
    }

    /// One level higher (`Emergency` stays `Emergency`).
    pub const fn up(self) -> DegradationLevel {
        DegradationLevel::from_index(self.index() + 1)
    }
}

impl fmt::Display for DegradationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a degradation level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown degradation level {0:?}; use normal, light, moderate, heavy or emergency")]
pub struct UnknownLevel(pub String);

impl FromStr for DegradationLevel {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DegradationLevel::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownLevel(s.to_owned()))
    }
}

/// The current level, readable from any thread without a lock (one relaxed atomic
/// load). The controller writes it; pipeline stages read it per request.
#[derive(Debug, Default)]
pub struct AtomicLevel(AtomicU8);

impl AtomicLevel {
    /// A cell holding `level`.
    pub const fn new(level: DegradationLevel) -> AtomicLevel {
        AtomicLevel(AtomicU8::new(level as u8))
    }

    /// The current level.
    #[inline]
    pub fn load(&self) -> DegradationLevel {
        DegradationLevel::from_index(usize::from(self.0.load(Ordering::Relaxed)))
    }

    /// Set the level; the previous one.
    pub fn swap(&self, level: DegradationLevel) -> DegradationLevel {
        DegradationLevel::from_index(usize::from(self.0.swap(level as u8, Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_names_and_steps() {
        assert!(DegradationLevel::Normal < DegradationLevel::Emergency);
        for (i, level) in DegradationLevel::ALL.into_iter().enumerate() {
            assert_eq!(level.index(), i);
            assert_eq!(DegradationLevel::from_index(i), level);
            assert_eq!(level.as_str().parse::<DegradationLevel>(), Ok(level));
        }
        assert_eq!(DegradationLevel::Normal.down(), DegradationLevel::Normal);
        assert_eq!(
            DegradationLevel::Emergency.up(),
            DegradationLevel::Emergency
        );
        assert_eq!(DegradationLevel::Heavy.down(), DegradationLevel::Moderate);
        assert_eq!("HEAVY".parse(), Ok(DegradationLevel::Heavy));
        assert!("severe".parse::<DegradationLevel>().is_err());
    }

    #[test]
    fn atomic_level() {
        let cell = AtomicLevel::new(DegradationLevel::Light);
        assert_eq!(cell.load(), DegradationLevel::Light);
        assert_eq!(cell.swap(DegradationLevel::Heavy), DegradationLevel::Light);
        assert_eq!(cell.load(), DegradationLevel::Heavy);
    }
}
