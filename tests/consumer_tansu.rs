//! The consumer against a real broker (tansu 0.6.0 on SQLite): every record once and in order,
//! through gzip, lz4 and zstd batches; seek; pause and resume; auto.offset.reset; positions; and
//! committed offsets.
//!
//! tansu quirks tolerated here (see test-brokers.md): a fetch waits about max_wait/2 before
//! answering, so fetch.max.wait.ms is small; no snappy on SQLite storage, and no
//! OFFSET_OUT_OF_RANGE for a fetch past the end (both are tested on the mock cluster).

use std::collections::BTreeMap;
use std::time::Duration;

use kbus::admin::{Admin, NewTopic};
use kbus::cluster::{Cluster, ClusterConfig};
use kbus::consumer::{Consumer, ConsumerConfig, ConsumerRecord, Event, OffsetReset};
use kbus::protocol::compression::Compression;
use kbus::protocol::messages::produce::{ProducePartition, ProduceRequest, ProduceTopic};
use kbus::protocol::record::{Header, RecordBatchBuilder};
use kbus::{Error, TopicPartition};
use kbus_testkit::tansu::Tansu;

/// A failure guard: no single step of a test may take longer.
const GUARD: Duration = Duration::from_secs(30);

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

fn key(p: i32, i: i64) -> String {
    format!("key-{p}-{i}")
}

fn value(p: i32, i: i64) -> String {
    format!("value-{p}-{i}-{}", "x".repeat((i % 40) as usize))
}

/// Produces records `from..from + n` (by their intended offsets) to `topic`/`p` in one batch.
async fn produce(cluster: &Cluster, topic: &str, p: i32, codec: Compression, from: i64, n: i64) {
    let mut b = RecordBatchBuilder::new(codec);
    for i in from..from + n {
        let headers = [
            Header::new("n", Some(i.to_string())),
            Header::new("empty", None::<Vec<u8>>),
        ];
        b.push(
            1_764_000_000_000 + i,
            Some(key(p, i).as_bytes()),
            Some(value(p, i).as_bytes()),
            &headers,
        )
        .unwrap();
    }
    let (_, conn) = cluster.leader(topic, p).await.unwrap();
    let resp = conn
        .send(&ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topics: vec![ProduceTopic {
                name: topic.into(),
                partitions: vec![ProducePartition {
                    index: p,
                    records: Some(b.build().unwrap()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(resp.responses[0].partitions[0].error_code, 0);
}

fn config(reset: OffsetReset, group: Option<&str>) -> ConsumerConfig {
    ConsumerConfig {
        group: kbus::group::GroupConfig::new(group.unwrap_or_default()),
        auto_offset_reset: reset,
        // tansu holds every fetch for about half of max_wait.
        fetch_max_wait: Duration::from_millis(50),
        ..Default::default()
    }
}

fn tps(topic: &str, n: i32) -> Vec<TopicPartition> {
    (0..n).map(|p| TopicPartition::new(topic, p)).collect()
}

async fn poll(consumer: &mut Consumer) -> Result<kbus::consumer::PartitionRecords, Error> {
    match tokio::time::timeout(GUARD, consumer.poll()).await {
        Ok(Ok(Event::Records(r))) => Ok(r),
        Ok(Ok(other)) => panic!("unexpected event {other:?}"),
        Ok(Err(e)) => Err(e),
        Err(_) => panic!("no records within {GUARD:?}"),
    }
}

/// Polls until `n` records arrived; returns them by partition.
async fn consume(consumer: &mut Consumer, n: usize) -> BTreeMap<i32, Vec<ConsumerRecord>> {
    let mut got: BTreeMap<i32, Vec<ConsumerRecord>> = BTreeMap::new();
    let mut count = 0;
    while count < n {
        let batch = poll(consumer).await.unwrap();
        assert!(!batch.records.is_empty());
        count += batch.records.len();
        let p = batch.topic_partition.partition;
        assert!(batch.records.iter().all(|r| r.partition == p));
        got.entry(p).or_default().extend(batch.records);
    }
    assert_eq!(count, n, "more records than produced");
    got
}

fn check(p: i32, records: &[ConsumerRecord], from: i64) {
    for (i, r) in records.iter().enumerate() {
        let o = from + i as i64;
        assert_eq!(r.offset, o, "partition {p}: offsets in order, each once");
        assert_eq!(r.key.as_deref(), Some(key(p, o).as_bytes()));
        assert_eq!(r.value.as_deref(), Some(value(p, o).as_bytes()));
        assert_eq!(r.timestamp, 1_764_000_000_000 + o);
        assert_eq!(r.headers.len(), 2);
        assert_eq!(r.headers[0].key_str(), Some("n"));
        assert_eq!(r.headers[0].value_str(), Some(o.to_string().as_str()));
        assert_eq!(r.headers[1].key_str(), Some("empty"));
        assert_eq!(r.headers[1].value, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_once_in_order_across_codecs_then_seek_replays() {
    let (_broker, cluster) = start().await;
    let topic = "consume.codecs";
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Lz4,
        Compression::Zstd,
    ];
    create(&cluster, topic, codecs.len() as i32).await;
    // Three batches per partition, each partition with its own codec.
    for (p, codec) in codecs.iter().enumerate() {
        for b in 0..3 {
            produce(&cluster, topic, p as i32, *codec, b * 50, 50).await;
        }
    }
    let mut consumer = Consumer::new(cluster.clone(), config(OffsetReset::Earliest, None));
    consumer.assign(tps(topic, 4)).unwrap();
    assert_eq!(consumer.assignment(), tps(topic, 4));
    let got = consume(&mut consumer, 4 * 150).await;
    for (p, records) in &got {
        assert_eq!(records.len(), 150, "partition {p}");
        check(*p, records, 0);
        let tp = TopicPartition::new(topic, *p);
        assert_eq!(consumer.position(&tp), Some(150), "position advanced");
    }

    // Nothing was delivered twice: the next record of each partition is the next one produced.
    for p in 0..4 {
        produce(&cluster, topic, p, Compression::None, 150, 1).await;
    }
    let next = consume(&mut consumer, 4).await;
    for (p, records) in &next {
        check(*p, records, 150);
    }

    // Seeking back replays, also from the middle of a compressed batch.
    let tp1 = TopicPartition::new(topic, 1);
    consumer.seek(&tp1, 60).unwrap();
    assert_eq!(consumer.position(&tp1), Some(60));
    let replay = consume(&mut consumer, 91).await;
    assert_eq!(replay.keys().copied().collect::<Vec<_>>(), vec![1]);
    check(1, &replay[&1], 60);
    assert_eq!(consumer.position(&tp1), Some(151));

    // seek_to_beginning starts over.
    consumer
        .seek_to_beginning(std::slice::from_ref(&tp1))
        .unwrap();
    assert_eq!(consumer.resolve_position(&tp1).await.unwrap(), 0);
    let again = consume(&mut consumer, 151).await;
    check(1, &again[&1], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_partition_waits_while_the_others_go_on() {
    let (_broker, cluster) = start().await;
    let topic = "consume.pause";
    create(&cluster, topic, 2).await;
    for p in 0..2 {
        produce(&cluster, topic, p, Compression::None, 0, 10).await;
    }
    let mut consumer = Consumer::new(cluster.clone(), config(OffsetReset::Earliest, None));
    consumer.assign(tps(topic, 2)).unwrap();
    consume(&mut consumer, 20).await;

    let tp0 = TopicPartition::new(topic, 0);
    consumer.pause(std::slice::from_ref(&tp0));
    assert_eq!(consumer.paused(), vec![tp0.clone()]);
    produce(&cluster, topic, 0, Compression::Gzip, 10, 5).await;
    produce(&cluster, topic, 1, Compression::Gzip, 10, 5).await;
    produce(&cluster, topic, 1, Compression::Gzip, 15, 5).await;
    // Partition 1's records, produced after partition 0's, all arrive; none of partition 0's do.
    let got = consume(&mut consumer, 10).await;
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![1]);
    check(1, &got[&1], 10);
    assert_eq!(consumer.position(&tp0), Some(10));

    consumer.resume(std::slice::from_ref(&tp0));
    assert!(consumer.paused().is_empty());
    let got = consume(&mut consumer, 5).await;
    check(0, &got[&0], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_offset_reset_earliest_latest_and_none() {
    let (_broker, cluster) = start().await;
    let topic = "consume.reset";
    create(&cluster, topic, 1).await;
    produce(&cluster, topic, 0, Compression::None, 0, 5).await;
    let tp = TopicPartition::new(topic, 0);

    let mut earliest = Consumer::new(cluster.clone(), config(OffsetReset::Earliest, None));
    earliest.assign([tp.clone()]).unwrap();
    assert_eq!(earliest.resolve_position(&tp).await.unwrap(), 0);
    check(0, &consume(&mut earliest, 5).await[&0], 0);

    let mut latest = Consumer::new(cluster.clone(), config(OffsetReset::Latest, None));
    latest.assign([tp.clone()]).unwrap();
    assert_eq!(latest.resolve_position(&tp).await.unwrap(), 5);
    produce(&cluster, topic, 0, Compression::None, 5, 2).await;
    check(0, &consume(&mut latest, 2).await[&0], 5);

    // None, and nowhere to start: the error names the partition.
    let mut none = Consumer::new(cluster.clone(), config(OffsetReset::None, None));
    none.assign([tp.clone()]).unwrap();
    let err = poll(&mut none).await.unwrap_err();
    assert!(
        matches!(&err, Error::Consume { topic: t, partition: 0, .. } if t == topic),
        "{err}"
    );
    assert!(err.to_string().contains("consume.reset/0"), "{err}");
    // After a seek it consumes.
    none.seek(&tp, 3).unwrap();
    check(0, &consume(&mut none, 4).await[&0], 3);
    // tansu 0.6.0 answers a fetch past the log end with no records instead of
    // OFFSET_OUT_OF_RANGE, so resetting after an out-of-range offset is tested on the mock
    // cluster (tests/consumer_mock.rs).
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_are_where_a_new_consumer_of_the_group_starts() {
    let (_broker, cluster) = start().await;
    let topic = "consume.commit";
    create(&cluster, topic, 2).await;
    for p in 0..2 {
        produce(&cluster, topic, p, Compression::Zstd, 0, 20).await;
    }
    let all = tps(topic, 2);
    let mut first = Consumer::new(cluster.clone(), config(OffsetReset::Earliest, Some("g1")));
    assert_eq!(
        first.committed(&all).await.unwrap(),
        all.iter().map(|tp| (tp.clone(), None)).collect(),
        "nothing committed yet"
    );
    first.assign(all.clone()).unwrap();
    consume(&mut first, 40).await;
    first.commit_consumed().await.unwrap();
    let committed = first.committed(&all).await.unwrap();
    assert_eq!(committed[&all[0]], Some(20));
    assert_eq!(committed[&all[1]], Some(20));
    first
        .commit(&[(all[0].clone(), 7), (all[1].clone(), 12)])
        .await
        .unwrap();
    let committed = first.committed(&all).await.unwrap();
    assert_eq!(committed[&all[0]], Some(7));
    assert_eq!(committed[&all[1]], Some(12));
    drop(first);

    let mut second = Consumer::new(cluster.clone(), config(OffsetReset::Latest, Some("g1")));
    second.assign(all.clone()).unwrap();
    assert_eq!(second.resolve_position(&all[0]).await.unwrap(), 7);
    assert_eq!(second.resolve_position(&all[1]).await.unwrap(), 12);
    let got = consume(&mut second, 13 + 8).await;
    check(0, &got[&0], 7);
    check(1, &got[&1], 12);

    // Without group.id there is nothing to commit to.
    let mut loner = Consumer::new(cluster, config(OffsetReset::Earliest, None));
    let err = loner.commit(&[(all[0].clone(), 1)]).await.unwrap_err();
    assert!(err.to_string().contains("group.id"), "{err}");
}
