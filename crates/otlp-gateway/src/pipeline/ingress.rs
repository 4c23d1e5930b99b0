//! The pipeline's entrance: the [`Sink`] both receivers hand every request to.
//!
//! In order: refuse while draining; find the tenant (receiver header, else a resource
//! attribute, else the default); the tenant's rate limit in items/s; the memory limiter;
//! degradation (sampling, severity floor, attribute stripping, counted per reason); then
//! the request is appended to the queue of every route that takes its signal, and the
//! client is acknowledged only when every append succeeded (with the disk queue: the data
//! is on disk). A full queue or the memory limit answers with a retryable refusal and a
//! retry delay; nothing is dropped to make room.

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::{BoxFuture, join_all};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{KeyValue, any_value};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::{Accepted, Payload, Refusal, Signal, Sink};
use otlp_degradation::DegradationLevel;
use otlp_degradation::controller::DegradationHandle;
use otlp_degradation::memory_limiter::MemoryLimiter;
use otlp_degradation::policy::DegradationPolicy;
use tokio::time::Instant;

use super::queue::QueueError;
use super::route::Route;
use super::tenant_limit::TenantLimiter;
use crate::metrics::{DropReason, GatewayMetrics, Phase, RefuseReason};

/// What ingress reads on every request; the reloadable parts sit behind locks.
#[derive(Debug)]
pub struct IngressShared {
    pub(crate) metrics: Arc<GatewayMetrics>,
    /// The routes that take each signal (indexed by `Signal::index`), found once at build.
    pub(crate) routes: [Vec<Arc<Route>>; 3],
    pub(crate) tenants: TenantLimiter,
    pub(crate) tenant: RwLock<TenantRule>,
    pub(crate) memory: Option<MemoryLimiter>,
    pub(crate) degradation: Option<DegradationHandle>,
    pub(crate) policy: RwLock<Arc<DegradationPolicy>>,
    pub(crate) retry_after: RwLock<Duration>,
}

/// Items taken from a tenant's bucket; given back on drop unless kept (the request was
/// refused after the rate check, and the client will send it again).
struct Charge<'a> {
    limiter: &'a TenantLimiter,
    tenant: Arc<str>,
    items: u64,
    kept: bool,
}

impl Charge<'_> {
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.limiter.refund(&self.tenant, self.items);
        }
    }
}

/// Where the tenant comes from when the receiver found no tenant header.
#[derive(Debug, Clone)]
pub struct TenantRule {
    /// Resource attribute naming the tenant.
    pub resource_attribute: Option<String>,
    /// The tenant of data that names none.
    pub default: Arc<str>,
}

/// The [`Sink`] of one signal.
#[derive(Debug, Clone)]
pub struct Ingress {
    pub(crate) shared: Arc<IngressShared>,
}

impl Sink for Ingress {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        Box::pin(self.shared.accept(payload))
    }
}

impl IngressShared {
    fn refuse(
        &self,
        signal: Signal,
        reason: RefuseReason,
        items: u64,
        refusal: Refusal,
    ) -> Refusal {
        self.metrics.signal(signal).refused(reason, items);
        refusal
    }

    fn retry_after(&self) -> Duration {
        *self.retry_after.read().unwrap_or_else(|e| e.into_inner())
    }

    async fn accept(&self, mut payload: Payload) -> Result<Accepted, Refusal> {
        let signal = payload.signal();
        let items = payload.items();
        let bytes = payload.len();
        let counters = self.metrics.signal(signal);
        counters.requests.fetch_add(1, Ordering::Relaxed);
        counters.received_items.fetch_add(items, Ordering::Relaxed);
        counters
            .received_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);

        if self.metrics.phase() == Phase::Draining {
            let refusal = Refusal::Unavailable {
                reason: "the gateway is shutting down".into(),
                retry_after: self.retry_after(),
            };
            return Err(self.refuse(signal, RefuseReason::Draining, items, refusal));
        }

        // The tenant's items are given back if a later stage refuses the request.
        let mut charge = None;
        if self.tenants.is_enabled() {
            let tenant = self.tenant_of(&payload);
            if let Err(wait) = self.tenants.check(&tenant, items, Instant::now()) {
                let refusal = Refusal::Throttled {
                    reason: format!("tenant {tenant:?} is over its rate limit"),
                    retry_after: wait.max(Duration::from_millis(100)),
                };
                return Err(self.refuse(signal, RefuseReason::RateLimited, items, refusal));
            }
            charge = Some(Charge {
                limiter: &self.tenants,
                tenant: tenant.clone(),
                items,
                kept: false,
            });
            payload = payload.with_tenant(tenant);
        }

        let _permit = match &self.memory {
            Some(limiter) => match limiter.admit(bytes as u64) {
                Ok(permit) => Some(permit),
                Err(refusal) => {
                    return Err(self.refuse(signal, RefuseReason::Memory, items, refusal));
                }
            },
            None => None,
        };

        // Items the policy drops are counted only once the request is acknowledged: a
        // refused request will be sent again, and counting its drops now would count
        // them twice.
        let (mut sampled, mut degraded) = (0, 0);
        let count_drops = |sampled: u64, degraded: u64| {
            if sampled > 0 {
                counters.dropped(DropReason::Sampled, sampled);
            }
            if degraded > 0 {
                counters.dropped(DropReason::Degraded, degraded);
            }
        };
        if let Some(handle) = &self.degradation {
            let level = handle.level();
            if level != DegradationLevel::Normal {
                let policy = self
                    .policy
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                match policy.apply_payload(level, &mut payload) {
                    Ok(report) => {
                        sampled = report.dropped_sampled + report.dropped_emergency;
                        degraded = report.dropped_severity;
                    }
                    Err(e) => {
                        let refusal = Refusal::BadData(e.to_string());
                        return Err(self.refuse(signal, RefuseReason::BadData, items, refusal));
                    }
                }
                if payload.items() == 0 {
                    // Everything was dropped by policy: nothing to queue.
                    count_drops(sampled, degraded);
                    return Ok(Accepted::full());
                }
            }
        }

        let routes = &self.routes[signal.index()];
        if routes.is_empty() {
            count_drops(sampled, degraded);
            counters.dropped(DropReason::Unrouted, payload.items());
            return Ok(Accepted::full());
        }
        for route in routes {
            if !route.queue.has_room(payload.len()) {
                let refusal = Refusal::Unavailable {
                    reason: format!("queue {} is full", route.name),
                    retry_after: self.retry_after(),
                };
                return Err(self.refuse(signal, RefuseReason::QueueFull, items, refusal));
            }
        }
        let kept = payload.items();
        let pushed = match routes.as_slice() {
            [route] => route.queue.push(payload).await,
            _ => join_all(routes.iter().map(|r| r.queue.push(payload.clone())))
                .await
                .into_iter()
                .find_map(Result::err)
                .map_or(Ok(()), Err),
        };
        if let Err(error) = pushed {
            // The gateway's retry delay (reloadable), not the one the queue was opened with.
            let retry_after = self.retry_after();
            let (reason, refusal) = match error {
                QueueError::Full { queue, .. } => (
                    RefuseReason::QueueFull,
                    Refusal::Unavailable {
                        reason: format!("queue {queue} is full"),
                        retry_after,
                    },
                ),
                QueueError::Closed(_) => (
                    RefuseReason::Draining,
                    Refusal::Unavailable {
                        reason: "the gateway is shutting down".into(),
                        retry_after,
                    },
                ),
                QueueError::Io { queue, message } => {
                    self.metrics
                        .record_error(format!("queue {queue}: {message}"));
                    tracing::error!(%queue, %message, "queue write failed; request refused");
                    (
                        RefuseReason::Internal,
                        Refusal::Unavailable {
                            reason: format!("queue {queue} cannot store data"),
                            retry_after,
                        },
                    )
                }
            };
            return Err(self.refuse(signal, reason, items, refusal));
        }
        count_drops(sampled, degraded);
        counters.accepted_items.fetch_add(kept, Ordering::Relaxed);
        if let Some(charge) = charge {
            charge.keep();
        }
        Ok(Accepted::full())
    }

    fn tenant_of(&self, payload: &Payload) -> Arc<str> {
        if let Some(tenant) = &payload.header().tenant {
            return tenant.clone();
        }
        let rule = self
            .tenant
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(key) = &rule.resource_attribute
            && let Some(tenant) = tenant_from_resource(payload, key)
        {
            return Arc::from(tenant);
        }
        rule.default
    }
}

/// The string value of resource attribute `key` of the request's first resource.
///
/// Decodes the request (a cost paid only when `tenant.resource_attribute` is set).
fn tenant_from_resource(payload: &Payload, key: &str) -> Option<String> {
    let resource: Option<Resource> = match payload.signal() {
        Signal::Traces => {
            payload
                .decode::<ExportTraceServiceRequest>()
                .ok()?
                .resource_spans
                .into_iter()
                .next()?
                .resource
        }
        Signal::Metrics => {
            payload
                .decode::<ExportMetricsServiceRequest>()
                .ok()?
                .resource_metrics
                .into_iter()
                .next()?
                .resource
        }
        Signal::Logs => {
            payload
                .decode::<ExportLogsServiceRequest>()
                .ok()?
                .resource_logs
                .into_iter()
                .next()?
                .resource
        }
    };
    string_attribute(&resource?.attributes, key)
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    })
}
