//! The Apache Kafka scenarios (`producer-kafka`, `producer-kafka-gzip`, `consumer-kafka`): one
//! KRaft node of the newest release (`kbus_testkit::kafka::Kafka`) shared by all three, and the
//! Java client as a third peer through Kafka's own performance tools, each run in a JVM of its
//! own (`kbus_testkit::kafka::JavaTool`).
//!
//! A Java tool's run cannot be timed from here the way the in-process clients are: the JVM starts,
//! loads classes and creates its client before the part that matters, and its CPU time can only
//! be read as a whole. So:
//! - records/s is the tool's own figure: ProducerPerformance times from before its first send
//!   (after the producer is created; the first send waits for the topic's metadata) until
//!   `close()` has returned (every record acknowledged); ConsumerPerformance's `fetch.nMsg.sec`
//!   times from its first `poll` to the last record, minus the group join (`rebalance.time.ms`).
//!   ProducerPerformance also reports, with `--warmup-records` (a tenth of the records), the
//!   "steady state" rate of the rest, which leaves out the wait for metadata and most of the JIT's
//!   work: the table under the Kafka table shows it and kbus's ratio to it.
//! - The JVM's CPU time (user + system of all its threads: main, the client's I/O thread, the JIT
//!   compilers, the garbage collector) is this process's `cutime + cstime` (`/proc/self/stat`)
//!   after the JVM has exited and been reaped, minus before: the kernel adds a child's CPU time
//!   there when it is reaped, and no other child exits meanwhile (the tool's watchdog shell,
//!   which does nothing, adds about a millisecond). Clock ticks: 10 ms.
//! - Every measured Java run is paired with a 1-record run of the same tool (a fresh topic for
//!   the producer, a fresh group for the consumer). The table's CPU columns for Java are the
//!   differences (JVM CPU and broker CPU of the N-record run minus those of the 1-record run)
//!   per record: what the N records cost over starting a JVM, loading the classes and creating
//!   the client. JIT compilation of the hot paths stays in (it is what these records cost in a
//!   fresh JVM). A table under each Kafka table gives both runs' wall, JVM CPU and broker CPU.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use kbus_testkit::kafka::{JavaOutput, JavaTool, Kafka, KafkaVersion};

use super::*;

/// The broker's JVM flags: those `bin/kafka-server-start.sh` and `bin/kafka-run-class.sh` use
/// (1 GiB heap, G1), not the testkit's small serial-GC test broker.
const BROKER_JVM: [&str; 9] = [
    "-Xms1g",
    "-Xmx1g",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
];

/// The tools' JVM flags: those of `bin/kafka-producer-perf-test.sh` and
/// `bin/kafka-consumer-perf-test.sh` (512 MiB heap) with `kafka-run-class.sh`'s (G1), and English
/// number formatting, for reading their output.
const TOOL_JVM: [&str; 10] = [
    "-Xmx512m",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
    "-Duser.language=en",
    "-Duser.country=US",
];

const PRODUCER_PERFORMANCE: &str = "org.apache.kafka.tools.ProducerPerformance";
const CONSUMER_PERFORMANCE: &str = "org.apache.kafka.tools.ConsumerPerformance";

/// A JVM run, measured from outside.
#[derive(Clone, Copy, Debug)]
pub struct JvmCost {
    /// From starting `java` until it had exited.
    pub wall: Duration,
    /// User + system time of all the JVM's threads, over its whole life.
    pub cpu: Duration,
    /// The broker's CPU time over the same wall time.
    pub broker_cpu: Duration,
}

/// What a Java row's [`Sample`] was derived from.
#[derive(Clone, Copy, Debug)]
pub struct JavaDetail {
    /// Records of the measured run.
    pub records: usize,
    /// Key and value bytes the tool sent or read (its producer's keys are shorter).
    pub bytes: usize,
    /// The measured run.
    pub run: JvmCost,
    /// The 1-record run.
    pub tiny: JvmCost,
    /// The tool's own timing of its measured part (see the module docs).
    pub tool_time: Duration,
    /// ProducerPerformance's "steady state" after its first tenth of the records
    /// (`--warmup-records`): records counted and their records/s, from the send of the first of
    /// them until `close()` returned. It leaves out the first send's wait for metadata and
    /// most of the JIT's work.
    pub steady: Option<(usize, f64)>,
    /// ConsumerPerformance's `rebalance.time.ms`: the group join, outside `tool_time`.
    pub rebalance: Option<Duration>,
}

impl JavaDetail {
    /// The JVM's CPU seconds of the measured run minus those of the 1-record run.
    pub fn cpu_difference(&self) -> f64 {
        self.run.cpu.as_secs_f64() - self.tiny.cpu.as_secs_f64()
    }

    /// The broker's CPU seconds during the measured run minus those during the 1-record run:
    /// negative when the broker's own background work (its GC, say) fell into the short run.
    pub fn broker_cpu_difference(&self) -> f64 {
        self.run.broker_cpu.as_secs_f64() - self.tiny.broker_cpu.as_secs_f64()
    }

    /// The row's sample: the tool's time; the CPU differences of the two runs (at least 0).
    fn sample(self) -> Sample {
        Sample {
            wall: self.tool_time.max(Duration::from_millis(1)),
            cpu: self.run.cpu.saturating_sub(self.tiny.cpu),
            broker_cpu: self.run.broker_cpu.saturating_sub(self.tiny.broker_cpu),
            peak_rss: None,
            java: Some(self),
        }
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panicked".to_owned())
}

/// Starts the Kafka node: PLAINTEXT, the newest release, the JVM flags of Kafka's scripts.
fn start_broker() -> Result<Kafka, String> {
    let started = Instant::now();
    // `KBUS_BENCH_KAFKA_JVM`: other flags (space-separated), to try another heap or collector.
    let flags: Vec<String> = match std::env::var("KBUS_BENCH_KAFKA_JVM") {
        Ok(flags) => flags.split_whitespace().map(str::to_owned).collect(),
        Err(_) => BROKER_JVM.map(str::to_owned).to_vec(),
    };
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let kafka = std::panic::catch_unwind(|| Kafka::builder().jvm_options(&flags).start())
        .map_err(panic_message)?;
    eprintln!(
        "[kafka] Apache Kafka {} pid {} at {}, started in {:.1?} with {}",
        KafkaVersion::Newest.number(),
        kafka.pid().unwrap_or(0),
        kafka.bootstrap(),
        started.elapsed(),
        flags.join(" ")
    );
    Ok(kafka)
}

// ---------------------------------------------------------------------------------------------
// The Java tools

/// CPU time of this process's reaped children (`cutime + cstime` of `/proc/self/stat`).
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    let rest = &stat[stat.rfind(')').expect("a /proc stat line") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // State is field 3; cutime is field 16, cstime 17.
    let ticks: u64 =
        fields[13].parse::<u64>().expect("cutime") + fields[14].parse::<u64>().expect("cstime");
    Duration::from_nanos(ticks * 1_000_000_000 / clock_ticks())
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `class` with `args` to completion, measuring its JVM (see the module docs).
fn run_tool(
    class: &str,
    args: &[String],
    broker_pid: u32,
    timeout: Duration,
) -> Result<(JvmCost, JavaOutput), String> {
    let name = class.rsplit('.').next().unwrap_or(class);
    let tool = JavaTool::new(KafkaVersion::Newest, class)
        .jvm_options(&TOOL_JVM)
        .args(args);
    let broker = broker_pid.to_string();
    let children = children_cpu();
    let broker_before = cpu_time(&broker);
    let started = Instant::now();
    let out = std::panic::catch_unwind(AssertUnwindSafe(|| tool.run(timeout)))
        .map_err(|p| format!("{name}: {}", panic_message(p)))?;
    let wall = started.elapsed();
    let broker_cpu = cpu_between(broker_before, cpu_time(&broker));
    let cpu = children_cpu().saturating_sub(children);
    if !out.success {
        return Err(format!(
            "{name} failed; it printed:\n{}\nand logged:\n{}",
            last_lines(&out.stdout, 20),
            last_lines(&out.stderr, 20)
        ));
    }
    Ok((
        JvmCost {
            wall,
            cpu,
            broker_cpu,
        },
        out,
    ))
}

/// The values, one a line, for ProducerPerformance's `--payload-file`; removed when dropped.
struct PayloadFile(PathBuf);

impl PayloadFile {
    fn write(input: &Input) -> Result<PayloadFile, String> {
        let path =
            std::env::temp_dir().join(format!("kbus-bench-values-{}.txt", std::process::id()));
        let mut text = Vec::with_capacity(DISTINCT_VALUES * (value_size() + 1));
        for i in 0..DISTINCT_VALUES {
            let v = input.value(i);
            assert!(
                v.is_ascii() && !v.contains(&b'\n'),
                "values must be one-line ASCII"
            );
            text.extend_from_slice(v);
            text.push(b'\n');
        }
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok(PayloadFile(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PayloadFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Distinct keys of the Java producer (`--record-key-range`): the same count as the others'.
const JAVA_KEY_RANGE: usize = DISTINCT_KEYS;

/// Key and value bytes of ProducerPerformance's first `records` records with
/// `--key-distribution range`: key `i % range` as decimal text, 100-byte values.
fn java_producer_bytes(records: usize) -> usize {
    let digits = |k: usize| k.checked_ilog10().unwrap_or(0) as usize + 1;
    (0..records)
        .map(|i| digits(i % JAVA_KEY_RANGE) + value_size())
        .sum()
}

/// What a ProducerPerformance run printed: the tool's time of the whole run, and its "steady
/// state" figures (see [`JavaDetail::steady`]).
struct ProducerSummary {
    time: Duration,
    steady: Option<(usize, f64)>,
}

/// One ProducerPerformance run of `records` records to `run.topic`, with the settings every
/// client gets: its JVM's cost and what it printed.
fn producer_performance(
    run: &Run<'_>,
    records: usize,
    payload: &PayloadFile,
) -> Result<(JvmCost, ProducerSummary), String> {
    let warm_up = records / 10;
    let mut args: Vec<String> = [
        "--bootstrap-server",
        run.bootstrap,
        "--topic",
        &run.topic,
        "--num-records",
        &records.to_string(),
        "--payload-file",
        &payload.path().display().to_string(),
        "--key-distribution",
        "range",
        "--record-key-range",
        &JAVA_KEY_RANGE.to_string(),
        "--throughput",
        "-1",
        // No progress lines: one summary at the end.
        "--reporting-interval",
        "3600000",
    ]
    .map(str::to_owned)
    .to_vec();
    if warm_up > 0 {
        args.extend(["--warmup-records".to_owned(), warm_up.to_string()]);
    }
    args.push("--command-property".to_owned());
    args.extend(
        run.producer_properties()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}")),
    );
    let (cost, out) = run_tool(
        PRODUCER_PERFORMANCE,
        &args,
        run.broker_pid,
        run.timeout + Duration::from_secs(60),
    )?;
    // "Number of records read: 10007" (of the payload file).
    let read = format!(" read: {DISTINCT_VALUES}\n");
    if !out.stdout.contains(&read) {
        return Err(format!(
            "ProducerPerformance did not read the {DISTINCT_VALUES} values; it printed:\n{}",
            out.stdout
        ));
    }
    // "N records sent, R records/sec (M MB/sec), ... ms 99.9th." (the summary, after close()),
    // and "N steady state records sent, R records/sec ..." after it with --warmup-records.
    let summary = |steady: bool| {
        let line = out
            .lines()
            .into_iter()
            .rev()
            .find(|l| {
                l.contains(" records sent, ")
                    && l.contains("99.9th")
                    && l.contains(" steady state ") == steady
            })
            .ok_or_else(|| format!("no summary from ProducerPerformance:\n{}", out.stdout))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let skip = if steady { 2 } else { 0 };
        match (
            words[0].parse::<usize>(),
            words.get(3 + skip).map(|w| w.parse::<f64>()),
        ) {
            (Ok(sent), Some(Ok(rate))) => Ok((sent, rate)),
            _ => Err(format!("cannot read {line:?}")),
        }
    };
    let (sent, rate) = summary(false)?;
    let steady = if warm_up > 0 {
        Some(summary(true)?)
    } else {
        None
    };
    if sent != records {
        return Err(format!(
            "ProducerPerformance: {sent} of {records} records acknowledged; it logged:\n{}",
            last_lines(&out.stderr, 20)
        ));
    }
    // It prints 1000 * records / elapsed ms.
    let time = if rate.is_finite() && rate > 0.0 {
        Duration::from_millis((records as f64 * 1000.0 / rate).round() as u64)
    } else {
        Duration::ZERO
    };
    Ok((cost, ProducerSummary { time, steady }))
}

/// The Java producer's row: a 1-record run, then the measured run, each on a fresh topic whose
/// high watermarks must add up to what was sent.
fn java_producer<'a>(
    scenario: Scenario,
    round: usize,
    records: usize,
    run_on: &impl Fn(String) -> Run<'a>,
    payload: &PayloadFile,
) -> RunResult {
    let produce = |topic: String, records: usize| {
        let run = run_on(topic);
        topic_admin::create_topic(run.bootstrap, &run.topic, run.partitions)?;
        let result = producer_performance(&run, records, payload)?;
        topic_admin::check(run.bootstrap, &run.topic, run.partitions, records)?;
        Ok::<_, String>(result)
    };
    let name = scenario.name();
    let (tiny, _) = produce(format!("bench-{name}-java-1record-{}", round + 1), 1)?;
    let (run, summary) = produce(format!("bench-{name}-java-{}", round + 1), records)?;
    Ok(JavaDetail {
        records,
        bytes: java_producer_bytes(records),
        run,
        tiny,
        tool_time: summary.time,
        steady: summary.steady,
        rebalance: None,
    }
    .sample())
}

/// ConsumerPerformance's summary: records, bytes (keys and values), group join time, fetch time.
struct ConsumerSummary {
    records: usize,
    bytes: f64,
    rebalance: Duration,
    fetch: Duration,
}

/// One ConsumerPerformance run reading `records` records of `run.topic` in a fresh group.
fn consumer_performance(
    run: &Run<'_>,
    records: usize,
    group: &str,
) -> Result<(JvmCost, ConsumerSummary), String> {
    let args: Vec<String> = [
        "--bootstrap-server",
        run.bootstrap,
        "--topic",
        &run.topic,
        "--num-records",
        &records.to_string(),
        "--group",
        group,
        "--timeout",
        "30000",
        "--reporting-interval",
        "3600000",
        "--hide-header",
    ]
    .map(str::to_owned)
    .to_vec();
    let (cost, out) = run_tool(
        CONSUMER_PERFORMANCE,
        &args,
        run.broker_pid,
        run.timeout + Duration::from_secs(60),
    )?;
    // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
    // rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    let line = out
        .lines()
        .into_iter()
        .rev()
        .find(|l| l.split(", ").count() == 10)
        .ok_or_else(|| format!("no summary from ConsumerPerformance:\n{}", out.stdout))?;
    let fields: Vec<&str> = line.split(", ").collect();
    let bad = || format!("cannot read {line:?}");
    let number = |i: usize| fields[i].parse::<u64>().map_err(|_| bad());
    let summary = ConsumerSummary {
        records: number(4)? as usize,
        bytes: fields[2].parse::<f64>().map_err(|_| bad())? * 1024.0 * 1024.0,
        rebalance: Duration::from_millis(number(6)?),
        fetch: Duration::from_millis(number(7)?),
    };
    if out.stdout.contains("WARNING: Exiting before consuming") {
        return Err(format!(
            "ConsumerPerformance timed out after {} records",
            summary.records
        ));
    }
    Ok((cost, summary))
}

/// The Java consumer's row: a 1-record run, then the measured run, each in a group of its own;
/// the latter must read exactly the topic's records and bytes.
fn java_consumer(round: usize, run: &Run<'_>) -> RunResult {
    let group = |what: &str| format!("bench-java-{what}-{}-{}", std::process::id(), round + 1);
    let (tiny, _) = consumer_performance(run, 1, &group("1record"))?;
    let records = run.input.records;
    let (cost, summary) = consumer_performance(run, records, &group("all"))?;
    // It prints megabytes (2^20 bytes) with 4 decimals: ±53 bytes.
    let bytes = run.input.payload_bytes();
    if summary.records != records || (summary.bytes - bytes as f64).abs() > 100.0 {
        return Err(format!(
            "ConsumerPerformance read {} records / {:.0} bytes, expected {records} / {bytes}",
            summary.records, summary.bytes
        ));
    }
    Ok(JavaDetail {
        records,
        bytes,
        run: cost,
        tiny,
        tool_time: summary.fetch,
        steady: None,
        rebalance: Some(summary.rebalance),
    }
    .sample())
}

// ---------------------------------------------------------------------------------------------
// The scenarios

/// Before the first measured run, so that no client meets a broker whose JIT has not compiled
/// its produce and fetch paths yet (or that creates `__consumer_offsets` during a run). With
/// `W` = `KBUS_BENCH_KAFKA_WARM_UP`, kbus and librdkafka each produce `W/2` records uncompressed
/// and `W/8` with gzip, with the bench's settings (the traffic the runs will send), and librdkafka
/// reads back one uncompressed topic; then the group coordinator is started and the broker is let
/// go quiet (its compilers finish what was queued).
///
/// This does not make the broker reach its best speed: on 2 cores a fresh node kept getting
/// faster for about ten runs of 1,000,000 records (its user time per record falling by
/// two-thirds while C2 went on compiling its produce path: `KafkaApis.handleProduceRequest`,
/// `UnifiedLog.append`, `analyzeAndValidateRecords`, ...). A longer warm-up, and one with many
/// small requests, helped little for their cost. Hence the rotating client order and
/// `KBUS_BENCH_ROUNDS`.
fn warm_up(broker: &Kafka, opts: &Options, input: &Input) -> Result<(), String> {
    let started = Instant::now();
    let bootstrap = broker.bootstrap();
    let broker_pid = broker.pid().expect("the Kafka node runs");
    let broker_cpu = cpu_time(&broker_pid.to_string());
    let w = opts.kafka_warm_up;
    // Topic, producer, codec, records; the first one is read back.
    let phases = [
        ("bench-warm-up-rdkafka", Client::RdkafkaBase, "none", w / 2),
        ("bench-warm-up-kbus", Client::Kbus, "none", w / 2),
        (
            "bench-warm-up-rdkafka-gzip",
            Client::RdkafkaBase,
            "gzip",
            w / 8,
        ),
        ("bench-warm-up-kbus-gzip", Client::Kbus, "gzip", w / 8),
    ];
    for (i, (topic, client, codec, records)) in phases.into_iter().enumerate() {
        if records == 0 {
            continue;
        }
        let input = input.with_records(records);
        let run = Run {
            bootstrap: &bootstrap,
            broker_pid,
            topic: topic.to_owned(),
            partitions: opts.partitions,
            input: &input,
            codec,
            timeout: opts.timeout,
        };
        topic_admin::create_topic(&bootstrap, topic, run.partitions)
            .and_then(|()| run_producer(client, &run))
            .and_then(|_| match i {
                0 => rd::base_consumer(&run, topic).map(|_| ()),
                _ => Ok(()),
            })
            .map_err(|e| format!("warming up the broker ({topic}): {e}"))?;
    }
    topic_admin::start_group_coordinator(&bootstrap)
        .map_err(|e| format!("warming up the broker: {e}"))?;
    let quiet = crate::broker_quiet::wait_until_quiet(broker_pid);
    eprintln!(
        "[kafka] warmed up in {:.1?} (broker CPU {:.1?}; quiet after {quiet:.1?}): kbus and \
         librdkafka produced {} records each ({} with gzip), librdkafka read back its own",
        started.elapsed(),
        cpu_between(broker_cpu, cpu_time(&broker_pid.to_string())),
        w / 2,
        w / 8,
    );
    Ok(())
}

/// One Kafka scenario on the shared node in `broker` (started here by the first): every producer
/// run on a fresh topic created before the clock starts; the consumers all read one topic filled
/// beforehand by librdkafka.
pub fn scenario(
    scenario: Scenario,
    opts: &Options,
    input: &Input,
    broker: &mut Option<Result<Kafka, String>>,
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
    let broker = match broker
        .get_or_insert_with(|| start_broker().and_then(|b| warm_up(&b, opts, input).map(|()| b)))
    {
        Ok(broker) => broker,
        Err(why) => {
            for c in clients {
                results.insert(c, vec![Err(format!("Kafka broker: {why}"))]);
            }
            return results;
        }
    };
    let bootstrap = broker.bootstrap();
    let broker_pid = broker.pid().expect("the Kafka node runs");
    let consumer = scenario.is_consumer();
    let partitions = opts.partitions;
    let run_on = |topic: String| Run {
        bootstrap: &bootstrap,
        broker_pid,
        topic,
        partitions,
        input,
        codec: scenario.codec(),
        timeout: opts.timeout,
    };
    let consumer_topic = format!("bench-{}", scenario.name());
    if consumer {
        fill_consumer_topic(scenario, &run_on(consumer_topic.clone()), "Kafka");
    }
    let payload = match (consumer, clients.contains(&Client::Java)) {
        (false, true) => Some(PayloadFile::write(input)),
        _ => None,
    };
    for round in 0..opts.rounds {
        // The client measured first meets the least warmed-up broker (see `warm_up`): every
        // round starts with another one.
        for i in 0..clients.len() {
            let c = clients[(i + round) % clients.len()];
            let result = match c {
                Client::Java if consumer => java_consumer(round, &run_on(consumer_topic.clone())),
                Client::Java => match &payload {
                    Some(Ok(payload)) => {
                        java_producer(scenario, round, input.records, &run_on, payload)
                    }
                    Some(Err(e)) => Err(e.clone()),
                    None => unreachable!("written for the Java producer"),
                },
                _ if consumer => {
                    let group = format!("bench-kafka-{}-{}-{round}", c.name(), std::process::id());
                    run_consumer(c, &run_on(consumer_topic.clone()), &group)
                }
                _ => checked_producer_run(
                    c,
                    &run_on(format!(
                        "bench-{}-{}-{}",
                        scenario.name(),
                        c.name(),
                        round + 1
                    )),
                ),
            };
            report(scenario, c, round, input, &result);
            if let Ok(Sample { java: Some(j), .. }) = &result {
                eprintln!(
                    "[{}] {:<26} JVM of {} records: {:.1?} wall, {:.2?} CPU, broker {:.2?} CPU; \
                     JVM of 1 record: {:.1?} wall, {:.2?} CPU, broker {:.2?} CPU; tool's time {:.1?}",
                    scenario.name(),
                    "",
                    j.records,
                    j.run.wall,
                    j.run.cpu,
                    j.run.broker_cpu,
                    j.tiny.wall,
                    j.tiny.cpu,
                    j.tiny.broker_cpu,
                    j.tool_time
                );
            }
            results.entry(c).or_default().push(result);
        }
    }
    results
}

// ---------------------------------------------------------------------------------------------
// Tables

/// What a Kafka table's rows measured, printed above it.
pub fn print_notes(scenario: Scenario, opts: &Options) {
    let flags = match std::env::var("KBUS_BENCH_KAFKA_JVM") {
        Ok(flags) => format!("JVM flags {flags}"),
        Err(_) => "the JVM flags of kafka-server-start.sh: 1 GiB heap, G1".to_owned(),
    };
    println!(
        "On one Apache Kafka {} node (KRaft, broker and controller in one JVM, {flags}; {} \
         partitions, replication 1{}), warmed up with {} records beforehand. It still gets faster \
         over the first runs: the client order rotates from round to round ({} first in round 1; \
         {} round(s) here), and with 3 or more rounds the medians are fairer.",
        KafkaVersion::Newest.number(),
        opts.partitions,
        if scenario.is_consumer() {
            ""
        } else {
            ", a fresh topic per run"
        },
        opts.kafka_warm_up + opts.kafka_warm_up / 4,
        opts.clients
            .iter()
            .find(|c| c.runs_in(scenario))
            .map_or("—", |c| c.label(scenario)),
        opts.rounds,
    );
    if scenario.is_consumer() {
        println!(
            "Java: kafka-consumer-perf-test (ConsumerPerformance) in a JVM of its own (512 MiB \
             heap, G1). It subscribes in a consumer group where the others assign the \
             partitions, and it sets check.crcs=false itself. records/s is its fetch.nMsg.sec: \
             from its first poll to the last record, minus the group join."
        );
    } else {
        println!(
            "Java: kafka-producer-perf-test (ProducerPerformance) in a JVM of its own (512 MiB \
             heap, G1), same settings. Its keys are \"0\"..\"{}\" round-robin (--key-distribution \
             range; {:.2} bytes on average, it cannot send the 16-byte keys, so it sends ~10% \
             fewer bytes: its MB/s counts its own) and its values are drawn at random from the \
             same {DISTINCT_VALUES} (--payload-file). records/s is the tool's own for the whole \
             run: from before its first send (which waits for the topic's metadata, in a JVM \
             whose JIT has not compiled the client yet) until close() returned; the table after \
             this one also gives its \"steady state\" figure for the last 90%.",
            JAVA_KEY_RANGE - 1,
            (java_producer_bytes(JAVA_KEY_RANGE) - JAVA_KEY_RANGE * value_size()) as f64
                / JAVA_KEY_RANGE as f64
        );
    }
    println!(
        "Java's CPU columns: (CPU of the JVM, resp. of the broker, during the run) minus (the \
         same for a 1-record run of the tool), per record: the cost of the records beyond \
         starting the JVM and creating the client, JIT compilation included. The broker's \
         difference can come out negative when its own background work (GC) falls into the \
         short run. The table after this one gives both runs."
    );
}

/// Both Java runs behind a Java row, under the table; `kbus_rate` is kbus's records/s in the
/// same table.
pub fn print_java_details(
    scenario: Scenario,
    medians: &[(Client, RunResult)],
    kbus_rate: Option<f64>,
) {
    let Some(j) = medians
        .iter()
        .find_map(|(_, r)| r.as_ref().ok().and_then(|s| s.java))
    else {
        return;
    };
    let secs = |d: Duration| format!("{:.2}", d.as_secs_f64());
    let per_record = |s: f64| format!("{:.3}", s * 1e6 / j.records as f64);
    let tool = if scenario.is_consumer() {
        "ConsumerPerformance"
    } else {
        "ProducerPerformance"
    };
    println!();
    println!(
        "{tool} runs behind that row: JVM wall = from starting java until it exited; JVM CPU = \
         user + system time of all its threads (JIT compilers and GC included), read from this \
         process's cutime + cstime once it was reaped; broker CPU over the same wall time; the \
         tool's own time and records/s as it printed them{}.",
        if scenario.is_consumer() {
            " (fetch.time.ms, fetch.nMsg.sec: without the group join)"
        } else {
            " (the row above uses the whole run's)"
        }
    );
    println!(
        "| {tool} run | JVM wall s | JVM CPU s | broker CPU s | tool's own time s | tool's \
         records/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let rebalance = j
        .rebalance
        .map(|r| format!(" (+ {} group join)", secs(r)))
        .unwrap_or_default();
    println!(
        "| {} records | {} | {} | {} | {}{rebalance} | {:.0} |",
        j.records,
        secs(j.run.wall),
        secs(j.run.cpu),
        secs(j.run.broker_cpu),
        secs(j.tool_time),
        j.records as f64 / j.tool_time.as_secs_f64().max(1e-3),
    );
    if let Some((steady, rate)) = j.steady {
        let ratio = kbus_rate
            .map(|k| format!(" (kbus ÷ this: {:.2}x)", k / rate))
            .unwrap_or_default();
        println!(
            "| of which the last {steady} (\"steady state\", after --warmup-records {}) | | | | \
             {:.2} | {rate:.0}{ratio} |",
            j.records - steady,
            steady as f64 / rate,
        );
    }
    println!(
        "| 1 record | {} | {} | {} | | |",
        secs(j.tiny.wall),
        secs(j.tiny.cpu),
        secs(j.tiny.broker_cpu),
    );
    println!(
        "| difference | {:.2} | {:.2} | {:.2} | | |",
        j.run.wall.as_secs_f64() - j.tiny.wall.as_secs_f64(),
        j.cpu_difference(),
        j.broker_cpu_difference(),
    );
    println!(
        "| per record, µs: whole {}-record run / difference | | {} / {} | {} / {} | | |",
        j.records,
        per_record(j.run.cpu.as_secs_f64()),
        per_record(j.cpu_difference()),
        per_record(j.run.broker_cpu.as_secs_f64()),
        per_record(j.broker_cpu_difference()),
    );
}
