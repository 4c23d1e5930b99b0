//! The gateway's pipeline end to end, in process, over real sockets: clients send OTLP to
//! `Gateway::start`, real OTLP receivers stand in for the upstreams (scripted to accept,
//! refuse as retryable or refuse as bad data), and every test checks what arrived (by span
//! id) together with the counters the gateway reports.
//!
//! Waits on real sockets are bounded (`pipeline_support::STEP`) and poll state or
//! metrics; nothing asserts on elapsed time.

mod pipeline_support;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use otlp_core::{ExportError, GrpcCode, Signal};
use otlp_degradation::DegradationLevel;
use otlp_gateway::metrics::{BreakerView, DropReason, Phase, RefuseReason};
use pipeline_support::*;
use tempfile::TempDir;

fn tempdir() -> TempDir {
    TempDir::new().expect("tempdir")
}

/// An exporter table.
fn exporter_toml(name: &str, upstream: &str, extra: &str) -> String {
    let kind = if upstream.starts_with("grpc://") {
        "grpc"
    } else {
        "http"
    };
    format!(
        r#"
[[exporters]]
name = "{name}"
kind = "{kind}"
endpoint = "{upstream}"
compression = "none"
{extra}
"#
    )
}

const MEMORY_QUEUE: &str = r#"
[queue]
kind = "memory"
max_bytes = "64MiB"
"#;

/// Ids `first .. first + n`.
fn ids(first: u64, n: u64) -> std::ops::Range<u64> {
    first..first + n
}

// --- 1. fan-out ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_delivers_every_span_to_every_exporter() {
    let grpc_up = Upstream::grpc().await;
    let http_up = Upstream::http().await;
    let dir = tempdir();
    let gw = start(config(
        dir.path(),
        &format!(
            "{MEMORY_QUEUE}{}{}",
            exporter_toml("up-grpc", &grpc_up.endpoint(), ""),
            exporter_toml("up-http", &http_up.endpoint(), "")
        ),
    ))
    .await;

    let client = grpc_client(gw.grpc_addr().expect("grpc on"), &[]);
    let http = gw.http_addr().expect("http on");
    for i in 0..10 {
        grpc_send(&client, traces(ids(i * 10, 10)))
            .await
            .expect("gRPC accepted");
        let reply = http_post(http, &traces(ids(1000 + i * 10, 10)), &[]).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let sent: Vec<u64> = ids(0, 100).chain(ids(1000, 100)).collect();

    eventually("both exporters deliver 200 spans", || {
        exported(&gw, "up-grpc", Signal::Traces) == 200
            && exported(&gw, "up-http", Signal::Traces) == 200
    })
    .await;
    assert!(
        exactly_once(&grpc_up.sink.span_ids(), sent.iter().copied()),
        "gRPC upstream: {:?}",
        counts(&grpc_up.sink.span_ids())
    );
    assert!(
        exactly_once(&http_up.sink.span_ids(), sent.iter().copied()),
        "HTTP upstream: {:?}",
        counts(&http_up.sink.span_ids())
    );

    let traces_counters = gw.metrics().signal(Signal::Traces);
    assert_eq!(traces_counters.requests.load(Relaxed), 20);
    assert_eq!(traces_counters.received_items.load(Relaxed), 200);
    assert_eq!(traces_counters.accepted_items.load(Relaxed), 200);
    for name in ["up-grpc", "up-http"] {
        let m = exporter(&gw, name);
        assert_eq!(m.exported_total(), 200, "{name}");
        assert_eq!(m.retryable_failures.load(Relaxed), 0, "{name}");
        assert_eq!(m.permanent_failures.load(Relaxed), 0, "{name}");
        let requests = m.exported_requests.load(Relaxed);
        assert!((1..=20).contains(&requests), "{name}: {requests} requests");
    }
    for reason in DropReason::ALL {
        assert_eq!(traces_counters.dropped_items(reason), 0, "{reason:?}");
    }
    bounded("shutdown", gw.shutdown()).await;
}

// --- 2. failover -----------------------------------------------------------------------

fn failover_group(members: &[&str]) -> String {
    let list: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        r#"
[[groups]]
name = "pair"
mode = "failover"
members = [{}]
"#,
        list.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_group_sends_everything_to_the_live_member() {
    let dead = endpoint(UpstreamKind::Grpc, free_addr());
    let live = Upstream::http().await;
    let dir = tempdir();
    let breaker = "circuit_breaker = { minimum_calls = 2, open_for = \"60s\" }";
    let gw = start(config(
        dir.path(),
        &format!(
            "{MEMORY_QUEUE}{}{}{}",
            exporter_toml("dead", &dead, breaker),
            exporter_toml("live", &live.endpoint(), ""),
            failover_group(&["dead", "live"])
        ),
    ))
    .await;
    let http = gw.http_addr().expect("http on");
    for i in 0..10 {
        let reply = http_post(http, &traces(ids(i * 10, 10)), &[]).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    eventually("the live member delivers everything", || {
        exported(&gw, "live", Signal::Traces) == 100
    })
    .await;
    assert!(
        exactly_once(&live.sink.span_ids(), ids(0, 100)),
        "{:?}",
        counts(&live.sink.span_ids())
    );
    let dead_metrics = exporter(&gw, "dead");
    assert_eq!(dead_metrics.exported_total(), 0);
    assert!(dead_metrics.retryable_failures.load(Relaxed) >= 2);
    assert_eq!(dead_metrics.permanent_failures.load(Relaxed), 0);
    assert_eq!(dead_metrics.breaker(), BreakerView::Open);
    let (_, last_error) = dead_metrics.last_error().expect("the dead member's error");
    assert!(last_error.starts_with("dead: "), "{last_error}");
    assert_eq!(exporter(&gw, "live").breaker(), BreakerView::Closed);
    assert_eq!(
        gw.metrics()
            .signal(Signal::Traces)
            .dropped_items(DropReason::Rejected),
        0
    );
    bounded("shutdown", gw.shutdown()).await;
}

/// A failed attempt in a group with a healthy member goes to the next member at once
/// (route.rs: "retried at once on the next one"), not to the same dead member again
/// until its breaker opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_tries_the_next_member_after_one_failure() {
    let dead = endpoint(UpstreamKind::Grpc, free_addr());
    let live = Upstream::grpc().await;
    let dir = tempdir();
    let gw = start(config(
        dir.path(),
        &format!(
            "{MEMORY_QUEUE}{}{}{}",
            exporter_toml("dead", &dead, ""),
            exporter_toml("live", &live.endpoint(), ""),
            failover_group(&["dead", "live"])
        ),
    ))
    .await;
    let reply = http_post(gw.http_addr().expect("http"), &traces(ids(0, 10)), &[]).await;
    assert_eq!(reply.status, 200);
    eventually("the live member delivers", || {
        exported(&gw, "live", Signal::Traces) == 10
    })
    .await;
    let failures = exporter(&gw, "dead").retryable_failures.load(Relaxed);
    assert_eq!(
        failures, 1,
        "the dead member was tried {failures} times before the batch went to the live one"
    );
    bounded("shutdown", gw.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_group_with_both_alive_uses_only_the_first() {
    let first = Upstream::grpc().await;
    let second = Upstream::http().await;
    let dir = tempdir();
    let gw = start(config(
        dir.path(),
        &format!(
            "{MEMORY_QUEUE}{}{}{}",
            exporter_toml("first", &first.endpoint(), ""),
            exporter_toml("second", &second.endpoint(), ""),
            failover_group(&["first", "second"])
        ),
    ))
    .await;
    let client = grpc_client(gw.grpc_addr().expect("grpc"), &[]);
    for i in 0..10 {
        grpc_send(&client, traces(ids(i * 10, 10)))
            .await
            .expect("accepted");
    }
    eventually("the first member delivers everything", || {
        exported(&gw, "first", Signal::Traces) == 100
    })
    .await;
    assert!(exactly_once(&first.sink.span_ids(), ids(0, 100)));
    assert_eq!(second.sink.calls.load(Relaxed), 0);
    assert_eq!(exporter(&gw, "second").exported_total(), 0);
    bounded("shutdown", gw.shutdown()).await;
}

/// Once the first member's breaker has opened and its upstream recovered, data goes back
/// to it after the open period (the breaker lets a probe through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_returns_to_the_first_member_once_it_recovers() {
    let first = Upstream::grpc().await;
    first.sink.refuse_unavailable(Duration::from_millis(10));
    let second = Upstream::grpc().await;
    let dir = tempdir();
    let breaker = "circuit_breaker = { minimum_calls = 2, open_for = \"300ms\" }";
    let gw = start(config(
        dir.path(),
        &format!(
            "{MEMORY_QUEUE}{}{}{}",
            exporter_toml("first", &first.endpoint(), breaker),
            exporter_toml("second", &second.endpoint(), ""),
            failover_group(&["first", "second"])
        ),
    ))
    .await;
    let http = gw.http_addr().expect("http");
    // Each batch is tried on the first member once, then at once on the second; the
    // first member's breaker opens after its `minimum_calls` (2) failures.
    for batch in 0..3u64 {
        assert_eq!(
            http_post(http, &traces(ids(batch * 5, 5)), &[])
                .await
                .status,
            200
        );
        eventually("the second member takes the batch", || {
            exported(&gw, "second", Signal::Traces) == (batch + 1) * 5
        })
        .await;
    }
    assert_eq!(exporter(&gw, "first").breaker(), BreakerView::Open);

    first.sink.answer_with(Answer::Accept);
    // Keep sending (bounded: 60 requests, 100 ms apart, well past the 300 ms open period)
    // until the first member gets data again.
    let mut sent: Vec<u64> = ids(0, 15).collect();
    for id in 100..160 {
        assert_eq!(http_post(http, &traces([id]), &[]).await.status, 200);
        sent.push(id);
        tokio::time::sleep(Duration::from_millis(100)).await;
        if exported(&gw, "first", Signal::Traces) > 0 {
            break;
        }
    }
    let total = sent.len() as u64;
    eventually(
        "everything sent is delivered by one member or the other",
        || {
            exported(&gw, "first", Signal::Traces) + exported(&gw, "second", Signal::Traces)
                == total
        },
    )
    .await;
    let mut all = first.sink.span_ids();
    all.extend(second.sink.span_ids());
    assert!(
        exactly_once(&all, sent.iter().copied()),
        "{:?}",
        counts(&all)
    );
    assert!(
        exported(&gw, "first", Signal::Traces) > 0,
        "the recovered first member never got data back (breaker {:?}); the second got {}",
        exporter(&gw, "first").breaker(),
        exported(&gw, "second", Signal::Traces)
    );
    bounded("shutdown", gw.shutdown()).await;
}

// --- 3. load balancing -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balance_group_spreads_batches_and_delivers_each_span_once() {
    let a = Upstream::grpc().await;
    let b = Upstream::http().await;
    let dir = tempdir();
    let gw = start(config(
        dir.path(),
        &format!(
            r#"{MEMORY_QUEUE}
[batch]
max_items = 10
linger = "0ms"
{}{}
[[groups]]
name = "pool"
mode = "load_balance"
members = ["a", "b"]
"#,
            exporter_toml("a", &a.endpoint(), ""),
            exporter_toml("b", &b.endpoint(), "")
        ),
    ))
    .await;
    let client = grpc_client(gw.grpc_addr().expect("grpc"), &[]);
    for i in 0..20 {
        grpc_send(&client, traces(ids(i * 10, 10)))
            .await
            .expect("accepted");
    }
    eventually("the pool delivers 200 spans", || {
        exported(&gw, "a", Signal::Traces) + exported(&gw, "b", Signal::Traces) == 200
    })
    .await;
    let mut all = a.sink.span_ids();
    all.extend(b.sink.span_ids());
    assert!(exactly_once(&all, ids(0, 200)), "{:?}", counts(&all));
    let (to_a, to_b) = (a.sink.items(Signal::Traces), b.sink.items(Signal::Traces));
    assert!(to_a > 0 && to_b > 0, "a got {to_a}, b got {to_b}");
    // Batches of 10 alternate between the two members.
    assert_eq!(to_a, 100);
    assert_eq!(to_b, 100);
    bounded("shutdown", gw.shutdown()).await;
}

// --- 4. signal routing -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_go_only_to_exporters_that_take_them_and_unrouted_is_counted() {
    let traces_up = Upstream::grpc().await;
    let metrics_up = Upstream::http().await;
    let dir = tempdir();
    let gw = start(config(
        dir.path(),
        &format!(
            "{MEMORY_QUEUE}{}{}",
            exporter_toml("t", &traces_up.endpoint(), "signals = [\"traces\"]"),
            exporter_toml("m", &metrics_up.endpoint(), "signals = [\"metrics\"]")
        ),
    ))
    .await;
    let http = gw.http_addr().expect("http");
    let client = grpc_client(gw.grpc_addr().expect("grpc"), &[]);
    assert_eq!(http_post(http, &traces(ids(0, 7)), &[]).await.status, 200);
    assert_eq!(http_post(http, &metrics(4), &[]).await.status, 200);
    // Logs have no route: accepted, dropped and counted, never queued.
    assert_eq!(http_post(http, &logs(6), &[]).await.status, 200);
    grpc_send(&client, logs(5)).await.expect("accepted");

    eventually("traces and metrics delivered", || {
        exported(&gw, "t", Signal::Traces) == 7 && exported(&gw, "m", Signal::Metrics) == 4
    })
    .await;
    assert_eq!(traces_up.sink.items(Signal::Traces), 7);
    assert_eq!(traces_up.sink.requests(Signal::Metrics), 0);
    assert_eq!(traces_up.sink.requests(Signal::Logs), 0);
    assert_eq!(metrics_up.sink.items(Signal::Metrics), 4);
    assert_eq!(metrics_up.sink.requests(Signal::Traces), 0);
    assert_eq!(metrics_up.sink.requests(Signal::Logs), 0);

    let m = gw.metrics();
    let logs_counters = m.signal(Signal::Logs);
    assert_eq!(logs_counters.received_items.load(Relaxed), 11);
    assert_eq!(logs_counters.dropped_items(DropReason::Unrouted), 11);
    assert_eq!(logs_counters.accepted_items.load(Relaxed), 0);
    assert_eq!(
        m.signal(Signal::Traces).dropped_items(DropReason::Unrouted),
        0
    );
    let t = exporter(&gw, "t");
    assert_eq!(t.exported_items[Signal::Logs.index()].load(Relaxed), 0);
    assert_eq!(t.exported_items[Signal::Metrics.index()].load(Relaxed), 0);
    bounded("shutdown", gw.shutdown()).await;
}

// --- 5. full queue -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_full_refuses_with_retry_delay_and_delivers_after_recovery() {
    let up = Upstream::grpc().await;
    up.sink.refuse_unavailable(Duration::from_millis(50));
    let dir = tempdir();
    let gw = start(config_with_listeners(
        dir.path(),
        "max_request_bytes = \"4KiB\"",
        &format!(
            r#"
[queue]
kind = "memory"
max_bytes = "8KiB"

[batch]
max_bytes = "4KiB"
linger = "0ms"

[limits]
retry_after = "2s"

[degradation]
enabled = false
{}"#,
            exporter_toml(
                "up",
                &up.endpoint(),
                "retry = { initial_backoff = \"20ms\", max_backoff = \"100ms\" }"
            )
        ),
    ))
    .await;
    let http = gw.http_addr().expect("http");
    let mut accepted: Vec<u64> = Vec::new();
    let mut refusal = None;
    for i in 0..100 {
        let batch: Vec<u64> = ids(i * 5, 5).collect();
        let reply = http_post(http, &traces(batch.clone()), &[]).await;
        if reply.status == 200 {
            accepted.extend(batch);
        } else {
            refusal = Some(reply);
            break;
        }
    }
    let refusal = refusal.expect("an 8 KiB queue fills within 100 requests");
    assert_eq!(refusal.status, 503, "{refusal:?}");
    assert_eq!(refusal.header("retry-after"), "2");
    assert!(!accepted.is_empty());

    let client = grpc_client(gw.grpc_addr().expect("grpc"), &[]);
    let error = grpc_send(&client, traces(ids(100_000, 5)))
        .await
        .expect_err("the queue is full");
    match &error {
        ExportError::Grpc {
            code,
            retry_delay,
            has_retry_info,
            ..
        } => {
            assert_eq!(*code, GrpcCode::Unavailable, "{error}");
            assert!(*has_retry_info, "{error}");
            assert_eq!(*retry_delay, Some(Duration::from_secs(2)), "{error}");
        }
        other => panic!("expected a gRPC status, got {other}"),
    }
    assert!(error.is_retryable());

    let traces_counters = gw.metrics().signal(Signal::Traces);
    assert_eq!(traces_counters.refused_requests(RefuseReason::QueueFull), 2);
    assert_eq!(traces_counters.refused_items(RefuseReason::QueueFull), 10);
    assert_eq!(
        traces_counters.accepted_items.load(Relaxed),
        accepted.len() as u64
    );
    assert!(up.sink.refused.load(Relaxed) > 0);

    // The upstream recovers: everything acknowledged arrives, once.
    up.sink.answer_with(Answer::Accept);
    let n = accepted.len() as u64;
    eventually("the backlog drains", || {
        exported(&gw, "up", Signal::Traces) == n
    })
    .await;
    assert!(
        exactly_once(&up.sink.span_ids(), accepted.iter().copied()),
        "{:?}",
        counts(&up.sink.span_ids())
    );
    // And the gateway takes data again.
    assert_eq!(
        http_post(http, &traces(ids(200_000, 5)), &[]).await.status,
        200
    );
    assert!(exporter(&gw, "up").retries.load(Relaxed) > 0);
    bounded("shutdown", gw.shutdown()).await;
}

// --- 6. disk queue across a restart ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_queue_keeps_acknowledged_data_across_a_restart() {
    let upstream_addr = free_addr();
    let dir = tempdir();
    let config_text = format!(
        r#"
[queue]
kind = "disk"
max_bytes = "64MiB"
segment_bytes = "1MiB"
fsync = "always"
{}"#,
        exporter_toml(
            "up",
            &endpoint(UpstreamKind::Grpc, upstream_addr),
            "retry = { initial_backoff = \"20ms\", max_backoff = \"200ms\" }"
        )
    );
    let mut cfg = config(dir.path(), &config_text);
    cfg.shutdown_grace = otlp_gateway::config::HumanDuration::secs(1);

    let gw = start(cfg.clone()).await;
    let client = grpc_client(gw.grpc_addr().expect("grpc"), &[]);
    let http = gw.http_addr().expect("http");
    for i in 0..5 {
        grpc_send(&client, traces(ids(i * 10, 10)))
            .await
            .expect("acknowledged");
        assert_eq!(
            http_post(http, &traces(ids(500 + i * 10, 10)), &[])
                .await
                .status,
            200
        );
    }
    assert_eq!(
        gw.metrics()
            .signal(Signal::Traces)
            .accepted_items
            .load(Relaxed),
        100
    );
    eventually("the exporter tried the dead upstream", || {
        exporter(&gw, "up").retryable_failures.load(Relaxed) > 0
    })
    .await;
    bounded("shutdown with the upstream down", gw.shutdown()).await;

    let up = Upstream::start(
        UpstreamKind::Grpc,
        &upstream_addr.to_string(),
        RecordingSink::new(),
    )
    .await;
    let gw = start(cfg).await;
    let sent: Vec<u64> = ids(0, 50).chain(ids(500, 50)).collect();
    eventually("the replayed queue is delivered", || {
        exported(&gw, "up", Signal::Traces) >= 100
    })
    .await;
    assert!(
        exactly_once(&up.sink.span_ids(), sent.iter().copied()),
        "{:?}",
        counts(&up.sink.span_ids())
    );
    let route = gw
        .metrics()
        .routes()
        .into_iter()
        .find(|r| r.name == "up")
        .expect("route up");
    assert_eq!(route.queue.kind, "disk");
    assert!(route.queue.replayed.load(Relaxed) >= 1);
    eventually("the queue is empty once delivered", || {
        route.queue.depth.load(Relaxed) == 0
    })
    .await;
    bounded("shutdown", gw.shutdown()).await;
    up.stop().await;
}

// --- 7. permanent upstream errors ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_upstream_error_drops_and_counts_then_moves_on() {
    let up = Upstream::http().await;
    up.sink
        .answer_with(Answer::Refuse(otlp_core::Refusal::BadData(
            "span name too long (test)".into(),
        )));
    let dir = tempdir();
    let gw = start(config(
        dir.path(),
        &format!("{MEMORY_QUEUE}{}", exporter_toml("up", &up.endpoint(), "")),
    ))
    .await;
    let http = gw.http_addr().expect("http");
    assert_eq!(http_post(http, &traces(ids(0, 10)), &[]).await.status, 200);
    let counters = gw.metrics().signal(Signal::Traces);
    eventually("the rejected batch is counted", || {
        counters.dropped_items(DropReason::Rejected) == 10
    })
    .await;
    let m = exporter(&gw, "up");
    assert_eq!(m.permanent_failures.load(Relaxed), 1);
    assert_eq!(m.retryable_failures.load(Relaxed), 0);
    assert_eq!(m.retries.load(Relaxed), 0);
    assert_eq!(up.sink.calls.load(Relaxed), 1, "a 400 is never retried");
    let (_, last_error) = m.last_error().expect("error recorded");
    assert!(last_error.contains("400"), "{last_error}");
    assert!(
        gw.metrics()
            .recent_errors()
            .iter()
            .any(|(_, e)| e.contains("refused 10 traces items permanently")),
        "{:?}",
        gw.metrics().recent_errors()
    );

    up.sink.answer_with(Answer::Accept);
    assert_eq!(
        http_post(http, &traces(ids(100, 10)), &[]).await.status,
        200
    );
    eventually("later data is delivered", || {
        exported(&gw, "up", Signal::Traces) == 10
    })
    .await;
    assert!(exactly_once(&up.sink.span_ids(), ids(100, 10)));
    assert_eq!(counters.dropped_items(DropReason::Rejected), 10);
    assert_eq!(up.sink.calls.load(Relaxed), 2);
    bounded("shutdown", gw.shutdown()).await;
}

// --- 8. per-tenant rate limit --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_over_its_rate_is_throttled_and_others_are_not() {
    let up = Upstream::grpc().await;
    let dir = tempdir();
    let gw = start(config(
        dir.path(),
        &format!(
            r#"{MEMORY_QUEUE}
[tenant]
header = "x-tenant"

[limits]
tenant_items_per_second = 1
tenant_burst_items = 10
{}"#,
            exporter_toml("up", &up.endpoint(), "")
        ),
    ))
    .await;
    let http = gw.http_addr().expect("http");
    let a = [("x-tenant", "a")];
    assert_eq!(http_post(http, &traces(ids(0, 10)), &a).await.status, 200);
    let throttled = http_post(http, &traces(ids(10, 5)), &a).await;
    assert_eq!(throttled.status, 429, "{throttled:?}");
    let secs: u64 = throttled
        .header("retry-after")
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After in seconds: {throttled:?}"));
    // 5 items missing at 1 item/s.
    assert!((4..=5).contains(&secs), "Retry-After: {secs}");

    let client_a = grpc_client(gw.grpc_addr().expect("grpc"), &a);
    let error = grpc_send(&client_a, traces(ids(20, 5)))
        .await
        .expect_err("tenant a is over its rate");
    match &error {
        ExportError::Grpc {
            code,
            retry_delay,
            has_retry_info,
            ..
        } => {
            assert_eq!(*code, GrpcCode::ResourceExhausted, "{error}");
            assert!(*has_retry_info, "{error}");
            assert!(
                retry_delay.is_some_and(|d| d >= Duration::from_secs(1)),
                "{error}"
            );
        }
        other => panic!("expected a gRPC status, got {other}"),
    }
    assert!(error.is_retryable(), "RESOURCE_EXHAUSTED with RetryInfo");

    // Tenant b has its own bucket, on either transport.
    let b = [("x-tenant", "b")];
    assert_eq!(http_post(http, &traces(ids(100, 5)), &b).await.status, 200);
    let client_b = grpc_client(gw.grpc_addr().expect("grpc"), &b);
    grpc_send(&client_b, traces(ids(105, 5)))
        .await
        .expect("tenant b is within its rate");

    let counters = gw.metrics().signal(Signal::Traces);
    assert_eq!(counters.refused_requests(RefuseReason::RateLimited), 2);
    assert_eq!(counters.refused_items(RefuseReason::RateLimited), 10);
    eventually("accepted spans delivered", || {
        exported(&gw, "up", Signal::Traces) == 20
    })
    .await;
    assert!(exactly_once(
        &up.sink.span_ids(),
        ids(0, 10).chain(ids(100, 10))
    ));
    bounded("shutdown", gw.shutdown()).await;
}

// --- 9. degradation ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_heavy_degradation_keeps_errors_and_samples_the_rest() {
    let up = Upstream::grpc().await;
    let dir = tempdir();
    let gw = start(config(
        dir.path(),
        &format!("{MEMORY_QUEUE}{}", exporter_toml("up", &up.endpoint(), "")),
    ))
    .await;
    let handle = gw.pipeline().degradation().expect("degradation is on");
    handle.pin(DegradationLevel::Heavy);
    assert_eq!(handle.level(), DegradationLevel::Heavy);

    // 10 requests of 20 spans; every 10th span is an error.
    let http = gw.http_addr().expect("http");
    let mut errors = BTreeSet::new();
    for r in 0..10u64 {
        let spans = ids(r * 20, 20)
            .map(|id| {
                let error = id % 10 == 3;
                if error {
                    errors.insert(id);
                }
                span(id, error)
            })
            .collect();
        assert_eq!(http_post(http, &traces_of(spans), &[]).await.status, 200);
    }
    let counters = gw.metrics().signal(Signal::Traces);
    let accepted = counters.accepted_items.load(Relaxed);
    let sampled = counters.dropped_items(DropReason::Sampled);
    assert_eq!(accepted + sampled, 200, "every span kept or counted");
    eventually("kept spans delivered", || {
        exported(&gw, "up", Signal::Traces) == accepted
    })
    .await;
    let arrived = up.sink.span_ids();
    assert_eq!(arrived.len() as u64, accepted);
    let arrived_set: BTreeSet<u64> = arrived.iter().copied().collect();
    assert_eq!(arrived_set.len(), arrived.len(), "no duplicates");
    assert!(
        errors.is_subset(&arrived_set),
        "error spans lost: {:?}",
        errors.difference(&arrived_set).collect::<Vec<_>>()
    );
    let others_kept = arrived_set.difference(&errors).count();
    // Heavy keeps 10% of the 180 other spans: some, far from all.
    assert!(
        (1..90).contains(&others_kept),
        "{others_kept} of 180 non-error spans kept at Heavy"
    );
    assert_eq!(sampled, 180 - others_kept as u64);
    bounded("shutdown", gw.shutdown()).await;
}

// --- 10. reload ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_moves_an_exporter_and_refuses_new_exporters() {
    let old = Upstream::grpc().await;
    let new = Upstream::grpc().await;
    let dir = tempdir();
    let body = |endpoint: &str, extra: &str| {
        format!("{MEMORY_QUEUE}{}{extra}", exporter_toml("up", endpoint, ""))
    };
    let mut gw = start(config(dir.path(), &body(&old.endpoint(), ""))).await;
    let http = gw.http_addr().expect("http");
    assert_eq!(http_post(http, &traces(ids(0, 10)), &[]).await.status, 200);
    eventually("first batch at the old upstream", || {
        old.sink.items(Signal::Traces) == 10
    })
    .await;

    let changed = gw
        .reload(config(dir.path(), &body(&new.endpoint(), "")))
        .expect("an endpoint change reloads");
    assert!(
        changed.iter().any(|c| c == "exporter up"),
        "changed: {changed:?}"
    );
    assert_eq!(gw.metrics().reloads.load(Relaxed), 1);
    assert_eq!(gw.config().exporters[0].endpoint, new.endpoint());

    assert_eq!(
        http_post(http, &traces(ids(100, 10)), &[]).await.status,
        200
    );
    eventually("new data at the new upstream", || {
        new.sink.items(Signal::Traces) == 10
    })
    .await;
    assert!(exactly_once(&new.sink.span_ids(), ids(100, 10)));
    assert!(exactly_once(&old.sink.span_ids(), ids(0, 10)));

    // Adding an exporter needs a restart: refused, counted, nothing changes.
    let added = exporter_toml("extra", &old.endpoint(), "");
    let error = gw
        .reload(config(dir.path(), &body(&new.endpoint(), &added)))
        .expect_err("adding an exporter needs a restart");
    assert!(error.contains("restart"), "{error}");
    assert_eq!(gw.metrics().reload_failures.load(Relaxed), 1);
    assert_eq!(gw.metrics().reloads.load(Relaxed), 1);
    assert_eq!(gw.config().exporters.len(), 1);
    assert!(
        gw.metrics()
            .recent_errors()
            .iter()
            .any(|(_, e)| e.starts_with("reload refused")),
    );
    assert_eq!(
        http_post(http, &traces(ids(200, 10)), &[]).await.status,
        200
    );
    eventually("the running config still delivers", || {
        new.sink.items(Signal::Traces) == 20
    })
    .await;
    bounded("shutdown", gw.shutdown()).await;
}

/// After a reload, what the metrics registry (and so `/metrics`, `/status`) says about
/// the exporter's endpoint is the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_shows_the_new_endpoint_in_metrics() {
    let old = Upstream::grpc().await;
    let new = Upstream::grpc().await;
    let dir = tempdir();
    let body = |endpoint: &str| format!("{MEMORY_QUEUE}{}", exporter_toml("up", endpoint, ""));
    let mut gw = start(config(dir.path(), &body(&old.endpoint()))).await;
    gw.reload(config(dir.path(), &body(&new.endpoint())))
        .expect("reload");
    let shown = exporter(&gw, "up").endpoint();
    assert!(
        shown.contains(&new.addr.to_string()),
        "metrics show endpoint {shown} after moving to {}",
        new.endpoint()
    );
    bounded("shutdown", gw.shutdown()).await;
}

// --- 11. draining --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_new_requests_and_delivers_what_was_accepted() {
    let up = Upstream::grpc().await;
    up.sink.close_gate();
    let dir = tempdir();
    let gw = start(config(
        dir.path(),
        &format!("{MEMORY_QUEUE}{}", exporter_toml("up", &up.endpoint(), "")),
    ))
    .await;
    let http = gw.http_addr().expect("http");
    let grpc = gw.grpc_addr().expect("grpc");
    for i in 0..5 {
        assert_eq!(
            http_post(http, &traces(ids(i * 10, 10)), &[]).await.status,
            200
        );
    }
    eventually("the exporter is busy upstream", || {
        up.sink.calls.load(Relaxed) >= 1
    })
    .await;

    let metrics = gw.metrics().clone();
    let shutdown = tokio::spawn(gw.shutdown());
    eventually("draining", || metrics.phase() == Phase::Draining).await;

    // New requests: refused with a retryable status, or the listener is already gone.
    match http_send(http, &traces(ids(900, 3)), &[]).await {
        Ok(reply) => {
            assert_eq!(reply.status, 503, "{reply:?}");
            assert!(!reply.header("retry-after").is_empty());
        }
        Err(_closed) => {}
    }
    let client = grpc_client(grpc, &[]);
    let error = grpc_send(&client, traces(ids(950, 3)))
        .await
        .expect_err("draining gateways take nothing");
    assert!(error.is_retryable(), "{error}");

    up.sink.open_gate();
    bounded("shutdown completes", shutdown)
        .await
        .expect("shutdown task");
    assert!(
        exactly_once(&up.sink.span_ids(), ids(0, 50)),
        "{:?}",
        counts(&up.sink.span_ids())
    );
    let traces_counters = metrics.signal(Signal::Traces);
    assert_eq!(traces_counters.accepted_items.load(Relaxed), 50);
    let route = metrics.routes().into_iter().next().expect("one route");
    assert_eq!(route.queue.depth.load(Relaxed), 0, "nothing left behind");
    assert_eq!(route.exporters[0].exported_total(), 50);
}

// --- 12. auth --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_auth_refuses_missing_and_wrong_tokens() {
    let up = Upstream::http().await;
    let dir = tempdir();
    let gw = start(config(
        dir.path(),
        &format!(
            r#"{MEMORY_QUEUE}
[auth]
mode = "bearer"
tokens = ["s3cret", "other"]
{}"#,
            exporter_toml("up", &up.endpoint(), "")
        ),
    ))
    .await;
    let http = gw.http_addr().expect("http");
    let grpc = gw.grpc_addr().expect("grpc");

    let none = http_post(http, &traces(ids(0, 3)), &[]).await;
    assert_eq!(none.status, 401, "{none:?}");
    assert!(
        none.header("www-authenticate").starts_with("Bearer"),
        "{none:?}"
    );
    let wrong = http_post(
        http,
        &traces(ids(0, 3)),
        &[("authorization", "Bearer nope")],
    )
    .await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    let error = grpc_send(&grpc_client(grpc, &[]), traces(ids(0, 3)))
        .await
        .expect_err("no token");
    assert!(
        matches!(
            error,
            ExportError::Grpc {
                code: GrpcCode::Unauthenticated,
                ..
            }
        ),
        "{error}"
    );
    assert!(!error.is_retryable());
    let error = grpc_send(
        &grpc_client(grpc, &[("authorization", "Bearer nope")]),
        traces(ids(0, 3)),
    )
    .await
    .expect_err("wrong token");
    assert!(
        matches!(
            error,
            ExportError::Grpc {
                code: GrpcCode::Unauthenticated,
                ..
            }
        ),
        "{error}"
    );
    // Refused before the pipeline: nothing reached it.
    assert_eq!(
        gw.metrics().signal(Signal::Traces).requests.load(Relaxed),
        0
    );

    let ok = http_post(
        http,
        &traces(ids(10, 3)),
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    grpc_send(
        &grpc_client(grpc, &[("authorization", "Bearer other")]),
        traces(ids(20, 3)),
    )
    .await
    .expect("right token");
    eventually("authorized data delivered", || {
        exported(&gw, "up", Signal::Traces) == 6
    })
    .await;
    assert!(exactly_once(
        &up.sink.span_ids(),
        ids(10, 3).chain(ids(20, 3))
    ));
    bounded("shutdown", gw.shutdown()).await;
}

// --- 13. batching ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_requests_are_joined_into_batches_of_at_most_max_items() {
    let up = Upstream::grpc().await;
    let dir = tempdir();
    let gw = start(config(
        dir.path(),
        &format!(
            r#"{MEMORY_QUEUE}
[batch]
max_items = 50
linger = "1s"
{}"#,
            exporter_toml("up", &up.endpoint(), "workers = 1")
        ),
    ))
    .await;
    let client = grpc_client(gw.grpc_addr().expect("grpc"), &[]);
    for i in 0..100 {
        grpc_send(&client, traces(ids(i * 5, 5)))
            .await
            .expect("accepted");
    }
    eventually("all 500 spans delivered", || {
        exported(&gw, "up", Signal::Traces) == 500
    })
    .await;
    assert!(exactly_once(&up.sink.span_ids(), ids(0, 500)));
    let payloads = up.sink.payloads();
    assert!(
        payloads.len() < 100,
        "{} upstream requests for 100 client requests",
        payloads.len()
    );
    // 500 spans in batches of at most 50: at least 10 requests.
    assert!(payloads.len() >= 10);
    for p in &payloads {
        assert!(p.items() <= 50, "a batch of {} items", p.items());
        // A joined batch is one valid request holding the joined resource lists.
        let request = p
            .decode::<otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest>()
            .expect("valid request");
        assert_eq!(request.resource_spans.len() as u64, p.items() / 5);
    }
    let m = exporter(&gw, "up");
    assert_eq!(m.exported_requests.load(Relaxed), payloads.len() as u64);
    bounded("shutdown", gw.shutdown()).await;
}

// --- configuration errors the tests rely on -------------------------------------------------

#[test]
fn a_group_naming_an_unknown_exporter_is_a_clear_error() {
    let dir = tempdir();
    let text = format!(
        r#"
data_dir = "{}"
[[exporters]]
name = "a"
kind = "grpc"
endpoint = "grpc://127.0.0.1:1"
[[groups]]
name = "g"
mode = "failover"
members = ["a", "nope"]
"#,
        dir.path().display()
    );
    let error =
        otlp_gateway::config::GatewayConfig::from_toml_str(&text).expect_err("unknown member");
    assert!(error.key.starts_with("groups[0].members"), "{error}");
    assert!(error.to_string().contains("nope"), "{error}");
}

/// One client's data that the upstream refuses permanently must not cost the other
/// clients whose requests were joined into the same batch: the batch is sent again entry
/// by entry and only the bad entry is dropped (and counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_entry_is_dropped_alone_from_its_batch() {
    let up = Upstream::grpc().await;
    up.sink
        .answer_with(Answer::RefuseSpanNamed("poison".into()));
    let dir = tempdir();
    let gw = start(config(
        dir.path(),
        &format!(
            "{MEMORY_QUEUE}[batch]\nlinger = \"500ms\"\n{}",
            exporter_toml("up", &up.endpoint(), "")
        ),
    ))
    .await;
    let client = grpc_client(gw.grpc_addr().expect("grpc"), &[]);
    let mut poison = span(1_000, false);
    poison.name = "poison".into();
    let (a, b, c) = tokio::join!(
        grpc_send(&client, traces(ids(0, 10))),
        grpc_send(&client, traces_of(vec![poison, span(1_001, false)])),
        grpc_send(&client, traces(ids(20, 10))),
    );
    a.expect("accepted");
    b.expect("accepted");
    c.expect("accepted");
    let counters = gw.metrics().signal(Signal::Traces);
    eventually("the poisoned entry is dropped", || {
        counters.dropped_items(DropReason::Rejected) == 2
    })
    .await;
    eventually("the good entries arrive", || up.sink.span_ids().len() >= 20).await;
    assert!(exactly_once(
        &up.sink.span_ids(),
        ids(0, 10).chain(ids(20, 10))
    ));
    bounded("shutdown", gw.shutdown()).await;
}

/// A request larger than `batch.max_bytes` is split by resource and span before export,
/// so an upstream with a smaller message limit is not handed a request it must refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_larger_than_a_batch_is_split_before_export() {
    let up = Upstream::grpc().await;
    let dir = tempdir();
    let gw = start(config(
        dir.path(),
        &format!(
            "{MEMORY_QUEUE}[batch]\nmax_bytes = \"64KiB\"\nmax_items = 300\n{}",
            exporter_toml("up", &up.endpoint(), "")
        ),
    ))
    .await;
    let big = traces(ids(0, 2_000));
    assert!(big.len() > 64 * 1024, "fixture too small: {}", big.len());
    let client = grpc_client(gw.grpc_addr().expect("grpc"), &[]);
    grpc_send(&client, big).await.expect("accepted");
    eventually("every span arrives", || up.sink.span_ids().len() >= 2_000).await;
    assert!(exactly_once(&up.sink.span_ids(), ids(0, 2_000)));
    let payloads = up.sink.payloads();
    assert!(payloads.len() >= 7, "{} requests", payloads.len());
    for p in &payloads {
        assert!(
            p.len() <= 64 * 1024 && p.items() <= 300,
            "{} bytes, {} items",
            p.len(),
            p.items()
        );
    }
    bounded("shutdown", gw.shutdown()).await;
}
