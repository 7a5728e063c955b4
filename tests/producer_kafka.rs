//! Producer and consumer conveniences users expect from the Java client, on Apache Kafka itself:
//! - `allow.auto.create.topics` (default true): producing to a topic that does not exist lets a
//!   broker configured to create topics on first use create it; turned off, the send fails after
//!   `max.block.ms` with an error naming the topic;
//! - `Consumer::partitions_for` lists a topic's partitions to assign them all, and names a topic
//!   that does not exist.

mod common;

use std::time::Duration;

use kbus::cluster::{Cluster, ClusterConfig};
use kbus::consumer::{Consumer, ConsumerConfig, Event, OffsetReset};
use kbus::producer::{Producer, ProducerRecord};
use kbus::protocol::error_code::ErrorCode;
use kbus::Error;
use kbus_testkit::kafka::Kafka;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_created_on_first_send_unless_turned_off() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();

    let producer = Producer::from_properties([("bootstrap.servers", bootstrap.as_str())])
        .await
        .unwrap();
    let written = producer
        .send(ProducerRecord::new("created-on-send").key("k").value("v"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(written.offset, 0);
    producer.close().await.unwrap();

    let cluster = Cluster::connect(ClusterConfig::new(&bootstrap))
        .await
        .unwrap();
    let mut consumer = Consumer::new(
        cluster,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..Default::default()
        },
    );
    // The broker's default for topics it creates: one partition (num.partitions).
    let partitions = consumer.partitions_for("created-on-send").await.unwrap();
    assert_eq!(partitions.len(), 1);
    consumer.assign(partitions).unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Event::Records(batch) = consumer.poll().await.unwrap() {
                return batch;
            }
        }
    })
    .await
    .expect("the record in time");
    assert_eq!(batch.records[0].value.as_deref(), Some(&b"v"[..]));

    let err = consumer.partitions_for("never-created").await.unwrap_err();
    assert!(
        matches!(&err, Error::Topic { topic, code, .. }
            if topic == "never-created" && *code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{err}"
    );

    let strict = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("allow.auto.create.topics", "false"),
        ("max.block.ms", "2000"),
    ])
    .await
    .unwrap();
    let err = strict
        .send(ProducerRecord::new("not-created-on-send").value("v"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Topic { topic, code, .. }
            if topic == "not-created-on-send" && *code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{err}"
    );
    strict.close().await.unwrap();
    assert!(consumer
        .partitions_for("not-created-on-send")
        .await
        .is_err());
}
