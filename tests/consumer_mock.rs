//! The consumer on librdkafka's 3-broker mock cluster: partitions spread over brokers, leaders
//! moved and brokers taken down mid-consumption, injected fetch errors, snappy batches written by
//! librdkafka itself, and resets after an out-of-range offset.

use std::collections::BTreeMap;
use std::time::Duration;

use kbus::cluster::{Cluster, ClusterConfig};
use kbus::consumer::{Consumer, ConsumerConfig, ConsumerRecord, Event, OffsetReset};
use kbus::protocol::compression::Compression;
use kbus::protocol::error_code::ErrorCode;
use kbus::protocol::messages::produce::{ProducePartition, ProduceRequest, ProduceTopic};
use kbus::protocol::record::{Header, RecordBatchBuilder};
use kbus::protocol::ApiKey;
use kbus::{Error, TopicPartition};
use kbus_testkit::mock_cluster::MockCluster;

/// A failure guard: no single step of a test may take longer.
const GUARD: Duration = Duration::from_secs(30);

fn value(p: i32, i: i64) -> String {
    format!("value-{p}-{i}")
}

/// Produces records `from..from + n` (by their intended offsets) to `topic`/`p` in one batch, at
/// whichever broker leads the partition now.
async fn produce(cluster: &Cluster, topic: &str, p: i32, codec: Compression, from: i64, n: i64) {
    let mut b = RecordBatchBuilder::new(codec);
    for i in from..from + n {
        let headers = [Header::new("n", Some(i.to_string()))];
        b.push(
            1_764_000_000_000 + i,
            Some(format!("key-{i}").as_bytes()),
            Some(value(p, i).as_bytes()),
            &headers,
        )
        .unwrap();
    }
    let records = b.build().unwrap();
    for _ in 0..50 {
        let req = ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topics: vec![ProduceTopic {
                name: topic.into(),
                partitions: vec![ProducePartition {
                    index: p,
                    records: Some(records.clone()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let sent = match cluster.leader(topic, p).await {
            Ok((_, conn)) => conn.send(&req).await,
            Err(e) => Err(e),
        };
        let code = match sent {
            Ok(resp) => ErrorCode(resp.responses[0].partitions[0].error_code),
            Err(e) => {
                // A leader that went down: look the partition up again.
                assert!(cluster.report(&e), "produce to {topic}/{p}: {e}");
                continue;
            }
        };
        if code.is_ok() {
            return;
        }
        // A moved leader: look it up again.
        assert!(cluster.report_code(code), "produce to {topic}/{p}: {code}");
    }
    panic!("could not produce to {topic}/{p}");
}

async fn connect(mock: &MockCluster) -> Cluster {
    Cluster::connect(ClusterConfig::new(&mock.bootstrap()))
        .await
        .unwrap()
}

fn consumer(cluster: &Cluster, reset: OffsetReset) -> Consumer {
    Consumer::new(
        cluster.clone(),
        ConsumerConfig {
            auto_offset_reset: reset,
            fetch_max_wait: Duration::from_millis(100),
            // Small fetches: many round trips, so faults land mid-consumption.
            max_partition_fetch_bytes: 2048,
            ..Default::default()
        },
    )
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

/// Polls until `got` holds at least `n` records in all.
async fn consume_into(
    consumer: &mut Consumer,
    got: &mut BTreeMap<i32, Vec<ConsumerRecord>>,
    n: usize,
) {
    while got.values().map(Vec::len).sum::<usize>() < n {
        let batch = poll(consumer).await.unwrap();
        got.entry(batch.topic_partition.partition)
            .or_default()
            .extend(batch.records);
    }
}

/// Every partition holds exactly offsets `0..per_partition`, in order, with their values.
fn check_exactly(got: &BTreeMap<i32, Vec<ConsumerRecord>>, partitions: i32, per_partition: i64) {
    assert_eq!(
        got.len(),
        partitions as usize,
        "records from every partition"
    );
    for (p, records) in got {
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(
            offsets,
            (0..per_partition).collect::<Vec<_>>(),
            "partition {p}: each record once, in order"
        );
        for r in records {
            assert_eq!(r.value.as_deref(), Some(value(*p, r.offset).as_bytes()));
            assert_eq!(
                r.headers[0].value_str(),
                Some(r.offset.to_string().as_str())
            );
        }
    }
}

/// Nothing more than what was checked arrived: after one more record per partition, the next
/// record of each is that one.
async fn check_nothing_repeated(
    cluster: &Cluster,
    consumer: &mut Consumer,
    topic: &str,
    partitions: i32,
    next: i64,
) {
    for p in 0..partitions {
        produce(cluster, topic, p, Compression::None, next, 1).await;
    }
    let mut got = BTreeMap::new();
    consume_into(consumer, &mut got, partitions as usize).await;
    for (p, records) in got {
        assert_eq!(records.len(), 1, "partition {p}");
        assert_eq!(records[0].offset, next, "partition {p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_led_by_three_brokers_is_read_once_in_order() {
    let mock = MockCluster::start(3);
    mock.create_topic("spread", 6, 1);
    let cluster = connect(&mock).await;
    for p in 0..6 {
        for (b, codec) in [Compression::None, Compression::Gzip, Compression::Zstd]
            .into_iter()
            .enumerate()
        {
            produce(&cluster, "spread", p, codec, b as i64 * 40, 40).await;
        }
    }
    let mut consumer = consumer(&cluster, OffsetReset::Earliest);
    consumer.assign(tps("spread", 6)).unwrap();
    let mut got = BTreeMap::new();
    consume_into(&mut consumer, &mut got, 6 * 120).await;
    check_exactly(&got, 6, 120);
    check_nothing_repeated(&cluster, &mut consumer, "spread", 6, 120).await;
    // The mock cluster offers no fetch sessions (it answers session id 0): every fetch stayed a
    // full one.
    let metrics = consumer.metrics();
    assert!(metrics.fetches >= 3, "{metrics:?}");
    assert_eq!(metrics.incremental_fetches, 0, "{metrics:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaders_moved_mid_consumption_lose_and_repeat_nothing() {
    let mock = MockCluster::start(3);
    mock.create_topic("moving", 4, 3);
    let cluster = connect(&mock).await;
    for p in 0..4 {
        for b in 0..5 {
            produce(&cluster, "moving", p, Compression::Lz4, b * 20, 20).await;
        }
    }
    let mut consumer = consumer(&cluster, OffsetReset::Earliest);
    consumer.assign(tps("moving", 4)).unwrap();
    let mut got = BTreeMap::new();
    consume_into(&mut consumer, &mut got, 150).await;

    // Every partition moves to the next broker; the old leaders refuse fetches from now on.
    let md = cluster.metadata();
    for p in 0..4 {
        let old = md.topic("moving").unwrap().partition(p).unwrap().leader;
        mock.set_leader("moving", p, Some(old % 3 + 1));
    }
    for p in 0..4 {
        produce(&cluster, "moving", p, Compression::None, 100, 50).await;
    }
    consume_into(&mut consumer, &mut got, 4 * 150).await;
    check_exactly(&got, 4, 150);
    check_nothing_repeated(&cluster, &mut consumer, "moving", 4, 150).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_going_down_is_followed_to_the_new_one() {
    let mock = MockCluster::start(3);
    mock.create_topic("down", 1, 3);
    let cluster = connect(&mock).await;
    for b in 0..4 {
        produce(&cluster, "down", 0, Compression::None, b * 25, 25).await;
    }
    let mut consumer = consumer(&cluster, OffsetReset::Earliest);
    consumer.assign(tps("down", 1)).unwrap();
    let mut got = BTreeMap::new();
    consume_into(&mut consumer, &mut got, 30).await;

    let old = cluster.metadata().topic("down").unwrap().partitions[0].leader;
    let new = old % 3 + 1;
    mock.broker_down(old);
    mock.set_leader("down", 0, Some(new));
    produce(&cluster, "down", 0, Compression::Gzip, 100, 20).await;
    consume_into(&mut consumer, &mut got, 120).await;
    check_exactly(&got, 1, 120);
    mock.broker_up(old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_fetch_errors_and_disconnects_are_retried() {
    let mock = MockCluster::start(3);
    mock.create_topic("faulty", 3, 1);
    let cluster = connect(&mock).await;
    for p in 0..3 {
        produce(&cluster, "faulty", p, Compression::None, 0, 60).await;
    }
    mock.push_request_errors(
        ApiKey::Fetch,
        &[
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
            ErrorCode::UNKNOWN_LEADER_EPOCH,
            ErrorCode::FENCED_LEADER_EPOCH,
        ],
    );
    let mut consumer = consumer(&cluster, OffsetReset::Earliest);
    consumer.assign(tps("faulty", 3)).unwrap();
    let mut got = BTreeMap::new();
    consume_into(&mut consumer, &mut got, 60).await;
    mock.push_disconnect(ApiKey::Fetch);
    mock.push_request_errors(ApiKey::Fetch, &[ErrorCode::NOT_LEADER_OR_FOLLOWER]);
    consume_into(&mut consumer, &mut got, 180).await;
    check_exactly(&got, 3, 60);
    check_nothing_repeated(&cluster, &mut consumer, "faulty", 3, 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snappy_batches_written_by_librdkafka_are_read() {
    use rdkafka::config::ClientConfig;
    use rdkafka::message::{Header as RdHeader, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let mock = MockCluster::start(3);
    mock.create_topic("snappy", 2, 1);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap())
        .set("compression.type", "snappy")
        .set("linger.ms", "50")
        .create()
        .unwrap();
    for p in 0..2 {
        for i in 0..300i64 {
            let headers = OwnedHeaders::new().insert(RdHeader {
                key: "n",
                value: Some(&i.to_string()),
            });
            let key = format!("key-{i}");
            let payload = value(p, i);
            producer
                .send(
                    BaseRecord::to("snappy")
                        .partition(p)
                        .key(&key)
                        .payload(&payload)
                        .headers(headers),
                )
                .unwrap();
        }
    }
    producer.flush(GUARD).unwrap();

    let cluster = connect(&mock).await;
    let mut consumer = consumer(&cluster, OffsetReset::Earliest);
    consumer.assign(tps("snappy", 2)).unwrap();
    let mut got = BTreeMap::new();
    consume_into(&mut consumer, &mut got, 600).await;
    check_exactly(&got, 2, 300);
    for records in got.values() {
        for r in records {
            let key = format!("key-{}", r.offset);
            assert_eq!(r.key.as_deref(), Some(key.as_bytes()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offset_past_the_end_resets_per_policy() {
    let mock = MockCluster::start(3);
    mock.create_topic("range", 1, 1);
    let cluster = connect(&mock).await;
    produce(&cluster, "range", 0, Compression::None, 0, 10).await;
    let tp = TopicPartition::new("range", 0);

    // earliest: back to the start.
    let mut earliest = consumer(&cluster, OffsetReset::Earliest);
    earliest.assign([tp.clone()]).unwrap();
    earliest.seek(&tp, 1_000).unwrap();
    let mut got = BTreeMap::new();
    consume_into(&mut earliest, &mut got, 10).await;
    check_exactly(&got, 1, 10);

    // latest: to the end (after the out-of-range answer, which the test cannot wait for without
    // racing the next produce; the state machine's unit tests cover the reset to latest).
    let mut latest = consumer(&cluster, OffsetReset::Latest);
    latest.assign([tp.clone()]).unwrap();
    assert_eq!(latest.resolve_position(&tp).await.unwrap(), 10);
    produce(&cluster, "range", 0, Compression::None, 10, 1).await;
    let batch = poll(&mut latest).await.unwrap();
    assert_eq!(batch.records[0].offset, 10);

    // none: an error naming the partition and the offset; the partition waits for a seek.
    let mut none = consumer(&cluster, OffsetReset::None);
    none.assign([tp.clone()]).unwrap();
    none.seek(&tp, 1_000).unwrap();
    let err = poll(&mut none).await.unwrap_err();
    assert!(
        matches!(&err, Error::Consume { topic, partition: 0, offset: 1_000, code, .. }
            if topic == "range" && *code == ErrorCode::OFFSET_OUT_OF_RANGE),
        "{err}"
    );
    assert!(err.to_string().contains("range/0 at offset 1000"), "{err}");
    none.seek(&tp, 9).unwrap();
    let batch = poll(&mut none).await.unwrap();
    assert_eq!(batch.records[0].offset, 9);
}

/// A broker slower than `request.timeout.ms` fails every fetch: the consumer keeps retrying, and
/// `poll` says why nothing arrives (an `Event::Error` naming the timeout) instead of staying
/// silent; once the broker is fast again, every record arrives, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_too_slow_for_the_request_timeout_is_reported_by_poll() {
    let mock = MockCluster::start(1);
    mock.create_topic("slow", 1, 1);
    let mut config = ClusterConfig::new(&mock.bootstrap());
    config.connection.request_timeout = Duration::from_millis(800);
    let cluster = Cluster::connect(config).await.unwrap();
    produce(&cluster, "slow", 0, Compression::None, 0, 20).await;
    let mut consumer = consumer(&cluster, OffsetReset::Earliest);
    consumer.assign(tps("slow", 1)).unwrap();
    let mut got = BTreeMap::new();
    consume_into(&mut consumer, &mut got, 20).await;

    mock.set_round_trip_time(None, Duration::from_millis(1500));
    let error = match tokio::time::timeout(GUARD, consumer.poll()).await {
        Ok(Ok(Event::Error(e))) => e,
        Ok(Ok(Event::Records(r))) => panic!("records from a broker that never answers: {r:?}"),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(_) => panic!("poll stayed silent for {GUARD:?} while every fetch timed out"),
    };
    assert!(
        matches!(error, Error::RequestTimeout { .. }),
        "the warning names the timeout: {error}"
    );
    assert!(error.is_retriable(), "{error}");
    let metrics = consumer.metrics();
    assert!(
        metrics.errors.get("timeout").copied().unwrap_or(0) >= 3,
        "timeouts counted: {metrics:?}"
    );

    mock.set_round_trip_time(None, Duration::ZERO);
    produce(&cluster, "slow", 0, Compression::None, 20, 20).await;
    loop {
        match tokio::time::timeout(GUARD, consumer.poll()).await {
            Ok(Ok(Event::Records(r))) => got.entry(0).or_default().extend(r.records),
            // Warnings of the streak may still be queued.
            Ok(Ok(Event::Error(e))) => assert!(e.is_retriable(), "{e}"),
            other => panic!("unexpected {other:?}"),
        }
        if got[&0].len() >= 40 {
            break;
        }
    }
    check_exactly(&got, 1, 40);
    let metrics = consumer.metrics();
    assert!(metrics.records_received >= 40, "{metrics:?}");
    assert!(metrics.bytes_received > 0, "{metrics:?}");
}
