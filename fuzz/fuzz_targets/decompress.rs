//! Arbitrary bodies through bounded decompression.
//!
//! The first byte picks the coding (0 gzip, 1 zstd, 2 deflate, 3 identity; taken modulo
//! 4), the rest is the body. `compression::decompress` must never panic and never return
//! more than the limit; what it returns must come back unchanged after `compress`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otlp_core::compression::{self, Compression};

/// Small enough that libFuzzer runs fast, large enough for real multi-block streams.
const LIMIT: usize = 1 << 20;

const CODINGS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Zstd,
    Compression::Deflate,
    Compression::None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let coding = CODINGS[usize::from(selector) % CODINGS.len()];
    let Ok(output) = compression::decompress(coding, body, LIMIT) else {
        return;
    };
    assert!(
        output.len() <= LIMIT,
        "{coding:?} produced {} bytes, beyond the {LIMIT} byte limit",
        output.len()
    );
    let recompressed = compression::compress(coding, &output);
    let again = compression::decompress(coding, &recompressed, LIMIT).unwrap_or_else(|e| {
        panic!("{coding:?}: our own compressed output does not decompress: {e}")
    });
    assert_eq!(
        again, output,
        "{coding:?}: compress/decompress round trip changed the data"
    );
});
