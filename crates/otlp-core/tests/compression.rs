//! Compression: round trips, decompression bombs, limits at the edge, corrupt input.
//!
//! The 1 GiB bombs are assembled from real encoder output instead of compressing 1 GiB
//! of zeros (which takes tens of seconds in a debug build): deflate blocks that repeat
//! zeros are position-independent, so one sync-flushed 1 MiB block is repeated, and zstd
//! RLE blocks are written by hand. Small versions are checked to decode in full, so the
//! large ones are valid streams too (see `support/bombs.rs`). Memory use is measured in
//! `compression_memory.rs`.

use std::io::{Read, Write};

use otlp_core::compression::{
    Compression, DecompressError, compress, decompress, decompress_bytes,
};
use proptest::prelude::*;
use tokio::time::Instant;

#[path = "support/bombs.rs"]
mod bombs;

use bombs::{GIB, MIB, bombs, zstd_zeros};
const CODECS: [Compression; 4] = Compression::ALL;

/// Compressible but not trivial: repeating records with a counter in each.
fn sample(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(b"span{name=GET /v1/traces,id=");
        out.extend_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
        out.extend_from_slice(b"}\n");
        i += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn round_trips_every_codec_at_0_1_and_1_mib() {
    for codec in CODECS {
        for len in [0, 1, MIB] {
            let data = sample(len);
            let body = compress(codec, &data);
            let back = decompress(codec, &body, len).unwrap();
            assert_eq!(back.len(), len, "{codec} {len}");
            assert!(back[..] == data[..], "{codec} {len}");
            let back = decompress_bytes(codec, body, len).unwrap();
            assert!(back[..] == data[..], "{codec} {len}");
        }
    }
}

#[test]
fn compression_actually_compresses() {
    let data = sample(MIB);
    for codec in [Compression::Gzip, Compression::Zstd, Compression::Deflate] {
        let body = compress(codec, &data);
        assert!(body.len() < data.len() / 2, "{codec}: {}", body.len());
    }
}

#[test]
fn other_implementations_read_our_output() {
    let data = sample(100_000);
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&compress(Compression::Gzip, &data)[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, data);
    out.clear();
    flate2::read::ZlibDecoder::new(&compress(Compression::Deflate, &data)[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, data);
    assert_eq!(
        zstd::decode_all(&compress(Compression::Zstd, &data)[..]).unwrap(),
        data
    );
}

#[test]
fn exactly_at_the_limit_passes_one_more_byte_fails() {
    for codec in CODECS {
        for len in [1, 1000, 8 * 1024, 8 * 1024 + 1, 100_000] {
            let data = sample(len);
            let body = compress(codec, &data);
            assert_eq!(
                decompress(codec, &body, len).unwrap().len(),
                len,
                "{codec} {len}"
            );
            let err = decompress(codec, &body, len - 1).unwrap_err();
            assert!(
                matches!(err, DecompressError::TooLarge { limit } if limit == len - 1),
                "{codec} {len}: {err}"
            );
        }
    }
}

#[test]
fn zstd_without_declared_size_is_also_held_to_the_limit() {
    let data = sample(100_000);
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.write_all(&data).unwrap();
    let body = encoder.finish().unwrap();
    assert!(
        matches!(zstd::zstd_safe::get_frame_content_size(&body), Ok(None)),
        "the streaming encoder should not declare a size"
    );
    assert_eq!(decompress(Compression::Zstd, &body, 100_000).unwrap(), data);
    assert!(matches!(
        decompress(Compression::Zstd, &body, 99_999),
        Err(DecompressError::TooLarge { limit: 99_999 })
    ));
}

#[test]
fn bomb_builders_make_valid_streams() {
    for (name, codec, body) in bombs(4 * MIB) {
        let out = decompress(codec, &body, 4 * MIB).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.len(), 4 * MIB, "{name}");
        assert!(out.iter().all(|&b| b == 0), "{name}");
    }
}

#[test]
fn one_gib_bombs_stop_at_a_1_mib_limit() {
    for (name, codec, body) in bombs(GIB) {
        let started = Instant::now();
        let result = decompress(codec, &body, MIB);
        let took = started.elapsed();
        assert!(
            matches!(result, Err(DecompressError::TooLarge { limit: MIB })),
            "{name}: {result:?}"
        );
        eprintln!(
            "{name}: {} byte body for 1 GiB refused at the 1 MiB limit in {took:?}",
            body.len()
        );
    }
}

#[test]
fn bombs_from_streaming_encoders_stop_at_the_limit() {
    // Real encoders fed from an endless reader, as a client would produce them. 64 MiB
    // keeps this quick in a debug build; the hand-made bombs above cover 1 GiB.
    let total = 64 * MIB as u64;
    let zeros = || std::io::repeat(0).take(total);

    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::copy(&mut zeros(), &mut gzip).unwrap();
    let gzip = gzip.finish().unwrap();

    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::copy(&mut zeros(), &mut zlib).unwrap();
    let zlib = zlib.finish().unwrap();

    let mut zstd = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    std::io::copy(&mut zeros(), &mut zstd).unwrap();
    let zstd = zstd.finish().unwrap();

    for (codec, body) in [
        (Compression::Gzip, gzip),
        (Compression::Deflate, zlib),
        (Compression::Zstd, zstd),
    ] {
        assert!(body.len() < MIB, "{codec}: {}", body.len());
        assert!(
            matches!(
                decompress(codec, &body, MIB),
                Err(DecompressError::TooLarge { limit: MIB })
            ),
            "{codec}"
        );
    }
}

#[test]
fn concatenated_gzip_members_and_zstd_frames_are_one_body() {
    for codec in [Compression::Gzip, Compression::Zstd] {
        let mut body = compress(codec, b"first ").to_vec();
        body.extend_from_slice(&compress(codec, b"second"));
        assert_eq!(&decompress(codec, &body, 100).unwrap()[..], b"first second");
        // The limit applies to the whole body, not to each member.
        assert!(matches!(
            decompress(codec, &body, 11),
            Err(DecompressError::TooLarge { limit: 11 })
        ));
    }
}

fn assert_corrupt(codec: Compression, body: &[u8], what: &str) {
    match decompress(codec, body, 10 * MIB) {
        Err(DecompressError::Corrupt { compression, .. }) => assert_eq!(compression, codec),
        Err(other) => panic!("{codec} {what}: expected Corrupt, got {other}"),
        Ok(output) => panic!(
            "{codec} {what}: expected Corrupt, got {} bytes",
            output.len()
        ),
    }
}

#[test]
fn corrupt_input_is_reported_never_panics() {
    let data = sample(50_000);
    for codec in [Compression::Gzip, Compression::Zstd, Compression::Deflate] {
        let body = compress(codec, &data).to_vec();
        assert_corrupt(codec, b"definitely not compressed", "garbage");
        assert_corrupt(codec, &[0xff; 64], "0xff bytes");
        assert_corrupt(codec, &body[..body.len() / 2], "truncated in the middle");
        assert_corrupt(codec, &body[..body.len() - 1], "missing the last byte");
        assert_corrupt(codec, &body[..1], "one byte");

        let mut trailing = body.clone();
        trailing.extend_from_slice(b"trailing garbage");
        assert_corrupt(codec, &trailing, "trailing garbage");

        // zstd detects this through the frame checksum `compress` adds.
        let mut flipped = body.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x55;
        assert_corrupt(codec, &flipped, "a flipped byte");
    }
}

#[test]
fn checksums_are_verified() {
    let data = sample(10_000);
    // gzip: CRC-32 in the 8-byte trailer; zlib: Adler-32 in the last 4 bytes.
    for (codec, from_end) in [(Compression::Gzip, 8), (Compression::Deflate, 1)] {
        let mut body = compress(codec, &data).to_vec();
        let at = body.len() - from_end;
        body[at] ^= 1;
        assert_corrupt(codec, &body, "bad checksum");
    }
}

#[test]
fn zstd_windows_beyond_128_mib_are_refused() {
    let body = zstd_zeros(128 * 1024, 28, false);
    assert_corrupt(Compression::Zstd, &body, "a 256 MiB window");
}

#[test]
fn trailing_zero_padding_after_gzip_is_refused() {
    // Concatenated members are legal, padding is not: it is read as a broken member.
    let mut body = compress(Compression::Gzip, b"data").to_vec();
    body.extend_from_slice(&[0; 16]);
    assert_corrupt(Compression::Gzip, &body, "zero padding");
}

fn any_codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(CODECS.to_vec())
}

/// Bytes that start like a real stream of `codec`, so the fuzzing reaches past header checks.
fn with_magic(codec: Compression, mut tail: Vec<u8>) -> Vec<u8> {
    let magic: &[u8] = match codec {
        Compression::Gzip => &[0x1f, 0x8b, 8, 0],
        Compression::Zstd => &[0x28, 0xb5, 0x2f, 0xfd],
        Compression::Deflate => &[0x78, 0x9c],
        Compression::None => &[],
    };
    tail.splice(0..0, magic.iter().copied());
    tail
}

proptest! {
    // Integration tests have no lib.rs for proptest to put regression files next to.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        codec in any_codec(),
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        magic in any::<bool>(),
        limit in 0usize..100_000,
    ) {
        let input = if magic { with_magic(codec, bytes) } else { bytes };
        match decompress(codec, &input, limit) {
            Ok(output) => prop_assert!(output.len() <= limit),
            Err(DecompressError::TooLarge { limit: reported }) => prop_assert_eq!(reported, limit),
            Err(DecompressError::Corrupt { compression, .. }) => prop_assert_eq!(compression, codec),
        }
    }

    #[test]
    fn compress_then_decompress_round_trips(
        codec in any_codec(),
        data in prop::collection::vec(any::<u8>(), 0..16_384),
        repeat in 1usize..8,
    ) {
        // Repeat to get compressible input too, not only random noise.
        let data = data.repeat(repeat);
        let body = compress(codec, &data);
        let back = decompress(codec, &body, data.len()).unwrap();
        prop_assert!(back[..] == data[..]);
        if !data.is_empty() {
            let too_small = decompress(codec, &body, data.len() - 1);
            prop_assert!(
                matches!(too_small, Err(DecompressError::TooLarge { .. })),
                "expected TooLarge"
            );
        }
    }
}
