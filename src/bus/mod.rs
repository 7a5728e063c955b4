//! The event bus: typed events in eventsource-py's envelope, handlers, and buses that keep one
//! contract ([`EventBus`]): [`kafka::KafkaEventBus`] and [`InMemoryEventBus`].
//!
//! ```
//! use std::sync::Arc;
//! use kbus::bus::{new_uuid, Envelope, Event, EventBus, HandlerResult, InMemoryEventBus};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! struct Deposited {
//!     cents: i64,
//! }
//!
//! impl Event for Deposited {
//!     const EVENT_TYPE: &'static str = "Deposited";
//!     const AGGREGATE_TYPE: &'static str = "Account";
//! }
//!
//! async fn on_deposit(e: Arc<Envelope<Deposited>>) -> HandlerResult {
//!     println!("account {} got {} cents", e.meta.aggregate_id, e.event.cents);
//!     Ok(())
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // The same code runs on `kbus::bus::kafka::KafkaEventBus::connect(config)` + `start()`.
//! let bus = InMemoryEventBus::new();
//! bus.subscribe(on_deposit);
//! let account = new_uuid();
//! bus.publish(vec![Envelope::new(account, 1, Deposited { cents: 500 })]).await?;
//! assert_eq!(bus.stats().events_processed_success, 1);
//! # Ok::<(), kbus::bus::BusError>(())
//! # }).unwrap();
//! ```
//!
//! - [`event`]: the [`Event`] trait, the base fields ([`EventMeta`]) and [`Envelope`].
//! - [`handler`]: [`Handler`]s (async closures or objects) and [`Subscriber`] objects.
//! - [`event_bus`]: the [`EventBus`] contract and what can be published ([`Publish`]).
//! - [`kafka`]: [`kafka::KafkaEventBus`], the bus on Kafka, and its dead-letter tools.
//! - [`in_memory`]: [`InMemoryEventBus`], the bus within one process.
//! - [`registry`]: subscriptions and the dispatch of one event to its handlers.
//! - [`wire`]: an event as a Kafka record's key, value and headers, byte for byte as
//!   eventsource-py 0.8 writes them.
//! - [`dead_letter`]: the headers of dead letters and replays, and the guard on replays.
//! - [`stats`]: the bus's counters ([`BusStats`]).
//! - [`trace`]: W3C trace context in event headers, and the context handlers run in.
//! - `otel.rs` (feature `opentelemetry`): OpenTelemetry spans for publish, consume and dispatch
//!   from the global tracer provider (tracer `eventsource.adapters.kafka.bus`).
//! - [`time`]: [`Timestamp`], written and read in eventsource-py's spellings.
//! - `conformance` (feature `conformance`): the contract as a test suite to run against any bus.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod dead_letter;
pub mod error;
pub mod event;
pub mod event_bus;
pub mod handler;
pub mod in_memory;
pub mod kafka;
mod otel;
mod random;
pub mod registry;
pub mod stats;
pub mod time;
pub mod trace;
pub mod wire;

pub use error::BusError;
pub use event::{new_uuid, Envelope, Event, EventMeta, RawEnvelope, RawPayload, Uuid};
pub use event_bus::{EventBus, Publish};
pub use handler::{named, Handler, HandlerError, HandlerResult, Registration, Subscriber};
pub use in_memory::InMemoryEventBus;
#[cfg(feature = "opentelemetry")]
pub use otel::{METER, TRACER};
pub use registry::{Dispatched, HandlerFailure, Subscription};
pub use stats::BusStats;
pub use time::Timestamp;
pub use wire::{EnvelopeError, EventRecord};
