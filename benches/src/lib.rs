//! Shared fixtures for the otlp-rust benchmarks.
