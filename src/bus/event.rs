//! Events and their envelope: the base fields every event carries ([`EventMeta`]) and the event's
//! own fields (the payload), as eventsource-py defines them.
//!
//! An application event is a serde struct that names its type:
//!
//! ```
//! use kbus::bus::{Envelope, Event, Uuid};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! struct OrderPlaced {
//!     order_number: String,
//!     total_cents: i64,
//! }
//!
//! impl Event for OrderPlaced {
//!     const EVENT_TYPE: &'static str = "OrderPlaced";
//!     const AGGREGATE_TYPE: &'static str = "Order";
//! }
//!
//! let order = Uuid::parse_str("5f0c2c2e-8a8b-4a64-9d5e-1b2c3d4e5f60").unwrap();
//! let placed = Envelope::new(order, 1, OrderPlaced { order_number: "ORD-1".into(), total_cents: 4200 });
//! assert_eq!(placed.meta.event_type, "OrderPlaced");
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

pub use uuid::Uuid;

use super::time::Timestamp;

/// An application event: its own fields through serde, its names as constants.
///
/// The payload is written flat beside the base fields, so its field names must not be those of
/// [`EventMeta`] (`event_id`, `event_type`, `aggregate_id`, `metadata`, ...): encoding such an event
/// fails.
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The `event_type` on the wire (eventsource-py uses the class name, e.g. `OrderPlaced`).
    const EVENT_TYPE: &'static str;
    /// The `event_version` (at least 1).
    const EVENT_VERSION: u32 = 1;
    /// The `aggregate_type` events of this type are written with.
    const AGGREGATE_TYPE: &'static str;
}

/// The base fields of every event, in the order they are written.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMeta {
    /// The event's id (fresh for every event).
    pub event_id: Uuid,
    /// The event type name.
    pub event_type: String,
    /// The schema version of the event type (at least 1).
    pub event_version: u32,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The aggregate the event belongs to: its key, so the aggregate's events keep their order.
    pub aggregate_id: Uuid,
    /// The aggregate's type name.
    pub aggregate_type: String,
    /// The aggregate's version after this event (at least 1).
    pub aggregate_version: u64,
    /// The tenant, in multi-tenant systems.
    pub tenant_id: Option<Uuid>,
    /// Who caused it (a user, a service).
    pub actor_id: Option<String>,
    /// The id shared by every event of one request or saga.
    pub correlation_id: Uuid,
    /// The event that caused this one.
    pub causation_id: Option<Uuid>,
    /// Free-form data (never null on the wire).
    pub metadata: Map<String, Value>,
}

impl EventMeta {
    /// The base fields of a new event of `event_type` on aggregate `aggregate_id` (of
    /// `aggregate_type`) at `aggregate_version`: a fresh event id and correlation id, version 1,
    /// occurred now, no tenant, actor or cause, empty metadata.
    pub fn new(
        event_type: impl Into<String>,
        aggregate_type: impl Into<String>,
        aggregate_id: Uuid,
        aggregate_version: u64,
    ) -> EventMeta {
        EventMeta {
            event_id: new_uuid(),
            event_type: event_type.into(),
            event_version: 1,
            occurred_at: Timestamp::now(),
            aggregate_id,
            aggregate_type: aggregate_type.into(),
            aggregate_version,
            tenant_id: None,
            actor_id: None,
            correlation_id: new_uuid(),
            causation_id: None,
            metadata: Map::new(),
        }
    }

    /// Marks this event as caused by `cause`: its causation id is `cause`'s event id, and it
    /// shares `cause`'s correlation id.
    pub fn caused_by(mut self, cause: &EventMeta) -> EventMeta {
        self.causation_id = Some(cause.event_id);
        self.correlation_id = cause.correlation_id;
        self
    }
}

/// An event with its base fields. `E` is an [`Event`] type, or [`RawPayload`] for events of any
/// type kept as JSON (wildcard handlers, tools).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<E> {
    /// The base fields.
    pub meta: EventMeta,
    /// The event's own fields.
    pub event: E,
}

/// The payload of an event of any type: its own fields as JSON, in the order they were written.
pub type RawPayload = Map<String, Value>;

/// An event of any type, its payload kept as JSON.
pub type RawEnvelope = Envelope<RawPayload>;

impl<E: Event> Envelope<E> {
    /// A new event on aggregate `aggregate_id` at `aggregate_version`, with the type's names and
    /// version and fresh ids (see [`EventMeta::new`]).
    pub fn new(aggregate_id: Uuid, aggregate_version: u64, event: E) -> Envelope<E> {
        let mut meta = EventMeta::new(
            E::EVENT_TYPE,
            E::AGGREGATE_TYPE,
            aggregate_id,
            aggregate_version,
        );
        meta.event_version = E::EVENT_VERSION;
        Envelope { meta, event }
    }

    /// The same event with its payload as JSON.
    pub fn into_raw(self) -> Result<RawEnvelope, serde_json::Error> {
        match serde_json::to_value(&self.event)? {
            Value::Object(payload) => Ok(Envelope {
                meta: self.meta,
                event: payload,
            }),
            other => Err(serde::ser::Error::custom(format!(
                "an event must serialize to a JSON object, not {other}"
            ))),
        }
    }
}

impl RawEnvelope {
    /// The payload read as event type `E`. Unknown fields are ignored, as eventsource-py ignores
    /// them.
    pub fn decode<E: Event>(self) -> Result<Envelope<E>, serde_json::Error> {
        let event = serde_json::from_value(Value::Object(self.event))?;
        Ok(Envelope {
            meta: self.meta,
            event,
        })
    }
}

/// A random (version 4) UUID.
pub fn new_uuid() -> Uuid {
    let mut bytes = [0u8; 16];
    super::random::fill(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
