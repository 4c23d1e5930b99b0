//! # otlp-resilience
//!
//! Resilience middleware as `tower::Layer`s: circuit breaker, rate limiter (GCRA via `governor`), retry with backoff, jitter and a retry budget, timeout, fixed and adaptive concurrency limits.
//!
//! **Status: not built yet.** This crate is reserved in the workspace so that the
//! dependency graph of the project design exists from the start; it exports nothing
//! yet, on purpose, so nobody builds on a pretend implementation. The capability is
//! tracked as issue 3 of the project.
//!
//! Planned modules: `breaker`, `rate_limit`, `retry`, `timeout`, `concurrency`, `stack`.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
