//! The MessagePack envelope's fast path, for every inbound stream: the shape producers send
//! (a map of string keys to nil, booleans, numbers and strings, with `data` a map of the same;
//! unknown fields of any kind passed over) read straight into a [`WireEnvelope`], keys
//! compared as bytes and only the strings the engine keeps checked for UTF-8. rmp-serde's
//! generic path spent about 6,200 instructions on a `VITALS` envelope (16 % of the engine's
//! work per drained reading), a third of them validating every key.
//!
//! It decides nothing: for anything outside that shape (an array for a struct, a binary or an
//! integer key, a value of the wrong type, a duplicate field, an unknown field holding an
//! extension or nested more than [`NESTING`] deep, invalid UTF-8 where a string is kept,
//! trailing bytes, a truncated message) it answers `None`, and the caller decodes the message
//! with rmp-serde, which accepts or refuses it with the codes and messages of docs/ingest.md.
//! Where it answers, it answers what rmp-serde would: the property tests of `vitals` and
//! `practice` hold it to that on generated envelopes, malformed ones included.

use std::borrow::Cow;

use rmp::Marker;

use crate::envelope::{Encoding, Rejection, WireEnvelope};

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

/// [`crate::envelope::decode`] of an envelope with data `D` on `stream`, by the fast path where
/// it answers (MessagePack of the usual shape) and by serde otherwise: every inbound stream's
/// one way in.
///
/// # Errors
/// The [`Rejection`] of [`crate::envelope::decode`].
pub(crate) fn decode<'a, D>(
    payload: &'a [u8],
    encoding: Encoding,
    stream: &str,
) -> Result<WireEnvelope<'a, D>, Rejection>
where
    D: Fields<'a> + serde::Deserialize<'a>,
{
    match encoding {
        Encoding::MessagePack => match envelope(payload) {
            Some(env) => Ok(env),
            None => crate::envelope::decode(payload, encoding, stream),
        },
        Encoding::Json => crate::envelope::decode(payload, encoding, stream),
    }
}

/// `payload` as an envelope with data `D`, or `None` when it is not in the fast path's shape
/// (see the module's documentation): then rmp-serde decides.
pub(crate) fn envelope<'a, D: Fields<'a>>(payload: &'a [u8]) -> Option<WireEnvelope<'a, D>> {
    let mut at = Cursor(payload);
    let mut env = WireEnvelope::<D>::default();
    let mut seen = 0u32;
    for _ in 0..at.map_len()? {
        let key = at.key()?;
        let Some(index) = ENVELOPE.iter().position(|name| name.as_bytes() == key) else {
            at.skip(NESTING)?;
            continue;
        };
        if seen & (1 << index) != 0 {
            return None;
        }
        seen |= 1 << index;
        if index == ENVELOPE.len() - 1 {
            env.data = match at.peek()? {
                0xc0 => {
                    at.marker()?;
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
        let Some(index) = D::NAMES.iter().position(|name| name.as_bytes() == key) else {
            at.skip(NESTING)?;
            continue;
        };
        let value = at.scalar()?;
        if seen & (1 << index) != 0 {
            return None;
        }
        seen |= 1 << index;
        data.set(index, value)?;
    }
    Some(data)
}

/// How deep an unknown field's value may nest (a check-in's `screeningAnswers` is one level)
/// before the fast path leaves it to rmp-serde.
const NESTING: usize = 8;

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

    /// The length that follows a binary's, array's or map's `marker` (inside a fix marker, or
    /// in the 8-, 16- or 32-bit field after it); `None` for any other marker.
    fn len(&mut self, marker: Marker) -> Option<usize> {
        match marker {
            Marker::FixArray(n) | Marker::FixMap(n) => Some(n.into()),
            Marker::Bin8 => Some(u8::from_be_bytes(self.array()?).into()),
            Marker::Bin16 | Marker::Array16 | Marker::Map16 => {
                Some(u16::from_be_bytes(self.array()?).into())
            }
            Marker::Bin32 | Marker::Array32 | Marker::Map32 => {
                usize::try_from(u32::from_be_bytes(self.array()?)).ok()
            }
            _ => None,
        }
    }

    /// The number of entries of a map; `None` for anything else.
    fn map_len(&mut self) -> Option<usize> {
        match self.marker()? {
            marker @ (Marker::FixMap(_) | Marker::Map16 | Marker::Map32) => self.len(marker),
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

    /// Passes over one value of any type but an extension, nested at most `depth` deep:
    /// an unknown field's, which rmp-serde ignores too.
    fn skip(&mut self, depth: usize) -> Option<()> {
        match Marker::from_u8(self.peek()?) {
            marker @ (Marker::Bin8 | Marker::Bin16 | Marker::Bin32) => {
                self.marker()?;
                let n = self.len(marker)?;
                self.take(n).map(drop)
            }
            marker @ (Marker::FixArray(_) | Marker::Array16 | Marker::Array32) => {
                self.marker()?;
                let n = self.len(marker)?;
                let inner = depth.checked_sub(1)?;
                (0..n).try_for_each(|_| self.skip(inner))
            }
            marker @ (Marker::FixMap(_) | Marker::Map16 | Marker::Map32) => {
                self.marker()?;
                let n = self.len(marker)?;
                let inner = depth.checked_sub(1)?;
                (0..n).try_for_each(|_| {
                    self.skip(inner)?;
                    self.skip(inner)
                })
            }
            _ => self.scalar().map(drop),
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
            // A string's length read here, not through `len`: this is every key's and most
            // values' path, and the shared match cost about 870 instructions an envelope.
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
    use proptest::prelude::*;

    /// A MessagePack value, encoded as written: `wide` picks the longer forms of a
    /// length or a small integer that an encoder may choose.
    #[derive(Debug, Clone)]
    enum Value {
        Nil,
        Bool(bool),
        Uint(u64, bool),
        Int(i64, bool),
        F32(f32),
        F64(f64),
        Str(Vec<u8>, bool),
        Bin(Vec<u8>),
        Array(Vec<Value>),
        Map(Vec<(Value, Value)>, bool),
    }

    fn encode(v: &Value, out: &mut Vec<u8>) {
        use rmp::encode as e;
        match v {
            Value::Nil => e::write_nil(out).expect("vec"),
            Value::Bool(b) => e::write_bool(out, *b).expect("vec"),
            Value::Uint(n, false) => drop(e::write_uint(out, *n).expect("vec")),
            Value::Uint(n, true) => e::write_u64(out, *n).expect("vec"),
            Value::Int(n, false) => drop(e::write_sint(out, *n).expect("vec")),
            Value::Int(n, true) => e::write_i64(out, *n).expect("vec"),
            Value::F32(f) => e::write_f32(out, *f).expect("vec"),
            Value::F64(f) => e::write_f64(out, *f).expect("vec"),
            Value::Str(bytes, wide) => {
                if *wide {
                    out.push(0xda);
                    out.extend((bytes.len() as u16).to_be_bytes());
                } else {
                    e::write_str_len(out, bytes.len() as u32).expect("vec");
                }
                out.extend(bytes);
            }
            Value::Bin(bytes) => e::write_bin(out, bytes).expect("vec"),
            Value::Array(items) => {
                e::write_array_len(out, items.len() as u32).expect("vec");
                items.iter().for_each(|item| encode(item, out));
            }
            Value::Map(entries, wide) => {
                if *wide {
                    out.push(0xde);
                    out.extend((entries.len() as u16).to_be_bytes());
                } else {
                    e::write_map_len(out, entries.len() as u32).expect("vec");
                }
                for (k, v) in entries {
                    encode(k, out);
                    encode(v, out);
                }
            }
        }
    }

    fn text(s: &'static str) -> Value {
        Value::Str(s.as_bytes().to_vec(), false)
    }

    /// A key: mostly a field's name, sometimes one no field has, invalid UTF-8, or
    /// not a string at all.
    fn key(names: &'static [&'static str]) -> impl Strategy<Value = Value> {
        prop_oneof![
            12 => (prop::sample::select(names), any::<bool>())
                .prop_map(|(n, wide)| Value::Str(n.as_bytes().to_vec(), wide)),
            2 => prop::sample::select(&["deviceId", "", "eventid", "dataX", "meta"][..]).prop_map(text),
            1 => Just(Value::Str(vec![b'h', 0xff, b'r'], false)),
            1 => (0u64..30).prop_map(|n| Value::Uint(n, false)),
            1 => prop::sample::select(&["hr", "eventId"][..])
                .prop_map(|n| Value::Bin(n.as_bytes().to_vec())),
        ]
    }

    /// A scalar as producers send them, and some they should not.
    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            2 => Just(Value::Nil),
            1 => any::<bool>().prop_map(Value::Bool),
            2 => (any::<u64>(), any::<bool>()).prop_map(|(n, w)| Value::Uint(n % 400, w)),
            1 => (any::<u64>(), any::<bool>()).prop_map(|(n, w)| Value::Uint(n, w)),
            1 => (any::<i64>(), any::<bool>()).prop_map(|(n, w)| Value::Int(n, w)),
            1 => any::<f32>().prop_map(Value::F32),
            2 => (0.0f64..400.0).prop_map(Value::F64),
            1 => any::<f64>().prop_map(Value::F64),
            6 => (prop::sample::select(&[
                "1", "evt-1", "vitals.observation.v1", "lab.result.v1",
                "patient.admitted.v1", "2025-11-27T09:05:00Z", "clinic-abc",
                "patient-123", "icu-3", "A", "lactate", "F", "", "appt-456", "checked_in",
                "in_progress", "occupied", "chair-12", "provider-7", "patient.checkin.v1",
            ][..]), any::<bool>())
                .prop_map(|(s, wide)| Value::Str(s.as_bytes().to_vec(), wide)),
            1 => Just(Value::Str(vec![0xc3, 0x28], false)),
            1 => Just(Value::Bin(b"A".to_vec())),
            1 => Just(Value::Array(vec![Value::Nil])),
            1 => Just(Value::Map(vec![(text("fever"), Value::Bool(false))], false)),
            1 => Just(Value::Map(
                vec![(Value::Uint(1, false), Value::Array(vec![Value::Str(vec![0xff], false)]))],
                true,
            )),
            1 => (0usize..12).prop_map(|depth| {
                (0..depth).fold(Value::Nil, |inner, _| Value::Array(vec![inner]))
            }),
        ]
    }

    /// A field of the data and a value: mostly of the field's type, so that whole
    /// envelopes often decode (and a duplicate field is what refuses them).
    fn data_entry<D: Fields<'static>>() -> impl Strategy<Value = (Value, Value)> {
        let typed = (
            prop::sample::select(D::NAMES),
            any::<bool>(),
            scalar(),
            0.0f64..400.0,
        )
            .prop_map(|(name, wide, any, number)| {
                let key = Value::Str(name.as_bytes().to_vec(), wide);
                let mut probe = D::default();
                let index = D::NAMES.iter().position(|n| *n == name).expect("a name");
                let value = if probe.set(index, Scalar::Number(1.0)).is_some() {
                    Value::F64(number)
                } else if probe.set(index, Scalar::Bool(true)).is_some() {
                    Value::Bool(number > 200.0)
                } else {
                    match any {
                        Value::Str(..) | Value::Nil => any,
                        _ => text("patient-123"),
                    }
                };
                (key, value)
            });
        prop_oneof![3 => typed, 1 => (key(D::NAMES), scalar())]
    }

    fn data<D: Fields<'static>>() -> impl Strategy<Value = Value> {
        prop_oneof![
            8 => (prop::collection::vec(data_entry::<D>(), 0..8), any::<bool>())
                .prop_map(|(entries, wide)| Value::Map(entries, wide)),
            1 => Just(Value::Nil),
            1 => scalar(),
            1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
        ]
    }

    /// Generated MessagePack envelopes with data `D`: mostly maps of the envelope's and
    /// `D`'s fields with values of their types, and every way of straying from that shape
    /// (wrong types, duplicate, unknown and non-string keys, invalid UTF-8, an array or a
    /// scalar for a map, two bytes after the envelope, the envelope cut short).
    pub(crate) fn envelopes<D: Fields<'static>>() -> impl Strategy<Value = Vec<u8>> {
        let entry = (key(&ENVELOPE), scalar(), data::<D>()).prop_map(|(k, v, d)| match &k {
            Value::Str(name, _) if name == b"data" => (k, d),
            _ => (k, v),
        });
        let value = prop_oneof![
            12 => (prop::collection::vec(entry, 0..11), any::<bool>())
                .prop_map(|(entries, wide)| Value::Map(entries, wide)),
            1 => prop::collection::vec(scalar(), 0..8).prop_map(Value::Array),
            1 => scalar(),
        ];
        (
            value,
            prop::collection::vec(any::<u8>(), 0..3),
            prop::option::weighted(0.1, any::<prop::sample::Index>()),
        )
            .prop_map(|(v, tail, cut)| {
                let mut packed = Vec::new();
                encode(&v, &mut packed);
                if tail.len() == 2 {
                    packed.extend(&tail);
                }
                if let Some(cut) = cut {
                    packed.truncate(cut.index(packed.len() + 1));
                }
                packed
            })
    }

    /// The property both streams' tests hold the fast path to: where it answers for `packed`,
    /// rmp-serde reads the same envelope (compared as Debug text, in which a NaN equals itself).
    pub(crate) fn reads_as_rmp_serde<'a, D>(
        packed: &'a [u8],
        stream: &str,
    ) -> Result<(), TestCaseError>
    where
        D: Fields<'a> + serde::Deserialize<'a> + std::fmt::Debug,
    {
        if let Some(fast) = envelope::<D>(packed) {
            let slow =
                crate::envelope::decode::<WireEnvelope<D>>(packed, Encoding::MessagePack, stream);
            prop_assert_eq!(
                Some(format!("{fast:?}")),
                slow.ok().map(|e| format!("{e:?}")),
                "{:x?}",
                packed
            );
        }
        Ok(())
    }

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

    /// An unknown field nested deeper than [`NESTING`] is rmp-serde's to judge (it refuses
    /// beyond its own limit); the fast path neither reads it nor recurses into it, however
    /// deep a 64 KiB message nests.
    #[test]
    fn deep_nesting_is_left_to_rmp_serde() {
        let envelope = |depth: usize| {
            let mut packed = vec![0x81, 0xa1, b'x'];
            packed.extend(std::iter::repeat_n(0x91, depth));
            packed.push(0xc0);
            packed
        };
        let shallow = envelope(NESTING);
        assert!(super::envelope::<crate::vitals::WireData>(&shallow).is_some());
        for depth in [NESTING + 1, 60_000] {
            let deep = envelope(depth);
            assert!(
                super::envelope::<crate::vitals::WireData>(&deep).is_none(),
                "{depth}"
            );
        }
    }

    /// Unknown fields of every kind rmp-serde ignores are passed over: binary, arrays, maps
    /// with any keys, invalid UTF-8; the fields after them are read.
    #[test]
    fn unknown_fields_are_passed_over() {
        let packed = [
            &[0x85, 0xa4][..],
            b"blob",
            &[0xc4, 3, 1, 2, 3, 0xa3],
            b"arr",
            &[0x92, 0xc3, 0xa1, 0xff, 0xa3],
            b"map",
            &[0x81, 0x01, 0x80, 0xa3],
            b"b16",
            &[0xc5, 0, 2, 9, 9, 0xa7],
            b"eventId",
            &[0xa1, b'e'],
        ]
        .concat();
        let env = super::envelope::<crate::vitals::WireData>(&packed).expect("the fast path");
        assert_eq!(env.event_id.as_deref(), Some("e"));
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
