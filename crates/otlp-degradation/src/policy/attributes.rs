//! Attribute stripping: deny and verbose key lists, value length limits.

use std::collections::HashSet;

use otlp_core::proto::common::v1::{AnyValue, KeyValue, any_value};

use super::SERVICE_NAME;
use super::report::ApplyReport;

/// A list of attribute keys: exact keys and prefixes (entries ending in `*`).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyMatcher {
    /// A short list is scanned (comparing lengths first is cheaper than hashing every key);
    /// a long one is hashed.
    exact: Vec<Box<str>>,
    exact_set: Option<HashSet<Box<str>>>,
    prefixes: Vec<Box<str>>,
}

/// Above this many exact keys a hash set beats a linear scan.
const SCAN_LIMIT: usize = 16;

impl KeyMatcher {
    pub(crate) fn new(keys: &[String]) -> KeyMatcher {
        let mut matcher = KeyMatcher::default();
        for key in keys {
            match key.strip_suffix('*') {
                Some(prefix) => matcher.prefixes.push(prefix.into()),
                None => matcher.exact.push(key.as_str().into()),
            }
        }
        if matcher.exact.len() > SCAN_LIMIT {
            matcher.exact_set = Some(std::mem::take(&mut matcher.exact).into_iter().collect());
        }
        matcher
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.exact_set.is_none() && self.prefixes.is_empty()
    }

    #[inline]
    pub(crate) fn matches(&self, key: &str) -> bool {
        let exact = match &self.exact_set {
            Some(set) => set.contains(key),
            None => self.exact.iter().any(|k| **k == *key),
        };
        exact || self.prefixes.iter().any(|p| key.starts_with(&**p))
    }
}

/// What one level strips, borrowed from the policy for the duration of an `apply`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stripper<'a> {
    pub(crate) deny: Option<&'a KeyMatcher>,
    pub(crate) verbose: Option<&'a KeyMatcher>,
    pub(crate) max_value_bytes: Option<usize>,
}

impl Stripper<'_> {
    pub(crate) fn is_active(&self) -> bool {
        self.deny.is_some() || self.verbose.is_some() || self.max_value_bytes.is_some()
    }

    /// Strip one attribute list; returns how many attributes were removed so the caller
    /// can add them to the owner's `dropped_attributes_count` (OTLP's record of attributes
    /// a producer discarded).
    pub(crate) fn strip(&self, attributes: &mut Vec<KeyValue>, report: &mut ApplyReport) -> u32 {
        self.strip_inner(attributes, false, report)
    }

    /// As [`Stripper::strip`] for resource attributes: `service.name` stays whatever the
    /// lists say, because critical-service decisions and routing downstream read it.
    pub(crate) fn strip_resource(
        &self,
        attributes: &mut Vec<KeyValue>,
        report: &mut ApplyReport,
    ) -> u32 {
        self.strip_inner(attributes, true, report)
    }

    fn strip_inner(
        &self,
        attributes: &mut Vec<KeyValue>,
        keep_service_name: bool,
        report: &mut ApplyReport,
    ) -> u32 {
        let mut removed = 0u32;
        if self.deny.is_some() || self.verbose.is_some() {
            attributes.retain(|kv| {
                if keep_service_name && kv.key == SERVICE_NAME {
                    return true;
                }
                let remove = self.deny.is_some_and(|m| m.matches(&kv.key))
                    || self.verbose.is_some_and(|m| m.matches(&kv.key));
                removed += u32::from(remove);
                !remove
            });
        }
        report.attributes_removed += u64::from(removed);
        if let Some(max) = self.max_value_bytes {
            for kv in attributes.iter_mut() {
                if let Some(value) = kv.value.as_mut() {
                    report.values_truncated += truncate_value(value, max);
                }
            }
        }
        removed
    }
}

/// Cut strings and bytes in `value` (recursively through arrays and key-value lists) to
/// at most `max` bytes; strings at the last UTF-8 character boundary at or before `max`.
/// Returns the number of values cut.
fn truncate_value(value: &mut AnyValue, max: usize) -> u64 {
    match value.value.as_mut() {
        Some(any_value::Value::StringValue(s)) if s.len() > max => {
            let mut cut = max;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            1
        }
        Some(any_value::Value::BytesValue(b)) if b.len() > max => {
            b.truncate(max);
            1
        }
        Some(any_value::Value::ArrayValue(array)) => array
            .values
            .iter_mut()
            .map(|v| truncate_value(v, max))
            .sum(),
        Some(any_value::Value::KvlistValue(list)) => list
            .values
            .iter_mut()
            .filter_map(|kv| kv.value.as_mut())
            .map(|v| truncate_value(v, max))
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> AnyValue {
        AnyValue {
            value: Some(any_value::Value::StringValue(s.to_owned())),
        }
    }

    #[test]
    fn truncates_at_char_boundary() {
        let mut v = string("aé漢");
        // 'a' = 1 byte, 'é' = 2, '漢' = 3: a 5-byte cut falls inside '漢'.
        assert_eq!(truncate_value(&mut v, 5), 1);
        assert_eq!(v, string("aé"));
        assert_eq!(truncate_value(&mut v, 5), 0);
    }

    #[test]
    fn matcher_exact_prefix_and_large() {
        let m = KeyMatcher::new(&["a.b".into(), "h.*".into()]);
        assert!(m.matches("a.b") && m.matches("h.x") && m.matches("h."));
        assert!(!m.matches("a.bc") && !m.matches("h"));
        let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let m = KeyMatcher::new(&keys);
        assert!(m.matches("k39") && !m.matches("k40"));
        assert!(KeyMatcher::new(&[]).is_empty());
    }
}
