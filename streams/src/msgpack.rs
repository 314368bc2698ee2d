//! The MessagePack envelope's fast path: the shape every producer sends (a map of string keys
//! to nil, booleans, numbers and strings, with `data` a map of the same) read straight into a
//! [`WireEnvelope`], keys compared as bytes and only the strings the engine keeps checked for
//! UTF-8. rmp-serde's generic path spent about 6,200 instructions on an envelope (16 % of the
//! engine's work per drained reading), a third of them validating every key.
//!
//! It decides nothing: for anything outside that shape (an array for a struct, a binary or an
//! integer key, a value of the wrong type, a duplicate field, a nested value in an unknown
//! field, invalid UTF-8, trailing bytes, a truncated message) it answers `None`, and the
//! caller decodes the message with rmp-serde, which accepts or refuses it with the codes and
//! messages of docs/ingest.md. Where it answers, it answers what rmp-serde would: the property
//! test below holds it to that on generated envelopes, malformed ones included.

use std::borrow::Cow;

use rmp::Marker;

use crate::envelope::WireEnvelope;

/// A scalar value as it stands in the message; strings not yet checked for UTF-8.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scalar<'a> {
    Nil,
    Bool(bool),
    Number(f64),
    Str(&'a [u8]),
}

impl<'a> Scalar<'a> {
    /// An optional string, borrowed: `None` (fall back) for anything but nil or UTF-8 text.
    pub(crate) fn text(self) -> Option<Option<Cow<'a, str>>> {
        match self {
            Scalar::Nil => Some(None),
            Scalar::Str(bytes) => std::str::from_utf8(bytes)
                .ok()
                .map(|s| Some(Cow::Borrowed(s))),
            Scalar::Bool(_) | Scalar::Number(_) => None,
        }
    }

    /// An optional number; any MessagePack integer or float, as serde gives it to an `f64`.
    pub(crate) fn number(self) -> Option<Option<f64>> {
        match self {
            Scalar::Nil => Some(None),
            Scalar::Number(v) => Some(Some(v)),
            Scalar::Bool(_) | Scalar::Str(_) => None,
        }
    }

    /// An optional boolean.
    pub(crate) fn flag(self) -> Option<Option<bool>> {
        match self {
            Scalar::Nil => Some(None),
            Scalar::Bool(v) => Some(Some(v)),
            Scalar::Number(_) | Scalar::Str(_) => None,
        }
    }
}

/// A stream's `data` fields, in the order of [`Fields::NAMES`]: the contract's names, as the
/// struct's serde derive spells them (a unit test compares the two).
pub(crate) trait Fields<'a>: Default {
    const NAMES: &'static [&'static str];
    /// Sets field `index` of [`Fields::NAMES`] to `value`; `None` when the value has the wrong
    /// type for it.
    fn set(&mut self, index: usize, value: Scalar<'a>) -> Option<()>;
}

/// The envelope's fields, in the order [`envelope`] sets them; `data` last.
pub(crate) const ENVELOPE: [&str; 8] = [
    "eventId",
    "eventType",
    "eventVersion",
    "occurredAt",
    "producer",
    "tenantId",
    "correlationId",
    "data",
];

/// `payload` as an envelope with data `D`, or `None` when it is not in the fast path's shape
/// (see the module's documentation): then rmp-serde decides.
pub(crate) fn envelope<'a, D: Fields<'a>>(payload: &'a [u8]) -> Option<WireEnvelope<'a, D>> {
    let mut at = Cursor(payload);
    let mut env = WireEnvelope::<D>::default();
    let mut seen = 0u32;
    for _ in 0..at.map_len()? {
        let key = at.key()?;
        let Some(index) = ENVELOPE.iter().position(|name| name.as_bytes() == key) else {
            at.scalar()?;
            continue;
        };
        if seen & (1 << index) != 0 {
            return None;
        }
        seen |= 1 << index;
        if index == ENVELOPE.len() - 1 {
            env.data = match at.peek()? {
                0xc0 => {
                    at.0 = &at.0[1..];
                    None
                }
                _ => Some(Box::new(fields::<D>(&mut at)?)),
            };
            continue;
        }
        let text = at.scalar()?.text()?;
        *match index {
            0 => &mut env.event_id,
            1 => &mut env.event_type,
            2 => &mut env.event_version,
            3 => &mut env.occurred_at,
            4 => &mut env.producer,
            5 => &mut env.tenant_id,
            _ => &mut env.correlation_id,
        } = text;
    }
    // Bytes after the envelope are rmp-serde's to refuse.
    at.0.is_empty().then_some(env)
}

/// A map of `D`'s fields.
fn fields<'a, D: Fields<'a>>(at: &mut Cursor<'a>) -> Option<D> {
    debug_assert!(D::NAMES.len() <= 64, "a seen-mask bit per field");
    let mut data = D::default();
    let mut seen = 0u64;
    for _ in 0..at.map_len()? {
        let key = at.key()?;
        let value = at.scalar()?;
        let Some(index) = D::NAMES.iter().position(|name| name.as_bytes() == key) else {
            continue;
        };
        if seen & (1 << index) != 0 {
            return None;
        }
        seen |= 1 << index;
        data.set(index, value)?;
    }
    Some(data)
}

/// The unread rest of a message.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn marker(&mut self) -> Option<Marker> {
        Some(Marker::from_u8(self.array::<1>()?[0]))
    }

    /// The number of entries of a map; `None` for anything else.
    fn map_len(&mut self) -> Option<usize> {
        match self.marker()? {
            Marker::FixMap(n) => Some(n.into()),
            Marker::Map16 => Some(u16::from_be_bytes(self.array()?).into()),
            Marker::Map32 => usize::try_from(u32::from_be_bytes(self.array()?)).ok(),
            _ => None,
        }
    }

    /// A key: a string's bytes; `None` for any other type (rmp-serde takes binary and integer
    /// keys too, which no producer sends).
    fn key(&mut self) -> Option<&'a [u8]> {
        match self.scalar()? {
            Scalar::Str(bytes) => Some(bytes),
            _ => None,
        }
    }

    fn scalar(&mut self) -> Option<Scalar<'a>> {
        let number = |v: f64| Some(Scalar::Number(v));
        match self.marker()? {
            Marker::Null => Some(Scalar::Nil),
            Marker::True => Some(Scalar::Bool(true)),
            Marker::False => Some(Scalar::Bool(false)),
            Marker::FixPos(v) => number(v.into()),
            Marker::FixNeg(v) => number(v.into()),
            Marker::U8 => number(u8::from_be_bytes(self.array()?).into()),
            Marker::U16 => number(u16::from_be_bytes(self.array()?).into()),
            Marker::U32 => number(u32::from_be_bytes(self.array()?).into()),
            // As serde makes an f64 of a u64 or an i64: rounded to the nearest.
            Marker::U64 => number(u64::from_be_bytes(self.array()?) as f64),
            Marker::I8 => number(i8::from_be_bytes(self.array()?).into()),
            Marker::I16 => number(i16::from_be_bytes(self.array()?).into()),
            Marker::I32 => number(i32::from_be_bytes(self.array()?).into()),
            Marker::I64 => number(i64::from_be_bytes(self.array()?) as f64),
            Marker::F32 => number(f32::from_be_bytes(self.array()?).into()),
            Marker::F64 => number(f64::from_be_bytes(self.array()?)),
            Marker::FixStr(n) => self.take(n.into()).map(Scalar::Str),
            Marker::Str8 => {
                let n = u8::from_be_bytes(self.array()?);
                self.take(n.into()).map(Scalar::Str)
            }
            Marker::Str16 => {
                let n = u16::from_be_bytes(self.array()?);
                self.take(n.into()).map(Scalar::Str)
            }
            Marker::Str32 => {
                let n = usize::try_from(u32::from_be_bytes(self.array()?)).ok()?;
                self.take(n).map(Scalar::Str)
            }
            // Binary, arrays, maps, extensions and the reserved marker: rmp-serde's.
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The field names serde's derive gives `T`: the list it passes to `deserialize_struct`.
    pub(crate) fn serde_fields<'de, T: serde::Deserialize<'de>>() -> &'static [&'static str] {
        struct Names(Option<&'static [&'static str]>);
        #[derive(Debug)]
        struct Stop;
        impl std::fmt::Display for Stop {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("stop")
            }
        }
        impl std::error::Error for Stop {}
        impl serde::de::Error for Stop {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Stop
            }
        }
        impl<'de> serde::Deserializer<'de> for &mut Names {
            type Error = Stop;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
                Err(Stop)
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Stop> {
                self.0 = Some(fields);
                Err(Stop)
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        let mut names = Names(None);
        let _ = T::deserialize(&mut names);
        names.0.expect("a struct")
    }

    #[test]
    fn the_envelope_s_names_are_serde_s() {
        assert_eq!(
            serde_fields::<WireEnvelope<'_, crate::vitals::WireData<'_>>>(),
            ENVELOPE
        );
    }

    #[test]
    fn every_number_is_the_f64_serde_makes_of_it() {
        let cases: [(&[u8], f64); 12] = [
            (&[0x05], 5.0),
            (&[0xff], -1.0),
            (&[0xcc, 0xc8], 200.0),
            (&[0xcd, 0x01, 0x00], 256.0),
            (&[0xce, 0, 1, 0, 0], 65_536.0),
            (
                &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                u64::MAX as f64,
            ),
            (&[0xd0, 0x80], -128.0),
            (&[0xd1, 0x80, 0x00], -32_768.0),
            (&[0xd2, 0x80, 0, 0, 0], -2_147_483_648.0),
            (&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], i64::MIN as f64),
            (&[0xca, 0x3f, 0xc0, 0, 0], 1.5),
            (&[0xcb, 0x40, 0x42, 0x80, 0, 0, 0, 0, 0], 37.0),
        ];
        for (bytes, want) in cases {
            let Some(Scalar::Number(got)) = Cursor(bytes).scalar() else {
                panic!("{bytes:x?} is not a number");
            };
            let serde: f64 = rmp_serde::from_slice(bytes).expect("rmp-serde");
            assert_eq!((got, serde), (want, want), "{bytes:x?}");
        }
    }

    #[test]
    fn a_truncated_value_is_left_to_rmp_serde() {
        for bytes in [
            &[0xcb, 0x40][..],
            &[0xa5, b'a', b'b'],
            &[0xd9],
            &[0xda, 0x00],
            &[0xdb, 0, 0, 0, 9, b'x'],
            &[0xcd, 0x01],
            &[],
        ] {
            assert!(Cursor(bytes).scalar().is_none(), "{bytes:x?}");
        }
    }
}
