//! Property tests of the OTLP/JSON codec: arbitrary requests survive proto -> JSON ->
//! proto unchanged (also with snake_case keys and unknown fields mixed in), and no input
//! of any shape makes `from_slice` panic for any of the six messages.
//!
//! The round trips compare doubles bit for bit, which needs `serde_json`'s
//! `float_roundtrip` feature (its default float parser can be one ulp off).

use otlp_core::codec::json::{self, JsonMessage};
use otlp_core::proto::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use otlp_core::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use otlp_core::proto::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use proptest::prelude::*;
use serde_json::Value;

// The strategies of `otlp_core::testing`, compiled in directly: a crate cannot
// dev-depend on itself with its `testing` feature on.
#[path = "../src/testing.rs"]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod testing;

use testing::{arb_logs_request, arb_metrics_request, arb_trace_request};

/// proto -> JSON -> proto gives the same protobuf bytes (compared as bytes: NaN != NaN).
fn round_trip<T: JsonMessage + prost::Message + Default>(message: &T) -> Result<(), TestCaseError> {
    let text = json::to_vec(message);
    let back: T = json::from_slice(&text)
        .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&text))))?;
    prop_assert_eq!(
        back.encode_to_vec(),
        message.encode_to_vec(),
        "JSON was {}",
        String::from_utf8_lossy(&text)
    );
    Ok(())
}

/// Rename every key to its proto (snake_case) name and add unknown fields everywhere:
/// what an older or newer peer might send.
fn as_foreign_peer(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (key, value) in map {
                let mut snake = String::new();
                for c in key.chars() {
                    if c.is_ascii_uppercase() {
                        snake.push('_');
                        snake.push(c.to_ascii_lowercase());
                    } else {
                        snake.push(c);
                    }
                }
                out.insert(snake, as_foreign_peer(value));
            }
            out.insert(
                "fieldFromTheFuture".into(),
                serde_json::json!({"x": [1, {"y": null}]}),
            );
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(as_foreign_peer).collect()),
        other => other,
    }
}

fn foreign_round_trip<T: JsonMessage + prost::Message + Default>(
    message: &T,
) -> Result<(), TestCaseError> {
    let value: Value = serde_json::from_slice(&json::to_vec(message))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let text = serde_json::to_vec(&as_foreign_peer(value))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: T = json::from_slice(&text)
        .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&text))))?;
    prop_assert_eq!(back.encode_to_vec(), message.encode_to_vec());
    Ok(())
}

/// Decode `bytes` as each of the six messages; only `Ok` or `Err` may come out.
fn decode_all(bytes: &[u8]) {
    let _ = json::from_slice::<ExportTraceServiceRequest>(bytes);
    let _ = json::from_slice::<ExportMetricsServiceRequest>(bytes);
    let _ = json::from_slice::<ExportLogsServiceRequest>(bytes);
    let _ = json::from_slice::<ExportTraceServiceResponse>(bytes);
    let _ = json::from_slice::<ExportMetricsServiceResponse>(bytes);
    let _ = json::from_slice::<ExportLogsServiceResponse>(bytes);
}

/// Fragments of OTLP/JSON: structure, field names of every message, and the values the
/// codec treats specially (ids, 64-bit strings, enum names, special doubles, base64).
fn json_token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        " ",
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1.5e308",
        "1e999",
        "18446744073709551616",
        "-9223372036854775809",
        "\"\"",
        "\"NaN\"",
        "\"Infinity\"",
        "\"-Infinity\"",
        "\"5b8efff798038103d269b633813fc60c\"",
        "\"eee19b7ec3c1b174\"",
        "\"zz\"",
        "\"SPAN_KIND_SERVER\"",
        "\"SEVERITY_NUMBER_INFO\"",
        "\"AGGREGATION_TEMPORALITY_DELTA\"",
        "\"+/+/AAE=\"",
        "\"-_\"",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"resourceSpans\"",
        "\"resourceMetrics\"",
        "\"resourceLogs\"",
        "\"resource\"",
        "\"scopeSpans\"",
        "\"scopeMetrics\"",
        "\"scopeLogs\"",
        "\"scope\"",
        "\"spans\"",
        "\"metrics\"",
        "\"logRecords\"",
        "\"attributes\"",
        "\"key\"",
        "\"value\"",
        "\"stringValue\"",
        "\"intValue\"",
        "\"doubleValue\"",
        "\"bytesValue\"",
        "\"arrayValue\"",
        "\"kvlistValue\"",
        "\"values\"",
        "\"traceId\"",
        "\"spanId\"",
        "\"parentSpanId\"",
        "\"kind\"",
        "\"status\"",
        "\"code\"",
        "\"links\"",
        "\"events\"",
        "\"gauge\"",
        "\"sum\"",
        "\"histogram\"",
        "\"exponentialHistogram\"",
        "\"summary\"",
        "\"dataPoints\"",
        "\"asInt\"",
        "\"asDouble\"",
        "\"bucketCounts\"",
        "\"explicitBounds\"",
        "\"positive\"",
        "\"negative\"",
        "\"quantileValues\"",
        "\"exemplars\"",
        "\"body\"",
        "\"severityNumber\"",
        "\"timeUnixNano\"",
        "\"partialSuccess\"",
        "\"rejectedSpans\"",
        "\"rejectedDataPoints\"",
        "\"rejectedLogRecords\"",
        "\"errorMessage\"",
        "\"entityRefs\"",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn trace_requests_round_trip(request in arb_trace_request()) {
        round_trip(&request)?;
    }

    #[test]
    fn metrics_requests_round_trip(request in arb_metrics_request()) {
        round_trip(&request)?;
    }

    #[test]
    fn logs_requests_round_trip(request in arb_logs_request()) {
        round_trip(&request)?;
    }

    #[test]
    fn foreign_peer_documents_decode_the_same(
        trace in arb_trace_request(),
        metrics in arb_metrics_request(),
        logs in arb_logs_request(),
    ) {
        foreign_round_trip(&trace)?;
        foreign_round_trip(&metrics)?;
        foreign_round_trip(&logs)?;
    }

    #[test]
    fn responses_round_trip(rejected in any::<i64>(), message in ".{0,20}", present in any::<bool>()) {
        use otlp_core::proto::collector::logs::v1::ExportLogsPartialSuccess;
        use otlp_core::proto::collector::metrics::v1::ExportMetricsPartialSuccess;
        use otlp_core::proto::collector::trace::v1::ExportTracePartialSuccess;
        round_trip(&ExportTraceServiceResponse {
            partial_success: present.then(|| ExportTracePartialSuccess { rejected_spans: rejected, error_message: message.clone() }),
        })?;
        round_trip(&ExportMetricsServiceResponse {
            partial_success: present.then(|| ExportMetricsPartialSuccess { rejected_data_points: rejected, error_message: message.clone() }),
        })?;
        round_trip(&ExportLogsServiceResponse {
            partial_success: present.then(|| ExportLogsPartialSuccess { rejected_log_records: rejected, error_message: message.clone() }),
        })?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn json_like_token_soup_never_panics(tokens in prop::collection::vec(json_token(), 0..200)) {
        decode_all(tokens.concat().as_bytes());
    }

    #[test]
    fn mutated_valid_documents_never_panic(
        request in arb_logs_request(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = json::to_vec(&request);
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at.index(bytes.len());
            match op {
                0 => bytes[at] = byte,
                1 => { bytes.remove(at); }
                _ => bytes.insert(at, byte),
            }
        }
        decode_all(&bytes);
    }

    #[test]
    fn truncated_documents_are_errors(request in arb_trace_request(), cut in any::<prop::sample::Index>()) {
        let bytes = json::to_vec(&request);
        let cut = cut.index(bytes.len());
        // Any strict prefix of an object is incomplete JSON.
        prop_assert!(json::from_slice::<ExportTraceServiceRequest>(&bytes[..cut]).is_err());
    }
}
