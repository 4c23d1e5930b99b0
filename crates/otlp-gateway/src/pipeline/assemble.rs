//! Building, starting, reloading and draining the pipeline.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use otlp_core::Signal;
use otlp_degradation::DegradationLevel;
use otlp_degradation::controller::{Controller, ControllerTask, DegradationHandle};
use otlp_degradation::memory_limiter::{MemoryLimiter, MemoryLimiterConfig, Threshold};
use otlp_degradation::policy::{DegradationPolicy, PolicyConfig};
use otlp_degradation::resources::Resources;
use otlp_degradation::trigger::{CpuTrigger, Thresholds, Trigger};
use otlp_transport_http::receiver::Sinks;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::exporters::{self, Member};
use super::ingress::{Ingress, IngressShared, TenantRule};
use super::queue::{DiskQueue, DiskQueueConfig, MemoryQueue, PopLimits, Queue};
use super::route::{Route, RouteMode, RouteSettings};
use super::tenant_limit::TenantLimiter;
use crate::config::{ExporterConfig, GatewayConfig, QueueConfig, QueueKind, SignalName};
use crate::metrics::{DropReason, GatewayMetrics};

/// Why the pipeline could not be built or reloaded.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// An exporter could not be built.
    #[error(transparent)]
    Exporter(#[from] exporters::BuildError),
    /// A queue could not be opened.
    #[error("queue of {route}: {message}")]
    Queue {
        /// The route.
        route: String,
        /// Why.
        message: String,
    },
    /// Degradation settings were rejected.
    #[error("degradation: {0}")]
    Degradation(String),
    /// A reload asked for something that needs a restart.
    #[error("{0} (restart the gateway to apply it)")]
    NeedsRestart(String),
}

/// The built pipeline.
#[derive(Debug)]
pub struct Pipeline {
    shared: Arc<IngressShared>,
    routes: Vec<Arc<Route>>,
    data_dir: PathBuf,
    controller: Option<Controller>,
    controller_task: Option<ControllerTask>,
    memory_monitor: Option<tokio::task::JoinHandle<()>>,
    background: JoinSet<()>,
    workers: JoinSet<()>,
    stop: CancellationToken,
}

/// The name of the exporter `otlp gateway` uses when none is configured.
pub const DEFAULT_FILE_EXPORTER: &str = "file";

/// The exporters of `config`, or the default JSONL file sink when there are none.
pub fn effective_exporters(config: &GatewayConfig) -> Vec<ExporterConfig> {
    if !config.exporters.is_empty() {
        return config.exporters.clone();
    }
    let template = r#"
        name = "file"
        kind = "file"
    "#;
    match toml::from_str::<ExporterConfig>(template) {
        Ok(file) => vec![file],
        Err(_) => Vec::new(),
    }
}

fn signals_of(names: &[SignalName]) -> Vec<Signal> {
    let set: BTreeSet<SignalName> = names.iter().copied().collect();
    set.into_iter().map(SignalName::signal).collect()
}

/// A route's queue: the exporter's own `queue`, else `[queue]`. The file sink gets the
/// same default as a network exporter (disk): its writes are buffered, so a disk queue in
/// front of it is what makes an acknowledged request survive a crash.
fn queue_config(config: &GatewayConfig, exporter: &ExporterConfig) -> QueueConfig {
    exporter
        .queue
        .clone()
        .unwrap_or_else(|| config.queue.clone())
}

async fn open_queue(
    route: &str,
    config: &QueueConfig,
    data_dir: &Path,
    retry_after: Duration,
) -> Result<Arc<dyn Queue>, PipelineError> {
    match config.kind {
        QueueKind::Memory => Ok(Arc::new(MemoryQueue::new(
            route,
            config.max_bytes.bytes(),
            retry_after,
        ))),
        QueueKind::Disk => {
            let disk = DiskQueueConfig {
                dir: data_dir.join("queue").join(route),
                name: route.to_owned(),
                max_bytes: config.max_bytes.bytes(),
                segment_bytes: config.segment_bytes.bytes(),
                fsync: config.fsync,
                fsync_interval: config.fsync_interval.get(),
                retry_after,
            };
            let queue = DiskQueue::open(disk)
                .await
                .map_err(|e| PipelineError::Queue {
                    route: route.to_owned(),
                    message: e.to_string(),
                })?;
            Ok(Arc::new(queue))
        }
    }
}

fn route_settings(config: &GatewayConfig, exporter: &ExporterConfig) -> RouteSettings {
    RouteSettings {
        pop: PopLimits {
            max_items: config.batch.max_items,
            max_bytes: config.batch.max_bytes.as_usize(),
            linger: config.batch.linger.get(),
        },
        retry: exporter.retry.clone(),
    }
}

fn policy_config(config: &GatewayConfig) -> PolicyConfig {
    let mut policy = PolicyConfig::default();
    for (i, level) in DegradationLevel::ALL.into_iter().skip(1).enumerate() {
        let rules = policy.level_mut(level);
        rules.keep_ratio = config.degradation.trace_keep_ratio[i];
        rules.drop_logs_below = otlp_core::proto::logs::v1::SeverityNumber::try_from(
            config.degradation.log_min_severity[i],
        )
        .ok()
        .filter(|s| (*s as i32) > 1);
    }
    policy.verbose_attributes = config.degradation.strip_attributes.clone();
    policy
}

/// The fill (0..=1) of the fullest queue: the degradation controller's main trigger.
#[derive(Debug)]
struct QueueFillTrigger {
    routes: Vec<Arc<Route>>,
}

impl Trigger for QueueFillTrigger {
    fn name(&self) -> &str {
        "queue_fill"
    }

    fn read(&mut self, _now: Instant) -> Option<f64> {
        self.routes
            .iter()
            .map(|r| r.queue.metrics().fill())
            .fold(None, |max: Option<f64>, f| {
                Some(max.map_or(f, |m| m.max(f)))
            })
    }
}

fn memory_limiter(config: &GatewayConfig) -> Option<MemoryLimiter> {
    let limits = &config.limits;
    let retry_after = limits.retry_after.get();
    let wanted = MemoryLimiterConfig {
        soft: Threshold::Bytes(limits.memory_soft.bytes()),
        hard: Threshold::Bytes(limits.memory_hard.bytes()),
        check_interval: limits.memory_check_interval.get(),
        retry_after,
        hard_retry_after: retry_after * 5,
    };
    match MemoryLimiter::new(wanted, Resources::detect()) {
        Ok(limiter) => Some(limiter),
        Err(error) => {
            tracing::warn!(%error, "memory limits do not fit this machine; using 80% / 90% of its memory");
            MemoryLimiter::new(
                MemoryLimiterConfig {
                    check_interval: limits.memory_check_interval.get(),
                    retry_after,
                    hard_retry_after: retry_after * 5,
                    ..MemoryLimiterConfig::default()
                },
                Resources::detect(),
            )
            .map_err(|error| tracing::error!(%error, "memory limiter unavailable"))
            .ok()
        }
    }
}

impl Pipeline {
    /// Build exporters, open (and replay) queues, and wire the ingress stages.
    ///
    /// # Errors
    ///
    /// [`PipelineError`] naming the exporter or route.
    pub async fn build(
        config: &GatewayConfig,
        metrics: Arc<GatewayMetrics>,
    ) -> Result<Pipeline, PipelineError> {
        let exporters = effective_exporters(config);
        let retry_after = config.limits.retry_after.get();
        let data_dir = config.data_dir.clone();
        let mut grouped = BTreeSet::new();
        let mut routes = Vec::new();
        for group in &config.groups {
            let members_config: Vec<&ExporterConfig> = group
                .members
                .iter()
                .filter_map(|m| exporters.iter().find(|e| &e.name == m))
                .collect();
            let Some(first) = members_config.first() else {
                continue;
            };
            let mut members = Vec::new();
            let mut signals = Vec::new();
            let mut workers = 0;
            for exporter in &members_config {
                grouped.insert(exporter.name.clone());
                members.push(exporters::build(exporter, &data_dir)?);
                signals.extend(exporter.signals.iter().copied());
                workers = workers.max(exporter.workers);
            }
            let queue = open_queue(
                &group.name,
                &queue_config(config, first),
                &data_dir,
                retry_after,
            )
            .await?;
            routes.push(Arc::new(Route::new(
                group.name.clone(),
                RouteMode::from(group.mode),
                signals_of(&signals),
                queue,
                members,
                workers,
                route_settings(config, first),
            )));
        }
        for exporter in exporters.iter().filter(|e| !grouped.contains(&e.name)) {
            let member: Member = exporters::build(exporter, &data_dir)?;
            let queue = open_queue(
                &exporter.name,
                &queue_config(config, exporter),
                &data_dir,
                retry_after,
            )
            .await?;
            routes.push(Arc::new(Route::new(
                exporter.name.clone(),
                RouteMode::Single,
                signals_of(&exporter.signals),
                queue,
                vec![member],
                exporter.workers,
                route_settings(config, exporter),
            )));
        }
        metrics.set_routes(routes.iter().map(|r| r.view()).collect());

        let (controller, handle) = if config.degradation.enabled {
            let d = &config.degradation;
            let mut builder = Controller::builder()
                .interval(d.interval.get())
                .cool_down(d.cool_down.get())
                .trigger(
                    QueueFillTrigger {
                        routes: routes.clone(),
                    },
                    Thresholds::with_gap(d.queue_fill, 0.1),
                );
            if let Some(cpu) = d.cpu {
                builder = builder.trigger(
                    CpuTrigger::new(Resources::detect()),
                    Thresholds::with_gap(cpu, 0.1),
                );
            }
            let controller = builder
                .build()
                .map_err(|e| PipelineError::Degradation(e.to_string()))?;
            let handle: DegradationHandle = controller.handle();
            (Some(controller), Some(handle))
        } else {
            (None, None)
        };
        let policy = DegradationPolicy::new(policy_config(config))
            .map_err(|e| PipelineError::Degradation(e.to_string()))?;

        let shared = Arc::new(IngressShared {
            metrics,
            routes: Signal::ALL
                .map(|signal| routes.iter().filter(|r| r.takes(signal)).cloned().collect()),
            tenants: TenantLimiter::new(
                config.limits.tenant_items_per_second,
                config.limits.tenant_burst_items,
                config.limits.max_tenants,
            ),
            tenant: RwLock::new(TenantRule {
                resource_attribute: config.tenant.resource_attribute.clone(),
                default: Arc::from(config.tenant.default.as_str()),
            }),
            memory: memory_limiter(config),
            degradation: handle,
            policy: RwLock::new(Arc::new(policy)),
            retry_after: RwLock::new(retry_after),
        });
        Ok(Pipeline {
            shared,
            routes,
            data_dir,
            controller,
            controller_task: None,
            memory_monitor: None,
            background: JoinSet::new(),
            workers: JoinSet::new(),
            stop: CancellationToken::new(),
        })
    }

    /// The sinks for the receivers (one [`Ingress`] for every signal).
    pub fn sinks(&self) -> Sinks {
        let ingress = Arc::new(Ingress {
            shared: self.shared.clone(),
        });
        Sinks::all(ingress)
    }

    /// The routes.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// The degradation handle, when degradation is on.
    pub fn degradation(&self) -> Option<&DegradationHandle> {
        self.shared.degradation.as_ref()
    }

    /// Start workers, the degradation controller and the memory monitor.
    pub fn start(&mut self) {
        let metrics = self.shared.metrics.clone();
        for route in &self.routes {
            route.spawn_workers(metrics.clone(), self.stop.clone(), &mut self.workers);
        }
        if let Some(controller) = self.controller.take() {
            self.controller_task = Some(controller.spawn());
        }
        if let Some(limiter) = &self.shared.memory {
            self.memory_monitor = Some(limiter.spawn_monitor());
        }
        let shared = self.shared.clone();
        let stop = self.stop.clone();
        let routes = self.routes.clone();
        self.background.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            let mut corrupt_seen = vec![0u64; routes.len()];
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                // Disk records that failed their checksum (at open after a crash, or
                // when read back): counted, never silent. Records, not items: a
                // damaged record's item count cannot be read.
                for (route, seen) in routes.iter().zip(corrupt_seen.iter_mut()) {
                    let corrupt = route.queue.corrupt_records();
                    if corrupt > *seen {
                        let new = corrupt - *seen;
                        *seen = corrupt;
                        if let Some(signal) = route.signals.first() {
                            shared.metrics.signal(*signal).dropped(DropReason::Corrupt, new);
                        }
                        shared.metrics.record_error(format!(
                            "queue {}: {new} corrupt records skipped",
                            route.name
                        ));
                        tracing::error!(route = %route.name, records = new, "corrupt queue records skipped");
                    }
                }
                if let Some(handle) = &shared.degradation {
                    shared
                        .metrics
                        .set_degradation_level(handle.level().index() as u8);
                }
                if let Ok(rss) = otlp_degradation::resources::ProcFs::new("/proc").rss_bytes() {
                    shared
                        .metrics
                        .memory_bytes
                        .store(rss, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }

    /// Apply a new configuration: limits, tenant rule, degradation policy, batch and retry
    /// settings, and exporter settings (endpoints, headers, timeouts, TLS) in place.
    /// Adding or removing exporters or groups, queue and listener changes need a restart.
    ///
    /// # Errors
    ///
    /// [`PipelineError`]; nothing is applied then.
    pub fn reload(&self, config: &GatewayConfig) -> Result<Vec<String>, PipelineError> {
        let exporters = effective_exporters(config);
        let mut wanted: Vec<String> = exporters.iter().map(|e| e.name.clone()).collect();
        wanted.sort();
        let mut have: Vec<String> = self
            .routes
            .iter()
            .flat_map(|r| r.members.iter().map(|m| m.name.clone()))
            .collect();
        have.sort();
        if wanted != have {
            return Err(PipelineError::NeedsRestart(format!(
                "exporters changed from {have:?} to {wanted:?}"
            )));
        }
        let policy = DegradationPolicy::new(policy_config(config))
            .map_err(|e| PipelineError::Degradation(e.to_string()))?;
        // Build every new transport first: a failure leaves everything as it was.
        let mut prepared = Vec::new();
        for route in &self.routes {
            for member in &route.members {
                let Some(new) = exporters.iter().find(|e| e.name == member.name) else {
                    continue;
                };
                prepared.push((route, member, new, member.prepare(new, &self.data_dir)?));
            }
        }
        let mut changed = Vec::new();
        for (route, member, new, transport) in prepared {
            if let Some(transport) = transport {
                member.apply(transport);
                changed.push(format!("exporter {}", member.name));
            }
            route.set_settings(route_settings(config, new));
        }
        let limits = &config.limits;
        self.shared.tenants.set_limits(
            limits.tenant_items_per_second,
            limits.tenant_burst_items,
            limits.max_tenants,
        );
        *self
            .shared
            .tenant
            .write()
            .unwrap_or_else(|e| e.into_inner()) = TenantRule {
            resource_attribute: config.tenant.resource_attribute.clone(),
            default: Arc::from(config.tenant.default.as_str()),
        };
        *self
            .shared
            .policy
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
        *self
            .shared
            .retry_after
            .write()
            .unwrap_or_else(|e| e.into_inner()) = limits.retry_after.get();
        changed.push("limits, tenant rule, degradation policy, batch and retry settings".into());
        Ok(changed)
    }

    /// Drain: close the queues (new pushes fail), let workers deliver what is queued
    /// until `deadline`, then stop them (leases being retried go back to disk queues),
    /// force queues to disk and shut exporters down (the file sink flushes).
    ///
    /// Returns the entries left undelivered in memory queues (lost, and counted as dropped
    /// for `shutdown`), per route.
    pub async fn shutdown(mut self, deadline: Instant) -> Vec<(String, u64)> {
        for route in &self.routes {
            route.queue.close();
        }
        let drained = tokio::time::timeout_at(deadline, async {
            while self.workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("grace period over; stopping exporters with data still queued");
        }
        self.stop.cancel();
        while self.workers.join_next().await.is_some() {}
        while self.background.join_next().await.is_some() {}
        // Stopped, not just dropped: its queue-fill trigger holds the routes, and a disk
        // queue's lock must be released when shutdown returns.
        if let Some(task) = self.controller_task.take() {
            let _ = task.stop().await;
        }
        if let Some(monitor) = self.memory_monitor.take() {
            monitor.abort();
        }
        let mut lost = Vec::new();
        for route in &self.routes {
            if let Err(error) = route.queue.sync().await {
                tracing::error!(route = %route.name, %error, "queue sync at shutdown failed");
            }
            if route.queue.metrics().kind == "memory" {
                // What a memory queue still holds is lost with the process: count it.
                let everything = PopLimits {
                    max_items: u64::MAX,
                    max_bytes: usize::MAX,
                    linger: Duration::ZERO,
                };
                let mut entries = 0;
                while let Ok(Some(lease)) =
                    tokio::time::timeout(Duration::from_secs(1), route.queue.pop(everything)).await
                {
                    for payload in &lease.entries {
                        self.shared
                            .metrics
                            .signal(payload.signal())
                            .dropped(DropReason::Shutdown, payload.items());
                    }
                    entries += lease.entries.len() as u64;
                    route.queue.ack(lease);
                }
                if entries > 0 {
                    lost.push((route.name.clone(), entries));
                }
            }
            for member in &route.members {
                if let Err(error) = member.exporter().shutdown().await {
                    tracing::warn!(exporter = %member.name, %error, "exporter shutdown");
                }
            }
        }
        lost
    }
}
