//! Arbitrary bytes as OTLP/JSON for each of the three requests.
//!
//! Decoding may fail but never panic. What decodes must survive a round trip: encode it
//! with `json::to_vec`, decode that, and get the same message back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otlp_core::OtlpRequest;
use otlp_core::codec::{json, protobuf};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;

fn check<T: OtlpRequest + json::JsonMessage + std::fmt::Debug>(data: &[u8]) {
    let Ok(message) = json::from_slice::<T>(data) else {
        return;
    };
    let encoded = json::to_vec(&message);
    let again = match json::from_slice::<T>(&encoded) {
        Ok(again) => again,
        Err(e) => panic!(
            "{}: json::to_vec wrote OTLP/JSON that json::from_slice rejects: {e}\n{}",
            T::SIGNAL,
            String::from_utf8_lossy(&encoded)
        ),
    };
    // NaN (written as "NaN") is not equal to itself, so fall back to comparing the
    // protobuf encodings, which are bit-for-bit equal for the same message.
    if again != message {
        assert_eq!(
            protobuf::encode(&again),
            protobuf::encode(&message),
            "{}: the OTLP/JSON round trip changed the message\n{}",
            T::SIGNAL,
            String::from_utf8_lossy(&encoded)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check::<ExportTraceServiceRequest>(data);
    check::<ExportMetricsServiceRequest>(data);
    check::<ExportLogsServiceRequest>(data);
});
