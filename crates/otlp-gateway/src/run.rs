//! Running the gateway: bind listeners, start the pipeline and the admin listener,
//! reload on request, drain on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use otlp_transport_grpc::receiver::{GrpcReceiver, GrpcReceiverConfig, RunningGrpcReceiver};
use otlp_transport_http::receiver::{
    AuthConfig as ReceiverAuth, HttpReceiver, HttpReceiverConfig, PemSource, RunningReceiver,
    TenantSource, TlsConfig as ReceiverTls, Validation,
};
use tokio::time::Instant;

use crate::admin::{
    AdminServer, AdminState, DegradationSource, GrpcReceiverSource, HttpReceiverSource,
    RunningAdmin,
};
use crate::config::{AuthMode, GatewayConfig, ListenerConfig, ValidationMode};
use crate::metrics::{GatewayMetrics, Phase};
use crate::pipeline::{Pipeline, PipelineError};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The pipeline (exporters, queues, degradation).
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A listener.
    #[error("{listener}: {message}")]
    Listener {
        /// `receivers.grpc`, `receivers.http`, `admin` or `self_telemetry`.
        listener: &'static str,
        /// Why.
        message: String,
    },
    /// The data directory.
    #[error("data_dir {path}: {message}")]
    DataDir {
        /// The path.
        path: String,
        /// Why.
        message: String,
    },
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    config: GatewayConfig,
    metrics: Arc<GatewayMetrics>,
    pipeline: Pipeline,
    grpc: Option<RunningGrpcReceiver>,
    http: Option<RunningReceiver>,
    admin: Option<RunningAdmin>,
    telemetry: Option<(
        tokio::task::JoinHandle<()>,
        tokio_util::sync::CancellationToken,
    )>,
}

fn listener_err(listener: &'static str) -> impl Fn(String) -> StartError {
    move |message| StartError::Listener { listener, message }
}

fn tls(listener: &ListenerConfig) -> Option<ReceiverTls> {
    let t = listener.tls.as_ref()?;
    let (cert, key) = (t.cert.as_ref()?, t.key.as_ref()?);
    let mut tls = ReceiverTls::new(PemSource::file(cert), PemSource::file(key));
    if let Some(ca) = &t.ca {
        tls = tls.with_client_ca(PemSource::file(ca));
    }
    Some(tls)
}

fn auth(config: &GatewayConfig) -> Result<Option<ReceiverAuth>, String> {
    let a = &config.auth;
    if a.mode == AuthMode::None {
        return Ok(None);
    }
    let mut keys = a.tokens.clone();
    if let Some(file) = &a.tokens_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("auth.tokens_file {}: {e}", file.display()))?;
        keys.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    Ok(Some(match a.mode {
        AuthMode::Bearer => ReceiverAuth::bearer(keys),
        _ => ReceiverAuth::api_key(a.header.clone().unwrap_or_else(|| "x-api-key".into()), keys),
    }))
}

fn tenant_source(config: &GatewayConfig) -> Result<TenantSource, String> {
    match &config.tenant.header {
        None => Ok(TenantSource::None),
        Some(h) => http::HeaderName::try_from(h.as_str())
            .map(TenantSource::Header)
            .map_err(|e| format!("tenant.header {h:?}: {e}")),
    }
}

fn validation(config: &GatewayConfig) -> Validation {
    match config.receivers.validation {
        ValidationMode::Full => Validation::Full,
        ValidationMode::Framing => Validation::Framing,
    }
}

fn http_config(config: &GatewayConfig) -> Result<HttpReceiverConfig, StartError> {
    let l = &config.receivers.http;
    let err = listener_err("receivers.http");
    let mut b = HttpReceiverConfig::builder()
        .addr(l.addr.clone())
        .max_body_bytes(l.max_request_bytes.as_usize())
        .validation(validation(config))
        .body_read_timeout(l.request_timeout.get())
        .idle_timeout(l.idle_timeout.get())
        .max_connections(l.max_connections)
        .shutdown_grace(config.shutdown_grace.get())
        .tenant(tenant_source(config).map_err(&err)?);
    if let Some(tls) = tls(l) {
        b = b.tls(tls);
    }
    if let Some(auth) = auth(config).map_err(&err)? {
        b = b.auth(auth);
    }
    if !l.cors_origins.is_empty() {
        b = b.cors(otlp_transport_http::receiver::CorsConfig::new(
            l.cors_origins.iter().cloned(),
        ));
    }
    b.build().map_err(|e| err(e.to_string()))
}

fn grpc_config(config: &GatewayConfig) -> Result<GrpcReceiverConfig, StartError> {
    let l = &config.receivers.grpc;
    let err = listener_err("receivers.grpc");
    let mut b = GrpcReceiverConfig::builder()
        .addr(l.addr.clone())
        .max_message_bytes(l.max_request_bytes.as_usize())
        .validation(validation(config))
        .message_read_timeout(l.request_timeout.get())
        .idle_timeout(l.idle_timeout.get())
        .max_connections(l.max_connections)
        .max_concurrent_calls(l.max_concurrent_requests)
        .overload_retry_after(config.limits.retry_after.get())
        .shutdown_grace(config.shutdown_grace.get())
        .tenant(tenant_source(config).map_err(&err)?);
    if let Some(tls) = tls(l) {
        b = b.tls(tls);
    }
    if let Some(auth) = auth(config).map_err(&err)? {
        b = b.auth(auth);
    }
    b.build().map_err(|e| err(e.to_string()))
}

/// The keys whose change a reload cannot apply in place (listeners, auth, queues, the
/// exporter set and groups, memory limits, the degradation controller, logs,
/// self-telemetry, and an exporter's workers, signals, breaker and queue, or anything of
/// a file exporter but `retry`); `None` when everything that changed can be applied.
///
/// What a reload applies: `limits.tenant_*`, `limits.max_tenants`, `limits.retry_after`
/// (for refusals decided by the pipeline), `tenant.resource_attribute`, `tenant.default`,
/// `degradation.trace_keep_ratio`, `degradation.log_min_severity`,
/// `degradation.strip_attributes`, `[batch]`, and per exporter `retry` and (network
/// exporters) `endpoint`, `headers`, `compression`, `timeout`, `tls`.
pub fn restart_needed(old: &GatewayConfig, new: &GatewayConfig) -> Option<Vec<String>> {
    let mut normalized = new.clone();
    normalized.limits.tenant_items_per_second = old.limits.tenant_items_per_second;
    normalized.limits.tenant_burst_items = old.limits.tenant_burst_items;
    normalized.limits.max_tenants = old.limits.max_tenants;
    normalized.limits.retry_after = old.limits.retry_after;
    normalized.tenant.resource_attribute = old.tenant.resource_attribute.clone();
    normalized.tenant.default = old.tenant.default.clone();
    normalized.degradation.trace_keep_ratio = old.degradation.trace_keep_ratio;
    normalized.degradation.log_min_severity = old.degradation.log_min_severity;
    normalized.degradation.strip_attributes = old.degradation.strip_attributes.clone();
    normalized.batch = old.batch.clone();
    if normalized.exporters.len() == old.exporters.len() {
        for (n, o) in normalized.exporters.iter_mut().zip(&old.exporters) {
            if n.name != o.name || n.kind != o.kind {
                continue;
            }
            n.retry = o.retry.clone();
            if n.kind != crate::config::ExporterKind::File {
                n.endpoint = o.endpoint.clone();
                n.headers = o.headers.clone();
                n.compression = o.compression;
                n.timeout = o.timeout;
                n.tls = o.tls.clone();
            }
        }
    }
    if normalized == *old {
        return None;
    }
    let (a, b) = (
        serde_json::to_value(old).unwrap_or_default(),
        serde_json::to_value(&normalized).unwrap_or_default(),
    );
    let mut keys = Vec::new();
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        for (key, value) in b {
            if a.get(key) != Some(value) {
                keys.push(key.clone());
            }
        }
    }
    if keys.is_empty() {
        keys.push("the configuration".into());
    }
    Some(keys)
}

/// The name of the file in the data directory that says where the listeners are
/// (`{"grpc": "127.0.0.1:4317", "http": ..., "admin": ...}`), for tools and tests that
/// start the gateway on port 0.
pub const LISTEN_FILE: &str = "listen.json";

fn write_listen_file(
    data_dir: &std::path::Path,
    grpc: Option<SocketAddr>,
    http: Option<SocketAddr>,
    admin: Option<SocketAddr>,
) {
    let mut map = serde_json::Map::new();
    for (key, addr) in [("grpc", grpc), ("http", http), ("admin", admin)] {
        if let Some(addr) = addr {
            map.insert(key.into(), serde_json::Value::String(addr.to_string()));
        }
    }
    let path = data_dir.join(LISTEN_FILE);
    let tmp = data_dir.join(format!("{LISTEN_FILE}.tmp"));
    let text = serde_json::Value::Object(map).to_string();
    if let Err(error) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
        tracing::warn!(path = %path.display(), %error, "cannot write the listen file");
    }
}

impl Gateway {
    /// Start everything `config` describes (already validated). Queues are replayed
    /// before the listeners open, so `/readyz` turns ready only when data can flow.
    ///
    /// # Errors
    ///
    /// [`StartError`] naming the part that failed.
    pub async fn start(config: GatewayConfig) -> Result<Gateway, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            message: e.to_string(),
        })?;
        let metrics = GatewayMetrics::new();
        let state = AdminState::new(metrics.clone());
        let admin = if config.admin.enabled {
            let addr: SocketAddr = config
                .admin
                .addr
                .parse()
                .map_err(|e| StartError::Listener {
                    listener: "admin",
                    message: format!("{:?}: {e}", config.admin.addr),
                })?;
            Some(
                AdminServer::bind(addr, state.clone())
                    .await
                    .map_err(|e| listener_err("admin")(e.to_string()))?,
            )
        } else {
            None
        };
        let mut pipeline = Pipeline::build(&config, metrics.clone()).await?;
        pipeline.start();
        let grpc = if config.receivers.grpc.enabled {
            let running = GrpcReceiver::bind(grpc_config(&config)?, pipeline.sinks())
                .await
                .map_err(|e| listener_err("receivers.grpc")(e.to_string()))?;
            state.add_source(
                GrpcReceiverSource::new(running.metrics())
                    .with_connections(running.listener_metrics()),
            );
            Some(running)
        } else {
            None
        };
        let http = if config.receivers.http.enabled {
            let running = HttpReceiver::bind(http_config(&config)?, pipeline.sinks())
                .await
                .map_err(|e| listener_err("receivers.http")(e.to_string()))?;
            state.add_source(HttpReceiverSource::new(running.metrics()));
            Some(running)
        } else {
            None
        };
        if let Some(handle) = pipeline.degradation() {
            state.add_source(DegradationSource(handle.clone()));
        }
        let stop = tokio_util::sync::CancellationToken::new();
        let telemetry =
            crate::self_telemetry::spawn(&config.self_telemetry, metrics.clone(), stop.clone())
                .map_err(|message| StartError::Listener {
                    listener: "self_telemetry",
                    message,
                })?
                .map(|task| (task, stop));
        write_listen_file(
            &config.data_dir,
            grpc.as_ref().map(RunningGrpcReceiver::local_addr),
            http.as_ref().map(RunningReceiver::local_addr),
            admin.as_ref().map(RunningAdmin::local_addr),
        );
        metrics.set_phase(Phase::Running);
        tracing::info!(
            grpc = ?grpc.as_ref().map(RunningGrpcReceiver::local_addr),
            http = ?http.as_ref().map(RunningReceiver::local_addr),
            admin = ?admin.as_ref().map(RunningAdmin::local_addr),
            routes = ?pipeline.routes().iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            data_dir = %config.data_dir.display(),
            "gateway started"
        );
        Ok(Gateway {
            config,
            metrics,
            pipeline,
            grpc,
            http,
            admin,
            telemetry,
        })
    }

    /// The OTLP/gRPC address, when that listener is on.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().map(RunningGrpcReceiver::local_addr)
    }

    /// The OTLP/HTTP address, when that listener is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(RunningReceiver::local_addr)
    }

    /// The admin address, when that listener is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(RunningAdmin::local_addr)
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<GatewayMetrics> {
        &self.metrics
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Apply a new configuration without dropping connections (SIGHUP). A change that
    /// cannot be applied in place ([`restart_needed`]) refuses the whole reload, naming
    /// the keys, and nothing is applied.
    ///
    /// # Errors
    ///
    /// Why the new configuration was not applied.
    pub fn reload(&mut self, config: GatewayConfig) -> Result<Vec<String>, String> {
        let result = match restart_needed(&self.config, &config) {
            Some(keys) => Err(format!(
                "{} changed (restart the gateway to apply)",
                keys.join(", ")
            )),
            None => self.pipeline.reload(&config).map_err(|e| e.to_string()),
        };
        match &result {
            Ok(changed) => {
                self.metrics
                    .reloads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.config = config;
                tracing::info!(?changed, "configuration reloaded");
            }
            Err(error) => {
                self.metrics
                    .reload_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.metrics
                    .record_error(format!("reload refused: {error}"));
                tracing::error!(%error, "configuration reload refused; the old configuration stays");
            }
        }
        result
    }

    /// Drain and stop (SIGTERM): `/readyz` turns 503, listeners stop accepting and finish
    /// in-flight requests, queued data is delivered until the grace period ends (disk
    /// queues keep the rest for the next start), exporters flush, then the admin listener
    /// closes.
    pub async fn shutdown(self) {
        let grace = self.config.shutdown_grace.get();
        let deadline = Instant::now() + grace;
        self.metrics.set_phase(Phase::Draining);
        tracing::info!(?grace, "draining");
        // Both listeners drain at once, within the grace period.
        let listener_grace = grace.min(Duration::from_secs(10));
        let grpc = async {
            if let Some(grpc) = self.grpc
                && let Err(error) = grpc.shutdown(listener_grace).await
            {
                tracing::warn!(%error, "gRPC listener shutdown");
            }
        };
        let http = async {
            if let Some(http) = self.http
                && let Err(error) = http.shutdown(listener_grace).await
            {
                tracing::warn!(%error, "HTTP listener shutdown");
            }
        };
        tokio::join!(grpc, http);
        let lost = self.pipeline.shutdown(deadline).await;
        for (route, entries) in lost {
            tracing::error!(%route, entries, "memory queue not drained within the grace period; its entries are lost");
        }
        if let Some((task, stop)) = self.telemetry {
            stop.cancel();
            // Its export is cut at once when stopped; this bound is a backstop.
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        if let Some(admin) = self.admin
            && let Err(error) = admin.shutdown(Duration::from_secs(1)).await
        {
            tracing::warn!(%error, "admin listener shutdown");
        }
        tracing::info!("stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> GatewayConfig {
        GatewayConfig::from_toml_str(text).unwrap()
    }

    const BASE: &str = r#"
[[exporters]]
name = "up"
kind = "grpc"
endpoint = "grpc://127.0.0.1:4317"
"#;

    #[test]
    fn reloadable_keys_apply_and_others_name_themselves() {
        let old = parse(BASE);
        let same = |extra: &str| restart_needed(&old, &parse(&format!("{BASE}{extra}")));
        assert_eq!(same(""), None);
        assert_eq!(same("[limits]\ntenant_items_per_second = 10\n"), None);
        assert_eq!(same("[batch]\nmax_items = 100\n"), None);
        assert_eq!(
            same("[auth]\nmode = \"bearer\"\ntokens = [\"t\"]\n"),
            Some(vec!["auth".to_owned()])
        );
        assert_eq!(
            same("[limits]\nmemory_soft = \"100MiB\"\n"),
            Some(vec!["limits".to_owned()])
        );
        let moved = parse(&BASE.replace("127.0.0.1:4317", "127.0.0.1:5317"));
        assert_eq!(restart_needed(&old, &moved), None);
        let workers = parse(&format!("{BASE}workers = 7\n"));
        assert_eq!(
            restart_needed(&old, &workers),
            Some(vec!["exporters".to_owned()])
        );
    }
}
