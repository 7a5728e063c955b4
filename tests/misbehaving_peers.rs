//! Everything a broker or a network can do wrong, as a table: each row is a peer that misbehaves
//! one way, and the client must fail with a clear error of the right kind within the configured
//! time — no panic, no hang — and leave a client that works again once the peer does.
//!
//! Most rows need a peer that breaks the protocol on purpose, which no real broker does: those are
//! small scripted TCP servers here (they stand in for a broken proxy, a port that is not Kafka, a
//! dying process). The rows that a real peer can play are played by one: TLS against librdkafka's
//! mock cluster (a plain listener that stays silent on a ClientHello), and a corrupt record batch
//! served by Apache Kafka itself from a log segment damaged on disk, read with `check.crcs` on and
//! off. (TLS against Kafka's plain listener, plain TCP against its TLS listener and wrong
//! credentials are in `security_kafka.rs`; a broker too slow for `request.timeout.ms` is in
//! `consumer_mock.rs`, and the fetches that then back off and ask for less in the consumer's plan
//! tests.)

mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kbus::cluster::{Cluster, ClusterConfig};
use kbus::consumer::{Consumer, ConsumerConfig, Event, OffsetReset};
use kbus::net::SecurityProtocol;
use kbus::producer::{Producer, ProducerRecord};
use kbus::protocol::error_code::ErrorCode;
use kbus::{Error, TopicPartition};
use kbus_testkit::kafka::Kafka;
use kbus_testkit::mock_cluster::MockCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The timeouts every row runs with: an error must come within them (plus slack), not after the
/// defaults of 10 and 30 seconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Slack for scheduling on a loaded machine.
const SLACK: Duration = Duration::from_secs(3);
/// A failure guard for the rows on Kafka.
const GUARD: Duration = Duration::from_secs(60);

fn config(bootstrap: &str) -> ClusterConfig {
    let mut config = ClusterConfig::new(bootstrap);
    config.connection.connect_timeout = CONNECT_TIMEOUT;
    config.connection.request_timeout = REQUEST_TIMEOUT;
    config
}

/// A scripted peer: accepts connections on a free port and runs `script` on each.
async fn peer<F, Fut>(script: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(script(socket));
        }
    });
    addr
}

/// Reads one request frame; returns its correlation id.
async fn read_request(s: &mut TcpStream) -> Option<i32> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).await.ok()?;
    let mut body = vec![0u8; usize::try_from(i32::from_be_bytes(size)).ok()?];
    s.read_exact(&mut body).await.ok()?;
    Some(i32::from_be_bytes(body.get(4..8)?.try_into().ok()?))
}

/// Holds the connection open, reading and discarding, until the client closes it.
async fn drain(mut s: TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// What a row expects.
struct Expect {
    /// The error kind.
    kind: fn(&Error) -> bool,
    /// Words the message must hold.
    says: &'static [&'static str],
    /// The longest it may take.
    within: Duration,
}

async fn check_row(name: &str, bootstrap: String, mut config: ClusterConfig, expect: Expect) {
    config.bootstrap_servers = vec![bootstrap.clone()];
    let started = Instant::now();
    let result = tokio::time::timeout(expect.within + SLACK, Cluster::connect(config)).await;
    let took = started.elapsed();
    let err = match result {
        Err(_) => panic!("{name}: no answer within {:?}", expect.within + SLACK),
        Ok(Ok(_)) => panic!("{name}: connected to a peer that misbehaves"),
        Ok(Err(e)) => e,
    };
    assert!((expect.kind)(&err), "{name}: wrong kind of error: {err:?}");
    let shown = err.to_string();
    for word in expect.says {
        assert!(
            shown.contains(word),
            "{name}: {shown:?} does not say {word:?}"
        );
    }
    assert!(
        shown.contains(&bootstrap),
        "{name}: {shown:?} does not name the peer"
    );
    assert!(
        took <= expect.within + SLACK,
        "{name}: took {took:?}, more than {:?}",
        expect.within
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_misbehaving_peer_is_a_clear_error_in_time() {
    let fast = Duration::from_millis(500);

    // Nothing listening: the port is closed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    check_row(
        "nothing listening",
        closed,
        config(""),
        Expect {
            kind: |e| matches!(e, Error::Io { .. }) && e.is_retriable(),
            says: &["connecting to"],
            within: fast,
        },
    )
    .await;

    // An HTTP server: its answer's first four bytes ("HTTP") read as a frame size of 1.2 GB.
    let http = peer(|mut s| async move {
        let _ = read_request(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
        drain(s).await;
    })
    .await;
    check_row(
        "garbage bytes (an HTTP server)",
        http,
        config(""),
        Expect {
            kind: |e| matches!(e, Error::Protocol { .. }),
            says: &["1213486160", "exceeds"],
            within: fast,
        },
    )
    .await;

    // Garbage in a well-formed frame: a small frame of noise.
    let noise = peer(|mut s| async move {
        let _ = read_request(&mut s).await;
        let _ = s
            .write_all(b"\x00\x00\x00\x0c\xde\xad\xbe\xef\x01\x02\x03\x04\x05\x06\x07\x08")
            .await;
        drain(s).await;
    })
    .await;
    check_row(
        "garbage bytes (a frame of noise)",
        noise,
        config(""),
        Expect {
            kind: |e| matches!(e, Error::Protocol { .. }),
            says: &["correlation_id", "matches no request"],
            within: fast,
        },
    )
    .await;

    // A silent server: it reads the request and never answers.
    let silent = peer(drain).await;
    check_row(
        "a silent server",
        silent,
        config(""),
        Expect {
            kind: |e| matches!(e, Error::RequestTimeout { after, .. } if *after == REQUEST_TIMEOUT),
            says: &["ApiVersions"],
            within: REQUEST_TIMEOUT,
        },
    )
    .await;

    // A length of 2 GiB: refused from the four bytes, nothing allocated.
    let huge = peer(|mut s| async move {
        let _ = read_request(&mut s).await;
        let _ = s.write_all(&i32::MAX.to_be_bytes()).await;
        drain(s).await;
    })
    .await;
    check_row(
        "a length of 2 GiB",
        huge,
        config(""),
        Expect {
            kind: |e| matches!(e, Error::Protocol { .. }),
            says: &["2147483647", "exceeds"],
            within: fast,
        },
    )
    .await;

    // A close mid-response: 100 bytes announced, the correlation id and a few more sent.
    let cut = peer(|mut s| async move {
        if let Some(id) = read_request(&mut s).await {
            let mut partial = 100i32.to_be_bytes().to_vec();
            partial.extend_from_slice(&id.to_be_bytes());
            partial.extend_from_slice(&[0, 0, 0]);
            let _ = s.write_all(&partial).await;
        }
    })
    .await;
    check_row(
        "a close mid-response",
        cut,
        config(""),
        Expect {
            kind: |e| matches!(e, Error::Disconnected { .. }) && e.is_retriable(),
            says: &[],
            within: fast,
        },
    )
    .await;

    // An answer to a request that was never sent (a proxy that mixes up connections).
    let wrong_id = peer(|mut s| async move {
        if let Some(id) = read_request(&mut s).await {
            let mut frame = 8i32.to_be_bytes().to_vec();
            frame.extend_from_slice(&(id + 7).to_be_bytes());
            frame.extend_from_slice(&[0, 0, 0, 0]);
            let _ = s.write_all(&frame).await;
        }
        drain(s).await;
    })
    .await;
    check_row(
        "an answer with a correlation id that matches no request",
        wrong_id,
        config(""),
        Expect {
            kind: |e| matches!(e, Error::Protocol { .. }),
            says: &["correlation_id", "matches no request"],
            within: fast,
        },
    )
    .await;

    // TLS to a plain listener that stays silent on the ClientHello (as a plain Kafka listener
    // below socket.request.max.bytes does): the timeout says TLS.
    let plain = peer(drain).await;
    let mut tls = config("");
    tls.connection.security_protocol = SecurityProtocol::Ssl;
    check_row(
        "TLS to a silent plain listener",
        plain,
        tls,
        Expect {
            kind: |e| matches!(e, Error::Io { .. }) && e.is_retriable(),
            says: &["TLS handshake", "is this port a TLS listener"],
            within: CONNECT_TIMEOUT,
        },
    )
    .await;
}

/// TLS against a real peer's plain listener: librdkafka's mock cluster. Whatever it does with the
/// ClientHello (hang up, or wait for the rest of what it reads as a huge request), the error says
/// TLS and comes within the connect timeout; plain TCP to the same broker works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_plain_mock_broker_says_tls_in_time() {
    let mock = MockCluster::start(1);
    let mut tls = config(&mock.bootstrap());
    tls.connection.security_protocol = SecurityProtocol::Ssl;
    let started = Instant::now();
    let err = tokio::time::timeout(CONNECT_TIMEOUT + SLACK, Cluster::connect(tls))
        .await
        .expect("an answer within the connect timeout")
        .expect_err("TLS to a plain listener must fail");
    assert!(started.elapsed() <= CONNECT_TIMEOUT + SLACK);
    let shown = err.to_string();
    assert!(
        shown.contains("TLS") && shown.contains("TLS listener"),
        "{shown}"
    );
    Cluster::connect(config(&mock.bootstrap()))
        .await
        .expect("plain TCP to the same broker works");
}

/// The segment file of partition 0 of `topic` in a Kafka node's data folder.
fn segment(data: &Path, topic: &str) -> PathBuf {
    let dir = data.join(format!("{topic}-0"));
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .expect("a log segment")
}

/// Changes one byte of the first occurrence of `needle` in the file, in place.
fn damage(file: &Path, needle: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let bytes = std::fs::read(file).unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} is not in {}", needle, file.display()));
    let mut f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.seek(SeekFrom::Start(at as u64)).unwrap();
    f.write_all(&[needle[0] ^ 0x20]).unwrap();
    f.sync_all().unwrap();
}

async fn consumer(bootstrap: &str, check_crcs: bool) -> Consumer {
    let cluster = Cluster::connect(ClusterConfig::new(bootstrap))
        .await
        .unwrap();
    Consumer::new(
        cluster,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            fetch_max_wait: Duration::from_millis(100),
            check_crcs,
            ..Default::default()
        },
    )
}

/// Polls until `n` records arrived or an error came; returns the values read and the error.
async fn read_until(consumer: &mut Consumer, n: usize) -> (Vec<String>, Option<Error>) {
    let mut values = Vec::new();
    while values.len() < n {
        match tokio::time::timeout(GUARD, consumer.poll()).await {
            Err(_) => panic!("nothing for {GUARD:?} after {values:?}"),
            Ok(Err(e)) => return (values, Some(e)),
            Ok(Ok(Event::Records(batch))) => values.extend(batch.records.iter().map(|r| {
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
            })),
            Ok(Ok(Event::Error(e))) => panic!("a warning instead of the error: {e}"),
            Ok(Ok(_)) => {}
        }
    }
    (values, None)
}

/// A corrupt batch served by Apache Kafka (a byte of a record's value changed on disk; Kafka does
/// not check CRCs when serving): with `check.crcs` on (the default) the records before it arrive,
/// then an error naming the partition and the batch's offset, and nothing after it until the
/// application seeks past it; with `check.crcs` off, the damaged record is delivered as it is, as
/// the Java client does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_batch_from_kafka_stops_the_partition_at_its_offset() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    let topic = "misbehaving-corrupt";
    common::create_topic(&bootstrap, topic, 1, &[]).await;
    // One record per batch (each send awaited), uncompressed, so the damage hits one batch.
    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("linger.ms", "0"),
        ("compression.type", "none"),
    ])
    .await
    .unwrap();
    for i in 0..10 {
        let record = ProducerRecord::new(topic).value(format!("record-{i}-payload"));
        producer.send(record).await.unwrap().await.unwrap();
    }
    producer.close().await.unwrap();
    damage(
        &segment(&kafka.dir().join("data"), topic),
        b"record-5-payload",
    );
    let tp = TopicPartition::new(topic, 0);

    let mut checked = consumer(&bootstrap, true).await;
    checked.assign([tp.clone()]).unwrap();
    let (before, error) = read_until(&mut checked, 10).await;
    let expected: Vec<String> = (0..5).map(|i| format!("record-{i}-payload")).collect();
    assert_eq!(before, expected, "the records before the corrupt batch");
    let error = error.expect("an error at the corrupt batch");
    assert!(
        matches!(&error, Error::Consume { topic: t, partition: 0, offset: 5, code, .. }
            if t == topic && *code == ErrorCode::CORRUPT_MESSAGE),
        "{error:?}"
    );
    assert!(error.to_string().contains("seek past it"), "{error}");
    // Past it, the rest arrives.
    checked.seek(&tp, 6).unwrap();
    let (after, error) = read_until(&mut checked, 4).await;
    assert!(error.is_none(), "{error:?}");
    let expected: Vec<String> = (6..10).map(|i| format!("record-{i}-payload")).collect();
    assert_eq!(after, expected);

    let mut unchecked = consumer(&bootstrap, false).await;
    unchecked.assign([tp]).unwrap();
    let (all, error) = read_until(&mut unchecked, 10).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(all[5], "Record-5-payload", "delivered as damaged");
    assert_eq!(all.len(), 10);
}
