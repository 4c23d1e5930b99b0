//! A trigger whose readings the test scripts, shared by the controller test binaries.
// Each test binary compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use otlp_degradation::trigger::{Thresholds, Trigger};
use tokio::time::Instant;

/// Readings a test feeds to a [`Scripted`] trigger: queued ones first, then the last one
/// again and again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Feed(Arc<Mutex<Readings>>);

/// Queued readings, and the one repeated once the queue is empty.
pub(crate) type Readings = (VecDeque<Option<f64>>, Option<f64>);

impl Feed {
    /// From now on read `value`.
    pub(crate) fn set(&self, value: f64) {
        let mut feed = self.0.lock().unwrap();
        feed.0.clear();
        feed.1 = Some(value);
    }

    /// Read `value` once, after whatever is queued.
    pub(crate) fn push(&self, value: Option<f64>) {
        self.0.lock().unwrap().0.push_back(value);
    }

    /// From now on give no reading.
    pub(crate) fn silence(&self) {
        let mut feed = self.0.lock().unwrap();
        feed.0.clear();
        feed.1 = None;
    }
}

#[derive(Debug)]
pub(crate) struct Scripted {
    name: String,
    feed: Feed,
}

impl Trigger for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    fn read(&mut self, _now: Instant) -> Option<f64> {
        let mut feed = self.feed.0.lock().unwrap();
        match feed.0.pop_front() {
            Some(value) => {
                feed.1 = value;
                value
            }
            None => feed.1,
        }
    }
}

pub(crate) fn scripted(name: &str) -> (Scripted, Feed) {
    let feed = Feed::default();
    (
        Scripted {
            name: name.to_owned(),
            feed: feed.clone(),
        },
        feed,
    )
}

/// Escalate at 10, 20, 30, 40; recover below 5, 15, 25, 35.
pub(crate) fn thresholds() -> Thresholds {
    Thresholds::new([10.0, 20.0, 30.0, 40.0], [5.0, 15.0, 25.0, 35.0])
}
