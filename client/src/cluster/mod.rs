//! The cluster: bootstrap, the metadata cache, connections by broker id, leaders and coordinators.
//!
//! A [`Cluster`] starts from a bootstrap list (any reachable broker will do), keeps the latest
//! [`Metadata`] snapshot, and hands out one shared [`Connection`] per broker (and one more to a
//! broker that coordinates a group, for coordinator requests), reconnecting with
//! exponential backoff and jitter after a connection is lost. Metadata is refreshed on demand, when it
//! is older than `metadata.max.age.ms`, and after errors reported with [`Cluster::report`] /
//! [`Cluster::report_code`] that say it is stale (lost connections, [`needs_refresh`] codes).
//! Every refresh — the producer's, the consumer's, a group member's, admin's — goes through
//! [`Cluster::refresh_with`], one at a time, and callers that waited while a refresh of their
//! topics went out and came back share its answer: a burst of errors causes one refresh.

mod backoff;
mod coordinator;
mod metadata;

pub use backoff::Backoff;
pub use coordinator::CoordinatorType;
pub use metadata::{needs_refresh, BrokerInfo, Metadata, PartitionInfo, TopicInfo};

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic};
use kbus_protocol::ApiKey;
use tokio::sync::Mutex;

use crate::config::{self, Properties, Settings};
use crate::error::{Error, Result};
use crate::metrics::{Counters, Metrics};
use crate::net::{Connection, ConnectionConfig};

/// Settings of the cluster layer.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `bootstrap.servers`: `host:port` entries to start from.
    pub bootstrap_servers: Vec<String>,
    /// Settings for every broker connection.
    pub connection: ConnectionConfig,
    /// `metadata.max.age.ms`: metadata older than this is refreshed before use.
    pub metadata_max_age: Duration,
    /// `reconnect.backoff.ms`: the first delay before reconnecting to a broker.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: the longest delay between reconnect attempts.
    pub reconnect_backoff_max: Duration,
}

impl ClusterConfig {
    /// Settings with Kafka's defaults for `bootstrap` (a comma-separated `host:port` list).
    pub fn new(bootstrap: &str) -> Self {
        ClusterConfig {
            bootstrap_servers: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            connection: ConnectionConfig::default(),
            metadata_max_age: Duration::from_secs(300),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
        }
    }
}

impl Default for ClusterConfig {
    /// No bootstrap servers yet, Kafka's defaults otherwise.
    fn default() -> Self {
        ClusterConfig::new("")
    }
}

impl Settings for ClusterConfig {
    /// Applies one property: `bootstrap.servers` (librdkafka: `metadata.broker.list`),
    /// `metadata.max.age.ms`, `reconnect.backoff.ms`, `reconnect.backoff.max.ms`, and what
    /// [`ConnectionConfig`] reads.
    fn set_property(&mut self, key: &str, value: &str) -> Result<bool> {
        match key.trim() {
            "bootstrap.servers" | "metadata.broker.list" => {
                self.bootstrap_servers = ClusterConfig::new(value).bootstrap_servers
            }
            "metadata.max.age.ms" => self.metadata_max_age = config::millis(key, value)?,
            "reconnect.backoff.ms" => self.reconnect_backoff = config::millis(key, value)?,
            "reconnect.backoff.max.ms" => self.reconnect_backoff_max = config::millis(key, value)?,
            _ => return self.connection.set_property(key, value),
        }
        Ok(true)
    }

    /// The connection settings are read as [`ConnectionConfig`] reads them (the SASL settings in
    /// any order).
    fn read(properties: &Properties) -> Result<Self> {
        let mut config = ClusterConfig {
            connection: ConnectionConfig::read(properties)?,
            ..ClusterConfig::default()
        };
        for (key, value) in properties.iter() {
            if ConnectionConfig::reads(key) {
                continue;
            }
            config.set_property(key, value)?;
        }
        Ok(config)
    }
}

/// One broker's connection, made on first use and remade after it closes.
struct BrokerSlot {
    address: String,
    conn: Option<Arc<Connection>>,
    backoff: Backoff,
    next_attempt: Option<Instant>,
    /// True once a connection to this broker was made: the next one is a reconnection.
    connected_before: bool,
}

struct Inner {
    config: ClusterConfig,
    metadata: StdMutex<Arc<Metadata>>,
    brokers: StdMutex<HashMap<i32, Arc<Mutex<BrokerSlot>>>>,
    /// Connections for coordinator requests, by broker id (see [`Cluster::coordinator_link`]).
    coordinator_links: StdMutex<HashMap<i32, Arc<Mutex<BrokerSlot>>>>,
    /// Serialises metadata refreshes; with `last_refresh`, a burst of callers causes one refresh
    /// each time, not one per caller.
    refreshing: Mutex<()>,
    /// The last refresh that succeeded: when it was sent, what it asked.
    last_refresh: StdMutex<Option<LastRefresh>>,
    /// Set when an error said the metadata is out of date; the next lookup refreshes first.
    stale: AtomicBool,
    coordinators: StdMutex<HashMap<(CoordinatorType, String), i32>>,
    /// What the cluster and everything built on it did ([`Cluster::metrics`]).
    counters: Counters,
}

/// A metadata refresh that succeeded.
struct LastRefresh {
    sent_at: Instant,
    topics: BTreeSet<String>,
    auto_create: bool,
}

/// A handle on the cluster; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let md = self.metadata();
        f.debug_struct("Cluster")
            .field("bootstrap", &self.inner.config.bootstrap_servers)
            .field("brokers", &md.brokers.len())
            .field("topics", &md.topics.len())
            .finish()
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single read or write of the map: a panic elsewhere cannot leave
    // it half-updated, so a poisoned lock is safe to keep using.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cluster {
    /// Bootstraps: asks the bootstrap brokers, in order, for metadata until one answers.
    pub async fn connect(config: ClusterConfig) -> Result<Cluster> {
        if config.bootstrap_servers.is_empty() {
            return Err(Error::Config {
                message: "bootstrap.servers is empty".into(),
            });
        }
        let cluster = Cluster {
            inner: Arc::new(Inner {
                config,
                metadata: StdMutex::new(Arc::new(Metadata::empty())),
                brokers: StdMutex::new(HashMap::new()),
                coordinator_links: StdMutex::new(HashMap::new()),
                refreshing: Mutex::new(()),
                last_refresh: StdMutex::new(None),
                coordinators: StdMutex::new(HashMap::new()),
                stale: AtomicBool::new(false),
                counters: Counters::default(),
            }),
        };
        cluster.refresh(&[]).await?;
        Ok(cluster)
    }

    /// The settings this cluster was made with.
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// The counters of this cluster and of the producers, consumers and groups built on it:
    /// records and bytes sent and received, requests in flight, retries, errors by code,
    /// rebalances.
    pub fn metrics(&self) -> Metrics {
        let mut slots: Vec<_> = lock(&self.inner.brokers).values().cloned().collect();
        slots.extend(lock(&self.inner.coordinator_links).values().cloned());
        // A slot locked right now is connecting: nothing of it is open or in flight yet.
        let open: Vec<Arc<Connection>> = slots
            .iter()
            .filter_map(|slot| slot.try_lock().ok()?.conn.clone())
            .filter(|c| !c.is_closed())
            .collect();
        let in_flight = open.iter().map(|c| c.in_flight() as u64).sum();
        self.inner.counters.snapshot(in_flight, open.len() as u64)
    }

    /// The live counters, for the parts of the client that count.
    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// The latest metadata snapshot.
    pub fn metadata(&self) -> Arc<Metadata> {
        lock(&self.inner.metadata).clone()
    }

    /// Metadata covering `topics`, refreshed first if any is unknown, was reported in error (a
    /// topic being created, say) by an answer older than `reconnect.backoff.ms`, or the snapshot
    /// is older than `metadata.max.age.ms`.
    pub async fn metadata_for(&self, topics: &[&str]) -> Result<Arc<Metadata>> {
        let md = self.metadata();
        let age = md.fetched_at.elapsed();
        let stale =
            self.inner.stale.load(Ordering::Acquire) || age > self.inner.config.metadata_max_age;
        // An error is not cached as the answer: it is asked again, at most once per backoff.
        let usable = |t: &str| {
            md.topics
                .get(t)
                .is_some_and(|info| info.error.is_ok() || age < self.inner.config.reconnect_backoff)
        };
        if !stale && topics.iter().all(|t| usable(t)) {
            return Ok(md);
        }
        self.refresh(topics).await
    }

    /// The partition ids of `topic`, from metadata (refreshed when the topic is not known yet). A
    /// topic the cluster does not know, or reports in error, is an error naming it
    /// (UNKNOWN_TOPIC_OR_PARTITION, retriable: a topic just created may not have reached every
    /// broker's metadata yet).
    pub async fn partitions(&self, topic: &str) -> Result<Vec<i32>> {
        let md = self.metadata_for(&[topic]).await?;
        match md.topic(topic) {
            Some(t) if t.error.is_ok() && !t.partitions.is_empty() => {
                Ok(t.partitions.iter().map(|p| p.id).collect())
            }
            found => Err(Error::Topic {
                topic: topic.into(),
                api: ApiKey::Metadata,
                code: found
                    .map(|t| t.error)
                    .filter(|code| code.is_err())
                    .unwrap_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                message: None,
            }),
        }
    }

    /// Tells the cluster a request failed; returns true when the error means the metadata is out
    /// of date (a lost or silent connection, or an error code such as NOT_LEADER_OR_FOLLOWER), in
    /// which case the next lookup refreshes it before answering.
    pub fn report(&self, err: &Error) -> bool {
        self.inner.counters.error(err);
        let stale = match err {
            Error::Broker { code, .. }
            | Error::Partition { code, .. }
            | Error::Topic { code, .. } => needs_refresh(*code),
            Error::Disconnected { .. }
            | Error::Io { .. }
            | Error::ConnectTimeout { .. }
            | Error::RequestTimeout { .. }
            | Error::UnknownBroker { .. } => true,
            _ => false,
        };
        if stale {
            self.inner.stale.store(true, Ordering::Release);
        }
        stale
    }

    /// Like [`report`](Self::report), for an error code found inside a response (per partition).
    pub fn report_code(&self, code: ErrorCode) -> bool {
        self.inner.counters.code(code);
        let stale = needs_refresh(code);
        if stale {
            self.inner.stale.store(true, Ordering::Release);
        }
        stale
    }

    /// Fetches fresh metadata for `topics` (none: brokers only) from any reachable broker.
    pub async fn refresh(&self, topics: &[&str]) -> Result<Arc<Metadata>> {
        self.refresh_with(topics, false).await
    }

    /// Like [`refresh`](Self::refresh); with `auto_create`, a broker configured to create topics
    /// on first use (`auto.create.topics.enable`) creates those that do not exist (what the Java
    /// producer's `allow.auto.create.topics` asks for).
    ///
    /// Every refresh of the client goes through here, one at a time. A caller that waited while
    /// another refresh went out and came back with at least its topics gets that answer instead
    /// of sending its own: it is as fresh as any this caller could get, so a burst of errors from
    /// many partitions (or many components) causes one more refresh, not one per caller.
    pub async fn refresh_with(&self, topics: &[&str], auto_create: bool) -> Result<Arc<Metadata>> {
        let asked_at = Instant::now();
        let _one_at_a_time = self.inner.refreshing.lock().await;
        if self.answered_since(asked_at, topics, auto_create) {
            return Ok(self.metadata());
        }
        let sent_at = Instant::now();
        let req = MetadataRequest {
            topics: Some(
                topics
                    .iter()
                    .map(|t| MetadataRequestTopic::by_name(*t))
                    .collect(),
            ),
            allow_auto_topic_creation: auto_create,
            ..Default::default()
        };
        let mut last_error = None;
        for conn in self.candidates().await {
            let conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    self.inner.counters.error(&e);
                    last_error = Some(e);
                    continue;
                }
            };
            match conn.send(&req).await {
                Ok(resp) => {
                    let code = ErrorCode(resp.error_code);
                    if code.is_err() {
                        self.inner.counters.code(code);
                        last_error = Some(Error::Broker {
                            broker: conn.broker().into(),
                            api: ApiKey::Metadata,
                            code,
                            message: None,
                        });
                        continue;
                    }
                    self.inner.stale.store(false, Ordering::Release);
                    tracing::debug!(
                        broker = conn.broker(),
                        topics = ?topics,
                        brokers = resp.brokers.len(),
                        "metadata refreshed"
                    );
                    let fresh = Metadata::from_response(&resp, Instant::now());
                    let merged = Arc::new(self.metadata().merged_with(fresh));
                    self.adopt_brokers(&merged);
                    *lock(&self.inner.metadata) = merged.clone();
                    *lock(&self.inner.last_refresh) = Some(LastRefresh {
                        sent_at,
                        topics: topics.iter().map(|t| t.to_string()).collect(),
                        auto_create,
                    });
                    return Ok(merged);
                }
                Err(e) => {
                    self.inner.counters.error(&e);
                    last_error = Some(e);
                }
            }
        }
        let error = last_error.unwrap_or_else(|| Error::Config {
            message: "no broker to ask for metadata".into(),
        });
        // The snapshot stays stale until a refresh succeeds.
        self.inner.stale.store(true, Ordering::Release);
        tracing::debug!(topics = ?topics, error = %error, "metadata refresh failed");
        Err(error)
    }

    /// True when a refresh sent after `asked_at` succeeded and asked about every topic of
    /// `topics` (allowing auto-creation if asked to).
    fn answered_since(&self, asked_at: Instant, topics: &[&str], auto_create: bool) -> bool {
        lock(&self.inner.last_refresh).as_ref().is_some_and(|last| {
            last.sent_at >= asked_at
                && (last.auto_create || !auto_create)
                && topics.iter().all(|t| last.topics.contains(*t))
        })
    }

    /// Connections to try for a metadata request: known brokers first, then the bootstrap list.
    async fn candidates(&self) -> Vec<Result<Arc<Connection>>> {
        let mut out = Vec::new();
        let ids: Vec<i32> = {
            let mut ids: Vec<i32> = self.metadata().brokers.keys().copied().collect();
            ids.sort();
            ids
        };
        for id in ids {
            // A broker waiting out its reconnect backoff is skipped: another may answer now.
            if self.in_backoff(id) {
                continue;
            }
            let r = self.broker(id).await;
            let ok = r.is_ok();
            out.push(r);
            if ok {
                return out;
            }
        }
        for address in &self.inner.config.bootstrap_servers {
            let r = Connection::connect(address, self.inner.config.connection.clone())
                .await
                .map(Arc::new);
            let ok = r.is_ok();
            out.push(r);
            if ok {
                return out;
            }
        }
        out
    }

    /// Records the brokers of a snapshot; a broker whose address changed gets a fresh connection.
    fn adopt_brokers(&self, md: &Metadata) {
        let mut brokers = lock(&self.inner.brokers);
        for (id, info) in &md.brokers {
            let address = info.address();
            let replace = match brokers.get(id) {
                None => true,
                Some(slot) => slot.try_lock().is_ok_and(|s| s.address != address),
            };
            if replace {
                brokers.insert(*id, self.new_slot(address));
            }
        }
    }

    /// A slot for a connection to `address`, not made yet.
    fn new_slot(&self, address: String) -> Arc<Mutex<BrokerSlot>> {
        Arc::new(Mutex::new(BrokerSlot {
            address,
            conn: None,
            backoff: Backoff::new(
                self.inner.config.reconnect_backoff,
                self.inner.config.reconnect_backoff_max,
            ),
            next_attempt: None,
            connected_before: false,
        }))
    }

    /// True while broker `id`'s last connection attempt failed and its backoff delay is running.
    fn in_backoff(&self, id: i32) -> bool {
        let slot = lock(&self.inner.brokers).get(&id).cloned();
        slot.and_then(|s| {
            s.try_lock()
                .ok()
                .map(|s| s.next_attempt.is_some_and(|at| at > Instant::now()))
        })
        .unwrap_or(false)
    }

    /// The connection to broker `id`, connecting (or reconnecting, after the backoff delay) if needed.
    pub async fn broker(&self, id: i32) -> Result<Arc<Connection>> {
        let slot = lock(&self.inner.brokers).get(&id).cloned();
        let Some(slot) = slot else {
            return Err(Error::UnknownBroker { id });
        };
        self.connected(id, &slot).await
    }

    /// A connection to broker `id` for coordinator requests (group membership, offset commits and
    /// lookups), apart from the one [`broker`](Self::broker) gives for produce and fetch requests
    /// — as the Java client keeps one. A broker answers a connection's requests in order, and holds
    /// a fetch for up to `fetch.max.wait.ms` when there is nothing to return: on a shared
    /// connection every heartbeat, commit and LeaveGroup would wait behind it.
    pub async fn coordinator_link(&self, id: i32) -> Result<Arc<Connection>> {
        let Some(address) = lock(&self.inner.brokers)
            .get(&id)
            .and_then(|slot| slot.try_lock().ok().map(|s| s.address.clone()))
            .or_else(|| self.metadata().brokers.get(&id).map(|b| b.address()))
        else {
            return Err(Error::UnknownBroker { id });
        };
        let slot = {
            let mut links = lock(&self.inner.coordinator_links);
            let slot = links
                .entry(id)
                .or_insert_with(|| self.new_slot(address.clone()));
            // A broker that moved gets a fresh link.
            if slot.try_lock().is_ok_and(|s| s.address != address) {
                *slot = self.new_slot(address);
            }
            slot.clone()
        };
        self.connected(id, &slot).await
    }

    /// The open connection of `slot`, made (again, after the backoff) when there is none.
    async fn connected(&self, id: i32, slot: &Mutex<BrokerSlot>) -> Result<Arc<Connection>> {
        let mut slot = slot.lock().await;
        if let Some(c) = &slot.conn {
            if !c.is_closed() {
                return Ok(c.clone());
            }
            slot.conn = None;
        }
        if let Some(at) = slot.next_attempt {
            tokio::time::sleep_until(at.into()).await;
        }
        match Connection::connect(&slot.address, self.inner.config.connection.clone()).await {
            Ok(c) => {
                tracing::debug!(broker_id = id, broker = %slot.address, "connected");
                let c = Arc::new(c);
                if slot.connected_before {
                    self.inner.counters.reconnected();
                }
                slot.connected_before = true;
                slot.backoff.reset();
                slot.next_attempt = None;
                slot.conn = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                let delay = slot.backoff.next_delay();
                slot.next_attempt = Some(Instant::now() + delay);
                // The first failure in a row is worth a WARN; the retries after it, DEBUG.
                if slot.backoff.failures() == 1 {
                    tracing::warn!(broker_id = id, broker = %slot.address, error = %e, "connecting failed; retrying with backoff");
                } else {
                    tracing::debug!(broker_id = id, broker = %slot.address, error = %e, failures = slot.backoff.failures(), "connecting failed again");
                }
                Err(e)
            }
        }
    }

    /// The leader of `topic`/`partition` and a connection to it, refreshing metadata when the
    /// partition or its leader is unknown.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<(i32, Arc<Connection>)> {
        let mut md = self.metadata_for(&[topic]).await?;
        for attempt in 0..2 {
            match md.leader_of(topic, partition).map(|(id, _)| id) {
                Some(id) => return Ok((id, self.broker(id).await?)),
                None if attempt == 0 => md = self.refresh(&[topic]).await?,
                None => {}
            }
        }
        let code = md
            .topic(topic)
            .map(|t| {
                if t.error.is_err() {
                    t.error
                } else {
                    t.partition(partition)
                        .map_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, |p| {
                            if p.error.is_err() {
                                p.error
                            } else {
                                ErrorCode::LEADER_NOT_AVAILABLE
                            }
                        })
                }
            })
            .unwrap_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        Err(Error::Partition {
            topic: topic.into(),
            partition,
            code,
        })
    }

    /// A connection to any broker (the one with the lowest id that answers), for requests any broker
    /// can serve.
    pub async fn any_broker(&self) -> Result<Arc<Connection>> {
        let mut last = None;
        for r in self.candidates().await {
            match r {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Config {
            message: "no broker known".into(),
        }))
    }
}

#[cfg(test)]
mod tests;
