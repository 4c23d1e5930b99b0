//! Peak memory while refusing decompression bombs, measured by the kernel.
//!
//! A counting `#[global_allocator]` would need `unsafe impl GlobalAlloc`, which the
//! workspace forbids (`unsafe_code = "forbid"` cannot be allowed back). Instead this
//! reads the process's peak resident set (`VmHWM`), reset before each decompression
//! through `/proc/self/clear_refs`. That is process-wide, so this file holds a single
//! test and runs the cases one after another. Linux only; it skips itself where the
//! counters are unavailable.
#![cfg(target_os = "linux")]

use otlp_core::compression::{Compression, DecompressError, compress, decompress};
use tokio::time::Instant;

#[path = "support/bombs.rs"]
mod bombs;

use bombs::{GIB, MIB, bombs};

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak to the current resident size; false where the kernel doesn't allow it.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Runs `f` and returns its result with how far the resident set rose above where it
/// started, in bytes.
fn peak_growth<T>(f: impl FnOnce() -> T) -> Option<(T, usize)> {
    let before = status_kib("VmRSS:")?;
    if !reset_peak() {
        return None;
    }
    let result = f();
    let peak = status_kib("VmHWM:")?;
    Some((result, peak.saturating_sub(before) * 1024))
}

#[test]
fn bombs_cost_about_the_limit_in_memory() {
    if peak_growth(|| ()).is_none() {
        eprintln!("skipped: /proc/self/clear_refs or VmHWM unavailable");
        return;
    }
    let bombs = bombs(GIB);

    // The measurement can see an allocation of the limit's size: decoding 64 MiB of a
    // bomb for real must show up.
    let (gzip, body) = (bombs[0].1, &bombs[0].2);
    let (result, grown) = peak_growth(|| decompress(gzip, body, 64 * MIB)).unwrap();
    assert!(matches!(result, Err(DecompressError::TooLarge { .. })));
    eprintln!(
        "control: gzip at a 64 MiB limit grew the peak by {} KiB",
        grown / 1024
    );
    assert!(grown >= 32 * MIB, "measurement too coarse: {grown} bytes");

    for limit in [MIB, 16 * MIB] {
        for (name, codec, body) in &bombs {
            let started = Instant::now();
            let (result, grown) = peak_growth(|| decompress(*codec, body, limit)).unwrap();
            let took = started.elapsed();
            assert!(
                matches!(result, Err(DecompressError::TooLarge { limit: l }) if l == limit),
                "{name}: {result:?}"
            );
            eprintln!(
                "{name}: 1 GiB bomb, {} MiB limit: peak grew {} KiB, {took:?}",
                limit / MIB,
                grown / 1024
            );
            // The output buffer never exceeds the limit; growth briefly holds the old and
            // the new buffer, and the decoders keep some state of their own.
            assert!(grown <= 2 * limit + 2 * MIB, "{name}: grew {grown} bytes");
        }
    }

    // A body of exactly the limit, as our own exporter sends it: one buffer of the limit.
    let limit = 16 * MIB;
    let data = vec![0u8; limit];
    for codec in Compression::ALL {
        let body = compress(codec, &data);
        let (result, grown) = peak_growth(|| decompress(codec, &body, limit)).unwrap();
        assert_eq!(result.unwrap().len(), limit, "{codec}");
        eprintln!(
            "{codec}: 16 MiB body at a 16 MiB limit: peak grew {} KiB",
            grown / 1024
        );
        assert!(grown <= 2 * limit + 2 * MIB, "{codec}: grew {grown} bytes");
    }
}
