//! Wall-clock timing of steps.
//!
//! The workspace's `clippy.toml` bans `std::time::Instant` so that library code reads time
//! through `tokio::time` and tests can pause it. xtask has no runtime and only measures
//! how long external commands took, so it uses the standard clock here, in one place.
#![allow(clippy::disallowed_types)]

use std::time::{Duration, Instant};

/// Measures the time since it was started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stopwatch(Instant);

impl Stopwatch {
    pub(crate) fn start() -> Stopwatch {
        Stopwatch(Instant::now())
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}
