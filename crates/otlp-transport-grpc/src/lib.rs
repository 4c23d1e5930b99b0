//! # otlp-transport-grpc
//!
//! The OTLP/gRPC exporter and receiver (tonic), with a pass-through codec that forwards encoded bytes without re-encoding.
//!
//! **Status: not built yet.** This crate is reserved in the workspace so that the
//! dependency graph of the project design exists from the start; it exports nothing
//! yet, on purpose, so nobody builds on a pretend implementation. The capability is
//! tracked as issue 5 of the project.
//!
//! Planned modules: `exporter`, `receiver`, `codec`, `sdk`.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
