//! Fetch (key 1): read record batches from partition leaders (or followers). Versions 4–17;
//! flexible from 12.
//!
//! The record data of each partition stays raw bytes (`Option<Bytes>`), sliced out of the input
//! without copying; [`crate::record`] decodes it. Version 7 adds fetch sessions (KIP-227), 12 the
//! flexible encoding with divergence detection and leader hints, 13 identifies topics by id instead
//! of name (KIP-516), 15 moves the replica id into the tagged `replica_state` (KIP-903), 16 adds
//! leader endpoints to the response (KIP-951) and 17 the follower's directory id (KIP-853).

use bytes::{BufMut, Bytes, BytesMut};

use super::produce::{LeaderIdAndEpoch, NodeEndpoint};
use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{tagged_value, Decoder, Encoder, TaggedFields, Uuid};
use crate::primitives::{tags, put_tags};

/// The first flexible version.
const FLEXIBLE: i16 = 12;
/// The first version that names topics by id only.
const TOPIC_IDS: i16 = 13;

/// Fetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FetchRequest {
    /// v12+ (tag 0): the cluster id, if known; lets a broker reject a fetch meant for another
    /// cluster.
    pub cluster_id: Option<String>,
    /// Up to v14: the id of the fetching follower, -1 for a consumer. From v15 it travels in
    /// `replica_state`.
    pub replica_id: i32,
    /// v15+ (tag 1): the fetching follower's id and broker epoch; -1/-1 for a consumer.
    pub replica_state: ReplicaState,
    /// How long the broker may wait for `min_bytes` to accumulate, in milliseconds.
    pub max_wait_ms: i32,
    /// The bytes to accumulate before answering.
    pub min_bytes: i32,
    /// v3+: the most bytes to return in total (a first batch larger than this is still returned,
    /// KIP-74). Defaults to `i32::MAX`.
    pub max_bytes: i32,
    /// v4+: 0 read uncommitted, 1 read committed (only records below the last stable offset, with
    /// the aborted transactions listed).
    pub isolation_level: i8,
    /// v7+: the fetch session id, 0 for none.
    pub session_id: i32,
    /// v7+: the fetch session epoch: -1 for a full fetch without a session, 0 to open one.
    pub session_epoch: i32,
    /// The topics to fetch.
    pub topics: Vec<FetchTopic>,
    /// v7+: in an incremental fetch, the partitions to drop from the session.
    pub forgotten_topics_data: Vec<ForgottenTopic>,
    /// v11+: the rack of the consumer, for fetching from the closest replica (KIP-392).
    pub rack_id: String,
    /// v12+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for FetchRequest {
    fn default() -> Self {
        FetchRequest {
            cluster_id: None,
            replica_id: -1,
            replica_state: ReplicaState::default(),
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: i32::MAX,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            topics: Vec::new(),
            forgotten_topics_data: Vec::new(),
            rack_id: String::new(),
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// The fetching replica's identity (v15+, tagged).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ReplicaState {
    /// The follower's id, -1 for a consumer.
    pub replica_id: i32,
    /// The follower's broker epoch, -1 when not available.
    pub replica_epoch: i64,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for ReplicaState {
    fn default() -> Self {
        ReplicaState {
            replica_id: -1,
            replica_epoch: -1,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One topic of a fetch request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FetchTopic {
    /// Up to v12: the topic name.
    pub topic: String,
    /// v13+: the topic id.
    pub topic_id: Uuid,
    /// The partitions to fetch.
    pub partitions: Vec<FetchPartition>,
    /// v12+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One partition of a fetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FetchPartition {
    /// The partition index.
    pub partition: i32,
    /// v9+: the leader epoch the client knows, for fencing (KIP-320); -1 to skip the check.
    pub current_leader_epoch: i32,
    /// The offset to fetch from.
    pub fetch_offset: i64,
    /// v12+: the epoch of the last record fetched, -1 for none; lets the broker detect a
    /// diverging log.
    pub last_fetched_epoch: i32,
    /// v5+: the follower's log start offset; -1 from consumers.
    pub log_start_offset: i64,
    /// The most bytes to return for this partition (KIP-74 applies as for `max_bytes`).
    pub partition_max_bytes: i32,
    /// v17+ (tag 0): the directory id of the fetching follower; nil from consumers.
    pub replica_directory_id: Uuid,
    /// v12+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for FetchPartition {
    fn default() -> Self {
        FetchPartition {
            partition: 0,
            current_leader_epoch: -1,
            fetch_offset: 0,
            last_fetched_epoch: -1,
            log_start_offset: -1,
            partition_max_bytes: 0,
            replica_directory_id: Uuid::NIL,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// Partitions to remove from an incremental fetch session (v7+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ForgottenTopic {
    /// v7–v12: the topic name.
    pub topic: String,
    /// v13+: the topic id.
    pub topic_id: Uuid,
    /// The partition indexes to forget.
    pub partitions: Vec<i32>,
    /// v12+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// Fetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FetchResponse {
    /// v1+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// v7+: the top-level error code (fetch session errors), 0 for none.
    pub error_code: i16,
    /// v7+: the fetch session id, 0 when the fetch is not part of a session.
    pub session_id: i32,
    /// The topics fetched.
    pub responses: Vec<FetchableTopicResponse>,
    /// v16+ (tag 0): the endpoints of the leaders named in `current_leader` of partitions that
    /// failed with `NOT_LEADER_OR_FOLLOWER` or `FENCED_LEADER_EPOCH`.
    pub node_endpoints: Vec<NodeEndpoint>,
    /// v12+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One topic of a fetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FetchableTopicResponse {
    /// Up to v12: the topic name.
    pub topic: String,
    /// v13+: the topic id.
    pub topic_id: Uuid,
    /// The partitions fetched.
    pub partitions: Vec<PartitionData>,
    /// v12+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One partition of a fetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct PartitionData {
    /// The partition index.
    pub partition_index: i32,
    /// The error code, 0 for none.
    pub error_code: i16,
    /// The high watermark: the offset after the last fully replicated record.
    pub high_watermark: i64,
    /// v4+: the last stable offset: every transaction before it is decided. -1 when unknown.
    pub last_stable_offset: i64,
    /// v5+: the log start offset, -1 when unknown.
    pub log_start_offset: i64,
    /// v12+ (tag 0): when the log diverges from the fetcher's (per `last_fetched_epoch`), the
    /// largest epoch and its end offset the two logs agree on; -1/-1 otherwise.
    pub diverging_epoch: EpochEndOffset,
    /// v12+ (tag 1): the leader the broker believes current, when this broker is not the leader
    /// or the epoch was fenced; -1/-1 otherwise.
    pub current_leader: LeaderIdAndEpoch,
    /// v12+ (tag 2): when the fetch offset is below the log start offset of a KRaft log, the
    /// snapshot to fetch instead; -1/-1 otherwise.
    pub snapshot_id: SnapshotId,
    /// v4+: the aborted transactions among the returned records (read committed only); null
    /// when there are none to report.
    pub aborted_transactions: Option<Vec<AbortedTransaction>>,
    /// v11+: the replica the consumer should fetch from next (KIP-392), -1 for none.
    pub preferred_read_replica: i32,
    /// The record batches, as raw bytes (nullable).
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::primitives::arb::opt_bytes))]
    pub records: Option<Bytes>,
    /// v12+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for PartitionData {
    fn default() -> Self {
        PartitionData {
            partition_index: 0,
            error_code: 0,
            high_watermark: 0,
            last_stable_offset: -1,
            log_start_offset: -1,
            diverging_epoch: EpochEndOffset::default(),
            current_leader: LeaderIdAndEpoch::default(),
            snapshot_id: SnapshotId::default(),
            aborted_transactions: None,
            preferred_read_replica: -1,
            records: None,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// An epoch and the offset where it ends (v12+, tagged).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct EpochEndOffset {
    /// The leader epoch, -1 when none.
    pub epoch: i32,
    /// The end offset of that epoch, -1 when none.
    pub end_offset: i64,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for EpochEndOffset {
    fn default() -> Self {
        EpochEndOffset {
            epoch: -1,
            end_offset: -1,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// A KRaft snapshot id (v12+, tagged). On the wire the end offset comes before the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SnapshotId {
    /// The snapshot's end offset, -1 when none.
    pub end_offset: i64,
    /// The snapshot's epoch, -1 when none.
    pub epoch: i32,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for SnapshotId {
    fn default() -> Self {
        SnapshotId {
            end_offset: -1,
            epoch: -1,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// An aborted transaction among the fetched records (v4+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct AbortedTransaction {
    /// The producer id of the aborted transaction.
    pub producer_id: i64,
    /// The offset of the transaction's first record.
    pub first_offset: i64,
    /// v12+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

const WHAT_CLUSTER_ID: &str = "FetchRequest.cluster_id";
const WHAT_REPLICA_STATE: &str = "FetchRequest.replica_state";
const WHAT_TOPICS: &str = "FetchRequest.topics";
const WHAT_TOPIC: &str = "FetchRequest.topics.topic";
const WHAT_PARTITIONS: &str = "FetchRequest.topics.partitions";
const WHAT_DIRECTORY_ID: &str = "FetchRequest.topics.partitions.replica_directory_id";
const WHAT_FORGOTTEN: &str = "FetchRequest.forgotten_topics_data";
const WHAT_FORGOTTEN_TOPIC: &str = "FetchRequest.forgotten_topics_data.topic";
const WHAT_FORGOTTEN_PARTITIONS: &str = "FetchRequest.forgotten_topics_data.partitions";
const WHAT_RACK_ID: &str = "FetchRequest.rack_id";

impl FetchPartition {
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        buf.put_i32(self.partition);
        if version >= 9 {
            buf.put_i32(self.current_leader_epoch);
        }
        buf.put_i64(self.fetch_offset);
        if version >= 12 {
            buf.put_i32(self.last_fetched_epoch);
        }
        if version >= 5 {
            buf.put_i64(self.log_start_offset);
        }
        buf.put_i32(self.partition_max_bytes);
        if version >= FLEXIBLE {
            let mut known = Vec::new();
            if version >= 17 && !self.replica_directory_id.is_nil() {
                known.push(tagged_value(0, |b| {
                    b.put_uuid(&self.replica_directory_id);
                    Ok(())
                })?);
            }
            self.tagged_fields.encode_with(buf, known)?;
        }
        Ok(())
    }

    fn decode(d: &mut Decoder, version: i16) -> Result<Self> {
        let mut p = FetchPartition {
            partition: d.i32("FetchRequest.topics.partitions.partition")?,
            ..Default::default()
        };
        if version >= 9 {
            p.current_leader_epoch =
                d.i32("FetchRequest.topics.partitions.current_leader_epoch")?;
        }
        p.fetch_offset = d.i64("FetchRequest.topics.partitions.fetch_offset")?;
        if version >= 12 {
            p.last_fetched_epoch = d.i32("FetchRequest.topics.partitions.last_fetched_epoch")?;
        }
        if version >= 5 {
            p.log_start_offset = d.i64("FetchRequest.topics.partitions.log_start_offset")?;
        }
        p.partition_max_bytes = d.i32("FetchRequest.topics.partitions.partition_max_bytes")?;
        if version >= FLEXIBLE {
            let mut directory_id = Uuid::NIL;
            p.tagged_fields = d.tagged_fields(|tag, d| {
                match tag {
                    0 if version >= 17 => directory_id = d.uuid(WHAT_DIRECTORY_ID)?,
                    _ => return Ok(false),
                }
                Ok(true)
            })?;
            p.replica_directory_id = directory_id;
        }
        Ok(p)
    }
}

impl Message for FetchRequest {
    const API_KEY: ApiKey = ApiKey::Fetch;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        if version <= 14 {
            buf.put_i32(self.replica_id);
        }
        buf.put_i32(self.max_wait_ms);
        buf.put_i32(self.min_bytes);
        buf.put_i32(self.max_bytes);
        buf.put_i8(self.isolation_level);
        if version >= 7 {
            buf.put_i32(self.session_id);
            buf.put_i32(self.session_epoch);
        }
        buf.put_array(flexible, &self.topics, WHAT_TOPICS, |buf, t| {
            if version >= TOPIC_IDS {
                buf.put_uuid(&t.topic_id);
            } else {
                buf.put_string(flexible, &t.topic, WHAT_TOPIC)?;
            }
            buf.put_array(flexible, &t.partitions, WHAT_PARTITIONS, |buf, p| {
                p.encode(buf, version)
            })?;
            put_tags(buf, flexible, &t.tagged_fields)
        })?;
        if version >= 7 {
            buf.put_array(
                flexible,
                &self.forgotten_topics_data,
                WHAT_FORGOTTEN,
                |buf, f| {
                    if version >= TOPIC_IDS {
                        buf.put_uuid(&f.topic_id);
                    } else {
                        buf.put_string(flexible, &f.topic, WHAT_FORGOTTEN_TOPIC)?;
                    }
                    buf.put_array(
                        flexible,
                        &f.partitions,
                        WHAT_FORGOTTEN_PARTITIONS,
                        |buf, p| {
                            buf.put_i32(*p);
                            Ok(())
                        },
                    )?;
                    put_tags(buf, flexible, &f.tagged_fields)
                },
            )?;
        }
        if version >= 11 {
            buf.put_string(flexible, &self.rack_id, WHAT_RACK_ID)?;
        }
        if flexible {
            let mut known = Vec::new();
            if let Some(cluster_id) = &self.cluster_id {
                known.push(tagged_value(0, |b| {
                    b.put_nullable_string(true, Some(cluster_id), WHAT_CLUSTER_ID)
                })?);
            }
            if version >= 15 && self.replica_state != ReplicaState::default() {
                known.push(tagged_value(1, |b| {
                    b.put_i32(self.replica_state.replica_id);
                    b.put_i64(self.replica_state.replica_epoch);
                    self.replica_state.tagged_fields.encode(b)
                })?);
            }
            self.tagged_fields.encode_with(buf, known)?;
        }
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = FetchRequest::default();
        if version <= 14 {
            m.replica_id = d.i32("FetchRequest.replica_id")?;
        }
        m.max_wait_ms = d.i32("FetchRequest.max_wait_ms")?;
        m.min_bytes = d.i32("FetchRequest.min_bytes")?;
        m.max_bytes = d.i32("FetchRequest.max_bytes")?;
        m.isolation_level = d.i8("FetchRequest.isolation_level")?;
        if version >= 7 {
            m.session_id = d.i32("FetchRequest.session_id")?;
            m.session_epoch = d.i32("FetchRequest.session_epoch")?;
        }
        m.topics = d.array(flexible, WHAT_TOPICS, |d| {
            let mut t = FetchTopic::default();
            if version >= TOPIC_IDS {
                t.topic_id = d.uuid("FetchRequest.topics.topic_id")?;
            } else {
                t.topic = d.string(flexible, WHAT_TOPIC)?;
            }
            t.partitions = d.array(flexible, WHAT_PARTITIONS, |d| {
                FetchPartition::decode(d, version)
            })?;
            t.tagged_fields = tags(d, flexible)?;
            Ok(t)
        })?;
        if version >= 7 {
            m.forgotten_topics_data = d.array(flexible, WHAT_FORGOTTEN, |d| {
                let mut f = ForgottenTopic::default();
                if version >= TOPIC_IDS {
                    f.topic_id = d.uuid("FetchRequest.forgotten_topics_data.topic_id")?;
                } else {
                    f.topic = d.string(flexible, WHAT_FORGOTTEN_TOPIC)?;
                }
                f.partitions = d.array(flexible, WHAT_FORGOTTEN_PARTITIONS, |d| {
                    d.i32(WHAT_FORGOTTEN_PARTITIONS)
                })?;
                f.tagged_fields = tags(d, flexible)?;
                Ok(f)
            })?;
        }
        if version >= 11 {
            m.rack_id = d.string(flexible, WHAT_RACK_ID)?;
        }
        if flexible {
            let mut cluster_id = None;
            let mut replica_state = ReplicaState::default();
            m.tagged_fields = d.tagged_fields(|tag, d| {
                match tag {
                    0 => cluster_id = d.nullable_string(true, WHAT_CLUSTER_ID)?,
                    1 if version >= 15 => {
                        replica_state = ReplicaState {
                            replica_id: d.i32(WHAT_REPLICA_STATE)?,
                            replica_epoch: d.i64(WHAT_REPLICA_STATE)?,
                            tagged_fields: d.unknown_tagged_fields()?,
                        }
                    }
                    _ => return Ok(false),
                }
                Ok(true)
            })?;
            m.cluster_id = cluster_id;
            m.replica_state = replica_state;
        }
        Ok(m)
    }
}

const WHAT_RESPONSES: &str = "FetchResponse.responses";
const WHAT_RESP_TOPIC: &str = "FetchResponse.responses.topic";
const WHAT_RESP_PARTITIONS: &str = "FetchResponse.responses.partitions";
const WHAT_ABORTED: &str = "FetchResponse.responses.partitions.aborted_transactions";
const WHAT_RECORDS: &str = "FetchResponse.responses.partitions.records";
const WHAT_DIVERGING: &str = "FetchResponse.responses.partitions.diverging_epoch";
const WHAT_CURRENT_LEADER: &str = "FetchResponse.responses.partitions.current_leader";
const WHAT_SNAPSHOT_ID: &str = "FetchResponse.responses.partitions.snapshot_id";
const WHAT_NODE_ENDPOINTS: &str = "FetchResponse.node_endpoints";

impl PartitionData {
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        buf.put_i32(self.partition_index);
        buf.put_i16(self.error_code);
        buf.put_i64(self.high_watermark);
        buf.put_i64(self.last_stable_offset);
        if version >= 5 {
            buf.put_i64(self.log_start_offset);
        }
        buf.put_nullable_array(
            flexible,
            self.aborted_transactions.as_deref(),
            WHAT_ABORTED,
            |buf, a| {
                buf.put_i64(a.producer_id);
                buf.put_i64(a.first_offset);
                put_tags(buf, flexible, &a.tagged_fields)
            },
        )?;
        if version >= 11 {
            buf.put_i32(self.preferred_read_replica);
        }
        buf.put_nullable_bytes(flexible, self.records.as_deref(), WHAT_RECORDS)?;
        if flexible {
            let mut known = Vec::new();
            if self.diverging_epoch != EpochEndOffset::default() {
                let e = &self.diverging_epoch;
                known.push(tagged_value(0, |b| {
                    b.put_i32(e.epoch);
                    b.put_i64(e.end_offset);
                    e.tagged_fields.encode(b)
                })?);
            }
            if !self.current_leader.is_default() {
                known.push(tagged_value(1, |b| self.current_leader.encode(b))?);
            }
            if self.snapshot_id != SnapshotId::default() {
                let s = &self.snapshot_id;
                known.push(tagged_value(2, |b| {
                    b.put_i64(s.end_offset);
                    b.put_i32(s.epoch);
                    s.tagged_fields.encode(b)
                })?);
            }
            self.tagged_fields.encode_with(buf, known)?;
        }
        Ok(())
    }

    fn decode(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut p = PartitionData {
            partition_index: d.i32("FetchResponse.responses.partitions.partition_index")?,
            error_code: d.i16("FetchResponse.responses.partitions.error_code")?,
            high_watermark: d.i64("FetchResponse.responses.partitions.high_watermark")?,
            last_stable_offset: d.i64("FetchResponse.responses.partitions.last_stable_offset")?,
            ..Default::default()
        };
        if version >= 5 {
            p.log_start_offset = d.i64("FetchResponse.responses.partitions.log_start_offset")?;
        }
        p.aborted_transactions = d.nullable_array(flexible, WHAT_ABORTED, |d| {
            Ok(AbortedTransaction {
                producer_id: d.i64(WHAT_ABORTED)?,
                first_offset: d.i64(WHAT_ABORTED)?,
                tagged_fields: tags(d, flexible)?,
            })
        })?;
        if version >= 11 {
            p.preferred_read_replica =
                d.i32("FetchResponse.responses.partitions.preferred_read_replica")?;
        }
        p.records = d.nullable_bytes(flexible, WHAT_RECORDS)?;
        if flexible {
            let mut diverging_epoch = EpochEndOffset::default();
            let mut current_leader = LeaderIdAndEpoch::default();
            let mut snapshot_id = SnapshotId::default();
            p.tagged_fields = d.tagged_fields(|tag, d| {
                match tag {
                    0 => {
                        diverging_epoch = EpochEndOffset {
                            epoch: d.i32(WHAT_DIVERGING)?,
                            end_offset: d.i64(WHAT_DIVERGING)?,
                            tagged_fields: d.unknown_tagged_fields()?,
                        }
                    }
                    1 => current_leader = LeaderIdAndEpoch::decode(d, WHAT_CURRENT_LEADER)?,
                    2 => {
                        snapshot_id = SnapshotId {
                            end_offset: d.i64(WHAT_SNAPSHOT_ID)?,
                            epoch: d.i32(WHAT_SNAPSHOT_ID)?,
                            tagged_fields: d.unknown_tagged_fields()?,
                        }
                    }
                    _ => return Ok(false),
                }
                Ok(true)
            })?;
            p.diverging_epoch = diverging_epoch;
            p.current_leader = current_leader;
            p.snapshot_id = snapshot_id;
        }
        Ok(p)
    }
}

impl Message for FetchResponse {
    const API_KEY: ApiKey = ApiKey::Fetch;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        buf.put_i32(self.throttle_time_ms);
        if version >= 7 {
            buf.put_i16(self.error_code);
            buf.put_i32(self.session_id);
        }
        buf.put_array(flexible, &self.responses, WHAT_RESPONSES, |buf, t| {
            if version >= TOPIC_IDS {
                buf.put_uuid(&t.topic_id);
            } else {
                buf.put_string(flexible, &t.topic, WHAT_RESP_TOPIC)?;
            }
            buf.put_array(flexible, &t.partitions, WHAT_RESP_PARTITIONS, |buf, p| {
                p.encode(buf, version)
            })?;
            put_tags(buf, flexible, &t.tagged_fields)
        })?;
        if flexible {
            NodeEndpoint::put_tagged_section(
                buf,
                &self.node_endpoints,
                version >= 16,
                &self.tagged_fields,
                WHAT_NODE_ENDPOINTS,
            )?;
        }
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = FetchResponse {
            throttle_time_ms: d.i32("FetchResponse.throttle_time_ms")?,
            ..Default::default()
        };
        if version >= 7 {
            m.error_code = d.i16("FetchResponse.error_code")?;
            m.session_id = d.i32("FetchResponse.session_id")?;
        }
        m.responses = d.array(flexible, WHAT_RESPONSES, |d| {
            let mut t = FetchableTopicResponse::default();
            if version >= TOPIC_IDS {
                t.topic_id = d.uuid("FetchResponse.responses.topic_id")?;
            } else {
                t.topic = d.string(flexible, WHAT_RESP_TOPIC)?;
            }
            t.partitions = d.array(flexible, WHAT_RESP_PARTITIONS, |d| {
                PartitionData::decode(d, version)
            })?;
            t.tagged_fields = tags(d, flexible)?;
            Ok(t)
        })?;
        if flexible {
            (m.node_endpoints, m.tagged_fields) =
                NodeEndpoint::tagged_section(d, version >= 16, WHAT_NODE_ENDPOINTS)?;
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_request() -> FetchRequest {
        FetchRequest {
            max_wait_ms: 500,
            min_bytes: 1,
            isolation_level: 1,
            topics: vec![FetchTopic {
                topic: "t".into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: 10,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn v4_request_bytes() {
        let want: &[u8] = &[
            0xff, 0xff, 0xff, 0xff, // replica_id -1
            0x00, 0x00, 0x01, 0xf4, // max_wait_ms 500
            0x00, 0x00, 0x00, 0x01, // min_bytes 1
            0x7f, 0xff, 0xff, 0xff, // max_bytes
            0x01, // isolation_level: read committed
            0x00, 0x00, 0x00, 0x01, // 1 topic
            0x00, 0x01, b't', // topic
            0x00, 0x00, 0x00, 0x01, // 1 partition
            0x00, 0x00, 0x00, 0x00, // partition 0
            0, 0, 0, 0, 0, 0, 0, 10, // fetch_offset
            0x00, 0x10, 0x00, 0x00, // partition_max_bytes 1 MiB
        ];
        assert_eq!(&v4_request().to_bytes(4).unwrap()[..], want);
        let back = FetchRequest::decode_exact(Bytes::from_static(want), 4).unwrap();
        assert_eq!(back, v4_request());
    }

    fn v17_request() -> FetchRequest {
        FetchRequest {
            cluster_id: Some("c".into()),
            replica_state: ReplicaState {
                replica_id: 5,
                replica_epoch: 9,
                tagged_fields: TaggedFields::default(),
            },
            max_wait_ms: 500,
            min_bytes: 1,
            topics: vec![FetchTopic {
                topic_id: Uuid([0x11; 16]),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: 10,
                    partition_max_bytes: 1 << 20,
                    replica_directory_id: Uuid([0x22; 16]),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn v17_request_bytes() {
        let mut want: Vec<u8> = vec![
            0x00, 0x00, 0x01, 0xf4, // max_wait_ms 500 (no replica_id from v15)
            0x00, 0x00, 0x00, 0x01, // min_bytes 1
            0x7f, 0xff, 0xff, 0xff, // max_bytes
            0x00, // isolation_level
            0x00, 0x00, 0x00, 0x00, // session_id 0
            0xff, 0xff, 0xff, 0xff, // session_epoch -1
            0x02, // 1 topic
        ];
        want.extend_from_slice(&[0x11; 16]); // topic_id
        want.extend_from_slice(&[
            0x02, // 1 partition
            0x00, 0x00, 0x00, 0x00, // partition 0
            0xff, 0xff, 0xff, 0xff, // current_leader_epoch -1
            0, 0, 0, 0, 0, 0, 0, 10, // fetch_offset
            0xff, 0xff, 0xff, 0xff, // last_fetched_epoch -1
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // log_start_offset -1
            0x00, 0x10, 0x00, 0x00, // partition_max_bytes
            0x01, 0x00, 0x10, // 1 tagged field: tag 0 (replica_directory_id), 16 bytes
        ]);
        want.extend_from_slice(&[0x22; 16]);
        want.extend_from_slice(&[
            0x00, // topic tags
            0x01, // forgotten_topics_data: empty
            0x01, // rack_id: ""
            0x02, // 2 tagged fields
            0x00, 0x02, 0x02, b'c', // tag 0: cluster_id "c"
            0x01, 0x0d, // tag 1: replica_state, 13 bytes
            0x00, 0x00, 0x00, 0x05, // replica_id 5
            0, 0, 0, 0, 0, 0, 0, 9,    // replica_epoch 9
            0x00, // replica_state tags
        ]);
        assert_eq!(&v17_request().to_bytes(17).unwrap()[..], &want[..]);
        let back = FetchRequest::decode_exact(Bytes::from(want), 17).unwrap();
        assert_eq!(back, v17_request());
    }

    fn v4_response() -> FetchResponse {
        FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "t".into(),
                partitions: vec![PartitionData {
                    high_watermark: 100,
                    last_stable_offset: 100,
                    aborted_transactions: Some(vec![AbortedTransaction {
                        producer_id: 7,
                        first_offset: 50,
                        tagged_fields: TaggedFields::default(),
                    }]),
                    records: Some(Bytes::from_static(b"xy")),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn v4_response_bytes() {
        let want: &[u8] = &[
            0x00, 0x00, 0x00, 0x00, // throttle_time_ms
            0x00, 0x00, 0x00, 0x01, // 1 topic
            0x00, 0x01, b't', // topic
            0x00, 0x00, 0x00, 0x01, // 1 partition
            0x00, 0x00, 0x00, 0x00, // partition_index 0
            0x00, 0x00, // error_code
            0, 0, 0, 0, 0, 0, 0, 100, // high_watermark
            0, 0, 0, 0, 0, 0, 0, 100, // last_stable_offset
            0x00, 0x00, 0x00, 0x01, // 1 aborted transaction
            0, 0, 0, 0, 0, 0, 0, 7, // producer_id
            0, 0, 0, 0, 0, 0, 0, 50, // first_offset
            0x00, 0x00, 0x00, 0x02, b'x', b'y', // records
        ];
        assert_eq!(&v4_response().to_bytes(4).unwrap()[..], want);
        let back = FetchResponse::decode_exact(Bytes::from_static(want), 4).unwrap();
        assert_eq!(back, v4_response());
        assert_eq!(
            back.responses[0].partitions[0].records.as_deref(),
            Some(&b"xy"[..])
        );
    }

    fn v16_response() -> FetchResponse {
        FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic_id: Uuid([0x33; 16]),
                partitions: vec![PartitionData {
                    error_code: 6,
                    high_watermark: 0,
                    diverging_epoch: EpochEndOffset {
                        epoch: 4,
                        end_offset: 100,
                        tagged_fields: TaggedFields::default(),
                    },
                    current_leader: LeaderIdAndEpoch {
                        leader_id: 2,
                        leader_epoch: 7,
                        tagged_fields: TaggedFields::default(),
                    },
                    snapshot_id: SnapshotId {
                        end_offset: 200,
                        epoch: 3,
                        tagged_fields: TaggedFields::default(),
                    },
                    ..Default::default()
                }],
                ..Default::default()
            }],
            node_endpoints: vec![NodeEndpoint {
                node_id: 2,
                host: "h".into(),
                port: 9092,
                rack: None,
                tagged_fields: TaggedFields::default(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn v16_response_bytes() {
        let mut want: Vec<u8> = vec![
            0x00, 0x00, 0x00, 0x00, // throttle_time_ms
            0x00, 0x00, // error_code
            0x00, 0x00, 0x00, 0x00, // session_id
            0x02, // 1 topic
        ];
        want.extend_from_slice(&[0x33; 16]); // topic_id
        want.extend_from_slice(&[
            0x02, // 1 partition
            0x00, 0x00, 0x00, 0x00, // partition_index 0
            0x00, 0x06, // error_code NOT_LEADER_OR_FOLLOWER
            0, 0, 0, 0, 0, 0, 0, 0, // high_watermark 0
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // last_stable_offset -1
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // log_start_offset -1
            0x00, // aborted_transactions: null
            0xff, 0xff, 0xff, 0xff, // preferred_read_replica -1
            0x00, // records: null
            0x03, // 3 tagged fields
            0x00, 0x0d, // tag 0: diverging_epoch, 13 bytes
            0x00, 0x00, 0x00, 0x04, // epoch 4
            0, 0, 0, 0, 0, 0, 0, 100,  // end_offset 100
            0x00, // its tags
            0x01, 0x09, // tag 1: current_leader, 9 bytes
            0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x07, 0x00, // leader 2, epoch 7
            0x02, 0x0d, // tag 2: snapshot_id, 13 bytes
            0, 0, 0, 0, 0, 0, 0, 200, // end_offset 200
            0x00, 0x00, 0x00, 0x03, // epoch 3
            0x00, // its tags
            0x00, // topic tags
            0x01, 0x00, 0x0d, // 1 tagged field: tag 0 (node_endpoints), 13 bytes
            0x02, // 1 endpoint
            0x00, 0x00, 0x00, 0x02, // node_id 2
            0x02, b'h', // host
            0x00, 0x00, 0x23, 0x84, // port 9092
            0x00, // rack: null
            0x00, // endpoint tags
        ]);
        assert_eq!(&v16_response().to_bytes(16).unwrap()[..], &want[..]);
        let back = FetchResponse::decode_exact(Bytes::from(want.clone()), 16).unwrap();
        assert_eq!(back, v16_response());
        // Version 15 predates node_endpoints: the top-level tag 0 stays unknown.
        let v15 = FetchResponse::decode_exact(Bytes::from(want), 15).unwrap();
        assert!(v15.node_endpoints.is_empty());
        assert_eq!(v15.tagged_fields.0.len(), 1);
    }

    #[test]
    fn truncated_input_is_an_error() {
        for (req, version) in [(v4_request(), 4), (v17_request(), 17), (v17_request(), 12)] {
            let full = req.to_bytes(version).unwrap();
            for cut in 0..full.len() {
                assert!(FetchRequest::decode_exact(full.slice(..cut), version).is_err());
            }
        }
        for (resp, version) in [(v4_response(), 4), (v16_response(), 16)] {
            let full = resp.to_bytes(version).unwrap();
            for cut in 0..full.len() {
                assert!(FetchResponse::decode_exact(full.slice(..cut), version).is_err());
            }
        }
    }
}
