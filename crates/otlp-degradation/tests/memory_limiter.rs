//! Memory limiter: throttling above soft, shedding and refusing above hard, recovery,
//! admission accounting, thresholds from scripted cgroup files, configuration errors and
//! the limited sink. Memory readings are scripted (no real memory growth); time is paused.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlp_core::sink::{Accepted, BoxFuture, Sink};
use otlp_core::{Payload, Refusal};
use otlp_degradation::memory_limiter::{
    MemoryLimitedSink, MemoryLimiter, MemoryLimiterConfig, MemoryLimiterError, MemoryPressure,
    ScriptedMemory, Shed, ShedFn, Threshold,
};
use otlp_degradation::resources::{CgroupFs, LimitSource, ProcFs, Resources};
use tokio::sync::Semaphore;

const SEC: Duration = Duration::from_secs(1);

/// A limiter over scripted memory: `used` of 1000 bytes, soft 800, hard 900.
fn limiter(used: u64) -> (MemoryLimiter, Arc<ScriptedMemory>) {
    let memory = Arc::new(ScriptedMemory::new(used, 1_000));
    let limiter = MemoryLimiter::new(MemoryLimiterConfig::default(), memory.clone()).unwrap();
    (limiter, memory)
}

/// A queue of prioritised items that sheds lowest priority first, oldest first within a
/// priority: what the gateway's queue will do, kept small enough to read.
#[derive(Default)]
struct PriorityQueue {
    /// (priority, bytes); higher priority is kept longer.
    items: Mutex<Vec<(u8, u64)>>,
    asked: Mutex<Vec<u64>>,
}

impl PriorityQueue {
    fn with(items: &[(u8, u64)]) -> Arc<PriorityQueue> {
        Arc::new(PriorityQueue {
            items: Mutex::new(items.to_vec()),
            asked: Mutex::default(),
        })
    }

    fn items(&self) -> Vec<(u8, u64)> {
        self.items.lock().unwrap().clone()
    }

    fn asked(&self) -> Vec<u64> {
        self.asked.lock().unwrap().clone()
    }
}

impl Shed for PriorityQueue {
    fn shed(&self, bytes: u64) -> u64 {
        self.asked.lock().unwrap().push(bytes);
        let mut items = self.items.lock().unwrap();
        let mut freed = 0;
        while freed < bytes {
            let Some(lowest) = items.iter().map(|(p, _)| *p).min() else {
                break;
            };
            let index = items.iter().position(|(p, _)| *p == lowest).unwrap();
            freed += items.remove(index).1;
        }
        freed
    }
}

fn retry_after(refusal: &Refusal) -> Duration {
    refusal
        .retry_after()
        .expect("memory refusals are retryable")
}

#[tokio::test(start_paused = true)]
async fn above_soft_new_data_is_throttled_with_a_retry_delay() {
    let (limiter, memory) = limiter(500);
    assert_eq!(limiter.pressure(), MemoryPressure::Normal);
    assert!(limiter.check().is_ok());
    drop(limiter.admit(100).unwrap());

    memory.set_used(850);
    assert_eq!(limiter.refresh(), MemoryPressure::Soft);
    assert_eq!(limiter.pressure(), MemoryPressure::Soft);
    let refusal = limiter.admit(10).unwrap_err();
    assert!(matches!(refusal, Refusal::Throttled { .. }), "{refusal:?}");
    assert_eq!(retry_after(&refusal), SEC);
    assert_eq!(refusal.http_status(), 429);
    assert_eq!(refusal.retry_after_header().as_deref(), Some("1"));
    assert!(
        refusal.to_string().contains("soft limit of 800 bytes"),
        "{refusal}"
    );
    let refusal = limiter.check().unwrap_err();
    assert!(matches!(refusal, Refusal::Throttled { .. }));

    let snapshot = limiter.snapshot();
    assert_eq!(snapshot.refused_soft, 2);
    assert_eq!(snapshot.refused_hard, 0);
    assert_eq!((snapshot.admitted, snapshot.admitted_bytes), (1, 100));
    assert_eq!(snapshot.used_bytes, 850);
    assert_eq!(snapshot.peak_used_bytes, 850);
    assert_eq!(snapshot.transitions, 1);
    assert_eq!(snapshot.in_flight_bytes, 0, "refused bytes are not held");

    // The retry delay is configurable.
    let slow = MemoryLimiter::new(
        MemoryLimiterConfig {
            retry_after: Duration::from_millis(2500),
            ..MemoryLimiterConfig::default()
        },
        ScriptedMemory::new(850, 1_000),
    )
    .unwrap();
    let refusal = slow.admit(1).unwrap_err();
    assert_eq!(retry_after(&refusal), Duration::from_millis(2500));
    assert_eq!(refusal.retry_after_header().as_deref(), Some("3"));
}

#[tokio::test(start_paused = true)]
async fn above_hard_queued_data_is_shed_lowest_priority_first_and_new_data_refused() {
    let (limiter, memory) = limiter(500);
    // Priorities: 0 = debug logs, 1 = ordinary spans, 2 = error spans.
    let queue = PriorityQueue::with(&[(1, 60), (0, 50), (2, 100), (0, 40), (1, 70)]);
    limiter.add_shed(queue.clone());
    let second = Arc::new(AtomicU64::new(0));
    let second_asked = second.clone();
    limiter.add_shed(ShedFn(move |bytes| {
        second_asked.fetch_add(bytes, Ordering::Relaxed);
        bytes
    }));

    memory.set_used(950);
    assert_eq!(limiter.refresh(), MemoryPressure::Hard);
    // Asked for what brings memory back under soft: 950 - 800.
    assert_eq!(queue.asked(), [150]);
    // Both priority-0 items (90 bytes), then the oldest priority-1 item (60 bytes).
    assert_eq!(queue.items(), [(2, 100), (1, 70)]);
    assert_eq!(
        second.load(Ordering::Relaxed),
        0,
        "the first hook freed enough"
    );

    let refusal = limiter.admit(1).unwrap_err();
    assert!(
        matches!(refusal, Refusal::Unavailable { .. }),
        "{refusal:?}"
    );
    assert_eq!(retry_after(&refusal), Duration::from_secs(5));
    assert_eq!(refusal.http_status(), 503);
    assert!(
        refusal.to_string().contains("hard limit of 900 bytes"),
        "{refusal}"
    );

    // Memory has not come down yet (the allocator keeps pages, more arrived): shed again
    // at the next reading, and the second hook gets what the first could not free.
    memory.set_used(1_000);
    assert_eq!(limiter.refresh(), MemoryPressure::Hard);
    assert_eq!(queue.asked(), [150, 200]);
    assert_eq!(queue.items(), []);
    assert_eq!(second.load(Ordering::Relaxed), 200 - 170);

    let snapshot = limiter.snapshot();
    assert_eq!(snapshot.refused_hard, 1);
    assert_eq!(snapshot.shed_calls, 3);
    assert_eq!(snapshot.shed_bytes, 150 + 170 + 30);
    assert_eq!(snapshot.peak_used_bytes, 1_000);
    assert_eq!(snapshot.transitions, 1);

    // Between soft and hard nothing is shed, only throttled.
    memory.set_used(850);
    assert_eq!(limiter.refresh(), MemoryPressure::Soft);
    assert_eq!(limiter.snapshot().shed_calls, 3);
    assert!(matches!(limiter.admit(1), Err(Refusal::Throttled { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_request_that_would_pass_hard_is_refused_without_shedding() {
    let (limiter, _memory) = limiter(500);
    let queue = PriorityQueue::with(&[(0, 500)]);
    limiter.add_shed(queue.clone());
    // Admissions push the estimate, not a reading: 500 + 299 is still under soft.
    let permit = limiter.admit(299).unwrap();
    // A request that would pass hard is refused as unavailable...
    assert!(matches!(
        limiter.admit(150),
        Err(Refusal::Unavailable { .. })
    ));
    // ...and, since what is held is below soft, nothing is shed for it.
    assert!(queue.asked().is_empty());
    assert_eq!(limiter.pressure(), MemoryPressure::Normal);
    drop(permit);
}

#[tokio::test(start_paused = true)]
async fn recovery_below_soft_admits_again() {
    let (limiter, memory) = limiter(950);
    assert_eq!(limiter.pressure(), MemoryPressure::Hard);
    memory.set_used(850);
    assert_eq!(limiter.refresh(), MemoryPressure::Soft);
    assert!(limiter.admit(1).is_err());
    memory.set_used(790);
    assert_eq!(limiter.refresh(), MemoryPressure::Normal);
    let permit = limiter.admit(1).expect("admitted again below soft");
    assert_eq!(permit.bytes(), 1);
    let snapshot = limiter.snapshot();
    // Normal -> Hard at start, then Soft, then Normal.
    assert_eq!(snapshot.transitions, 3);
    assert_eq!(snapshot.peak_used_bytes, 950);
    assert_eq!(snapshot.readings, 3);

    // A failed reading keeps the last good one (fail open, announced once).
    memory.fail("cgroup unmounted");
    assert_eq!(limiter.refresh(), MemoryPressure::Normal);
    assert_eq!(limiter.refresh(), MemoryPressure::Normal);
    let snapshot = limiter.snapshot();
    assert_eq!((snapshot.readings, snapshot.read_errors), (3, 2));
    assert_eq!(snapshot.used_bytes, 790);
}

#[tokio::test(start_paused = true)]
async fn the_monitor_reads_on_its_interval() {
    let memory = Arc::new(ScriptedMemory::new(100, 1_000));
    let limiter = MemoryLimiter::new(
        MemoryLimiterConfig {
            check_interval: Duration::from_millis(500),
            ..MemoryLimiterConfig::default()
        },
        memory.clone(),
    )
    .unwrap();
    let monitor = limiter.spawn_monitor();
    // The first tick reads at once.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(limiter.snapshot().readings, 2);

    memory.set_used(870);
    // No admission can see this before the next reading.
    assert_eq!(limiter.pressure(), MemoryPressure::Normal);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(limiter.pressure(), MemoryPressure::Soft);
    assert_eq!(limiter.snapshot().readings, 3);
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(limiter.snapshot().readings, 7);

    // Dropping the last handle ends the task at its next tick.
    drop(limiter);
    tokio::time::timeout(SEC, monitor)
        .await
        .expect("the monitor ends with its limiter")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn admission_counts_bytes_in_flight_between_readings() {
    let (limiter, memory) = limiter(500);
    let first = limiter.admit(200).unwrap();
    let second = limiter.admit(99).unwrap();
    assert_eq!(limiter.snapshot().estimated_bytes, 799);
    // 500 read + 299 in flight + 1 reaches soft (800), though no reading has seen it.
    assert!(matches!(limiter.admit(1), Err(Refusal::Throttled { .. })));
    assert_eq!(limiter.pressure(), MemoryPressure::Normal);
    drop(first);
    let third = limiter.admit(200).unwrap();
    assert_eq!(limiter.snapshot().in_flight_bytes, 299);

    // The next reading includes what is in flight: it is not counted twice.
    memory.set_used(799);
    limiter.refresh();
    let snapshot = limiter.snapshot();
    assert_eq!((snapshot.used_bytes, snapshot.estimated_bytes), (799, 799));
    // Growth after the reading counts again.
    assert!(limiter.admit(1).is_err());
    drop((second, third));
    assert_eq!(limiter.snapshot().in_flight_bytes, 0);
    assert_eq!(limiter.snapshot().estimated_bytes, 799);
    assert!(limiter.admit(0).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_admissions_never_overshoot_soft() {
    let (limiter, _memory) = limiter(500);
    // Room under soft: 300 bytes, so at most 29 permits of 10 bytes can be held.
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.admit(10).ok() })
        })
        .collect();
    let mut held = Vec::new();
    for task in tasks {
        if let Some(permit) = tokio::time::timeout(SEC * 10, task).await.unwrap().unwrap() {
            held.push(permit);
        }
    }
    assert!(
        !held.is_empty() && held.len() <= 29,
        "{} permits",
        held.len()
    );
    assert!(limiter.snapshot().in_flight_bytes < 300);
    let snapshot = limiter.snapshot();
    assert_eq!(
        snapshot.refused_soft + snapshot.refused_hard + held.len() as u64,
        200,
        "every admission was either held or counted as refused"
    );
    drop(held);
    assert_eq!(limiter.snapshot().in_flight_bytes, 0);
}

/// A scripted `/proc` and cgroup v2 tree in a fresh directory, removed on drop.
struct FakeSystem {
    root: PathBuf,
}

impl FakeSystem {
    fn new(name: &str) -> FakeSystem {
        let root = std::env::temp_dir().join(format!(
            "otlp-degradation-memory-limiter-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        let system = FakeSystem { root };
        system.write("proc/self/status", "Name:\totlp\nVmRSS:\t  300000 kB\n");
        system.write("proc/self/cgroup", "0::/gateway\n");
        // 8 GiB host.
        system.write("proc/meminfo", "MemTotal:       8388608 kB\n");
        system
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn cgroup(&self, file: &str, text: &str) {
        self.write(&format!("cgroup/gateway/{file}"), text);
    }

    fn resources(&self) -> Resources {
        Resources::new(
            ProcFs::new(self.root.join("proc")),
            CgroupFs::new(self.root.join("cgroup")),
        )
    }
}

impl Drop for FakeSystem {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[tokio::test(start_paused = true)]
async fn shares_follow_the_cgroup_limit_read_from_its_files() {
    const MB: u64 = 1_000_000;
    let system = FakeSystem::new("cgroup");
    system.cgroup("memory.max", "1000000000\n");
    system.cgroup("memory.current", "700000000\n");
    system.cgroup("memory.stat", "anon 650000000\ninactive_file 0\n");
    let limiter = MemoryLimiter::new(MemoryLimiterConfig::default(), system.resources()).unwrap();
    let snapshot = limiter.snapshot();
    assert_eq!(snapshot.limit_source, LimitSource::Cgroup);
    assert_eq!(snapshot.limit_bytes, 1_000 * MB);
    assert_eq!(
        (snapshot.soft_bytes, snapshot.hard_bytes),
        (800 * MB, 900 * MB)
    );
    assert_eq!(snapshot.used_bytes, 700 * MB);
    assert_eq!(limiter.pressure(), MemoryPressure::Normal);

    // The cgroup's working set grows past soft: throttled.
    system.cgroup("memory.current", "850000000\n");
    assert_eq!(limiter.refresh(), MemoryPressure::Soft);
    assert!(matches!(limiter.admit(1), Err(Refusal::Throttled { .. })));

    // Page cache the kernel reclaims first does not count.
    system.cgroup("memory.current", "950000000\n");
    system.cgroup("memory.stat", "anon 700000000\ninactive_file 200000000\n");
    assert_eq!(limiter.refresh(), MemoryPressure::Normal);
    assert_eq!(limiter.snapshot().used_bytes, 750 * MB);

    // The container is resized in place: the shares follow the new limit.
    system.cgroup("memory.max", "500000000\n");
    assert_eq!(limiter.refresh(), MemoryPressure::Hard);
    let snapshot = limiter.snapshot();
    assert_eq!(
        (snapshot.soft_bytes, snapshot.hard_bytes),
        (400 * MB, 450 * MB)
    );

    // Without a cgroup limit the host's memory is the limit.
    system.cgroup("memory.max", "max\n");
    limiter.refresh();
    let snapshot = limiter.snapshot();
    assert_eq!(snapshot.limit_source, LimitSource::Host);
    assert_eq!(snapshot.limit_bytes, 8 << 30);
    assert_eq!(snapshot.soft_bytes, ((8u64 << 30) as f64 * 0.8) as u64);
    // Process RSS, not the cgroup, is compared with a host limit.
    assert_eq!(snapshot.used_bytes, 300_000 * 1024);
}

#[tokio::test(start_paused = true)]
async fn absolute_thresholds_must_stay_under_the_limit() {
    let system = FakeSystem::new("absolute");
    system.cgroup("memory.max", "1000000000\n");
    system.cgroup("memory.current", "100000000\n");
    let config = MemoryLimiterConfig {
        soft: Threshold::Bytes(600_000_000),
        hard: Threshold::Bytes(1_200_000_000),
        ..MemoryLimiterConfig::default()
    };
    let error = MemoryLimiter::new(config.clone(), system.resources()).unwrap_err();
    assert!(matches!(
        error,
        MemoryLimiterError::HardAboveLimit {
            hard_bytes: 1_200_000_000,
            limit_bytes: 1_000_000_000,
            limit_source: LimitSource::Cgroup
        }
    ));
    let message = error.to_string();
    assert!(message.starts_with("memory_limiter.hard"), "{message}");
    assert!(message.contains("cgroup memory limit"), "{message}");

    let limiter = MemoryLimiter::new(
        MemoryLimiterConfig {
            hard: Threshold::Bytes(700_000_000),
            ..config
        },
        system.resources(),
    )
    .unwrap();
    system.cgroup("memory.current", "650000000\n");
    assert_eq!(limiter.refresh(), MemoryPressure::Soft);
    // Shrunk under the absolute thresholds at run time: clamped, still protecting.
    system.cgroup("memory.max", "600000000\n");
    assert_eq!(limiter.refresh(), MemoryPressure::Hard);
    let snapshot = limiter.snapshot();
    assert_eq!(snapshot.hard_bytes, 600_000_000);
    assert!(snapshot.soft_bytes < snapshot.hard_bytes);
}

#[test]
fn configuration_errors_name_the_field() {
    let invalid = |config: MemoryLimiterConfig| {
        MemoryLimiter::new(config, ScriptedMemory::new(100, 1_000)).unwrap_err()
    };
    let default = MemoryLimiterConfig::default;
    let cases = [
        (
            invalid(MemoryLimiterConfig {
                soft: Threshold::Share(0.0),
                ..default()
            }),
            "memory_limiter.soft = 0",
        ),
        (
            invalid(MemoryLimiterConfig {
                hard: Threshold::Share(1.5),
                ..default()
            }),
            "memory_limiter.hard = 1.5",
        ),
        (
            invalid(MemoryLimiterConfig {
                soft: Threshold::Share(f64::NAN),
                ..default()
            }),
            "memory_limiter.soft",
        ),
        (
            invalid(MemoryLimiterConfig {
                hard: Threshold::Bytes(0),
                ..default()
            }),
            "memory_limiter.hard is 0 bytes",
        ),
        (
            invalid(MemoryLimiterConfig {
                soft: Threshold::Share(0.9),
                hard: Threshold::Share(0.9),
                ..default()
            }),
            "memory_limiter.soft",
        ),
        (
            invalid(MemoryLimiterConfig {
                soft: Threshold::Bytes(900),
                hard: Threshold::Bytes(800),
                ..default()
            }),
            "memory_limiter.soft",
        ),
        (
            invalid(MemoryLimiterConfig {
                check_interval: Duration::ZERO,
                ..default()
            }),
            "memory_limiter.check_interval",
        ),
    ];
    for (error, start) in cases {
        let message = error.to_string();
        assert!(
            message.starts_with(start),
            "{message:?} should start with {start:?}"
        );
    }
    // Mixed kinds are ordered against the first reading's limit.
    let error = invalid(MemoryLimiterConfig {
        soft: Threshold::Bytes(850),
        hard: Threshold::Share(0.8),
        ..default()
    });
    assert!(
        matches!(
            error,
            MemoryLimiterError::SoftNotBelowHard {
                soft_bytes: 850,
                hard_bytes: 800,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("80.0 % of the memory limit"));
    // A first reading that fails is an error at start, not a silent no-op limiter.
    let memory = ScriptedMemory::new(1, 1);
    memory.fail("no /proc");
    let error = MemoryLimiter::new(default(), memory).unwrap_err();
    assert!(matches!(error, MemoryLimiterError::Reading(_)));
    assert!(error.to_string().contains("no /proc"), "{error}");
}

/// A real in-memory queue sink: holds what it accepts, and waits for a permit from the
/// test before accepting, so the test can look at the limiter while a payload is in
/// flight.
struct HoldingSink {
    gate: Semaphore,
    held: Mutex<Vec<Payload>>,
}

impl Sink for HoldingSink {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        Box::pin(async move {
            self.gate
                .acquire()
                .await
                .map_err(|_| Refusal::Internal("closed".into()))?
                .forget();
            self.held.lock().unwrap().push(payload);
            Ok(Accepted::full())
        })
    }
}

fn spans(n: usize) -> Payload {
    let spans = (0..n)
        .map(|i| Span {
            trace_id: vec![1; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("span {i}"),
            ..Span::default()
        })
        .collect();
    Payload::from_request(&ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    })
}

#[tokio::test(start_paused = true)]
async fn limited_sink_holds_bytes_while_the_inner_sink_works() {
    let payload = spans(20);
    let size = payload.len() as u64;
    assert!(size > 500, "{size}");
    let memory = Arc::new(ScriptedMemory::new(0, 100 * size));
    let limiter = MemoryLimiter::new(MemoryLimiterConfig::default(), memory.clone()).unwrap();
    let sink = Arc::new(MemoryLimitedSink::new(
        limiter.clone(),
        HoldingSink {
            gate: Semaphore::new(0),
            held: Mutex::default(),
        },
    ));

    let pending = {
        let sink = sink.clone();
        let payload = payload.clone();
        tokio::spawn(async move { sink.accept(payload).await })
    };
    tokio::task::yield_now().await;
    assert_eq!(limiter.snapshot().in_flight_bytes, size);
    sink.inner().gate.add_permits(1);
    let answer = tokio::time::timeout(SEC, pending).await.unwrap().unwrap();
    assert_eq!(answer, Ok(Accepted::full()));
    assert_eq!(
        limiter.snapshot().in_flight_bytes,
        0,
        "released after the answer"
    );
    assert_eq!(sink.inner().held.lock().unwrap().len(), 1);

    // Above soft the payload never reaches the inner sink.
    // 85 % of the limit: between soft (80 %) and hard (90 %).
    memory.set_used(85 * size);
    limiter.refresh();
    sink.inner().gate.add_permits(1);
    let refusal = sink.accept(payload.clone()).await.unwrap_err();
    assert!(matches!(refusal, Refusal::Throttled { .. }), "{refusal:?}");
    assert_eq!(sink.inner().held.lock().unwrap().len(), 1);
    assert_eq!(sink.limiter().snapshot().refused_soft, 1);

    // Recovered: accepted again, and the payload arrives intact.
    memory.set_used(size);
    limiter.refresh();
    assert_eq!(sink.accept(payload.clone()).await, Ok(Accepted::full()));
    let held = sink.inner().held.lock().unwrap();
    assert_eq!(held.len(), 2);
    let back: ExportTraceServiceRequest = held[1].decode().unwrap();
    assert_eq!(back.resource_spans[0].scope_spans[0].spans.len(), 20);
}
