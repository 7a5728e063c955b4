//! kbus as a reader of transactions written by the Java client, on Apache Kafka itself:
//! - Kafka's `TransactionalMessageCopier` copies a kbus-written topic partition by partition in
//!   transactions of 50 records, aborting some at random and copying their records again. kbus
//!   with `isolation.level=read_committed` delivers exactly the input records once each — never an
//!   aborted record, never a control record — exactly what the Java consumer reads with
//!   read_committed; with read_uncommitted it delivers every data record, aborted ones included,
//!   exactly as the Java consumer does; and each partition's position ends after its last
//!   transaction marker.
//! - A Java transactional producer killed in the middle of a transaction: the coordinator aborts
//!   it on timeout, the partition then ends in an abort marker, and a read_committed kbus
//!   consumer reaches that end without delivering a record.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kbus::admin::{Admin, OffsetSpec};
use kbus::cluster::{Cluster, ClusterConfig};
use kbus::consumer::{Consumer, ConsumerConfig, Event, IsolationLevel, OffsetReset};
use kbus::producer::{Producer, ProducerConfig, ProducerRecord};
use kbus::TopicPartition;
use kbus_testkit::kafka::console::{console_consume, TextRecord};
use kbus_testkit::kafka::{JavaTool, Kafka, KafkaVersion};

use common::{blocking, create_topic, served_batches, to_text};

const PARTITIONS: i32 = 3;
const N: usize = 1_500;
/// A failure guard for waits on the broker or a consumer.
const GUARD: Duration = Duration::from_secs(120);

/// The log-end offset of every partition of `topic`.
async fn ends(cluster: &Cluster, topic: &str) -> BTreeMap<i32, i64> {
    let deadline = Instant::now() + GUARD;
    loop {
        match Admin::new(cluster.clone())
            .list_offsets(topic, &[], OffsetSpec::Latest)
            .await
        {
            Ok(offsets) => {
                return offsets
                    .into_iter()
                    .map(|p| (p.partition, p.offset))
                    .collect()
            }
            Err(e) if e.is_retriable() && Instant::now() < deadline => {
                // A topic just created reaches every broker's metadata shortly after.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("offsets of {topic}: {e}"),
        }
    }
}

/// Reads `topic` from the beginning at `isolation` until every partition's position reaches
/// its log-end offset in `ends` (markers included), and returns what was delivered, sorted.
async fn read_to_end(
    bootstrap: &str,
    topic: &str,
    ends: &BTreeMap<i32, i64>,
    isolation: IsolationLevel,
) -> Vec<TextRecord> {
    let cluster = Cluster::connect(ClusterConfig::new(bootstrap))
        .await
        .unwrap();
    let mut consumer = Consumer::new(
        cluster,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            isolation_level: isolation,
            fetch_max_wait: Duration::from_millis(100),
            ..Default::default()
        },
    );
    let tps: Vec<TopicPartition> = ends
        .keys()
        .map(|p| TopicPartition::new(topic, *p))
        .collect();
    consumer.assign(tps.clone()).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + GUARD;
    loop {
        let at_end = tps
            .iter()
            .all(|tp| consumer.position(tp) == Some(ends[&tp.partition]));
        if at_end {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{isolation:?}: positions {:?} did not reach the ends {ends:?}",
            tps.iter()
                .map(|tp| consumer.position(tp))
                .collect::<Vec<_>>()
        );
        // A partition may end in markers only: the position moves without records to hand out,
        // so the positions are looked at again whenever a poll brings nothing for a while.
        if let Ok(event) = tokio::time::timeout(Duration::from_millis(500), consumer.poll()).await {
            if let Event::Records(batch) = event.unwrap() {
                out.extend(batch.records.iter().map(to_text));
            }
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_delivers_exactly_the_committed_records() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    create_topic(&bootstrap, "txn-input", PARTITIONS, &[]).await;
    create_topic(&bootstrap, "txn-output", PARTITIONS, &[]).await;

    let producer = Producer::connect(ClusterConfig::new(&bootstrap), ProducerConfig::default())
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..N {
        let r = ProducerRecord::new("txn-input")
            .key(format!("key-{}", i % 60))
            .value(format!("value-{i}"));
        deliveries.push(producer.send(r).await.unwrap());
    }
    // Where each input record went: the copier writes it to the same partition number.
    let mut input_partition = std::collections::HashMap::new();
    for (i, d) in deliveries.into_iter().enumerate() {
        input_partition.insert(format!("value-{i}"), d.await.unwrap().partition);
    }
    producer.close().await.unwrap();

    // One copier per input partition (it writes each record to the same partition number).
    let copiers: Vec<_> = (0..PARTITIONS)
        .map(|p| {
            let bootstrap = bootstrap.clone();
            blocking(move || {
                let p = p.to_string();
                JavaTool::new(
                    KafkaVersion::Newest,
                    "org.apache.kafka.tools.TransactionalMessageCopier",
                )
                .args(["--broker-list", &bootstrap, "--input-topic", "txn-input"])
                .args(["--input-partition", &p, "--output-topic", "txn-output"])
                .args(["--transactional-id", &format!("copier-{p}")])
                .args(["--consumer-group", &format!("copier-{p}")])
                .args(["--transaction-size", "50", "--enable-random-aborts"])
                .run(GUARD)
            })
        })
        .collect();
    for copier in copiers {
        let out = copier.await;
        assert!(out.success, "the copier failed:\n{}", out.stderr);
    }

    let cluster = Cluster::connect(ClusterConfig::new(&bootstrap))
        .await
        .unwrap();
    let ends = ends(&cluster, "txn-output").await;
    // What the broker holds, read below the consumer: data records (committed and aborted) and
    // markers.
    let mut data_offsets = BTreeSet::new();
    let mut marker_offsets = BTreeSet::new();
    for (&p, &end) in &ends {
        let batches = served_batches(&cluster, "txn-output", p, end).await;
        assert!(
            batches.last().is_some_and(|b| b.control),
            "partition {p} ends in a transaction marker"
        );
        for b in batches {
            assert!(b.transactional, "every output batch is transactional");
            let set = if b.control {
                &mut marker_offsets
            } else {
                &mut data_offsets
            };
            set.extend(b.offsets.iter().map(|o| (p, *o)));
        }
    }
    assert!(
        data_offsets.len() > N,
        "some transactions were aborted and copied again ({} data records for {N} inputs)",
        data_offsets.len()
    );

    // read_committed: the input, once each, exactly as the Java consumer sees it.
    let committed = read_to_end(
        &bootstrap,
        "txn-output",
        &ends,
        IsolationLevel::ReadCommitted,
    )
    .await;
    let java_committed = blocking({
        let bootstrap = bootstrap.clone();
        move || {
            console_consume(
                KafkaVersion::Newest,
                &bootstrap,
                "txn-output",
                N,
                "read_committed",
            )
        }
    })
    .await;
    assert_eq!(committed.len(), N);
    assert_eq!(
        committed, java_committed,
        "kbus and Java disagree on read_committed"
    );
    let mut values: Vec<&str> = committed
        .iter()
        .map(|r| r.value.as_deref().unwrap())
        .collect();
    values.sort_unstable();
    let mut expected: Vec<String> = (0..N).map(|i| format!("value-{i}")).collect();
    expected.sort_unstable();
    assert_eq!(
        values, expected,
        "read_committed delivers each input record once"
    );
    for r in &committed {
        assert!(
            data_offsets.contains(&(r.partition, r.offset)),
            "not a data record: {r:?}"
        );
        let value = r.value.as_deref().unwrap();
        assert_eq!(
            r.partition, input_partition[value],
            "the copier keeps partitions"
        );
    }

    // read_uncommitted: every data record, aborted ones included, never a marker.
    let uncommitted = read_to_end(
        &bootstrap,
        "txn-output",
        &ends,
        IsolationLevel::ReadUncommitted,
    )
    .await;
    let delivered: BTreeSet<(i32, i64)> = uncommitted
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    assert_eq!(delivered, data_offsets);
    assert!(delivered.is_disjoint(&marker_offsets));
    let java_uncommitted = blocking({
        let (bootstrap, count) = (bootstrap.clone(), data_offsets.len());
        move || {
            console_consume(
                KafkaVersion::Newest,
                &bootstrap,
                "txn-output",
                count,
                "read_uncommitted",
            )
        }
    })
    .await;
    assert_eq!(
        uncommitted, java_uncommitted,
        "kbus and Java disagree on read_uncommitted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_ending_in_an_aborted_transaction_is_read_to_its_end() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    create_topic(&bootstrap, "txn-abandoned", 1, &[]).await;
    let cluster = Cluster::connect(ClusterConfig::new(&bootstrap))
        .await
        .unwrap();

    // A Java transactional producer whose first transaction would last ten minutes, killed once
    // it has written records: the coordinator aborts the transaction after its 3 s timeout.
    let mut producer = JavaTool::new(
        KafkaVersion::Newest,
        "org.apache.kafka.tools.ProducerPerformance",
    )
    .args(["--topic", "txn-abandoned", "--num-records", "1000000"])
    .args(["--throughput", "500", "--record-size", "40"])
    .args([
        "--transactional-id",
        "abandoned",
        "--transaction-duration-ms",
        "600000",
    ])
    .args([
        "--producer-props",
        &format!("bootstrap.servers={bootstrap}"),
    ])
    .args(["transaction.timeout.ms=3000", "linger.ms=5"])
    .spawn();
    let deadline = Instant::now() + GUARD;
    while ends(&cluster, "txn-abandoned").await[&0] < 200 {
        assert!(
            Instant::now() < deadline,
            "the Java producer wrote nothing:\n{}",
            producer.stderr()
        );
        // Waiting for another process's writes: there is no event to wait on but the offsets.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    producer.kill();

    // The abort marker comes once the coordinator times the transaction out.
    let deadline = Instant::now() + GUARD;
    let (end, batches) = loop {
        let end = ends(&cluster, "txn-abandoned").await[&0];
        let batches = served_batches(&cluster, "txn-abandoned", 0, end).await;
        if batches.last().is_some_and(|b| b.control) {
            break (end, batches);
        }
        assert!(
            Instant::now() < deadline,
            "the transaction was never aborted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let data: usize = batches
        .iter()
        .filter(|b| !b.control)
        .map(|b| b.offsets.len())
        .sum();
    assert!(data >= 200);

    let ends = BTreeMap::from([(0, end)]);
    let committed = read_to_end(
        &bootstrap,
        "txn-abandoned",
        &ends,
        IsolationLevel::ReadCommitted,
    )
    .await;
    assert!(
        committed.is_empty(),
        "aborted records were delivered: {}",
        committed.len()
    );
    let uncommitted = read_to_end(
        &bootstrap,
        "txn-abandoned",
        &ends,
        IsolationLevel::ReadUncommitted,
    )
    .await;
    assert_eq!(uncommitted.len(), data);
}
