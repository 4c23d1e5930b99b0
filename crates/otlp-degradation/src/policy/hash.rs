//! A stable 64-bit hash of an item's content, for sampling items without a trace id.
//!
//! Stable means the same on every platform, Rust version and gateway instance (unlike
//! `std`'s `DefaultHasher`), so a retried request drops the same records and instances
//! agree. FNV-1a over the fields, then the SplitMix64 finaliser so that every output bit
//! depends on every input bit: the sampler compares the top 63 bits against a bound and
//! needs them uniform.

use otlp_core::proto::common::v1::{AnyValue, any_value};
use otlp_core::proto::logs::v1::LogRecord;
use otlp_core::proto::trace::v1::Span;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[derive(Debug, Clone, Copy)]
struct StableHasher(u64);

impl StableHasher {
    fn new() -> StableHasher {
        StableHasher(FNV_OFFSET)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// A length-prefixed field, so `("ab", "c")` and `("a", "bc")` hash differently.
    fn field(&mut self, bytes: &[u8]) {
        self.bytes(&(bytes.len() as u64).to_le_bytes());
        self.bytes(bytes);
    }

    fn u64(&mut self, value: u64) {
        self.bytes(&value.to_le_bytes());
    }

    fn any_value(&mut self, value: &AnyValue) {
        match &value.value {
            None => self.bytes(&[0]),
            Some(any_value::Value::StringValue(s)) => {
                self.bytes(&[1]);
                self.field(s.as_bytes());
            }
            Some(any_value::Value::BoolValue(b)) => self.bytes(&[2, u8::from(*b)]),
            Some(any_value::Value::IntValue(i)) => {
                self.bytes(&[3]);
                self.u64(*i as u64);
            }
            Some(any_value::Value::DoubleValue(d)) => {
                self.bytes(&[4]);
                self.u64(d.to_bits());
            }
            Some(any_value::Value::ArrayValue(a)) => {
                self.bytes(&[5]);
                self.u64(a.values.len() as u64);
                for v in &a.values {
                    self.any_value(v);
                }
            }
            Some(any_value::Value::KvlistValue(l)) => {
                self.bytes(&[6]);
                self.u64(l.values.len() as u64);
                for kv in &l.values {
                    self.field(kv.key.as_bytes());
                    match &kv.value {
                        Some(v) => self.any_value(v),
                        None => self.bytes(&[0]),
                    }
                }
            }
            Some(any_value::Value::BytesValue(b)) => {
                self.bytes(&[7]);
                self.field(b);
            }
            Some(any_value::Value::StringValueStrindex(i)) => {
                self.bytes(&[8]);
                self.u64(*i as u64);
            }
        }
    }

    fn finish(self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Hash of a log record: timestamps, severity, event name, span id and body. Attributes
/// are left out so that stripping (which happens after sampling) cannot matter.
pub(crate) fn log_record(record: &LogRecord) -> u64 {
    let mut h = StableHasher::new();
    h.u64(record.time_unix_nano);
    h.u64(record.observed_time_unix_nano);
    h.u64(record.severity_number as u64);
    h.field(record.severity_text.as_bytes());
    h.field(record.event_name.as_bytes());
    h.field(&record.trace_id);
    h.field(&record.span_id);
    match &record.body {
        Some(body) => h.any_value(body),
        None => h.bytes(&[0xff]),
    }
    h.finish()
}

/// Hash of a span whose trace id is unusable: its ids, name and start time.
pub(crate) fn span(span: &Span) -> u64 {
    let mut h = StableHasher::new();
    h.field(&span.trace_id);
    h.field(&span.span_id);
    h.field(span.name.as_bytes());
    h.u64(span.start_time_unix_nano);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_sensitive() {
        let record = LogRecord {
            time_unix_nano: 1,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue("hello".into())),
            }),
            ..Default::default()
        };
        // Pinned: the value must never change across versions, or instances running
        // different versions would sample different records.
        let pinned = log_record(&record);
        assert_eq!(pinned, 0x0222_87dc_6316_f772);
        assert_eq!(pinned, log_record(&record.clone()));
        let mut other = record.clone();
        other.time_unix_nano = 2;
        assert_ne!(pinned, log_record(&other));
        assert_ne!(span(&Span::default()), pinned);
    }
}
