//! DeleteTopics (key 20): deletes topics, by name or (v6+) by topic id. Versions 1–6; flexible
//! from 4.
//!
//! Kafka 4.0 removed version 0 (KIP-896). Up to v5 the request lists topic names
//! (`topic_names`); v6 replaces that list with `topics`, each a name or a topic id. Both fields are
//! kept here and each version writes the one it carries: [`DeleteTopicsRequest::by_names`] fills
//! both, so one value works at every version.

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields, Uuid};
use crate::primitives::{tags, put_tags};

const FIRST_FLEXIBLE: i16 = 4;

/// DeleteTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DeleteTopicsRequest {
    /// v6+: the topics to delete, each by name or by id.
    pub topics: Vec<DeleteTopicState>,
    /// Up to v5: the names of the topics to delete.
    pub topic_names: Vec<String>,
    /// How long to wait for the deletions to complete, in milliseconds.
    pub timeout_ms: i32,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl DeleteTopicsRequest {
    /// A request deleting `names`, usable at every version: it fills both `topic_names` and
    /// `topics`.
    pub fn by_names<S: Into<String>>(names: impl IntoIterator<Item = S>, timeout_ms: i32) -> Self {
        let topic_names: Vec<String> = names.into_iter().map(Into::into).collect();
        let topics = topic_names
            .iter()
            .map(|name| DeleteTopicState {
                name: Some(name.clone()),
                ..Default::default()
            })
            .collect();
        DeleteTopicsRequest {
            topics,
            topic_names,
            timeout_ms,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// A topic to delete (v6+): by name with a nil id, or by id with a null name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DeleteTopicState {
    /// The topic name, null when deleting by id.
    pub name: Option<String>,
    /// The topic id, nil when deleting by name.
    pub topic_id: Uuid,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

const WHAT_TOPICS: &str = "DeleteTopicsRequest.topics";
const WHAT_TOPIC_NAMES: &str = "DeleteTopicsRequest.topic_names";

impl Message for DeleteTopicsRequest {
    const API_KEY: ApiKey = ApiKey::DeleteTopics;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FIRST_FLEXIBLE;
        if version >= 6 {
            buf.put_array(flexible, &self.topics, WHAT_TOPICS, |b, t| {
                b.put_nullable_string(
                    flexible,
                    t.name.as_deref(),
                    "DeleteTopicsRequest.topics.name",
                )?;
                b.put_uuid(&t.topic_id);
                put_tags(b, flexible, &t.tagged_fields)
            })?;
        } else {
            buf.put_array(flexible, &self.topic_names, WHAT_TOPIC_NAMES, |b, n| {
                b.put_string(flexible, n, WHAT_TOPIC_NAMES)
            })?;
        }
        buf.put_i32(self.timeout_ms);
        put_tags(buf, flexible, &self.tagged_fields)
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FIRST_FLEXIBLE;
        let mut m = DeleteTopicsRequest::default();
        if version >= 6 {
            m.topics = d.array(flexible, WHAT_TOPICS, |d| {
                Ok(DeleteTopicState {
                    name: d.nullable_string(flexible, "DeleteTopicsRequest.topics.name")?,
                    topic_id: d.uuid("DeleteTopicsRequest.topics.topic_id")?,
                    tagged_fields: tags(d, flexible)?,
                })
            })?;
        } else {
            m.topic_names = d.array(flexible, WHAT_TOPIC_NAMES, |d| {
                d.string(flexible, WHAT_TOPIC_NAMES)
            })?;
        }
        m.timeout_ms = d.i32("DeleteTopicsRequest.timeout_ms")?;
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

/// DeleteTopics response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DeleteTopicsResponse {
    /// v1+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// One result per topic asked for.
    pub responses: Vec<DeletableTopicResult>,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// The outcome of deleting one topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DeletableTopicResult {
    /// The topic name; null only from v6, for a topic asked for by an unknown id. Before v6 `None`
    /// is written as an empty name.
    pub name: Option<String>,
    /// v6+: the topic id.
    pub topic_id: Uuid,
    /// The error code, 0 for none.
    pub error_code: i16,
    /// v5+: the error message, if any.
    pub error_message: Option<String>,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

const WHAT_RESPONSES: &str = "DeleteTopicsResponse.responses";
const WHAT_RESPONSE_NAME: &str = "DeleteTopicsResponse.responses.name";

impl Message for DeleteTopicsResponse {
    const API_KEY: ApiKey = ApiKey::DeleteTopics;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FIRST_FLEXIBLE;
        if version >= 1 {
            buf.put_i32(self.throttle_time_ms);
        }
        buf.put_array(flexible, &self.responses, WHAT_RESPONSES, |b, r| {
            if version >= 6 {
                b.put_nullable_string(flexible, r.name.as_deref(), WHAT_RESPONSE_NAME)?;
                b.put_uuid(&r.topic_id);
            } else {
                b.put_string(
                    flexible,
                    r.name.as_deref().unwrap_or_default(),
                    WHAT_RESPONSE_NAME,
                )?;
            }
            b.put_i16(r.error_code);
            if version >= 5 {
                b.put_nullable_string(
                    flexible,
                    r.error_message.as_deref(),
                    "DeleteTopicsResponse.responses.error_message",
                )?;
            }
            put_tags(b, flexible, &r.tagged_fields)
        })?;
        put_tags(buf, flexible, &self.tagged_fields)
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FIRST_FLEXIBLE;
        let mut m = DeleteTopicsResponse::default();
        if version >= 1 {
            m.throttle_time_ms = d.i32("DeleteTopicsResponse.throttle_time_ms")?;
        }
        m.responses = d.array(flexible, WHAT_RESPONSES, |d| {
            let mut r = DeletableTopicResult::default();
            if version >= 6 {
                r.name = d.nullable_string(flexible, WHAT_RESPONSE_NAME)?;
                r.topic_id = d.uuid("DeleteTopicsResponse.responses.topic_id")?;
            } else {
                r.name = Some(d.string(flexible, WHAT_RESPONSE_NAME)?);
            }
            r.error_code = d.i16("DeleteTopicsResponse.responses.error_code")?;
            if version >= 5 {
                r.error_message =
                    d.nullable_string(flexible, "DeleteTopicsResponse.responses.error_message")?;
            }
            r.tagged_fields = tags(d, flexible)?;
            Ok(r)
        })?;
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn request_bytes_at_v1_v4_and_v6() {
        let req = DeleteTopicsRequest::by_names(["ab"], 500);
        let v1: &[u8] = &[0, 0, 0, 1, 0, 2, b'a', b'b', 0, 0, 0x01, 0xf4];
        assert_eq!(&req.to_bytes(1).unwrap()[..], v1);
        let back = DeleteTopicsRequest::decode_exact(Bytes::from(v1), 1).unwrap();
        assert_eq!(back.topic_names, req.topic_names);
        assert!(back.topics.is_empty());

        let v4: &[u8] = &[2, 3, b'a', b'b', 0, 0, 0x01, 0xf4, 0];
        assert_eq!(&req.to_bytes(4).unwrap()[..], v4);

        // v6: compact array of (nullable name, topic id, tags), then timeout and tags.
        let mut v6 = vec![2, 3, b'a', b'b'];
        v6.extend_from_slice(&[0; 16]);
        v6.extend_from_slice(&[0, 0, 0, 0x01, 0xf4, 0]);
        assert_eq!(&req.to_bytes(6).unwrap()[..], &v6[..]);
        let back = DeleteTopicsRequest::decode_exact(Bytes::from(v6), 6).unwrap();
        assert_eq!(back.topics, req.topics);
        assert!(back.topic_names.is_empty());

        let by_id = DeleteTopicsRequest {
            topics: vec![DeleteTopicState {
                name: None,
                topic_id: Uuid([1; 16]),
                tagged_fields: TaggedFields::default(),
            }],
            timeout_ms: 0,
            ..Default::default()
        };
        let mut want = vec![2, 0];
        want.extend_from_slice(&[1; 16]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        assert_eq!(&by_id.to_bytes(6).unwrap()[..], &want[..]);
    }

    #[test]
    fn response_bytes_at_v1_and_v6() {
        let resp = DeleteTopicsResponse {
            throttle_time_ms: 0,
            responses: vec![DeletableTopicResult {
                name: Some("t".into()),
                topic_id: Uuid([3; 16]),
                error_code: 3,
                error_message: Some("e".into()),
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        };
        let v1: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 3];
        assert_eq!(&resp.to_bytes(1).unwrap()[..], v1);
        let back = DeleteTopicsResponse::decode_exact(Bytes::from(v1), 1).unwrap();
        assert_eq!(back.responses[0].name.as_deref(), Some("t"));
        assert_eq!(back.responses[0].error_message, None);

        let mut v6 = vec![0, 0, 0, 0, 2, 2, b't'];
        v6.extend_from_slice(&[3; 16]);
        v6.extend_from_slice(&[0, 3, 2, b'e', 0, 0]);
        assert_eq!(&resp.to_bytes(6).unwrap()[..], &v6[..]);
        assert_eq!(
            DeleteTopicsResponse::decode_exact(Bytes::from(v6), 6).unwrap(),
            resp
        );
    }

    #[test]
    fn truncated_input_is_an_error() {
        let req = DeleteTopicsRequest::by_names(["a", "b"], 1);
        for version in 1..=6 {
            let bytes = req.to_bytes(version).unwrap();
            for cut in 0..bytes.len() {
                assert!(DeleteTopicsRequest::decode_exact(bytes.slice(..cut), version).is_err());
            }
        }
        let resp = DeleteTopicsResponse {
            responses: vec![DeletableTopicResult {
                name: Some("a".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        for version in 1..=6 {
            let bytes = resp.to_bytes(version).unwrap();
            for cut in 0..bytes.len() {
                assert!(DeleteTopicsResponse::decode_exact(bytes.slice(..cut), version).is_err());
            }
        }
    }
}
