//! Interoperability with the Java client on Apache Kafka itself (one KRaft node, the newest 4.x),
//! through Kafka's console producer and consumer:
//! - what the Java producer writes with every codec (none, gzip, snappy, lz4, zstd) kbus reads
//!   exactly as the Java consumer reads it: same partitions, offsets, timestamps, keys, values and
//!   headers (empty and null values included), every batch in the codec asked for;
//! - what kbus writes with every codec (explicit timestamps and partitions, no headers, empty and
//!   null ones) the Java consumer reads back exactly as kbus said it wrote it;
//! - keys land on the partitions the Java producer's default partitioner picks, both ways;
//! - what Kafka's `VerifiableProducer` reports as acknowledged (partition and offset of each
//!   record), kbus reads there.
//!
//! The Kafka jars come from scripts/install-test-deps; without them these tests fail (they do not
//! skip).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kbus::cluster::{Cluster, ClusterConfig};
use kbus::producer::{murmur2_partition, Producer, ProducerConfig, ProducerRecord};
use kbus::protocol::compression::Compression;
use kbus_testkit::kafka::console::{console_consume, console_produce, TextRecord, TimestampKind};
use kbus_testkit::kafka::{ConsumerEvent, JavaTool, Kafka, KafkaVersion};

use common::{batch_codecs, blocking, create_topic, read_all, to_text};

/// Records per codec and direction.
const N: usize = 400;
const PARTITIONS: i32 = 3;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The records the Java producer writes: keys (one in ten null) repeating over 40 values, values
/// (one in 25 null, one in 30 empty), and one to three headers, among them empty and null values
/// and a repeated header key.
fn java_input() -> Vec<TextRecord> {
    (0..N)
        .map(|i| {
            let key = format!("key-{}", i % 40);
            let key = (i % 10 != 3).then_some(key.as_str());
            let value = format!("value-{i}");
            let value = match i {
                i if i % 25 == 7 => None,
                i if i % 30 == 11 => Some(""),
                _ => Some(value.as_str()),
            };
            let first = format!("n-{i}");
            let headers: Vec<(&str, Option<&str>)> = match i % 4 {
                0 => vec![("h-first", Some(first.as_str()))],
                1 => vec![("h-first", Some(first.as_str())), ("h-empty", Some(""))],
                2 => vec![("h-null", None), ("h-first", Some(first.as_str()))],
                _ => vec![
                    ("h-dup", Some("a")),
                    ("h-dup", Some("b")),
                    ("h-empty", Some("")),
                ],
            };
            TextRecord::new(&headers, key, value)
        })
        .collect()
}

/// A record's headers, key and value: what was written, apart from where it went.
type Contents = (
    Vec<(String, Option<String>)>,
    Option<String>,
    Option<String>,
);

/// The contents of `records`, sorted.
fn contents(records: &[TextRecord]) -> Vec<Contents> {
    let mut c: Vec<Contents> = records
        .iter()
        .map(|r| (r.headers.clone(), r.key.clone(), r.value.clone()))
        .collect();
    c.sort();
    c
}

/// Asserts that the broker serves every batch holding `records` (all of `topic`, from offset 0)
/// compressed with `codec`, as `writer` wrote them.
async fn assert_served_in(
    bootstrap: &str,
    topic: &str,
    records: &[TextRecord],
    codec: Compression,
    writer: &str,
) {
    let cluster = Cluster::connect(ClusterConfig::new(bootstrap))
        .await
        .unwrap();
    for p in 0..PARTITIONS {
        let end = records.iter().filter(|r| r.partition == p).count() as i64;
        let codecs = batch_codecs(&cluster, topic, p, end).await;
        assert!(
            codecs.iter().all(|c| *c == codec),
            "{codec:?}: {writer}'s batches of partition {p} came as {codecs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_writes_kbus_reads_every_codec() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    let input = java_input();
    for codec in Compression::ALL {
        let topic = format!("java-to-kbus-{}", codec.name());
        create_topic(&bootstrap, &topic, PARTITIONS, &[]).await;
        let before = now_ms();
        blocking({
            let (bootstrap, topic, input) = (bootstrap.clone(), topic.clone(), input.clone());
            move || {
                console_produce(
                    KafkaVersion::Newest,
                    &bootstrap,
                    &topic,
                    &input,
                    &[("compression.type", codec.name()), ("linger.ms", "20")],
                )
            }
        })
        .await;
        let after = now_ms();

        let mut by_kbus: Vec<TextRecord> = read_all(&bootstrap, &topic, PARTITIONS)
            .await
            .iter()
            .map(to_text)
            .collect();
        by_kbus.sort_by_key(|r| (r.partition, r.offset));
        let by_java = blocking({
            let (bootstrap, topic) = (bootstrap.clone(), topic.clone());
            move || {
                console_consume(
                    KafkaVersion::Newest,
                    &bootstrap,
                    &topic,
                    N,
                    "read_uncommitted",
                )
            }
        })
        .await;
        assert_eq!(
            by_java.len(),
            N,
            "{codec:?}: the Java consumer read {} records",
            by_java.len()
        );
        assert_eq!(
            by_kbus, by_java,
            "{codec:?}: kbus and the Java consumer disagree"
        );

        assert_eq!(
            contents(&by_kbus),
            contents(&input),
            "{codec:?}: records changed on the way"
        );
        for r in &by_kbus {
            let (kind, ts) = r.timestamp.unwrap();
            assert_eq!(kind, TimestampKind::Create, "{codec:?}: {r:?}");
            assert!(
                (before..=after).contains(&ts),
                "{codec:?}: timestamp of {r:?} not in [{before}, {after}]"
            );
            if let Some(key) = &r.key {
                assert_eq!(
                    r.partition,
                    murmur2_partition(key.as_bytes(), PARTITIONS),
                    "{codec:?}: the Java producer put {key} elsewhere than kbus would"
                );
            }
        }
        assert_served_in(&bootstrap, &topic, &by_kbus, codec, "the Java producer").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kbus_writes_java_reads_every_codec() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    // Every codec at its default level, and gzip at both ends of its levels (KIP-390's
    // compression.gzip.level).
    let runs = Compression::ALL
        .into_iter()
        .map(|codec| (codec, "-1"))
        .chain([(Compression::Gzip, "1"), (Compression::Gzip, "9")]);
    for (codec, level) in runs {
        let topic = match level {
            "-1" => format!("kbus-to-java-{}", codec.name()),
            level => format!("kbus-to-java-{}-level-{level}", codec.name()),
        };
        create_topic(&bootstrap, &topic, PARTITIONS, &[]).await;
        let mut properties = vec![
            ("bootstrap.servers", bootstrap.as_str()),
            ("compression.type", codec.name()),
            ("linger.ms", "20"),
        ];
        if codec == Compression::Gzip {
            properties.push(("compression.gzip.level", level));
        }
        let producer = Producer::from_properties(properties).await.unwrap();
        let base = now_ms() - 86_400_000;
        let mut deliveries = Vec::new();
        for i in 0..N {
            let mut r = ProducerRecord::new(&topic).timestamp(base + i as i64);
            if i % 10 != 3 {
                r = r.key(format!("key-{}", i % 40));
            }
            match i {
                i if i % 25 == 7 => {}
                i if i % 30 == 11 => r = r.value(""),
                _ => r = r.value(format!("value-{i}")),
            }
            if i % 9 == 5 {
                r = r.partition((i % PARTITIONS as usize) as i32);
            }
            r = match i % 4 {
                0 => r,
                1 => r.header("h-first", format!("n-{i}")),
                2 => r.header("h-empty", "").null_header("h-null"),
                _ => r.header("h-dup", "a").header("h-dup", "b"),
            };
            deliveries.push((r.clone(), producer.send(r).await.unwrap()));
        }
        let mut expected = Vec::new();
        for (sent, delivery) in deliveries {
            let at = delivery.await.unwrap();
            let text = |b: &bytes::Bytes| String::from_utf8(b.to_vec()).unwrap();
            if let Some(p) = sent.partition {
                assert_eq!(
                    at.partition, p,
                    "{codec:?}: an explicit partition was not kept"
                );
            } else if let Some(key) = &sent.key {
                assert_eq!(at.partition, murmur2_partition(key, PARTITIONS));
            }
            expected.push(TextRecord {
                partition: at.partition,
                offset: at.offset,
                timestamp: Some((TimestampKind::Create, sent.timestamp.unwrap())),
                headers: sent
                    .headers
                    .iter()
                    .map(|h| (text(&h.key), h.value.as_ref().map(text)))
                    .collect(),
                key: sent.key.as_ref().map(text),
                value: sent.value.as_ref().map(text),
            });
        }
        producer.close().await.unwrap();
        expected.sort_by_key(|r| (r.partition, r.offset));

        let by_java = blocking({
            let (bootstrap, topic) = (bootstrap.clone(), topic.clone());
            move || {
                console_consume(
                    KafkaVersion::Newest,
                    &bootstrap,
                    &topic,
                    N,
                    "read_uncommitted",
                )
            }
        })
        .await;
        assert_eq!(
            by_java, expected,
            "{codec:?}: the Java consumer read something else"
        );

        assert_served_in(&bootstrap, &topic, &expected, codec, "kbus").await;
    }
}

/// Text of words and numbers (no separators the console output uses), `len` bytes.
fn words(len: usize, mut seed: u64) -> String {
    const WORDS: [&str; 10] = [
        "order", "created", "payment", "shipped", "status", "amount", "eur", "item", "lisbon", "ok",
    ];
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if seed % 3 == 0 {
            s.push_str(&format!("{} ", seed % 1_000_000));
        } else {
            s.push_str(WORDS[(seed % 10) as usize]);
            s.push(' ');
        }
    }
    s.truncate(len);
    s
}

/// kbus's own zstd encoder, in every shape it writes, read back by libzstd twice: by the broker,
/// which decompresses each batch to validate it, and by the Java consumer (zstd-jni). Shapes:
/// batches of many records (Huffman-coded literals over four streams, weights FSE-coded since the
/// records' varints use bytes above 127, sequence tables fitted to the block), batches longer than
/// one 128 KiB block (matches across blocks), a long run of one byte, and a batch too small to
/// compress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_reads_kbus_zstd_frames_of_every_shape() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    let topic = "kbus-zstd-shapes";
    create_topic(&bootstrap, topic, 1, &[]).await;
    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("compression.type", "zstd"),
        ("batch.size", "900000"),
        ("linger.ms", "200"),
    ])
    .await
    .unwrap();
    let mut values: Vec<String> = (0..3000u64)
        .map(|i| words(40 + (i as usize * 37) % 400, i + 1))
        .collect();
    values.push(words(400 * 1024, 99));
    values.push("a".repeat(200 * 1024));
    values.push("x".into());
    let record = |i: usize| {
        ProducerRecord::new(topic)
            .key(format!("key-{}", i % 100))
            .value(values[i].clone())
    };
    let mut deliveries = Vec::new();
    for i in 0..values.len() - 1 {
        deliveries.push(producer.send(record(i)).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    // The last one alone in its batch.
    let last = producer.send(record(values.len() - 1)).await.unwrap();
    last.await.unwrap();
    producer.close().await.unwrap();

    let by_java = blocking({
        let (bootstrap, n) = (bootstrap.clone(), values.len());
        move || {
            console_consume(
                KafkaVersion::Newest,
                &bootstrap,
                topic,
                n,
                "read_uncommitted",
            )
        }
    })
    .await;
    assert_eq!(
        by_java.len(),
        values.len(),
        "the Java consumer read too few"
    );
    for (i, (record, value)) in by_java.iter().zip(&values).enumerate() {
        assert_eq!(record.offset, i as i64);
        assert_eq!(
            record.key.as_deref(),
            Some(format!("key-{}", i % 100).as_str())
        );
        assert!(
            record.value.as_deref() == Some(value.as_str()),
            "record {i} ({} bytes) came back otherwise",
            value.len()
        );
    }
    let cluster = Cluster::connect(ClusterConfig::new(&bootstrap))
        .await
        .unwrap();
    let codecs = batch_codecs(&cluster, topic, 0, values.len() as i64).await;
    assert!(codecs.len() >= 3, "{} batches", codecs.len());
    assert!(codecs.iter().all(|c| *c == Compression::Zstd), "{codecs:?}");
}

/// 2,000 distinct keys over 7 partitions: the Java producer's default partitioner and kbus's put
/// each key on the same partition, whichever client writes and whichever reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_land_where_the_java_producer_puts_them() {
    const KEYS: usize = 2000;
    const PARTS: i32 = 7;
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    let keys: Vec<String> = (0..KEYS)
        .map(|i| format!("customer/{i}/{}", i * 7919))
        .collect();

    // The Java producer places the keys; kbus reads where they went.
    create_topic(&bootstrap, "placement-java", PARTS, &[]).await;
    let input: Vec<TextRecord> = keys
        .iter()
        .map(|k| TextRecord::new(&[("h", Some("x"))], Some(k), Some("v")))
        .collect();
    blocking({
        let bootstrap = bootstrap.clone();
        move || {
            console_produce(
                KafkaVersion::Newest,
                &bootstrap,
                "placement-java",
                &input,
                &[],
            )
        }
    })
    .await;
    let java_placed: HashMap<String, i32> = read_all(&bootstrap, "placement-java", PARTS)
        .await
        .iter()
        .map(|r| {
            (
                String::from_utf8(r.key.as_ref().unwrap().to_vec()).unwrap(),
                r.partition,
            )
        })
        .collect();
    assert_eq!(java_placed.len(), KEYS);

    // kbus places the same keys; the Java consumer reads where they went.
    create_topic(&bootstrap, "placement-kbus", PARTS, &[]).await;
    let producer = Producer::connect(ClusterConfig::new(&bootstrap), ProducerConfig::default())
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for k in &keys {
        let record = ProducerRecord::new("placement-kbus")
            .key(k.clone())
            .value("v");
        deliveries.push(producer.send(record).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close().await.unwrap();
    let kbus_placed: HashMap<String, i32> = blocking({
        let bootstrap = bootstrap.clone();
        move || {
            console_consume(
                KafkaVersion::Newest,
                &bootstrap,
                "placement-kbus",
                KEYS,
                "read_uncommitted",
            )
        }
    })
    .await
    .into_iter()
    .map(|r| (r.key.unwrap(), r.partition))
    .collect();

    let mut differ = BTreeMap::new();
    for k in &keys {
        let (java, kbus) = (java_placed[k], kbus_placed.get(k).copied().unwrap_or(-1));
        if java != kbus {
            differ.insert(k.clone(), (java, kbus));
        }
    }
    assert!(
        differ.is_empty(),
        "keys placed differently (java, kbus): {differ:?}"
    );
    // All partitions were used: the comparison covered every one.
    let used: std::collections::BTreeSet<i32> = java_placed.values().copied().collect();
    assert_eq!(used.len(), PARTS as usize);
}

/// Kafka's `VerifiableProducer` reports every acknowledged record with its partition and offset;
/// kbus reads exactly those records there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kbus_reads_what_the_verifiable_producer_acknowledged() {
    const COUNT: usize = 1_000;
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    create_topic(&bootstrap, "verifiable", PARTITIONS, &[]).await;
    let out = blocking({
        let bootstrap = bootstrap.clone();
        move || {
            JavaTool::new(
                KafkaVersion::Newest,
                "org.apache.kafka.tools.VerifiableProducer",
            )
            .args(["--bootstrap-server", &bootstrap, "--topic", "verifiable"])
            .args(["--max-messages", &COUNT.to_string(), "--acks", "-1"])
            .args(["--repeating-keys", "50", "--value-prefix", "7"])
            .run(Duration::from_secs(120))
        }
    })
    .await;
    assert!(
        out.success,
        "the verifiable producer failed:\n{}",
        out.stderr
    );
    let mut acked: Vec<(i32, i64, Option<String>, Option<String>)> = out
        .lines()
        .into_iter()
        .filter_map(ConsumerEvent::parse)
        .filter_map(|e| match e {
            ConsumerEvent::Sent { at, key, value } => Some((at.partition, at.offset, key, value)),
            _ => None,
        })
        .collect();
    acked.sort();
    assert_eq!(acked.len(), COUNT, "every record acknowledged");

    let text =
        |b: &Option<bytes::Bytes>| b.as_ref().map(|b| String::from_utf8(b.to_vec()).unwrap());
    let mut read: Vec<(i32, i64, Option<String>, Option<String>)> =
        read_all(&bootstrap, "verifiable", PARTITIONS)
            .await
            .iter()
            .map(|r| (r.partition, r.offset, text(&r.key), text(&r.value)))
            .collect();
    read.sort();
    assert_eq!(read, acked);
    // Its keys are "0".."49" and its values "7.<n>": keys went where kbus would put them.
    for (partition, _, key, value) in &read {
        let key = key.as_deref().unwrap();
        assert_eq!(*partition, murmur2_partition(key.as_bytes(), PARTITIONS));
        assert!(value.as_deref().unwrap().starts_with("7."));
    }
}
