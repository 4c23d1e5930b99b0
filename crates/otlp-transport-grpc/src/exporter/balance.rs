//! Several endpoints of one upstream: the configured URLs, each host name resolved to
//! its addresses (again every `resolve_interval`), one backend per address with its own
//! connection and circuit breaker, and power-of-two-choices over calls in flight.
//!
//! A backend that re-resolution removes leaves the pool at once, so it gets no new
//! calls; calls under way hold an `Arc` to it and its channel, so they finish (or fail
//! and are retried elsewhere): nothing is lost. A backend that stays keeps its
//! connection and its breaker's history.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use http::{HeaderValue, Uri};
use otlp_core::ExportError;
use otlp_resilience::breaker::{
    BreakerOpen, CircuitBreaker, CircuitBreakerConfigBuilder, OwnedPermit,
};
use rustls::pki_types::ServerName;
use tokio::runtime::Handle;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use super::config::{GrpcExporterBuilder, Target};
use super::connector::{Connector, Tls};
use super::error::ConfigError;
use super::resolve::Resolve;

/// How many runtimes one backend keeps a channel for. A channel's connection task runs
/// on the runtime that created it and dies with it; an exporter used from several
/// runtimes (the SDK adapters' background runtime and the application's) gets one
/// channel on each.
const MAX_CHANNELS_PER_BACKEND: usize = 4;

/// What every connection of an upstream shares.
#[derive(Debug, Clone)]
struct ChannelOptions {
    connect_timeout: Duration,
    keep_alive_interval: Option<Duration>,
    keep_alive_timeout: Duration,
    keep_alive_while_idle: bool,
    user_agent: HeaderValue,
}

/// The backends of one set of endpoint URLs.
pub(crate) struct Upstream {
    /// The URLs, `, `-separated: the `endpoint` of failures and logs.
    pub(crate) name: Arc<str>,
    pub(crate) targets: Vec<Target>,
    tls: Option<Arc<rustls::ClientConfig>>,
    options: ChannelOptions,
    breaker: Option<CircuitBreakerConfigBuilder>,
    resolver: Arc<dyn Resolve>,
    resolve_interval: Option<Duration>,
    pool: RwLock<Arc<[Arc<Backend>]>>,
    resolved_at: Mutex<Option<Instant>>,
    refreshing: AtomicBool,
    refresh_lock: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("backends", &self.pool().len())
            .finish_non_exhaustive()
    }
}

impl Upstream {
    pub(crate) fn new(
        targets: Vec<Target>,
        tls: Option<Arc<rustls::ClientConfig>>,
        builder: &GrpcExporterBuilder,
    ) -> Result<Upstream, ConfigError> {
        let user_agent = HeaderValue::from_str(&builder.common.user_agent).map_err(|_| {
            ConfigError::InvalidUserAgent {
                value: builder.common.user_agent.clone(),
            }
        })?;
        if let Some(breaker) = &builder.common.breaker {
            // Checked once here, so building each backend's breaker later cannot fail.
            breaker
                .clone()
                .build()
                .map_err(ConfigError::CircuitBreaker)?;
        }
        for target in targets.iter().filter(|t| t.tls) {
            ServerName::try_from(target.host.clone()).map_err(|e| {
                ConfigError::InvalidEndpoint {
                    key: "endpoint".to_owned(),
                    value: target.url.to_string(),
                    reason: format!("{:?} cannot be a TLS server name: {e}", target.host),
                }
            })?;
        }
        let name = Arc::from(
            targets
                .iter()
                .map(|t| &*t.url)
                .collect::<Vec<_>>()
                .join(", "),
        );
        let upstream = Upstream {
            name,
            targets,
            tls,
            options: ChannelOptions {
                connect_timeout: builder.common.connect_timeout,
                keep_alive_interval: builder.keep_alive_interval,
                keep_alive_timeout: builder.keep_alive_timeout,
                keep_alive_while_idle: builder.keep_alive_while_idle,
                user_agent,
            },
            breaker: builder.common.breaker.clone(),
            resolver: Arc::clone(&builder.resolver),
            resolve_interval: builder.resolve_interval,
            pool: RwLock::new(Arc::from(Vec::new())),
            resolved_at: Mutex::new(None),
            refreshing: AtomicBool::new(false),
            refresh_lock: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(0),
        };
        // IP addresses need no resolution: their backends exist from the start.
        let fixed: Vec<Arc<Backend>> = upstream
            .targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.ip.map(|ip| (i, SocketAddr::new(ip, t.port))))
            .filter_map(|(i, addr)| upstream.backend(i, addr))
            .collect();
        *upstream
            .pool
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::from(fixed);
        Ok(upstream)
    }

    fn has_host_names(&self) -> bool {
        self.targets.iter().any(|t| t.ip.is_none())
    }

    /// The backends now.
    pub(crate) fn pool(&self) -> Arc<[Arc<Backend>]> {
        Arc::clone(&self.pool.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The backends to pick from for a call: resolves first if there are none yet, and
    /// starts a re-resolution in the background when the last one is too old.
    pub(crate) async fn backends(self: &Arc<Self>) -> Result<Arc<[Arc<Backend>]>, ExportError> {
        let pool = self.pool();
        if pool.is_empty() {
            self.refresh().await?;
            let pool = self.pool();
            if pool.is_empty() {
                return Err(ExportError::Transport(format!(
                    "{}: no address to call",
                    self.name
                )));
            }
            return Ok(pool);
        }
        if self.is_stale() && !self.refreshing.swap(true, Ordering::AcqRel) {
            let this = Arc::clone(self);
            tokio::spawn(async move {
                if let Err(e) = this.refresh().await {
                    tracing::warn!(upstream = %this.name, "{e}; calls keep going to the addresses resolved before");
                }
                this.refreshing.store(false, Ordering::Release);
            });
        }
        Ok(pool)
    }

    fn is_stale(&self) -> bool {
        let Some(interval) = self.resolve_interval else {
            return false;
        };
        if !self.has_host_names() {
            return false;
        }
        self.resolved_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none_or(|at| at.elapsed() >= interval)
    }

    /// Resolves every host name and replaces the pool: backends whose address is still
    /// there are kept (connection, breaker), new addresses get new backends. A host name
    /// that fails to resolve keeps its backends.
    pub(crate) async fn refresh(&self) -> Result<(), ExportError> {
        let _one_at_a_time = self.refresh_lock.lock().await;
        let current = self.pool();
        let mut wanted: Vec<(usize, SocketAddr)> = Vec::new();
        let mut errors = Vec::new();
        for (i, target) in self.targets.iter().enumerate() {
            if let Some(ip) = target.ip {
                wanted.push((i, SocketAddr::new(ip, target.port)));
                continue;
            }
            match self.resolver.resolve(&target.host, target.port).await {
                Ok(addrs) if !addrs.is_empty() => {
                    wanted.extend(addrs.into_iter().map(|a| (i, a)));
                }
                outcome => {
                    let why = match outcome {
                        Err(e) => e.to_string(),
                        Ok(_) => "no addresses".to_owned(),
                    };
                    errors.push(format!("cannot resolve {}: {why}", target.host));
                    wanted.extend(
                        current
                            .iter()
                            .filter(|b| b.target == i)
                            .map(|b| (i, b.addr)),
                    );
                }
            }
        }
        *self
            .resolved_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let mut seen = HashSet::new();
        wanted.retain(|key| seen.insert(*key));
        let mut next = Vec::with_capacity(wanted.len());
        for (target, addr) in wanted {
            let kept = current
                .iter()
                .find(|b| b.target == target && b.addr == addr)
                .cloned();
            match kept {
                Some(backend) => next.push(backend),
                None => {
                    if let Some(backend) = self.backend(target, addr) {
                        tracing::info!(upstream = %self.name, %addr, "new address; it gets calls from now on");
                        next.push(backend);
                    }
                }
            }
        }
        for gone in current
            .iter()
            .filter(|b| !next.iter().any(|n| Arc::ptr_eq(n, b)))
        {
            tracing::info!(
                upstream = %self.name,
                addr = %gone.addr,
                in_flight = gone.in_flight(),
                "address no longer resolved; no new calls go to it, calls under way finish"
            );
        }
        if !next.is_empty() || current.is_empty() {
            *self.pool.write().unwrap_or_else(PoisonError::into_inner) = Arc::from(next);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ExportError::Transport(errors.join("; ")))
        }
    }

    fn backend(&self, target: usize, addr: SocketAddr) -> Option<Arc<Backend>> {
        let t = &self.targets[target];
        let label: Arc<str> = if t.ip.is_some() {
            Arc::clone(&t.url)
        } else {
            Arc::from(format!("{} ({addr})", t.url))
        };
        let breaker = self.breaker.as_ref().and_then(|config| {
            match config.clone().name(label.to_string()).build() {
                Ok(config) => Some(CircuitBreaker::new(config)),
                Err(e) => {
                    // Unreachable: the configuration was checked when the exporter was built.
                    tracing::error!(backend = %label, "circuit breaker: {e}");
                    None
                }
            }
        });
        let tls = match (&self.tls, t.tls) {
            (Some(config), true) => match ServerName::try_from(t.host.clone()) {
                Ok(name) => Some(Tls::new(Arc::clone(config), name)),
                Err(_) => return None, // checked in `new`
            },
            _ => None,
        };
        let scheme = if t.tls { "https" } else { "http" };
        let origin: Uri = format!("{scheme}://{}", t.authority).parse().ok()?;
        let options = &self.options;
        let mut endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .ok()?
            .origin(origin)
            .user_agent(options.user_agent.clone())
            .ok()?
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true);
        if let Some(interval) = options.keep_alive_interval {
            endpoint = endpoint
                .http2_keep_alive_interval(interval)
                .keep_alive_timeout(options.keep_alive_timeout)
                .keep_alive_while_idle(options.keep_alive_while_idle);
        }
        Some(Arc::new(Backend {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            target,
            addr,
            label,
            url: Arc::clone(&t.url),
            breaker,
            in_flight: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            connector: Connector::new(addr, tls),
            endpoint,
            channels: RwLock::new(Vec::new()),
        }))
    }
}

/// One address of an upstream: its connection (a tonic channel per runtime), its
/// circuit breaker, its load.
pub(crate) struct Backend {
    pub(crate) id: u64,
    target: usize,
    pub(crate) addr: SocketAddr,
    pub(crate) label: Arc<str>,
    url: Arc<str>,
    pub(crate) breaker: Option<CircuitBreaker>,
    in_flight: AtomicUsize,
    calls: AtomicU64,
    connector: Connector,
    endpoint: Endpoint,
    channels: RwLock<Vec<(tokio::runtime::Id, Channel)>>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("label", &self.label)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl Backend {
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a call as in flight until the guard is dropped.
    pub(crate) fn start_call(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// The channel for the current runtime, created (lazily connecting) on first use.
    pub(crate) fn channel(&self) -> Result<Channel, ExportError> {
        let handle = Handle::try_current().map_err(|_| {
            ExportError::InvalidRequest(
                "no tokio runtime: call the exporter from async code on a tokio runtime (the SDK adapters do this for you)".to_owned(),
            )
        })?;
        let id = handle.id();
        let find = |channels: &[(tokio::runtime::Id, Channel)]| {
            channels
                .iter()
                .find(|(rt, _)| *rt == id)
                .map(|(_, c)| c.clone())
        };
        if let Some(channel) = find(&self.channels.read().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(channel);
        }
        let mut channels = self
            .channels
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = find(&channels) {
            return Ok(channel);
        }
        // Spawns the channel's worker on this runtime.
        let channel = self
            .endpoint
            .connect_with_connector_lazy(self.connector.clone());
        if channels.len() == MAX_CHANNELS_PER_BACKEND {
            channels.remove(0);
        }
        channels.push((id, channel.clone()));
        Ok(channel)
    }

    pub(crate) fn status(&self) -> EndpointStatus {
        EndpointStatus {
            url: Arc::clone(&self.url),
            address: self.addr,
            in_flight: self.in_flight(),
            calls: self.calls.load(Ordering::Relaxed),
            breaker: self.breaker.clone(),
        }
    }
}

/// A call in flight on a backend.
pub(crate) struct InFlight<'a>(&'a Backend);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Picks the backend for the next attempt among those whose breaker admits a call,
/// preferring backends this export has not tried yet: power of two choices (two at
/// random, the one with fewer calls in flight). When every breaker refuses, the refusal
/// that ends soonest.
pub(crate) fn pick(
    pool: &[Arc<Backend>],
    tried: &[u64],
) -> Result<(Arc<Backend>, Option<OwnedPermit>), Option<BreakerOpen>> {
    // The common case, one address: no candidate lists.
    if let [only] = pool {
        return match &only.breaker {
            None => Ok((Arc::clone(only), None)),
            Some(breaker) => match breaker.try_acquire_owned() {
                Ok(permit) => Ok((Arc::clone(only), Some(permit))),
                Err(open) => Err(Some(open)),
            },
        };
    }
    let mut refused: Option<BreakerOpen> = None;
    let (fresh, again): (Vec<&Arc<Backend>>, Vec<&Arc<Backend>>) =
        pool.iter().partition(|b| !tried.contains(&b.id));
    for mut candidates in [fresh, again] {
        while !candidates.is_empty() {
            let i = choose(&candidates);
            let backend = candidates.swap_remove(i);
            let Some(breaker) = &backend.breaker else {
                return Ok((Arc::clone(backend), None));
            };
            match breaker.try_acquire_owned() {
                Ok(permit) => return Ok((Arc::clone(backend), Some(permit))),
                Err(open) => {
                    let sooner = match (&refused, open.retry_after()) {
                        (None, _) => true,
                        (Some(r), Some(after)) => r.retry_after().is_none_or(|r| after < r),
                        (Some(_), None) => false,
                    };
                    if sooner {
                        refused = Some(open);
                    }
                }
            }
        }
    }
    Err(refused)
}

fn choose(candidates: &[&Arc<Backend>]) -> usize {
    if candidates.len() == 1 {
        return 0;
    }
    let a = fastrand::usize(..candidates.len());
    let mut b = fastrand::usize(..candidates.len() - 1);
    if b >= a {
        b += 1;
    }
    if candidates[b].in_flight() < candidates[a].in_flight() {
        b
    } else {
        a
    }
}

/// One address the exporter calls, as [`GrpcExporter::endpoints`](super::GrpcExporter::endpoints)
/// reports it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EndpointStatus {
    /// The configured URL the address belongs to.
    pub url: Arc<str>,
    /// The address (resolved from the URL's host name, or its IP address).
    pub address: SocketAddr,
    /// Calls under way now.
    pub in_flight: usize,
    /// Calls made since the address was first resolved.
    pub calls: u64,
    /// Its circuit breaker, unless breakers are off: read its state, force it open, ...
    pub breaker: Option<CircuitBreaker>,
}
