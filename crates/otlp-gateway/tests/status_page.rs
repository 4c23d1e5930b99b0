//! The status page in a real browser: Debian's Chromium (installed by
//! `scripts/install-chromium.sh` if missing) loads `/status` from a real admin listener,
//! takes a 1280x900 screenshot (kept in `target/tmp/` for people to look at), and dumps
//! the DOM after the page's script ran, which must hold route and exporter names and
//! numbers that only `/api/status` delivered.
//!
//! If Chromium cannot be installed the test fails with the script's message: it does not
//! skip.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::thread;
use std::time::Duration;

use otlp_core::Signal;
use otlp_gateway::admin::{AdminServer, AdminState, HttpReceiverSource, RunningAdmin};
use otlp_gateway::metrics::{
    BreakerView, DropReason, ExporterMetrics, GatewayMetrics, Phase, QueueMetrics, RefuseReason,
    RouteView,
};
use otlp_transport_http::receiver::{Outcome, ReceiverMetrics};

const INSTALL_LIMIT: Duration = Duration::from_secs(900);
const BROWSER_LIMIT: Duration = Duration::from_secs(120);
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;

/// What a bounded child process left behind.
struct Finished {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Run `command` with its output in files under `dir`, for at most `limit`; on timeout the
/// child is killed (Child::kill, the process itself only) and the test fails.
fn run_bounded(mut command: Command, dir: &Path, name: &str, limit: Duration) -> Finished {
    let out_path = dir.join(format!("{name}.stdout"));
    let err_path = dir.join(format!("{name}.stderr"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let step = Duration::from_millis(50);
    let mut status = None;
    for _ in 0..(limit.as_millis() / step.as_millis()) {
        if let Some(s) = child.try_wait().expect("wait for the child") {
            status = Some(s);
            break;
        }
        thread::sleep(step);
    }
    let stderr = || std::fs::read_to_string(&err_path).unwrap_or_default();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{name} did not finish within {limit:?}; killed it. Its stderr:\n{}",
            tail(&stderr())
        );
    };
    Finished {
        success: status.success(),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: stderr(),
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Install Chromium if needed; its path.
fn chromium(dir: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-chromium.sh");
    let mut command = Command::new("bash");
    command.arg(&script);
    let done = run_bounded(command, dir, "install-chromium", INSTALL_LIMIT);
    assert!(
        done.success,
        "Chromium is needed for the status page test and could not be installed by {}:\n{}",
        script.display(),
        tail(&done.stderr)
    );
    let path = done
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| PathBuf::from(l.trim()))
        .expect("install-chromium.sh prints the browser's path");
    assert!(path.exists(), "{} does not exist", path.display());
    path
}

fn browser(chromium: &Path, profile: &Path) -> Command {
    let mut command = Command::new(chromium);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        "--disable-extensions",
        "--virtual-time-budget=5000",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Width and height from a PNG's IHDR chunk, which must come first.
fn png_size(bytes: &[u8]) -> Result<(u32, u32), String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 33 || &bytes[..8] != SIGNATURE {
        return Err("not a PNG (signature)".into());
    }
    let length = u32::from_be_bytes(bytes[8..12].try_into().unwrap());
    if length != 13 || &bytes[12..16] != b"IHDR" {
        return Err("first chunk is not a 13-byte IHDR".into());
    }
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    let crc = u32::from_be_bytes(bytes[29..33].try_into().unwrap());
    if crc != crc32fast::hash(&bytes[12..29]) {
        return Err("IHDR checksum does not match".into());
    }
    Ok((width, height))
}

#[test]
fn png_size_reads_the_header_and_rejects_garbage() {
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend_from_slice(&1280u32.to_be_bytes());
    png.extend_from_slice(&900u32.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0]);
    let crc = crc32fast::hash(&png[12..29]);
    png.extend_from_slice(&crc.to_be_bytes());
    assert_eq!(png_size(&png), Ok((1280, 900)));
    let mut bad = png.clone();
    bad[20] ^= 1;
    assert!(png_size(&bad).is_err(), "checksum");
    assert!(png_size(b"GIF89a").is_err());
    assert!(png_size(&png[..20]).is_err());
}

struct Gateway {
    metrics: Arc<GatewayMetrics>,
    upstream: Arc<ExporterMetrics>,
    queue: Arc<QueueMetrics>,
}

fn populated() -> (Gateway, AdminState) {
    let metrics = GatewayMetrics::new();
    metrics.set_phase(Phase::Running);
    metrics.set_degradation_level(1);
    metrics.memory_bytes.store(48 << 20, Relaxed);
    let traces = metrics.signal(Signal::Traces);
    traces.requests.fetch_add(120, Relaxed);
    traces.received_items.fetch_add(98_765, Relaxed);
    traces.received_bytes.fetch_add(9_876_543, Relaxed);
    traces.accepted_items.fetch_add(97_000, Relaxed);
    traces.refused(RefuseReason::RateLimited, 1765);
    traces.dropped(DropReason::Sampled, 400);

    let upstream = Arc::new(ExporterMetrics::new(
        "tempo-upstream",
        "grpc",
        "grpc://127.0.0.1:1",
    ));
    upstream.exported_items[Signal::Traces.index()].store(96_000, Relaxed);
    upstream.set_breaker(BreakerView::Closed);
    let archive = Arc::new(ExporterMetrics::new(
        "s3-archive",
        "http",
        "http://127.0.0.1:2",
    ));
    archive.set_breaker(BreakerView::Open);
    archive.retryable_failures.store(12, Relaxed);
    archive.set_last_error("upstream answered 503".into());
    let queue = Arc::new(QueueMetrics::new("traces-main", "disk", 64 << 20));
    queue.depth.store(42, Relaxed);
    queue.bytes.store(24 << 20, Relaxed);
    metrics.set_routes(vec![RouteView {
        name: "traces-main".into(),
        mode: "single",
        signals: vec![Signal::Traces],
        queue: queue.clone(),
        exporters: vec![upstream.clone(), archive],
    }]);
    metrics.record_error("s3-archive: upstream answered 503");

    let http = Arc::new(ReceiverMetrics::default());
    http.record_response(Some(Signal::Traces), Outcome::Accepted, 200);
    http.record_items(Signal::Traces, 98_765, 0);
    let state = AdminState::new(metrics.clone()).with_source(HttpReceiverSource::new(http));
    (
        Gateway {
            metrics,
            upstream,
            queue,
        },
        state,
    )
}

#[test]
fn status_page_renders_in_headless_chromium() {
    let dir = tempfile::TempDir::new().unwrap();
    let chromium = chromium(dir.path());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (gateway, state) = populated();
    let admin: RunningAdmin = runtime
        .block_on(AdminServer::bind("127.0.0.1:0".parse().unwrap(), state))
        .expect("admin listener binds");
    let url = format!("http://{}/status", admin.local_addr());

    // Some traffic, so the sparklines have a shape: a few seconds of samples.
    let traffic = {
        let (metrics, upstream, queue) = (
            gateway.metrics.clone(),
            gateway.upstream.clone(),
            gateway.queue.clone(),
        );
        runtime.spawn(async move {
            for i in 0..200u64 {
                let wave = 50 + (i % 10) * 40;
                let traces = metrics.signal(Signal::Traces);
                traces.received_items.fetch_add(wave + 20, Relaxed);
                traces.accepted_items.fetch_add(wave, Relaxed);
                traces.refused(RefuseReason::QueueFull, 20);
                upstream.exported_items[Signal::Traces.index()].fetch_add(wave / 2, Relaxed);
                queue.depth.store(42 + (i % 7) * 9, Relaxed);
                queue.bytes.store((24 << 20) + (i % 5) * (3 << 20), Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    for _ in 0..100 {
        if admin.history().samples() >= 5 {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        admin.history().samples() >= 5,
        "the history samples every second"
    );

    // A screenshot for people.
    let shot = dir.path().join("status.png");
    let mut command = browser(&chromium, &dir.path().join("profile-shot"));
    command
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(&url);
    let done = run_bounded(command, dir.path(), "chromium-screenshot", BROWSER_LIMIT);
    assert!(
        done.success,
        "chromium --screenshot failed:\n{}",
        tail(&done.stderr)
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(png_size(&png), Ok((WIDTH, HEIGHT)));
    // A blank 1280x900 page compresses to a few KiB; text, boxes and tables do not.
    assert!(
        png.len() > 30_000,
        "the screenshot looks blank ({} bytes)",
        png.len()
    );
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    std::fs::copy(&shot, &kept).unwrap();
    println!("status page screenshot: {}", kept.display());

    traffic.abort();
    assert!(
        runtime.block_on(traffic).is_err_and(|e| e.is_cancelled()),
        "the traffic stopped"
    );

    // Numbers that no server-side render of this page has shown before: the script must
    // fetch them from /api/status.
    let traces = gateway.metrics.signal(Signal::Traces);
    let received = traces.received_items.fetch_add(1_111, Relaxed) + 1_111;
    let accepted = traces.accepted_items.load(Relaxed);
    let exported =
        gateway.upstream.exported_items[Signal::Traces.index()].fetch_add(2_222, Relaxed) + 2_222;

    let mut command = browser(&chromium, &dir.path().join("profile-dom"));
    command.arg("--dump-dom").arg(&url);
    let done = run_bounded(command, dir.path(), "chromium-dump-dom", BROWSER_LIMIT);
    assert!(
        done.success,
        "chromium --dump-dom failed:\n{}",
        tail(&done.stderr)
    );
    let dom = done.stdout;
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.html"),
        &dom,
    )
    .unwrap();

    let live = dom
        .split("id=\"js-rendered\"")
        .nth(1)
        .and_then(|rest| rest.split("</span>").next())
        .unwrap_or_else(|| panic!("no js-rendered element in the DOM:\n{dom}"));
    assert!(
        live.contains("data-fetches=\""),
        "the script never rendered a fetched status: {live}"
    );
    for needle in [
        format!("received_items={received}"),
        format!("accepted_items={accepted}"),
        format!("exported_items={exported}"),
        "routes traces-main".to_owned(),
        format!("tempo-upstream={exported}"),
        "s3-archive=0".to_owned(),
    ] {
        assert!(live.contains(&needle), "js-rendered lacks {needle}: {live}");
    }
    // The script redrew the page from the fetched document: diagram, tables, header.
    assert!(dom.contains(&format!("{} exported", thousands(exported))));
    assert!(dom.contains(&format!("{} received", thousands(received))));
    for needle in [
        "<div class=\"box br-closed\"><div class=\"t\">tempo-upstream</div>",
        "<div class=\"box br-open\"><div class=\"t\">s3-archive</div>",
        "<div class=\"t\">traces-main</div><div class=\"k\">queue · disk · single</div>",
        "<polyline",
        "class=\"badge s-running\">running<",
        "class=\"badge lvl-1\">light (1)<",
        "upstream answered 503",
        "class=\"conn\">live · every 2 s<",
    ] {
        assert!(dom.contains(needle), "the rendered DOM lacks {needle}");
    }

    runtime
        .block_on(admin.shutdown(Duration::from_secs(1)))
        .unwrap();
}

/// `1234567` as `1,234,567`, as the page writes counts.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
