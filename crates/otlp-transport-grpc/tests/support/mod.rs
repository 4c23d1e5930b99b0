//! Shared pieces of the gRPC crate's integration tests.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

#[path = "../../../otlp-transport-http/tests/support/certs.rs"]
pub mod certs;
pub mod python;
pub mod tonic_server;
