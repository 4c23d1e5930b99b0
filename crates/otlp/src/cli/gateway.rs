//! `otlp gateway`: run the telemetry gateway.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use otlp_gateway::Gateway;
use otlp_gateway::config::{GatewayConfig, Overrides};

/// Run the telemetry gateway: OTLP in on gRPC and HTTP, queued and exported upstream (or
/// written to DATA_DIR/*.jsonl when no exporter is configured).
#[derive(Debug, Args)]
pub(crate) struct GatewayArgs {
    /// TOML configuration file (embedded defaults without one).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// OTLP/gRPC listen address (default 127.0.0.1:4317).
    #[arg(long, value_name = "ADDR")]
    grpc_addr: Option<String>,
    /// OTLP/HTTP listen address (default 127.0.0.1:4318).
    #[arg(long, value_name = "ADDR")]
    http_addr: Option<String>,
    /// Admin listen address: /healthz, /readyz, /metrics, /status (default 127.0.0.1:8888).
    #[arg(long, value_name = "ADDR")]
    admin_addr: Option<String>,
    /// Directory of the disk queues and the JSONL file sink (default ./otlp-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Add an upstream: grpc://host:port (OTLP/gRPC) or http(s)://host:port (OTLP/HTTP).
    #[arg(long = "export", value_name = "URL")]
    exports: Vec<String>,
}

impl GatewayArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            grpc_addr: self.grpc_addr.clone(),
            http_addr: self.http_addr.clone(),
            admin_addr: self.admin_addr.clone(),
            data_dir: self.data_dir.clone(),
            exports: self.exports.clone(),
        }
    }

    fn load(&self) -> anyhow::Result<GatewayConfig> {
        let env = |name: &str| std::env::var(name).ok();
        otlp_gateway::config::effective(self.config.as_deref(), &self.overrides(), &env).map_err(
            |e| match &self.config {
                Some(path) => anyhow::anyhow!("{}: {e}", path.display()),
                None => anyhow::anyhow!("{e}"),
            },
        )
    }
}

pub(crate) fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let config = args.load()?;
    otlp_gateway::logs::init(&config.log).map_err(|e| anyhow::anyhow!(e))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("otlp-gateway")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, config))
}

async fn serve(args: GatewayArgs, config: GatewayConfig) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut gateway = Gateway::start(config).await?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                match args.load() {
                    Ok(config) => { let _ = gateway.reload(config); }
                    Err(error) => {
                        gateway.metrics().reload_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        gateway.metrics().record_error(format!("reload refused: {error}"));
                        tracing::error!(%error, "configuration reload refused; the old configuration stays");
                    }
                }
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    gateway.shutdown().await;
    Ok(())
}
