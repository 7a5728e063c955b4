//! How an event travels in a Kafka record, byte for byte as eventsource-py 0.8 writes and reads
//! it: the key, the flat JSON value and the headers.
//!
//! - Key: the aggregate id, lowercase and hyphenated.
//! - Value: one compact JSON object: the base fields in [`EventMeta`]'s order, then the payload's
//!   fields at the same level, in the order the payload writes them. Text is raw UTF-8 (only
//!   control characters escaped), `occurred_at` ends in `Z` with a six-digit fraction only when it
//!   has microseconds.
//! - Headers, all UTF-8 text, none twice, none null: `event_id`, `event_type`, `aggregate_id`,
//!   `aggregate_type`, `aggregate_version`, `occurred_at` (`+00:00` form), `correlation_id`, then
//!   `tenant_id`, `causation_id` and `actor_id` when they are not empty.
//!
//! Reading is as lenient as eventsource-py's: unknown fields are kept in the payload, a missing
//! `event_id` or `correlation_id` gets a fresh one, a missing `event_type` is taken from the
//! header, missing versions are 1, a missing `occurred_at` is now, and timestamps come in any
//! spelling [`Timestamp::parse`] reads. It refuses what Python refuses: a missing `aggregate_id`
//! or `aggregate_type`, ids that are not UUIDs, versions below 1, `metadata: null`.

use std::fmt;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use super::event::{EventMeta, RawEnvelope, Uuid};

mod read;
pub use read::ReadEvent;

/// The base fields, in the order they are written; each one also a header name.
pub const BASE_FIELDS: [&str; 12] = [
    "event_id",
    "event_type",
    "event_version",
    "occurred_at",
    "aggregate_id",
    "aggregate_type",
    "aggregate_version",
    "tenant_id",
    "actor_id",
    "correlation_id",
    "causation_id",
    "metadata",
];

/// An event as a Kafka record's key, value and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// The aggregate id as text.
    pub key: Bytes,
    /// The JSON object.
    pub value: Bytes,
    /// The headers, in order.
    pub headers: Vec<(&'static str, String)>,
}

/// An event that could not be written or read, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeError {
    field: Option<String>,
    message: String,
}

impl EnvelopeError {
    fn field(field: &str, message: impl Into<String>) -> EnvelopeError {
        EnvelopeError {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub(crate) fn whole(message: impl Into<String>) -> EnvelopeError {
        EnvelopeError {
            field: None,
            message: message.into(),
        }
    }

    /// The field at fault, when one is.
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "event field `{field}`: {}", self.message),
            None => write!(f, "event: {}", self.message),
        }
    }
}

impl std::error::Error for EnvelopeError {}

/// Room first made for an event's JSON: the base fields take about 400 bytes.
const ENVELOPE_CAPACITY: usize = 640;

/// The base fields as written: their order is the wire order.
#[derive(Serialize)]
struct BaseOut<'a> {
    event_id: &'a Uuid,
    event_type: &'a str,
    event_version: u32,
    occurred_at: String,
    aggregate_id: &'a Uuid,
    aggregate_type: &'a str,
    aggregate_version: u64,
    tenant_id: &'a Option<Uuid>,
    actor_id: &'a Option<String>,
    correlation_id: &'a Uuid,
    causation_id: &'a Option<Uuid>,
    metadata: &'a Map<String, Value>,
}

/// Writes the event `meta` + `payload` as a record. Fails when the payload is not a JSON object,
/// or has a field named like a base field.
pub fn encode<P: Serialize + ?Sized>(
    meta: &EventMeta,
    payload: &P,
) -> Result<EventRecord, EnvelopeError> {
    let base = BaseOut {
        event_id: &meta.event_id,
        event_type: &meta.event_type,
        event_version: meta.event_version,
        occurred_at: meta.occurred_at.to_json_string(),
        aggregate_id: &meta.aggregate_id,
        aggregate_type: &meta.aggregate_type,
        aggregate_version: meta.aggregate_version,
        tenant_id: &meta.tenant_id,
        actor_id: &meta.actor_id,
        correlation_id: &meta.correlation_id,
        causation_id: &meta.causation_id,
        metadata: &meta.metadata,
    };
    // The base fields and then the payload, written one after the other into one buffer of
    // about their size (no regrowing on the way).
    let mut value = Vec::with_capacity(ENVELOPE_CAPACITY);
    serde_json::to_writer(&mut value, &base).map_err(|e| EnvelopeError::whole(e.to_string()))?;
    let base_end = value.len();
    serde_json::to_writer(&mut value, payload)
        .map_err(|e| EnvelopeError::whole(format!("the payload cannot be written: {e}")))?;
    // Both are objects: the payload's members go in place of the base's closing brace.
    let fields = &value[base_end..];
    if !(fields.len() >= 2 && fields[0] == b'{' && fields[fields.len() - 1] == b'}') {
        return Err(EnvelopeError::whole(
            "the payload must be written as a JSON object",
        ));
    }
    if fields.len() == 2 {
        // An empty payload: the base fields alone.
        value.truncate(base_end);
    } else {
        check_payload_names(fields)?;
        value[base_end - 1] = b',';
        value.remove(base_end);
    }
    Ok(EventRecord {
        key: Bytes::from(uuid_text(&meta.aggregate_id)),
        value: Bytes::from(value),
        headers: headers(meta),
    })
}

/// The base fields as they would appear as keys in compact JSON.
const BASE_KEYS: [&str; 12] = [
    "\"event_id\":",
    "\"event_type\":",
    "\"event_version\":",
    "\"occurred_at\":",
    "\"aggregate_id\":",
    "\"aggregate_type\":",
    "\"aggregate_version\":",
    "\"tenant_id\":",
    "\"actor_id\":",
    "\"correlation_id\":",
    "\"causation_id\":",
    "\"metadata\":",
];

/// Refuses a payload with a field named like a base field: it would be written twice. The
/// payload is read as JSON only when its text holds such a key at all (a string value may).
fn check_payload_names(payload: &[u8]) -> Result<(), EnvelopeError> {
    // One pass: a key starts at a quote.
    let may_clash = payload.iter().enumerate().any(|(i, &b)| {
        b == b'"'
            && BASE_KEYS
                .iter()
                .any(|key| payload[i..].starts_with(key.as_bytes()))
    });
    if !may_clash {
        return Ok(());
    }
    let names: Map<String, Value> = serde_json::from_slice(payload)
        .map_err(|e| EnvelopeError::whole(format!("the payload is not a JSON object: {e}")))?;
    match BASE_FIELDS.iter().find(|f| names.contains_key(**f)) {
        Some(clash) => Err(EnvelopeError::field(
            clash,
            "the payload has a field named like a base field; rename it",
        )),
        None => Ok(()),
    }
}

/// The headers of an event, in order.
pub fn headers(meta: &EventMeta) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("event_id", uuid_text(&meta.event_id)),
        ("event_type", meta.event_type.clone()),
        ("aggregate_id", uuid_text(&meta.aggregate_id)),
        ("aggregate_type", meta.aggregate_type.clone()),
        ("aggregate_version", meta.aggregate_version.to_string()),
        ("occurred_at", meta.occurred_at.to_header_string()),
        ("correlation_id", uuid_text(&meta.correlation_id)),
    ];
    if let Some(tenant) = meta.tenant_id {
        h.push(("tenant_id", uuid_text(&tenant)));
    }
    if let Some(cause) = meta.causation_id {
        h.push(("causation_id", uuid_text(&cause)));
    }
    if let Some(actor) = meta.actor_id.as_ref().filter(|a| !a.is_empty()) {
        h.push(("actor_id", actor.clone()));
    }
    h
}

/// A UUID in its hyphenated lower-case form, written straight into a string of its size
/// (`to_string` goes through the formatting machinery: four of these per published event).
fn uuid_text(id: &Uuid) -> String {
    id.hyphenated()
        .encode_lower(&mut Uuid::encode_buffer())
        .to_owned()
}

/// Reads a record's value as an event of any type; `event_type_header` is the record's
/// `event_type` header, used when the JSON has no `event_type`. (The consuming bus reads with
/// [`ReadEvent`], which leaves the payload to each handler's type.)
pub fn decode(value: &[u8], event_type_header: Option<&str>) -> Result<RawEnvelope, EnvelopeError> {
    ReadEvent::read(Bytes::copy_from_slice(value), event_type_header).map(ReadEvent::into_raw)
}

#[cfg(test)]
mod tests;
