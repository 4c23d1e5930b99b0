//! The OTLP/JSON shape of every message the six collector messages contain, field by
//! field, from `opentelemetry-proto` 0.33 (`opentelemetry/proto/*/v1/*.proto`).
//!
//! Each line reads `rust_field: Codec = "jsonName" | "proto_name"`. The codec says how the
//! value is written (see `scalar.rs`): `TraceId`/`SpanId` hex, `U64`/`I64` decimal
//! strings, `Enum<_>` integers, `F64` numbers with special strings, `Base64` for other
//! bytes, `OptMsg` for singular messages, `Rep` for repeated fields.

use crate::proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use crate::proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use crate::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use crate::proto::common::v1::any_value::Value as AnyValueValue;
use crate::proto::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use crate::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use crate::proto::metrics::v1::exemplar::Value as ExemplarValue;
use crate::proto::metrics::v1::exponential_histogram_data_point::Buckets;
use crate::proto::metrics::v1::metric::Data as MetricData;
use crate::proto::metrics::v1::number_data_point::Value as NumberValue;
use crate::proto::metrics::v1::summary_data_point::ValueAtQuantile;
use crate::proto::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint,
};
use crate::proto::resource::v1::Resource;
use crate::proto::trace::v1::span::{Event, Link, SpanKind};
use crate::proto::trace::v1::status::StatusCode;
use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::message::{Msg, OptMsg, schema};
use super::scalar::{
    Base64, Bool, Enum, EnumNames, F64, I32, I64, Nullable, Rep, SpanId, Str, TraceId, U32, U64,
};

macro_rules! enum_names {
    ($($ty:ty => $name:literal),* $(,)?) => {$(
        impl EnumNames for $ty {
            const NAME: &'static str = $name;
            fn value_of(name: &str) -> Option<i32> {
                <$ty>::from_str_name(name).map(|v| v as i32)
            }
        }
    )*};
}

enum_names!(
    SpanKind => "SpanKind",
    StatusCode => "StatusCode",
    SeverityNumber => "SeverityNumber",
    AggregationTemporality => "AggregationTemporality",
);

type Attributes = Rep<Msg<KeyValue>>;

// ---- collector requests and responses ----

schema!(ExportTraceServiceRequest, "ExportTraceServiceRequest" {
    resource_spans: Rep<Msg<ResourceSpans>> = "resourceSpans" | "resource_spans",
});
schema!(ExportMetricsServiceRequest, "ExportMetricsServiceRequest" {
    resource_metrics: Rep<Msg<ResourceMetrics>> = "resourceMetrics" | "resource_metrics",
});
schema!(ExportLogsServiceRequest, "ExportLogsServiceRequest" {
    resource_logs: Rep<Msg<ResourceLogs>> = "resourceLogs" | "resource_logs",
});
schema!(ExportTraceServiceResponse, "ExportTraceServiceResponse" {
    partial_success: OptMsg<ExportTracePartialSuccess> = "partialSuccess" | "partial_success",
});
schema!(ExportMetricsServiceResponse, "ExportMetricsServiceResponse" {
    partial_success: OptMsg<ExportMetricsPartialSuccess> = "partialSuccess" | "partial_success",
});
schema!(ExportLogsServiceResponse, "ExportLogsServiceResponse" {
    partial_success: OptMsg<ExportLogsPartialSuccess> = "partialSuccess" | "partial_success",
});
schema!(ExportTracePartialSuccess, "ExportTracePartialSuccess" {
    rejected_spans: I64 = "rejectedSpans" | "rejected_spans",
    error_message: Str = "errorMessage" | "error_message",
});
schema!(ExportMetricsPartialSuccess, "ExportMetricsPartialSuccess" {
    rejected_data_points: I64 = "rejectedDataPoints" | "rejected_data_points",
    error_message: Str = "errorMessage" | "error_message",
});
schema!(ExportLogsPartialSuccess, "ExportLogsPartialSuccess" {
    rejected_log_records: I64 = "rejectedLogRecords" | "rejected_log_records",
    error_message: Str = "errorMessage" | "error_message",
});

// ---- common, resource ----

schema!(AnyValue, "AnyValue" {}
    oneof value: AnyValueValue {
        StringValue(Str) = "stringValue" | "string_value",
        BoolValue(Bool) = "boolValue" | "bool_value",
        IntValue(I64) = "intValue" | "int_value",
        DoubleValue(F64) = "doubleValue" | "double_value",
        ArrayValue(Msg<ArrayValue>) = "arrayValue" | "array_value",
        KvlistValue(Msg<KeyValueList>) = "kvlistValue" | "kvlist_value",
        BytesValue(Base64) = "bytesValue" | "bytes_value",
        StringValueStrindex(I32) = "stringValueStrindex" | "string_value_strindex",
    }
);
schema!(ArrayValue, "ArrayValue" {
    values: Rep<Msg<AnyValue>> = "values",
}
    array values(Msg<AnyValue>)
);
schema!(KeyValueList, "KeyValueList" {
    values: Rep<Msg<KeyValue>> = "values",
}
    array values(Msg<KeyValue>)
);
schema!(KeyValue, "KeyValue" {
    key: Str = "key",
    value: OptMsg<AnyValue> = "value",
    key_strindex: I32 = "keyStrindex" | "key_strindex",
});
schema!(InstrumentationScope, "InstrumentationScope" {
    name: Str = "name",
    version: Str = "version",
    attributes: Attributes = "attributes",
    dropped_attributes_count: U32 = "droppedAttributesCount" | "dropped_attributes_count",
});
schema!(EntityRef, "EntityRef" {
    schema_url: Str = "schemaUrl" | "schema_url",
    r#type: Str = "type",
    id_keys: Rep<Str> = "idKeys" | "id_keys",
    description_keys: Rep<Str> = "descriptionKeys" | "description_keys",
});
schema!(Resource, "Resource" {
    attributes: Attributes = "attributes",
    dropped_attributes_count: U32 = "droppedAttributesCount" | "dropped_attributes_count",
    entity_refs: Rep<Msg<EntityRef>> = "entityRefs" | "entity_refs",
});

// ---- traces ----

schema!(ResourceSpans, "ResourceSpans" {
    resource: OptMsg<Resource> = "resource",
    scope_spans: Rep<Msg<ScopeSpans>> = "scopeSpans" | "scope_spans",
    schema_url: Str = "schemaUrl" | "schema_url",
});
schema!(ScopeSpans, "ScopeSpans" {
    scope: OptMsg<InstrumentationScope> = "scope",
    spans: Rep<Msg<Span>> = "spans",
    schema_url: Str = "schemaUrl" | "schema_url",
});
schema!(Span, "Span" {
    trace_id: TraceId = "traceId" | "trace_id",
    span_id: SpanId = "spanId" | "span_id",
    trace_state: Str = "traceState" | "trace_state",
    parent_span_id: SpanId = "parentSpanId" | "parent_span_id",
    flags: U32 = "flags",
    name: Str = "name",
    kind: Enum<SpanKind> = "kind",
    start_time_unix_nano: U64 = "startTimeUnixNano" | "start_time_unix_nano",
    end_time_unix_nano: U64 = "endTimeUnixNano" | "end_time_unix_nano",
    attributes: Attributes = "attributes",
    dropped_attributes_count: U32 = "droppedAttributesCount" | "dropped_attributes_count",
    events: Rep<Msg<Event>> = "events",
    dropped_events_count: U32 = "droppedEventsCount" | "dropped_events_count",
    links: Rep<Msg<Link>> = "links",
    dropped_links_count: U32 = "droppedLinksCount" | "dropped_links_count",
    status: OptMsg<Status> = "status",
});
schema!(Event, "Span.Event" {
    time_unix_nano: U64 = "timeUnixNano" | "time_unix_nano",
    name: Str = "name",
    attributes: Attributes = "attributes",
    dropped_attributes_count: U32 = "droppedAttributesCount" | "dropped_attributes_count",
});
schema!(Link, "Span.Link" {
    trace_id: TraceId = "traceId" | "trace_id",
    span_id: SpanId = "spanId" | "span_id",
    trace_state: Str = "traceState" | "trace_state",
    attributes: Attributes = "attributes",
    dropped_attributes_count: U32 = "droppedAttributesCount" | "dropped_attributes_count",
    flags: U32 = "flags",
});
schema!(Status, "Status" {
    message: Str = "message",
    code: Enum<StatusCode> = "code",
});

// ---- logs ----

schema!(ResourceLogs, "ResourceLogs" {
    resource: OptMsg<Resource> = "resource",
    scope_logs: Rep<Msg<ScopeLogs>> = "scopeLogs" | "scope_logs",
    schema_url: Str = "schemaUrl" | "schema_url",
});
schema!(ScopeLogs, "ScopeLogs" {
    scope: OptMsg<InstrumentationScope> = "scope",
    log_records: Rep<Msg<LogRecord>> = "logRecords" | "log_records",
    schema_url: Str = "schemaUrl" | "schema_url",
});
schema!(LogRecord, "LogRecord" {
    time_unix_nano: U64 = "timeUnixNano" | "time_unix_nano",
    observed_time_unix_nano: U64 = "observedTimeUnixNano" | "observed_time_unix_nano",
    severity_number: Enum<SeverityNumber> = "severityNumber" | "severity_number",
    severity_text: Str = "severityText" | "severity_text",
    body: OptMsg<AnyValue> = "body",
    attributes: Attributes = "attributes",
    dropped_attributes_count: U32 = "droppedAttributesCount" | "dropped_attributes_count",
    flags: U32 = "flags",
    trace_id: TraceId = "traceId" | "trace_id",
    span_id: SpanId = "spanId" | "span_id",
    event_name: Str = "eventName" | "event_name",
});

// ---- metrics ----

schema!(ResourceMetrics, "ResourceMetrics" {
    resource: OptMsg<Resource> = "resource",
    scope_metrics: Rep<Msg<ScopeMetrics>> = "scopeMetrics" | "scope_metrics",
    schema_url: Str = "schemaUrl" | "schema_url",
});
schema!(ScopeMetrics, "ScopeMetrics" {
    scope: OptMsg<InstrumentationScope> = "scope",
    metrics: Rep<Msg<Metric>> = "metrics",
    schema_url: Str = "schemaUrl" | "schema_url",
});
schema!(Metric, "Metric" {
    name: Str = "name",
    description: Str = "description",
    unit: Str = "unit",
    metadata: Attributes = "metadata",
}
    oneof data: MetricData {
        Gauge(Msg<Gauge>) = "gauge",
        Sum(Msg<Sum>) = "sum",
        Histogram(Msg<Histogram>) = "histogram",
        ExponentialHistogram(Msg<ExponentialHistogram>) =
            "exponentialHistogram" | "exponential_histogram",
        Summary(Msg<Summary>) = "summary",
    }
);
schema!(Gauge, "Gauge" {
    data_points: Rep<Msg<NumberDataPoint>> = "dataPoints" | "data_points",
});
schema!(Sum, "Sum" {
    data_points: Rep<Msg<NumberDataPoint>> = "dataPoints" | "data_points",
    aggregation_temporality: Enum<AggregationTemporality> =
        "aggregationTemporality" | "aggregation_temporality",
    is_monotonic: Bool = "isMonotonic" | "is_monotonic",
});
schema!(Histogram, "Histogram" {
    data_points: Rep<Msg<HistogramDataPoint>> = "dataPoints" | "data_points",
    aggregation_temporality: Enum<AggregationTemporality> =
        "aggregationTemporality" | "aggregation_temporality",
});
schema!(ExponentialHistogram, "ExponentialHistogram" {
    data_points: Rep<Msg<ExponentialHistogramDataPoint>> = "dataPoints" | "data_points",
    aggregation_temporality: Enum<AggregationTemporality> =
        "aggregationTemporality" | "aggregation_temporality",
});
schema!(Summary, "Summary" {
    data_points: Rep<Msg<SummaryDataPoint>> = "dataPoints" | "data_points",
});
schema!(NumberDataPoint, "NumberDataPoint" {
    attributes: Attributes = "attributes",
    start_time_unix_nano: U64 = "startTimeUnixNano" | "start_time_unix_nano",
    time_unix_nano: U64 = "timeUnixNano" | "time_unix_nano",
    exemplars: Rep<Msg<Exemplar>> = "exemplars",
    flags: U32 = "flags",
}
    oneof value: NumberValue {
        AsDouble(F64) = "asDouble" | "as_double",
        AsInt(I64) = "asInt" | "as_int",
    }
);
schema!(HistogramDataPoint, "HistogramDataPoint" {
    attributes: Attributes = "attributes",
    start_time_unix_nano: U64 = "startTimeUnixNano" | "start_time_unix_nano",
    time_unix_nano: U64 = "timeUnixNano" | "time_unix_nano",
    count: U64 = "count",
    sum: Nullable<F64> = "sum",
    bucket_counts: Rep<U64> = "bucketCounts" | "bucket_counts",
    explicit_bounds: Rep<F64> = "explicitBounds" | "explicit_bounds",
    exemplars: Rep<Msg<Exemplar>> = "exemplars",
    flags: U32 = "flags",
    min: Nullable<F64> = "min",
    max: Nullable<F64> = "max",
});
schema!(ExponentialHistogramDataPoint, "ExponentialHistogramDataPoint" {
    attributes: Attributes = "attributes",
    start_time_unix_nano: U64 = "startTimeUnixNano" | "start_time_unix_nano",
    time_unix_nano: U64 = "timeUnixNano" | "time_unix_nano",
    count: U64 = "count",
    sum: Nullable<F64> = "sum",
    scale: I32 = "scale",
    zero_count: U64 = "zeroCount" | "zero_count",
    positive: OptMsg<Buckets> = "positive",
    negative: OptMsg<Buckets> = "negative",
    flags: U32 = "flags",
    exemplars: Rep<Msg<Exemplar>> = "exemplars",
    min: Nullable<F64> = "min",
    max: Nullable<F64> = "max",
    zero_threshold: F64 = "zeroThreshold" | "zero_threshold",
});
schema!(Buckets, "ExponentialHistogramDataPoint.Buckets" {
    offset: I32 = "offset",
    bucket_counts: Rep<U64> = "bucketCounts" | "bucket_counts",
});
schema!(SummaryDataPoint, "SummaryDataPoint" {
    attributes: Attributes = "attributes",
    start_time_unix_nano: U64 = "startTimeUnixNano" | "start_time_unix_nano",
    time_unix_nano: U64 = "timeUnixNano" | "time_unix_nano",
    count: U64 = "count",
    sum: F64 = "sum",
    quantile_values: Rep<Msg<ValueAtQuantile>> = "quantileValues" | "quantile_values",
    flags: U32 = "flags",
});
schema!(ValueAtQuantile, "SummaryDataPoint.ValueAtQuantile" {
    quantile: F64 = "quantile",
    value: F64 = "value",
});
schema!(Exemplar, "Exemplar" {
    filtered_attributes: Attributes = "filteredAttributes" | "filtered_attributes",
    time_unix_nano: U64 = "timeUnixNano" | "time_unix_nano",
    span_id: SpanId = "spanId" | "span_id",
    trace_id: TraceId = "traceId" | "trace_id",
}
    oneof value: ExemplarValue {
        AsDouble(F64) = "asDouble" | "as_double",
        AsInt(I64) = "asInt" | "as_int",
    }
);
