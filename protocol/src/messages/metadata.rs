//! Metadata (key 3): the brokers of a cluster, its controller, and for each topic its partitions,
//! leaders and replicas. Versions 0–13; flexible from 9.
//!
//! Version 13 (Kafka 4.0, KIP-1102) changes nothing in the request; it adds a top-level error code to
//! the response, with which a broker can ask the client to bootstrap again (`REBOOTSTRAP_REQUIRED`).

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields, Uuid};
use crate::primitives::{tags, put_tags};

/// The value Kafka uses for "authorized operations were not asked for".
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

const FIRST_FLEXIBLE: i16 = 9;

/// Metadata request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MetadataRequest {
    /// The topics to describe; `None` asks for every topic (v1+: a null array).
    ///
    /// Version 0 has no null array: there an empty array means "every topic". `None` is written as an
    /// empty array at v0, and an empty array read at v0 becomes `None`, so `Some(vec![])` cannot ask
    /// for "no topics" at v0.
    pub topics: Option<Vec<MetadataRequestTopic>>,
    /// v4+: whether the broker may create requested topics that do not exist (if it is configured
    /// to). Kafka's default, and the behaviour of earlier versions, is `true`.
    pub allow_auto_topic_creation: bool,
    /// v8–10: whether to return the operations the client may perform on the cluster.
    pub include_cluster_authorized_operations: bool,
    /// v8+: whether to return the operations the client may perform on each topic.
    pub include_topic_authorized_operations: bool,
    /// v9+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for MetadataRequest {
    fn default() -> Self {
        MetadataRequest {
            topics: None,
            allow_auto_topic_creation: true,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One topic asked for in a Metadata request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MetadataRequestTopic {
    /// v10+: the topic id, nil when asking by name. Brokers honour lookups by id from v12.
    pub topic_id: Uuid,
    /// The topic name; null only from v10, when asking by id. Before v10 `None` is written as an
    /// empty name.
    pub name: Option<String>,
    /// v9+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl MetadataRequestTopic {
    /// A topic asked for by name.
    pub fn by_name(name: impl Into<String>) -> Self {
        MetadataRequestTopic {
            name: Some(name.into()),
            ..Default::default()
        }
    }
}

/// Writes a name that is nullable only in some versions; where it is not, a null is written empty.
fn put_name(
    buf: &mut BytesMut,
    flexible: bool,
    nullable: bool,
    name: Option<&str>,
    what: &'static str,
) -> Result<()> {
    if nullable {
        buf.put_nullable_string(flexible, name, what)
    } else {
        buf.put_string(flexible, name.unwrap_or_default(), what)
    }
}

fn get_name(
    d: &mut Decoder,
    flexible: bool,
    nullable: bool,
    what: &'static str,
) -> Result<Option<String>> {
    if nullable {
        d.nullable_string(flexible, what)
    } else {
        d.string(flexible, what).map(Some)
    }
}

fn put_i32s(buf: &mut BytesMut, flexible: bool, v: &[i32], what: &'static str) -> Result<()> {
    buf.put_array(flexible, v, what, |b, x| {
        b.put_i32(*x);
        Ok(())
    })
}

fn get_i32s(d: &mut Decoder, flexible: bool, what: &'static str) -> Result<Vec<i32>> {
    d.array(flexible, what, |d| d.i32(what))
}

const WHAT_REQ_TOPICS: &str = "MetadataRequest.topics";

impl Message for MetadataRequest {
    const API_KEY: ApiKey = ApiKey::Metadata;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FIRST_FLEXIBLE;
        let topics = match (&self.topics, version) {
            (None, 0) => Some(&[][..]),
            (topics, _) => topics.as_deref(),
        };
        buf.put_nullable_array(flexible, topics, WHAT_REQ_TOPICS, |b, t| {
            if version >= 10 {
                b.put_uuid(&t.topic_id);
            }
            put_name(
                b,
                flexible,
                version >= 10,
                t.name.as_deref(),
                "MetadataRequest.topics.name",
            )?;
            put_tags(b, flexible, &t.tagged_fields)
        })?;
        if version >= 4 {
            buf.put_bool(self.allow_auto_topic_creation);
        }
        if (8..=10).contains(&version) {
            buf.put_bool(self.include_cluster_authorized_operations);
        }
        if version >= 8 {
            buf.put_bool(self.include_topic_authorized_operations);
        }
        put_tags(buf, flexible, &self.tagged_fields)
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FIRST_FLEXIBLE;
        let mut m = MetadataRequest {
            topics: d.nullable_array(flexible, WHAT_REQ_TOPICS, |d| {
                let topic_id = if version >= 10 {
                    d.uuid("MetadataRequest.topics.topic_id")?
                } else {
                    Uuid::NIL
                };
                Ok(MetadataRequestTopic {
                    topic_id,
                    name: get_name(d, flexible, version >= 10, "MetadataRequest.topics.name")?,
                    tagged_fields: tags(d, flexible)?,
                })
            })?,
            ..Default::default()
        };
        if version == 0 && m.topics.as_ref().is_some_and(Vec::is_empty) {
            m.topics = None;
        }
        if version >= 4 {
            m.allow_auto_topic_creation = d.bool("MetadataRequest.allow_auto_topic_creation")?;
        }
        if (8..=10).contains(&version) {
            m.include_cluster_authorized_operations =
                d.bool("MetadataRequest.include_cluster_authorized_operations")?;
        }
        if version >= 8 {
            m.include_topic_authorized_operations =
                d.bool("MetadataRequest.include_topic_authorized_operations")?;
        }
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

/// Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MetadataResponse {
    /// v3+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// The brokers of the cluster.
    pub brokers: Vec<MetadataResponseBroker>,
    /// v2+: the cluster id, if the broker knows it.
    pub cluster_id: Option<String>,
    /// v1+: the id of the controller broker, -1 when unknown.
    pub controller_id: i32,
    /// The topics described.
    pub topics: Vec<MetadataResponseTopic>,
    /// v8–10: a bit field of the operations the client may perform on the cluster;
    /// [`AUTHORIZED_OPERATIONS_OMITTED`] when not asked for.
    pub cluster_authorized_operations: i32,
    /// v13+: the top-level error code, 0 for none (for example `REBOOTSTRAP_REQUIRED`, 129).
    pub error_code: i16,
    /// v9+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for MetadataResponse {
    fn default() -> Self {
        MetadataResponse {
            throttle_time_ms: 0,
            brokers: Vec::new(),
            cluster_id: None,
            controller_id: -1,
            topics: Vec::new(),
            cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
            error_code: 0,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// A broker in a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MetadataResponseBroker {
    /// The broker id.
    pub node_id: i32,
    /// The broker's host name.
    pub host: String,
    /// The broker's port.
    pub port: i32,
    /// v1+: the broker's rack, if it has one.
    pub rack: Option<String>,
    /// v9+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// A topic in a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MetadataResponseTopic {
    /// The topic's error code, 0 for none.
    pub error_code: i16,
    /// The topic name; null only from v12, for a topic asked for by an id the broker does not
    /// know. Before v12 `None` is written as an empty name.
    pub name: Option<String>,
    /// v10+: the topic id, nil when unknown (a topic asked for by a name that does not exist).
    pub topic_id: Uuid,
    /// v1+: whether the topic is internal (such as `__consumer_offsets`).
    pub is_internal: bool,
    /// The topic's partitions.
    pub partitions: Vec<MetadataResponsePartition>,
    /// v8+: a bit field of the operations the client may perform on the topic;
    /// [`AUTHORIZED_OPERATIONS_OMITTED`] when not asked for.
    pub topic_authorized_operations: i32,
    /// v9+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for MetadataResponseTopic {
    fn default() -> Self {
        MetadataResponseTopic {
            error_code: 0,
            name: None,
            topic_id: Uuid::NIL,
            is_internal: false,
            partitions: Vec::new(),
            topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// A partition in a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MetadataResponsePartition {
    /// The partition's error code, 0 for none.
    pub error_code: i16,
    /// The partition index.
    pub partition_index: i32,
    /// The id of the leader broker, -1 when there is none.
    pub leader_id: i32,
    /// v7+: the leader epoch, -1 when unknown.
    pub leader_epoch: i32,
    /// The brokers holding a replica of the partition.
    pub replica_nodes: Vec<i32>,
    /// The replicas in sync with the leader.
    pub isr_nodes: Vec<i32>,
    /// v5+: the replicas that are offline.
    pub offline_replicas: Vec<i32>,
    /// v9+: unknown tagged fields (v14, newer than Kafka 4.0, puts the creation time at tag 0).
    pub tagged_fields: TaggedFields,
}

impl Default for MetadataResponsePartition {
    fn default() -> Self {
        MetadataResponsePartition {
            error_code: 0,
            partition_index: 0,
            leader_id: -1,
            leader_epoch: -1,
            replica_nodes: Vec::new(),
            isr_nodes: Vec::new(),
            offline_replicas: Vec::new(),
            tagged_fields: TaggedFields::default(),
        }
    }
}

const WHAT_BROKERS: &str = "MetadataResponse.brokers";
const WHAT_TOPICS: &str = "MetadataResponse.topics";
const WHAT_PARTITIONS: &str = "MetadataResponse.topics.partitions";

fn put_partition(
    b: &mut BytesMut,
    version: i16,
    flexible: bool,
    p: &MetadataResponsePartition,
) -> Result<()> {
    b.put_i16(p.error_code);
    b.put_i32(p.partition_index);
    b.put_i32(p.leader_id);
    if version >= 7 {
        b.put_i32(p.leader_epoch);
    }
    put_i32s(
        b,
        flexible,
        &p.replica_nodes,
        "MetadataResponse.topics.partitions.replica_nodes",
    )?;
    put_i32s(
        b,
        flexible,
        &p.isr_nodes,
        "MetadataResponse.topics.partitions.isr_nodes",
    )?;
    if version >= 5 {
        put_i32s(
            b,
            flexible,
            &p.offline_replicas,
            "MetadataResponse.topics.partitions.offline_replicas",
        )?;
    }
    put_tags(b, flexible, &p.tagged_fields)
}

fn get_partition(
    d: &mut Decoder,
    version: i16,
    flexible: bool,
) -> Result<MetadataResponsePartition> {
    let mut p = MetadataResponsePartition {
        error_code: d.i16("MetadataResponse.topics.partitions.error_code")?,
        partition_index: d.i32("MetadataResponse.topics.partitions.partition_index")?,
        leader_id: d.i32("MetadataResponse.topics.partitions.leader_id")?,
        ..Default::default()
    };
    if version >= 7 {
        p.leader_epoch = d.i32("MetadataResponse.topics.partitions.leader_epoch")?;
    }
    p.replica_nodes = get_i32s(
        d,
        flexible,
        "MetadataResponse.topics.partitions.replica_nodes",
    )?;
    p.isr_nodes = get_i32s(d, flexible, "MetadataResponse.topics.partitions.isr_nodes")?;
    if version >= 5 {
        p.offline_replicas = get_i32s(
            d,
            flexible,
            "MetadataResponse.topics.partitions.offline_replicas",
        )?;
    }
    p.tagged_fields = tags(d, flexible)?;
    Ok(p)
}

fn put_topic(
    b: &mut BytesMut,
    version: i16,
    flexible: bool,
    t: &MetadataResponseTopic,
) -> Result<()> {
    b.put_i16(t.error_code);
    put_name(
        b,
        flexible,
        version >= 12,
        t.name.as_deref(),
        "MetadataResponse.topics.name",
    )?;
    if version >= 10 {
        b.put_uuid(&t.topic_id);
    }
    if version >= 1 {
        b.put_bool(t.is_internal);
    }
    b.put_array(flexible, &t.partitions, WHAT_PARTITIONS, |b, p| {
        put_partition(b, version, flexible, p)
    })?;
    if version >= 8 {
        b.put_i32(t.topic_authorized_operations);
    }
    put_tags(b, flexible, &t.tagged_fields)
}

fn get_topic(d: &mut Decoder, version: i16, flexible: bool) -> Result<MetadataResponseTopic> {
    let mut t = MetadataResponseTopic {
        error_code: d.i16("MetadataResponse.topics.error_code")?,
        name: get_name(d, flexible, version >= 12, "MetadataResponse.topics.name")?,
        ..Default::default()
    };
    if version >= 10 {
        t.topic_id = d.uuid("MetadataResponse.topics.topic_id")?;
    }
    if version >= 1 {
        t.is_internal = d.bool("MetadataResponse.topics.is_internal")?;
    }
    t.partitions = d.array(flexible, WHAT_PARTITIONS, |d| {
        get_partition(d, version, flexible)
    })?;
    if version >= 8 {
        t.topic_authorized_operations =
            d.i32("MetadataResponse.topics.topic_authorized_operations")?;
    }
    t.tagged_fields = tags(d, flexible)?;
    Ok(t)
}

impl Message for MetadataResponse {
    const API_KEY: ApiKey = ApiKey::Metadata;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FIRST_FLEXIBLE;
        if version >= 3 {
            buf.put_i32(self.throttle_time_ms);
        }
        buf.put_array(flexible, &self.brokers, WHAT_BROKERS, |b, br| {
            b.put_i32(br.node_id);
            b.put_string(flexible, &br.host, "MetadataResponse.brokers.host")?;
            b.put_i32(br.port);
            if version >= 1 {
                b.put_nullable_string(
                    flexible,
                    br.rack.as_deref(),
                    "MetadataResponse.brokers.rack",
                )?;
            }
            put_tags(b, flexible, &br.tagged_fields)
        })?;
        if version >= 2 {
            buf.put_nullable_string(
                flexible,
                self.cluster_id.as_deref(),
                "MetadataResponse.cluster_id",
            )?;
        }
        if version >= 1 {
            buf.put_i32(self.controller_id);
        }
        buf.put_array(flexible, &self.topics, WHAT_TOPICS, |b, t| {
            put_topic(b, version, flexible, t)
        })?;
        if (8..=10).contains(&version) {
            buf.put_i32(self.cluster_authorized_operations);
        }
        if version >= 13 {
            buf.put_i16(self.error_code);
        }
        put_tags(buf, flexible, &self.tagged_fields)
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FIRST_FLEXIBLE;
        let mut m = MetadataResponse::default();
        if version >= 3 {
            m.throttle_time_ms = d.i32("MetadataResponse.throttle_time_ms")?;
        }
        m.brokers = d.array(flexible, WHAT_BROKERS, |d| {
            let mut br = MetadataResponseBroker {
                node_id: d.i32("MetadataResponse.brokers.node_id")?,
                host: d.string(flexible, "MetadataResponse.brokers.host")?,
                port: d.i32("MetadataResponse.brokers.port")?,
                ..Default::default()
            };
            if version >= 1 {
                br.rack = d.nullable_string(flexible, "MetadataResponse.brokers.rack")?;
            }
            br.tagged_fields = tags(d, flexible)?;
            Ok(br)
        })?;
        if version >= 2 {
            m.cluster_id = d.nullable_string(flexible, "MetadataResponse.cluster_id")?;
        }
        if version >= 1 {
            m.controller_id = d.i32("MetadataResponse.controller_id")?;
        }
        m.topics = d.array(flexible, WHAT_TOPICS, |d| get_topic(d, version, flexible))?;
        if (8..=10).contains(&version) {
            m.cluster_authorized_operations =
                d.i32("MetadataResponse.cluster_authorized_operations")?;
        }
        if version >= 13 {
            m.error_code = d.i16("MetadataResponse.error_code")?;
        }
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    // Version 13 is exercised through the body functions, which do not consult the crate's
    // supported range.
    fn body<M: Message>(m: &M, version: i16) -> Bytes {
        let mut b = BytesMut::new();
        m.encode_body(&mut b, version).unwrap();
        b.freeze()
    }

    fn parse<M: Message>(bytes: Bytes, version: i16) -> Result<M> {
        let mut d = Decoder::new(bytes);
        let m = M::decode_body(&mut d, version)?;
        d.finish("test")?;
        Ok(m)
    }

    #[test]
    fn request_v0_all_topics_is_an_empty_array() {
        let req = MetadataRequest::default();
        assert_eq!(&body(&req, 0)[..], [0, 0, 0, 0]);
        let back = parse::<MetadataRequest>(Bytes::from_static(&[0, 0, 0, 0]), 0).unwrap();
        assert_eq!(back.topics, None);
        // From v1 "all topics" is a null array; v4 adds allow_auto_topic_creation.
        assert_eq!(&body(&req, 1)[..], [0xff, 0xff, 0xff, 0xff]);
        assert_eq!(&body(&req, 4)[..], [0xff, 0xff, 0xff, 0xff, 1]);
    }

    #[test]
    fn request_v8_and_v12_bytes() {
        let req = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic::by_name("ab")]),
            allow_auto_topic_creation: false,
            include_cluster_authorized_operations: true,
            include_topic_authorized_operations: true,
            tagged_fields: TaggedFields::default(),
        };
        // v8: INT32 count, INT16-prefixed name, then three booleans.
        let v8: &[u8] = &[0, 0, 0, 1, 0, 2, b'a', b'b', 0, 1, 1];
        assert_eq!(&body(&req, 8)[..], v8);
        assert_eq!(parse::<MetadataRequest>(Bytes::from(v8), 8).unwrap(), req);

        // v12: compact count 1+1, a nil topic id, compact name, topic tags; no cluster flag.
        let mut v12 = vec![2];
        v12.extend_from_slice(&[0; 16]);
        v12.extend_from_slice(&[3, b'a', b'b', 0, 0, 1, 0]);
        assert_eq!(&body(&req, 12)[..], &v12[..]);
        assert_eq!(&body(&req, 13)[..], &v12[..]);
        let back = parse::<MetadataRequest>(Bytes::from(v12), 12).unwrap();
        assert!(!back.include_cluster_authorized_operations);
        assert_eq!(back.topics, req.topics);

        // A topic asked for by id only: a null compact name.
        let by_id = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                topic_id: Uuid([7; 16]),
                name: None,
                tagged_fields: TaggedFields::default(),
            }]),
            ..Default::default()
        };
        let mut want = vec![2];
        want.extend_from_slice(&[7; 16]);
        want.extend_from_slice(&[0, 0, 1, 0, 0]);
        assert_eq!(&body(&by_id, 12)[..], &want[..]);
    }

    fn sample_response() -> MetadataResponse {
        MetadataResponse {
            throttle_time_ms: 0,
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "h".into(),
                port: 9092,
                rack: None,
                tagged_fields: TaggedFields::default(),
            }],
            cluster_id: Some("c".into()),
            controller_id: 1,
            topics: vec![MetadataResponseTopic {
                name: Some("t".into()),
                partitions: vec![MetadataResponsePartition {
                    partition_index: 0,
                    leader_id: 1,
                    leader_epoch: 5,
                    replica_nodes: vec![1],
                    isr_nodes: vec![1],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn response_v1_bytes() {
        let resp = sample_response();
        #[rustfmt::skip]
        let v1: &[u8] = &[
            0, 0, 0, 1,                 // brokers: 1
            0, 0, 0, 1,                 //   node_id 1
            0, 1, b'h',                 //   host "h"
            0, 0, 0x23, 0x84,           //   port 9092
            0xff, 0xff,                 //   rack null
            0, 0, 0, 1,                 // controller_id 1
            0, 0, 0, 1,                 // topics: 1
            0, 0,                       //   error_code
            0, 1, b't',                 //   name "t"
            0,                          //   is_internal
            0, 0, 0, 1,                 //   partitions: 1
            0, 0,                       //     error_code
            0, 0, 0, 0,                 //     partition_index 0
            0, 0, 0, 1,                 //     leader_id 1
            0, 0, 0, 1, 0, 0, 0, 1,     //     replica_nodes [1]
            0, 0, 0, 1, 0, 0, 0, 1,     //     isr_nodes [1]
        ];
        assert_eq!(&body(&resp, 1)[..], v1);
        let back = parse::<MetadataResponse>(Bytes::from(v1), 1).unwrap();
        // v1 carries neither cluster id nor leader epoch: they read back as Kafka's defaults.
        assert_eq!(back.cluster_id, None);
        assert_eq!(back.topics[0].partitions[0].leader_epoch, -1);
        assert_eq!(back.topics[0].topic_authorized_operations, i32::MIN);
    }

    #[test]
    fn response_v13_bytes() {
        let mut resp = sample_response();
        resp.error_code = 129;
        let mut want: Vec<u8> = vec![
            0, 0, 0, 0, // throttle_time_ms
            2, // brokers: 1
            0, 0, 0, 1, 2, b'h', 0, 0, 0x23, 0x84, 0, 0, // node, host, port, null rack, tags
            2, b'c', // cluster_id "c"
            0, 0, 0, 1, // controller_id
            2, // topics: 1
            0, 0, 2, b't', // error_code, name
        ];
        want.extend_from_slice(&[0; 16]); // topic_id
        want.extend_from_slice(&[
            0, // is_internal
            2, // partitions: 1
            0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // error_code, index, leader
            0, 0, 0, 5, // leader_epoch
            2, 0, 0, 0, 1, 2, 0, 0, 0, 1, 1, // replicas [1], isr [1], offline []
            0, // partition tags
            0x80, 0, 0, 0, // topic_authorized_operations
            0, // topic tags
            0, 129, // error_code
            0,   // tags
        ]);
        assert_eq!(&body(&resp, 13)[..], &want[..]);
        assert_eq!(
            parse::<MetadataResponse>(Bytes::from(want), 13).unwrap(),
            resp
        );
    }

    /// Version 13 lies outside the range the crate-wide round-trip test walks until `api_key.rs`
    /// lists it, so it is round-tripped here.
    #[cfg(feature = "arbitrary")]
    #[test]
    fn v13_round_trips() {
        use arbitrary::{Arbitrary, Unstructured};

        fn check<M: Message + for<'a> Arbitrary<'a> + PartialEq + std::fmt::Debug>() {
            let mut state = 0x2545_f491_4f6c_dd1d_u64;
            let mut checked = 0;
            for _ in 0..300 {
                let data: Vec<u8> = (0..2048)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state.to_le_bytes()[0]
                    })
                    .collect();
                let Ok(value) = M::arbitrary(&mut Unstructured::new(&data)) else {
                    continue;
                };
                let first = body(&value, 13);
                let decoded: M = parse(first.clone(), 13).unwrap();
                assert_eq!(body(&decoded, 13), first);
                checked += 1;
            }
            assert!(checked > 100);
        }
        check::<MetadataRequest>();
        check::<MetadataResponse>();
    }

    #[test]
    fn truncated_input_is_an_error() {
        let resp = sample_response();
        for version in [0, 7, 9, 12, 13] {
            let bytes = body(&resp, version);
            for cut in 0..bytes.len() {
                assert!(parse::<MetadataResponse>(bytes.slice(..cut), version).is_err());
            }
        }
        let req = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic::by_name("x")]),
            ..Default::default()
        };
        let bytes = body(&req, 12);
        for cut in 0..bytes.len() {
            assert!(parse::<MetadataRequest>(bytes.slice(..cut), 12).is_err());
        }
    }
}
