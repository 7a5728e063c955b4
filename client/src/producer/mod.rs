//! The producer: partitioning, per-partition accumulation, per-broker sending, retries and
//! idempotence.
//!
//! ```no_run
//! # async fn demo() -> kbus_client::Result<()> {
//! use kbus_client::producer::{Producer, ProducerRecord};
//!
//! let producer = Producer::from_properties([
//!     ("bootstrap.servers", "127.0.0.1:9092"),
//!     ("linger.ms", "5"),
//! ])
//! .await?;
//! let delivery = producer
//!     .send(ProducerRecord::new("orders").key("order-17").value("created"))
//!     .await?;
//! let written = delivery.await?;
//! println!("written to {}/{} at {}", written.topic, written.partition, written.offset);
//! producer.close().await?;
//! # Ok(()) }
//! ```
//!
//! - [`Producer::send`] places the record (an explicit partition wins; keys go by
//!   [`Partitioner`]; keyless records stick to one partition per batch), appends it to its
//!   partition's open batch and returns a [`DeliveryFuture`]. It waits only while
//!   `buffer.memory` is full: memory stays bounded at any rate.
//! - A background sender sends each broker one ProduceRequest with every ready partition it leads
//!   (full, lingered `linger.ms`, or flushed), several in flight per connection, retries retriable
//!   failures with `retry.backoff.ms` until `delivery.timeout.ms`, and re-routes after leader
//!   changes. With idempotence (on by default with `acks=all`), retries neither duplicate nor
//!   reorder records.

mod accumulator;
mod batch;
mod compression_ratio;
mod config;
mod idempotence;
mod partitioner;
mod record;
mod retry;
mod sender;

pub use config::{Acks, ProducerConfig};
pub use idempotence::ProducerIdentity;
pub use partitioner::{crc32_ieee, murmur2, murmur2_partition, Partitioner};
pub use record::{DeliveryFuture, ProducerRecord, RecordMetadata};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kbus_protocol::error_code::ErrorCode;
use tokio::task::JoinHandle;

use crate::cluster::{Backoff, Cluster, ClusterConfig};
use crate::config::{Properties, Settings};
use crate::error::{Error, Result};
use accumulator::Accumulator;
use sender::Sender;

/// The 61-byte header of a record batch: a record larger than `max.request.size` less this can
/// never be sent.
const BATCH_OVERHEAD: usize = 61;

/// A Kafka producer. Cheap to clone; clones share one accumulator and sender.
#[derive(Clone, Debug)]
pub struct Producer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cluster: Cluster,
    acc: Arc<Accumulator>,
    config: Arc<ProducerConfig>,
    /// Changes when the epoch is bumped (the sender writes it).
    identity: Arc<Mutex<Option<ProducerIdentity>>>,
    sender: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropped without close(): what is queued is still sent, then the sender stops.
        self.acc.close();
    }
}

impl Producer {
    /// Bootstraps a cluster and starts a producer on it.
    pub async fn connect(cluster: ClusterConfig, config: ProducerConfig) -> Result<Producer> {
        Producer::new(Cluster::connect(cluster).await?, config).await
    }

    /// Starts a producer from Java/librdkafka-style properties (`bootstrap.servers`, `acks`,
    /// `linger.ms`, `compression.type`, `security.protocol`, ...): the cluster's and the
    /// producer's settings are read from the same map; other components' keys (a consumer's
    /// `group.id`, say) are left alone, and a key no component knows is an error naming it.
    pub async fn from_properties(properties: impl Into<Properties>) -> Result<Producer> {
        let properties = properties.into();
        properties.check_known()?;
        let cluster = ClusterConfig::read(&properties)?;
        Producer::connect(cluster, ProducerConfig::read(&properties)?).await
    }

    /// Starts a producer on `cluster`: gets a producer id when idempotence is on, then starts the
    /// background sender.
    pub async fn new(cluster: Cluster, mut config: ProducerConfig) -> Result<Producer> {
        config.finish()?;
        let config = Arc::new(config);
        let identity = Arc::new(Mutex::new(idempotence::init(&cluster, &config).await?));
        let acc = Arc::new(Accumulator::new(config.clone()));
        let sender = Sender::new(
            cluster.clone(),
            acc.clone(),
            config.clone(),
            identity.clone(),
        );
        let span = tracing::info_span!(
            "producer",
            client_id = cluster
                .config()
                .connection
                .client_id
                .as_deref()
                .unwrap_or("")
        );
        let handle = tokio::spawn(tracing::Instrument::instrument(sender.run(), span));
        Ok(Producer {
            inner: Arc::new(Inner {
                cluster,
                acc,
                config,
                identity,
                sender: Mutex::new(Some(handle)),
            }),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// The counters of the cluster this producer uses (shared with anything else built on it):
    /// records and bytes sent and received, requests in flight, retries, errors by code,
    /// rebalances.
    pub fn metrics(&self) -> crate::Metrics {
        self.cluster().metrics()
    }

    /// The cluster the producer writes to.
    pub fn cluster(&self) -> &Cluster {
        &self.inner.cluster
    }

    /// The idempotent producer id and epoch, `None` without idempotence. The epoch grows when
    /// the producer bumps it after a batch failed for good (KIP-360).
    pub fn identity(&self) -> Option<ProducerIdentity> {
        *self
            .inner
            .identity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `record` for sending and returns the future of its delivery. Waits while
    /// `buffer.memory` is full (backpressure) and, for a topic not seen before, for its
    /// metadata (up to `max.block.ms`).
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let inner = &*self.inner;
        let size = Accumulator::record_size(&record);
        let max = inner
            .config
            .max_request_size
            .min(inner.config.buffer_memory)
            .saturating_sub(BATCH_OVERHEAD);
        if size > max {
            return Err(Error::RecordTooLarge { size, max });
        }
        inner.acc.reserve(size).await?;
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        loop {
            match inner.acc.append(&record, timestamp, size, Instant::now()) {
                Ok(Some(delivery)) => return Ok(delivery),
                Ok(None) => match self.partition_count(&record.topic).await {
                    Ok(n) => inner.acc.set_partition_count(&record.topic, n),
                    Err(e) => {
                        inner.acc.release(size);
                        return Err(e);
                    }
                },
                Err(e) => {
                    inner.acc.release(size);
                    return Err(e);
                }
            }
        }
    }

    /// The partition count of `topic`, from metadata, waiting up to `max.block.ms` for the
    /// topic to appear (asking the broker to create it, with `allow.auto.create.topics`).
    async fn partition_count(&self, topic: &str) -> Result<i32> {
        let cluster = &self.inner.cluster;
        let auto_create = self.inner.config.allow_auto_create_topics;
        let deadline = Instant::now() + self.inner.config.max_block;
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        let mut md = cluster.metadata_for(&[topic]).await?;
        if auto_create && md.topic(topic).is_none_or(|t| t.error.is_err()) {
            md = cluster.refresh_with(&[topic], true).await?;
        }
        loop {
            let code = match md.topic(topic) {
                Some(t) if t.error.is_ok() && !t.partitions.is_empty() => {
                    return Ok(t.partitions.len() as i32)
                }
                Some(t) if t.error.is_err() => t.error,
                _ => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            };
            if !code.is_retriable() || Instant::now() >= deadline {
                return Err(Error::Topic {
                    topic: topic.to_owned(),
                    api: kbus_protocol::ApiKey::Metadata,
                    code,
                    message: None,
                });
            }
            tokio::time::sleep(backoff.next_delay()).await;
            md = cluster.refresh_with(&[topic], auto_create).await?;
        }
    }

    /// Sends everything queued now at once (without waiting for `linger.ms`) and waits until
    /// each of those records is acknowledged or has failed.
    pub async fn flush(&self) -> Result<()> {
        self.inner.acc.flush().await;
        Ok(())
    }

    /// Stops taking records, sends and settles everything queued, then stops the sender. Later
    /// `send`s fail with [`Error::Closed`].
    pub async fn close(&self) -> Result<()> {
        self.inner.acc.close();
        self.inner.acc.flush().await;
        let handle = self
            .inner
            .sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.await;
        }
        Ok(())
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
