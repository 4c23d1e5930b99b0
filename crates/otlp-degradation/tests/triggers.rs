//! Resources from scripted /proc and cgroup files, and each built-in trigger.

use std::fs;
use std::path::Path;
use std::time::Duration;

use otlp_degradation::resources::{CgroupFs, LimitSource, ProcFs, ResourceError, Resources};
use otlp_degradation::trigger::{
    CpuTrigger, ErrorRateConfig, ErrorRateTracker, ErrorRateTrigger, LagProbe, LagStat, LagTrigger,
    LatencyConfig, LatencyStat, LatencyTracker, LatencyTrigger, MemoryTrigger, QueueGauge,
    QueueTrigger, Trigger,
};
use tempfile::TempDir;
use tokio::time::Instant;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A `self/stat` line whose command name holds spaces and parentheses, as a process
/// renamed with prctl may have.
fn stat_line(utime: u64, stime: u64) -> String {
    format!(
        "4242 (otlp (gw) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 {utime} {stime} 0 0 20 0 8 0 100 200000000 25600 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
    )
}

/// `/proc` with 100 MiB RSS, 1.5 s of CPU, 8 GiB of host memory and the given cgroup line.
fn fake_proc(cgroup_line: &str) -> TempDir {
    let dir = TempDir::new().unwrap();
    let root = dir.path();
    write(
        root,
        "self/status",
        "Name:\totlp\nVmPeak:\t  200000 kB\nVmRSS:\t  102400 kB\nThreads:\t8\n",
    );
    write(root, "self/stat", &stat_line(100, 50));
    write(root, "self/cgroup", cgroup_line);
    write(
        root,
        "meminfo",
        "MemTotal:        8388608 kB\nMemFree:         1000000 kB\n",
    );
    dir
}

/// A pod cgroup with a 1 GiB memory limit and a container cgroup below it with a half
/// core CPU quota and no memory limit of its own.
fn fake_cgroup() -> TempDir {
    let dir = TempDir::new().unwrap();
    let root = dir.path();
    write(root, "cgroup.controllers", "cpu memory\n");
    write(root, "kubepods/pod1/memory.max", "1073741824\n");
    write(
        root,
        "kubepods/pod1/memory.current",
        &format!("{}\n", 600 * MIB),
    );
    write(
        root,
        "kubepods/pod1/memory.stat",
        &format!(
            "anon {}\nfile {}\ninactive_file {}\nactive_file 0\n",
            450 * MIB,
            150 * MIB,
            100 * MIB
        ),
    );
    write(root, "kubepods/pod1/cpu.max", "max 100000\n");
    write(root, "kubepods/pod1/ctr/memory.max", "max\n");
    write(
        root,
        "kubepods/pod1/ctr/memory.current",
        &format!("{}\n", 300 * MIB),
    );
    write(root, "kubepods/pod1/ctr/cpu.max", "50000 100000\n");
    dir
}

fn host_cores() -> f64 {
    std::thread::available_parallelism().map_or(1, usize::from) as f64
}

#[test]
fn cgroup_limits_apply_inside_a_container() {
    let proc_dir = fake_proc("0::/kubepods/pod1/ctr\n");
    let cgroup_dir = fake_cgroup();
    let resources = Resources::new(
        ProcFs::new(proc_dir.path()),
        CgroupFs::new(cgroup_dir.path()),
    );
    assert_eq!(
        resources.cgroup_dir(),
        Some(cgroup_dir.path().join("kubepods/pod1/ctr").as_path())
    );

    // The pod's 1 GiB limit binds (the container has none); its usage, less the page cache
    // it can drop, is what counts.
    let limit = resources.memory_limit().unwrap();
    assert_eq!((limit.bytes, limit.source), (GIB, LimitSource::Cgroup));
    let memory = resources.memory().unwrap();
    assert_eq!(memory.rss_bytes, 100 * MIB);
    assert_eq!(memory.cgroup_bytes, Some(500 * MIB));
    assert_eq!(memory.used_bytes(), 500 * MIB);
    assert!((memory.share() - 500.0 / 1024.0).abs() < 1e-9);

    let cpu = resources.cpu_limit().unwrap();
    assert_eq!(cpu.source, LimitSource::Cgroup);
    assert!((cpu.cores - 0.5).abs() < 1e-9);
    assert_eq!(resources.cpu_time().unwrap(), Duration::from_millis(1500));
    assert_eq!(resources.rss_bytes().unwrap(), 100 * MIB);
}

#[test]
fn unlimited_cgroups_fall_back_to_the_host() {
    let proc_dir = fake_proc("0::/svc\n");
    let cgroup_dir = TempDir::new().unwrap();
    write(cgroup_dir.path(), "svc/memory.max", "max\n");
    write(cgroup_dir.path(), "svc/memory.current", "123\n");
    write(cgroup_dir.path(), "svc/cpu.max", "max 100000\n");
    let resources = Resources::new(
        ProcFs::new(proc_dir.path()),
        CgroupFs::new(cgroup_dir.path()),
    );

    let memory = resources.memory().unwrap();
    assert_eq!(
        (memory.limit.bytes, memory.limit.source),
        (8 * GIB, LimitSource::Host)
    );
    assert_eq!(memory.cgroup_bytes, None);
    assert_eq!(memory.used_bytes(), 100 * MIB, "RSS against the host");
    let cpu = resources.cpu_limit().unwrap();
    assert_eq!(cpu.source, LimitSource::Host);
    assert_eq!(cpu.cores, host_cores());

    // A cgroup limit larger than the machine does not bind either.
    write(
        cgroup_dir.path(),
        "svc/memory.max",
        &format!("{}\n", 64 * GIB),
    );
    assert_eq!(resources.memory_limit().unwrap().source, LimitSource::Host);
    // Limits are read again on every call: a resize is picked up.
    write(
        cgroup_dir.path(),
        "svc/memory.max",
        &format!("{}\n", 2 * GIB),
    );
    assert_eq!(resources.memory_limit().unwrap().bytes, 2 * GIB);
    assert_eq!(resources.memory().unwrap().used_bytes(), 123);
}

#[test]
fn missing_files_mean_no_limit_or_a_named_error() {
    // No cgroup files at all (cgroup v1 host, or no cgroup mount): host limits.
    let proc_dir = fake_proc("0::/\n");
    let empty = TempDir::new().unwrap();
    let resources = Resources::new(ProcFs::new(proc_dir.path()), CgroupFs::new(empty.path()));
    assert_eq!(resources.cgroup_dir(), Some(empty.path()));
    assert_eq!(resources.memory_limit().unwrap().source, LimitSource::Host);
    assert_eq!(resources.cpu_limit().unwrap().source, LimitSource::Host);

    // A cgroup v1 process has no "0::" line.
    let v1 = fake_proc("4:memory:/user.slice\n1:cpu:/\n");
    let resources = Resources::new(ProcFs::new(v1.path()), CgroupFs::new(empty.path()));
    assert_eq!(resources.cgroup_dir(), None);
    assert_eq!(resources.memory().unwrap().limit.source, LimitSource::Host);

    // The cgroup path named in self/cgroup is not under the mount (a container without a
    // cgroup namespace): the mount point is the container's own cgroup.
    let proc_dir = fake_proc("0::/docker/abc\n");
    let cgroup_dir = TempDir::new().unwrap();
    write(cgroup_dir.path(), "memory.max", &format!("{}\n", 256 * MIB));
    write(
        cgroup_dir.path(),
        "memory.current",
        &format!("{}\n", 128 * MIB),
    );
    let resources = Resources::new(
        ProcFs::new(proc_dir.path()),
        CgroupFs::new(cgroup_dir.path()),
    );
    let memory = resources.memory().unwrap();
    assert_eq!(
        (memory.limit.bytes, memory.limit.source),
        (256 * MIB, LimitSource::Cgroup)
    );
    assert_eq!(
        memory.used_bytes(),
        128 * MIB,
        "no memory.stat: nothing subtracted"
    );

    // A path escaping the namespace root is not followed.
    let proc_dir = fake_proc("0::/../../elsewhere\n");
    let resources = Resources::new(
        ProcFs::new(proc_dir.path()),
        CgroupFs::new(cgroup_dir.path()),
    );
    assert_eq!(resources.cgroup_dir(), Some(cgroup_dir.path()));

    // Missing /proc files are errors that name the file.
    fs::remove_file(proc_dir.path().join("self/status")).unwrap();
    match resources.memory() {
        Err(ResourceError::Read { path, .. }) => assert!(path.ends_with("self/status")),
        other => panic!("expected a read error, got {other:?}"),
    }
    let message = resources.rss_bytes().unwrap_err().to_string();
    assert!(
        message.contains("self/status") && message.contains("ProcFs"),
        "{message}"
    );
    let gone = ProcFs::new(empty.path().join("nowhere"));
    assert!(matches!(gone.cpu_time(), Err(ResourceError::Read { .. })));
    assert!(matches!(
        gone.host_memory_bytes(),
        Err(ResourceError::Read { .. })
    ));
    // And without self/cgroup, only host limits apply.
    let resources = Resources::new(gone, CgroupFs::new(cgroup_dir.path()));
    assert_eq!(resources.cgroup_dir(), None);
}

#[test]
fn malformed_files_are_errors_that_name_the_file() {
    let proc_dir = fake_proc("0::/svc\n");
    let cgroup_dir = TempDir::new().unwrap();
    write(cgroup_dir.path(), "svc/memory.max", "lots\n");
    write(cgroup_dir.path(), "svc/cpu.max", "50000 0\n");
    let resources = Resources::new(
        ProcFs::new(proc_dir.path()),
        CgroupFs::new(cgroup_dir.path()),
    );
    match resources.memory_limit() {
        Err(ResourceError::Parse { path, reason }) => {
            assert!(path.ends_with("svc/memory.max"));
            assert!(reason.contains("lots"));
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    let message = resources.cpu_limit().unwrap_err().to_string();
    assert!(message.contains("cpu.max"), "{message}");

    write(proc_dir.path(), "self/stat", "4242 no-parens S 1\n");
    assert!(matches!(
        resources.cpu_time(),
        Err(ResourceError::Parse { .. })
    ));
    write(proc_dir.path(), "self/stat", "4242 (short) S 1 2 3\n");
    let message = resources.cpu_time().unwrap_err().to_string();
    assert!(message.contains("utime"), "{message}");
    write(proc_dir.path(), "self/status", "Name:\tkthread\n");
    let message = resources.rss_bytes().unwrap_err().to_string();
    assert!(message.contains("VmRSS"), "{message}");
}

#[test]
fn cpu_time_honours_the_tick_rate() {
    let proc_dir = fake_proc("0::/\n");
    write(proc_dir.path(), "self/stat", &stat_line(250, 5));
    assert_eq!(
        ProcFs::new(proc_dir.path()).cpu_time().unwrap(),
        Duration::from_millis(2550)
    );
    let fast = ProcFs::new(proc_dir.path()).with_ticks_per_second(1000);
    assert_eq!(fast.cpu_time().unwrap(), Duration::from_millis(255));
}

#[tokio::test(start_paused = true)]
async fn cpu_trigger_reports_utilisation_between_two_reads() {
    let proc_dir = fake_proc("0::/kubepods/pod1/ctr\n");
    let cgroup_dir = fake_cgroup(); // half a core
    let resources = Resources::new(
        ProcFs::new(proc_dir.path()),
        CgroupFs::new(cgroup_dir.path()),
    );
    let mut cpu = CpuTrigger::new(resources);
    assert_eq!(cpu.name(), "cpu");
    assert_eq!(
        cpu.read(Instant::now()),
        None,
        "the first read is the baseline"
    );

    // 0.8 s of CPU in 2 s on half a core: 80 % of what the process may use.
    tokio::time::advance(Duration::from_secs(2)).await;
    write(proc_dir.path(), "self/stat", &stat_line(150, 80));
    let reading = cpu.read(Instant::now()).unwrap();
    assert!((reading - 0.8).abs() < 1e-9, "{reading}");
    assert_eq!(cpu.limit().map(|l| l.source), Some(LimitSource::Cgroup));

    // Idle for a second.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(cpu.read(Instant::now()), Some(0.0));

    // The quota is doubled at run time: the same CPU use is half the share.
    write(
        cgroup_dir.path(),
        "kubepods/pod1/ctr/cpu.max",
        "100000 100000\n",
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    write(proc_dir.path(), "self/stat", &stat_line(190, 80));
    let reading = cpu.read(Instant::now()).unwrap();
    assert!((reading - 0.4).abs() < 1e-9, "{reading}");

    // A read at the same instant gives nothing rather than dividing by zero.
    assert_eq!(cpu.read(Instant::now()), None);

    // An unreadable stat file gives no reading, and reading resumes when it is back.
    fs::remove_file(proc_dir.path().join("self/stat")).unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(cpu.read(Instant::now()), None);
    write(proc_dir.path(), "self/stat", &stat_line(190, 80));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(cpu.read(Instant::now()), Some(0.0));
    assert_eq!(cpu.with_name("cpu-main").name(), "cpu-main");
}

#[tokio::test(start_paused = true)]
async fn memory_trigger_reports_the_share_of_the_limit() {
    let proc_dir = fake_proc("0::/kubepods/pod1/ctr\n");
    let cgroup_dir = fake_cgroup();
    let resources = Resources::new(
        ProcFs::new(proc_dir.path()),
        CgroupFs::new(cgroup_dir.path()),
    );
    let mut memory = MemoryTrigger::new(resources.clone());
    assert_eq!(memory.name(), "memory");
    let reading = memory.read(Instant::now()).unwrap();
    assert!((reading - 500.0 / 1024.0).abs() < 1e-9, "{reading}");
    assert_eq!(memory.last_reading().unwrap().cgroup_bytes, Some(500 * MIB));

    // An absolute budget: this process's RSS (100 MiB) against 400 MiB.
    let mut budget = MemoryTrigger::new(resources)
        .with_limit_bytes(400 * MIB)
        .with_name("memory-budget");
    assert_eq!(budget.name(), "memory-budget");
    assert_eq!(budget.read(Instant::now()), Some(0.25));

    // Unreadable: no reading.
    fs::remove_file(proc_dir.path().join("self/status")).unwrap();
    assert_eq!(memory.read(Instant::now()), None);
    assert_eq!(budget.read(Instant::now()), None);
}

#[tokio::test]
async fn queue_gauge_and_trigger() {
    let exporter_a = QueueGauge::new(1000);
    let exporter_b = QueueGauge::new(200);
    let unsized_queue = QueueGauge::default();
    assert_eq!(unsized_queue.fill_ratio(), None, "no capacity, no ratio");

    exporter_a.add(300);
    exporter_a.add(200);
    exporter_a.sub(100);
    assert_eq!(exporter_a.used(), 400);
    assert_eq!(exporter_a.fill_ratio(), Some(0.4));
    exporter_b.set_used(150);
    exporter_b.sub(1000);
    assert_eq!(exporter_b.used(), 0, "never below zero");

    let mut queue = QueueTrigger::new(exporter_a.clone())
        .with_gauge(exporter_b.clone())
        .with_gauge(unsized_queue.clone());
    assert_eq!(queue.name(), "queue");
    assert_eq!(queue.read(Instant::now()), Some(0.4));
    // The fullest queue counts.
    exporter_b.set_used(180);
    assert_eq!(queue.read(Instant::now()), Some(0.9));
    exporter_b.set_capacity(360);
    assert_eq!(queue.read(Instant::now()), Some(0.5));

    // Clones share the counts across threads.
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let gauge = exporter_a.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    gauge.add(1);
                    gauge.sub(1);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(exporter_a.used(), 400);
    let mut nothing = QueueTrigger::new(QueueGauge::default()).with_name("q2");
    assert_eq!(nothing.read(Instant::now()), None);
    assert_eq!(nothing.name(), "q2");
}

#[tokio::test(start_paused = true)]
async fn latency_tracker_ewma_and_percentile() {
    let tracker = LatencyTracker::with_config(LatencyConfig {
        capacity: 100,
        alpha: 0.5,
        max_age: Duration::from_secs(30),
    })
    .unwrap();
    let now = Instant::now();
    assert_eq!(tracker.ewma(now), None);
    assert_eq!(tracker.percentile(0.99, now), None);

    tracker.record_at(Duration::from_millis(100), now);
    assert_eq!(
        tracker.ewma(now),
        Some(Duration::from_millis(100)),
        "the first sample starts the average"
    );
    tracker.record_at(Duration::from_millis(200), now);
    assert_eq!(tracker.ewma(now), Some(Duration::from_millis(150)));
    tracker.record_at(Duration::from_millis(50), now);
    assert_eq!(tracker.ewma(now), Some(Duration::from_millis(100)));

    // 1..=100 ms: nearest-rank percentiles; the ring holds the newest 100 only, so the three
    // samples above are gone.
    for ms in 1..=100 {
        tracker.record(Duration::from_millis(ms));
    }
    assert_eq!(tracker.recorded(), 103);
    assert_eq!(
        tracker.percentile(0.99, now),
        Some(Duration::from_millis(99))
    );
    assert_eq!(
        tracker.percentile(0.5, now),
        Some(Duration::from_millis(50))
    );
    assert_eq!(
        tracker.percentile(1.0, now),
        Some(Duration::from_millis(100))
    );
    assert_eq!(tracker.percentile(0.0, now), Some(Duration::from_millis(1)));

    let mut p99 = LatencyTrigger::new(tracker.clone());
    assert_eq!(p99.name(), "export_latency");
    assert_eq!(p99.read(now), Some(99.0));
    let mut ewma = LatencyTrigger::new(tracker.clone())
        .with_stat(LatencyStat::Ewma)
        .with_name("latency-ewma");
    let average = ewma.read(now).unwrap();
    assert!(average > 50.0 && average < 100.0, "{average}");
    let mut p50 = LatencyTrigger::new(tracker.clone()).with_stat(LatencyStat::Percentile(0.5));
    assert_eq!(p50.read(now), Some(50.0));

    // Samples age out: with no export for longer than max_age there is no reading, so a
    // quiet upstream does not hold a level.
    tokio::time::advance(Duration::from_secs(31)).await;
    let later = Instant::now();
    assert_eq!(p99.read(later), None);
    assert_eq!(ewma.read(later), None);
    // After the silence the average starts afresh.
    tracker.record(Duration::from_millis(7));
    assert_eq!(tracker.ewma(later), Some(Duration::from_millis(7)));
    assert_eq!(
        tracker.percentile(0.99, later),
        Some(Duration::from_millis(7))
    );
}

#[test]
fn latency_and_error_configs_are_checked() {
    let bad_alpha = LatencyTracker::with_config(LatencyConfig {
        alpha: 1.5,
        ..LatencyConfig::default()
    })
    .unwrap_err();
    assert!(bad_alpha.to_string().contains("alpha"), "{bad_alpha}");
    assert!(
        LatencyTracker::with_config(LatencyConfig {
            capacity: 0,
            ..LatencyConfig::default()
        })
        .is_err()
    );
    assert!(
        LatencyTracker::with_config(LatencyConfig {
            alpha: f64::NAN,
            ..LatencyConfig::default()
        })
        .is_err()
    );
    assert!(
        ErrorRateTracker::with_config(ErrorRateConfig {
            buckets: 0,
            ..ErrorRateConfig::default()
        })
        .is_err()
    );
    let zero = ErrorRateTracker::with_config(ErrorRateConfig {
        window: Duration::ZERO,
        ..ErrorRateConfig::default()
    })
    .unwrap_err();
    assert!(zero.to_string().contains("window"), "{zero}");
}

#[tokio::test(start_paused = true)]
async fn error_rate_over_a_sliding_window() {
    // A 10 s window in 5 steps of 2 s; at least 4 exports for a reading.
    let tracker = ErrorRateTracker::with_config(ErrorRateConfig {
        window: Duration::from_secs(10),
        buckets: 5,
        min_samples: 4,
    })
    .unwrap();
    let mut errors = ErrorRateTrigger::new(tracker.clone());
    assert_eq!(errors.name(), "export_errors");
    let start = Instant::now();
    assert_eq!(errors.read(start), None);

    tracker.record(true);
    tracker.record(false);
    assert_eq!(errors.read(start), None, "two exports are too few to judge");
    tracker.record_at(start, 6, 2);
    assert_eq!(tracker.counts(start), (7, 3));
    assert_eq!(errors.read(start), Some(0.3));

    tokio::time::advance(Duration::from_secs(5)).await;
    tracker.record_at(Instant::now(), 0, 10);
    assert_eq!(tracker.counts(Instant::now()), (7, 13));
    assert_eq!(errors.read(Instant::now()), Some(13.0 / 20.0));

    // At 10 s the first step leaves the window; the failures from 5 s stay.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(tracker.counts(Instant::now()), (0, 10));
    assert_eq!(errors.read(Instant::now()), Some(1.0));

    // At 16 s those are gone too.
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(tracker.counts(Instant::now()), (0, 0));
    assert_eq!(errors.read(Instant::now()), None);

    // Buckets are reused as the window moves on.
    for second in 0..30 {
        tracker.record_at(Instant::now(), 9, u64::from(second % 10 == 5));
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    let (ok, failed) = tracker.counts(Instant::now());
    // Now is 46 s: the window holds the steps from 38 s on (four full ones of 2 s, eight
    // records of 9) and the current, empty one; of the failures at 21, 31 and 41 s only
    // the last is in it.
    assert_eq!(ok + failed, 73);
    assert_eq!(failed, 1);
}

#[tokio::test(start_paused = true)]
async fn lag_probe_measures_how_late_it_wakes() {
    let probe = LagProbe::spawn(Duration::from_millis(100), Duration::from_secs(10)).unwrap();
    let mut ewma = LagTrigger::new(probe.clone());
    let mut max = LagTrigger::new(probe.clone())
        .with_stat(LagStat::Max)
        .with_name("lag-max");
    assert_eq!(ewma.name(), "scheduler_lag");
    assert_eq!(ewma.read(Instant::now()), None, "no wake-up yet");

    // An idle runtime with paused time wakes the probe exactly on time.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let samples = probe.samples();
    assert_eq!(samples.len(), 10);
    assert!(samples.iter().all(|lag| lag.is_zero()), "{samples:?}");
    assert_eq!(ewma.read(Instant::now()), Some(0.0));

    // The runtime is blocked: 350 ms pass without the probe (due 50 ms from now) running.
    tokio::time::advance(Duration::from_millis(350)).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(probe.samples().last(), Some(&Duration::from_millis(300)));
    assert_eq!(max.read(Instant::now()), Some(300.0));
    // The EWMA weighs the stall 0.3.
    let smoothed = ewma.read(Instant::now()).unwrap();
    assert!((smoothed - 90.0).abs() < 1e-6, "{smoothed}");

    // Back to on-time wake-ups: the EWMA decays, the max holds for its window.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(ewma.read(Instant::now()).unwrap() < 1.0);
    assert_eq!(max.read(Instant::now()), Some(300.0));
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(
        max.read(Instant::now()),
        Some(0.0),
        "the stall left the window"
    );

    // Dropping every handle stops the probe task.
    let runtime = tokio::runtime::Handle::current();
    assert_eq!(runtime.metrics().num_alive_tasks(), 1);
    drop((probe, ewma, max));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(runtime.metrics().num_alive_tasks(), 0);

    assert!(LagProbe::spawn(Duration::ZERO, Duration::from_secs(1)).is_err());
    assert!(LagProbe::spawn(Duration::from_secs(1), Duration::from_millis(10)).is_err());
}

#[tokio::test]
async fn this_process_can_be_measured() {
    let resources = Resources::detect();
    assert!(resources.rss_bytes().unwrap() > 0);
    let memory = resources.memory().unwrap();
    assert!(memory.limit.bytes > 0);
    assert!(memory.share() > 0.0 && memory.share() < 1.0, "{memory:?}");
    let cpu = resources.cpu_limit().unwrap();
    assert!(cpu.cores > 0.0);
    let before = resources.cpu_time().unwrap();

    let mut trigger = CpuTrigger::new(resources.clone());
    assert_eq!(trigger.read(Instant::now()), None);
    // Burn some CPU so the second read has something to measure.
    let mut x = 0u64;
    for i in 0..20_000_000u64 {
        x = x.wrapping_mul(31).wrapping_add(i);
    }
    std::hint::black_box(x);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let reading = trigger.read(Instant::now()).unwrap();
    assert!(reading >= 0.0, "{reading}");
    assert!(resources.cpu_time().unwrap() >= before);
    let mut memory = MemoryTrigger::new(resources);
    assert!(memory.read(Instant::now()).unwrap() > 0.0);
}
