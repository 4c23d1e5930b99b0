//! `cargo xtask`: project automation for otlp-rust.
//!
//! ```text
//! cargo xtask ci [--keep-going] fmt, clippy, tests crate by crate, doc tests, docs: what CI runs
//! cargo xtask bench [FILTER]    criterion benches of otlp-benches, then a summary table,
//!                               then the otlp gateway end to end (`bench gateway`: that alone)
//! cargo xtask fuzz [SECONDS]    every cargo-fuzz target for SECONDS each (default 30)
//! cargo xtask release           publish readiness checks, then cargo publish --workspace --dry-run
//! ```
//!
//! Every subcommand prints each command it runs with its duration and stops with a
//! non-zero exit at the first failure. Step logs are kept in `target/xtask/`.
//!
//! xtask uses the standard library only, so a fresh clone needs nothing but the pinned
//! toolchain (`fuzz` installs `cargo-fuzz` itself when it is missing).

mod bench;
mod ci;
mod clock;
mod fuzz;
mod gateway_bench;
mod json;
mod release;
mod step;
mod workspace;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use step::Output;
use workspace::Workspace;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  ci [--keep-going]  cargo fmt --check, clippy -D warnings, cargo test per crate,
                     doc tests, cargo doc with warnings denied (what .ci/run runs);
                     stops at the first failing step unless --keep-going
  bench [FILTER]     cargo bench -p otlp-benches [-- FILTER], then a results table;
                     without FILTER also the otlp gateway end to end (pinned to the
                     2 cores, about 10 minutes); bench gateway: that alone
  fuzz [SECONDS]     run every fuzz target for SECONDS each (default 30; needs nightly)
  release            check publish readiness, then cargo publish --workspace --dry-run
  help               this text

--verbose (ci, fuzz) streams each command's output instead of one line per step.";

/// Why xtask stops.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Print this and exit non-zero.
    Message(String),
    /// Already explained on the terminal; exit non-zero without another word.
    Reported,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Message(message)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Message(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::Reported) => ExitCode::FAILURE,
    }
}

fn run(args: &[String]) -> Result<(), Failure> {
    let mut output = Output::Quiet;
    let mut keep_going = false;
    let mut positional = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--verbose" | "-v" => output = Output::Echo,
            "--keep-going" => keep_going = true,
            "--help" | "-h" => positional.insert(0, "help"),
            flag if flag.starts_with('-') => {
                return Err(format!("unknown option {flag:?}\n\n{USAGE}").into());
            }
            word => positional.push(word),
        }
    }
    let mut positional = positional.into_iter();
    let command = positional.next();
    let argument = positional.next();
    if let Some(extra) = positional.next()
        && command != Some("help")
    {
        return Err(format!("unexpected argument {extra:?}\n\n{USAGE}").into());
    }

    match command {
        None | Some("help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some("ci") => {
            no_argument("ci", argument)?;
            ci::run(&load()?, output, keep_going)
        }
        Some("bench") => bench::run(&load()?, argument),
        Some("fuzz") => {
            let seconds = match argument {
                None => fuzz::DEFAULT_SECONDS,
                Some(s) => s.parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!("fuzz: SECONDS must be a positive integer, not {s:?}")
                })?,
            };
            fuzz::run(&load()?, seconds, output)
        }
        Some("release") => {
            no_argument("release", argument)?;
            release::run(&load()?)
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}").into()),
    }
}

fn no_argument(command: &str, argument: Option<&str>) -> Result<(), Failure> {
    match argument {
        None => Ok(()),
        Some(a) => Err(format!("{command} takes no argument, got {a:?}").into()),
    }
}

/// The workspace xtask belongs to, whatever directory it was started from.
fn load() -> Result<Workspace, Failure> {
    Ok(Workspace::load(&workspace_root())?)
}

fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}
