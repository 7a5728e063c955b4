//! Interoperability with librdkafka through kcat (Debian's `kcat`, librdkafka 2.0.2), on
//! librdkafka's in-process mock cluster (kcat cannot talk to tansu 0.6.0: it fails to parse tansu's
//! ApiVersions v3 answer):
//! - what kbus produces with every codec (none, gzip, snappy, lz4, zstd) kcat reads back with the
//!   same keys, values, headers and timestamps, where kbus said it wrote them;
//! - what kcat produces with every codec kbus reads back with the same keys, values and headers;
//! - keys go to the same partitions: kcat with `partitioner=murmur2_random` where kbus's default
//!   (Java's murmur2) puts them, and kcat's default (`consistent_random`) where kbus's
//!   `Partitioner::ConsistentRandom` puts them.
//!
//! kcat is installed by scripts/install-test-deps; without it these tests fail (they do not skip).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kbus::cluster::{Cluster, ClusterConfig};
use kbus::consumer::ConsumerRecord;
use kbus::producer::{
    crc32_ieee, murmur2_partition, Partitioner, Producer, ProducerConfig, ProducerRecord,
};
use kbus::protocol::compression::Compression;
use kbus::protocol::record::Header;
use kbus_testkit::mock_cluster::MockCluster;

/// A failure guard: no kcat run or step of a test may take longer.
const GUARD: Duration = Duration::from_secs(60);

const CODECS: [Compression; 5] = Compression::ALL;

/// Records per codec and direction.
const N: usize = 500;
/// Distinct keys among them.
const KEYS: usize = 50;
const PARTITIONS: i32 = 4;

/// Runs kcat with `args`, feeding it `stdin`, and returns what it printed on stdout. Fails the
/// test when kcat is missing, exits with an error, or runs longer than [`GUARD`].
fn kcat(args: &[&str], stdin: &[u8]) -> String {
    let mut child = match Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "kcat is not installed (not on PATH): run scripts/install-test-deps, which installs \
             the Debian package kcat"
        ),
        Err(e) => panic!("cannot start kcat: {e}"),
    };
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    std::thread::spawn(move || {
        // kcat may exit early (and close its stdin) on an error: reported by its exit status.
        let _ = input.write_all(&stdin);
    });
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // stdout reaches its end when kcat exits: read it on a thread so that a hung kcat is killed
    // after the guard instead of hanging the test.
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        let _ = tx.send(out);
    });
    let out = match rx.recv_timeout(GUARD) {
        Ok(out) => out,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kcat {args:?} did not finish within {GUARD:?}; stderr: {}",
                errors.join().unwrap_or_default()
            );
        }
    };
    let status = child.wait().unwrap();
    let errors = errors.join().unwrap_or_default();
    assert!(
        status.success(),
        "kcat {args:?} failed ({status}); stderr: {errors}"
    );
    String::from_utf8(out).expect("kcat printed UTF-8")
}

/// [`kcat`] on a blocking thread, so the runtime's workers stay free.
async fn kcat_async(args: Vec<String>, stdin: Vec<u8>) -> String {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kcat(&args, &stdin)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// One record as kcat printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KcatRecord {
    partition: i32,
    offset: i64,
    key: Option<String>,
    value: Option<String>,
    timestamp: i64,
    headers: Vec<(String, Option<String>)>,
}

/// The output format: partition, offset, key length (-1 for null), key, value length, value,
/// timestamp and headers (`n=v,n2=v2`, a null value printed as `NULL`), split by `|`; the test
/// data never contains `|`, `,`, `=` or a newline.
const FORMAT: &str = "%p|%o|%K|%k|%S|%s|%T|%h\\n";

fn parse_kcat(out: &str) -> Vec<KcatRecord> {
    out.lines()
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            assert_eq!(f.len(), 8, "kcat line {line:?}");
            let bytes = |len: &str, s: &str| {
                let len: i64 = len.parse().unwrap();
                if len < 0 {
                    return None;
                }
                assert_eq!(len as usize, s.len(), "kcat line {line:?}");
                Some(s.to_owned())
            };
            let headers = if f[7].is_empty() {
                Vec::new()
            } else {
                f[7].split(',')
                    .map(|h| {
                        let (k, v) = h.split_once('=').unwrap_or_else(|| panic!("header {h:?}"));
                        (k.to_owned(), (v != "NULL").then(|| v.to_owned()))
                    })
                    .collect()
            };
            KcatRecord {
                partition: f[0].parse().unwrap(),
                offset: f[1].parse().unwrap(),
                key: bytes(f[2], f[3]),
                value: bytes(f[4], f[5]),
                timestamp: f[6].parse().unwrap(),
                headers,
            }
        })
        .collect()
}

/// Reads all of `topic` with kcat, from the beginning to the current end of every partition.
async fn kcat_read(bootstrap: &str, topic: &str) -> Vec<KcatRecord> {
    let args = ["-b", bootstrap, "-C", "-t", topic, "-o", "beginning"];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.extend(["-e", "-f", FORMAT].map(String::from));
    parse_kcat(&kcat_async(args, Vec::new()).await)
}

/// Produces `key:value` lines to `topic` with kcat, each record with the headers `-H` `headers`
/// and the extra kcat arguments `extra`.
async fn kcat_write(
    bootstrap: &str,
    topic: &str,
    lines: &[(String, String)],
    headers: &[&str],
    extra: &[&str],
) {
    let mut args: Vec<String> = ["-b", bootstrap, "-P", "-t", topic, "-K:"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for h in headers {
        args.extend(["-H".to_owned(), h.to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut stdin = Vec::new();
    for (k, v) in lines {
        writeln!(stdin, "{k}:{v}").unwrap();
    }
    kcat_async(args, stdin).await;
}

async fn producer(mock: &MockCluster, config: ProducerConfig) -> Producer {
    let cluster = Cluster::connect(ClusterConfig::new(&mock.bootstrap()))
        .await
        .unwrap();
    Producer::new(cluster, config).await.unwrap()
}

/// The codec of every record batch stored in `topic`/`partition` (the mock keeps batches as their
/// producer wrote them).
async fn batch_codecs(bootstrap: &str, topic: &str, partition: i32) -> Vec<Compression> {
    let cluster = Cluster::connect(ClusterConfig::new(bootstrap))
        .await
        .unwrap();
    let end = kbus::admin::Admin::new(cluster.clone())
        .list_offsets(topic, &[partition], kbus::admin::OffsetSpec::Latest)
        .await
        .unwrap()[0]
        .offset;
    common::batch_codecs(&cluster, topic, partition, end).await
}

/// Asserts every batch of `topic` is compressed with `codec`.
async fn assert_batches_use(bootstrap: &str, topic: &str, partitions: i32, codec: Compression) {
    let mut batches = 0;
    for p in 0..partitions {
        let codecs = batch_codecs(bootstrap, topic, p).await;
        assert!(
            codecs.iter().all(|c| *c == codec),
            "{topic}/{p}: batches stored as {codecs:?}, not {codec:?}"
        );
        batches += codecs.len();
    }
    assert!(batches > 0, "{topic}: no batches");
}

fn key(i: usize) -> String {
    format!("key-{}", i % KEYS)
}

fn value(i: usize) -> String {
    format!("value-{i}")
}

fn timestamp(i: usize) -> i64 {
    1_764_000_000_000 + i as i64
}

fn index_of(value: &str) -> usize {
    value.strip_prefix("value-").unwrap().parse().unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_reads_what_kbus_writes_with_every_codec() {
    let mock = MockCluster::start(3);
    let bootstrap = mock.bootstrap();
    for codec in CODECS {
        let topic = format!("kbus-to-kcat.{}", codec.name());
        mock.create_topic(&topic, PARTITIONS, 3);
        let p = producer(
            &mock,
            ProducerConfig {
                compression: codec,
                ..Default::default()
            },
        )
        .await;
        let delivered = tokio::time::timeout(GUARD, async {
            let mut futures = Vec::with_capacity(N);
            for i in 0..N {
                let mut rec = ProducerRecord::new(&topic)
                    .key(key(i))
                    .value(value(i))
                    .header("n", i.to_string())
                    .header("empty", "")
                    .timestamp(timestamp(i));
                rec.headers.push(Header::new("null", None::<Vec<u8>>));
                futures.push(p.send(rec).await.unwrap());
            }
            let mut out = Vec::with_capacity(N);
            for f in futures {
                let md = f.await.unwrap();
                out.push((md.partition, md.offset));
            }
            out
        })
        .await
        .unwrap_or_else(|_| panic!("{codec:?}: delivered in time"));
        p.close().await.unwrap();
        assert_batches_use(&bootstrap, &topic, PARTITIONS, codec).await;

        let read = kcat_read(&bootstrap, &topic).await;
        assert_eq!(read.len(), N, "{codec:?}: kcat read every record once");
        let mut seen = vec![false; N];
        for r in &read {
            let v = r.value.as_deref().expect("a value");
            let i = index_of(v);
            assert!(
                !std::mem::replace(&mut seen[i], true),
                "{codec:?}: {v} twice"
            );
            let want = KcatRecord {
                partition: delivered[i].0,
                offset: delivered[i].1,
                key: Some(key(i)),
                value: Some(value(i)),
                timestamp: timestamp(i),
                headers: vec![
                    ("n".into(), Some(i.to_string())),
                    ("empty".into(), Some(String::new())),
                    ("null".into(), None),
                ],
            };
            assert_eq!(r, &want, "{codec:?}: where and what kbus said it wrote");
            assert_eq!(
                r.partition,
                murmur2_partition(key(i).as_bytes(), PARTITIONS),
                "{codec:?}: {} on its murmur2 partition",
                key(i)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kbus_reads_what_kcat_writes_with_every_codec() {
    let mock = MockCluster::start(3);
    let bootstrap = mock.bootstrap();
    let lines: Vec<(String, String)> = (0..N).map(|i| (key(i), value(i))).collect();
    for codec in CODECS {
        let topic = format!("kcat-to-kbus.{}", codec.name());
        mock.create_topic(&topic, PARTITIONS, 3);
        let before = now_ms();
        kcat_write(
            &bootstrap,
            &topic,
            &lines,
            &["origin=kcat", "empty=", "null"],
            &["-z", codec.name()],
        )
        .await;
        let after = now_ms();
        assert_batches_use(&bootstrap, &topic, PARTITIONS, codec).await;

        let records = common::read_all(&bootstrap, &topic, PARTITIONS).await;
        common::assert_exactly_once(&records, N);
        common::assert_per_key_order(&records);
        for r in &records {
            let v = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
            let i = index_of(v);
            assert_eq!(r.key.as_deref(), Some(key(i).as_bytes()), "{codec:?} {v}");
            // kcat's default partitioner, consistent_random: CRC-32 of the key.
            assert_eq!(
                r.partition as u32,
                crc32_ieee(key(i).as_bytes()) % PARTITIONS as u32,
                "{codec:?} {v}"
            );
            assert!(
                (before..=after).contains(&r.timestamp),
                "{codec:?} {v}: create time {} not within the kcat run",
                r.timestamp
            );
            assert_eq!(
                headers(r),
                vec![
                    ("origin", Some(&b"kcat"[..])),
                    ("empty", Some(&b""[..])),
                    ("null", None),
                ],
                "{codec:?} {v}"
            );
        }
    }
}

fn headers(r: &ConsumerRecord) -> Vec<(&str, Option<&[u8]>)> {
    r.headers
        .iter()
        .map(|h| (h.key_str().unwrap(), h.value.as_deref()))
        .collect()
}

/// Keys of many lengths (every murmur2 tail length), none empty: both partitioners place empty
/// keys at random.
fn placement_keys() -> Vec<String> {
    (0..300)
        .map(|i| format!("{}{i}", "k".repeat(i % 11)))
        .collect()
}

/// The partition of each key, from what kbus consumed of `topic`.
async fn partitions_by_key(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for r in common::read_all(bootstrap, topic, partitions).await {
        let k = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
        out.entry(k).or_default().push(r.partition);
    }
    out
}

/// kbus sends one record per key to `topic` with `partitioner`; returns each key's partition.
async fn kbus_placement(
    mock: &MockCluster,
    topic: &str,
    keys: &[String],
    partitioner: Partitioner,
) -> BTreeMap<String, Vec<i32>> {
    let p = producer(
        mock,
        ProducerConfig {
            partitioner,
            ..Default::default()
        },
    )
    .await;
    let mut futures = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let rec = ProducerRecord::new(topic).key(k.clone()).value(value(i));
        futures.push((k.clone(), p.send(rec).await.unwrap()));
    }
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (k, f) in futures {
        let md = tokio::time::timeout(GUARD, f).await.unwrap().unwrap();
        out.entry(k).or_default().push(md.partition);
    }
    p.close().await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_and_kbus_place_keys_on_the_same_partitions() {
    let mock = MockCluster::start(3);
    let bootstrap = mock.bootstrap();
    // An odd partition count, so a wrong hash or modulo shows.
    let partitions = 7;
    let keys = placement_keys();
    let lines: Vec<(String, String)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), value(i)))
        .collect();
    for t in ["kcat.murmur2", "kbus.murmur2", "kcat.crc32", "kbus.crc32"] {
        mock.create_topic(t, partitions, 1);
    }

    // librdkafka's murmur2_random and kbus's default (Java's murmur2).
    kcat_write(
        &bootstrap,
        "kcat.murmur2",
        &lines,
        &[],
        &["-X", "partitioner=murmur2_random"],
    )
    .await;
    let by_kcat = partitions_by_key(&bootstrap, "kcat.murmur2", partitions).await;
    let by_kbus = kbus_placement(&mock, "kbus.murmur2", &keys, Partitioner::default()).await;
    assert_eq!(by_kcat.len(), keys.len());
    assert_eq!(by_kcat, by_kbus, "murmur2_random and kbus's murmur2 agree");
    for (k, ps) in &by_kbus {
        assert_eq!(
            ps,
            &vec![murmur2_partition(k.as_bytes(), partitions)],
            "{k}"
        );
    }
    // Partitioning is not trivial: the keys spread over every partition.
    let used: BTreeSet<i32> = by_kbus.values().flatten().copied().collect();
    assert_eq!(used.len(), partitions as usize);

    // librdkafka's default, consistent_random, and kbus's Partitioner::ConsistentRandom.
    kcat_write(&bootstrap, "kcat.crc32", &lines, &[], &[]).await;
    let by_kcat = partitions_by_key(&bootstrap, "kcat.crc32", partitions).await;
    let by_kbus = kbus_placement(&mock, "kbus.crc32", &keys, Partitioner::ConsistentRandom).await;
    assert_eq!(by_kcat.len(), keys.len());
    assert_eq!(by_kcat, by_kbus, "consistent_random and kbus agree");
    let differ = keys
        .iter()
        .filter(|k| by_kbus[*k][0] != murmur2_partition(k.as_bytes(), partitions))
        .count();
    assert!(differ > 0, "the two partitioners are told apart");
}
