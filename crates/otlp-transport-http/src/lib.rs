//! # otlp-transport-http
//!
//! The OTLP/HTTP exporter (reqwest + rustls) and receiver (hyper 1 + tower), interoperable with the official OpenTelemetry SDKs.
//!
//! **Status: not built yet.** This crate is reserved in the workspace so that the
//! dependency graph of the project design exists from the start; it exports nothing
//! yet, on purpose, so nobody builds on a pretend implementation. The capability is
//! tracked as issue 4 of the project.
//!
//! Planned modules: `exporter`, `receiver`, `sdk`.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
