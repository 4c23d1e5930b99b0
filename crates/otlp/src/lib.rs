//! otlp facade (being written).
#![forbid(unsafe_code)]
#[cfg(feature = "core")]
pub use otlp_core as core;
