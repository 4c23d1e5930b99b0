//! What each degradation level does to data: the configuration and its validation.

use std::time::Duration;

use otlp_core::proto::logs::v1::SeverityNumber;

use super::error::PolicyError;
use crate::level::DegradationLevel;

/// The whole policy: one [`LevelPolicy`] per level plus the lists the levels refer to.
///
/// Build one with [`PolicyConfig::default`] and change what you need; check it with
/// [`PolicyConfig::validate`] (or let [`super::DegradationPolicy::new`] do it).
///
/// ```
/// use otlp_degradation::policy::PolicyConfig;
/// use otlp_degradation::DegradationLevel;
///
/// let mut config = PolicyConfig::default();
/// config.critical_services = vec!["checkout".into()];
/// config.verbose_attributes = vec!["db.statement".into(), "http.request.header.*".into()];
/// config.level_mut(DegradationLevel::Heavy).keep_ratio = 0.02;
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// The rules of each level, indexed by [`DegradationLevel::index`]; prefer
    /// [`PolicyConfig::level`] and [`PolicyConfig::level_mut`].
    pub levels: [LevelPolicy; 5],
    /// Values of the resource attribute `service.name` whose spans and log records are
    /// never dropped (at levels where [`LevelPolicy::keep_critical_services`] is set).
    /// Default: none.
    pub critical_services: Vec<String>,
    /// Attribute keys removed at levels with [`LevelPolicy::strip_denied_attributes`].
    /// A trailing `*` matches a prefix (`http.request.header.*`). Default: none.
    pub deny_attributes: Vec<String>,
    /// Attribute keys that are useful but bulky (SQL text, stack traces, headers), removed
    /// at levels with [`LevelPolicy::strip_verbose_attributes`]. A trailing `*` matches
    /// a prefix. Default: none.
    pub verbose_attributes: Vec<String>,
    /// Whether attribute stripping also applies to metrics (resource, scope and data point
    /// attributes). Default `false`: data point attributes are a metric's identity, so
    /// removing one merges distinct series into duplicates that a backend may reject or
    /// double-count; turn it on only for keys that are not part of any series' identity.
    pub strip_metric_attributes: bool,
}

/// The rules of one degradation level.
///
/// For a span, in order: status ERROR keeps it; a critical service keeps it (if
/// [`keep_critical_services`](LevelPolicy::keep_critical_services)); with
/// [`errors_only`](LevelPolicy::errors_only) it is dropped; otherwise the trace id
/// sampler decides. Log records follow the same order with their severity rules in
/// between (see `crate::policy`).
#[derive(Debug, Clone, PartialEq)]
pub struct LevelPolicy {
    /// Fraction of traces (and of log records) kept by the trace-id sampler, `0.0..=1.0`.
    /// Defaults 1.0, 0.5, 0.1, 0.01, 0.001: each step cuts the volume by about an order
    /// of magnitude once the first halving was not enough.
    pub keep_ratio: f64,
    /// Keep only what a protection rule keeps (errors, critical services, severe logs)
    /// and drop everything else. Default: only at `Emergency`.
    pub errors_only: bool,
    /// Keep every span and log record of the [`PolicyConfig::critical_services`].
    /// Default `true` at every level (set it `false` at `Emergency` to keep errors only).
    pub keep_critical_services: bool,
    /// Log records at or above this severity are always kept. Default `ERROR` at every
    /// level: error logs are what an operator reads during an incident.
    pub keep_logs_at_or_above: Option<SeverityNumber>,
    /// Log records below this severity are dropped before sampling. Records without a
    /// severity (`UNSPECIFIED`, or a number outside 1..=24) are never dropped by this rule,
    /// only sampled. Defaults: none, `DEBUG` (drops TRACE), `INFO` (drops DEBUG too),
    /// `WARN` (drops INFO too), `WARN`.
    pub drop_logs_below: Option<SeverityNumber>,
    /// Remove the [`PolicyConfig::deny_attributes`]. Default: every level but `Normal`.
    pub strip_denied_attributes: bool,
    /// Remove the [`PolicyConfig::verbose_attributes`]. Default: `Moderate` and above.
    pub strip_verbose_attributes: bool,
    /// Cut string (and bytes) attribute values longer than this many bytes, at a UTF-8
    /// character boundary. Defaults: none, none, 4096, 1024, 1024: large values (stack
    /// traces, SQL, payload dumps) dominate the bytes of the spans that carry them.
    pub max_attribute_value_bytes: Option<usize>,
    /// How the pipeline should batch at this level.
    pub batch: BatchHint,
}

/// A batching suggestion the pipeline reads for the current level.
///
/// Defaults keep `max_items` at the collector's 8192 (upstream message-size limits do not
/// change with load) and lengthen `max_wait` as the levels sample harder (200 ms, 400 ms,
/// 1 s, 2 s, 5 s): with a tenth of the data kept a batch takes ten times longer to fill,
/// and fewer, fuller batches cost the exporter less per item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHint {
    /// Most items in one batch.
    pub max_items: u64,
    /// Longest time data waits for its batch to fill.
    pub max_wait: Duration,
}

impl BatchHint {
    /// The longest accepted [`BatchHint::max_wait`] (the limit otlp-core's batcher takes).
    pub const MAX_WAIT_LIMIT: Duration = otlp_core::BatchConfig::MAX_AGE_LIMIT;
}

impl Default for PolicyConfig {
    fn default() -> PolicyConfig {
        PolicyConfig {
            levels: DegradationLevel::ALL.map(LevelPolicy::default_for),
            critical_services: Vec::new(),
            deny_attributes: Vec::new(),
            verbose_attributes: Vec::new(),
            strip_metric_attributes: false,
        }
    }
}

impl LevelPolicy {
    /// The default rules of `level` (documented on each field).
    pub fn default_for(level: DegradationLevel) -> LevelPolicy {
        let (keep_ratio, drop_logs_below, max_attribute_value_bytes, wait_ms) = match level {
            DegradationLevel::Normal => (1.0, None, None, 200),
            DegradationLevel::Light => (0.5, Some(SeverityNumber::Debug), None, 400),
            DegradationLevel::Moderate => (0.1, Some(SeverityNumber::Info), Some(4096), 1000),
            DegradationLevel::Heavy => (0.01, Some(SeverityNumber::Warn), Some(1024), 2000),
            DegradationLevel::Emergency => (0.001, Some(SeverityNumber::Warn), Some(1024), 5000),
        };
        LevelPolicy {
            keep_ratio,
            errors_only: level == DegradationLevel::Emergency,
            keep_critical_services: true,
            keep_logs_at_or_above: Some(SeverityNumber::Error),
            drop_logs_below,
            strip_denied_attributes: level >= DegradationLevel::Light,
            strip_verbose_attributes: level >= DegradationLevel::Moderate,
            max_attribute_value_bytes,
            batch: BatchHint {
                max_items: 8192,
                max_wait: Duration::from_millis(wait_ms),
            },
        }
    }
}

impl PolicyConfig {
    /// The rules of `level`.
    pub fn level(&self, level: DegradationLevel) -> &LevelPolicy {
        &self.levels[level.index()]
    }

    /// The rules of `level`, to change.
    pub fn level_mut(&mut self, level: DegradationLevel) -> &mut LevelPolicy {
        &mut self.levels[level.index()]
    }

    /// Check every field; the first problem found, naming the field (`levels.heavy.keep_ratio`,
    /// `deny_attributes[2]`, ...).
    ///
    /// # Errors
    ///
    /// [`PolicyError`] saying which field is wrong and what to put there instead.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let mut previous: Option<(DegradationLevel, f64)> = None;
        for level in DegradationLevel::ALL {
            let rules = self.level(level);
            let field = |name: &str| format!("levels.{level}.{name}");
            if !(0.0..=1.0).contains(&rules.keep_ratio) {
                return Err(PolicyError::KeepRatio {
                    field: field("keep_ratio"),
                    value: rules.keep_ratio,
                });
            }
            if let Some((lower, lower_ratio)) = previous
                && rules.keep_ratio > lower_ratio
            {
                return Err(PolicyError::KeepRatioRises {
                    field: field("keep_ratio"),
                    value: rules.keep_ratio,
                    lower: format!("levels.{lower}.keep_ratio"),
                    lower_value: lower_ratio,
                });
            }
            previous = Some((level, rules.keep_ratio));
            for (name, severity) in [
                ("keep_logs_at_or_above", rules.keep_logs_at_or_above),
                ("drop_logs_below", rules.drop_logs_below),
            ] {
                if severity == Some(SeverityNumber::Unspecified) {
                    return Err(PolicyError::UnspecifiedSeverity { field: field(name) });
                }
            }
            if let (Some(keep), Some(drop)) = (rules.keep_logs_at_or_above, rules.drop_logs_below)
                && drop > keep
            {
                return Err(PolicyError::SeverityOverlap {
                    field: field("drop_logs_below"),
                    drop: drop.as_str_name(),
                    keep_field: field("keep_logs_at_or_above"),
                    keep: keep.as_str_name(),
                });
            }
            if rules.max_attribute_value_bytes == Some(0) {
                return Err(PolicyError::ZeroValueLength {
                    field: field("max_attribute_value_bytes"),
                });
            }
            if rules.batch.max_items == 0 {
                return Err(PolicyError::ZeroBatchItems {
                    field: field("batch.max_items"),
                });
            }
            if rules.batch.max_wait.is_zero() || rules.batch.max_wait > BatchHint::MAX_WAIT_LIMIT {
                return Err(PolicyError::BatchWait {
                    field: field("batch.max_wait"),
                    value: rules.batch.max_wait,
                });
            }
        }
        for (i, service) in self.critical_services.iter().enumerate() {
            if service.trim().is_empty() {
                return Err(PolicyError::EmptyEntry {
                    field: format!("critical_services[{i}]"),
                });
            }
        }
        for (list, keys) in [
            ("deny_attributes", &self.deny_attributes),
            ("verbose_attributes", &self.verbose_attributes),
        ] {
            for (i, key) in keys.iter().enumerate() {
                let field = format!("{list}[{i}]");
                let stem = key.strip_suffix('*').unwrap_or(key);
                if key.is_empty() {
                    return Err(PolicyError::EmptyEntry { field });
                }
                if stem.contains('*') {
                    return Err(PolicyError::Wildcard {
                        field,
                        key: key.clone(),
                    });
                }
                if key == super::SERVICE_NAME {
                    return Err(PolicyError::ServiceName { field });
                }
            }
        }
        Ok(())
    }
}

/// A severity from its name as operators write it: `error`, `WARN`, `info2`,
/// `SEVERITY_NUMBER_FATAL`, or its number `1`..=`24`. `None` for anything else.
///
/// ```
/// use otlp_degradation::policy::parse_severity;
/// use otlp_core::proto::logs::v1::SeverityNumber;
///
/// assert_eq!(parse_severity("error"), Some(SeverityNumber::Error));
/// assert_eq!(parse_severity("Warn3"), Some(SeverityNumber::Warn3));
/// assert_eq!(parse_severity("13"), Some(SeverityNumber::Warn));
/// assert_eq!(parse_severity("loud"), None);
/// ```
pub fn parse_severity(name: &str) -> Option<SeverityNumber> {
    let name = name.trim();
    if let Ok(number) = name.parse::<i32>() {
        return SeverityNumber::try_from(number)
            .ok()
            .filter(|s| *s != SeverityNumber::Unspecified);
    }
    let upper = name.to_ascii_uppercase();
    let upper = upper.strip_prefix("SEVERITY_NUMBER_").unwrap_or(&upper);
    SeverityNumber::from_str_name(&format!("SEVERITY_NUMBER_{upper}"))
        .filter(|s| *s != SeverityNumber::Unspecified)
}
