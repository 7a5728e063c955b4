//! A snapshot of cluster metadata: brokers, topics, partitions and their leaders.

use std::collections::HashMap;
use std::time::Instant;

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::MetadataResponse;
use kbus_protocol::Uuid;

/// A broker as metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The broker id.
    pub id: i32,
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: i32,
    /// The broker's rack, if configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`.
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition id.
    pub id: i32,
    /// The leader's broker id, -1 when there is none right now.
    pub leader: i32,
    /// The leader epoch, -1 when unknown.
    pub leader_epoch: i32,
    /// Brokers holding a replica.
    pub replicas: Vec<i32>,
    /// Replicas in sync with the leader.
    pub in_sync: Vec<i32>,
    /// Replicas that are offline.
    pub offline: Vec<i32>,
    /// The partition's error, if metadata reported one (e.g. LEADER_NOT_AVAILABLE).
    pub error: ErrorCode,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// The topic id (nil when the broker does not report ids).
    pub id: Uuid,
    /// Whether the topic is internal (e.g. `__consumer_offsets`).
    pub internal: bool,
    /// The topic-level error, if any (e.g. UNKNOWN_TOPIC_OR_PARTITION).
    pub error: ErrorCode,
    /// The partitions, sorted by id.
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// The partition with id `id`.
    pub fn partition(&self, id: i32) -> Option<&PartitionInfo> {
        self.partitions
            .binary_search_by_key(&id, |p| p.id)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

/// What the cluster looked like at one moment.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// The cluster id, if the broker reports one.
    pub cluster_id: Option<String>,
    /// The controller's broker id (-1 when unknown).
    pub controller_id: i32,
    /// Brokers by id.
    pub brokers: HashMap<i32, BrokerInfo>,
    /// Topics by name. Only the topics last asked about (or all, after a full refresh).
    pub topics: HashMap<String, TopicInfo>,
    /// When this snapshot was taken.
    pub fetched_at: Instant,
}

impl Metadata {
    /// An empty snapshot (before the first refresh).
    pub fn empty() -> Self {
        Metadata {
            cluster_id: None,
            controller_id: -1,
            brokers: HashMap::new(),
            topics: HashMap::new(),
            fetched_at: Instant::now(),
        }
    }

    /// Builds a snapshot from a Metadata response received at `now`.
    pub fn from_response(resp: &MetadataResponse, now: Instant) -> Self {
        let brokers = resp
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id,
                    BrokerInfo {
                        id: b.node_id,
                        host: b.host.clone(),
                        port: b.port,
                        rack: b.rack.clone(),
                    },
                )
            })
            .collect();
        let topics = resp
            .topics
            .iter()
            .filter_map(|t| {
                let name = t.name.clone()?;
                let mut partitions: Vec<PartitionInfo> = t
                    .partitions
                    .iter()
                    .map(|p| PartitionInfo {
                        id: p.partition_index,
                        leader: p.leader_id,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.clone(),
                        in_sync: p.isr_nodes.clone(),
                        offline: p.offline_replicas.clone(),
                        error: ErrorCode(p.error_code),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.id);
                Some((
                    name.clone(),
                    TopicInfo {
                        name,
                        id: t.topic_id,
                        internal: t.is_internal,
                        error: ErrorCode(t.error_code),
                        partitions,
                    },
                ))
            })
            .collect();
        Metadata {
            cluster_id: resp.cluster_id.clone(),
            controller_id: resp.controller_id,
            brokers,
            topics,
            fetched_at: now,
        }
    }

    /// The topic named `name`, if this snapshot knows it.
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name)
    }

    /// The leader of `topic`/`partition`, if one is known and listed among the brokers.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<&BrokerInfo> {
        let (id, _) = self.leader_of(topic, partition)?;
        self.brokers.get(&id)
    }

    /// The leader's broker id and the leader epoch of `topic`/`partition`, if a leader is known
    /// and listed among the brokers (a leader the broker list does not name cannot be reached).
    pub fn leader_of(&self, topic: &str, partition: i32) -> Option<(i32, i32)> {
        let p = self.topic(topic)?.partition(partition)?;
        (p.leader >= 0 && self.brokers.contains_key(&p.leader))
            .then_some((p.leader, p.leader_epoch))
    }

    /// A copy with `newer`'s topics merged over this snapshot's, and `newer`'s brokers.
    pub fn merged_with(&self, newer: Metadata) -> Metadata {
        let mut topics = self.topics.clone();
        topics.extend(newer.topics);
        Metadata { topics, ..newer }
    }
}

/// Error codes after which metadata about the partition is stale and must be refreshed before a retry.
pub fn needs_refresh(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::LEADER_NOT_AVAILABLE
            | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            | ErrorCode::FENCED_LEADER_EPOCH
            | ErrorCode::UNKNOWN_LEADER_EPOCH
            | ErrorCode::KAFKA_STORAGE_ERROR
            | ErrorCode::UNKNOWN_TOPIC_ID
            | ErrorCode::INCONSISTENT_TOPIC_ID
    )
}
