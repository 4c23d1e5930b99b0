//! Circuit breaker: `tracing` events (alone in this binary, because tracing caches
//! callsite interest process-wide).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use otlp_resilience::breaker::{CircuitBreaker, CircuitBreakerConfig};
use otlp_resilience::classify::Outcome;

/// A `tracing` subscriber that keeps each event's level and message.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<(tracing::Level, String)>>>);

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Logs {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        if let Ok(mut v) = self.0.lock() {
            v.push((*event.metadata().level(), message.0));
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn transitions_are_logged_info_and_operator_actions_warn() {
    let logs = Logs::default();
    let b = CircuitBreaker::new(
        CircuitBreakerConfig::builder()
            .name("exporter")
            .minimum_calls(1)
            .build()
            .expect("valid"),
    );
    tracing::subscriber::with_default(logs.clone(), || {
        b.try_acquire()
            .expect("admitted")
            .record(Outcome::Failure, Duration::ZERO);
        b.force_open();
        b.disable();
        b.reset();
    });
    let logs = logs.0.lock().expect("lock").clone();
    let levels: Vec<_> = logs.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        levels,
        [
            tracing::Level::INFO,
            tracing::Level::WARN,
            tracing::Level::WARN,
            tracing::Level::INFO
        ]
    );
    assert_eq!(
        logs[0].1,
        "circuit breaker closed -> open: failure rate 100.0% >= 50.0%"
    );
    assert_eq!(logs[1].1, "circuit breaker forced_open by an operator");
    assert_eq!(logs[3].1, "circuit breaker disabled -> closed: reset");
}
