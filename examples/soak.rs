//! A bounded soak of the Kafka event bus under faults: events published at a steady rate and
//! handled by a member of a group, while faults are injected at random intervals; every few
//! seconds a line with what was published, handled, duplicated and still pending, and the
//! process's memory (RSS). At the end, after the stream drains: lost must be 0 and the memory
//! flat (the peak of the second half of the run no more than 25 % + 16 MiB above the first
//! half's), else the exit status is 1. `scripts/soak` runs it.
//!
//! Brokers and faults:
//! - `mock`: librdkafka's 3-broker mock cluster in a child process; faults are injected errors on
//!   Produce, Fetch, OffsetCommit and Heartbeat, dropped connections, slow answers, moved leaders
//!   and a moved group coordinator.
//! - `kafka`: a 3-node Apache Kafka cluster (replication 3, `min.insync.replicas=2`); faults are
//!   a node paused (SIGSTOP) past the request timeout, a node killed and restarted, and a
//!   preferred-leader election.
//!
//! ```text
//! cargo run --release --example soak -- [mock|kafka] [SECONDS] [EVENTS_PER_SECOND] [SEED]
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kbus::bus::kafka::{KafkaEventBus, KafkaEventBusConfig};
use kbus::bus::{new_uuid, Envelope, Event, EventBus, Uuid};
use kbus::protocol::error_code::ErrorCode;
use kbus::protocol::ApiKey;
use kbus_testkit::kafka::{Kafka, KafkaCluster};
use kbus_testkit::mock_process::{MockClusterProcess, MockTopic};
use serde::{Deserialize, Serialize};

const PARTITIONS: i32 = 6;
const AGGREGATES: usize = 500;
/// How long the stream may take to drain after the last publish.
const DRAIN: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Beat {
    /// The event's number in the run, from 0.
    seq: u64,
}

impl Event for Beat {
    const EVENT_TYPE: &'static str = "Beat";
    const AGGREGATE_TYPE: &'static str = "Heart";
}

/// Which events were handled, once and more than once: two bits per event, so that tracking
/// them does not itself grow the memory the soak watches by more than a few hundred kilobytes.
#[derive(Default)]
struct Tally {
    once: Vec<u64>,
    twice: Vec<u64>,
    handled: u64,
    duplicates: u64,
}

impl Tally {
    fn handled(&mut self, seq: u64) {
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if self.once.len() <= word {
            self.once.resize(word + 1024, 0);
            self.twice.resize(word + 1024, 0);
        }
        if self.once[word] & bit == 0 {
            self.once[word] |= bit;
            self.handled += 1;
        } else {
            self.twice[word] |= bit;
            self.duplicates += 1;
        }
    }

    fn missing(&self, published: u64) -> Vec<u64> {
        (0..published)
            .filter(|seq| {
                let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
                self.once.get(word).is_none_or(|w| w & bit == 0)
            })
            .collect()
    }
}

/// A small random number generator (xorshift), seeded so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

enum Brokers {
    Mock(Mutex<MockClusterProcess>),
    Kafka(Arc<Mutex<KafkaCluster>>),
}

impl Brokers {
    fn bootstrap(&self) -> String {
        match self {
            Brokers::Mock(m) => m.lock().unwrap().bootstrap().to_string(),
            Brokers::Kafka(c) => c.lock().unwrap().bootstrap(),
        }
    }

    /// Injects one fault chosen by `rng`; returns what it was.
    async fn fault(&self, rng: &mut Rng, config: &KafkaEventBusConfig) -> String {
        use ErrorCode as E;
        match self {
            Brokers::Mock(mock) => match rng.below(8) {
                // (The lock is not held across an await.)
                0 => {
                    mock.lock().unwrap().push_request_errors(
                        ApiKey::Produce,
                        &[
                            E::NOT_LEADER_OR_FOLLOWER,
                            E::REQUEST_TIMED_OUT,
                            E::NOT_ENOUGH_REPLICAS,
                        ],
                    );
                    "Produce errors".into()
                }
                1 => {
                    mock.lock().unwrap().push_request_errors(
                        ApiKey::Fetch,
                        &[E::NOT_LEADER_OR_FOLLOWER, E::UNKNOWN_LEADER_EPOCH],
                    );
                    "Fetch errors".into()
                }
                2 => {
                    mock.lock().unwrap().push_request_errors(
                        ApiKey::OffsetCommit,
                        &[E::NOT_COORDINATOR, E::COORDINATOR_LOAD_IN_PROGRESS],
                    );
                    "OffsetCommit errors".into()
                }
                3 => {
                    mock.lock()
                        .unwrap()
                        .push_request_errors(ApiKey::Heartbeat, &[E::REBALANCE_IN_PROGRESS]);
                    "a rebalance (Heartbeat REBALANCE_IN_PROGRESS)".into()
                }
                4 => {
                    let to = rng.below(3) as i32 + 1;
                    let mut mock = mock.lock().unwrap();
                    mock.set_group_coordinator(&config.consumer_group, to);
                    mock.push_request_errors(ApiKey::Heartbeat, &[E::NOT_COORDINATOR]);
                    format!("the coordinator moved to broker {to}")
                }
                5 => {
                    let shift = rng.below(3) as i32;
                    let mut mock = mock.lock().unwrap();
                    for p in 0..PARTITIONS {
                        mock.set_leader(&config.topic(), p, (p + shift) % 3 + 1);
                    }
                    "every leader moved".into()
                }
                6 => {
                    let mut mock = mock.lock().unwrap();
                    mock.push_disconnect(ApiKey::Fetch);
                    mock.push_disconnect(ApiKey::Produce);
                    "dropped connections".into()
                }
                _ => {
                    mock.lock()
                        .unwrap()
                        .set_round_trip_time(Duration::from_millis(300));
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    mock.lock().unwrap().set_round_trip_time(Duration::ZERO);
                    "slow answers for 2 s".into()
                }
            },
            Brokers::Kafka(cluster) => {
                let node = rng.below(3) as i32 + 1;
                let which = rng.below(3);
                let cluster = cluster.clone();
                let on = move |f: Box<dyn FnOnce(&mut KafkaCluster) + Send>| {
                    let cluster = cluster.clone();
                    tokio::task::spawn_blocking(move || f(&mut cluster.lock().unwrap()))
                };
                match which {
                    0 => {
                        on(Box::new(move |c| c.node(node).pause())).await.unwrap();
                        tokio::time::sleep(Duration::from_secs(6)).await;
                        on(Box::new(move |c| c.node(node).resume())).await.unwrap();
                        format!("node {node} paused for 6 s")
                    }
                    1 => {
                        on(Box::new(move |c| c.node(node).kill())).await.unwrap();
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        on(Box::new(move |c| c.node(node).restart())).await.unwrap();
                        format!("node {node} killed, restarted 5 s later")
                    }
                    _ => {
                        on(Box::new(|c| {
                            c.elect_preferred_leaders();
                        }))
                        .await
                        .unwrap();
                        "preferred leaders elected".into()
                    }
                }
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let broker = args.first().map_or("mock", String::as_str).to_string();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(120);
    let rate: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1
    });
    println!("soak: {broker}, {seconds} s, {rate} events/s, seed {seed}");
    if let Ok(filter) = std::env::var("KBUS_SOAK_LOG") {
        // A log of the client and the bus (for example `debug`), to see what a fault did.
        let level = filter.parse().unwrap_or(tracing::Level::DEBUG);
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .init();
    }

    let mut config = KafkaEventBusConfig {
        topic_prefix: format!("soak-{}", std::process::id()),
        consumer_group: format!("soak-{}-group", std::process::id()),
        session_timeout_ms: 10_000,
        heartbeat_interval_ms: 500,
        commit_interval_ms: 200,
        topic_partitions: PARTITIONS,
        max_retries: 1000,
        retry_base_delay: 0.05,
        retry_max_delay: 1.0,
        shutdown_timeout: 15.0,
        ..Default::default()
    };
    for (k, v) in [
        ("enable.idempotence", "true"),
        ("request.timeout.ms", "4000"),
        ("delivery.timeout.ms", "120000"),
    ] {
        config.properties.insert(k.into(), v.into());
    }
    let brokers = match broker.as_str() {
        "mock" => {
            // In a process of its own, so this one's memory is the client's alone (the mock keeps
            // every record it is sent in memory).
            let mut mock = MockClusterProcess::spawn_for_groups(
                3,
                &[
                    MockTopic::new(config.topic(), PARTITIONS, 3),
                    MockTopic::new(config.dlq_topic(), PARTITIONS, 3),
                ],
            );
            mock.set_group_coordinator(&config.consumer_group, 3);
            Brokers::Mock(Mutex::new(mock))
        }
        "kafka" => {
            config.topic_replication_factor = 3;
            let cluster = tokio::task::spawn_blocking(|| Kafka::builder().start_cluster(3))
                .await
                .unwrap();
            Brokers::Kafka(Arc::new(Mutex::new(cluster)))
        }
        other => {
            eprintln!("soak: unknown broker {other:?} (mock or kafka)");
            std::process::exit(2);
        }
    };
    config.bootstrap_servers = brokers.bootstrap();

    let bus = KafkaEventBus::connect(config.clone())
        .await
        .expect("connecting the bus");
    let tally = Arc::new(Mutex::new(Tally::default()));
    {
        let tally = tally.clone();
        bus.subscribe(move |e: Arc<Envelope<Beat>>| {
            tally.lock().unwrap().handled(e.event.seq);
            async { Ok(()) }
        });
    }
    bus.start().await.expect("starting the member");

    // Faults, one at a time, at random intervals of 2-6 s (mock) or 8-16 s (Kafka).
    let stop_faults = Arc::new(tokio::sync::Notify::new());
    let faults = {
        let stop = stop_faults.clone();
        let config = config.clone();
        let mut rng = Rng(seed);
        let brokers = Arc::new(brokers);
        let kept = brokers.clone();
        let task = tokio::spawn(async move {
            let mut injected = Vec::new();
            loop {
                let wait = match &*brokers {
                    Brokers::Mock(_) => 2 + rng.below(5),
                    Brokers::Kafka(_) => 8 + rng.below(9),
                };
                tokio::select! {
                    _ = stop.notified() => break,
                    _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
                }
                let what = brokers.fault(&mut rng, &config).await;
                println!("fault: {what}");
                injected.push(what);
            }
            injected
        });
        (task, kept)
    };

    let aggregates: Vec<Uuid> = (0..AGGREGATES).map(|_| new_uuid()).collect();
    let mut versions = vec![0u64; AGGREGATES];
    let published = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut rss: Vec<(f64, u64)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let per_tick = (rate / 10).max(1);
    let mut next_report = Duration::from_secs(5);
    let mut seq = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let batch: Vec<Envelope<Beat>> = (0..per_tick)
            .map(|_| {
                let a = (seq as usize * 7919) % AGGREGATES;
                versions[a] += 1;
                let e = Envelope::new(aggregates[a], versions[a], Beat { seq });
                seq += 1;
                e
            })
            .collect();
        let n = batch.len() as u64;
        bus.publish_background(batch)
            .await
            .expect("queueing a background publish");
        published.fetch_add(n, Ordering::Relaxed);
        rss.push((started.elapsed().as_secs_f64(), rss_kib()));
        if started.elapsed() >= next_report {
            next_report += Duration::from_secs(5);
            report(started, &published, &tally, &bus);
        }
    }
    stop_faults.notify_one();
    let (faults, brokers) = faults;
    let injected = faults.await.unwrap();

    // Drain: everything published is acknowledged and handled.
    let total = published.load(Ordering::Relaxed);
    let drained = Instant::now();
    while tally.lock().unwrap().handled < total && drained.elapsed() < DRAIN {
        tokio::time::sleep(Duration::from_millis(200)).await;
        rss.push((started.elapsed().as_secs_f64(), rss_kib()));
    }
    report(started, &published, &tally, &bus);
    let stats = bus.stats();
    if let Err(e) = bus.shutdown(Duration::from_secs(30)).await {
        println!("shutdown: {e}");
    }

    // The brokers go only now (a mock cluster stops when dropped).
    drop(brokers);
    let tally = tally.lock().unwrap();
    let missing = tally.missing(total);
    let half = rss.len() / 2;
    let peak = |s: &[(f64, u64)]| s.iter().map(|(_, r)| *r).max().unwrap_or(0);
    // The first tenth is start-up (connections, buffers filling): left out of the comparison.
    let (first, second) = (peak(&rss[rss.len() / 10..half]), peak(&rss[half..]));
    let flat = second <= first + first / 4 + 16 * 1024;
    println!(
        "{{\"broker\":\"{broker}\",\"seconds\":{seconds},\"seed\":{seed},\"faults\":{},\"published\":{total},\"handled\":{},\"duplicates\":{},\"lost\":{},\"rebalances\":{},\"rss_peak_first_half_kib\":{first},\"rss_peak_second_half_kib\":{second},\"memory_flat\":{flat}}}",
        injected.len(),
        tally.handled,
        tally.duplicates,
        missing.len(),
        stats.rebalance_count,
    );
    if !missing.is_empty() {
        println!(
            "soak: LOST {} events, the first: {:?}",
            missing.len(),
            &missing[..missing.len().min(20)]
        );
    }
    if !flat {
        println!(
            "soak: memory grew: peak {first} KiB in the first half, {second} KiB in the second"
        );
    }
    std::process::exit(if missing.is_empty() && flat { 0 } else { 1 });
}

fn report(started: Instant, published: &AtomicU64, tally: &Mutex<Tally>, bus: &KafkaEventBus) {
    let published = published.load(Ordering::Relaxed);
    let (handled, duplicates) = {
        let t = tally.lock().unwrap();
        (t.handled, t.duplicates)
    };
    let stats = bus.stats();
    println!(
        "{:>6.1} s  published {published:>8}  acknowledged {:>8}  handled {handled:>8}  duplicates {duplicates:>6}  pending {:>6}  rebalances {}  rss {} MiB",
        started.elapsed().as_secs_f64(),
        stats.events_published,
        published.saturating_sub(handled),
        stats.rebalance_count,
        rss_kib() / 1024,
    );
}
