//! Message-level machinery: reading a JSON object field by field into a prost message,
//! and writing a prost message as a JSON object, driven by the per-message [`Schema`].

use std::fmt;
use std::io;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::ser::{SerializeMap, Serializer};

use super::JsonError;
use super::scalar::{Codec, Cx, Key, Seed, Seg};

/// The OTLP/JSON shape of one prost message. Implemented by the `schema!` macro.
pub(super) trait Schema: Default {
    /// The proto message name, for error messages.
    const NAME: &'static str;

    /// Read the value of the field called `key` from `map` into `self`; unknown keys are
    /// skipped.
    fn read_field<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
        cx: &Cx,
    ) -> Result<(), A::Error>;

    /// Write every non-default field as a map entry.
    fn write_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error>;

    /// Read the message from a JSON array. Only `ArrayValue` and `KeyValueList` accept
    /// that: as a shorthand for `{"values": [...]}` that published OTLP examples use.
    fn read_array<'de, A: SeqAccess<'de>>(seq: A, cx: &Cx) -> Result<Self, A::Error> {
        let _ = (seq, cx);
        Err(de::Error::invalid_type(
            Unexpected::Seq,
            &Expected::<Self>(PhantomData),
        ))
    }
}

/// `expecting` text for message `T`.
struct Expected<T>(PhantomData<T>);

impl<T: Schema> de::Expected for Expected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a JSON object ({})", T::NAME)
    }
}

/// Reads a JSON object into `T`; `null` is `None` unless this is the document itself.
struct MsgVisitor<'c, T> {
    cx: &'c Cx,
    top_level: bool,
    _message: PhantomData<T>,
}

impl<'de, T: Schema> Visitor<'de> for MsgVisitor<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        de::Expected::fmt(&Expected::<T>(PhantomData), f)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut message = T::default();
        while let Some(key) = map.next_key_seed(Key)? {
            message.read_field(&key, &mut map, self.cx)?;
        }
        Ok(Some(message))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<T>, A::Error> {
        if self.top_level {
            return Err(de::Error::invalid_type(Unexpected::Seq, &self));
        }
        T::read_array(seq, self.cx).map(Some)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        if self.top_level {
            return Err(E::invalid_type(Unexpected::Unit, &self));
        }
        Ok(None)
    }
}

/// Skip the value of an unknown field (the OTLP spec says receivers MUST ignore them).
#[inline]
pub(super) fn skip_value<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(|_| ())
}

/// Read the current field's value with codec `C`, recording `name` in the error path.
#[inline]
pub(super) fn read<'de, C: Codec, A: MapAccess<'de>>(
    map: &mut A,
    cx: &Cx,
    name: &'static str,
) -> Result<C::Value, A::Error> {
    map.next_value_seed(Seed::<C>::new(cx))
        .inspect_err(|_| cx.push(Seg::Field(name)))
}

/// A message field that is always there (repeated elements, oneof members): `null` and
/// `{}` are both the default message.
pub(super) struct Msg<T>(PhantomData<T>);

impl<T: Schema> Codec for Msg<T> {
    type Value = T;

    fn decode<'de, D: Deserializer<'de>>(d: D, cx: &Cx) -> Result<T, D::Error> {
        let visitor = MsgVisitor::<T> {
            cx,
            top_level: false,
            _message: PhantomData,
        };
        Ok(d.deserialize_any(visitor)?.unwrap_or_default())
    }

    fn is_default(_: &T) -> bool {
        // Only used where presence is decided elsewhere (lists, oneofs).
        false
    }

    fn encode<S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        value.write_fields(&mut map)?;
        map.end()
    }
}

/// A singular message field (`Option<T>` in prost): absent or `null` is `None`, and a
/// present message is written even when empty (`"resource":{}`), as prost encodes it.
pub(super) struct OptMsg<T>(PhantomData<T>);

impl<T: Schema> Codec for OptMsg<T> {
    type Value = Option<T>;

    fn decode<'de, D: Deserializer<'de>>(d: D, cx: &Cx) -> Result<Option<T>, D::Error> {
        d.deserialize_any(MsgVisitor::<T> {
            cx,
            top_level: false,
            _message: PhantomData,
        })
    }

    fn is_default(value: &Option<T>) -> bool {
        value.is_none()
    }

    fn encode<S: Serializer>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => Msg::<T>::encode(v, s),
            None => s.serialize_unit(),
        }
    }
}

/// Decode a whole document into `T`.
pub(super) fn decode_document<T: Schema>(bytes: &[u8]) -> Result<T, JsonError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let cx = Cx::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let visitor = MsgVisitor::<T> {
        cx: &cx,
        top_level: true,
        _message: PhantomData,
    };
    let result = (&mut de)
        .deserialize_any(visitor)
        .and_then(|message| de.end().map(|()| message.unwrap_or_default()));
    result.map_err(|e| JsonError::new(e, cx.into_path()))
}

/// Encode `message` as one compact JSON document.
pub(super) fn encode_document<T: Schema, W: io::Write>(
    message: &T,
    writer: W,
) -> Result<(), serde_json::Error> {
    let mut ser = serde_json::Serializer::new(writer);
    Msg::<T>::encode(message, &mut ser)
}

/// Declare the OTLP/JSON shape of a prost message: each field's codec, its lowerCamelCase
/// JSON name and the proto field name also accepted on input, and at most one oneof.
///
/// Fields are written in the order given here: proto declaration order, as the
/// OpenTelemetry Collector writes them.
macro_rules! schema {
    (
        $ty:ty, $name:literal {
            $( $field:ident : $codec:ty = $json:literal $(| $alias:literal)? ),* $(,)?
        }
        $(
            oneof $oneof:ident : $enum:ident {
                $( $variant:ident ( $vcodec:ty ) = $vjson:literal $(| $valias:literal)? ),* $(,)?
            }
        )?
        $( array $afield:ident ( $aelem:ty ) )?
    ) => {
        impl $crate::codec::json::message::Schema for $ty {
            const NAME: &'static str = $name;

            fn read_field<'de, A: ::serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
                cx: &$crate::codec::json::scalar::Cx,
            ) -> Result<(), A::Error> {
                use $crate::codec::json::message::{read, skip_value};
                $(
                    // The JSON name of the member a oneof holds, for conflict errors.
                    fn member(value: &$enum) -> &'static str {
                        match value {
                            $( $enum::$variant(_) => $vjson, )*
                        }
                    }
                )?
                match key {
                    $( $json $(| $alias)? => {
                        self.$field = read::<$codec, A>(map, cx, $json)?;
                    } )*
                    $($( $vjson $(| $valias)? => {
                        let value = read::<$crate::codec::json::scalar::Nullable<$vcodec>, A>(
                            map, cx, $vjson,
                        )?;
                        if let Some(value) = value {
                            if let Some(previous) = &self.$oneof {
                                cx.push($crate::codec::json::scalar::Seg::Field($vjson));
                                return Err($crate::codec::json::scalar::oneof_conflict(
                                    stringify!($oneof), member(previous), $vjson,
                                ));
                            }
                            self.$oneof = Some($enum::$variant(value));
                        }
                    } )*)?
                    _ => skip_value(map)?,
                }
                Ok(())
            }

            fn write_fields<M: ::serde::ser::SerializeMap>(
                &self,
                map: &mut M,
            ) -> Result<(), M::Error> {
                use $crate::codec::json::scalar::Ser;
                $(
                    if !<$codec as $crate::codec::json::scalar::Codec>::is_default(&self.$field) {
                        map.serialize_entry($json, &Ser::<$codec>(&self.$field))?;
                    }
                )*
                $(
                    match &self.$oneof {
                        $( Some($enum::$variant(value)) => {
                            map.serialize_entry($vjson, &Ser::<$vcodec>(value))?;
                        } )*
                        None => {}
                    }
                )?
                Ok(())
            }

            $(
                fn read_array<'de, A: ::serde::de::SeqAccess<'de>>(
                    mut seq: A,
                    cx: &$crate::codec::json::scalar::Cx,
                ) -> Result<Self, A::Error> {
                    let mut message = Self::default();
                    message.$afield =
                        $crate::codec::json::scalar::read_seq::<$aelem, A>(&mut seq, cx)?;
                    Ok(message)
                }
            )?
        }
    };
}

pub(super) use schema;
