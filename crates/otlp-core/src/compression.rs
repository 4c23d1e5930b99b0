//! Compression (placeholder while being written).
