//! The resilience stack around a real hyper client calling a real local server that
//! fails on command.
//!
//! A hyper 1 server on 127.0.0.1 (an ephemeral port) answers `POST /v1/traces` according
//! to a shared mode: OK, 503 with `Retry-After: 1`, 502, 500, or slow. Its route is
//! behind an inbound, per-tenant rate limiter. A hyper client sends OTLP payloads through
//! the outbound [`ResilienceStack`]: retry -> circuit breaker -> concurrency limit ->
//! per-attempt timeout -> client.
//!
//! The scripted scenario shows the retry backing off and honoring `Retry-After`, a 500
//! not being retried (OTLP: final), a slow server timing out, the breaker opening after
//! repeated failures and rejecting fast without touching the server, then half-open and
//! closed again once the server recovers, and the rate limiter refusing a burst with
//! 429 + `Retry-After`. Bounded in count and time, loopback only; exits in a few seconds.
//!
//! `cargo run -p otlp-resilience --example composition`; CI runs the same scenario with
//! assertions through `cargo test -p otlp-resilience --example composition`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use otlp_core::ExportError;
use otlp_resilience::breaker::{BreakerEvent, CircuitBreakerConfig, SlidingWindow};
use otlp_resilience::rate_limit::{KeyedRateLimiter, Quota, RateLimitError, RateLimitLayer};
use otlp_resilience::retry::{RetryError, RetryPolicy};
use otlp_resilience::stack::ResilienceStack;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

// ---- The server: fails on command -----------------------------------------------

/// What the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// 200 with an empty `ExportTraceServiceResponse`.
    Ok = 0,
    /// 503 with `Retry-After: 1` (retryable, with a server delay).
    Unavailable = 1,
    /// 502 (retryable, no delay): the upstream is down.
    BadGateway = 2,
    /// 500 (OTLP: not retryable).
    Internal = 3,
    /// Answers 200 after 2 s.
    Slow = 4,
}

impl Mode {
    fn from_u8(v: u8) -> Mode {
        match v {
            1 => Mode::Unavailable,
            2 => Mode::BadGateway,
            3 => Mode::Internal,
            4 => Mode::Slow,
            _ => Mode::Ok,
        }
    }
}

/// The server's shared state: the mode, how many more requests get it before the server
/// is healthy again (`u32::MAX`: until told otherwise), and a request counter.
#[derive(Default)]
struct Control {
    mode: AtomicU8,
    remaining: AtomicU32,
    hits: AtomicU32,
}

impl Control {
    fn set(&self, mode: Mode, times: u32) {
        self.remaining.store(times, Ordering::SeqCst);
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// The mode for the next request, consuming one of its remaining uses.
    fn next(&self) -> Mode {
        let mode = Mode::from_u8(self.mode.load(Ordering::SeqCst));
        if mode == Mode::Ok {
            return mode;
        }
        let left = self
            .remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                0 => None,
                u32::MAX => Some(u32::MAX),
                n => Some(n - 1),
            });
        match left {
            Ok(_) => mode,
            Err(_) => {
                self.mode.store(Mode::Ok as u8, Ordering::SeqCst);
                Mode::Ok
            }
        }
    }

    fn hits(&self) -> u32 {
        self.hits.load(Ordering::SeqCst)
    }
}

/// What the scenario prints, kept for the test to check.
#[derive(Clone, Default)]
struct Transcript {
    lines: Arc<Mutex<Vec<String>>>,
    origin: Arc<Mutex<Option<Instant>>>,
}

impl Transcript {
    fn say(&self, line: impl Into<String>) {
        let line = line.into();
        let origin = *self
            .origin
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Instant::now);
        let stamped = format!("[{:>5} ms] {line}", origin.elapsed().as_millis());
        println!("{stamped}");
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    #[cfg(test)]
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

type HttpRequest = Request<Incoming>;

/// The route handler behind the rate limiter.
async fn handle(
    control: Arc<Control>,
    _req: HttpRequest,
) -> Result<Response<Full<Bytes>>, Infallible> {
    control.hits.fetch_add(1, Ordering::SeqCst);
    let response = match control.next() {
        Mode::Ok => Response::new(Full::new(Bytes::new())),
        Mode::Slow => {
            // Longer than the client's 300 ms attempt timeout; the client gives up first.
            tokio::time::sleep(Duration::from_millis(600)).await;
            Response::new(Full::new(Bytes::new()))
        }
        Mode::Unavailable => status(StatusCode::SERVICE_UNAVAILABLE, Some("1")),
        Mode::BadGateway => status(StatusCode::BAD_GATEWAY, None),
        Mode::Internal => status(StatusCode::INTERNAL_SERVER_ERROR, None),
    };
    Ok(response)
}

fn status(code: StatusCode, retry_after: Option<&str>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"server says no")));
    *response.status_mut() = code;
    if let Some(secs) = retry_after
        && let Ok(value) = header::HeaderValue::from_str(secs)
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Starts the server on 127.0.0.1:0. Inbound protection: a per-tenant rate limiter
/// (`x-tenant` header; requests without one are not limited) of 5 requests a second,
/// burst 5, answering 429 + `Retry-After` when refused.
async fn start_server(
    control: Arc<Control>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let per_tenant = Arc::new(KeyedRateLimiter::<String>::new(Quota::per_second(
        NonZeroU32::MIN.saturating_add(4),
    )));
    let route = RateLimitLayer::keyed(per_tenant, |req: &HttpRequest| {
        req.headers()
            .get("x-tenant")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
    .layer(tower::service_fn(move |req: HttpRequest| {
        handle(Arc::clone(&control), req)
    }));

    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            // DESIGN "Known traps": without TCP_NODELAY a response can wait on delayed ACKs.
            let _ = stream.set_nodelay(true);
            let route = route.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: HttpRequest| {
                    let route = route.clone();
                    async move {
                        match route.oneshot(req).await {
                            Ok(response) => Ok::<_, Infallible>(response),
                            Err(RateLimitError::Limited(limited)) => {
                                let refusal = otlp_core::Refusal::from(limited);
                                let mut response = status(StatusCode::TOO_MANY_REQUESTS, None);
                                if let Some(secs) = refusal.retry_after_header()
                                    && let Ok(value) = header::HeaderValue::from_str(&secs)
                                {
                                    response.headers_mut().insert(header::RETRY_AFTER, value);
                                }
                                Ok(response)
                            }
                            Err(RateLimitError::Inner(never)) => match never {},
                        }
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, task))
}

// ---- The client: a tower service over hyper ------------------------------------

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Sends an OTLP/HTTP protobuf payload with hyper's client and classifies the answer
/// with `otlp_core::ExportError`, as an exporter does. Logs every attempt.
#[derive(Clone)]
struct HttpExporter {
    client: Client<HttpConnector, Full<Bytes>>,
    url: http::Uri,
    transcript: Transcript,
}

impl HttpExporter {
    fn new(
        addr: SocketAddr,
        transcript: Transcript,
    ) -> Result<HttpExporter, http::uri::InvalidUri> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Ok(HttpExporter {
            client: Client::builder(TokioExecutor::new()).build(connector),
            url: format!("http://{addr}/v1/traces").parse()?,
            transcript,
        })
    }
}

impl Service<Bytes> for HttpExporter {
    type Response = ();
    type Error = ExportError;
    type Future = BoxFuture<Result<(), ExportError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ExportError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, body: Bytes) -> Self::Future {
        let client = self.client.clone();
        let url = self.url.clone();
        let transcript = self.transcript.clone();
        Box::pin(async move {
            let mut pending = Unanswered(Some(transcript.clone()));
            let request = Request::post(url)
                .header(header::CONTENT_TYPE, "application/x-protobuf")
                .body(Full::new(body))
                .map_err(|e| ExportError::InvalidRequest(e.to_string()))?;
            let response = client
                .request(request)
                .await
                .map_err(|e| ExportError::Transport(e.to_string()))?;
            let code = response.status();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| ExportError::Transport(e.to_string()))?
                .to_bytes();
            pending.0 = None;
            match &retry_after {
                Some(after) => {
                    transcript.say(format!("  attempt -> {code} (Retry-After: {after})"))
                }
                None => transcript.say(format!("  attempt -> {code}")),
            }
            if code.is_success() {
                Ok(())
            } else {
                Err(ExportError::from_http(
                    code.as_u16(),
                    retry_after.as_deref(),
                    None,
                    &body,
                    SystemTime::now(),
                ))
            }
        })
    }
}

/// Says so when an attempt is dropped before it had an answer (the attempt timeout).
struct Unanswered(Option<Transcript>);

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(transcript) = self.0.take() {
            transcript.say("  attempt -> no answer in time: cancelled by the attempt timeout");
        }
    }
}

// ---- The scenario ---------------------------------------------------------------

/// What happened, for the test to check (the transcript has the details).
#[derive(Debug, Default)]
struct Report {
    /// Retry-After: the export's result, server requests and duration.
    retry_after: (bool, u32, Duration),
    /// 500: the server requests (1: not retried) and whether the error said so.
    internal: (u32, bool),
    /// Slow server: the export's result and server requests.
    slow: (bool, u32),
    /// Whether the breaker opened during the 502 phase.
    breaker_opened: bool,
    /// Durations of the exports rejected by the open breaker, and the server requests
    /// they made (0: rejected without calling).
    rejected: (Vec<Duration>, u32),
    /// Whether the export after recovery succeeded and the breaker closed.
    recovered: (bool, bool),
    /// The burst: admitted, refused with 429, the `Retry-After` of a refusal.
    burst: (u32, u32, Option<String>),
}

async fn scenario(
    transcript: Transcript,
) -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
    let mut report = Report::default();
    let control = Arc::new(Control::default());
    let (addr, server) = start_server(Arc::clone(&control)).await?;
    transcript.say(format!("server listening on {addr}"));

    // The outbound stack: retry -> breaker -> concurrency limit -> 300 ms per attempt.
    let events = transcript.clone();
    let breaker = otlp_resilience::breaker::CircuitBreaker::new(
        CircuitBreakerConfig::builder()
            .name("collector")
            .sliding_window(SlidingWindow::count(10))
            .minimum_calls(5)
            .failure_rate_threshold(50.0)
            .wait_in_open(Duration::from_secs(2))
            .permitted_calls_in_half_open(1)
            .on_event(move |e: &BreakerEvent| {
                events.say(format!("breaker: {} -> {} ({})", e.from, e.to, e.reason));
            })
            .build()?,
    );
    let stack = ResilienceStack::builder()
        .retry(
            RetryPolicy::builder()
                .name("collector")
                .max_attempts(4)
                .initial_backoff(Duration::from_millis(50))
                .max_backoff(Duration::from_millis(200))
                .max_elapsed(Duration::from_secs(5))
                // Honor Retry-After up to 1 s; an open breaker (2 s) is not waited for.
                .max_server_delay(Duration::from_secs(1))
                .build(),
        )
        .breaker(breaker.clone())
        .attempt_timeout(Duration::from_millis(300))
        .build();
    let client = stack.layer(HttpExporter::new(addr, transcript.clone())?);
    let payload = Bytes::from_static(b"\x0a\x00"); // an ExportTraceServiceRequest with one empty ResourceSpans

    // Sends one export through the stack and says what happened.
    let export = |what: &'static str| {
        let client = client.clone();
        let payload = payload.clone();
        let transcript = transcript.clone();
        let control = Arc::clone(&control);
        async move {
            transcript.say(format!("export: {what}"));
            let hits = control.hits();
            let started = Instant::now();
            let result = client.oneshot(payload).await;
            let took = started.elapsed();
            let requests = control.hits() - hits;
            match &result {
                Ok(()) => {
                    transcript.say(format!("  => ok after {requests} request(s) in {took:?}"))
                }
                Err(e) => transcript.say(format!(
                    "  => {} after {requests} request(s) in {took:?}: {e}",
                    e.reason()
                )),
            }
            (result, requests, took)
        }
    };

    transcript.say("--- 1. healthy server");
    for _ in 0..2 {
        let _ = export("healthy").await;
    }

    transcript.say("--- 2. 503 with Retry-After: 1 (once): the retry waits 1 s");
    control.set(Mode::Unavailable, 1);
    let (result, requests, took) = export("server busy").await;
    report.retry_after = (result.is_ok(), requests, took);

    transcript.say("--- 3. 500 (once): final under OTLP, not retried");
    control.set(Mode::Internal, 1);
    let (result, requests, _) = export("server bug").await;
    report.internal = (requests, matches!(result, Err(RetryError::NotRetryable(_))));

    transcript
        .say("--- 4. slow server (once): the 300 ms attempt timeout fires, the retry succeeds");
    control.set(Mode::Slow, 1);
    let (result, requests, _) = export("server slow").await;
    report.slow = (result.is_ok(), requests);

    transcript.say("--- 5. 502 until further notice: the breaker opens, then rejects fast");
    control.set(Mode::BadGateway, u32::MAX);
    for _ in 0..5 {
        if breaker.state() == otlp_resilience::breaker::BreakerState::Open {
            break;
        }
        let _ = export("upstream down").await;
    }
    report.breaker_opened = breaker.state() == otlp_resilience::breaker::BreakerState::Open;
    let mut rejected_requests = 0;
    for _ in 0..3 {
        let (result, requests, took) = export("while open").await;
        if let Err(RetryError::ServerDelayTooLong { requested, .. }) = &result {
            transcript.say(format!("  (the breaker says: come back in {requested:?})"));
        }
        rejected_requests += requests;
        report.rejected.0.push(took);
    }
    report.rejected.1 = rejected_requests;

    transcript.say("--- 6. the server recovers; after the open wait the probe closes the breaker");
    control.set(Mode::Ok, 0);
    if let Some(until) = breaker.snapshot().open_until {
        tokio::time::sleep_until(until).await;
    }
    let (result, _, _) = export("recovered").await;
    report.recovered = (
        result.is_ok(),
        breaker.state() == otlp_resilience::breaker::BreakerState::Closed,
    );

    transcript.say("--- 7. inbound rate limit (5/s, burst 5, per tenant): a burst of 10");
    let raw: Client<HttpConnector, Full<Bytes>> = {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Client::builder(TokioExecutor::new()).build(connector)
    };
    let url: http::Uri = format!("http://{addr}/v1/traces").parse()?;
    let burst = (0..10).map(|_| {
        let raw = raw.clone();
        let url = url.clone();
        let payload = payload.clone();
        async move {
            let request = Request::post(url)
                .header("x-tenant", "burst")
                .body(Full::new(payload))
                .map_err(|e| e.to_string())?;
            let response = raw.request(request).await.map_err(|e| e.to_string())?;
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Ok::<_, String>((response.status(), retry_after))
        }
    });
    let mut joins = Vec::new();
    for request in burst {
        joins.push(tokio::spawn(request));
    }
    for join in joins {
        match join.await {
            Ok(Ok((code, _))) if code.is_success() => report.burst.0 += 1,
            Ok(Ok((StatusCode::TOO_MANY_REQUESTS, retry_after))) => {
                report.burst.1 += 1;
                report.burst.2 = report.burst.2.take().or(retry_after);
            }
            Ok(Ok((code, _))) => transcript.say(format!("  unexpected {code}")),
            Ok(Err(e)) => transcript.say(format!("  request failed: {e}")),
            Err(e) => transcript.say(format!("  task failed: {e}")),
        }
    }
    transcript.say(format!(
        "  admitted {}, refused {} with 429 (Retry-After: {})",
        report.burst.0,
        report.burst.1,
        report.burst.2.as_deref().unwrap_or("-")
    ));

    server.abort();
    transcript.say("done");
    Ok(report)
}

fn run() -> Result<(Report, Transcript), Box<dyn std::error::Error + Send + Sync>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let transcript = Transcript::default();
    // Bounded: the scenario takes about 4 s; 20 s is a hard stop.
    let report = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), scenario(transcript.clone())).await
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    match report {
        Ok(report) => Ok((report?, transcript)),
        Err(_) => Err("the scenario did not finish within 20 s".into()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (report, _) = run()?;
    println!("\n{report:#?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_shows_every_middleware_at_work() {
        let (report, transcript) = match run() {
            Ok(done) => done,
            Err(e) => panic!("scenario failed: {e}"),
        };
        let lines = transcript.lines();
        let text = lines.join("\n");

        // Retry honored Retry-After: two requests, about a second apart.
        let (ok, requests, took) = report.retry_after;
        assert!(ok, "{text}");
        assert_eq!(requests, 2, "{text}");
        assert!(took >= Duration::from_millis(990), "{took:?}\n{text}");
        assert!(text.contains("Retry-After: 1"), "{text}");

        // 500 is final.
        assert_eq!(report.internal, (1, true), "{text}");

        // The slow attempt timed out, the retry succeeded.
        assert_eq!(report.slow, (true, 2), "{text}");

        // The breaker opened and rejected fast without calling the server.
        assert!(report.breaker_opened, "{text}");
        assert!(text.contains("breaker: closed -> open"), "{text}");
        assert_eq!(report.rejected.1, 0, "{text}");
        assert!(
            report
                .rejected
                .0
                .iter()
                .all(|d| *d < Duration::from_millis(100)),
            "{:?}\n{text}",
            report.rejected.0
        );

        // Half-open, then closed.
        assert_eq!(report.recovered, (true, true), "{text}");
        assert!(text.contains("breaker: open -> half_open"), "{text}");
        assert!(text.contains("breaker: half_open -> closed"), "{text}");

        // The burst: 5 admitted (a sixth if a cell refilled meanwhile), the rest 429.
        let (admitted, refused, retry_after) = &report.burst;
        assert!((5..=6).contains(admitted), "{report:?}\n{text}");
        assert_eq!(admitted + refused, 10, "{text}");
        assert_eq!(retry_after.as_deref(), Some("1"), "{text}");
    }
}
