//! SDK spans and log records written straight to OTLP protobuf.
//!
//! `opentelemetry-otlp` converts every `SpanData` into `opentelemetry-proto` messages
//! (a `String` per attribute key and value, a `Vec` per id) and then encodes those, and
//! prost computes each nested message's length again at every level. This module writes
//! the same bytes in one pass without building the messages: a nested message reserves
//! one length byte, is written, and is moved up by the few bytes its length needs when
//! it is 128 bytes or longer.
//!
//! The output is what `opentelemetry_proto::transform` followed by prost encoding
//! produces, field for field, in the same field order (byte for byte for spans; log
//! scopes may come in another order, since the transform groups them through a hash
//! map); the unit tests check it by decoding with `otlp_core`'s codec and comparing, and
//! by comparing bytes.
//! Metrics stay on `opentelemetry_proto::transform` (a periodic, small export).
//!
//! Public so the OTLP/gRPC exporter's SDK adapters write the same bytes.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::logs::AnyValue as LogValue;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceState};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{LogBatch, SdkLogRecord};
use opentelemetry_sdk::trace::SpanData;

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// `SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`.
const HAS_IS_REMOTE: u32 = 0x100;
/// `SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`.
const IS_REMOTE: u32 = 0x200;

/// The SDK resource, encoded once when the SDK hands it over (`set_resource`).
#[derive(Debug, Default, Clone)]
pub struct EncodedResource {
    /// The fields of an `opentelemetry.proto.resource.v1.Resource` message.
    resource: Vec<u8>,
    schema_url: String,
}

impl EncodedResource {
    /// Encodes `resource`'s attributes and keeps its schema URL.
    pub fn new(resource: &Resource) -> EncodedResource {
        let mut buf = Vec::new();
        for (key, value) in resource.iter() {
            key_value(&mut buf, 1, key.as_str(), value);
        }
        EncodedResource {
            resource: buf,
            schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        }
    }
}

/// An `ExportTraceServiceRequest` holding `spans` under `resource`, grouped by
/// instrumentation scope in order of first appearance.
pub fn encode_spans(spans: &[SpanData], resource: &EncodedResource) -> Vec<u8> {
    let mut buf = Vec::with_capacity(spans.len() * 320 + 256);
    // ResourceSpans
    message(&mut buf, 1, |buf| {
        message(buf, 1, |buf| buf.extend_from_slice(&resource.resource));
        for (scope, group) in group_by(spans, |s| &s.instrumentation_scope, |a, b| a == b) {
            // ScopeSpans
            message(buf, 2, |buf| {
                message(buf, 1, |buf| scope_fields(buf, scope.name(), scope));
                for span in group {
                    message(buf, 2, |buf| span_fields(buf, span));
                }
                string(buf, 3, scope.schema_url().unwrap_or_default());
            });
        }
        string(buf, 3, &resource.schema_url);
    });
    buf
}

/// An `ExportLogsServiceRequest` holding the batch under `resource`, grouped by scope
/// (a record's `target` replaces its scope's name, as `opentelemetry-otlp` does).
pub fn encode_logs(batch: &LogBatch<'_>, resource: &EncodedResource) -> Vec<u8> {
    let records: Vec<(&SdkLogRecord, &InstrumentationScope)> = batch.iter().collect();
    let mut buf = Vec::with_capacity(records.len() * 256 + 256);
    // ResourceLogs
    message(&mut buf, 1, |buf| {
        message(buf, 1, |buf| buf.extend_from_slice(&resource.resource));
        let groups = group_by(
            &records,
            |&(record, scope)| LogScope {
                name: record.target().map_or(scope.name(), |t| t.as_ref()),
                scope,
            },
            LogScope::same,
        );
        for (key, group) in groups {
            // ScopeLogs
            message(buf, 2, |buf| {
                message(buf, 1, |buf| scope_fields(buf, key.name, key.scope));
                for (record, _) in group {
                    message(buf, 2, |buf| log_fields(buf, record));
                }
                string(buf, 3, key.scope.schema_url().unwrap_or_default());
            });
        }
        string(buf, 3, &resource.schema_url);
    });
    buf
}

/// Groups `items` by a key, keeping the order in which keys first appear. Batches
/// usually hold one or a few scopes: a linear scan, trying the last key first, beats
/// hashing a scope per item.
fn group_by<'a, T, K: Copy>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
    same: impl Fn(&K, &K) -> bool,
) -> Vec<(K, Vec<&'a T>)> {
    let mut groups: Vec<(K, Vec<&'a T>)> = Vec::new();
    let mut last = 0;
    for item in items {
        let k = key(item);
        if let Some((g, _)) = groups.get(last)
            && same(g, &k)
        {
            groups[last].1.push(item);
            continue;
        }
        match groups.iter().position(|(g, _)| same(g, &k)) {
            Some(i) => {
                groups[i].1.push(item);
                last = i;
            }
            None => {
                last = groups.len();
                groups.push((k, vec![item]));
            }
        }
    }
    groups
}

/// The scope a log record is exported under: its scope with the record's target as name.
#[derive(Clone, Copy)]
struct LogScope<'a> {
    name: &'a str,
    scope: &'a InstrumentationScope,
}

impl LogScope<'_> {
    fn same(a: &LogScope<'_>, b: &LogScope<'_>) -> bool {
        a.name == b.name
            && a.scope.version() == b.scope.version()
            && a.scope.schema_url() == b.scope.schema_url()
            && same_attributes(a.scope, b.scope)
    }
}

/// Attribute sets compared as `InstrumentationScope`'s own `PartialEq` does (order
/// ignored), without its sort when the order is the same.
fn same_attributes(a: &InstrumentationScope, b: &InstrumentationScope) -> bool {
    let (a, b): (Vec<&KeyValue>, Vec<&KeyValue>) =
        (a.attributes().collect(), b.attributes().collect());
    if a.len() != b.len() {
        return false;
    }
    if a == b {
        return true;
    }
    let (mut a, mut b) = (a, b);
    a.sort_unstable_by(|x, y| x.key.cmp(&y.key));
    b.sort_unstable_by(|x, y| x.key.cmp(&y.key));
    a == b
}

/// `InstrumentationScope` fields: name, version, attributes.
fn scope_fields(buf: &mut Vec<u8>, name: &str, scope: &InstrumentationScope) {
    string(buf, 1, name);
    string(buf, 2, scope.version().unwrap_or_default());
    for kv in scope.attributes() {
        key_value(buf, 3, kv.key.as_str(), &kv.value);
    }
}

fn span_fields(buf: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    bytes(buf, 1, &context.trace_id().to_bytes());
    bytes(buf, 2, &context.span_id().to_bytes());
    trace_state(buf, 3, context.trace_state());
    if span.parent_span_id != SpanId::INVALID {
        bytes(buf, 4, &span.parent_span_id.to_bytes());
    }
    string(buf, 5, &span.name);
    int(buf, 6, span_kind(&span.span_kind));
    fixed64(buf, 7, nanos(span.start_time));
    fixed64(buf, 8, nanos(span.end_time));
    for kv in &span.attributes {
        key_value(buf, 9, kv.key.as_str(), &kv.value);
    }
    uint(buf, 10, span.dropped_attributes_count.into());
    for event in span.events.iter() {
        message(buf, 11, |buf| {
            fixed64(buf, 1, nanos(event.timestamp));
            string(buf, 2, &event.name);
            for kv in &event.attributes {
                key_value(buf, 3, kv.key.as_str(), &kv.value);
            }
            uint(buf, 4, event.dropped_attributes_count.into());
        });
    }
    uint(buf, 12, span.events.dropped_count.into());
    for link in span.links.iter() {
        let context = &link.span_context;
        message(buf, 13, |buf| {
            bytes(buf, 1, &context.trace_id().to_bytes());
            bytes(buf, 2, &context.span_id().to_bytes());
            trace_state(buf, 3, context.trace_state());
            for kv in &link.attributes {
                key_value(buf, 4, kv.key.as_str(), &kv.value);
            }
            uint(buf, 5, link.dropped_attributes_count.into());
            fixed32(
                buf,
                6,
                span_flags(context.is_remote(), context.trace_flags().to_u8()),
            );
        });
    }
    uint(buf, 14, span.links.dropped_count.into());
    message(buf, 15, |buf| match &span.status {
        Status::Unset => {}
        Status::Ok => int(buf, 3, 1),
        Status::Error { description } => {
            string(buf, 2, description);
            int(buf, 3, 2);
        }
    });
    fixed32(
        buf,
        16,
        span_flags(span.parent_span_is_remote, context.trace_flags().to_u8()),
    );
}

fn span_flags(remote: bool, trace_flags: u8) -> u32 {
    u32::from(trace_flags) | HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 }
}

/// `Span.SpanKind` numbers.
fn span_kind(kind: &SpanKind) -> i32 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn trace_state(buf: &mut Vec<u8>, field: u32, state: &TraceState) {
    if *state != TraceState::NONE {
        string(buf, field, &state.header());
    }
}

fn log_fields(buf: &mut Vec<u8>, record: &SdkLogRecord) {
    fixed64(buf, 1, record.timestamp().map_or(0, nanos));
    // `Severity`'s discriminants are the OTLP severity numbers (TRACE = 1 .. FATAL4 = 24).
    int(buf, 2, record.severity_number().map_or(0, |s| s as i32));
    string(buf, 3, record.severity_text().unwrap_or_default());
    if let Some(body) = record.body() {
        message(buf, 5, |buf| log_value(buf, body));
    }
    for (key, value) in record.attributes_iter() {
        message(buf, 6, |buf| {
            string(buf, 1, key.as_str());
            message(buf, 2, |buf| log_value(buf, value));
        });
    }
    if let Some(context) = record.trace_context() {
        fixed32(
            buf,
            8,
            context.trace_flags.map_or(0, |f| u32::from(f.to_u8())),
        );
        bytes(buf, 9, &context.trace_id.to_bytes());
        bytes(buf, 10, &context.span_id.to_bytes());
    }
    fixed64(buf, 11, record.observed_timestamp().map_or(0, nanos));
    string(buf, 12, record.event_name().unwrap_or_default());
}

/// The fields of an `AnyValue` holding a log value.
fn log_value(buf: &mut Vec<u8>, value: &LogValue) {
    match value {
        LogValue::String(s) => bytes(buf, 1, s.as_str().as_bytes()),
        LogValue::Boolean(b) => tagged_varint(buf, 2, u64::from(*b)),
        LogValue::Int(i) => tagged_varint(buf, 3, *i as u64),
        LogValue::Double(d) => tagged_fixed64(buf, 4, d.to_bits()),
        LogValue::ListAny(list) => message(buf, 5, |buf| {
            for item in list.iter() {
                message(buf, 1, |buf| log_value(buf, item));
            }
        }),
        LogValue::Map(map) => message(buf, 6, |buf| {
            for (key, item) in map.iter() {
                message(buf, 1, |buf| {
                    string(buf, 1, key.as_str());
                    message(buf, 2, |buf| log_value(buf, item));
                });
            }
        }),
        LogValue::Bytes(b) => bytes(buf, 7, b),
        // A variant added to the SDK after this was written: keep its text.
        other => bytes(buf, 1, format!("{other:?}").as_bytes()),
    }
}

/// A `KeyValue` message in `field`.
fn key_value(buf: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    message(buf, field, |buf| {
        string(buf, 1, key);
        message(buf, 2, |buf| any_value(buf, value));
    });
}

/// The fields of an `AnyValue` holding an attribute value.
fn any_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => bytes(buf, 1, s.as_str().as_bytes()),
        Value::Bool(b) => tagged_varint(buf, 2, u64::from(*b)),
        Value::I64(i) => tagged_varint(buf, 3, *i as u64),
        Value::F64(d) => tagged_fixed64(buf, 4, d.to_bits()),
        Value::Array(Array::Bool(items)) => array(buf, items, |buf, b| {
            tagged_varint(buf, 2, u64::from(*b));
        }),
        Value::Array(Array::I64(items)) => array(buf, items, |buf, i| {
            tagged_varint(buf, 3, *i as u64);
        }),
        Value::Array(Array::F64(items)) => array(buf, items, |buf, d| {
            tagged_fixed64(buf, 4, d.to_bits());
        }),
        Value::Array(Array::String(items)) => array(buf, items, |buf, s| {
            bytes(buf, 1, s.as_str().as_bytes());
        }),
        // Variants added to the API after this was written: keep their text.
        other => bytes(buf, 1, other.as_str().as_bytes()),
    }
}

fn array<T>(buf: &mut Vec<u8>, items: &[T], item: impl Fn(&mut Vec<u8>, &T)) {
    message(buf, 5, |buf| {
        for value in items {
            message(buf, 1, |buf| item(buf, value));
        }
    });
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

// --- protobuf primitives ------------------------------------------------------------

#[inline]
fn varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

#[inline]
fn tag(buf: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(buf, u64::from((field << 3) | wire_type));
}

/// A length-delimited field, written even when empty (oneof members, ids).
#[inline]
fn bytes(buf: &mut Vec<u8>, field: u32, value: &[u8]) {
    tag(buf, field, LEN);
    varint(buf, value.len() as u64);
    buf.extend_from_slice(value);
}

/// A string field, left out when empty (proto3 default).
#[inline]
fn string(buf: &mut Vec<u8>, field: u32, value: &str) {
    if !value.is_empty() {
        bytes(buf, field, value.as_bytes());
    }
}

#[inline]
fn tagged_varint(buf: &mut Vec<u8>, field: u32, value: u64) {
    tag(buf, field, VARINT);
    varint(buf, value);
}

#[inline]
fn tagged_fixed64(buf: &mut Vec<u8>, field: u32, value: u64) {
    tag(buf, field, FIXED64);
    buf.extend_from_slice(&value.to_le_bytes());
}

/// A `uint32` field, left out when zero.
#[inline]
fn uint(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tagged_varint(buf, field, value);
    }
}

/// An `int32` or enum field, left out when zero (negative values sign-extended).
#[inline]
fn int(buf: &mut Vec<u8>, field: u32, value: i32) {
    if value != 0 {
        tagged_varint(buf, field, i64::from(value) as u64);
    }
}

#[inline]
fn fixed64(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        tagged_fixed64(buf, field, value);
    }
}

#[inline]
fn fixed32(buf: &mut Vec<u8>, field: u32, value: u32) {
    if value != 0 {
        tag(buf, field, FIXED32);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

/// A nested message in `field`, written by `fields` (always present, even when empty).
#[inline]
fn message(buf: &mut Vec<u8>, field: u32, fields: impl FnOnce(&mut Vec<u8>)) {
    tag(buf, field, LEN);
    let at = buf.len();
    buf.push(0);
    fields(buf);
    let len = buf.len() - at - 1;
    if len < 0x80 {
        buf[at] = len as u8;
        return;
    }
    // The length needs more than the one byte reserved: move the message up.
    let mut width = 1;
    while len >> (7 * width) != 0 {
        width += 1;
    }
    let extra = width - 1;
    buf.resize(buf.len() + extra, 0);
    buf.copy_within(at + 1..at + 1 + len, at + 1 + extra);
    let mut value = len;
    for slot in &mut buf[at..at + width] {
        *slot = (value as u8 & 0x7f) | if value >= 0x80 { 0x80 } else { 0 };
        value >>= 7;
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
    use opentelemetry::trace::{Event, Link, SpanContext, TraceFlags, TraceId};
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::logs::{LogProcessor, SdkLoggerProvider};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use otlp_core::codec::protobuf;
    use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
    use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;

    use super::*;

    fn resource() -> Resource {
        Resource::builder_empty()
            .with_schema_url(
                [KeyValue::new("service.name", "wire-test")],
                "https://opentelemetry.io/schemas/1.26.0",
            )
            .with_attribute(KeyValue::new("host.cores", 2))
            .build()
    }

    fn scope(name: &'static str, with_extras: bool) -> InstrumentationScope {
        let builder = InstrumentationScope::builder(name);
        if with_extras {
            builder
                .with_version("1.2.3")
                .with_schema_url("https://example.com/schema")
                .with_attributes([KeyValue::new("scope.attr", true)])
                .build()
        } else {
            builder.build()
        }
    }

    fn every_value() -> Vec<KeyValue> {
        vec![
            KeyValue::new("s", "text"),
            KeyValue::new("empty", ""),
            KeyValue::new("b", false),
            KeyValue::new("i", -1_i64),
            KeyValue::new("zero", 0_i64),
            KeyValue::new("f", 2.5),
            KeyValue::new("inf", f64::NEG_INFINITY),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new(
                "ints",
                Value::Array(Array::I64(vec![i64::MIN, 0, i64::MAX])),
            ),
            KeyValue::new("floats", Value::Array(Array::F64(vec![-0.5, 1e300]))),
            KeyValue::new(
                "strings",
                Value::Array(Array::String(vec!["a".into(), "".into()])),
            ),
            KeyValue::new("none", Value::Array(Array::String(vec![]))),
            KeyValue::new("long", "x".repeat(300)),
            KeyValue::new("unicode", "日本語 🎉"),
        ]
    }

    fn span(i: u64, scope: InstrumentationScope) -> SpanData {
        let context = SpanContext::new(
            TraceId::from(0x5b8e_fff7_9803_8103_d269_b633_813f_c60c_u128 + u128::from(i)),
            SpanId::from(0xeee1_9b7e_c3c1_b174 + i),
            if i.is_multiple_of(2) {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            false,
            if i.is_multiple_of(3) {
                TraceState::from_key_value([("vendor", "value")]).unwrap()
            } else {
                TraceState::NONE
            },
        );
        let at = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789 + i);
        let mut events = SpanEvents::default();
        if i % 2 == 1 {
            events.events.push(Event::new(
                "retry",
                at,
                vec![KeyValue::new("attempt", 2)],
                1,
            ));
            events.events.push(Event::new("", UNIX_EPOCH, vec![], 0));
            events.dropped_count = 3;
        }
        let mut links = SpanLinks::default();
        if i % 4 == 1 {
            let remote = SpanContext::new(
                TraceId::from(7),
                SpanId::from(8),
                TraceFlags::SAMPLED,
                true,
                TraceState::from_key_value([("k", "v")]).unwrap(),
            );
            links.links.push(Link::new(remote, every_value(), 4));
            links.dropped_count = 1;
        }
        SpanData {
            span_context: context,
            parent_span_id: if i == 0 {
                SpanId::INVALID
            } else {
                SpanId::from(i)
            },
            parent_span_is_remote: i % 5 == 1,
            span_kind: [
                SpanKind::Client,
                SpanKind::Server,
                SpanKind::Producer,
                SpanKind::Consumer,
                SpanKind::Internal,
            ][(i % 5) as usize]
                .clone(),
            name: if i == 4 {
                Cow::Borrowed("")
            } else {
                Cow::Owned(format!("span {i}"))
            },
            start_time: at,
            end_time: at + Duration::from_micros(i * 37),
            attributes: if i == 2 { vec![] } else { every_value() },
            dropped_attributes_count: (i % 3) as u32,
            events,
            links,
            status: match i % 3 {
                0 => Status::Unset,
                1 => Status::Ok,
                _ => Status::error(format!("failure {i}")),
            },
            instrumentation_scope: scope,
        }
    }

    /// The transform's result with scopes in a stable order (it groups through a map).
    fn sorted_traces(mut request: ExportTraceServiceRequest) -> ExportTraceServiceRequest {
        for rs in &mut request.resource_spans {
            rs.scope_spans.sort_by(|a, b| {
                let name = |s: &otlp_core::proto::trace::v1::ScopeSpans| {
                    s.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default()
                };
                name(a).cmp(&name(b))
            });
        }
        request
    }

    #[test]
    fn spans_match_the_official_transform() {
        let resource = resource();
        let spans: Vec<SpanData> = (0..12)
            .map(|i| {
                span(
                    i,
                    if i % 3 == 2 {
                        scope("b-other", true)
                    } else {
                        scope("a-main", false)
                    },
                )
            })
            .collect();
        let ours = encode_spans(&spans, &EncodedResource::new(&resource));
        let theirs = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                spans.clone(),
                &ResourceAttributesWithSchema::from(&resource),
            ),
        };
        let decoded: ExportTraceServiceRequest = protobuf::decode(&ours).unwrap();
        assert_eq!(sorted_traces(decoded.clone()), sorted_traces(theirs));
        assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), 8);

        // One scope: the very bytes prost writes for the transform's messages.
        let one: Vec<SpanData> = (0..6).map(|i| span(i, scope("a-main", true))).collect();
        let ours = encode_spans(&one, &EncodedResource::new(&resource));
        let theirs = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                one,
                &ResourceAttributesWithSchema::from(&resource),
            ),
        };
        assert_eq!(ours, protobuf::encode(&theirs).to_vec());

        // NaN never compares equal as a message: compare bytes.
        let mut nan = span(1, scope("a-main", false));
        nan.attributes = vec![KeyValue::new("nan", f64::NAN)];
        let ours = encode_spans(std::slice::from_ref(&nan), &EncodedResource::default());
        let theirs = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                vec![nan],
                &ResourceAttributesWithSchema::default(),
            ),
        };
        assert_eq!(ours, protobuf::encode(&theirs).to_vec());
    }

    #[test]
    fn default_resource_and_empty_batch() {
        let none = encode_spans(&[], &EncodedResource::default());
        let decoded: ExportTraceServiceRequest = protobuf::decode(&none).unwrap();
        assert_eq!(decoded.resource_spans.len(), 1);
        assert_eq!(decoded.resource_spans[0].resource, Some(Default::default()));
        let theirs = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                vec![],
                &ResourceAttributesWithSchema::default(),
            ),
        };
        assert_eq!(none, protobuf::encode(&theirs).to_vec());
    }

    #[test]
    fn long_messages_get_multi_byte_lengths() {
        for len in [0, 1, 127, 128, 16_383, 16_384, 2_097_152] {
            let mut buf = vec![0xaa];
            message(&mut buf, 9, |b| b.extend(std::iter::repeat_n(7u8, len)));
            let mut expected = vec![0xaa];
            bytes(&mut expected, 9, &vec![7u8; len]);
            assert_eq!(buf, expected, "{len}");
        }
    }

    #[derive(Debug, Default)]
    struct Capture(Mutex<Vec<(SdkLogRecord, InstrumentationScope)>>);

    impl LogProcessor for Capture {
        fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
            self.0.lock().unwrap().push((record.clone(), scope.clone()));
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    #[test]
    fn logs_match_the_official_transform() {
        let capture = std::sync::Arc::new(Capture::default());
        #[derive(Debug)]
        struct Shared(std::sync::Arc<Capture>);
        impl LogProcessor for Shared {
            fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
                self.0.emit(record, scope);
            }
            fn force_flush(&self) -> OTelSdkResult {
                Ok(())
            }
            fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
                Ok(())
            }
        }
        let provider = SdkLoggerProvider::builder()
            .with_log_processor(Shared(capture.clone()))
            .build();
        let plain = provider.logger_with_scope(scope("a-logs", false));
        let rich = provider.logger_with_scope(scope("b-logs", true));
        let at = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_001);
        for i in 0..9_i64 {
            let logger = if i % 3 == 0 { &rich } else { &plain };
            let mut record = logger.create_log_record();
            if i % 2 == 0 {
                record.set_timestamp(at);
            }
            record.set_observed_timestamp(at + Duration::from_secs(1));
            if i != 4 {
                record.set_severity_number(
                    [
                        Severity::Trace,
                        Severity::Info,
                        Severity::Error4,
                        Severity::Fatal,
                    ][(i % 4) as usize],
                );
                record.set_severity_text("SEVERE");
            }
            record.set_body(match i % 5 {
                0 => LogValue::from("body text"),
                1 => LogValue::Int(i),
                2 => LogValue::Bytes(Box::new(vec![0, 1, 255])),
                3 => LogValue::ListAny(Box::new(vec![
                    LogValue::Double(1.5),
                    LogValue::Boolean(true),
                ])),
                _ => LogValue::Map(Box::new(HashMap::from([
                    ("k".into(), LogValue::from("v")),
                    ("n".into(), LogValue::ListAny(Box::default())),
                ]))),
            });
            record.add_attribute("attempt", i);
            record.add_attribute("tag", "x".repeat(i as usize * 40));
            if i % 3 == 1 {
                record.set_target("my_app::handlers");
            }
            if i % 2 == 1 {
                record.set_event_name("order.placed");
                record.set_trace_context(
                    TraceId::from(99),
                    SpanId::from(i as u64 + 1),
                    Some(TraceFlags::SAMPLED),
                );
            }
            logger.emit(record);
        }
        let records = capture.0.lock().unwrap().clone();
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            records.iter().map(|(r, s)| (r, s)).collect();
        let batch = LogBatch::new(&refs);
        let resource = resource();
        let ours = encode_logs(&batch, &EncodedResource::new(&resource));
        let decoded: ExportLogsServiceRequest = protobuf::decode(&ours).unwrap();
        let mut theirs = ExportLogsServiceRequest {
            resource_logs: group_logs_by_resource_and_scope(
                &batch,
                &ResourceAttributesWithSchema::from(&resource),
            ),
        };
        let mut ours_sorted = decoded.clone();
        for request in [&mut theirs, &mut ours_sorted] {
            for rl in &mut request.resource_logs {
                rl.scope_logs.sort_by_key(|s| {
                    let scope = s.scope.clone().unwrap_or_default();
                    (scope.name, scope.version)
                });
            }
        }
        assert_eq!(ours_sorted, theirs);
        assert_eq!(
            decoded.resource_logs[0].scope_logs.len(),
            3,
            "target splits a scope"
        );
    }
}
