//! Event bus throughput on one Apache Kafka 4.4 node (KRaft, started by the testkit), then on
//! librdkafka's 3-broker mock cluster (publish and consume only): the bus's
//! publish and consume+dispatch next to the raw producer and consumer moving the same records in
//! the same run, so the ratio is the bus's own cost (JSON envelope, headers, handlers, ordering,
//! commits).
//!
//! ```sh
//! cargo bench --bench bus
//! KBUS_BUS_BENCH_EVENTS=500000 cargo bench --bench bus
//! ```
//!
//! Scenarios (default settings of `KafkaEventBusConfig`: gzip, acks=all, idempotence; a topic of 3
//! partitions; 10,000 aggregates; events of 2 fields):
//! - in-memory: the bus's own cost without Kafka (encode to the wire form, decode, dispatch).
//! - `publish`: `publish` in batches of 1,000 until every event is acknowledged, against the raw
//!   producer sending the same records (key, value and headers encoded once beforehand).
//! - `publish, 8 callers at once`: the same 1,000-event publishes from 8 tasks sharing the bus
//!   (to a topic of its own), as a service publishes from many requests at once.
//! - `consume`: a started bus with a no-op handler, from the moment it owns its partitions until
//!   every event was handled, against the raw consumer reading the same topic (manual assignment
//!   from offset 0) until every record arrived.
//! - `consume-sleep-5ms`: handlers that sleep 5 ms, with `max_concurrency` 1, 16 and 64: what
//!   per-aggregate concurrency buys when handlers wait on I/O (fewer events).
//!
//! Each line gives events/s, the wall time and this process's CPU time per event, and peak RSS.
//!
//! The mock cluster keeps a bounded number of batches per partition and drops older ones, so its
//! runs move 50,000 events (`KBUS_BUS_BENCH_MOCK_EVENTS`).
//!
//! Before the runs on Kafka, `KBUS_BUS_BENCH_WARM_UP` events (600,000; 0 for none) are published
//! through a bus and read back, and the broker is let go quiet: a fresh node's JIT compilers
//! otherwise take a good part of the 2 cores through the first runs (see `warm_up`).
//!
//! The consume runs repeat `KBUS_BUS_BENCH_ROUNDS` times (3; each a group of its own, the raw
//! consumer before each), as one run on a broker sharing 2 cores varies by a third; the record
//! takes the medians.
//!
//! Knobs: `KBUS_BUS_BENCH_ONLY=mock` runs the mock cluster's part alone; `KBUS_BUS_BENCH_LOG=1`
//! logs the clients' debug events on stderr; `KBUS_BUS_BENCH_SET="key=value,..."` adds client
//! properties to every bus and raw client (to try a setting against the defaults);
//! `KBUS_BUS_BENCH_IN_FLIGHT=N` sets `max_in_flight_events`; `KBUS_BUS_BENCH_PERF_CTL=FIFO`
//! switches `perf record --control fifo:FIFO -D -1 ...` on for the bus's consume runs only (for
//! its 8-caller publish runs instead with `KBUS_BUS_BENCH_PERF_RUNS=publish`):
//!
//! ```sh
//! mkfifo /tmp/perfctl
//! KBUS_BUS_BENCH_PERF_CTL=/tmp/perfctl perf record -g -D -1 --control fifo:/tmp/perfctl \
//!     target/release/deps/bus-HASH --bench
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kbus::bus::kafka::{KafkaEventBus, KafkaEventBusConfig};
use kbus::bus::{new_uuid, Envelope, Event, EventBus, Uuid};
use kbus::consumer::{Consumer, Event as ConsumerEvent};
use kbus::producer::{Producer, ProducerRecord};
use kbus::protocol::record::Header;
use kbus::TopicPartition;
use kbus_testkit::kafka::Kafka;

#[path = "../common/broker_quiet.rs"]
mod broker_quiet;
#[path = "../common/record.rs"]
mod record;
use kbus_testkit::mock_process::{MockClusterProcess, MockTopic};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Deposited {
    account: String,
    amount_cents: i64,
}

impl Event for Deposited {
    const EVENT_TYPE: &'static str = "Deposited";
    const AGGREGATE_TYPE: &'static str = "Account";
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[derive(Clone)]
struct Line {
    name: String,
    events: usize,
    wall: Duration,
    cpu: f64,
}

impl Line {
    fn rate(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64()
    }
    fn print(&self, versus: Option<&Line>) {
        let ratio = versus.map_or(String::from("—"), |v| {
            format!("{:.2}x", self.rate() / v.rate())
        });
        println!(
            "| {} | {:.0} | {:.3} | {:.2} | {:.0} | {} |",
            self.name,
            self.rate(),
            self.wall.as_secs_f64(),
            self.cpu / self.events as f64 * 1e6,
            peak_rss_mb(),
            ratio
        );
    }
}

impl Line {
    /// Records this line against `raw` (the raw client's run) in the benchmark record.
    fn record(&self, group: &str, raw: &Line, peer: &str) {
        record::record(record::Row {
            group,
            row: &self.name,
            peer,
            ratio: self.rate() / raw.rate(),
            kbus: self.rate(),
            peer_value: raw.rate(),
            unit: "events/s",
            command: "cargo bench --bench bus",
        });
    }
}

async fn measure<F: std::future::Future<Output = ()>>(name: &str, events: usize, f: F) -> Line {
    let (start, cpu) = (Instant::now(), cpu_seconds());
    f.await;
    Line {
        name: name.into(),
        events,
        wall: start.elapsed(),
        cpu: cpu_seconds() - cpu,
    }
}

fn bus_config(bootstrap: &str, prefix: &str) -> KafkaEventBusConfig {
    KafkaEventBusConfig {
        bootstrap_servers: bootstrap.into(),
        topic_prefix: prefix.into(),
        consumer_group: format!("{prefix}-group"),
        topic_partitions: 3,
        session_timeout_ms: 10_000,
        heartbeat_interval_ms: 1000,
        properties: extra_properties(),
        max_in_flight_events: env_number(
            "KBUS_BUS_BENCH_IN_FLIGHT",
            KafkaEventBusConfig::default().max_in_flight_events,
        ),
        ..Default::default()
    }
}

/// `KBUS_BUS_BENCH_SET="batch.size=262144,compression.type=lz4"`: client properties for every
/// bus and raw client of the run (to try settings against the defaults).
fn extra_properties() -> std::collections::BTreeMap<String, String> {
    std::env::var("KBUS_BUS_BENCH_SET")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn events(n: usize, aggregates: &[Uuid]) -> Vec<Envelope<Deposited>> {
    (0..n)
        .map(|i| {
            Envelope::new(
                aggregates[i % aggregates.len()],
                (i / aggregates.len() + 1) as u64,
                Deposited {
                    account: format!("acct-{}", i % aggregates.len()),
                    amount_cents: i as i64,
                },
            )
        })
        .collect()
}

/// The bus's publish and consume next to the raw producer and consumer on the cluster at
/// `bootstrap`; topics `{prefix}-raw.stream` and `{prefix}-bus.stream` (and their dead-letter
/// topics) are created by the bus when `create_topics`, else they must exist.
async fn publish_and_consume(
    bootstrap: &str,
    prefix: &str,
    create_topics: bool,
    n: usize,
    aggregates: &[Uuid],
) {
    let config_for = |bootstrap: &str, prefix: &str| KafkaEventBusConfig {
        create_topics,
        ..bus_config(bootstrap, prefix)
    };
    // Publish: the raw producer first (same records), then the bus.
    let raw_config = config_for(bootstrap, &format!("{prefix}-raw"));
    let raw_bus = KafkaEventBus::connect(raw_config.clone()).await.unwrap();
    let records: Vec<ProducerRecord> = events(n, aggregates)
        .iter()
        .map(|e| {
            let r = kbus::bus::wire::encode(&e.meta, &e.event).unwrap();
            let mut record = ProducerRecord::new(raw_config.topic())
                .key(r.key)
                .value(r.value);
            record.headers = r
                .headers
                .into_iter()
                .map(|(k, v)| Header::new(k, Some(v)))
                .collect();
            record
        })
        .collect();
    let producer = Producer::from_properties(&raw_config.client_properties())
        .await
        .unwrap();
    let raw = measure("raw producer (same records)", n, async {
        let mut deliveries = Vec::with_capacity(n);
        for r in records {
            deliveries.push(producer.send(r).await.unwrap());
        }
        for d in deliveries {
            d.await.unwrap();
        }
    })
    .await;
    raw.print(None);
    raw_bus.shutdown(Duration::from_secs(10)).await.unwrap();

    let config = config_for(bootstrap, &format!("{prefix}-bus"));
    let bus = KafkaEventBus::connect(config.clone()).await.unwrap();
    let all = events(n, aggregates);
    let publish = measure("bus publish", n, bus_publish(&bus, all)).await;
    publish.print(Some(&raw));
    let group = if prefix.contains("mock") {
        "event bus on librdkafka's mock cluster"
    } else {
        "event bus on Apache Kafka"
    };
    publish.record(group, &raw, "kbus raw producer");
    // A service publishes from many tasks at once: their publishes share the producer's batches
    // and requests, and one caller's wait for acknowledgements overlaps another's encoding.
    let concurrent = {
        let bus = KafkaEventBus::connect(config_for(bootstrap, &format!("{prefix}-bus8")))
            .await
            .unwrap();
        let all = events(n, aggregates);
        profiler("publish", "enable");
        let line = measure(
            "bus publish, 8 callers at once",
            n,
            bus_publish_concurrently(&bus, all, 8),
        )
        .await;
        profiler("publish", "disable");
        bus.shutdown(Duration::from_secs(10)).await.unwrap();
        line
    };
    concurrent.print(Some(&raw));
    concurrent.record(group, &raw, "kbus raw producer");
    bus.shutdown(Duration::from_secs(10)).await.unwrap();

    // Consume: the raw consumer over the bus's topic, then the bus itself (a group of its own
    // each round), round after round; the medians go into the record.
    let rounds = env_number("KBUS_BUS_BENCH_ROUNDS", 3).max(1);
    let (mut raws, mut buses) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let raw = measure(
            "raw consumer (same topic)",
            n,
            raw_consume(&config.bootstrap_servers, &config.topic(), n),
        )
        .await;
        raw.print(None);
        let mut c = config.clone();
        c.consumer_group = format!("{}-{round}", config.consumer_group);
        let consume = bus_consume("bus consume + dispatch (no-op handler)", c, n, None).await;
        consume.print(Some(&raw));
        raws.push(raw);
        buses.push(consume);
    }
    let (raw, consume) = (median(raws), median(buses));
    if rounds > 1 {
        let name = |line: &Line| Line {
            name: format!("{}, median of {rounds} rounds", line.name),
            ..*line
        };
        name(&raw).print(None);
        name(&consume).print(Some(&raw));
    }
    consume.record(group, &raw, "kbus raw consumer");
}

/// The line of the median rate.
fn median(mut lines: Vec<Line>) -> Line {
    lines.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    lines.swap_remove(lines.len() / 2)
}

/// Publishes `all` through the bus, 1,000 per call.
async fn bus_publish(bus: &KafkaEventBus, all: Vec<Envelope<Deposited>>) {
    let mut all = all.into_iter().peekable();
    while all.peek().is_some() {
        let batch: Vec<_> = all.by_ref().take(1000).collect();
        bus.publish(batch).await.unwrap();
    }
}

/// Publishes `all` through the bus, 1,000 per call, from `callers` tasks at once.
async fn bus_publish_concurrently(
    bus: &KafkaEventBus,
    all: Vec<Envelope<Deposited>>,
    callers: usize,
) {
    let mut chunks = Vec::new();
    let mut all = all.into_iter().peekable();
    while all.peek().is_some() {
        chunks.push(all.by_ref().take(1000).collect::<Vec<_>>());
    }
    let chunks = Arc::new(std::sync::Mutex::new(chunks.into_iter()));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (bus, chunks) = (bus.clone(), chunks.clone());
            tokio::spawn(async move {
                loop {
                    let Some(batch) = chunks.lock().unwrap().next() else {
                        return;
                    };
                    bus.publish(batch).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// Consumes `n` events with a started bus whose handler sleeps `sleep` (if any), then shuts it
/// down; measured from the moment the member owns its partitions (joining the group and shutting
/// down are left out, as the raw consumer has neither) until the last event is handled.
async fn bus_consume(
    name: &str,
    config: KafkaEventBusConfig,
    n: usize,
    sleep: Option<Duration>,
) -> Line {
    let bus = KafkaEventBus::connect(config).await.unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    {
        let (handled, done) = (handled.clone(), done.clone());
        bus.subscribe(move |_: Arc<Envelope<Deposited>>| {
            let (handled, done) = (handled.clone(), done.clone());
            async move {
                if let Some(d) = sleep {
                    tokio::time::sleep(d).await;
                }
                if handled.fetch_add(1, Ordering::Relaxed) + 1 == n as u64 {
                    done.notify_one();
                }
                Ok(())
            }
        });
    }
    let mut assignment = bus.assignment();
    let (start, cpu) = (Instant::now(), cpu_seconds());
    bus.start().await.unwrap();
    assignment.wait_for(|a| !a.is_empty()).await.unwrap();
    profiler("consume", "enable");
    // Joining took this long: left out of the measurement.
    let joined = start.elapsed();
    let cpu_joined = cpu_seconds() - cpu;
    // A run that stalls says where it stands every 10 s.
    while tokio::time::timeout(Duration::from_secs(10), done.notified())
        .await
        .is_err()
    {
        eprintln!(
            "{name}: {} of {n} handled; assignment {:?}; {:?}",
            handled.load(Ordering::Relaxed),
            bus.assignment().borrow(),
            bus.stats()
        );
    }
    profiler("consume", "disable");
    let line = Line {
        name: name.into(),
        events: n,
        wall: start.elapsed() - joined,
        cpu: cpu_seconds() - cpu - cpu_joined,
    };
    bus.shutdown(Duration::from_secs(30)).await.unwrap();
    line
}

/// With `KBUS_BUS_BENCH_PERF_CTL=FIFO`, the bus's consume runs (or, with
/// `KBUS_BUS_BENCH_PERF_RUNS=publish`, its runs publishing from 8 callers) switch `perf record
/// --control fifo:FIFO -D -1` on and off, so a profile holds that path only.
fn profiler(runs: &str, command: &str) {
    let wanted = std::env::var("KBUS_BUS_BENCH_PERF_RUNS").unwrap_or_else(|_| "consume".into());
    if wanted != runs {
        return;
    }
    if let Ok(fifo) = std::env::var("KBUS_BUS_BENCH_PERF_CTL") {
        let _ = std::fs::write(fifo, format!("{command}\n"));
    }
}

async fn raw_consume(bootstrap: &str, topic: &str, n: usize) {
    let mut consumer = Consumer::from_properties([("bootstrap.servers", bootstrap)])
        .await
        .unwrap();
    consumer
        .assign((0..3).map(|p| TopicPartition::new(topic, p)))
        .unwrap();
    consumer.seek_to_beginning(&consumer.assignment()).unwrap();
    let mut got = 0;
    while got < n {
        match tokio::time::timeout(Duration::from_secs(10), consumer.poll()).await {
            Ok(event) => {
                if let ConsumerEvent::Records(batch) = event.unwrap() {
                    got += batch.records.len();
                }
            }
            // A run that stalls says where it stands.
            Err(_) => eprintln!(
                "raw consumer: {got} of {n} records; positions {:?}",
                consumer
                    .assignment()
                    .iter()
                    .map(|tp| consumer.position(tp))
                    .collect::<Vec<_>>()
            ),
        }
    }
}

fn main() {
    // Only `cargo bench` runs it (cargo test builds benches with --test-like flags: skip).
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    if std::env::var_os("KBUS_BUS_BENCH_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .init();
    }
    let n = env_number("KBUS_BUS_BENCH_EVENTS", 200_000);
    let slow_n = env_number("KBUS_BUS_BENCH_SLOW_EVENTS", 5_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let aggregates: Vec<Uuid> = (0..10_000).map(|_| new_uuid()).collect();
        // librdkafka's mock keeps a bounded number of batches per partition (about 40,000 of
        // these events with the bus's 16 KiB batches) and drops older ones: its runs move fewer.
        let mock_n = env_number("KBUS_BUS_BENCH_MOCK_EVENTS", 50_000);
        if std::env::var("KBUS_BUS_BENCH_ONLY").as_deref() == Ok("mock") {
            mock_runs(mock_n, &aggregates).await;
            return;
        }
        let kafka = Kafka::builder().start();
        warm_up(
            &kafka,
            env_number("KBUS_BUS_BENCH_WARM_UP", 600_000),
            &aggregates,
        )
        .await;
        println!("bus bench on Apache Kafka (one node): {n} events, 3 partitions, gzip, acks=all");
        println!();
        println!("| run | events/s | seconds | CPU µs/event | peak RSS MB | bus ÷ raw |");
        println!("|---|---:|---:|---:|---:|---:|");

        // The bus's own cost, no Kafka: the in-memory bus writes every event in the Kafka wire
        // form and reads it back before its handler sees it.
        let memory = kbus::bus::InMemoryEventBus::new();
        memory.subscribe(|_: Arc<Envelope<Deposited>>| async { Ok(()) });
        let all = events(n, &aggregates);
        let line = measure("in-memory bus: encode, decode, dispatch", n, async {
            let mut all = all.into_iter().peekable();
            while all.peek().is_some() {
                let batch: Vec<_> = all.by_ref().take(1000).collect();
                memory.publish(batch).await.unwrap();
            }
        })
        .await;
        line.print(None);

        println!("| *on Apache Kafka (one node):* | | | | | |");
        publish_and_consume(&kafka.bootstrap(), "bench", true, n, &aggregates).await;

        // Handlers waiting 5 ms: concurrency across aggregates.
        let slow = bus_config(&kafka.bootstrap(), "bench-slow");
        let bus = KafkaEventBus::connect(slow.clone()).await.unwrap();
        bus_publish(&bus, events(slow_n, &aggregates)).await;
        bus.shutdown(Duration::from_secs(10)).await.unwrap();
        let mut one: Option<Line> = None;
        for concurrency in [1, 16, 64] {
            let mut c = slow.clone();
            c.consumer_group = format!("bench-slow-{concurrency}");
            c.max_concurrency = concurrency;
            let line = bus_consume(
                &format!("bus consume, 5 ms handlers, max_concurrency {concurrency}"),
                c,
                slow_n,
                Some(Duration::from_millis(5)),
            )
            .await;
            line.print(one.as_ref());
            one.get_or_insert(line);
        }

        mock_runs(mock_n, &aggregates).await;
    });
}

/// A fresh Kafka node is slow until its JIT has compiled the paths the runs take: measured on
/// 2026-12-07, its compiler threads used a quarter to half a core through the first runs
/// (`/proc/PID/task/*/stat`), while the threads answering requests used less. So `n` events are
/// published through a bus from 8 callers (in pieces, so that the process's peak memory stays
/// that of the runs) and read back by a raw consumer, and then the broker is let go quiet (its
/// compilers finish what was queued: under 5% of a core over half a second, 30 s at most).
async fn warm_up(kafka: &Kafka, n: usize, aggregates: &[Uuid]) {
    if n == 0 {
        return;
    }
    let started = Instant::now();
    let config = bus_config(&kafka.bootstrap(), "bench-warm-up");
    let bus = KafkaEventBus::connect(config.clone()).await.unwrap();
    let mut published = 0;
    while published < n {
        let piece = (n - published).min(100_000);
        bus_publish_concurrently(&bus, events(piece, aggregates), 8).await;
        published += piece;
    }
    bus.shutdown(Duration::from_secs(10)).await.unwrap();
    raw_consume(&config.bootstrap_servers, &config.topic(), n).await;
    let pid = kafka.pid().expect("the Kafka node runs");
    let quiet = tokio::task::spawn_blocking(move || broker_quiet::wait_until_quiet(pid))
        .await
        .unwrap();
    eprintln!(
        "[kafka] warmed up in {:.1?} ({n} events published and read back; quiet after {quiet:.1?})",
        started.elapsed(),
    );
}

/// The same publish and consume on librdkafka's mock cluster (3 brokers, in a process of its own,
/// topics made up front): no JVM and no disk behind the broker.
async fn mock_runs(n: usize, aggregates: &[Uuid]) {
    {
        let topics: Vec<MockTopic> = ["bench-mock-raw", "bench-mock-bus", "bench-mock-bus8"]
            .iter()
            .flat_map(|p| {
                [
                    MockTopic::new(format!("{p}.stream"), 3, 1),
                    MockTopic::new(format!("{p}.stream.dlq"), 3, 1),
                ]
            })
            .collect();
        let mock = MockClusterProcess::spawn_for_groups(3, &topics);
        println!("| *on librdkafka's mock cluster (3 brokers), {n} events:* | | | | | |");
        publish_and_consume(mock.bootstrap(), "bench-mock", false, n, aggregates).await;
    }
}
