//! The Kafka event bus on Apache Kafka itself: the EventBus contract (the conformance suite),
//! records written by eventsource-py read and handled, retries in place ending in a dead letter
//! with eventsource-py's headers, undecodable records dead-lettered at once, per-aggregate order
//! with concurrency inside one partition, and a graceful restart that neither loses nor repeats
//! handling.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use kbus::bus::conformance::{self, Recorder, GUARD};
use kbus::bus::kafka::{KafkaEventBus, KafkaEventBusConfig};
use kbus::bus::{new_uuid, Envelope, Event, EventBus, HandlerError, Uuid};
use kbus::consumer::{Consumer, Event as ConsumerEvent};
use kbus::producer::{Producer, ProducerRecord};
use kbus::protocol::record::Header;
use kbus::TopicPartition;
use kbus_testkit::kafka::{Kafka, KafkaVersion};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

const VECTORS: &str = include_str!("vectors/eventsource-vectors.json");

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Settings for a bus of its own: a fresh topic prefix and group, fast commits and rebalances.
fn config(kafka: &Kafka, what: &str) -> KafkaEventBusConfig {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let prefix = format!("{what}-{}-{n}", std::process::id());
    KafkaEventBusConfig {
        bootstrap_servers: kafka.bootstrap(),
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

async fn started(config: KafkaEventBusConfig) -> KafkaEventBus {
    let bus = KafkaEventBus::connect(config).await.unwrap();
    bus.start().await.unwrap();
    bus
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_bus_keeps_the_event_bus_contract() {
    let kafka = Kafka::shared();
    conformance::run_all(|| async { started(config(kafka, "conformance")).await }).await;
}

/// The same contract on the oldest Kafka release tested (3.0, KRaft's first: lower versions of
/// every API the bus uses, fetch sessions by topic name, the classic group protocol only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_bus_keeps_the_event_bus_contract_on_kafka_3_0() {
    let kafka = Kafka::builder().version(KafkaVersion::First3x).start();
    let _log = kafka.log_on_failure();
    let kafka = &kafka;
    conformance::run_all(|| async { started(config(kafka, "conformance-3-0")).await }).await;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderPlaced {
    order_number: String,
    total_cents: i64,
}

impl Event for OrderPlaced {
    const EVENT_TYPE: &'static str = "OrderPlaced";
    const AGGREGATE_TYPE: &'static str = "Order";
}

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

/// The headers of a vector record.
fn vector_headers(record: &Value) -> Vec<Header> {
    record["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            Header::new(
                h[0].as_str().unwrap().to_string(),
                Some(h[1].as_str().unwrap().to_string()),
            )
        })
        .collect()
}

fn pairs(headers: &[Header]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.key_str().unwrap().to_string(),
                h.value_str().unwrap_or("<null>").to_string(),
            )
        })
        .collect()
}

/// Writes a vector record to `topic` as eventsource-py wrote it (same key, value and headers).
async fn write_as_python(bootstrap: &str, topic: &str, record: &Value) {
    let producer = Producer::from_properties([("bootstrap.servers", bootstrap)])
        .await
        .unwrap();
    let mut r = ProducerRecord::new(topic.to_string())
        .key(record["key"].as_str().unwrap().to_string())
        .value(record["value_utf8"].as_str().unwrap().to_string());
    r.headers = vector_headers(record);
    producer.send(r).await.unwrap().await.unwrap();
    producer.close().await.unwrap();
}

/// Every record of `topic` until `n` have been read.
async fn read_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    n: usize,
) -> Vec<kbus::consumer::ConsumerRecord> {
    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("auto.offset.reset", "earliest"),
    ])
    .await
    .unwrap();
    consumer
        .assign((0..partitions).map(|p| TopicPartition::new(topic, p)))
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, async {
        while out.len() < n {
            if let ConsumerEvent::Records(batch) = consumer.poll().await.unwrap() {
                out.extend(batch.records);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {n} records of {topic}", out.len()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_eventsource_py_wrote_is_handled_and_one_kbus_wrote_is_pythons_bytes() {
    let kafka = Kafka::shared();
    let mut config = config(kafka, "interop");
    // Without trace context, kbus's headers are exactly eventsource-py's (tracing adds
    // traceparent after them; see the tracing test).
    config.enable_tracing = false;
    let bootstrap = config.bootstrap_servers.clone();
    let bus = KafkaEventBus::connect(config).await.unwrap();
    let got = Recorder::<OrderPlaced>::new();
    bus.subscribe(got.handler());
    bus.start().await.unwrap();

    let v = vectors();
    write_as_python(&bootstrap, bus.topic(), &v["records"][0]).await;
    let seen = got.wait_for(1).await;
    assert_eq!(seen[0].event.order_number, "ORD-1");
    assert_eq!(
        seen[0].meta.event_id.to_string(),
        "0b9f7c1e-4a2d-4f6b-9c3e-2d1a5b7e8f90"
    );

    // Published by kbus, the same event is the same record, byte for byte.
    let again = Envelope {
        meta: seen[0].meta.clone(),
        event: seen[0].event.clone(),
    };
    bus.publish(vec![again]).await.unwrap();
    // Both records — Python's and kbus's — are the vector's, to the byte, on the vector's
    // partition (Java's murmur2 placement, 3 partitions).
    let records = read_topic(&bootstrap, bus.topic(), 3, 2).await;
    let expected = &v["records"][0];
    for r in &records {
        assert_eq!(
            r.value.as_deref(),
            Some(expected["value_utf8"].as_str().unwrap().as_bytes())
        );
        assert_eq!(
            r.key.as_deref(),
            Some(expected["key"].as_str().unwrap().as_bytes())
        );
        assert_eq!(pairs(&r.headers), pairs(&vector_headers(expected)));
        assert_eq!(
            r.partition as i64,
            expected["partition_for"]["3"].as_i64().unwrap()
        );
    }
    bus.shutdown(GUARD).await.unwrap();
}

/// Fails `fails` times for each event, then succeeds; counts the calls.
fn flaky(fails: usize, calls: Arc<AtomicUsize>) -> impl kbus::bus::Handler<OrderPlaced> {
    move |_: Arc<Envelope<OrderPlaced>>| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < fails {
                Err(HandlerError::new("Boom", "inventory service unavailable"))
            } else {
                Ok(())
            }
        }
    }
}

fn order(aggregate: Uuid, version: u64, number: &str) -> Envelope<OrderPlaced> {
    Envelope::new(
        aggregate,
        version,
        OrderPlaced {
            order_number: number.into(),
            total_cents: 100,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_event_is_retried_in_place_then_dead_lettered_with_pythons_headers() {
    let kafka = Kafka::shared();
    let mut config = config(kafka, "dead-letters");
    config.max_retries = 2;
    config.enable_tracing = false;
    let bootstrap = config.bootstrap_servers.clone();
    let group = config.consumer_group.clone();
    let dlq_topic = config.dlq_topic();
    let bus = KafkaEventBus::connect(config).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    // The first event always fails; a second handler that succeeds is not run again on retries.
    bus.subscribe(flaky(usize::MAX, calls.clone()));
    let fine_calls = Arc::new(AtomicUsize::new(0));
    bus.subscribe(flaky(0, fine_calls.clone()));
    bus.start().await.unwrap();

    let event = order(new_uuid(), 1, "ORD-DEAD");
    bus.publish(vec![event.clone()]).await.unwrap();
    let dead = read_topic(&bootstrap, &dlq_topic, 3, 1).await;
    let dead = &dead[0];
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "the first attempt and two retries"
    );
    assert_eq!(
        fine_calls.load(Ordering::SeqCst),
        1,
        "the handler that succeeded ran once"
    );
    let original = bus.topic().to_string();
    let mut expected: Vec<(String, String)> = pairs(
        &kbus::bus::wire::encode(&event.meta, &event.event)
            .unwrap()
            .headers
            .iter()
            .map(|(k, v)| Header::new(*k, Some(v.clone())))
            .collect::<Vec<_>>(),
    );
    let headers = pairs(&dead.headers);
    let source_partition = headers
        .iter()
        .find(|(k, _)| k == "dlq_original_partition")
        .unwrap()
        .1
        .clone();
    for (k, v) in [
        ("dlq_reason", "max_retries_exceeded"),
        ("dlq_error_type", "Boom"),
        ("dlq_error_message", "inventory service unavailable"),
        ("dlq_retry_count", "2"),
    ] {
        expected.push((k.into(), v.into()));
    }
    let timestamp = headers
        .iter()
        .find(|(k, _)| k == "dlq_timestamp")
        .unwrap()
        .1
        .clone();
    assert!(timestamp.ends_with("+00:00"), "{timestamp}");
    expected.push(("dlq_timestamp".into(), timestamp));
    expected.push(("dlq_original_topic".into(), original));
    expected.push(("dlq_original_partition".into(), source_partition));
    expected.push(("dlq_original_offset".into(), "0".into()));
    expected.push(("dlq_consumer_group".into(), group));
    assert_eq!(headers, expected);
    assert_eq!(
        dead.key.as_deref(),
        Some(event.meta.aggregate_id.to_string().as_bytes())
    );

    // The dead letter can be read before the bus has its acknowledgement: shut down (which waits
    // for the event's handling to end) before reading the counters.
    bus.shutdown(GUARD).await.unwrap();
    let stats = bus.stats();
    assert_eq!(stats.messages_sent_to_dlq, 1, "{stats:?}");
    assert_eq!(stats.events_processed_failed, 3, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_record_is_dead_lettered_at_once_and_the_partition_goes_on() {
    let kafka = Kafka::shared();
    let config = config(kafka, "undecodable");
    let bootstrap = config.bootstrap_servers.clone();
    let dlq_topic = config.dlq_topic();
    let bus = KafkaEventBus::connect(config).await.unwrap();
    let got = Recorder::<OrderPlaced>::new();
    bus.subscribe(got.handler());
    bus.start().await.unwrap();

    let aggregate = new_uuid();
    let producer = Producer::from_properties([("bootstrap.servers", bootstrap.as_str())])
        .await
        .unwrap();
    let mut garbage = ProducerRecord::new(bus.topic().to_string())
        .key(aggregate.to_string())
        .value(Bytes::from_static(b"{\"aggregate_id\": 12"));
    garbage.headers = vec![Header::new("event_type", Some("OrderPlaced"))];
    producer.send(garbage).await.unwrap().await.unwrap();
    bus.publish(vec![order(aggregate, 2, "AFTER")])
        .await
        .unwrap();

    let seen = got.wait_for(1).await;
    assert_eq!(
        seen[0].event.order_number, "AFTER",
        "the aggregate goes on after it"
    );
    let dead = read_topic(&bootstrap, &dlq_topic, 3, 1).await;
    let headers: BTreeMap<String, String> = pairs(&dead[0].headers).into_iter().collect();
    assert_eq!(headers["dlq_reason"], "deserialization_error");
    assert_eq!(headers["dlq_retry_count"], "0");
    assert!(
        headers["dlq_error_message"].contains("not a JSON object"),
        "{headers:?}"
    );
    assert_eq!(
        dead[0].value.as_deref(),
        Some(&b"{\"aggregate_id\": 12"[..])
    );
    bus.shutdown(GUARD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_aggregate_order_holds_while_other_aggregates_of_the_partition_go_ahead() {
    let kafka = Kafka::shared();
    let mut config = config(kafka, "ordering");
    config.topic_partitions = 1;
    config.max_concurrency = 8;
    let bus = KafkaEventBus::connect(config).await.unwrap();

    // The slow aggregate's first event waits until every event of the others is handled: with
    // one event at a time in the partition this could never happen (the guard would fire).
    let (slow, failing) = (new_uuid(), new_uuid());
    let others: Vec<Uuid> = (0..4).map(|_| new_uuid()).collect();
    let others_done = Arc::new(tokio::sync::Semaphore::new(0));
    let order_log: Arc<watch::Sender<BTreeMap<Uuid, Vec<u64>>>> =
        Arc::new(watch::Sender::new(BTreeMap::new()));
    let failing_calls = Arc::new(AtomicUsize::new(0));
    {
        let (others_done, log, failing_calls) = (
            others_done.clone(),
            order_log.clone(),
            failing_calls.clone(),
        );
        bus.subscribe(move |e: Arc<Envelope<OrderPlaced>>| {
            let (others_done, log, failing_calls) =
                (others_done.clone(), log.clone(), failing_calls.clone());
            async move {
                let aggregate = e.meta.aggregate_id;
                if aggregate == slow && e.meta.aggregate_version == 1 {
                    let wait = others_done.acquire_many(4 * 5);
                    tokio::time::timeout(GUARD, wait)
                        .await
                        .expect("the other aggregates went ahead")
                        .unwrap()
                        .forget();
                }
                if aggregate == failing
                    && e.meta.aggregate_version == 1
                    && failing_calls.fetch_add(1, Ordering::SeqCst) < 2
                {
                    return Err(HandlerError::new("Flaky", "not yet"));
                }
                log.send_modify(|log| {
                    log.entry(aggregate)
                        .or_default()
                        .push(e.meta.aggregate_version)
                });
                if aggregate != slow && aggregate != failing {
                    others_done.add_permits(1);
                }
                Ok(())
            }
        });
    }
    bus.start().await.unwrap();
    for version in 1..=5 {
        let mut batch = vec![order(slow, version, "s"), order(failing, version, "f")];
        batch.extend(others.iter().map(|a| order(*a, version, "o")));
        bus.publish(batch).await.unwrap();
    }
    let mut watching = order_log.subscribe();
    let done = tokio::time::timeout(
        GUARD,
        watching.wait_for(|log| log.values().map(Vec::len).sum::<usize>() == 30),
    )
    .await;
    let log = order_log.borrow().clone();
    assert!(done.is_ok(), "not every event was handled: {log:?}");
    for (aggregate, versions) in &log {
        assert_eq!(versions, &[1, 2, 3, 4, 5], "aggregate {aggregate}");
    }
    assert_eq!(
        failing_calls.load(Ordering::SeqCst),
        3,
        "two failures, then success"
    );
    bus.shutdown(GUARD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_restart_neither_loses_nor_repeats_what_was_finished() {
    let kafka = Kafka::shared();
    let mut config = config(kafka, "restart");
    config.topic_partitions = 1;
    config.shutdown_timeout = 1.0;
    let completed: Arc<watch::Sender<Vec<(usize, Uuid)>>> =
        Arc::new(watch::Sender::new(Vec::new()));
    let stuck = new_uuid();
    // Bus `n`'s handler; the first one never finishes the stuck aggregate's first event.
    let handler = |n: usize| {
        let completed = completed.clone();
        move |e: Arc<Envelope<OrderPlaced>>| {
            let completed = completed.clone();
            async move {
                if n == 1 && e.meta.aggregate_id == stuck && e.meta.aggregate_version == 1 {
                    std::future::pending::<()>().await;
                }
                completed.send_modify(|c| c.push((n, e.meta.event_id)));
                Ok(())
            }
        }
    };
    let first = KafkaEventBus::connect(config.clone()).await.unwrap();
    first.subscribe(handler(1));
    first.start().await.unwrap();
    let mut events = vec![order(stuck, 1, "stuck-1")];
    events.extend((0..10).map(|i| order(new_uuid(), 1, &format!("other-{i}"))));
    events.push(order(stuck, 2, "stuck-2"));
    first.publish(events.clone()).await.unwrap();
    let mut watching = completed.subscribe();
    tokio::time::timeout(GUARD, watching.wait_for(|c| c.len() == 10))
        .await
        .expect("the other aggregates' events were handled")
        .unwrap();
    // The stuck handler holds the shutdown past its timeout; the rest is committed.
    match first.shutdown(GUARD).await {
        Err(kbus::bus::BusError::ShutdownTimedOut(_)) => {}
        other => panic!("a handler that never ends makes the shutdown time out: {other:?}"),
    }

    let second = KafkaEventBus::connect(config).await.unwrap();
    second.subscribe(handler(2));
    second.start().await.unwrap();
    tokio::time::timeout(GUARD, watching.wait_for(|c| c.len() == 12))
        .await
        .expect("the stuck aggregate's events were handled after the restart")
        .unwrap();
    let done = completed.borrow().clone();
    let by_second: Vec<Uuid> = done
        .iter()
        .filter(|(n, _)| *n == 2)
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(
        by_second,
        [events[0].meta.event_id, events[11].meta.event_id],
        "only the unfinished events, in order"
    );
    let mut ids: Vec<Uuid> = done.iter().map(|(_, id)| *id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12, "every event handled once");
    assert!(second.stats().events_skipped >= 10, "{:?}", second.stats());
    assert!(second.stats().rebalance_count >= 1, "{:?}", second.stats());

    // Idle now: the shutdown returns at once rather than waiting out its timeout.
    let started = std::time::Instant::now();
    second.shutdown(GUARD).await.unwrap();
    // Well under a second (about 10 ms here): nothing waits out a timer, and leaving the group
    // does not queue behind a fetch the broker holds (coordinator requests have a connection of
    // their own).
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "idle shutdown took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_only_bus_never_joins_its_group() {
    let kafka = Kafka::shared();
    let config = config(kafka, "publish-only");
    let group = config.consumer_group.clone();
    let bootstrap = config.bootstrap_servers.clone();
    let bus = KafkaEventBus::connect(config).await.unwrap();
    bus.publish(vec![order(new_uuid(), 1, "p")]).await.unwrap();
    assert_eq!(bus.stats().events_published, 1);
    bus.shutdown(GUARD).await.unwrap();
    let admin = kbus::admin::Admin::from_properties([("bootstrap.servers", bootstrap.as_str())])
        .await
        .unwrap();
    let groups = admin.list_groups().await.unwrap();
    assert!(!groups.iter().any(|g| g.group_id == group), "{groups:?}");
    let records = read_topic(&bootstrap, bus.topic(), 3, 1).await;
    assert_eq!(records.len(), 1);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderCancelled {
    reason: String,
}

impl Event for OrderCancelled {
    const EVENT_TYPE: &'static str = "OrderCancelled";
    const AGGREGATE_TYPE: &'static str = "Order";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_counted_and_replayed_under_the_guard() {
    use kbus::bus::kafka::{DlqFilter, DlqFrom};
    let kafka = Kafka::shared();
    let mut config = config(kafka, "dlq-tools");
    config.max_retries = 0;
    config.topic_partitions = 1;
    let bootstrap = config.bootstrap_servers.clone();
    let bus = KafkaEventBus::connect(config).await.unwrap();
    // Handlers fail until healed; then they record what they get.
    let healed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let replayed = Recorder::<OrderPlaced>::new();
    {
        let (healed, record) = (healed.clone(), replayed.handler());
        bus.subscribe(move |e: Arc<Envelope<OrderPlaced>>| {
            let ok = healed.load(Ordering::SeqCst);
            if ok {
                drop(record(e));
            }
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(HandlerError::new("PaymentDeclined", "card expired"))
                }
            }
        });
    }
    bus.subscribe(|_: Arc<Envelope<OrderCancelled>>| async {
        Err(HandlerError::new("Timeout", "no answer"))
    });
    bus.start().await.unwrap();
    let aggregate = new_uuid();
    let placed: Vec<Envelope<OrderPlaced>> = (1..=3)
        .map(|v| order(aggregate, v, &format!("ORD-{v}")))
        .collect();
    bus.publish(placed.clone()).await.unwrap();
    let cancelled = Envelope::new(new_uuid(), 1, OrderCancelled { reason: "r".into() });
    bus.publish(vec![cancelled.clone()]).await.unwrap();
    read_topic(&bootstrap, &bus.config().dlq_topic(), 1, 4).await;

    assert_eq!(bus.dlq_count().await.unwrap(), 4);
    let all = bus.dlq_list(&DlqFilter::default()).await.unwrap();
    assert_eq!(all.len(), 4);
    // Different aggregates are handled side by side: find the first OrderPlaced by its id.
    let first = all
        .iter()
        .find(|l| {
            l.event
                .as_ref()
                .is_ok_and(|e| e.meta.event_id == placed[0].meta.event_id)
        })
        .expect("the first OrderPlaced was dead-lettered");
    assert_eq!(first.reason.as_deref(), Some("max_retries_exceeded"));
    assert_eq!(first.error_type.as_deref(), Some("PaymentDeclined"));
    assert_eq!(first.error_message.as_deref(), Some("card expired"));
    assert_eq!(first.retry_count, Some(0));
    assert_eq!(
        first.original.as_ref().map(|o| o.0.as_str()),
        Some(bus.topic())
    );
    assert_eq!(first.replay_count, 0);
    let by_type = DlqFilter {
        event_type: Some("OrderCancelled".into()),
        ..Default::default()
    };
    let found = bus.dlq_list(&by_type).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].error_type.as_deref(), Some("Timeout"));
    let by_error = DlqFilter {
        error_type: Some("PaymentDeclined".into()),
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(bus.dlq_list(&by_error).await.unwrap().len(), 2);
    let from_third = DlqFilter {
        from: DlqFrom::Offset {
            partition: 0,
            offset: 2,
        },
        ..Default::default()
    };
    assert_eq!(bus.dlq_list(&from_third).await.unwrap().len(), 2);

    // A dry run says what it would replay and publishes nothing.
    healed.store(true, Ordering::SeqCst);
    let report = bus.replay_dlq(&by_error, false, true).await.unwrap();
    assert!(report.dry_run);
    assert_eq!(report.replayed.len(), 2);
    assert_eq!(
        bus.dlq_count().await.unwrap(),
        4,
        "a replay leaves the dead letter"
    );

    // One replay, handled again by the healed handler.
    let n = bus
        .replay_dlq_message(0, first.offset, false)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let seen = replayed.wait_for(1).await;
    assert_eq!(seen[0].meta.event_id, placed[0].meta.event_id);
    let missing = bus.replay_dlq_message(0, 99, false).await.unwrap_err();
    assert!(
        matches!(missing, kbus::bus::BusError::NotFound(_)),
        "{missing}"
    );
    bus.shutdown(GUARD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_eventsource_py_wrote_is_listed_and_replayed_as_python_replays_it() {
    use kbus::bus::kafka::DlqFilter;
    let kafka = Kafka::shared();
    let mut config = config(kafka, "python-dlq");
    config.topic_partitions = 1;
    let bootstrap = config.bootstrap_servers.clone();
    let bus = KafkaEventBus::connect(config).await.unwrap();
    let v = vectors();
    write_as_python(
        &bootstrap,
        &bus.config().dlq_topic(),
        &v["dlq_max_retries_exceeded"],
    )
    .await;
    let listed = bus.dlq_list(&DlqFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
    let dead = &listed[0];
    assert_eq!(dead.error_type.as_deref(), Some("Boom"));
    assert_eq!(dead.retry_count, Some(3));
    assert_eq!(
        dead.original,
        Some(("events.stream".to_string(), 4, 1187)),
        "where it came from, as Python wrote it"
    );
    assert_eq!(
        dead.dead_lettered_at.map(|t| t.to_header_string()),
        Some("2026-11-28T10:20:00.250000+00:00".to_string())
    );

    // Replayed by kbus, the record is the one eventsource-py's replay writes (to kbus's topic).
    bus.replay_dlq_message(0, dead.offset, false).await.unwrap();
    let replay = read_topic(&bootstrap, bus.topic(), 1, 1).await;
    let expected = &v["replay_of_dlq_record"];
    assert_eq!(pairs(&replay[0].headers), pairs(&vector_headers(expected)));
    assert_eq!(
        replay[0].value.as_deref(),
        Some(expected["value_utf8"].as_str().unwrap().as_bytes())
    );
    assert_eq!(
        replay[0].key.as_deref(),
        Some(expected["key"].as_str().unwrap().as_bytes())
    );

    // A record replayed as often as allowed is refused, unless forced.
    let mut worn = v["dlq_max_retries_exceeded"].clone();
    worn["headers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(["dlq_replay_count", "3"]));
    write_as_python(&bootstrap, &bus.config().dlq_topic(), &worn).await;
    let refused = bus.replay_dlq_message(0, 1, false).await.unwrap_err();
    assert!(
        matches!(refused, kbus::bus::BusError::ReplayRefused(_)),
        "{refused}"
    );
    assert_eq!(bus.replay_dlq_message(0, 1, true).await.unwrap(), 4);
    bus.shutdown(GUARD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_travels_from_publish_to_handler_and_on_to_what_it_publishes() {
    use kbus::bus::trace::TraceContext;
    let kafka = Kafka::shared();
    let config = config(kafka, "tracing");
    let bootstrap = config.bootstrap_servers.clone();
    let bus = KafkaEventBus::connect(config).await.unwrap();
    type Seen = Vec<(String, Option<TraceContext>)>;
    let contexts: Arc<watch::Sender<Seen>> = Arc::new(watch::Sender::new(Vec::new()));
    {
        let (contexts, publisher) = (contexts.clone(), bus.clone());
        bus.subscribe(move |e: Arc<Envelope<OrderPlaced>>| {
            let (contexts, publisher) = (contexts.clone(), publisher.clone());
            async move {
                let current = TraceContext::current();
                contexts.send_modify(|c| c.push((e.event.order_number.clone(), current)));
                if e.event.order_number == "FIRST" {
                    // Published while handling: part of the same trace.
                    let next = order(new_uuid(), 1, "CAUSED");
                    publisher
                        .publish(vec![next])
                        .await
                        .map_err(|e| HandlerError::from_error(&e))?;
                }
                Ok(())
            }
        });
    }
    bus.start().await.unwrap();
    bus.publish(vec![order(new_uuid(), 1, "FIRST")])
        .await
        .unwrap();
    let v = vectors();
    // eventsource-py's record 1 carries a traceparent and baggage of its own; an OrderPlaced
    // with them is handled in that trace.
    let mut python = v["records"][0].clone();
    python["headers"].as_array_mut().unwrap().extend(
        v["records"][1]["headers"].as_array().unwrap()[10..]
            .iter()
            .cloned(),
    );
    write_as_python(&bootstrap, bus.topic(), &python).await;

    let mut watching = contexts.subscribe();
    tokio::time::timeout(GUARD, watching.wait_for(|c| c.len() == 3))
        .await
        .expect("three events handled")
        .unwrap();
    let seen = contexts.borrow().clone();
    let ctx_of = |name: &str| {
        seen.iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("{name} handled without a trace context: {seen:?}"))
    };
    let (first, caused, from_python) = (ctx_of("FIRST"), ctx_of("CAUSED"), ctx_of("ORD-1"));
    assert_eq!(caused.trace_id, first.trace_id, "one trace across two hops");
    assert_ne!(caused.span_id, first.span_id);
    assert_eq!(
        from_python.trace_id_hex(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(from_python.baggage.as_deref(), Some("tenant=acme"));

    // The records carry it: the handler's span is a child of the publish span in traceparent.
    let records = read_topic(&bootstrap, bus.topic(), 3, 3).await;
    let traceparent_of = |number: &str| {
        let r = records
            .iter()
            .find(|r| String::from_utf8_lossy(r.value.as_deref().unwrap()).contains(number))
            .unwrap();
        let h = r
            .headers
            .iter()
            .find(|h| h.key.as_ref() == b"traceparent")
            .unwrap();
        TraceContext::extract(h.value_str(), None, None).unwrap()
    };
    let first_record = traceparent_of("FIRST");
    assert_eq!(first_record.trace_id, first.trace_id);
    assert_ne!(
        first_record.span_id, first.span_id,
        "the consumer has a span of its own"
    );
    assert_eq!(traceparent_of("CAUSED").trace_id, first.trace_id);
    bus.shutdown(GUARD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_each_get_everything_and_members_of_one_group_share_it() {
    let kafka = Kafka::shared();
    let base = config(kafka, "sharing");
    let n = 300;
    // Two members of one group (roundrobin, as when sharing a group with eventsource-py), and a
    // member of a second group.
    let member = |group: &str| {
        let mut c = base.clone();
        c.consumer_group = group.to_string();
        c.assignment_strategy = "roundrobin".into();
        c
    };
    let shared_group = format!("{}-shared", base.topic_prefix);
    let other_group = format!("{}-other", base.topic_prefix);
    let mut buses = Vec::new();
    let mut recorders = Vec::new();
    for group in [&shared_group, &shared_group, &other_group] {
        let bus = KafkaEventBus::connect(member(group)).await.unwrap();
        let got = Recorder::<OrderPlaced>::new();
        bus.subscribe(got.handler());
        bus.start().await.unwrap();
        buses.push(bus);
        recorders.push(got);
    }
    // Publish once the group has settled: each member owns some of the 3 partitions.
    let mut a = buses[0].assignment();
    let mut b = buses[1].assignment();
    tokio::time::timeout(GUARD, async {
        loop {
            let (x, y) = (a.borrow_and_update().clone(), b.borrow_and_update().clone());
            if !x.is_empty() && !y.is_empty() && x.is_disjoint(&y) && x.len() + y.len() == 3 {
                break;
            }
            tokio::select! {
                _ = a.changed() => {}
                _ = b.changed() => {}
            }
        }
    })
    .await
    .expect("the shared group settled");
    let publisher = KafkaEventBus::connect(base.clone()).await.unwrap();
    let events: Vec<_> = (0..n)
        .map(|i| order(new_uuid(), 1, &format!("ORD-{i}")))
        .collect();
    publisher.publish(events.clone()).await.unwrap();

    // The other group alone gets everything.
    recorders[2].wait_for(n).await;
    // The shared group's members together get everything, each some of it.
    let mut watching: Vec<_> = recorders[..2].iter().map(|r| r.seen()).collect();
    let deadline = std::time::Instant::now() + GUARD;
    loop {
        let ids: std::collections::BTreeSet<Uuid> =
            watching.iter().flatten().map(|e| e.meta.event_id).collect();
        if ids.len() == n {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the group handled {} of {n}",
            ids.len()
        );
        // Wait for either member to record more.
        tokio::select! {
            _ = recorders[0].wait_for(watching[0].len() + 1) => {}
            _ = recorders[1].wait_for(watching[1].len() + 1) => {}
        }
        watching = recorders[..2].iter().map(|r| r.seen()).collect();
    }
    assert!(
        !watching[0].is_empty() && !watching[1].is_empty(),
        "both members took part: {} and {}",
        watching[0].len(),
        watching[1].len()
    );
    for bus in buses.iter().chain([&publisher]) {
        bus.shutdown(GUARD).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pythons_retry_count_counts_and_unhandled_types_are_skipped_and_committed() {
    use kbus::bus::kafka::{DlqFilter, DlqFrom};
    let kafka = Kafka::shared();
    let mut config = config(kafka, "skips");
    config.topic_partitions = 1;
    config.max_retries = 3;
    let bootstrap = config.bootstrap_servers.clone();
    let group = config.consumer_group.clone();
    let started_at = kbus::bus::Timestamp::now();
    let bus = KafkaEventBus::connect(config).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    bus.subscribe(flaky(usize::MAX, calls.clone()));
    bus.start().await.unwrap();

    // A type no handler here takes, and a record without an event_type header.
    bus.publish(vec![Envelope::new(
        new_uuid(),
        1,
        OrderCancelled { reason: "r".into() },
    )])
    .await
    .unwrap();
    let producer = Producer::from_properties([("bootstrap.servers", bootstrap.as_str())])
        .await
        .unwrap();
    producer
        .send(ProducerRecord::new(bus.topic().to_string()).value("not an event"))
        .await
        .unwrap()
        .await
        .unwrap();

    // A retry copy eventsource-py wrote after its third attempt: no attempt is left.
    let v = vectors();
    write_as_python(&bootstrap, bus.topic(), &v["retry_copies"][2]).await;
    let dead = read_topic(&bootstrap, &bus.config().dlq_topic(), 3, 1).await;
    let headers: BTreeMap<String, String> = pairs(&dead[0].headers).into_iter().collect();
    assert_eq!(headers["dlq_retry_count"], "3");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one attempt: Python made the others"
    );

    // Everything was finished: once the bus has shut down (which commits), the group's commit
    // reaches past all three records.
    assert_eq!(bus.stats().events_skipped, 2, "{:?}", bus.stats());
    bus.shutdown(GUARD).await.unwrap();
    let checker = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", group.as_str()),
    ])
    .await
    .unwrap();
    let tp = TopicPartition::new(bus.topic(), 0);
    let committed = checker.committed(std::slice::from_ref(&tp)).await.unwrap();
    assert_eq!(committed[&tp], Some(3));

    // Listing from a time: from before the dead letter, it is there; from later, nothing.
    let from = |t| DlqFilter {
        from: DlqFrom::Time(t),
        ..Default::default()
    };
    assert_eq!(bus.dlq_list(&from(started_at)).await.unwrap().len(), 1);
    let later = kbus::bus::Timestamp::from_unix_micros(started_at.unix_micros() + 3_600_000_000);
    assert!(bus.dlq_list(&from(later)).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_killed_mid_burst_loses_nothing() {
    use kbus_testkit::bus_member::BusMember;
    let kafka = Kafka::shared();
    let config = config(kafka, "killed");
    let (bootstrap, prefix, group) = (
        config.bootstrap_servers.clone(),
        config.topic_prefix.clone(),
        config.consumer_group.clone(),
    );
    // Topics first, then the member in a process of its own, then a member here.
    let publisher = KafkaEventBus::connect(config.clone()).await.unwrap();
    let doomed = {
        let (b, p, g) = (bootstrap.clone(), prefix.clone(), group.clone());
        tokio::task::spawn_blocking(move || BusMember::start(&b, &p, &g))
            .await
            .unwrap()
    };
    let survivor = KafkaEventBus::connect(config).await.unwrap();
    let got = Recorder::<kbus::bus::RawPayload>::new();
    survivor.subscribe_all(got.handler());
    survivor.start().await.unwrap();
    let mut assignment = survivor.assignment();
    tokio::time::timeout(GUARD, assignment.wait_for(|a| !a.is_empty() && a.len() < 3))
        .await
        .expect("the two members share the partitions")
        .unwrap();

    let n = 2000;
    let events: Vec<_> = (0..n)
        .map(|i| order(new_uuid(), 1, &format!("O-{i}")))
        .collect();
    publisher.publish(events.clone()).await.unwrap();
    // Kill the other member once it is busy: no shutdown, no commit, no LeaveGroup.
    let doomed_handled = tokio::task::spawn_blocking(move || {
        let mut seen = doomed.wait_handled(50, GUARD);
        seen.extend(doomed.kill());
        seen
    })
    .await
    .unwrap();
    assert!(doomed_handled.len() >= 50, "the killed member was busy");

    // Its partitions come to the survivor after the session timeout; every event is handled by
    // one member or the other (some by both: at least once).
    let all: std::collections::BTreeSet<String> =
        events.iter().map(|e| e.meta.event_id.to_string()).collect();
    let by_doomed: std::collections::BTreeSet<String> = doomed_handled.into_iter().collect();
    got.wait_until("every event handled by one member or the other", |seen| {
        let by_survivor: std::collections::BTreeSet<String> =
            seen.iter().map(|e| e.meta.event_id.to_string()).collect();
        all.iter()
            .all(|id| by_survivor.contains(id) || by_doomed.contains(id))
    })
    .await;
    for bus in [&survivor, &publisher] {
        bus.shutdown(GUARD).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_pauses_its_own_partition_and_the_others_go_on() {
    use kbus::producer::murmur2_partition;
    let kafka = Kafka::shared();
    let mut config = config(kafka, "backpressure");
    config.topic_partitions = 2;
    config.max_in_flight_events = 20;
    // Small fetches, so that a pause shows within a few of them.
    config
        .properties
        .insert("max.partition.fetch.bytes".into(), "4096".into());
    let bus = KafkaEventBus::connect(config).await.unwrap();

    // Aggregates by the partition their key goes to (Java's murmur2, as the producer places them).
    let on = |p: i32, n: usize| -> Vec<Uuid> {
        std::iter::repeat_with(new_uuid)
            .filter(|a| murmur2_partition(a.to_string().as_bytes(), 2) == p)
            .take(n)
            .collect()
    };
    let (slow, fast) = (on(0, 400), on(1, 100));
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let handled = Recorder::<OrderPlaced>::new();
    {
        let (release, record, slow) = (release.clone(), handled.handler(), slow.clone());
        bus.subscribe(move |e: Arc<Envelope<OrderPlaced>>| {
            let (release, blocked) = (release.clone(), slow.contains(&e.meta.aggregate_id));
            let done = record(e);
            async move {
                if blocked {
                    // Held until the test lets go: partition 0's handlers are stuck.
                    release.acquire().await.unwrap().forget();
                }
                done.await
            }
        });
    }
    bus.start().await.unwrap();
    let events = |aggregates: &[Uuid]| -> Vec<Envelope<OrderPlaced>> {
        aggregates.iter().map(|a| order(*a, 1, "x")).collect()
    };
    bus.publish(events(&slow)).await.unwrap();
    bus.publish(events(&fast)).await.unwrap();

    // Partition 1 is handled to the end while partition 0 is stuck...
    handled
        .wait_until("partition 1's events while partition 0 is stuck", |seen| {
            let fast_done = seen
                .iter()
                .filter(|e| fast.contains(&e.meta.aggregate_id))
                .count();
            fast_done == fast.len()
        })
        .await;
    // ...and partition 0 was paused: far fewer of its 400 records were read than were there.
    let from_slow = bus.stats().events_consumed - fast.len() as u64;
    assert!(
        from_slow < 100,
        "{from_slow} of partition 0's 400 records read while its handlers were stuck"
    );

    // Let the stuck handlers go: everything is handled.
    release.add_permits(10_000);
    handled.wait_for(slow.len() + fast.len()).await;
    bus.shutdown(GUARD).await.unwrap();
}
