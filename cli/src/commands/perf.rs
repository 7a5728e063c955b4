//! `kbus perf produce | consume`: throughput (and, producing, latency from send to
//! acknowledgement), a live line on stderr every second, one JSON summary line on stdout.

use std::io::Write;
use std::time::{Duration, Instant};

use kbus::consumer::{Consumer, Event};
use kbus::producer::{Producer, ProducerRecord};
use kbus::TopicPartition;
use serde_json::json;

use crate::args::Perf;
use crate::failure::{Failure, Kind};

pub async fn run(mut properties: Vec<(String, String)>, command: Perf) -> Result<(), Failure> {
    match command {
        Perf::Produce {
            topic,
            count,
            size,
            keys,
            compression,
            rate,
        } => {
            if let Some(codec) = compression {
                properties.push(("compression.type".into(), codec.property().into()));
            }
            produce(properties, &topic, count, size, keys, rate).await
        }
        Perf::Consume {
            topic,
            count,
            group,
        } => {
            if let Some(group) = &group {
                properties.push(("group.id".into(), group.clone()));
                properties.push(("auto.offset.reset".into(), "earliest".into()));
            }
            consume(properties, &topic, count, group.is_some()).await
        }
    }
}

/// A value of `size` bytes that compresses like text, not like zeros.
fn payload(size: usize) -> Vec<u8> {
    let words = b"kbus event bus kafka record value order placed shipped account deposited ";
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    (0..size)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            words[(seed % words.len() as u64) as usize]
        })
        .collect()
}

/// The live line: rewritten in place on a terminal, once a second.
fn progress(what: &str, n: u64, bytes: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprint!(
        "\r{what} {n} records, {:.0} records/s, {:.2} MB/s   ",
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    let _ = std::io::stderr().flush();
}

async fn produce(
    properties: Vec<(String, String)>,
    topic: &str,
    count: u64,
    size: usize,
    keys: Option<u64>,
    rate: Option<f64>,
) -> Result<(), Failure> {
    let producer = Producer::from_properties(properties).await?;
    let value = bytes::Bytes::from(payload(size));
    // Deliveries are awaited in send order by a task of their own, which takes each latency.
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<(Instant, kbus::producer::DeliveryFuture)>(100_000);
    let collector = tokio::spawn(async move {
        let mut latencies: Vec<u32> = Vec::new();
        let mut failed = 0u64;
        let mut last_error = None;
        while let Some((sent, delivery)) = rx.recv().await {
            match delivery.await {
                Ok(_) => latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32),
                Err(e) => {
                    failed += 1;
                    last_error = Some(e);
                }
            }
        }
        (latencies, failed, last_error)
    });
    let started = Instant::now();
    let mut next_report = started + Duration::from_secs(1);
    let mut bytes = 0u64;
    for i in 0..count {
        if let Some(rate) = rate.filter(|r| *r > 0.0) {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let mut record = ProducerRecord::new(topic).value(value.clone());
        if let Some(k) = keys.filter(|k| *k > 0) {
            record = record.key(format!("key-{}", i % k).into_bytes());
        }
        bytes += size as u64;
        let delivery = producer.send(record).await?;
        if tx.send((Instant::now(), delivery)).await.is_err() {
            break;
        }
        if Instant::now() >= next_report {
            progress("produced", i + 1, bytes, started);
            next_report += Duration::from_secs(1);
        }
    }
    drop(tx);
    let (mut latencies, failed, last_error) = collector
        .await
        .map_err(|e| Failure::new(Kind::Other, e.to_string()))?;
    let seconds = started.elapsed().as_secs_f64();
    producer.close().await?;
    eprintln!();
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i] as f64 / 1000.0
    };
    let acked = latencies.len() as u64;
    println!(
        "{}",
        json!({
            "messages": acked,
            "failed": failed,
            "bytes": acked * size as u64,
            "seconds": seconds,
            "msgs_per_sec": acked as f64 / seconds,
            "mb_per_sec": (acked * size as u64) as f64 / seconds / 1e6,
            "latency_ms": {"p50": pct(0.50), "p99": pct(0.99), "max": pct(1.0)},
        })
    );
    match last_error {
        Some(e) => Err(Failure::new(
            if acked > 0 {
                Kind::Partial
            } else {
                crate::failure::kind_of(&e)
            },
            format!("{failed} records failed; the last: {e}"),
        )),
        None => Ok(()),
    }
}

async fn consume(
    properties: Vec<(String, String)>,
    topic: &str,
    count: u64,
    group: bool,
) -> Result<(), Failure> {
    let mut consumer = Consumer::from_properties(properties).await?;
    if group {
        consumer.subscribe([topic.to_owned()])?;
    } else {
        let partitions: Vec<TopicPartition> = consumer.partitions_for(topic).await?;
        consumer.assign(partitions.clone())?;
        consumer.seek_to_beginning(&partitions)?;
    }
    let mut started: Option<Instant> = None;
    let mut next_report = Instant::now() + Duration::from_secs(1);
    let (mut n, mut bytes) = (0u64, 0u64);
    while n < count {
        if let Event::Records(batch) = consumer.poll().await? {
            // Timed from the first record: joining a group or finding leaders is left out.
            let t0 = *started.get_or_insert_with(Instant::now);
            for r in &batch.records {
                n += 1;
                bytes += r.value.as_ref().map_or(0, |v| v.len()) as u64
                    + r.key.as_ref().map_or(0, |k| k.len()) as u64;
            }
            if Instant::now() >= next_report {
                progress("consumed", n, bytes, t0);
                next_report += Duration::from_secs(1);
            }
        }
    }
    let seconds = started.map_or(0.0, |s| s.elapsed().as_secs_f64()).max(1e-9);
    consumer.close().await?;
    eprintln!();
    println!(
        "{}",
        json!({
            "messages": n,
            "bytes": bytes,
            "seconds": seconds,
            "msgs_per_sec": n as f64 / seconds,
            "mb_per_sec": bytes as f64 / seconds / 1e6,
        })
    );
    Ok(())
}
