//! Errors (placeholder while being written).
#![allow(missing_docs)]
#[derive(Debug)]
pub struct ExportError;
#[derive(Debug)]
pub struct Refusal;
#[derive(Debug)]
pub struct GrpcCode;
