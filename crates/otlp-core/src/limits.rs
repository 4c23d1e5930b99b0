//! Limits (placeholder while being written).
#![allow(missing_docs)]
#[derive(Debug)]
pub struct Limits;
