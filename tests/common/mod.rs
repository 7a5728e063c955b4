//! Helpers shared by the producer integration tests: reading a topic back with the kbus consumer
//! and checking that every record arrived exactly once.
#![allow(dead_code)]

pub mod handled;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kbus::admin::{Admin, OffsetSpec};
use kbus::cluster::{Cluster, ClusterConfig};
use kbus::consumer::{Consumer, ConsumerConfig, ConsumerRecord, Event, OffsetReset};
use kbus::protocol::compression::Compression;
use kbus::protocol::messages::fetch::{FetchPartition, FetchRequest, FetchTopic};
use kbus::protocol::record::BatchDecoder;
use kbus::protocol::ApiKey;
use kbus::TopicPartition;

/// A failure guard: reading a topic back may not take longer.
const GUARD: Duration = Duration::from_secs(120);

/// The sum of the log sizes of every partition of `topic`: the number of records written to it
/// (duplicates included).
pub async fn records_in_log(bootstrap: &str, topic: &str) -> i64 {
    let cluster = Cluster::connect(ClusterConfig::new(bootstrap))
        .await
        .unwrap();
    let admin = Admin::new(cluster);
    let end = admin
        .list_offsets(topic, &[], OffsetSpec::Latest)
        .await
        .unwrap();
    let start = admin
        .list_offsets(topic, &[], OffsetSpec::Earliest)
        .await
        .unwrap();
    end.iter().map(|p| p.offset).sum::<i64>() - start.iter().map(|p| p.offset).sum::<i64>()
}

/// Reads every record of `topic` (with `partitions` partitions) from the beginning with a manual
/// kbus consumer, until the log-end offsets of all partitions are reached.
pub async fn read_all(bootstrap: &str, topic: &str, partitions: i32) -> Vec<ConsumerRecord> {
    let cluster = Cluster::connect(ClusterConfig::new(bootstrap))
        .await
        .unwrap();
    let ends: HashMap<i32, i64> = Admin::new(cluster.clone())
        .list_offsets(topic, &[], OffsetSpec::Latest)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.partition, p.offset))
        .collect();
    let mut consumer = Consumer::new(
        cluster,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            fetch_max_wait: Duration::from_millis(100),
            ..Default::default()
        },
    );
    consumer
        .assign((0..partitions).map(|p| TopicPartition::new(topic, p)))
        .unwrap();
    let mut out = Vec::new();
    let mut done: HashMap<i32, bool> = (0..partitions)
        .map(|p| (p, ends.get(&p).copied().unwrap_or(0) == 0))
        .collect();
    tokio::time::timeout(GUARD, async {
        while done.values().any(|d| !d) {
            #[allow(irrefutable_let_patterns)]
            let Event::Records(batch) = consumer.poll().await.unwrap() else {
                continue;
            };
            let p = batch.topic_partition.partition;
            if batch.next_offset >= ends[&p] {
                done.insert(p, true);
            }
            out.extend(batch.records);
        }
    })
    .await
    .expect("read the topic back in time");
    out
}

/// Asserts `records` hold values `value-0 .. value-{n-1}` once each.
pub fn assert_exactly_once(records: &[ConsumerRecord], n: usize) {
    let mut seen = vec![0u32; n];
    for r in records {
        let v = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
        let i: usize = v.strip_prefix("value-").unwrap().parse().unwrap();
        seen[i] += 1;
    }
    let missing = seen.iter().filter(|c| **c == 0).count();
    let duplicated = seen.iter().filter(|c| **c > 1).count();
    assert_eq!(
        (missing, duplicated),
        (0, 0),
        "records missing / duplicated"
    );
    assert_eq!(records.len(), n);
}

/// Asserts that, per partition, the records of each key come in the order they were sent
/// (their `value-{i}` numbers increase).
pub fn assert_per_key_order(records: &[ConsumerRecord]) {
    let mut last: HashMap<(i32, Vec<u8>), usize> = HashMap::new();
    for r in records {
        let v = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
        let i: usize = v.strip_prefix("value-").unwrap().parse().unwrap();
        let k = (r.partition, r.key.as_deref().unwrap_or_default().to_vec());
        if let Some(prev) = last.insert(k, i) {
            assert!(prev < i, "per-key order broken at {v}");
        }
    }
}

/// One record batch as the broker serves it (read with plain Fetch requests, below the consumer).
#[derive(Debug, Clone)]
pub struct ServedBatch {
    pub compression: Compression,
    /// A transaction marker batch.
    pub control: bool,
    pub transactional: bool,
    /// The offsets of its records (data records, or the marker's).
    pub offsets: Vec<i64>,
}

/// The codec of every record batch the broker serves for `topic`/`partition`, read from offset 0
/// to `end` with plain Fetch requests (by topic name: version 12 at most).
pub async fn batch_codecs(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    end: i64,
) -> Vec<Compression> {
    served_batches(cluster, topic, partition, end)
        .await
        .into_iter()
        .map(|b| b.compression)
        .collect()
}

/// Every record batch the broker serves for `topic`/`partition` from offset 0 to `end`, read with
/// plain Fetch requests (read_uncommitted, by topic name: version 12 at most).
pub async fn served_batches(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    end: i64,
) -> Vec<ServedBatch> {
    let (_, conn) = cluster.leader(topic, partition).await.unwrap();
    let version = conn.version(ApiKey::Fetch).unwrap().min(12);
    let mut batches = Vec::new();
    let mut offset = 0;
    while offset < end {
        let req = FetchRequest {
            replica_id: -1,
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 8 << 20,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: topic.into(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    current_leader_epoch: -1,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 4 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let resp = tokio::time::timeout(GUARD, conn.send_at(&req, version))
            .await
            .expect("fetch answered in time")
            .unwrap();
        let data = &resp.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "fetch {topic}/{partition}@{offset}");
        let before = offset;
        for batch in BatchDecoder::new(data.records.clone().unwrap_or_default()) {
            let batch = batch.unwrap();
            let offsets = if batch.is_control() {
                (batch.base_offset..batch.next_offset()).collect()
            } else {
                batch.records().map(|r| r.unwrap().offset).collect()
            };
            offset = offset.max(batch.next_offset());
            batches.push(ServedBatch {
                compression: batch.compression(),
                control: batch.is_control(),
                transactional: batch.is_transactional(),
                offsets,
            });
        }
        assert!(
            offset > before,
            "fetch {topic}/{partition}@{before} made progress"
        );
    }
    batches
}

/// Creates `topic` with `partitions` partitions (replication factor: the broker's default) and
/// the topic `configs` given, on the cluster at `bootstrap`.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let cluster = Cluster::connect(ClusterConfig::new(bootstrap))
        .await
        .unwrap();
    let mut new = kbus::admin::NewTopic::new(topic, partitions, -1);
    for (k, v) in configs {
        new = new.config(*k, *v);
    }
    Admin::new(cluster)
        .create_topics(&[new])
        .await
        .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
}

/// Runs blocking work (a Java tool, a broker restart) on a blocking thread, so the runtime's
/// workers stay free; a panic in it fails the test.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// A consumed record as text, in the console consumer's terms, for comparing with what the
/// Java client read or wrote.
pub fn to_text(r: &ConsumerRecord) -> kbus_testkit::kafka::console::TextRecord {
    use kbus::consumer::TimestampType;
    use kbus_testkit::kafka::console::{TextRecord, TimestampKind};
    let text = |b: &bytes::Bytes| String::from_utf8(b.to_vec()).expect("UTF-8 test data");
    TextRecord {
        partition: r.partition,
        offset: r.offset,
        timestamp: Some((
            match r.timestamp_type {
                TimestampType::CreateTime => TimestampKind::Create,
                TimestampType::LogAppendTime => TimestampKind::LogAppend,
            },
            r.timestamp,
        )),
        headers: r
            .headers
            .iter()
            .map(|h| (text(&h.key), h.value.as_ref().map(text)))
            .collect(),
        key: r.key.as_ref().map(text),
        value: r.value.as_ref().map(text),
    }
}

/// Writes `n` records (values `{tag}-{partition}-{i}`) to each of partitions `0..partitions`,
/// acknowledged; returns each partition's log end afterwards.
pub async fn produce_to_each_partition(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    n: usize,
    tag: &str,
) -> BTreeMap<i32, i64> {
    use kbus::producer::{Producer, ProducerConfig, ProducerRecord};
    let producer = Producer::connect(ClusterConfig::new(bootstrap), ProducerConfig::default())
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for p in 0..partitions {
        for i in 0..n {
            let r = ProducerRecord::new(topic)
                .partition(p)
                .value(format!("{tag}-{p}-{i}"));
            deliveries.push(producer.send(r).await.unwrap());
        }
    }
    let mut ends = BTreeMap::new();
    for d in deliveries {
        let at = d.await.unwrap();
        let end = ends.entry(at.partition).or_insert(0);
        *end = (*end).max(at.offset + 1);
    }
    producer.close().await.unwrap();
    ends
}
