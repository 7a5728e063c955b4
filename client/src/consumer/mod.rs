//! The consumer: fetching per broker, positions, seek, pause and resume, consumer groups and
//! committed offsets.
//!
//! A [`Consumer`] reads the partitions it is [assigned](Consumer::assign), or those its group gives
//! it once it [subscribes](Consumer::subscribe) to topics. In the background it keeps one fetch in
//! flight per broker, covering every assigned, unpaused partition that broker leads, decodes the
//! answers (decompression, CRC checks, transaction filtering) and queues the records, up to
//! [`ConsumerConfig::max_prefetch_bytes`]. With a broker that offers fetch sessions (KIP-227, Kafka
//! 1.1 and later) the fetches after the first are incremental, as the Java client's: they name
//! only the partitions whose position changed, and the broker answers only for partitions with
//! news, so a consumer of many mostly idle partitions costs both sides little. [`poll`](Consumer::poll) hands them out a partition's
//! worth at a time, without copying: keys, values and headers are slices of the buffers the
//! broker's answers were read into.
//!
//! ```no_run
//! use kbus_client::consumer::{Consumer, Event};
//! # async fn demo() -> kbus_client::Result<()> {
//! let mut consumer = Consumer::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("group.id", "billing"),
//!     ("auto.offset.reset", "earliest"),
//! ])
//! .await?;
//! consumer.subscribe(["orders"])?;
//! loop {
//!     match consumer.poll().await? {
//!         Event::Records(batch) => {
//!             for record in &batch.records {
//!                 println!("{}/{} @{}: {:?}", record.topic, record.partition, record.offset, record.value);
//!             }
//!         }
//!         // The group took partitions away: commit what was processed of them now, while the
//!         // generation is still valid. The rebalance waits until the next poll.
//!         Event::Revoked(_) => consumer.commit_consumed().await?,
//!         Event::Assigned(partitions) => println!("now also reading {partitions:?}"),
//!         Event::Lost(partitions) => println!("lost {partitions:?} without a chance to commit"),
//!         // Failures the consumer keeps retrying by itself (a broker down, ...).
//!         Event::Error(e) => eprintln!("still retrying: {e}"),
//!         _ => {}
//!     }
//! }
//! # }
//! ```
//!
//! Failures the consumer retries by itself (a broker down or too slow for `request.timeout.ms`,
//! a deleted topic, a coordinator that drops the connection) come out of `poll` as
//! [`Event::Error`] once they repeat, and are logged at WARN; [`Consumer::metrics`] counts them by
//! error code.
//!
//! Delivery: within a partition, records come in offset order, each once; after a
//! [`seek`](Consumer::seek) the next record is the one sought, never one fetched before. When a
//! partition's leader moves or a connection is lost, fetching goes on from the same offset at the
//! new leader. Errors the application must decide about come out of `poll`: an offset out of range
//! with `auto.offset.reset=none`, corrupt data ([`Error::Consume`], naming topic, partition and
//! offset; the partition waits for a seek), errors retrying cannot fix (authorization, ...), and a
//! fatal group error.
//!
//! # Groups
//!
//! [`subscribe`](Consumer::subscribe) joins the consumer's `group.id` (the classic protocol, with
//! the `partition.assignment.strategy` assignors) and `poll` then also returns what the group
//! decides, in the order it happens:
//! - [`Event::Assigned`]: a rebalance completed and these partitions were added (possibly none).
//!   Each is read from the group's committed offset, else per `auto.offset.reset`.
//! - [`Event::Revoked`]: these partitions were taken out of fetching (their prefetched records are
//!   dropped). The application commits what it processed of them before it calls `poll` again
//!   ([`commit_consumed`](Consumer::commit_consumed) still covers them): the member holds its
//!   generation, and the group's rebalance waits, until then.
//! - [`Event::Lost`]: these partitions were taken away without a chance to commit (the session
//!   expired, the member was fenced, `max.poll.interval.ms` passed): another member may own them
//!   already, so nothing is committed for them.
//!
//! `poll` also keeps the member in the group: a consumer that does not call it for
//! `max.poll.interval.ms` leaves its group, as in Java. A consumer either subscribes or assigns
//! partitions itself, not both.
//!
//! # Committing
//!
//! Commits name the next offset to read. A subscribed consumer commits as its current group
//! generation, so the coordinator refuses a commit for partitions that may belong to another
//! member by now ([`is_commit_fenced`] recognises that error; do not retry it). A consumer that
//! assigns partitions itself commits outside any generation, which Kafka accepts while the group
//! has no active members.
//!
//! `enable.auto.commit=true` commits the positions of everything `poll` has returned, every
//! `auto.commit.interval.ms` while the application polls (in the background), before partitions
//! are revoked (waiting for it), and on [`close`](Consumer::close): as in Java, calling `poll` is
//! taken to mean that the records returned before were processed. It is **off by default** in
//! kbus, unlike Java: kbus's `poll` is async and its records are cheap to move to other tasks
//! (the event bus above hands them to handlers, with retries and dead letters), so "polled again"
//! often does not mean "processed", and auto-commit would then commit records that a crash loses —
//! at-most-once where the application expected at-least-once. Turn it on for loops that finish
//! each record before polling again; otherwise commit explicitly.

mod config;
mod decode;
mod engine;
mod fetch_session;
mod fetcher;
mod job;
mod plan;
mod record;
mod state;
mod subscription;

pub use crate::group::{is_commit_fenced, Generation, OffsetAndMetadata};
pub use config::{ConsumerConfig, IsolationLevel, OffsetReset};
pub use record::{ConsumerRecord, Header, PartitionRecords, TimestampType};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc::error::TryRecvError;

use crate::cluster::{Cluster, ClusterConfig};
use crate::config::{Properties, Settings};
use crate::error::{Error, Result};
use crate::group::{offsets, Group, GroupEvent};
use crate::list_offsets::OffsetSpec;
use crate::TopicPartition;
use engine::{Engine, Receiver, Shared};
use subscription::{AutoCommit, Subscribed};

/// How long the closing of a fetch session may take beyond `fetch.max.wait.ms`, in the background
/// after [`Consumer::close`].
const CLOSE_SESSIONS_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// What [`Consumer::poll`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Records of one partition, in offset order.
    Records(PartitionRecords),
    /// A group rebalance completed and these partitions were added to the consumer's assignment
    /// (possibly none: the rebalance is over and nothing new came). They are read from the
    /// group's committed offsets, else per `auto.offset.reset`.
    Assigned(Vec<TopicPartition>),
    /// The group took these partitions away: they are no longer fetched and their prefetched
    /// records are gone. Commit what was processed of them before calling
    /// [`poll`](Consumer::poll) again: the generation is valid, and the rebalance waits, until
    /// then.
    Revoked(Vec<TopicPartition>),
    /// These partitions were taken away without a chance to commit (session expired, member
    /// fenced, poll interval exceeded, fatal group error): another member may own them already.
    Lost(Vec<TopicPartition>),
    /// Requests the consumer retries by itself keep failing: fetches from a broker, a
    /// partition's data, offset or metadata lookups, the group's join, sync or heartbeats. The
    /// consumer goes on retrying with backoff; this says why nothing arrives (a broker down, a
    /// deleted topic, a coordinator that drops the connection) — as librdkafka's error callback
    /// does. Given once a streak reaches three failures or thirty seconds, then once a minute
    /// while it lasts; also logged at WARN. Errors retrying cannot fix come as `Err` instead.
    Error(Error),
}

/// A Kafka consumer: of partitions it is assigned, or of those its group gives it.
///
/// Dropping it stops its background fetching and makes a subscribed member leave its group (without
/// committing; [`close`](Self::close) commits first under auto-commit, and waits until the member
/// is out).
pub struct Consumer {
    cluster: Cluster,
    config: ConsumerConfig,
    shared: Arc<Shared>,
    /// The engine's receiver until the engine starts (on the first call made inside a tokio
    /// runtime), then the running engine.
    engine: EngineSlot,
    mode: Mode,
    auto_commit: AutoCommit,
}

enum EngineSlot {
    NotStarted(Receiver),
    /// Kept for its `Drop`, which stops the engine.
    Running {
        _engine: Engine,
    },
    Starting,
}

/// How the consumer gets its partitions.
enum Mode {
    /// Neither assigned nor subscribed.
    Idle,
    /// [`Consumer::assign`]ed by the application.
    Manual,
    /// From the group, after [`Consumer::subscribe`].
    Subscribed(Box<Subscribed>),
}

/// What woke a waiting [`Consumer::poll`].
enum Woke {
    Group(GroupEvent),
    GroupEnded,
    Other,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        let mode = match &self.mode {
            Mode::Idle => "idle",
            Mode::Manual => "assigned",
            Mode::Subscribed(_) => "subscribed",
        };
        f.debug_struct("Consumer")
            .field("group_id", &self.config.group_id())
            .field("mode", &mode)
            .field("assigned", &state.partitions.len())
            .field("buffered_bytes", &state.buffered)
            .finish()
    }
}

impl Consumer {
    /// A consumer reading through `cluster`. Nothing is fetched before
    /// [`assign`](Self::assign) or [`subscribe`](Self::subscribe).
    pub fn new(cluster: Cluster, config: ConsumerConfig) -> Consumer {
        let (shared, rx) = engine::shared(config.clone());
        let auto_commit = AutoCommit::new(
            config.enable_auto_commit && config.group_id().is_some(),
            config.auto_commit_interval,
        );
        Consumer {
            cluster,
            config,
            shared,
            engine: EngineSlot::NotStarted(rx),
            mode: Mode::Idle,
            auto_commit,
        }
    }

    /// Connects to the cluster (see [`Cluster::connect`]) and makes a consumer on it.
    pub async fn connect(cluster: ClusterConfig, config: ConsumerConfig) -> Result<Consumer> {
        Ok(Consumer::new(Cluster::connect(cluster).await?, config))
    }

    /// Starts a consumer from Java/librdkafka-style properties (`bootstrap.servers`,
    /// `group.id`, `auto.offset.reset`, `security.protocol`, ...): the cluster's and the
    /// consumer's settings are read from the same map; other components' keys (a producer's
    /// `acks`, say) are left alone, and a key no component knows is an error naming it.
    pub async fn from_properties(properties: impl Into<Properties>) -> Result<Consumer> {
        let properties = properties.into();
        properties.check_known()?;
        let cluster = ClusterConfig::read(&properties)?;
        Consumer::connect(cluster, ConsumerConfig::read(&properties)?).await
    }

    /// The consumer's settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// The counters of the cluster this consumer uses (shared with anything else built on it):
    /// records and bytes sent and received, requests in flight, retries, errors by code,
    /// rebalances.
    pub fn metrics(&self) -> crate::Metrics {
        self.cluster.metrics()
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
    /// are dropped. An empty set clears the assignment.
    ///
    /// Fails while the consumer is [subscribed](Self::subscribe): its group assigns the
    /// partitions then ([`unsubscribe`](Self::unsubscribe) first).
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) -> Result<()> {
        if matches!(self.mode, Mode::Subscribed(_)) {
            return Err(Error::Misuse {
                message: "assign: the consumer is subscribed and its group assigns the \
                          partitions; unsubscribe first"
                    .into(),
            });
        }
        let partitions: Vec<TopicPartition> = partitions.into_iter().collect();
        self.mode = if partitions.is_empty() {
            Mode::Idle
        } else {
            Mode::Manual
        };
        self.shared.lock().assign(partitions);
        self.wake();
        Ok(())
    }

    /// The partitions of `topic` (Java's `partitionsFor`): what to [`assign`](Self::assign) to
    /// read all of it. A topic the cluster does not know is an error naming it.
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<TopicPartition>> {
        let ids = self.cluster.partitions(topic).await?;
        Ok(ids
            .into_iter()
            .map(|p| TopicPartition::new(topic, p))
            .collect())
    }

    /// The assigned partitions (by [`assign`](Self::assign), or by the group), sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.shared.lock().assignment()
    }

    /// Joins the consumer's group (`group.id`) subscribed to `topics`, or changes the subscription
    /// of a consumer already subscribed (the member rejoins). Partitions then come and go with
    /// [`Event::Assigned`], [`Event::Revoked`] and [`Event::Lost`] from [`poll`](Self::poll); see
    /// [Groups](self#groups).
    ///
    /// The member's settings come from the consumer's: `group.instance.id`, `session.timeout.ms`,
    /// `heartbeat.interval.ms`, `max.poll.interval.ms`, `partition.assignment.strategy`,
    /// `client.rack`, `retry.backoff.ms` and `retry.backoff.max.ms`.
    ///
    /// Fails without `group.id`, with no topics, with settings the group cannot work with, outside
    /// a tokio runtime, and while partitions are [assigned](Self::assign) manually (assign an
    /// empty set first). After a fatal group error, subscribing again joins the group anew.
    pub fn subscribe(&mut self, topics: impl IntoIterator<Item = impl Into<String>>) -> Result<()> {
        let topics: BTreeSet<String> = topics.into_iter().map(Into::into).collect();
        if topics.is_empty() {
            return Err(Error::Misuse {
                message: "subscribe needs at least one topic (unsubscribe leaves the group)".into(),
            });
        }
        match &mut self.mode {
            Mode::Manual => {
                return Err(Error::Misuse {
                    message: "subscribe: partitions are assigned manually; a consumer either \
                              assigns or subscribes (assign an empty set first)"
                        .into(),
                })
            }
            Mode::Subscribed(s) if !s.ended => {
                if s.topics != topics {
                    s.group.subscribe(topics.clone());
                    s.topics = topics;
                }
                return Ok(());
            }
            Mode::Subscribed(_) | Mode::Idle => {}
        }
        let group_config = self.config.group_config()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Misuse {
                message: "subscribe must be called within a tokio runtime".into(),
            });
        }
        let group = Group::start(self.cluster.clone(), group_config, topics.clone())?;
        // A group that failed before lost every partition; nothing of it remains.
        self.shared.lock().assign([]);
        self.mode = Mode::Subscribed(Box::new(Subscribed::new(
            group,
            topics,
            self.config.group.max_poll_interval,
        )));
        self.wake();
        Ok(())
    }

    /// The topics subscribed to; empty when not subscribed.
    pub fn subscription(&self) -> BTreeSet<String> {
        match &self.mode {
            Mode::Subscribed(s) => s.topics.clone(),
            _ => BTreeSet::new(),
        }
    }

    /// The group generation commits are fenced with now: `Some` while subscribed and settled in a
    /// generation (also while the application handles an [`Event::Revoked`]), `None` while
    /// joining or rebalancing, and when not subscribed.
    pub fn generation(&self) -> Option<Generation> {
        match &self.mode {
            Mode::Subscribed(s) => s.group.generation(),
            _ => None,
        }
    }

    /// Leaves the group (or drops a manual assignment): under auto-commit, what `poll` returned is
    /// committed first; the member's partitions are revoked and, for a dynamic member, LeaveGroup
    /// is sent. Returns once the member is out. Commit before calling it when auto-commit is off.
    ///
    /// Fails only with the error of the auto-commit, after leaving all the same.
    pub async fn unsubscribe(&mut self) -> Result<()> {
        let committed = self.final_auto_commit().await;
        self.leave_group().await;
        self.mode = Mode::Idle;
        self.shared.lock().assign([]);
        self.wake();
        committed
    }

    /// Stops the consumer: under auto-commit, commits what `poll` returned; leaves the group if
    /// subscribed (the partitions are revoked first, then a dynamic member sends LeaveGroup), and
    /// stops fetching, and starts closing its fetch sessions in the background (without waiting
    /// for the brokers' answers). Commit before calling it when auto-commit is off.
    ///
    /// Fails only with the error of the auto-commit, after closing all the same.
    pub async fn close(mut self) -> Result<()> {
        let committed = self.final_auto_commit().await;
        self.leave_group().await;
        // Stop fetching, then let the brokers free this consumer's fetch sessions.
        self.engine = EngineSlot::Starting;
        let within = self.config.fetch_max_wait + CLOSE_SESSIONS_WITHIN;
        fetcher::close_sessions(&self.cluster, &self.shared.sessions, within);
        committed
    }

    /// The auto-commit of `unsubscribe` and `close`.
    async fn final_auto_commit(&mut self) -> Result<()> {
        if !self.auto_commit.enabled {
            return Ok(());
        }
        self.commit_consumed().await
    }

    /// Leaves the group, if subscribed, and waits until the member is out. A revocation the
    /// application holds is acknowledged first.
    async fn leave_group(&mut self) {
        if let Mode::Subscribed(s) = std::mem::replace(&mut self.mode, Mode::Idle) {
            let Subscribed {
                group,
                pending,
                held,
                ..
            } = *s;
            drop((pending, held));
            group.close().await;
        }
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
        self.seek_to(tps, OffsetSpec::Earliest)
    }

    /// Continues each of `tps` from its end: the next record produced (the last stable offset under
    /// `read_committed`). The position is unknown (`None`) until the offset has been looked up.
    pub fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<()> {
        self.seek_to(tps, OffsetSpec::Latest)
    }

    fn seek_to(&mut self, tps: &[TopicPartition], to: OffsetSpec) -> Result<()> {
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
                    return Err(Error::Misuse {
                        message: format!("position: {tp} is not assigned to this consumer"),
                    });
                };
                if let Some(position) = p.position {
                    return Ok(position);
                }
                if p.fetch == state::FetchState::Stopped {
                    return Err(state::no_offset_error(tp));
                }
            }
            changed.await;
        }
    }

    /// Stops returning and fetching records of `tps` until [`resume`](Self::resume); other
    /// partitions go on. Records already prefetched stay buffered (within the prefetch bound)
    /// and come out first after resuming, as in the Java client; positions stay. Partitions not
    /// assigned are ignored.
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

    /// Waits for the next records, group event or error, and returns it.
    ///
    /// Waits as long as it takes: wrap it in `tokio::time::timeout` to bound the wait. It is
    /// cancellation safe: records and events are taken only in the step that returns them (a
    /// revocation received is kept until a `poll` hands it out), so dropping the future (a timeout,
    /// a `select!` branch that lost) loses nothing.
    ///
    /// Returned records move the partition's [`position`](Self::position) past them. An error
    /// concerning one partition ([`Error::Consume`]: offset out of range without a reset policy,
    /// corrupt data) comes after that partition's records before it, and stops the partition until
    /// the application seeks; other partitions go on.
    ///
    /// When requests the consumer retries by itself keep failing (fetches, offset or metadata
    /// lookups, the group's join or heartbeats), it returns an [`Event::Error`] saying why nothing
    /// arrives, and goes on retrying.
    ///
    /// Subscribed, it also returns the group's [`Event::Assigned`], [`Event::Revoked`] and
    /// [`Event::Lost`] (ahead of records), tells the group the application is alive
    /// (`max.poll.interval.ms`), acknowledges the last revocation it handed out (the application
    /// has committed by now), and auto-commits when that is on. A fatal group error is returned as
    /// `Err` once, after [`Event::Lost`] for every partition; `poll` then fails with
    /// [`Error::Closed`] until the consumer [subscribes](Self::subscribe) again.
    pub async fn poll(&mut self) -> Result<Event> {
        self.wake();
        if let Mode::Subscribed(s) = &mut self.mode {
            s.release_revocation();
        }
        loop {
            let now = Instant::now();
            if let Mode::Subscribed(s) = &mut self.mode {
                s.polled(now);
            }
            self.auto_commit_if_due(now);

            // Group events come first: a revocation stops fetching before more records go out.
            if let Some(result) = self.take_group_event().await {
                return result;
            }
            let warning = self.shared.lock().pop_warning();
            if let Some(error) = warning {
                return Ok(Event::Error(error));
            }
            let next = self.shared.lock().pop();
            if let Some(result) = next {
                // Records taken make room for more prefetching.
                self.shared.wake();
                return result.map(Event::Records);
            }
            if matches!(&self.mode, Mode::Subscribed(s) if s.ended) {
                return Err(Error::Closed);
            }

            match self.wait(now).await {
                Woke::Group(event) => {
                    if let Some(result) = self.on_group_event(event) {
                        return result;
                    }
                }
                Woke::GroupEnded => self.on_group_ended(),
                Woke::Other => {}
            }
        }
    }

    /// Waits until records may be ready, the group has an event, or a timer of `poll` is due.
    async fn wait(&self, now: Instant) -> Woke {
        let subscribed = match &self.mode {
            Mode::Subscribed(s) if !s.ended => Some(s),
            _ => None,
        };
        let wake_at = [
            self.auto_commit.next_at(),
            subscribed.and_then(|s| s.next_keepalive()),
        ]
        .into_iter()
        .flatten()
        .min();
        let event = async {
            match subscribed {
                Some(s) => match s.group.next_event().await {
                    Some(event) => Woke::Group(event),
                    None => Woke::GroupEnded,
                },
                None => std::future::pending().await,
            }
        };
        let timer = async {
            match wake_at {
                Some(at) => tokio::time::sleep_until(at.max(now).into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            woke = event => woke,
            _ = self.shared.ready.notified() => Woke::Other,
            _ = timer => Woke::Other,
        }
    }

    /// Hands out a revocation received earlier, or applies the group's waiting events until one is
    /// for the application. `None` when no event is for the application now.
    async fn take_group_event(&mut self) -> Option<Result<Event>> {
        loop {
            let Mode::Subscribed(s) = &mut self.mode else {
                return None;
            };
            if s.pending.is_some() {
                if self.auto_commit.enabled {
                    // Java's rule: before partitions are revoked, what poll returned is committed
                    // (while the generation is valid). A failure is the application's to see in
                    // its own commit, or the next member's to redo: at least once either way.
                    let _ = self.commit_consumed().await;
                }
                let Mode::Subscribed(s) = &mut self.mode else {
                    return None;
                };
                let (partitions, ack) = s.pending.take()?;
                s.held = Some(ack);
                return Some(Ok(Event::Revoked(partitions)));
            }
            match s.group.try_next_event() {
                Ok(event) => {
                    if let Some(result) = self.on_group_event(event) {
                        return Some(result);
                    }
                }
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => {
                    self.on_group_ended();
                    return None;
                }
            }
        }
    }

    /// Applies one group event; returns what the application gets of it now (a revocation waits in
    /// `pending` for [`take_group_event`](Self::take_group_event), which may commit first).
    fn on_group_event(&mut self, event: GroupEvent) -> Option<Result<Event>> {
        let Mode::Subscribed(s) = &mut self.mode else {
            return None;
        };
        let result = match event {
            GroupEvent::Assigned { partitions, .. } => {
                self.shared.lock().add(partitions.iter().cloned());
                Some(Ok(Event::Assigned(partitions)))
            }
            GroupEvent::Revoked { partitions, done } => {
                let positions = self.shared.lock().remove(&partitions);
                s.revoked.extend(positions);
                s.pending = Some((partitions, done));
                None
            }
            GroupEvent::Lost { partitions } => {
                self.shared.lock().remove(&partitions);
                Some(Ok(Event::Lost(partitions)))
            }
            GroupEvent::Fatal(error) => Some(Err(error)),
            GroupEvent::Failing(error) => Some(Ok(Event::Error(error))),
        };
        self.shared.wake();
        result
    }

    /// The group's events ended without the consumer leaving: after a fatal error.
    fn on_group_ended(&mut self) {
        if let Mode::Subscribed(s) = &mut self.mode {
            s.ended = true;
        }
    }

    /// Starts a background commit of what `poll` returned, when auto-commit is due.
    fn auto_commit_if_due(&mut self, now: Instant) {
        if !self.auto_commit.due(now) {
            return;
        }
        // Mid-rebalance there is no generation to commit with; the next round commits.
        let Ok(generation) = self.commit_generation() else {
            return;
        };
        let commit = self.commit_task(generation, self.consumed_offsets());
        self.auto_commit.inflight = Some(tokio::spawn(async move {
            // Failures are not reported: the next round, the commit before a revocation and
            // the one on close commit the same offsets or later ones.
            let _ = commit.await;
        }));
    }

    /// Commits `offsets` (each the offset of the next record to read, as Kafka expects) for the
    /// consumer's group, and waits for the coordinator's answer. Needs `group.id`.
    ///
    /// Subscribed, the commit is fenced by the member's current generation: it fails with an error
    /// [`is_commit_fenced`] recognises while a rebalance is under way (no generation) or when the
    /// coordinator has moved on to another one. With partitions [assigned](Self::assign) manually it
    /// is made outside any generation (generation -1, empty member id), which Kafka accepts while
    /// the group has no active members.
    pub async fn commit(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        // An auto-commit under way must not land after this one with older offsets.
        self.auto_commit.settle().await;
        let generation = self.commit_generation()?;
        self.commit_task(generation, offsets.to_vec()).await
    }

    /// Commits `offsets` as [`commit`](Self::commit) does, each with a metadata string the
    /// group keeps beside it (read back with
    /// [`committed_with_metadata`](Self::committed_with_metadata)); the broker refuses strings
    /// longer than its `offset.metadata.max.bytes` (4096 bytes by default).
    pub async fn commit_with_metadata(
        &mut self,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        self.auto_commit.settle().await;
        let generation = self.commit_generation()?;
        let group = self.group_id("commit")?;
        offsets::commit_with_metadata(&self.cluster, group, &generation, offsets).await
    }

    /// Commits the [`position`](Self::position) of every assigned partition that has one — what
    /// `poll` has returned so far — and, while the application handles an [`Event::Revoked`], the
    /// positions the revoked partitions had. See [`commit`](Self::commit).
    pub async fn commit_consumed(&mut self) -> Result<()> {
        self.auto_commit.settle().await;
        let generation = self.commit_generation()?;
        self.commit_task(generation, self.consumed_offsets()).await
    }

    /// Commits `offsets` as [`commit`](Self::commit) does, in a future that does not borrow the
    /// consumer: spawn it (or keep it) and go on polling. The generation is taken now, so the
    /// commit is fenced by the generation the records were consumed in.
    ///
    /// Nothing orders it with other commits: one made later may land first (Java's
    /// `commitAsync` has the same caveat). Commit synchronously where order matters, such as on
    /// [`Event::Revoked`].
    pub fn commit_async(
        &self,
        offsets: Vec<(TopicPartition, i64)>,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let commit = self
            .commit_generation()
            .map(|generation| self.commit_task(generation, offsets));
        async move { commit?.await }
    }

    /// [`commit_consumed`](Self::commit_consumed) in a future that does not borrow the consumer;
    /// see [`commit_async`](Self::commit_async).
    pub fn commit_consumed_async(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        self.commit_async(self.consumed_offsets())
    }

    /// What `commit_consumed` commits: the positions of the assigned partitions, and those the
    /// partitions under revocation had.
    fn consumed_offsets(&self) -> Vec<(TopicPartition, i64)> {
        let mut offsets: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        if let Mode::Subscribed(s) = &self.mode {
            offsets.extend(s.revoked.iter().cloned());
        }
        offsets.extend(self.shared.lock().consumed());
        offsets.into_iter().collect()
    }

    /// The generation to commit as: the group's while subscribed (a fenced error while it has
    /// none), none otherwise. Fails without `group.id`.
    fn commit_generation(&self) -> Result<Generation> {
        self.group_id("commit")?;
        match &self.mode {
            Mode::Subscribed(s) => s
                .group
                .generation()
                .ok_or_else(|| s.group.no_generation_error()),
            _ => Ok(Generation::none()),
        }
    }

    /// A commit of `offsets` as `generation`, owning everything it needs.
    fn commit_task(
        &self,
        generation: Generation,
        offsets: Vec<(TopicPartition, i64)>,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let cluster = self.cluster.clone();
        let group = self.config.group_id().unwrap_or_default().to_owned();
        async move { offsets::commit(&cluster, &group, &generation, &offsets).await }
    }

    /// The group's committed offsets of `tps`: `None` for a partition without one. Needs
    /// `group.id`.
    pub async fn committed(
        &self,
        tps: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<i64>>> {
        let group = self.group_id("committed")?;
        let stable = self.config.isolation_level == IsolationLevel::ReadCommitted;
        let found = offsets::committed(&self.cluster, group, tps, stable).await?;
        Ok(tps
            .iter()
            .map(|tp| (tp.clone(), found.get(tp).copied()))
            .collect())
    }

    /// The group's committed offsets of `tps` with the metadata committed beside them: `None`
    /// for a partition without one. Needs `group.id`.
    pub async fn committed_with_metadata(
        &self,
        tps: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<OffsetAndMetadata>>> {
        let group = self.group_id("committed")?;
        let stable = self.config.isolation_level == IsolationLevel::ReadCommitted;
        let mut found =
            offsets::committed_with_metadata(&self.cluster, group, Some(tps), stable).await?;
        Ok(tps
            .iter()
            .map(|tp| (tp.clone(), found.remove(tp)))
            .collect())
    }

    fn group_id(&self, what: &str) -> Result<&str> {
        self.config.group_id().ok_or_else(|| Error::Config {
            message: format!("{what} needs group.id"),
        })
    }
}
