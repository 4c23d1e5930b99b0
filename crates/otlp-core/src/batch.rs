//! Batching (placeholder while being written).
#![allow(missing_docs)]
#[derive(Debug)]
pub struct BatchConfig;
#[derive(Debug)]
pub struct Batcher;
