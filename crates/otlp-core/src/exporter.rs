//! Exporter (placeholder while being written).
#![allow(missing_docs)]
pub trait Exporter {}
