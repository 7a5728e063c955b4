//! The [`EventBus`] contract every bus keeps (the Kafka bus, the in-memory bus, a user's own), and
//! [`Publish`]: what can be published.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::error::BusError;
use super::event::{Envelope, Event, EventMeta, RawEnvelope, RawPayload};
use super::handler::{Handler, Subscriber};
use super::registry::Subscription;
use super::stats::BusStats;
use super::wire::{self, EnvelopeError, EventRecord};

/// An event ready to publish: a typed [`Envelope`] or a [`RawEnvelope`].
pub trait Publish: Send + 'static {
    /// Its base fields.
    fn meta(&self) -> &EventMeta;
    /// Its record.
    fn to_record(&self) -> Result<EventRecord, EnvelopeError>;
}

impl<E: Event> Publish for Envelope<E> {
    fn meta(&self) -> &EventMeta {
        &self.meta
    }
    fn to_record(&self) -> Result<EventRecord, EnvelopeError> {
        wire::encode(&self.meta, &self.event)
    }
}

impl Publish for RawEnvelope {
    fn meta(&self) -> &EventMeta {
        &self.meta
    }
    fn to_record(&self) -> Result<EventRecord, EnvelopeError> {
        wire::encode(&self.meta, &self.event)
    }
}

/// What every event bus does.
///
/// Within one aggregate, events reach handlers in the order they were published, also across
/// calls. Every handler of an event runs even when another one fails.
pub trait EventBus: Send + Sync + 'static {
    /// Publishes `events` and returns once every one is acknowledged (written where the bus
    /// keeps events). Fails without publishing any when one cannot be written.
    fn publish<P: Publish>(
        &self,
        events: Vec<P>,
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Queues `events` for publishing and returns once they are queued: at once while fewer than
    /// the bus's bound are waiting, else when room is made. Order is kept with every other
    /// publish; failures are counted and logged.
    fn publish_background<P: Publish>(
        &self,
        events: Vec<P>,
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Handles events of type `E` with `handler`.
    fn subscribe<E: Event>(&self, handler: impl Handler<E>) -> Subscription;

    /// Handles every event with `handler`, its payload as JSON.
    fn subscribe_all(&self, handler: impl Handler<RawPayload>) -> Subscription;

    /// Removes the handler `subscription` stands for; false when it was not there.
    fn unsubscribe(&self, subscription: Subscription) -> bool;

    /// Registers every handler of `subscriber`.
    fn register<S: Subscriber>(&self, subscriber: Arc<S>) -> Vec<Subscription>;

    /// The bus's statistics now.
    fn stats(&self) -> BusStats;

    /// Stops the bus: no new publishes; what is under way finishes within `timeout` (or is
    /// abandoned, and the error says so). Returns as soon as nothing is left.
    fn shutdown(&self, timeout: Duration) -> impl Future<Output = Result<(), BusError>> + Send;
}
