//! # otlp-degradation
//!
//! Adaptive degradation for telemetry pipelines: a level controller driven by load triggers (CPU, memory, queue fill, latency, errors, scheduler lag), consistent trace-id sampling, attribute stripping, a memory limiter and a canary traffic split.
//!
//! **Status: not built yet.** This crate is reserved in the workspace so that the
//! dependency graph of the project design exists from the start; it exports nothing
//! yet, on purpose, so nobody builds on a pretend implementation. The capability is
//! tracked as issue 6 of the project.
//!
//! Planned modules: `level`, `controller`, `trigger`, `policy`, `sampler`, `memory_limiter`, `canary`.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
