//! Client throughput: kbus side by side with librdkafka (the `rdkafka` crate), the pure-Rust
//! kacrab client and the Java client, against librdkafka's 3-broker mock cluster, a tansu broker
//! and an Apache Kafka node, in one run on identical input.
//!
//! ```sh
//! cargo bench --bench clients
//! KBUS_BENCH_RECORDS=200000 KBUS_BENCH_ONLY=producer cargo bench --bench clients
//! KBUS_BENCH_ONLY=producer-tansu,consumer-tansu cargo bench --bench clients
//! KBUS_BENCH_ONLY=kafka cargo bench --bench clients
//! ```
//!
//! Scenarios, with the brokers in a child process (the testkit's `mock-cluster` binary, tansu or
//! Kafka; fresh for every scenario, except that the Kafka scenarios share one node), so that the
//! CPU time read from `/proc/self/stat` before and after a run is the client's alone (the
//! brokers' CPU time is read from the child's `/proc/PID/stat` and shown beside it). On the mock
//! cluster:
//!
//! - `producer-none`, `producer-gzip`, `producer-lz4`, `producer-zstd`: every producer sends the same records (16-byte keys
//!   `key-000000000123`, 10,000 distinct; 100-byte text values) to a topic of its own (6
//!   partitions, replication 3) and the clock runs from the first send until every delivery is
//!   acknowledged. Afterwards the topic's high watermarks must add up to the records sent.
//! - `consumer`, `consumer-gzip`, `consumer-lz4`, `consumer-zstd`: the records are produced once
//!   (by librdkafka, uncompressed or with the codec named; so the consumers decompress what
//!   librdkafka compressed), then every consumer reads them all, from offset 0 of every partition by manual assignment, and the clock runs
//!   until the last record arrives. The topic has 32 partitions because the mock keeps at most
//!   5 MiB (and 100,000 batches) per partition and deletes older batches: the bench checks that
//!   every partition still starts at offset 0.
//!
//! On one tansu 0.6.0 broker (`kbus_testkit::tansu`: SQLite storage, a separate process), which
//! speaks ApiVersions v3 and so lets kacrab take part; the clients are kbus, librdkafka's
//! `BaseProducer`/`BaseConsumer` and kacrab, with the settings below:
//!
//! - `producer-tansu`, `producer-tansu-gzip`: as `producer-none` / `producer-gzip`, every
//!   producer run (every client, every round) on a fresh topic (6 partitions, replication 1)
//!   created with kbus's `Admin` before the clock starts. Afterwards every partition must start
//!   at offset 0 and the high watermarks must add up to the records sent.
//! - `consumer-tansu`: as `consumer`, on one topic of 6 partitions filled once by librdkafka.
//!
//! tansu stores every batch in SQLite and answers every fetch only after about half of
//! `fetch.max.wait.ms`, so these runs measure tansu about as much as the clients: their tables
//! say so, and the broker CPU column shows how busy tansu was. Compare clients within a tansu
//! table, not with the mock's. They use fewer records (`KBUS_BENCH_TANSU_RECORDS`). All three
//! took about 45 s on 2 cores, the whole default run 1 to 2 minutes, so they are in the default
//! list. Without a tansu binary (`$KBUS_TANSU`, `~/.cache/kbus/tansu-0.6.0/bin/tansu` from
//! `scripts/install-test-deps`, or `PATH`) their rows say so and the rest runs.
//!
//! On one Apache Kafka 4.4.0 node (`kbus_testkit::kafka::Kafka`: KRaft, broker and controller in
//! one JVM, with the JVM flags of Kafka's `kafka-server-start.sh`: 1 GiB heap, G1), started once
//! for all three scenarios; the clients are kbus, librdkafka's `BaseProducer`/`BaseConsumer`, and
//! the Java client through Kafka's own performance tools (`ProducerPerformance` and
//! `ConsumerPerformance`, i.e. `kafka-producer-perf-test` / `kafka-consumer-perf-test`, each run in
//! a JVM of its own; `kafka.rs` says how they are measured):
//!
//! - `producer-kafka`, `producer-kafka-gzip`, `producer-kafka-lz4`, `producer-kafka-zstd`: as on tansu: every producer run on a fresh topic
//!   (6 partitions, replication 1), whose high watermarks must add up to the records sent.
//! - `consumer-kafka`, `consumer-kafka-gzip`, `consumer-kafka-lz4`, `consumer-kafka-zstd`: as on
//!   tansu, one topic of 6 partitions (one per scenario) filled once by librdkafka, uncompressed
//!   or with the codec named; every consumer must read exactly its records and bytes.
//!
//! Before its first measured run the node is warmed up (kbus and librdkafka produce 1,000,000
//! records each and 250,000 with gzip, librdkafka reads some back, the group coordinator is
//! started): on a cold broker the first client measured ran at a third of its speed. The broker
//! still gets faster for several more runs (its JIT keeps compiling the produce path; see
//! `kafka::warm_up`), so the client order rotates from round to round: with
//! `KBUS_BENCH_ROUNDS=3` every client goes first once and the median evens it out; with one round
//! kbus goes first, which understates it. The Java rows are not quite the same work, and their
//! tables say how: `ProducerPerformance` cannot send the 16-byte keys (it sends keys "0".."9999"
//! round-robin, 3.9 bytes on average) and draws the values at random from the same pool;
//! `ConsumerPerformance` subscribes in a group (the others assign partitions) and forces
//! `check.crcs=false`. Their records/s is the tool's own figure (which leaves out the JVM's
//! start), and their CPU columns are what the run cost beyond a 1-record run of the same tool
//! (JVM start, class loading, client creation); a table under each Kafka table gives both runs.
//! The three scenarios took about 45 s on 2 cores with 1,000,000 records and one round (broker
//! start and warm-up included; 100 s with three rounds), so they are in the default list.
//! Without `java` or the Kafka jars (`scripts/install-test-deps`) their rows say so and the rest
//! runs.
//!
//! Each client is created and has fetched the topic's metadata before the clock starts. Async
//! clients run on a fresh multi-threaded tokio runtime (one worker per core), sending from the
//! `block_on` thread as `#[tokio::main]` code does.
//!
//! Settings, the same for every client under the same (Java) names: `acks=all`, `linger.ms=5`,
//! `batch.size=16384` (Java's default; librdkafka's is 1 MB),
//! `max.in.flight.requests.per.connection=5`, `enable.idempotence=false` (kbus and Java turn it
//! on with `acks=all`; off everywhere so that all do the same work),
//! `compression.type=none|gzip` (default level, 6, for all). librdkafka also gets
//! `partitioner=murmur2_random` (Java's key hash, so every client puts a key on the same
//! partition) and `batch.num.messages=10000` (its default, which 16 KiB batches never reach);
//! consumers get `check.crcs=true` (Java's and kbus's default; librdkafka's is false). Everything
//! else is each client's default (buffer memory: 32 MiB for kbus and kacrab, librdkafka's
//! 100,000 messages / 1 GiB).
//!
//! Environment:
//! - `KBUS_BENCH_RECORDS` (default 1,000,000): records per run on the mock cluster;
//! - `KBUS_BENCH_VALUE_BYTES` (default 100): bytes per value (the record runs 1024 too, with
//!   fewer records and more consumer partitions: the mock keeps 5 MiB per partition);
//! - `KBUS_BENCH_RESULTS`: a file each comparison is appended to as a JSON line (see
//!   `benches/common/record.rs` and `scripts/bench-record`);
//! - `KBUS_BENCH_TANSU_RECORDS` (default 200,000): records per run on tansu;
//! - `KBUS_BENCH_KAFKA_RECORDS` (default: `KBUS_BENCH_RECORDS`): records per run on Kafka;
//! - `KBUS_BENCH_KAFKA_WARM_UP` (default 2,000,000): records that warm up the Kafka broker;
//! - `KBUS_BENCH_KAFKA_JVM`: the Kafka broker's JVM flags, space-separated (default those of
//!   `kafka-server-start.sh`: `-Xms1g -Xmx1g` and G1 with Kafka's settings);
//! - `KBUS_BENCH_ONLY`: a comma-separated list of scenario names, or `producer` / `consumer`
//!   (the mock cluster's producer / consumer scenarios), `tansu` (all tansu scenarios) or
//!   `kafka` (all Kafka scenarios);
//! - `KBUS_BENCH_CLIENTS`: comma-separated client names to run (see `Client::name`: `kbus`,
//!   `rdkafka-base`, `rdkafka-future`, `rdkafka-stream`, `kacrab`, `java`), default all;
//! - `KBUS_BENCH_ROUNDS` (default 1): runs per client; the table shows the median by throughput;
//! - `KBUS_BENCH_PARTITIONS` (default 6), `KBUS_BENCH_CONSUMER_PARTITIONS` (default 32);
//! - `KBUS_BENCH_TIMEOUT_SECS` (default 300): a run that takes longer fails;
//! - `KBUS_BENCH_KACRAB_MAX_IN_FLIGHT`: kacrab's producer gets this
//!   `max.in.flight.requests.per.connection` instead of 5 (its rows then say so; see below);
//! - `KBUS_MOCK_CLUSTER_BIN`: a prebuilt `mock-cluster` (otherwise cargo builds it);
//! - `KBUS_TANSU`: the tansu 0.6.0 binary.
//!
//! The tables give records/s, MB/s of key + value bytes, the bench process's peak resident memory
//! during the run (`VmHWM`, reset before each run through `/proc/self/clear_refs`; not for Java,
//! which runs in a JVM of its own). That peak includes the input (a few MB) and whatever the
//! allocator kept from earlier runs, so it rises through a bench and compares clients only
//! roughly; it is not in the benchmark record. Then client CPU µs per record (all threads
//! of this process, from `/proc/self/task/*/schedstat` to the nanosecond, checked against the
//! user + system ticks of `/proc/self/stat`, which also count exited threads), the brokers' CPU µs
//! per record, and kbus's throughput divided by each peer's.
//!
//! Known limits:
//! - The mock reads `acks` but answers every Produce once the leader has appended the batch (no
//!   replication), so `acks=all` costs what `acks=1` does. All its brokers share one thread.
//! - kacrab 0.4.0 opens every connection with ApiVersions v3 and does not fall back; the mock
//!   (librdkafka 2.12) implements ApiVersions up to v2 and answers v3 with UNSUPPORTED_VERSION,
//!   so kacrab's runs fail at once ("broker does not support ApiVersions v3"). Raising the mock's
//!   limit (`mock-cluster --api-version 18:0:3`) does not help: its v3 answer is malformed (no
//!   tagged fields, array count off by one) and librdkafka's own client fails on it too. Hence
//!   the tansu scenarios.
//! - kacrab 0.4.0's producer fails on tansu with `max.in.flight.requests.per.connection` 2 to 10
//!   (5 included): most deliveries fail with "wire backpressure" (`flush: wire backpressure`).
//!   From its source, the likely cause: a broker connection refuses a request that finds its
//!   pipeline (`max.in.flight` requests) full with `WireError::Backpressure`, which kacrab does
//!   not retry, and its concurrent produce dispatches can together exceed that; with every
//!   partition on one broker slower than the client, they do at once. With 1, or 20 and more,
//!   it works: `KBUS_BENCH_KACRAB_MAX_IN_FLIGHT=20` measures it that way. Its consumer works.
//! - rdkafka 0.39's `BaseProducer::poll(1 ms)` never blocks: it polls until its deadline and
//!   hands librdkafka the remaining time rounded down to whole milliseconds, 0. The librdkafka
//!   producer runs therefore sleep 1 ms and then serve the delivery reports that arrived, rather
//!   than spin a core (which cost librdkafka CPU and, on 2 cores, took a core from the broker).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kbus_testkit::mock_process::{MockClusterProcess, MockTopic};
use kbus_testkit::tansu::Tansu;

#[path = "../common/broker_quiet.rs"]
mod broker_quiet;
/// The Apache Kafka scenarios and the Java client's tools.
mod kafka;
#[path = "../common/record.rs"]
mod record;
use broker_quiet::clock_ticks;

const DEFAULT_RECORDS: usize = 1_000_000;
/// tansu on SQLite stores records far more slowly than the in-memory mock.
const DEFAULT_TANSU_RECORDS: usize = 200_000;
/// Records that warm up the Kafka broker before its first measured run (see `kafka::warm_up`).
const DEFAULT_KAFKA_WARM_UP: usize = 2_000_000;
const KEY_SIZE: usize = 16;
/// Bytes per value: `KBUS_BENCH_VALUE_BYTES`, default 100.
fn value_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        std::env::var("KBUS_BENCH_VALUE_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(100)
    })
}
const DISTINCT_KEYS: usize = 10_000;
/// Prime, so the key and value cycles do not line up.
const DISTINCT_VALUES: usize = 10_007;
const BROKERS: i32 = 3;
const REPLICATION: i32 = 3;
const BATCH_SIZE: usize = 16_384;
const LINGER_MS: u64 = 5;
const MAX_IN_FLIGHT: usize = 5;
/// Outstanding deliveries the `FutureProducer` run keeps (librdkafka's default queue limit).
const FUTURE_WINDOW: usize = 100_000;

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    ProducerNone,
    ProducerGzip,
    ProducerLz4,
    ProducerZstd,
    Consumer,
    ConsumerGzip,
    ConsumerLz4,
    ConsumerZstd,
    ProducerTansu,
    ProducerTansuGzip,
    ConsumerTansu,
    ProducerKafka,
    ProducerKafkaGzip,
    ProducerKafkaLz4,
    ProducerKafkaZstd,
    ConsumerKafka,
    ConsumerKafkaGzip,
    ConsumerKafkaLz4,
    ConsumerKafkaZstd,
}

impl Scenario {
    const ALL: [Scenario; 19] = [
        Scenario::ProducerNone,
        Scenario::ProducerGzip,
        Scenario::ProducerLz4,
        Scenario::ProducerZstd,
        Scenario::Consumer,
        Scenario::ConsumerGzip,
        Scenario::ConsumerLz4,
        Scenario::ConsumerZstd,
        Scenario::ProducerTansu,
        Scenario::ProducerTansuGzip,
        Scenario::ConsumerTansu,
        Scenario::ProducerKafka,
        Scenario::ProducerKafkaGzip,
        Scenario::ProducerKafkaLz4,
        Scenario::ProducerKafkaZstd,
        Scenario::ConsumerKafka,
        Scenario::ConsumerKafkaGzip,
        Scenario::ConsumerKafkaLz4,
        Scenario::ConsumerKafkaZstd,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::ProducerNone => "producer-none",
            Scenario::ProducerGzip => "producer-gzip",
            Scenario::ProducerLz4 => "producer-lz4",
            Scenario::ProducerZstd => "producer-zstd",
            Scenario::Consumer => "consumer",
            Scenario::ConsumerGzip => "consumer-gzip",
            Scenario::ConsumerLz4 => "consumer-lz4",
            Scenario::ConsumerZstd => "consumer-zstd",
            Scenario::ProducerTansu => "producer-tansu",
            Scenario::ProducerTansuGzip => "producer-tansu-gzip",
            Scenario::ConsumerTansu => "consumer-tansu",
            Scenario::ProducerKafka => "producer-kafka",
            Scenario::ProducerKafkaGzip => "producer-kafka-gzip",
            Scenario::ProducerKafkaLz4 => "producer-kafka-lz4",
            Scenario::ProducerKafkaZstd => "producer-kafka-zstd",
            Scenario::ConsumerKafka => "consumer-kafka",
            Scenario::ConsumerKafkaGzip => "consumer-kafka-gzip",
            Scenario::ConsumerKafkaLz4 => "consumer-kafka-lz4",
            Scenario::ConsumerKafkaZstd => "consumer-kafka-zstd",
        }
    }

    fn codec(self) -> &'static str {
        match self {
            Scenario::ProducerGzip
            | Scenario::ProducerTansuGzip
            | Scenario::ProducerKafkaGzip
            | Scenario::ConsumerGzip
            | Scenario::ConsumerKafkaGzip => "gzip",
            Scenario::ProducerLz4
            | Scenario::ProducerKafkaLz4
            | Scenario::ConsumerLz4
            | Scenario::ConsumerKafkaLz4 => "lz4",
            Scenario::ProducerZstd
            | Scenario::ProducerKafkaZstd
            | Scenario::ConsumerZstd
            | Scenario::ConsumerKafkaZstd => "zstd",
            _ => "none",
        }
    }

    fn is_consumer(self) -> bool {
        matches!(
            self,
            Scenario::Consumer
                | Scenario::ConsumerGzip
                | Scenario::ConsumerLz4
                | Scenario::ConsumerZstd
                | Scenario::ConsumerTansu
                | Scenario::ConsumerKafka
                | Scenario::ConsumerKafkaGzip
                | Scenario::ConsumerKafkaLz4
                | Scenario::ConsumerKafkaZstd
        )
    }

    /// Whether the scenario runs against a tansu broker (else the mock cluster).
    fn on_tansu(self) -> bool {
        matches!(
            self,
            Scenario::ProducerTansu | Scenario::ProducerTansuGzip | Scenario::ConsumerTansu
        )
    }

    /// Whether the scenario runs against Apache Kafka (one KRaft node).
    fn on_kafka(self) -> bool {
        matches!(
            self,
            Scenario::ProducerKafka
                | Scenario::ProducerKafkaGzip
                | Scenario::ProducerKafkaLz4
                | Scenario::ProducerKafkaZstd
                | Scenario::ConsumerKafka
                | Scenario::ConsumerKafkaGzip
                | Scenario::ConsumerKafkaLz4
                | Scenario::ConsumerKafkaZstd
        )
    }

    /// The table of the benchmark record the scenario's rows go to.
    fn record_group(self) -> &'static str {
        if self.on_kafka() {
            "clients on Apache Kafka"
        } else if self.on_tansu() {
            "clients on tansu"
        } else {
            "clients on librdkafka's mock cluster"
        }
    }

    /// The scenario in words, for the benchmark record.
    fn record_row(self) -> String {
        let what = match (self.is_consumer(), self.codec()) {
            (true, "none") => "consumer".to_owned(),
            (true, codec) => format!("consumer, {codec} input"),
            (false, "none") => "producer, no compression".to_owned(),
            (false, codec) => format!("producer, {codec}"),
        };
        format!("{what}, {} B values", value_size())
    }

    /// Whether the scenario runs against librdkafka's mock cluster.
    fn on_mock(self) -> bool {
        !self.on_tansu() && !self.on_kafka()
    }

    /// Whether the `KBUS_BENCH_ONLY` word `word` picks this scenario: its name; `producer` or
    /// `consumer` for the mock cluster's scenarios of that kind; `tansu` for all tansu ones;
    /// `kafka` for all Apache Kafka ones.
    fn picked_by(self, word: &str) -> bool {
        let kind = if self.is_consumer() {
            "consumer"
        } else {
            "producer"
        };
        self.name() == word
            || (word == "tansu" && self.on_tansu())
            || (word == "kafka" && self.on_kafka())
            || (word == kind && self.on_mock())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Client {
    Kbus,
    RdkafkaBase,
    RdkafkaFuture,
    RdkafkaStream,
    Kacrab,
    /// The Java client, through Kafka's own performance tools (Kafka scenarios only).
    Java,
}

impl Client {
    const ALL: [Client; 6] = [
        Client::Kbus,
        Client::RdkafkaBase,
        Client::RdkafkaFuture,
        Client::RdkafkaStream,
        Client::Kacrab,
        Client::Java,
    ];

    fn name(self) -> &'static str {
        match self {
            Client::Kbus => "kbus",
            Client::RdkafkaBase => "rdkafka-base",
            Client::RdkafkaFuture => "rdkafka-future",
            Client::RdkafkaStream => "rdkafka-stream",
            Client::Kacrab => "kacrab",
            Client::Java => "java",
        }
    }

    /// What the client is called in the table for `scenario`.
    fn label(self, scenario: Scenario) -> &'static str {
        match (self, scenario) {
            (Client::Kbus, _) => "kbus",
            (Client::RdkafkaBase, s) if s.is_consumer() => "librdkafka BaseConsumer",
            (Client::RdkafkaBase, _) => "librdkafka BaseProducer",
            (Client::RdkafkaFuture, _) => "librdkafka FutureProducer",
            (Client::RdkafkaStream, _) => "librdkafka StreamConsumer",
            (Client::Kacrab, s) if !s.is_consumer() && kacrab_max_in_flight().is_some() => {
                static LABEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
                LABEL.get_or_init(|| {
                    format!(
                        "kacrab 0.4.0 (max.in.flight={})",
                        kacrab_max_in_flight().unwrap_or(MAX_IN_FLIGHT)
                    )
                })
            }
            (Client::Kacrab, _) => "kacrab 0.4.0",
            (Client::Java, s) if s.is_consumer() => "Java 4.4.0 (ConsumerPerformance)",
            (Client::Java, _) => "Java 4.4.0 (ProducerPerformance)",
        }
    }

    fn is_kbus(self) -> bool {
        matches!(self, Client::Kbus)
    }

    /// Whether the client takes part in `scenario` (on tansu: kbus, the librdkafka base clients
    /// and kacrab; on Kafka: kbus, the librdkafka base clients and the Java client's tools).
    fn runs_in(self, scenario: Scenario) -> bool {
        match self {
            Client::RdkafkaFuture => !scenario.is_consumer() && scenario.on_mock(),
            Client::RdkafkaStream => scenario.is_consumer() && scenario.on_mock(),
            Client::Kacrab => !scenario.on_kafka(),
            Client::Java => scenario.on_kafka(),
            Client::Kbus | Client::RdkafkaBase => true,
        }
    }
}

struct Options {
    records: usize,
    tansu_records: usize,
    kafka_records: usize,
    kafka_warm_up: usize,
    scenarios: Vec<Scenario>,
    clients: Vec<Client>,
    rounds: usize,
    partitions: i32,
    consumer_partitions: i32,
    timeout: Duration,
}

/// `KBUS_BENCH_KACRAB_MAX_IN_FLIGHT`: kacrab's producer's own
/// `max.in.flight.requests.per.connection`, instead of the one every client gets.
fn kacrab_max_in_flight() -> Option<usize> {
    static VALUE: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *VALUE.get_or_init(|| {
        std::env::var_os("KBUS_BENCH_KACRAB_MAX_IN_FLIGHT")
            .map(|_| env_number("KBUS_BENCH_KACRAB_MAX_IN_FLIGHT", MAX_IN_FLIGHT))
    })
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => {
            let digits: String = v.chars().filter(|c| *c != '_').collect();
            digits
                .parse()
                .unwrap_or_else(|_| panic!("{name}: not a number: {v}"))
        }
        Err(_) => default,
    }
}

fn options() -> Options {
    let scenarios = match std::env::var("KBUS_BENCH_ONLY") {
        Ok(only) => {
            let mut picked = Vec::new();
            for word in only.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                let matching: Vec<Scenario> = Scenario::ALL
                    .into_iter()
                    .filter(|s| s.picked_by(word))
                    .collect();
                assert!(
                    !matching.is_empty(),
                    "KBUS_BENCH_ONLY: unknown scenario {word} (producer, consumer, tansu, kafka, {})",
                    Scenario::ALL.map(Scenario::name).join(", ")
                );
                picked.extend(matching);
            }
            picked.sort();
            picked.dedup();
            picked
        }
        Err(_) => Scenario::ALL.to_vec(),
    };
    let records = env_number("KBUS_BENCH_RECORDS", DEFAULT_RECORDS);
    let clients = match std::env::var("KBUS_BENCH_CLIENTS") {
        Ok(list) => list
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(|w| {
                Client::ALL
                    .into_iter()
                    .find(|c| c.name() == w)
                    .unwrap_or_else(|| {
                        panic!(
                            "KBUS_BENCH_CLIENTS: unknown client {w} ({})",
                            Client::ALL.map(Client::name).join(", ")
                        )
                    })
            })
            .collect(),
        Err(_) => Client::ALL.to_vec(),
    };
    Options {
        records,
        tansu_records: env_number("KBUS_BENCH_TANSU_RECORDS", DEFAULT_TANSU_RECORDS),
        kafka_records: env_number("KBUS_BENCH_KAFKA_RECORDS", records),
        kafka_warm_up: env_number("KBUS_BENCH_KAFKA_WARM_UP", DEFAULT_KAFKA_WARM_UP),
        scenarios,
        clients,
        rounds: env_number("KBUS_BENCH_ROUNDS", 1usize).max(1),
        partitions: env_number("KBUS_BENCH_PARTITIONS", 6),
        consumer_partitions: env_number("KBUS_BENCH_CONSUMER_PARTITIONS", 32),
        timeout: Duration::from_secs(env_number("KBUS_BENCH_TIMEOUT_SECS", 300)),
    }
}

// ---------------------------------------------------------------------------------------------
// Input

/// The records every client sends: record `i` has key `i % 10,000` and value `i % 10,007` of
/// pools built once. The pools are leaked so that every client can borrow `'static` slices
/// (`Bytes::from_static`: no reference count shared between threads, no copy).
struct Input {
    records: usize,
    keys: Vec<&'static [u8]>,
    values: Vec<&'static [u8]>,
}

impl Input {
    fn new(records: usize) -> Self {
        let key_pool: &'static [u8] = Box::leak(
            (0..DISTINCT_KEYS)
                .flat_map(|k| format!("key-{k:012}").into_bytes())
                .collect::<Vec<u8>>()
                .into_boxed_slice(),
        );
        let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
        let value_pool: &'static [u8] = Box::leak(
            (0..DISTINCT_VALUES)
                .flat_map(|_| text_value(&mut rng))
                .collect::<Vec<u8>>()
                .into_boxed_slice(),
        );
        Input {
            records,
            keys: key_pool.chunks_exact(KEY_SIZE).collect(),
            values: value_pool.chunks_exact(value_size()).collect(),
        }
    }

    /// The same records, `records` of them.
    fn with_records(&self, records: usize) -> Input {
        Input {
            records,
            keys: self.keys.clone(),
            values: self.values.clone(),
        }
    }

    fn key(&self, i: usize) -> &'static [u8] {
        self.keys[i % DISTINCT_KEYS]
    }

    fn value(&self, i: usize) -> &'static [u8] {
        self.values[i % DISTINCT_VALUES]
    }

    /// Key and value bytes of all records.
    fn payload_bytes(&self) -> usize {
        self.records * (KEY_SIZE + value_size())
    }
}

/// 100 bytes of words drawn from a small vocabulary: text that compresses about as well as
/// typical event payloads do.
fn text_value(rng: &mut u64) -> Vec<u8> {
    const WORDS: [&str; 24] = [
        "order",
        "created",
        "user",
        "account",
        "payment",
        "shipped",
        "event",
        "status",
        "pending",
        "id",
        "amount",
        "eur",
        "usd",
        "item",
        "sku",
        "warehouse",
        "berlin",
        "lisbon",
        "retry",
        "ok",
        "true",
        "false",
        "null",
        "total",
    ];
    let mut v = Vec::with_capacity(value_size() + 16);
    while v.len() < value_size() {
        // xorshift64*: deterministic, no dependency.
        *rng ^= *rng >> 12;
        *rng ^= *rng << 25;
        *rng ^= *rng >> 27;
        let r = rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        if r % 4 == 0 {
            v.extend_from_slice(format!("{} ", r % 100_000).as_bytes());
        } else {
            v.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
            v.push(b' ');
        }
    }
    v.truncate(value_size());
    v
}

/// Compressed / uncompressed size of one gzip batch of the first records (as many as a
/// `batch.size` batch holds), to say how compressible the input is.
fn gzip_ratio(input: &Input) -> f64 {
    use kbus_protocol::compression::Compression;
    use kbus_protocol::record::RecordBatchBuilder;
    let n = BATCH_SIZE / (KEY_SIZE + value_size() + 8);
    let build = |codec| {
        let mut b = RecordBatchBuilder::with_capacity(codec, BATCH_SIZE);
        for i in 0..n {
            let (k, v) = (
                Bytes::from_static(input.key(i)),
                Bytes::from_static(input.value(i)),
            );
            b.push(i as i64, Some(&k), Some(&v), &[])
                .expect("push a record");
        }
        b.build().expect("build a batch").len()
    };
    build(Compression::Gzip) as f64 / build(Compression::None) as f64
}

// ---------------------------------------------------------------------------------------------
// Measurement

/// CPU time of process `pid` (`self` for this one), read two ways:
/// - `total`: user + system time of all its threads, also those that have exited
///   (`/proc/PID/stat`), in clock ticks (10 ms);
/// - `live`: the run time of its live threads to the nanosecond (`/proc/PID/task/*/schedstat`),
///   `None` where the kernel does not keep it.
#[derive(Clone, Copy, Debug)]
struct CpuReading {
    total: Duration,
    live: Option<Duration>,
}

/// Resets this process's peak resident memory (`VmHWM`) to what is resident now (Linux's
/// `clear_refs` value 5), so that each run's peak is its own.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's peak resident memory since the last reset, in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn cpu_time(pid: &str) -> CpuReading {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/stat: {e}"));
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').expect("a /proc stat line") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    let total = Duration::from_nanos(ticks * 1_000_000_000 / clock_ticks());
    let live = (|| {
        let mut ns = 0u64;
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
            // A thread may exit between listing and reading: it then counts as not there.
            let Ok(line) = std::fs::read_to_string(task.ok()?.path().join("schedstat")) else {
                continue;
            };
            ns += line.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(Duration::from_nanos(ns)).filter(|d| !d.is_zero())
    })();
    CpuReading { total, live }
}

/// The CPU time between two readings: the precise live-thread figure, unless threads that exited
/// in between make it disagree with the complete tick-based one by more than two ticks (the
/// ticks' own rounding), which is then taken.
fn cpu_between(before: CpuReading, after: CpuReading) -> Duration {
    let total = after.total.saturating_sub(before.total);
    let slack = Duration::from_nanos(2 * 1_000_000_000 / clock_ticks());
    match (before.live, after.live) {
        (Some(b), Some(a)) if a >= b => {
            let live = a - b;
            if live + slack >= total && live <= total + slack {
                live
            } else {
                eprintln!(
                    "note: live-thread CPU {live:?} disagrees with the total {total:?} \
                     (threads exited?): using the total"
                );
                total
            }
        }
        _ => total,
    }
}

/// One measured run.
#[derive(Clone, Copy, Debug)]
struct Sample {
    wall: Duration,
    cpu: Duration,
    broker_cpu: Duration,
    /// This process's peak resident memory during the run, in bytes (not for Java's runs).
    peak_rss: Option<u64>,
    /// A Java tool's run: what `wall`, `cpu` and `broker_cpu` were derived from.
    java: Option<kafka::JavaDetail>,
}

/// Starts the clocks: wall time, this process's CPU time, the brokers' CPU time.
struct Stopwatch {
    broker_pid: String,
    wall: Instant,
    cpu: CpuReading,
    broker_cpu: CpuReading,
}

impl Stopwatch {
    fn start(broker_pid: u32) -> Self {
        let broker_pid = broker_pid.to_string();
        reset_peak_rss();
        let broker_cpu = cpu_time(&broker_pid);
        let cpu = cpu_time("self");
        Stopwatch {
            broker_pid,
            wall: Instant::now(),
            cpu,
            broker_cpu,
        }
    }

    fn stop(self) -> Sample {
        let wall = self.wall.elapsed();
        let cpu = cpu_time("self");
        let broker_cpu = cpu_time(&self.broker_pid);
        Sample {
            wall,
            cpu: cpu_between(self.cpu, cpu),
            broker_cpu: cpu_between(self.broker_cpu, broker_cpu),
            peak_rss: peak_rss(),
            java: None,
        }
    }
}

type RunResult = Result<Sample, String>;

/// What a run gets: the brokers, its topic, the records and the settings.
struct Run<'a> {
    /// `host:port` of a broker to bootstrap from.
    bootstrap: &'a str,
    /// The brokers' process (the mock cluster's or tansu's), whose CPU time is measured too.
    broker_pid: u32,
    topic: String,
    partitions: i32,
    input: &'a Input,
    codec: &'static str,
    timeout: Duration,
}

impl Run<'_> {
    fn stopwatch(&self) -> Stopwatch {
        Stopwatch::start(self.broker_pid)
    }

    /// The producer settings every client gets, under the Java names all three understand.
    fn producer_properties(&self) -> Vec<(&'static str, String)> {
        vec![
            ("bootstrap.servers", self.bootstrap.to_owned()),
            ("acks", "all".to_owned()),
            ("linger.ms", LINGER_MS.to_string()),
            ("batch.size", BATCH_SIZE.to_string()),
            ("compression.type", self.codec.to_owned()),
            ("enable.idempotence", "false".to_owned()),
            (
                "max.in.flight.requests.per.connection",
                MAX_IN_FLIGHT.to_string(),
            ),
        ]
    }

    /// The consumer settings every client gets.
    fn consumer_properties(&self, group: &str) -> Vec<(&'static str, String)> {
        vec![
            ("bootstrap.servers", self.bootstrap.to_owned()),
            ("group.id", group.to_owned()),
            ("enable.auto.commit", "false".to_owned()),
            ("auto.offset.reset", "earliest".to_owned()),
            ("check.crcs", "true".to_owned()),
        ]
    }
}

/// A tokio runtime with one worker per core of this machine (2 here), like `#[tokio::main]`.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `fut` on a fresh runtime, failing it after `timeout`.
fn block_on_timeout<F: std::future::Future<Output = RunResult>>(
    timeout: Duration,
    fut: F,
) -> RunResult {
    let rt = runtime();
    let result = rt.block_on(async {
        tokio::time::timeout(timeout, fut)
            .await
            .unwrap_or_else(|_| Err(format!("no result within {timeout:?}")))
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    result
}

// ---------------------------------------------------------------------------------------------
// librdkafka (the rdkafka crate)

#[path = "librdkafka.rs"]
mod rd;

// ---------------------------------------------------------------------------------------------
// kacrab 0.4.0

#[path = "kacrab.rs"]
mod kacrab_client;

// ---------------------------------------------------------------------------------------------
// kbus

#[path = "kbus.rs"]
mod kbus_client;

// ---------------------------------------------------------------------------------------------
// Driver

fn run_producer(client: Client, run: &Run<'_>) -> RunResult {
    match client {
        Client::Kbus => block_on_timeout(run.timeout, kbus_client::producer(run)),
        Client::RdkafkaBase => rd::base_producer(run),
        Client::RdkafkaFuture => block_on_timeout(run.timeout, rd::future_producer(run)),
        Client::Kacrab => block_on_timeout(run.timeout, kacrab_client::producer(run)),
        Client::RdkafkaStream => unreachable!("not a producer"),
        Client::Java => unreachable!("runs in kafka::scenario"),
    }
}

fn run_consumer(client: Client, run: &Run<'_>, group: &str) -> RunResult {
    match client {
        Client::Kbus => block_on_timeout(run.timeout, kbus_client::consumer(run, group)),
        Client::RdkafkaBase => rd::base_consumer(run, group),
        Client::RdkafkaStream => block_on_timeout(run.timeout, rd::stream_consumer(run, group)),
        Client::Kacrab => block_on_timeout(run.timeout, kacrab_client::consumer(run, group)),
        Client::RdkafkaFuture => unreachable!("not a consumer"),
        Client::Java => unreachable!("runs in kafka::scenario"),
    }
}

/// One scenario: a fresh cluster, every client `rounds` times.
fn scenario(scenario: Scenario, opts: &Options, input: &Input) -> BTreeMap<Client, Vec<RunResult>> {
    let clients: Vec<Client> = opts
        .clients
        .iter()
        .copied()
        .filter(|c| c.runs_in(scenario))
        .collect();
    let mut results: BTreeMap<Client, Vec<RunResult>> = BTreeMap::new();
    if clients.is_empty() {
        return results;
    }
    let consumer = scenario.is_consumer();
    let partitions = if consumer {
        opts.consumer_partitions
    } else {
        opts.partitions
    };
    // Producers write to a topic each; consumers all read the one topic.
    let topic_of = |c: Client| {
        if consumer {
            format!("bench-{}", scenario.name())
        } else {
            format!("bench-{}-{}", scenario.name(), c.name())
        }
    };
    let mut topics: Vec<MockTopic> = clients
        .iter()
        .map(|&c| MockTopic::new(topic_of(c), partitions, REPLICATION))
        .collect();
    topics.dedup();
    let cluster = MockClusterProcess::spawn_topics(BROKERS, &topics);
    eprintln!(
        "[{}] mock cluster pid {} at {}",
        scenario.name(),
        cluster.pid(),
        cluster.bootstrap()
    );
    let run_for = |c: Client| Run {
        bootstrap: cluster.bootstrap(),
        broker_pid: cluster.pid(),
        topic: topic_of(c),
        partitions,
        input,
        codec: scenario.codec(),
        timeout: opts.timeout,
    };
    if consumer {
        let fill = run_for(clients[0]);
        let started = Instant::now();
        rd::fill(&fill).unwrap_or_else(|e| panic!("producing the consumer input failed: {e}"));
        let marks = rd::watermarks(&fill).unwrap_or_else(|e| panic!("{e}"));
        let total: i64 = marks.iter().map(|(_, high)| high).sum();
        assert!(
            marks.iter().all(|(low, _)| *low == 0) && total == input.records as i64,
            "the mock cluster no longer holds all {} records from offset 0 (watermarks {marks:?}): \
             it keeps 5 MiB per partition; raise KBUS_BENCH_CONSUMER_PARTITIONS",
            input.records
        );
        eprintln!(
            "[consumer] produced {} records into {partitions} partitions in {:.1?}",
            input.records,
            started.elapsed()
        );
    }
    for round in 0..opts.rounds {
        for &c in &clients {
            let run = run_for(c);
            let result = if consumer {
                let group = format!("bench-{}-{}-{round}", c.name(), std::process::id());
                run_consumer(c, &run, &group)
            } else {
                // The brokers must have every record: trust no client's delivery reports alone.
                run_producer(c, &run).and_then(|sample| {
                    let marks = rd::watermarks(&run)?;
                    let written: i64 = marks.iter().map(|(_, high)| high).sum();
                    let expected = (input.records * (round + 1)) as i64;
                    if written == expected {
                        Ok(sample)
                    } else {
                        Err(format!(
                            "the topic has {written} records, expected {expected}"
                        ))
                    }
                })
            };
            report(scenario, c, round, input, &result);
            results.entry(c).or_default().push(result);
        }
    }
    results
}

/// Says how a run went, on stderr.
fn report(scenario: Scenario, c: Client, round: usize, input: &Input, result: &RunResult) {
    match result {
        Ok(s) => eprintln!(
            "[{}] {:<26} round {}: {:>10.0} records/s, CPU {:.3} µs/record, broker CPU {:.3} µs/record",
            scenario.name(),
            c.label(scenario),
            round + 1,
            input.records as f64 / s.wall.as_secs_f64(),
            s.cpu.as_secs_f64() * 1e6 / input.records as f64,
            s.broker_cpu.as_secs_f64() * 1e6 / input.records as f64
        ),
        Err(e) => eprintln!(
            "[{}] {} round {}: FAILED: {e}",
            scenario.name(),
            c.label(scenario),
            round + 1
        ),
    }
}

mod topic_admin;

/// One tansu scenario: a fresh broker; every producer run on a fresh topic, created before the
/// clock starts; the consumers all read one topic filled beforehand.
fn tansu_scenario(
    scenario: Scenario,
    opts: &Options,
    input: &Input,
) -> BTreeMap<Client, Vec<RunResult>> {
    let clients: Vec<Client> = opts
        .clients
        .iter()
        .copied()
        .filter(|c| c.runs_in(scenario))
        .collect();
    let mut results: BTreeMap<Client, Vec<RunResult>> = BTreeMap::new();
    if clients.is_empty() {
        return results;
    }
    let consumer = scenario.is_consumer();
    let partitions = opts.partitions;
    // Without a tansu binary (see testkit/src/tansu.rs) the scenario fails, not the bench.
    let broker = match std::panic::catch_unwind(Tansu::start) {
        Ok(broker) => broker,
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("tansu did not start");
            for c in clients {
                results.insert(c, vec![Err(format!("no tansu broker: {why}"))]);
            }
            return results;
        }
    };
    let bootstrap = broker.addr();
    eprintln!(
        "[{}] tansu pid {} at {bootstrap}",
        scenario.name(),
        broker.pid()
    );
    let run_on = |topic: String| Run {
        bootstrap: &bootstrap,
        broker_pid: broker.pid(),
        topic,
        partitions,
        input,
        codec: scenario.codec(),
        timeout: opts.timeout,
    };
    let consumer_topic = "bench-consumer-tansu";
    if consumer {
        fill_consumer_topic(scenario, &run_on(consumer_topic.to_owned()), "tansu");
    }
    for round in 0..opts.rounds {
        for &c in &clients {
            let result = if consumer {
                let group = format!("bench-tansu-{}-{}-{round}", c.name(), std::process::id());
                run_consumer(c, &run_on(consumer_topic.to_owned()), &group)
            } else {
                checked_producer_run(
                    c,
                    &run_on(format!(
                        "bench-{}-{}-{}",
                        scenario.name(),
                        c.name(),
                        round + 1
                    )),
                )
            };
            report(scenario, c, round, input, &result);
            results.entry(c).or_default().push(result);
        }
    }
    results
}

/// Creates `run.topic` and fills it once with librdkafka (with the scenario's codec) for the consumer
/// scenarios, checking that the broker (`what`, for messages) has every record.
fn fill_consumer_topic(scenario: Scenario, run: &Run<'_>, what: &str) {
    let started = Instant::now();
    let records = run.input.records;
    topic_admin::create_topic(run.bootstrap, &run.topic, run.partitions)
        .and_then(|()| rd::fill(run))
        .and_then(|()| topic_admin::check(run.bootstrap, &run.topic, run.partitions, records))
        .unwrap_or_else(|e| panic!("producing the consumer input on {what} failed: {e}"));
    eprintln!(
        "[{}] produced {records} records into {} partitions in {:.1?}",
        scenario.name(),
        run.partitions,
        started.elapsed()
    );
}

/// One producer run on a fresh topic `run.topic`, created before the clock starts; afterwards
/// the broker must have every record: no client's delivery reports are trusted alone.
fn checked_producer_run(c: Client, run: &Run<'_>) -> RunResult {
    topic_admin::create_topic(run.bootstrap, &run.topic, run.partitions)
        .and_then(|()| run_producer(c, run))
        .and_then(|sample| {
            topic_admin::check(run.bootstrap, &run.topic, run.partitions, run.input.records)
                .map(|()| sample)
        })
}

/// The median sample by throughput (the faster of the two middle ones for an even count), or
/// the first error when no run succeeded.
fn median(results: &[RunResult]) -> RunResult {
    let mut ok: Vec<Sample> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    if ok.is_empty() {
        return results
            .first()
            .cloned()
            .unwrap_or_else(|| Err("not run".to_owned()));
    }
    ok.sort_by_key(|s| s.wall);
    Ok(ok[(ok.len() - 1) / 2])
}

fn print_table(
    scenario: Scenario,
    results: &BTreeMap<Client, Vec<RunResult>>,
    input: &Input,
    opts: &Options,
) {
    let n = input.records as f64;
    let medians: Vec<(Client, RunResult)> = results.iter().map(|(&c, r)| (c, median(r))).collect();
    let kbus_rate = medians
        .iter()
        .find(|(c, _)| c.is_kbus())
        .and_then(|(_, r)| r.as_ref().ok())
        .map(|s| n / s.wall.as_secs_f64());
    println!();
    let settings = match scenario {
        s if s.is_consumer() => "manual assignment from offset 0, check.crcs=true".to_owned(),
        _ => format!(
            "acks=all, linger.ms={LINGER_MS}, batch.size={BATCH_SIZE}, compression.type={}",
            scenario.codec()
        ),
    };
    println!(
        "{} ({} records, {KEY_SIZE} B keys + {} B values, {settings})",
        scenario.name(),
        input.records,
        value_size(),
    );
    if scenario.on_tansu() {
        println!(
            "On one tansu 0.6.0 broker (SQLite storage, {} partitions, replication 1): these \
             numbers are bounded by tansu's own speed (see its CPU column), so they compare the \
             clients with each other, not with the mock cluster's tables.",
            opts.partitions
        );
    }
    if scenario.on_kafka() {
        kafka::print_notes(scenario, opts);
    }
    println!(
        "| client | records/s | MB/s | CPU µs/record | broker CPU µs/record | peak RSS MB | kbus ÷ peer |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (c, r) in &medians {
        match r {
            Ok(s) => {
                let secs = s.wall.as_secs_f64();
                let rate = n / secs;
                let ratio = match kbus_rate {
                    Some(_) if c.is_kbus() => "—".to_owned(),
                    Some(k) => format!("{:.2}x", k / rate),
                    None => "n/a".to_owned(),
                };
                // The Java producer's keys are shorter, and Java's CPU columns are differences of
                // two runs, shown with their sign (see kafka::print_notes).
                let (bytes, cpu, broker_cpu) = match s.java {
                    Some(j) => (j.bytes, j.cpu_difference(), j.broker_cpu_difference()),
                    None => (
                        input.payload_bytes(),
                        s.cpu.as_secs_f64(),
                        s.broker_cpu.as_secs_f64(),
                    ),
                };
                if let (Some(k), false) = (kbus_rate, c.is_kbus()) {
                    let command = format!(
                        "KBUS_BENCH_ONLY={} cargo bench --bench clients",
                        scenario.name()
                    );
                    record::record(record::Row {
                        group: scenario.record_group(),
                        row: &scenario.record_row(),
                        peer: c.label(scenario),
                        ratio: k / rate,
                        kbus: k,
                        peer_value: rate,
                        unit: "records/s",
                        command: &command,
                    });
                }
                let rss = s
                    .peak_rss
                    .map_or("—".to_owned(), |b| format!("{:.0}", b as f64 / 1e6));
                println!(
                    "| {} | {:.0} | {:.1} | {:.3} | {:.3} | {rss} | {ratio} |",
                    c.label(scenario),
                    rate,
                    bytes as f64 / secs / 1e6,
                    cpu * 1e6 / n,
                    broker_cpu * 1e6 / n,
                );
            }
            Err(e) => println!("| {} | failed: {e} | | | | | |", c.label(scenario)),
        }
    }
    kafka::print_java_details(scenario, &medians, kbus_rate);
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter here.
    let opts = options();
    let input = Input::new(opts.records);
    println!(
        "clients bench: {} records ({} on tansu, {} on Kafka), scenarios {}, clients {}, \
         {} round(s), {} partitions ({} for the mock's consumer), {BROKERS} mock brokers, \
         replication {REPLICATION} (1 on tansu and Kafka); input gzip ratio {:.2} (compressed / \
         plain, one 16 KiB batch); CPU = run time of this process's threads (clock tick {} ms)",
        opts.records,
        opts.tansu_records,
        opts.kafka_records,
        opts.scenarios
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(","),
        opts.clients
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(","),
        opts.rounds,
        opts.partitions,
        opts.consumer_partitions,
        gzip_ratio(&input),
        1000 / clock_ticks(),
    );
    let tansu_input = input.with_records(opts.tansu_records);
    let kafka_input = input.with_records(opts.kafka_records);
    let input_of = |s: Scenario| {
        if s.on_tansu() {
            &tansu_input
        } else if s.on_kafka() {
            &kafka_input
        } else {
            &input
        }
    };
    // One Kafka node for all Kafka scenarios (the last ones), started by the first.
    let mut kafka_broker = None;
    let mut all = Vec::new();
    for &s in &opts.scenarios {
        let results = if s.on_tansu() {
            tansu_scenario(s, &opts, input_of(s))
        } else if s.on_kafka() {
            kafka::scenario(s, &opts, input_of(s), &mut kafka_broker)
        } else {
            scenario(s, &opts, input_of(s))
        };
        all.push((s, results));
    }
    drop(kafka_broker);
    for (s, results) in &all {
        print_table(*s, results, input_of(*s), &opts);
    }
}
