//! Body size limits, checked before memory is committed.
//!
//! A receiver holds two numbers: how many bytes it reads off the wire
//! ([`Limits::max_compressed_bytes`]) and how many bytes a body may inflate to
//! ([`Limits::max_body_bytes`]). [`Limits::check_len`] rejects a declared length
//! (`Content-Length`, a gRPC frame length) before anything is allocated,
//! [`BoundedBuf`] collects a streamed body without ever holding more than the limit,
//! and [`crate::compression::decompress`] stops inflating at the limit.
//!
//! Transports answer [`TooLarge`] (and
//! [`DecompressError::TooLarge`](crate::compression::DecompressError::TooLarge)) with
//! HTTP 413 Content Too Large or gRPC `RESOURCE_EXHAUSTED` without `RetryInfo`: sending
//! the same request again cannot succeed, the client has to send smaller batches.
//!
//! ```
//! use otlp_core::compression::{compress, decompress_bytes, Compression};
//! use otlp_core::Limits;
//!
//! let limits = Limits::default().with_max_body_bytes(8 << 20)?;
//!
//! // What a client sends: a Content-Encoding, a Content-Length and the body in chunks.
//! let sent = compress(Compression::Gzip, b"an OTLP protobuf request");
//! let encoding = Compression::from_content_encoding("gzip")?;
//!
//! limits.check_len(encoding, sent.len().try_into()?)?; // before reading the body
//! let mut wire = limits.body_buf(encoding);
//! for chunk in sent.chunks(7) {
//!     wire.push(chunk)?; // as chunks arrive: never more than the limit in memory
//! }
//! let body = decompress_bytes(encoding, wire.into_bytes(), limits.max_body_bytes())?;
//! assert_eq!(&body[..], b"an OTLP protobuf request");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use bytes::Bytes;

use crate::compression::Compression;

/// Default for [`Limits::max_body_bytes`]: 64 MiB.
///
/// The OTLP specification sets no number; this is the project's default (see DESIGN.md).
/// It is far above what OpenTelemetry SDKs and the Collector send with their default
/// batch sizes (a few MiB at most), so well-behaved clients never reach it, yet small
/// enough that one request cannot take a large share of a gateway's memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Default for [`Limits::max_compressed_bytes`]: 64 MiB, the same as the body limit.
///
/// Compressed telemetry is smaller than its decompressed form, so a wire limit equal to
/// the body limit never rejects a body that would have fit once decompressed; a lower
/// value only makes sense to refuse large uploads earlier.
pub const DEFAULT_MAX_COMPRESSED_BYTES: usize = 64 * 1024 * 1024;

/// The size limits a receiver enforces on one request body.
///
/// Both limits are greater than zero; the constructors check it, so a `Limits` value is
/// always usable.
///
/// ```
/// use otlp_core::Limits;
///
/// let limits = Limits::default();
/// assert_eq!(limits.max_body_bytes(), 64 << 20);
/// assert!(Limits::default().with_max_body_bytes(0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    max_body_bytes: usize,
    max_compressed_bytes: usize,
}

impl Default for Limits {
    /// 64 MiB for both limits ([`DEFAULT_MAX_BODY_BYTES`], [`DEFAULT_MAX_COMPRESSED_BYTES`]).
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_compressed_bytes: DEFAULT_MAX_COMPRESSED_BYTES,
        }
    }
}

impl Limits {
    /// Limits with the given body (decompressed) and wire (compressed) sizes in bytes.
    ///
    /// # Errors
    ///
    /// [`InvalidLimit`] if either is zero.
    pub fn new(max_body_bytes: usize, max_compressed_bytes: usize) -> Result<Self, InvalidLimit> {
        Self::default()
            .with_max_body_bytes(max_body_bytes)?
            .with_max_compressed_bytes(max_compressed_bytes)
    }

    /// Sets how large a body may be after decompression.
    ///
    /// # Errors
    ///
    /// [`InvalidLimit`] if `bytes` is zero.
    pub fn with_max_body_bytes(self, bytes: usize) -> Result<Self, InvalidLimit> {
        Ok(Self {
            max_body_bytes: non_zero("max_body_bytes", bytes)?,
            ..self
        })
    }

    /// Sets how many bytes of a body are read off the wire, compressed or not.
    ///
    /// # Errors
    ///
    /// [`InvalidLimit`] if `bytes` is zero.
    pub fn with_max_compressed_bytes(self, bytes: usize) -> Result<Self, InvalidLimit> {
        Ok(Self {
            max_compressed_bytes: non_zero("max_compressed_bytes", bytes)?,
            ..self
        })
    }

    /// The largest body after decompression, in bytes; pass it to
    /// [`crate::compression::decompress`].
    pub const fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The most bytes read off the wire for one body, in bytes.
    pub const fn max_compressed_bytes(&self) -> usize {
        self.max_compressed_bytes
    }

    /// How many bytes of a body sent with `compression` may be read off the wire.
    ///
    /// An uncompressed body is already the decompressed body, so it is held to the
    /// smaller of the two limits; a compressed one to [`Self::max_compressed_bytes`].
    pub fn wire_limit(&self, compression: Compression) -> usize {
        self.wire(compression).0
    }

    /// Checks a length the peer declared (`Content-Length`, a gRPC message length)
    /// against [`Self::wire_limit`], so an oversized body is refused before a byte of it
    /// is buffered.
    ///
    /// # Errors
    ///
    /// [`TooLarge`] if `declared` is beyond the limit.
    pub fn check_len(&self, compression: Compression, declared: u64) -> Result<(), TooLarge> {
        let (limit, what) = self.wire(compression);
        // usize is at most 64 bits on every supported target, so this never saturates there.
        if declared > u64::try_from(limit).unwrap_or(u64::MAX) {
            return Err(TooLarge { limit, what });
        }
        Ok(())
    }

    /// An empty [`BoundedBuf`] for collecting a body sent with `compression`, bounded by
    /// [`Self::wire_limit`].
    pub fn body_buf(&self, compression: Compression) -> BoundedBuf {
        let (limit, what) = self.wire(compression);
        BoundedBuf::new(limit, what)
    }

    fn wire(&self, compression: Compression) -> (usize, LimitKind) {
        match compression {
            Compression::None if self.max_body_bytes <= self.max_compressed_bytes => {
                (self.max_body_bytes, LimitKind::Body)
            }
            _ => (self.max_compressed_bytes, LimitKind::Wire),
        }
    }
}

fn non_zero(name: &'static str, bytes: usize) -> Result<usize, InvalidLimit> {
    if bytes == 0 {
        return Err(InvalidLimit { name });
    }
    Ok(bytes)
}

/// A limit was set to zero, which would refuse every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("limit `{name}` must be greater than zero; remove it to keep the 64 MiB default")]
pub struct InvalidLimit {
    /// The limit's name (`max_body_bytes` or `max_compressed_bytes`).
    pub name: &'static str,
}

/// Which size a [`TooLarge`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The body as it arrives, before decompression ([`Limits::max_compressed_bytes`]).
    Wire,
    /// The body after decompression ([`Limits::max_body_bytes`]).
    Body,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Wire => "request body as sent",
            Self::Body => "request body",
        })
    }
}

/// A body is larger than a limit allows. Answer HTTP 413 or gRPC `RESOURCE_EXHAUSTED`
/// (without `RetryInfo`); the client has to send smaller batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} exceeds the {} limit; send smaller batches", ByteSize(*.limit))]
pub struct TooLarge {
    /// The limit in bytes.
    pub limit: usize,
    /// Which size was over the limit.
    pub what: LimitKind,
}

/// A growable buffer that refuses to grow beyond a limit, for collecting a streamed
/// body: whatever the peer sends, it never holds more than `limit` bytes.
///
/// ```
/// use otlp_core::limits::{BoundedBuf, LimitKind};
///
/// let mut buf = BoundedBuf::new(4, LimitKind::Wire);
/// buf.push(b"abc")?;
/// assert!(buf.push(b"de").is_err()); // 5 bytes > 4: refused, nothing appended
/// buf.push(b"d")?;
/// assert_eq!(&buf.into_bytes()[..], b"abcd");
/// # Ok::<(), otlp_core::limits::TooLarge>(())
/// ```
#[derive(Debug)]
pub struct BoundedBuf {
    buf: Vec<u8>,
    limit: usize,
    what: LimitKind,
}

impl BoundedBuf {
    /// An empty buffer that holds at most `limit` bytes; `what` names the size in the error.
    pub fn new(limit: usize, what: LimitKind) -> Self {
        Self {
            buf: Vec::new(),
            limit,
            what,
        }
    }

    /// Appends `chunk`, or refuses it whole if the total would exceed the limit.
    ///
    /// Capacity grows by doubling but never past the limit, so the buffer's allocation is
    /// at most `limit` bytes.
    ///
    /// # Errors
    ///
    /// [`TooLarge`] if the buffer would hold more than the limit; stop reading the body.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), TooLarge> {
        let len = self.buf.len();
        if chunk.len() > self.limit - len {
            return Err(TooLarge {
                limit: self.limit,
                what: self.what,
            });
        }
        let needed = len + chunk.len();
        if needed > self.buf.capacity() {
            // Double for amortized O(1) appends, but cap at the limit: `reserve` alone
            // could allocate up to twice the limit.
            let target = self
                .buf
                .capacity()
                .saturating_mul(2)
                .max(needed)
                .max(MIN_CAPACITY)
                .min(self.limit);
            self.buf.reserve_exact(target - len);
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    /// The number of bytes collected so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been collected yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The limit this buffer enforces, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The collected bytes, without copying.
    pub fn into_bytes(self) -> Bytes {
        Bytes::from(self.buf)
    }
}

/// The first allocation of a [`BoundedBuf`]: one typical network read.
const MIN_CAPACITY: usize = 8 * 1024;

/// Formats a byte count the way limits are usually written: `64 MiB`, `512 KiB`, `1000 bytes`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByteSize(pub(crate) usize);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KIB: usize = 1024;
        const MIB: usize = 1024 * KIB;
        const GIB: usize = 1024 * MIB;
        match self.0 {
            0 => f.write_str("0 bytes"),
            n if n % GIB == 0 => write!(f, "{} GiB", n / GIB),
            n if n % MIB == 0 => write!(f, "{} MiB", n / MIB),
            n if n % KIB == 0 => write!(f, "{} KiB", n / KIB),
            1 => f.write_str("1 byte"),
            n => write!(f, "{n} bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_64_mib() {
        let limits = Limits::default();
        assert_eq!(limits.max_body_bytes(), 64 * 1024 * 1024);
        assert_eq!(limits.max_compressed_bytes(), 64 * 1024 * 1024);
    }

    #[test]
    fn zero_is_rejected_and_named() {
        let err = Limits::new(0, 1).unwrap_err();
        assert_eq!(err.name, "max_body_bytes");
        let err = Limits::new(1, 0).unwrap_err();
        assert_eq!(err.name, "max_compressed_bytes");
        assert!(err.to_string().contains("greater than zero"));
    }

    #[test]
    fn check_len_accepts_the_limit_and_refuses_one_more() {
        let limits = Limits::new(100, 50).unwrap();
        assert_eq!(limits.check_len(Compression::Gzip, 50), Ok(()));
        assert_eq!(
            limits.check_len(Compression::Gzip, 51),
            Err(TooLarge {
                limit: 50,
                what: LimitKind::Wire
            })
        );
        assert!(limits.check_len(Compression::Zstd, u64::MAX).is_err());
    }

    #[test]
    fn uncompressed_bodies_take_the_smaller_limit() {
        let limits = Limits::new(10, 50).unwrap();
        assert_eq!(limits.wire_limit(Compression::None), 10);
        assert_eq!(limits.wire_limit(Compression::Deflate), 50);
        assert_eq!(
            limits.check_len(Compression::None, 11).unwrap_err().what,
            LimitKind::Body
        );

        let limits = Limits::new(50, 10).unwrap();
        assert_eq!(limits.wire_limit(Compression::None), 10);
        assert_eq!(
            limits.check_len(Compression::None, 11).unwrap_err().what,
            LimitKind::Wire
        );
    }

    #[test]
    fn bounded_buf_never_allocates_past_the_limit() {
        let limit = 100_000;
        let mut buf = BoundedBuf::new(limit, LimitKind::Wire);
        let chunk = [7u8; 999];
        while buf.push(&chunk).is_ok() {
            assert!(buf.buf.capacity() <= limit);
        }
        assert_eq!(buf.len(), limit / 999 * 999);
        // The rest still fits exactly.
        let rest = vec![1u8; limit - buf.len()];
        buf.push(&rest).unwrap();
        assert_eq!(buf.len(), limit);
        assert!(buf.buf.capacity() <= limit);
        let err = buf.push(b"x").unwrap_err();
        assert_eq!(err.limit, limit);
        assert!(buf.push(b"").is_ok());
        assert_eq!(buf.into_bytes().len(), limit);
    }

    #[test]
    fn too_large_says_what_to_do() {
        let err = TooLarge {
            limit: DEFAULT_MAX_BODY_BYTES,
            what: LimitKind::Body,
        };
        assert_eq!(
            err.to_string(),
            "request body exceeds the 64 MiB limit; send smaller batches"
        );
    }

    #[test]
    fn byte_sizes_read_naturally() {
        assert_eq!(ByteSize(1 << 30).to_string(), "1 GiB");
        assert_eq!(ByteSize(3 << 20).to_string(), "3 MiB");
        assert_eq!(ByteSize(1536).to_string(), "1536 bytes");
        assert_eq!(ByteSize(2048).to_string(), "2 KiB");
        assert_eq!(ByteSize(1).to_string(), "1 byte");
        assert_eq!(ByteSize(0).to_string(), "0 bytes");
        assert_eq!(ByteSize(1000).to_string(), "1000 bytes");
    }
}
