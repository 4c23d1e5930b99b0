//! Protobuf framing walks over encoded OTLP requests: item counts and splits without a
//! full decode.
//!
//! A pipeline keeps its unit of work encoded ([`crate::Payload`]); most stages only need
//! to know how many items a body holds, or to cut it into smaller bodies. Both follow
//! the message structure down to the items (spans, metric data points, log records) and
//! treat each item as an opaque byte range, which is several times cheaper than decoding
//! it and allocates nothing when counting.
//!
//! ```
//! use bytes::Bytes;
//! use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
//! use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
//! use otlp_core::{OtlpRequest, Signal, wire};
//! use prost::Message;
//!
//! let request = ExportTraceServiceRequest {
//!     resource_spans: vec![ResourceSpans {
//!         scope_spans: vec![ScopeSpans { spans: vec![Span::default(); 10], ..Default::default() }],
//!         ..Default::default()
//!     }],
//! };
//! let body = Bytes::from(request.encode_to_vec());
//! assert_eq!(wire::count_items(Signal::Traces, &body)?, 10);
//!
//! // At most 4 spans per piece: three resource entries of 4, 4 and 2 spans.
//! let pieces = wire::split_to_fit(Signal::Traces, &body, 4, usize::MAX)?;
//! let items: Vec<u64> = pieces.iter().map(|p| p.items()).collect();
//! assert_eq!(items, [4, 4, 2]);
//! let back = ExportTraceServiceRequest::decode(pieces[2].encoded().clone())?;
//! assert_eq!(back.item_count(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What is validated
//!
//! The walk checks the framing of every message it enters: the request, each resource
//! entry, each scope entry and, for metrics, each metric and its data message. Keys must
//! be valid, lengths must stay inside their enclosing message, known fields must have
//! their declared wire type, and unknown fields of any wire type (groups included) are
//! skipped as prost skips them. The inside of each item (a span, a data point, a log
//! record) and of the resource and scope descriptions is not read: a body that passes
//! may still fail a full decode, for example on invalid UTF-8 in a span name. For every
//! body that prost decodes, [`count_items`] returns exactly what
//! [`OtlpRequest::item_count`](crate::OtlpRequest::item_count) returns for the decoded
//! message.
//!
//! ## Merge semantics
//!
//! Protobuf merges repeated occurrences of a singular message field, and prost follows
//! it. For the one such field on the counted path, `Metric.data` (a oneof), this module
//! matches prost exactly: a data member that appears twice in one metric (say `gauge`
//! twice) is one gauge holding the data points of both occurrences, and a different
//! member appearing later (`gauge`, then `sum`) replaces what came before. Counting and
//! splitting both use that effective member; a split drops the replaced occurrences, as
//! a decode would.
//!
//! ## Splitting
//!
//! [`resource_entries`] hands out the top-level resource entries as zero-copy slices.
//! [`split_resource`] cuts one entry on scope boundaries, then between items (for
//! metrics: between metrics, then between the data points of one metric), repeating the
//! resource's, scope's and metric's own fields in every piece; [`split_to_fit`] does both
//! for a whole body. Only a piece holding at most one item can exceed the byte limit.
//! Because those fields are repeated, a split may grow the data; it refuses with
//! [`SplitGrowth`] rather than let a hostile body (huge resource, millions of empty
//! spans) grow past twice its size (or its size plus [`SPLIT_GROWTH_FLOOR`]).

use std::iter::FusedIterator;

use bytes::{BufMut, Bytes, BytesMut};
use prost::DecodeError as ProtoError;
use prost::encoding::{
    DecodeContext, WireType, check_wire_type, decode_key, decode_varint, encode_key, encode_varint,
    encoded_len_varint, key_len, skip_field,
};

use crate::codec::DecodeError;
use crate::signal::Signal;

/// Field number of the resource list in every `Export*ServiceRequest`
/// (`resource_spans`, `resource_metrics`, `resource_logs`).
const REQUEST_RESOURCES: u32 = 1;
/// Field number of the scope list in `ResourceSpans` / `ResourceMetrics` / `ResourceLogs`.
const RESOURCE_SCOPES: u32 = 2;
/// Field number of the item list in `ScopeSpans` / `ScopeMetrics` / `ScopeLogs`
/// (`spans`, `metrics`, `log_records`).
const SCOPE_ITEMS: u32 = 2;
/// Field number of `data_points` in `Gauge`, `Sum`, `Histogram`, `ExponentialHistogram`
/// and `Summary`.
const DATA_POINTS: u32 = 1;

/// Count the items of an encoded `Export*ServiceRequest` of `signal` without decoding it:
/// spans for traces, data points for metrics, log records for logs.
///
/// # Errors
///
/// [`DecodeError::Protobuf`] when the framing of the request, a resource entry, a scope
/// entry or (for metrics) a metric is malformed; see the [module docs](self) for what is
/// and is not checked. Answer such a body with 400 / `INVALID_ARGUMENT`.
pub fn count_items(signal: Signal, bytes: &[u8]) -> Result<u64, DecodeError> {
    Ok(count(signal, Level::Request, bytes)?)
}

/// One top-level resource entry (`ResourceSpans`, `ResourceMetrics` or `ResourceLogs`)
/// of an encoded request, as its complete encoded field: key, length and message.
///
/// The encoded field is on its own a valid encoding of the request message holding just
/// this resource, so entries can be concatenated into a request body as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceEntry {
    encoded: Bytes,
    /// Offset of the message inside `encoded` (after key and length).
    body_start: usize,
    items: u64,
}

impl ResourceEntry {
    /// The encoded field (key, length, message): a valid request body by itself.
    pub fn encoded(&self) -> &Bytes {
        &self.encoded
    }

    /// The encoded resource message without the field key and length.
    pub fn message(&self) -> Bytes {
        self.encoded.slice(self.body_start..)
    }

    /// Number of items (spans, data points, log records) in this entry.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Encoded size in bytes, key and length included: what the entry adds to a request.
    pub fn len(&self) -> usize {
        self.encoded.len()
    }

    /// Always `false`: an entry holds at least its key and length. Provided for symmetry
    /// with [`ResourceEntry::len`].
    pub fn is_empty(&self) -> bool {
        self.encoded.is_empty()
    }

    /// The encoded field.
    pub fn into_encoded(self) -> Bytes {
        self.encoded
    }
}

/// Iterate the resource entries of an encoded request as zero-copy slices of `body`.
///
/// Top-level fields other than the resource list (OTLP defines none; a newer peer might
/// send some) are skipped, as a prost decode ignores them. After the first error the
/// iterator ends.
///
/// ```
/// use bytes::Bytes;
/// use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
/// use otlp_core::proto::logs::v1::ResourceLogs;
/// use otlp_core::{Signal, wire};
/// use prost::Message;
///
/// let request = ExportLogsServiceRequest { resource_logs: vec![ResourceLogs::default(); 3] };
/// let body = Bytes::from(request.encode_to_vec());
/// let entries: Vec<_> = wire::resource_entries(Signal::Logs, &body).collect::<Result<_, _>>()?;
/// assert_eq!(entries.len(), 3);
/// # Ok::<(), otlp_core::codec::DecodeError>(())
/// ```
pub fn resource_entries(signal: Signal, body: &Bytes) -> ResourceEntries {
    ResourceEntries {
        signal,
        body: body.clone(),
        pos: 0,
        failed: false,
    }
}

/// The iterator of [`resource_entries`].
#[derive(Debug, Clone)]
pub struct ResourceEntries {
    signal: Signal,
    body: Bytes,
    pos: usize,
    failed: bool,
}

impl Iterator for ResourceEntries {
    type Item = Result<ResourceEntry, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && self.pos < self.body.len() {
            let field = match read_field(&self.body, self.pos, Level::Request) {
                Ok(field) => field,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e.into()));
                }
            };
            self.pos = field.end;
            if field.tag != REQUEST_RESOURCES {
                continue;
            }
            let message = &self.body[field.value.clone()];
            return Some(match count(self.signal, Level::Resource, message) {
                Ok(items) => Ok(ResourceEntry {
                    encoded: self.body.slice(field.start..field.end),
                    body_start: field.value.start - field.start,
                    items,
                }),
                Err(e) => {
                    self.failed = true;
                    Err(e.into())
                }
            });
        }
        None
    }
}

impl FusedIterator for ResourceEntries {}

/// How much a split may grow a body: by its own size plus this many bytes.
///
/// Every piece repeats the fields of its resource, scope and metric. With ordinary
/// headers (a few KiB) against a batch limit of MiBs that costs little, but a request
/// whose resource fields nearly fill a batch, followed by many tiny items, would be
/// multiplied by its item count: a 64 MiB request could become gigabytes. The bound
/// keeps such a request from exhausting memory; the floor leaves room for small limits.
pub const SPLIT_GROWTH_FLOOR: usize = 1 << 20;

/// Why a body could not be split.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// The framing is malformed: bad data, answer 400 / `INVALID_ARGUMENT`.
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    /// The pieces would be too much larger than the input.
    #[error(transparent)]
    Growth(#[from] SplitGrowth),
}

/// Splitting would grow a body beyond its own size plus the larger of that size and
/// [`SPLIT_GROWTH_FLOOR`], because resource, scope or metric fields must be repeated in
/// every piece and they take most of `max_bytes`.
///
/// Reject the request as bad data (400 / `INVALID_ARGUMENT`: its descriptive fields are
/// out of proportion), or raise the byte limit so more items fit beside those fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "splitting {input} bytes into pieces of at most {max_bytes} bytes would produce more than \
     {allowed} bytes, because resource, scope or metric fields are repeated in every piece: \
     reject the request, or raise the byte limit so more items fit beside those fields"
)]
pub struct SplitGrowth {
    /// Size of what was being split.
    pub input: usize,
    /// The byte limit per piece.
    pub max_bytes: usize,
    /// The most the pieces were allowed to add up to.
    pub allowed: usize,
}

/// The most the pieces of a `len`-byte input may add up to.
fn growth_allowance(len: usize) -> usize {
    len.saturating_add(len.max(SPLIT_GROWTH_FLOOR))
}

/// Split one resource entry into entries of at most `max_items` items and `max_bytes`
/// encoded bytes each (key and length included).
///
/// The entry is cut on scope boundaries; a scope that is still too large is cut between
/// its items (spans, log records; for metrics between metrics, and a metric that is
/// still too large between its data points). Every piece repeats the resource's own
/// fields (`resource`, `schema_url`, unknown fields), and the scope's and metric's own
/// fields, so each piece is a complete, valid resource entry. Items keep their order.
///
/// A piece holding a single item (or a resource, scope or metric with no items whose own
/// fields are too large) can exceed `max_bytes`: it is returned alone rather than dropped.
/// An entry that already fits is returned as it is.
///
/// # Errors
///
/// [`SplitError::Malformed`] when the entry's framing is malformed, and
/// [`SplitError::Growth`] when the pieces would exceed the entry's size plus the larger
/// of that size and [`SPLIT_GROWTH_FLOOR`] (see [`SplitGrowth`]).
pub fn split_resource(
    signal: Signal,
    entry: &ResourceEntry,
    max_items: u64,
    max_bytes: usize,
) -> Result<Vec<ResourceEntry>, SplitError> {
    split_resource_within(
        signal,
        entry,
        max_items,
        max_bytes,
        growth_allowance(entry.len()),
    )
    .map_err(|e| e.with_input(entry.len()))
}

/// [`split_resource`] with the pieces allowed `allowed` bytes in total.
fn split_resource_within(
    signal: Signal,
    entry: &ResourceEntry,
    max_items: u64,
    max_bytes: usize,
    allowed: usize,
) -> Result<Vec<ResourceEntry>, SplitError> {
    let max_items = max_items.max(1);
    if entry.items <= 1 || (entry.items <= max_items && entry.len() <= max_bytes) {
        return Ok(vec![entry.clone()]);
    }
    let message = entry.message();
    let container =
        parse_container(signal, Level::Resource, &message).map_err(DecodeError::from)?;
    let head_max = key_len(REQUEST_RESOURCES) + encoded_len_varint(max_bytes as u64);
    let budget = max_bytes.saturating_sub(head_max);
    let limits = Limits {
        max_items,
        max_bytes: budget,
        allowed,
        requested_max_bytes: max_bytes,
        requested_allowed: allowed,
    };
    let pieces = split_container(signal, &container, &limits)?;
    let total: usize = pieces
        .iter()
        .map(|p| {
            key_len(REQUEST_RESOURCES) + encoded_len_varint(p.body.len() as u64) + p.body.len()
        })
        .sum();
    if total > allowed {
        return Err(limits.growth().into());
    }
    Ok(pieces
        .into_iter()
        .map(|piece| {
            let head = key_len(REQUEST_RESOURCES) + encoded_len_varint(piece.body.len() as u64);
            let mut out = BytesMut::with_capacity(head + piece.body.len());
            encode_key(REQUEST_RESOURCES, WireType::LengthDelimited, &mut out);
            encode_varint(piece.body.len() as u64, &mut out);
            out.put_slice(&piece.body);
            ResourceEntry {
                encoded: out.freeze(),
                body_start: head,
                items: piece.items,
            }
        })
        .collect())
}

/// All resource entries of `body`, with those larger than `max_items` or `max_bytes`
/// split by [`split_resource`]: entries that each fit (or hold a single item), in order.
///
/// Concatenating the returned entries gives a request with the same items in the same
/// order. Top-level fields other than the resource list are dropped (see
/// [`resource_entries`]).
///
/// # Errors
///
/// [`SplitError::Malformed`] when the framing is malformed, and [`SplitError::Growth`]
/// when the entries would add up to more than the body's size plus the larger of that
/// size and [`SPLIT_GROWTH_FLOOR`].
pub fn split_to_fit(
    signal: Signal,
    body: &Bytes,
    max_items: u64,
    max_bytes: usize,
) -> Result<Vec<ResourceEntry>, SplitError> {
    let mut allowed = growth_allowance(body.len());
    let mut out = Vec::new();
    for entry in resource_entries(signal, body) {
        let entry = entry?;
        if entry.items <= max_items && entry.len() <= max_bytes {
            allowed = allowed.saturating_sub(entry.len());
            out.push(entry);
        } else {
            let pieces = split_resource_within(signal, &entry, max_items, max_bytes, allowed)
                .map_err(|e| e.with_input(body.len()))?;
            let produced: usize = pieces.iter().map(ResourceEntry::len).sum();
            allowed = allowed.saturating_sub(produced);
            out.extend(pieces);
        }
    }
    Ok(out)
}

impl SplitError {
    /// Report growth against the size of the caller's input.
    fn with_input(self, input: usize) -> SplitError {
        match self {
            SplitError::Growth(growth) => SplitError::Growth(SplitGrowth {
                input,
                allowed: growth_allowance(input),
                ..growth
            }),
            other => other,
        }
    }
}

/// The limits a split works to.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_items: u64,
    /// Bytes available to one piece at this level.
    max_bytes: usize,
    /// The most all pieces at this level may add up to.
    allowed: usize,
    /// The caller's byte limit, for error messages.
    requested_max_bytes: usize,
    /// The caller's allowance (`allowed` shrinks on the way down), for error messages.
    requested_allowed: usize,
}

impl Limits {
    fn growth(&self) -> SplitGrowth {
        SplitGrowth {
            input: 0,
            max_bytes: self.requested_max_bytes,
            allowed: self.requested_allowed,
        }
    }
}

/// The messages on the path from a request down to its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// `Export*ServiceRequest`.
    Request,
    /// `ResourceSpans` / `ResourceMetrics` / `ResourceLogs`.
    Resource,
    /// `ScopeSpans` / `ScopeMetrics` / `ScopeLogs`.
    Scope,
    /// `Metric`.
    Metric,
    /// One of `Gauge`, `Sum`, `Histogram`, `ExponentialHistogram`, `Summary`.
    Data(DataKind),
}

/// The members of the `Metric.data` oneof, by field number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    Gauge = 5,
    Sum = 7,
    Histogram = 9,
    ExponentialHistogram = 10,
    Summary = 11,
}

impl DataKind {
    fn from_tag(tag: u32) -> Option<DataKind> {
        match tag {
            5 => Some(DataKind::Gauge),
            7 => Some(DataKind::Sum),
            9 => Some(DataKind::Histogram),
            10 => Some(DataKind::ExponentialHistogram),
            11 => Some(DataKind::Summary),
            _ => None,
        }
    }

    fn tag(self) -> u32 {
        self as u32
    }

    fn message_name(self) -> &'static str {
        match self {
            DataKind::Gauge => "Gauge",
            DataKind::Sum => "Sum",
            DataKind::Histogram => "Histogram",
            DataKind::ExponentialHistogram => "ExponentialHistogram",
            DataKind::Summary => "Summary",
        }
    }

    fn field_name(self) -> &'static str {
        match self {
            DataKind::Gauge => "gauge",
            DataKind::Sum => "sum",
            DataKind::Histogram => "histogram",
            DataKind::ExponentialHistogram => "exponential_histogram",
            DataKind::Summary => "summary",
        }
    }
}

impl Level {
    /// The wire type the generated message declares for field `tag`, if the field is
    /// known. Checking it rejects what prost would reject on these messages.
    fn declared_wire_type(self, tag: u32) -> Option<WireType> {
        use WireType::{LengthDelimited as Len, Varint};
        match (self, tag) {
            (Level::Request, 1) => Some(Len),
            // resource / scope, the list, schema_url.
            (Level::Resource | Level::Scope, 1..=3) => Some(Len),
            // name, description, unit, the five data members, metadata.
            (Level::Metric, 1..=3 | 5 | 7 | 9..=12) => Some(Len),
            (Level::Data(_), DATA_POINTS) => Some(Len),
            // aggregation_temporality (enum), is_monotonic (bool).
            (Level::Data(DataKind::Sum), 2 | 3) => Some(Varint),
            (Level::Data(DataKind::Histogram | DataKind::ExponentialHistogram), 2) => Some(Varint),
            _ => None,
        }
    }

    /// Message and field names for error locations, as prost reports them.
    fn names(self, signal: Signal, tag: u32) -> (&'static str, &'static str) {
        let (request, resources, resource, scopes, scope, items) = match signal {
            Signal::Traces => (
                "ExportTraceServiceRequest",
                "resource_spans",
                "ResourceSpans",
                "scope_spans",
                "ScopeSpans",
                "spans",
            ),
            Signal::Metrics => (
                "ExportMetricsServiceRequest",
                "resource_metrics",
                "ResourceMetrics",
                "scope_metrics",
                "ScopeMetrics",
                "metrics",
            ),
            Signal::Logs => (
                "ExportLogsServiceRequest",
                "resource_logs",
                "ResourceLogs",
                "scope_logs",
                "ScopeLogs",
                "log_records",
            ),
        };
        match self {
            Level::Request => (request, if tag == 1 { resources } else { "?" }),
            Level::Resource => (resource, if tag == 2 { scopes } else { "?" }),
            Level::Scope => (scope, if tag == 2 { items } else { "?" }),
            Level::Metric => (
                "Metric",
                DataKind::from_tag(tag).map_or("?", DataKind::field_name),
            ),
            Level::Data(kind) => (
                kind.message_name(),
                if tag == DATA_POINTS {
                    "data_points"
                } else {
                    "?"
                },
            ),
        }
    }

    /// The level of the messages in this level's list field (`None` for items).
    fn child(self, signal: Signal) -> Option<Level> {
        match (self, signal) {
            (Level::Request, _) => Some(Level::Resource),
            (Level::Resource, _) => Some(Level::Scope),
            (Level::Scope, Signal::Metrics) => Some(Level::Metric),
            (Level::Scope, _) => None,
            // The metric's child is its effective data member, handled by the caller.
            (Level::Metric, _) => None,
            (Level::Data(_), _) => None,
        }
    }

    /// The field number of this level's list field.
    fn list_tag(self) -> u32 {
        match self {
            Level::Request => REQUEST_RESOURCES,
            Level::Resource => RESOURCE_SCOPES,
            Level::Scope => SCOPE_ITEMS,
            // Never used: a metric's list is its data member, whose tag varies.
            Level::Metric => 0,
            Level::Data(_) => DATA_POINTS,
        }
    }
}

/// A field located in a message buffer.
#[derive(Debug)]
struct RawField {
    tag: u32,
    /// First byte of the key.
    start: usize,
    /// Byte after the field.
    end: usize,
    /// The payload of a length-delimited field (empty range for other wire types).
    value: std::ops::Range<usize>,
}

/// Read the field starting at `pos` of `buf` (a whole message body), checking its key,
/// its bounds and, for fields `level` declares, its wire type.
fn read_field(buf: &[u8], pos: usize, level: Level) -> Result<RawField, ProtoError> {
    let mut rest = buf.get(pos..).unwrap_or_default();
    let (tag, wire_type) = decode_key(&mut rest)?;
    if let Some(declared) = level.declared_wire_type(tag) {
        check_wire_type(declared, wire_type)?;
    }
    let value_start = buf.len() - rest.len();
    let mut after = rest;
    // prost's own skipping: the same bounds checks, group handling and recursion limit.
    skip_field(wire_type, tag, &mut after, DecodeContext::default())?;
    let end = buf.len() - after.len();
    let value = if wire_type == WireType::LengthDelimited {
        let mut len_buf = rest;
        decode_varint(&mut len_buf)?;
        (buf.len() - len_buf.len())..end
    } else {
        value_start..value_start
    };
    Ok(RawField {
        tag,
        start: pos,
        end,
        value,
    })
}

/// Call `each` for every field of the message `buf` at `level`.
fn for_each_field(
    buf: &[u8],
    level: Level,
    mut each: impl FnMut(RawField) -> Result<(), ProtoError>,
) -> Result<(), ProtoError> {
    let mut pos = 0;
    while pos < buf.len() {
        let field = read_field(buf, pos, level)?;
        pos = field.end;
        each(field)?;
    }
    Ok(())
}

/// Items in the message `buf` at `level`.
fn count(signal: Signal, level: Level, buf: &[u8]) -> Result<u64, ProtoError> {
    if level == Level::Metric {
        return count_metric(signal, buf);
    }
    let list = level.list_tag();
    let child = level.child(signal);
    let mut total = 0u64;
    for_each_field(buf, level, |field| {
        if field.tag == list {
            total += match child {
                Some(child) => count(signal, child, &buf[field.value.clone()])
                    .map_err(|e| located(e, signal, level, field.tag))?,
                None => 1,
            };
        }
        Ok(())
    })?;
    Ok(total)
}

/// Data points of one `Metric`: those of its effective data member (see module docs).
fn count_metric(signal: Signal, buf: &[u8]) -> Result<u64, ProtoError> {
    let mut current: Option<DataKind> = None;
    let mut points = 0u64;
    for_each_field(buf, Level::Metric, |field| {
        if let Some(kind) = DataKind::from_tag(field.tag) {
            let n = count(signal, Level::Data(kind), &buf[field.value.clone()])
                .map_err(|e| located(e, signal, Level::Metric, field.tag))?;
            if current == Some(kind) {
                points += n;
            } else {
                current = Some(kind);
                points = n;
            }
        }
        Ok(())
    })?;
    Ok(points)
}

/// Add the location of a nested error, innermost first, as prost does. (`push` is the
/// hook prost-derive's generated code uses; it is hidden from prost's docs but public.)
fn located(mut error: ProtoError, signal: Signal, level: Level, tag: u32) -> ProtoError {
    let (message, field) = level.names(signal, tag);
    error.push(message, field);
    error
}

/// One element of a list on the split path: an encoded message and its item count.
#[derive(Debug, Clone)]
struct Piece {
    body: Bytes,
    items: u64,
}

/// A message on the split path: the fields every piece repeats, and the list to divide.
#[derive(Debug)]
struct Container {
    /// The message's other fields, as encoded (zero-copy), in their original order.
    header: Vec<Bytes>,
    header_len: usize,
    /// Field number of the list.
    list_tag: u32,
    /// Level of the list's messages, when they can be divided further.
    child: Option<Level>,
    children: Vec<Piece>,
}

/// Parse the message `body` at `level` into its header fields and list elements.
fn parse_container(signal: Signal, level: Level, body: &Bytes) -> Result<Container, ProtoError> {
    if level == Level::Metric {
        return parse_metric(signal, body);
    }
    let list_tag = level.list_tag();
    let child = level.child(signal);
    let mut container = Container {
        header: Vec::new(),
        header_len: 0,
        list_tag,
        child,
        children: Vec::new(),
    };
    for_each_field(body, level, |field| {
        if field.tag == list_tag {
            let value = body.slice(field.value.clone());
            let items = match child {
                Some(child) => count(signal, child, &value)?,
                None => 1,
            };
            container.children.push(Piece { body: value, items });
        } else {
            container.header_len += field.end - field.start;
            container.header.push(body.slice(field.start..field.end));
        }
        Ok(())
    })?;
    Ok(container)
}

/// A metric's container: its non-data fields, and its effective data member as the only
/// list element (list tag = the member's field number).
fn parse_metric(signal: Signal, body: &Bytes) -> Result<Container, ProtoError> {
    let mut header = Vec::new();
    let mut header_len = 0;
    let mut current: Option<DataKind> = None;
    let mut occurrences: Vec<Bytes> = Vec::new();
    for_each_field(body, Level::Metric, |field| {
        match DataKind::from_tag(field.tag) {
            Some(kind) => {
                if current != Some(kind) {
                    current = Some(kind);
                    occurrences.clear();
                }
                occurrences.push(body.slice(field.value.clone()));
            }
            None => {
                header_len += field.end - field.start;
                header.push(body.slice(field.start..field.end));
            }
        }
        Ok(())
    })?;
    let Some(kind) = current else {
        return Ok(Container {
            header,
            header_len,
            list_tag: 0,
            child: None,
            children: Vec::new(),
        });
    };
    // Occurrences of the same member merge; merging messages is concatenating them.
    let member = if occurrences.len() == 1 {
        occurrences.swap_remove(0)
    } else {
        let mut joined = BytesMut::with_capacity(occurrences.iter().map(Bytes::len).sum());
        for occurrence in &occurrences {
            joined.put_slice(occurrence);
        }
        joined.freeze()
    };
    let items = count(signal, Level::Data(kind), &member)?;
    Ok(Container {
        header,
        header_len,
        list_tag: kind.tag(),
        child: Some(Level::Data(kind)),
        children: vec![Piece {
            body: member,
            items,
        }],
    })
}

/// Cut `container` into encoded messages of at most `max_items` items and `max_bytes`
/// bytes each (unless a piece holds at most one item), greedily, in order.
///
/// Fails with [`SplitGrowth`] before building anything when the pieces would add up to
/// more than `limits.allowed`; the pieces of a child are part of its parent's pieces, so
/// the same allowance bounds every level.
fn split_container(
    signal: Signal,
    container: &Container,
    limits: &Limits,
) -> Result<Vec<Piece>, SplitError> {
    let Limits {
        max_items,
        max_bytes,
        ..
    } = *limits;
    let tag = container.list_tag;
    let field_len = |len: usize| key_len(tag) + encoded_len_varint(len as u64) + len;
    // What a child may use when it is alone in a piece.
    let child_budget = max_bytes
        .saturating_sub(container.header_len + key_len(tag) + encoded_len_varint(max_bytes as u64));

    let mut groups: Vec<(Vec<Piece>, u64, usize)> = Vec::new();
    let mut group: Vec<Piece> = Vec::new();
    let mut group_items = 0u64;
    let mut group_len = container.header_len;
    // Bytes of the pieces so far (closed groups plus the open one), checked as we go so
    // that neither this level nor a child builds more than the allowance.
    let mut closed_len = 0usize;
    for child in &container.children {
        let fits_alone = child.items <= max_items
            && container.header_len + field_len(child.body.len()) <= max_bytes;
        let parts = match container.child {
            Some(level) if !fits_alone && child.items > 1 => {
                let inner =
                    parse_container(signal, level, &child.body).map_err(DecodeError::from)?;
                let inner_limits = Limits {
                    max_bytes: child_budget,
                    allowed: limits.allowed.saturating_sub(closed_len + group_len),
                    ..*limits
                };
                split_container(signal, &inner, &inner_limits)?
            }
            _ => vec![child.clone()],
        };
        for part in parts {
            let len = field_len(part.body.len());
            if !group.is_empty()
                && (group_items + part.items > max_items || group_len + len > max_bytes)
            {
                closed_len += group_len;
                groups.push((std::mem::take(&mut group), group_items, group_len));
                group_items = 0;
                group_len = container.header_len;
            }
            group_items += part.items;
            group_len += len;
            group.push(part);
            if closed_len.saturating_add(group_len) > limits.allowed {
                return Err(limits.growth().into());
            }
        }
    }
    if !group.is_empty() || groups.is_empty() {
        groups.push((group, group_items, group_len));
    }

    Ok(groups
        .into_iter()
        .map(|(parts, items, len)| {
            let mut out = BytesMut::with_capacity(len);
            for field in &container.header {
                out.put_slice(field);
            }
            for part in &parts {
                encode_key(tag, WireType::LengthDelimited, &mut out);
                encode_varint(part.body.len() as u64, &mut out);
                out.put_slice(&part.body);
            }
            debug_assert_eq!(out.len(), len);
            Piece {
                body: out.freeze(),
                items,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
    use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
    use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
    use crate::proto::common::v1::{InstrumentationScope, KeyValue};
    use crate::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use crate::proto::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    };
    use crate::proto::resource::v1::Resource;
    use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use crate::request::OtlpRequest;
    use proptest::prelude::*;
    use prost::Message;

    fn field(tag: u32, wire_type: WireType, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key(tag, wire_type, &mut out);
        if wire_type == WireType::LengthDelimited {
            encode_varint(payload.len() as u64, &mut out);
        }
        out.extend_from_slice(payload);
        out
    }

    fn len_field(tag: u32, payload: &[u8]) -> Vec<u8> {
        field(tag, WireType::LengthDelimited, payload)
    }

    fn span(name: &str) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: name.into(),
            ..Default::default()
        }
    }

    fn trace_request(resources: &[&[usize]]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: resources
                .iter()
                .enumerate()
                .map(|(r, scopes)| ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![KeyValue {
                            key: format!("resource.{r}"),
                            value: None,
                            key_strindex: 0,
                        }],
                        ..Default::default()
                    }),
                    scope_spans: scopes
                        .iter()
                        .enumerate()
                        .map(|(s, n)| ScopeSpans {
                            scope: Some(InstrumentationScope {
                                name: format!("scope.{s}"),
                                ..Default::default()
                            }),
                            spans: (0..*n)
                                .map(|i| span(&format!("span.{r}.{s}.{i}")))
                                .collect(),
                            schema_url: "https://schema".into(),
                        })
                        .collect(),
                    schema_url: format!("https://resource/{r}"),
                })
                .collect(),
        }
    }

    /// Every span of a request with its resource and scope (encoded without their lists).
    fn flatten_traces(request: &ExportTraceServiceRequest) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for r in &request.resource_spans {
            let rh = ResourceSpans {
                scope_spans: vec![],
                ..r.clone()
            }
            .encode_to_vec();
            for s in &r.scope_spans {
                let sh = ScopeSpans {
                    spans: vec![],
                    ..s.clone()
                }
                .encode_to_vec();
                for span in &s.spans {
                    out.push((rh.clone(), sh.clone(), span.encode_to_vec()));
                }
            }
        }
        out
    }

    fn number_point(v: i64) -> NumberDataPoint {
        NumberDataPoint {
            value: Some(crate::proto::metrics::v1::number_data_point::Value::AsInt(
                v,
            )),
            ..Default::default()
        }
    }

    #[test]
    fn counts_every_signal() {
        let traces = trace_request(&[&[2, 3], &[], &[0, 5]]);
        let body = traces.encode_to_vec();
        assert_eq!(count_items(Signal::Traces, &body).unwrap(), 10);
        assert_eq!(count_items(Signal::Traces, &[]).unwrap(), 0);

        let logs = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default(); 4],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert_eq!(count_items(Signal::Logs, &logs.encode_to_vec()).unwrap(), 4);

        let metrics = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        Metric {
                            name: "a".into(),
                            data: Some(metric::Data::Gauge(Gauge {
                                data_points: vec![number_point(1), number_point(2)],
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "empty".into(),
                            ..Default::default()
                        },
                        Metric {
                            name: "b".into(),
                            data: Some(metric::Data::Sum(Sum {
                                data_points: vec![number_point(3)],
                                aggregation_temporality: 2,
                                is_monotonic: true,
                            })),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = metrics.encode_to_vec();
        assert_eq!(count_items(Signal::Metrics, &body).unwrap(), 3);
        assert_eq!(metrics.item_count(), 3);
    }

    #[test]
    fn skips_unknown_fields_of_every_wire_type() {
        // A scope with one span, and unknown fields of all wire types around it.
        let mut scope = Vec::new();
        scope.extend(field(90, WireType::Varint, &[0x96, 0x01]));
        scope.extend(field(91, WireType::SixtyFourBit, &[0; 8]));
        scope.extend(field(92, WireType::ThirtyTwoBit, &[0; 4]));
        scope.extend(len_field(93, b"whatever"));
        // A group holding a varint and a nested group.
        let mut group = field(94, WireType::StartGroup, &[]);
        group.extend(field(1, WireType::Varint, &[1]));
        group.extend(field(2, WireType::StartGroup, &[]));
        group.extend(field(2, WireType::EndGroup, &[]));
        group.extend(field(94, WireType::EndGroup, &[]));
        scope.extend(&group);
        scope.extend(len_field(2, &span("x").encode_to_vec()));
        let resource = [len_field(2, &scope), group.clone()].concat();
        let request = [len_field(1, &resource), len_field(7, b"top-level unknown")].concat();

        let decoded = ExportTraceServiceRequest::decode(request.as_slice()).unwrap();
        assert_eq!(decoded.item_count(), 1);
        assert_eq!(count_items(Signal::Traces, &request).unwrap(), 1);
    }

    #[test]
    fn metric_data_merges_like_prost() {
        let gauge = |points: &[i64]| {
            Gauge {
                data_points: points.iter().copied().map(number_point).collect(),
            }
            .encode_to_vec()
        };
        let sum = Sum {
            data_points: vec![number_point(9)],
            aggregation_temporality: 1,
            is_monotonic: false,
        }
        .encode_to_vec();
        let cases: Vec<(Vec<u8>, u64)> = vec![
            // gauge twice: merged, 2 + 3 points.
            (
                [
                    len_field(5, &gauge(&[1, 2])),
                    len_field(5, &gauge(&[3, 4, 5])),
                ]
                .concat(),
                5,
            ),
            // gauge then sum: sum wins.
            (
                [len_field(5, &gauge(&[1, 2])), len_field(7, &sum)].concat(),
                1,
            ),
            // gauge, sum, gauge: the last gauge alone.
            (
                [
                    len_field(5, &gauge(&[1, 2])),
                    len_field(7, &sum),
                    len_field(5, &gauge(&[3])),
                ]
                .concat(),
                1,
            ),
            // name between the occurrences does not matter.
            (
                [
                    len_field(5, &gauge(&[1])),
                    len_field(1, b"name"),
                    len_field(5, &gauge(&[2])),
                ]
                .concat(),
                2,
            ),
        ];
        for (metric, expected) in cases {
            let scope = len_field(2, &metric);
            let request = len_field(1, &len_field(2, &scope));
            let decoded = ExportMetricsServiceRequest::decode(request.as_slice()).unwrap();
            assert_eq!(decoded.item_count(), expected);
            assert_eq!(count_items(Signal::Metrics, &request).unwrap(), expected);

            // Splitting one point per piece keeps exactly the effective points.
            let body = Bytes::from(request);
            let pieces = split_to_fit(Signal::Metrics, &body, 1, usize::MAX).unwrap();
            let total: u64 = pieces.iter().map(ResourceEntry::items).sum();
            assert_eq!(total, expected);
            let joined: Vec<u8> = pieces.iter().flat_map(|p| p.encoded().to_vec()).collect();
            let rejoined = ExportMetricsServiceRequest::decode(joined.as_slice()).unwrap();
            assert_eq!(rejoined.item_count(), expected);
            let points = |r: &ExportMetricsServiceRequest| -> Vec<NumberDataPoint> {
                r.resource_metrics
                    .iter()
                    .flat_map(|r| &r.scope_metrics)
                    .flat_map(|s| &s.metrics)
                    .flat_map(|m| match &m.data {
                        Some(metric::Data::Gauge(g)) => g.data_points.clone(),
                        Some(metric::Data::Sum(s)) => s.data_points.clone(),
                        _ => vec![],
                    })
                    .collect()
            };
            assert_eq!(points(&rejoined), points(&decoded));
        }
    }

    #[test]
    fn rejects_malformed_framing() {
        let good = trace_request(&[&[2]]).encode_to_vec();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", good[..good.len() - 1].to_vec()),
            ("length past end", vec![0x0a, 0x05, 0x12]),
            (
                "bad varint",
                vec![
                    0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ],
            ),
            ("tag zero", vec![0x02, 0x00]),
            ("wire type 6", vec![0x0e]),
            ("list as varint", vec![0x08, 0x01]),
            ("scope list as fixed32", len_field(1, &[0x15, 0, 0, 0, 0])),
            ("stray end group", vec![0x14]),
            ("unterminated group", vec![0x13, 0x08, 0x01]),
            ("mismatched group end", vec![0x13, 0x1c]),
            (
                "nested span framing",
                len_field(1, &len_field(2, &[0x12, 0x09, 0x00])),
            ),
        ];
        for (what, bytes) in cases {
            let err = count_items(Signal::Traces, &bytes);
            assert!(
                matches!(err, Err(DecodeError::Protobuf(_))),
                "{what}: {err:?}"
            );
            assert!(
                ExportTraceServiceRequest::decode(bytes.as_slice()).is_err(),
                "{what}"
            );
        }
        // Sum.aggregation_temporality must be a varint.
        let metric = len_field(7, &len_field(2, b"x"));
        let request = len_field(1, &len_field(2, &len_field(2, &metric)));
        assert!(count_items(Signal::Metrics, &request).is_err());
        assert!(ExportMetricsServiceRequest::decode(request.as_slice()).is_err());
    }

    #[test]
    fn errors_name_the_location() {
        let request = len_field(1, &len_field(2, &[0x12, 0x09, 0x00]));
        let err = count_items(Signal::Traces, &request)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ResourceSpans.scope_spans"), "{err}");
        assert!(
            err.contains("ExportTraceServiceRequest.resource_spans"),
            "{err}"
        );
    }

    #[test]
    fn resource_entries_are_zero_copy_slices() {
        let request = trace_request(&[&[1], &[2, 3]]);
        let body = Bytes::from(request.encode_to_vec());
        let entries: Vec<_> = resource_entries(Signal::Traces, &body)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].items(), 1);
        assert_eq!(entries[1].items(), 5);
        let joined: Vec<u8> = entries.iter().flat_map(|e| e.encoded().to_vec()).collect();
        assert_eq!(joined, body.to_vec());
        // Same memory as the body.
        let range = body.as_ptr_range();
        assert!(range.contains(&entries[1].encoded().as_ptr()));
        let only = ResourceSpans::decode(entries[1].message()).unwrap();
        assert_eq!(only, request.resource_spans[1]);
    }

    #[test]
    fn resource_entries_stop_after_an_error() {
        let mut body = trace_request(&[&[1]]).encode_to_vec();
        body.extend([0x0a, 0x7f]);
        let mut entries = resource_entries(Signal::Traces, &Bytes::from(body));
        assert!(entries.next().unwrap().is_ok());
        assert!(entries.next().unwrap().is_err());
        assert!(entries.next().is_none());
    }

    #[test]
    fn splits_on_scope_then_item_boundaries() {
        let request = trace_request(&[&[3, 1, 4]]);
        let body = Bytes::from(request.encode_to_vec());
        let entry = resource_entries(Signal::Traces, &body)
            .next()
            .unwrap()
            .unwrap();

        // 4 items per piece: [3 | 1] then [4].
        let pieces = split_resource(Signal::Traces, &entry, 4, usize::MAX).unwrap();
        let items: Vec<u64> = pieces.iter().map(ResourceEntry::items).collect();
        assert_eq!(items, [4, 4]);
        let first = ResourceSpans::decode(pieces[0].message()).unwrap();
        assert_eq!(first.scope_spans.len(), 2);
        assert_eq!(first.resource, request.resource_spans[0].resource);
        assert_eq!(first.schema_url, request.resource_spans[0].schema_url);

        // 2 items per piece: the 3-span and 4-span scopes are cut between spans, and
        // every piece repeats the scope.
        let pieces = split_resource(Signal::Traces, &entry, 2, usize::MAX).unwrap();
        let items: Vec<u64> = pieces.iter().map(ResourceEntry::items).collect();
        assert_eq!(items, [2, 2, 2, 2]);
        let mut all = Vec::new();
        for piece in &pieces {
            let decoded = ExportTraceServiceRequest::decode(piece.encoded().clone()).unwrap();
            for s in &decoded.resource_spans[0].scope_spans {
                assert!(s.scope.is_some());
                assert_eq!(s.schema_url, "https://schema");
            }
            all.extend(flatten_traces(&decoded));
        }
        assert_eq!(all, flatten_traces(&request));
    }

    #[test]
    fn splits_by_bytes_and_keeps_oversized_items_alone() {
        let mut request = trace_request(&[&[6]]);
        request.resource_spans[0].scope_spans[0].spans[2].name = "x".repeat(500);
        let body = Bytes::from(request.encode_to_vec());
        let max_bytes = 200;
        let pieces = split_to_fit(Signal::Traces, &body, u64::MAX, max_bytes).unwrap();
        let mut all = Vec::new();
        for piece in &pieces {
            assert!(
                piece.len() <= max_bytes || piece.items() == 1,
                "{}",
                piece.len()
            );
            let decoded = ExportTraceServiceRequest::decode(piece.encoded().clone()).unwrap();
            assert_eq!(decoded.item_count(), piece.items());
            all.extend(flatten_traces(&decoded));
        }
        assert!(pieces.iter().any(|p| p.len() > max_bytes && p.items() == 1));
        assert_eq!(all, flatten_traces(&request));
    }

    #[test]
    fn splits_a_metric_between_data_points() {
        let metric = Metric {
            name: "requests".into(),
            unit: "1".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: (0..5).map(number_point).collect(),
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![metric.clone()],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = Bytes::from(request.encode_to_vec());
        let pieces = split_to_fit(Signal::Metrics, &body, 2, usize::MAX).unwrap();
        let items: Vec<u64> = pieces.iter().map(ResourceEntry::items).collect();
        assert_eq!(items, [2, 2, 1]);
        let mut values = Vec::new();
        for piece in &pieces {
            let decoded = ExportMetricsServiceRequest::decode(piece.encoded().clone()).unwrap();
            let m = &decoded.resource_metrics[0].scope_metrics[0].metrics[0];
            assert_eq!(m.name, "requests");
            assert_eq!(m.unit, "1");
            let Some(metric::Data::Sum(sum)) = &m.data else {
                panic!("not a sum: {m:?}")
            };
            assert_eq!(sum.aggregation_temporality, 2);
            assert!(sum.is_monotonic);
            values.extend(sum.data_points.iter().cloned());
        }
        let Some(metric::Data::Sum(original)) = metric.data else {
            unreachable!()
        };
        assert_eq!(values, original.data_points);
    }

    #[test]
    fn refuses_splits_that_multiply_the_input() {
        // 100 KiB resource, two scopes of 10 000 empty spans each, 100 KiB-ish scope names.
        let mut request = trace_request(&[&[10_000, 10_000]]);
        for s in &mut request.resource_spans[0].scope_spans {
            s.spans = vec![Span::default(); 10_000];
            s.scope.as_mut().unwrap().name = "s".repeat(100 << 10);
        }
        request.resource_spans[0].schema_url = "r".repeat(100 << 10);
        let body = Bytes::from(request.encode_to_vec());
        let entry = resource_entries(Signal::Traces, &body)
            .next()
            .unwrap()
            .unwrap();
        for max_items in [1, 100] {
            let err = split_resource(Signal::Traces, &entry, max_items, 1 << 20).unwrap_err();
            let SplitError::Growth(growth) = err else {
                panic!("{err}")
            };
            assert_eq!(growth.input, entry.len());
            assert_eq!(growth.max_bytes, 1 << 20);
            assert_eq!(growth.allowed, entry.len() + SPLIT_GROWTH_FLOOR);
            let err = split_to_fit(Signal::Traces, &body, max_items, 1 << 20).unwrap_err();
            assert!(
                matches!(err, SplitError::Growth(SplitGrowth { input, .. }) if input == body.len())
            );
        }
        // Few enough pieces: fine.
        let pieces = split_to_fit(Signal::Traces, &body, 5_000, 1 << 20).unwrap();
        assert_eq!(pieces.len(), 4);
        assert_eq!(pieces.iter().map(ResourceEntry::items).sum::<u64>(), 20_000);
    }

    #[test]
    fn an_entry_that_fits_is_returned_as_is() {
        let body = Bytes::from(trace_request(&[&[2]]).encode_to_vec());
        let entry = resource_entries(Signal::Traces, &body)
            .next()
            .unwrap()
            .unwrap();
        let pieces = split_resource(Signal::Traces, &entry, 10, 10_000).unwrap();
        assert_eq!(pieces, vec![entry]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn count_agrees_with_prost(
            traces in crate::testing::arb_trace_request(),
            metrics in crate::testing::arb_metrics_request(),
            logs in crate::testing::arb_logs_request(),
        ) {
            prop_assert_eq!(count_items(Signal::Traces, &traces.encode_to_vec()).unwrap(), traces.item_count());
            prop_assert_eq!(count_items(Signal::Metrics, &metrics.encode_to_vec()).unwrap(), metrics.item_count());
            prop_assert_eq!(count_items(Signal::Logs, &logs.encode_to_vec()).unwrap(), logs.item_count());
        }

        #[test]
        fn truncations_never_disagree_with_prost(
            metrics in crate::testing::arb_metrics_request(),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = metrics.encode_to_vec();
            let cut = if bytes.is_empty() { 0 } else { cut.index(bytes.len()) };
            let bytes = &bytes[..cut];
            let counted = count_items(Signal::Metrics, bytes);
            if let Ok(decoded) = ExportMetricsServiceRequest::decode(bytes) {
                prop_assert_eq!(counted.unwrap(), decoded.item_count());
            }
        }
    }
}
