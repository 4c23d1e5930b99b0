//! The OpenTelemetry exporter environment variables, read through an injectable
//! [`EnvSource`] so tests never touch the process environment.
//!
//! | setting | generic variable | signal-specific variable (`TRACES` shown) | value |
//! |---|---|---|---|
//! | endpoint | `OTEL_EXPORTER_OTLP_ENDPOINT` (gets `/v1/traces` appended) | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) | `http://` or `https://` URL |
//! | headers | `OTEL_EXPORTER_OTLP_HEADERS` | `OTEL_EXPORTER_OTLP_TRACES_HEADERS` | `k=v,k2=v2`, percent-encoded (W3C baggage style) |
//! | timeout | `OTEL_EXPORTER_OTLP_TIMEOUT` | `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` | milliseconds |
//! | compression | `OTEL_EXPORTER_OTLP_COMPRESSION` | `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION` | `gzip`, `zstd` or `none` |
//! | protocol | `OTEL_EXPORTER_OTLP_PROTOCOL` | `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` | `http/protobuf` or `http/json` |
//! | CA certificate | `OTEL_EXPORTER_OTLP_CERTIFICATE` | `OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE` | PEM file path |
//! | client key | `OTEL_EXPORTER_OTLP_CLIENT_KEY` | `OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY` | PEM file path |
//! | client certificate | `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` | `OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE` | PEM file path |
//!
//! A signal-specific variable replaces the generic one entirely (headers are not merged),
//! and an empty value counts as unset, as the specification says.
//!
//! ```
//! use std::collections::HashMap;
//! use otlp_transport_http::exporter::env::{parse_headers, EnvSource};
//!
//! let env = HashMap::from([("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret, tenant = a b")]);
//! assert_eq!(env.var("OTEL_EXPORTER_OTLP_HEADERS").as_deref(), Some("api-key=s%3Dcret, tenant = a b"));
//! let headers = parse_headers("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret, tenant = a b").unwrap();
//! assert_eq!(headers["api-key"], "s=cret");
//! assert_eq!(headers["tenant"], "a b");
//! ```

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use otlp_core::{Compression, Signal};

use super::config::Protocol;
use super::error::ConfigError;

/// Where environment variables come from: the process ([`ProcessEnv`]), a map in tests,
/// or any closure `Fn(&str) -> Option<String>`.
pub trait EnvSource: Send + Sync {
    /// The value of `name`, or `None` when it is unset.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment (`std::env::var`; values that are not UTF-8 count as unset).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// No variables at all: configuration from code only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl EnvSource for NoEnv {
    fn var(&self, _name: &str) -> Option<String> {
        None
    }
}

impl<K, V, S> EnvSource for HashMap<K, V, S>
where
    K: Borrow<str> + Hash + Eq + Send + Sync,
    V: AsRef<str> + Send + Sync,
    S: BuildHasher + Send + Sync,
{
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.as_ref().to_owned())
    }
}

impl<K, V> EnvSource for BTreeMap<K, V>
where
    K: Borrow<str> + Ord + Send + Sync,
    V: AsRef<str> + Send + Sync,
{
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.as_ref().to_owned())
    }
}

impl<F> EnvSource for F
where
    F: Fn(&str) -> Option<String> + Send + Sync,
{
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// One exporter setting that has a generic and a signal-specific variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    /// `..._ENDPOINT`
    Endpoint,
    /// `..._HEADERS`
    Headers,
    /// `..._TIMEOUT`
    Timeout,
    /// `..._COMPRESSION`
    Compression,
    /// `..._PROTOCOL`
    Protocol,
    /// `..._CERTIFICATE`
    Certificate,
    /// `..._CLIENT_KEY`
    ClientKey,
    /// `..._CLIENT_CERTIFICATE`
    ClientCertificate,
}

impl Setting {
    /// Every setting.
    pub const ALL: [Setting; 8] = [
        Setting::Endpoint,
        Setting::Headers,
        Setting::Timeout,
        Setting::Compression,
        Setting::Protocol,
        Setting::Certificate,
        Setting::ClientKey,
        Setting::ClientCertificate,
    ];

    /// The generic variable, e.g. `OTEL_EXPORTER_OTLP_TIMEOUT`.
    pub const fn generic_var(self) -> &'static str {
        match self {
            Setting::Endpoint => "OTEL_EXPORTER_OTLP_ENDPOINT",
            Setting::Headers => "OTEL_EXPORTER_OTLP_HEADERS",
            Setting::Timeout => "OTEL_EXPORTER_OTLP_TIMEOUT",
            Setting::Compression => "OTEL_EXPORTER_OTLP_COMPRESSION",
            Setting::Protocol => "OTEL_EXPORTER_OTLP_PROTOCOL",
            Setting::Certificate => "OTEL_EXPORTER_OTLP_CERTIFICATE",
            Setting::ClientKey => "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            Setting::ClientCertificate => "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        }
    }

    /// The variable for one signal, e.g. `OTEL_EXPORTER_OTLP_LOGS_TIMEOUT`.
    pub const fn signal_var(self, signal: Signal) -> &'static str {
        use Setting::*;
        use Signal::*;
        match (self, signal) {
            (Endpoint, Traces) => "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            (Endpoint, Metrics) => "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            (Endpoint, Logs) => "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            (Headers, Traces) => "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            (Headers, Metrics) => "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            (Headers, Logs) => "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
            (Timeout, Traces) => "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            (Timeout, Metrics) => "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
            (Timeout, Logs) => "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
            (Compression, Traces) => "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            (Compression, Metrics) => "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
            (Compression, Logs) => "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
            (Protocol, Traces) => "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            (Protocol, Metrics) => "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            (Protocol, Logs) => "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
            (Certificate, Traces) => "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            (Certificate, Metrics) => "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
            (Certificate, Logs) => "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
            (ClientKey, Traces) => "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            (ClientKey, Metrics) => "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
            (ClientKey, Logs) => "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
            (ClientCertificate, Traces) => "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            (ClientCertificate, Metrics) => "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
            (ClientCertificate, Logs) => "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
        }
    }
}

/// A value read from the environment, with the variable it came from (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvValue {
    /// The variable's name.
    pub var: &'static str,
    /// Its value (never empty).
    pub value: String,
}

/// The value of `setting` for `signal`: the signal-specific variable if set and not empty,
/// else the generic one if set and not empty.
pub fn lookup(env: &dyn EnvSource, setting: Setting, signal: Signal) -> Option<EnvValue> {
    [setting.signal_var(signal), setting.generic_var()]
        .into_iter()
        .find_map(|var| {
            env.var(var)
                .filter(|v| !v.trim().is_empty())
                .map(|value| EnvValue { var, value })
        })
}

/// Parse a W3C-baggage-style header list: `key=value` pairs separated by commas,
/// whitespace around keys and values ignored, both percent-decoded. An empty list is
/// valid; empty entries (`a=1,,b=2`) are skipped.
///
/// # Errors
///
/// [`ConfigError::InvalidHeader`] naming `var` and the entry, for an entry without `=`,
/// an empty key, or a key or value that is not a valid HTTP header name or value.
pub fn parse_headers(var: &str, value: &str) -> Result<HeaderMap, ConfigError> {
    let mut headers = HeaderMap::new();
    for entry in value.split(',') {
        if entry.trim().is_empty() {
            continue;
        }
        let invalid = |reason: &str| ConfigError::InvalidHeader {
            key: var.to_owned(),
            entry: entry.trim().to_owned(),
            reason: reason.to_owned(),
        };
        let (k, v) = entry
            .split_once('=')
            .ok_or_else(|| invalid("expected key=value"))?;
        let k = percent_decode(k.trim()).map_err(|_| invalid("key is not UTF-8"))?;
        let v = percent_decode(v.trim()).map_err(|_| invalid("value is not UTF-8"))?;
        if k.is_empty() {
            return Err(invalid("empty key"));
        }
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| invalid("not a valid HTTP header name"))?;
        let value = HeaderValue::from_bytes(v.as_bytes())
            .map_err(|_| invalid("not a valid HTTP header value (control characters?)"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn percent_decode(s: &str) -> Result<String, std::str::Utf8Error> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
}

/// Parse `OTEL_EXPORTER_OTLP_*TIMEOUT`: a non-negative integer number of milliseconds.
///
/// # Errors
///
/// [`ConfigError::InvalidTimeout`] naming `var`.
pub fn parse_timeout(var: &str, value: &str) -> Result<Duration, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| ConfigError::InvalidTimeout {
            key: var.to_owned(),
            value: value.to_owned(),
        })
}

/// Parse `OTEL_EXPORTER_OTLP_*COMPRESSION`: `gzip`, `zstd` or `none` (any case).
///
/// # Errors
///
/// [`ConfigError::InvalidCompression`] naming `var`.
pub fn parse_compression(var: &str, value: &str) -> Result<Compression, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "gzip" => Ok(Compression::Gzip),
        "zstd" => Ok(Compression::Zstd),
        "none" | "identity" => Ok(Compression::None),
        _ => Err(ConfigError::InvalidCompression {
            key: var.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// Parse `OTEL_EXPORTER_OTLP_*PROTOCOL`: `http/protobuf` or `http/json`.
///
/// # Errors
///
/// [`ConfigError::GrpcProtocol`] for `grpc` (served by `otlp-transport-grpc`),
/// [`ConfigError::InvalidProtocol`] for anything else.
pub fn parse_protocol(var: &str, value: &str) -> Result<Protocol, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Ok(Protocol::HttpJson),
        "grpc" => Err(ConfigError::GrpcProtocol {
            key: var.to_owned(),
        }),
        _ => Err(ConfigError::InvalidProtocol {
            key: var.to_owned(),
            value: value.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_specific_wins_and_empty_is_unset() {
        let env = HashMap::from([
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", " "),
        ]);
        let t = lookup(&env, Setting::Timeout, Signal::Traces).unwrap();
        assert_eq!(
            (t.var, t.value.as_str()),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2000")
        );
        let l = lookup(&env, Setting::Timeout, Signal::Logs).unwrap();
        assert_eq!(
            (l.var, l.value.as_str()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")
        );
        assert_eq!(lookup(&env, Setting::Headers, Signal::Logs), None);
        assert_eq!(lookup(&NoEnv, Setting::Timeout, Signal::Logs), None);
        let from_fn =
            |name: &str| (name == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "http/json".to_owned());
        assert_eq!(
            lookup(&from_fn, Setting::Protocol, Signal::Metrics).map(|v| v.value),
            Some("http/json".to_owned())
        );
    }

    #[test]
    fn every_variable_name_is_consistent() {
        for setting in Setting::ALL {
            let generic = setting.generic_var();
            let suffix = generic.trim_start_matches("OTEL_EXPORTER_OTLP_");
            for signal in Signal::ALL {
                let expected = format!(
                    "OTEL_EXPORTER_OTLP_{}_{suffix}",
                    signal.as_str().to_ascii_uppercase()
                );
                assert_eq!(setting.signal_var(signal), expected);
            }
        }
        for signal in Signal::ALL {
            assert_eq!(Setting::Endpoint.signal_var(signal), signal.endpoint_env());
        }
    }

    #[test]
    fn headers() {
        let h = parse_headers("V", "a=1, b = two%20words ,,c=%E2%9C%93,a=again").unwrap();
        assert_eq!(h.get_all("a").iter().count(), 2);
        assert_eq!(h["b"], "two words");
        assert_eq!(h["c"].to_str().ok(), None); // non-ASCII is kept as bytes
        assert_eq!(h["c"].as_bytes(), "✓".as_bytes());
        assert!(parse_headers("V", "").unwrap().is_empty());
        for bad in ["novalue", "=v", "bad key=v", "k=line%0Abreak", "k=%FF"] {
            let err = parse_headers("OTEL_EXPORTER_OTLP_HEADERS", bad).unwrap_err();
            assert!(
                err.to_string().contains("OTEL_EXPORTER_OTLP_HEADERS"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(
            parse_timeout("T", " 250 ").unwrap(),
            Duration::from_millis(250)
        );
        assert!(parse_timeout("T", "-1").is_err());
        assert!(parse_timeout("T", "1.5").is_err());
        assert_eq!(parse_compression("C", "GZIP").unwrap(), Compression::Gzip);
        assert_eq!(parse_compression("C", "zstd").unwrap(), Compression::Zstd);
        assert_eq!(parse_compression("C", "none").unwrap(), Compression::None);
        assert!(parse_compression("C", "br").is_err());
        assert_eq!(
            parse_protocol("P", "http/json").unwrap(),
            Protocol::HttpJson
        );
        assert_eq!(
            parse_protocol("P", "HTTP/PROTOBUF").unwrap(),
            Protocol::HttpProtobuf
        );
        let grpc = parse_protocol("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc").unwrap_err();
        assert!(grpc.to_string().contains("otlp-transport-grpc"), "{grpc}");
        assert!(parse_protocol("P", "thrift").is_err());
    }
}
