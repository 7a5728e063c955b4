//! The [`EventBus`] contract as a test suite (feature `conformance`): run [`run_all`] against a
//! bus — kbus's own, or one of yours — to check it keeps the contract: round trips of every base
//! field, several subscribers, unsubscribing, wildcard handlers, error isolation, background
//! publishing, per-aggregate order, subscriber objects, and shutdown.
//!
//! Each check gets a fresh bus from the factory and panics (as a test does) when the bus breaks the
//! contract. Buses that deliver asynchronously (Kafka) are waited for, up to [`GUARD`] per step.
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_bus_keeps_the_contract() {
//!     kbus::bus::conformance::run_all(|| async { MyBus::new() }).await;
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;

use super::event::{new_uuid, Envelope, Event, RawPayload, Uuid};
use super::event_bus::EventBus;
use super::handler::{HandlerError, HandlerResult, Registration, Subscriber};
use super::BusError;

/// The longest any step may take.
pub const GUARD: Duration = Duration::from_secs(60);

/// The suite's first event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    /// A sequence number within its aggregate.
    pub n: u64,
}

impl Event for Ping {
    const EVENT_TYPE: &'static str = "kbus.conformance.Ping";
    const AGGREGATE_TYPE: &'static str = "Conformance";
}

/// The suite's second event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    /// Some text.
    pub text: String,
}

impl Event for Pong {
    const EVENT_TYPE: &'static str = "kbus.conformance.Pong";
    const EVENT_VERSION: u32 = 2;
    const AGGREGATE_TYPE: &'static str = "Conformance";
}

/// Keeps what a handler received, and lets a check wait for it.
pub struct Recorder<E> {
    seen: watch::Sender<Vec<Arc<Envelope<E>>>>,
}

impl<E: Send + Sync + 'static> Recorder<E> {
    /// An empty recorder.
    pub fn new() -> Arc<Recorder<E>> {
        Arc::new(Recorder {
            seen: watch::Sender::new(Vec::new()),
        })
    }

    /// A handler that records into this recorder.
    pub fn handler(
        self: &Arc<Self>,
    ) -> impl Fn(Arc<Envelope<E>>) -> std::future::Ready<HandlerResult> + Send + Sync + 'static
    {
        let me = self.clone();
        move |event| {
            me.seen.send_modify(|seen| seen.push(event));
            std::future::ready(Ok(()))
        }
    }

    /// What was received so far.
    pub fn seen(&self) -> Vec<Arc<Envelope<E>>> {
        self.seen.borrow().clone()
    }

    /// Waits until what was received satisfies `condition` (up to [`GUARD`]; panics naming
    /// `what` otherwise), and returns all received.
    pub async fn wait_until(
        &self,
        what: &str,
        mut condition: impl FnMut(&[Arc<Envelope<E>>]) -> bool,
    ) -> Vec<Arc<Envelope<E>>> {
        let mut rx = self.seen.subscribe();
        let waited = tokio::time::timeout(GUARD, async {
            rx.wait_for(|seen| condition(seen)).await.map(|s| s.clone())
        })
        .await;
        match waited {
            Ok(Ok(seen)) => seen,
            _ => panic!("not within {GUARD:?}: {what}"),
        }
    }

    /// Waits until `n` distinct events (by id) were received, and returns all received.
    pub async fn wait_for(&self, n: usize) -> Vec<Arc<Envelope<E>>> {
        let mut rx = self.seen.subscribe();
        let waited = tokio::time::timeout(GUARD, async {
            rx.wait_for(|seen| distinct(seen) >= n)
                .await
                .map(|s| s.clone())
        })
        .await;
        match waited {
            Ok(Ok(seen)) => seen,
            _ => panic!(
                "only {} of {n} events arrived within {GUARD:?}",
                distinct(&self.seen.borrow())
            ),
        }
    }
}

fn distinct<E>(seen: &[Arc<Envelope<E>>]) -> usize {
    seen.iter()
        .map(|e| e.meta.event_id)
        .collect::<BTreeSet<_>>()
        .len()
}

fn ping(aggregate: Uuid, n: u64) -> Envelope<Ping> {
    Envelope::new(aggregate, n.max(1), Ping { n })
}

async fn published<B: EventBus>(bus: &B, result: impl Future<Output = Result<(), BusError>>) {
    match tokio::time::timeout(GUARD, result).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("publish failed: {e}"),
        Err(_) => panic!("publish did not return within {GUARD:?}: {:?}", bus.stats()),
    }
}

/// Every check, each on a fresh bus from `make_bus`, which is shut down afterwards.
pub async fn run_all<B, F, Fut>(make_bus: F)
where
    B: EventBus,
    F: Fn() -> Fut,
    Fut: Future<Output = B>,
{
    macro_rules! check {
        ($name:ident) => {{
            let bus = make_bus().await;
            $name(&bus).await;
            bus.shutdown(GUARD).await.unwrap_or_else(|e| {
                panic!("{}: shutting the bus down failed: {e}", stringify!($name))
            });
        }};
    }
    check!(round_trip);
    check!(several_subscribers);
    check!(unsubscribe);
    check!(wildcard);
    check!(error_isolation);
    check!(background_publish);
    check!(per_aggregate_order);
    check!(subscriber_registration);
    shutdown(&make_bus().await).await;
}

/// Every base field and the payload arrive as published.
pub async fn round_trip<B: EventBus>(bus: &B) {
    let got = Recorder::<Pong>::new();
    bus.subscribe(got.handler());
    let cause = ping(new_uuid(), 1);
    let mut event = Envelope::new(
        new_uuid(),
        7,
        Pong {
            text: "Zürich ✓ \"q\" \\ \n 😀".into(),
        },
    );
    event.meta = event.meta.caused_by(&cause.meta);
    event.meta.tenant_id = Some(new_uuid());
    event.meta.actor_id = Some("user:42".into());
    if let serde_json::Value::Object(m) = json!({"source": "api", "nested": {"k": [1, 2.5, null]}})
    {
        event.meta.metadata = m;
    }
    published(bus, bus.publish(vec![event.clone()])).await;
    let seen = got.wait_for(1).await;
    assert_eq!(*seen[0], event, "the event as published");
}

/// Every subscriber of a type gets every event of it.
pub async fn several_subscribers<B: EventBus>(bus: &B) {
    let (a, b) = (Recorder::<Ping>::new(), Recorder::<Ping>::new());
    bus.subscribe(a.handler());
    bus.subscribe(b.handler());
    let aggregate = new_uuid();
    published(
        bus,
        bus.publish((1..=3).map(|n| ping(aggregate, n)).collect()),
    )
    .await;
    a.wait_for(3).await;
    b.wait_for(3).await;
}

/// An unsubscribed handler gets nothing more; unsubscribing twice says so.
pub async fn unsubscribe<B: EventBus>(bus: &B) {
    let (gone, stays) = (Recorder::<Ping>::new(), Recorder::<Ping>::new());
    let subscription = bus.subscribe(gone.handler());
    bus.subscribe(stays.handler());
    let aggregate = new_uuid();
    published(bus, bus.publish(vec![ping(aggregate, 1)])).await;
    gone.wait_for(1).await;
    stays.wait_for(1).await;
    assert!(bus.unsubscribe(subscription));
    assert!(!bus.unsubscribe(subscription), "already gone");
    published(bus, bus.publish(vec![ping(aggregate, 2)])).await;
    stays.wait_for(2).await;
    assert_eq!(distinct(&gone.seen()), 1, "nothing after unsubscribing");
}

/// A wildcard handler gets every event, of every type, as JSON.
pub async fn wildcard<B: EventBus>(bus: &B) {
    let all = Recorder::<RawPayload>::new();
    bus.subscribe_all(all.handler());
    let aggregate = new_uuid();
    published(bus, bus.publish(vec![ping(aggregate, 1)])).await;
    published(
        bus,
        bus.publish(vec![Envelope::new(aggregate, 2, Pong { text: "t".into() })]),
    )
    .await;
    let seen = all.wait_for(2).await;
    let types: BTreeSet<&str> = seen.iter().map(|e| e.meta.event_type.as_str()).collect();
    assert_eq!(types, BTreeSet::from([Ping::EVENT_TYPE, Pong::EVENT_TYPE]));
    let pong = seen
        .iter()
        .find(|e| e.meta.event_type == Pong::EVENT_TYPE)
        .unwrap();
    assert_eq!(pong.event["text"], "t");
    assert_eq!(pong.meta.event_version, 2);
}

/// A failing handler does not keep the event from the others, nor fail the publish.
pub async fn error_isolation<B: EventBus>(bus: &B) {
    // The failing handler comes first: the one after it still gets every event.
    let failing = Recorder::<Ping>::new();
    let record = failing.handler();
    bus.subscribe(move |event: Arc<Envelope<Ping>>| {
        // Recording happens in the call; the ready future it returns has nothing left to do.
        drop(record(event));
        async { Err(HandlerError::new("Boom", "always")) }
    });
    let fine = Recorder::<Ping>::new();
    bus.subscribe(fine.handler());
    let aggregate = new_uuid();
    published(
        bus,
        bus.publish(vec![ping(aggregate, 1), ping(aggregate, 2)]),
    )
    .await;
    failing.wait_for(2).await;
    fine.wait_for(2).await;
}

/// Background publishes arrive, in order.
pub async fn background_publish<B: EventBus>(bus: &B) {
    let got = Recorder::<Ping>::new();
    bus.subscribe(got.handler());
    let aggregate = new_uuid();
    for batch in 0..10u64 {
        let events = (1..=10).map(|i| ping(aggregate, batch * 10 + i)).collect();
        published(bus, bus.publish_background(events)).await;
    }
    let seen = got.wait_for(100).await;
    let order: Vec<u64> = first_arrivals(&seen).iter().map(|e| e.event.n).collect();
    assert_eq!(order, (1..=100).collect::<Vec<_>>());
}

/// Each aggregate's events arrive in the order they were published, across calls.
pub async fn per_aggregate_order<B: EventBus>(bus: &B) {
    let got = Recorder::<Ping>::new();
    bus.subscribe(got.handler());
    let aggregates: Vec<Uuid> = (0..5).map(|_| new_uuid()).collect();
    for n in 1..=20 {
        let events = aggregates.iter().map(|a| ping(*a, n)).collect();
        published(bus, bus.publish(events)).await;
    }
    let seen = got.wait_for(100).await;
    let mut by_aggregate: BTreeMap<Uuid, Vec<u64>> = BTreeMap::new();
    for e in first_arrivals(&seen) {
        by_aggregate
            .entry(e.meta.aggregate_id)
            .or_default()
            .push(e.event.n);
    }
    for (aggregate, order) in by_aggregate {
        assert_eq!(order, (1..=20).collect::<Vec<_>>(), "aggregate {aggregate}");
    }
}

/// Each event once, at its first arrival (a bus may deliver one again: at least once).
fn first_arrivals<E>(seen: &[Arc<Envelope<E>>]) -> Vec<Arc<Envelope<E>>> {
    let mut ids = BTreeSet::new();
    seen.iter()
        .filter(|e| ids.insert(e.meta.event_id))
        .cloned()
        .collect()
}

/// A subscriber object's handlers all register.
pub async fn subscriber_registration<B: EventBus>(bus: &B) {
    struct Both {
        pings: Arc<Recorder<Ping>>,
        pongs: Arc<Recorder<Pong>>,
    }
    impl Subscriber for Both {
        fn subscribe(self: Arc<Self>, to: &mut Registration<'_>) {
            to.on::<Ping>(self.pings.handler());
            to.on::<Pong>(self.pongs.handler());
        }
    }
    let both = Arc::new(Both {
        pings: Recorder::new(),
        pongs: Recorder::new(),
    });
    assert_eq!(bus.register(both.clone()).len(), 2);
    let aggregate = new_uuid();
    published(bus, bus.publish(vec![ping(aggregate, 1)])).await;
    published(
        bus,
        bus.publish(vec![Envelope::new(aggregate, 2, Pong { text: "x".into() })]),
    )
    .await;
    both.pings.wait_for(1).await;
    both.pongs.wait_for(1).await;
}

/// An idle bus shuts down at once, and publishes nothing after.
pub async fn shutdown<B: EventBus>(bus: &B) {
    let got = Recorder::<Ping>::new();
    bus.subscribe(got.handler());
    published(bus, bus.publish(vec![ping(new_uuid(), 1)])).await;
    got.wait_for(1).await;
    let started = Instant::now();
    bus.shutdown(GUARD).await.expect("an idle bus shuts down");
    assert!(
        started.elapsed() < GUARD / 2,
        "an idle shutdown waited {:?}",
        started.elapsed()
    );
    match bus.publish(vec![ping(new_uuid(), 2)]).await {
        Err(BusError::Closed) => {}
        other => panic!("publishing after shutdown: {other:?}"),
    }
}
