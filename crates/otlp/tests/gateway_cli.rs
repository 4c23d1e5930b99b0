//! `otlp gateway` as a user runs it: flags, the JSONL file sink read back with
//! `otlp convert` and `jq`, SIGHUP reload, SIGTERM drain and exit code.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_otlp");

/// The gateway process; killed on drop if still running.
struct Running {
    child: Child,
    data_dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(data_dir: &Path, extra: &[&str]) -> Running {
        let child = Command::new(BIN)
            .args(["gateway", "--data-dir"])
            .arg(data_dir)
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(["--admin-addr", "127.0.0.1:0"])
            .args(extra)
            .env_remove("RUST_LOG")
            .env("OTEL_SDK_DISABLED", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start otlp gateway");
        Running {
            child,
            data_dir: data_dir.to_owned(),
        }
    }

    /// The addresses from `listen.json`, waiting for it (bounded).
    fn addr(&mut self, key: &str) -> String {
        let path = self.data_dir.join("listen.json");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            {
                return v[key].as_str().expect("address").to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("gateway exited early: {status}: {}", self.stderr());
            }
            assert!(Instant::now() < deadline, "no {}", path.display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait for exit (bounded) and return the exit status and stderr.
    fn wait(mut self, bound: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not exit within {bound:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }
}

fn send(endpoint: &str, signal: &str, count: u32) {
    let out = Command::new(BIN)
        .args(["send", "--endpoint", endpoint, "--signal", signal])
        .args(["--count", &count.to_string(), "--batch", "50"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "otlp send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// GET over a raw TCP connection (HTTP/1.1, Connection: close).
fn get(addr: &str, path: &str) -> String {
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

fn metric(metrics: &str, line_prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {line_prefix} in /metrics"))
}

#[test]
fn default_file_sink_is_readable_with_convert_and_jq_and_sigterm_drains() {
    let dir = tempfile::tempdir().unwrap();
    let mut gateway = Running::start(dir.path(), &[]);
    let http = gateway.addr("http");
    let grpc = gateway.addr("grpc");
    send(&format!("http://{http}"), "traces", 300);
    send(&format!("grpc://{grpc}"), "logs", 200);
    send(&format!("http://{http}"), "metrics", 100);
    gateway.signal("TERM");
    let (status, stderr) = gateway.wait(Duration::from_secs(40));
    assert!(status.success(), "exit {status}: {stderr}");
    assert!(stderr.contains("draining"), "{stderr}");

    let traces = std::fs::read_to_string(dir.path().join("traces.jsonl")).unwrap();
    let spans: u64 = traces
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["resourceSpans"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r["scopeSpans"].as_array().unwrap())
                .map(|s| s["spans"].as_array().unwrap().len() as u64)
                .sum::<u64>()
        })
        .sum();
    assert_eq!(spans, 300);
    assert!(
        !std::fs::read_to_string(dir.path().join("logs.jsonl"))
            .unwrap()
            .is_empty()
    );
    assert!(
        !std::fs::read_to_string(dir.path().join("metrics.jsonl"))
            .unwrap()
            .is_empty()
    );

    // One line is one request: `otlp convert` turns it into protobuf.
    let line = dir.path().join("line.json");
    std::fs::write(&line, traces.lines().next().unwrap()).unwrap();
    let pb = dir.path().join("line.pb");
    let out = Command::new(BIN)
        .args([
            "convert", "--signal", "traces", "--from", "json", "--to", "proto",
        ])
        .arg(&line)
        .arg(&pb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&pb).unwrap().len() > 0);

    // And `jq` reads every line (jq is part of the test tooling's Debian packages).
    if let Ok(out) = Command::new("jq")
        .args(["-c", "[.resourceSpans[].scopeSpans[].spans[]] | length"])
        .arg(dir.path().join("traces.jsonl"))
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let total: u64 = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().parse::<u64>().unwrap())
            .sum();
        assert_eq!(total, 300);
    }
}

#[test]
fn sighup_reloads_and_a_broken_file_keeps_the_old_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "[limits]\nretry_after = \"1s\"\n").unwrap();
    let mut gateway = Running::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let admin = gateway.addr("admin");
    let wait_for = |name: &str, want: f64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = get(&admin, "/metrics");
            if m.contains(name) && metric(&m, name) == want {
                return;
            }
            assert!(Instant::now() < deadline, "{name} never reached {want}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    std::fs::write(&config, "[limits]\nretry_after = \"2s\"\n").unwrap();
    gateway.signal("HUP");
    wait_for("otlp_gateway_config_reloads_total", 1.0);
    std::fs::write(&config, "[limits]\nretry_after = \"two seconds\"\n").unwrap();
    gateway.signal("HUP");
    wait_for("otlp_gateway_config_reload_failures_total", 1.0);
    assert!(get(&admin, "/readyz").starts_with("HTTP/1.1 200"));
    let status = get(&admin, "/api/status");
    assert!(status.contains("limits.retry_after"), "{status}");
    gateway.signal("TERM");
    let (status, stderr) = gateway.wait(Duration::from_secs(40));
    assert!(status.success(), "exit {status}: {stderr}");
}

#[test]
fn a_broken_configuration_exits_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "[queue]\nkind = \"tape\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["gateway", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("queue.kind"), "{stderr}");
    let out = Command::new(BIN)
        .args(["check-config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("queue.kind"));
}
