//! OffsetFetch (key 9): read a consumer group's committed offsets. Versions 1–9; flexible from 6.
//!
//! The message has two shapes. Versions 1–7 ask about one group: `group_id` and `topics` at the top
//! of the request, `topics` and `error_code` at the top of the response. Versions 8+ batch several
//! groups: the request carries `groups` and the response answers with `groups`. Both shapes live in
//! one struct pair; the version decides which fields go on the wire, and the fields of the other
//! shape keep their defaults when decoding. Version 10 (topic ids instead of names) arrived after
//! Kafka 4.0 and is not implemented.

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};
use crate::primitives::tags;
use crate::primitives::put_tags;

/// The first flexible version.
const FLEXIBLE_FROM: i16 = 6;
/// The first version that batches groups.
const BATCHED_FROM: i16 = 8;

/// OffsetFetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetFetchRequest {
    /// v1–v7: the group to fetch offsets for.
    pub group_id: String,
    /// v1–v7: the topics to fetch offsets for; null (v2+) asks for every topic the group committed.
    /// Version 1 cannot say null: a null list is written there as an empty one.
    pub topics: Option<Vec<OffsetFetchRequestTopic>>,
    /// v8+: the groups to fetch offsets for.
    pub groups: Vec<OffsetFetchRequestGroup>,
    /// v7+: when true the broker answers `UNSTABLE_OFFSET_COMMIT` for partitions with a pending
    /// transactional commit instead of returning a possibly stale offset.
    pub require_stable: bool,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for OffsetFetchRequest {
    fn default() -> Self {
        OffsetFetchRequest {
            group_id: String::new(),
            topics: Some(Vec::new()),
            groups: Vec::new(),
            require_stable: false,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One group of a batched OffsetFetch request (v8+).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetFetchRequestGroup {
    /// The group id.
    pub group_id: String,
    /// v9+: the member id, when the member uses the consumer protocol (KIP-848); else null.
    pub member_id: Option<String>,
    /// v9+: the member epoch, when the member uses the consumer protocol; else -1.
    pub member_epoch: i32,
    /// The topics to fetch offsets for, or null for every topic the group committed.
    pub topics: Option<Vec<OffsetFetchRequestTopic>>,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for OffsetFetchRequestGroup {
    fn default() -> Self {
        OffsetFetchRequestGroup {
            group_id: String::new(),
            member_id: None,
            member_epoch: -1,
            topics: Some(Vec::new()),
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One topic of an OffsetFetch request (either shape).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetFetchRequestTopic {
    /// The topic name.
    pub name: String,
    /// The partitions to fetch offsets for.
    pub partition_indexes: Vec<i32>,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

fn put_request_topic(
    buf: &mut BytesMut,
    flexible: bool,
    t: &OffsetFetchRequestTopic,
    what_name: &'static str,
    what_partitions: &'static str,
) -> Result<()> {
    buf.put_string(flexible, &t.name, what_name)?;
    buf.put_array(flexible, &t.partition_indexes, what_partitions, |buf, i| {
        buf.put_i32(*i);
        Ok(())
    })?;
    put_tags(buf, flexible, &t.tagged_fields)?;
    Ok(())
}

fn read_request_topic(
    d: &mut Decoder,
    flexible: bool,
    what_name: &'static str,
    what_partitions: &'static str,
) -> Result<OffsetFetchRequestTopic> {
    Ok(OffsetFetchRequestTopic {
        name: d.string(flexible, what_name)?,
        partition_indexes: d.array(flexible, what_partitions, |d| d.i32(what_partitions))?,
        tagged_fields: tags(d, flexible)?,
    })
}

const WHAT_TOPICS: &str = "OffsetFetchRequest.topics";
const WHAT_TOPIC_NAME: &str = "OffsetFetchRequest.topics.name";
const WHAT_TOPIC_PARTITIONS: &str = "OffsetFetchRequest.topics.partition_indexes";
const WHAT_GROUPS: &str = "OffsetFetchRequest.groups";
const WHAT_GROUP_TOPICS: &str = "OffsetFetchRequest.groups.topics";
const WHAT_GROUP_TOPIC_NAME: &str = "OffsetFetchRequest.groups.topics.name";
const WHAT_GROUP_TOPIC_PARTITIONS: &str = "OffsetFetchRequest.groups.topics.partition_indexes";

impl Message for OffsetFetchRequest {
    const API_KEY: ApiKey = ApiKey::OffsetFetch;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE_FROM;
        let put_topic = |buf: &mut BytesMut, t: &OffsetFetchRequestTopic| {
            put_request_topic(buf, flexible, t, WHAT_TOPIC_NAME, WHAT_TOPIC_PARTITIONS)
        };
        if version < BATCHED_FROM {
            buf.put_string(flexible, &self.group_id, "OffsetFetchRequest.group_id")?;
            if version >= 2 {
                buf.put_nullable_array(flexible, self.topics.as_deref(), WHAT_TOPICS, put_topic)?;
            } else {
                let topics = self.topics.as_deref().unwrap_or_default();
                buf.put_array(flexible, topics, WHAT_TOPICS, put_topic)?;
            }
        } else {
            buf.put_array(flexible, &self.groups, WHAT_GROUPS, |buf, g| {
                buf.put_string(flexible, &g.group_id, "OffsetFetchRequest.groups.group_id")?;
                if version >= 9 {
                    buf.put_nullable_string(
                        flexible,
                        g.member_id.as_deref(),
                        "OffsetFetchRequest.groups.member_id",
                    )?;
                    buf.put_i32(g.member_epoch);
                }
                buf.put_nullable_array(
                    flexible,
                    g.topics.as_deref(),
                    WHAT_GROUP_TOPICS,
                    |buf, t| {
                        put_request_topic(
                            buf,
                            flexible,
                            t,
                            WHAT_GROUP_TOPIC_NAME,
                            WHAT_GROUP_TOPIC_PARTITIONS,
                        )
                    },
                )?;
                put_tags(buf, flexible, &g.tagged_fields)?;
                Ok(())
            })?;
        }
        if version >= 7 {
            buf.put_bool(self.require_stable);
        }
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE_FROM;
        let read_topic = |d: &mut Decoder| {
            read_request_topic(d, flexible, WHAT_TOPIC_NAME, WHAT_TOPIC_PARTITIONS)
        };
        let mut m = OffsetFetchRequest::default();
        if version < BATCHED_FROM {
            m.group_id = d.string(flexible, "OffsetFetchRequest.group_id")?;
            m.topics = if version >= 2 {
                d.nullable_array(flexible, WHAT_TOPICS, read_topic)?
            } else {
                Some(d.array(flexible, WHAT_TOPICS, read_topic)?)
            };
        } else {
            m.groups = d.array(flexible, WHAT_GROUPS, |d| {
                let mut g = OffsetFetchRequestGroup {
                    group_id: d.string(flexible, "OffsetFetchRequest.groups.group_id")?,
                    ..Default::default()
                };
                if version >= 9 {
                    g.member_id =
                        d.nullable_string(flexible, "OffsetFetchRequest.groups.member_id")?;
                    g.member_epoch = d.i32("OffsetFetchRequest.groups.member_epoch")?;
                }
                g.topics = d.nullable_array(flexible, WHAT_GROUP_TOPICS, |d| {
                    read_request_topic(
                        d,
                        flexible,
                        WHAT_GROUP_TOPIC_NAME,
                        WHAT_GROUP_TOPIC_PARTITIONS,
                    )
                })?;
                g.tagged_fields = tags(d, flexible)?;
                Ok(g)
            })?;
        }
        if version >= 7 {
            m.require_stable = d.bool("OffsetFetchRequest.require_stable")?;
        }
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

/// OffsetFetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetFetchResponse {
    /// v3+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// v1–v7: the offsets of the one group asked about, per topic.
    pub topics: Vec<OffsetFetchResponseTopic>,
    /// v2–v7: the group-level error code, 0 for none.
    pub error_code: i16,
    /// v8+: the answer for each group asked about.
    pub groups: Vec<OffsetFetchResponseGroup>,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One group of a batched OffsetFetch response (v8+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetFetchResponseGroup {
    /// The group id.
    pub group_id: String,
    /// The group's offsets, per topic.
    pub topics: Vec<OffsetFetchResponseTopic>,
    /// The group-level error code, 0 for none.
    pub error_code: i16,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One topic of an OffsetFetch response (either shape).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetFetchResponseTopic {
    /// The topic name.
    pub name: String,
    /// The offsets per partition.
    pub partitions: Vec<OffsetFetchResponsePartition>,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One partition of an OffsetFetch response (either shape).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetFetchResponsePartition {
    /// The partition index.
    pub partition_index: i32,
    /// The committed offset, -1 when the group has none for this partition.
    pub committed_offset: i64,
    /// v5+: the leader epoch stored with the offset, -1 when unknown.
    pub committed_leader_epoch: i32,
    /// The metadata stored with the offset, or null.
    pub metadata: Option<String>,
    /// The partition-level error code, 0 for none.
    pub error_code: i16,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for OffsetFetchResponsePartition {
    fn default() -> Self {
        OffsetFetchResponsePartition {
            partition_index: 0,
            committed_offset: 0,
            committed_leader_epoch: -1,
            metadata: None,
            error_code: 0,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// Field names for one nesting of response topics, so errors name the right path.
struct TopicWhat {
    topics: &'static str,
    name: &'static str,
    partitions: &'static str,
    partition_index: &'static str,
    committed_offset: &'static str,
    committed_leader_epoch: &'static str,
    metadata: &'static str,
    error_code: &'static str,
}

const TOP_LEVEL: TopicWhat = TopicWhat {
    topics: "OffsetFetchResponse.topics",
    name: "OffsetFetchResponse.topics.name",
    partitions: "OffsetFetchResponse.topics.partitions",
    partition_index: "OffsetFetchResponse.topics.partitions.partition_index",
    committed_offset: "OffsetFetchResponse.topics.partitions.committed_offset",
    committed_leader_epoch: "OffsetFetchResponse.topics.partitions.committed_leader_epoch",
    metadata: "OffsetFetchResponse.topics.partitions.metadata",
    error_code: "OffsetFetchResponse.topics.partitions.error_code",
};

const IN_GROUP: TopicWhat = TopicWhat {
    topics: "OffsetFetchResponse.groups.topics",
    name: "OffsetFetchResponse.groups.topics.name",
    partitions: "OffsetFetchResponse.groups.topics.partitions",
    partition_index: "OffsetFetchResponse.groups.topics.partitions.partition_index",
    committed_offset: "OffsetFetchResponse.groups.topics.partitions.committed_offset",
    committed_leader_epoch: "OffsetFetchResponse.groups.topics.partitions.committed_leader_epoch",
    metadata: "OffsetFetchResponse.groups.topics.partitions.metadata",
    error_code: "OffsetFetchResponse.groups.topics.partitions.error_code",
};

fn put_response_topics(
    buf: &mut BytesMut,
    version: i16,
    topics: &[OffsetFetchResponseTopic],
    what: &TopicWhat,
) -> Result<()> {
    let flexible = version >= FLEXIBLE_FROM;
    buf.put_array(flexible, topics, what.topics, |buf, t| {
        buf.put_string(flexible, &t.name, what.name)?;
        buf.put_array(flexible, &t.partitions, what.partitions, |buf, p| {
            buf.put_i32(p.partition_index);
            buf.put_i64(p.committed_offset);
            if version >= 5 {
                buf.put_i32(p.committed_leader_epoch);
            }
            buf.put_nullable_string(flexible, p.metadata.as_deref(), what.metadata)?;
            buf.put_i16(p.error_code);
            put_tags(buf, flexible, &p.tagged_fields)?;
            Ok(())
        })?;
        put_tags(buf, flexible, &t.tagged_fields)?;
        Ok(())
    })
}

fn read_response_topics(
    d: &mut Decoder,
    version: i16,
    what: &TopicWhat,
) -> Result<Vec<OffsetFetchResponseTopic>> {
    let flexible = version >= FLEXIBLE_FROM;
    d.array(flexible, what.topics, |d| {
        let name = d.string(flexible, what.name)?;
        let partitions = d.array(flexible, what.partitions, |d| {
            let mut p = OffsetFetchResponsePartition {
                partition_index: d.i32(what.partition_index)?,
                committed_offset: d.i64(what.committed_offset)?,
                ..Default::default()
            };
            if version >= 5 {
                p.committed_leader_epoch = d.i32(what.committed_leader_epoch)?;
            }
            p.metadata = d.nullable_string(flexible, what.metadata)?;
            p.error_code = d.i16(what.error_code)?;
            p.tagged_fields = tags(d, flexible)?;
            Ok(p)
        })?;
        Ok(OffsetFetchResponseTopic {
            name,
            partitions,
            tagged_fields: tags(d, flexible)?,
        })
    })
}

impl Message for OffsetFetchResponse {
    const API_KEY: ApiKey = ApiKey::OffsetFetch;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE_FROM;
        if version >= 3 {
            buf.put_i32(self.throttle_time_ms);
        }
        if version < BATCHED_FROM {
            put_response_topics(buf, version, &self.topics, &TOP_LEVEL)?;
            if version >= 2 {
                buf.put_i16(self.error_code);
            }
        } else {
            buf.put_array(
                flexible,
                &self.groups,
                "OffsetFetchResponse.groups",
                |buf, g| {
                    buf.put_string(flexible, &g.group_id, "OffsetFetchResponse.groups.group_id")?;
                    put_response_topics(buf, version, &g.topics, &IN_GROUP)?;
                    buf.put_i16(g.error_code);
                    put_tags(buf, flexible, &g.tagged_fields)?;
                    Ok(())
                },
            )?;
        }
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE_FROM;
        let mut m = OffsetFetchResponse::default();
        if version >= 3 {
            m.throttle_time_ms = d.i32("OffsetFetchResponse.throttle_time_ms")?;
        }
        if version < BATCHED_FROM {
            m.topics = read_response_topics(d, version, &TOP_LEVEL)?;
            if version >= 2 {
                m.error_code = d.i16("OffsetFetchResponse.error_code")?;
            }
        } else {
            m.groups = d.array(flexible, "OffsetFetchResponse.groups", |d| {
                Ok(OffsetFetchResponseGroup {
                    group_id: d.string(flexible, "OffsetFetchResponse.groups.group_id")?,
                    topics: read_response_topics(d, version, &IN_GROUP)?,
                    error_code: d.i16("OffsetFetchResponse.groups.error_code")?,
                    tagged_fields: tags(d, flexible)?,
                })
            })?;
        }
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn topic() -> OffsetFetchRequestTopic {
        OffsetFetchRequestTopic {
            name: "t".into(),
            partition_indexes: vec![0, 2],
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn v2_request_carries_one_group_and_can_ask_for_all_topics() {
        let req = OffsetFetchRequest {
            group_id: "g".into(),
            topics: Some(vec![topic()]),
            ..Default::default()
        };
        let expected: &[u8] = &[
            0, 1, b'g', // group_id
            0, 0, 0, 1, // one topic
            0, 1, b't', // name
            0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, // partition_indexes [0, 2]
        ];
        let bytes = req.to_bytes(2).unwrap();
        assert_eq!(&bytes[..], expected);
        assert_eq!(OffsetFetchRequest::decode_exact(bytes, 2).unwrap(), req);

        let all = OffsetFetchRequest {
            group_id: "g".into(),
            topics: None,
            ..Default::default()
        };
        assert_eq!(
            &all.to_bytes(2).unwrap()[..],
            &[0, 1, b'g', 0xff, 0xff, 0xff, 0xff]
        );
        // Version 1 has no null list; it is written as an empty one.
        assert_eq!(&all.to_bytes(1).unwrap()[..], &[0, 1, b'g', 0, 0, 0, 0]);
        // A null list where it is not nullable is rejected.
        let bad = Bytes::from_static(&[0, 1, b'g', 0xff, 0xff, 0xff, 0xff]);
        assert!(OffsetFetchRequest::decode_exact(bad, 1).is_err());
    }

    #[test]
    fn v7_request_is_compact_with_require_stable() {
        let req = OffsetFetchRequest {
            group_id: "g".into(),
            topics: None,
            require_stable: true,
            ..Default::default()
        };
        // group_id, null topics, require_stable, tags
        let expected: &[u8] = &[2, b'g', 0, 1, 0];
        let bytes = req.to_bytes(7).unwrap();
        assert_eq!(&bytes[..], expected);
        assert_eq!(OffsetFetchRequest::decode_exact(bytes, 7).unwrap(), req);
    }

    #[test]
    fn v9_request_batches_groups_with_member_fields() {
        let req = OffsetFetchRequest {
            // Single-group fields are not on the wire at v8+.
            group_id: String::new(),
            topics: Some(Vec::new()),
            groups: vec![
                OffsetFetchRequestGroup {
                    group_id: "a".into(),
                    member_id: Some("m".into()),
                    member_epoch: 7,
                    topics: Some(vec![topic()]),
                    tagged_fields: TaggedFields::default(),
                },
                OffsetFetchRequestGroup {
                    group_id: "b".into(),
                    topics: None,
                    ..Default::default()
                },
            ],
            require_stable: false,
            tagged_fields: TaggedFields::default(),
        };
        let expected: &[u8] = &[
            3, // two groups
            2, b'a', // group_id
            2, b'm', // member_id
            0, 0, 0, 7, // member_epoch
            2, // one topic
            2, b't', 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, // name, partition_indexes, topic tags
            0, // group tags
            2, b'b', // group_id
            0,    // member_id null
            0xff, 0xff, 0xff, 0xff, // member_epoch -1
            0,    // topics null
            0,    // group tags
            0,    // require_stable
            0,    // request tags
        ];
        let bytes = req.to_bytes(9).unwrap();
        assert_eq!(&bytes[..], expected);
        assert_eq!(OffsetFetchRequest::decode_exact(bytes, 9).unwrap(), req);
        // Version 8 has no member fields.
        let v8 = req.to_bytes(8).unwrap();
        let back = OffsetFetchRequest::decode_exact(v8, 8).unwrap();
        assert_eq!(back.groups[0].member_id, None);
        assert_eq!(back.groups[0].member_epoch, -1);
    }

    fn partition() -> OffsetFetchResponsePartition {
        OffsetFetchResponsePartition {
            partition_index: 1,
            committed_offset: 9,
            committed_leader_epoch: 4,
            metadata: Some("x".into()),
            error_code: 0,
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn v5_response_has_top_level_topics_and_error() {
        let resp = OffsetFetchResponse {
            throttle_time_ms: 1,
            topics: vec![OffsetFetchResponseTopic {
                name: "t".into(),
                partitions: vec![partition()],
                tagged_fields: TaggedFields::default(),
            }],
            error_code: 16,
            ..Default::default()
        };
        let expected: &[u8] = &[
            0, 0, 0, 1, // throttle_time_ms
            0, 0, 0, 1, // one topic
            0, 1, b't', // name
            0, 0, 0, 1, // one partition
            0, 0, 0, 1, // partition_index
            0, 0, 0, 0, 0, 0, 0, 9, // committed_offset
            0, 0, 0, 4, // committed_leader_epoch
            0, 1, b'x', // metadata
            0, 0, // partition error_code
            0, 16, // top-level error_code
        ];
        let bytes = resp.to_bytes(5).unwrap();
        assert_eq!(&bytes[..], expected);
        assert_eq!(OffsetFetchResponse::decode_exact(bytes, 5).unwrap(), resp);
        // Version 4 has no leader epoch; decoding yields -1.
        let back = OffsetFetchResponse::decode_exact(resp.to_bytes(4).unwrap(), 4).unwrap();
        assert_eq!(back.topics[0].partitions[0].committed_leader_epoch, -1);
    }

    #[test]
    fn v8_response_answers_per_group() {
        let resp = OffsetFetchResponse {
            throttle_time_ms: 0,
            groups: vec![OffsetFetchResponseGroup {
                group_id: "g".into(),
                topics: vec![OffsetFetchResponseTopic {
                    name: "t".into(),
                    partitions: vec![partition()],
                    tagged_fields: TaggedFields::default(),
                }],
                error_code: 0,
                tagged_fields: TaggedFields::default(),
            }],
            ..Default::default()
        };
        let expected: &[u8] = &[
            0, 0, 0, 0, // throttle_time_ms
            2, // one group
            2, b'g', // group_id
            2,    // one topic
            2, b't', // name
            2,    // one partition
            0, 0, 0, 1, // partition_index
            0, 0, 0, 0, 0, 0, 0, 9, // committed_offset
            0, 0, 0, 4, // committed_leader_epoch
            2, b'x', // metadata
            0, 0, // error_code
            0, // partition tags
            0, // topic tags
            0, 0, // group error_code
            0, // group tags
            0, // response tags
        ];
        let bytes = resp.to_bytes(8).unwrap();
        assert_eq!(&bytes[..], expected);
        assert_eq!(OffsetFetchResponse::decode_exact(bytes, 8).unwrap(), resp);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let req = OffsetFetchRequest {
            group_id: "g".into(),
            topics: Some(vec![topic()]),
            groups: vec![OffsetFetchRequestGroup {
                group_id: "a".into(),
                topics: Some(vec![topic()]),
                ..Default::default()
            }],
            ..Default::default()
        };
        for version in [1, 6, 9] {
            let full = req.to_bytes(version).unwrap();
            for len in 0..full.len() {
                assert!(OffsetFetchRequest::decode_exact(full.slice(..len), version).is_err());
            }
        }
        let resp = OffsetFetchResponse {
            topics: vec![OffsetFetchResponseTopic {
                name: "t".into(),
                partitions: vec![partition()],
                tagged_fields: TaggedFields::default(),
            }],
            groups: vec![OffsetFetchResponseGroup {
                group_id: "g".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        for version in [1, 7, 8] {
            let full = resp.to_bytes(version).unwrap();
            for len in 0..full.len() {
                assert!(OffsetFetchResponse::decode_exact(full.slice(..len), version).is_err());
            }
        }
    }
}
