//! Unit tests of the codec's internals. The rule-by-rule conformance suite, with example
//! documents in the shape of the specification's, is `tests/json_conformance.rs`.

use super::scalar::{Codec, Cx, Hex, I64, Seg, Ser, U64};
use super::{JsonErrorKind, from_slice, to_vec};
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

fn encode_with<C: Codec>(value: &C::Value) -> String {
    serde_json::to_string(&Ser::<C>(value)).unwrap()
}

fn decode_with<C: Codec>(text: &str) -> Result<C::Value, serde_json::Error> {
    let cx = Cx::default();
    let mut de = serde_json::Deserializer::from_str(text);
    C::decode(&mut de, &cx)
}

#[test]
fn path_is_rendered_outermost_first() {
    let cx = Cx::default();
    // Pushed while unwinding: innermost first.
    cx.push(Seg::Field("traceId"));
    cx.push(Seg::Index(3));
    cx.push(Seg::Field("spans"));
    cx.push(Seg::Index(0));
    cx.push(Seg::Field("scopeSpans"));
    cx.push(Seg::Index(12));
    cx.push(Seg::Field("resourceSpans"));
    assert_eq!(
        cx.into_path(),
        "resourceSpans[12].scopeSpans[0].spans[3].traceId"
    );
    assert_eq!(Cx::default().into_path(), "");
}

#[test]
fn integers_are_written_in_decimal_at_the_extremes() {
    assert_eq!(encode_with::<U64>(&0), r#""0""#);
    assert_eq!(encode_with::<U64>(&7), r#""7""#);
    assert_eq!(encode_with::<U64>(&u64::MAX), r#""18446744073709551615""#);
    assert_eq!(encode_with::<I64>(&i64::MIN), r#""-9223372036854775808""#);
    assert_eq!(encode_with::<I64>(&i64::MAX), r#""9223372036854775807""#);
    assert_eq!(encode_with::<I64>(&-1), r#""-1""#);
    for v in [0, 1, 9, 10, 99, 100, 12345, u64::MAX / 3, u64::MAX - 1] {
        assert_eq!(encode_with::<U64>(&v), format!("\"{v}\""));
    }
}

#[test]
fn integers_accept_exponent_and_fraction_forms_when_integral() {
    assert_eq!(decode_with::<U64>(r#""1e3""#).unwrap(), 1000);
    assert_eq!(decode_with::<U64>(r#""5.0""#).unwrap(), 5);
    assert_eq!(decode_with::<U64>("2E2").unwrap(), 200);
    assert_eq!(decode_with::<I64>(r#""-4""#).unwrap(), -4);
    assert_eq!(decode_with::<I64>(r#""+4""#).unwrap(), 4);
    assert!(decode_with::<U64>(r#""5.5""#).is_err());
    assert!(decode_with::<U64>(r#""""#).is_err());
    assert!(decode_with::<U64>(r#""infinity""#).is_err());
    assert!(decode_with::<U64>(r#""1e400""#).is_err());
    assert!(decode_with::<I64>("1e19").is_err());
}

#[test]
fn ids_of_unusual_length_are_still_written_as_hex() {
    // Protobuf input does not check id lengths; the JSON writer must not lose them.
    assert_eq!(
        encode_with::<Hex<16>>(&vec![0xab, 0x01, 0xff]),
        r#""ab01ff""#
    );
    let long: Vec<u8> = (0u8..40).collect();
    let text = encode_with::<Hex<16>>(&long);
    assert_eq!(text.len(), 2 + 80);
    assert!(text.starts_with(r#""000102030405"#));
    assert!(text.ends_with(r#"252627""#));
    // ... and reading them back is a clear error, not a silent truncation.
    let e = decode_with::<Hex<16>>(&text).unwrap_err();
    assert!(
        e.to_string().contains("expected 32 hex digits, got 80"),
        "{e}"
    );
}

#[test]
fn hex_round_trips_every_byte() {
    let all: Vec<u8> = (0u8..=255).collect();
    for chunk in all.chunks(8) {
        let text = encode_with::<Hex<8>>(&chunk.to_vec());
        assert_eq!(text, text.to_lowercase());
        assert_eq!(decode_with::<Hex<8>>(&text).unwrap(), chunk);
        assert_eq!(decode_with::<Hex<8>>(&text.to_uppercase()).unwrap(), chunk);
    }
}

#[test]
fn error_reports_position_and_path() {
    let text = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"a\"},\n{\"kind\":\"SPAN_KIND_NOPE\"}]}]}]}";
    let e = from_slice::<ExportTraceServiceRequest>(text.as_bytes()).unwrap_err();
    assert_eq!(e.path(), "resourceSpans[0].scopeSpans[0].spans[1].kind");
    assert_eq!(e.line(), 2);
    assert_eq!(e.kind(), JsonErrorKind::Data);
    assert_eq!(
        e.to_string(),
        format!(
            "resourceSpans[0].scopeSpans[0].spans[1].kind: unknown SpanKind value name \"SPAN_KIND_NOPE\" at line 2 column {}",
            e.column()
        )
    );
}

#[test]
fn output_is_compact_and_parses_as_json() {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    name: "a \"quoted\" name\n".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let bytes = to_vec(&request);
    assert!(!bytes.contains(&b'\n'));
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        value["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"],
        "a \"quoted\" name\n"
    );
}
