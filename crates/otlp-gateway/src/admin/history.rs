//! The last two minutes of throughput and queue fill, for the status page's sparklines.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use otlp_core::Signal;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::metrics::{GatewayMetrics, RefuseReason};

/// Points each series keeps.
pub const HISTORY_POINTS: usize = 120;

/// How often [`History::spawn`] samples.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Fixed-size series: the oldest point goes when a new one comes past the bound.
#[derive(Debug, Clone, Default)]
struct Ring(VecDeque<f64>);

impl Ring {
    fn push(&mut self, v: f64) {
        if self.0.len() == HISTORY_POINTS {
            self.0.pop_front();
        }
        self.0.push_back(v);
    }

    fn to_vec(&self) -> Vec<f64> {
        self.0.iter().copied().collect()
    }
}

/// Counter totals at one sample.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    received: u64,
    accepted: u64,
    refused: u64,
    exported: u64,
}

impl Totals {
    fn read(metrics: &GatewayMetrics, routes: &[crate::metrics::RouteView]) -> Totals {
        let mut t = Totals::default();
        for signal in Signal::ALL {
            let c = metrics.signal(signal);
            t.received += c.received_items.load(Relaxed);
            t.accepted += c.accepted_items.load(Relaxed);
            t.refused += RefuseReason::ALL
                .iter()
                .map(|r| c.refused_items(*r))
                .sum::<u64>();
        }
        t.exported = routes
            .iter()
            .flat_map(|r| r.exporters.iter())
            .map(|e| e.exported_total())
            .sum();
        t
    }
}

#[derive(Debug, Default)]
struct QueueSeries {
    name: String,
    depth: Ring,
    bytes: Ring,
}

#[derive(Debug, Default)]
struct State {
    last: Option<(Instant, Totals)>,
    received: Ring,
    accepted: Ring,
    refused: Ring,
    exported: Ring,
    queues: Vec<QueueSeries>,
    samples: u64,
}

/// Rates (items per second, from counter deltas between samples) and queue gauges, the
/// newest [`HISTORY_POINTS`] of each. Feed it with [`sample`](Self::sample), or let
/// [`spawn`](Self::spawn) do it every [`SAMPLE_INTERVAL`].
#[derive(Debug, Default)]
pub struct History {
    state: Mutex<State>,
}

/// A copy of the series, oldest point first, as `/api/status` serves them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistorySnapshot {
    /// Seconds between points.
    pub interval_seconds: f64,
    /// Items received per second (all signals).
    pub received: Vec<f64>,
    /// Items accepted per second.
    pub accepted: Vec<f64>,
    /// Items refused per second.
    pub refused: Vec<f64>,
    /// Items exported per second (all exporters; a fan-out counts each copy).
    pub exported: Vec<f64>,
    /// Queue depth and bytes per route, in route order.
    pub queues: Vec<QueueHistory>,
}

/// The gauges of one route's queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueHistory {
    /// The route.
    pub route: String,
    /// Entries waiting or in flight.
    pub depth: Vec<f64>,
    /// Bytes waiting or in flight.
    pub bytes: Vec<f64>,
}

impl History {
    /// An empty history.
    pub fn new() -> Arc<History> {
        Arc::new(History::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take one sample now. The first one only sets the baseline for the rates; each later
    /// one adds a point: the counters' growth divided by the time since the previous
    /// sample (a counter that went back, after a route was replaced, counts as 0).
    pub fn sample(&self, metrics: &GatewayMetrics) {
        let now = Instant::now();
        let routes = metrics.routes();
        let totals = Totals::read(metrics, &routes);
        let mut state = self.lock();
        state.samples += 1;
        if let Some((at, last)) = state.last {
            let secs = now.saturating_duration_since(at).as_secs_f64();
            let rate = |new: u64, old: u64| {
                if secs > 0.0 {
                    new.saturating_sub(old) as f64 / secs
                } else {
                    0.0
                }
            };
            let (r, a, f, e) = (
                rate(totals.received, last.received),
                rate(totals.accepted, last.accepted),
                rate(totals.refused, last.refused),
                rate(totals.exported, last.exported),
            );
            state.received.push(r);
            state.accepted.push(a);
            state.refused.push(f);
            state.exported.push(e);
        }
        state.last = Some((now, totals));

        // Keep the series of routes that still exist, in the routes' order.
        let mut old = std::mem::take(&mut state.queues);
        for route in &routes {
            let mut series = match old.iter().position(|q| q.name == route.name) {
                Some(i) => old.swap_remove(i),
                None => QueueSeries {
                    name: route.name.clone(),
                    ..QueueSeries::default()
                },
            };
            series.depth.push(route.queue.depth.load(Relaxed) as f64);
            series.bytes.push(route.queue.bytes.load(Relaxed) as f64);
            state.queues.push(series);
        }
    }

    /// Samples taken so far.
    pub fn samples(&self) -> u64 {
        self.lock().samples
    }

    /// A copy of every series.
    pub fn snapshot(&self) -> HistorySnapshot {
        let state = self.lock();
        HistorySnapshot {
            interval_seconds: SAMPLE_INTERVAL.as_secs_f64(),
            received: state.received.to_vec(),
            accepted: state.accepted.to_vec(),
            refused: state.refused.to_vec(),
            exported: state.exported.to_vec(),
            queues: state
                .queues
                .iter()
                .map(|q| QueueHistory {
                    route: q.name.clone(),
                    depth: q.depth.to_vec(),
                    bytes: q.bytes.to_vec(),
                })
                .collect(),
        }
    }

    /// Sample `metrics` now (before returning, so the queue series exist at once) and
    /// then every [`SAMPLE_INTERVAL`] until the returned task is dropped or stopped. Must
    /// be called inside a tokio runtime.
    pub fn spawn(self: &Arc<Self>, metrics: Arc<GatewayMetrics>) -> HistoryTask {
        self.sample(&metrics);
        let history = Arc::clone(self);
        let task = tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(Instant::now() + SAMPLE_INTERVAL, SAMPLE_INTERVAL);
            // After a stall, one point covers the whole gap (its rate is the average).
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                history.sample(&metrics);
            }
        });
        HistoryTask(task)
    }
}

/// The sampling task of [`History::spawn`]; dropping it stops the sampling.
#[derive(Debug)]
pub struct HistoryTask(JoinHandle<()>);

impl HistoryTask {
    /// Stop sampling.
    pub fn stop(self) {
        // Drop aborts.
    }
}

impl Drop for HistoryTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ExporterMetrics, QueueMetrics, RouteView};

    fn route(name: &str) -> (RouteView, Arc<ExporterMetrics>) {
        let exporter = Arc::new(ExporterMetrics::new(name, "http", "http://upstream"));
        let route = RouteView {
            name: name.into(),
            mode: "single",
            signals: Signal::ALL.to_vec(),
            queue: Arc::new(QueueMetrics::new(name, "memory", 1000)),
            exporters: vec![exporter.clone()],
        };
        (route, exporter)
    }

    #[tokio::test(start_paused = true)]
    async fn rates_from_counter_deltas_every_second() {
        let metrics = GatewayMetrics::new();
        let (a, exporter) = route("a");
        metrics.set_routes(vec![a.clone()]);
        let history = History::new();
        let task = history.spawn(metrics.clone());

        // The first sample is taken at once and only sets the baseline.
        assert_eq!(history.samples(), 1);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(history.samples(), 1);
        assert!(history.snapshot().received.is_empty());

        let traces = metrics.signal(Signal::Traces);
        traces.received_items.fetch_add(30, Relaxed);
        traces.accepted_items.fetch_add(20, Relaxed);
        traces.refused(RefuseReason::QueueFull, 10);
        exporter.exported_items[0].fetch_add(15, Relaxed);
        a.queue.depth.store(3, Relaxed);
        a.queue.bytes.store(300, Relaxed);

        tokio::time::sleep(Duration::from_secs(1)).await; // t = 1.5 s, tick at 1 s
        let s = history.snapshot();
        assert_eq!(s.received, vec![30.0]);
        assert_eq!(s.accepted, vec![20.0]);
        assert_eq!(s.refused, vec![10.0]);
        assert_eq!(s.exported, vec![15.0]);
        assert_eq!(s.queues.len(), 1);
        assert_eq!(s.queues[0].route, "a");
        assert_eq!(s.queues[0].depth, vec![0.0, 3.0]);
        assert_eq!(s.queues[0].bytes, vec![0.0, 300.0]);

        // A quiet second is a zero rate, not a repeat of the last one.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(history.snapshot().received, vec![30.0, 0.0]);

        // The ring keeps the newest HISTORY_POINTS.
        for i in 0..200u64 {
            traces.received_items.fetch_add(i, Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let s = history.snapshot();
        assert_eq!(s.received.len(), HISTORY_POINTS);
        assert_eq!(s.received.last(), Some(&199.0));
        assert_eq!(s.received[0], (200 - HISTORY_POINTS as u64) as f64);
        assert_eq!(s.queues[0].depth.len(), HISTORY_POINTS);

        drop(task);
        let taken = history.samples();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(history.samples(), taken, "dropping the task stops sampling");
    }

    #[tokio::test(start_paused = true)]
    async fn routes_come_and_go_and_counters_going_back_count_as_zero() {
        let metrics = GatewayMetrics::new();
        let (a, exporter_a) = route("a");
        exporter_a.exported_items[1].fetch_add(100, Relaxed);
        metrics.set_routes(vec![a.clone()]);
        let history = History::new();
        history.sample(&metrics);

        // A reload replaces route a by b, whose exporter starts from 0.
        let (b, exporter_b) = route("b");
        exporter_b.exported_items[1].fetch_add(40, Relaxed);
        metrics.set_routes(vec![b.clone()]);
        tokio::time::advance(Duration::from_secs(2)).await;
        history.sample(&metrics);
        let s = history.snapshot();
        assert_eq!(s.exported, vec![0.0]);
        assert_eq!(
            s.queues
                .iter()
                .map(|q| q.route.as_str())
                .collect::<Vec<_>>(),
            vec!["b"]
        );

        // Rates divide by the real gap between samples.
        exporter_b.exported_items[1].fetch_add(40, Relaxed);
        tokio::time::advance(Duration::from_secs(4)).await;
        history.sample(&metrics);
        assert_eq!(history.snapshot().exported, vec![0.0, 10.0]);
    }
}
