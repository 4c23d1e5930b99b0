//! The configuration file's shape: every table and key, with its default.
//!
//! Every struct denies unknown keys, so a typo is an error that names the key rather than a
//! setting silently ignored. Defaults are those of `otlp gateway` with no file (the
//! "embedded defaults" of the README). docs/configuration.md documents every key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::units::{ByteSize, HumanDuration};

/// The whole gateway configuration (one TOML file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where the disk queue and the default file sink live (`./otlp-data`).
    pub data_dir: PathBuf,
    /// How long SIGTERM waits for in-flight requests and exports before exiting.
    pub shutdown_grace: HumanDuration,
    /// The OTLP listeners.
    pub receivers: ReceiversConfig,
    /// Who may send.
    pub auth: AuthConfig,
    /// Which tenant data belongs to.
    pub tenant: TenantConfig,
    /// Rate and memory limits.
    pub limits: LimitsConfig,
    /// Adaptive degradation under load.
    pub degradation: DegradationConfig,
    /// How queued data is grouped into export requests.
    pub batch: BatchSettings,
    /// The default queue of every exporter (each exporter may override it).
    pub queue: QueueConfig,
    /// The upstreams. None: the JSONL file sink under `data_dir`.
    pub exporters: Vec<ExporterConfig>,
    /// Exporters grouped for failover or load balancing (one member gets each batch).
    pub groups: Vec<GroupConfig>,
    /// The admin listener.
    pub admin: AdminConfig,
    /// The gateway's own logs.
    pub log: LogConfig,
    /// The gateway's own metrics, exported over OTLP through our exporters.
    pub self_telemetry: SelfTelemetryConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            data_dir: PathBuf::from("./otlp-data"),
            shutdown_grace: HumanDuration::secs(30),
            receivers: ReceiversConfig::default(),
            auth: AuthConfig::default(),
            tenant: TenantConfig::default(),
            limits: LimitsConfig::default(),
            degradation: DegradationConfig::default(),
            batch: BatchSettings::default(),
            queue: QueueConfig::default(),
            exporters: Vec::new(),
            groups: Vec::new(),
            admin: AdminConfig::default(),
            log: LogConfig::default(),
            self_telemetry: SelfTelemetryConfig::default(),
        }
    }
}

/// `[receivers]`: the OTLP/gRPC and OTLP/HTTP listeners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiversConfig {
    /// How much of each protobuf request is checked before it is acknowledged.
    pub validation: ValidationMode,
    /// `[receivers.grpc]`.
    pub grpc: ListenerConfig,
    /// `[receivers.http]`.
    pub http: ListenerConfig,
}

impl Default for ReceiversConfig {
    fn default() -> Self {
        ReceiversConfig {
            validation: ValidationMode::Full,
            grpc: ListenerConfig::with_addr("127.0.0.1:4317"),
            http: ListenerConfig::with_addr("127.0.0.1:4318"),
        }
    }
}

/// `receivers.validation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationMode {
    /// Decode every request completely: invalid data is refused to the client that sent
    /// it and never reaches a batch with other clients' data (the default).
    #[default]
    Full,
    /// Walk only the protobuf framing down to the items (counting them): several times
    /// faster; for gateways whose clients are all known OTLP SDKs or collectors.
    Framing,
}

/// One listener (`[receivers.grpc]` or `[receivers.http]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerConfig {
    /// Listen at all.
    pub enabled: bool,
    /// `host:port`; 127.0.0.1 by default, all interfaces only when asked (`0.0.0.0:4317`).
    pub addr: String,
    /// Largest request after decompression (413 / RESOURCE_EXHAUSTED beyond it).
    pub max_request_bytes: ByteSize,
    /// Most open connections.
    pub max_connections: usize,
    /// Most concurrent requests (gRPC calls) before UNAVAILABLE with a retry delay.
    pub max_concurrent_requests: usize,
    /// A client must send its request within this time (slow-client protection).
    pub request_timeout: HumanDuration,
    /// Idle connections are closed after this.
    pub idle_timeout: HumanDuration,
    /// TLS; plain text when absent.
    pub tls: Option<TlsConfig>,
    /// Allowed browser origins for CORS (HTTP only).
    pub cors_origins: Vec<String>,
}

impl ListenerConfig {
    fn with_addr(addr: &str) -> ListenerConfig {
        ListenerConfig {
            enabled: true,
            addr: addr.to_owned(),
            max_request_bytes: ByteSize::mib(64),
            max_connections: 4096,
            max_concurrent_requests: 4096,
            request_timeout: HumanDuration::secs(30),
            idle_timeout: HumanDuration::secs(120),
            tls: None,
            cors_origins: Vec::new(),
        }
    }
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig::with_addr("127.0.0.1:0")
    }
}

/// TLS material for a listener or an exporter (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (listener) or client certificate (exporter, mTLS).
    pub cert: Option<PathBuf>,
    /// Private key of `cert`.
    pub key: Option<PathBuf>,
    /// Listener: CA that client certificates must chain to (mTLS).
    /// Exporter: CA that the upstream's certificate must chain to.
    pub ca: Option<PathBuf>,
}

/// `[auth]`: who may send.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `none` (default), `bearer` (`Authorization: Bearer <token>`) or `api_key` (a header).
    pub mode: AuthMode,
    /// Accepted tokens / keys.
    pub tokens: Vec<String>,
    /// A file with one token per line (read at start and on reload).
    pub tokens_file: Option<PathBuf>,
    /// The header that carries the API key (`x-api-key` by default).
    pub header: Option<String>,
}

/// How clients authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Anyone may send.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// An API key in a header.
    ApiKey,
}

/// `[tenant]`: which tenant data belongs to (for per-tenant limits and metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantConfig {
    /// Request header / gRPC metadata that names the tenant.
    pub header: Option<String>,
    /// Resource attribute that names the tenant, when no header does.
    pub resource_attribute: Option<String>,
    /// The tenant of data that names none.
    pub default: String,
}

impl Default for TenantConfig {
    fn default() -> Self {
        TenantConfig {
            header: None,
            resource_attribute: None,
            default: "default".into(),
        }
    }
}

/// `[limits]`: rate and memory limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Items (spans, data points, log records) per second per tenant; 0 = no limit.
    pub tenant_items_per_second: u64,
    /// Burst above the rate per tenant, in items.
    pub tenant_burst_items: u64,
    /// Most tenants tracked by the rate limiter.
    pub max_tenants: usize,
    /// Memory above which requests are refused (retryable) until it falls.
    pub memory_soft: ByteSize,
    /// Memory above which everything but the most valuable data is refused.
    pub memory_hard: ByteSize,
    /// How often memory is measured.
    pub memory_check_interval: HumanDuration,
    /// The retry delay sent with refusals for memory or full queues.
    pub retry_after: HumanDuration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            tenant_items_per_second: 0,
            tenant_burst_items: 0,
            max_tenants: 10_000,
            memory_soft: ByteSize::mib(384),
            memory_hard: ByteSize::mib(512),
            memory_check_interval: HumanDuration::millis(250),
            retry_after: HumanDuration::secs(1),
        }
    }
}

/// `[degradation]`: levels, triggers and what each level does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DegradationConfig {
    /// Degrade at all.
    pub enabled: bool,
    /// How often load is measured.
    pub interval: HumanDuration,
    /// Calm time before stepping one level down.
    pub cool_down: HumanDuration,
    /// Queue fill (0..1 of its byte bound) escalating Light, Moderate, Heavy, Emergency.
    pub queue_fill: [f64; 4],
    /// CPU share of the process (0..1 of the cores it may use), same four levels.
    pub cpu: Option<[f64; 4]>,
    /// Trace sampling ratio kept at Light, Moderate, Heavy, Emergency (error spans are always kept).
    pub trace_keep_ratio: [f64; 4],
    /// Lowest log severity number kept at Light, Moderate, Heavy, Emergency.
    pub log_min_severity: [i32; 4],
    /// Attribute keys stripped from Moderate upward.
    pub strip_attributes: Vec<String>,
}

impl Default for DegradationConfig {
    fn default() -> Self {
        DegradationConfig {
            enabled: true,
            interval: HumanDuration::secs(1),
            cool_down: HumanDuration::secs(30),
            queue_fill: [0.5, 0.7, 0.85, 0.95],
            cpu: None,
            trace_keep_ratio: [1.0, 0.5, 0.1, 0.01],
            log_min_severity: [1, 9, 13, 17],
            strip_attributes: Vec::new(),
        }
    }
}

/// `[batch]`: how queued data is grouped into export requests. Batches are formed when
/// an exporter reads its queue, so a client's acknowledgement never waits on a batch timer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchSettings {
    /// Most items in one export request.
    pub max_items: u64,
    /// Most bytes in one export request.
    pub max_bytes: ByteSize,
    /// How long an exporter waits for more data to fill a batch once some is queued.
    pub linger: HumanDuration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_items: 2048,
            max_bytes: ByteSize::mib(4),
            linger: HumanDuration::millis(200),
        }
    }
}

/// `[queue]` (and `queue` of an exporter): where data waits for its exporter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// `disk` (default: segment files under `data_dir/queue/<exporter>`) or `memory`.
    pub kind: QueueKind,
    /// Most bytes queued; beyond it clients are refused with a retry delay.
    pub max_bytes: ByteSize,
    /// Size of one segment file (disk).
    pub segment_bytes: ByteSize,
    /// When appended data is forced to disk.
    pub fsync: FsyncPolicy,
    /// For `fsync = "interval"`: how often.
    pub fsync_interval: HumanDuration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            kind: QueueKind::Disk,
            max_bytes: ByteSize::gib(1),
            segment_bytes: ByteSize::mib(32),
            fsync: FsyncPolicy::Always,
            fsync_interval: HumanDuration::secs(1),
        }
    }
}

/// Queue storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    /// Segment files with checksums, replayed after a restart.
    Disk,
    /// In memory, bounded by bytes; lost on a crash.
    Memory,
}

/// When the disk queue forces appended data to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Before acknowledging each append (appends that arrive together share one fsync).
    Always,
    /// Every `fsync_interval`; a crash of the machine (not the process) can lose that much.
    Interval,
    /// Leave it to the operating system.
    Never,
}

/// `[[exporters]]`: one upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExporterConfig {
    /// Unique name (metrics label, queue directory).
    pub name: String,
    /// `grpc`, `http` or `file`.
    pub kind: ExporterKind,
    /// `grpc://host:port`, `https://host:port`, or a base URL for `http`; a directory for `file`.
    #[serde(default)]
    pub endpoint: String,
    /// Signals sent to it (all by default).
    #[serde(default = "all_signals")]
    pub signals: Vec<SignalName>,
    /// Extra request headers / metadata.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `none`, `gzip` or `zstd`.
    #[serde(default)]
    pub compression: CompressionName,
    /// Per-request timeout.
    #[serde(default = "default_export_timeout")]
    pub timeout: HumanDuration,
    /// TLS to the upstream.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Concurrent export requests.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Retry backoff between failed attempts (data stays queued until delivered).
    #[serde(default)]
    pub retry: RetryConfig,
    /// Circuit breaker per upstream address.
    #[serde(default)]
    pub circuit_breaker: BreakerConfig,
    /// This exporter's queue, overriding `[queue]` key by key.
    #[serde(default)]
    pub queue: Option<QueueConfig>,
    /// File sink: rotate at this size.
    #[serde(default)]
    pub rotate_bytes: Option<ByteSize>,
    /// File sink: rotated files kept.
    #[serde(default)]
    pub keep_files: Option<usize>,
}

fn all_signals() -> Vec<SignalName> {
    vec![SignalName::Traces, SignalName::Metrics, SignalName::Logs]
}
fn default_export_timeout() -> HumanDuration {
    HumanDuration::secs(10)
}
fn default_workers() -> usize {
    2
}

/// Exporter transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExporterKind {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP protobuf.
    Http,
    /// JSONL files (one OTLP/JSON request per line).
    File,
}

/// A signal's name in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalName {
    /// Spans.
    Traces,
    /// Metric data points.
    Metrics,
    /// Log records.
    Logs,
}

impl SignalName {
    /// The core signal.
    pub fn signal(self) -> otlp_core::Signal {
        match self {
            SignalName::Traces => otlp_core::Signal::Traces,
            SignalName::Metrics => otlp_core::Signal::Metrics,
            SignalName::Logs => otlp_core::Signal::Logs,
        }
    }
}

/// Compression of export requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompressionName {
    /// None.
    None,
    /// gzip (the default, as OTLP exporters do).
    #[default]
    Gzip,
    /// zstd.
    Zstd,
}

/// Backoff between export attempts of one batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// First delay.
    pub initial_backoff: HumanDuration,
    /// Largest delay.
    pub max_backoff: HumanDuration,
    /// Give a batch up after this long (`0`: never; the queue bound protects memory and disk).
    pub max_elapsed: HumanDuration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff: HumanDuration::millis(100),
            max_backoff: HumanDuration::secs(5),
            max_elapsed: HumanDuration::millis(0),
        }
    }
}

/// Circuit breaker of an exporter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Use one.
    pub enabled: bool,
    /// Failure share (0..1) over the window that opens it.
    pub failure_rate: f64,
    /// Calls in the window before it may open.
    pub minimum_calls: u32,
    /// How long it stays open before probing.
    pub open_for: HumanDuration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            failure_rate: 0.5,
            minimum_calls: 20,
            open_for: HumanDuration::secs(5),
        }
    }
}

/// `[[groups]]`: exporters that share one queue; one member gets each batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Unique name (metrics label, queue directory).
    pub name: String,
    /// `failover` (first healthy member, in order) or `load_balance` (round robin over healthy members).
    pub mode: GroupMode,
    /// Exporter names; each may belong to one group only.
    pub members: Vec<String>,
}

/// How a group picks a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupMode {
    /// The first member whose breaker is closed; the next one when it fails.
    Failover,
    /// Round robin over members whose breaker is closed.
    LoadBalance,
}

/// `[admin]`: health, metrics and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Serve it at all.
    pub enabled: bool,
    /// `host:port`.
    pub addr: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            addr: "127.0.0.1:8888".into(),
        }
    }
}

/// `[log]`: the gateway's own logs (stderr).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `otlp_gateway=debug,info`); `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[self_telemetry]`: the gateway's own metrics exported over OTLP.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfTelemetryConfig {
    /// `grpc://host:port` or `http://host:port`; off when absent.
    pub endpoint: Option<String>,
    /// How often.
    pub interval: Option<HumanDuration>,
}
