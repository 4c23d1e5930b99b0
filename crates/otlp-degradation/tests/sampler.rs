//! The trace-id sampler agrees bit for bit with the OpenTelemetry Rust SDK's
//! `TraceIdRatioBased` sampler, and its decisions are consistent.

use opentelemetry::trace::{SpanKind, TraceId};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample};
use otlp_degradation::TraceIdRatioSampler;

/// SplitMix64: a deterministic stream of well-spread ids (no RNG dependency, and a
/// failure reproduces exactly).
struct Ids(u64);

impl Ids {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn trace_id(&mut self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        id[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        id
    }
}

fn with_low(high: u64, low: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

fn sdk_keeps(sdk: &Sampler, id: [u8; 16]) -> bool {
    let result = sdk.should_sample(
        None,
        TraceId::from_bytes(id),
        "span",
        &SpanKind::Internal,
        &[],
        &[],
    );
    match result.decision {
        SamplingDecision::RecordAndSample => true,
        SamplingDecision::Drop => false,
        SamplingDecision::RecordOnly => panic!("TraceIdRatioBased never answers RecordOnly"),
    }
}

/// Ratios worth checking: the defaults, the edges, values that do not scale exactly, and
/// a spread of arbitrary ones.
fn ratios() -> Vec<f64> {
    let mut ratios = vec![
        1.0,
        0.5,
        0.1,
        0.01,
        0.001,
        0.0,
        -0.0,
        -1.0,
        2.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::MIN_POSITIVE,
        1e-18,
        1.0 / 3.0,
        0.999_999_999_999_999_9,
        1.0 - f64::EPSILON,
        0.25,
        0.75,
    ];
    let mut ids = Ids(7);
    for _ in 0..40 {
        ratios.push((ids.next_u64() >> 11) as f64 / (1u64 << 53) as f64);
    }
    ratios
}

#[test]
fn agrees_with_the_sdk_on_random_ids() {
    let mut ids = Ids(42);
    let mut compared = 0u64;
    let mut kept_somewhere = false;
    let mut dropped_somewhere = false;
    for ratio in ratios() {
        let ours = TraceIdRatioSampler::new(ratio);
        let sdk = Sampler::TraceIdRatioBased(ratio);
        for _ in 0..5_000 {
            let id = ids.trace_id();
            let keep = ours.should_keep(&id);
            assert_eq!(
                keep,
                sdk_keeps(&sdk, id),
                "ratio {ratio} id {}",
                TraceId::from_bytes(id)
            );
            assert_eq!(ours.should_keep_id(&id), Some(keep));
            kept_somewhere |= keep;
            dropped_somewhere |= !keep;
            compared += 1;
        }
    }
    assert_eq!(compared, ratios().len() as u64 * 5_000);
    assert!(kept_somewhere && dropped_somewhere);
}

#[test]
fn agrees_with_the_sdk_at_the_bound() {
    // The decision flips where (low >> 1) reaches the bound, i.e. at low = 2 * bound; any
    // difference in how the bound is rounded shows up exactly there.
    let mut ids = Ids(99);
    let mut flips = 0;
    for ratio in ratios() {
        let ours = TraceIdRatioSampler::new(ratio);
        let sdk = Sampler::TraceIdRatioBased(ratio);
        let edge = ours.bound().saturating_mul(2);
        let mut previous = None;
        for low in [
            0,
            1,
            edge.saturating_sub(2),
            edge.saturating_sub(1),
            edge,
            edge.saturating_add(1),
            edge.saturating_add(2),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let id = with_low(ids.next_u64(), low);
            let keep = ours.should_keep(&id);
            assert_eq!(keep, sdk_keeps(&sdk, id), "ratio {ratio} low {low:#x}");
            if previous == Some(true) && !keep {
                flips += 1;
            }
            previous = Some(keep);
        }
    }
    assert!(flips > 30, "the bound was crossed for most ratios: {flips}");
}

#[test]
fn edge_ratios() {
    let all = TraceIdRatioSampler::new(1.0);
    let none = TraceIdRatioSampler::new(0.0);
    for low in [0, 1, 1 << 63, u64::MAX] {
        let id = with_low(0, low);
        assert!(all.should_keep(&id));
        assert!(TraceIdRatioSampler::new(1.5).should_keep(&id));
        assert!(!none.should_keep(&id));
        assert!(!TraceIdRatioSampler::new(-0.5).should_keep(&id));
        assert!(!TraceIdRatioSampler::new(f64::NAN).should_keep(&id));
    }
    assert!(all.keeps_all() && none.keeps_none());
    // The smallest positive ratio still keeps the id whose low half is 0 (0 >> 1 < 1).
    let tiny = TraceIdRatioSampler::new(1.0 / (1u64 << 63) as f64);
    assert_eq!(tiny.bound(), 1);
    assert!(tiny.should_keep(&with_low(5, 1)));
    assert!(!tiny.should_keep(&with_low(5, 2)));
    // The high half never matters.
    let half = TraceIdRatioSampler::new(0.5);
    assert_eq!(
        half.should_keep(&with_low(0, 1 << 62)),
        half.should_keep(&with_low(u64::MAX, 1 << 62))
    );
    // Ids that are not 16 bytes are left to the caller.
    assert_eq!(half.should_keep_id(&[]), None);
    assert_eq!(half.should_keep_id(&[0; 8]), None);
    assert_eq!(half.should_keep_id(&[0; 17]), None);
}

#[test]
fn kept_sets_are_nested_and_instances_agree() {
    // A trace kept at a ratio is kept at every larger ratio: an SDK that sampled at r and
    // a gateway that samples at r' >= r never drop what the other kept. Two samplers
    // built separately (two gateway instances) decide the same.
    let ratios = [0.001, 0.01, 0.1, 0.5, 1.0];
    let mut ids = Ids(5);
    for _ in 0..20_000 {
        let id = ids.trace_id();
        let decisions: Vec<bool> = ratios
            .iter()
            .map(|r| TraceIdRatioSampler::new(*r).should_keep(&id))
            .collect();
        for pair in decisions.windows(2) {
            assert!(
                !pair[0] || pair[1],
                "kept at a lower ratio, dropped at a higher one"
            );
        }
        let a = TraceIdRatioSampler::new(0.1);
        let b = TraceIdRatioSampler::new(0.1);
        assert_eq!(a.should_keep(&id), b.should_keep(&id));
    }
}

#[test]
fn kept_fraction_matches_the_ratio() {
    let mut ids = Ids(1234);
    let n = 200_000u64;
    for ratio in [0.5, 0.1, 0.01] {
        let sampler = TraceIdRatioSampler::new(ratio);
        let kept = (0..n)
            .filter(|_| sampler.should_keep(&ids.trace_id()))
            .count() as f64;
        let expected = ratio * n as f64;
        let sigma = (n as f64 * ratio * (1.0 - ratio)).sqrt();
        assert!(
            (kept - expected).abs() <= 5.0 * sigma,
            "ratio {ratio}: kept {kept} of {n}, expected {expected} ± {}",
            5.0 * sigma
        );
    }
}
