//! The consumer: fetching per broker, positions, seek, pause and resume, committed offsets.
//!
//! A [`Consumer`] reads the partitions it is [assigned](Consumer::assign). In the background it keeps
//! one fetch in flight per broker, covering every assigned, unpaused partition that broker leads,
//! decodes the answers (decompression, CRC checks, transaction filtering) and queues the records,
//! up to [`ConsumerConfig::max_prefetch_bytes`]. [`poll`](Consumer::poll) hands them out a
//! partition's worth at a time, without copying: keys, values and headers are slices of the
//! buffers the broker's answers were read into.
//!
//! ```no_run
//! use kbus::cluster::ClusterConfig;
//! use kbus::consumer::{Consumer, ConsumerConfig, Event, OffsetReset};
//! use kbus::TopicPartition;
//! # async fn demo() -> kbus::Result<()> {
//! let config = ConsumerConfig {
//!     group_id: Some("billing".into()),
//!     auto_offset_reset: OffsetReset::Earliest,
//!     ..Default::default()
//! };
//! let mut consumer = Consumer::connect(ClusterConfig::new("localhost:9092"), config).await?;
//! consumer.assign([TopicPartition::new("orders", 0), TopicPartition::new("orders", 1)]);
//! loop {
//!     // poll waits for records; a timeout around it bounds the wait.
//!     match tokio::time::timeout(std::time::Duration::from_secs(1), consumer.poll()).await {
//!         Ok(Ok(Event::Records(batch))) => {
//!             for record in &batch.records {
//!                 println!("{}/{} @{}: {:?}", record.topic, record.partition, record.offset, record.value);
//!             }
//!         }
//!         Ok(Ok(_)) => {}
//!         Ok(Err(e)) => eprintln!("{e}"),
//!         Err(_) => consumer.commit_consumed().await?,
//!     }
//! }
//! # }
//! ```
//!
//! Delivery: within a partition, records come in offset order, each once; after a
//! [`seek`](Consumer::seek) the next record is the one sought, never one fetched before. When a
//! partition's leader moves or a connection is lost, fetching goes on from the same offset at the
//! new leader. Errors the application must decide about come out of `poll`: an offset out of range
//! with `auto.offset.reset=none`, corrupt data ([`Error::Consume`], naming topic, partition and
//! offset; the partition waits for a seek), and errors retrying cannot fix (authorization, ...).

mod config;
mod decode;
mod engine;
mod fetcher;
mod jobs;
mod offsets;
mod positions;
mod record;

pub use config::{
    config_from_properties, is_cluster_property, ConsumerConfig, IsolationLevel, OffsetReset,
};
pub use offsets::Generation;
pub use record::{ConsumerRecord, Header, PartitionRecords, TimestampType};

use std::collections::HashMap;
use std::sync::Arc;

use crate::cluster::{Cluster, ClusterConfig};
use crate::error::{Error, Result};
use crate::TopicPartition;
use engine::{Engine, Receiver, Shared};
use positions::ResetTo;

/// What [`Consumer::poll`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Records of one partition, in offset order.
    Records(PartitionRecords),
}

/// A consumer of manually assigned partitions.
///
/// Dropping it stops its background fetching.
pub struct Consumer {
    cluster: Cluster,
    config: ConsumerConfig,
    shared: Arc<Shared>,
    /// The engine's receiver until the engine starts (on the first call made inside a tokio
    /// runtime), then the running engine.
    engine: EngineSlot,
}

enum EngineSlot {
    NotStarted(Receiver),
    /// Kept for its `Drop`, which stops the engine.
    Running {
        _engine: Engine,
    },
    Starting,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Consumer")
            .field("group_id", &self.config.group_id)
            .field("assigned", &state.partitions.len())
            .field("buffered_bytes", &state.buffered)
            .finish()
    }
}

impl Consumer {
    /// A consumer reading through `cluster`. Nothing is fetched before [`assign`](Self::assign).
    pub fn new(cluster: Cluster, config: ConsumerConfig) -> Consumer {
        let (shared, rx) = engine::shared(config.clone());
        Consumer {
            cluster,
            config,
            shared,
            engine: EngineSlot::NotStarted(rx),
        }
    }

    /// Connects to the cluster (see [`Cluster::connect`]) and makes a consumer on it.
    pub async fn connect(cluster: ClusterConfig, config: ConsumerConfig) -> Result<Consumer> {
        Ok(Consumer::new(Cluster::connect(cluster).await?, config))
    }

    /// The consumer's settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// The cluster the consumer reads from.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Starts the engine if a runtime is at hand, and has it plan again.
    fn wake(&mut self) {
        if matches!(self.engine, EngineSlot::NotStarted(_))
            && tokio::runtime::Handle::try_current().is_ok()
        {
            if let EngineSlot::NotStarted(rx) =
                std::mem::replace(&mut self.engine, EngineSlot::Starting)
            {
                let engine = engine::start(self.shared.clone(), rx, self.cluster.clone());
                self.engine = EngineSlot::Running { _engine: engine };
            }
        }
        self.shared.wake();
    }

    /// Replaces the assignment with `partitions`. Partitions already assigned keep their position
    /// and prefetched records; new ones start at the group's committed offset when `group.id` is
    /// set and one exists, else per `auto.offset.reset`. Records of partitions no longer assigned
    /// are dropped.
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        self.shared.lock().assign(partitions);
        self.wake();
    }

    /// The assigned partitions, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.shared.lock().assignment()
    }

    /// Makes `offset` the next offset of `tp` that [`poll`](Self::poll) returns. Records fetched
    /// before are dropped, also those in flight. Fails when `tp` is not assigned or `offset` is
    /// negative.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.shared.lock().seek(tp, offset)?;
        self.wake();
        Ok(())
    }

    /// Continues each of `tps` from its first offset still in the log. The position is unknown
    /// (`None`) until the offset has been looked up.
    pub fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<()> {
        self.seek_to(tps, ResetTo::Earliest)
    }

    /// Continues each of `tps` from its end: the next record produced (the last stable offset under
    /// `read_committed`). The position is unknown (`None`) until the offset has been looked up.
    pub fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<()> {
        self.seek_to(tps, ResetTo::Latest)
    }

    fn seek_to(&mut self, tps: &[TopicPartition], to: ResetTo) -> Result<()> {
        let result = {
            let mut state = self.shared.lock();
            tps.iter().try_for_each(|tp| state.seek_to(tp, to))
        };
        self.wake();
        result
    }

    /// The offset of the next record of `tp` that `poll` will return (one past the last returned,
    /// or past the transaction markers after it); `None` when `tp` is not assigned or its starting
    /// offset is still being looked up.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.shared.lock().position(tp)
    }

    /// The position of `tp`, waiting for its starting offset to be looked up if need be (as the
    /// Java client's `position()` blocks). Fails when `tp` is not assigned, or has no position and
    /// waits for a seek (`auto.offset.reset=none`; `poll` returns the reason).
    pub async fn resolve_position(&mut self, tp: &TopicPartition) -> Result<i64> {
        self.wake();
        loop {
            let changed = self.shared.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            {
                let state = self.shared.lock();
                let Some(p) = state.partitions.get(tp) else {
                    return Err(Error::Config {
                        message: format!("position: {tp} is not assigned to this consumer"),
                    });
                };
                if let Some(position) = p.position {
                    return Ok(position);
                }
                if p.fetch == positions::FetchState::Stopped {
                    return Err(positions::no_offset_error(tp));
                }
            }
            changed.await;
        }
    }

    /// Stops returning and fetching records of `tps` until [`resume`](Self::resume); other
    /// partitions go on. Their prefetched records are dropped (and fetched again after resuming);
    /// positions stay. Partitions not assigned are ignored.
    pub fn pause(&mut self, tps: &[TopicPartition]) {
        {
            let mut state = self.shared.lock();
            for tp in tps {
                state.pause(tp);
            }
        }
        self.wake();
    }

    /// Fetches and returns records of `tps` again after [`pause`](Self::pause). Partitions not
    /// assigned are ignored.
    pub fn resume(&mut self, tps: &[TopicPartition]) {
        {
            let mut state = self.shared.lock();
            for tp in tps {
                state.resume(tp);
            }
        }
        self.wake();
    }

    /// The paused partitions, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.shared.lock().paused()
    }

    /// Waits for the next records (or an error) and returns them.
    ///
    /// Waits as long as it takes: wrap it in `tokio::time::timeout` to bound the wait. It is
    /// cancellation safe: records are taken from the queue only in the same step that returns
    /// them, so dropping the future (a timeout, a `select!` branch that lost) loses nothing.
    ///
    /// Returned records move the partition's [`position`](Self::position) past them. An error
    /// concerning one partition ([`Error::Consume`]: offset out of range without a reset policy,
    /// corrupt data) comes after that partition's records before it, and stops the partition until
    /// the application seeks; other partitions go on.
    pub async fn poll(&mut self) -> Result<Event> {
        self.wake();
        loop {
            let next = self.shared.lock().pop();
            if let Some(result) = next {
                // Records taken make room for more prefetching.
                self.shared.wake();
                return result.map(Event::Records);
            }
            self.shared.ready.notified().await;
        }
    }

    /// Commits `offsets` (each the offset of the next record to read, as Kafka expects) for the
    /// consumer's group, outside any group generation (generation -1, empty member id: Kafka
    /// accepts such commits while the group has no active members). Needs `group.id`.
    pub async fn commit(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        self.commit_as(&Generation::none(), offsets).await
    }

    /// Commits the [`position`](Self::position) of every assigned partition that has one: what
    /// `poll` has returned so far.
    pub async fn commit_consumed(&mut self) -> Result<()> {
        let offsets = self.shared.lock().consumed();
        self.commit(&offsets).await
    }

    /// Commits `offsets` as `generation` (the group layer's commits, fenced by generation).
    pub(crate) async fn commit_as(
        &self,
        generation: &Generation,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<()> {
        let group = self.group_id("commit")?;
        offsets::commit(&self.cluster, group, generation, offsets).await
    }

    /// The group's committed offsets of `tps`: `None` for a partition without one. Needs
    /// `group.id`.
    pub async fn committed(
        &self,
        tps: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<i64>>> {
        let group = self.group_id("committed")?;
        let stable = self.config.isolation_level == IsolationLevel::ReadCommitted;
        let mut found = offsets::fetch_committed(&self.cluster, group, tps, stable).await?;
        Ok(tps
            .iter()
            .map(|tp| (tp.clone(), found.remove(tp).flatten()))
            .collect())
    }

    fn group_id(&self, what: &str) -> Result<&str> {
        self.config
            .group_id
            .as_deref()
            .ok_or_else(|| Error::Config {
                message: format!("{what} needs group.id"),
            })
    }
}
