//! A produce/consume round trip with the kbus client: create a topic, produce keyed records with
//! the batching producer, read them all back with a consumer, and check every record.
//!
//! ```text
//! cargo run --example produce_consume -- 127.0.0.1:9092 [records]
//! ```
//! `scripts/demo` starts a local Apache Kafka node and runs this against it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kbus::admin::{Admin, NewTopic};
use kbus::cluster::{Cluster, ClusterConfig};
use kbus::consumer::{Consumer, ConsumerConfig, Event, OffsetReset};
use kbus::producer::{murmur2_partition, Producer, ProducerConfig, ProducerRecord};
use kbus::TopicPartition;

const PARTITIONS: i32 = 4;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let records: usize = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let topic = format!("kbus-demo-{}", std::process::id());

    let cluster = Cluster::connect(ClusterConfig::new(&bootstrap)).await?;
    Admin::new(cluster.clone())
        .ensure_topic(&NewTopic::new(&topic, PARTITIONS, 1))
        .await?;

    // Produce: keyed records, acks=all. Idempotence is off because tansu 0.6.0, the broker
    // scripts/demo starts, drops the connection on InitProducerId.
    let started = Instant::now();
    let producer = Producer::new(
        cluster.clone(),
        ProducerConfig {
            enable_idempotence: Some(false),
            ..Default::default()
        },
    )
    .await?;
    let mut deliveries = Vec::with_capacity(records);
    for i in 0..records {
        let record = ProducerRecord::new(&topic)
            .key(format!("customer-{}", i % 100))
            .value(format!("order-{i}"))
            .header("source", "kbus-demo");
        deliveries.push(producer.send(record).await?);
    }
    for d in deliveries {
        d.await?;
    }
    producer.close().await?;
    let produced_in = started.elapsed();

    // Consume everything back from the beginning.
    let started = Instant::now();
    let mut consumer = Consumer::new(
        cluster,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            fetch_max_wait: Duration::from_millis(100),
            ..Default::default()
        },
    );
    consumer.assign((0..PARTITIONS).map(|p| TopicPartition::new(&topic, p)))?;
    let mut seen = vec![false; records];
    let mut per_partition: HashMap<i32, usize> = HashMap::new();
    let mut received = 0;
    while received < records {
        let event = tokio::time::timeout(Duration::from_secs(30), consumer.poll()).await??;
        #[allow(irrefutable_let_patterns)]
        let Event::Records(batch) = event
        else {
            continue;
        };
        for r in &batch.records {
            let key = r.key.as_deref().ok_or("a record without its key")?;
            if r.partition != murmur2_partition(key, PARTITIONS) {
                return Err(format!(
                    "record at {}/{} is off its key's partition",
                    r.partition, r.offset
                )
                .into());
            }
            let value = std::str::from_utf8(r.value.as_deref().unwrap_or_default())?;
            let i: usize = value.trim_start_matches("order-").parse()?;
            if std::mem::replace(&mut seen[i], true) {
                return Err(format!("{value} read twice").into());
            }
            *per_partition.entry(r.partition).or_default() += 1;
            received += 1;
        }
    }
    let consumed_in = started.elapsed();
    println!(
        "round trip OK: {records} records produced in {produced_in:?} and consumed in {consumed_in:?}, \
         each once, each key on its murmur2 partition (per partition: {per_partition:?})"
    );
    Ok(())
}
