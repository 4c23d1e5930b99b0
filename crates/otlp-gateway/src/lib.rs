//! # otlp-gateway
//!
//! The telemetry gateway service behind `otlp gateway`: receive OTLP on gRPC and HTTP, protect, degrade, batch, queue durably and export to one or more upstreams.
//!
//! **Status: not built yet.** This crate is reserved in the workspace so that the
//! dependency graph of the project design exists from the start; it exports nothing
//! yet, on purpose, so nobody builds on a pretend implementation. The capability is
//! tracked as issue 7 of the project.
//!
//! Planned modules: `config`, `pipeline`, `admin`, `run`.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
