//! The producer against a real broker (tansu 0.6.0 on SQLite): 100k keyed records with acks=all,
//! each consumed exactly once, on its key's murmur2 partition and in per-key order; and gzip, lz4
//! and zstd batches that round-trip with their keys, values, headers and timestamps.
//!
//! tansu quirks tolerated here (see shared/reference/test-brokers.md):
//! - tansu 0.6.0 drops the connection on InitProducerId, so these producers run with
//!   `enable_idempotence: Some(false)`; idempotence is tested on the mock cluster
//!   (tests/producer_mock.rs).
//! - tansu ignores acks: acks=all is still what the producer asks for and must be accepted.
//! - on SQLite storage tansu cannot serve snappy batches; snappy is covered on the mock cluster
//!   (tests/interop_kcat.rs).
//! - a fetch waits about max_wait/2: the read-back consumer uses a small fetch.max.wait.
//! - tansu re-encodes what it serves (one batch per fetch, in the codec the records were written
//!   with), so the codec check below sees tansu's batches, not kbus's own.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use kbus::admin::{Admin, NewTopic};
use kbus::cluster::{Cluster, ClusterConfig};
use kbus::producer::{murmur2_partition, Acks, Producer, ProducerConfig, ProducerRecord};
use kbus::protocol::compression::Compression;
use kbus::protocol::record::Header;
use kbus_testkit::tansu::Tansu;

/// A failure guard: sending and settling all records of a test may not take longer.
const GUARD: Duration = Duration::from_secs(180);

async fn start() -> (Tansu, Cluster) {
    let broker = Tansu::start();
    let cluster = Cluster::connect(ClusterConfig::new(&broker.addr()))
        .await
        .unwrap();
    (broker, cluster)
}

async fn create(cluster: &Cluster, topic: &str, partitions: i32) {
    Admin::new(cluster.clone())
        .create_topics(&[NewTopic::new(topic, partitions, 1)])
        .await
        .unwrap();
}

/// A producer with acks=all and idempotence off: tansu 0.6.0 drops the connection on
/// InitProducerId (idempotence is tested on the mock cluster).
async fn producer(cluster: &Cluster, compression: Compression) -> Producer {
    let p = Producer::new(
        cluster.clone(),
        ProducerConfig {
            acks: Acks::All,
            compression,
            enable_idempotence: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(p.identity().is_none(), "idempotence is off");
    p
}

/// Checks the delivery reports `(key index, partition, offset)`, in send order: each key `key-{k}`
/// on its murmur2 partition, and each key's offsets increasing. tansu answers these Produce
/// requests without errors, so no batch is retried: even without idempotence and with several
/// requests in flight, the records of one partition must then be written in the order they were
/// sent (Java and librdkafka only warn of reordering after a retried send).
fn assert_delivered_in_key_order(delivered: &[(usize, i32, i64)], partitions: i32) {
    let mut last_offset: HashMap<usize, i64> = HashMap::new();
    for (k, partition, offset) in delivered {
        let key = format!("key-{k}");
        assert_eq!(
            *partition,
            murmur2_partition(key.as_bytes(), partitions),
            "{key}"
        );
        assert!(*offset >= 0, "{key}: acks=all reports an offset");
        let prev = last_offset.insert(*k, *offset);
        assert!(
            prev.is_none_or(|o| o < *offset),
            "{key}: written at {offset} after a later-sent record at {prev:?}: \
             produce requests to one broker overtook each other"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_with_acks_all_are_read_exactly_once_on_their_murmur2_partition_in_order() {
    let (broker, cluster) = start().await;
    let topic = "produce.keyed";
    let partitions = 6;
    create(&cluster, topic, partitions).await;
    let p = producer(&cluster, Compression::None).await;
    let n = 100_000;
    let keys = 1_000;

    let delivered = tokio::time::timeout(GUARD, async {
        let mut futures = Vec::with_capacity(n);
        for i in 0..n {
            let rec = ProducerRecord::new(topic)
                .key(format!("key-{}", i % keys))
                .value(format!("value-{i}"));
            futures.push((i % keys, p.send(rec).await.unwrap()));
        }
        let mut out = Vec::with_capacity(n);
        for (k, f) in futures {
            let md = f.await.unwrap();
            out.push((k, md.partition, md.offset));
        }
        out
    })
    .await
    .expect("100k records delivered in time");
    p.close().await.unwrap();

    assert_delivered_in_key_order(&delivered, partitions);

    // The log holds each record once, and a consumer sees them on the right partitions, in order.
    assert_eq!(
        common::records_in_log(&broker.addr(), topic).await,
        n as i64
    );
    let records = common::read_all(&broker.addr(), topic, partitions).await;
    common::assert_exactly_once(&records, n);
    common::assert_per_key_order(&records);
    for r in &records {
        let key = std::str::from_utf8(r.key.as_deref().unwrap()).unwrap();
        assert_eq!(
            r.partition,
            murmur2_partition(key.as_bytes(), partitions),
            "{key}"
        );
        let i: usize = std::str::from_utf8(r.value.as_deref().unwrap())
            .unwrap()
            .strip_prefix("value-")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            key,
            format!("key-{}", i % keys),
            "key and value stay paired"
        );
    }
}

async fn records_end(cluster: &Cluster, topic: &str, partition: i32) -> i64 {
    Admin::new(cluster.clone())
        .list_offsets(topic, &[partition], kbus::admin::OffsetSpec::Latest)
        .await
        .unwrap()[0]
        .offset
}

/// The timestamp given to record `i`.
fn timestamp(i: usize) -> i64 {
    1_764_000_000_000 + i as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_lz4_and_zstd_batches_round_trip() {
    let partitions = 3;
    let n = 5_000;
    for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
        // A broker per codec: tansu 0.6.0 serves compressed batches more slowly the more records
        // its SQLite file holds in all topics (about 1 s a fetch at 5,000, 2 s at 10,000).
        let (broker, cluster) = start().await;
        let topic = format!("produce.{}", codec.name());
        create(&cluster, &topic, partitions).await;
        let p = producer(&cluster, codec).await;
        let delivered = tokio::time::timeout(GUARD, async {
            let mut futures = Vec::with_capacity(n);
            for i in 0..n {
                let mut rec = ProducerRecord::new(&topic)
                    .key(format!("key-{}", i % 50))
                    .value(format!("value-{i}"))
                    .header("n", i.to_string())
                    .header("empty", "")
                    .timestamp(timestamp(i));
                rec.headers.push(Header::new("null", None::<Vec<u8>>));
                futures.push((i % 50, p.send(rec).await.unwrap()));
            }
            let mut out = Vec::with_capacity(n);
            for (k, f) in futures {
                let md = f.await.unwrap();
                out.push((k, md.partition, md.offset));
            }
            out
        })
        .await
        .unwrap_or_else(|_| panic!("{codec:?}: records delivered in time"));
        p.close().await.unwrap();
        assert_delivered_in_key_order(&delivered, partitions);

        for partition in 0..partitions {
            let end = records_end(&cluster, &topic, partition).await;
            let codecs = common::batch_codecs(&cluster, &topic, partition, end).await;
            assert!(
                !codecs.is_empty() && codecs.iter().all(|c| *c == codec),
                "{topic}/{partition}: batches served as {codecs:?}"
            );
        }

        let records = common::read_all(&broker.addr(), &topic, partitions).await;
        common::assert_exactly_once(&records, n);
        common::assert_per_key_order(&records);
        for r in &records {
            let v = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
            let i: usize = v.strip_prefix("value-").unwrap().parse().unwrap();
            let key = format!("key-{}", i % 50);
            assert_eq!(r.key.as_deref(), Some(key.as_bytes()), "{codec:?} {v}");
            assert_eq!(
                r.partition,
                murmur2_partition(key.as_bytes(), partitions),
                "{codec:?} {v}"
            );
            assert_eq!(r.timestamp, timestamp(i), "{codec:?} {v}");
            let headers: Vec<(&str, Option<&[u8]>)> = r
                .headers
                .iter()
                .map(|h| (h.key_str().unwrap(), h.value.as_deref()))
                .collect();
            assert_eq!(
                headers,
                vec![
                    ("n", Some(i.to_string().as_bytes())),
                    ("empty", Some(&b""[..])),
                    ("null", None),
                ],
                "{codec:?} {v}"
            );
        }
    }
}
