//! Field codecs: how one proto field type is read from and written to OTLP/JSON.
//!
//! Each codec is a marker type implementing [`Codec`]; the message schema names a codec
//! per field, so the proto-to-JSON rules (hex ids, 64-bit integers as strings, enum
//! names, special doubles) live here once.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use serde::de::{self, DeserializeSeed, Deserializer, Unexpected, Visitor};
use serde::ser::{Serialize, Serializer};

/// Decoding state shared by every visitor of one document: the path of the failing
/// value, collected while an error unwinds (innermost segment first).
#[derive(Default)]
pub(super) struct Cx {
    // A `Cell` rather than a `RefCell`: it is only touched on the error path and
    // can never panic on a double borrow.
    path: Cell<Vec<Seg>>,
}

/// One step of a field path.
#[derive(Debug, Clone, Copy)]
pub(super) enum Seg {
    Field(&'static str),
    Index(usize),
}

impl Cx {
    /// Record that the error now unwinding passed through `seg`.
    #[cold]
    pub(super) fn push(&self, seg: Seg) {
        let mut path = self.path.take();
        path.push(seg);
        self.path.set(path);
    }

    /// The recorded path, outermost first, as `a[0].b.c`.
    pub(super) fn into_path(self) -> String {
        let path = self.path.into_inner();
        let mut out = String::new();
        for seg in path.iter().rev() {
            match seg {
                Seg::Field(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Seg::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

/// How one field type maps to JSON.
pub(super) trait Codec {
    /// The Rust type of the field in the prost message.
    type Value;

    /// Read a value; JSON `null` gives the default.
    fn decode<'de, D: Deserializer<'de>>(d: D, cx: &Cx) -> Result<Self::Value, D::Error>;

    /// Whether the value is the proto3 default, which is left out on output.
    fn is_default(value: &Self::Value) -> bool;

    /// Write a value (also when it is the default: set oneof members are always written).
    fn encode<S: Serializer>(value: &Self::Value, s: S) -> Result<S::Ok, S::Error>;
}

/// A [`DeserializeSeed`] running codec `C` with the document's context.
pub(super) struct Seed<'c, C>(&'c Cx, PhantomData<fn() -> C>);

impl<'c, C> Seed<'c, C> {
    pub(super) fn new(cx: &'c Cx) -> Self {
        Seed(cx, PhantomData)
    }
}

impl<'de, C: Codec> DeserializeSeed<'de> for Seed<'_, C> {
    type Value = C::Value;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<C::Value, D::Error> {
        C::decode(d, self.0)
    }
}

/// A borrowed value written with codec `C`.
pub(super) struct Ser<'a, C: Codec>(pub(super) &'a C::Value);

impl<C: Codec> Serialize for Ser<'_, C> {
    #[inline]
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        C::encode(self.0, s)
    }
}

/// `null` reads as "not present" (`None`): for proto3 `optional` fields and oneof members.
pub(super) struct Nullable<C>(PhantomData<C>);

impl<C: Codec> Codec for Nullable<C> {
    type Value = Option<C::Value>;

    fn decode<'de, D: Deserializer<'de>>(d: D, cx: &Cx) -> Result<Self::Value, D::Error> {
        struct V<'c, C>(&'c Cx, PhantomData<C>);
        impl<'de, C: Codec> Visitor<'de> for V<'_, C> {
            type Value = Option<C::Value>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or null")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                C::decode(d, self.0).map(Some)
            }
        }
        d.deserialize_option(V::<C>(cx, PhantomData))
    }

    fn is_default(value: &Self::Value) -> bool {
        value.is_none()
    }

    fn encode<S: Serializer>(value: &Self::Value, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => C::encode(v, s),
            None => s.serialize_unit(),
        }
    }
}

/// `repeated` fields: a JSON array; `null` is empty.
pub(super) struct Rep<C>(PhantomData<C>);

impl<C: Codec> Codec for Rep<C> {
    type Value = Vec<C::Value>;

    fn decode<'de, D: Deserializer<'de>>(d: D, cx: &Cx) -> Result<Self::Value, D::Error> {
        struct V<'c, C>(&'c Cx, PhantomData<C>);
        impl<'de, C: Codec> Visitor<'de> for V<'_, C> {
            type Value = Vec<C::Value>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON array")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                read_seq::<C, A>(&mut seq, self.0)
            }
        }
        d.deserialize_any(V::<C>(cx, PhantomData))
    }

    fn is_default(value: &Self::Value) -> bool {
        value.is_empty()
    }

    fn encode<S: Serializer>(value: &Self::Value, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(value.iter().map(Ser::<C>))
    }
}

/// Read every element of a JSON array with codec `C`, recording the index of a failure.
pub(super) fn read_seq<'de, C: Codec, A: de::SeqAccess<'de>>(
    seq: &mut A,
    cx: &Cx,
) -> Result<Vec<C::Value>, A::Error> {
    // The hint is the number of elements the parser has seen so far (none for JSON);
    // cap it anyway so a lying deserializer cannot make us allocate unboundedly.
    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
    loop {
        match seq.next_element_seed(Seed::<C>::new(cx)) {
            Ok(Some(v)) => out.push(v),
            Ok(None) => return Ok(out),
            Err(e) => {
                cx.push(Seg::Index(out.len()));
                return Err(e);
            }
        }
    }
}

/// `string` fields.
pub(super) struct Str;

impl Codec for Str {
    type Value = String;

    fn decode<'de, D: Deserializer<'de>>(d: D, _: &Cx) -> Result<String, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
                Ok(v)
            }
            fn visit_unit<E: de::Error>(self) -> Result<String, E> {
                Ok(String::new())
            }
        }
        d.deserialize_any(V)
    }

    fn is_default(value: &String) -> bool {
        value.is_empty()
    }

    fn encode<S: Serializer>(value: &String, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value)
    }
}

/// `bool` fields: `true` or `false` only, as in the proto3 JSON mapping.
pub(super) struct Bool;

impl Codec for Bool {
    type Value = bool;

    fn decode<'de, D: Deserializer<'de>>(d: D, _: &Cx) -> Result<bool, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = bool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
                Ok(v)
            }
            fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
                Ok(false)
            }
        }
        d.deserialize_any(V)
    }

    fn is_default(value: &bool) -> bool {
        !*value
    }

    fn encode<S: Serializer>(value: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(*value)
    }
}

/// An integer read from a JSON number (integral, possibly in exponent form) or a
/// decimal string, checked against the range of the proto type.
fn integer_from_f64<E: de::Error>(v: f64, proto_type: &str) -> Result<i128, E> {
    if v.is_finite() && v.fract() == 0.0 {
        // `as` saturates beyond i128; the caller's range check then rejects it.
        Ok(v as i128)
    } else {
        Err(E::custom(format_args!(
            "expected an integer for {proto_type}, got {v}"
        )))
    }
}

fn integer_from_str<E: de::Error>(v: &str, proto_type: &str) -> Result<i128, E> {
    if let Ok(i) = v.parse::<i128>() {
        return Ok(i);
    }
    // The proto3 JSON mapping also accepts integral values in exponent or fraction form
    // ("1e3", "5.0"); the character check keeps out Rust's "inf" and "NaN".
    let numeric = v
        .bytes()
        .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b));
    match v.parse::<f64>() {
        Ok(f) if numeric => integer_from_f64(f, proto_type),
        _ => Err(E::custom(format_args!(
            "expected a decimal integer string for {proto_type}, got {v:?}"
        ))),
    }
}

macro_rules! integer_codec {
    (
        $(#[$doc:meta])* $codec:ident, $ty:ty, $proto:literal, $expecting:literal,
        |$v:ident, $s:ident| $encode:block
    ) => {
        $(#[$doc])*
        pub(super) struct $codec;

        impl $codec {
            fn check<E: de::Error>(v: i128) -> Result<$ty, E> {
                <$ty>::try_from(v).map_err(|_| {
                    E::custom(format_args!(concat!("{} is out of range for ", $proto), v))
                })
            }
        }

        impl Codec for $codec {
            type Value = $ty;

            fn decode<'de, D: Deserializer<'de>>(d: D, _: &Cx) -> Result<$ty, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        $codec::check(i128::from(v))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        $codec::check(i128::from(v))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$ty, E> {
                        $codec::check(integer_from_f64(v, $proto)?)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        $codec::check(integer_from_str(v, $proto)?)
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<$ty, E> {
                        Ok(0)
                    }
                }
                d.deserialize_any(V)
            }

            fn is_default(value: &$ty) -> bool {
                *value == 0
            }

            fn encode<S: Serializer>(value: &$ty, $s: S) -> Result<S::Ok, S::Error> {
                let $v = *value;
                $encode
            }
        }
    };
}

integer_codec!(
    /// `uint32` and `fixed32`: a JSON number.
    U32, u32, "uint32", "an unsigned 32-bit integer",
    |v, s| { s.serialize_u32(v) }
);
integer_codec!(
    /// `int32` and `sint32`: a JSON number.
    I32, i32, "int32", "a 32-bit integer",
    |v, s| { s.serialize_i32(v) }
);
integer_codec!(
    /// `uint64` and `fixed64`: a decimal string (JSON numbers lose precision past 2^53).
    U64, u64, "uint64", "an unsigned 64-bit integer (decimal string or number)",
    |v, s| {
        let mut buf = [0u8; 20];
        s.serialize_str(decimal(v, false, &mut buf))
    }
);
integer_codec!(
    /// `int64` and `sfixed64`: a decimal string.
    I64, i64, "int64", "a 64-bit integer (decimal string or number)",
    |v, s| {
        let mut buf = [0u8; 20];
        s.serialize_str(decimal(v.unsigned_abs(), v < 0, &mut buf))
    }
);

/// Format `magnitude` (with a leading `-` when `negative`) into `buf`.
fn decimal(mut magnitude: u64, negative: bool, buf: &mut [u8; 20]) -> &str {
    // 20 digits hold u64::MAX; i64::MIN's magnitude has 19 digits, leaving room for '-'.
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if negative {
        start -= 1;
        buf[start] = b'-';
    }
    // Only ASCII digits and '-' were written.
    std::str::from_utf8(&buf[start..]).unwrap_or_default()
}

/// `double`: a JSON number; NaN and the infinities as the strings the proto3 JSON
/// mapping names.
pub(super) struct F64;

impl Codec for F64 {
    type Value = f64;

    fn decode<'de, D: Deserializer<'de>>(d: D, _: &Cx) -> Result<f64, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = f64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, \"NaN\", \"Infinity\" or \"-Infinity\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
                Ok(v)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
                match v {
                    "NaN" => Ok(f64::NAN),
                    "Infinity" => Ok(f64::INFINITY),
                    "-Infinity" => Ok(f64::NEG_INFINITY),
                    _ => v
                        .parse::<f64>()
                        .map_err(|_| E::invalid_value(Unexpected::Str(v), &self)),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
                Ok(0.0)
            }
        }
        d.deserialize_any(V)
    }

    fn is_default(value: &f64) -> bool {
        // prost leaves out -0.0 as well (it compares with 0.0), so must we.
        *value == 0.0
    }

    fn encode<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            s.serialize_f64(*value)
        } else if value.is_nan() {
            s.serialize_str("NaN")
        } else if *value > 0.0 {
            s.serialize_str("Infinity")
        } else {
            s.serialize_str("-Infinity")
        }
    }
}

/// A proto enum's name table, for reading enum names on input.
pub(super) trait EnumNames {
    /// The enum's proto name, for error messages.
    const NAME: &'static str;
    /// The value of a `SCREAMING_CASE` enum value name.
    fn value_of(name: &str) -> Option<i32>;
}

/// Enum fields: an integer; names are accepted on input. Values outside the enum are
/// kept as they are (proto3 enums are open).
pub(super) struct Enum<E>(PhantomData<E>);

impl<N: EnumNames> Codec for Enum<N> {
    type Value = i32;

    fn decode<'de, D: Deserializer<'de>>(d: D, _: &Cx) -> Result<i32, D::Error> {
        struct V<N>(PhantomData<N>);
        impl<N: EnumNames> Visitor<'_> for V<N> {
            type Value = i32;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a {} integer or value name", N::NAME)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<i32, E> {
                I32::check(i128::from(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<i32, E> {
                I32::check(i128::from(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<i32, E> {
                I32::check(integer_from_f64(v, N::NAME)?)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<i32, E> {
                if let Some(value) = N::value_of(v) {
                    return Ok(value);
                }
                match v.parse::<i32>() {
                    Ok(value) => Ok(value),
                    Err(_) => Err(E::custom(format_args!(
                        "unknown {} value name {v:?}",
                        N::NAME
                    ))),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<i32, E> {
                Ok(0)
            }
        }
        d.deserialize_any(V::<N>(PhantomData))
    }

    fn is_default(value: &i32) -> bool {
        *value == 0
    }

    fn encode<S: Serializer>(value: &i32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(*value)
    }
}

/// Trace and span ids: `N` bytes as `2 * N` hex digits (OTLP's deviation from the
/// proto3 JSON mapping, which would use base64). Empty means "no id".
pub(super) struct Hex<const N: usize>;

/// `traceId`: 16 bytes.
pub(super) type TraceId = Hex<16>;
/// `spanId`, `parentSpanId`: 8 bytes.
pub(super) type SpanId = Hex<8>;

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

impl<const N: usize> Codec for Hex<N> {
    type Value = Vec<u8>;

    fn decode<'de, D: Deserializer<'de>>(d: D, _: &Cx) -> Result<Vec<u8>, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> Visitor<'_> for V<N> {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a string of {} hex digits", 2 * N)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
                let digits = v.as_bytes();
                if digits.is_empty() {
                    return Ok(Vec::new());
                }
                if digits.len() != 2 * N {
                    // A common peer bug: the standard proto3 mapping writes ids as base64.
                    let hint = if digits.len() == N.div_ceil(3) * 4 {
                        " (OTLP/JSON ids are hex, not base64)"
                    } else {
                        ""
                    };
                    return Err(E::custom(format_args!(
                        "expected {} hex digits, got {}{hint}",
                        2 * N,
                        v.chars().count()
                    )));
                }
                let mut out = Vec::with_capacity(N);
                for (i, pair) in digits.chunks_exact(2).enumerate() {
                    match (hex_value(pair[0]), hex_value(pair[1])) {
                        (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
                        (hi, _) => {
                            let at = 2 * i + usize::from(hi.is_some());
                            // `at` may split a multi-byte character: show the whole text.
                            return Err(E::custom(format_args!(
                                "invalid hex digit at position {at} in {v:?}"
                            )));
                        }
                    }
                }
                Ok(out)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Vec<u8>, E> {
                Ok(Vec::new())
            }
        }
        d.deserialize_any(V::<N>)
    }

    fn is_default(value: &Vec<u8>) -> bool {
        value.is_empty()
    }

    fn encode<S: Serializer>(value: &Vec<u8>, s: S) -> Result<S::Ok, S::Error> {
        // Ids of the wrong length can arrive over protobuf; write them as they are and
        // let the JSON reader report them.
        let mut buf = [0u8; 64];
        if value.len() * 2 <= buf.len() {
            let out = &mut buf[..value.len() * 2];
            for (pair, byte) in out.chunks_exact_mut(2).zip(value) {
                pair[0] = HEX_DIGITS[usize::from(byte >> 4)];
                pair[1] = HEX_DIGITS[usize::from(byte & 0xf)];
            }
            s.serialize_str(std::str::from_utf8(out).unwrap_or_default())
        } else {
            let text: String = value
                .iter()
                .flat_map(|b| {
                    [
                        char::from(HEX_DIGITS[usize::from(b >> 4)]),
                        char::from(HEX_DIGITS[usize::from(b & 0xf)]),
                    ]
                })
                .collect();
            s.serialize_str(&text)
        }
    }
}

/// Other `bytes` fields: base64 as in the proto3 JSON mapping. Written standard and
/// padded; read standard or URL-safe, padded or not.
pub(super) struct Base64;

const BASE64_READ: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const BASE64_STANDARD: GeneralPurpose =
    GeneralPurpose::new(&base64::alphabet::STANDARD, BASE64_READ);
const BASE64_URL_SAFE: GeneralPurpose =
    GeneralPurpose::new(&base64::alphabet::URL_SAFE, BASE64_READ);

impl Codec for Base64 {
    type Value = Vec<u8>;

    fn decode<'de, D: Deserializer<'de>>(d: D, _: &Cx) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
                let engine = if v.bytes().any(|b| b == b'-' || b == b'_') {
                    &BASE64_URL_SAFE
                } else {
                    &BASE64_STANDARD
                };
                engine
                    .decode(v)
                    .map_err(|e| E::custom(format_args!("invalid base64: {e}")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Vec<u8>, E> {
                Ok(Vec::new())
            }
        }
        d.deserialize_any(V)
    }

    fn is_default(value: &Vec<u8>) -> bool {
        value.is_empty()
    }

    fn encode<S: Serializer>(value: &Vec<u8>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&general_purpose::STANDARD.encode(value))
    }
}

/// A JSON object key, borrowed from the input unless it holds escapes.
pub(super) struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_identifier(V)
    }
}

/// The error for a oneof given more than one member.
pub(super) fn oneof_conflict<E: de::Error>(oneof: &str, first: &str, second: &str) -> E {
    E::custom(format_args!(
        "oneof `{oneof}` is already set by `{first}`, cannot also set `{second}`"
    ))
}
