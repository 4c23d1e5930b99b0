//! The Python OpenTelemetry SDK peers of interop/python, run with hard time limits.
//!
//! Same approach as crates/otlp-transport-{http,grpc}/tests/support/python.rs (copied,
//! not shared: those files belong to their crates): `interop/setup-venv.sh KIND` makes or
//! reuses the venv under target/interop, scripts run in their own process group and the
//! group is killed with `kill -s KILL -- -PGID` when they overrun (never `-KILL -PGID`,
//! which procps reads as `kill -1`).
//!
//! Policy: these tests never skip. Without `python3` or PyPI they fail with the setup
//! script's explanation.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Installing a venv from PyPI; generous, for the first run on a slow index.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(600);
/// One script run (emit_load.py's own watchdog is given a little less).
pub(crate) const RUN_TIMEOUT: Duration = Duration::from_secs(150);

/// The repository's root.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `interop/setup-venv.sh KIND` (`grpc` or `proto`): the venv's path, installed on first
/// use. Panics loudly when it cannot be set up.
pub(crate) fn venv(kind: &str) -> PathBuf {
    static VENVS: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let venvs = VENVS.get_or_init(|| Mutex::new(Vec::new()));
    let mut venvs = venvs.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = venvs.iter().find(|(k, _)| k == kind) {
        return path.clone();
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let interop_dir = tmp.parent().unwrap_or(tmp).join("interop");
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("interop/setup-venv.sh"))
        .arg(kind)
        .env("OTLP_INTEROP_DIR", interop_dir);
    let output = run_bounded(cmd, SETUP_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "the Python SDK peers ({kind}) could not be set up, so the end-to-end test cannot run \
         (it does not skip). Install python3 (3.10+, with venv) and make PyPI reachable, then \
         run `interop/setup-venv.sh {kind}` to see the problem directly. Its output:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim().to_owned());
    venvs.push((kind.to_owned(), path.clone()));
    path
}

/// Runs `interop/python/SCRIPT ARGS...` with the venv `kind`'s interpreter, to completion
/// or [`RUN_TIMEOUT`]. `Ok` whatever the exit status; `Err` when it could not start or
/// overran (then killed).
pub(crate) fn run_script(kind: &str, script: &str, args: &[String]) -> Result<Output, String> {
    let venv = venv(kind);
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg(repo_root().join("interop/python").join(script))
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OTEL_") {
            cmd.env_remove(name);
        }
    }
    run_bounded(cmd, RUN_TIMEOUT)
}

/// [`run_script`] on a blocking thread, for async tests.
pub(crate) async fn run_script_async(
    kind: &'static str,
    script: &'static str,
    args: Vec<String>,
) -> Result<Output, String> {
    tokio::task::spawn_blocking(move || run_script(kind, script, &args))
        .await
        .map_err(|e| format!("{script} runner thread: {e}"))?
}

/// A child in its own process group, killed with its group when dropped unfinished.
#[derive(Debug)]
struct Group {
    child: Child,
}

impl Group {
    fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // `-s KILL -- -PGID`, never `-KILL -PGID` (procps reads that as `kill -1`).
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--"])
            .arg(format!("-{}", self.child.id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// Runs `cmd` to completion in its own process group, killing the group after `timeout`.
/// Counted polls rather than a clock: the workspace bans `std::time::Instant`.
pub(crate) fn run_bounded(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    const POLL: Duration = Duration::from_millis(20);
    let shown = format!("{cmd:?}");
    let child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {shown}: {e}"))?;
    let mut group = Group { child };
    let stdout = drain(group.child.stdout.take());
    let stderr = drain(group.child.stderr.take());
    let polls = timeout.as_millis() / POLL.as_millis() + 1;
    for _ in 0..polls {
        match group.child.try_wait() {
            Ok(Some(status)) => {
                return Ok(Output {
                    status,
                    stdout: stdout.join().unwrap_or_default(),
                    stderr: stderr.join().unwrap_or_default(),
                });
            }
            Ok(None) => thread::sleep(POLL),
            Err(e) => return Err(format!("wait for {shown}: {e}")),
        }
    }
    group.kill();
    let err = stderr.join().unwrap_or_default();
    Err(format!(
        "{shown} did not finish within {timeout:?}; killed. stderr:\n{}",
        String::from_utf8_lossy(&err)
    ))
}

/// Reads `DIR/summary.json` as written by emit_grpc.py or emit_load.py.
pub(crate) fn summary(dir: &Path) -> serde_json::Value {
    let path = dir.join("summary.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// A list of strings in a summary (`summary["spans"]`), empty when absent.
pub(crate) fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
