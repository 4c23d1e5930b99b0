//! The Python OTLP/gRPC peers (interop/python/emit_grpc.py and capture_grpc.py, in the
//! `grpc` venv of interop/setup-venv.sh), run with hard time limits.
//!
//! Builds on the HTTP crate's helper (venv setup, repo root), included below rather
//! than copied; processes are run here, killed with `kill -s KILL -- -PGID` (see
//! `Peer::kill`). Every function here blocks the calling thread: from a tokio test whose
//! runtime also serves our receiver, call them inside `tokio::task::spawn_blocking` (or
//! use [`emit_grpc`]), or the receiver cannot answer while Python waits for it.
//!
//! Policy: these tests never skip. Without `python3` (or without network access to
//! PyPI on the first run) they fail with the setup script's explanation.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

#[path = "../../../otlp-transport-http/tests/support/python.rs"]
mod http_python;

pub use http_python::{RUN_TIMEOUT, repo_root};

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long capture_grpc.py may take to print its port (interpreter start and grpcio
/// import take about half a second here; generous for a loaded machine).
pub const PORT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long capture_grpc.py may take to exit once told to stop (its server stops with
/// a 5 s grace period for calls in flight).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The signals in the file names both scripts write.
pub const SIGNALS: [&str; 3] = ["traces", "metrics", "logs"];

/// `interop/setup-venv.sh grpc`: the venv's path, installing it on first use (about
/// 15 s from PyPI; later calls return at once). Panics, loudly, when `python3` is
/// missing or the install fails: interop is part of what the gRPC crate must show.
pub fn setup_grpc_venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        http_python::setup_venv("grpc").unwrap_or_else(|e| {
            panic!(
                "the Python OTLP/gRPC peers could not be set up, so the interop test cannot \
                 run (it does not skip). Install python3 (3.10+, with the venv module; on \
                 Debian: apt-get install python3 python3-venv) and make PyPI reachable, \
                 then run `interop/setup-venv.sh grpc` to see the problem directly.\n{e}"
            )
        })
    })
    .clone()
}

/// Runs `emit_grpc.py --endpoint ENDPOINT --out OUT_DIR EXTRA_ARGS...` to completion
/// (killed after [`RUN_TIMEOUT`]; the script's own watchdog is 60 s).
///
/// `endpoint` is `HOST:PORT` (a `SocketAddr` works); `extra_args` are the script's
/// options, e.g. `["--compression", "gzip", "--header", "authorization=Bearer t"]`.
/// `Ok` whatever the exit status: a test that expects a refusal checks
/// `!output.status.success()` and OUT_DIR/summary.json. `Err` only when the script
/// could not be started or did not finish in time. Blocking: see the module docs.
///
/// What OUT_DIR holds afterwards (see the script's docstring for summary.json):
/// `summary.json` and `sent-<signal>.<n>.pb`, the exact request bytes of each export
/// call ([`sent_requests`] reads them back).
pub fn run_emit_grpc(
    endpoint: impl std::fmt::Display,
    out_dir: &Path,
    extra_args: &[&str],
) -> Result<Output, String> {
    let venv = setup_grpc_venv();
    let mut cmd = python_command(&venv, "emit_grpc.py");
    cmd.arg("--endpoint")
        .arg(endpoint.to_string())
        .arg("--out")
        .arg(out_dir)
        .args(extra_args);
    let mut peer = Peer::spawn(cmd, "emit_grpc.py", None)?;
    // It reads nothing: end of file at once.
    drop(peer.stdin.take());
    peer.finish(RUN_TIMEOUT)
}

/// [`run_emit_grpc`] on a blocking thread, for tokio tests whose runtime serves the
/// receiver the script sends to.
pub async fn emit_grpc(
    endpoint: impl std::fmt::Display,
    out_dir: &Path,
    extra_args: &[&str],
) -> Result<Output, String> {
    let endpoint = endpoint.to_string();
    let out_dir = out_dir.to_owned();
    let extra_args: Vec<String> = extra_args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let extra_args: Vec<&str> = extra_args.iter().map(String::as_str).collect();
        run_emit_grpc(endpoint, &out_dir, &extra_args)
    })
    .await
    .map_err(|e| format!("emit_grpc.py runner thread: {e}"))?
}

/// A running capture_grpc.py. Dropping it kills the script's process group, so a
/// failing test leaves no server behind; [`CaptureGrpc::stop`] and
/// [`CaptureGrpc::wait_exit`] end it cleanly and return its output.
#[derive(Debug)]
pub struct CaptureGrpc {
    peer: Peer,
    out_dir: PathBuf,
}

/// Starts `capture_grpc.py --out OUT_DIR ARGS...` (OUT_DIR is created) and returns it
/// with the 127.0.0.1 port it listens on, read from its first stdout line within
/// [`PORT_TIMEOUT`]. `args` are the script's options: `--expect N`, `--timeout S`
/// (watchdog, default 60), `--partial-success N`, `--require-header KEY=VALUE`,
/// `--max-receive-bytes B`. Panics with the script's stderr if it does not come up.
/// Blocking (about half a second): see the module docs.
///
/// Accepted requests appear as OUT_DIR/`<signal>.<n>.pb` (re-encoded by the Python
/// protobuf classes after decoding) with `<signal>.<n>.meta.json` (the call's
/// metadata); [`captured_requests`] reads them back.
pub fn spawn_capture_grpc(out_dir: &Path, args: &[&str]) -> (CaptureGrpc, u16) {
    let venv = setup_grpc_venv();
    std::fs::create_dir_all(out_dir)
        .unwrap_or_else(|e| panic!("create {}: {e}", out_dir.display()));
    let mut cmd = python_command(&venv, "capture_grpc.py");
    cmd.arg("--out").arg(out_dir).args(args);
    let (first_line, rx) = mpsc::channel();
    let mut peer =
        Peer::spawn(cmd, "capture_grpc.py", Some(first_line)).unwrap_or_else(|e| panic!("{e}"));
    let port = match rx.recv_timeout(PORT_TIMEOUT) {
        Ok(Ok(line)) => parse_port(&line),
        Ok(Err(e)) => Err(format!("reading its stdout failed: {e}")),
        Err(e) => Err(format!("no port line within {PORT_TIMEOUT:?} ({e})")),
    };
    match port {
        Ok(port) => (
            CaptureGrpc {
                peer,
                out_dir: out_dir.to_owned(),
            },
            port,
        ),
        Err(why) => {
            peer.kill();
            let stderr = join(peer.stderr.take());
            panic!(
                "capture_grpc.py did not start: {why}; stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
    }
}

impl CaptureGrpc {
    /// Closes the script's stdin, which stops the server, and waits (at most
    /// [`STOP_TIMEOUT`]) for it to exit. The status is 0 unless `--expect N` was given
    /// and fewer than N requests arrived (then 1). stdout holds `DONE <requests>`
    /// (the `PORT` line was consumed by [`spawn_capture_grpc`]).
    pub fn stop(mut self) -> Result<Output, String> {
        drop(self.peer.stdin.take());
        self.peer.finish(STOP_TIMEOUT)
    }

    /// Waits, at most `timeout`, for the script to exit by itself (after `--expect N`
    /// requests, or its watchdog: status 2); kills it after that and returns `Err`.
    pub fn wait_exit(mut self, timeout: Duration) -> Result<Output, String> {
        self.peer.finish(timeout)
    }

    /// The `--out` directory.
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// The script's process id (also its process group id).
    pub fn id(&self) -> u32 {
        self.peer.child.id()
    }
}

/// A Python script in its own process group with all three pipes, killed with its
/// group when dropped unfinished.
#[derive(Debug)]
struct Peer {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Peer {
    /// Starts `cmd`; with `first_line`, stdout's first line is sent there and left out
    /// of the output.
    fn spawn(
        mut cmd: Command,
        name: &'static str,
        first_line: Option<mpsc::Sender<std::io::Result<String>>>,
    ) -> Result<Peer, String> {
        let mut child = cmd
            // Its own process group, so a kill also ends anything the script started.
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start {name} ({cmd:?}): {e}"))?;
        let stdout = child.stdout.take();
        let stdout = thread::spawn(move || {
            let mut rest = Vec::new();
            if let Some(stdout) = stdout {
                let mut reader = BufReader::new(stdout);
                if let Some(first_line) = first_line {
                    let mut line = String::new();
                    let _ = first_line.send(reader.read_line(&mut line).map(|_| line));
                }
                // Keep draining so the script never blocks on a full pipe.
                let _ = reader.read_to_end(&mut rest);
            }
            rest
        });
        let stderr = child.stderr.take().map(|mut pipe| {
            thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                buf
            })
        });
        Ok(Peer {
            name,
            stdin: child.stdin.take(),
            child,
            stdout: Some(stdout),
            stderr,
        })
    }

    /// Waits at most `timeout` for the exit, then collects the output; kills the
    /// process group and returns `Err` (with its stderr) when it is still running.
    fn finish(&mut self, timeout: Duration) -> Result<Output, String> {
        const POLL: Duration = Duration::from_millis(20);
        // Counted polls rather than a clock: the workspace bans std::time::Instant, and
        // there is no runtime here whose clock could be paused.
        let polls = timeout.as_millis() / POLL.as_millis() + 1;
        let mut status = None;
        for _ in 0..polls {
            match self.child.try_wait() {
                Ok(Some(exited)) => {
                    status = Some(exited);
                    break;
                }
                Ok(None) => thread::sleep(POLL),
                Err(e) => return Err(format!("wait for {}: {e}", self.name)),
            }
        }
        if status.is_none() {
            self.kill();
        }
        let stdout = join(self.stdout.take());
        let stderr = join(self.stderr.take());
        match status {
            Some(status) => Ok(Output {
                status,
                stdout,
                stderr,
            }),
            None => Err(format!(
                "{} did not finish within {timeout:?}; killed. stderr:\n{}",
                self.name,
                String::from_utf8_lossy(&stderr)
            )),
        }
    }

    fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // `-s KILL -- -PGID`, never `-KILL -PGID`: procps-ng 4.0's kill(1) parses the
        // latter as `kill(-1, SIGKILL)`, which ends every process the user may signal.
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

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn join(handle: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    handle
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default()
}

/// The request bytes emit_grpc.py handed to the exporter for `signal`, in call order:
/// OUT_DIR/`sent-<signal>.1.pb`, `.2.pb`, ...
pub fn sent_requests(out_dir: &Path, signal: &str) -> Vec<Vec<u8>> {
    numbered_files(out_dir, &format!("sent-{signal}"))
}

/// The requests capture_grpc.py accepted for `signal`, in arrival order:
/// OUT_DIR/`<signal>.1.pb`, `.2.pb`, ...
pub fn captured_requests(out_dir: &Path, signal: &str) -> Vec<Vec<u8>> {
    numbered_files(out_dir, signal)
}

/// `DIR/PREFIX.1.pb`, `DIR/PREFIX.2.pb`, ... up to the first missing number.
fn numbered_files(dir: &Path, prefix: &str) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    // Bounded: the scripts write a handful of files per signal.
    for n in 1..=10_000 {
        match std::fs::read(dir.join(format!("{prefix}.{n}.pb"))) {
            Ok(bytes) => files.push(bytes),
            Err(_) => break,
        }
    }
    files
}

fn python_command(venv: &Path, script: &str) -> Command {
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg(repo_root().join("interop/python").join(script))
        // emit_grpc.py imports emit.py: no __pycache__ in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

fn parse_port(line: &str) -> Result<u16, String> {
    let line = line.trim();
    line.strip_prefix("PORT ")
        .unwrap_or(line)
        .trim()
        .parse()
        .map_err(|e| format!("first stdout line {line:?} is not `PORT <n>`: {e}"))
}
