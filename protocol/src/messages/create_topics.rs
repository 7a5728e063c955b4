//! CreateTopics (key 19): creates topics, with a partition count and replication factor or an
//! explicit replica assignment, and topic configs. Versions 2–7; flexible from 5.
//!
//! Kafka 4.0 removed versions 0 and 1 (KIP-896). From v5 the response reports each new topic's
//! partition count, replication factor and configs (KIP-525); v7 adds its topic id.

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{tagged_value, Decoder, Encoder, TaggedFields, Uuid};
use crate::primitives::{tags, put_tags};

const FIRST_FLEXIBLE: i16 = 5;

/// CreateTopics request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CreateTopicsRequest {
    /// The topics to create.
    pub topics: Vec<CreatableTopic>,
    /// How long to wait for the topics to be created, in milliseconds (Kafka's default 60000).
    pub timeout_ms: i32,
    /// v1+: check that the topics could be created as given, without creating them.
    pub validate_only: bool,
    /// v5+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for CreateTopicsRequest {
    fn default() -> Self {
        CreateTopicsRequest {
            topics: Vec::new(),
            timeout_ms: 60_000,
            validate_only: false,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CreatableTopic {
    /// The topic name.
    pub name: String,
    /// The number of partitions, or -1 to use the broker's default (v4+) or a manual assignment.
    /// [`Default`] gives -1.
    pub num_partitions: i32,
    /// The number of replicas of each partition, or -1 to use the broker's default (v4+) or a
    /// manual assignment. [`Default`] gives -1.
    pub replication_factor: i16,
    /// A manual assignment of replicas to brokers, empty for automatic assignment.
    pub assignments: Vec<CreatableReplicaAssignment>,
    /// Topic configs to set.
    pub configs: Vec<CreatableTopicConfig>,
    /// v5+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for CreatableTopic {
    fn default() -> Self {
        CreatableTopic {
            name: String::new(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: Vec::new(),
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// The brokers that hold one partition of a topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CreatableReplicaAssignment {
    /// The partition index.
    pub partition_index: i32,
    /// The brokers to place the partition's replicas on, preferred leader first.
    pub broker_ids: Vec<i32>,
    /// v5+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// A config to set on a topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CreatableTopicConfig {
    /// The config name.
    pub name: String,
    /// The config value.
    pub value: Option<String>,
    /// v5+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

const WHAT_TOPICS: &str = "CreateTopicsRequest.topics";
const WHAT_ASSIGNMENTS: &str = "CreateTopicsRequest.topics.assignments";
const WHAT_BROKER_IDS: &str = "CreateTopicsRequest.topics.assignments.broker_ids";
const WHAT_CONFIGS: &str = "CreateTopicsRequest.topics.configs";

fn put_creatable_topic(b: &mut BytesMut, flexible: bool, t: &CreatableTopic) -> Result<()> {
    b.put_string(flexible, &t.name, "CreateTopicsRequest.topics.name")?;
    b.put_i32(t.num_partitions);
    b.put_i16(t.replication_factor);
    b.put_array(flexible, &t.assignments, WHAT_ASSIGNMENTS, |b, a| {
        b.put_i32(a.partition_index);
        b.put_array(flexible, &a.broker_ids, WHAT_BROKER_IDS, |b, id| {
            b.put_i32(*id);
            Ok(())
        })?;
        put_tags(b, flexible, &a.tagged_fields)
    })?;
    b.put_array(flexible, &t.configs, WHAT_CONFIGS, |b, c| {
        b.put_string(flexible, &c.name, "CreateTopicsRequest.topics.configs.name")?;
        b.put_nullable_string(
            flexible,
            c.value.as_deref(),
            "CreateTopicsRequest.topics.configs.value",
        )?;
        put_tags(b, flexible, &c.tagged_fields)
    })?;
    put_tags(b, flexible, &t.tagged_fields)
}

fn get_creatable_topic(d: &mut Decoder, flexible: bool) -> Result<CreatableTopic> {
    Ok(CreatableTopic {
        name: d.string(flexible, "CreateTopicsRequest.topics.name")?,
        num_partitions: d.i32("CreateTopicsRequest.topics.num_partitions")?,
        replication_factor: d.i16("CreateTopicsRequest.topics.replication_factor")?,
        assignments: d.array(flexible, WHAT_ASSIGNMENTS, |d| {
            Ok(CreatableReplicaAssignment {
                partition_index: d.i32("CreateTopicsRequest.topics.assignments.partition_index")?,
                broker_ids: d.array(flexible, WHAT_BROKER_IDS, |d| d.i32(WHAT_BROKER_IDS))?,
                tagged_fields: tags(d, flexible)?,
            })
        })?,
        configs: d.array(flexible, WHAT_CONFIGS, |d| {
            Ok(CreatableTopicConfig {
                name: d.string(flexible, "CreateTopicsRequest.topics.configs.name")?,
                value: d.nullable_string(flexible, "CreateTopicsRequest.topics.configs.value")?,
                tagged_fields: tags(d, flexible)?,
            })
        })?,
        tagged_fields: tags(d, flexible)?,
    })
}

impl Message for CreateTopicsRequest {
    const API_KEY: ApiKey = ApiKey::CreateTopics;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FIRST_FLEXIBLE;
        buf.put_array(flexible, &self.topics, WHAT_TOPICS, |b, t| {
            put_creatable_topic(b, flexible, t)
        })?;
        buf.put_i32(self.timeout_ms);
        if version >= 1 {
            buf.put_bool(self.validate_only);
        }
        put_tags(buf, flexible, &self.tagged_fields)
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FIRST_FLEXIBLE;
        let mut m = CreateTopicsRequest {
            topics: d.array(flexible, WHAT_TOPICS, |d| get_creatable_topic(d, flexible))?,
            timeout_ms: d.i32("CreateTopicsRequest.timeout_ms")?,
            ..Default::default()
        };
        if version >= 1 {
            m.validate_only = d.bool("CreateTopicsRequest.validate_only")?;
        }
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

/// CreateTopics response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CreateTopicsResponse {
    /// v2+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// One result per topic asked for.
    pub topics: Vec<CreatableTopicResult>,
    /// v5+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// The outcome of creating one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CreatableTopicResult {
    /// The topic name.
    pub name: String,
    /// v7+: the new topic's id, nil when it was not created.
    pub topic_id: Uuid,
    /// The error code, 0 for none.
    pub error_code: i16,
    /// v1+: the error message, if any.
    pub error_message: Option<String>,
    /// v5+ (tag 0): why `configs` is absent, when the broker could not return them; 0 for none.
    pub topic_config_error_code: i16,
    /// v5+: the topic's partition count, -1 when unknown.
    pub num_partitions: i32,
    /// v5+: the topic's replication factor, -1 when unknown.
    pub replication_factor: i16,
    /// v5+: the topic's configs, null when the broker could not return them (see
    /// `topic_config_error_code`). Before v5 it holds Kafka's default, an empty list.
    pub configs: Option<Vec<CreatableTopicResultConfig>>,
    /// v5+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for CreatableTopicResult {
    fn default() -> Self {
        CreatableTopicResult {
            name: String::new(),
            topic_id: Uuid::NIL,
            error_code: 0,
            error_message: None,
            topic_config_error_code: 0,
            num_partitions: -1,
            replication_factor: -1,
            configs: Some(Vec::new()),
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// A config of a created topic (v5+).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CreatableTopicResultConfig {
    /// The config name.
    pub name: String,
    /// The config value, null when sensitive.
    pub value: Option<String>,
    /// Whether the config is read-only.
    pub read_only: bool,
    /// Where the value comes from (a `ConfigSource` id), -1 when unknown.
    pub config_source: i8,
    /// Whether the config is sensitive.
    pub is_sensitive: bool,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for CreatableTopicResultConfig {
    fn default() -> Self {
        CreatableTopicResultConfig {
            name: String::new(),
            value: None,
            read_only: false,
            config_source: -1,
            is_sensitive: false,
            tagged_fields: TaggedFields::default(),
        }
    }
}

const WHAT_RESULTS: &str = "CreateTopicsResponse.topics";
const WHAT_RESULT_CONFIGS: &str = "CreateTopicsResponse.topics.configs";

fn put_result(b: &mut BytesMut, version: i16, t: &CreatableTopicResult) -> Result<()> {
    let flexible = version >= FIRST_FLEXIBLE;
    b.put_string(flexible, &t.name, "CreateTopicsResponse.topics.name")?;
    if version >= 7 {
        b.put_uuid(&t.topic_id);
    }
    b.put_i16(t.error_code);
    if version >= 1 {
        b.put_nullable_string(
            flexible,
            t.error_message.as_deref(),
            "CreateTopicsResponse.topics.error_message",
        )?;
    }
    if flexible {
        b.put_i32(t.num_partitions);
        b.put_i16(t.replication_factor);
        b.put_nullable_array(
            flexible,
            t.configs.as_deref(),
            WHAT_RESULT_CONFIGS,
            |b, c| {
                b.put_string(true, &c.name, "CreateTopicsResponse.topics.configs.name")?;
                b.put_nullable_string(
                    true,
                    c.value.as_deref(),
                    "CreateTopicsResponse.topics.configs.value",
                )?;
                b.put_bool(c.read_only);
                b.put_i8(c.config_source);
                b.put_bool(c.is_sensitive);
                c.tagged_fields.encode(b)
            },
        )?;
        let mut known = Vec::new();
        if t.topic_config_error_code != 0 {
            known.push(tagged_value(0, |b| {
                b.put_i16(t.topic_config_error_code);
                Ok(())
            })?);
        }
        t.tagged_fields.encode_with(b, known)?;
    }
    Ok(())
}

fn get_result(d: &mut Decoder, version: i16) -> Result<CreatableTopicResult> {
    let flexible = version >= FIRST_FLEXIBLE;
    let mut t = CreatableTopicResult {
        name: d.string(flexible, "CreateTopicsResponse.topics.name")?,
        ..Default::default()
    };
    if version >= 7 {
        t.topic_id = d.uuid("CreateTopicsResponse.topics.topic_id")?;
    }
    t.error_code = d.i16("CreateTopicsResponse.topics.error_code")?;
    if version >= 1 {
        t.error_message =
            d.nullable_string(flexible, "CreateTopicsResponse.topics.error_message")?;
    }
    if flexible {
        t.num_partitions = d.i32("CreateTopicsResponse.topics.num_partitions")?;
        t.replication_factor = d.i16("CreateTopicsResponse.topics.replication_factor")?;
        t.configs = d.nullable_array(true, WHAT_RESULT_CONFIGS, |d| {
            Ok(CreatableTopicResultConfig {
                name: d.string(true, "CreateTopicsResponse.topics.configs.name")?,
                value: d.nullable_string(true, "CreateTopicsResponse.topics.configs.value")?,
                read_only: d.bool("CreateTopicsResponse.topics.configs.read_only")?,
                config_source: d.i8("CreateTopicsResponse.topics.configs.config_source")?,
                is_sensitive: d.bool("CreateTopicsResponse.topics.configs.is_sensitive")?,
                tagged_fields: d.unknown_tagged_fields()?,
            })
        })?;
        let mut config_error = 0;
        t.tagged_fields = d.tagged_fields(|tag, d| {
            if tag != 0 {
                return Ok(false);
            }
            config_error = d.i16("CreateTopicsResponse.topics.topic_config_error_code")?;
            Ok(true)
        })?;
        t.topic_config_error_code = config_error;
    }
    Ok(t)
}

impl Message for CreateTopicsResponse {
    const API_KEY: ApiKey = ApiKey::CreateTopics;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FIRST_FLEXIBLE;
        if version >= 2 {
            buf.put_i32(self.throttle_time_ms);
        }
        buf.put_array(flexible, &self.topics, WHAT_RESULTS, |b, t| {
            put_result(b, version, t)
        })?;
        put_tags(buf, flexible, &self.tagged_fields)
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FIRST_FLEXIBLE;
        let mut m = CreateTopicsResponse::default();
        if version >= 2 {
            m.throttle_time_ms = d.i32("CreateTopicsResponse.throttle_time_ms")?;
        }
        m.topics = d.array(flexible, WHAT_RESULTS, |d| get_result(d, version))?;
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn sample_request() -> CreateTopicsRequest {
        CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "t".into(),
                num_partitions: 3,
                replication_factor: 2,
                assignments: Vec::new(),
                configs: vec![CreatableTopicConfig {
                    name: "k".into(),
                    value: None,
                    tagged_fields: TaggedFields::default(),
                }],
                tagged_fields: TaggedFields::default(),
            }],
            timeout_ms: 1000,
            validate_only: true,
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn request_v2_and_v5_bytes() {
        let req = sample_request();
        #[rustfmt::skip]
        let v2: &[u8] = &[
            0, 0, 0, 1,         // topics: 1
            0, 1, b't',         //   name
            0, 0, 0, 3,         //   num_partitions
            0, 2,               //   replication_factor
            0, 0, 0, 0,         //   assignments: 0
            0, 0, 0, 1,         //   configs: 1
            0, 1, b'k',         //     name
            0xff, 0xff,         //     value null
            0, 0, 0x03, 0xe8,   // timeout_ms 1000
            1,                  // validate_only
        ];
        assert_eq!(&req.to_bytes(2).unwrap()[..], v2);
        assert_eq!(
            CreateTopicsRequest::decode_exact(Bytes::from(v2), 2).unwrap(),
            req
        );

        #[rustfmt::skip]
        let v5: &[u8] = &[
            2,                  // topics: 1
            2, b't',            //   name
            0, 0, 0, 3,         //   num_partitions
            0, 2,               //   replication_factor
            1,                  //   assignments: 0
            2,                  //   configs: 1
            2, b'k',            //     name
            0,                  //     value null
            0,                  //     config tags
            0,                  //   topic tags
            0, 0, 0x03, 0xe8,   // timeout_ms 1000
            1,                  // validate_only
            0,                  // tags
        ];
        assert_eq!(&req.to_bytes(5).unwrap()[..], v5);
        assert_eq!(
            CreateTopicsRequest::decode_exact(Bytes::from(v5), 5).unwrap(),
            req
        );
    }

    #[test]
    fn response_v2_bytes() {
        let resp = CreateTopicsResponse {
            throttle_time_ms: 0,
            topics: vec![CreatableTopicResult {
                name: "t".into(),
                error_code: 36,
                error_message: Some("x".into()),
                ..Default::default()
            }],
            tagged_fields: TaggedFields::default(),
        };
        let v2: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 36, 0, 1, b'x'];
        assert_eq!(&resp.to_bytes(2).unwrap()[..], v2);
        let back = CreateTopicsResponse::decode_exact(Bytes::from(v2), 2).unwrap();
        assert_eq!(back, resp);
        assert_eq!(back.topics[0].num_partitions, -1);
        assert_eq!(back.topics[0].configs, Some(Vec::new()));
    }

    #[test]
    fn response_v7_bytes_with_tagged_config_error() {
        let resp = CreateTopicsResponse {
            throttle_time_ms: 5,
            topics: vec![CreatableTopicResult {
                name: "t".into(),
                topic_id: Uuid([9; 16]),
                error_code: 0,
                error_message: None,
                topic_config_error_code: 29,
                num_partitions: 3,
                replication_factor: 2,
                configs: None,
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        };
        let mut want = vec![0, 0, 0, 5, 2, 2, b't'];
        want.extend_from_slice(&[9; 16]);
        #[rustfmt::skip]
        let rest: &[u8] = &[
            0, 0,               // error_code
            0,                  // error_message null
            0, 0, 0, 3,         // num_partitions
            0, 2,               // replication_factor
            0,                  // configs null
            1, 0, 2, 0, 29,     // tags: one, tag 0, size 2, topic_config_error_code 29
            0,                  // top-level tags
        ];
        want.extend_from_slice(rest);
        assert_eq!(&resp.to_bytes(7).unwrap()[..], &want[..]);
        assert_eq!(
            CreateTopicsResponse::decode_exact(Bytes::from(want), 7).unwrap(),
            resp
        );

        // With configs and no config error, the tag section is empty.
        let mut ok = resp.clone();
        ok.topics[0].topic_config_error_code = 0;
        ok.topics[0].configs = Some(vec![CreatableTopicResultConfig {
            name: "k".into(),
            value: Some("v".into()),
            read_only: false,
            config_source: 5,
            is_sensitive: false,
            tagged_fields: TaggedFields::default(),
        }]);
        let bytes = ok.to_bytes(6).unwrap();
        #[rustfmt::skip]
        let v6: &[u8] = &[
            0, 0, 0, 5, 2, 2, b't', 0, 0, 0, 0, 0, 0, 3, 0, 2,
            2, 2, b'k', 2, b'v', 0, 5, 0, 0,    // configs: [k=v, not read-only, source 5]
            0, 0,
        ];
        assert_eq!(&bytes[..], v6);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let req = sample_request();
        for version in [2, 5, 7] {
            let bytes = req.to_bytes(version).unwrap();
            for cut in 0..bytes.len() {
                assert!(CreateTopicsRequest::decode_exact(bytes.slice(..cut), version).is_err());
            }
        }
        let resp = CreateTopicsResponse {
            topics: vec![CreatableTopicResult {
                name: "t".into(),
                topic_config_error_code: 1,
                ..Default::default()
            }],
            ..Default::default()
        };
        for version in [2, 7] {
            let bytes = resp.to_bytes(version).unwrap();
            for cut in 0..bytes.len() {
                assert!(CreateTopicsResponse::decode_exact(bytes.slice(..cut), version).is_err());
            }
        }
    }
}
