//! ListOffsets (key 2): look up offsets by timestamp, or the earliest and latest offsets of
//! partitions. Versions 1–10; flexible from 6.
//!
//! Besides a real timestamp, `timestamp` takes special values: -1 latest (the high watermark, or the
//! last stable offset when reading committed), -2 earliest, -3 the offset with the largest
//! timestamp (v7+), -4 the earliest offset in local storage (v8+), -5 the latest tiered offset
//! (v9+). Version 10 adds `timeout_ms` for lookups that read remote storage (KIP-1075).

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};
use crate::primitives::{tags, put_tags};

/// The first flexible version.
const FLEXIBLE: i16 = 6;

/// ListOffsets request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ListOffsetsRequest {
    /// The broker id of the requesting follower, or -1 from a consumer (the default here).
    pub replica_id: i32,
    /// v2+: 0 read uncommitted, 1 read committed (latest means the last stable offset).
    pub isolation_level: i8,
    /// The topics to look up.
    pub topics: Vec<ListOffsetsTopic>,
    /// v10+: how long the broker may wait for lookups that read remote (tiered) storage, in
    /// milliseconds.
    pub timeout_ms: i32,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for ListOffsetsRequest {
    fn default() -> Self {
        ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: Vec::new(),
            timeout_ms: 0,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One topic of a ListOffsets request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ListOffsetsTopic {
    /// The topic name.
    pub name: String,
    /// The partitions to look up.
    pub partitions: Vec<ListOffsetsPartition>,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One partition of a ListOffsets request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ListOffsetsPartition {
    /// The partition index.
    pub partition_index: i32,
    /// v4+: the leader epoch the client knows, for fencing; -1 to skip the check.
    pub current_leader_epoch: i32,
    /// The timestamp to look up, or one of the special values listed in the module docs.
    pub timestamp: i64,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for ListOffsetsPartition {
    fn default() -> Self {
        ListOffsetsPartition {
            partition_index: 0,
            current_leader_epoch: -1,
            timestamp: 0,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// ListOffsets response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ListOffsetsResponse {
    /// v2+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// One entry per topic of the request.
    pub topics: Vec<ListOffsetsTopicResponse>,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One topic of a ListOffsets response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ListOffsetsTopicResponse {
    /// The topic name.
    pub name: String,
    /// One entry per partition looked up.
    pub partitions: Vec<ListOffsetsPartitionResponse>,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One partition of a ListOffsets response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ListOffsetsPartitionResponse {
    /// The partition index.
    pub partition_index: i32,
    /// The error code, 0 for none.
    pub error_code: i16,
    /// v1+: the timestamp of the offset found, -1 when none.
    pub timestamp: i64,
    /// v1+: the offset found, -1 when none.
    pub offset: i64,
    /// v4+: the leader epoch of the offset found, -1 when unknown.
    pub leader_epoch: i32,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for ListOffsetsPartitionResponse {
    fn default() -> Self {
        ListOffsetsPartitionResponse {
            partition_index: 0,
            error_code: 0,
            timestamp: -1,
            offset: -1,
            leader_epoch: -1,
            tagged_fields: TaggedFields::default(),
        }
    }
}

const WHAT_TOPICS: &str = "ListOffsetsRequest.topics";
const WHAT_NAME: &str = "ListOffsetsRequest.topics.name";
const WHAT_PARTITIONS: &str = "ListOffsetsRequest.topics.partitions";

impl Message for ListOffsetsRequest {
    const API_KEY: ApiKey = ApiKey::ListOffsets;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        buf.put_i32(self.replica_id);
        if version >= 2 {
            buf.put_i8(self.isolation_level);
        }
        buf.put_array(flexible, &self.topics, WHAT_TOPICS, |buf, t| {
            buf.put_string(flexible, &t.name, WHAT_NAME)?;
            buf.put_array(flexible, &t.partitions, WHAT_PARTITIONS, |buf, p| {
                buf.put_i32(p.partition_index);
                if version >= 4 {
                    buf.put_i32(p.current_leader_epoch);
                }
                buf.put_i64(p.timestamp);
                put_tags(buf, flexible, &p.tagged_fields)
            })?;
            put_tags(buf, flexible, &t.tagged_fields)
        })?;
        if version >= 10 {
            buf.put_i32(self.timeout_ms);
        }
        put_tags(buf, flexible, &self.tagged_fields)
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = ListOffsetsRequest {
            replica_id: d.i32("ListOffsetsRequest.replica_id")?,
            ..Default::default()
        };
        if version >= 2 {
            m.isolation_level = d.i8("ListOffsetsRequest.isolation_level")?;
        }
        m.topics = d.array(flexible, WHAT_TOPICS, |d| {
            Ok(ListOffsetsTopic {
                name: d.string(flexible, WHAT_NAME)?,
                partitions: d.array(flexible, WHAT_PARTITIONS, |d| {
                    let mut p = ListOffsetsPartition {
                        partition_index: d
                            .i32("ListOffsetsRequest.topics.partitions.partition_index")?,
                        ..Default::default()
                    };
                    if version >= 4 {
                        p.current_leader_epoch =
                            d.i32("ListOffsetsRequest.topics.partitions.current_leader_epoch")?;
                    }
                    p.timestamp = d.i64("ListOffsetsRequest.topics.partitions.timestamp")?;
                    p.tagged_fields = tags(d, flexible)?;
                    Ok(p)
                })?,
                tagged_fields: tags(d, flexible)?,
            })
        })?;
        if version >= 10 {
            m.timeout_ms = d.i32("ListOffsetsRequest.timeout_ms")?;
        }
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

const WHAT_RESP_TOPICS: &str = "ListOffsetsResponse.topics";
const WHAT_RESP_NAME: &str = "ListOffsetsResponse.topics.name";
const WHAT_RESP_PARTITIONS: &str = "ListOffsetsResponse.topics.partitions";

impl Message for ListOffsetsResponse {
    const API_KEY: ApiKey = ApiKey::ListOffsets;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        if version >= 2 {
            buf.put_i32(self.throttle_time_ms);
        }
        buf.put_array(flexible, &self.topics, WHAT_RESP_TOPICS, |buf, t| {
            buf.put_string(flexible, &t.name, WHAT_RESP_NAME)?;
            buf.put_array(flexible, &t.partitions, WHAT_RESP_PARTITIONS, |buf, p| {
                buf.put_i32(p.partition_index);
                buf.put_i16(p.error_code);
                buf.put_i64(p.timestamp);
                buf.put_i64(p.offset);
                if version >= 4 {
                    buf.put_i32(p.leader_epoch);
                }
                put_tags(buf, flexible, &p.tagged_fields)
            })?;
            put_tags(buf, flexible, &t.tagged_fields)
        })?;
        put_tags(buf, flexible, &self.tagged_fields)
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = ListOffsetsResponse::default();
        if version >= 2 {
            m.throttle_time_ms = d.i32("ListOffsetsResponse.throttle_time_ms")?;
        }
        m.topics = d.array(flexible, WHAT_RESP_TOPICS, |d| {
            Ok(ListOffsetsTopicResponse {
                name: d.string(flexible, WHAT_RESP_NAME)?,
                partitions: d.array(flexible, WHAT_RESP_PARTITIONS, |d| {
                    let mut p = ListOffsetsPartitionResponse {
                        partition_index: d
                            .i32("ListOffsetsResponse.topics.partitions.partition_index")?,
                        error_code: d.i16("ListOffsetsResponse.topics.partitions.error_code")?,
                        timestamp: d.i64("ListOffsetsResponse.topics.partitions.timestamp")?,
                        offset: d.i64("ListOffsetsResponse.topics.partitions.offset")?,
                        ..Default::default()
                    };
                    if version >= 4 {
                        p.leader_epoch =
                            d.i32("ListOffsetsResponse.topics.partitions.leader_epoch")?;
                    }
                    p.tagged_fields = tags(d, flexible)?;
                    Ok(p)
                })?,
                tagged_fields: tags(d, flexible)?,
            })
        })?;
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn request(version: i16) -> ListOffsetsRequest {
        let new = version >= 4;
        ListOffsetsRequest {
            replica_id: -1,
            isolation_level: if version >= 2 { 1 } else { 0 },
            topics: vec![ListOffsetsTopic {
                name: "t".into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: 0,
                    current_leader_epoch: if new { 5 } else { -1 },
                    timestamp: if new { -2 } else { -1 },
                    tagged_fields: TaggedFields::default(),
                }],
                tagged_fields: TaggedFields::default(),
            }],
            timeout_ms: if version >= 10 { 30_000 } else { 0 },
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn v1_request_bytes() {
        let want: &[u8] = &[
            0xff, 0xff, 0xff, 0xff, // replica_id -1
            0x00, 0x00, 0x00, 0x01, // 1 topic
            0x00, 0x01, b't', // name
            0x00, 0x00, 0x00, 0x01, // 1 partition
            0x00, 0x00, 0x00, 0x00, // partition_index 0
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // timestamp -1 (latest)
        ];
        assert_eq!(&request(1).to_bytes(1).unwrap()[..], want);
        let back = ListOffsetsRequest::decode_exact(Bytes::from_static(want), 1).unwrap();
        assert_eq!(back, request(1));
    }

    /// Version 10 bytes. `encode_body`/`decode_body` are used directly because the version table
    /// in `api_key` may not list version 10 yet.
    #[test]
    fn v10_request_bytes() {
        let want: &[u8] = &[
            0xff, 0xff, 0xff, 0xff, // replica_id -1
            0x01, // isolation_level: read committed
            0x02, // 1 topic
            0x02, b't', // name
            0x02, // 1 partition
            0x00, 0x00, 0x00, 0x00, // partition_index 0
            0x00, 0x00, 0x00, 0x05, // current_leader_epoch 5
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, // timestamp -2 (earliest)
            0x00, // partition tags
            0x00, // topic tags
            0x00, 0x00, 0x75, 0x30, // timeout_ms 30000
            0x00, // request tags
        ];
        let mut buf = BytesMut::new();
        request(10).encode_body(&mut buf, 10).unwrap();
        assert_eq!(&buf[..], want);
        let mut d = Decoder::new(Bytes::from_static(want));
        let back = ListOffsetsRequest::decode_body(&mut d, 10).unwrap();
        assert!(d.is_empty());
        assert_eq!(back, request(10));
        // Version 9 is the same without timeout_ms.
        let v9 = request(9).to_bytes(9).unwrap();
        assert_eq!(&v9[..v9.len() - 1], &want[..want.len() - 5]);
    }

    fn response(version: i16) -> ListOffsetsResponse {
        ListOffsetsResponse {
            throttle_time_ms: 0,
            topics: vec![ListOffsetsTopicResponse {
                name: "t".into(),
                partitions: vec![ListOffsetsPartitionResponse {
                    partition_index: 0,
                    error_code: 0,
                    timestamp: -1,
                    offset: 42,
                    leader_epoch: if version >= 4 { 3 } else { -1 },
                    tagged_fields: TaggedFields::default(),
                }],
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn v1_response_bytes() {
        let want: &[u8] = &[
            0x00, 0x00, 0x00, 0x01, // 1 topic (no throttle_time_ms before v2)
            0x00, 0x01, b't', // name
            0x00, 0x00, 0x00, 0x01, // 1 partition
            0x00, 0x00, 0x00, 0x00, // partition_index 0
            0x00, 0x00, // error_code
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // timestamp -1
            0, 0, 0, 0, 0, 0, 0, 42, // offset 42
        ];
        assert_eq!(&response(1).to_bytes(1).unwrap()[..], want);
        let back = ListOffsetsResponse::decode_exact(Bytes::from_static(want), 1).unwrap();
        assert_eq!(back, response(1));
    }

    #[test]
    fn v6_response_bytes() {
        let want: &[u8] = &[
            0x00, 0x00, 0x00, 0x00, // throttle_time_ms
            0x02, // 1 topic
            0x02, b't', // name
            0x02, // 1 partition
            0x00, 0x00, 0x00, 0x00, // partition_index 0
            0x00, 0x00, // error_code
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // timestamp -1
            0, 0, 0, 0, 0, 0, 0, 42, // offset 42
            0x00, 0x00, 0x00, 0x03, // leader_epoch 3
            0x00, // partition tags
            0x00, // topic tags
            0x00, // response tags
        ];
        assert_eq!(&response(6).to_bytes(6).unwrap()[..], want);
        let back = ListOffsetsResponse::decode_exact(Bytes::from_static(want), 6).unwrap();
        assert_eq!(back, response(6));
    }

    #[test]
    fn truncated_input_is_an_error() {
        for version in [1, 6, 9] {
            let full = request(version).to_bytes(version).unwrap();
            for cut in 0..full.len() {
                assert!(ListOffsetsRequest::decode_exact(full.slice(..cut), version).is_err());
            }
            let full = response(version).to_bytes(version).unwrap();
            for cut in 0..full.len() {
                assert!(ListOffsetsResponse::decode_exact(full.slice(..cut), version).is_err());
            }
        }
        let mut full = BytesMut::new();
        request(10).encode_body(&mut full, 10).unwrap();
        let full = full.freeze();
        for cut in 0..full.len() {
            let mut d = Decoder::new(full.slice(..cut));
            assert!(ListOffsetsRequest::decode_body(&mut d, 10).is_err());
        }
    }
}
