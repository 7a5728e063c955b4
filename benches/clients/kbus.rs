//! kbus itself: producer and consumer runs with the bench's common settings, on the same tokio
//! runtime shape as the async peers.

use super::*;
use kbus::consumer::{Consumer, Event};
use kbus::producer::{Producer, ProducerRecord};
use kbus::TopicPartition;

/// `send(..).await` (it waits only while the 32 MiB buffer is full) for every record, keeping
/// the delivery futures, then `flush` and check every future.
pub async fn producer(run: &Run<'_>) -> RunResult {
    let producer = Producer::from_properties(run.producer_properties())
        .await
        .map_err(|e| format!("create: {e}"))?;
    producer
        .cluster()
        .metadata_for(&[&run.topic])
        .await
        .map_err(|e| format!("metadata: {e}"))?;
    let input = run.input;
    let mut deliveries = Vec::with_capacity(input.records);
    let sw = run.stopwatch();
    for i in 0..input.records {
        let record = ProducerRecord::new(run.topic.as_str())
            .key(Bytes::from_static(input.key(i)))
            .value(Bytes::from_static(input.value(i)));
        let delivery = producer
            .send(record)
            .await
            .map_err(|e| format!("send: {e}"))?;
        deliveries.push(delivery);
    }
    producer.flush().await.map_err(|e| format!("flush: {e}"))?;
    let mut failed = 0usize;
    let mut first_error = None;
    for d in deliveries {
        if let Err(e) = d.await {
            failed += 1;
            first_error.get_or_insert_with(|| e.to_string());
        }
    }
    let sample = sw.stop();
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
    let mut consumer = Consumer::from_properties(run.consumer_properties(group))
        .await
        .map_err(|e| format!("create: {e}"))?;
    // As the librdkafka consumers do before their stopwatch starts: the topic's metadata (and
    // with it the connection to its leaders) is not part of the measured read.
    consumer
        .cluster()
        .metadata_for(&[&run.topic])
        .await
        .map_err(|e| format!("metadata: {e}"))?;
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
        let event = consumer.poll().await.map_err(|e| format!("poll: {e}"))?;
        if let Event::Records(batch) = event {
            for r in &batch.records {
                records += 1;
                bytes +=
                    r.key.as_ref().map_or(0, Bytes::len) + r.value.as_ref().map_or(0, Bytes::len);
            }
        }
    }
    let sample = sw.stop();
    drop(consumer);
    if records != run.input.records || bytes != run.input.payload_bytes() {
        return Err(format!(
            "read {records} records / {bytes} bytes, expected {} / {}",
            run.input.records,
            run.input.payload_bytes()
        ));
    }
    Ok(sample)
}
