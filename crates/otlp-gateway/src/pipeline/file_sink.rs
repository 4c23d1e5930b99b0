//! The JSONL file sink: what the gateway writes when no upstream is configured.
//!
//! One file per signal in the sink's directory, `traces.jsonl`, `metrics.jsonl` and
//! `logs.jsonl`, each line one `Export*ServiceRequest` in compact OTLP/JSON followed by
//! `\n`: the format of the OpenTelemetry Collector's file exporter, so `jq` reads it and
//! `otlp convert --from json` converts any line back to protobuf.
//!
//! ```no_run
//! use otlp_core::{Exporter, Payload};
//! use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
//! use otlp_gateway::pipeline::file_sink::{FileSink, FileSinkConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sink = FileSink::open(FileSinkConfig::new("./otlp-data"))?;
//! sink.export(Payload::from_request(&ExportTraceServiceRequest::default())).await?;
//! sink.shutdown().await?; // flushes and closes the files
//! assert_eq!(sink.lines(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Writing
//!
//! A dedicated writer thread owns the files, so file I/O (which can stall on a slow or
//! full disk) never blocks a tokio worker. [`FileSink::export`] decodes the payload and
//! encodes the OTLP/JSON line on the caller's task (CPU work that parallelises over the
//! runtime's workers), hands the line to the writer thread over a channel and resolves
//! when the writer has written it to the file (`write(2)`, not `fsync`). The writer
//! appends lines to a 1 MiB buffer per file and writes the buffer out whenever it has
//! no more lines waiting, when the buffer is full, and at the latest `flush_interval`
//! after the last write-out under a steady stream of lines; so a line reaches the file
//! within `flush_interval` in every case, and at once when the sink is not busy.
//! [`Exporter::shutdown`] writes everything out, `fsync`s the files and stops the writer;
//! dropping the sink does the same without the `fsync`.
//!
//! The JSONL sink is not a durable store: a line is acknowledged once the operating
//! system has it, not once it is on disk, and lines of a crash's last moments may be
//! lost. Use the disk queue in front of an exporter for durability.
//!
//! A write that fails (disk full, file system read-only) is undone (the file is cut back
//! to its last whole line, so a reader never sees half a line) and the exports of the
//! lines in that buffer fail with [`ExportError::Transport`], which is retryable: the
//! queue in front of the sink keeps the data and offers it again.
//!
//! # Rotation
//!
//! When a line would take `traces.jsonl` past `rotate_bytes`, the file is renamed to
//! `traces-<SEQ>-<UTC>.jsonl`, e.g. `traces-000007-20250102T150405Z.jsonl`, and a new
//! `traces.jsonl` is started. `SEQ` is a counter per signal (six digits or more) that
//! continues from the highest one in the directory after a restart, so names sort
//! oldest first with `ls` and the UTC time of the rotation says when the file was
//! closed. Beyond `keep_files` rotated files per signal, the oldest are deleted. A
//! single line larger than `rotate_bytes` gets a file of its own.
//!
//! Two sinks must not share a directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otlp_core::codec::json;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::sink::{Accepted, BoxFuture};
use otlp_core::{ExportError, Exporter, Payload, Signal};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Default size at which a file is rotated: 100 MiB.
pub const DEFAULT_ROTATE_BYTES: u64 = 100 * 1024 * 1024;
/// Default number of rotated files kept per signal.
pub const DEFAULT_KEEP_FILES: usize = 5;
/// Default upper bound on how long a line waits in the write buffer.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Size of the write buffer per file.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// Settings of a [`FileSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSinkConfig {
    /// Directory of the files; created if missing.
    pub dir: PathBuf,
    /// Rotate a file when the next line would take it past this size (default 100 MiB).
    pub rotate_bytes: u64,
    /// Rotated files kept per signal; older ones are deleted (default 5; 0 keeps none).
    pub keep_files: usize,
    /// Upper bound on how long a written line stays in the write buffer (default 1 s).
    pub flush_interval: Duration,
}

impl FileSinkConfig {
    /// Defaults for files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> FileSinkConfig {
        FileSinkConfig {
            dir: dir.into(),
            rotate_bytes: DEFAULT_ROTATE_BYTES,
            keep_files: DEFAULT_KEEP_FILES,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
        }
    }
}

/// Why a [`FileSink`] could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum FileSinkError {
    /// The directory does not exist and cannot be created: check the path and permissions.
    #[error("cannot create the file sink directory {}: {source}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file cannot be opened for appending: check permissions and free space.
    #[error("cannot open {} for appending: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The directory cannot be listed (to find rotated files).
    #[error("cannot list the file sink directory {}: {source}", dir.display())]
    ListDir {
        /// The directory.
        dir: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The settings cannot work: fix the named setting.
    #[error("invalid file sink setting: {0}")]
    InvalidConfig(String),
    /// The writer thread could not be started.
    #[error("cannot start the file sink writer thread: {0}")]
    Thread(io::Error),
}

#[derive(Debug, Default)]
struct Stats {
    lines: AtomicU64,
    bytes: AtomicU64,
    rotations: AtomicU64,
    write_errors: AtomicU64,
}

type Ack = oneshot::Sender<Result<(), String>>;

enum Command {
    Line {
        signal: Signal,
        line: Vec<u8>,
        ack: Ack,
    },
    Flush {
        ack: Ack,
    },
    Shutdown {
        ack: Ack,
    },
}

/// The JSONL file sink: an [`Exporter`] that appends every payload as one OTLP/JSON line
/// to `DIR/<signal>.jsonl`. See the [module documentation](self).
#[derive(Debug)]
pub struct FileSink {
    name: String,
    dir: PathBuf,
    commands: Sender<Command>,
    closed: AtomicBool,
    stats: Arc<Stats>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl FileSink {
    /// Create the directory if needed, open (append to) the three files and start the
    /// writer thread. Needs no tokio runtime.
    ///
    /// # Errors
    ///
    /// [`FileSinkError`] naming the path and the operating system's reason.
    pub fn open(config: FileSinkConfig) -> Result<FileSink, FileSinkError> {
        if config.rotate_bytes == 0 {
            return Err(FileSinkError::InvalidConfig(
                "rotate_bytes must be at least 1".into(),
            ));
        }
        if config.flush_interval.is_zero() {
            return Err(FileSinkError::InvalidConfig(
                "flush_interval must be more than zero".into(),
            ));
        }
        fs::create_dir_all(&config.dir).map_err(|source| FileSinkError::CreateDir {
            dir: config.dir.clone(),
            source,
        })?;
        let existing = rotated_files(&config.dir).map_err(|source| FileSinkError::ListDir {
            dir: config.dir.clone(),
            source,
        })?;
        let mut files = Vec::with_capacity(3);
        for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
            let path = config.dir.join(file_name(signal));
            let file = open_append(&path).map_err(|source| FileSinkError::Open {
                path: path.clone(),
                source,
            })?;
            let size = file
                .metadata()
                .map_err(|source| FileSinkError::Open {
                    path: path.clone(),
                    source,
                })?
                .len();
            let next_seq = existing
                .iter()
                .filter(|r| r.signal == signal)
                .map(|r| r.seq + 1)
                .max()
                .unwrap_or(1);
            files.push(SignalFile {
                signal,
                path,
                file,
                size,
                buf: Vec::new(),
                buf_lines: 0,
                pending: Vec::new(),
                next_seq,
            });
        }
        let stats = Arc::new(Stats::default());
        let (commands, rx) = mpsc::channel();
        let writer = Writer {
            dir: config.dir.clone(),
            rotate_bytes: config.rotate_bytes,
            keep_files: config.keep_files,
            flush_interval: config.flush_interval,
            files,
            stats: stats.clone(),
            last_write_out: Instant::now(),
        };
        let handle = std::thread::Builder::new()
            .name("otlp-file-sink".into())
            .spawn(move || writer.run(rx))
            .map_err(FileSinkError::Thread)?;
        Ok(FileSink {
            name: format!("file:{}", config.dir.display()),
            dir: config.dir,
            commands,
            closed: AtomicBool::new(false),
            stats,
            writer: Mutex::new(Some(handle)),
        })
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the current file of `signal`.
    pub fn path(&self, signal: Signal) -> PathBuf {
        self.dir.join(file_name(signal))
    }

    /// Lines written to the files (all signals).
    pub fn lines(&self) -> u64 {
        self.stats.lines.load(Ordering::Relaxed)
    }

    /// Bytes written to the files (all signals, newlines included).
    pub fn bytes(&self) -> u64 {
        self.stats.bytes.load(Ordering::Relaxed)
    }

    /// Files rotated since the sink was opened.
    pub fn rotations(&self) -> u64 {
        self.stats.rotations.load(Ordering::Relaxed)
    }

    /// Failed write-outs (each failed the exports of the lines it held).
    pub fn write_errors(&self) -> u64 {
        self.stats.write_errors.load(Ordering::Relaxed)
    }

    /// Write everything buffered to the files now.
    ///
    /// # Errors
    ///
    /// [`ExportError::Transport`] when a write fails, [`ExportError::Shutdown`] after
    /// shutdown.
    pub async fn flush(&self) -> Result<(), ExportError> {
        let (ack, done) = oneshot::channel();
        self.send(Command::Flush { ack })?;
        wait(done).await
    }

    fn send(&self, command: Command) -> Result<(), ExportError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ExportError::Shutdown);
        }
        self.commands
            .send(command)
            .map_err(|_| ExportError::Shutdown)
    }
}

async fn wait(done: oneshot::Receiver<Result<(), String>>) -> Result<(), ExportError> {
    match done.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(ExportError::Transport(format!("file sink: {message}"))),
        // The writer thread is gone: only after shutdown (or a panic, which we report the same).
        Err(_) => Err(ExportError::Shutdown),
    }
}

/// The payload as one OTLP/JSON line, `\n` included.
fn encode_line(payload: &Payload) -> Result<Vec<u8>, ExportError> {
    let bad = |e: otlp_core::codec::DecodeError| {
        ExportError::InvalidRequest(format!(
            "file sink: payload is not a valid {} request: {e}",
            payload.signal()
        ))
    };
    let mut line = match payload.signal() {
        Signal::Traces => {
            json::to_vec(&payload.decode::<ExportTraceServiceRequest>().map_err(bad)?)
        }
        Signal::Metrics => json::to_vec(
            &payload
                .decode::<ExportMetricsServiceRequest>()
                .map_err(bad)?,
        ),
        Signal::Logs => json::to_vec(&payload.decode::<ExportLogsServiceRequest>().map_err(bad)?),
    };
    line.push(b'\n');
    Ok(line)
}

impl Exporter for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn export(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, ExportError>> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                return Err(ExportError::Shutdown);
            }
            let line = encode_line(&payload)?;
            let (ack, done) = oneshot::channel();
            self.send(Command::Line {
                signal: payload.signal(),
                line,
                ack,
            })?;
            wait(done).await.map(|()| Accepted::full())
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, Result<(), ExportError>> {
        Box::pin(async move {
            if self.closed.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
            let (ack, done) = oneshot::channel();
            if self.commands.send(Command::Shutdown { ack }).is_err() {
                return Ok(());
            }
            match done.await {
                Ok(Ok(())) | Err(_) => Ok(()),
                Ok(Err(message)) => Err(ExportError::Transport(format!("file sink: {message}"))),
            }
        })
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Closing the channel makes the writer write out what it holds and stop; waiting
        // for it keeps "dropped" meaning "in the files" (a write-out is at most 3 MiB).
        let (dead, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.commands, dead));
        let handle = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

struct SignalFile {
    signal: Signal,
    path: PathBuf,
    file: File,
    /// Bytes in the file (written out).
    size: u64,
    buf: Vec<u8>,
    buf_lines: u64,
    /// Exports waiting for the lines in `buf` to be written out.
    pending: Vec<Ack>,
    next_seq: u64,
}

impl SignalFile {
    fn write_out(&mut self, stats: &Stats) {
        if self.buf.is_empty() {
            return;
        }
        let result = self.file.write_all(&self.buf);
        let outcome = match result {
            Ok(()) => {
                self.size += self.buf.len() as u64;
                stats.lines.fetch_add(self.buf_lines, Ordering::Relaxed);
                stats
                    .bytes
                    .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(err) => {
                stats.write_errors.fetch_add(1, Ordering::Relaxed);
                // Cut a partly written buffer off so the file ends with a whole line.
                let _ = self.file.set_len(self.size);
                tracing::warn!(path = %self.path.display(), error = %err, "file sink write failed");
                Err(format!("writing {}: {err}", self.path.display()))
            }
        };
        self.buf.clear();
        self.buf_lines = 0;
        if self.buf.capacity() > 4 * WRITE_BUFFER_BYTES {
            self.buf = Vec::new();
        }
        for ack in self.pending.drain(..) {
            let _ = ack.send(outcome.clone());
        }
    }
}

struct Writer {
    dir: PathBuf,
    rotate_bytes: u64,
    keep_files: usize,
    flush_interval: Duration,
    files: Vec<SignalFile>,
    stats: Arc<Stats>,
    last_write_out: Instant,
}

enum Next {
    Continue,
    Stop,
}

impl Writer {
    fn run(mut self, rx: Receiver<Command>) {
        // Nothing is buffered while blocked here: every burst ends with a write-out.
        while let Ok(command) = rx.recv() {
            if let Next::Stop = self.handle(command) {
                return;
            }
            loop {
                match rx.try_recv() {
                    Ok(command) => {
                        if let Next::Stop = self.handle(command) {
                            return;
                        }
                        if self.last_write_out.elapsed() >= self.flush_interval {
                            self.write_out_all();
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.write_out_all();
                        return;
                    }
                }
            }
            self.write_out_all();
        }
        // The sink was dropped.
        self.write_out_all();
    }

    fn handle(&mut self, command: Command) -> Next {
        match command {
            Command::Line { signal, line, ack } => {
                self.push(signal, line, ack);
                Next::Continue
            }
            Command::Flush { ack } => {
                let errors = self.stats.write_errors.load(Ordering::Relaxed);
                self.write_out_all();
                let failed = self.stats.write_errors.load(Ordering::Relaxed) != errors;
                let _ = ack.send(if failed {
                    Err("a write failed during the flush".into())
                } else {
                    Ok(())
                });
                Next::Continue
            }
            Command::Shutdown { ack } => {
                self.write_out_all();
                let mut result = Ok(());
                for f in &self.files {
                    if let Err(err) = f.file.sync_data() {
                        result = Err(format!("syncing {}: {err}", f.path.display()));
                    }
                }
                let _ = ack.send(result);
                Next::Stop
            }
        }
    }

    fn push(&mut self, signal: Signal, line: Vec<u8>, ack: Ack) {
        let index = signal.index();
        let f = &mut self.files[index];
        let held = f.size + f.buf.len() as u64;
        if held > 0 && held + line.len() as u64 > self.rotate_bytes {
            f.write_out(&self.stats);
            if let Err(message) = self.rotate(index) {
                let _ = ack.send(Err(message));
                return;
            }
        }
        let f = &mut self.files[index];
        f.buf.extend_from_slice(&line);
        f.buf_lines += 1;
        f.pending.push(ack);
        if f.buf.len() >= WRITE_BUFFER_BYTES {
            f.write_out(&self.stats);
        }
    }

    fn write_out_all(&mut self) {
        for f in &mut self.files {
            f.write_out(&self.stats);
        }
        self.last_write_out = Instant::now();
    }

    fn rotate(&mut self, index: usize) -> Result<(), String> {
        let f = &mut self.files[index];
        let rotated = self.dir.join(format!(
            "{}-{:06}-{}.jsonl",
            f.signal.as_str(),
            f.next_seq,
            utc_stamp(SystemTime::now())
        ));
        fs::rename(&f.path, &rotated).map_err(|err| {
            format!(
                "rotating {} to {}: {err}",
                f.path.display(),
                rotated.display()
            )
        })?;
        f.next_seq += 1;
        // Until the new file opens, lines go to the renamed one: nothing is lost.
        f.file = open_append(&f.path)
            .map_err(|err| format!("opening {} after rotation: {err}", f.path.display()))?;
        f.size = 0;
        self.stats.rotations.fetch_add(1, Ordering::Relaxed);
        let signal = f.signal;
        if let Err(err) = self.prune(signal) {
            tracing::warn!(dir = %self.dir.display(), error = %err, "file sink could not delete old rotated files");
        }
        Ok(())
    }

    /// Delete the oldest rotated files of `signal` beyond `keep_files`.
    fn prune(&self, signal: Signal) -> io::Result<()> {
        let mut rotated: Vec<Rotated> = rotated_files(&self.dir)?
            .into_iter()
            .filter(|r| r.signal == signal)
            .collect();
        if rotated.len() <= self.keep_files {
            return Ok(());
        }
        rotated.sort_by_key(|r| r.seq);
        let excess = rotated.len() - self.keep_files;
        for old in &rotated[..excess] {
            fs::remove_file(&old.path)?;
        }
        Ok(())
    }
}

fn file_name(signal: Signal) -> String {
    format!("{}.jsonl", signal.as_str())
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[derive(Debug)]
struct Rotated {
    signal: Signal,
    seq: u64,
    path: PathBuf,
}

/// The rotated files in `dir`: `<signal>-<SEQ>-<UTC>.jsonl`.
fn rotated_files(dir: &Path) -> io::Result<Vec<Rotated>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((signal, seq)) = parse_rotated(name) {
            out.push(Rotated {
                signal,
                seq,
                path: entry.path(),
            });
        }
    }
    Ok(out)
}

fn parse_rotated(name: &str) -> Option<(Signal, u64)> {
    let stem = name.strip_suffix(".jsonl")?;
    let (signal, rest) = stem.split_once('-')?;
    // Only our own names: `Signal`'s parser also takes aliases such as `spans`.
    let signal = [Signal::Traces, Signal::Metrics, Signal::Logs]
        .into_iter()
        .find(|s| s.as_str() == signal)?;
    let (seq, stamp) = rest.split_once('-')?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) || stamp.is_empty() {
        return None;
    }
    Some((signal, seq.parse().ok()?))
}

/// `YYYYMMDDTHHMMSSZ` for `at` (UTC).
fn utc_stamp(at: SystemTime) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_are_civil_dates() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_833_845); // 2025-01-02T16:04:05Z
        assert_eq!(utc_stamp(t), "20250102T160405Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29T00:00:00Z
        assert_eq!(utc_stamp(leap), "20000229T000000Z");
    }

    #[test]
    fn rotated_names_parse_and_others_do_not() {
        assert_eq!(
            parse_rotated("traces-000007-20250102T150405Z.jsonl"),
            Some((Signal::Traces, 7))
        );
        assert_eq!(
            parse_rotated("logs-1234567-20250102T150405Z.jsonl"),
            Some((Signal::Logs, 1_234_567))
        );
        assert_eq!(parse_rotated("traces.jsonl"), None);
        assert_eq!(parse_rotated("traces-x-1.jsonl"), None);
        assert_eq!(parse_rotated("spans-000001-1.jsonl"), None);
        assert_eq!(parse_rotated("traces-000001-1.json"), None);
    }
}
