//! `otlp gateway` as a child process: configuration file, stderr log, listen file,
//! readiness, SIGTERM, SIGKILL, restart, resident memory.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::http;

/// How long the gateway may take to write its listen file (it replays disk queues first).
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long it may take to turn ready once listening.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long SIGTERM may take (the config below sets `shutdown_grace = "10s"`).
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts to start on a fixed port that a previous instance (or anything else) still holds.
const BIND_ATTEMPTS: u32 = 20;
const POLL: Duration = Duration::from_millis(50);

/// What to start: the parts of the TOML configuration a test chooses. The harness adds
/// `data_dir`, the listener and admin addresses, a short shutdown grace and the log level.
#[derive(Debug, Clone)]
pub(crate) struct GatewaySpec {
    name: String,
    work_dir: PathBuf,
    grpc_addr: String,
    http_addr: String,
    top: String,
    listener: String,
    tables: String,
}

impl GatewaySpec {
    /// A gateway called `name` whose files live under `work_dir/name*`: the data
    /// directory `work_dir/name`, the configuration `name.toml`, stderr in `name.log`.
    /// Listeners and admin on 127.0.0.1 port 0; no exporter (the JSONL file sink).
    pub(crate) fn new(name: &str, work_dir: &Path) -> GatewaySpec {
        GatewaySpec {
            name: name.to_owned(),
            work_dir: work_dir.to_owned(),
            grpc_addr: "127.0.0.1:0".into(),
            http_addr: "127.0.0.1:0".into(),
            top: String::new(),
            listener: String::new(),
            tables: String::new(),
        }
    }

    /// The OTLP/gRPC listener's address (a fixed port, for an upstream that restarts).
    pub(crate) fn grpc_addr(mut self, addr: SocketAddr) -> GatewaySpec {
        self.grpc_addr = addr.to_string();
        self
    }

    /// Top-level keys (before any table), e.g. `shutdown_grace = "5s"`.
    pub(crate) fn top(mut self, toml: &str) -> GatewaySpec {
        self.top.push_str(toml);
        self.top.push('\n');
        self
    }

    /// Keys added to both `[receivers.grpc]` and `[receivers.http]`, e.g.
    /// `max_request_bytes = "1MiB"`.
    pub(crate) fn listener(mut self, toml: &str) -> GatewaySpec {
        self.listener.push_str(toml);
        self.listener.push('\n');
        self
    }

    /// Tables appended to the file: `[queue]`, `[[exporters]]`, `[limits]`, ...
    pub(crate) fn tables(mut self, toml: &str) -> GatewaySpec {
        self.tables.push_str(toml);
        self.tables.push('\n');
        self
    }

    /// An `[[exporters]]` table sending everything over OTLP/gRPC to `upstream`.
    pub(crate) fn export_grpc(self, upstream: SocketAddr) -> GatewaySpec {
        self.tables(&format!(
            "[[exporters]]\nname = \"up\"\nkind = \"grpc\"\nendpoint = \"grpc://{upstream}\"\n\
             [exporters.retry]\ninitial_backoff = \"100ms\"\nmax_backoff = \"1s\"\n\
             [exporters.circuit_breaker]\nopen_for = \"1s\"\n"
        ))
    }

    /// The data directory.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.work_dir.join(&self.name)
    }

    fn config_path(&self) -> PathBuf {
        self.work_dir.join(format!("{}.toml", self.name))
    }

    fn log_path(&self) -> PathBuf {
        self.work_dir.join(format!("{}.log", self.name))
    }

    /// The whole configuration file.
    pub(crate) fn toml(&self) -> String {
        let data_dir = self.data_dir();
        format!(
            "data_dir = {data_dir:?}\nshutdown_grace = \"10s\"\n{top}\n\
             [receivers.grpc]\naddr = \"{grpc}\"\n{listener}\n\
             [receivers.http]\naddr = \"{http}\"\n{listener}\n\
             [admin]\naddr = \"127.0.0.1:0\"\n\
             [log]\nlevel = \"info\"\n\n{tables}",
            data_dir = data_dir.display().to_string(),
            top = self.top,
            grpc = self.grpc_addr,
            http = self.http_addr,
            listener = self.listener,
            tables = self.tables,
        )
    }
}

/// Where a running gateway listens (from its `listen.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListenAddrs {
    /// OTLP/gRPC.
    pub(crate) grpc: Option<SocketAddr>,
    /// OTLP/HTTP.
    pub(crate) http: Option<SocketAddr>,
    /// Admin.
    pub(crate) admin: Option<SocketAddr>,
}

/// A gateway process. Dropping it kills the process (SIGKILL) if it still runs.
#[derive(Debug)]
pub(crate) struct Gateway {
    spec: GatewaySpec,
    child: Option<Child>,
    addrs: ListenAddrs,
    starts: u32,
}

impl Gateway {
    /// Writes the configuration, starts `otlp gateway --config FILE`, waits for its listen
    /// file and for `/readyz` to answer 200. Panics with the gateway's stderr when it
    /// does not come up.
    pub(crate) async fn start(spec: GatewaySpec) -> Gateway {
        std::fs::create_dir_all(spec.data_dir())
            .unwrap_or_else(|e| panic!("create {}: {e}", spec.data_dir().display()));
        std::fs::write(spec.config_path(), spec.toml())
            .unwrap_or_else(|e| panic!("write {}: {e}", spec.config_path().display()));
        let mut gateway = Gateway {
            spec,
            child: None,
            addrs: ListenAddrs {
                grpc: None,
                http: None,
                admin: None,
            },
            starts: 0,
        };
        gateway.restart().await;
        gateway
    }

    /// Starts the process again with the same configuration and data directory (after
    /// [`Gateway::kill`] or [`Gateway::terminate`]). Retries while a fixed port is still
    /// taken.
    pub(crate) async fn restart(&mut self) {
        assert!(
            !self.is_running(),
            "{}: restart while running",
            self.spec.name
        );
        for attempt in 1..=BIND_ATTEMPTS {
            match self.spawn_once().await {
                Ok(()) => {
                    self.wait_ready().await;
                    return;
                }
                Err(why) if attempt < BIND_ATTEMPTS && why.contains("in use") => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(why) => panic!(
                    "{}: did not start (attempt {attempt}): {why}\n{}",
                    self.spec.name,
                    self.stderr_tail(40)
                ),
            }
        }
    }

    async fn spawn_once(&mut self) -> Result<(), String> {
        let listen_file = self.spec.data_dir().join("listen.json");
        // A previous run's file would name its ports.
        let _ = std::fs::remove_file(&listen_file);
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.spec.log_path())
            .map_err(|e| format!("open {}: {e}", self.spec.log_path().display()))?;
        let _ = writeln!(log, "===== e2e harness: start #{} =====", self.starts);
        let stderr = log
            .try_clone()
            .map_err(|e| format!("clone the log file handle: {e}"))?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_otlp"));
        cmd.arg("gateway")
            .arg("--config")
            .arg(self.spec.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr));
        // Only the configuration file decides.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OTEL_") {
                cmd.env_remove(name);
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", env!("CARGO_BIN_EXE_otlp")))?;
        self.child = Some(child);
        let polls = START_TIMEOUT.as_millis() / POLL.as_millis();
        for _ in 0..polls {
            if let Some(status) = self.try_wait() {
                let log = std::fs::read_to_string(self.spec.log_path()).unwrap_or_default();
                return Err(format!(
                    "exited with {status} before writing {}: {}",
                    listen_file.display(),
                    log.lines().last().unwrap_or_default()
                ));
            }
            if let Ok(text) = std::fs::read_to_string(&listen_file)
                && let Ok(addrs) = parse_listen_file(&text)
            {
                self.addrs = addrs;
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        self.kill();
        Err(format!(
            "no {} within {START_TIMEOUT:?}",
            listen_file.display()
        ))
    }

    async fn wait_ready(&mut self) {
        let admin = self.admin_addr();
        let polls = READY_TIMEOUT.as_millis() / POLL.as_millis();
        let mut last = String::new();
        for _ in 0..polls {
            if let Some(status) = self.try_wait() {
                panic!(
                    "{}: exited with {status} before turning ready\n{}",
                    self.spec.name,
                    self.stderr_tail(40)
                );
            }
            match http::get(admin, "/readyz") {
                Ok(r) if r.status == 200 => return,
                Ok(r) => last = format!("{} {}", r.status, r.text()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(POLL).await;
        }
        panic!(
            "{}: /readyz not 200 within {READY_TIMEOUT:?} (last: {last})\n{}",
            self.spec.name,
            self.stderr_tail(40)
        );
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            _ => None,
        }
    }

    /// Whether the process runs.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_wait().is_none()
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .unwrap_or_else(|| panic!("{}: not running", self.spec.name))
    }

    /// The name given to [`GatewaySpec::new`].
    pub(crate) fn name(&self) -> &str {
        &self.spec.name
    }

    /// What it was started with.
    pub(crate) fn spec(&self) -> &GatewaySpec {
        &self.spec
    }

    /// The data directory (file sink, disk queues, listen file).
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.spec.data_dir()
    }

    /// The OTLP/gRPC listener of the current run.
    pub(crate) fn grpc_addr(&self) -> SocketAddr {
        self.addrs.grpc.expect("the gRPC listener is on")
    }

    /// The OTLP/HTTP listener of the current run.
    pub(crate) fn http_addr(&self) -> SocketAddr {
        self.addrs.http.expect("the HTTP listener is on")
    }

    /// The admin listener of the current run.
    pub(crate) fn admin_addr(&self) -> SocketAddr {
        self.addrs.admin.expect("the admin listener is on")
    }

    /// SIGTERM, then waits (bounded) for the exit. Panics, after SIGKILL, when it does
    /// not stop in time.
    pub(crate) async fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid();
        let _ = Command::new("kill")
            .args(["-s", "TERM", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let polls = STOP_TIMEOUT.as_millis() / POLL.as_millis();
        for _ in 0..polls {
            if let Some(status) = self.try_wait() {
                return status;
            }
            tokio::time::sleep(POLL).await;
        }
        self.kill();
        panic!(
            "{}: did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed\n{}",
            self.spec.name,
            self.stderr_tail(40)
        );
    }

    /// SIGKILL (a crash): nothing is flushed.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last `lines` lines of the gateway's stderr (all runs), for failure messages.
    pub(crate) fn stderr_tail(&self, lines: usize) -> String {
        tail(&self.spec.log_path(), lines, &self.spec.name)
    }

    /// `GET /metrics` of the current run.
    pub(crate) fn metrics(&self) -> String {
        match http::get(self.admin_addr(), "/metrics") {
            Ok(r) if r.status == 200 => r.text(),
            Ok(r) => panic!(
                "{}: /metrics answered {}: {}",
                self.spec.name,
                r.status,
                r.text()
            ),
            Err(e) => panic!("{}: /metrics: {e}", self.spec.name),
        }
    }

    /// Resident memory (VmRSS) in KiB, from /proc.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

fn parse_listen_file(text: &str) -> Result<ListenAddrs, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let addr = |key: &str| -> Result<Option<SocketAddr>, String> {
        match value.get(key) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|e| format!("listen.json {key}: {s:?}: {e}")),
            Some(other) => Err(format!("listen.json {key}: not a string: {other}")),
        }
    };
    Ok(ListenAddrs {
        grpc: addr("grpc")?,
        http: addr("http")?,
        admin: addr("admin")?,
    })
}

/// The last `lines` lines of a file, labelled.
pub(crate) fn tail(path: &Path, lines: usize, label: &str) -> String {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return format!("--- {label}: no log ({}: {e})", path.display()),
    };
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    format!(
        "--- last {} lines of {label}'s stderr ({}):\n{}",
        all.len() - from,
        path.display(),
        all[from..].join("\n")
    )
}
