//! A consumer group through the [`Consumer`] on a real broker (tansu 0.6.0 on SQLite): a single
//! member subscribes, is assigned every partition, consumes, commits and closes; the next member of
//! the group resumes from the committed offsets — after an explicit commit, and after the commit
//! auto-commit makes on close.
//!
//! tansu quirks tolerated here (see shared/reference/test-brokers.md): group behaviour is kept to
//! one member at a time (tansu's JoinGroup answers at once with the members known so far, and two
//! members of one group were seen with overlapping assignments; multi-member groups are tested on
//! the mock cluster, tests/consumer_group_mock.rs); tansu drops the connection on InitProducerId,
//! so the producer runs without idempotence; a fetch waits about max_wait/2, so
//! fetch.max.wait.ms is small.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kbus::admin::{Admin, NewTopic};
use kbus::cluster::{Cluster, ClusterConfig};
use kbus::config::Settings;
use kbus::consumer::{Consumer, ConsumerConfig, ConsumerRecord, Event};
use kbus::producer::{Producer, ProducerConfig, ProducerRecord};
use kbus::TopicPartition;
use kbus_testkit::tansu::Tansu;

/// A failure guard: no single step of a test may take longer.
const GUARD: Duration = Duration::from_secs(60);
const PARTITIONS: i32 = 3;

fn config(group_id: &str, auto_commit: bool) -> ConsumerConfig {
    let mut c = ConsumerConfig::from_properties([
        ("group.id", group_id),
        ("auto.offset.reset", "earliest"),
        // tansu holds every fetch for about half of max_wait.
        ("fetch.max.wait.ms", "50"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "500"),
    ])
    .unwrap();
    c.enable_auto_commit = auto_commit;
    c
}

fn value_of(r: &ConsumerRecord) -> String {
    String::from_utf8(r.value.as_deref().expect("a value").to_vec()).unwrap()
}

/// Sends records with values `{prefix}-0 .. {prefix}-{n-1}` (keyed by value, so they spread over
/// the partitions) and waits until all are written.
async fn produce(producer: &Producer, topic: &str, prefix: &str, n: usize) -> Vec<String> {
    let mut deliveries = Vec::new();
    for i in 0..n {
        let value = format!("{prefix}-{i}");
        let record = ProducerRecord::new(topic)
            .key(value.clone())
            .value(value.clone());
        deliveries.push((value, producer.send(record).await.unwrap()));
    }
    let mut values = Vec::new();
    for (value, delivery) in deliveries {
        delivery.await.unwrap();
        values.push(value);
    }
    values
}

/// Subscribes `consumer` to `topic` and polls until it has been assigned every partition and has
/// read `n` records; returns the records. Only records and the assignment may come.
async fn subscribe_and_read(consumer: &mut Consumer, topic: &str, n: usize) -> Vec<ConsumerRecord> {
    consumer.subscribe([topic]).unwrap();
    let all: BTreeSet<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let mut assigned = BTreeSet::new();
    let mut got = Vec::new();
    tokio::time::timeout(GUARD, async {
        while got.len() < n || assigned != all {
            match consumer.poll().await.unwrap() {
                Event::Assigned(partitions) => assigned.extend(partitions),
                Event::Records(batch) => {
                    assert!(assigned.contains(&batch.topic_partition));
                    got.extend(batch.records);
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("read {} of {n} records, assigned {assigned:?}", got.len()));
    assert_eq!(
        consumer.assignment(),
        all.iter().cloned().collect::<Vec<_>>()
    );
    got
}

fn sorted_values(records: &[ConsumerRecord]) -> Vec<String> {
    let mut values: Vec<String> = records.iter().map(value_of).collect();
    values.sort();
    values
}

fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values
}

/// The offset after the last record of each partition in `records`.
fn next_offsets(records: &[ConsumerRecord]) -> BTreeMap<i32, i64> {
    let mut next = BTreeMap::new();
    for r in records {
        let slot = next.entry(r.partition).or_insert(0);
        *slot = (*slot).max(r.offset + 1);
    }
    next
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_resumes_from_the_offsets_its_group_committed() {
    let broker = Tansu::start();
    let connect = || async {
        Cluster::connect(ClusterConfig::new(&broker.addr()))
            .await
            .unwrap()
    };
    let topic = "group.resume";
    Admin::new(connect().await)
        .create_topics(&[NewTopic::new(topic, PARTITIONS, 1)])
        .await
        .unwrap();
    let producer = Producer::new(
        connect().await,
        ProducerConfig {
            enable_idempotence: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let all: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic, p))
        .collect();

    // The first member reads everything there is, commits it, and closes.
    let first_values = produce(&producer, topic, "first", 30).await;
    let mut first = Consumer::new(connect().await, config("resume", false));
    let read = subscribe_and_read(&mut first, topic, 30).await;
    assert_eq!(sorted_values(&read), sorted(first_values));
    assert!(first.generation().is_some(), "a settled member");
    first.commit_consumed().await.unwrap();
    let committed = first.committed(&all).await.unwrap();
    for (p, next) in next_offsets(&read) {
        assert_eq!(committed[&all[p as usize]], Some(next), "partition {p}");
    }
    tokio::time::timeout(GUARD, first.close())
        .await
        .expect("close in time")
        .unwrap();

    // The next member of the group starts where the first one committed: only what came since.
    let second_values = produce(&producer, topic, "second", 20).await;
    let mut second = Consumer::new(connect().await, config("resume", true));
    let read = subscribe_and_read(&mut second, topic, 20).await;
    assert_eq!(sorted_values(&read), sorted(second_values));
    for r in &read {
        let from = committed[&all[r.partition as usize]].unwrap_or(0);
        assert!(
            r.offset >= from,
            "{}@{} is older than the commit",
            r.partition,
            r.offset
        );
    }
    // Auto-commit: closing commits what poll returned.
    let ends = next_offsets(&read);
    tokio::time::timeout(GUARD, second.close())
        .await
        .expect("close in time")
        .unwrap();

    let third_values = produce(&producer, topic, "third", 10).await;
    producer.close().await.unwrap();
    let mut third = Consumer::new(connect().await, config("resume", false));
    let committed = third.committed(&all).await.unwrap();
    for (p, next) in ends {
        assert_eq!(
            committed[&all[p as usize]],
            Some(next),
            "auto-committed {p}"
        );
    }
    let read = subscribe_and_read(&mut third, topic, 10).await;
    assert_eq!(sorted_values(&read), sorted(third_values));
    tokio::time::timeout(GUARD, third.close())
        .await
        .expect("close in time")
        .unwrap();
}
