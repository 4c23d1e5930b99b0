//! The gateway's configuration: a TOML file, overridden by command-line flags and by the
//! `OTEL_*` variables the OpenTelemetry specification defines.
//!
//! Precedence, lowest first: embedded defaults, the file, `OTEL_*` variables, flags.
//! [`GatewayConfig::validate`] checks everything at start (and on reload) and names the key
//! of the first problem it finds.

mod load;
mod model;
mod units;
mod validate;

pub use load::{EnvSource, Overrides, effective};
pub use model::*;
pub use units::{ByteSize, HumanDuration};

use std::fmt;
use std::path::Path;

/// A configuration problem: the key (dotted path, `exporters[1].endpoint`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The dotted path of the key, or empty for the file as a whole.
    pub key: String,
    /// What is wrong and, where it helps, what would be right.
    pub message: String,
}

impl ConfigError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl GatewayConfig {
    /// Parses and validates a TOML document.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the key of a syntax, type or value problem.
    pub fn from_toml_str(text: &str) -> Result<GatewayConfig, ConfigError> {
        let config = load::parse(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML file.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the file cannot be read or is not valid.
    pub fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("", format!("cannot read {}: {e}", path.display())))?;
        GatewayConfig::from_toml_str(&text)
    }

    /// Checks every value and every cross-reference (group members, unique names,
    /// addresses, TLS files, limits that contradict each other).
    ///
    /// # Errors
    ///
    /// The first problem, with its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::validate(self)
    }
}
