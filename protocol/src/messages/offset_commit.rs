//! OffsetCommit (key 8): store a consumer group's committed offsets. Versions 2–9; flexible from 8.
//!
//! Kafka 4.0 dropped versions 0 and 1 (KIP-896), so every supported version carries the generation
//! and member id. Version 9 has exactly the wire format of version 8: it only tells the coordinator
//! that the client understands the KIP-848 consumer protocol, where `generation_id` holds the member
//! epoch and the response may carry `STALE_MEMBER_EPOCH` or `GROUP_ID_NOT_FOUND`. Version 10 (topic
//! ids instead of names) arrived after Kafka 4.0 and is not implemented.

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};
use crate::primitives::tags;
use crate::primitives::put_tags;

/// The first flexible version.
const FLEXIBLE_FROM: i16 = 8;

/// OffsetCommit request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetCommitRequest {
    /// The group whose offsets are committed.
    pub group_id: String,
    /// v1+ (every supported version): the generation of the group (classic protocol) or the member
    /// epoch (consumer protocol, v9+); -1 when committing as a non-member.
    pub generation_id: i32,
    /// v1+ (every supported version): the member id the coordinator assigned, empty for a non-member.
    pub member_id: String,
    /// v7+: the static member id (`group.instance.id`), null for a dynamic member.
    pub group_instance_id: Option<String>,
    /// v2–v4: how long the broker keeps the offsets, in milliseconds; -1 for the broker's default.
    /// Later versions leave retention to the broker configuration.
    pub retention_time_ms: i64,
    /// The topics to commit offsets for.
    pub topics: Vec<OffsetCommitRequestTopic>,
    /// v8+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for OffsetCommitRequest {
    fn default() -> Self {
        OffsetCommitRequest {
            group_id: String::new(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: Vec::new(),
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One topic of an OffsetCommit request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetCommitRequestTopic {
    /// The topic name.
    pub name: String,
    /// The partitions to commit offsets for.
    pub partitions: Vec<OffsetCommitRequestPartition>,
    /// v8+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One partition of an OffsetCommit request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetCommitRequestPartition {
    /// The partition index.
    pub partition_index: i32,
    /// The offset to commit: the next offset the group should consume.
    pub committed_offset: i64,
    /// v6+: the leader epoch of the last consumed record, -1 when unknown.
    pub committed_leader_epoch: i32,
    /// Free-form metadata stored with the offset, or null.
    pub committed_metadata: Option<String>,
    /// v8+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for OffsetCommitRequestPartition {
    fn default() -> Self {
        OffsetCommitRequestPartition {
            partition_index: 0,
            committed_offset: 0,
            committed_leader_epoch: -1,
            committed_metadata: None,
            tagged_fields: TaggedFields::default(),
        }
    }
}

impl Message for OffsetCommitRequest {
    const API_KEY: ApiKey = ApiKey::OffsetCommit;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE_FROM;
        buf.put_string(flexible, &self.group_id, "OffsetCommitRequest.group_id")?;
        if version >= 1 {
            buf.put_i32(self.generation_id);
            buf.put_string(flexible, &self.member_id, "OffsetCommitRequest.member_id")?;
        }
        if version >= 7 {
            buf.put_nullable_string(
                flexible,
                self.group_instance_id.as_deref(),
                "OffsetCommitRequest.group_instance_id",
            )?;
        }
        if (2..=4).contains(&version) {
            buf.put_i64(self.retention_time_ms);
        }
        buf.put_array(
            flexible,
            &self.topics,
            "OffsetCommitRequest.topics",
            |buf, t| {
                buf.put_string(flexible, &t.name, "OffsetCommitRequest.topics.name")?;
                buf.put_array(
                    flexible,
                    &t.partitions,
                    "OffsetCommitRequest.topics.partitions",
                    |buf, p| {
                        buf.put_i32(p.partition_index);
                        buf.put_i64(p.committed_offset);
                        if version >= 6 {
                            buf.put_i32(p.committed_leader_epoch);
                        }
                        buf.put_nullable_string(
                            flexible,
                            p.committed_metadata.as_deref(),
                            "OffsetCommitRequest.topics.partitions.committed_metadata",
                        )?;
                        put_tags(buf, flexible, &p.tagged_fields)?;
                        Ok(())
                    },
                )?;
                put_tags(buf, flexible, &t.tagged_fields)?;
                Ok(())
            },
        )?;
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE_FROM;
        let mut m = OffsetCommitRequest {
            group_id: d.string(flexible, "OffsetCommitRequest.group_id")?,
            ..Default::default()
        };
        if version >= 1 {
            m.generation_id = d.i32("OffsetCommitRequest.generation_id")?;
            m.member_id = d.string(flexible, "OffsetCommitRequest.member_id")?;
        }
        if version >= 7 {
            m.group_instance_id =
                d.nullable_string(flexible, "OffsetCommitRequest.group_instance_id")?;
        }
        if (2..=4).contains(&version) {
            m.retention_time_ms = d.i64("OffsetCommitRequest.retention_time_ms")?;
        }
        m.topics = d.array(flexible, "OffsetCommitRequest.topics", |d| {
            let name = d.string(flexible, "OffsetCommitRequest.topics.name")?;
            let partitions = d.array(flexible, "OffsetCommitRequest.topics.partitions", |d| {
                let mut p = OffsetCommitRequestPartition {
                    partition_index: d
                        .i32("OffsetCommitRequest.topics.partitions.partition_index")?,
                    committed_offset: d
                        .i64("OffsetCommitRequest.topics.partitions.committed_offset")?,
                    ..Default::default()
                };
                if version >= 6 {
                    p.committed_leader_epoch =
                        d.i32("OffsetCommitRequest.topics.partitions.committed_leader_epoch")?;
                }
                p.committed_metadata = d.nullable_string(
                    flexible,
                    "OffsetCommitRequest.topics.partitions.committed_metadata",
                )?;
                p.tagged_fields = tags(d, flexible)?;
                Ok(p)
            })?;
            Ok(OffsetCommitRequestTopic {
                name,
                partitions,
                tagged_fields: tags(d, flexible)?,
            })
        })?;
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

/// OffsetCommit response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetCommitResponse {
    /// v3+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// The result for each topic.
    pub topics: Vec<OffsetCommitResponseTopic>,
    /// v8+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One topic of an OffsetCommit response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetCommitResponseTopic {
    /// The topic name.
    pub name: String,
    /// The result for each partition.
    pub partitions: Vec<OffsetCommitResponsePartition>,
    /// v8+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One partition of an OffsetCommit response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetCommitResponsePartition {
    /// The partition index.
    pub partition_index: i32,
    /// The error code, 0 for none.
    pub error_code: i16,
    /// v8+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for OffsetCommitResponse {
    const API_KEY: ApiKey = ApiKey::OffsetCommit;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE_FROM;
        if version >= 3 {
            buf.put_i32(self.throttle_time_ms);
        }
        buf.put_array(
            flexible,
            &self.topics,
            "OffsetCommitResponse.topics",
            |buf, t| {
                buf.put_string(flexible, &t.name, "OffsetCommitResponse.topics.name")?;
                buf.put_array(
                    flexible,
                    &t.partitions,
                    "OffsetCommitResponse.topics.partitions",
                    |buf, p| {
                        buf.put_i32(p.partition_index);
                        buf.put_i16(p.error_code);
                        put_tags(buf, flexible, &p.tagged_fields)?;
                        Ok(())
                    },
                )?;
                put_tags(buf, flexible, &t.tagged_fields)?;
                Ok(())
            },
        )?;
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE_FROM;
        let mut m = OffsetCommitResponse::default();
        if version >= 3 {
            m.throttle_time_ms = d.i32("OffsetCommitResponse.throttle_time_ms")?;
        }
        m.topics = d.array(flexible, "OffsetCommitResponse.topics", |d| {
            let name = d.string(flexible, "OffsetCommitResponse.topics.name")?;
            let partitions = d.array(flexible, "OffsetCommitResponse.topics.partitions", |d| {
                Ok(OffsetCommitResponsePartition {
                    partition_index: d
                        .i32("OffsetCommitResponse.topics.partitions.partition_index")?,
                    error_code: d.i16("OffsetCommitResponse.topics.partitions.error_code")?,
                    tagged_fields: tags(d, flexible)?,
                })
            })?;
            Ok(OffsetCommitResponseTopic {
                name,
                partitions,
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

    fn request() -> OffsetCommitRequest {
        OffsetCommitRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: "m".into(),
            group_instance_id: Some("i".into()),
            retention_time_ms: -1,
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 5,
                    committed_leader_epoch: 3,
                    committed_metadata: None,
                    tagged_fields: TaggedFields::default(),
                }],
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn v2_request_has_retention_and_no_epoch_or_instance_id() {
        let expected: &[u8] = &[
            0, 1, b'g', // group_id
            0, 0, 0, 1, // generation_id
            0, 1, b'm', // member_id
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // retention_time_ms -1
            0, 0, 0, 1, // one topic
            0, 1, b't', // name
            0, 0, 0, 1, // one partition
            0, 0, 0, 0, // partition_index
            0, 0, 0, 0, 0, 0, 0, 5, // committed_offset
            0xff, 0xff, // committed_metadata null
        ];
        let bytes = request().to_bytes(2).unwrap();
        assert_eq!(&bytes[..], expected);
        let back = OffsetCommitRequest::decode_exact(bytes, 2).unwrap();
        assert_eq!(back.group_instance_id, None);
        assert_eq!(back.topics[0].partitions[0].committed_leader_epoch, -1);
        assert_eq!(back.topics[0].partitions[0].committed_offset, 5);
    }

    #[test]
    fn v8_request_is_compact_with_instance_id_and_epoch() {
        let expected: &[u8] = &[
            2, b'g', // group_id
            0, 0, 0, 1, // generation_id
            2, b'm', // member_id
            2, b'i', // group_instance_id
            2,    // one topic
            2, b't', // name
            2,    // one partition
            0, 0, 0, 0, // partition_index
            0, 0, 0, 0, 0, 0, 0, 5, // committed_offset
            0, 0, 0, 3, // committed_leader_epoch
            0, // committed_metadata null
            0, // partition tags
            0, // topic tags
            0, // request tags
        ];
        let bytes = request().to_bytes(8).unwrap();
        assert_eq!(&bytes[..], expected);
        // Version 9 is byte-for-byte version 8.
        assert_eq!(&request().to_bytes(9).unwrap()[..], expected);
        assert_eq!(
            OffsetCommitRequest::decode_exact(bytes, 8).unwrap(),
            request()
        );
    }

    #[test]
    fn responses_pin_bytes_in_both_encodings() {
        let resp = OffsetCommitResponse {
            throttle_time_ms: 10,
            topics: vec![OffsetCommitResponseTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitResponsePartition {
                    partition_index: 1,
                    error_code: 27,
                    tagged_fields: TaggedFields::default(),
                }],
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        };
        let v2: &[u8] = &[0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 1, 0, 27];
        assert_eq!(&resp.to_bytes(2).unwrap()[..], v2);
        let v3: &[u8] = &[
            0, 0, 0, 10, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 1, 0, 27,
        ];
        assert_eq!(&resp.to_bytes(3).unwrap()[..], v3);
        let v8: &[u8] = &[0, 0, 0, 10, 2, 2, b't', 2, 0, 0, 0, 1, 0, 27, 0, 0, 0];
        let bytes = resp.to_bytes(8).unwrap();
        assert_eq!(&bytes[..], v8);
        assert_eq!(OffsetCommitResponse::decode_exact(bytes, 8).unwrap(), resp);
        let back = OffsetCommitResponse::decode_exact(Bytes::from_static(v2), 2).unwrap();
        assert_eq!(back.throttle_time_ms, 0);
        assert_eq!(back.topics, resp.topics);
    }

    #[test]
    fn truncated_input_is_an_error() {
        for version in [2, 8] {
            let full = request().to_bytes(version).unwrap();
            for len in 0..full.len() {
                assert!(OffsetCommitRequest::decode_exact(full.slice(..len), version).is_err());
            }
        }
        let resp = OffsetCommitResponse {
            topics: vec![OffsetCommitResponseTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitResponsePartition::default()],
                tagged_fields: TaggedFields::default(),
            }],
            ..Default::default()
        };
        let full = resp.to_bytes(8).unwrap();
        for len in 0..full.len() {
            assert!(OffsetCommitResponse::decode_exact(full.slice(..len), 8).is_err());
        }
    }
}
