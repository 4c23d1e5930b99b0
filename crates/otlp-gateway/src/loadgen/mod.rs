//! Realistic OTLP data for `otlp send`, load tests and benchmarks, and the driver that
//! sends it at a given rate.
//!
//! ```
//! use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
//! use otlp_core::{OtlpRequest, Signal};
//! use otlp_gateway::loadgen::{Generator, GeneratorConfig};
//!
//! let mut generator = Generator::new(GeneratorConfig {
//!     batch_items: 100,
//!     seed: 7,
//!     ..GeneratorConfig::new(Signal::Traces)
//! });
//! let payload = generator.next_payload();
//! assert_eq!(payload.items(), 100);
//! let request: ExportTraceServiceRequest = payload.decode().unwrap();
//! assert_eq!(request.item_count(), 100);
//!
//! // The same seed gives the same data.
//! let mut again = Generator::new(GeneratorConfig { batch_items: 100, seed: 7, ..GeneratorConfig::new(Signal::Traces) });
//! assert_eq!(again.next_payload().body(), payload.body());
//! ```
//!
//! # What the data looks like
//!
//! - **Resources**: `services` services (`checkout`, `cart`, `payments`, ... then
//!   `service-N`), each with `service.name`, `service.version`, `service.namespace`,
//!   `deployment.environment`, `host.name`, `k8s.namespace.name`, `k8s.pod.name` and
//!   the SDK attributes; one instrumentation scope each.
//! - **Traces**: traces of 1 to 8 spans. The root is a SERVER span named like
//!   `GET /api/orders/{id}`; children (SERVER, CLIENT, INTERNAL) may belong to other
//!   services and name their parent, which is always a span of the same trace in the same
//!   request. Every span has 10 attributes (`http.method`, `http.route`,
//!   `http.status_code` as an integer, `url.path`, `net.peer.name`, `net.peer.ip`,
//!   `user.id`, `http.user_agent`, `thread.name`, `code.function`). 378 bytes a span
//!   encoded on average in 1000-span batches (the design measured with 376).
//!   A share `error_ratio` of spans has status ERROR (and a 5xx status code).
//! - **Metrics**: gauges (double), monotonic cumulative sums (int) and explicit-bucket
//!   histograms; 1 to 4 data points a metric with `http.route` / status attributes.
//!   Items are data points.
//! - **Logs**: records with a severity mix (DEBUG, INFO, WARN; ERROR for `error_ratio`),
//!   message bodies, 5 attributes, and trace and span ids on most records.
//!
//! Everything is a function of the seed: timestamps start at
//! [`GeneratorConfig::start_time_unix_nano`] (a fixed date by default; `otlp send` sets
//! the current time) and advance by 1 ms a batch.
//!
//! # Speed
//!
//! Building and encoding a batch costs about as much as decoding it. To drive a gateway
//! at 0.5 M spans/s without the generator being the bottleneck, build a [`PayloadPool`]
//! of pre-encoded batches once and cycle through it ([`Generator::pool`]): a cycled
//! batch is a reference-counted clone. Cycled batches repeat their trace and span ids.

mod histogram;
mod logs;
mod metrics;
pub mod send;
mod traces;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use otlp_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::{Payload, Signal};

pub use histogram::LatencyHistogram;

/// 2025-01-01T00:00:00Z: the default start of generated timestamps.
pub const DEFAULT_START_TIME_UNIX_NANO: u64 = 1_735_689_600_000_000_000;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Which signal.
    pub signal: Signal,
    /// Items (spans, data points, log records) per batch (default 512).
    pub batch_items: usize,
    /// Seed of the random generator: equal seeds give equal data (default 1).
    pub seed: u64,
    /// Number of distinct services (resources), at least 1 (default 5).
    pub services: usize,
    /// Share of spans with status ERROR and of ERROR log records, 0.0 to 1.0 (default 0.01).
    pub error_ratio: f64,
    /// Timestamps start here (default [`DEFAULT_START_TIME_UNIX_NANO`]).
    pub start_time_unix_nano: u64,
}

impl GeneratorConfig {
    /// Defaults for `signal`.
    pub fn new(signal: Signal) -> GeneratorConfig {
        GeneratorConfig {
            signal,
            batch_items: 512,
            seed: 1,
            services: 5,
            error_ratio: 0.01,
            start_time_unix_nano: DEFAULT_START_TIME_UNIX_NANO,
        }
    }
}

/// A deterministic generator of realistic OTLP requests. See the [module documentation](self).
#[derive(Debug)]
pub struct Generator {
    config: GeneratorConfig,
    rng: fastrand::Rng,
    services: Vec<Service>,
    /// Start of the next batch's time window.
    clock_ns: u64,
    batches: u64,
}

#[derive(Debug, Clone)]
struct Service {
    name: String,
    resource: Resource,
    scope: InstrumentationScope,
}

const SERVICE_NAMES: &[&str] = &[
    "checkout",
    "cart",
    "payments",
    "inventory",
    "shipping",
    "frontend",
    "users",
    "search",
    "catalog",
    "email",
];

impl Generator {
    /// A generator for `config`. `batch_items` and `services` below 1 are taken as 1,
    /// `error_ratio` is clamped to 0.0..=1.0.
    pub fn new(mut config: GeneratorConfig) -> Generator {
        config.batch_items = config.batch_items.max(1);
        config.services = config.services.max(1);
        config.error_ratio = if config.error_ratio.is_nan() {
            0.0
        } else {
            config.error_ratio.clamp(0.0, 1.0)
        };
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let services = (0..config.services)
            .map(|i| make_service(i, &mut rng))
            .collect();
        Generator {
            clock_ns: config.start_time_unix_nano,
            config,
            rng,
            services,
            batches: 0,
        }
    }

    /// The configuration (after clamping).
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// The next batch of `batch_items` items, encoded.
    pub fn next_payload(&mut self) -> Payload {
        self.payload_with_items(self.config.batch_items)
    }

    /// The next batch with exactly `items` items, encoded.
    pub fn payload_with_items(&mut self, items: usize) -> Payload {
        match self.config.signal {
            Signal::Traces => Payload::from_request(&self.traces(items)),
            Signal::Metrics => Payload::from_request(&self.metrics(items)),
            Signal::Logs => Payload::from_request(&self.logs(items)),
        }
    }

    /// `batches` pre-encoded batches of `batch_items` items to cycle through.
    pub fn pool(&mut self, batches: usize) -> PayloadPool {
        let payloads: Vec<Payload> = (0..batches.max(1)).map(|_| self.next_payload()).collect();
        PayloadPool {
            payloads: payloads.into(),
            next: AtomicUsize::new(0),
        }
    }

    /// The time window of the next batch: (start, and advance the clock by 1 ms).
    fn next_window(&mut self) -> u64 {
        let at = self.clock_ns;
        self.clock_ns = self.clock_ns.saturating_add(1_000_000);
        self.batches += 1;
        at
    }

    fn is_error(&mut self) -> bool {
        self.config.error_ratio > 0.0 && self.rng.f64() < self.config.error_ratio
    }

    fn random_id<const N: usize>(&mut self) -> Vec<u8> {
        let mut id = [0u8; N];
        loop {
            self.rng.fill(&mut id);
            // All-zero ids are invalid in OTLP.
            if id.iter().any(|&b| b != 0) {
                return id.to_vec();
            }
        }
    }
}

/// Pre-encoded batches, handed out in turn (cheap clones). Shareable between tasks.
#[derive(Debug)]
pub struct PayloadPool {
    payloads: Arc<[Payload]>,
    next: AtomicUsize,
}

impl PayloadPool {
    /// The next batch (wrapping around).
    pub fn next_payload(&self) -> Payload {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.payloads.len();
        self.payloads[i].clone()
    }

    /// Number of distinct batches.
    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    /// Always false: a pool holds at least one batch.
    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// Encoded bytes of all batches together.
    pub fn total_bytes(&self) -> usize {
        self.payloads.iter().map(Payload::len).sum()
    }

    /// Items of all batches together.
    pub fn total_items(&self) -> u64 {
        self.payloads.iter().map(Payload::items).sum()
    }
}

fn make_service(i: usize, rng: &mut fastrand::Rng) -> Service {
    let name = match SERVICE_NAMES.get(i) {
        Some(n) => (*n).to_owned(),
        None => format!("service-{i}"),
    };
    let pod_suffix: String = (0..5)
        .map(|_| char::from(b"bcdfghjklmnpqrstvwxz2456789"[rng.usize(..27)]))
        .collect();
    let attributes = vec![
        kv_str("service.name", &name),
        kv_str(
            "service.version",
            &format!("1.{}.{}", rng.u8(0..20), rng.u8(0..10)),
        ),
        kv_str("service.namespace", "shop"),
        kv_str("deployment.environment", "production"),
        kv_str(
            "host.name",
            &format!("node-{:02}.eu-west-1.compute.internal", rng.u8(1..40)),
        ),
        kv_str("k8s.namespace.name", "shop"),
        kv_str(
            "k8s.pod.name",
            &format!(
                "{name}-{:x}-{pod_suffix}",
                rng.u32(0x1000_0000..0xffff_ffff)
            ),
        ),
        kv_str("telemetry.sdk.name", "opentelemetry"),
        kv_str(
            "telemetry.sdk.language",
            ["java", "go", "python", "rust"][i % 4],
        ),
        kv_str("telemetry.sdk.version", "1.45.0"),
    ];
    Service {
        resource: Resource {
            attributes,
            ..Default::default()
        },
        scope: InstrumentationScope {
            name: format!("io.opentelemetry.{name}"),
            version: "1.45.0".into(),
            ..Default::default()
        },
        name,
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn kv_str(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_owned()))
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

/// HTTP routes the services serve: (method, route, concrete path prefix).
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/orders/{id}", "/api/orders/"),
    ("POST", "/api/orders", "/api/orders"),
    ("GET", "/api/users/{id}", "/api/users/"),
    ("GET", "/api/products", "/api/products"),
    ("GET", "/api/products/{id}", "/api/products/"),
    ("PUT", "/api/cart/{id}", "/api/cart/"),
    ("DELETE", "/api/cart/{id}", "/api/cart/"),
    ("POST", "/api/payments", "/api/payments"),
];
