//! `cargo xtask bench [FILTER]`: run the criterion benches, then print one table of results.
//!
//! `cargo xtask bench gateway` runs only the `otlp gateway` end-to-end benchmark
//! ([`crate::gateway_bench`]); plain `cargo xtask bench` runs the criterion benches and then
//! that one; any other FILTER is criterion's and runs criterion benches only.
//!
//! Criterion writes `<criterion dir>/<group>/<bench>/new/estimates.json` (times in ns) and
//! `new/benchmark.json` (the full id and the throughput, if the bench declared one). The
//! table lists the benchmarks this run measured (criterion's `Benchmarking ID: Analyzing`
//! lines name them, so results left by other runs are not shown): mean time and, where
//! declared, throughput.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::Failure;
use crate::json::{self, Value};
use crate::step::{Output, Runner, Step, read_lossy};
use crate::workspace::Workspace;

/// The workspace member that holds the benches.
const BENCH_PACKAGE: &str = "otlp-benches";

/// The FILTER that selects the gateway benchmark alone.
pub(crate) const GATEWAY: &str = "gateway";

pub(crate) fn run(ws: &Workspace, filter: Option<&str>) -> Result<(), Failure> {
    match filter {
        Some(GATEWAY) => crate::gateway_bench::run(ws),
        None => {
            criterion(ws, None)?;
            println!("\nbench: the otlp gateway end to end (cargo xtask bench {GATEWAY})");
            crate::gateway_bench::run(ws)
        }
        Some(filter) => criterion(ws, Some(filter)),
    }
}

fn criterion(ws: &Workspace, filter: Option<&str>) -> Result<(), Failure> {
    if ws.find(BENCH_PACKAGE).is_none() {
        return Err(format!("no workspace member named {BENCH_PACKAGE}").into());
    }
    let mut args = vec!["bench", "-p", BENCH_PACKAGE];
    if let Some(filter) = filter {
        args.extend(["--", filter]);
    }
    let started = SystemTime::now();
    let mut runner = Runner::new(&ws.root, ws.target_dir.join("xtask"), Output::Echo, 0);
    let finished = runner.run("bench", &Step::cargo(args))?;
    if !finished.success {
        return Err("cargo bench failed".to_owned().into());
    }

    let dir = criterion_dir(ws);
    let mut results = Vec::new();
    collect(&dir, &mut results);
    let measured = measured_ids(&finished.read_log());
    if measured.is_empty() {
        // Unknown output format: fall back to what was written since the run started.
        results.retain(|r| r.written >= started);
    } else {
        results.retain(|r| measured.contains(&r.id));
    }
    results.sort_by(|a, b| a.id.cmp(&b.id));
    println!();
    if results.is_empty() {
        println!(
            "bench: no results written to {} by this run{}",
            dir.display(),
            filter.map_or(String::new(), |f| format!(" (filter {f:?})"))
        );
    } else {
        print!("{}", table(&results));
    }
    Ok(())
}

/// The ids criterion says it analyzed: `Benchmarking protobuf/decode/prost: Analyzing`.
fn measured_ids(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| line.strip_prefix("Benchmarking "))
        .filter_map(|rest| rest.strip_suffix(": Analyzing"))
        .map(str::to_owned)
        .collect()
}

/// Where criterion writes: `$CRITERION_HOME`, else `<target>/criterion`.
fn criterion_dir(ws: &Workspace) -> PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.target_dir.join("criterion"))
}

/// One benchmark's result.
#[derive(Debug, Clone, PartialEq)]
struct BenchResult {
    id: String,
    mean_ns: f64,
    throughput: Option<Throughput>,
    written: SystemTime,
}

/// Units of work per iteration, as the bench declared them.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Throughput {
    Elements(f64),
    /// Reported in binary units (MiB/s), as criterion does.
    Bytes(f64),
    /// Reported in decimal units (MB/s).
    BytesDecimal(f64),
}

fn collect(dir: &Path, out: &mut Vec<BenchResult>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        // `<bench>/new/estimates.json` is this run's result; `base/` and `change/` are
        // criterion's comparison with the run before.
        if path.join("new").join("estimates.json").is_file()
            && let Some(result) = read_result(&path.join("new"))
        {
            out.push(result);
        }
        collect(&path, out);
    }
}

fn read_result(new_dir: &Path) -> Option<BenchResult> {
    let estimates_path = new_dir.join("estimates.json");
    let estimates = json::parse(&read_lossy(&estimates_path)).ok()?;
    let mean_ns = estimates
        .pointer(&["mean", "point_estimate"])
        .and_then(Value::as_f64)?;
    let written = fs::metadata(&estimates_path)
        .and_then(|m| m.modified())
        .ok()?;
    let benchmark = json::parse(&read_lossy(&new_dir.join("benchmark.json"))).ok();
    let id = benchmark
        .as_ref()
        .and_then(|b| b.get("full_id").and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            // Without benchmark.json, name it by its directory under the criterion root.
            new_dir
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let throughput = benchmark
        .as_ref()
        .and_then(|b| b.get("throughput"))
        .and_then(parse_throughput);
    Some(BenchResult {
        id,
        mean_ns,
        throughput,
        written,
    })
}

/// `{"Elements": 1000}`, `{"Bytes": 376000}`, `{"BytesDecimal": n}` or
/// `{"ElementsAndBytes": {"elements": n, "bytes": m}}` (elements win).
fn parse_throughput(value: &Value) -> Option<Throughput> {
    let (kind, amount) = value.as_object()?.first()?;
    match kind.as_str() {
        "Elements" => amount.as_f64().map(Throughput::Elements),
        "Bytes" => amount.as_f64().map(Throughput::Bytes),
        "BytesDecimal" => amount.as_f64().map(Throughput::BytesDecimal),
        "ElementsAndBytes" => amount
            .get("elements")
            .and_then(Value::as_f64)
            .map(Throughput::Elements),
        _ => None,
    }
}

fn table(results: &[BenchResult]) -> String {
    let rows: Vec<[String; 3]> = results
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                format_time(r.mean_ns),
                r.throughput
                    .map_or_else(|| "-".to_owned(), |t| format_rate(t, r.mean_ns)),
            ]
        })
        .collect();
    let header = ["benchmark", "mean", "throughput"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 3]| {
        format!(
            "{:<w0$}  {:>w1$}  {:>w2$}\n",
            cells[0],
            cells[1],
            cells[2],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
    };
    let mut out = line(header);
    out.push_str(&line([
        &"-".repeat(widths[0]),
        &"-".repeat(widths[1]),
        &"-".repeat(widths[2]),
    ]));
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2]]));
    }
    out
}

fn format_time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.2} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.3} s", ns / 1e9)
    }
}

fn format_rate(throughput: Throughput, mean_ns: f64) -> String {
    if mean_ns <= 0.0 {
        return "-".to_owned();
    }
    let per_second = |amount: f64| amount / (mean_ns / 1e9);
    let scaled = |rate: f64, base: f64, units: [&str; 4]| {
        let mut rate = rate;
        let mut unit = 0;
        while rate >= base && unit < units.len() - 1 {
            rate /= base;
            unit += 1;
        }
        format!("{rate:.2} {}", units[unit])
    };
    match throughput {
        Throughput::Elements(n) => scaled(
            per_second(n),
            1000.0,
            ["elem/s", "Kelem/s", "Melem/s", "Gelem/s"],
        ),
        Throughput::Bytes(n) => scaled(per_second(n), 1024.0, ["B/s", "KiB/s", "MiB/s", "GiB/s"]),
        Throughput::BytesDecimal(n) => {
            scaled(per_second(n), 1000.0, ["B/s", "KB/s", "MB/s", "GB/s"])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_output() {
        let root = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        let new_dir = root.join("decode").join("traces_1000").join("new");
        fs::create_dir_all(&new_dir).unwrap();
        fs::write(
            new_dir.join("estimates.json"),
            r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":3.0},"point_estimate":1754385.96,"standard_error":0.1},"median":{"point_estimate":1.0}}"#,
        )
        .unwrap();
        fs::write(
            new_dir.join("benchmark.json"),
            r#"{"group_id":"decode","function_id":"traces_1000","value_str":null,"throughput":{"Elements":1000},"full_id":"decode/traces_1000","directory_name":"decode/traces_1000","title":"decode/traces_1000"}"#,
        )
        .unwrap();
        // criterion also keeps the previous run and reports; only new/ counts.
        fs::create_dir_all(root.join("decode").join("report")).unwrap();

        let mut results = Vec::new();
        collect(&root, &mut results);
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].id, "decode/traces_1000");
        assert_eq!(results[0].throughput, Some(Throughput::Elements(1000.0)));
        let table = table(&results);
        assert!(table.contains("decode/traces_1000"), "{table}");
        assert!(table.contains("1.75 ms"), "{table}");
        assert!(table.contains("570.00 Kelem/s"), "{table}");
    }

    #[test]
    fn lists_the_benchmarks_a_run_measured() {
        let log = "\
Benchmarking json/decode
Benchmarking json/decode: Warming up for 3.0000 s
Benchmarking json/decode: Analyzing
json/decode             time:   [1.0 ms 1.1 ms 1.2 ms]
Benchmarking batch/join/100x10-spans: Analyzing
";
        assert_eq!(
            measured_ids(log),
            ["json/decode", "batch/join/100x10-spans"]
        );
    }

    #[test]
    fn formats_rates_and_times() {
        assert_eq!(format_time(12.345), "12.35 ns");
        assert_eq!(format_time(2_500_000_000.0), "2.500 s");
        assert_eq!(
            format_rate(Throughput::Bytes(1024.0 * 1024.0), 1e9),
            "1.00 MiB/s"
        );
        assert_eq!(format_rate(Throughput::BytesDecimal(2e9), 1e9), "2.00 GB/s");
        let both = json::parse(r#"{"ElementsAndBytes":{"elements":5,"bytes":10}}"#).unwrap();
        assert_eq!(parse_throughput(&both), Some(Throughput::Elements(5.0)));
        assert_eq!(parse_throughput(&Value::Null), None);
    }
}
