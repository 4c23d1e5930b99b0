//! Interop: OTLP/JSON written by the official Python OpenTelemetry SDK decodes with our
//! codec to exactly what its protobuf twin decodes to.
//!
//! `interop/python/emit.py` sends one fixed set of traces, metrics and logs through the
//! Python SDK twice: once with `opentelemetry-exporter-otlp-proto-http` (protobuf) and
//! once with `opentelemetry-exporter-otlp-json-http` (OTLP/JSON), each from its own venv
//! made by `interop/setup-venv.sh` (the two exporters' pins conflict). A capture server
//! inside the script stores every request body. For each signal this test then checks:
//!
//! 1. the number of requests, and the number of items in each protobuf request (spans,
//!    metric data points, log records), against what `emit.py` sends;
//! 2. that the protobuf side really carries what the fixture is meant to cover (every
//!    attribute value kind, span kinds, ERROR status, events, links, dropped counts,
//!    every metric kind, both temporalities, exemplars, severities, body kinds, trace
//!    context), so the comparison below cannot pass on thin data;
//! 3. `codec::json::from_slice` of each JSON body == `codec::protobuf::decode` of its
//!    twin (prost `PartialEq`), reporting the first differing field;
//! 4. `json::to_vec` of the decoded JSON re-decodes to the same message.
//!
//! Nothing is normalised: both runs are deterministic. Ids come from a fixed
//! `IdGenerator`, span/event/log timestamps are explicit, and `emit.py` replaces the
//! metrics SDK's `time_ns` with a clock it sets by hand, so data-point timestamps are
//! fixed too (checked below).
//!
//! Run: `cargo test -p otlp-core --test python_sdk_json`. Needs `python3` (3.10+) with
//! `venv`, and PyPI on the first run (about 25 s on this machine kind to install both
//! venvs; later runs reuse them from `target/interop/` and take about 2 s). The tests
//! skip, with a loud message, only when `python3` is not installed at all; any install
//! or emit failure fails them with the tool's output. The emitted bodies stay in
//! `target/tmp/python-sdk-json/{proto,json}/` for inspection.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use otlp_core::codec::{json, protobuf};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlp_core::proto::metrics::v1::{Metric, metric, number_data_point};

/// Installing a venv from PyPI; generous, the first run on a slow index.
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);
/// One `emit.py` run (it has its own 60 s watchdog).
const EMIT_TIMEOUT: Duration = Duration::from_secs(90);

/// `emit.py`'s T0: 2023-11-14T22:13:20Z in Unix nanoseconds.
const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;
/// 2^53 + 1: an integer a JSON number parsed as f64 would corrupt.
const BIG_INT: i64 = (1 << 53) + 1;

/// Spans per traces request: 5 in scope `interop.main`, 1 in `interop.secondary`.
const SPANS_PER_REQUEST: &[usize] = &[6];
/// Data points per metrics request. First collection: counter 2 (two attribute sets),
/// up-down counter 1, delta histogram 2, gauge 2, observable gauge 2. Second: the
/// cumulative counter still 2, up-down 1, delta histogram only the set recorded again 1,
/// gauges 2 + 2.
const POINTS_PER_REQUEST: &[usize] = &[9, 8];
/// Log records per logs request: six severities plus one without a timestamp.
const LOG_RECORDS_PER_REQUEST: &[usize] = &[7];

/// The request bodies of one signal from both runs, in arrival order.
#[derive(Debug)]
struct Twins {
    protobuf: Vec<Vec<u8>>,
    json: Vec<Vec<u8>>,
}

#[derive(Debug)]
struct Emitted {
    dir: PathBuf,
    traces: Twins,
    metrics: Twins,
    logs: Twins,
}

#[test]
fn python_sdk_traces_json_matches_protobuf() {
    let Some(emitted) = emitted() else { return };
    let requests = check_twins(
        emitted,
        &emitted.traces,
        "traces",
        SPANS_PER_REQUEST,
        span_count,
    );
    check_trace_fixture(&requests[0]);
}

#[test]
fn python_sdk_metrics_json_matches_protobuf() {
    let Some(emitted) = emitted() else { return };
    let requests = check_twins(
        emitted,
        &emitted.metrics,
        "metrics",
        POINTS_PER_REQUEST,
        point_count,
    );
    check_metrics_fixture(&requests);
}

#[test]
fn python_sdk_logs_json_matches_protobuf() {
    let Some(emitted) = emitted() else { return };
    let requests = check_twins(
        emitted,
        &emitted.logs,
        "logs",
        LOG_RECORDS_PER_REQUEST,
        log_record_count,
    );
    check_logs_fixture(&requests[0]);
}

/// Decode both twins of every request, check the request and item counts, compare, and
/// round-trip the JSON side through our encoder. Returns the protobuf-decoded requests
/// for the fixture checks.
fn check_twins<T>(
    emitted: &Emitted,
    twins: &Twins,
    signal: &str,
    items_per_request: &[usize],
    count_items: fn(&T) -> usize,
) -> Vec<T>
where
    T: otlp_core::codec::Message + PartialEq + Debug,
{
    let dir = emitted.dir.display();
    let requests = items_per_request.len();
    assert_eq!(
        twins.protobuf.len(),
        requests,
        "{signal}: protobuf requests in {dir}/proto"
    );
    assert_eq!(
        twins.json.len(),
        requests,
        "{signal}: JSON requests in {dir}/json"
    );

    let mut decoded = Vec::new();
    for (i, (pb, js)) in twins.protobuf.iter().zip(&twins.json).enumerate() {
        let n = i + 1;
        let from_protobuf: T = protobuf::decode(pb)
            .unwrap_or_else(|e| panic!("{signal}.{n}.pb from the Python protobuf exporter: {e}"));
        assert_eq!(
            count_items(&from_protobuf),
            items_per_request[i],
            "{signal}.{n}.pb: items emit.py sends in this request"
        );
        let from_json: T = json::from_slice(js).unwrap_or_else(|e| {
            panic!("{signal}.{n}.json from the Python JSON exporter does not decode: {e}\n(in {dir}/json)")
        });
        assert_eq!(
            count_items(&from_json),
            items_per_request[i],
            "{signal}.{n}.json: items emit.py sends in this request"
        );
        assert_same(
            &format!("{signal}.{n}.json vs {signal}.{n}.pb"),
            &from_protobuf,
            &from_json,
        );

        let ours = json::to_vec(&from_json);
        let again: T = json::from_slice(&ours).unwrap_or_else(|e| {
            panic!(
                "{signal}.{n}: our json::to_vec output does not decode: {e}\n{}",
                String::from_utf8_lossy(&ours)
            )
        });
        assert_same(
            &format!("{signal}.{n}: json::to_vec round trip"),
            &from_json,
            &again,
        );
        decoded.push(from_protobuf);
    }
    decoded
}

// --- the fixture really covers what it claims ---------------------------------------

fn check_trace_fixture(request: &ExportTraceServiceRequest) {
    let resource_spans = &request.resource_spans;
    assert_eq!(resource_spans.len(), 1);
    let resource = resource_spans[0].resource.as_ref().expect("resource");
    assert_eq!(
        string_attr(&resource.attributes, "service.name"),
        Some("interop-emitter")
    );
    assert_eq!(
        resource_spans[0].schema_url,
        "https://opentelemetry.io/schemas/1.21.0"
    );
    let scopes = &resource_spans[0].scope_spans;
    let scope_names: Vec<&str> = scopes
        .iter()
        .map(|s| s.scope.as_ref().map_or("", |s| s.name.as_str()))
        .collect();
    assert_eq!(scope_names, ["interop.main", "interop.secondary"]);

    let spans: Vec<_> = scopes.iter().flat_map(|s| &s.spans).collect();
    let kinds: BTreeSet<i32> = spans.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, BTreeSet::from([1, 2, 3, 4, 5]), "every span kind");
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("span {name:?}"))
    };

    let root = by_name("GET /orders/{id}");
    assert_eq!(root.trace_id, hex("5b8efff798038103d269b633813fc60c"));
    assert_eq!(root.span_id, hex("eee19b7ec3c1b174"));
    assert!(root.parent_span_id.is_empty());
    assert_eq!(
        (root.start_time_unix_nano, root.end_time_unix_nano),
        (T0, T0 + 250 * MS)
    );
    let status = root.status.as_ref().expect("root status");
    assert_eq!(
        (status.code, status.message.as_str()),
        (2, "upstream timed out: 504 \u{2717}")
    );
    assert_eq!(root.events.len(), 2);
    assert_eq!(root.events[0].time_unix_nano, T0 + 10 * MS);
    assert_eq!(
        value_kinds(&root.attributes),
        BTreeSet::from([
            "array", "bool", "bytes", "double", "int", "kvlist", "string"
        ]),
        "every AnyValue kind among the root span's attributes"
    );
    assert_eq!(int_attr(&root.attributes, "int.big"), Some(BIG_INT));
    assert_eq!(int_attr(&root.attributes, "int.min"), Some(i64::MIN));
    assert_eq!(int_attr(&root.attributes, "int.max"), Some(i64::MAX));
    assert_eq!(
        attr(&root.attributes, "bytes"),
        Some(&any_value::Value::BytesValue(vec![0, 1, 0xfe, 0xff]))
    );
    assert_eq!(
        attr(&root.attributes, "array.empty"),
        Some(&any_value::Value::ArrayValue(Default::default())),
        "an empty array stays an (empty) array"
    );
    assert!(
        string_attr(&root.attributes, "string.unicode").is_some_and(|s| s.contains('\u{1F600}'))
    );

    let db = by_name("SELECT orders");
    assert_eq!(
        db.span_id,
        hex("00f067aa0ba902b7"),
        "leading zero byte kept"
    );
    assert_eq!(db.parent_span_id, root.span_id);
    assert_eq!((db.links.len(), db.dropped_links_count), (2, 1));
    assert_eq!(db.links[0].dropped_attributes_count, 1);
    assert_eq!(db.links[0].flags, 0x300, "link to a remote context");

    let consumer = by_name("consume order.created");
    assert_eq!(consumer.trace_id, hex("00f067aa0ba902b700000000000000ab"));
    assert_eq!(consumer.parent_span_id, hex("00000000000000f1"));
    assert_eq!(consumer.trace_state, "vendor=abc,other=x:y");
    assert_eq!(consumer.flags, 0x300, "remote parent");
    assert_eq!(
        by_name("background job").trace_id,
        hex("ffffffffffffffffffffffffffffffff")
    );
}

fn check_metrics_fixture(requests: &[ExportMetricsServiceRequest]) {
    // Every data point is stamped with the collection time of emit.py's hand-set clock:
    // T0 + 2 s for the first request, T0 + 3 s for the second.
    for (request, collected_at) in requests.iter().zip([T0 + 2_000 * MS, T0 + 3_000 * MS]) {
        let metrics = all_metrics(request);
        let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "http.server.requests",
                "queue.depth",
                "http.server.duration",
                "room.temperature",
                "process.memory.usage"
            ]
        );
        for m in &metrics {
            for t in point_times(m) {
                assert_eq!(
                    t, collected_at,
                    "{}: data point time is emit.py's fixed clock",
                    m.name
                );
            }
        }
    }

    let first = all_metrics(&requests[0]);
    match &first[0].data {
        Some(metric::Data::Sum(sum)) => {
            assert!(sum.is_monotonic);
            assert_eq!(sum.aggregation_temporality, 2, "cumulative");
            assert_eq!(sum.data_points[0].start_time_unix_nano, T0 + 1_100 * MS);
            assert_eq!(
                sum.data_points[0].value,
                Some(number_data_point::Value::AsInt(3))
            );
        }
        other => panic!("http.server.requests is a sum, got {other:?}"),
    }
    match &first[1].data {
        Some(metric::Data::Sum(sum)) => assert!(!sum.is_monotonic, "up-down counter"),
        other => panic!("queue.depth is a sum, got {other:?}"),
    }
    match &first[2].data {
        Some(metric::Data::Histogram(h)) => {
            assert_eq!(h.aggregation_temporality, 1, "delta");
            let p = &h.data_points[0];
            assert_eq!(
                (p.count, p.sum, p.min, p.max),
                (3, Some(260.5), Some(3.0), Some(250.0))
            );
            assert_eq!(p.bucket_counts, [0, 1, 1, 0, 0, 0, 1]);
            assert_eq!(p.explicit_bounds, [0.0, 5.0, 10.0, 25.0, 50.0, 100.0]);
            assert_eq!(p.exemplars.len(), 1);
            assert_eq!(
                p.exemplars[0].trace_id,
                hex("5b8efff798038103d269b633813fc60c")
            );
            assert_eq!(p.exemplars[0].span_id, hex("eee19b7ec3c1b174"));
        }
        other => panic!("http.server.duration is a histogram, got {other:?}"),
    }
    match &first[3].data {
        Some(metric::Data::Gauge(g)) => {
            assert_eq!(
                g.data_points[1].value,
                Some(number_data_point::Value::AsDouble(-3.25))
            );
        }
        other => panic!("room.temperature is a gauge, got {other:?}"),
    }
    match &first[4].data {
        Some(metric::Data::Gauge(g)) => {
            let values: Vec<_> = g.data_points.iter().map(|p| p.value).collect();
            assert_eq!(
                values,
                [
                    Some(number_data_point::Value::AsInt(BIG_INT)),
                    Some(number_data_point::Value::AsInt(-(1 << 62)))
                ]
            );
        }
        other => panic!("process.memory.usage is a gauge, got {other:?}"),
    }
}

fn check_logs_fixture(request: &ExportLogsServiceRequest) {
    let records: Vec<_> = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .collect();
    let severities: Vec<i32> = records.iter().map(|r| r.severity_number).collect();
    assert_eq!(severities, [1, 5, 9, 14, 17, 21, 0]);
    let bodies: Vec<&str> = records
        .iter()
        .map(|r| r.body.as_ref().map_or("none", |b| kind(b)))
        .collect();
    assert_eq!(
        bodies,
        [
            "string", "kvlist", "string", "array", "bytes", "int", "string"
        ]
    );
    assert_eq!(records[0].time_unix_nano, T0 + 5_000 * MS);
    assert_eq!(records[0].observed_time_unix_nano, T0 + 5_000 * MS + 500);
    assert_eq!(records[6].time_unix_nano, 0, "record without a timestamp");

    let in_span = records[2];
    assert_eq!(in_span.trace_id, hex("5b8efff798038103d269b633813fc60c"));
    assert_eq!(in_span.span_id, hex("eee19b7ec3c1b174"));
    assert_eq!(in_span.flags, 1, "sampled");
    assert_eq!(in_span.event_name, "order.created");
    assert_eq!(int_attr(&in_span.attributes, "order.id"), Some(BIG_INT));
    assert_eq!(
        (records[3].flags, records[3].trace_id.len()),
        (0, 16),
        "unsampled context"
    );
    assert_eq!(
        attr(&records[4].attributes, "limit.upper"),
        Some(&any_value::Value::DoubleValue(f64::INFINITY))
    );
    assert_eq!(
        attr(&records[4].attributes, "limit.lower"),
        Some(&any_value::Value::DoubleValue(f64::NEG_INFINITY))
    );
}

// --- counting and looking inside ----------------------------------------------------

fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

fn log_record_count(request: &ExportLogsServiceRequest) -> usize {
    request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum()
}

fn point_count(request: &ExportMetricsServiceRequest) -> usize {
    all_metrics(request)
        .iter()
        .map(|m| point_times(m).len())
        .sum()
}

fn all_metrics(request: &ExportMetricsServiceRequest) -> Vec<&Metric> {
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .collect()
}

/// `time_unix_nano` of every data point of `metric`, whatever its kind.
fn point_times(metric: &Metric) -> Vec<u64> {
    match &metric.data {
        Some(metric::Data::Gauge(g)) => g.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Some(metric::Data::Sum(s)) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Some(metric::Data::Histogram(h)) => {
            h.data_points.iter().map(|p| p.time_unix_nano).collect()
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            h.data_points.iter().map(|p| p.time_unix_nano).collect()
        }
        Some(metric::Data::Summary(s)) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
        None => Vec::new(),
    }
}

fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()
}

fn string_attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attributes, key)? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn int_attr(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attributes, key)? {
        any_value::Value::IntValue(i) => Some(*i),
        _ => None,
    }
}

fn kind(value: &AnyValue) -> &'static str {
    match &value.value {
        Some(any_value::Value::StringValue(_)) => "string",
        Some(any_value::Value::BoolValue(_)) => "bool",
        Some(any_value::Value::IntValue(_)) => "int",
        Some(any_value::Value::DoubleValue(_)) => "double",
        Some(any_value::Value::ArrayValue(_)) => "array",
        Some(any_value::Value::KvlistValue(_)) => "kvlist",
        Some(any_value::Value::BytesValue(_)) => "bytes",
        Some(_) => "other",
        None => "empty",
    }
}

/// The kinds of every value in `attributes`, nested ones included.
fn value_kinds(attributes: &[KeyValue]) -> BTreeSet<&'static str> {
    fn walk(value: &AnyValue, kinds: &mut BTreeSet<&'static str>) {
        kinds.insert(kind(value));
        match &value.value {
            Some(any_value::Value::ArrayValue(a)) => a.values.iter().for_each(|v| walk(v, kinds)),
            Some(any_value::Value::KvlistValue(l)) => {
                l.values
                    .iter()
                    .filter_map(|kv| kv.value.as_ref())
                    .for_each(|v| walk(v, kinds));
            }
            _ => {}
        }
    }
    let mut kinds = BTreeSet::new();
    attributes
        .iter()
        .filter_map(|kv| kv.value.as_ref())
        .for_each(|v| walk(v, &mut kinds));
    kinds
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// `assert_eq!` for big messages: names the first differing line of the pretty `Debug`
/// output together with the fields enclosing it, instead of dumping both messages.
fn assert_same<T: PartialEq + Debug>(what: &str, expected: &T, got: &T) {
    if expected == got {
        return;
    }
    let expected = format!("{expected:#?}");
    let got = format!("{got:#?}");
    let (e_lines, g_lines): (Vec<&str>, Vec<&str>) =
        (expected.lines().collect(), got.lines().collect());
    let at = e_lines
        .iter()
        .zip(&g_lines)
        .position(|(e, g)| e != g)
        .unwrap_or(e_lines.len().min(g_lines.len()));
    // The enclosing fields: walking up, each line indented less than the last one kept,
    // plus the `name:` or `key:` of each enclosing struct so the span or attribute is named.
    let indent_of = |line: &str| line.len() - line.trim_start().len();
    let mut path = Vec::new();
    let mut level = e_lines.get(at).map_or(usize::MAX, |l| indent_of(l));
    let mut named = false;
    for line in e_lines[..at].iter().rev() {
        let (this, text) = (indent_of(line), line.trim());
        if this < level {
            if text != "Some(" {
                path.push(text);
            }
            (level, named) = (this, false);
        } else if this == level
            && !named
            && (text.starts_with("name: ") || text.starts_with("key: "))
        {
            path.push(text);
            named = true;
        }
    }
    path.reverse();
    panic!(
        "{what}: messages differ\n  within: {}\n  expected (protobuf twin): {}\n  got (OTLP/JSON):          {}\n\
         ({} vs {} lines of Debug output)",
        path.join(" > "),
        e_lines.get(at).map_or("<end>", |l| l.trim()),
        g_lines.get(at).map_or("<end>", |l| l.trim()),
        e_lines.len(),
        g_lines.len(),
    );
}

// --- running the Python peers -------------------------------------------------------

/// Run the setup and both emitters once per test binary; `None` when python3 is missing.
fn emitted() -> Option<&'static Emitted> {
    static EMITTED: OnceLock<Result<Option<Emitted>, String>> = OnceLock::new();
    match EMITTED.get_or_init(emit_all) {
        Ok(emitted) => emitted.as_ref(),
        Err(e) => panic!("{e}"),
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn emit_all() -> Result<Option<Emitted>, String> {
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
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !!! SKIPPED: python3 is not installed, so the Python SDK OTLP/JSON     !!!\n\
                 !!! interop tests did not run. Install python3 (3.10+, with venv).     !!!\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            return Ok(None);
        }
        _ => {}
    }

    // target/tmp -> target: the venvs go to target/interop, shared with other interop tests.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let interop_dir = tmp.parent().unwrap_or(tmp).join("interop");
    let dir = tmp.join("python-sdk-json");
    fs::create_dir_all(tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    // Another `cargo test` process may use the same directory: take turns.
    let lock =
        File::create(tmp.join("python-sdk-json.lock")).map_err(|e| format!("lock file: {e}"))?;
    lock.lock()
        .map_err(|e| format!("lock {}: {e}", tmp.display()))?;

    let mut runs = Vec::new();
    for kind in ["proto", "json"] {
        let venv = setup_venv(kind, &interop_dir)?;
        let out = dir.join(kind);
        if out.exists() {
            fs::remove_dir_all(&out).map_err(|e| format!("clean {}: {e}", out.display()))?;
        }
        let script = repo_root().join("interop/python/emit.py");
        let mut cmd = Command::new(venv.join("bin/python"));
        cmd.arg(&script)
            .arg("--encoding")
            .arg(kind)
            .arg("--out")
            .arg(&out);
        let output = run_bounded(cmd, EMIT_TIMEOUT)?;
        if !output.status.success() {
            return Err(format!(
                "emit.py --encoding {kind} failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        runs.push(out);
    }
    let twins = |signal: &str| -> Result<Twins, String> {
        Ok(Twins {
            protobuf: read_requests(&runs[0], signal, "pb")?,
            json: read_requests(&runs[1], signal, "json")?,
        })
    };
    Ok(Some(Emitted {
        traces: twins("traces")?,
        metrics: twins("metrics")?,
        logs: twins("logs")?,
        dir,
    }))
}

/// `interop/setup-venv.sh KIND`: the venv path, installing it first if needed.
fn setup_venv(kind: &str, interop_dir: &Path) -> Result<PathBuf, String> {
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
    // Progress lines ("installing ...") are worth seeing in `cargo test -- --nocapture`.
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok(PathBuf::from(path))
}

/// `DIR/SIGNAL.1.EXT`, `DIR/SIGNAL.2.EXT`, ... until one is missing.
fn read_requests(dir: &Path, signal: &str, ext: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut bodies = Vec::new();
    loop {
        let path = dir.join(format!("{signal}.{}.{ext}", bodies.len() + 1));
        match fs::read(&path) {
            Ok(body) => bodies.push(body),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(bodies),
            Err(e) => return Err(format!("read {}: {e}", path.display())),
        }
    }
}

/// Run `cmd` to completion, killing it and its children after `timeout`; stdout and
/// stderr captured.
#[expect(
    clippy::disallowed_types,
    reason = "a deadline on a child process is wall-clock time; there is no runtime to pause"
)]
fn run_bounded(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        // Its own process group, so a timeout also ends pip or python started by a script.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {shown}: {e}"))?;
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
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
                // The whole group: killing only the shell would leave pip holding our pipes.
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
