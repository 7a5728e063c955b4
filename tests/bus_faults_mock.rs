//! Injected faults on librdkafka's 3-broker mock cluster, through the Kafka event bus and the
//! client under it:
//!
//! - a stream of events published and consumed while the brokers answer Produce, Fetch,
//!   OffsetCommit, JoinGroup, SyncGroup and Heartbeat with retriable errors
//!   (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS, NOT_COORDINATOR,
//!   COORDINATOR_LOAD_IN_PROGRESS, REBALANCE_IN_PROGRESS, ...), drop connections, answer slowly,
//!   move every partition's leader and move the group's coordinator: every event is handled, each
//!   aggregate's events first handled in order, and the log holds each event once (idempotent
//!   producer);
//! - errors retrying cannot fix (authorization, a record too large for the broker, an invalid
//!   configuration) surface once, at once, naming the error — not retried until a timeout.
#![cfg(feature = "conformance")]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kbus::bus::conformance::GUARD;
use kbus::bus::kafka::{KafkaEventBus, KafkaEventBusConfig};
use kbus::bus::{new_uuid, BusError, Envelope, Event, EventBus, Uuid};
use kbus::consumer::{Consumer, Event as ConsumerEvent};
use kbus::protocol::error_code::ErrorCode;
use kbus::protocol::ApiKey;
use kbus_testkit::mock_cluster::MockCluster;
use serde::{Deserialize, Serialize};

use common::handled::{assert_each_event_once_in_log, Handled};

static NEXT: AtomicUsize = AtomicUsize::new(0);
const PARTITIONS: i32 = 6;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tick {
    n: u64,
}

impl Event for Tick {
    const EVENT_TYPE: &'static str = "Tick";
    const AGGREGATE_TYPE: &'static str = "Clock";
}

/// A mock cluster with the bus's topics, and the bus's settings for it.
fn mock_and_config(what: &str) -> (MockCluster, KafkaEventBusConfig) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let prefix = format!("{what}-{n}");
    let config = KafkaEventBusConfig {
        topic_prefix: prefix.clone(),
        consumer_group: format!("{prefix}-group"),
        session_timeout_ms: 6000,
        heartbeat_interval_ms: 300,
        commit_interval_ms: 100,
        retry_base_delay: 0.05,
        retry_max_delay: 0.2,
        shutdown_timeout: 10.0,
        ..Default::default()
    };
    let mock = MockCluster::start(3);
    mock.create_topic(&config.topic(), PARTITIONS, 3);
    mock.create_topic(&config.dlq_topic(), PARTITIONS, 3);
    mock.use_tested_group_versions();
    mock.set_group_coordinator(&config.consumer_group, 3);
    let config = KafkaEventBusConfig {
        bootstrap_servers: mock.bootstrap(),
        ..config
    };
    (mock, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_rides_out_injected_errors_moved_leaders_and_a_moved_coordinator() {
    let (mock, mut config) = mock_and_config("injected");
    for (k, v) in [
        ("enable.idempotence", "true"),
        ("request.timeout.ms", "3000"),
    ] {
        config.properties.insert(k.into(), v.into());
    }
    let bus = KafkaEventBus::connect(config.clone()).await.unwrap();
    let handled = Handled::new();
    {
        let handled = handled.clone();
        bus.subscribe(move |e: Arc<Envelope<Tick>>| {
            let handled = handled.clone();
            async move {
                handled.record(&e.meta);
                Ok(())
            }
        });
    }
    bus.start().await.unwrap();
    let mut assignment = bus.assignment();
    tokio::time::timeout(
        GUARD,
        assignment.wait_for(|a| a.len() == PARTITIONS as usize),
    )
    .await
    .expect("the member is assigned every partition")
    .unwrap();

    let aggregates: Vec<Uuid> = (0..100).map(|_| new_uuid()).collect();
    let mut versions: HashMap<Uuid, u64> = HashMap::new();
    let mut published: Vec<Uuid> = Vec::new();
    use ErrorCode as E;
    for round in 0..30usize {
        match round {
            3 => mock.push_request_errors(
                ApiKey::Produce,
                &[
                    E::NOT_LEADER_OR_FOLLOWER,
                    E::REQUEST_TIMED_OUT,
                    E::NOT_ENOUGH_REPLICAS,
                ],
            ),
            6 => mock.push_request_errors(
                ApiKey::Fetch,
                &[
                    E::NOT_LEADER_OR_FOLLOWER,
                    E::UNKNOWN_LEADER_EPOCH,
                    E::FENCED_LEADER_EPOCH,
                ],
            ),
            9 => mock.push_request_errors(
                ApiKey::OffsetCommit,
                &[
                    E::NOT_COORDINATOR,
                    E::COORDINATOR_LOAD_IN_PROGRESS,
                    E::REQUEST_TIMED_OUT,
                ],
            ),
            12 => {
                // A rebalance the member did not ask for, whose join and sync fail first.
                mock.push_request_errors(
                    ApiKey::JoinGroup,
                    &[E::COORDINATOR_LOAD_IN_PROGRESS, E::NOT_COORDINATOR],
                );
                mock.push_request_errors(ApiKey::SyncGroup, &[E::REBALANCE_IN_PROGRESS]);
                mock.push_request_errors(ApiKey::Heartbeat, &[E::REBALANCE_IN_PROGRESS]);
            }
            15 => {
                // The coordinator moves; the member learns it from NOT_COORDINATOR.
                mock.set_group_coordinator(&config.consumer_group, 2);
                mock.push_request_errors(ApiKey::Heartbeat, &[E::NOT_COORDINATOR]);
            }
            18 => {
                // Every partition's leader moves to the next broker.
                for p in 0..PARTITIONS {
                    mock.set_leader(&config.topic(), p, Some((p + 1) % 3 + 1));
                }
            }
            21 => {
                mock.set_round_trip_time(None, Duration::from_millis(150));
                mock.push_disconnect(ApiKey::Fetch);
                mock.push_disconnect(ApiKey::Produce);
            }
            24 => mock.set_round_trip_time(None, Duration::ZERO),
            _ => {}
        }
        let batch: Vec<Envelope<Tick>> = (0..100u64)
            .map(|i| {
                let aggregate = aggregates[(round * 100 + i as usize) % aggregates.len()];
                let v = versions.entry(aggregate).or_default();
                *v += 1;
                Envelope::new(aggregate, *v, Tick { n: i })
            })
            .collect();
        published.extend(batch.iter().map(|e| e.meta.event_id));
        tokio::time::timeout(GUARD, bus.publish(batch))
            .await
            .unwrap_or_else(|_| panic!("round {round}: publish hung"))
            .unwrap_or_else(|e| panic!("round {round}: publish failed: {e}"));
    }

    let all: BTreeSet<Uuid> = published.iter().copied().collect();
    handled.wait_for_all(&all).await;
    handled.assert_in_order();
    let stats = bus.stats();
    assert!(stats.rebalance_count >= 1, "{stats:?}");
    bus.shutdown(GUARD).await.unwrap();

    assert_each_event_once_in_log(&mock.bootstrap(), &config.topic(), PARTITIONS, &published).await;
}

/// Publishing into an error retrying cannot fix: the publish fails once, at once (well inside the
/// 120 s delivery timeout), naming the broker's error; the next publish works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_retrying_cannot_fix_surface_once_at_once() {
    let (mock, mut config) = mock_and_config("fatal");
    config
        .properties
        .insert("delivery.timeout.ms".into(), "120000".into());
    let bus = KafkaEventBus::connect(config.clone()).await.unwrap();
    let aggregate = new_uuid();
    let mut version = 0;
    let mut next = || {
        version += 1;
        vec![Envelope::new(aggregate, version, Tick { n: version })]
    };
    for (code, name) in [
        (
            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
            "TOPIC_AUTHORIZATION_FAILED",
        ),
        (ErrorCode::MESSAGE_TOO_LARGE, "MESSAGE_TOO_LARGE"),
        (ErrorCode::INVALID_REQUIRED_ACKS, "INVALID_REQUIRED_ACKS"),
    ] {
        mock.push_request_errors(ApiKey::Produce, &[code]);
        let started = Instant::now();
        let err = tokio::time::timeout(GUARD, bus.publish(next()))
            .await
            .expect("the publish returns")
            .expect_err("the publish fails");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}: failed only after {:?}",
            started.elapsed()
        );
        assert!(matches!(err, BusError::Client(_)), "{name}: {err:?}");
        assert!(err.to_string().contains(name), "{name}: {err}");
        bus.publish(next())
            .await
            .unwrap_or_else(|e| panic!("after {name}, the next publish works: {e}"));
    }
    bus.shutdown(GUARD).await.unwrap();

    // A group the member may not join: `poll` returns the error once, and does not retry it.
    mock.push_request_errors(
        ApiKey::JoinGroup,
        &[ErrorCode::GROUP_AUTHORIZATION_FAILED; 5],
    );
    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", mock.bootstrap().as_str()),
        ("group.id", "forbidden-group"),
    ])
    .await
    .unwrap();
    consumer.subscribe([config.topic()]).unwrap();
    let started = Instant::now();
    let err = loop {
        match tokio::time::timeout(GUARD, consumer.poll()).await {
            Err(_) => panic!("poll stayed silent about a group it may not join"),
            Ok(Err(e)) => break e,
            Ok(Ok(ConsumerEvent::Lost(_))) => {}
            Ok(Ok(other)) => panic!("unexpected {other:?}"),
        }
    };
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.to_string().contains("GROUP_AUTHORIZATION_FAILED"),
        "{err}"
    );
    assert!(!err.is_retriable(), "{err}");
}
