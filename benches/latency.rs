//! End-to-end latency at a fixed rate: kbus next to librdkafka (the `rdkafka` crate) and the Java
//! client, on one Apache Kafka node (and, on request, librdkafka's mock cluster, without Java).
//!
//! ```sh
//! cargo bench --bench latency
//! KBUS_LATENCY_RATE=20000 KBUS_LATENCY_SECONDS=20 cargo bench --bench latency
//! ```
//!
//! Every client runs `KBUS_LATENCY_ROUNDS` times (3; a fresh topic each, the clients taking
//! turns, each round started by the next client), as one run's median moves by half a
//! millisecond; the record takes the medians. On Kafka every client first runs 3 seconds
//! unrecorded: a fresh broker is slower until its JIT has compiled the paths the clients use.
//!
//! For each client in turn, one producer and one consumer of that client run side by side in a
//! process of their own (this bench run again with `KBUS_LATENCY_CHILD`, or a JVM), on a fresh
//! topic of 6 partitions: the producer sends `KBUS_LATENCY_RATE` records per
//! second (default 10,000), a slice every millisecond, for `KBUS_LATENCY_SECONDS` (default 10)
//! after one second of warm-up; each value (100 bytes) starts with the moment it was handed to
//! the producer, and the consumer (manual assignment of every partition from offset 0) takes the
//! time it saw the record. The latency of a record is the difference: batching (`linger.ms=5`),
//! the produce round trip with `acks=all`, the broker, the fetch (`fetch.max.wait.ms=500`, min
//! bytes 1) and decoding. Both clients get the same settings; librdkafka also gets
//! `partitioner=murmur2_random` (Java's placement). The Java client runs the same plan in a JVM of
//! its own (`benches/java/LatencyProbe.java`, a single-file program run with the Kafka release's
//! jars, 512 MiB heap, G1) and prints its samples. Reported: p50, p99, p99.9 and max per client,
//! and kbus's p50 and p99 against each peer's (peer ÷ kbus: above 1, kbus is quicker); and each
//! client's memory: the peak resident set (`VmHWM`) of its process at the end of the run, the
//! producer and consumer together (peer ÷ kbus: above 1, kbus needs less).
//! `KBUS_LATENCY_ONLY` picks the brokers: `kafka` (the default), `mock` or `all`. The mock is
//! left out by default: it answers a fetch only once `fetch.max.wait.ms` has passed, even when
//! records arrive meanwhile, so every client's latency there is that wait (250 ms at the median
//! for both with 500 ms). `KBUS_BENCH_RESULTS` appends the comparisons to the benchmark record.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kbus::admin::{Admin, NewTopic};
use kbus::consumer::{Consumer, Event};
use kbus::producer::{Producer, ProducerRecord};
use kbus::TopicPartition;
use kbus_testkit::kafka::{JavaTool, Kafka, KafkaVersion};
use kbus_testkit::mock_process::{MockClusterProcess, MockTopic};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::{Offset, TopicPartitionList};

#[path = "common/record.rs"]
mod record;

const PARTITIONS: i32 = 6;
const VALUE_SIZE: usize = 100;
const WARM_UP: Duration = Duration::from_secs(1);

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The settings both clients get (Java names).
fn settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("acks", "all"),
        ("linger.ms", "5"),
        ("enable.idempotence", "false"),
        ("fetch.max.wait.ms", "500"),
        ("fetch.min.bytes", "1"),
    ]
}

/// A value carrying `sent`, nanoseconds since the run's epoch, padded to `VALUE_SIZE`.
fn value(sent: u64) -> Vec<u8> {
    let mut v = sent.to_be_bytes().to_vec();
    v.resize(VALUE_SIZE, b'x');
    v
}

fn sent_of(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.get(..8)?.try_into().ok()?))
}

/// Latencies in nanoseconds, of the records sent after the warm-up.
#[derive(Default)]
struct Latencies {
    samples: Vec<u64>,
    seen: u64,
}

impl Latencies {
    fn add(&mut self, epoch: Instant, value: Option<&[u8]>) {
        self.seen += 1;
        let Some(sent) = value.and_then(sent_of) else {
            return;
        };
        let now = epoch.elapsed().as_nanos() as u64;
        if sent >= WARM_UP.as_nanos() as u64 {
            self.samples.push(now.saturating_sub(sent));
        }
    }

    fn percentile(&self, sorted: &[u64], p: f64) -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i] as f64 / 1e6
    }

    /// p50, p99, p99.9 and max, in milliseconds.
    fn summary(&self) -> [f64; 4] {
        let mut s = self.samples.clone();
        s.sort_unstable();
        [
            self.percentile(&s, 0.50),
            self.percentile(&s, 0.99),
            self.percentile(&s, 0.999),
            self.percentile(&s, 1.0),
        ]
    }
}

struct Plan {
    bootstrap: String,
    topic: String,
    rate: u64,
    seconds: u64,
}

impl Plan {
    fn total(&self) -> u64 {
        self.rate * (WARM_UP.as_secs() + self.seconds)
    }
}

/// Sends `plan.total()` records at the plan's rate, a slice per millisecond, calling `send` for
/// each with its value; returns when all were handed over.
fn pace(plan: &Plan, epoch: Instant, mut send: impl FnMut(Vec<u8>)) {
    let total = plan.total();
    let mut sent = 0u64;
    let start = Instant::now();
    while sent < total {
        let due = (start.elapsed().as_secs_f64() * plan.rate as f64) as u64;
        while sent < due.min(total) {
            send(value(epoch.elapsed().as_nanos() as u64));
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

async fn kbus_run(plan: &Plan) -> Result<Latencies, String> {
    let mut properties = vec![("bootstrap.servers", plan.bootstrap.as_str())];
    properties.extend(settings());
    let producer = Producer::from_properties(properties.clone())
        .await
        .map_err(|e| format!("producer: {e}"))?;
    producer
        .cluster()
        .metadata_for(&[&plan.topic])
        .await
        .map_err(|e| format!("metadata: {e}"))?;
    let mut consumer = Consumer::from_properties(properties)
        .await
        .map_err(|e| format!("consumer: {e}"))?;
    let partitions: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(plan.topic.as_str(), p))
        .collect();
    consumer
        .assign(partitions.iter().cloned())
        .map_err(|e| format!("assign: {e}"))?;
    for tp in &partitions {
        consumer.seek(tp, 0).map_err(|e| format!("seek: {e}"))?;
    }
    let epoch = Instant::now();
    let total = plan.total();
    let reader = tokio::spawn(async move {
        let mut latencies = Latencies::default();
        while latencies.seen < total {
            match tokio::time::timeout(Duration::from_secs(30), consumer.poll()).await {
                Ok(Ok(Event::Records(batch))) => {
                    for r in &batch.records {
                        latencies.add(epoch, r.value.as_deref());
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("poll: {e}")),
                Err(_) => return Err(format!("nothing for 30 s after {}", latencies.seen)),
            }
        }
        Ok(latencies)
    });
    // The pacing loop sleeps: it runs on a thread of its own and hands each value to one sending
    // task, which sends in order (`send` waits only while the buffer is full).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let sender = {
        let (producer, topic) = (producer.clone(), plan.topic.clone());
        tokio::spawn(async move {
            // Acknowledgements are awaited as they come, by a task of their own (as librdkafka's
            // run polls its delivery reports), not kept to the end: the client's memory is
            // measured.
            let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel();
            let confirmer = tokio::spawn(async move {
                while let Some(delivery) = acked.recv().await {
                    let delivery: kbus::producer::DeliveryFuture = delivery;
                    delivery.await.map_err(|e| format!("delivery: {e}"))?;
                }
                Ok::<(), String>(())
            });
            let mut n = 0u64;
            while let Some(v) = rx.recv().await {
                // The same keys as librdkafka's run: records spread over every partition.
                let record = ProducerRecord::new(topic.as_str())
                    .key(n.to_string())
                    .value(Bytes::from(v));
                n += 1;
                let delivery = producer
                    .send(record)
                    .await
                    .map_err(|e| format!("send: {e}"))?;
                let _ = acks.send(delivery);
            }
            drop(acks);
            confirmer.await.map_err(|e| format!("confirmer: {e}"))?
        })
    };
    let paced = Plan {
        bootstrap: plan.bootstrap.clone(),
        topic: plan.topic.clone(),
        rate: plan.rate,
        seconds: plan.seconds,
    };
    tokio::task::spawn_blocking(move || {
        pace(&paced, epoch, |v| {
            let _ = tx.send(v);
        })
    })
    .await
    .map_err(|e| format!("pacing: {e}"))?;
    sender.await.map_err(|e| format!("sender: {e}"))??;
    let latencies = reader.await.map_err(|e| format!("reader: {e}"))??;
    producer.close().await.map_err(|e| format!("close: {e}"))?;
    Ok(latencies)
}

fn rdkafka_run(plan: &Plan) -> Result<Latencies, String> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &plan.bootstrap);
    for (k, v) in settings() {
        match k {
            "fetch.max.wait.ms" => config.set("fetch.wait.max.ms", v),
            "fetch.min.bytes" => config.set(k, v),
            _ => config.set(k, v),
        };
    }
    config.set("partitioner", "murmur2_random");
    let producer: BaseProducer = config.create().map_err(|e| format!("producer: {e}"))?;
    let mut consumer_config = config.clone();
    consumer_config.set("group.id", format!("latency-{}", std::process::id()));
    let consumer: BaseConsumer = consumer_config
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    producer
        .client()
        .fetch_metadata(Some(&plan.topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata: {e}"))?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment
            .add_partition_offset(&plan.topic, p, Offset::Beginning)
            .map_err(|e| format!("assignment: {e}"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assign: {e}"))?;
    let epoch = Instant::now();
    let total = plan.total();
    let reader = std::thread::spawn(move || {
        let mut latencies = Latencies::default();
        let mut idle = Instant::now();
        while latencies.seen < total {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    latencies.add(epoch, m.payload());
                    idle = Instant::now();
                }
                Some(Err(e)) => return Err(format!("poll: {e}")),
                None if idle.elapsed() > Duration::from_secs(30) => {
                    return Err(format!("nothing for 30 s after {}", latencies.seen))
                }
                None => {}
            }
        }
        Ok(latencies)
    });
    let producer = Arc::new(Mutex::new(producer));
    let mut n = 0u64;
    pace(plan, epoch, |v| {
        let p = producer.lock().unwrap();
        let key = n.to_string();
        n += 1;
        let mut record = BaseRecord::<String, Vec<u8>>::to(&plan.topic)
            .key(&key)
            .payload(&v);
        loop {
            match p.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    p.poll(Duration::from_millis(1));
                    record = r;
                }
            }
        }
        p.poll(Duration::ZERO);
    });
    let p = producer.lock().unwrap();
    p.flush(Duration::from_secs(30))
        .map_err(|e| format!("flush: {e}"))?;
    drop(p);
    reader.join().map_err(|_| "reader panicked".to_string())?
}

/// The Java client's run: `LatencyProbe.java` in a JVM of its own, with the same plan and settings.
fn java_run(plan: &Plan) -> Result<Run, String> {
    let probe = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/java/LatencyProbe.java"
    );
    let mut args = vec![
        plan.bootstrap.clone(),
        plan.topic.clone(),
        plan.rate.to_string(),
        plan.seconds.to_string(),
        WARM_UP.as_secs().to_string(),
        PARTITIONS.to_string(),
        VALUE_SIZE.to_string(),
    ];
    args.extend(settings().into_iter().map(|(k, v)| format!("{k}={v}")));
    let timeout = Duration::from_secs(plan.seconds + WARM_UP.as_secs() + 120);
    let out = std::panic::catch_unwind(|| {
        JavaTool::new(KafkaVersion::Newest, probe)
            .jvm_options(&["-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"])
            .args(&args)
            .run(timeout)
    })
    .map_err(|_| "the JVM ran past its time".to_string())?;
    parse_run("Java", plan, out.success, &out.stdout, &out.stderr)
}

/// Reads what a client's process printed: `seen N`, `latency NANOS` lines, `peak_rss_kib N`, or
/// `error ...`.
fn parse_run(
    client: &str,
    plan: &Plan,
    success: bool,
    stdout: &str,
    stderr: &str,
) -> Result<Run, String> {
    let mut run = Run::default();
    for line in stdout.lines() {
        let number = |n: &str| n.parse::<u64>().map_err(|e| format!("{line:?}: {e}"));
        if let Some(n) = line.strip_prefix("seen ") {
            run.latencies.seen = number(n)?;
        } else if let Some(n) = line.strip_prefix("latency ") {
            run.latencies.samples.push(number(n)?);
        } else if let Some(n) = line.strip_prefix("peak_rss_kib ") {
            run.peak_rss_kib = Some(number(n)?).filter(|kib| *kib > 0);
        } else if let Some(e) = line.strip_prefix("error ") {
            return Err(format!("{client}: {e}"));
        }
    }
    if !success || run.latencies.seen < plan.total() {
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        return Err(format!(
            "{client} saw {} of {} records; it logged:\n{}",
            run.latencies.seen,
            plan.total(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    Ok(run)
}

/// One client's run: its latencies and its process's peak resident set.
#[derive(Default)]
struct Run {
    latencies: Latencies,
    peak_rss_kib: Option<u64>,
}

/// This process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs kbus's or librdkafka's side of `plan` in a process of its own (this bench, run again
/// with `KBUS_LATENCY_CHILD`), so that its peak memory is its own.
fn child_process_run(client: &str, plan: &Plan) -> Result<Run, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this bench's path: {e}"))?;
    let out = std::process::Command::new(exe)
        .arg("--bench")
        .env("KBUS_LATENCY_CHILD", client)
        .env("KBUS_LATENCY_BOOTSTRAP", &plan.bootstrap)
        .env("KBUS_LATENCY_TOPIC", &plan.topic)
        .env("KBUS_LATENCY_RATE", plan.rate.to_string())
        .env("KBUS_LATENCY_SECONDS", plan.seconds.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("starting the {client} run: {e}"))?;
    parse_run(
        client,
        plan,
        out.status.success(),
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
    )
}

/// The child's side: runs `client` on the plan its environment gives and prints its samples and
/// peak memory for [`parse_run`].
fn child_main(client: &str) {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let plan = Plan {
        bootstrap: var("KBUS_LATENCY_BOOTSTRAP"),
        topic: var("KBUS_LATENCY_TOPIC"),
        rate: env_number("KBUS_LATENCY_RATE", 10_000),
        seconds: env_number("KBUS_LATENCY_SECONDS", 10),
    };
    let result = match client {
        "kbus" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))
            .and_then(|runtime| runtime.block_on(kbus_run(&plan))),
        _ => rdkafka_run(&plan),
    };
    let mut out = String::new();
    match result {
        Ok(latencies) => {
            // Read before the output is put together.
            let peak = peak_rss_kib();
            out.push_str(&format!("seen {}\n", latencies.seen));
            for n in &latencies.samples {
                out.push_str(&format!("latency {n}\n"));
            }
            if let Some(kib) = peak {
                out.push_str(&format!("peak_rss_kib {kib}\n"));
            }
            print!("{out}");
        }
        Err(e) => {
            println!("error {e}");
            std::process::exit(1);
        }
    }
}

async fn create_topic(bootstrap: &str, topic: &str) {
    let admin = Admin::from_properties([("bootstrap.servers", bootstrap)])
        .await
        .unwrap();
    admin
        .create_topics(&[NewTopic::new(topic, PARTITIONS, -1)])
        .await
        .unwrap_or_else(|e| panic!("create {topic}: {e}"));
}

/// One client's figures in one run, or the medians of several runs.
#[derive(Clone, Copy)]
struct Figures {
    records: usize,
    /// p50, p99, p99.9 and max, in milliseconds.
    latency: [f64; 4],
    rss_mib: Option<f64>,
}

impl Figures {
    fn of(run: &Run) -> Figures {
        Figures {
            records: run.latencies.samples.len(),
            latency: run.latencies.summary(),
            rss_mib: run.peak_rss_kib.map(|k| k as f64 / 1024.0),
        }
    }

    /// The median of each figure over `runs` (not empty).
    fn median(runs: &[Figures]) -> Figures {
        let mid = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let rss: Vec<f64> = runs.iter().filter_map(|r| r.rss_mib).collect();
        Figures {
            records: runs.iter().map(|r| r.records).sum::<usize>() / runs.len(),
            latency: std::array::from_fn(|i| mid(runs.iter().map(|r| r.latency[i]).collect())),
            rss_mib: (!rss.is_empty()).then(|| mid(rss)),
        }
    }
}

fn print_table(title: &str, rows: &[(String, Result<Figures, String>)]) {
    println!();
    println!("{title}");
    println!("| client | records | p50 ms | p99 ms | p99.9 ms | max ms | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, r) in rows {
        match r {
            Ok(f) => {
                let [p50, p99, p999, max] = f.latency;
                println!(
                    "| {name} | {} | {p50:.2} | {p99:.2} | {p999:.2} | {max:.2} | {} |",
                    f.records,
                    f.rss_mib.map_or("?".into(), |m| format!("{m:.1}"))
                );
            }
            Err(e) => println!("| {name} | failed: {e} | | | | | |"),
        }
    }
}

/// Records each peer's p50, p99 and peak memory against kbus's (`rows[0]`).
fn record_rows(broker: &str, rate: u64, rows: &[(String, Result<Figures, String>)]) {
    let Some((_, Ok(kbus))) = rows.first() else {
        return;
    };
    for (name, r) in &rows[1..] {
        let Ok(peer) = r else { continue };
        if let (Some(k), Some(p)) = (kbus.rss_mib, peer.rss_mib) {
            record::record(record::Row {
                group: &format!("client memory on {broker} at {rate}/s"),
                row: "peak RSS, producer + consumer process",
                peer: name,
                ratio: p / k,
                kbus: k,
                peer_value: p,
                unit: "MiB (ratio: peer ÷ kbus)",
                command: "cargo bench --bench latency",
            });
        }
        for (i, label) in [(0, "p50"), (1, "p99")] {
            record::record(record::Row {
                group: &format!("end-to-end latency on {broker} at {rate}/s"),
                row: label,
                peer: name,
                ratio: peer.latency[i] / kbus.latency[i],
                kbus: kbus.latency[i],
                peer_value: peer.latency[i],
                unit: "ms (ratio: peer ÷ kbus)",
                command: "cargo bench --bench latency",
            });
        }
    }
}

/// The topic of `client`'s run in `round` (from 1): "Java 4.4.0" runs on "latency-java-PID-1".
/// How long each client's unrecorded warm-up run on a fresh Kafka lasts.
const WARM_UP_SECONDS: u64 = 3;

/// The topic of `client`'s run in `round` (round 0: its warm-up run).
fn topic_of(client: &str, round: u64) -> String {
    format!(
        "latency-{}-{}-{round}",
        client.split(' ').next().unwrap_or(client).to_lowercase(),
        std::process::id()
    )
}

fn run_broker(
    broker: &str,
    bootstrap: &str,
    rate: u64,
    seconds: u64,
    rounds: u64,
    runtime: &tokio::runtime::Runtime,
) {
    let java = format!("Java {}", KafkaVersion::Newest.number());
    let mut clients = vec!["kbus", "librdkafka"];
    if !broker.contains("mock") {
        clients.push(&java);
    }
    let title = format!(
        "end-to-end latency on {broker}, {rate} records/s, 100 B values, acks=all, linger.ms=5"
    );
    let run = |client: &str, round: u64, seconds: u64| {
        let plan = Plan {
            bootstrap: bootstrap.to_owned(),
            topic: topic_of(client, round),
            rate,
            seconds,
        };
        if !broker.contains("mock") {
            runtime.block_on(create_topic(bootstrap, &plan.topic));
        }
        match client {
            "kbus" | "librdkafka" => child_process_run(client, &plan),
            _ => java_run(&plan),
        }
        .map(|run| Figures::of(&run))
    };
    // A fresh Kafka is slower for its first minute (its JIT compiles as it goes): whichever client
    // ran first was measured on a colder broker, round after round. So every client first runs
    // once unrecorded, and each round starts with the next client.
    if !broker.contains("mock") {
        for client in &clients {
            if let Err(e) = run(client, 0, WARM_UP_SECONDS) {
                eprintln!("warm-up run of {client} failed: {e}");
            }
        }
    }
    let mut all: Vec<Vec<Result<Figures, String>>> = vec![Vec::new(); clients.len()];
    for round in 1..=rounds {
        let first = (round - 1) as usize % clients.len();
        for k in 0..clients.len() {
            let i = (first + k) % clients.len();
            all[i].push(run(clients[i], round, seconds));
        }
        let rows: Vec<(String, Result<Figures, String>)> = clients
            .iter()
            .zip(&all)
            .map(|(client, results)| (client.to_string(), results[results.len() - 1].clone()))
            .collect();
        print_table(&format!("{title} (round {round} of {rounds})"), &rows);
    }
    // The medians over the rounds; a client that failed in any round shows its first failure.
    let medians: Vec<(String, Result<Figures, String>)> = clients
        .iter()
        .zip(all)
        .map(|(client, results)| {
            let figures: Result<Vec<Figures>, String> = results.into_iter().collect();
            (client.to_string(), figures.map(|f| Figures::median(&f)))
        })
        .collect();
    if rounds > 1 {
        print_table(&format!("{title}, median of {rounds} rounds"), &medians);
    }
    record_rows(broker, rate, &medians);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it without: compile only then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if let Ok(client) = std::env::var("KBUS_LATENCY_CHILD") {
        child_main(&client);
        return;
    }
    let rate = env_number("KBUS_LATENCY_RATE", 10_000);
    let seconds = env_number("KBUS_LATENCY_SECONDS", 10);
    let rounds = env_number("KBUS_LATENCY_ROUNDS", 3).max(1);
    // The mock answers a fetch only when fetch.max.wait.ms has passed, even when records arrive
    // meanwhile (Kafka answers at once): its latencies are its wait, so it runs only on request.
    let only = std::env::var("KBUS_LATENCY_ONLY").unwrap_or_else(|_| "kafka".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if only == "all" || only == "mock" {
        let topics: Vec<MockTopic> = ["kbus", "librdkafka"]
            .iter()
            .flat_map(|c| (1..=rounds).map(|r| MockTopic::new(topic_of(c, r), PARTITIONS, 3)))
            .collect();
        let mock = MockClusterProcess::spawn_topics(3, &topics);
        run_broker(
            "librdkafka's mock cluster",
            mock.bootstrap(),
            rate,
            seconds,
            rounds,
            &runtime,
        );
    }
    if only == "all" || only == "kafka" {
        let kafka = Kafka::builder().start();
        run_broker(
            "Apache Kafka",
            &kafka.bootstrap(),
            rate,
            seconds,
            rounds,
            &runtime,
        );
    }
}
