//! Trigger evaluation: one controller evaluation with the six built-in triggers, the
//! `/proc` reads behind the CPU and memory triggers, and what exporters pay to record.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use otlp_degradation::controller::Controller;
use otlp_degradation::resources::Resources;
use otlp_degradation::trigger::{
    CpuTrigger, ErrorRateTracker, ErrorRateTrigger, LagProbe, LagTrigger, LatencyTracker,
    LatencyTrigger, MemoryTrigger, QueueGauge, QueueTrigger, Trigger,
};
use tokio::time::Instant;

fn triggers(c: &mut Criterion) {
    // The lag probe needs a running runtime; one worker keeps it waking in the background.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let _guard = runtime.enter();

    let resources = Resources::detect();
    let queue = QueueGauge::new(10_000);
    queue.set_used(1_234);
    let latency = LatencyTracker::new();
    let errors = ErrorRateTracker::new();
    for i in 0..1024u64 {
        latency.record(Duration::from_micros(5_000 + i * 13));
        errors.record(i % 17 != 0);
    }
    let lag =
        LagProbe::spawn(Duration::from_millis(100), Duration::from_secs(10)).expect("a lag probe");

    let mut controller = Controller::builder()
        .trigger(
            CpuTrigger::new(resources.clone()),
            CpuTrigger::default_thresholds(),
        )
        .trigger(
            MemoryTrigger::new(resources.clone()),
            MemoryTrigger::default_thresholds(),
        )
        .trigger(
            QueueTrigger::new(queue.clone()),
            QueueTrigger::default_thresholds(),
        )
        .trigger(
            LatencyTrigger::new(latency.clone()),
            LatencyTrigger::default_thresholds(),
        )
        .trigger(
            ErrorRateTrigger::new(errors.clone()),
            ErrorRateTrigger::default_thresholds(),
        )
        .trigger(
            LagTrigger::new(lag.clone()),
            LagTrigger::default_thresholds(),
        )
        .build()
        .expect("valid thresholds");
    let handle = controller.handle();

    let mut group = c.benchmark_group("triggers");
    group.bench_function("evaluate_once_6_triggers", |b| {
        b.iter(|| controller.evaluate_once(Instant::now()))
    });

    let mut cpu = CpuTrigger::new(resources.clone());
    group.bench_function("cpu_read", |b| b.iter(|| cpu.read(Instant::now())));
    let mut memory = MemoryTrigger::new(resources.clone());
    group.bench_function("memory_read", |b| b.iter(|| memory.read(Instant::now())));
    let mut p99 = LatencyTrigger::new(latency.clone());
    group.bench_function("latency_p99_read_1024_samples", |b| {
        b.iter(|| p99.read(Instant::now()))
    });

    group.bench_function("latency_record", |b| {
        b.iter(|| latency.record(black_box(Duration::from_micros(4_321))))
    });
    let now = Instant::now();
    group.bench_function("latency_record_at", |b| {
        b.iter(|| latency.record_at(black_box(Duration::from_micros(4_321)), now))
    });
    group.bench_function("error_rate_record", |b| {
        b.iter(|| errors.record(black_box(true)))
    });
    group.bench_function("queue_gauge_add_sub", |b| {
        b.iter(|| {
            queue.add(black_box(1));
            queue.sub(black_box(1));
        })
    });
    group.bench_function("handle_level", |b| b.iter(|| black_box(&handle).level()));
    group.finish();
}

criterion_group!(benches, triggers);
criterion_main!(benches);
