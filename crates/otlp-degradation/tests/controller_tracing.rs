//! Transition events through `tracing`.
//!
//! Its own test binary on purpose: `tracing` caches per-callsite interest globally, and a
//! test on another thread that hits the controller's `info!` callsites first, with no
//! subscriber, can cache "never" while this test installs its scoped subscriber (the
//! race made CI miss the info-level events). Alone in its binary, nothing races it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use otlp_degradation::DegradationLevel::Emergency;
use otlp_degradation::controller::Controller;
use tokio::time::Instant;

mod support;

use support::scripted::{scripted, thresholds};

/// Every `tracing` event: its level and its fields as text.
#[derive(Debug, Clone, Default)]
struct Events(Arc<Mutex<Vec<Recorded>>>);

/// An event's level and its fields as (name, value) text.
type Recorded = (tracing::Level, Vec<(String, String)>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl tracing::Subscriber for Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Events {
    /// (level, `from`, `to`) of each transition event.
    fn transitions(&self) -> Vec<(tracing::Level, String, String)> {
        let field = |fields: &[(String, String)], name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(level, fields)| {
                Some((*level, field(fields, "from")?, field(fields, "to")?))
            })
            .collect()
    }
}

#[test]
fn every_transition_is_a_tracing_event_and_warns_at_heavy_and_above() {
    use tracing::Level;
    let events = Events::default();
    tracing::subscriber::with_default(events.clone(), || {
        let (trigger, feed) = scripted("load");
        let mut controller = Controller::builder()
            .cool_down(Duration::ZERO)
            .trigger(trigger, thresholds())
            .build()
            .unwrap();
        let handle = controller.handle();
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        feed.set(12.0);
        controller.evaluate_once(at(1)); // -> light
        feed.set(33.0);
        controller.evaluate_once(at(2)); // -> heavy
        feed.set(0.0);
        controller.evaluate_once(at(3)); // -> moderate
        handle.pin(Emergency);
        handle.disable();
    });
    let transitions = events.transitions();
    let expected = [
        (Level::INFO, "normal", "light"),
        (Level::WARN, "light", "heavy"),
        (Level::INFO, "heavy", "moderate"),
        (Level::WARN, "moderate", "emergency"),
        (Level::INFO, "emergency", "normal"),
    ];
    let transitions: Vec<(Level, &str, &str)> = transitions
        .iter()
        .map(|(l, f, t)| (*l, f.as_str(), t.as_str()))
        .collect();
    assert_eq!(transitions, expected);
    let recorded = events.0.lock().unwrap();
    let escalation = &recorded.iter().find(|(l, _)| *l == Level::WARN).unwrap().1;
    let reason = escalation
        .iter()
        .find(|(n, _)| n == "reason")
        .map(|(_, v)| v.as_str());
    assert_eq!(reason, Some("trigger load read 33 (threshold 30)"));
}
