//! The admin listener over real sockets: every endpoint's status, content type and body,
//! the Prometheus text checked line by line, readiness following the phase, the status
//! page's server-side numbers, 404/405, and slow clients.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use otlp_core::{GrpcCode, Signal};
use otlp_degradation::{Controller, DegradationLevel};
use otlp_gateway::admin::{
    AdminOptions, AdminServer, AdminState, DegradationSource, GrpcReceiverSource,
    HttpReceiverSource, RunningAdmin,
};
use otlp_gateway::metrics::{
    BreakerView, DropReason, ExporterMetrics, GatewayMetrics, Phase, QueueMetrics, RefuseReason,
    RouteView,
};
use otlp_transport_grpc::receiver::GrpcReceiverMetrics;
use otlp_transport_http::receiver::{Outcome, ReceiverMetrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const BOUND: Duration = Duration::from_secs(10);
/// A name that needs escaping in every format.
const ODD_EXPORTER: &str = "eu\"west\\<b>";

struct Fixture {
    metrics: Arc<GatewayMetrics>,
    state: AdminState,
}

/// A registry as a gateway with three routes would have it after some traffic.
fn fixture() -> Fixture {
    let metrics = GatewayMetrics::new();
    let traces = metrics.signal(Signal::Traces);
    traces.requests.fetch_add(7, Relaxed);
    traces.received_items.fetch_add(1234, Relaxed);
    traces.received_bytes.fetch_add(56_789, Relaxed);
    traces.accepted_items.fetch_add(1200, Relaxed);
    traces.refused(RefuseReason::QueueFull, 30);
    traces.refused(RefuseReason::QueueFull, 0);
    traces.refused(RefuseReason::RateLimited, 4);
    traces.dropped(DropReason::Sampled, 17);
    let logs = metrics.signal(Signal::Logs);
    logs.requests.fetch_add(2, Relaxed);
    logs.received_items.fetch_add(42, Relaxed);
    logs.accepted_items.fetch_add(42, Relaxed);
    logs.dropped(DropReason::Degraded, 5);

    let primary_queue = Arc::new(QueueMetrics::new("primary", "disk", 1 << 20));
    primary_queue.depth.store(5, Relaxed);
    primary_queue.bytes.store(2048, Relaxed);
    primary_queue.pushed.store(100, Relaxed);
    primary_queue.acked.store(95, Relaxed);
    primary_queue.replayed.store(3, Relaxed);
    primary_queue.written_bytes.store(999, Relaxed);
    primary_queue.fsyncs.store(12, Relaxed);
    let upstream = Arc::new(ExporterMetrics::new(
        "upstream-grpc",
        "grpc",
        "grpc://127.0.0.1:1",
    ));
    upstream.exported_items[Signal::Traces.index()].store(1100, Relaxed);
    upstream.exported_items[Signal::Logs.index()].store(40, Relaxed);
    upstream.exported_requests.store(33, Relaxed);
    upstream.exported_bytes.store(4444, Relaxed);
    upstream.retryable_failures.store(6, Relaxed);
    upstream.permanent_failures.store(1, Relaxed);
    upstream.retries.store(9, Relaxed);
    upstream.in_flight.store(2, Relaxed);
    upstream.set_breaker(BreakerView::Open);
    upstream.set_last_error("connection refused".into());

    let backup_a = Arc::new(ExporterMetrics::new(
        "backup-a",
        "http",
        "http://127.0.0.1:2",
    ));
    backup_a.set_breaker(BreakerView::HalfOpen);
    backup_a.exported_items[Signal::Metrics.index()].store(77, Relaxed);
    let odd = Arc::new(ExporterMetrics::new(ODD_EXPORTER, "file", "./otlp-data"));
    odd.set_breaker(BreakerView::Closed);
    let fanout_queue = Arc::new(QueueMetrics::new("fanout", "memory", 4096));
    fanout_queue.bytes.store(1024, Relaxed);
    fanout_queue.depth.store(1, Relaxed);

    metrics.set_routes(vec![
        RouteView {
            name: "primary".into(),
            mode: "single",
            signals: vec![Signal::Traces, Signal::Logs],
            queue: primary_queue,
            exporters: vec![upstream],
        },
        RouteView {
            name: "fanout".into(),
            mode: "failover",
            signals: vec![Signal::Metrics],
            queue: fanout_queue,
            exporters: vec![backup_a, odd],
        },
    ]);
    metrics.set_degradation_level(2);
    metrics.memory_bytes.store(12_345_678, Relaxed);
    metrics.reloads.store(3, Relaxed);
    metrics.reload_failures.store(1, Relaxed);
    metrics.record_error("upstream-grpc: connection refused");
    metrics.record_error("bad <script>alert(1)</script> batch");

    let http = Arc::new(ReceiverMetrics::default());
    for _ in 0..3 {
        http.record_response(Some(Signal::Traces), Outcome::Accepted, 200);
    }
    http.record_response(Some(Signal::Traces), Outcome::Refused, 503);
    http.record_response(None, Outcome::Rejected, 404);
    http.record_items(Signal::Traces, 150, 10);
    http.connection_opened();
    let grpc = Arc::new(GrpcReceiverMetrics::default());
    grpc.record_response(Some(Signal::Logs), Outcome::Accepted, GrpcCode::Ok);
    grpc.record_response(Some(Signal::Logs), Outcome::Refused, GrpcCode::Unavailable);
    grpc.record_items(Signal::Logs, 42, 0);
    let grpc_listener = Arc::new(ReceiverMetrics::default());
    grpc_listener.connection_opened();
    grpc_listener.connection_opened();

    let controller = Controller::builder().build().expect("controller");
    let degradation = controller.handle();
    degradation.pin(DegradationLevel::Moderate);

    let state = AdminState::new(metrics.clone())
        .with_source(HttpReceiverSource::new(http))
        .with_source(GrpcReceiverSource::new(grpc).with_connections(grpc_listener))
        .with_source(DegradationSource(degradation));
    Fixture { metrics, state }
}

async fn start(state: AdminState) -> RunningAdmin {
    AdminServer::bind("127.0.0.1:0".parse().unwrap(), state)
        .await
        .expect("admin listener binds")
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end.
async fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    timeout(BOUND, async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        parse_reply(&raw, method != "HEAD")
    })
    .await
    .expect("the admin listener answers within the bound")
}

fn parse_reply(raw: &[u8], has_body: bool) -> Reply {
    let text = String::from_utf8(raw.to_vec()).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: HashMap<String, String> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header line");
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    if let Some(len) = headers.get("content-length").filter(|_| has_body) {
        assert_eq!(
            len.parse::<usize>().unwrap(),
            body.len(),
            "content-length matches the body"
        );
    }
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path).await
}

// ---------------------------------------------------------------------------------------
// A Prometheus text format 0.0.4 checker.

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn valid_name(name: &str, label: bool) -> bool {
    let mut chars = name.chars();
    let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (c == ':' && !label);
    match chars.next() {
        Some(c) if first_ok(c) => chars.all(|c| first_ok(c) || c.is_ascii_digit()),
        _ => false,
    }
}

/// Parse `name{k="v",...}` and return the rest of the line.
fn parse_series(line: &str) -> Result<(String, BTreeMap<String, String>, &str), String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value: {line}"))?;
    let name = &line[..name_end];
    if !valid_name(name, false) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        loop {
            // label name
            let start = chars.peek().map(|(i, _)| *i).ok_or("unterminated labels")?;
            if after[start..].starts_with('}') {
                rest = &after[start + 1..];
                break;
            }
            let eq = after[start..].find('=').ok_or("label without =")? + start;
            let key = &after[start..eq];
            if !valid_name(key, true) {
                return Err(format!("bad label name {key:?}"));
            }
            if !after[eq + 1..].starts_with('"') {
                return Err(format!("label {key} value not quoted"));
            }
            while chars.next_if(|(i, _)| *i <= eq + 1).is_some() {}
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated label value")?.1 {
                    '\\' => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    '"' => break,
                    '\n' => return Err("raw line feed in a label value".into()),
                    c => value.push(c),
                }
            }
            if labels.insert(key.to_owned(), value).is_some() {
                return Err(format!("label {key} twice"));
            }
            match chars.next().ok_or("unterminated labels")? {
                (_, ',') => continue,
                (i, '}') => {
                    rest = &after[i + 1..];
                    break;
                }
                (_, c) => return Err(format!("unexpected {c:?} after a label")),
            }
        }
    }
    Ok((name.to_owned(), labels, rest))
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        t => t
            .parse::<f64>()
            .map_err(|e| format!("bad value {t:?}: {e}")),
    }
}

/// Check the whole exposition: each family has one HELP and one TYPE line before its
/// samples, its samples are together, every sample line is `name{labels} value`, no series
/// twice, and the text ends with a line feed.
fn check_exposition(text: &str) -> Result<Vec<Sample>, String> {
    if !text.ends_with('\n') {
        return Err("does not end with a line feed".into());
    }
    let mut help = HashSet::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series = HashSet::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !help.insert(name.to_owned()) {
                return Err(at("second HELP".into()));
            }
            if let Some(prev) = current.replace(name.to_owned()) {
                finished.insert(prev);
            }
            if finished.contains(name) {
                return Err(at("family seen before".into()));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if parts.next().is_some() {
                return Err(at("extra words".into()));
            }
            if current.as_deref() != Some(name) {
                return Err(at("TYPE without HELP just before".into()));
            }
            if !matches!(kind, "counter" | "gauge") {
                return Err(at(format!("type {kind}")));
            }
            if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(at("second TYPE".into()));
            }
        } else if line.starts_with('#') || line.is_empty() {
            return Err(at("unexpected comment or blank line".into()));
        } else {
            let (name, labels, rest) = parse_series(line).map_err(at)?;
            if current.as_deref() != Some(name.as_str()) || !types.contains_key(&name) {
                return Err(at("sample outside its family".into()));
            }
            let value = rest
                .strip_prefix(' ')
                .ok_or_else(|| at("no space before the value".into()))?;
            if value.contains(' ') {
                return Err(at("more than a value (timestamps are not used)".into()));
            }
            let value = parse_value(value).map_err(at)?;
            if types[&name] == "counter" && (value.is_nan() || value < 0.0) {
                return Err(at("negative counter".into()));
            }
            if !series.insert(format!("{name}{labels:?}")) {
                return Err(at("series twice".into()));
            }
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
    }
    if let Some(missing) = help.iter().find(|h| !types.contains_key(*h)) {
        return Err(format!("{missing} has HELP but no TYPE"));
    }
    Ok(samples)
}

/// The value of the one sample with exactly these labels.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name && s.labels == want)
        .collect();
    assert_eq!(found.len(), 1, "exactly one sample {name}{want:?}");
    found[0].value
}

#[test]
fn the_checker_rejects_broken_expositions() {
    let good = "# HELP a A.\n# TYPE a counter\na{x=\"1\\\"\\n\"} 3\na 4\n";
    let samples = check_exposition(good).unwrap();
    assert_eq!(samples[0].labels["x"], "1\"\n");
    assert_eq!(samples[1].value, 4.0);
    for bad in [
        "a 1\n",                                                           // no HELP/TYPE
        "# HELP a A.\n# TYPE a counter\na 1",                              // no final line feed
        "# HELP a A.\n# TYPE a counter\n# HELP a A.\n",                    // HELP twice
        "# HELP a A.\n# TYPE a summary\na 1\n",                            // unknown type
        "# HELP a A.\n# TYPE a counter\na{x=1} 1\n",                       // unquoted label
        "# HELP a A.\n# TYPE a counter\na{x=\"1} 1\n",                     // unterminated
        "# HELP a A.\n# TYPE a counter\na one\n",                          // not a number
        "# HELP a A.\n# TYPE a counter\na -1\n",                           // negative counter
        "# HELP a A.\n# TYPE a counter\na 1\na 2\n",                       // series twice
        "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\na 1\n", // not grouped
        "# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n",                           // bad name
        "# HELP a A.\n# TYPE a gauge\na{x=\"\\q\"} 1\n",                   // bad escape
    ] {
        assert!(check_exposition(bad).is_err(), "accepted: {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn healthz_and_readyz_follow_the_phase() {
    let f = fixture();
    let admin = start(f.state.clone()).await;
    let addr = admin.local_addr();

    let health = get(addr, "/healthz").await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, "ok\n"),
        "{health:?}"
    );
    assert_eq!(health.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(health.header("cache-control"), "no-store");

    let ready = get(addr, "/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (503, "starting\n"));
    f.metrics.set_phase(Phase::Running);
    let ready = get(addr, "/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    f.metrics.set_phase(Phase::Draining);
    let ready = get(addr, "/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (503, "draining\n"));
    // Health is about the process, not the phase.
    assert_eq!(get(addr, "/healthz").await.status, 200);

    // HEAD answers like GET without a body.
    let head = request(addr, "HEAD", "/healthz").await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));

    admin.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text_with_the_registry_numbers() {
    let f = fixture();
    f.metrics.set_phase(Phase::Running);
    let admin = start(f.state.clone()).await;
    let reply = get(admin.local_addr(), "/metrics").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let samples = check_exposition(&reply.body).unwrap_or_else(|e| panic!("{e}\n{}", reply.body));
    assert!(
        samples.iter().all(|s| s.name.starts_with("otlp_gateway_")),
        "every name has the prefix"
    );
    let v = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);

    // Process.
    assert_eq!(
        v(
            "otlp_gateway_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(v("otlp_gateway_phase", &[("phase", "running")]), 1.0);
    assert_eq!(v("otlp_gateway_phase", &[("phase", "starting")]), 0.0);
    assert_eq!(v("otlp_gateway_ready", &[]), 1.0);
    assert_eq!(v("otlp_gateway_degradation_level", &[]), 2.0);
    assert_eq!(v("otlp_gateway_memory_bytes", &[]), 12_345_678.0);
    assert_eq!(v("otlp_gateway_config_reloads_total", &[]), 3.0);
    assert_eq!(v("otlp_gateway_config_reload_failures_total", &[]), 1.0);
    assert_eq!(v("otlp_gateway_recent_errors", &[]), 2.0);
    let uptime = v("otlp_gateway_uptime_seconds", &[]);
    assert!((0.0..3600.0).contains(&uptime), "uptime {uptime}");

    // Ingress.
    let traces = [("signal", "traces")];
    assert_eq!(v("otlp_gateway_received_requests_total", &traces), 7.0);
    assert_eq!(v("otlp_gateway_received_items_total", &traces), 1234.0);
    assert_eq!(v("otlp_gateway_received_bytes_total", &traces), 56_789.0);
    assert_eq!(v("otlp_gateway_accepted_items_total", &traces), 1200.0);
    assert_eq!(
        v("otlp_gateway_received_items_total", &[("signal", "logs")]),
        42.0
    );
    let queue_full = [("signal", "traces"), ("reason", "queue_full")];
    assert_eq!(v("otlp_gateway_refused_requests_total", &queue_full), 2.0);
    assert_eq!(v("otlp_gateway_refused_items_total", &queue_full), 30.0);
    assert_eq!(
        v(
            "otlp_gateway_refused_items_total",
            &[("signal", "traces"), ("reason", "rate_limited")]
        ),
        4.0
    );
    assert_eq!(
        v(
            "otlp_gateway_refused_items_total",
            &[("signal", "metrics"), ("reason", "memory")]
        ),
        0.0,
        "every reason has a series, zero or not"
    );
    assert_eq!(
        v(
            "otlp_gateway_dropped_items_total",
            &[("signal", "traces"), ("reason", "sampled")]
        ),
        17.0
    );
    assert_eq!(
        v(
            "otlp_gateway_dropped_items_total",
            &[("signal", "logs"), ("reason", "degraded")]
        ),
        5.0
    );
    assert_eq!(
        samples
            .iter()
            .filter(|s| s.name == "otlp_gateway_dropped_items_total")
            .count(),
        3 * DropReason::ALL.len()
    );

    // Exporters.
    let up = [
        ("route", "primary"),
        ("exporter", "upstream-grpc"),
        ("kind", "grpc"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut l = up.to_vec();
        l.push(extra);
        l
    };
    assert_eq!(
        v(
            "otlp_gateway_exporter_exported_items_total",
            &with(("signal", "traces"))
        ),
        1100.0
    );
    assert_eq!(
        v(
            "otlp_gateway_exporter_exported_items_total",
            &with(("signal", "logs"))
        ),
        40.0
    );
    assert_eq!(
        v("otlp_gateway_exporter_exported_requests_total", &up),
        33.0
    );
    assert_eq!(v("otlp_gateway_exporter_exported_bytes_total", &up), 4444.0);
    assert_eq!(
        v("otlp_gateway_exporter_retryable_failures_total", &up),
        6.0
    );
    assert_eq!(
        v("otlp_gateway_exporter_permanent_failures_total", &up),
        1.0
    );
    assert_eq!(v("otlp_gateway_exporter_retries_total", &up), 9.0);
    assert_eq!(v("otlp_gateway_exporter_in_flight", &up), 2.0);
    assert_eq!(v("otlp_gateway_exporter_breaker_state", &up), 1.0);
    let breaker = |exporter: &str, state: &str| {
        v(
            "otlp_gateway_exporter_breaker",
            &[
                (
                    "route",
                    if exporter == "upstream-grpc" {
                        "primary"
                    } else {
                        "fanout"
                    },
                ),
                ("exporter", exporter),
                ("state", state),
            ],
        )
    };
    assert_eq!(breaker("upstream-grpc", "open"), 1.0);
    assert_eq!(breaker("upstream-grpc", "closed"), 0.0);
    assert_eq!(breaker("backup-a", "half_open"), 1.0);
    assert_eq!(breaker(ODD_EXPORTER, "closed"), 1.0);
    assert_eq!(
        v(
            "otlp_gateway_exporter_breaker_state",
            &[
                ("route", "fanout"),
                ("exporter", "backup-a"),
                ("kind", "http")
            ]
        ),
        2.0
    );
    // The odd name went through escaping and came back intact.
    assert!(reply.body.contains("exporter=\"eu\\\"west\\\\<b>\""));

    // Queues.
    let q = [("route", "primary"), ("kind", "disk")];
    assert_eq!(v("otlp_gateway_queue_depth", &q), 5.0);
    assert_eq!(v("otlp_gateway_queue_bytes", &q), 2048.0);
    assert_eq!(v("otlp_gateway_queue_capacity_bytes", &q), 1_048_576.0);
    assert_eq!(v("otlp_gateway_queue_fill_ratio", &q), 2048.0 / 1_048_576.0);
    assert_eq!(v("otlp_gateway_queue_pushed_total", &q), 100.0);
    assert_eq!(v("otlp_gateway_queue_acked_total", &q), 95.0);
    assert_eq!(v("otlp_gateway_queue_replayed_total", &q), 3.0);
    assert_eq!(v("otlp_gateway_queue_written_bytes_total", &q), 999.0);
    assert_eq!(v("otlp_gateway_queue_fsyncs_total", &q), 12.0);
    assert_eq!(
        v(
            "otlp_gateway_queue_fill_ratio",
            &[("route", "fanout"), ("kind", "memory")]
        ),
        0.25
    );
    assert_eq!(v("otlp_gateway_routes", &[]), 2.0);

    // Extra sources: both receivers share families, told apart by the receiver label.
    assert_eq!(
        v(
            "otlp_gateway_receiver_requests_total",
            &[
                ("receiver", "http"),
                ("signal", "traces"),
                ("outcome", "accepted")
            ]
        ),
        3.0
    );
    assert_eq!(
        v(
            "otlp_gateway_receiver_requests_total",
            &[
                ("receiver", "http"),
                ("signal", "unrouted"),
                ("outcome", "rejected")
            ]
        ),
        1.0
    );
    assert_eq!(
        v(
            "otlp_gateway_receiver_http_responses_total",
            &[
                ("receiver", "http"),
                ("signal", "traces"),
                ("status", "503")
            ]
        ),
        1.0
    );
    assert_eq!(
        v(
            "otlp_gateway_receiver_requests_total",
            &[
                ("receiver", "grpc"),
                ("signal", "logs"),
                ("outcome", "refused")
            ]
        ),
        1.0
    );
    assert_eq!(
        v(
            "otlp_gateway_receiver_grpc_responses_total",
            &[
                ("receiver", "grpc"),
                ("signal", "logs"),
                ("code", "UNAVAILABLE")
            ]
        ),
        1.0
    );
    assert_eq!(
        v(
            "otlp_gateway_receiver_accepted_items_total",
            &[("receiver", "http"), ("signal", "traces")]
        ),
        150.0
    );
    assert_eq!(
        v(
            "otlp_gateway_receiver_connections_active",
            &[("receiver", "grpc")]
        ),
        2.0
    );
    assert_eq!(
        v(
            "otlp_gateway_receiver_connections_active",
            &[("receiver", "http")]
        ),
        1.0
    );
    assert_eq!(
        v("otlp_gateway_degradation_mode", &[("mode", "pinned")]),
        1.0
    );
    assert_eq!(v("otlp_gateway_degradation_controller_level", &[]), 2.0);
    assert_eq!(
        v(
            "otlp_gateway_degradation_transitions_total",
            &[("level", "moderate")]
        ),
        1.0
    );

    // Counters move between scrapes.
    f.metrics
        .signal(Signal::Traces)
        .received_items
        .fetch_add(1, Relaxed);
    let again = check_exposition(&get(admin.local_addr(), "/metrics").await.body).unwrap();
    assert_eq!(
        value(&again, "otlp_gateway_received_items_total", &traces),
        1235.0
    );
    admin.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn api_status_is_json_with_routes_exporters_queues_errors_and_history() {
    let f = fixture();
    f.metrics.set_phase(Phase::Running);
    let admin = start(f.state.clone()).await;
    assert!(admin.history().samples() >= 1, "sampled at start");
    let reply = get(admin.local_addr(), "/api/status").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), "application/json");
    let s: serde_json::Value = serde_json::from_str(&reply.body).expect("valid JSON");

    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["phase"], "running");
    assert_eq!(s["ready"], true);
    assert_eq!(s["degradation"]["level"], 2);
    assert_eq!(s["degradation"]["name"], "moderate");
    assert_eq!(s["memory_bytes"], 12_345_678);
    assert_eq!(s["reloads"], 3);
    assert!(s["uptime_seconds"].as_f64().unwrap() >= 0.0);
    for key in ["started_at", "now"] {
        let t = s[key].as_str().unwrap();
        assert_eq!(t.len(), "2024-01-01T00:00:00.000Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }

    assert_eq!(s["totals"]["received_items"], 1234 + 42);
    assert_eq!(s["totals"]["accepted_items"], 1242);
    assert_eq!(s["totals"]["refused_items"], 34);
    assert_eq!(s["totals"]["refused_requests"], 3);
    assert_eq!(s["totals"]["dropped_items"], 22);
    assert_eq!(s["totals"]["exported_items"], 1100 + 40 + 77);
    assert_eq!(s["signals"]["traces"]["refused"]["queue_full"]["items"], 30);
    assert_eq!(
        s["signals"]["traces"]["refused"]["queue_full"]["requests"],
        2
    );
    assert_eq!(s["signals"]["traces"]["dropped"]["sampled"], 17);

    let routes = s["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0]["name"], "primary");
    assert_eq!(routes[0]["mode"], "single");
    assert_eq!(routes[0]["signals"], serde_json::json!(["traces", "logs"]));
    let q = &routes[0]["queue"];
    assert_eq!(
        (&q["kind"], &q["depth"], &q["bytes"], &q["capacity_bytes"]),
        (
            &serde_json::json!("disk"),
            &serde_json::json!(5),
            &serde_json::json!(2048),
            &serde_json::json!(1_048_576)
        )
    );
    assert_eq!(q["fsyncs"], 12);
    let up = &routes[0]["exporters"][0];
    assert_eq!(up["name"], "upstream-grpc");
    assert_eq!(up["breaker"], "open");
    assert_eq!(up["endpoint"], "grpc://127.0.0.1:1");
    assert_eq!(up["exported_items"]["traces"], 1100);
    assert_eq!(up["exported_total"], 1140);
    assert_eq!(up["retries"], 9);
    assert_eq!(up["in_flight"], 2);
    assert_eq!(up["last_error"]["message"], "connection refused");
    let fanout = &routes[1];
    assert_eq!(fanout["mode"], "failover");
    assert_eq!(fanout["exporters"][0]["breaker"], "half_open");
    assert_eq!(fanout["exporters"][1]["name"], ODD_EXPORTER);

    // Newest error first.
    let errors = s["recent_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["message"], "bad <script>alert(1)</script> batch");
    assert_eq!(errors[1]["message"], "upstream-grpc: connection refused");

    let sources = s["sources"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = sources
        .iter()
        .map(|x| (x["kind"].as_str().unwrap(), x["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("receiver", "http"),
            ("receiver", "grpc"),
            ("degradation", "controller")
        ]
    );
    assert_eq!(sources[0]["values"]["requests"], 5);
    assert_eq!(sources[0]["values"]["accepted_items"], 150);
    assert_eq!(sources[1]["values"]["connections"], 2);
    assert_eq!(sources[2]["values"]["mode"], "pinned at moderate");

    let h = &s["history"];
    assert_eq!(h["interval_seconds"], 1.0);
    for series in ["received", "accepted", "refused", "exported"] {
        assert!(h[series].is_array(), "{series}");
    }
    let queues = h["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 2);
    assert_eq!(queues[0]["route"], "primary");
    assert_eq!(queues[0]["depth"][0], 5.0);
    assert_eq!(queues[1]["bytes"][0], 1024.0);
    admin.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn status_page_is_self_contained_and_shows_numbers_before_any_script() {
    let f = fixture();
    f.metrics.set_phase(Phase::Draining);
    let admin = start(f.state.clone()).await;
    let reply = get(admin.local_addr(), "/status").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), "text/html; charset=utf-8");
    let csp = reply.header("content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let page = &reply.body;
    assert!(page.starts_with("<!doctype html>"));

    // Nothing from outside: no external scripts, styles, images or fonts.
    for needle in [
        "src=\"http",
        "href=\"http",
        "<link",
        "@import",
        "url(http",
        "<script src",
    ] {
        assert!(!page.contains(needle), "page references {needle}");
    }
    assert!(
        page.contains("\"api/status\""),
        "refreshes from the relative URL"
    );
    assert!(page.contains("2000"), "every 2 s");

    // Header.
    assert!(page.contains("id=\"phase\" class=\"badge s-draining\">draining<"));
    assert!(page.contains(&format!("id=\"version\">{}<", env!("CARGO_PKG_VERSION"))));
    assert!(page.contains("class=\"badge lvl-2\">moderate (2)<"));
    assert!(page.contains("id=\"memory\">11.8 MiB<"));

    // The diagram: receivers, stages, each route's queue and exporters colored by breaker.
    for needle in [
        "<div class=\"t\">http</div><div class=\"k\">OTLP/HTTP</div>",
        "<div class=\"t\">grpc</div><div class=\"k\">OTLP/gRPC</div>",
        "<div class=\"t\">protect</div>",
        "1,276 received",
        "34 refused",
        "rate_limited 4",
        "<div class=\"box lvl-2\"><div class=\"t\">degrade</div>",
        "1,242 accepted",
        "22 sampled/degraded</div><div class=\"n\">pinned at moderate</div>",
        "<div class=\"t\">primary</div><div class=\"k\">queue · disk · single</div>",
        "5 entries · 2.0 KiB",
        "<div class=\"box br-open\"><div class=\"t\">upstream-grpc</div>",
        "1,140 exported",
        "7 failures",
        "<div class=\"box br-half_open\"><div class=\"t\">backup-a</div>",
        "<div class=\"box br-closed\"><div class=\"t\">eu&quot;west\\&lt;b&gt;</div>",
        "width:25.0%",
    ] {
        assert!(page.contains(needle), "page lacks {needle}");
    }
    // Sparklines, tables, errors (escaped).
    for needle in [
        "received items/s",
        "exported items/s",
        "primary depth",
        "fanout bytes",
        "<td>traces</td><td class=\"num\">7</td><td class=\"num\">1,234</td><td class=\"num\">1,200</td><td class=\"num\">34</td><td class=\"num\">17</td>",
        "<span class=\"badge br-open\">open</span>",
        "<td class=\"msg\">connection refused</td>",
        "bad &lt;script&gt;alert(1)&lt;/script&gt; batch",
        "id=\"js-rendered\"></span>",
    ] {
        assert!(page.contains(needle), "page lacks {needle}");
    }
    assert!(!page.contains("<script>alert"), "error text is escaped");
    assert_eq!(page.matches("<script>").count(), 1, "one inline script");
    admin.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn unknown_paths_404_wrong_methods_405_and_the_root_redirects() {
    let f = fixture();
    let admin = start(f.state).await;
    let addr = admin.local_addr();

    let missing = get(addr, "/nope").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("/nope"));
    assert_eq!(get(addr, "/metrics/extra").await.status, 404);
    assert_eq!(request(addr, "POST", "/nope").await.status, 404);

    for path in ["/metrics", "/healthz", "/status", "/api/status", "/readyz"] {
        for method in ["POST", "PUT", "DELETE"] {
            let r = request(addr, method, path).await;
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(r.header("allow"), "GET, HEAD");
        }
    }

    // A query string does not change the page.
    assert_eq!(get(addr, "/healthz?verbose=1").await.body, "ok\n");

    let root = get(addr, "/").await;
    assert_eq!(root.status, 302);
    assert_eq!(root.header("location"), "status");
    admin.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn slow_clients_do_not_block_others_and_are_cut_off() {
    let f = fixture();
    let options = AdminOptions {
        header_read_timeout: Duration::from_millis(500),
        max_connections: 4,
        ..AdminOptions::default()
    };
    let admin = AdminServer::bind_with("127.0.0.1:0".parse().unwrap(), f.state, options)
        .await
        .unwrap();
    let addr = admin.local_addr();

    // Slow-loris: a request head that never ends, one byte now and then.
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            .await
            .unwrap();
        slow.push(s);
    }
    // Others are served meanwhile.
    for _ in 0..5 {
        assert_eq!(get(addr, "/healthz").await.status, 200);
    }
    // With every slot taken by slow clients, a new client waits at most until they are
    // cut off at the header deadline.
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    fourth
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        .await
        .unwrap();
    slow.push(fourth);
    assert_eq!(get(addr, "/healthz").await.status, 200);

    // Every slow connection was closed by the server (408 or a plain close), bounded.
    for mut s in slow {
        let _ = s.write_all(b"b").await; // keeps dripping
        let mut buf = Vec::new();
        let read = timeout(BOUND, s.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "a slow client is cut off");
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "slow client got {text}"
        );
    }
    admin.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn concurrent_scrapes_and_shutdown() {
    let f = fixture();
    let admin = start(f.state).await;
    let addr = admin.local_addr();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let path = ["/metrics", "/api/status", "/status", "/healthz"][i % 4];
        tasks.spawn(async move { get(addr, path).await.status });
    }
    let mut ok = 0;
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
        ok += 1;
    }
    assert_eq!(ok, 16);

    admin.shutdown(Duration::from_secs(1)).await.unwrap();
    let refused = timeout(BOUND, TcpStream::connect(addr)).await.unwrap();
    assert!(refused.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn binding_a_taken_port_is_a_clear_error() {
    let f = fixture();
    let first = start(f.state.clone()).await;
    let err = AdminServer::bind(first.local_addr(), f.state)
        .await
        .expect_err("the port is taken");
    let text = err.to_string();
    assert!(
        text.contains("admin listener") && text.contains(&first.local_addr().to_string()),
        "{text}"
    );
    first.shutdown(Duration::from_secs(1)).await.unwrap();
}
