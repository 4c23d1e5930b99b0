//! On-disk layout of segment files and the ack file.
//!
//! Segment file `<first seq, 20 digits>.seg`:
//!
//! ```text
//! header   "OTLPQSEG" | u32 version | u32 reserved                (16 bytes)
//! record   u32 len | u32 crc32 | u64 seq | u8 signal | u64 items |
//!          u16 tenant_len (0xFFFF = no tenant) | tenant | body
//! ```
//!
//! All integers little-endian; `len` counts the bytes after the crc, the crc (CRC-32,
//! `crc32fast`) covers those same bytes. The body is the payload's bytes exactly.
//!
//! Ack file `ack`: `"OTLPQACK" | u32 version | u64 watermark | u32 n | n x (u64 start,
//! u64 end) | u32 crc32 of everything before`. Every seq below the watermark and every
//! seq in a `[start, end)` range is acknowledged.

use std::sync::Arc;

use bytes::Bytes;
use otlp_core::Signal;

pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"OTLPQSEG";
pub(crate) const ACK_MAGIC: &[u8; 8] = b"OTLPQACK";
pub(crate) const VERSION: u32 = 1;
pub(crate) const SEGMENT_HEADER_LEN: usize = 16;
/// `len` and `crc`.
pub(crate) const RECORD_PREFIX: usize = 8;
/// seq, signal, items, tenant_len.
pub(crate) const RECORD_FIXED: usize = 8 + 1 + 8 + 2;
const NO_TENANT: u16 = u16::MAX;
/// Longest tenant name a record can hold.
pub(crate) const MAX_TENANT_LEN: usize = (u16::MAX - 1) as usize;
/// Most acknowledged ranges above the watermark the ack file keeps; acks past it are
/// replayed after a restart (at least once).
pub(crate) const MAX_ACK_RANGES: usize = 65_536;

pub(crate) fn segment_header() -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h
}

pub(crate) fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// The first seq of a segment from its file name, `None` for other files.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Bytes one record of a payload takes on disk.
pub(crate) fn record_len(tenant: Option<&str>, body_len: usize) -> u64 {
    (RECORD_PREFIX + RECORD_FIXED + tenant.map_or(0, str::len) + body_len) as u64
}

fn signal_code(signal: Signal) -> u8 {
    signal.index() as u8
}

fn signal_from_code(code: u8) -> Option<Signal> {
    Signal::ALL.get(usize::from(code)).copied()
}

/// Append one record to `out`. `body_crc` is a hasher that has seen exactly `body`
/// (computed by the pusher, off the writer thread).
pub(crate) fn encode_record(
    out: &mut Vec<u8>,
    seq: u64,
    signal: Signal,
    items: u64,
    tenant: Option<&str>,
    body: &[u8],
    body_crc: &crc32fast::Hasher,
) {
    let tenant_bytes = tenant.map_or(&[][..], str::as_bytes);
    let len = (RECORD_FIXED + tenant_bytes.len() + body.len()) as u32;
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(signal_code(signal));
    out.extend_from_slice(&items.to_le_bytes());
    let tenant_len = if tenant.is_some() {
        tenant_bytes.len() as u16
    } else {
        NO_TENANT
    };
    out.extend_from_slice(&tenant_len.to_le_bytes());
    out.extend_from_slice(tenant_bytes);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out[start + RECORD_PREFIX..]);
    crc.combine(body_crc);
    out[start + 4..start + 8].copy_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(body);
}

/// A record read back from a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordView {
    pub(crate) seq: u64,
    pub(crate) signal: Signal,
    pub(crate) items: u64,
    pub(crate) tenant: Option<Arc<str>>,
    /// Offset of the body from the record's start.
    pub(crate) body_offset: usize,
    pub(crate) body_len: usize,
    /// Bytes of the whole record.
    pub(crate) record_len: usize,
}

/// What is at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole, valid record.
    Record(RecordView),
    /// Nothing left.
    End,
    /// A partial or damaged record; the reason.
    Bad(&'static str),
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Parse the record at the start of `buf`, checking its checksum.
pub(crate) fn parse_record(buf: &[u8]) -> Parsed {
    if buf.is_empty() {
        return Parsed::End;
    }
    if buf.len() < RECORD_PREFIX + RECORD_FIXED {
        return Parsed::Bad("partial record header");
    }
    let len = u32_at(buf, 0) as usize;
    if len < RECORD_FIXED {
        return Parsed::Bad("record length too small");
    }
    let total = RECORD_PREFIX + len;
    if buf.len() < total {
        return Parsed::Bad("partial record");
    }
    let rest = &buf[RECORD_PREFIX..total];
    if crc32fast::hash(rest) != u32_at(buf, 4) {
        return Parsed::Bad("checksum mismatch");
    }
    let seq = u64_at(rest, 0);
    let Some(signal) = signal_from_code(rest[8]) else {
        return Parsed::Bad("unknown signal");
    };
    let items = u64_at(rest, 9);
    let tenant_len = u16_at(rest, 17);
    let (tenant, tenant_bytes) = if tenant_len == NO_TENANT {
        (None, 0)
    } else {
        let t = usize::from(tenant_len);
        if RECORD_FIXED + t > len {
            return Parsed::Bad("tenant longer than record");
        }
        match std::str::from_utf8(&rest[RECORD_FIXED..RECORD_FIXED + t]) {
            Ok(s) => (Some(Arc::from(s)), t),
            Err(_) => return Parsed::Bad("tenant is not UTF-8"),
        }
    };
    let body_offset = RECORD_PREFIX + RECORD_FIXED + tenant_bytes;
    Parsed::Record(RecordView {
        seq,
        signal,
        items,
        tenant,
        body_offset,
        body_len: total - body_offset,
        record_len: total,
    })
}

/// The acknowledged state that survives a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AckState {
    /// Every seq below is acknowledged.
    pub(crate) watermark: u64,
    /// Acknowledged `[start, end)` ranges above the watermark, ascending.
    pub(crate) ranges: Vec<(u64, u64)>,
}

impl AckState {
    pub(crate) fn is_acked(&self, seq: u64) -> bool {
        if seq < self.watermark {
            return true;
        }
        let i = self.ranges.partition_point(|&(start, _)| start <= seq);
        i > 0 && seq < self.ranges[i - 1].1
    }

    /// One past the highest seq this state mentions.
    pub(crate) fn end(&self) -> u64 {
        self.ranges
            .last()
            .map_or(self.watermark, |r| r.1)
            .max(self.watermark)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + self.ranges.len() * 16);
        out.extend_from_slice(ACK_MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.watermark.to_le_bytes());
        out.extend_from_slice(&(self.ranges.len() as u32).to_le_bytes());
        for (s, e) in &self.ranges {
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&e.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(buf: &[u8]) -> Option<AckState> {
        if buf.len() < 28 || &buf[..8] != ACK_MAGIC || u32_at(buf, 8) != VERSION {
            return None;
        }
        let body = &buf[..buf.len() - 4];
        if crc32fast::hash(body) != u32_at(buf, buf.len() - 4) {
            return None;
        }
        let watermark = u64_at(buf, 12);
        let n = u32_at(buf, 20) as usize;
        if body.len() != 24 + n.checked_mul(16)? {
            return None;
        }
        let ranges = (0..n)
            .map(|i| (u64_at(buf, 24 + i * 16), u64_at(buf, 32 + i * 16)))
            .collect();
        Some(AckState { watermark, ranges })
    }
}

/// A body slice of a record buffer read back from disk.
pub(crate) fn body_of(record: Bytes, view: &RecordView) -> Bytes {
    record.slice(view.body_offset..view.body_offset + view.body_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, tenant: Option<&str>, body: &[u8]) -> Vec<u8> {
        let mut h = crc32fast::Hasher::new();
        h.update(body);
        let mut out = Vec::new();
        encode_record(&mut out, seq, Signal::Metrics, 7, tenant, body, &h);
        out
    }

    #[test]
    fn record_round_trips_with_and_without_tenant() {
        for tenant in [None, Some(""), Some("acme")] {
            let buf = record(42, tenant, b"hello");
            assert_eq!(buf.len() as u64, record_len(tenant, 5));
            let Parsed::Record(v) = parse_record(&buf) else {
                panic!("not a record");
            };
            assert_eq!((v.seq, v.signal, v.items), (42, Signal::Metrics, 7));
            assert_eq!(v.tenant.as_deref(), tenant);
            assert_eq!(&buf[v.body_offset..v.body_offset + v.body_len], b"hello");
        }
    }

    #[test]
    fn damaged_records_are_bad_not_panics() {
        let buf = record(1, Some("t"), b"body bytes");
        for cut in 1..buf.len() {
            assert!(
                matches!(parse_record(&buf[..cut]), Parsed::Bad(_)),
                "cut {cut}"
            );
        }
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x10;
            assert!(matches!(parse_record(&b), Parsed::Bad(_)), "flip {i}");
        }
        assert_eq!(parse_record(&[]), Parsed::End);
    }

    #[test]
    fn ack_state_round_trips_and_answers() {
        let s = AckState {
            watermark: 10,
            ranges: vec![(12, 15), (20, 21)],
        };
        let back = AckState::decode(&s.encode()).expect("decodes");
        assert_eq!(back, s);
        let acked: Vec<u64> = (0..25).filter(|&q| s.is_acked(q)).collect();
        assert_eq!(acked, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 20]);
        assert_eq!(s.end(), 21);
        let mut bad = s.encode();
        bad[13] ^= 1;
        assert_eq!(AckState::decode(&bad), None);
        assert_eq!(AckState::decode(b"short"), None);
    }

    #[test]
    fn segment_names() {
        assert_eq!(parse_segment_name(&segment_file_name(17)), Some(17));
        assert_eq!(parse_segment_name("17.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000001x.seg"), None);
    }
}
