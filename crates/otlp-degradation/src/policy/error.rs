//! Why a [`super::PolicyConfig`] was refused.

use std::time::Duration;

/// A policy configuration field that is out of range or contradicts another; every
/// variant names the field (relative to the policy section, e.g. `levels.heavy.keep_ratio`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// A keep ratio outside `0.0..=1.0` (or NaN).
    #[error(
        "{field} = {value} is not a fraction; set a value from 0.0 (keep nothing) to 1.0 (keep everything)"
    )]
    KeepRatio {
        /// The field.
        field: String,
        /// The value given.
        value: f64,
    },
    /// A level keeps a larger fraction than the level below it.
    #[error(
        "{field} = {value} is above {lower} = {lower_value}; a higher level must not keep more, so lower it or raise {lower}"
    )]
    KeepRatioRises {
        /// The field.
        field: String,
        /// The value given.
        value: f64,
        /// The same field of the level below.
        lower: String,
        /// Its value.
        lower_value: f64,
    },
    /// `drop_logs_below` is above `keep_logs_at_or_above`, so some severities would be
    /// both always kept and always dropped.
    #[error("{field} = {drop} is above {keep_field} = {keep}; lower {field} or raise {keep_field}")]
    SeverityOverlap {
        /// The `drop_logs_below` field.
        field: String,
        /// Its value.
        drop: &'static str,
        /// The `keep_logs_at_or_above` field.
        keep_field: String,
        /// Its value.
        keep: &'static str,
    },
    /// A severity rule set to `UNSPECIFIED`, which is not a level of severity.
    #[error(
        "{field} is SEVERITY_NUMBER_UNSPECIFIED; use a severity such as INFO, WARN or ERROR, or leave it unset"
    )]
    UnspecifiedSeverity {
        /// The field.
        field: String,
    },
    /// `max_attribute_value_bytes` of zero would empty every string value.
    #[error("{field} is 0, which would empty every value; use a positive length or leave it unset")]
    ZeroValueLength {
        /// The field.
        field: String,
    },
    /// A batch hint of zero items.
    #[error("{field} is 0; a batch needs room for at least one item")]
    ZeroBatchItems {
        /// The field.
        field: String,
    },
    /// A batch wait of zero or beyond [`super::BatchHint::MAX_WAIT_LIMIT`].
    #[error("{field} = {value:?} is out of range; use more than 0 and at most one hour")]
    BatchWait {
        /// The field.
        field: String,
        /// The value given.
        value: Duration,
    },
    /// An empty service name or attribute key.
    #[error("{field} is empty; remove the entry or give a name")]
    EmptyEntry {
        /// The field.
        field: String,
    },
    /// A `*` anywhere but at the end of an attribute key pattern.
    #[error(
        "{field} = {key:?} has a `*` that is not at the end; only prefix patterns such as `http.request.header.*` are supported"
    )]
    Wildcard {
        /// The field.
        field: String,
        /// The pattern given.
        key: String,
    },
    /// `service.name` in an attribute list: the policy reads it to find critical services.
    #[error(
        "{field} is `service.name`, which the policy needs to recognise critical services and is never stripped; remove the entry"
    )]
    ServiceName {
        /// The field.
        field: String,
    },
}

impl PolicyError {
    /// The field the error is about.
    pub fn field(&self) -> &str {
        match self {
            PolicyError::KeepRatio { field, .. }
            | PolicyError::KeepRatioRises { field, .. }
            | PolicyError::SeverityOverlap { field, .. }
            | PolicyError::UnspecifiedSeverity { field }
            | PolicyError::ZeroValueLength { field }
            | PolicyError::ZeroBatchItems { field }
            | PolicyError::BatchWait { field, .. }
            | PolicyError::EmptyEntry { field }
            | PolicyError::Wildcard { field, .. }
            | PolicyError::ServiceName { field } => field,
        }
    }
}
