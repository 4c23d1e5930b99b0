//! Arbitrary bytes as each of the three OTLP requests, through prost and through the
//! framing walk in `otlp_core::wire`.
//!
//! Neither may panic. Where prost accepts the bytes, the walk must accept them too and
//! count the same items as `OtlpRequest::item_count`: the pipeline counts items with
//! the walk and must agree with what a full decode would find.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otlp_core::codec::protobuf;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::{OtlpRequest, wire};

fn check<T: OtlpRequest>(data: &[u8]) {
    let walked = wire::count_items(T::SIGNAL, data);
    if let Ok(request) = protobuf::decode::<T>(data) {
        match walked {
            Ok(count) => assert_eq!(
                count,
                request.item_count(),
                "wire::count_items disagrees with a full decode for {}",
                T::SIGNAL
            ),
            Err(e) => panic!(
                "prost decodes these bytes as {} but wire::count_items fails: {e}",
                T::SIGNAL
            ),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check::<ExportTraceServiceRequest>(data);
    check::<ExportMetricsServiceRequest>(data);
    check::<ExportLogsServiceRequest>(data);
});
