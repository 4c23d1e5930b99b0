//! OpenTelemetry instruments of a rate limiter.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Meter, ObservableGauge};

/// Instruments `otlp.resilience.rate_limit.*`, attribute `name`. Only the rejection and
/// delay paths record (a counter add each); admissions are not counted so the admit path
/// stays as fast as governor's own check.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    rejected: Counter<u64>,
    delayed: Counter<u64>,
    attrs: Arc<[KeyValue]>,
}

impl Metrics {
    pub(crate) fn new(meter: &Meter, name: Cow<'static, str>) -> Metrics {
        Metrics {
            rejected: meter
                .u64_counter("otlp.resilience.rate_limit.rejected")
                .with_description("Requests refused by a rate limiter")
                .with_unit("{request}")
                .build(),
            delayed: meter
                .u64_counter("otlp.resilience.rate_limit.delayed")
                .with_description("Requests admitted by a rate limiter after waiting")
                .with_unit("{request}")
                .build(),
            attrs: Arc::from([KeyValue::new("name", name)]),
        }
    }

    #[inline]
    pub(crate) fn rejected(&self) {
        self.rejected.add(1, &self.attrs);
    }

    #[inline]
    pub(crate) fn delayed(&self) {
        self.delayed.add(1, &self.attrs);
    }

    /// `otlp.resilience.rate_limit.keys`: keys currently tracked by a keyed limiter,
    /// read at collection time from `count`.
    pub(crate) fn keys_gauge(&self, meter: &Meter, count: Arc<AtomicU64>) -> ObservableGauge<u64> {
        let attrs = self.attrs.clone();
        meter
            .u64_observable_gauge("otlp.resilience.rate_limit.keys")
            .with_description("Keys tracked by a keyed rate limiter")
            .with_unit("{key}")
            .with_callback(move |observer| observer.observe(count.load(Ordering::Relaxed), &attrs))
            .build()
    }
}

/// The default meter of this crate.
pub(crate) fn default_meter() -> Meter {
    opentelemetry::global::meter("otlp-resilience")
}
