//! Reading a record's value without building it as JSON first: one pass takes the base fields
//! (every other field skipped), and each handler then reads the payload straight from the bytes
//! into its own type, through a view of the object that hides the base fields. An event type the
//! fast way cannot read (a type that refuses unknown fields or repeats a field, say) is read the
//! slow way, from the payload as a JSON map, so what it accepts and the errors it gives are the
//! same either way.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess,
    Visitor,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{EnvelopeError, BASE_FIELDS};
use crate::bus::event::{new_uuid, EventMeta, RawEnvelope, RawPayload, Uuid};
use crate::bus::time::Timestamp;

/// An event read from a record: its base fields, and its payload still the record's JSON, read by
/// each handler as its own type ([`payload`](Self::payload)) or as JSON ([`raw`](Self::raw)).
#[derive(Debug)]
pub struct ReadEvent {
    /// The base fields.
    pub meta: EventMeta,
    value: Bytes,
    raw: OnceLock<Arc<RawEnvelope>>,
}

impl ReadEvent {
    /// Reads the base fields of `value`, a record's value; `event_type_header` is the record's
    /// `event_type` header, used when the JSON has none. The whole value must be a JSON object.
    pub fn read(value: Bytes, event_type_header: Option<&str>) -> Result<ReadEvent, EnvelopeError> {
        let base: BaseFields = serde_json::from_slice(&value)
            .map_err(|e| EnvelopeError::whole(format!("the value is not a JSON object: {e}")))?;
        Ok(ReadEvent {
            meta: base.into_meta(event_type_header)?,
            value,
            raw: OnceLock::new(),
        })
    }

    /// The payload read as `E`. Unknown fields are ignored, as eventsource-py ignores them.
    pub fn payload<E: DeserializeOwned>(&self) -> Result<E, serde_json::Error> {
        let mut json = serde_json::Deserializer::from_slice(&self.value);
        match E::deserialize(PayloadOnly(&mut json)) {
            Ok(event) => Ok(event),
            Err(_) => E::deserialize(&self.raw().event),
        }
    }

    /// The event with its payload as JSON, in the order it was written (made once, then shared).
    pub fn raw(&self) -> &Arc<RawEnvelope> {
        self.raw.get_or_init(|| {
            Arc::new(RawEnvelope {
                meta: self.meta.clone(),
                event: payload_map(&self.value),
            })
        })
    }

    /// The event with its payload as JSON.
    pub fn into_raw(self) -> RawEnvelope {
        let ReadEvent { meta, value, raw } = self;
        match raw.into_inner().map(Arc::try_unwrap) {
            Some(Ok(raw)) => raw,
            Some(Err(shared)) => (*shared).clone(),
            None => RawEnvelope {
                event: payload_map(&value),
                meta,
            },
        }
    }
}

/// The payload of `value` as JSON, in the order it was written. `value` was read whole as an
/// object already ([`ReadEvent::read`]): this cannot fail.
fn payload_map(value: &[u8]) -> RawPayload {
    let mut json = serde_json::Deserializer::from_slice(value);
    RawPayload::deserialize(PayloadOnly(&mut json)).unwrap_or_default()
}

fn base_index(name: &str) -> Option<usize> {
    BASE_FIELDS.iter().position(|f| *f == name)
}

/// An object key: borrowed from the bytes unless it holds escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// A value that is not a base field, read only to check it is well-formed JSON: every string is
/// decoded, so a lone UTF-16 surrogate escape or invalid UTF-8 anywhere in the value refuses the
/// record at once (skipping with `IgnoredAny` would let it through, and the payload could then
/// not be read as JSON). Strings without escapes are borrowed, so this copies nothing.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Checked;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
                while seq.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
                while map.next_key::<Key<'de>>()?.is_some() {
                    map.next_value::<Checked>()?;
                }
                Ok(Checked)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A base field's value as it came, to be checked the way eventsource-py checks it.
enum Scalar<'de> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(Cow<'de, str>),
    Array(Vec<Value>),
    Object(Map<String, Value>),
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::UInt(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar<'de>, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(Scalar::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar<'de>, A::Error> {
                Map::deserialize(MapAccessDeserializer::new(map)).map(Scalar::Object)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl Scalar<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::Int(_) | Scalar::UInt(_) | Scalar::Float(_) => "a number",
            Scalar::Text(_) => "text",
            Scalar::Array(_) => "an array",
            Scalar::Object(_) => "an object",
        }
    }

    fn into_value(self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(n) => n.into(),
            Scalar::UInt(n) => n.into(),
            Scalar::Float(f) => f.into(),
            Scalar::Text(s) => Value::String(s.into_owned()),
            Scalar::Array(a) => Value::Array(a),
            Scalar::Object(m) => Value::Object(m),
        }
    }
}

/// The base fields of a value, each as it came (the last one wins when a name repeats, as in
/// Python); every other field skipped.
#[derive(Default)]
struct BaseFields<'de> {
    slots: [Option<Scalar<'de>>; BASE_FIELDS.len()],
}

impl<'de> Deserialize<'de> for BaseFields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BaseFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BaseFields<'de>, A::Error> {
                let mut base = BaseFields::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match base_index(key.as_str()) {
                        Some(i) => base.slots[i] = Some(map.next_value()?),
                        None => {
                            map.next_value::<Checked>()?;
                        }
                    }
                }
                Ok(base)
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl<'de> BaseFields<'de> {
    fn take(&mut self, name: &str) -> Option<Scalar<'de>> {
        base_index(name).and_then(|i| self.slots[i].take())
    }

    /// The base fields checked and filled in as eventsource-py does (see the module docs of
    /// [`wire`](super)).
    fn into_meta(mut self, event_type_header: Option<&str>) -> Result<EventMeta, EnvelopeError> {
        let event_id = optional_uuid(self.take("event_id"), "event_id")?.unwrap_or_else(new_uuid);
        let event_type = match self.take("event_type") {
            Some(Scalar::Text(t)) => t.into_owned(),
            None | Some(Scalar::Null) => event_type_header
                .map(str::to_owned)
                .ok_or_else(|| EnvelopeError::field("event_type", "missing"))?,
            Some(other) => return Err(not_text("event_type", &other)),
        };
        let event_version = version(self.take("event_version"), "event_version")?;
        let occurred_at = match self.take("occurred_at") {
            None | Some(Scalar::Null) => Timestamp::now(),
            Some(Scalar::Text(t)) => Timestamp::parse(&t)
                .map_err(|e| EnvelopeError::field("occurred_at", e.to_string()))?,
            Some(v) => serde_json::from_value(v.into_value())
                .map_err(|e| EnvelopeError::field("occurred_at", e.to_string()))?,
        };
        let aggregate_id = optional_uuid(self.take("aggregate_id"), "aggregate_id")?
            .ok_or_else(|| EnvelopeError::field("aggregate_id", "missing"))?;
        let aggregate_type = match self.take("aggregate_type") {
            Some(Scalar::Text(t)) => t.into_owned(),
            None | Some(Scalar::Null) => {
                return Err(EnvelopeError::field("aggregate_type", "missing"))
            }
            Some(other) => return Err(not_text("aggregate_type", &other)),
        };
        let aggregate_version = version(self.take("aggregate_version"), "aggregate_version")?;
        let tenant_id = optional_uuid(self.take("tenant_id"), "tenant_id")?;
        let actor_id = match self.take("actor_id") {
            None | Some(Scalar::Null) => None,
            Some(Scalar::Text(a)) => Some(a.into_owned()),
            Some(other) => return Err(not_text("actor_id", &other)),
        };
        let correlation_id = match self.take("correlation_id") {
            None => new_uuid(),
            Some(v) => optional_uuid(Some(v), "correlation_id")?
                .ok_or_else(|| EnvelopeError::field("correlation_id", "null is not a UUID"))?,
        };
        let causation_id = optional_uuid(self.take("causation_id"), "causation_id")?;
        let metadata = match self.take("metadata") {
            None => Map::new(),
            Some(Scalar::Object(m)) => m,
            Some(Scalar::Null) => {
                return Err(EnvelopeError::field("metadata", "null (must be an object)"))
            }
            Some(other) => {
                return Err(EnvelopeError::field(
                    "metadata",
                    format!("{} is not an object", other.kind()),
                ))
            }
        };
        Ok(EventMeta {
            event_id,
            event_type,
            event_version: u32::try_from(event_version)
                .map_err(|_| EnvelopeError::field("event_version", "too large"))?,
            occurred_at,
            aggregate_id,
            aggregate_type,
            aggregate_version,
            tenant_id,
            actor_id,
            correlation_id,
            causation_id,
            metadata,
        })
    }
}

/// A UUID field: absent or null is `None`; text must be a UUID (any spelling the `uuid` crate
/// reads: upper case, braces, no hyphens, a URN).
fn optional_uuid(value: Option<Scalar<'_>>, field: &str) -> Result<Option<Uuid>, EnvelopeError> {
    match value {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Text(s)) => Uuid::parse_str(&s)
            .map(Some)
            .map_err(|_| EnvelopeError::field(field, format!("not a UUID: {s:?}"))),
        Some(other) => Err(EnvelopeError::field(
            field,
            format!("{} is not a UUID", other.kind()),
        )),
    }
}

/// A version field: absent or null is 1; an integer (or integer text, as pydantic reads it) of at
/// least 1.
fn version(value: Option<Scalar<'_>>, field: &str) -> Result<u64, EnvelopeError> {
    let n = match value {
        None | Some(Scalar::Null) => return Ok(1),
        Some(Scalar::UInt(n)) => i64::try_from(n).ok(),
        Some(Scalar::Int(n)) => Some(n),
        Some(Scalar::Float(f)) if f.fract() == 0.0 && f.abs() < 9e15 => Some(f as i64),
        Some(Scalar::Text(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n >= 1 => Ok(n as u64),
        Some(n) => Err(EnvelopeError::field(field, format!("{n} is below 1"))),
        None => Err(EnvelopeError::field(field, "not an integer")),
    }
}

fn not_text(field: &str, v: &Scalar<'_>) -> EnvelopeError {
    EnvelopeError::field(field, format!("{} is not text", v.kind()))
}

/// The value's object with its base fields hidden: what a payload type reads.
struct PayloadOnly<'a, 'de>(&'a mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>);

impl<'de> Deserializer<'de> for PayloadOnly<'_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(HideBase(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct HideBase<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for HideBase<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(WithoutBase(map))
    }
}

struct WithoutBase<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutBase<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            match self.0.next_key::<Key<'de>>()? {
                None => return Ok(None),
                Some(key) if base_index(key.as_str()).is_some() => {
                    self.0.next_value::<IgnoredAny>()?;
                }
                Some(Key::Borrowed(k)) => {
                    return seed.deserialize(BorrowedStrDeserializer::new(k)).map(Some)
                }
                Some(Key::Owned(k)) => {
                    return seed
                        .deserialize(de::value::StringDeserializer::new(k))
                        .map(Some)
                }
            }
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(seed)
    }
}
