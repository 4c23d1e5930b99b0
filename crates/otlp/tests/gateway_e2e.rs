//! `otlp gateway` end to end: real `otlp` processes on 127.0.0.1, real files in temporary
//! directories, the Python OpenTelemetry SDK and our own exporter as clients.
//!
//! - [`python_sdk_grpc_and_http_through_two_gateways`]: the SDK sends traces, metrics
//!   and logs over gRPC and HTTP to gateway A, which exports to gateway B writing the
//!   JSONL file sink; everything arrives.
//! - [`upstream_killed_and_restarted_delivers_every_span`]: B is killed while A takes
//!   spans into its disk queue and comes back on the same port; no span id is missing.
//! - [`crash_with_disk_queue_loses_nothing_acknowledged`]: A is killed with SIGKILL
//!   after acknowledging spans it could not export; started again, it delivers them all.
//! - [`overload_stays_bounded_and_recovers`]: A with a small memory queue and no
//!   upstream is driven by many senders: retryable refusals with a delay, memory bounded,
//!   refusals counted by reason, error spans kept, nothing accepted is lost silently, and
//!   it takes data again once the upstream is back.
//! - [`check_config_names_the_bad_key`]: `otlp check-config` exit codes and messages.
//!
//! The gateway tests run one at a time (they share two cores with everything else).
//! Every wait is bounded; a failure prints the gateways' stderr tails.

mod gateway_support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use gateway_support::delivered::{self, Delivered, log_fingerprint};
use gateway_support::free_addr;
use gateway_support::http::{self as admin_http, metric_lines, metric_sum};
use gateway_support::process::{Gateway, GatewaySpec};
use gateway_support::python::{self, run_script_async, strings};
use gateway_support::spans::{
    self, Answer, classify_grpc, grpc_client, send_spans, send_spans_retrying, span_id_hex,
};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message as _;
use tokio::time::Instant;

/// One gateway test at a time: each starts two gateways and Python or many senders.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long data may take to arrive at the upstream's files once it can.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls B's files every 50 ms until `done` says they hold everything (bounded by
/// `timeout`); returns the last reading.
async fn wait_delivered(
    dir: &Path,
    timeout: Duration,
    mut done: impl FnMut(&Delivered) -> bool,
) -> Delivered {
    let polls = timeout.as_millis() / 50;
    for _ in 0..polls {
        let seen = delivered::read(dir);
        if done(&seen) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    delivered::read(dir)
}

fn tails(gateways: &[&Gateway]) -> String {
    gateways
        .iter()
        .map(|g| g.stderr_tail(30))
        .collect::<Vec<_>>()
        .join("\n")
}

fn first<T: std::fmt::Debug>(items: &[T]) -> String {
    format!(
        "{} (first: {:?})",
        items.len(),
        items.iter().take(5).collect::<Vec<_>>()
    )
}

// ---------------------------------------------------------------------------------------
// 1. The Python SDK over gRPC and HTTP, through two gateways.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_grpc_and_http_through_two_gateways() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    // Set the venvs up before any gateway runs (the first run installs from PyPI).
    tokio::task::spawn_blocking(|| {
        python::venv("grpc");
        python::venv("proto");
    })
    .await
    .expect("venv setup thread");

    let mut b = Gateway::start(GatewaySpec::new("b", dir.path())).await;
    let mut a = Gateway::start(GatewaySpec::new("a", dir.path()).export_grpc(b.grpc_addr())).await;

    // gRPC, the rich set (every attribute type, links, events, odd ids): emit_grpc.py.
    let rich_out = dir.path().join("py-grpc-rich");
    // gRPC and HTTP, volume with known ids: emit_load.py through each exporter.
    let grpc_out = dir.path().join("py-grpc-load");
    let http_out = dir.path().join("py-http-load");
    let s = |p: &Path| p.display().to_string();
    let runs: [(&'static str, &'static str, Vec<String>); 3] = [
        (
            "grpc",
            "emit_grpc.py",
            vec![
                "--endpoint".into(),
                a.grpc_addr().to_string(),
                "--out".into(),
                s(&rich_out),
            ],
        ),
        (
            "grpc",
            "emit_load.py",
            vec![
                "--protocol".into(),
                "grpc".into(),
                "--endpoint".into(),
                format!("http://{}", a.grpc_addr()),
                "--out".into(),
                s(&grpc_out),
                "--tag".into(),
                "e2e-grpc".into(),
                "--spans".into(),
                "500".into(),
                "--span-base".into(),
                "e2e1000000000000".into(),
                "--logs".into(),
                "50".into(),
            ],
        ),
        (
            "proto",
            "emit_load.py",
            vec![
                "--protocol".into(),
                "http".into(),
                "--endpoint".into(),
                format!("http://{}", a.http_addr()),
                "--out".into(),
                s(&http_out),
                "--tag".into(),
                "e2e-http".into(),
                "--spans".into(),
                "500".into(),
                "--span-base".into(),
                "e2e2000000000000".into(),
                "--logs".into(),
                "50".into(),
            ],
        ),
    ];
    // Concurrently: the gateway sees gRPC and HTTP clients at once.
    let handles: Vec<_> = runs
        .into_iter()
        .map(|(venv, script, args)| tokio::spawn(run_script_async(venv, script, args)))
        .collect();
    for (handle, out_dir) in handles.into_iter().zip([&rich_out, &grpc_out, &http_out]) {
        let output = handle.await.expect("python runner task");
        let output = output.unwrap_or_else(|e| panic!("{e}\n{}", tails(&[&a, &b])));
        assert!(
            output.status.success(),
            "{} failed ({}): {}\nsummary problems: {}\n{}",
            out_dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr),
            python::summary(out_dir)["problems"],
            tails(&[&a, &b])
        );
    }

    // What the SDK had acknowledged, by signal.
    let rich = python::summary(&rich_out);
    let mut want_spans: Vec<String> = rich["traces"]["spans"]
        .as_array()
        .map(|spans| {
            spans
                .iter()
                .filter_map(|s| s["span_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut want_metrics: HashSet<String> = strings(&rich["metrics"]["metric_names"])
        .into_iter()
        .collect();
    let mut want_log_bodies: Vec<String> = Vec::new();
    for out in [&grpc_out, &http_out] {
        let summary = python::summary(out);
        want_spans.extend(strings(&summary["spans"]));
        want_metrics.extend(strings(&summary["metric_names"]));
        want_log_bodies.extend(strings(&summary["log_bodies"]));
    }
    // emit_grpc.py's log records, from the exact requests it sent.
    let mut want_logs: Vec<Vec<u8>> = Vec::new();
    for n in 1..=100 {
        let Ok(bytes) = std::fs::read(rich_out.join(format!("sent-logs.{n}.pb"))) else {
            break;
        };
        let request = ExportLogsServiceRequest::decode(bytes.as_slice()).expect("sent logs decode");
        for rl in &request.resource_logs {
            for sl in &rl.scope_logs {
                want_logs.extend(sl.log_records.iter().map(log_fingerprint));
            }
        }
    }
    assert_eq!(
        want_spans.len(),
        6 + 500 + 500,
        "spans the SDK acknowledged"
    );
    assert_eq!(want_logs.len(), 7, "emit_grpc.py's log records");
    assert_eq!(want_log_bodies.len(), 100, "emit_load.py's log records");
    assert!(
        want_metrics.len() >= 5 + 6,
        "metric names: {want_metrics:?}"
    );

    // A drains into B on SIGTERM; then B's files must hold everything.
    let a_exit = a.terminate().await;
    let complete = |d: &Delivered| {
        d.missing_spans(&want_spans).is_empty()
            && want_metrics.iter().all(|m| d.metric_names.contains(m))
            && want_logs.iter().all(|l| d.logs.contains_key(l))
            && want_log_bodies.iter().all(|b| d.log_bodies.contains_key(b))
    };
    let _ = wait_delivered(&b.data_dir(), DELIVERY_TIMEOUT, complete).await;
    let b_exit = b.terminate().await;
    let seen = delivered::read(&b.data_dir());

    let missing_spans = seen.missing_spans(&want_spans);
    let missing_metrics: Vec<&String> = want_metrics
        .iter()
        .filter(|m| !seen.metric_names.contains(*m))
        .collect();
    let missing_logs = want_logs
        .iter()
        .filter(|l| !seen.logs.contains_key(*l))
        .count();
    let missing_bodies: Vec<&String> = want_log_bodies
        .iter()
        .filter(|b| !seen.log_bodies.contains_key(*b))
        .collect();
    let diag = format!("B holds: {}\n{}", seen.describe(), tails(&[&a, &b]));
    assert!(
        missing_spans.is_empty(),
        "spans missing at B: {}\n{diag}",
        first(&missing_spans)
    );
    assert!(
        missing_metrics.is_empty(),
        "metrics missing at B: {missing_metrics:?}\n{diag}"
    );
    assert_eq!(
        missing_logs, 0,
        "emit_grpc.py log records missing at B\n{diag}"
    );
    assert!(
        missing_bodies.is_empty(),
        "log records missing at B: {}\n{diag}",
        first(&missing_bodies)
    );
    assert!(
        seen.bad_lines.is_empty(),
        "undecodable JSONL lines at B\n{diag}"
    );
    assert!(
        a_exit.success(),
        "A exited with {a_exit} on SIGTERM\n{diag}"
    );
    assert!(
        b_exit.success(),
        "B exited with {b_exit} on SIGTERM\n{diag}"
    );
    eprintln!(
        "python_sdk_grpc_and_http_through_two_gateways: {} spans, {} metric names, {} log \
         records delivered; {} duplicate spans; {:?}",
        want_spans.len(),
        want_metrics.len(),
        want_logs.len() + want_log_bodies.len(),
        seen.duplicate_spans(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// 2. The upstream killed and restarted on the same port.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_killed_and_restarted_delivers_every_span() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    const N: u64 = 2000;
    const KILL_AFTER: u64 = 100;
    // 40 requests 50 ms apart: about two seconds of sending, most of it with B down.
    const PACE: Duration = Duration::from_millis(50);
    const BASE: u64 = 0xE2E3_0000_0000_0000;
    let dir = tempfile::tempdir().expect("tempdir");
    let b_addr = free_addr();
    let mut b = Gateway::start(GatewaySpec::new("b", dir.path()).grpc_addr(b_addr)).await;
    let a = Gateway::start(
        GatewaySpec::new("a", dir.path())
            .tables("[queue]\nkind = \"disk\"\n")
            .export_grpc(b_addr),
    )
    .await;
    let client = grpc_client(a.grpc_addr());

    // One sender streams all N spans (retrying refusals, as an SDK would) while B is
    // killed mid-stream, once some spans have reached it: B dies with exports in flight.
    let sender = {
        let client = client.clone();
        tokio::spawn(async move { send_spans_retrying(&client, BASE, 0..N, 50, 50, PACE).await })
    };
    let before_kill = wait_delivered(&b.data_dir(), Duration::from_secs(30), |d| {
        d.spans.len() as u64 >= KILL_AFTER
    })
    .await;
    b.kill();
    assert!(
        !before_kill.spans.is_empty(),
        "nothing reached B before the kill\n{}",
        tails(&[&a, &b])
    );
    let (acked, errors) = sender.await.expect("sender task");
    assert_eq!(
        acked.len() as u64,
        N,
        "A refused spans (its disk queue should take them while B is down): {}\n{}",
        first(&errors),
        tails(&[&a, &b])
    );
    // Down for a while: wait (bounded) until A's exports have failed and backed off a
    // few times, rather than for a fixed time.
    let mut failures_while_down = 0.0;
    for _ in 0..400 {
        failures_while_down = metric_sum(
            &a.metrics(),
            "otlp_gateway_exporter_retryable_failures_total",
            &[],
        );
        if failures_while_down >= 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        failures_while_down >= 3.0,
        "A's exports never failed while B was down\n{}",
        tails(&[&a, &b])
    );
    b.restart().await;

    let want: Vec<String> = (0..N).map(|i| span_id_hex(BASE, i)).collect();
    let seen = wait_delivered(&b.data_dir(), DELIVERY_TIMEOUT, |d| {
        d.missing_spans(&want).is_empty()
    })
    .await;
    let missing = seen.missing_spans(&want);
    assert!(
        missing.is_empty(),
        "spans missing at B after its restart: {}\nB holds: {}\nA /metrics:\n{}\nB /metrics:\n{}\n\
         B's files:\n{}\n{}",
        first(&missing),
        seen.describe(),
        metric_lines(&a.metrics(), "otlp_gateway_export"),
        metric_lines(&b.metrics(), "otlp_gateway_queue"),
        gateway_support::dir_listing(&b.data_dir()),
        tails(&[&a, &b])
    );
    assert!(
        seen.bad_lines.is_empty(),
        "undecodable JSONL lines at B: {}",
        seen.describe()
    );
    eprintln!(
        "upstream_killed_and_restarted_delivers_every_span: {N} spans, {} at B before the \
         kill, {} written in all ({} duplicated), A export failures while B was down: \
         {failures_while_down}; {:?}",
        before_kill.spans.len(),
        seen.span_writes(),
        seen.duplicate_spans(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// 3. SIGKILL with the disk queue on: nothing acknowledged is lost.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_with_disk_queue_loses_nothing_acknowledged() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    const N: u64 = 1000;
    const BASE: u64 = 0xE2E5_0000_0000_0000;
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing listens there until B starts after the crash.
    let upstream = free_addr();
    let mut a = Gateway::start(
        GatewaySpec::new("a", dir.path())
            .tables("[queue]\nkind = \"disk\"\nfsync = \"always\"\n")
            .export_grpc(upstream),
    )
    .await;
    let client = grpc_client(a.grpc_addr());
    let (acked, errors) = send_spans(&client, BASE, 0..N, 50, 0).await;
    assert!(
        acked.len() as u64 >= N / 2,
        "A acknowledged only {} of {N} spans with its upstream down: {}\n{}",
        acked.len(),
        first(&errors),
        a.stderr_tail(30)
    );
    let queued = metric_sum(&a.metrics(), "otlp_gateway_queue_depth", &[]);
    a.kill();

    let b = Gateway::start(GatewaySpec::new("b", dir.path()).grpc_addr(upstream)).await;
    a.restart().await;
    let seen = wait_delivered(&b.data_dir(), DELIVERY_TIMEOUT, |d| {
        d.missing_spans(&acked).is_empty()
    })
    .await;
    let missing = seen.missing_spans(&acked);
    assert!(
        missing.is_empty(),
        "acknowledged spans lost across the crash: {}\nB holds: {}\n{}",
        first(&missing),
        seen.describe(),
        tails(&[&a, &b])
    );
    eprintln!(
        "crash_with_disk_queue_loses_nothing_acknowledged: {} of {N} acknowledged ({} refused \
         requests), queue depth before the kill: {queued}, all delivered after the \
         restart ({} written, {} duplicated); {:?}",
        acked.len(),
        errors.len(),
        seen.span_writes(),
        seen.duplicate_spans(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// 4. Overload.
// ---------------------------------------------------------------------------------------

/// What one sender saw.
#[derive(Debug, Default)]
struct SenderLog {
    accepted: Vec<String>,
    accepted_errors: Vec<String>,
    retryable: Vec<String>,
    other: Vec<String>,
}

/// The resident memory bound asserted under overload: `limits.memory_hard` below.
const RSS_BOUND_KIB: u64 = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_stays_bounded_and_recovers() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    const GRPC_SENDERS: u64 = 6;
    const HTTP_SENDERS: u64 = 2;
    const REQUESTS: u64 = 40;
    const SPANS: u64 = 100;
    const ERROR_EVERY: u64 = 10;
    const PADDING: usize = 200;
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = free_addr();
    let a = Gateway::start(
        GatewaySpec::new("a", dir.path())
            .listener("max_request_bytes = \"1MiB\"")
            .tables(
                "[queue]\nkind = \"memory\"\nmax_bytes = \"2MiB\"\n[batch]\nmax_bytes = \"512KiB\"\n\
                 [limits]\nmemory_soft = \"192MiB\"\nmemory_hard = \"256MiB\"\nretry_after = \"1s\"\n\
                 [degradation]\nenabled = true\ninterval = \"250ms\"\ncool_down = \"2s\"\n",
            )
            .export_grpc(upstream),
    )
    .await;
    let rss_idle = a.rss_kib().unwrap_or(0);

    // RSS sampler, until the senders finish.
    let pid = a.pid();
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0u64;
            // Bounded: the senders finish long before 10 minutes.
            for _ in 0..6000 {
                if !sampling.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    && let Some(kib) = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    peak = peak.max(kib);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        })
    };

    let mut tasks = Vec::new();
    for sender in 0..GRPC_SENDERS {
        let addr = a.grpc_addr();
        tasks.push(tokio::spawn(async move {
            let client = grpc_client(addr);
            let base = 0xE2E6_0000_0000_0000u64 + (sender << 32);
            let mut log = SenderLog::default();
            for r in 0..REQUESTS {
                let range = r * SPANS..(r + 1) * SPANS;
                let request = spans::traces_request(base, range.clone(), ERROR_EVERY, PADDING);
                match client.export_traces(&request).await {
                    Ok(_) => record_accepted(&mut log, base, range, ERROR_EVERY),
                    Err(failure) => match classify_grpc(failure.error()) {
                        Answer::Retryable(why) => log.retryable.push(why),
                        Answer::Other(why) => log.other.push(why),
                        Answer::Accepted => log.other.push(format!("{failure}")),
                    },
                }
            }
            log
        }));
    }
    for sender in 0..HTTP_SENDERS {
        let addr = a.http_addr();
        tasks.push(tokio::task::spawn_blocking(move || {
            let base = 0xE2E7_0000_0000_0000u64 + (sender << 32);
            let mut log = SenderLog::default();
            for r in 0..REQUESTS {
                let range = r * SPANS..(r + 1) * SPANS;
                let body = spans::traces_request(base, range.clone(), ERROR_EVERY, PADDING)
                    .encode_to_vec();
                match admin_http::post(addr, "/v1/traces", "application/x-protobuf", &body) {
                    Ok(resp) if resp.status == 200 => {
                        record_accepted(&mut log, base, range, ERROR_EVERY);
                    }
                    Ok(resp) if matches!(resp.status, 429 | 503) => {
                        match resp.header("retry-after") {
                            Some(after) => log
                                .retryable
                                .push(format!("HTTP {} Retry-After {after}", resp.status)),
                            None => log
                                .other
                                .push(format!("HTTP {} without Retry-After", resp.status)),
                        }
                    }
                    Ok(resp) => log
                        .other
                        .push(format!("HTTP {}: {}", resp.status, resp.text())),
                    Err(e) => log.other.push(format!("HTTP: {e}")),
                }
            }
            log
        }));
    }
    let mut logs = Vec::new();
    for task in tasks {
        logs.push(task.await.expect("sender task"));
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let rss_peak = sampler.await.expect("sampler task");
    let after_load = a.metrics();

    let accepted: Vec<String> = logs.iter().flat_map(|l| l.accepted.clone()).collect();
    let accepted_errors: Vec<String> = logs
        .iter()
        .flat_map(|l| l.accepted_errors.clone())
        .collect();
    let retryable: Vec<String> = logs.iter().flat_map(|l| l.retryable.clone()).collect();
    let other: Vec<String> = logs.iter().flat_map(|l| l.other.clone()).collect();
    let refused_metric = metric_sum(&after_load, "otlp_gateway_refused_requests_total", &[]);
    let diag = format!(
        "accepted spans {}, retryable refusals {}, other answers {}\nA /metrics refused:\n{}\n{}",
        accepted.len(),
        first(&retryable),
        first(&other),
        metric_lines(&after_load, "otlp_gateway_refused"),
        a.stderr_tail(30)
    );
    assert!(!accepted.is_empty(), "nothing accepted under load\n{diag}");
    assert!(
        !retryable.is_empty(),
        "driven past a 2 MiB queue, A never refused\n{diag}"
    );
    assert!(
        other.is_empty(),
        "refusals that are not retryable with a delay\n{diag}"
    );
    let http_refusals = retryable.iter().filter(|r| r.starts_with("HTTP")).count();
    assert!(
        http_refusals > 0 && http_refusals < retryable.len(),
        "both listeners must refuse retryably ({http_refusals} of {} refusals were HTTP)\n{diag}",
        retryable.len()
    );
    assert!(
        rss_peak > 0 && rss_peak < RSS_BOUND_KIB,
        "A's peak RSS {rss_peak} KiB, bound {RSS_BOUND_KIB} KiB\n{diag}"
    );
    let by_reason: Vec<(&str, f64)> = [
        "queue_full",
        "memory",
        "rate_limited",
        "draining",
        "internal",
    ]
    .into_iter()
    .map(|r| {
        (
            r,
            metric_sum(
                &after_load,
                "otlp_gateway_refused_requests_total",
                &[("reason", r)],
            ),
        )
    })
    .collect();
    assert!(
        refused_metric as usize >= retryable.len() && by_reason.iter().any(|(_, n)| *n > 0.0),
        "/metrics does not count the {} refusals by reason: {by_reason:?}\n{diag}",
        retryable.len()
    );

    // The upstream comes up: everything accepted arrives, except spans the degradation
    // policy dropped on purpose (counted), and never an error span.
    let b = Gateway::start(GatewaySpec::new("b", dir.path()).grpc_addr(upstream)).await;
    let sampled_dropped = |m: &str| {
        metric_sum(
            m,
            "otlp_gateway_dropped_items_total",
            &[("signal", "traces")],
        )
    };
    let accounted = |d: &Delivered, dropped: f64| {
        d.missing_spans(&accepted_errors).is_empty()
            && (d.missing_spans(&accepted).len() as f64) <= dropped
    };
    let mut seen = Delivered::default();
    let mut dropped = 0.0;
    for _ in 0..(DELIVERY_TIMEOUT.as_millis() / 500) {
        let a_metrics = a.metrics();
        dropped = sampled_dropped(&a_metrics);
        seen = delivered::read(&b.data_dir());
        // Both queues empty: nothing more is on its way.
        let drained = metric_sum(&a_metrics, "otlp_gateway_queue_depth", &[]) == 0.0
            && metric_sum(&b.metrics(), "otlp_gateway_queue_depth", &[]) == 0.0;
        if drained && accounted(&seen, dropped) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let missing_errors = seen.missing_spans(&accepted_errors);
    let missing = seen.missing_spans(&accepted);
    let diag = format!(
        "{diag}\nB holds: {}\nA dropped (traces): {dropped}\nA /metrics dropped:\n{}\n{}",
        seen.describe(),
        metric_lines(&a.metrics(), "otlp_gateway_dropped"),
        b.stderr_tail(20)
    );
    assert!(
        missing_errors.is_empty(),
        "accepted error spans never arrived (error spans must be kept): {}\n{diag}",
        first(&missing_errors)
    );
    assert!(
        missing.len() as f64 <= dropped,
        "{} accepted spans never arrived but only {dropped} were counted as dropped: {}\n{diag}",
        missing.len(),
        first(&missing)
    );
    // Drops are counted for what the client was told was accepted, and only that: spans of
    // a request that was then refused (the client sends them again) are not dropped.
    assert_eq!(
        missing.len() as f64,
        dropped,
        "dropped_items_total{{signal=\"traces\"}} says {dropped} spans were dropped by policy, \
         but {} accepted spans are missing: drops counted for refused requests?\n{diag}",
        missing.len()
    );

    // Recovered: once the load is gone the degradation level steps back to normal
    // (cool_down 2 s per level), and new data is accepted and delivered in full.
    let mut level = f64::NAN;
    for _ in 0..(DELIVERY_TIMEOUT.as_millis() / 250) {
        level = metric_sum(&a.metrics(), "otlp_gateway_degradation_level", &[]);
        if level == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        level, 0.0,
        "A's degradation level did not return to normal\n{diag}"
    );
    let client = grpc_client(a.grpc_addr());
    let (recovered, errors) = send_spans_retrying(
        &client,
        0xE2E8_0000_0000_0000,
        0..200,
        100,
        150,
        Duration::ZERO,
    )
    .await;
    assert_eq!(
        recovered.len(),
        200,
        "A did not take data again: {}\n{diag}",
        first(&errors)
    );
    let after = wait_delivered(&b.data_dir(), DELIVERY_TIMEOUT, |d| {
        d.missing_spans(&recovered).is_empty()
    })
    .await;
    assert!(
        after.missing_spans(&recovered).is_empty(),
        "spans sent after recovery missing at B: {}\n{diag}",
        first(&after.missing_spans(&recovered))
    );
    eprintln!(
        "overload_stays_bounded_and_recovers: {} spans accepted ({} error spans, all \
         delivered), {} requests refused retryably ({http_refusals} over HTTP; /metrics: \
         {by_reason:?}), {} spans counted as dropped by policy, {} accepted-and-missing; RSS \
         idle {rss_idle} KiB, peak {rss_peak} KiB (bound {RSS_BOUND_KIB} KiB); recovered \
         after {} refused retries; {:?}",
        accepted.len(),
        accepted_errors.len(),
        retryable.len(),
        dropped,
        missing.len(),
        errors.len(),
        started.elapsed()
    );
}

fn record_accepted(log: &mut SenderLog, base: u64, range: std::ops::Range<u64>, error_every: u64) {
    for i in range {
        let id = span_id_hex(base, i);
        if i % error_every == 0 {
            log.accepted_errors.push(id.clone());
        }
        log.accepted.push(id);
    }
}

// ---------------------------------------------------------------------------------------
// 5. check-config.
// ---------------------------------------------------------------------------------------

#[test]
fn check_config_names_the_bad_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write config");
        Command::new(env!("CARGO_BIN_EXE_otlp"))
            .arg("check-config")
            .arg(&path)
            .output()
            .expect("run otlp check-config")
    };
    let good = check(
        "good.toml",
        "data_dir = \"/tmp/otlp-e2e-unused\"\n[queue]\nkind = \"memory\"\nmax_bytes = \"64MiB\"\n\
         [[exporters]]\nname = \"up\"\nkind = \"grpc\"\nendpoint = \"grpc://127.0.0.1:4317\"\n",
    );
    assert!(
        good.status.success(),
        "a valid file was refused: {}",
        String::from_utf8_lossy(&good.stderr)
    );
    let mut refused: HashMap<&str, String> = HashMap::new();
    for (name, text, key) in [
        ("unknown.toml", "[queue]\nkinds = \"disk\"\n", "kinds"),
        ("value.toml", "[queue]\nmax_bytes = \"lots\"\n", "max_bytes"),
        (
            "exporter.toml",
            "[[exporters]]\nname = \"up\"\nkind = \"carrier-pigeon\"\nendpoint = \"x\"\n",
            "kind",
        ),
    ] {
        let out = check(name, text);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{name} was accepted: {stderr}");
        assert!(
            stderr.contains(key),
            "{name}: the error does not name `{key}`: {stderr}"
        );
        refused.insert(name, stderr);
    }
    assert_eq!(refused.len(), 3);
}
