//! The pass-through path: encoded request bytes sent as they are, no decode and no
//! re-encode. One pre-encoded trace request of 1000 spans x 10 string attributes (the
//! project's reference shape, about 380 KB), to a minimal gRPC server in this process
//! (`tonic::transport::Server` on 127.0.0.1:0, its own thread, answering an empty
//! `ExportTraceServiceResponse` once the message is read).
//!
//! ```text
//! cargo bench -p otlp-transport-grpc --bench passthrough
//! ```
//!
//! Rows:
//!
//! - `GrpcExporter::export_payload`: the exporter sending a `Payload`;
//! - `bare tonic client` (reference): `tonic::client::Grpc` with the same codec to the
//!   same server, what the exporter adds to a plain tonic call;
//! - `decode + export_traces` (reference): what a pipeline without pass-through does,
//!   a prost decode of the request then `export_traces`, which encodes it again;
//! - `forward`: a gateway without a queue. A tonic client sends the pre-encoded bytes
//!   to our `GrpcReceiver`, whose sink hands the `Payload` to a `GrpcExporter` that
//!   sends it to the minimal server; the call is answered when the upstream has
//!   answered. Once with the receiver's `Validation::Framing` (the framing walk that
//!   counts spans), once with its default `Validation::Full` (a prost decode to check).
//!
//! Two parts, in one run: criterion (bytes per second), then interleaved rounds with
//! process CPU from `/proc/self/stat` as in the exporter benches, where the server
//! thread and the gateway thread (receiver and its exporter, a current-thread runtime)
//! are reported apart from the client (the rest of the process).

#[path = "../../otlp-transport-http/benches/support/mod.rs"]
mod shared;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use http::uri::PathAndQuery;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::sink::{Accepted, BoxFuture, Sink};
use otlp_core::{Payload, Refusal, Signal};
use otlp_transport_grpc::codec::BytesCodec;
use otlp_transport_grpc::exporter::GrpcExporter;
use otlp_transport_grpc::receiver::{GrpcReceiver, GrpcReceiverConfig, Sinks, Validation};
use shared::Rounds;
use support::Work;
use tokio::runtime::Runtime;
use tonic::transport::Channel;

const SPANS: u64 = 1000;
const ATTRIBUTES: usize = 10;

/// Hands every payload to an exporter and answers when the upstream has answered.
struct Forward(GrpcExporter);

impl Sink for Forward {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        Box::pin(async move {
            self.0
                .export_payload(payload)
                .await
                .map_err(|failure| Refusal::Unavailable {
                    reason: failure.to_string(),
                    retry_after: Duration::from_secs(1),
                })
        })
    }
}

fn exporter(upstream: SocketAddr) -> GrpcExporter {
    GrpcExporter::builder()
        .no_env()
        .endpoint(format!("http://{upstream}"))
        .build()
        .expect("exporter")
}

/// The gateway thread: receivers forwarding to `upstream`, one per validation mode.
/// Returns their addresses in that order and the thread's `stat` path.
fn start_gateway(upstream: SocketAddr, validations: &[Validation]) -> (Vec<SocketAddr>, String) {
    let validations = validations.to_vec();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bench-gateway".into())
        .spawn(move || {
            let stat = shared::thread_stat_path();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("gateway runtime");
            runtime.block_on(async move {
                let sink: Arc<dyn Sink> = Arc::new(Forward(exporter(upstream)));
                let mut running = Vec::new();
                for validation in validations {
                    let config = GrpcReceiverConfig::builder()
                        .addr("127.0.0.1:0")
                        .validation(validation)
                        .build()
                        .expect("receiver config");
                    let receiver = GrpcReceiver::bind(
                        config,
                        Sinks::none().with(Signal::Traces, sink.clone()),
                    )
                    .await
                    .expect("bind receiver");
                    running.push(receiver);
                }
                let addrs = running.iter().map(|r| r.local_addr()).collect();
                tx.send((addrs, stat)).expect("report addresses");
                // Serves until the process ends (the receivers are dropped with it).
                std::future::pending::<()>().await;
            });
        })
        .expect("gateway thread");
    rx.recv().expect("gateway addresses")
}

/// A tonic client sending encoded bytes with the pass-through codec.
#[derive(Clone)]
struct RawClient(tonic::client::Grpc<Channel>);

impl RawClient {
    fn connect(runtime: &Runtime, addr: SocketAddr) -> RawClient {
        runtime.block_on(async {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .expect("endpoint")
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(5))
                .connect()
                .await
                .expect("connect");
            RawClient(tonic::client::Grpc::new(channel))
        })
    }

    async fn send(&self, body: Bytes) -> Result<(), tonic::Status> {
        let mut grpc = self.0.clone();
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path = PathAndQuery::from_static(Signal::Traces.grpc_path());
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            grpc.unary(tonic::Request::new(body), path, BytesCodec),
        )
        .await
        .map_err(|_| tonic::Status::deadline_exceeded("no answer within 10 s"))??;
        assert!(response.get_ref().is_empty(), "an empty response");
        Ok(())
    }
}

type SendFn = Box<dyn Fn(&Payload)>;

fn subjects(
    runtime: &Arc<Runtime>,
    upstream: SocketAddr,
    gateways: &[SocketAddr],
) -> Vec<(&'static str, SendFn)> {
    let ours = exporter(upstream);
    let export: SendFn = {
        let (runtime, ours) = (runtime.clone(), ours.clone());
        Box::new(move |payload: &Payload| {
            runtime
                .block_on(ours.export_payload(payload.clone()))
                .expect("export_payload");
        })
    };
    let bare: SendFn = {
        let (runtime, client) = (runtime.clone(), RawClient::connect(runtime, upstream));
        Box::new(move |payload: &Payload| {
            runtime
                .block_on(client.send(payload.body().clone()))
                .expect("bare tonic call");
        })
    };
    let reencode: SendFn = {
        let runtime = runtime.clone();
        Box::new(move |payload: &Payload| {
            let request: ExportTraceServiceRequest = payload.decode().expect("decode");
            runtime
                .block_on(ours.export_traces(&request))
                .expect("export_traces");
        })
    };
    let forward = |addr: SocketAddr| -> SendFn {
        let (runtime, client) = (runtime.clone(), RawClient::connect(runtime, addr));
        Box::new(move |payload: &Payload| {
            runtime
                .block_on(client.send(payload.body().clone()))
                .expect("forwarded call");
        })
    };
    vec![
        ("GrpcExporter::export_payload", export),
        ("bare tonic client (reference)", bare),
        ("decode + export_traces (reference)", reencode),
        (
            "forward, receiver Validation::Framing",
            forward(gateways[0]),
        ),
        ("forward, receiver Validation::Full", forward(gateways[1])),
    ]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let (upstream, server_stat) = shared::server_thread("bench-server", |listener| {
        support::serve_tonic(listener, Work::Nothing, 100)
    });
    let (gateways, gateway_stat) =
        start_gateway(upstream, &[Validation::Framing, Validation::Full]);
    let payload = Payload::from_request(&support::trace_request(SPANS, ATTRIBUTES));
    let bytes = payload.len() as u64;
    println!(
        "request: {SPANS} spans x {ATTRIBUTES} attributes, {bytes} bytes ({} bytes a span)",
        bytes / SPANS
    );
    let runtime = Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
    );
    let subjects = subjects(&runtime, upstream, &gateways);

    let mut criterion = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6))
        .configure_from_args();
    {
        let mut group = criterion.benchmark_group("grpc_passthrough_1000_spans");
        group.throughput(Throughput::Bytes(bytes));
        for (name, send) in &subjects {
            group.bench_function(*name, |b| b.iter(|| send(&payload)));
        }
        group.finish();
    }
    criterion.final_summary();

    let per_round = if quick { 2 } else { 20 };
    let rounds = Rounds {
        title: format!(
            "CPU per span, {SPANS}-span requests ({bytes} bytes), interleaved rounds of {per_round} requests:"
        ),
        items: SPANS,
        per_round,
        target: if quick {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(4)
        },
        threads: &[("server", &server_stat), ("gateway", &gateway_stat)],
    };
    let exports: Vec<shared::Subject<'_, Payload>> = subjects
        .iter()
        .map(|(name, send)| {
            let export: Box<dyn Fn(Payload) + '_> = Box::new(move |p: Payload| send(&p));
            (*name, export)
        })
        .collect();
    let rows = shared::cpu_rounds(&exports, &payload, &rounds);
    println!();
    println!("bytes per second (median round), and bytes per process CPU-second:");
    let bytes_per_span = bytes as f64 / SPANS as f64;
    for row in &rows {
        println!(
            "{:<40} {:>8.1} MB/s {:>8.1} MB per CPU-s",
            row.name,
            row.rate * bytes_per_span / 1e6,
            bytes_per_span / row.process,
        );
    }
}
