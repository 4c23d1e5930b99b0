//! `cargo xtask ci`: everything CI checks, in the order that fails fastest.
//!
//! Formatting, clippy, the tests of every workspace member (each crate on its own, so a
//! crate's tests cannot pass only thanks to features another member turns on), the doc
//! tests of the workspace, and the docs with warnings denied. Stops at the first failing
//! step (`--keep-going` runs the rest and fails at the end). The last two lines are the
//! step count and the test count:
//!
//! ```text
//! ci: 12 passed, 0 failed
//! tests: 214 passed, 0 failed, 3 skipped
//! ```
//!
//! The test line is last on purpose: CI reads the closing `N passed, N failed` line as the
//! number of tests run. Doc tests are counted once, from the per-crate runs.

use crate::Failure;
use crate::step::{Finished, Output, Runner, Step};
use crate::workspace::Workspace;

/// Counts summed over cargo test's `test result:` lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TestTotals {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
    pub(crate) ignored: u64,
}

impl TestTotals {
    /// Add every `test result: ok. 3 passed; 0 failed; 1 ignored; ...` line in `log`.
    pub(crate) fn add_log(&mut self, log: &str) {
        for line in log.lines() {
            let Some(rest) = line.trim_start().strip_prefix("test result: ") else {
                continue;
            };
            // "ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"
            let counts = rest.split_once(". ").map_or(rest, |(_, counts)| counts);
            for part in counts.split(';') {
                let mut words = part.split_whitespace();
                let (Some(number), Some(what)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(number) = number.parse::<u64>() else {
                    continue;
                };
                match what {
                    "passed" => self.passed += number,
                    "failed" => self.failed += number,
                    "ignored" => self.ignored += number,
                    _ => {}
                }
            }
        }
    }
}

/// Run the CI steps. Prints the closing lines whatever happens; `Err` when a step failed.
pub(crate) fn run(ws: &Workspace, output: Output, keep_going: bool) -> Result<(), Failure> {
    let mut steps: Vec<(String, Step, bool)> = vec![
        (
            "fmt".into(),
            Step::cargo(["fmt", "--all", "--", "--check"]),
            false,
        ),
        (
            "clippy".into(),
            Step::cargo([
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]),
            false,
        ),
    ];
    for package in &ws.packages {
        steps.push((
            format!("test-{}", package.name),
            Step::cargo(["test", "-p", &package.name, "--all-features"]),
            true,
        ));
    }
    // The circuit breaker's lock-free state machine, model-checked with loom. Its own
    // target dir: `--cfg loom` changes every dependency's build.
    let loom_target = ws.target_dir.join("loom");
    steps.push((
        "loom".into(),
        Step::cargo([
            "test",
            "-p",
            "otlp-resilience",
            "--test",
            "breaker_loom",
            "--release",
        ])
        .env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", &loom_target.to_string_lossy()),
        true,
    ));
    steps.push((
        "doctest".into(),
        Step::cargo(["test", "--workspace", "--doc", "--all-features"]),
        false,
    ));
    steps.push((
        "doc".into(),
        Step::cargo(["doc", "--workspace", "--no-deps", "--all-features"]).env(
            "RUSTDOCFLAGS",
            "-D warnings -D rustdoc::broken_intra_doc_links",
        ),
        false,
    ));

    let mut runner = Runner::new(
        &ws.root,
        ws.target_dir.join("xtask").join("ci"),
        output,
        steps.len(),
    );
    let mut passed = 0;
    let mut failed = 0;
    let mut tests = TestTotals::default();
    let mut failures = Vec::new();
    for (name, step, counts_tests) in &steps {
        let finished: Finished = match runner.run(name, step) {
            Ok(finished) => finished,
            Err(e) => {
                // Could not even start the command: nothing later will start either.
                failed += 1;
                failures.push(e);
                break;
            }
        };
        if *counts_tests {
            tests.add_log(&finished.read_log());
        }
        if finished.success {
            passed += 1;
        } else {
            failed += 1;
            failures.push(format!("step `{name}` failed: {}", step.display()));
            if !keep_going {
                break;
            }
        }
    }

    println!();
    for reason in &failures {
        println!("error: {reason}");
    }
    let not_run = steps.len() - passed - failed;
    if not_run > 0 {
        println!(
            "ci: stopped at the first failure; {not_run} step(s) not run (--keep-going runs them)"
        );
    }
    println!("ci: {passed} passed, {failed} failed");
    println!(
        "tests: {} passed, {} failed, {} skipped",
        tests.passed, tests.failed, tests.ignored
    );
    // The reason is already printed: the test line must stay the last line.
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::Reported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_cargo_test_result_lines() {
        let log = "\
running 3 tests
test a ... ok
test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

     Running tests/it.rs
test result: FAILED. 5 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.20s
   Doc-tests otlp_core
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
not a test result: 9 passed
";
        let mut totals = TestTotals::default();
        totals.add_log(log);
        assert_eq!(
            totals,
            TestTotals {
                passed: 8,
                failed: 2,
                ignored: 1
            }
        );
    }
}
