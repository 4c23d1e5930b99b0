//! OpenTelemetry instruments of the concurrency limits.

use std::borrow::Cow;
use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Meter, ObservableGauge};

/// `otlp.resilience.concurrency.*` with attribute `name`. Gauges are observed at
/// collection time from the limiter's own atomics, so the admit and release paths record
/// nothing; only refusals add to a counter.
#[derive(Debug)]
pub(crate) struct Metrics {
    rejected: Counter<u64>,
    attrs: Arc<[KeyValue]>,
    _gauges: Vec<ObservableGauge<u64>>,
}

impl Metrics {
    /// `in_flight` and `limit` are read by the collector; they should hold a `Weak` to
    /// the limiter so the instruments do not keep it alive.
    pub(crate) fn new(
        meter: &Meter,
        name: Cow<'static, str>,
        in_flight: impl Fn() -> Option<u64> + Send + Sync + 'static,
        limit: impl Fn() -> Option<u64> + Send + Sync + 'static,
    ) -> Metrics {
        let attrs: Arc<[KeyValue]> = Arc::from([KeyValue::new("name", name)]);
        let a = attrs.clone();
        let in_flight_gauge = meter
            .u64_observable_gauge("otlp.resilience.concurrency.in_flight")
            .with_description("Calls in flight through a concurrency limit")
            .with_unit("{call}")
            .with_callback(move |o| {
                if let Some(v) = in_flight() {
                    o.observe(v, &a)
                }
            })
            .build();
        let a = attrs.clone();
        let limit_gauge = meter
            .u64_observable_gauge("otlp.resilience.concurrency.limit")
            .with_description("Current concurrency limit")
            .with_unit("{call}")
            .with_callback(move |o| {
                if let Some(v) = limit() {
                    o.observe(v, &a)
                }
            })
            .build();
        Metrics {
            rejected: meter
                .u64_counter("otlp.resilience.concurrency.rejected")
                .with_description("Calls refused by a concurrency limit")
                .with_unit("{call}")
                .build(),
            attrs,
            _gauges: vec![in_flight_gauge, limit_gauge],
        }
    }

    #[inline]
    pub(crate) fn rejected(&self) {
        self.rejected.add(1, &self.attrs);
    }
}

/// The default meter of this crate.
pub(crate) fn default_meter() -> Meter {
    opentelemetry::global::meter("otlp-resilience")
}
