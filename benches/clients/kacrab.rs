//! The kacrab peer (a pure-Rust client): producer and consumer runs with the bench's common
//! settings, where the broker speaks its ApiVersions v3 (tansu).

use super::*;
use kacrab::consumer::Consumer;
use kacrab::producer::{Producer, ProducerRecord, TopicPartition};

/// `send` (synchronous; it spins while the 32 MiB buffer is full) for every record, keeping
/// the delivery futures, then `flush` and check every future.
pub async fn producer(run: &Run<'_>) -> RunResult {
    let mut props = run.producer_properties();
    if let Some(n) = kacrab_max_in_flight() {
        props.retain(|(k, _)| *k != "max.in.flight.requests.per.connection");
        props.push(("max.in.flight.requests.per.connection", n.to_string()));
    }
    let producer = Producer::from_map(props)
        .await
        .map_err(|e| format!("create: {e}"))?;
    producer
        .partitions_for(&run.topic)
        .await
        .map_err(|e| format!("metadata: {e}"))?;
    let topic: Arc<str> = Arc::from(run.topic.as_str());
    let input = run.input;
    let mut deliveries = Vec::with_capacity(input.records);
    let sw = run.stopwatch();
    for i in 0..input.records {
        let record = ProducerRecord::topic_key_value(
            Arc::clone(&topic),
            Bytes::from_static(input.key(i)),
            Bytes::from_static(input.value(i)),
        );
        deliveries.push(producer.send(record).map_err(|e| format!("send: {e}"))?);
    }
    // A failed flush still leaves every delivery future to settle: count the failures too.
    let flushed = producer.flush().await;
    let mut failed = 0usize;
    let mut first_error = None;
    for d in deliveries {
        if let Err(e) = d.await {
            failed += 1;
            first_error.get_or_insert_with(|| e.to_string());
        }
    }
    let sample = sw.stop();
    if let Err(e) = flushed {
        return Err(format!(
            "flush: {e} ({failed} of {} deliveries failed, first: {first_error:?})",
            input.records
        ));
    }
    if failed > 0 {
        return Err(format!(
            "{failed} deliveries failed (first: {first_error:?})"
        ));
    }
    producer.close().await.map_err(|e| format!("close: {e}"))?;
    Ok(sample)
}

/// Manual assignment of every partition, `seek` to 0, `poll` until the last record.
pub async fn consumer(run: &Run<'_>, group: &str) -> RunResult {
    let mut consumer = Consumer::from_map(run.consumer_properties(group))
        .await
        .map_err(|e| format!("create: {e}"))?;
    let partitions: Vec<TopicPartition> = (0..run.partitions)
        .map(|p| TopicPartition::new(run.topic.as_str(), p))
        .collect();
    let (mut records, mut bytes) = (0usize, 0usize);
    let sw = run.stopwatch();
    consumer
        .assign(partitions.iter().cloned())
        .map_err(|e| format!("assign: {e}"))?;
    for tp in &partitions {
        consumer.seek(tp, 0).map_err(|e| format!("seek: {e}"))?;
    }
    while records < run.input.records {
        let batch = consumer
            .poll(Duration::from_millis(500))
            .await
            .map_err(|e| format!("poll: {e}"))?;
        for r in &batch {
            records += 1;
            bytes += r.key.as_ref().map_or(0, Bytes::len) + r.value.as_ref().map_or(0, Bytes::len);
        }
    }
    let sample = sw.stop();
    consumer.close().await;
    if records != run.input.records || bytes != run.input.payload_bytes() {
        return Err(format!(
            "read {records} records / {bytes} bytes, expected {} / {}",
            run.input.records,
            run.input.payload_bytes()
        ));
    }
    Ok(sample)
}
