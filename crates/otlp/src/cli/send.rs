//! `otlp send`: generate realistic traces, metrics or logs and send them at a given rate.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use otlp_core::{Compression, Signal};
use otlp_gateway::config::HumanDuration;
use otlp_gateway::loadgen::send::{self, SendConfig, SendProtocol};

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Where to send: grpc://HOST:PORT (OTLP/gRPC), http://HOST:PORT or https://HOST:PORT
    /// (OTLP/HTTP protobuf; /v1/<signal> is appended).
    #[arg(long)]
    endpoint: String,
    /// Which signal to generate.
    #[arg(long, value_parser = parse_signal)]
    signal: Signal,
    /// Stop after this many items (spans, data points, log records). Default 10000
    /// when --duration is not given either.
    #[arg(long)]
    count: Option<u64>,
    /// Items per second; as fast as the endpoint takes them when omitted.
    #[arg(long)]
    rate: Option<f64>,
    /// Stop starting requests after this long, e.g. 30s, 5m.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Items per request.
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Protocol; from the endpoint's scheme when omitted (grpc:// gRPC, http(s):// HTTP).
    #[arg(long, value_enum)]
    protocol: Option<ProtocolArg>,
    /// Extra header (gRPC metadata) NAME=VALUE; repeatable.
    #[arg(long = "header", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Request compression.
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,
    /// Per-request timeout, e.g. 10s.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,
    /// Seed of the data generator (equal seeds give equal data).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of distinct services in the data.
    #[arg(long, default_value_t = 5)]
    services: usize,
    /// Share of error spans and ERROR log records, 0 to 1.
    #[arg(long, default_value_t = 0.01)]
    error_ratio: f64,
    /// Runtime worker threads (1: a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProtocolArg {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    Http,
    /// OTLP/HTTP with OTLP/JSON bodies.
    #[value(name = "http-json")]
    HttpJson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompressionArg {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

fn parse_signal(s: &str) -> Result<Signal, String> {
    s.parse()
        .map_err(|e: otlp_core::signal::UnknownSignal| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    HumanDuration::parse(s).map(HumanDuration::get)
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

pub(crate) fn run(args: SendArgs) -> anyhow::Result<()> {
    let config = SendConfig {
        protocol: args.protocol.map(|p| match p {
            ProtocolArg::Grpc => SendProtocol::Grpc,
            ProtocolArg::Http => SendProtocol::Http,
            ProtocolArg::HttpJson => SendProtocol::HttpJson,
        }),
        count: args.count,
        duration: args.duration,
        rate: args.rate,
        batch_items: args.batch,
        concurrency: args.concurrency,
        headers: args.headers,
        timeout: args.timeout,
        compression: match args.compression {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
        },
        seed: args.seed,
        services: args.services,
        error_ratio: args.error_ratio,
        ..SendConfig::new(args.endpoint, args.signal)
    };
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("starting the async runtime")?;
    let summary = runtime.block_on(async {
        let ctrl_c = async {
            // Without a signal handler, never stop early.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        send::send(config, ctrl_c).await
    })?;
    println!("{summary}");
    if summary.items_accepted == 0 {
        let why = summary
            .refused
            .values()
            .next()
            .map(|r| format!(": {}", r.example))
            .unwrap_or_default();
        bail!("nothing was accepted by {}{why}", summary.endpoint);
    }
    Ok(())
}
