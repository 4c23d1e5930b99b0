//! `otlp convert` end to end: the real binary on the shipped samples and on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use otlp_core::OtlpRequest;
use otlp_core::codec::{json, protobuf};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;

fn otlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otlp"))
        .args(args)
        .output()
        .expect("run the otlp binary")
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/data")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn samples_round_trip_through_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    for (signal, file) in [
        ("traces", "traces.json"),
        ("metrics", "metrics.json"),
        ("logs", "logs.json"),
    ] {
        let pb = dir.path().join(format!("{signal}.pb"));
        let back = dir.path().join(format!("{signal}.json"));
        let out = otlp(&["convert", "--signal", signal, s(&sample(file)), s(&pb)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = String::from_utf8_lossy(&out.stderr);
        assert!(
            summary.contains("json") && summary.contains("protobuf"),
            "{summary}"
        );

        let out = otlp(&["convert", "--signal", signal, s(&pb), s(&back)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let original = std::fs::read(sample(file)).unwrap();
        let pb_bytes = std::fs::read(&pb).unwrap();
        let back_bytes = std::fs::read(&back).unwrap();
        match signal {
            "traces" => check::<ExportTraceServiceRequest>(&original, &pb_bytes, &back_bytes, 2),
            "metrics" => check::<ExportMetricsServiceRequest>(&original, &pb_bytes, &back_bytes, 3),
            _ => check::<ExportLogsServiceRequest>(&original, &pb_bytes, &back_bytes, 2),
        }
    }
}

fn check<T: OtlpRequest + json::JsonMessage>(original: &[u8], pb: &[u8], back: &[u8], items: u64) {
    let from_json: T = json::from_slice(original).unwrap();
    let from_pb: T = protobuf::decode(pb).unwrap();
    let from_back: T = json::from_slice(back).unwrap();
    assert_eq!(from_json, from_pb);
    assert_eq!(from_pb, from_back);
    assert_eq!(from_pb.item_count(), items);
}

#[test]
fn canonical_json_uses_lowercase_hex_and_string_int64() {
    let out = otlp(&[
        "convert",
        "--signal",
        "traces",
        "--to",
        "json",
        s(&sample("traces.json")),
        "-",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(r#""traceId":"4bf92f3577b34da6a3ce929d0e0e4736""#),
        "{text}"
    );
    assert!(
        text.contains(r#""startTimeUnixNano":"1764000000010000000""#),
        "{text}"
    );
    assert!(text.contains(r#""kind":2"#), "{text}");
    assert!(text.ends_with('\n'));
}

#[test]
fn compressed_input_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let raw = std::fs::read(sample("logs.json")).unwrap();
    for (kind, name) in [
        (otlp_core::compression::Compression::Gzip, "logs.json.gz"),
        (otlp_core::compression::Compression::Zstd, "logs.json.zst"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, otlp_core::compression::compress(kind, &raw)).unwrap();
        let out = otlp(&[
            "convert",
            "--signal",
            "logs",
            "--from",
            "json",
            "--to",
            "proto",
            s(&path),
            "-",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let req: ExportLogsServiceRequest = protobuf::decode(&out.stdout).unwrap();
        assert_eq!(req.item_count(), 2);
    }
}

#[test]
fn bad_input_gives_a_clear_error_and_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#,
    )
    .unwrap();
    let out_path = dir.path().join("out.pb");
    let out = otlp(&["convert", "--signal", "traces", s(&bad), s(&out_path)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json") && err.contains("traceId"), "{err}");
    assert!(!out_path.exists(), "no partial output on failure");

    // Garbage protobuf.
    let garbage = dir.path().join("garbage.pb");
    std::fs::write(&garbage, [0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]).unwrap();
    let out = otlp(&["convert", "--signal", "logs", s(&garbage), s(&out_path)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("protobuf"), "{err}");

    // Unknown extension without --from, unknown signal, missing file.
    let out = otlp(&[
        "convert",
        "--signal",
        "traces",
        s(&bad.with_extension("txt")),
        s(&out_path),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from"));
    let out = otlp(&["convert", "--signal", "profiles", s(&bad), s(&out_path)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown signal"));
    let out = otlp(&[
        "convert",
        "--signal",
        "traces",
        s(&dir.path().join("missing.json")),
        s(&out_path),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));
}
