//! Prometheus text exposition format 0.0.4, written by hand.
//!
//! The format is a few lines of text per metric; a client library would bring its own
//! registry (a second one beside [`GatewayMetrics`](crate::metrics::GatewayMetrics)) and
//! its own atomics, while ours only has to print the counters we already keep. The writer
//! groups samples by metric family, so a family's `# HELP` and `# TYPE` lines appear once
//! even when several [`MetricsSource`](super::MetricsSource)s add samples to it.

use std::collections::HashMap;
use std::fmt::Write as _;

/// The prefix of every metric name the gateway exposes.
pub const METRIC_PREFIX: &str = "otlp_gateway_";

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type, as the `# TYPE` line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Only grows (name ends in `_total` by convention).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl MetricType {
    const fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
        }
    }
}

/// A sample value: integers print exactly, floats as Prometheus reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A count.
    Int(u64),
    /// A signed gauge.
    Signed(i64),
    /// A ratio, a duration in seconds, ...
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Signed(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(u64::from(v))
    }
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: MetricType,
    samples: String,
}

/// Collects samples grouped by metric family and prints them in the Prometheus text
/// format. Names are given without the `otlp_gateway_` prefix; the writer adds it.
///
/// ```
/// use otlp_gateway::admin::{MetricType, PrometheusWriter};
///
/// let mut out = PrometheusWriter::new();
/// out.sample(MetricType::Counter, "widgets_total", "Widgets made.", &[("color", "red")], 3u64);
/// out.sample(MetricType::Counter, "widgets_total", "Widgets made.", &[("color", "b\"lue")], 4u64);
/// let text = out.finish();
/// let lines: Vec<&str> = text.lines().collect();
/// assert_eq!(
///     lines,
///     [
///         "# HELP otlp_gateway_widgets_total Widgets made.",
///         "# TYPE otlp_gateway_widgets_total counter",
///         "otlp_gateway_widgets_total{color=\"red\"} 3",
///         "otlp_gateway_widgets_total{color=\"b\\\"lue\"} 4",
///     ]
/// );
/// ```
#[derive(Debug, Default)]
pub struct PrometheusWriter {
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

impl PrometheusWriter {
    /// An empty writer.
    pub fn new() -> PrometheusWriter {
        PrometheusWriter::default()
    }

    /// Add one sample of family `name` (without the prefix). The first sample of a family
    /// sets its help text and type; later ones only add their line. Characters a metric or
    /// label name cannot hold are replaced by `_`.
    pub fn sample(
        &mut self,
        kind: MetricType,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: impl Into<Value>,
    ) {
        let index = match self.index.get(name) {
            Some(&i) => i,
            None => {
                let mut full = String::with_capacity(METRIC_PREFIX.len() + name.len());
                full.push_str(METRIC_PREFIX);
                push_name(&mut full, name, false);
                self.families.push(Family {
                    name: full,
                    help: escape_help(help),
                    kind,
                    samples: String::new(),
                });
                self.index.insert(name.to_owned(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let family = &mut self.families[index];
        debug_assert_eq!(family.kind, kind, "metric {name} added with two types");
        let out = &mut family.samples;
        out.push_str(&family.name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_name(out, key, true);
                out.push_str("=\"");
                push_label_value(out, value);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        push_value(out, value.into());
        out.push('\n');
    }

    /// Shorthand for a [`MetricType::Counter`] sample.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.sample(MetricType::Counter, name, help, labels, value);
    }

    /// Shorthand for a [`MetricType::Gauge`] sample.
    pub fn gauge(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: impl Into<Value>,
    ) {
        self.sample(MetricType::Gauge, name, help, labels, value);
    }

    /// The exposition text: each family's `# HELP`, `# TYPE` and samples, in the order the
    /// families were first added.
    pub fn finish(self) -> String {
        let mut out = String::with_capacity(
            self.families
                .iter()
                .map(|f| f.samples.len() + f.help.len() + 2 * f.name.len() + 24)
                .sum(),
        );
        for family in &self.families {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
            let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
            out.push_str(&family.samples);
        }
        out
    }
}

/// Metric names: `[a-zA-Z_:][a-zA-Z0-9_:]*`; label names the same without `:`.
fn push_name(out: &mut String, name: &str, label: bool) {
    if name.is_empty() {
        out.push('_');
        return;
    }
    for (i, c) in name.chars().enumerate() {
        let ok = c.is_ascii_alphabetic()
            || c == '_'
            || (c == ':' && !label)
            || (i > 0 && c.is_ascii_digit());
        out.push(if ok { c } else { '_' });
    }
}

/// Label values escape `\`, `"` and line feeds.
fn push_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text escapes `\` and line feeds.
fn escape_help(help: &str) -> String {
    let mut out = String::with_capacity(help.len());
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn push_value(out: &mut String, value: Value) {
    let _ = match value {
        Value::Int(v) => write!(out, "{v}"),
        Value::Signed(v) => write!(out, "{v}"),
        Value::Float(v) if v.is_nan() => write!(out, "NaN"),
        Value::Float(v) if v == f64::INFINITY => write!(out, "+Inf"),
        Value::Float(v) if v == f64::NEG_INFINITY => write!(out, "-Inf"),
        Value::Float(v) => write!(out, "{v}"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_and_type_once_per_family_in_first_seen_order() {
        let mut w = PrometheusWriter::new();
        w.gauge("b", "B.", &[], 1u64);
        w.counter("a_total", "A.", &[("x", "1")], 2);
        w.gauge("b", "ignored", &[("k", "v")], 0.5);
        let text = w.finish();
        assert_eq!(
            text,
            "# HELP otlp_gateway_b B.\n# TYPE otlp_gateway_b gauge\notlp_gateway_b 1\n\
             otlp_gateway_b{k=\"v\"} 0.5\n\
             # HELP otlp_gateway_a_total A.\n# TYPE otlp_gateway_a_total counter\n\
             otlp_gateway_a_total{x=\"1\"} 2\n"
        );
    }

    #[test]
    fn escapes_label_values_and_help_and_sanitizes_names() {
        let mut w = PrometheusWriter::new();
        w.gauge(
            "we-ird.name",
            "line\nback\\slash",
            &[("0bad-label", "a\\b\"c\nd")],
            -3i64,
        );
        let text = w.finish();
        assert_eq!(
            text,
            "# HELP otlp_gateway_we_ird_name line\\nback\\\\slash\n\
             # TYPE otlp_gateway_we_ird_name gauge\n\
             otlp_gateway_we_ird_name{_bad_label=\"a\\\\b\\\"c\\nd\"} -3\n"
        );
    }

    #[test]
    fn special_floats() {
        let mut w = PrometheusWriter::new();
        w.gauge("g", "G.", &[("v", "nan")], f64::NAN);
        w.gauge("g", "G.", &[("v", "inf")], f64::INFINITY);
        w.gauge("g", "G.", &[("v", "-inf")], f64::NEG_INFINITY);
        w.gauge("g", "G.", &[("v", "big")], 1e21);
        let text = w.finish();
        assert!(text.contains("{v=\"nan\"} NaN\n"));
        assert!(text.contains("{v=\"inf\"} +Inf\n"));
        assert!(text.contains("{v=\"-inf\"} -Inf\n"));
        let big = text.lines().last().unwrap().rsplit(' ').next().unwrap();
        assert_eq!(big.parse::<f64>().unwrap(), 1e21);
    }
}
