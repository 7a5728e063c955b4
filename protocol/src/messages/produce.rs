//! Produce (key 0): append record batches to partition leaders. Versions 3–12; flexible from 9.
//!
//! The record data of each partition stays raw bytes (`Option<Bytes>`), sliced out of the input
//! without copying; building and reading record batches is the job of [`crate::record`]. Version 10
//! adds leader hints to the response (KIP-951) so a producer can follow a moved leader without a
//! metadata round trip; version 12 carries the same fields as 11 and tells a broker that the client
//! uses the transaction protocol v2 (KIP-890), where a transactional produce also adds the partition
//! to the transaction.
//!
//! [`LeaderIdAndEpoch`] and [`NodeEndpoint`] are shared with Fetch, whose responses carry the same
//! leader hints.

use bytes::{BufMut, Bytes, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{tagged_value, Decoder, Encoder, TaggedFields};
use crate::primitives::{tags, put_tags};

/// The first flexible version.
const FLEXIBLE: i16 = 9;

/// Produce request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ProduceRequest {
    /// v3+: the transactional id, or null when the producer is not transactional.
    pub transactional_id: Option<String>,
    /// The acknowledgements the leader waits for before answering: 0 none (the broker sends no
    /// response at all), 1 the leader's own write, -1 every in-sync replica.
    pub acks: i16,
    /// How long the broker may wait for those acknowledgements, in milliseconds.
    pub timeout_ms: i32,
    /// The topics to write to.
    pub topics: Vec<ProduceTopic>,
    /// v9+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One topic of a produce request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ProduceTopic {
    /// The topic name.
    pub name: String,
    /// The partitions to write to.
    pub partitions: Vec<ProducePartition>,
    /// v9+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One partition of a produce request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ProducePartition {
    /// The partition index.
    pub index: i32,
    /// The record batches to append, as raw bytes (nullable).
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::primitives::arb::opt_bytes))]
    pub records: Option<Bytes>,
    /// v9+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// Produce response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ProduceResponse {
    /// One entry per topic of the request.
    pub responses: Vec<ProduceTopicResponse>,
    /// v1+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// v10+ (tag 0): the endpoints of the leaders named in `current_leader` of partitions that
    /// failed with `NOT_LEADER_OR_FOLLOWER`.
    pub node_endpoints: Vec<NodeEndpoint>,
    /// v9+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One topic of a produce response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ProduceTopicResponse {
    /// The topic name.
    pub name: String,
    /// One entry per partition written to.
    pub partitions: Vec<ProducePartitionResponse>,
    /// v9+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One partition of a produce response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ProducePartitionResponse {
    /// The partition index.
    pub index: i32,
    /// The error code, 0 for none.
    pub error_code: i16,
    /// The offset given to the first record appended.
    pub base_offset: i64,
    /// v2+: the broker's append time when the topic uses `LogAppendTime`, else -1.
    pub log_append_time_ms: i64,
    /// v5+: the partition's log start offset, -1 when unknown.
    pub log_start_offset: i64,
    /// v8+: the records that made the broker drop the whole batch (KIP-467).
    pub record_errors: Vec<RecordError>,
    /// v8+: a message summarising why the batch was dropped, if any.
    pub error_message: Option<String>,
    /// v10+ (tag 0): the leader the broker believes current, when the write failed because this
    /// broker is not the leader; -1/-1 otherwise.
    pub current_leader: LeaderIdAndEpoch,
    /// v9+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for ProducePartitionResponse {
    fn default() -> Self {
        ProducePartitionResponse {
            index: 0,
            error_code: 0,
            base_offset: 0,
            log_append_time_ms: -1,
            log_start_offset: -1,
            record_errors: Vec::new(),
            error_message: None,
            current_leader: LeaderIdAndEpoch::default(),
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// A record that caused its batch to be dropped (v8+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct RecordError {
    /// The index of the record within its batch.
    pub batch_index: i32,
    /// Why that record was rejected, if the broker says.
    pub batch_index_error_message: Option<String>,
    /// v9+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// A partition leader and its epoch, as hinted in Produce (v10+) and Fetch (v12+) responses.
///
/// Only sent as a tagged field, so it always uses the flexible encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LeaderIdAndEpoch {
    /// The id of the current leader, -1 when unknown.
    pub leader_id: i32,
    /// The latest known leader epoch, -1 when unknown.
    pub leader_epoch: i32,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for LeaderIdAndEpoch {
    fn default() -> Self {
        LeaderIdAndEpoch {
            leader_id: -1,
            leader_epoch: -1,
            tagged_fields: TaggedFields::default(),
        }
    }
}

impl LeaderIdAndEpoch {
    /// True when this carries no information, so a tagged field holding it can be left out.
    pub fn is_default(&self) -> bool {
        *self == LeaderIdAndEpoch::default()
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) -> Result<()> {
        buf.put_i32(self.leader_id);
        buf.put_i32(self.leader_epoch);
        self.tagged_fields.encode(buf)
    }

    pub(crate) fn decode(d: &mut Decoder, what: &'static str) -> Result<Self> {
        Ok(LeaderIdAndEpoch {
            leader_id: d.i32(what)?,
            leader_epoch: d.i32(what)?,
            tagged_fields: d.unknown_tagged_fields()?,
        })
    }
}

/// A broker's address, sent with leader hints so the client can connect to a new leader before
/// its next metadata refresh (Produce v10+, Fetch v16+).
///
/// Only sent inside a tagged field, so it always uses the flexible encoding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct NodeEndpoint {
    /// The broker id.
    pub node_id: i32,
    /// The broker's host name.
    pub host: String,
    /// The broker's port.
    pub port: i32,
    /// The broker's rack, if it has one.
    pub rack: Option<String>,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl NodeEndpoint {
    pub(crate) fn encode(&self, buf: &mut BytesMut, what: &'static str) -> Result<()> {
        buf.put_i32(self.node_id);
        buf.put_string(true, &self.host, what)?;
        buf.put_i32(self.port);
        buf.put_nullable_string(true, self.rack.as_deref(), what)?;
        self.tagged_fields.encode(buf)
    }

    pub(crate) fn decode(d: &mut Decoder, what: &'static str) -> Result<Self> {
        Ok(NodeEndpoint {
            node_id: d.i32(what)?,
            host: d.string(true, what)?,
            port: d.i32(what)?,
            rack: d.nullable_string(true, what)?,
            tagged_fields: d.unknown_tagged_fields()?,
        })
    }

    /// Writes a response's top-level tagged section, in which tag 0 carries `endpoints` when the
    /// version has the field (`carries`) and the list is not empty, merged with `unknown`.
    pub(crate) fn put_tagged_section(
        buf: &mut BytesMut,
        endpoints: &[NodeEndpoint],
        carries: bool,
        unknown: &TaggedFields,
        what: &'static str,
    ) -> Result<()> {
        let mut known = Vec::new();
        if carries && !endpoints.is_empty() {
            known.push(tagged_value(0, |b| {
                b.put_array(true, endpoints, what, |b, n| n.encode(b, what))
            })?);
        }
        unknown.encode_with(buf, known)
    }

    /// Reads a response's top-level tagged section: the endpoints from tag 0 when the version has
    /// the field (`carries`; before that version tag 0 stays unknown), and the unknown tags.
    pub(crate) fn tagged_section(
        d: &mut Decoder,
        carries: bool,
        what: &'static str,
    ) -> Result<(Vec<NodeEndpoint>, TaggedFields)> {
        let mut endpoints = Vec::new();
        let unknown = d.tagged_fields(|tag, d| {
            if tag == 0 && carries {
                endpoints = d.array(true, what, |d| NodeEndpoint::decode(d, what))?;
                Ok(true)
            } else {
                Ok(false)
            }
        })?;
        Ok((endpoints, unknown))
    }
}

const WHAT_TOPICS: &str = "ProduceRequest.topics";
const WHAT_TOPIC_NAME: &str = "ProduceRequest.topics.name";
const WHAT_PARTITIONS: &str = "ProduceRequest.topics.partitions";
const WHAT_RECORDS: &str = "ProduceRequest.topics.partitions.records";

impl Message for ProduceRequest {
    const API_KEY: ApiKey = ApiKey::Produce;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        buf.put_nullable_string(
            flexible,
            self.transactional_id.as_deref(),
            "ProduceRequest.transactional_id",
        )?;
        buf.put_i16(self.acks);
        buf.put_i32(self.timeout_ms);
        buf.put_array(flexible, &self.topics, WHAT_TOPICS, |buf, t| {
            buf.put_string(flexible, &t.name, WHAT_TOPIC_NAME)?;
            buf.put_array(flexible, &t.partitions, WHAT_PARTITIONS, |buf, p| {
                buf.put_i32(p.index);
                buf.put_nullable_bytes(flexible, p.records.as_deref(), WHAT_RECORDS)?;
                put_tags(buf, flexible, &p.tagged_fields)
            })?;
            put_tags(buf, flexible, &t.tagged_fields)
        })?;
        put_tags(buf, flexible, &self.tagged_fields)
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        Ok(ProduceRequest {
            transactional_id: d.nullable_string(flexible, "ProduceRequest.transactional_id")?,
            acks: d.i16("ProduceRequest.acks")?,
            timeout_ms: d.i32("ProduceRequest.timeout_ms")?,
            topics: d.array(flexible, WHAT_TOPICS, |d| {
                Ok(ProduceTopic {
                    name: d.string(flexible, WHAT_TOPIC_NAME)?,
                    partitions: d.array(flexible, WHAT_PARTITIONS, |d| {
                        Ok(ProducePartition {
                            index: d.i32("ProduceRequest.topics.partitions.index")?,
                            records: d.nullable_bytes(flexible, WHAT_RECORDS)?,
                            tagged_fields: tags(d, flexible)?,
                        })
                    })?,
                    tagged_fields: tags(d, flexible)?,
                })
            })?,
            tagged_fields: tags(d, flexible)?,
        })
    }
}

const WHAT_RESPONSES: &str = "ProduceResponse.responses";
const WHAT_RESP_NAME: &str = "ProduceResponse.responses.name";
const WHAT_RESP_PARTITIONS: &str = "ProduceResponse.responses.partitions";
const WHAT_RECORD_ERRORS: &str = "ProduceResponse.responses.partitions.record_errors";
const WHAT_ERROR_MESSAGE: &str = "ProduceResponse.responses.partitions.error_message";
const WHAT_CURRENT_LEADER: &str = "ProduceResponse.responses.partitions.current_leader";
const WHAT_NODE_ENDPOINTS: &str = "ProduceResponse.node_endpoints";

impl ProducePartitionResponse {
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        buf.put_i32(self.index);
        buf.put_i16(self.error_code);
        buf.put_i64(self.base_offset);
        buf.put_i64(self.log_append_time_ms);
        if version >= 5 {
            buf.put_i64(self.log_start_offset);
        }
        if version >= 8 {
            buf.put_array(
                flexible,
                &self.record_errors,
                WHAT_RECORD_ERRORS,
                |buf, e| {
                    buf.put_i32(e.batch_index);
                    buf.put_nullable_string(
                        flexible,
                        e.batch_index_error_message.as_deref(),
                        WHAT_RECORD_ERRORS,
                    )?;
                    put_tags(buf, flexible, &e.tagged_fields)
                },
            )?;
            buf.put_nullable_string(flexible, self.error_message.as_deref(), WHAT_ERROR_MESSAGE)?;
        }
        if flexible {
            let mut known = Vec::new();
            if version >= 10 && !self.current_leader.is_default() {
                known.push(tagged_value(0, |b| self.current_leader.encode(b))?);
            }
            self.tagged_fields.encode_with(buf, known)?;
        }
        Ok(())
    }

    fn decode(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut p = ProducePartitionResponse {
            index: d.i32("ProduceResponse.responses.partitions.index")?,
            error_code: d.i16("ProduceResponse.responses.partitions.error_code")?,
            base_offset: d.i64("ProduceResponse.responses.partitions.base_offset")?,
            log_append_time_ms: d.i64("ProduceResponse.responses.partitions.log_append_time_ms")?,
            ..Default::default()
        };
        if version >= 5 {
            p.log_start_offset = d.i64("ProduceResponse.responses.partitions.log_start_offset")?;
        }
        if version >= 8 {
            p.record_errors = d.array(flexible, WHAT_RECORD_ERRORS, |d| {
                Ok(RecordError {
                    batch_index: d.i32(WHAT_RECORD_ERRORS)?,
                    batch_index_error_message: d.nullable_string(flexible, WHAT_RECORD_ERRORS)?,
                    tagged_fields: tags(d, flexible)?,
                })
            })?;
            p.error_message = d.nullable_string(flexible, WHAT_ERROR_MESSAGE)?;
        }
        if flexible {
            let mut current_leader = LeaderIdAndEpoch::default();
            p.tagged_fields = d.tagged_fields(|tag, d| {
                match tag {
                    0 if version >= 10 => {
                        current_leader = LeaderIdAndEpoch::decode(d, WHAT_CURRENT_LEADER)?
                    }
                    _ => return Ok(false),
                }
                Ok(true)
            })?;
            p.current_leader = current_leader;
        }
        Ok(p)
    }
}

impl Message for ProduceResponse {
    const API_KEY: ApiKey = ApiKey::Produce;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        buf.put_array(flexible, &self.responses, WHAT_RESPONSES, |buf, t| {
            buf.put_string(flexible, &t.name, WHAT_RESP_NAME)?;
            buf.put_array(flexible, &t.partitions, WHAT_RESP_PARTITIONS, |buf, p| {
                p.encode(buf, version)
            })?;
            put_tags(buf, flexible, &t.tagged_fields)
        })?;
        buf.put_i32(self.throttle_time_ms);
        if flexible {
            NodeEndpoint::put_tagged_section(
                buf,
                &self.node_endpoints,
                version >= 10,
                &self.tagged_fields,
                WHAT_NODE_ENDPOINTS,
            )?;
        }
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = ProduceResponse {
            responses: d.array(flexible, WHAT_RESPONSES, |d| {
                Ok(ProduceTopicResponse {
                    name: d.string(flexible, WHAT_RESP_NAME)?,
                    partitions: d.array(flexible, WHAT_RESP_PARTITIONS, |d| {
                        ProducePartitionResponse::decode(d, version)
                    })?,
                    tagged_fields: tags(d, flexible)?,
                })
            })?,
            throttle_time_ms: d.i32("ProduceResponse.throttle_time_ms")?,
            ..Default::default()
        };
        if flexible {
            (m.node_endpoints, m.tagged_fields) =
                NodeEndpoint::tagged_section(d, version >= 10, WHAT_NODE_ENDPOINTS)?;
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ProduceRequest {
        ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 1000,
            topics: vec![ProduceTopic {
                name: "t".into(),
                partitions: vec![ProducePartition {
                    index: 0,
                    records: Some(Bytes::from_static(b"abc")),
                    tagged_fields: TaggedFields::default(),
                }],
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn v3_request_bytes() {
        let want: &[u8] = &[
            0xff, 0xff, // transactional_id: null
            0xff, 0xff, // acks -1
            0x00, 0x00, 0x03, 0xe8, // timeout 1000
            0x00, 0x00, 0x00, 0x01, // 1 topic
            0x00, 0x01, b't', // name
            0x00, 0x00, 0x00, 0x01, // 1 partition
            0x00, 0x00, 0x00, 0x00, // index 0
            0x00, 0x00, 0x00, 0x03, b'a', b'b', b'c', // records
        ];
        assert_eq!(&request().to_bytes(3).unwrap()[..], want);
        let back = ProduceRequest::decode_exact(Bytes::from_static(want), 3).unwrap();
        assert_eq!(back, request());
    }

    #[test]
    fn v9_request_bytes() {
        let want: &[u8] = &[
            0x00, // transactional_id: null (compact)
            0xff, 0xff, // acks -1
            0x00, 0x00, 0x03, 0xe8, // timeout 1000
            0x02, // 1 topic
            0x02, b't', // name
            0x02, // 1 partition
            0x00, 0x00, 0x00, 0x00, // index 0
            0x04, b'a', b'b', b'c', // records (compact)
            0x00, // partition tags
            0x00, // topic tags
            0x00, // request tags
        ];
        assert_eq!(&request().to_bytes(9).unwrap()[..], want);
        let back = ProduceRequest::decode_exact(Bytes::from_static(want), 9).unwrap();
        assert_eq!(back, request());
    }

    #[test]
    fn null_records_are_kept_null() {
        let mut req = request();
        req.topics[0].partitions[0].records = None;
        let bytes = req.to_bytes(12).unwrap();
        assert_eq!(&bytes[bytes.len() - 4..], &[0x00, 0x00, 0x00, 0x00]);
        assert_eq!(ProduceRequest::decode_exact(bytes, 12).unwrap(), req);
    }

    fn response(version: i16) -> ProduceResponse {
        let leader = version >= 10;
        ProduceResponse {
            responses: vec![ProduceTopicResponse {
                name: "t".into(),
                partitions: vec![ProducePartitionResponse {
                    index: 1,
                    error_code: 0,
                    base_offset: 5,
                    log_append_time_ms: -1,
                    log_start_offset: 0,
                    current_leader: if leader {
                        LeaderIdAndEpoch {
                            leader_id: 2,
                            leader_epoch: 7,
                            tagged_fields: TaggedFields::default(),
                        }
                    } else {
                        LeaderIdAndEpoch::default()
                    },
                    ..Default::default()
                }],
                tagged_fields: TaggedFields::default(),
            }],
            throttle_time_ms: 0,
            node_endpoints: if leader {
                vec![NodeEndpoint {
                    node_id: 2,
                    host: "h".into(),
                    port: 9092,
                    rack: None,
                    tagged_fields: TaggedFields::default(),
                }]
            } else {
                Vec::new()
            },
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn v8_response_bytes() {
        let want: &[u8] = &[
            0x00, 0x00, 0x00, 0x01, // 1 topic
            0x00, 0x01, b't', // name
            0x00, 0x00, 0x00, 0x01, // 1 partition
            0x00, 0x00, 0x00, 0x01, // index 1
            0x00, 0x00, // error_code
            0, 0, 0, 0, 0, 0, 0, 5, // base_offset
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // log_append_time_ms -1
            0, 0, 0, 0, 0, 0, 0, 0, // log_start_offset 0
            0x00, 0x00, 0x00, 0x00, // record_errors: empty
            0xff, 0xff, // error_message: null
            0x00, 0x00, 0x00, 0x00, // throttle_time_ms
        ];
        assert_eq!(&response(8).to_bytes(8).unwrap()[..], want);
        let back = ProduceResponse::decode_exact(Bytes::from_static(want), 8).unwrap();
        assert_eq!(back, response(8));
    }

    #[test]
    fn v10_response_bytes_with_leader_hints() {
        let want: &[u8] = &[
            0x02, // 1 topic
            0x02, b't', // name
            0x02, // 1 partition
            0x00, 0x00, 0x00, 0x01, // index 1
            0x00, 0x00, // error_code
            0, 0, 0, 0, 0, 0, 0, 5, // base_offset
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // log_append_time_ms -1
            0, 0, 0, 0, 0, 0, 0, 0,    // log_start_offset 0
            0x01, // record_errors: empty
            0x00, // error_message: null
            0x01, 0x00, 0x09, // 1 tagged field: tag 0, 9 bytes
            0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x07, 0x00, // current_leader 2 / 7
            0x00, // topic tags
            0x00, 0x00, 0x00, 0x00, // throttle_time_ms
            0x01, 0x00, 0x0d, // 1 tagged field: tag 0, 13 bytes
            0x02, // 1 node endpoint
            0x00, 0x00, 0x00, 0x02, // node_id 2
            0x02, b'h', // host
            0x00, 0x00, 0x23, 0x84, // port 9092
            0x00, // rack: null
            0x00, // endpoint tags
        ];
        assert_eq!(&response(10).to_bytes(10).unwrap()[..], want);
        let back = ProduceResponse::decode_exact(Bytes::from_static(want), 10).unwrap();
        assert_eq!(back, response(10));
        // Version 9 is flexible but has no leader hints: the tag is kept as unknown.
        let v9 = ProduceResponse::decode_exact(Bytes::from_static(want), 9).unwrap();
        assert!(v9.node_endpoints.is_empty());
        assert_eq!(v9.tagged_fields.0.len(), 1);
    }

    #[test]
    fn truncated_input_is_an_error() {
        for version in [3, 9, 12] {
            let full = request().to_bytes(version).unwrap();
            for cut in 0..full.len() {
                assert!(ProduceRequest::decode_exact(full.slice(..cut), version).is_err());
            }
        }
        for version in [8, 10] {
            let full = response(version).to_bytes(version).unwrap();
            for cut in 0..full.len() {
                assert!(ProduceResponse::decode_exact(full.slice(..cut), version).is_err());
            }
        }
    }
}
