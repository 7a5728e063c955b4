//! The consumer and admin client on Apache Kafka itself, where the tansu and mock-cluster tests
//! had to tolerate a deviation:
//! - a fetch past the log end is answered with OFFSET_OUT_OF_RANGE (tansu answers with no
//!   records): `auto.offset.reset` earliest goes back to the start, latest to the end — observed
//!   from a real out-of-range answer, not raced — and none is an error naming the partition and
//!   offset, after which a seek continues;
//! - a static member (`group.instance.id`) that closes and comes back within its session gets its
//!   partitions again without a rebalance: the generation stays, the other member sees nothing
//!   (the mock cluster makes the returning instance a new member);
//! - a topic's configs are described with the values it was created with and the broker's
//!   defaults for the rest;
//! - a topic that does not exist is an error (offsets of it were an empty list), and a client that
//!   asked for it before it existed finds it once it does (the "unknown" answer was cached).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kbus::admin::{Admin, NewTopic};
use kbus::cluster::{Cluster, ClusterConfig};
use kbus::config::Properties;
use kbus::consumer::{
    Consumer, ConsumerConfig, Event, OffsetAndMetadata, OffsetReset, PartitionRecords,
};
use kbus::producer::{Producer, ProducerConfig, ProducerRecord};
use kbus::protocol::error_code::ErrorCode;
use kbus::{Error, TopicPartition};
use kbus_testkit::kafka::{Kafka, KafkaVersion};

use common::{create_topic, produce_to_each_partition};

/// A failure guard for each wait.
const GUARD: Duration = Duration::from_secs(60);

async fn produce(bootstrap: &str, topic: &str, n: usize) {
    let producer = Producer::connect(ClusterConfig::new(bootstrap), ProducerConfig::default())
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..n {
        let r = ProducerRecord::new(topic)
            .partition(0)
            .value(format!("v{i}"));
        deliveries.push(producer.send(r).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close().await.unwrap();
}

async fn consumer(bootstrap: &str, reset: OffsetReset) -> Consumer {
    let cluster = Cluster::connect(ClusterConfig::new(bootstrap))
        .await
        .unwrap();
    Consumer::new(
        cluster,
        ConsumerConfig {
            auto_offset_reset: reset,
            fetch_max_wait: Duration::from_millis(100),
            ..Default::default()
        },
    )
}

/// The next records (or the error) `poll` hands out.
async fn next_records(consumer: &mut Consumer) -> kbus::Result<PartitionRecords> {
    tokio::time::timeout(GUARD, async {
        loop {
            if let Event::Records(batch) = consumer.poll().await? {
                return Ok(batch);
            }
        }
    })
    .await
    .expect("records in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offset_past_the_end_follows_auto_offset_reset() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    create_topic(&bootstrap, "out-of-range", 1, &[]).await;
    produce(&bootstrap, "out-of-range", 10).await;
    let tp = TopicPartition::new("out-of-range", 0);

    // earliest: back to offset 0.
    let mut earliest = consumer(&bootstrap, OffsetReset::Earliest).await;
    earliest.assign([tp.clone()]).unwrap();
    earliest.seek(&tp, 1_000).unwrap();
    let batch = next_records(&mut earliest).await.unwrap();
    assert_eq!(batch.records[0].offset, 0);

    // latest: the out-of-range answer moves the position to the end, where the next record
    // written is the next one read.
    let mut latest = consumer(&bootstrap, OffsetReset::Latest).await;
    latest.assign([tp.clone()]).unwrap();
    latest.seek(&tp, 1_000).unwrap();
    let deadline = Instant::now() + GUARD;
    while latest.position(&tp) != Some(10) {
        assert!(
            Instant::now() < deadline,
            "position {:?}",
            latest.position(&tp)
        );
        // Nothing is to be read: poll only to let the fetch and the reset happen.
        let _ = tokio::time::timeout(Duration::from_millis(200), latest.poll()).await;
    }
    produce(&bootstrap, "out-of-range", 1).await;
    let batch = next_records(&mut latest).await.unwrap();
    assert_eq!(batch.records[0].offset, 10);

    // none: an error naming the partition and the offset; a seek then continues.
    let mut none = consumer(&bootstrap, OffsetReset::None).await;
    none.assign([tp.clone()]).unwrap();
    none.seek(&tp, 1_000).unwrap();
    let err = next_records(&mut none).await.unwrap_err();
    assert!(
        matches!(&err, Error::Consume { topic, partition: 0, offset: 1_000, code, .. }
            if topic == "out-of-range" && *code == ErrorCode::OFFSET_OUT_OF_RANGE),
        "{err}"
    );
    assert!(
        err.to_string().contains("out-of-range/0 at offset 1000"),
        "{err}"
    );
    none.seek(&tp, 9).unwrap();
    assert_eq!(next_records(&mut none).await.unwrap().records[0].offset, 9);
}

/// A group member following its own assignment and generation.
async fn member(bootstrap: &str, instance: Option<&str>) -> Consumer {
    let mut props = vec![
        ("bootstrap.servers", bootstrap),
        ("group.id", "static-group"),
        ("auto.offset.reset", "earliest"),
        ("session.timeout.ms", "30000"),
        ("heartbeat.interval.ms", "1000"),
    ];
    if let Some(id) = instance {
        props.push(("group.instance.id", id));
    }
    let properties = Properties::from(props);
    let mut consumer = Consumer::from_properties(properties).await.unwrap();
    consumer.subscribe(["static"]).unwrap();
    consumer
}

/// Polls until `consumer` holds an assignment; returns it.
async fn assigned(consumer: &mut Consumer) -> BTreeSet<i32> {
    tokio::time::timeout(GUARD, async {
        loop {
            if let Event::Assigned(tps) = consumer.poll().await.unwrap() {
                if !tps.is_empty() {
                    return tps.iter().map(|tp| tp.partition).collect();
                }
            }
        }
    })
    .await
    .expect("an assignment in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_that_comes_back_keeps_its_partitions_without_a_rebalance() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    create_topic(&bootstrap, "static", 4, &[]).await;

    let mut a = member(&bootstrap, Some("static-a")).await;
    let alone = assigned(&mut a).await;
    assert_eq!(alone.len(), 4);
    let mut b = member(&bootstrap, None).await;
    // Both poll while the group rebalances for b.
    let (mut a_now, b_now) = (
        alone.clone(),
        tokio::spawn(async move {
            let got = assigned(&mut b).await;
            (b, got)
        }),
    );
    loop {
        match tokio::time::timeout(GUARD, a.poll())
            .await
            .expect("a rebalance")
            .unwrap()
        {
            Event::Revoked(tps) => {
                for tp in tps {
                    a_now.remove(&tp.partition);
                }
            }
            Event::Assigned(tps) => {
                a_now.extend(tps.iter().map(|tp| tp.partition));
                break;
            }
            _ => {}
        }
    }
    let (mut b, b_now) = b_now.await.unwrap();
    assert!(a_now.is_disjoint(&b_now) && a_now.len() + b_now.len() == 4);
    let generation = a.generation().unwrap().generation_id;
    assert_eq!(b.generation().unwrap().generation_id, generation);

    // a goes away without leaving (a static member sends no LeaveGroup) and comes back.
    a.close().await.unwrap();
    let mut again = member(&bootstrap, Some("static-a")).await;
    assert_eq!(
        assigned(&mut again).await,
        a_now,
        "the same partitions come back"
    );
    assert_eq!(
        again.generation().unwrap().generation_id,
        generation,
        "no rebalance"
    );
    // b saw nothing: its next events are records of its own partitions, not a rebalance.
    produce_each(&bootstrap, "static", 4).await;
    let mut seen = BTreeSet::new();
    tokio::time::timeout(GUARD, async {
        while seen != b_now {
            match b.poll().await.unwrap() {
                Event::Records(batch) => {
                    seen.insert(batch.topic_partition.partition);
                }
                other => panic!("b was disturbed: {other:?}"),
            }
        }
    })
    .await
    .expect("b reads its partitions");
    assert_eq!(b.generation().unwrap().generation_id, generation);
}

/// One record to each of `partitions` partitions.
async fn produce_each(bootstrap: &str, topic: &str, partitions: i32) {
    let producer = Producer::connect(ClusterConfig::new(bootstrap), ProducerConfig::default())
        .await
        .unwrap();
    for p in 0..partitions {
        let r = ProducerRecord::new(topic).partition(p).value("x");
        producer.send(r).await.unwrap().await.unwrap();
    }
    producer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_are_described_with_created_values_and_defaults() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let cluster = Cluster::connect(ClusterConfig::new(&kafka.bootstrap()))
        .await
        .unwrap();
    let admin = Admin::new(cluster);
    admin
        .create_topics(&[NewTopic::new("compacted", 1, 1)
            .config("cleanup.policy", "compact")
            .config("max.message.bytes", "65536")])
        .await
        .unwrap();
    let configs = admin.describe_topic_config("compacted").await.unwrap();
    let value = |name: &str| {
        configs
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.value.clone())
    };
    assert_eq!(
        value("cleanup.policy").as_deref(),
        Some("compact"),
        "{configs:?}"
    );
    assert_eq!(value("max.message.bytes").as_deref(), Some("65536"));
    // The rest are the broker's defaults (Kafka lists every topic config).
    assert_eq!(value("retention.ms").as_deref(), Some("604800000"));
    assert!(configs.len() > 20, "{} configs", configs.len());
    // A second creation is refused, naming the topic; ensure_topic takes it as existing.
    let err = admin
        .create_topics(&[NewTopic::new("compacted", 1, 1)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Topic { topic, code, .. }
            if topic == "compacted" && *code == ErrorCode::TOPIC_ALREADY_EXISTS),
        "{err}"
    );
    assert!(!admin
        .ensure_topic(&NewTopic::new("compacted", 1, 1))
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_unknown_at_first_is_found_once_it_exists() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let admin = Admin::new(
        Cluster::connect(ClusterConfig::new(&kafka.bootstrap()))
            .await
            .unwrap(),
    );
    // Offsets of a topic that does not exist are an error naming it, not an empty list.
    let err = admin
        .list_offsets("no-such-topic", &[], kbus::admin::OffsetSpec::Latest)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Topic { topic, code, .. }
            if topic == "no-such-topic" && *code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{err}"
    );
    assert!(err.is_retriable(), "{err}");

    // A client that asked for a topic before it existed finds it once it does: the "unknown"
    // answer is not kept as the answer. The watcher is another client than the one creating it,
    // so nothing but its own lookups tells it the topic now exists.
    let watcher = Cluster::connect(ClusterConfig::new(&kafka.bootstrap()))
        .await
        .unwrap();
    assert!(watcher.partitions("created-later").await.is_err());
    admin
        .create_topics(&[NewTopic::new("created-later", 2, 1)])
        .await
        .unwrap();
    let deadline = Instant::now() + GUARD;
    loop {
        match watcher.partitions("created-later").await {
            Ok(partitions) => break assert_eq!(partitions, vec![0, 1]),
            Err(e) => assert!(Instant::now() < deadline, "still unknown: {e}"),
        }
        // The new topic reaches the broker's metadata on the controller's schedule.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Metadata committed beside an offset comes back with it, from Kafka itself, to another consumer
/// of the group; committing an offset alone clears it. (The event bus keeps the offsets finished
/// above its commit there.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_committed_with_an_offset_comes_back_with_it() {
    let kafka = Kafka::shared();
    let bootstrap = kafka.bootstrap();
    create_topic(&bootstrap, "with-metadata", 2, &[]).await;
    let props = [
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", "metadata-group"),
    ];
    let tp0 = TopicPartition::new("with-metadata", 0);
    let tp1 = TopicPartition::new("with-metadata", 1);
    let mut a = Consumer::from_properties(props).await.unwrap();
    a.assign([tp0.clone(), tp1.clone()]).unwrap();
    let text = "kbus:finished=3,5-7 ✓".to_string();
    a.commit_with_metadata(&[
        (
            tp0.clone(),
            OffsetAndMetadata {
                offset: 2,
                metadata: text.clone(),
            },
        ),
        (tp1.clone(), OffsetAndMetadata::new(9)),
    ])
    .await
    .unwrap();

    let b = Consumer::from_properties(props).await.unwrap();
    let found = b
        .committed_with_metadata(&[
            tp0.clone(),
            tp1.clone(),
            TopicPartition::new("with-metadata", 7),
        ])
        .await
        .unwrap();
    assert_eq!(
        found[&tp0],
        Some(OffsetAndMetadata {
            offset: 2,
            metadata: text
        })
    );
    assert_eq!(found[&tp1], Some(OffsetAndMetadata::new(9)));
    assert_eq!(found[&TopicPartition::new("with-metadata", 7)], None);

    a.commit(&[(tp0.clone(), 4)]).await.unwrap();
    let found = b
        .committed_with_metadata(std::slice::from_ref(&tp0))
        .await
        .unwrap();
    assert_eq!(found[&tp0], Some(OffsetAndMetadata::new(4)));
}

/// Coordinator requests have a connection of their own: a commit does not queue behind a fetch
/// the broker holds for `fetch.max.wait.ms` (Kafka answers one connection's requests in order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_does_not_wait_behind_a_fetch_the_broker_holds() {
    let kafka = Kafka::shared();
    let bootstrap = kafka.bootstrap();
    create_topic(&bootstrap, "held-fetch", 1, &[]).await;
    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", "held-fetch-group"),
        ("fetch.max.wait.ms", "8000"),
        ("auto.offset.reset", "earliest"),
    ])
    .await
    .unwrap();
    let tp = TopicPartition::new("held-fetch", 0);
    consumer.assign([tp.clone()]).unwrap();
    // The partition is empty: the fetch under way is held at the broker for up to 8 s.
    assert_eq!(consumer.resolve_position(&tp).await.unwrap(), 0);
    let started = std::time::Instant::now();
    consumer.commit(&[(tp.clone(), 0)]).await.unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "the commit waited {took:?} (behind the held fetch?)"
    );
}

/// Reads `n` records, each of one of `from` and at the next offset `next` expects of its
/// partition (so nothing is skipped or read twice); advances `next`.
async fn read_in_order(consumer: &mut Consumer, n: usize, from: &[i32], next: &mut [i64]) {
    let mut read = 0;
    while read < n {
        let batch = next_records(consumer).await.unwrap();
        let p = batch.topic_partition.partition;
        assert!(
            from.contains(&p),
            "records of partition {p}, not one of {from:?}"
        );
        for r in &batch.records {
            assert_eq!(r.offset, next[p as usize], "partition {p}");
            next[p as usize] += 1;
        }
        read += batch.records.len();
        assert!(read <= n, "{read} records read, {n} expected");
    }
}

/// Waits until `done` holds for the consumer's metrics.
async fn until_metrics(consumer: &mut Consumer, what: &str, done: impl Fn(&kbus::Metrics) -> bool) {
    let deadline = Instant::now() + GUARD;
    while !done(&consumer.metrics()) {
        assert!(
            Instant::now() < deadline,
            "{what}: {:?}",
            consumer.metrics()
        );
        // Nothing is to be read: poll only to wait a little for the fetches to go on.
        let _ = tokio::time::timeout(Duration::from_millis(50), consumer.poll()).await;
    }
}

/// Fetch sessions (KIP-227) on Kafka: after its first fetch the consumer's fetches are
/// incremental (naming only partitions whose position moved, forgetting paused ones), and every
/// record still arrives once and in order while partitions are paused, resumed and sought. A
/// broker restart forgets every session: the next fetch gets FETCH_SESSION_ID_NOT_FOUND, is sent
/// again in full at once, and reading goes on without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sessions_read_everything_once_across_pauses_seeks_and_a_broker_restart() {
    fetch_sessions_across_pauses_seeks_and_a_broker_restart(KafkaVersion::Newest).await;
}

/// The same on Kafka 3.0, whose newest Fetch (v12) names topics instead of giving their ids: the
/// session's partitions are kept and forgotten by topic name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sessions_by_topic_name_on_kafka_3_0() {
    fetch_sessions_across_pauses_seeks_and_a_broker_restart(KafkaVersion::First3x).await;
}

async fn fetch_sessions_across_pauses_seeks_and_a_broker_restart(version: KafkaVersion) {
    let mut kafka = Kafka::builder().version(version).start();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    let topic = "fetch-sessions";
    let all = [0, 1, 2, 3, 4, 5];
    create_topic(&bootstrap, topic, 6, &[]).await;
    produce_to_each_partition(&bootstrap, topic, 6, 50, "first").await;
    let tps: Vec<TopicPartition> = all.iter().map(|&p| TopicPartition::new(topic, p)).collect();
    let mut consumer = consumer(&bootstrap, OffsetReset::Earliest).await;
    consumer.assign(tps.clone()).unwrap();
    let mut next = [0i64; 6];
    read_in_order(&mut consumer, 300, &all, &mut next).await;
    // Caught up: the fetches that wait for more are incremental ones.
    until_metrics(&mut consumer, "incremental fetches", |m| {
        m.incremental_fetches >= 3
    })
    .await;

    // Paused partitions leave the session; the others go on.
    consumer.pause(&tps[..2]);
    produce_to_each_partition(&bootstrap, topic, 6, 50, "paused").await;
    read_in_order(&mut consumer, 200, &all[2..], &mut next).await;
    consumer.resume(&tps[..2]);
    read_in_order(&mut consumer, 100, &all[..2], &mut next).await;
    assert_eq!(next, [100; 6]);

    // A seek back: the session gets the partition's new offset.
    consumer.seek(&tps[3], 10).unwrap();
    next[3] = 10;
    read_in_order(&mut consumer, 90, &[3], &mut next).await;

    // With every partition paused and no fetch in flight, the broker restarts and forgets the
    // session; more records arrive meanwhile. While partitions are unpaused the consumer plans its
    // next fetch as soon as an answer is applied, so one is planned or in flight now: once it
    // is answered (the count passes `planned`) and nothing is in flight, no fetch is left.
    let planned = consumer.metrics().fetches;
    consumer.pause(&tps);
    until_metrics(&mut consumer, "the last fetch answered", |m| {
        m.fetches > planned && m.requests_in_flight == 0
    })
    .await;
    let before = consumer.metrics();
    tokio::task::block_in_place(|| kafka.restart());
    produce_to_each_partition(&bootstrap, topic, 6, 50, "restarted").await;
    consumer.resume(&tps);
    read_in_order(&mut consumer, 300, &all, &mut next).await;
    assert_eq!(next, [150; 6]);
    let after = consumer.metrics();
    assert_eq!(
        after.errors.get("FETCH_SESSION_ID_NOT_FOUND"),
        Some(&1),
        "{after:?}"
    );
    // A new session: incremental fetches again.
    until_metrics(
        &mut consumer,
        "incremental fetches after the restart",
        |m| m.incremental_fetches >= before.incremental_fetches + 3,
    )
    .await;
    consumer.close().await.unwrap();
}
