//! The librdkafka peer, through the `rdkafka` crate: `BaseProducer` / `FutureProducer` and
//! `BaseConsumer` / `StreamConsumer` runs with the bench's common settings, and the producer that
//! fills the consumer scenarios' topics.

use super::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{
    BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer, ProducerContext,
};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

fn config(properties: Vec<(&'static str, String)>) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (k, v) in properties {
        config.set(k, v);
    }
    config
}

/// The consumers' settings. `fetch.queue.backoff.ms` is lowered from its 1 s: these runs read a
/// backlog of a million records, and once librdkafka's local queue passes its thresholds it stops
/// fetching for that long, so a run measured the backoff more than the client (2026-12-07 on this
/// machine: 437,172 and 800,006 records/s in two rounds with the default, 2,660,527 and 2,768,965
/// with 10 ms; earlier records saw it as an occasional slow round). Its documentation suggests
/// lowering it in such cases; kbus's consumer resumes fetching as soon as `poll` drains.
fn consumer_config(run: &Run<'_>, group: &str) -> ClientConfig {
    let mut config = config(run.consumer_properties(group));
    config.set("fetch.queue.backoff.ms", "10");
    config
}

fn producer_config(run: &Run<'_>) -> ClientConfig {
    let mut config = config(run.producer_properties());
    config
        .set("partitioner", "murmur2_random")
        .set("batch.num.messages", "10000");
    config
}

/// Counts delivery reports.
#[derive(Default)]
pub struct Deliveries {
    ok: AtomicUsize,
    failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_error
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| e.to_string());
            }
        }
    }
}

impl Deliveries {
    /// Delivery reports served so far.
    fn settled(&self) -> usize {
        self.ok.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }

    fn check(&self, expected: usize) -> Result<(), String> {
        let (ok, failed) = (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        if ok == expected && failed == 0 {
            Ok(())
        } else {
            Err(format!(
                "{ok} of {expected} delivered, {failed} failed (first error: {:?})",
                self.first_error.lock().unwrap()
            ))
        }
    }
}

fn is_queue_full(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
    )
}

/// Waits 1 ms for delivery reports, then serves all that have arrived.
///
/// Not `poll(1 ms)`: rdkafka 0.39's `poll` polls until its deadline, passing the remaining
/// time to librdkafka rounded down to whole milliseconds, so `poll(1 ms)` never blocks but
/// spins for its millisecond (seen as the bench thread at 100% CPU while tansu was slow).
fn wait_for_reports(producer: &BaseProducer<Deliveries>) {
    std::thread::sleep(Duration::from_millis(1));
    loop {
        let before = producer.context().settled();
        producer.poll(Duration::ZERO);
        if producer.context().settled() == before {
            break;
        }
    }
}

/// `BaseProducer`, as librdkafka's examples drive it: `poll(0)` after every send (serving
/// delivery reports); while the queue is full, and at the end until nothing is in flight,
/// wait for reports in 1 ms steps (see [`wait_for_reports`]). (rdkafka's `flush` polls in
/// 100 ms steps, which would add up to 100 ms to the measured time.)
pub fn base_producer(run: &Run<'_>) -> RunResult {
    let producer: BaseProducer<Deliveries> = producer_config(run)
        .create_with_context(Deliveries::default())
        .map_err(|e| format!("create: {e}"))?;
    producer
        .client()
        .fetch_metadata(Some(&run.topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata: {e}"))?;
    let input = run.input;
    let sw = run.stopwatch();
    for i in 0..input.records {
        let mut record = BaseRecord::to(&run.topic)
            .key(input.key(i))
            .payload(input.value(i));
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) if is_queue_full(&e) => {
                    record = r;
                    wait_for_reports(&producer);
                }
                Err((e, _)) => return Err(format!("send: {e}")),
            }
        }
        producer.poll(Duration::ZERO);
    }
    let deadline = Instant::now() + run.timeout;
    while producer.in_flight_count() > 0 {
        if Instant::now() > deadline {
            return Err(format!(
                "{} records still in flight after {:?}",
                producer.in_flight_count(),
                run.timeout
            ));
        }
        wait_for_reports(&producer);
    }
    let sample = sw.stop();
    producer.context().check(input.records)?;
    Ok(sample)
}

/// `FutureProducer`: `send_result` with at most 100,000 delivery futures outstanding
/// (awaited through `FuturesUnordered`), then await the rest.
pub async fn future_producer(run: &Run<'_>) -> RunResult {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let producer: FutureProducer = producer_config(run)
        .create()
        .map_err(|e| format!("create: {e}"))?;
    producer
        .client()
        .fetch_metadata(Some(&run.topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata: {e}"))?;
    let input = run.input;
    let mut outstanding = FuturesUnordered::new();
    let mut failed = 0usize;
    let mut first_error = None;
    let mut settle = |done: Option<_>| match done {
        Some(Ok(Ok(_))) => {}
        Some(Ok(Err((e, _)))) => {
            failed += 1;
            first_error.get_or_insert_with(|| format!("{e}"));
        }
        Some(Err(_)) => {
            failed += 1;
            first_error.get_or_insert_with(|| "delivery future cancelled".to_owned());
        }
        None => {}
    };
    let sw = run.stopwatch();
    for i in 0..input.records {
        let mut record = FutureRecord::to(&run.topic)
            .key(input.key(i))
            .payload(input.value(i));
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    outstanding.push(delivery);
                    break;
                }
                Err((e, r)) if is_queue_full(&e) => {
                    record = r;
                    settle(outstanding.next().await);
                }
                Err((e, _)) => return Err(format!("send: {e}")),
            }
        }
        if outstanding.len() >= FUTURE_WINDOW {
            settle(outstanding.next().await);
        }
    }
    while let Some(done) = outstanding.next().await {
        settle(Some(done));
    }
    let sample = sw.stop();
    if failed > 0 {
        return Err(format!(
            "{failed} deliveries failed (first: {first_error:?})"
        ));
    }
    Ok(sample)
}

/// Produces the consumer scenario's records (uncompressed, the producer settings).
pub fn fill(run: &Run<'_>) -> Result<(), String> {
    base_producer(run).map(|_| ())
}

/// Low and high watermark of every partition.
pub fn watermarks(run: &Run<'_>) -> Result<Vec<(i64, i64)>, String> {
    let consumer: BaseConsumer = config(run.consumer_properties("bench-watermarks"))
        .create()
        .map_err(|e| format!("create: {e}"))?;
    (0..run.partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(&run.topic, p, Duration::from_secs(10))
                .map_err(|e| format!("watermarks of {}/{p}: {e}", run.topic))
        })
        .collect()
}

fn assignment(run: &Run<'_>) -> Result<TopicPartitionList, String> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..run.partitions {
        tpl.add_partition_offset(&run.topic, p, Offset::Offset(0))
            .map_err(|e| format!("assignment: {e}"))?;
    }
    Ok(tpl)
}

/// Record and byte counts of what a consumer has read.
#[derive(Default)]
struct Tally {
    records: usize,
    bytes: usize,
}

impl Tally {
    fn add<M: Message>(&mut self, m: &M) {
        self.records += 1;
        self.bytes += m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len);
    }
}

fn check_tally(tally: &Tally, input: &Input) -> Result<(), String> {
    if tally.records == input.records && tally.bytes == input.payload_bytes() {
        Ok(())
    } else {
        Err(format!(
            "read {} records / {} bytes, expected {} / {}",
            tally.records,
            tally.bytes,
            input.records,
            input.payload_bytes()
        ))
    }
}

/// `BaseConsumer`: assign every partition at offset 0, `poll` until the last record.
pub fn base_consumer(run: &Run<'_>, group: &str) -> RunResult {
    let consumer: BaseConsumer = consumer_config(run, group)
        .create()
        .map_err(|e| format!("create: {e}"))?;
    consumer
        .fetch_metadata(Some(&run.topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata: {e}"))?;
    let assignment = assignment(run)?;
    let mut tally = Tally::default();
    let deadline = Instant::now() + run.timeout;
    let sw = run.stopwatch();
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assign: {e}"))?;
    while tally.records < run.input.records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => tally.add(&m),
            Some(Err(e)) => return Err(format!("poll: {e}")),
            None if Instant::now() > deadline => {
                return Err(format!("only {} records within the timeout", tally.records))
            }
            None => {}
        }
    }
    let sample = sw.stop();
    check_tally(&tally, run.input)?;
    Ok(sample)
}

/// `StreamConsumer`: assign every partition at offset 0, `recv().await` until the last record.
pub async fn stream_consumer(run: &Run<'_>, group: &str) -> RunResult {
    let consumer: StreamConsumer = consumer_config(run, group)
        .create()
        .map_err(|e| format!("create: {e}"))?;
    consumer
        .fetch_metadata(Some(&run.topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata: {e}"))?;
    let assignment = assignment(run)?;
    let mut tally = Tally::default();
    let sw = run.stopwatch();
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assign: {e}"))?;
    while tally.records < run.input.records {
        let m = consumer.recv().await.map_err(|e| format!("recv: {e}"))?;
        tally.add(&m);
    }
    let sample = sw.stop();
    check_tally(&tally, run.input)?;
    Ok(sample)
}
