//! The Kafka event bus when things go wrong, on Apache Kafka:
//!
//! - handlers that fail, panic or hang cost only their own events: each is retried, then
//!   dead-lettered with the error that ended it (`Panic`, `HandlerTimeout`), while every other
//!   event — of other aggregates, and later ones of the same aggregates — is handled;
//! - a shutdown in the middle of a burst, then a restart of the group: every event is handled,
//!   and none that was finished before the shutdown is handled again;
//! - on a 3-node cluster (replication 3, `min.insync.replicas=2`), a stream of events published
//!   and consumed while a broker is paused (SIGSTOP) past the request timeout, another is killed
//!   and restarted, and the leaders are moved back by a preferred-leader election: no event is
//!   lost, the log holds each exactly once (idempotent producer), and each aggregate's events are
//!   first handled in order.
#![cfg(feature = "conformance")]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kbus::bus::conformance::GUARD;
use kbus::bus::kafka::{DlqFilter, KafkaEventBus, KafkaEventBusConfig};
use kbus::bus::{new_uuid, Envelope, Event, EventBus, HandlerError, Uuid};
use kbus_testkit::kafka::{Kafka, KafkaCluster};
use serde::{Deserialize, Serialize};

use common::handled::{assert_each_event_once_in_log, Handled};

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn config(bootstrap: String, what: &str) -> KafkaEventBusConfig {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let prefix = format!("{what}-{}-{n}", std::process::id());
    KafkaEventBusConfig {
        bootstrap_servers: bootstrap,
        topic_prefix: prefix.clone(),
        consumer_group: format!("{prefix}-group"),
        session_timeout_ms: 6000,
        heartbeat_interval_ms: 500,
        commit_interval_ms: 100,
        topic_partitions: 3,
        retry_base_delay: 0.05,
        retry_max_delay: 0.2,
        shutdown_timeout: 10.0,
        ..Default::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Step {
    /// What the handler does with it: `ok`, `fail`, `panic` or `hang`.
    action: String,
}

impl Event for Step {
    const EVENT_TYPE: &'static str = "Step";
    const AGGREGATE_TYPE: &'static str = "Job";
}

fn step(aggregate: Uuid, version: u64, action: &str) -> Envelope<Step> {
    Envelope::new(
        aggregate,
        version,
        Step {
            action: action.into(),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_that_fail_panic_or_hang_cost_only_their_own_events() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let mut config = config(kafka.bootstrap(), "bad-handlers");
    config.max_retries = 1;
    config.handler_timeout = Some(0.5);
    let bus = KafkaEventBus::connect(config).await.unwrap();
    let handled = Handled::new();
    let calls: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    {
        let (handled, calls) = (handled.clone(), calls.clone());
        bus.subscribe(move |e: Arc<Envelope<Step>>| {
            let (handled, calls) = (handled.clone(), calls.clone());
            async move {
                *calls
                    .lock()
                    .unwrap()
                    .entry(e.event.action.clone())
                    .or_default() += 1;
                match e.event.action.as_str() {
                    "fail" => return Err(HandlerError::new("Boom", "always fails")),
                    "panic" => panic!("the handler broke on {}", e.meta.aggregate_id),
                    "hang" => std::future::pending::<()>().await,
                    _ => {}
                }
                handled.record(&e.meta);
                Ok(())
            }
        });
    }
    bus.start().await.unwrap();

    // Three bad aggregates, each with a good event after its bad one, among 300 good ones.
    let (failing, panicking, hanging) = (new_uuid(), new_uuid(), new_uuid());
    let mut events = Vec::new();
    for (aggregate, action) in [(failing, "fail"), (panicking, "panic"), (hanging, "hang")] {
        events.push(step(aggregate, 1, action));
        events.push(step(aggregate, 2, "ok"));
    }
    events.extend((0..300).map(|_| step(new_uuid(), 1, "ok")));
    bus.publish(events.clone()).await.unwrap();

    handled
        .wait(
            "every good event, the bad aggregates' later ones too",
            |l| l.len() == 303,
        )
        .await;
    let dead = tokio::time::timeout(GUARD, async {
        loop {
            let dead = bus.dlq_list(&DlqFilter::default()).await.unwrap();
            if dead.len() == 3 {
                break dead;
            }
            assert!(dead.len() < 3, "{dead:?}");
            // Polling the dead-letter topic: it has no change notification to wait on.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("three dead letters");
    let by_aggregate: BTreeMap<String, (Option<String>, Option<u32>)> = dead
        .iter()
        .map(|d| {
            let key = String::from_utf8(d.key.clone().unwrap().to_vec()).unwrap();
            (key, (d.error_type.clone(), d.retry_count))
        })
        .collect();
    assert_eq!(
        by_aggregate,
        BTreeMap::from([
            (failing.to_string(), (Some("Boom".into()), Some(1))),
            (panicking.to_string(), (Some("Panic".into()), Some(1))),
            (
                hanging.to_string(),
                (Some("HandlerTimeout".into()), Some(1))
            ),
        ])
    );
    let calls = calls.lock().unwrap().clone();
    for bad in ["fail", "panic", "hang"] {
        assert_eq!(calls[bad], 2, "{bad}: one attempt and one retry: {calls:?}");
    }
    // Each bad aggregate's second event came after its dead letter: order kept.
    let l = handled.seen();
    for aggregate in [failing, panicking, hanging] {
        assert_eq!(
            l.iter()
                .filter(|(_, a, _)| *a == aggregate)
                .map(|(_, _, v)| *v)
                .collect::<Vec<_>>(),
            [2]
        );
    }
    bus.shutdown(GUARD).await.unwrap();
    let stats = bus.stats();
    assert_eq!(stats.messages_sent_to_dlq, 3, "{stats:?}");
    assert_eq!(stats.events_processed_success, 303, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_mid_burst_then_a_restart_loses_nothing_and_repeats_nothing_finished() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let mut config = config(kafka.bootstrap(), "mid-burst");
    config.max_concurrency = 8;
    let n = 3000;
    // 300 aggregates of 10 events each.
    let aggregates: Vec<Uuid> = (0..n / 10).map(|_| new_uuid()).collect();
    let events: Vec<Envelope<Step>> = (0..n)
        .map(|i| {
            step(
                aggregates[i % aggregates.len()],
                (i / aggregates.len()) as u64 + 1,
                "ok",
            )
        })
        .collect();
    let handled = Handled::new();
    let member = |n: usize| {
        let handled = handled.clone();
        move |e: Arc<Envelope<Step>>| {
            let handled = handled.clone();
            async move {
                // Work that takes a moment, so the shutdown finds handlers running.
                tokio::time::sleep(Duration::from_millis(2)).await;
                let _ = n;
                handled.record(&e.meta);
                Ok(())
            }
        }
    };
    let first = KafkaEventBus::connect(config.clone()).await.unwrap();
    first.subscribe(member(1));
    first.start().await.unwrap();
    first.publish(events.clone()).await.unwrap();
    handled
        .wait("a first part of the burst", |l| l.len() >= n / 4)
        .await;
    first.shutdown(GUARD).await.unwrap();
    let finished_before: BTreeSet<Uuid> = handled.seen().iter().map(|(id, _, _)| *id).collect();
    assert!(
        finished_before.len() < n,
        "the shutdown came mid-burst ({} of {n} handled)",
        finished_before.len()
    );

    let second = KafkaEventBus::connect(config).await.unwrap();
    second.subscribe(member(2));
    second.start().await.unwrap();
    let all: BTreeSet<Uuid> = events.iter().map(|e| e.meta.event_id).collect();
    handled.wait_for_all(&all).await;
    second.shutdown(GUARD).await.unwrap();
    let l = handled.seen();
    let mut times: HashMap<Uuid, usize> = HashMap::new();
    for (id, _, _) in &l {
        *times.entry(*id).or_default() += 1;
    }
    let repeated: Vec<&Uuid> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(
        repeated.is_empty(),
        "{} events finished before the shutdown were handled again",
        repeated.len()
    );
    handled.assert_in_order();
}

/// Runs `f` on the cluster off the runtime's workers.
async fn on_cluster<T: Send + 'static>(
    cluster: &Arc<Mutex<KafkaCluster>>,
    f: impl FnOnce(&mut KafkaCluster) -> T + Send + 'static,
) -> T {
    let cluster = cluster.clone();
    common::blocking(move || f(&mut cluster.lock().unwrap())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_survives_a_paused_broker_a_killed_one_and_moved_leaders() {
    let cluster = common::blocking(|| Kafka::builder().start_cluster(3)).await;
    let _logs = cluster.log_on_failure();
    let bootstrap = cluster.bootstrap();
    let cluster = Arc::new(Mutex::new(cluster));
    let mut config = config(bootstrap.clone(), "cluster-faults");
    config.topic_partitions = 6;
    config.topic_replication_factor = 3;
    config.max_retries = 1000;
    for (k, v) in [
        ("enable.idempotence", "true"),
        ("request.timeout.ms", "4000"),
        ("delivery.timeout.ms", "120000"),
    ] {
        config.properties.insert(k.into(), v.into());
    }
    let bus = KafkaEventBus::connect(config.clone()).await.unwrap();
    let handled = Handled::new();
    {
        let handled = handled.clone();
        bus.subscribe(move |e: Arc<Envelope<Step>>| {
            let handled = handled.clone();
            async move {
                handled.record(&e.meta);
                Ok(())
            }
        });
    }
    bus.start().await.unwrap();

    // 60 rounds of 100 events over 200 aggregates; faults at rounds 10, 25 and 40.
    let aggregates: Vec<Uuid> = (0..200).map(|_| new_uuid()).collect();
    let mut versions: HashMap<Uuid, u64> = HashMap::new();
    let mut published: Vec<Uuid> = Vec::new();
    let mut paused = None;
    let mut killed = None;
    for round in 0..60 {
        let batch: Vec<Envelope<Step>> = (0..100)
            .map(|i| {
                let aggregate = aggregates[(round * 100 + i) % aggregates.len()];
                let v = versions.entry(aggregate).or_default();
                *v += 1;
                step(aggregate, *v, "ok")
            })
            .collect();
        published.extend(batch.iter().map(|e| e.meta.event_id));
        bus.publish(batch)
            .await
            .expect("publishing rides out the faults");
        match round {
            10 => {
                // Pause node 1 for twice the request timeout, then let it go on.
                on_cluster(&cluster, |c| c.node(1).pause()).await;
                paused = Some(tokio::spawn({
                    let cluster = cluster.clone();
                    async move {
                        tokio::time::sleep(Duration::from_secs(8)).await;
                        on_cluster(&cluster, |c| c.node(1).resume()).await;
                    }
                }));
            }
            25 => {
                if let Some(p) = paused.take() {
                    p.await.unwrap();
                }
                // Node 2 dies; it comes back a few seconds later.
                on_cluster(&cluster, |c| c.node(2).kill()).await;
                killed = Some(tokio::spawn({
                    let cluster = cluster.clone();
                    async move {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        on_cluster(&cluster, |c| c.node(2).restart()).await;
                    }
                }));
            }
            40 => {
                if let Some(k) = killed.take() {
                    k.await.unwrap();
                }
                // Leadership goes back to the preferred replicas: leaders move under the stream.
                let out = on_cluster(&cluster, |c| c.elect_preferred_leaders()).await;
                assert!(
                    out.stdout
                        .contains("Successfully completed leader election")
                        || out.stderr.contains("Valid replica already elected"),
                    "leader election: {}\n{}",
                    out.stdout,
                    out.stderr
                );
            }
            _ => {}
        }
        // A steady stream rather than one burst, so the faults land while events flow.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let all: BTreeSet<Uuid> = published.iter().copied().collect();
    handled.wait_for_all(&all).await;
    bus.shutdown(GUARD).await.unwrap();
    handled.assert_in_order();

    // The log: each event exactly once.
    assert_each_event_once_in_log(&bootstrap, &config.topic(), 6, &published).await;
}
