//! Value and cross-reference checks: everything that parses but cannot work, named by key.
//!
//! Relative file paths (TLS material, `tokens_file`) are checked against the working
//! directory, which is where the gateway opens them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use http::{HeaderName, HeaderValue};

use super::units::ByteSize;
use super::{
    AuthMode, ConfigError, ExporterConfig, ExporterKind, FsyncPolicy, GatewayConfig,
    ListenerConfig, QueueConfig, QueueKind, TlsConfig,
};

/// The smallest disk queue segment: smaller ones mean a file per handful of requests.
const MIN_SEGMENT: ByteSize = ByteSize::kib(64);
/// Most export workers per exporter.
const MAX_WORKERS: usize = 256;

type Check = Result<(), ConfigError>;

fn fail(key: impl Into<String>, message: impl Into<String>) -> Check {
    Err(ConfigError::new(key, message))
}

pub(super) fn validate(config: &GatewayConfig) -> Check {
    if config.data_dir.as_os_str().is_empty() {
        return fail("data_dir", "must not be empty");
    }
    listeners(config)?;
    auth(config)?;
    tenant(config)?;
    limits(config)?;
    degradation(config)?;
    batch(config)?;
    queue("queue", &config.queue)?;
    exporters(config)?;
    groups(config)?;
    log(config)?;
    self_telemetry(config)?;
    Ok(())
}

// ---------------------------------------------------------------- listeners

fn listeners(config: &GatewayConfig) -> Check {
    let grpc = &config.receivers.grpc;
    let http = &config.receivers.http;
    if !grpc.enabled && !http.enabled {
        return fail(
            "receivers",
            "receivers.grpc and receivers.http are both disabled: the gateway could receive nothing",
        );
    }
    let mut bound: Vec<(&str, SocketAddr)> = Vec::new();
    for (key, listener) in [("receivers.grpc", grpc), ("receivers.http", http)] {
        if listener.enabled {
            listener_settings(key, listener, config)?;
            bound.push((key, parse_listen(&format!("{key}.addr"), &listener.addr)?));
        }
    }
    if !grpc.cors_origins.is_empty() {
        return fail(
            "receivers.grpc.cors_origins",
            "CORS applies to the HTTP listener only; move it to receivers.http.cors_origins",
        );
    }
    for (i, origin) in http.cors_origins.iter().enumerate() {
        if let Err(reason) = check_origin(origin) {
            return fail(format!("receivers.http.cors_origins[{i}]"), reason);
        }
    }
    if config.admin.enabled {
        bound.push(("admin", parse_listen("admin.addr", &config.admin.addr)?));
    }
    for (i, (key, addr)) in bound.iter().enumerate() {
        for (other, other_addr) in &bound[..i] {
            if addr.port() != 0 && addr.port() == other_addr.port() && overlap(addr, other_addr) {
                return fail(
                    format!("{key}.addr"),
                    format!(
                        "{addr} is also used by {other}.addr ({other_addr}); give each listener its own port"
                    ),
                );
            }
        }
    }
    Ok(())
}

fn listener_settings(key: &str, l: &ListenerConfig, config: &GatewayConfig) -> Check {
    if l.max_request_bytes.bytes() == 0 {
        return fail(format!("{key}.max_request_bytes"), "must be more than 0");
    }
    for (queue_key, q) in queues(config) {
        if l.max_request_bytes > q.max_bytes {
            return fail(
                format!("{key}.max_request_bytes"),
                format!(
                    "{} is more than {queue_key}.max_bytes ({}): a request that large could never be queued",
                    l.max_request_bytes, q.max_bytes
                ),
            );
        }
    }
    if l.max_connections == 0 {
        return fail(format!("{key}.max_connections"), "must be at least 1");
    }
    if l.max_concurrent_requests == 0 {
        return fail(
            format!("{key}.max_concurrent_requests"),
            "must be at least 1",
        );
    }
    if l.request_timeout.get().is_zero() {
        return fail(format!("{key}.request_timeout"), "must be more than 0");
    }
    if l.idle_timeout.get().is_zero() {
        return fail(format!("{key}.idle_timeout"), "must be more than 0");
    }
    if let Some(tls) = &l.tls {
        let tls_key = format!("{key}.tls");
        if tls.cert.is_none() {
            return fail(
                format!("{tls_key}.cert"),
                "a TLS listener needs its certificate chain (PEM) and `key`",
            );
        }
        if tls.key.is_none() {
            return fail(
                format!("{tls_key}.key"),
                "a TLS listener needs the private key (PEM) of `cert`",
            );
        }
        tls_files(&tls_key, tls)?;
    }
    Ok(())
}

/// The queues a request may land in: `[queue]` and every exporter's own.
fn queues(config: &GatewayConfig) -> Vec<(String, &QueueConfig)> {
    let mut all = vec![("queue".to_owned(), &config.queue)];
    for (i, e) in config.exporters.iter().enumerate() {
        if let Some(q) = &e.queue {
            all.push((format!("exporters[{i}].queue"), q));
        }
    }
    all
}

fn tls_files(key: &str, tls: &TlsConfig) -> Check {
    for (name, path) in [("cert", &tls.cert), ("key", &tls.key), ("ca", &tls.ca)] {
        if let Some(path) = path {
            existing_file(&format!("{key}.{name}"), path)?;
        }
    }
    Ok(())
}

fn existing_file(key: &str, path: &Path) -> Check {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => fail(key, format!("{} is not a file", path.display())),
        Err(e) => fail(key, format!("cannot read {}: {e}", path.display())),
    }
}

fn parse_listen(key: &str, addr: &str) -> Result<SocketAddr, ConfigError> {
    check_listen_addr(addr).map_err(|reason| ConfigError::new(key, reason))?;
    Ok(listen_addr(addr).unwrap_or(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)))
}

/// `ip:port`, `[ipv6]:port` or `localhost:port` (as 127.0.0.1).
fn listen_addr(addr: &str) -> Option<SocketAddr> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Some(a);
    }
    let port = addr.strip_prefix("localhost:")?.parse::<u16>().ok()?;
    Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port))
}

/// Checks a listen address: an IP address and port, or `localhost:PORT`.
pub(super) fn check_listen_addr(addr: &str) -> Result<(), String> {
    if listen_addr(addr).is_some() {
        return Ok(());
    }
    Err(format!(
        "{addr:?} is not an address to listen on; write IP:PORT (127.0.0.1:4317, 0.0.0.0:4317 for all interfaces, [::1]:4317) or localhost:PORT"
    ))
}

/// Whether two bound addresses can clash: the same IP, or either is "all interfaces".
fn overlap(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified()
}

fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let valid = match origin.split_once("://") {
        Some(("http" | "https", host)) => {
            !host.is_empty()
                && !host.contains(['/', '?', '#', ' '])
                && HeaderValue::from_str(origin).is_ok()
        }
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{origin:?} is not an origin; write scheme://host[:port] (https://app.example.com) or \"*\""
        ))
    }
}

// ---------------------------------------------------------------- auth and tenant

fn auth(config: &GatewayConfig) -> Check {
    let auth = &config.auth;
    if let Some(header) = &auth.header {
        header_name("auth.header", header)?;
        if auth.mode != AuthMode::ApiKey {
            return fail(
                "auth.header",
                "is the header of mode = \"api_key\"; bearer tokens always come in Authorization",
            );
        }
    }
    if let Some(path) = &auth.tokens_file {
        existing_file("auth.tokens_file", path)?;
    }
    for (i, token) in auth.tokens.iter().enumerate() {
        if token.trim().is_empty() {
            return fail(format!("auth.tokens[{i}]"), "must not be empty");
        }
        if HeaderValue::from_str(token).is_err() {
            return fail(
                format!("auth.tokens[{i}]"),
                "cannot be sent in a header (control characters or non-ASCII)",
            );
        }
    }
    match auth.mode {
        AuthMode::None => {
            if !auth.tokens.is_empty() || auth.tokens_file.is_some() {
                return fail(
                    "auth.mode",
                    "is \"none\" but tokens are configured; set mode = \"bearer\" or \"api_key\" to check them",
                );
            }
        }
        AuthMode::Bearer | AuthMode::ApiKey => {
            if auth.tokens.is_empty() && auth.tokens_file.is_none() {
                return fail(
                    "auth.tokens",
                    "auth.mode needs tokens or tokens_file: with neither, nobody could send",
                );
            }
        }
    }
    Ok(())
}

fn tenant(config: &GatewayConfig) -> Check {
    let t = &config.tenant;
    if let Some(header) = &t.header {
        header_name("tenant.header", header)?;
    }
    if let Some(attribute) = &t.resource_attribute
        && attribute.trim().is_empty()
    {
        return fail("tenant.resource_attribute", "must not be empty");
    }
    if t.default.trim().is_empty() {
        return fail("tenant.default", "must not be empty");
    }
    Ok(())
}

fn header_name(key: &str, name: &str) -> Check {
    match HeaderName::from_bytes(name.as_bytes()) {
        Ok(_) => Ok(()),
        Err(_) => fail(
            key,
            format!(
                "{name:?} is not a valid HTTP header name (letters, digits and -_.!#$%&'*+^`|~ only)"
            ),
        ),
    }
}

// ---------------------------------------------------------------- limits and degradation

fn limits(config: &GatewayConfig) -> Check {
    let l = &config.limits;
    if l.max_tenants == 0 {
        return fail("limits.max_tenants", "must be at least 1");
    }
    if l.tenant_items_per_second == 0 && l.tenant_burst_items != 0 {
        return fail(
            "limits.tenant_burst_items",
            "has no effect without limits.tenant_items_per_second",
        );
    }
    if l.memory_soft.bytes() == 0 {
        return fail("limits.memory_soft", "must be more than 0");
    }
    if l.memory_hard.bytes() == 0 {
        return fail("limits.memory_hard", "must be more than 0");
    }
    if l.memory_soft >= l.memory_hard {
        return fail(
            "limits.memory_soft",
            format!(
                "{} must be less than limits.memory_hard ({})",
                l.memory_soft, l.memory_hard
            ),
        );
    }
    if l.memory_check_interval.get().is_zero() {
        return fail("limits.memory_check_interval", "must be more than 0");
    }
    if l.retry_after.get().is_zero() {
        return fail(
            "limits.retry_after",
            "must be more than 0: clients told to retry at once would hammer a full gateway",
        );
    }
    Ok(())
}

fn degradation(config: &GatewayConfig) -> Check {
    let d = &config.degradation;
    if d.interval.get().is_zero() {
        return fail("degradation.interval", "must be more than 0");
    }
    if d.cool_down < d.interval {
        return fail(
            "degradation.cool_down",
            format!(
                "{} is shorter than degradation.interval ({})",
                d.cool_down, d.interval
            ),
        );
    }
    thresholds("degradation.queue_fill", &d.queue_fill)?;
    if let Some(cpu) = &d.cpu {
        thresholds("degradation.cpu", cpu)?;
    }
    for (i, ratio) in d.trace_keep_ratio.iter().enumerate() {
        if !(0.0..=1.0).contains(ratio) {
            return fail(
                format!("degradation.trace_keep_ratio[{i}]"),
                format!("{ratio} is not a ratio from 0 to 1"),
            );
        }
        if i > 0 && *ratio > d.trace_keep_ratio[i - 1] {
            return fail(
                format!("degradation.trace_keep_ratio[{i}]"),
                format!(
                    "{ratio} keeps more than the level before ({}); a heavier level must keep no more",
                    d.trace_keep_ratio[i - 1]
                ),
            );
        }
    }
    for (i, severity) in d.log_min_severity.iter().enumerate() {
        if !(1..=24).contains(severity) {
            return fail(
                format!("degradation.log_min_severity[{i}]"),
                format!("{severity} is not an OpenTelemetry severity number (1 to 24)"),
            );
        }
        if i > 0 && *severity < d.log_min_severity[i - 1] {
            return fail(
                format!("degradation.log_min_severity[{i}]"),
                format!(
                    "{severity} is below the level before ({}); a heavier level must keep no more",
                    d.log_min_severity[i - 1]
                ),
            );
        }
    }
    for (i, key) in d.strip_attributes.iter().enumerate() {
        if key.trim().is_empty() {
            return fail(
                format!("degradation.strip_attributes[{i}]"),
                "must not be empty",
            );
        }
    }
    Ok(())
}

/// Four escalation thresholds: each in (0, 1], strictly ascending.
fn thresholds(key: &str, values: &[f64; 4]) -> Check {
    for (i, v) in values.iter().enumerate() {
        if !(*v > 0.0 && *v <= 1.0) {
            return fail(
                format!("{key}[{i}]"),
                format!("{v} is not a share above 0 and at most 1"),
            );
        }
        if i > 0 && *v <= values[i - 1] {
            return fail(
                format!("{key}[{i}]"),
                format!(
                    "{v} is not above the level before ({}); Light, Moderate, Heavy, Emergency must ascend",
                    values[i - 1]
                ),
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- batch and queues

fn batch(config: &GatewayConfig) -> Check {
    let b = &config.batch;
    if b.max_items == 0 {
        return fail("batch.max_items", "must be at least 1");
    }
    if b.max_bytes.bytes() == 0 {
        return fail("batch.max_bytes", "must be more than 0");
    }
    for (queue_key, q) in queues(config) {
        if b.max_bytes > q.max_bytes {
            return fail(
                "batch.max_bytes",
                format!(
                    "{} is more than {queue_key}.max_bytes ({})",
                    b.max_bytes, q.max_bytes
                ),
            );
        }
    }
    Ok(())
}

fn queue(key: &str, q: &QueueConfig) -> Check {
    if q.max_bytes.bytes() == 0 {
        return fail(format!("{key}.max_bytes"), "must be more than 0");
    }
    if q.kind == QueueKind::Disk {
        if q.segment_bytes < MIN_SEGMENT {
            return fail(
                format!("{key}.segment_bytes"),
                format!(
                    "{} is less than the smallest segment, {MIN_SEGMENT}",
                    q.segment_bytes
                ),
            );
        }
        if q.segment_bytes > q.max_bytes {
            return fail(
                format!("{key}.segment_bytes"),
                format!(
                    "{} is more than {key}.max_bytes ({})",
                    q.segment_bytes, q.max_bytes
                ),
            );
        }
        if q.fsync == FsyncPolicy::Interval && q.fsync_interval.get().is_zero() {
            return fail(format!("{key}.fsync_interval"), "must be more than 0");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- exporters and groups

fn exporters(config: &GatewayConfig) -> Check {
    let mut names = BTreeSet::new();
    for (i, exporter) in config.exporters.iter().enumerate() {
        let key = format!("exporters[{i}]");
        route_name(&format!("{key}.name"), &exporter.name)?;
        if !names.insert(exporter.name.as_str()) {
            return fail(
                format!("{key}.name"),
                format!("{:?} is used by another exporter", exporter.name),
            );
        }
        exporter_settings(&key, exporter)?;
    }
    Ok(())
}

/// A name that becomes a metrics label and a directory under `data_dir/queue`.
fn route_name(key: &str, name: &str) -> Check {
    if name.is_empty() {
        return fail(key, "must not be empty");
    }
    let safe = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !safe || name.starts_with('.') || name.len() > 64 {
        return fail(
            key,
            format!(
                "{name:?} is not a usable name: up to 64 ASCII letters, digits, '-', '_' or '.', not starting with '.' (it names a queue directory)"
            ),
        );
    }
    Ok(())
}

fn exporter_settings(key: &str, e: &ExporterConfig) -> Check {
    if e.endpoint.trim().is_empty() && e.kind != ExporterKind::File {
        let what = match e.kind {
            ExporterKind::Grpc => "a URL such as grpc://collector:4317",
            _ => "a base URL such as https://collector:4318",
        };
        return fail(format!("{key}.endpoint"), format!("is required: {what}"));
    }
    // A file exporter without an endpoint writes under `data_dir`.
    if let Err(reason) = check_endpoint(e.kind, &e.endpoint) {
        return fail(format!("{key}.endpoint"), reason);
    }
    if e.signals.is_empty() {
        return fail(
            format!("{key}.signals"),
            "must name at least one of traces, metrics, logs",
        );
    }
    let mut seen = BTreeSet::new();
    for (j, signal) in e.signals.iter().enumerate() {
        if !seen.insert(signal) {
            return fail(format!("{key}.signals[{j}]"), "is listed twice");
        }
    }
    if e.timeout.get().is_zero() {
        return fail(format!("{key}.timeout"), "must be more than 0");
    }
    if e.workers == 0 || e.workers > MAX_WORKERS {
        return fail(
            format!("{key}.workers"),
            format!("{} is not from 1 to {MAX_WORKERS}", e.workers),
        );
    }
    if e.kind == ExporterKind::File {
        if !e.headers.is_empty() {
            return fail(
                format!("{key}.headers"),
                "apply to grpc and http exporters only",
            );
        }
        if e.tls.is_some() {
            return fail(
                format!("{key}.tls"),
                "applies to grpc and http exporters only",
            );
        }
        if e.rotate_bytes.is_some_and(|b| b < MIN_SEGMENT) {
            return fail(
                format!("{key}.rotate_bytes"),
                format!("must be at least {MIN_SEGMENT}"),
            );
        }
        if e.keep_files == Some(0) {
            return fail(format!("{key}.keep_files"), "must be at least 1");
        }
    } else {
        if e.rotate_bytes.is_some() {
            return fail(
                format!("{key}.rotate_bytes"),
                "applies to kind = \"file\" only",
            );
        }
        if e.keep_files.is_some() {
            return fail(
                format!("{key}.keep_files"),
                "applies to kind = \"file\" only",
            );
        }
    }
    headers(&format!("{key}.headers"), &e.headers)?;
    if let Some(tls) = &e.tls {
        let tls_key = format!("{key}.tls");
        if tls.cert.is_some() != tls.key.is_some() {
            let missing = if tls.cert.is_some() { "key" } else { "cert" };
            return fail(
                format!("{tls_key}.{missing}"),
                "a client certificate (cert) and its key must be given together",
            );
        }
        if e.endpoint.trim_start().starts_with("http://")
            || e.endpoint.trim_start().starts_with("grpc://")
        {
            return fail(
                tls_key,
                format!(
                    "is set but {key}.endpoint ({}) is plaintext; use https:// (or grpcs://) to connect with TLS",
                    e.endpoint
                ),
            );
        }
        tls_files(&tls_key, tls)?;
    }
    let r = &e.retry;
    if r.initial_backoff.get().is_zero() {
        return fail(
            format!("{key}.retry.initial_backoff"),
            "must be more than 0",
        );
    }
    if r.initial_backoff > r.max_backoff {
        return fail(
            format!("{key}.retry.initial_backoff"),
            format!(
                "{} is more than retry.max_backoff ({})",
                r.initial_backoff, r.max_backoff
            ),
        );
    }
    if !r.max_elapsed.get().is_zero() && r.max_elapsed < r.initial_backoff {
        return fail(
            format!("{key}.retry.max_elapsed"),
            format!(
                "{} is shorter than retry.initial_backoff ({}); use 0 to retry until delivered",
                r.max_elapsed, r.initial_backoff
            ),
        );
    }
    let b = &e.circuit_breaker;
    if !(b.failure_rate > 0.0 && b.failure_rate <= 1.0) {
        return fail(
            format!("{key}.circuit_breaker.failure_rate"),
            format!("{} is not a share above 0 and at most 1", b.failure_rate),
        );
    }
    if b.minimum_calls == 0 {
        return fail(
            format!("{key}.circuit_breaker.minimum_calls"),
            "must be at least 1",
        );
    }
    if b.open_for.get().is_zero() {
        return fail(
            format!("{key}.circuit_breaker.open_for"),
            "must be more than 0",
        );
    }
    if let Some(q) = &e.queue {
        queue(&format!("{key}.queue"), q)?;
    }
    Ok(())
}

/// Request headers (gRPC metadata): valid HTTP names and values, none that the transport
/// itself sets.
fn headers(key: &str, headers: &BTreeMap<String, String>) -> Check {
    const RESERVED: [&str; 7] = [
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "host",
        "te",
        "connection",
    ];
    let mut seen = BTreeSet::new();
    for (name, value) in headers {
        let entry = format!("{key}.{}", quote_key(name));
        let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ConfigError::new(
                entry.clone(),
                format!("{name:?} is not a valid HTTP header name (letters, digits and -_.!#$%&'*+^`|~ only)"),
            )
        })?;
        if RESERVED.contains(&parsed.as_str()) || parsed.as_str().starts_with("grpc-") {
            return fail(
                entry,
                "is set by the transport itself and cannot be configured",
            );
        }
        if !seen.insert(parsed.as_str().to_owned()) {
            return fail(entry, "is given twice (header names are case-insensitive)");
        }
        if HeaderValue::from_str(value).is_err() {
            return fail(
                entry,
                format!(
                    "{value:?} is not a valid HTTP header value (control characters or non-ASCII)"
                ),
            );
        }
    }
    Ok(())
}

fn quote_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// Checks an exporter endpoint for its kind: `grpc`: `grpc://`, `grpcs://`, `http://`,
/// `https://` with a host; `http`: `http://` or `https://` with a host; `file`: a path.
pub(super) fn check_endpoint(kind: ExporterKind, endpoint: &str) -> Result<(), String> {
    let endpoint = endpoint.trim();
    let allowed: &[&str] = match kind {
        ExporterKind::Grpc => &["grpc", "grpcs", "http", "https"],
        ExporterKind::Http => &["http", "https"],
        ExporterKind::File => {
            if endpoint.contains("://") {
                return Err(format!(
                    "{endpoint:?} is a URL; a file exporter writes to a directory (e.g. ./otlp-data)"
                ));
            }
            return Ok(());
        }
    };
    let example = match kind {
        ExporterKind::Grpc => "grpc://collector:4317 or https://collector:4317",
        _ => "http://collector:4318 or https://collector:4318",
    };
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return Err(format!("{endpoint:?} has no scheme; write e.g. {example}"));
    };
    if !allowed.contains(&scheme) {
        return Err(format!(
            "scheme {scheme:?} is not one of {} for this exporter kind; write e.g. {example}",
            allowed.join(", ")
        ));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return Err(
            "user information in the URL is not supported; send credentials as headers".into(),
        );
    }
    let parsed: http::uri::Authority = authority.parse().map_err(|e| {
        format!("{endpoint:?} has no valid host[:port] ({e}); write e.g. {example}")
    })?;
    if parsed.host().trim_matches(['[', ']']).is_empty() {
        return Err(format!("{endpoint:?} has no host; write e.g. {example}"));
    }
    if parsed.as_str().len() > parsed.host().len() && parsed.port_u16().is_none() {
        return Err(format!(
            "{endpoint:?}: the port is not a number from 0 to 65535"
        ));
    }
    if kind == ExporterKind::Grpc && end < rest.len() && &rest[end..] != "/" {
        return Err(format!(
            "{endpoint:?} has a path; an OTLP/gRPC endpoint is scheme://host:port (the gRPC method names the service)"
        ));
    }
    Ok(())
}

fn groups(config: &GatewayConfig) -> Check {
    let exporters: BTreeSet<&str> = config.exporters.iter().map(|e| e.name.as_str()).collect();
    let mut group_names = BTreeSet::new();
    let mut member_of: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, group) in config.groups.iter().enumerate() {
        let key = format!("groups[{i}]");
        route_name(&format!("{key}.name"), &group.name)?;
        if exporters.contains(group.name.as_str()) {
            return fail(
                format!("{key}.name"),
                format!(
                    "{:?} is also an exporter's name; names label metrics and queues, so they must differ",
                    group.name
                ),
            );
        }
        if !group_names.insert(group.name.as_str()) {
            return fail(
                format!("{key}.name"),
                format!("{:?} is used by another group", group.name),
            );
        }
        if group.members.is_empty() {
            return fail(format!("{key}.members"), "must name at least one exporter");
        }
        for (j, member) in group.members.iter().enumerate() {
            if !exporters.contains(member.as_str()) {
                return fail(
                    format!("{key}.members[{j}]"),
                    format!("no exporter is named {member:?}"),
                );
            }
            if let Some(other) = member_of.insert(member.as_str(), group.name.as_str()) {
                let message = if other == group.name {
                    format!("{member:?} is listed twice")
                } else {
                    format!(
                        "{member:?} is already a member of group {other:?}; an exporter belongs to one group at most"
                    )
                };
                return fail(format!("{key}.members[{j}]"), message);
            }
        }
        // Members share one queue and its workers (as many as the largest member's
        // `workers`): the settings of the queue and its readers must be the same.
        let members: Vec<(usize, &crate::config::ExporterConfig)> = group
            .members
            .iter()
            .filter_map(|m| {
                config
                    .exporters
                    .iter()
                    .enumerate()
                    .find(|(_, e)| &e.name == m)
            })
            .collect();
        if let Some(((_, first), rest)) = members.split_first() {
            for (index, member) in rest {
                let differs = if member.signals != first.signals {
                    Some("signals")
                } else if member.queue != first.queue {
                    Some("queue")
                } else if member.retry != first.retry {
                    Some("retry")
                } else {
                    None
                };
                if let Some(field) = differs {
                    return fail(
                        format!("exporters[{index}].{field}"),
                        format!(
                            "differs from {:?}'s: members of group {:?} share one queue and its workers, so their {field} must be the same",
                            first.name, group.name
                        ),
                    );
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- logs and self-telemetry

fn log(config: &GatewayConfig) -> Check {
    check_log_filter(&config.log.level).map_err(|reason| ConfigError::new("log.level", reason))
}

/// Checks a `tracing` filter. A lone word must be a level: `tracing` would read
/// `verbose` as a target name and log nothing the user expects.
pub(super) fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let trimmed = filter.trim();
    if trimmed.is_empty() {
        return Err("must not be empty; use e.g. \"info\"".into());
    }
    if !trimmed.contains(['=', ',', ':', '['])
        && !LEVELS.contains(&trimmed.to_ascii_lowercase().as_str())
    {
        return Err(format!(
            "{trimmed:?} is not a level; use trace, debug, info, warn, error or off, or a filter such as \"otlp_gateway=debug,info\""
        ));
    }
    tracing_subscriber::EnvFilter::try_new(trimmed)
        .map(|_| ())
        .map_err(|e| format!("{trimmed:?} is not a tracing filter: {e}"))
}

fn self_telemetry(config: &GatewayConfig) -> Check {
    let s = &config.self_telemetry;
    match &s.endpoint {
        Some(endpoint) => {
            let kind = if endpoint.trim_start().starts_with("grpc") {
                ExporterKind::Grpc
            } else {
                ExporterKind::Http
            };
            check_endpoint(kind, endpoint)
                .map_err(|reason| ConfigError::new("self_telemetry.endpoint", reason))?;
        }
        None => {
            if s.interval.is_some() {
                return fail(
                    "self_telemetry.interval",
                    "has no effect without self_telemetry.endpoint",
                );
            }
        }
    }
    if s.interval.is_some_and(|i| i.get().is_zero()) {
        return fail("self_telemetry.interval", "must be more than 0");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_by_kind() {
        assert!(check_endpoint(ExporterKind::Grpc, "grpc://h:4317").is_ok());
        assert!(check_endpoint(ExporterKind::Grpc, "grpcs://h").is_ok());
        assert!(check_endpoint(ExporterKind::Grpc, "https://[::1]:4317").is_ok());
        assert!(check_endpoint(ExporterKind::Grpc, "grpc://h:4317/v1").is_err());
        assert!(check_endpoint(ExporterKind::Http, "https://h:4318/base").is_ok());
        assert!(check_endpoint(ExporterKind::Http, "grpc://h:4317").is_err());
        assert!(check_endpoint(ExporterKind::Http, "h:4318").is_err());
        assert!(check_endpoint(ExporterKind::Http, "http://:4318").is_err());
        assert!(check_endpoint(ExporterKind::Http, "http://h:99999").is_err());
        assert!(check_endpoint(ExporterKind::Http, "http://u:p@h:1").is_err());
        assert!(check_endpoint(ExporterKind::File, "./out").is_ok());
        assert!(check_endpoint(ExporterKind::File, "file:///out").is_err());
    }

    #[test]
    fn listen_addresses() {
        assert!(check_listen_addr("127.0.0.1:4317").is_ok());
        assert!(check_listen_addr("[::]:4317").is_ok());
        assert!(check_listen_addr("localhost:0").is_ok());
        assert!(check_listen_addr("example.com:4317").is_err());
        assert!(check_listen_addr("127.0.0.1").is_err());
        assert!(check_listen_addr("127.0.0.1:70000").is_err());
    }

    #[test]
    fn log_filters() {
        assert!(check_log_filter("info").is_ok());
        assert!(check_log_filter("WARN").is_ok());
        assert!(check_log_filter("otlp_gateway=debug,info").is_ok());
        assert!(check_log_filter("verbose").is_err());
        assert!(check_log_filter("otlp=notalevel").is_err());
        assert!(check_log_filter("").is_err());
    }

    #[test]
    fn overlapping_addresses() {
        let any: SocketAddr = "0.0.0.0:1".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let other: SocketAddr = "10.0.0.1:1".parse().unwrap();
        assert!(overlap(&any, &lo));
        assert!(!overlap(&other, &lo));
    }
}
