//! `cargo xtask fuzz [SECONDS]`: run every cargo-fuzz target for SECONDS (default 30).
//!
//! Each target reads the checked-in seeds in `fuzz/seeds/<target>/` and grows its own
//! corpus in `fuzz/corpus/<target>/` (gitignored); libFuzzer writes new inputs only to
//! the first corpus directory, so the seeds stay as committed. A crash stops the run and
//! leaves the input in `fuzz/artifacts/<target>/`.

use std::fs;
use std::path::Path;

use crate::Failure;
use crate::step::{Output, Runner, Step};
use crate::workspace::Workspace;

/// The toolchain cargo-fuzz needs (sanitizer flags are nightly-only).
const TOOLCHAIN: &str = "nightly";
/// Seconds per target when none are given.
pub(crate) const DEFAULT_SECONDS: u64 = 30;
/// libFuzzer's per-process memory cap: well under the 24 GiB machine, above any sane input.
const RSS_LIMIT_MB: u64 = 2048;

pub(crate) fn run(ws: &Workspace, seconds: u64, output: Output) -> Result<(), Failure> {
    let fuzz_dir = ws.root.join("fuzz");
    let targets = targets(&fuzz_dir)?;
    // Install check, one build, one run per target (plus an install when missing).
    let planned = targets.len() + 2;
    let mut runner = Runner::new(
        &ws.root,
        ws.target_dir.join("xtask").join("fuzz"),
        output,
        planned,
    );

    let version = Step::cargo_toolchain(TOOLCHAIN, ["fuzz", "--version"]);
    if !runner.run("fuzz-version", &version)?.success {
        println!("cargo-fuzz is not installed for {TOOLCHAIN}; installing it from crates.io");
        runner.plan_more(1);
        let install = Step::cargo(["install", "cargo-fuzz", "--locked"]);
        if !runner.run("install-cargo-fuzz", &install)?.success {
            return Err(
                "could not install cargo-fuzz (`cargo install cargo-fuzz --locked`)"
                    .to_owned()
                    .into(),
            );
        }
    }

    let build = Step::cargo_toolchain(TOOLCHAIN, ["fuzz", "build", "--fuzz-dir", "fuzz"]);
    if !runner.run("fuzz-build", &build)?.success {
        return Err("the fuzz targets do not build".to_owned().into());
    }

    for target in &targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        fs::create_dir_all(&corpus)
            .map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
        let mut args = vec![
            "fuzz".to_owned(),
            "run".to_owned(),
            "--fuzz-dir".to_owned(),
            "fuzz".to_owned(),
            target.clone(),
            format!("fuzz/corpus/{target}"),
        ];
        if fuzz_dir.join("seeds").join(target).is_dir() {
            args.push(format!("fuzz/seeds/{target}"));
        }
        args.extend([
            "--".to_owned(),
            format!("-max_total_time={seconds}"),
            format!("-rss_limit_mb={RSS_LIMIT_MB}"),
        ]);
        let finished = runner.run(
            &format!("fuzz-{target}"),
            &Step::cargo_toolchain(TOOLCHAIN, args),
        )?;
        if !finished.success {
            return Err(format!(
                "fuzz target {target} failed; the input is in fuzz/artifacts/{target}/ \
                 (reproduce: cargo +{TOOLCHAIN} fuzz run {target} fuzz/artifacts/{target}/<file>)"
            )
            .into());
        }
        if let Some(summary) = summary(&finished.read_log()) {
            println!("    {target}: {summary}");
        }
    }
    println!(
        "fuzz: {} targets ran {seconds}s each without a failure",
        targets.len()
    );
    Ok(())
}

/// Target names: the files in `fuzz/fuzz_targets/`, sorted.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>, String> {
    let dir = fuzz_dir.join("fuzz_targets");
    let entries = fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(format!("no fuzz targets in {}", dir.display()));
    }
    Ok(names)
}

/// libFuzzer's closing line, e.g. `Done 1234567 runs in 31 second(s)`, with the final
/// coverage line before it.
fn summary(log: &str) -> Option<String> {
    let done = log.lines().rev().find(|l| l.starts_with("Done "))?;
    let coverage = log
        .lines()
        .rev()
        .find(|l| l.starts_with('#') && l.contains(" cov: "))
        .and_then(|l| l.split_once(" cov: "))
        .map(|(_, rest)| format!("cov: {}", rest.trim()));
    Some(match coverage {
        Some(coverage) => format!("{done}; {coverage}"),
        None => done.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_libfuzzer_output() {
        let log = "\
INFO: Seed: 1
#2\tINITED cov: 10 ft: 10 corp: 1/1b exec/s: 0 rss: 30Mb
#524288\tpulse  cov: 120 ft: 300 corp: 40/2Kb lim: 4096 exec/s: 17476 rss: 60Mb
#600000\tDONE   cov: 121 ft: 301 corp: 41/2Kb lim: 4096 exec/s: 19354 rss: 61Mb
Done 600000 runs in 31 second(s)
";
        assert_eq!(
            summary(log).as_deref(),
            Some(
                "Done 600000 runs in 31 second(s); cov: 121 ft: 301 corp: 41/2Kb lim: 4096 exec/s: 19354 rss: 61Mb"
            )
        );
        assert_eq!(summary("nothing"), None);
    }
}
