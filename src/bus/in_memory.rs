//! [`InMemoryEventBus`]: the bus within one process, for tests and single-process applications.
//!
//! It keeps the Kafka bus's contract and its wire form: every event is written as the Kafka bus
//! writes it and read back as a consumer reads it before its handlers see it, so an event that
//! would not survive Kafka does not survive here either. Events are handled one at a time, in the
//! order they were published (so per aggregate too); `publish` returns once its events were
//! handled. There are no retries and no dead letters: a handler failure is counted and logged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::error::BusError;
use super::event::{Event, RawPayload};
use super::event_bus::{EventBus, Publish};
use super::handler::{Handler, Route, Subscriber};
use super::registry::{Dispatched, Registry, Subscription};
use super::stats::{BusStats, Counters};
use super::wire::{self, EventRecord};

/// Events queued by default before `publish_background` waits.
const DEFAULT_CAPACITY: usize = 1024;

/// An event bus inside one process.
#[derive(Clone)]
pub struct InMemoryEventBus {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    counters: Counters,
    /// `None` once shut down.
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    receiver: Mutex<Option<mpsc::Receiver<Job>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// Events to handle, and who waits for them.
struct Job {
    events: Vec<EventRecord>,
    done: Option<oneshot::Sender<()>>,
}

impl Default for InMemoryEventBus {
    fn default() -> Self {
        InMemoryEventBus::new()
    }
}

impl std::fmt::Debug for InMemoryEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryEventBus")
            .field("stats", &self.inner.counters.snapshot())
            .finish()
    }
}

impl InMemoryEventBus {
    /// A bus whose background publishes wait once 1024 events are queued.
    pub fn new() -> InMemoryEventBus {
        InMemoryEventBus::with_capacity(DEFAULT_CAPACITY)
    }

    /// A bus whose handler calls may run `limit` at most each: one that runs longer is cancelled
    /// (at its next await) and counts as a failed handler (`HandlerTimeout`).
    pub fn with_handler_timeout(limit: Duration) -> InMemoryEventBus {
        InMemoryEventBus::build(DEFAULT_CAPACITY, Some(limit))
    }

    /// A bus whose background publishes wait once `capacity` publishes are queued.
    pub fn with_capacity(capacity: usize) -> InMemoryEventBus {
        InMemoryEventBus::build(capacity, None)
    }

    fn build(capacity: usize, handler_timeout: Option<Duration>) -> InMemoryEventBus {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let counters = Counters::new();
        counters.connected();
        InMemoryEventBus {
            inner: Arc::new(Inner {
                registry: Registry::with_handler_timeout(handler_timeout),
                counters,
                queue: Mutex::new(Some(tx)),
                receiver: Mutex::new(Some(rx)),
                worker: Mutex::new(None),
            }),
        }
    }

    /// The queue, starting the worker on first use (inside the caller's runtime).
    fn sender(&self) -> Result<mpsc::Sender<Job>, BusError> {
        let sender = lock(&self.inner.queue).clone().ok_or(BusError::Closed)?;
        if let Some(rx) = lock(&self.inner.receiver).take() {
            let inner = self.inner.clone();
            *lock(&self.inner.worker) = Some(tokio::spawn(work(inner, rx)));
        }
        Ok(sender)
    }

    fn encode<P: Publish>(events: &[P]) -> Result<Vec<EventRecord>, BusError> {
        events
            .iter()
            .map(|e| e.to_record().map_err(BusError::from))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Handles queued events in order until the queue closes.
async fn work(inner: Arc<Inner>, mut rx: mpsc::Receiver<Job>) {
    while let Some(job) = rx.recv().await {
        for record in job.events {
            handle(&inner, record).await;
        }
        if let Some(done) = job.done {
            let _ = done.send(());
        }
    }
}

/// Reads `record` back as a consumer would and runs its handlers.
async fn handle(inner: &Inner, record: EventRecord) {
    let c = &inner.counters;
    c.consumed(1);
    let event_type = record
        .headers
        .iter()
        .find(|(k, _)| *k == "event_type")
        .map(|(_, v)| v.as_str());
    let event = match wire::ReadEvent::read(record.value.clone(), event_type) {
        Ok(e) => e,
        Err(e) => {
            // Cannot happen for what the bus wrote itself; counted if it does.
            tracing::warn!(error = %e, "in-memory bus: an event could not be read back");
            Counters::add(&c.events_processed_failed, 1);
            c.error();
            return;
        }
    };
    match inner.registry.dispatch(&event).await {
        Dispatched::Handled => Counters::add(&c.events_processed_success, 1),
        Dispatched::NoHandler => Counters::add(&c.events_skipped, 1),
        Dispatched::Failed(failures) => {
            Counters::add(&c.events_processed_failed, 1);
            Counters::add(&c.handler_errors, failures.len() as u64);
            c.error();
            for f in &failures {
                tracing::warn!(
                    event_type = %event.meta.event_type,
                    event_id = %event.meta.event_id,
                    handler = %f.handler,
                    error = %f.error,
                    "handler failed"
                );
            }
        }
        Dispatched::Undecodable(why) => {
            Counters::add(&c.events_processed_failed, 1);
            c.error();
            tracing::warn!(
                event_type = %event.meta.event_type,
                event_id = %event.meta.event_id,
                error = %why,
                "event not readable by its handlers"
            );
        }
    }
}

impl EventBus for InMemoryEventBus {
    async fn publish<P: Publish>(&self, events: Vec<P>) -> Result<(), BusError> {
        let records = InMemoryEventBus::encode(&events)?;
        let n = records.len() as u64;
        let (tx, rx) = oneshot::channel();
        self.sender()?
            .send(Job {
                events: records,
                done: Some(tx),
            })
            .await
            .map_err(|_| BusError::Closed)?;
        self.inner.counters.published(n);
        rx.await.map_err(|_| BusError::Closed)
    }

    async fn publish_background<P: Publish>(&self, events: Vec<P>) -> Result<(), BusError> {
        let records = InMemoryEventBus::encode(&events)?;
        let n = records.len() as u64;
        self.sender()?
            .send(Job {
                events: records,
                done: None,
            })
            .await
            .map_err(|_| BusError::Closed)?;
        self.inner.counters.published(n);
        Ok(())
    }

    fn subscribe<E: Event>(&self, handler: impl Handler<E>) -> Subscription {
        self.inner.registry.add(Route::typed(handler))
    }

    fn subscribe_all(&self, handler: impl Handler<RawPayload>) -> Subscription {
        self.inner.registry.add(Route::all(handler))
    }

    fn unsubscribe(&self, subscription: Subscription) -> bool {
        self.inner.registry.remove(subscription)
    }

    fn register<S: Subscriber>(&self, subscriber: Arc<S>) -> Vec<Subscription> {
        self.inner.registry.register(subscriber)
    }

    fn stats(&self) -> BusStats {
        self.inner.counters.snapshot()
    }

    async fn shutdown(&self, timeout: Duration) -> Result<(), BusError> {
        // Closing the queue lets the worker finish what is queued, then stop.
        lock(&self.inner.queue).take();
        lock(&self.inner.receiver).take();
        let worker = lock(&self.inner.worker).take();
        let Some(mut worker) = worker else {
            return Ok(());
        };
        match tokio::time::timeout(timeout, &mut worker).await {
            Ok(_) => Ok(()),
            Err(_) => {
                worker.abort();
                Err(BusError::ShutdownTimedOut(timeout))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::bus::conformance::{Ping, Recorder};
    use crate::bus::{new_uuid, Envelope, HandlerError};

    #[tokio::test]
    async fn keeps_the_event_bus_contract() {
        crate::bus::conformance::run_all(|| async { InMemoryEventBus::new() }).await;
    }

    #[tokio::test]
    async fn counts_what_it_handled_failed_and_skipped() {
        let bus = InMemoryEventBus::new();
        bus.subscribe(|e: Arc<Envelope<Ping>>| async move {
            if e.event.n == 2 {
                Err(HandlerError::new("Boom", "two"))
            } else {
                Ok(())
            }
        });
        let aggregate = new_uuid();
        let events = (1..=3)
            .map(|n| Envelope::new(aggregate, n, Ping { n }))
            .collect();
        bus.publish(events).await.unwrap();
        let pong = Envelope::new(
            aggregate,
            4,
            crate::bus::conformance::Pong { text: "x".into() },
        );
        bus.publish(vec![pong]).await.unwrap();
        let s = bus.stats();
        assert_eq!(s.events_published, 4);
        assert_eq!(s.events_consumed, 4);
        assert_eq!(s.events_processed_success, 2);
        assert_eq!(s.events_processed_failed, 1);
        assert_eq!(s.handler_errors, 1);
        assert_eq!(s.events_skipped, 1, "no handler for Pong");
        assert!(s.last_error_at.is_some() && s.connected_at.is_some());
    }

    /// A handler that hangs is cancelled after the handler timeout and counted as failed; the
    /// other handlers of the event, and the events after it, are handled.
    #[tokio::test]
    async fn a_hanging_handler_is_cut_off_after_the_handler_timeout() {
        let bus = InMemoryEventBus::with_handler_timeout(Duration::from_millis(50));
        bus.subscribe(|e: Arc<Envelope<Ping>>| async move {
            if e.event.n == 1 {
                std::future::pending::<()>().await;
            }
            Ok(())
        });
        let got = Recorder::<Ping>::new();
        bus.subscribe(got.handler());
        let aggregate = new_uuid();
        let events = (1..=2)
            .map(|n| Envelope::new(aggregate, n, Ping { n }))
            .collect();
        tokio::time::timeout(Duration::from_secs(10), bus.publish(events))
            .await
            .expect("publishing is not held by the hanging handler")
            .unwrap();
        let s = bus.stats();
        assert_eq!(s.events_processed_failed, 1, "{s:?}");
        assert_eq!(s.events_processed_success, 1, "{s:?}");
        assert_eq!(s.handler_errors, 1, "{s:?}");
        assert_eq!(got.seen().len(), 2, "the other handler saw both events");
    }

    #[tokio::test]
    async fn an_event_that_cannot_be_written_publishes_nothing_of_its_batch() {
        let bus = InMemoryEventBus::new();
        let got = Recorder::<Ping>::new();
        bus.subscribe(got.handler());
        let good = Envelope::new(new_uuid(), 1, Ping { n: 1 })
            .into_raw()
            .unwrap();
        let mut bad = good.clone();
        bad.event.insert("metadata".into(), serde_json::json!(1));
        let e = bus.publish(vec![good, bad]).await.unwrap_err();
        assert!(matches!(e, BusError::Envelope(_)), "{e}");
        assert_eq!(bus.stats().events_published, 0);
        bus.shutdown(Duration::from_secs(5)).await.unwrap();
        assert!(got.seen().is_empty());
    }
}
