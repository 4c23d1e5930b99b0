//! Sizes and durations as people write them in TOML: `"64MiB"`, `"512KB"`, `"250ms"`, `"5s"`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes. In TOML: an integer (bytes) or a string with a unit: `B`, `KB`/`KiB`,
/// `MB`/`MiB`, `GB`/`GiB` (decimal units are powers of 1000, binary units of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` KiB.
    pub const fn kib(n: u64) -> ByteSize {
        ByteSize(n * 1024)
    }
    /// `n` MiB.
    pub const fn mib(n: u64) -> ByteSize {
        ByteSize(n * 1024 * 1024)
    }
    /// `n` GiB.
    pub const fn gib(n: u64) -> ByteSize {
        ByteSize(n * 1024 * 1024 * 1024)
    }
    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
    /// The size as `usize`, saturating.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }

    /// Parses `"64MiB"`, `"10 MB"`, `"4096"`.
    ///
    /// # Errors
    ///
    /// A message naming what is wrong.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let unit = unit.trim();
        let factor: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" | "k" => 1000,
            "kib" => 1 << 10,
            "mb" | "m" => 1000 * 1000,
            "mib" => 1 << 20,
            "gb" | "g" => 1000 * 1000 * 1000,
            "gib" => 1 << 30,
            "tb" => 1000 * 1000 * 1000 * 1000,
            "tib" => 1 << 40,
            _ => {
                return Err(format!(
                    "unknown size unit {unit:?} in {text:?} (use B, KB, KiB, MB, MiB, GB, GiB)"
                ));
            }
        };
        if number.is_empty() {
            return Err(format!("{text:?} is not a size (expected e.g. \"64MiB\")"));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a size (expected e.g. \"64MiB\")"))?;
        let bytes = value * factor as f64;
        if !bytes.is_finite() || bytes > u64::MAX as f64 {
            return Err(format!("{text:?} is too large"));
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if b >= size && b.is_multiple_of(size) {
                return write!(f, "{}{unit}", b / size);
            }
        }
        write!(f, "{b}B")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: bytes as an integer or a string such as \"64MiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration. In TOML: a string with a unit (`"250ms"`, `"5s"`, `"2m"`, `"1h"`, `"1m30s"`)
/// or an integer number of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// `n` milliseconds.
    pub const fn millis(n: u64) -> HumanDuration {
        HumanDuration(Duration::from_millis(n))
    }
    /// `n` seconds.
    pub const fn secs(n: u64) -> HumanDuration {
        HumanDuration(Duration::from_secs(n))
    }
    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }

    /// Parses `"250ms"`, `"1m30s"`, `"0"`.
    ///
    /// # Errors
    ///
    /// A message naming what is wrong.
    pub fn parse(text: &str) -> Result<HumanDuration, String> {
        let original = text;
        let mut text = text.trim();
        if text == "0" {
            return Ok(HumanDuration(Duration::ZERO));
        }
        if text.is_empty() {
            return Err("empty duration (expected e.g. \"5s\")".into());
        }
        let mut total = Duration::ZERO;
        while !text.is_empty() {
            let split = text
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| {
                    format!("{original:?} has a number without a unit (use ms, s, m, h)")
                })?;
            let (number, rest) = text.split_at(split);
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let (unit, rest) = rest.split_at(unit_len);
            let value: f64 = number
                .parse()
                .map_err(|_| format!("{original:?} is not a duration (expected e.g. \"5s\")"))?;
            let seconds = match unit.trim() {
                "ns" => value / 1e9,
                "us" | "µs" => value / 1e6,
                "ms" => value / 1e3,
                "s" => value,
                "m" => value * 60.0,
                "h" => value * 3600.0,
                "d" => value * 86400.0,
                other => {
                    return Err(format!(
                        "unknown duration unit {other:?} in {original:?} (use ms, s, m, h)"
                    ));
                }
            };
            total += Duration::try_from_secs_f64(seconds)
                .map_err(|_| format!("{original:?} is out of range"))?;
            text = rest.trim_start();
        }
        Ok(HumanDuration(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            let s = d.as_secs();
            if s != 0 && s.is_multiple_of(3600) {
                return write!(f, "{}h", s / 3600);
            }
            if s != 0 && s.is_multiple_of(60) {
                return write!(f, "{}m", s / 60);
            }
            return write!(f, "{s}s");
        }
        if d.subsec_nanos().is_multiple_of(1_000_000) {
            return write!(f, "{}ms", d.as_millis());
        }
        write!(f, "{}us", d.as_micros())
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HumanDuration, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"250ms\" or \"5s\", or milliseconds as an integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                Ok(HumanDuration::millis(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                u64::try_from(v)
                    .map(HumanDuration::millis)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                HumanDuration::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("64MiB").unwrap(), ByteSize::mib(64));
        assert_eq!(ByteSize::parse("10 MB").unwrap(), ByteSize(10_000_000));
        assert_eq!(ByteSize::parse("4096").unwrap(), ByteSize(4096));
        assert_eq!(ByteSize::parse("1.5KiB").unwrap(), ByteSize(1536));
        assert!(ByteSize::parse("12 parsecs").unwrap_err().contains("unit"));
        assert!(ByteSize::parse("MiB").is_err());
        assert_eq!(ByteSize::mib(64).to_string(), "64MiB");
    }

    #[test]
    fn durations() {
        assert_eq!(
            HumanDuration::parse("250ms").unwrap(),
            HumanDuration::millis(250)
        );
        assert_eq!(
            HumanDuration::parse("1m30s").unwrap(),
            HumanDuration::secs(90)
        );
        assert_eq!(HumanDuration::parse("0").unwrap(), HumanDuration::millis(0));
        assert!(HumanDuration::parse("5").unwrap_err().contains("unit"));
        assert!(
            HumanDuration::parse("5 fortnights")
                .unwrap_err()
                .contains("unit")
        );
        assert_eq!(HumanDuration::secs(120).to_string(), "2m");
        assert_eq!(HumanDuration::millis(1500).to_string(), "1500ms");
    }
}
