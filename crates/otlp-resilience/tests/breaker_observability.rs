//! Circuit breaker: OpenTelemetry instruments (the `tracing` events are checked in
//! `breaker_tracing.rs`, alone in their binary: tracing caches callsite interest
//! process-wide, so a test on another thread could hide them).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{
    AsyncInstrument, AsyncInstrumentBuilder, Callback, Counter, InstrumentBuilder,
    InstrumentProvider, Meter, ObservableCounter, ObservableGauge, SyncInstrument,
};
use otlp_resilience::breaker::{CircuitBreaker, CircuitBreakerConfig, SlidingWindow};
use otlp_resilience::classify::Outcome;

type Measurements = Arc<Mutex<Vec<(String, u64, Vec<KeyValue>)>>>;

/// An OpenTelemetry "SDK" that keeps the callbacks and the synchronous measurements.
#[derive(Default)]
struct Capture {
    callbacks: Mutex<Vec<(String, Callback<u64>)>>,
    measured: Measurements,
}

struct Recorder {
    name: String,
    sink: Measurements,
}

impl SyncInstrument<u64> for Recorder {
    fn measure(&self, value: u64, attributes: &[KeyValue]) {
        if let Ok(mut v) = self.sink.lock() {
            v.push((self.name.clone(), value, attributes.to_vec()));
        }
    }
}

impl InstrumentProvider for Capture {
    fn u64_counter(&self, builder: InstrumentBuilder<'_, Counter<u64>>) -> Counter<u64> {
        Counter::new(Arc::new(Recorder {
            name: builder.name.to_string(),
            sink: Arc::clone(&self.measured),
        }))
    }

    fn u64_observable_counter(
        &self,
        builder: AsyncInstrumentBuilder<'_, ObservableCounter<u64>, u64>,
    ) -> ObservableCounter<u64> {
        self.keep(builder.name.to_string(), builder.callbacks);
        ObservableCounter::new()
    }

    fn u64_observable_gauge(
        &self,
        builder: AsyncInstrumentBuilder<'_, ObservableGauge<u64>, u64>,
    ) -> ObservableGauge<u64> {
        self.keep(builder.name.to_string(), builder.callbacks);
        ObservableGauge::new()
    }
}

impl Capture {
    fn keep(&self, name: String, callbacks: Vec<Callback<u64>>) {
        if let Ok(mut v) = self.callbacks.lock() {
            v.extend(callbacks.into_iter().map(|c| (name.clone(), c)));
        }
    }

    /// Runs the callbacks of `instrument` as a collection would.
    fn collect(&self, instrument: &str) -> Vec<(u64, Vec<KeyValue>)> {
        let observer = Observer::default();
        let callbacks = self.callbacks.lock().expect("lock");
        for (name, callback) in callbacks.iter() {
            if name == instrument {
                callback(&observer);
            }
        }
        observer.0.into_inner().expect("lock")
    }
}

#[derive(Default)]
struct Observer(Mutex<Vec<(u64, Vec<KeyValue>)>>);

impl AsyncInstrument<u64> for Observer {
    fn observe(&self, value: u64, attributes: &[KeyValue]) {
        if let Ok(mut v) = self.0.lock() {
            v.push((value, attributes.to_vec()));
        }
    }
}

fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

fn value_for(measured: &[(u64, Vec<KeyValue>)], key: &str, value: &str) -> Option<u64> {
    measured
        .iter()
        .find(|(_, attrs)| attr(attrs, key).as_deref() == Some(value))
        .map(|(v, _)| *v)
}

#[test]
fn instruments_report_calls_state_and_transitions() {
    let capture = Arc::new(Capture::default());
    let meter = Meter::new(Arc::clone(&capture) as Arc<dyn InstrumentProvider + Send + Sync>);
    let b = CircuitBreaker::new(
        CircuitBreakerConfig::builder()
            .name("exporter")
            .meter(meter)
            .minimum_calls(2)
            .failure_rate_threshold(60.0)
            .sliding_window(SlidingWindow::count(10))
            .wait_in_open(Duration::from_secs(3600))
            .build()
            .expect("valid"),
    );
    b.try_acquire()
        .expect("admitted")
        .record(Outcome::Success, Duration::ZERO);
    b.try_acquire()
        .expect("admitted")
        .record(Outcome::Ignored, Duration::ZERO);
    drop(b.try_acquire().expect("admitted"));
    for _ in 0..2 {
        b.try_acquire()
            .expect("admitted")
            .record(Outcome::Failure, Duration::ZERO);
    }
    for _ in 0..3 {
        assert!(b.try_acquire().is_err());
    }

    let calls = capture.collect("otlp.resilience.breaker.calls");
    assert_eq!(calls.len(), 5);
    for (outcome, expected) in [
        ("success", 1),
        ("failure", 2),
        ("ignored", 1),
        ("rejected", 3),
        ("cancelled", 1),
    ] {
        assert_eq!(
            value_for(&calls, "outcome", outcome),
            Some(expected),
            "{outcome}"
        );
    }
    assert!(
        calls
            .iter()
            .all(|(_, a)| attr(a, "name").as_deref() == Some("exporter"))
    );

    let state = capture.collect("otlp.resilience.breaker.state");
    assert_eq!(value_for(&state, "state", "open"), Some(1));
    assert_eq!(value_for(&state, "state", "closed"), Some(0));
    assert_eq!(state.iter().map(|(v, _)| v).sum::<u64>(), 1);

    b.force_open();
    let measured = capture.measured.lock().expect("lock").clone();
    let transitions: Vec<_> = measured
        .iter()
        .filter(|(name, _, _)| name == "otlp.resilience.breaker.transitions")
        .map(|(_, v, a)| (*v, attr(a, "from"), attr(a, "to")))
        .collect();
    assert_eq!(
        transitions,
        [
            (1, Some("closed".into()), Some("open".into())),
            (1, Some("open".into()), Some("forced_open".into())),
        ]
    );

    // Callbacks outlive the breaker (OpenTelemetry cannot unregister them): they then
    // observe nothing.
    drop(b);
    assert!(capture.collect("otlp.resilience.breaker.calls").is_empty());
}
