//! The load driver behind `otlp send`: generated batches sent to an OTLP endpoint at a
//! given rate by a number of concurrent senders, with a summary of what happened.
//!
//! ```no_run
//! use std::time::Duration;
//! use otlp_core::Signal;
//! use otlp_gateway::loadgen::send::{SendConfig, send};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = SendConfig {
//!     count: Some(100_000),
//!     rate: Some(20_000.0), // spans per second
//!     ..SendConfig::new("grpc://127.0.0.1:4317", Signal::Traces)
//! };
//! let summary = send(config, std::future::pending()).await?;
//! println!("{summary}");
//! # Ok(())
//! # }
//! ```
//!
//! Pacing: batch `k` (of `batch_items` items) may start at `start + k * batch_items / rate`;
//! a sender that falls behind catches up at once (no rate is lost to a slow moment), and
//! at most `concurrency` requests are in flight. The exporters run without retries and
//! without a circuit breaker, so every refusal shows in the summary as the server gave it.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otlp_core::{Compression, ExportError, Exporter, Signal};
use otlp_transport_grpc::exporter::GrpcExporter;
use otlp_transport_http::exporter::HttpExporter;
use otlp_transport_http::exporter::config::Protocol as HttpProtocol;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use super::{Generator, GeneratorConfig, LatencyHistogram};

/// Items sent when neither a count nor a duration is given.
pub const DEFAULT_COUNT: u64 = 10_000;
/// Distinct pre-encoded batches cycled through (when more are needed).
pub const DEFAULT_POOL_BATCHES: usize = 64;

/// How to talk to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendProtocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with binary protobuf bodies.
    Http,
    /// OTLP/HTTP with OTLP/JSON bodies.
    HttpJson,
}

impl SendProtocol {
    /// The protocol a URL's scheme implies: `grpc://` and `grpcs://` gRPC, `http://` and
    /// `https://` HTTP protobuf.
    pub fn from_scheme(endpoint: &str) -> Option<SendProtocol> {
        let scheme = endpoint.split_once("://")?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "grpc" | "grpcs" => Some(SendProtocol::Grpc),
            "http" | "https" => Some(SendProtocol::Http),
            _ => None,
        }
    }
}

/// What to send where.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// `grpc://host:port`, `grpcs://...`, `http://host:port` or `https://...` (for
    /// OTLP/HTTP a base URL: `/v1/<signal>` is appended).
    pub endpoint: String,
    /// Which signal.
    pub signal: Signal,
    /// The protocol; from the endpoint's scheme when `None`.
    pub protocol: Option<SendProtocol>,
    /// Stop after this many items. With neither `count` nor `duration`: [`DEFAULT_COUNT`].
    pub count: Option<u64>,
    /// Stop starting requests after this long.
    pub duration: Option<Duration>,
    /// Items per second; as fast as the endpoint takes them when `None`.
    pub rate: Option<f64>,
    /// Items per request (default 512).
    pub batch_items: usize,
    /// Requests in flight at most (default 4).
    pub concurrency: usize,
    /// Extra headers (gRPC metadata), e.g. an API key.
    pub headers: Vec<(String, String)>,
    /// Per-request timeout (default 10 s).
    pub timeout: Duration,
    /// Request compression (default none).
    pub compression: Compression,
    /// Generator seed (default 1).
    pub seed: u64,
    /// Distinct services in the data (default 5).
    pub services: usize,
    /// Share of error spans and ERROR log records (default 0.01).
    pub error_ratio: f64,
    /// Distinct batches to pre-generate and cycle (default [`DEFAULT_POOL_BATCHES`]).
    pub pool_batches: usize,
}

impl SendConfig {
    /// Defaults for sending `signal` to `endpoint`.
    pub fn new(endpoint: impl Into<String>, signal: Signal) -> SendConfig {
        SendConfig {
            endpoint: endpoint.into(),
            signal,
            protocol: None,
            count: None,
            duration: None,
            rate: None,
            batch_items: 512,
            concurrency: 4,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            compression: Compression::None,
            seed: 1,
            services: 5,
            error_ratio: 0.01,
            pool_batches: DEFAULT_POOL_BATCHES,
        }
    }
}

/// Why sending could not start.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The endpoint URL is not usable: give `grpc://`, `grpcs://`, `http://` or `https://`
    /// and a host and port.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting cannot work.
    #[error("invalid setting: {0}")]
    Invalid(String),
}

/// Items and requests refused for one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refused {
    /// Items in the refused requests.
    pub items: u64,
    /// Requests refused.
    pub requests: u64,
    /// The first refusal's full message.
    pub example: String,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct SendSummary {
    /// The signal sent.
    pub signal: Signal,
    /// The endpoint as the exporter used it.
    pub endpoint: String,
    /// The protocol used.
    pub protocol: SendProtocol,
    /// Items in requests sent (answered or not).
    pub items_sent: u64,
    /// Items the endpoint accepted (partially rejected items not included).
    pub items_accepted: u64,
    /// Items the endpoint rejected in a partial success.
    pub items_rejected: u64,
    /// Refused requests by reason: `HTTP 503`, `gRPC UNAVAILABLE`, `transport error`, ...
    pub refused: BTreeMap<String, Refused>,
    /// Requests sent.
    pub requests: u64,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// Request latencies (successful or not).
    pub latency: LatencyHistogram,
    /// Whether the run was stopped early (Ctrl-C).
    pub interrupted: bool,
}

impl SendSummary {
    /// Items refused, all reasons together.
    pub fn items_refused(&self) -> u64 {
        self.refused.values().map(|r| r.items).sum()
    }

    /// Accepted items per second.
    pub fn accepted_rate(&self) -> f64 {
        per_second(self.items_accepted, self.elapsed)
    }

    /// Sent items per second.
    pub fn sent_rate(&self) -> f64 {
        per_second(self.items_sent, self.elapsed)
    }
}

fn per_second(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

impl fmt::Display for SendSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let item = self.signal.item_name();
        let protocol = match self.protocol {
            SendProtocol::Grpc => "OTLP/gRPC",
            SendProtocol::Http => "OTLP/HTTP protobuf",
            SendProtocol::HttpJson => "OTLP/HTTP JSON",
        };
        writeln!(
            f,
            "sent {} {item} in {} requests to {} ({protocol}){}",
            self.items_sent,
            self.requests,
            self.endpoint,
            if self.interrupted {
                ", interrupted"
            } else {
                ""
            }
        )?;
        writeln!(f, "  accepted: {} {item}", self.items_accepted)?;
        if self.items_rejected > 0 {
            writeln!(
                f,
                "  rejected in partial success: {} {item}",
                self.items_rejected
            )?;
        }
        writeln!(f, "  refused:  {} {item}", self.items_refused())?;
        for (reason, r) in &self.refused {
            writeln!(
                f,
                "    {reason}: {} {item} in {} requests (e.g. {})",
                r.items, r.requests, r.example
            )?;
        }
        writeln!(
            f,
            "  elapsed:  {:.3} s, {:.0} {item}/s sent, {:.0} {item}/s accepted",
            self.elapsed.as_secs_f64(),
            self.sent_rate(),
            self.accepted_rate()
        )?;
        write!(
            f,
            "  latency:  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(self.latency.quantile(0.5)),
            ms(self.latency.quantile(0.99)),
            ms(self.latency.max())
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A short label for an export error, for grouping refusals.
fn reason(err: &ExportError) -> String {
    match err {
        ExportError::Http { status, .. } => format!("HTTP {status}"),
        ExportError::Grpc { code, .. } => format!("gRPC {code}"),
        ExportError::Transport(_) => "transport error".into(),
        ExportError::Timeout(_) => "timeout".into(),
        ExportError::InvalidResponse(_) => "invalid response".into(),
        ExportError::InvalidRequest(_) => "invalid request".into(),
        ExportError::Shutdown => "shut down".into(),
        _ => "other error".into(),
    }
}

/// Build the exporter for `config`: its URL as the exporter takes it and the protocol.
fn build_exporter(
    config: &SendConfig,
) -> Result<(Arc<dyn Exporter>, String, SendProtocol), SendError> {
    let bad = |reason: String| SendError::Endpoint {
        endpoint: config.endpoint.clone(),
        reason,
    };
    let Some((scheme, rest)) = config.endpoint.split_once("://") else {
        return Err(bad(
            "no scheme: use grpc://HOST:PORT, http://HOST:PORT or https://HOST:PORT".into(),
        ));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("no host".into()));
    }
    let scheme = scheme.to_ascii_lowercase();
    let tls = match scheme.as_str() {
        "grpc" | "http" => false,
        "grpcs" | "https" => true,
        other => {
            return Err(bad(format!(
                "unknown scheme {other:?}: use grpc, grpcs, http or https"
            )));
        }
    };
    let protocol = config
        .protocol
        .or_else(|| SendProtocol::from_scheme(&config.endpoint))
        .unwrap_or(SendProtocol::Http);
    let url = format!("{}://{rest}", if tls { "https" } else { "http" });
    let exporter: Arc<dyn Exporter> = match protocol {
        SendProtocol::Grpc => {
            let mut b = GrpcExporter::builder()
                .name("otlp-send")
                .no_env()
                .endpoint(url.clone())
                .timeout(config.timeout)
                .compression(config.compression)
                .connect_timeout(config.timeout.min(Duration::from_secs(5)))
                .no_retry()
                .no_circuit_breaker();
            for (k, v) in &config.headers {
                b = b.header(k.clone(), v.clone());
            }
            Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
        }
        SendProtocol::Http | SendProtocol::HttpJson => {
            let mut b = HttpExporter::builder()
                .name("otlp-send")
                .no_env()
                .endpoint(url.clone())
                .timeout(config.timeout)
                .compression(config.compression)
                .connect_timeout(config.timeout.min(Duration::from_secs(5)))
                .protocol(if protocol == SendProtocol::HttpJson {
                    HttpProtocol::HttpJson
                } else {
                    HttpProtocol::HttpProtobuf
                })
                .no_retry()
                .no_circuit_breaker();
            for (k, v) in &config.headers {
                b = b.header(k.clone(), v.clone());
            }
            Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
        }
    };
    Ok((exporter, url, protocol))
}

struct Outcome {
    items: u64,
    latency: Duration,
    finished: Instant,
    result: Result<otlp_core::Accepted, ExportError>,
}

/// Send generated data as `config` says until the count is reached, the duration is over
/// or `stop` completes (e.g. `tokio::signal::ctrl_c()`); requests in flight are awaited
/// (each is bounded by the timeout). Then summarise.
///
/// # Errors
///
/// [`SendError`] when the endpoint or a setting is unusable; refusals by the endpoint
/// are not errors but part of the [`SendSummary`].
pub async fn send<F>(config: SendConfig, stop: F) -> Result<SendSummary, SendError>
where
    F: Future<Output = ()>,
{
    if config.batch_items == 0 {
        return Err(SendError::Invalid("batch must be at least 1 item".into()));
    }
    if config.concurrency == 0 {
        return Err(SendError::Invalid("concurrency must be at least 1".into()));
    }
    if let Some(rate) = config.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(SendError::Invalid(format!(
            "rate must be a positive number of items per second, not {rate}"
        )));
    }
    let (exporter, endpoint, protocol) = build_exporter(&config)?;
    let target = match (config.count, config.duration) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_COUNT),
    };

    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut generator = Generator::new(GeneratorConfig {
        signal: config.signal,
        batch_items: config.batch_items,
        seed: config.seed,
        services: config.services,
        error_ratio: config.error_ratio,
        start_time_unix_nano: now_ns,
    });
    let batch = config.batch_items as u64;
    let needed = target.map_or(usize::MAX, |t| {
        usize::try_from(t / batch).unwrap_or(usize::MAX)
    });
    let pool = generator.pool(config.pool_batches.max(1).min(needed.max(1)));

    let mut summary = SendSummary {
        signal: config.signal,
        endpoint,
        protocol,
        items_sent: 0,
        items_accepted: 0,
        items_rejected: 0,
        refused: BTreeMap::new(),
        requests: 0,
        elapsed: Duration::ZERO,
        latency: LatencyHistogram::new(),
        interrupted: false,
    };
    let permits = Arc::new(Semaphore::new(config.concurrency));
    let mut tasks: JoinSet<Outcome> = JoinSet::new();
    let start = Instant::now();
    let deadline = config.duration.map(|d| start + d);
    let mut last_answer = start;
    tokio::pin!(stop);

    let mut dispatched: u64 = 0;
    loop {
        let items = match target {
            Some(t) if dispatched >= t => break,
            Some(t) => (t - dispatched).min(batch),
            None => batch,
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let due = config
            .rate
            .map(|rate| start + Duration::from_secs_f64(dispatched as f64 / rate));
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        let permit = tokio::select! {
            biased;
            () = &mut stop => { summary.interrupted = true; break; }
            () = sleep_until(deadline.unwrap_or(far)) => break,
            permit = async {
                if let Some(due) = due {
                    sleep_until(due).await;
                }
                permits.clone().acquire_owned().await
            } => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let payload = if items == batch {
            pool.next_payload()
        } else {
            generator.payload_with_items(items as usize)
        };
        dispatched += items;
        let exporter = exporter.clone();
        tasks.spawn(async move {
            let began = Instant::now();
            let result = exporter.export(payload).await;
            drop(permit);
            let finished = Instant::now();
            Outcome {
                items,
                latency: finished - began,
                finished,
                result,
            }
        });
        while let Some(done) = tasks.try_join_next() {
            record(&mut summary, done, &mut last_answer);
        }
    }
    while let Some(done) = tasks.join_next().await {
        record(&mut summary, done, &mut last_answer);
    }
    summary.elapsed = last_answer - start;
    let _ = exporter.shutdown().await;
    Ok(summary)
}

fn record(
    summary: &mut SendSummary,
    done: Result<Outcome, tokio::task::JoinError>,
    last_answer: &mut Instant,
) {
    let Ok(outcome) = done else {
        // A sender task panicked: count nothing we cannot vouch for.
        return;
    };
    summary.requests += 1;
    summary.items_sent += outcome.items;
    summary.latency.record(outcome.latency);
    *last_answer = (*last_answer).max(outcome.finished);
    match outcome.result {
        Ok(accepted) => {
            let rejected = accepted
                .partial_success
                .map_or(0, |p| p.rejected.min(outcome.items));
            summary.items_rejected += rejected;
            summary.items_accepted += outcome.items - rejected;
        }
        Err(err) => {
            let entry = summary.refused.entry(reason(&err)).or_default();
            entry.items += outcome.items;
            entry.requests += 1;
            if entry.example.is_empty() {
                entry.example = err.to_string();
            }
        }
    }
}
