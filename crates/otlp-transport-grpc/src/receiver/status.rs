//! gRPC answers that do not come from a sink: refusals as statuses, protocol errors,
//! and the remapping of tonic's size-limit status.

use http::{HeaderValue, StatusCode};
use otlp_core::{GrpcCode, Refusal};
use tonic::body::Body;

/// What the receiver answers every call with.
pub(crate) type GrpcResponse = http::Response<Body>;

/// The gRPC status for a refusal: its code, its message, and its `google.rpc.Status`
/// (with `RetryInfo` for the retryable ones) in `grpc-status-details-bin`.
pub(crate) fn refusal_status(refusal: &Refusal) -> tonic::Status {
    tonic::Status::with_details(
        tonic::Code::from_i32(refusal.grpc_code() as i32),
        refusal.to_string(),
        refusal.grpc_status_details(),
    )
}

/// A trailers-only answer (HTTP 200, the status in the headers).
pub(crate) fn status_response(status: tonic::Status) -> GrpcResponse {
    status.into_http()
}

/// An answer to a request that is not gRPC: an HTTP error status, so plain HTTP clients
/// do not read the answer as success, plus the gRPC status headers for gRPC clients
/// (the gRPC spec asks for 415 on a content type that is not `application/grpc`).
pub(crate) fn http_error(http: StatusCode, status: tonic::Status) -> GrpcResponse {
    let mut response = status_response(status);
    *response.status_mut() = http;
    if http == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// The gRPC code an answer carries: a trailers-only answer has it in its headers (tonic
/// also keeps the `Status` in the extensions); an answer with a body ends with `OK`,
/// since every failure happens before the response message is written.
pub(crate) fn code_of(response: &GrpcResponse) -> GrpcCode {
    if let Some(status) = response.extensions().get::<tonic::Status>() {
        return GrpcCode::from_i32(status.code() as i32);
    }
    match response.headers().get("grpc-status") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i32>().ok())
            .map_or(GrpcCode::Unknown, GrpcCode::from_i32),
        None => GrpcCode::Ok,
    }
}

/// tonic answers a message over the size limit with `OUT_OF_RANGE`, which OTLP lists
/// as retryable: a client would send the same oversized message forever. Answer
/// `RESOURCE_EXHAUSTED` without `RetryInfo` instead, which OTLP clients do not retry.
/// Only tonic's size check produces `OUT_OF_RANGE` on this path (a sink's refusal has
/// no such code), so every `OUT_OF_RANGE` answer is remapped.
pub(crate) fn remap_out_of_range(response: GrpcResponse, limit: usize) -> GrpcResponse {
    if code_of(&response) != GrpcCode::OutOfRange {
        return response;
    }
    let detail = response
        .extensions()
        .get::<tonic::Status>()
        .map(|s| s.message().to_owned())
        .unwrap_or_default();
    status_response(refusal_status(&Refusal::TooLarge(format!(
        "{detail}; this receiver takes messages of at most {limit} bytes (compressed and \
         after decompression): send smaller batches"
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refusals_keep_their_retry_info() {
        let refusal = Refusal::Unavailable {
            reason: "queue full".into(),
            retry_after: Duration::from_millis(1500),
        };
        let response = status_response(refusal_status(&refusal));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(code_of(&response), GrpcCode::Unavailable);
        let status = tonic::Status::from_header_map(response.headers()).unwrap();
        let err = otlp_core::ExportError::from_grpc(
            status.code() as i32,
            status.message(),
            status.details(),
        );
        assert!(err.is_retryable());
        assert_eq!(err.retry_delay(), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn out_of_range_becomes_final_resource_exhausted() {
        let response = status_response(tonic::Status::out_of_range("found 10 bytes"));
        let response = remap_out_of_range(response, 5);
        assert_eq!(code_of(&response), GrpcCode::ResourceExhausted);
        let status = tonic::Status::from_header_map(response.headers()).unwrap();
        assert!(status.message().contains("found 10 bytes"), "{status:?}");
        let err = otlp_core::ExportError::from_grpc(
            status.code() as i32,
            status.message(),
            status.details(),
        );
        assert!(!err.is_retryable(), "{err}");

        let ok = http::Response::new(Body::empty());
        assert_eq!(code_of(&remap_out_of_range(ok, 5)), GrpcCode::Ok);
    }
}
