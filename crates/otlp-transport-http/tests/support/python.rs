//! Running the Python OpenTelemetry SDK peers (interop/python) with hard time limits,
//! as crates/otlp-core/tests/python_sdk_json.rs does.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;

/// Installing a venv from PyPI; generous, for the first run on a slow index.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(600);
/// One script run (the scripts have their own 60 s watchdog).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(90);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether `python3` is installed; prints a loud notice when it is not (the only case
/// in which an interop test may skip).
pub fn python_available() -> bool {
    match Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // Straight to stderr: libtest would swallow eprintln! of a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPED: python3 is not installed, so the Python SDK interop test \
                 did not run. Install python3 (3.10+, with venv). !!!\n"
            );
            false
        }
        _ => true,
    }
}

/// `interop/setup-venv.sh KIND`: the venv path, installing it first if needed. The venvs
/// live in target/interop, shared with the other interop tests.
pub fn setup_venv(kind: &str) -> Result<PathBuf, String> {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let interop_dir = tmp.parent().unwrap_or(tmp).join("interop");
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("interop/setup-venv.sh"))
        .arg(kind)
        .env("OTLP_INTEROP_DIR", interop_dir);
    let output = run_bounded(cmd, SETUP_TIMEOUT)?;
    if !output.status.success() {
        return Err(format!(
            "interop/setup-venv.sh {kind} failed ({}); its output:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    ))
}

/// Run `cmd` to completion, killing it and its children after `timeout`; stdout and
/// stderr captured.
#[expect(
    clippy::disallowed_types,
    reason = "a deadline on a child process is wall-clock time; there is no runtime to pause"
)]
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        // Its own process group, so a timeout also ends what a script started.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {shown}: {e}"))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child
            .try_wait()
            .map_err(|e| format!("wait for {shown}: {e}"))?
        {
            Some(status) => break status,
            None if std::time::Instant::now() >= deadline => {
                let _ = Command::new("kill")
                    // `-s KILL --`: procps kill reads `-KILL -PGID` as `kill -1` (every process).
                    .args(["-s", "KILL", "--"])
                    .arg(format!("-{}", child.id()))
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                let err = stderr.join().unwrap_or_default();
                return Err(format!(
                    "{shown} did not finish within {timeout:?}; killed. stderr:\n{}",
                    String::from_utf8_lossy(&err)
                ));
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}
