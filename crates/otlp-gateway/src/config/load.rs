//! Parsing, `OTEL_*` variables and command-line overrides.
//!
//! Errors name the key: serde's messages say what is wrong but not where, so the document
//! is first parsed into toml's spanned tree ([`toml::de::DeTable`]) and the span of an
//! error is mapped back to the dotted path of the key it points at (`exporters[1].compression`),
//! with the line and column. This needs no extra crate (serde_path_to_error would give the
//! path but not the line).

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use super::units::HumanDuration;
use super::validate;
use super::{
    CompressionName, ConfigError, ExporterConfig, ExporterKind, GatewayConfig, QueueConfig,
    TlsConfig,
};

/// Where `OTEL_*` variables come from (the process environment, or a map in tests).
///
/// For the process: `&|name: &str| std::env::var(name).ok()`.
pub type EnvSource = dyn Fn(&str) -> Option<String> + Send + Sync;

/// The command-line flags of `otlp gateway`, which override the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--grpc-addr`.
    pub grpc_addr: Option<String>,
    /// `--http-addr`.
    pub http_addr: Option<String>,
    /// `--admin-addr`.
    pub admin_addr: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--export URL`, repeated: each adds an exporter.
    pub exports: Vec<String>,
}

/// Parses TOML into a [`GatewayConfig`] without validating values.
///
/// An exporter's `queue` table overrides `[queue]` key by key: keys it leaves out are
/// taken from `[queue]`, not from the built-in defaults.
pub(super) fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
    let root = DeTable::parse(text).map_err(|e| syntax_error(text, &e))?;
    let queue_keys = exporter_queue_keys(root.get_ref());
    let tree = root.clone();
    let mut config = GatewayConfig::deserialize(toml::de::Deserializer::from(root))
        .map_err(|e| value_error(text, tree.get_ref(), &e))?;
    let shared = config.queue.clone();
    for (exporter, keys) in config.exporters.iter_mut().zip(queue_keys) {
        if let (Some(queue), Some(keys)) = (exporter.queue.as_mut(), keys) {
            inherit_queue(queue, &shared, &keys);
        }
    }
    Ok(config)
}

/// Reads and parses a file, without validating values.
fn parse_file(path: &Path) -> Result<GatewayConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("", format!("cannot read {}: {e}", path.display())))?;
    parse(&text)
}

/// For each `[[exporters]]` entry, the keys its `queue` table sets (`None`: no table).
fn exporter_queue_keys(root: &DeTable<'_>) -> Vec<Option<BTreeSet<String>>> {
    let Some(DeValue::Array(exporters)) = root.get("exporters").map(|v| v.get_ref()) else {
        return Vec::new();
    };
    exporters
        .iter()
        .map(
            |exporter| match exporter.get_ref().get("queue").map(|q| q.get_ref()) {
                Some(DeValue::Table(queue)) => {
                    Some(queue.iter().map(|(k, _)| k.get_ref().to_string()).collect())
                }
                _ => None,
            },
        )
        .collect()
}

fn inherit_queue(queue: &mut QueueConfig, shared: &QueueConfig, set: &BTreeSet<String>) {
    let unset = |key: &str| !set.contains(key);
    if unset("kind") {
        queue.kind = shared.kind;
    }
    if unset("max_bytes") {
        queue.max_bytes = shared.max_bytes;
    }
    if unset("segment_bytes") {
        queue.segment_bytes = shared.segment_bytes;
    }
    if unset("fsync") {
        queue.fsync = shared.fsync;
    }
    if unset("fsync_interval") {
        queue.fsync_interval = shared.fsync_interval;
    }
}

/// A TOML syntax error: the key is the one the error falls on, when the part of the
/// document that parsed says so.
fn syntax_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let (tree, _) = DeTable::parse_recoverable(text);
    let key = error
        .span()
        .map(|span| key_at(text, tree.get_ref(), &span))
        .unwrap_or_default();
    ConfigError::new(
        key,
        format!(
            "invalid TOML: {}{}",
            error.message(),
            at(text, error.span())
        ),
    )
}

/// A type or value error from deserializing: named by the key at its span.
fn value_error(text: &str, tree: &DeTable<'_>, error: &toml::de::Error) -> ConfigError {
    let message = error.message();
    let mut key = error
        .span()
        .map(|span| key_at(text, tree, &span))
        .unwrap_or_default();
    // serde reports a missing key at the table that lacks it; name the key itself.
    if let Some(field) = backticked(message, "missing field `") {
        push_key(&mut key, field);
    }
    ConfigError::new(key, format!("{message}{}", at(text, error.span())))
}

/// The text between `prefix` and the next backtick.
fn backticked<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// ` (line L, column C)` for the start of `span`.
fn at(text: &str, span: Option<Range<usize>>) -> String {
    match span {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!(" (line {line}, column {column})")
        }
        None => String::new(),
    }
}

/// One-based line and column (in characters) of byte `offset`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

fn render(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => push_key(&mut out, key),
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Appends `.key` (quoted when it is not a bare TOML key).
fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        path.push_str(key);
    } else {
        path.push_str(&format!("{key:?}"));
    }
}

/// The dotted path of the key or value that `span` falls in: the deepest one whose key or
/// value span contains it; failing that, the last key that starts on the same line.
fn key_at(text: &str, tree: &DeTable<'_>, span: &Range<usize>) -> String {
    let mut best: Option<Vec<Segment>> = None;
    let mut same_line: Option<Vec<Segment>> = None;
    let line = line_column(text, span.start).0;
    let mut search = Search {
        text,
        span,
        line,
        best: &mut best,
        same_line: &mut same_line,
    };
    search.table(tree, &mut Vec::new());
    best.or(same_line).map(|p| render(&p)).unwrap_or_default()
}

struct Search<'s> {
    text: &'s str,
    span: &'s Range<usize>,
    line: usize,
    best: &'s mut Option<Vec<Segment>>,
    same_line: &'s mut Option<Vec<Segment>>,
}

impl Search<'_> {
    fn contains(&self, outer: &Range<usize>) -> bool {
        let inner = self.span;
        if inner.start == inner.end {
            outer.start <= inner.start && inner.start < outer.end.max(outer.start + 1)
        } else {
            outer.start <= inner.start && inner.end <= outer.end
        }
    }

    fn found(&mut self, path: &[Segment]) {
        if self.best.as_ref().is_none_or(|b| path.len() >= b.len()) {
            *self.best = Some(path.to_vec());
        }
    }

    fn table(&mut self, table: &DeTable<'_>, path: &mut Vec<Segment>) {
        for (key, value) in table {
            path.push(Segment::Key(key.get_ref().to_string()));
            if self.contains(&key.span()) || self.contains(&value.span()) {
                self.found(path);
            }
            if line_column(self.text, key.span().start).0 == self.line {
                *self.same_line = Some(path.clone());
            }
            self.value(value.get_ref(), path);
            path.pop();
        }
    }

    fn value(&mut self, value: &DeValue<'_>, path: &mut Vec<Segment>) {
        match value {
            DeValue::Table(table) => self.table(table, path),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Segment::Index(i));
                    if self.contains(&item.span()) {
                        self.found(path);
                    }
                    self.value(item.get_ref(), path);
                    path.pop();
                }
            }
            _ => {}
        }
    }
}

/// The built-in exporter timeout: an exporter still at it takes `OTEL_EXPORTER_OTLP_TIMEOUT`.
const DEFAULT_EXPORT_TIMEOUT: HumanDuration = HumanDuration::secs(10);

const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
const TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
const COMPRESSION: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
const CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
const CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_CLIENT_KEY";
const CLIENT_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
const LOG_LEVEL: &str = "OTEL_LOG_LEVEL";

/// The configuration `otlp gateway` runs with; see [`GatewayConfig::effective`].
///
/// # Errors
///
/// [`ConfigError`] naming the key, the flag or the variable that is wrong.
pub fn effective(
    file: Option<&Path>,
    overrides: &Overrides,
    env: &EnvSource,
) -> Result<GatewayConfig, ConfigError> {
    GatewayConfig::effective(file, overrides, env)
}

/// The name of the exporter that `OTEL_EXPORTER_OTLP_ENDPOINT` adds.
const ENV_EXPORTER_NAME: &str = "otel";

impl GatewayConfig {
    /// The configuration `otlp gateway` runs with: the embedded defaults or `file`, then
    /// the flags, then the `OTEL_*` variables (which only fill in what the file and the
    /// flags leave unset, so the precedence of every value is defaults < file < `OTEL_*` <
    /// flags), then [`GatewayConfig::validate`].
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the key, the flag (`--export`) or the variable
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT`) that is wrong.
    pub fn effective(
        file: Option<&Path>,
        overrides: &Overrides,
        env: &EnvSource,
    ) -> Result<GatewayConfig, ConfigError> {
        let mut config = match file {
            Some(path) => parse_file(path)?,
            None => GatewayConfig::default(),
        };
        // Flags first: the variables then see the exporters `--export` added (so
        // OTEL_EXPORTER_OTLP_ENDPOINT adds none beside them, and OTEL_EXPORTER_OTLP_HEADERS
        // reaches them), and no variable writes a value that a flag sets.
        config.apply_overrides(overrides)?;
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Applies the command-line flags: addresses (which also enable their listener),
    /// the data directory, and one exporter per `--export URL` (`grpc://` or `grpcs://`:
    /// OTLP/gRPC; `http://` or `https://`: OTLP/HTTP protobuf), named `export-1`,
    /// `export-2`, ... (skipping names already in use).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] whose key is the flag (`--grpc-addr`, `--export`).
    pub fn apply_overrides(&mut self, o: &Overrides) -> Result<(), ConfigError> {
        if let Some(addr) = &o.grpc_addr {
            check_flag_addr("--grpc-addr", addr)?;
            self.receivers.grpc.addr = addr.clone();
            self.receivers.grpc.enabled = true;
        }
        if let Some(addr) = &o.http_addr {
            check_flag_addr("--http-addr", addr)?;
            self.receivers.http.addr = addr.clone();
            self.receivers.http.enabled = true;
        }
        if let Some(addr) = &o.admin_addr {
            check_flag_addr("--admin-addr", addr)?;
            self.admin.addr = addr.clone();
            self.admin.enabled = true;
        }
        if let Some(dir) = &o.data_dir {
            if dir.as_os_str().is_empty() {
                return Err(ConfigError::new("--data-dir", "must not be empty"));
            }
            self.data_dir = dir.clone();
        }
        let mut n = 0;
        for url in &o.exports {
            let url = url.trim();
            let kind = match scheme(url) {
                Some("grpc" | "grpcs") => ExporterKind::Grpc,
                Some("http" | "https") => ExporterKind::Http,
                _ => {
                    return Err(ConfigError::new(
                        "--export",
                        format!(
                            "{url:?} needs a scheme: grpc://host:port (OTLP/gRPC) or http://host:port, https://host:port (OTLP/HTTP)"
                        ),
                    ));
                }
            };
            if let Err(reason) = validate::check_endpoint(kind, url) {
                return Err(ConfigError::new("--export", reason));
            }
            let name = loop {
                n += 1;
                let candidate = format!("export-{n}");
                if !self.name_in_use(&candidate) {
                    break candidate;
                }
            };
            self.exporters.push(exporter(name, kind, url.to_owned()));
        }
        Ok(())
    }

    /// Applies the `OTEL_*` variables that make sense for a gateway (empty values count
    /// as unset, as the specification says):
    ///
    /// - `OTEL_EXPORTER_OTLP_ENDPOINT` adds the exporter `otel` when no exporter is
    ///   configured, OTLP/gRPC or OTLP/HTTP by `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`,
    ///   `http/protobuf`; default `http/protobuf`, as the specification says).
    /// - For every `grpc` and `http` exporter: `OTEL_EXPORTER_OTLP_HEADERS` when its
    ///   `headers` is empty, `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds) when its `timeout`
    ///   is the built-in 10s, `OTEL_EXPORTER_OTLP_COMPRESSION` when its `compression` is the
    ///   built-in `gzip`, and `OTEL_EXPORTER_OTLP_CERTIFICATE`, `..._CLIENT_CERTIFICATE`,
    ///   `..._CLIENT_KEY` as its `tls` when it has no `tls` table.
    /// - `OTEL_LOG_LEVEL` replaces `log.level`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] whose key is the variable.
    pub fn apply_env(&mut self, env: &EnvSource) -> Result<(), ConfigError> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());

        let protocol = match var(PROTOCOL) {
            None => None,
            Some(value) => Some(match value.trim().to_ascii_lowercase().as_str() {
                "grpc" => ExporterKind::Grpc,
                "http/protobuf" => ExporterKind::Http,
                "http/json" => {
                    return Err(ConfigError::new(
                        PROTOCOL,
                        "http/json is not supported by the gateway's exporters; use http/protobuf or grpc",
                    ));
                }
                _ => {
                    return Err(ConfigError::new(
                        PROTOCOL,
                        format!("unknown protocol {value:?}; use grpc or http/protobuf"),
                    ));
                }
            }),
        };
        if let Some(endpoint) = var(ENDPOINT) {
            let kind = protocol.unwrap_or(ExporterKind::Http);
            let endpoint = endpoint.trim().to_owned();
            if !matches!(scheme(&endpoint), Some("http" | "https")) {
                return Err(ConfigError::new(
                    ENDPOINT,
                    format!("{endpoint:?} is not an http:// or https:// URL"),
                ));
            }
            validate::check_endpoint(kind, &endpoint)
                .map_err(|reason| ConfigError::new(ENDPOINT, reason))?;
            if self.exporters.is_empty() {
                self.exporters
                    .push(exporter(ENV_EXPORTER_NAME.into(), kind, endpoint));
            }
        }

        let headers = match var(HEADERS) {
            None => None,
            Some(value) => Some(parse_env_headers(&value)?),
        };
        let timeout = match var(TIMEOUT) {
            None => None,
            Some(value) => {
                let timeout = otlp_transport_http::exporter::env::parse_timeout(TIMEOUT, &value)
                    .map_err(|e| from_transport(TIMEOUT, &e))?;
                if timeout.is_zero() {
                    return Err(ConfigError::new(
                        TIMEOUT,
                        "must be more than 0 milliseconds",
                    ));
                }
                Some(HumanDuration(timeout))
            }
        };
        let compression = match var(COMPRESSION) {
            None => None,
            Some(value) => Some(match value.trim().to_ascii_lowercase().as_str() {
                "gzip" => CompressionName::Gzip,
                "zstd" => CompressionName::Zstd,
                "none" | "identity" => CompressionName::None,
                _ => {
                    return Err(ConfigError::new(
                        COMPRESSION,
                        format!("unknown compression {value:?}; use gzip, zstd or none"),
                    ));
                }
            }),
        };
        let file_var = |name: &str| -> Result<Option<PathBuf>, ConfigError> {
            match var(name) {
                None => Ok(None),
                Some(value) => {
                    let path = PathBuf::from(value.trim());
                    if path.is_file() {
                        Ok(Some(path))
                    } else {
                        Err(ConfigError::new(
                            name,
                            format!("{} is not a readable file", path.display()),
                        ))
                    }
                }
            }
        };
        let ca = file_var(CERTIFICATE)?;
        let cert = file_var(CLIENT_CERTIFICATE)?;
        let key = file_var(CLIENT_KEY)?;
        if cert.is_some() != key.is_some() {
            let (missing, given) = if cert.is_some() {
                (CLIENT_KEY, CLIENT_CERTIFICATE)
            } else {
                (CLIENT_CERTIFICATE, CLIENT_KEY)
            };
            return Err(ConfigError::new(
                missing,
                format!("must be set when {given} is (a client certificate needs its key)"),
            ));
        }
        let tls = (ca.is_some() || cert.is_some()).then_some(TlsConfig { cert, key, ca });

        for exporter in &mut self.exporters {
            if exporter.kind == ExporterKind::File {
                continue;
            }
            if let Some(headers) = &headers
                && exporter.headers.is_empty()
            {
                exporter.headers = headers.clone();
            }
            if let Some(timeout) = timeout
                && exporter.timeout == DEFAULT_EXPORT_TIMEOUT
            {
                exporter.timeout = timeout;
            }
            if let Some(compression) = compression
                && exporter.compression == CompressionName::default()
            {
                exporter.compression = compression;
            }
            if exporter.tls.is_none() {
                exporter.tls = tls.clone();
            }
        }

        if let Some(level) = var(LOG_LEVEL) {
            let level = level.trim().to_owned();
            validate::check_log_filter(&level)
                .map_err(|reason| ConfigError::new(LOG_LEVEL, reason))?;
            self.log.level = level;
        }
        Ok(())
    }

    fn name_in_use(&self, name: &str) -> bool {
        self.exporters.iter().any(|e| e.name == name) || self.groups.iter().any(|g| g.name == name)
    }
}

fn parse_env_headers(
    value: &str,
) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
    let parsed = otlp_transport_http::exporter::env::parse_headers(HEADERS, value)
        .map_err(|e| from_transport(HEADERS, &e))?;
    let mut headers = std::collections::BTreeMap::new();
    for (name, value) in &parsed {
        let value = value.to_str().map_err(|_| {
            ConfigError::new(HEADERS, format!("the value of {name} is not visible ASCII"))
        })?;
        headers.insert(name.as_str().to_owned(), value.to_owned());
    }
    Ok(headers)
}

/// An error of the OTLP/HTTP exporter's variable parsers, whose messages start with the
/// variable already.
fn from_transport(var: &str, e: &dyn std::fmt::Display) -> ConfigError {
    let message = e.to_string();
    let message = message
        .strip_prefix(&format!("{var}: "))
        .map(str::to_owned)
        .unwrap_or(message);
    ConfigError::new(var, message)
}

fn check_flag_addr(flag: &str, addr: &str) -> Result<(), ConfigError> {
    validate::check_listen_addr(addr).map_err(|reason| ConfigError::new(flag, reason))
}

/// The URL's scheme, lowercase ASCII letters only.
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once("://")?;
    (!scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_lowercase())).then_some(scheme)
}

/// An exporter with every setting at its default.
fn exporter(name: String, kind: ExporterKind, endpoint: String) -> ExporterConfig {
    ExporterConfig {
        name,
        kind,
        endpoint,
        signals: vec![
            super::SignalName::Traces,
            super::SignalName::Metrics,
            super::SignalName::Logs,
        ],
        headers: Default::default(),
        compression: CompressionName::default(),
        timeout: DEFAULT_EXPORT_TIMEOUT,
        tls: None,
        workers: 2,
        retry: Default::default(),
        circuit_breaker: Default::default(),
        queue: None,
        rotate_bytes: None,
        keep_files: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 10), (2, 4));
    }

    #[test]
    fn keys_with_dots_are_quoted() {
        let mut path = String::from("exporters[0].headers");
        push_key(&mut path, "x.y");
        assert_eq!(path, "exporters[0].headers.\"x.y\"");
    }

    #[test]
    fn exporter_helper_matches_serde_defaults() {
        let parsed: GatewayConfig =
            parse("[[exporters]]\nname = \"a\"\nkind = \"grpc\"\nendpoint = \"grpc://h:1\"\n")
                .unwrap();
        assert_eq!(
            parsed.exporters[0],
            exporter("a".into(), ExporterKind::Grpc, "grpc://h:1".into())
        );
    }
}
