//! Decompression bombs for the tests: valid streams of zeros, assembled cheaply.
//!
//! Compressing 1 GiB of zeros takes tens of seconds in a debug build. Instead, deflate
//! output for 1 MiB of zeros is sync-flushed into its own block and repeated (a block of
//! zeros decodes the same wherever it sits once the window holds zeros), and zstd frames
//! are written by hand as 128 KiB RLE blocks. Checksums are computed, so every stream
//! is valid to its end.
#![allow(dead_code)] // each test file uses a different subset

use flate2::{Crc, FlushCompress, Status};
use otlp_core::compression::Compression;

pub(crate) const MIB: usize = 1 << 20;
pub(crate) const GIB: usize = 1 << 30;

/// Raw deflate (RFC 1951) of `total` zeros, `total` a multiple of 1 MiB.
pub(crate) fn raw_deflate_zeros(total: usize) -> Vec<u8> {
    assert!(total >= MIB && total.is_multiple_of(MIB));
    let zeros = vec![0u8; MIB];
    let mut compress = flate2::Compress::new(flate2::Compression::best(), false);
    let first = deflate_run(&mut compress, &zeros, FlushCompress::Sync);
    // After the first block the window is all zeros, so a block of zeros decodes the same
    // wherever it sits: repeating it yields a valid stream of any length.
    let middle = deflate_run(&mut compress, &zeros, FlushCompress::Sync);
    let last = deflate_run(&mut compress, &[], FlushCompress::Finish);
    let mut out = first;
    for _ in 1..total / MIB {
        out.extend_from_slice(&middle);
    }
    out.extend_from_slice(&last);
    out
}

fn deflate_run(compress: &mut flate2::Compress, mut input: &[u8], flush: FlushCompress) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        out.reserve(64 * 1024);
        let before = compress.total_in();
        let status = compress.compress_vec(input, &mut out, flush).unwrap();
        let consumed = usize::try_from(compress.total_in() - before).unwrap();
        input = &input[consumed..];
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // A flush is complete once it returns without filling the output.
            _ => input.is_empty() && out.len() < out.capacity(),
        };
        if done {
            return out;
        }
    }
}

/// gzip (RFC 1952) around `raw`, the raw deflate of `total` zeros, with a correct
/// CRC-32 and size trailer.
pub(crate) fn gzip_zeros(raw: &[u8], total: usize) -> Vec<u8> {
    let mut chunk_crc = Crc::new();
    chunk_crc.update(&vec![0u8; MIB]);
    let mut crc = Crc::new();
    for _ in 0..total / MIB {
        crc.combine(&chunk_crc);
    }
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff];
    out.extend_from_slice(raw);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&crc.amount().to_le_bytes());
    out
}

/// zlib (RFC 1950) around `raw`, the raw deflate of `total` zeros, with a correct
/// Adler-32 trailer.
pub(crate) fn zlib_zeros(raw: &[u8], total: usize) -> Vec<u8> {
    // Adler-32 of n zeros: A stays 1, B adds A once per byte.
    let b = u32::try_from(total % 65521).unwrap();
    let mut out = vec![0x78, 0xda];
    out.extend_from_slice(raw);
    out.extend_from_slice(&((b << 16) | 1).to_be_bytes());
    out
}

/// A zstd frame (RFC 8878) of `total` zeros as 128 KiB RLE blocks, 4 bytes each, with
/// a window of 2^`window_log` bytes; with `declare`, the frame header states the size.
pub(crate) fn zstd_zeros(total: usize, window_log: u8, declare: bool) -> Vec<u8> {
    const BLOCK: usize = 128 * 1024;
    assert!(total > 0 && total.is_multiple_of(BLOCK) && (17..=31).contains(&window_log));
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd];
    let window = (window_log - 10) << 3;
    if declare {
        // Frame_Content_Size_flag 2: a 4-byte size follows the window descriptor.
        out.extend_from_slice(&[0x80, window]);
        out.extend_from_slice(&u32::try_from(total).unwrap().to_le_bytes());
    } else {
        out.extend_from_slice(&[0x00, window]);
    }
    let blocks = total / BLOCK;
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = last | (1 << 1) | (u32::try_from(BLOCK).unwrap() << 3);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.push(0);
    }
    out
}

/// Every bomb, by name: (codec, body).
pub(crate) fn bombs(total: usize) -> Vec<(&'static str, Compression, Vec<u8>)> {
    let raw = raw_deflate_zeros(total);
    vec![
        ("gzip", Compression::Gzip, gzip_zeros(&raw, total)),
        (
            "deflate (zlib)",
            Compression::Deflate,
            zlib_zeros(&raw, total),
        ),
        ("deflate (raw)", Compression::Deflate, raw),
        ("zstd", Compression::Zstd, zstd_zeros(total, 17, false)),
        // The largest window accepted: zstd reserves it, but only touches what it outputs.
        (
            "zstd (128 MiB window)",
            Compression::Zstd,
            zstd_zeros(total, 27, false),
        ),
        (
            "zstd (declared size)",
            Compression::Zstd,
            zstd_zeros(total, 17, true),
        ),
    ]
}
