//! What the SDK exporter benches of both transports share, so their numbers compare:
//! the batch of 512 `SpanData` of realistic shape, the in-process server thread (with
//! the path of its `stat` file), and the CPU measurement (interleaved rounds, process
//! CPU from `/proc/self/stat`, named threads' CPU subtracted to give the client side).
//!
//! Used by `otlp-transport-http`'s `benches/exporter.rs` as `mod support;` and by
//! `otlp-transport-grpc`'s benches with `#[path = ...]`. Not every user needs every item.
#![allow(dead_code)]

use std::borrow::Cow;
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

/// Spans per SDK export.
pub(crate) const BATCH: usize = 512;

/// Runs `serve` (given a listener on 127.0.0.1:0) on a thread of its own named `name`,
/// with a current-thread runtime; returns the address and the path of the thread's
/// `stat` file, so its CPU time can be told apart from the rest of the process.
pub(crate) fn server_thread<F, Fut>(name: &str, serve: F) -> (SocketAddr, String)
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let stat = thread_stat_path();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send((listener.local_addr().expect("addr"), stat))
                    .expect("report address");
                serve(listener).await;
            });
        })
        .expect("server thread");
    rx.recv().expect("server address")
}

/// The `stat` file of the calling thread.
pub(crate) fn thread_stat_path() -> String {
    std::fs::read_link("/proc/thread-self")
        .map(|p| format!("/proc/{}/stat", p.display()))
        .unwrap_or_default()
}

pub(crate) fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "checkout"),
            KeyValue::new("service.version", "1.4.2"),
            KeyValue::new("deployment.environment.name", "production"),
            KeyValue::new("host.name", "checkout-7f9c6d5b8-x2k4p"),
        ])
        .build()
}

/// 512 spans: a server span and client children, ten attributes each (static and owned
/// strings, integers), an event on every fourth, an error status on every tenth.
pub(crate) fn batch() -> Vec<SpanData> {
    let scope = InstrumentationScope::builder("checkout.http")
        .with_version("0.9.1")
        .build();
    let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    (0..BATCH as u64)
        .map(|i| {
            let start: SystemTime = t0 + Duration::from_micros(i * 250);
            let mut events = SpanEvents::default();
            if i % 4 == 0 {
                events.events.push(Event::new(
                    "cache.miss",
                    start + Duration::from_micros(30),
                    vec![KeyValue::new("cache.key", format!("cart:{}", 9000 + i))],
                    0,
                ));
            }
            SpanData {
                span_context: SpanContext::new(
                    TraceId::from(
                        0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128 + u128::from(i / 8),
                    ),
                    SpanId::from(0x00f0_67aa_0ba9_02b7 + i),
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::NONE,
                ),
                parent_span_id: if i % 8 == 0 {
                    SpanId::INVALID
                } else {
                    SpanId::from(0x00f0_67aa_0ba9_02b7 + i - i % 8)
                },
                parent_span_is_remote: false,
                span_kind: if i % 8 == 0 {
                    SpanKind::Server
                } else {
                    SpanKind::Client
                },
                name: if i % 8 == 0 {
                    Cow::Borrowed("POST /api/cart/{id}/checkout")
                } else {
                    Cow::Owned(format!("SELECT cart_items WHERE cart_id = ${}", i % 8))
                },
                start_time: start,
                end_time: start + Duration::from_micros(180 + i % 50),
                attributes: vec![
                    KeyValue::new("http.request.method", "POST"),
                    KeyValue::new("url.path", format!("/api/cart/{}/checkout", 9000 + i / 8)),
                    KeyValue::new("http.response.status_code", 200_i64),
                    KeyValue::new("server.address", "checkout.internal"),
                    KeyValue::new("server.port", 8443_i64),
                    KeyValue::new("network.protocol.version", "1.1"),
                    KeyValue::new(
                        "user_agent.original",
                        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)",
                    ),
                    KeyValue::new("db.system.name", "postgresql"),
                    KeyValue::new("db.namespace", "carts"),
                    KeyValue::new("enduser.id", format!("user-{}", 100_000 + i)),
                ],
                dropped_attributes_count: 0,
                events,
                links: SpanLinks::default(),
                status: if i % 10 == 9 {
                    Status::error("deadline exceeded")
                } else {
                    Status::Unset
                },
                instrumentation_scope: scope.clone(),
            }
        })
        .collect()
}

/// `utime + stime` in clock ticks from a `/proc/.../stat` file.
pub(crate) fn cpu_ticks(path: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

/// Linux reports CPU time in USER_HZ ticks, 100 per second on every mainstream kernel.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// One exporter under test for [`cpu_rounds`]: a name and one blocking export of an input.
pub(crate) type Subject<'a, T> = (&'a str, Box<dyn Fn(T) + 'a>);

/// How [`cpu_rounds`] runs.
pub(crate) struct Rounds<'a> {
    /// The table's heading.
    pub(crate) title: String,
    /// Items (spans) in one input.
    pub(crate) items: u64,
    /// Exports per round and subject.
    pub(crate) per_round: usize,
    /// Each subject runs rounds until its exports took this long in all.
    pub(crate) target: Duration,
    /// Threads whose CPU is reported on its own and not counted as the client's:
    /// a column name and the thread's `stat` path.
    pub(crate) threads: &'a [(&'a str, &'a str)],
}

/// What [`cpu_rounds`] measured for one subject.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) name: String,
    /// Median over rounds of items per second.
    pub(crate) rate: f64,
    /// Process CPU per item, µs.
    pub(crate) process: f64,
    /// CPU per item of each of [`Rounds::threads`], µs.
    pub(crate) threads: Vec<f64>,
    /// Process CPU minus the named threads', per item, µs.
    pub(crate) client: f64,
}

#[derive(Default, Clone)]
struct Totals {
    items: u64,
    wall: Duration,
    process_ticks: u64,
    thread_ticks: Vec<u64>,
    rounds: Vec<f64>,
}

/// Runs every subject in turn, `per_round` exports a round (inputs cloned before the
/// round), until each has run for `target`; process CPU time is read around each round
/// only. Prints a table and returns its rows.
pub(crate) fn cpu_rounds<T: Clone>(
    subjects: &[Subject<'_, T>],
    input: &T,
    rounds: &Rounds<'_>,
) -> Vec<Row> {
    // Warm up connections and allocators.
    for (_, export) in subjects {
        for _ in 0..3 {
            export(input.clone());
        }
    }
    let read = || -> (u64, Vec<u64>) {
        (
            cpu_ticks("/proc/self/stat"),
            rounds
                .threads
                .iter()
                .map(|(_, path)| cpu_ticks(path))
                .collect(),
        )
    };
    let mut totals = vec![
        Totals {
            thread_ticks: vec![0; rounds.threads.len()],
            ..Totals::default()
        };
        subjects.len()
    ];
    while totals.iter().any(|t| t.wall < rounds.target) {
        for (i, (_, export)) in subjects.iter().enumerate() {
            let inputs: Vec<T> = (0..rounds.per_round).map(|_| input.clone()).collect();
            let (p0, s0) = read();
            let started = tokio::time::Instant::now();
            for input in inputs {
                export(black_box(input));
            }
            let wall = started.elapsed();
            let (p1, s1) = read();
            let t = &mut totals[i];
            let items = rounds.per_round as u64 * rounds.items;
            t.items += items;
            t.wall += wall;
            t.process_ticks += p1 - p0;
            for (sum, (after, before)) in t.thread_ticks.iter_mut().zip(s1.iter().zip(&s0)) {
                *sum += after - before;
            }
            t.rounds.push(items as f64 / wall.as_secs_f64());
        }
    }
    let width = subjects
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0)
        .max(26);
    println!();
    println!("{}", rounds.title);
    let mut heading = format!(
        "{:<width$} {:>12} {:>14}",
        "exporter", "spans/s", "process µs/span"
    );
    for (name, _) in rounds.threads {
        heading.push_str(&format!(" {:>14}", format!("{name} µs/span")));
    }
    heading.push_str(&format!(" {:>14}", "client µs/span"));
    println!("{heading}");
    let per_item =
        |ticks: u64, items: u64| (TICK * ticks as u32).as_secs_f64() * 1e6 / items as f64;
    let mut rows = Vec::new();
    for ((name, _), t) in subjects.iter().zip(&totals) {
        let mut medians = t.rounds.clone();
        medians.sort_by(f64::total_cmp);
        let rate = medians[medians.len() / 2];
        let process = per_item(t.process_ticks, t.items);
        let threads: Vec<f64> = t
            .thread_ticks
            .iter()
            .map(|&ticks| per_item(ticks, t.items))
            .collect();
        let client = process - threads.iter().sum::<f64>();
        let mut line = format!("{name:<width$} {rate:>12.0} {process:>14.2}");
        for cpu in &threads {
            line.push_str(&format!(" {cpu:>14.2}"));
        }
        line.push_str(&format!(" {client:>14.2}"));
        println!("{line}");
        rows.push(Row {
            name: (*name).to_owned(),
            rate,
            process,
            threads,
            client,
        });
    }
    rows
}

/// Prints how `row` compares with `base`.
pub(crate) fn compare(row: &Row, base: &Row) {
    println!(
        "{}: {:.2}x the throughput of {}, {:.2}x its process CPU per span ({:.2}x client side)",
        row.name,
        row.rate / base.rate,
        base.name,
        row.process / base.process,
        row.client / base.client
    );
}
