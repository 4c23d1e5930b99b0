//! `cargo xtask bench gateway`: the `otlp gateway` end to end, as issue 7 asks for it.
//!
//! Three processes on the 2-core machine, all on 127.0.0.1:
//!
//! - the gateway (`target/release/otlp gateway`) pinned to cpu 0 with one tokio worker
//!   (`TOKIO_WORKER_THREADS=1`), 64 MiB memory queue, degradation off (on for latency and
//!   steady state), `receivers.validation = "framing"` (the
//!   pass-through path) unless a case says otherwise, exporting over OTLP/gRPC;
//! - the load generator (`otlp send`, single-threaded runtime, pre-encoded realistic
//!   batches cycled from a pool) pinned to cpu 1;
//! - a counting upstream (`crates/otlp-gateway/examples/bench_upstream.rs`: OTLP/gRPC and
//!   OTLP/HTTP receivers with framing validation that count and answer at once) on cpu 1.
//!
//! What it measures:
//!
//! 1. **Pass-through throughput**: `otlp send` as fast as the gateway takes it; spans/s =
//!    spans counted by the upstream over a steady window (after a warm-up) / wall time,
//!    with the gateway's CPU from `/proc/PID/stat` (utime + stime) over the same window,
//!    cross-checked against the gateway's `/metrics` exported-items counter. Cases: gRPC
//!    and HTTP in, framing and full validation, memory and disk queue (fsync interval and
//!    always), exporter compression none and gzip, and the generator straight to the
//!    upstream (what cpu 1 can push, the ceiling of this setup).
//! 2. **Added latency** at half the measured gRPC / HTTP maximum: `otlp send --rate` to
//!    the gateway, then to the upstream directly; p50 / p99 of both from the sender.
//! 3. **Steady state at 10,000 spans/s**: the gateway's CPU (share of one core) and
//!    resident memory (VmRSS sampled every second, VmHWM) over a steady window.
//!
//! Environment (optional): `GATEWAY_BENCH_ROUNDS` (3; throughput cases, medians
//! reported), `GATEWAY_BENCH_WINDOW` (10 s measured per throughput case, after 3 s of
//! warm-up), `GATEWAY_BENCH_STEADY` (20 s; 0 skips the steady state),
//! `GATEWAY_BENCH_CASES` (throughput cases by name, comma-separated: `grpc`, `http`,
//! `grpc-full`, `http-full`, `grpc-disk-interval`, `grpc-disk-always`, `grpc-gzip`,
//! `grpc-direct`, `http-direct`; all by default), `GATEWAY_BENCH_BATCH` (512 spans a request),
//! `GATEWAY_BENCH_CONCURRENCY` (8 requests in flight), `GATEWAY_BENCH_MAX_LOAD` (1.5) and
//! `GATEWAY_BENCH_WAIT` (900 s): wait at most that long for the 1-minute load average to
//! fall below the maximum before measuring (then measure anyway and say so).
//!
//! Results: printed as Markdown tables and written to `target/gateway-bench/results.md`,
//! with every process's log and configuration beside it. Every run is bounded in time;
//! children are stopped with SIGTERM (then `Child::kill`) when a case ends or fails.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use crate::Failure;
use crate::clock::Stopwatch;
use crate::json;
use crate::step::{Output, Runner, Step};
use crate::workspace::Workspace;

/// Seconds of load before a throughput window opens.
const WARM_UP: u64 = 3;
/// Seconds of load before the steady-state window opens.
const STEADY_WARM_UP: u64 = 5;
/// The steady-state rate of the issue, spans per second.
const STEADY_RATE: f64 = 10_000.0;

#[derive(Debug, Clone)]
struct Settings {
    rounds: usize,
    window: u64,
    steady: u64,
    cases: Option<Vec<String>>,
    batch: u64,
    concurrency: u64,
    max_load: f64,
    wait: u64,
}

impl Settings {
    fn from_env() -> Result<Settings, String> {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
            match std::env::var(name) {
                Err(_) => Ok(default),
                Ok(text) => text
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name}={text:?} is not a number")),
            }
        }
        let settings = Settings {
            rounds: var("GATEWAY_BENCH_ROUNDS", 3usize)?.clamp(1, 20),
            window: var("GATEWAY_BENCH_WINDOW", 10u64)?.clamp(2, 300),
            steady: var("GATEWAY_BENCH_STEADY", 20u64)?.min(600),
            cases: std::env::var("GATEWAY_BENCH_CASES").ok().map(|list| {
                list.split(',')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty())
                    .collect()
            }),
            batch: var("GATEWAY_BENCH_BATCH", 512u64)?.clamp(1, 100_000),
            concurrency: var("GATEWAY_BENCH_CONCURRENCY", 8u64)?.clamp(1, 1024),
            max_load: var("GATEWAY_BENCH_MAX_LOAD", 1.5f64)?,
            wait: var("GATEWAY_BENCH_WAIT", 900u64)?.min(3600),
        };
        Ok(settings)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Grpc,
    Http,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Grpc => "gRPC",
            Proto::Http => "HTTP",
        }
    }
}

/// One gateway configuration (or none: straight to the upstream).
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    proto: Proto,
    /// `false`: the generator sends to the upstream directly (no gateway).
    gateway: bool,
    validation: &'static str,
    queue: &'static str,
    fsync: &'static str,
    compression: &'static str,
    /// `[degradation] enabled`: off for the throughput cases, so that overload shows as
    /// retryable refusals (full queue) rather than as sampling at a higher level.
    degradation: bool,
}

impl Case {
    const fn through(name: &'static str, proto: Proto) -> Case {
        Case {
            name,
            proto,
            gateway: true,
            validation: "framing",
            queue: "memory",
            fsync: "never",
            compression: "none",
            degradation: false,
        }
    }

    /// The gateway's defaults for degradation (on): latency and steady-state runs.
    const fn with_defaults(name: &'static str, proto: Proto) -> Case {
        Case {
            degradation: true,
            ..Case::through(name, proto)
        }
    }

    fn describe(&self) -> String {
        if !self.gateway {
            return format!(
                "{} generator -> upstream directly (no gateway)",
                self.proto.name()
            );
        }
        let queue = if self.queue == "disk" {
            format!("disk queue, fsync {}", self.fsync)
        } else {
            "memory queue".to_owned()
        };
        format!(
            "{} in, validation {}, {queue}, export compression {}",
            self.proto.name(),
            self.validation,
            self.compression
        )
    }
}

fn cases() -> Vec<Case> {
    let grpc = Case::through("grpc", Proto::Grpc);
    let http = Case::through("http", Proto::Http);
    vec![
        grpc,
        http,
        Case {
            name: "grpc-full",
            validation: "full",
            ..grpc
        },
        Case {
            name: "http-full",
            validation: "full",
            ..http
        },
        Case {
            name: "grpc-disk-interval",
            queue: "disk",
            fsync: "interval",
            ..grpc
        },
        Case {
            name: "grpc-disk-always",
            queue: "disk",
            fsync: "always",
            ..grpc
        },
        Case {
            name: "grpc-gzip",
            compression: "gzip",
            ..grpc
        },
        Case {
            name: "grpc-direct",
            gateway: false,
            ..grpc
        },
        Case {
            name: "http-direct",
            gateway: false,
            ..http
        },
    ]
}

/// Where the binaries and outputs are.
#[derive(Debug)]
struct Context {
    otlp: PathBuf,
    upstream_bin: PathBuf,
    out: PathBuf,
    settings: Settings,
    clk_tck: f64,
}

pub(crate) fn run(ws: &Workspace) -> Result<(), Failure> {
    let settings = Settings::from_env()?;
    let taskset = Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !taskset {
        return Err("bench gateway needs taskset (util-linux)".to_owned().into());
    }
    let mut runner = Runner::new(&ws.root, ws.target_dir.join("xtask"), Output::Quiet, 2);
    for (name, args) in [
        (
            "build otlp",
            vec!["build", "--release", "-p", "otlp", "--bin", "otlp"],
        ),
        (
            "build bench_upstream",
            vec![
                "build",
                "--release",
                "-p",
                "otlp-gateway",
                "--example",
                "bench_upstream",
            ],
        ),
    ] {
        if !runner.run(name, &Step::cargo(args))?.success {
            return Err(format!("{name} failed").into());
        }
    }
    let release = ws.target_dir.join("release");
    let ctx = Context {
        otlp: release.join("otlp"),
        upstream_bin: release.join("examples").join("bench_upstream"),
        out: ws.target_dir.join("gateway-bench"),
        settings,
        clk_tck: clk_tck(),
    };
    let _ = fs::remove_dir_all(&ctx.out);
    fs::create_dir_all(&ctx.out).map_err(|e| format!("{}: {e}", ctx.out.display()))?;
    let report = measure(&ctx)?;
    let path = ctx.out.join("results.md");
    fs::write(&path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "
{report}
(logs, configurations and results.md in {})",
        ctx.out.display()
    );
    Ok(())
}

fn measure(ctx: &Context) -> Result<String, String> {
    let s = &ctx.settings;
    let mut report = String::new();
    let quiet = wait_for_quiet(s.max_load, s.wait);
    let _ = writeln!(
        report,
        "## otlp gateway benchmark\n\n\
         Gateway on cpu 0 (1 tokio worker); `otlp send` and the counting upstream on cpu 1. \
         Requests of {} spans, up to {} in flight (throughput cases). Throughput window {} s \
         after {WARM_UP} s of warm-up, {} round(s), medians; steady state {} s at {} spans/s.\n\n\
         Load average before: {quiet}",
        s.batch, s.concurrency, s.window, s.rounds, s.steady, STEADY_RATE
    );
    let mut upstream = Upstream::start(ctx)?;

    // 1. Throughput.
    let all: Vec<Case> = cases()
        .into_iter()
        .filter(|c| {
            s.cases
                .as_ref()
                .is_none_or(|only| only.iter().any(|o| o == c.name))
        })
        .collect();
    let mut rows: Vec<Vec<MaxRun>> = vec![Vec::new(); all.len()];
    for round in 1..=s.rounds {
        for (i, case) in all.iter().enumerate() {
            println!(
                "round {round}/{}: {} ({})",
                s.rounds,
                case.name,
                case.describe()
            );
            let run = measure_max(ctx, &mut upstream, case, round)?;
            println!("  {}", run.line());
            rows[i].push(run);
        }
        println!("load average after round {round}: {}", loadavg_text());
    }
    let _ = writeln!(
        report,
        "\n### Pass-through throughput (gateway on one core)\n\n\
         | case | spans/s (upstream count, median) | rounds | gateway CPU (cores) | spans per gateway CPU-s | gateway exported/s (`/metrics`) | refused by gateway | VmRSS / VmHWM |\n\
         |---|---|---|---|---|---|---|---|"
    );
    let mut max_rate = [0.0f64; 2];
    for (case, runs) in all.iter().zip(&rows) {
        let median = median_run(runs);
        if case.gateway && case.name == "grpc" {
            max_rate[0] = median.rate;
        }
        if case.gateway && case.name == "http" {
            max_rate[1] = median.rate;
        }
        let spread = runs
            .iter()
            .map(|r| format_rate(r.rate))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            report,
            "| {} | **{}** | {spread} | {} | {} | {} | {} | {} |",
            case.describe(),
            format_rate(median.rate),
            opt(median.cores, |c| format!("{c:.2}")),
            opt(median.per_cpu_second, format_rate),
            opt(median.exported_rate, format_rate),
            median.refused,
            match (median.rss_kib, median.hwm_kib) {
                (Some(r), Some(h)) => format!("{} / {} MiB", mib(r), mib(h)),
                _ => "-".to_owned(),
            }
        );
    }

    // 2. Added latency at half of the maximum.
    let _ = writeln!(
        report,
        "\n### Latency at half of the maximum rate\n\n\
         `otlp send --rate R` for {} s (client-side export call latency), to the gateway \
         and then to the upstream directly.\n\n\
         | protocol | rate | direct p50 | direct p99 | through gateway p50 | through gateway p99 | added p50 | added p99 |\n\
         |---|---|---|---|---|---|---|---|",
        s.window
    );
    for (proto, max) in [(Proto::Grpc, max_rate[0]), (Proto::Http, max_rate[1])] {
        if max <= 0.0 {
            continue;
        }
        let rate = (max / 2.0).round();
        let direct = latency_run(ctx, &mut upstream, proto, false, rate)?;
        let through = latency_run(ctx, &mut upstream, proto, true, rate)?;
        println!(
            "latency {} at {}: direct p50 {:.2} p99 {:.2} ms; gateway p50 {:.2} p99 {:.2} ms",
            proto.name(),
            format_rate(rate),
            direct.p50_ms,
            direct.p99_ms,
            through.p50_ms,
            through.p99_ms
        );
        let _ = writeln!(
            report,
            "| {} | {} spans/s (achieved {} / {}) | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:+.2} ms | **{:+.2} ms** |",
            proto.name(),
            format_rate(rate),
            format_rate(direct.accepted_rate),
            format_rate(through.accepted_rate),
            direct.p50_ms,
            direct.p99_ms,
            through.p50_ms,
            through.p99_ms,
            through.p50_ms - direct.p50_ms,
            through.p99_ms - direct.p99_ms
        );
    }

    // 3. Steady state.
    let _ = writeln!(
        report,
        "\n### Steady state at {} spans/s\n\n\
         | protocol | achieved | gateway CPU (% of a core) | VmRSS idle | VmRSS max in window | VmHWM |\n\
         |---|---|---|---|---|---|",
        STEADY_RATE
    );
    let steady_protos: &[Proto] = if s.steady == 0 {
        &[]
    } else {
        &[Proto::Grpc, Proto::Http]
    };
    for &proto in steady_protos {
        let st = steady_run(ctx, &mut upstream, proto)?;
        println!(
            "steady {}: CPU {:.2}% of a core, RSS max {} MiB, HWM {} MiB",
            proto.name(),
            st.cpu_percent,
            mib(st.rss_max_kib),
            mib(st.hwm_kib)
        );
        let _ = writeln!(
            report,
            "| {} | {} spans/s | **{:.2}%** | {} MiB | **{} MiB** | {} MiB |",
            proto.name(),
            format_rate(st.accepted_rate),
            st.cpu_percent,
            mib(st.rss_idle_kib),
            mib(st.rss_max_kib),
            mib(st.hwm_kib)
        );
    }
    let _ = writeln!(report, "\nLoad average after: {}", loadavg_text());
    let total = upstream.stop();
    let _ = writeln!(report, "Upstream total: {total}");
    Ok(report)
}

// ---------------------------------------------------------------- measurements

#[derive(Debug, Clone, Default)]
struct MaxRun {
    rate: f64,
    cores: Option<f64>,
    per_cpu_second: Option<f64>,
    exported_rate: Option<f64>,
    refused: u64,
    rss_kib: Option<u64>,
    hwm_kib: Option<u64>,
}

impl MaxRun {
    fn line(&self) -> String {
        format!(
            "{} spans/s; gateway {} cores, {} spans/CPU-s, /metrics exported {} /s, refused {}",
            format_rate(self.rate),
            opt(self.cores, |c| format!("{c:.2}")),
            opt(self.per_cpu_second, format_rate),
            opt(self.exported_rate, format_rate),
            self.refused
        )
    }
}

fn median_run(runs: &[MaxRun]) -> MaxRun {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    sorted.get(sorted.len() / 2).cloned().unwrap_or_default()
}

fn measure_max(
    ctx: &Context,
    upstream: &mut Upstream,
    case: &Case,
    round: usize,
) -> Result<MaxRun, String> {
    let s = &ctx.settings;
    let dir = ctx.out.join(format!("{}-{round}", case.name));
    let gateway = if case.gateway {
        Some(Gateway::start(ctx, &dir, case, &upstream.grpc)?)
    } else {
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        None
    };
    let endpoint = endpoint(case.proto, gateway.as_ref(), upstream);
    let seconds = WARM_UP + s.window + 1;
    let send = Send::start(ctx, &dir, &endpoint, None, seconds, s.batch, s.concurrency)?;
    thread::sleep(Duration::from_secs(WARM_UP));
    let before = Sample::take(upstream, gateway.as_ref())?;
    let watch = Stopwatch::start();
    thread::sleep(Duration::from_secs(s.window));
    let after = Sample::take(upstream, gateway.as_ref())?;
    let wall = watch.elapsed().as_secs_f64();
    let memory = gateway.as_ref().and_then(|g| memory(g.pid));
    let summary = send.finish(seconds + 30)?;
    let refused = gateway.as_ref().map_or(0, |g| g.refused());
    drop(gateway);

    let rate = (after.upstream_items - before.upstream_items) as f64 / wall;
    let cores = match (before.ticks, after.ticks) {
        (Some(b), Some(a)) => Some((a - b) as f64 / ctx.clk_tck / wall),
        _ => None,
    };
    let exported_rate = match (before.exported, after.exported) {
        (Some(b), Some(a)) => Some((a - b) / wall),
        _ => None,
    };
    if summary.accepted == 0 {
        return Err(format!(
            "{}: the sender got nothing accepted (see {})",
            case.name,
            dir.display()
        ));
    }
    Ok(MaxRun {
        rate,
        cores,
        per_cpu_second: cores.filter(|c| *c > 0.0).map(|c| rate / c),
        exported_rate,
        refused,
        rss_kib: memory.map(|m| m.0),
        hwm_kib: memory.map(|m| m.1),
    })
}

fn endpoint(proto: Proto, gateway: Option<&Gateway>, upstream: &Upstream) -> String {
    let (grpc, http) = match gateway {
        Some(g) => (&g.grpc, &g.http),
        None => (&upstream.grpc, &upstream.http),
    };
    match proto {
        Proto::Grpc => format!("grpc://{grpc}"),
        Proto::Http => format!("http://{http}"),
    }
}

fn latency_run(
    ctx: &Context,
    upstream: &mut Upstream,
    proto: Proto,
    through_gateway: bool,
    rate: f64,
) -> Result<SendSummary, String> {
    let s = &ctx.settings;
    let case = Case {
        gateway: through_gateway,
        ..Case::with_defaults(
            if proto == Proto::Grpc {
                "latency-grpc"
            } else {
                "latency-http"
            },
            proto,
        )
    };
    let dir = ctx.out.join(format!(
        "{}-{}",
        case.name,
        if through_gateway { "gateway" } else { "direct" }
    ));
    let gateway = if through_gateway {
        Some(Gateway::start(ctx, &dir, &case, &upstream.grpc)?)
    } else {
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        None
    };
    let endpoint = endpoint(proto, gateway.as_ref(), upstream);
    // Enough requests in flight that the rate is never limited by them.
    let send = Send::start(
        ctx,
        &dir,
        &endpoint,
        Some(rate),
        s.window,
        s.batch,
        s.concurrency.max(32),
    )?;
    send.finish(s.window + 30)
}

#[derive(Debug)]
struct Steady {
    accepted_rate: f64,
    cpu_percent: f64,
    rss_idle_kib: u64,
    rss_max_kib: u64,
    hwm_kib: u64,
}

fn steady_run(ctx: &Context, upstream: &mut Upstream, proto: Proto) -> Result<Steady, String> {
    let s = &ctx.settings;
    let case = Case::with_defaults(
        if proto == Proto::Grpc {
            "steady-grpc"
        } else {
            "steady-http"
        },
        proto,
    );
    let dir = ctx.out.join(case.name);
    let gateway = Gateway::start(ctx, &dir, &case, &upstream.grpc)?;
    thread::sleep(Duration::from_secs(2));
    let rss_idle_kib = memory(gateway.pid).map_or(0, |m| m.0);
    let endpoint = endpoint(proto, Some(&gateway), upstream);
    let seconds = STEADY_WARM_UP + s.steady + 1;
    let send = Send::start(
        ctx,
        &dir,
        &endpoint,
        Some(STEADY_RATE),
        seconds,
        s.batch,
        s.concurrency,
    )?;
    thread::sleep(Duration::from_secs(STEADY_WARM_UP));
    let t0 = ticks(gateway.pid).ok_or("cannot read the gateway's /proc stat")?;
    let watch = Stopwatch::start();
    let mut rss_max_kib = 0;
    for _ in 0..s.steady {
        thread::sleep(Duration::from_secs(1));
        if let Some((rss, _)) = memory(gateway.pid) {
            rss_max_kib = rss_max_kib.max(rss);
        }
    }
    let t1 = ticks(gateway.pid).ok_or("cannot read the gateway's /proc stat")?;
    let wall = watch.elapsed().as_secs_f64();
    let hwm_kib = memory(gateway.pid).map_or(0, |m| m.1);
    let summary = send.finish(seconds + 30)?;
    drop(gateway);
    Ok(Steady {
        accepted_rate: summary.accepted_rate,
        cpu_percent: (t1 - t0) as f64 / ctx.clk_tck / wall * 100.0,
        rss_idle_kib,
        rss_max_kib,
        hwm_kib,
    })
}

/// Counters read at one moment.
#[derive(Debug)]
struct Sample {
    upstream_items: u64,
    ticks: Option<u64>,
    exported: Option<f64>,
}

impl Sample {
    fn take(upstream: &mut Upstream, gateway: Option<&Gateway>) -> Result<Sample, String> {
        let ticks = gateway.and_then(|g| ticks(g.pid));
        let upstream_items = upstream.items()?;
        let exported =
            gateway.and_then(|g| g.metric_sum("otlp_gateway_exporter_exported_items_total"));
        Ok(Sample {
            upstream_items,
            ticks,
            exported,
        })
    }
}

// ---------------------------------------------------------------- processes

/// A child process stopped with SIGTERM (then `Child::kill`) when dropped.
#[derive(Debug)]
struct Process {
    name: String,
    child: Child,
}

impl Process {
    fn spawn(name: &str, command: &mut Command) -> Result<Process, String> {
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Process {
            name: name.to_owned(),
            child,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait up to `seconds` for it to exit by itself; `None` if it is still running.
    fn wait_for(&mut self, seconds: u64) -> Option<std::process::ExitStatus> {
        let watch = Stopwatch::start();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if watch.elapsed() >= Duration::from_secs(seconds) {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.pid().to_string()])
            .status();
        if self.wait_for(15).is_none() {
            eprintln!(
                "{} did not stop within 15 s of SIGTERM; killing it",
                self.name
            );
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The counting upstream: stats on request through its standard input.
#[derive(Debug)]
struct Upstream {
    process: Process,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    grpc: String,
    http: String,
}

impl Upstream {
    fn start(ctx: &Context) -> Result<Upstream, String> {
        let mut process = Process::spawn(
            "bench_upstream",
            Command::new("taskset")
                .args(["-c", "1"])
                .arg(&ctx.upstream_bin)
                .args(["--seconds", "3600", "--workers", "1"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        )?;
        let stdin = process.child.stdin.take();
        let stdout = process
            .child
            .stdout
            .take()
            .ok_or("bench_upstream: no stdout")?;
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| "bench_upstream did not say where it listens within 20 s")?;
        let field = |key: &str| {
            first
                .split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(str::to_owned)
                .ok_or_else(|| format!("bench_upstream said {first:?}"))
        };
        let grpc = field("grpc=")?;
        let http = field("http=")?;
        println!(
            "upstream: pid {} on cpu 1, gRPC {grpc}, HTTP {http}",
            process.pid()
        );
        Ok(Upstream {
            process,
            stdin,
            lines,
            grpc,
            http,
        })
    }

    /// Items accepted so far.
    fn items(&mut self) -> Result<u64, String> {
        let stdin = self.stdin.as_mut().ok_or("bench_upstream: stdin closed")?;
        stdin
            .write_all(b"stats\n")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("bench_upstream: {e}"))?;
        let watch = Stopwatch::start();
        while watch.elapsed() < Duration::from_secs(5) {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5))
                && let Some(stats) = line.strip_prefix("stats ")
            {
                return stats
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("items="))
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("bench_upstream said {line:?}"));
            }
        }
        Err("bench_upstream did not answer stats within 5 s".into())
    }

    /// Close its input (it exits) and return its last line.
    fn stop(mut self) -> String {
        drop(self.stdin.take());
        let _ = self.process.wait_for(10);
        let mut last = String::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            if let Some(total) = line.strip_prefix("total ") {
                last = total.to_owned();
            }
        }
        last
    }
}

#[derive(Debug)]
struct Gateway {
    process: Process,
    pid: u32,
    grpc: String,
    http: String,
    admin: String,
}

impl Gateway {
    fn start(
        ctx: &Context,
        dir: &Path,
        case: &Case,
        upstream_grpc: &str,
    ) -> Result<Gateway, String> {
        let _ = fs::remove_dir_all(dir);
        let data = dir.join("data");
        fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let config = dir.join("gateway.toml");
        fs::write(&config, gateway_config(&data, case, upstream_grpc))
            .map_err(|e| format!("{}: {e}", config.display()))?;
        let log = fs::File::create(dir.join("gateway.log")).map_err(|e| e.to_string())?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let mut process = Process::spawn(
            "otlp gateway",
            Command::new("taskset")
                .args(["-c", "0"])
                .arg(&ctx.otlp)
                .arg("gateway")
                .arg("--config")
                .arg(&config)
                .env("TOKIO_WORKER_THREADS", "1")
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err),
        )?;
        // taskset execs the gateway: the child's pid is the gateway's.
        let pid = process.pid();
        let listen = data.join("listen.json");
        let watch = Stopwatch::start();
        let text = loop {
            if let Ok(text) = fs::read_to_string(&listen) {
                break text;
            }
            if process.child.try_wait().ok().flatten().is_some()
                || watch.elapsed() > Duration::from_secs(30)
            {
                return Err(format!(
                    "the gateway did not start (see {})",
                    dir.join("gateway.log").display()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        };
        let value = json::parse(&text).map_err(|e| format!("{}: {e:?}", listen.display()))?;
        let addr = |key: &str| {
            value
                .get(key)
                .and_then(json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("{}: no {key} address", listen.display()))
        };
        Ok(Gateway {
            pid,
            grpc: addr("grpc")?,
            http: addr("http")?,
            admin: addr("admin")?,
            process,
        })
    }

    /// The sum of every series of a counter on `/metrics`.
    fn metric_sum(&self, name: &str) -> Option<f64> {
        let text = http_get(&self.admin, "/metrics")?;
        let mut found = false;
        let mut sum = 0.0;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                continue;
            }
            if let Some(value) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
                sum += value;
                found = true;
            }
        }
        found.then_some(sum)
    }

    /// Items refused and dropped by the gateway so far.
    fn refused(&self) -> u64 {
        let refused = self
            .metric_sum("otlp_gateway_refused_items_total")
            .unwrap_or(0.0);
        let dropped = self
            .metric_sum("otlp_gateway_dropped_items_total")
            .unwrap_or(0.0);
        (refused + dropped) as u64
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.process.stop();
    }
}

fn gateway_config(data: &Path, case: &Case, upstream_grpc: &str) -> String {
    format!(
        "# written by cargo xtask bench gateway: {describe}\n\
         data_dir = {data:?}\n\
         shutdown_grace = \"5s\"\n\
         \n\
         [receivers]\n\
         validation = \"{validation}\"\n\
         [receivers.grpc]\n\
         addr = \"127.0.0.1:0\"\n\
         [receivers.http]\n\
         addr = \"127.0.0.1:0\"\n\
         \n\
         [admin]\n\
         addr = \"127.0.0.1:0\"\n\
         \n\
         [log]\n\
         level = \"warn\"\n\
         \n\
         [degradation]\n\
         enabled = {degradation}\n\
         \n\
         [queue]\n\
         kind = \"{queue}\"\n\
         max_bytes = \"64MiB\"\n\
         fsync = \"{fsync}\"\n\
         \n\
         [[exporters]]\n\
         name = \"upstream\"\n\
         kind = \"grpc\"\n\
         endpoint = \"grpc://{upstream_grpc}\"\n\
         compression = \"{compression}\"\n",
        describe = case.describe(),
        data = data.display().to_string(),
        validation = case.validation,
        queue = case.queue,
        fsync = case.fsync,
        compression = case.compression,
        degradation = case.degradation,
    )
}

/// `otlp send` on cpu 1.
#[derive(Debug)]
struct Send {
    process: Process,
    log: PathBuf,
}

#[derive(Debug, Default)]
struct SendSummary {
    accepted: u64,
    accepted_rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Send {
    fn start(
        ctx: &Context,
        dir: &Path,
        endpoint: &str,
        rate: Option<f64>,
        seconds: u64,
        batch: u64,
        concurrency: u64,
    ) -> Result<Send, String> {
        let log = dir.join("send.log");
        let file = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let file_err = file.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new("taskset");
        command
            .args(["-c", "1"])
            .arg(&ctx.otlp)
            .args(["send", "--endpoint", endpoint, "--signal", "traces"])
            .args(["--duration", &format!("{seconds}s")])
            .args(["--batch", &batch.to_string()])
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--threads", "1"])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file_err);
        if let Some(rate) = rate {
            command.args(["--rate", &format!("{rate:.0}")]);
        }
        Ok(Send {
            process: Process::spawn("otlp send", &mut command)?,
            log,
        })
    }

    /// Wait (at most `seconds`) for the summary.
    fn finish(mut self, seconds: u64) -> Result<SendSummary, String> {
        let status = self.process.wait_for(seconds);
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        match status {
            None => Err(format!("otlp send did not finish within {seconds} s")),
            Some(status) if !status.success() => Err(format!(
                "otlp send failed ({status}): {}",
                text.lines().last().unwrap_or("")
            )),
            Some(_) => parse_send_summary(&text)
                .ok_or_else(|| format!("no summary in {}", self.log.display())),
        }
    }
}

/// Reads the lines of `otlp send`'s summary that the benchmark needs.
fn parse_send_summary(text: &str) -> Option<SendSummary> {
    let mut summary = SendSummary::default();
    let mut seen = 0;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("accepted:") {
            summary.accepted = rest.split_whitespace().next()?.parse().ok()?;
            seen += 1;
        } else if let Some(rest) = line.strip_prefix("elapsed:") {
            // "X s, Y spans/s sent, Z spans/s accepted"
            let accepted = rest.split(',').nth(2)?;
            summary.accepted_rate = accepted.split_whitespace().next()?.parse().ok()?;
            seen += 1;
        } else if let Some(rest) = line.strip_prefix("latency:") {
            // "p50 A ms, p99 B ms, max C ms"
            let value = |label: &str| -> Option<f64> {
                rest.split(',')
                    .map(str::trim)
                    .find_map(|p| p.strip_prefix(label))?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            };
            summary.p50_ms = value("p50 ")?;
            summary.p99_ms = value("p99 ")?;
            seen += 1;
        }
    }
    (seen == 3).then_some(summary)
}

// ---------------------------------------------------------------- the machine

/// utime + stime of `pid`, in clock ticks.
fn ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_ticks(&stat)
}

fn parse_ticks(stat: &str) -> Option<u64> {
    // Fields after "pid (comm)": state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// (VmRSS, VmHWM) of `pid` in KiB.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_memory(&status)
}

fn parse_memory(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

fn loadavg() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn loadavg_text() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Wait (at most `wait` seconds) for the 1-minute load average to fall below `max`.
fn wait_for_quiet(max: f64, wait: u64) -> String {
    let watch = Stopwatch::start();
    let mut told = false;
    loop {
        let load = loadavg().unwrap_or(0.0);
        if load < max {
            return format!("{} (below {max})", loadavg_text());
        }
        if watch.elapsed() >= Duration::from_secs(wait) {
            let text = format!(
                "{} after waiting {} s: **the machine was busy**, numbers are lower bounds",
                loadavg_text(),
                wait
            );
            println!("{text}");
            return text;
        }
        if !told {
            println!("load average {load:.2} >= {max}: waiting up to {wait} s for a quiet machine");
            told = true;
        }
        thread::sleep(Duration::from_secs(5));
    }
}

/// A plain HTTP/1.0 GET on 127.0.0.1 with a 5 s bound.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let socket = addr.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&socket, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.take(64 << 20).read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_owned())
}

// ---------------------------------------------------------------- formatting

fn format_rate(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.0} k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn opt<T: Copy>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map_or_else(|| "-".to_owned(), show)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_send_summary() {
        let text = "\
sent 5120000 spans in 10000 requests to http://127.0.0.1:4317 (OTLP/gRPC)
  accepted: 5120000 spans
  refused:  0 spans
  elapsed:  10.002 s, 511898 spans/s sent, 511898 spans/s accepted
  latency:  p50 3.10 ms, p99 7.25 ms, max 20.00 ms
";
        let summary = parse_send_summary(text).unwrap();
        assert_eq!(summary.accepted, 5_120_000);
        assert_eq!(summary.accepted_rate, 511_898.0);
        assert_eq!(summary.p50_ms, 3.10);
        assert_eq!(summary.p99_ms, 7.25);
        assert!(parse_send_summary("sent 0 spans").is_none());
    }

    #[test]
    fn reads_proc_files() {
        let stat =
            "4242 (otlp gateway) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 27 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_ticks(stat), Some(177));
        let status = "Name:\totlp\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_memory(status), Some((10_240, 20_480)));
        assert_eq!(parse_memory("Name:\totlp\n"), None);
    }

    #[test]
    fn writes_a_config_per_case() {
        let case = Case {
            queue: "disk",
            fsync: "always",
            ..Case::through("x", Proto::Grpc)
        };
        let text = gateway_config(Path::new("/tmp/x/data"), &case, "127.0.0.1:9");
        assert!(text.contains("validation = \"framing\""), "{text}");
        assert!(text.contains("kind = \"disk\""), "{text}");
        assert!(text.contains("fsync = \"always\""), "{text}");
        assert!(text.contains("endpoint = \"grpc://127.0.0.1:9\""), "{text}");
        assert!(text.contains("data_dir = \"/tmp/x/data\""), "{text}");
        assert_eq!(format_rate(512_345.0), "512 k");
        assert_eq!(format_rate(1_234_567.0), "1.23 M");
    }
}
