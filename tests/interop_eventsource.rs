//! kbus's event bus and eventsource-py's (0.8.1, the Python library, on aiokafka) on one Apache
//! Kafka topic: events published by either are handled by the other, and members of both share
//! one consumer group through the `roundrobin` assignor.

use kbus::bus::conformance::{Recorder, GUARD};
use kbus::bus::kafka::{KafkaEventBus, KafkaEventBusConfig};
use kbus::bus::{new_uuid, Envelope, Event, EventBus};
use kbus_testkit::eventsource;
use kbus_testkit::kafka::Kafka;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderPlaced {
    order_number: String,
    total_cents: i64,
}

impl Event for OrderPlaced {
    const EVENT_TYPE: &'static str = "OrderPlaced";
    const AGGREGATE_TYPE: &'static str = "Order";
}

fn config(kafka: &Kafka, prefix: &str) -> KafkaEventBusConfig {
    KafkaEventBusConfig {
        bootstrap_servers: kafka.bootstrap(),
        topic_prefix: format!("{prefix}-{}", std::process::id()),
        consumer_group: format!("{prefix}-kbus"),
        session_timeout_ms: 6000,
        heartbeat_interval_ms: 500,
        topic_partitions: 3,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_eventsource_py_publishes_are_handled_by_kbus_in_order() {
    let kafka = Kafka::shared();
    let config = config(kafka, "from-python");
    let (bootstrap, prefix) = (
        config.bootstrap_servers.clone(),
        config.topic_prefix.clone(),
    );
    let bus = KafkaEventBus::connect(config).await.unwrap();
    let got = Recorder::<OrderPlaced>::new();
    bus.subscribe(got.handler());
    bus.start().await.unwrap();

    let aggregate = new_uuid().to_string();
    let published = tokio::task::spawn_blocking(move || {
        eventsource::publish(&bootstrap, &prefix, 20, Some(&aggregate))
    })
    .await
    .unwrap();
    assert_eq!(published.len(), 20);
    let seen = got.wait_for(20).await;
    let ids: Vec<String> = seen.iter().map(|e| e.meta.event_id.to_string()).collect();
    assert_eq!(
        ids, published,
        "every event, in the order Python published them"
    );
    let versions: Vec<u64> = seen.iter().map(|e| e.meta.aggregate_version).collect();
    assert_eq!(versions, (1..=20).collect::<Vec<_>>());
    assert_eq!(seen[3].event.order_number, "ORD-py-3");
    assert_eq!(seen[3].event.total_cents, 103);
    bus.shutdown(GUARD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_kbus_publishes_are_handled_by_eventsource_py() {
    let kafka = Kafka::shared();
    let config = config(kafka, "to-python");
    let (bootstrap, prefix) = (
        config.bootstrap_servers.clone(),
        config.topic_prefix.clone(),
    );
    let bus = KafkaEventBus::connect(config).await.unwrap();
    let python = tokio::task::spawn_blocking(move || {
        eventsource::Consumer::start(&bootstrap, &prefix, "python-group", 20, 120).handled()
    });
    let events: Vec<Envelope<OrderPlaced>> = (0..20)
        .map(|i| {
            Envelope::new(
                new_uuid(),
                1,
                OrderPlaced {
                    order_number: format!("ORD-rs-{i}"),
                    total_cents: i,
                },
            )
        })
        .collect();
    bus.publish(events.clone()).await.unwrap();
    let handled = python.await.unwrap();
    let theirs: BTreeSet<String> = handled
        .iter()
        .map(|v| v["handled"].as_str().unwrap().to_string())
        .collect();
    let ours: BTreeSet<String> = events.iter().map(|e| e.meta.event_id.to_string()).collect();
    assert_eq!(theirs, ours, "eventsource-py handled every kbus event");
    assert!(handled
        .iter()
        .all(|v| v["order_number"].as_str().unwrap().starts_with("ORD-rs-")));
    bus.shutdown(GUARD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kbus_and_eventsource_py_members_share_one_group_with_roundrobin() {
    let kafka = Kafka::shared();
    let mut config = config(kafka, "mixed");
    config.assignment_strategy = "roundrobin".into();
    config.consumer_group = "mixed-group".into();
    let (bootstrap, prefix) = (
        config.bootstrap_servers.clone(),
        config.topic_prefix.clone(),
    );
    let bus = KafkaEventBus::connect(config).await.unwrap();
    let got = Recorder::<OrderPlaced>::new();
    bus.subscribe(got.handler());
    bus.start().await.unwrap();

    // The Python member joins; its lines come through a channel as it prints them.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut python = tokio::task::spawn_blocking(move || {
        eventsource::Consumer::start(&bootstrap, &prefix, "mixed-group", 1000, 120)
    })
    .await
    .unwrap();
    let lines = python.take_lines().unwrap();
    std::thread::spawn(move || {
        for line in lines {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Publish once the group settled with both: kbus owns some partitions, not all.
    let mut assignment = bus.assignment();
    tokio::time::timeout(GUARD, assignment.wait_for(|a| !a.is_empty() && a.len() < 3))
        .await
        .expect("the Python member took partitions")
        .unwrap();
    let events: Vec<Envelope<OrderPlaced>> = (0..60)
        .map(|i| {
            Envelope::new(
                new_uuid(),
                1,
                OrderPlaced {
                    order_number: format!("ORD-{i}"),
                    total_cents: i,
                },
            )
        })
        .collect();
    let all: BTreeSet<String> = events.iter().map(|e| e.meta.event_id.to_string()).collect();
    bus.publish(events).await.unwrap();

    let mut by_python = BTreeSet::new();
    let outcome = tokio::time::timeout(GUARD, async {
        loop {
            let by_kbus: BTreeSet<String> = got
                .seen()
                .iter()
                .map(|e| e.meta.event_id.to_string())
                .collect();
            let union: BTreeSet<&String> = by_kbus.iter().chain(by_python.iter()).collect();
            if union.len() == all.len() {
                return by_kbus;
            }
            tokio::select! {
                line = rx.recv() => match line {
                    Some(v) => {
                        if let Some(id) = v["handled"].as_str() {
                            by_python.insert(id.to_string());
                        }
                    }
                    None => std::future::pending::<()>().await,
                },
                _ = got.wait_for(by_kbus.len() + 1) => {}
            }
        }
    })
    .await;
    let by_kbus = outcome.unwrap_or_else(|_| {
        panic!(
            "the group handled {} of {} events",
            got.seen().len() + by_python.len(),
            all.len()
        )
    });
    assert!(
        !by_kbus.is_empty() && !by_python.is_empty(),
        "both members took part"
    );
    assert!(
        by_kbus.is_disjoint(&by_python),
        "no event handled by both once the group settled"
    );
    bus.shutdown(GUARD).await.unwrap();
    // Stops the Python member.
    drop(python);
}
