//! Running one external command as a named step: print it, time it, keep its output.
//!
//! In [`Output::Quiet`] mode a step prints one line (`[2/9] cargo clippy ... ok 41.2s`) and
//! its output goes to a log file under `target/xtask/`; on failure the end of that log is
//! printed so the reason is visible without opening anything. [`Output::Echo`] also shows
//! the output live (benches, publishing, `--verbose`).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::clock::Stopwatch;

/// How much of a step's output reaches the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// One line per step; the full output is in the log, its tail printed on failure.
    Quiet,
    /// The output streams to the terminal as well as to the log.
    Echo,
}

/// Lines of a failed step's log printed to the terminal.
const FAILURE_TAIL_LINES: usize = 300;

/// An external command to run from the workspace root.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
}

impl Step {
    /// `cargo ARGS...`, using the cargo that runs xtask (the pinned toolchain).
    pub(crate) fn cargo<I, S>(args: I) -> Step
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        Step::new(program, args)
    }

    /// `cargo +TOOLCHAIN ARGS...` through the rustup proxy, for nightly-only tools.
    pub(crate) fn cargo_toolchain<I, S>(toolchain: &str, args: I) -> Step
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut step = Step::new("cargo", [format!("+{toolchain}")]);
        step.args.extend(args.into_iter().map(Into::into));
        step
    }

    pub(crate) fn new<P, I, S>(program: P, args: I) -> Step
    where
        P: Into<OsString>,
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Step {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
        }
    }

    pub(crate) fn env(mut self, key: &str, value: &str) -> Step {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The command as a user would type it.
    pub(crate) fn display(&self) -> String {
        let mut words: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect();
        // Show `cargo`, not the absolute path of the toolchain's binary in $CARGO.
        let program = Path::new(&self.program)
            .file_name()
            .unwrap_or(self.program.as_os_str());
        words.push(quote(&program.to_string_lossy()));
        words.extend(self.args.iter().map(|a| quote(&a.to_string_lossy())));
        words.join(" ")
    }

    fn command(&self, root: &Path) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args).current_dir(root);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }
}

fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=+,@%".contains(&b))
    {
        word.to_owned()
    } else {
        format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// What a finished step left behind.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) success: bool,
    pub(crate) duration: Duration,
    /// Everything the command printed, stdout and stderr interleaved by line.
    pub(crate) log: PathBuf,
}

impl Finished {
    pub(crate) fn read_log(&self) -> String {
        read_lossy(&self.log)
    }
}

/// Runs steps from the workspace root, numbering them and writing their logs.
#[derive(Debug)]
pub(crate) struct Runner {
    root: PathBuf,
    log_dir: PathBuf,
    output: Output,
    done: usize,
    planned: usize,
}

impl Runner {
    pub(crate) fn new(root: &Path, log_dir: PathBuf, output: Output, planned: usize) -> Runner {
        Runner {
            root: root.to_owned(),
            log_dir,
            output,
            done: 0,
            planned,
        }
    }

    /// Count `extra` more steps than planned (an optional step turned out to be needed).
    pub(crate) fn plan_more(&mut self, extra: usize) {
        self.planned += extra;
    }

    /// Run `step` to completion. Failing to start it is an error; a non-zero exit is
    /// reported in [`Finished::success`] with the log tail already printed.
    pub(crate) fn run(&mut self, name: &str, step: &Step) -> Result<Finished, String> {
        self.run_as(name, step, self.output)
    }

    /// Like [`Runner::run`] with an explicit output mode for this step.
    pub(crate) fn run_as(
        &mut self,
        name: &str,
        step: &Step,
        output: Output,
    ) -> Result<Finished, String> {
        self.done += 1;
        let counter = if self.planned > 0 {
            format!("[{}/{}] ", self.done, self.planned)
        } else {
            String::new()
        };
        fs::create_dir_all(&self.log_dir)
            .map_err(|e| format!("cannot create {}: {e}", self.log_dir.display()))?;
        let log = self.log_dir.join(format!("{}.log", slug(name)));

        let shown = step.display();
        match output {
            Output::Quiet => {
                print!("{counter}{shown} ... ");
                flush();
            }
            Output::Echo => println!("{counter}==> {shown}"),
        }

        let watch = Stopwatch::start();
        let success = spawn_logged(step.command(&self.root), &log, output == Output::Echo)
            .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
        let finished = Finished {
            success,
            duration: watch.elapsed(),
            log,
        };

        let verdict = if success { "ok" } else { "FAILED" };
        let took = format_duration(finished.duration);
        match output {
            Output::Quiet => println!("{verdict} {took}"),
            Output::Echo => println!("{counter}{verdict} {took}: {shown}"),
        }
        if !success {
            if output == Output::Quiet {
                print_tail(&finished.log);
            }
            println!("    full output: {}", finished.log.display());
        }
        flush();
        Ok(finished)
    }
}

/// Run `command`, copying stdout and stderr line by line into `log` (and to the terminal
/// when `echo`). Returns whether it exited successfully.
fn spawn_logged(mut command: Command, log: &Path, echo: bool) -> io::Result<bool> {
    let file = File::create(log)?;
    let sink = Arc::new(Mutex::new(file));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;

    let mut copiers = Vec::new();
    if let Some(out) = child.stdout.take() {
        copiers.push(copy_lines(
            out,
            Arc::clone(&sink),
            echo.then_some(Echo::Stdout),
        ));
    }
    if let Some(err) = child.stderr.take() {
        copiers.push(copy_lines(
            err,
            Arc::clone(&sink),
            echo.then_some(Echo::Stderr),
        ));
    }
    let status = child.wait()?;
    for copier in copiers {
        copier
            .join()
            .map_err(|_| io::Error::other("output copier panicked"))??;
    }
    Ok(status.success())
}

#[derive(Debug, Clone, Copy)]
enum Echo {
    Stdout,
    Stderr,
}

fn copy_lines(
    source: impl Read + Send + 'static,
    sink: Arc<Mutex<File>>,
    echo: Option<Echo>,
) -> thread::JoinHandle<io::Result<()>> {
    thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            {
                // A poisoned lock only means the other copier panicked; keep logging.
                let mut file = sink.lock().unwrap_or_else(|p| p.into_inner());
                file.write_all(&line)?;
            }
            match echo {
                Some(Echo::Stdout) => {
                    let mut out = io::stdout().lock();
                    out.write_all(&line)?;
                    out.flush()?;
                }
                Some(Echo::Stderr) => io::stderr().lock().write_all(&line)?,
                None => {}
            }
        }
    })
}

fn print_tail(log: &Path) {
    let text = read_lossy(log);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(FAILURE_TAIL_LINES);
    if skip > 0 {
        println!("    ... {skip} earlier lines in the log");
    }
    for line in &lines[skip..] {
        println!("    | {}", strip_ansi(line));
    }
}

/// Remove terminal escape sequences (rustfmt colours its diffs even into a pipe).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters, then one final byte in '@'..='~'.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // Character set selection such as ESC ( B: one more character.
            Some('(' | ')') => {
                chars.next();
            }
            _ => {}
        }
    }
    out
}

pub(crate) fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

fn flush() {
    // Nothing useful to do if the terminal went away.
    let _ = io::stdout().flush();
}

/// A file-name-safe form of a step name.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// `0.4s`, `41.2s`, `3m07s`.
pub(crate) fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_commands_as_typed() {
        let step =
            Step::new("/usr/bin/cargo", ["doc", "--workspace"]).env("RUSTDOCFLAGS", "-D warnings");
        assert_eq!(
            step.display(),
            "RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace"
        );
        let fuzz = Step::cargo_toolchain("nightly", ["fuzz", "--version"]);
        assert_eq!(fuzz.display(), "cargo +nightly fuzz --version");
    }

    #[test]
    fn strips_terminal_colours() {
        assert_eq!(
            strip_ansi("\u{1b}[31m-use a;\u{1b}(B\u{1b}[m plain"),
            "-use a; plain"
        );
        assert_eq!(strip_ansi("no escapes"), "no escapes");
    }

    #[test]
    fn formats_durations() {
        assert_eq!(format_duration(Duration::from_millis(420)), "0.4s");
        assert_eq!(format_duration(Duration::from_secs(187)), "3m07s");
    }

    #[test]
    fn logs_interleaved_output_and_exit_status() {
        let dir = std::env::temp_dir().join(format!("xtask-step-test-{}", std::process::id()));
        let mut runner = Runner::new(&dir, dir.join("logs"), Output::Quiet, 0);
        fs::create_dir_all(&dir).unwrap();
        let ok = runner
            .run("echo", &Step::new("sh", ["-c", "echo out; echo err >&2"]))
            .unwrap();
        assert!(ok.success);
        let log = ok.read_log();
        assert!(log.contains("out\n") && log.contains("err\n"), "{log:?}");
        let failed = runner
            .run("fail", &Step::new("sh", ["-c", "exit 3"]))
            .unwrap();
        assert!(!failed.success);
        fs::remove_dir_all(&dir).unwrap();
    }
}
