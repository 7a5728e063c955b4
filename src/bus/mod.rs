//! The event bus (in progress): typed events in eventsource-py's envelope, written and read byte for
//! byte as eventsource-py 0.8 writes and reads them.
//!
//! - [`event`]: the [`Event`] trait, the base fields ([`EventMeta`]) and [`Envelope`].
//! - [`wire`]: an event as a Kafka record's key, value and headers.
//! - [`dead_letter`]: the headers of dead letters and replays, and the guard on replays.
//! - [`time`]: [`Timestamp`], written and read in eventsource-py's spellings.

pub mod dead_letter;
pub mod event;
pub mod time;
pub mod wire;

pub use event::{new_uuid, Envelope, Event, EventMeta, RawEnvelope, RawPayload, Uuid};
pub use time::Timestamp;
pub use wire::{EnvelopeError, EventRecord};
