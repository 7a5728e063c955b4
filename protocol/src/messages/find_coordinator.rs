//! FindCoordinator (key 10): which broker coordinates a group, transaction or share-group state.
//! Versions 0–6; flexible from 3.
//!
//! Versions 0–3 look up a single key and answer with one broker at the top of the response.
//! Versions 4+ batch several keys of one type (KIP-699) and answer with a `coordinators` array.
//! Versions 5 and 6 have the wire format of version 4: 5 lets the broker answer
//! `TRANSACTION_ABORTABLE` (KIP-890), 6 allows the share key type (KIP-932), whose keys read
//! `groupId:topicId:partition`.

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};
use crate::primitives::put_tags;

/// The first flexible version.
const FLEXIBLE_FROM: i16 = 3;
/// The first version that batches keys.
const BATCHED_FROM: i16 = 4;

/// FindCoordinator request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FindCoordinatorRequest {
    /// v0–v3: the key to look up (a group id or transactional id).
    pub key: String,
    /// v1+: what kind of key is looked up: [`Self::KEY_TYPE_GROUP`] (the default, and the only
    /// kind version 0 knows), [`Self::KEY_TYPE_TRANSACTION`] or [`Self::KEY_TYPE_SHARE`] (v6+).
    pub key_type: i8,
    /// v4+: the keys to look up, all of `key_type`.
    pub coordinator_keys: Vec<String>,
    /// v3+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl FindCoordinatorRequest {
    /// Key type of a consumer group id.
    pub const KEY_TYPE_GROUP: i8 = 0;
    /// Key type of a transactional id.
    pub const KEY_TYPE_TRANSACTION: i8 = 1;
    /// Key type of a share-group state key (v6+, KIP-932).
    pub const KEY_TYPE_SHARE: i8 = 2;
}

impl Message for FindCoordinatorRequest {
    const API_KEY: ApiKey = ApiKey::FindCoordinator;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE_FROM;
        if version < BATCHED_FROM {
            buf.put_string(flexible, &self.key, "FindCoordinatorRequest.key")?;
        }
        if version >= 1 {
            buf.put_i8(self.key_type);
        }
        if version >= BATCHED_FROM {
            buf.put_array(
                flexible,
                &self.coordinator_keys,
                "FindCoordinatorRequest.coordinator_keys",
                |buf, k| buf.put_string(flexible, k, "FindCoordinatorRequest.coordinator_keys"),
            )?;
        }
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE_FROM;
        let mut m = FindCoordinatorRequest::default();
        if version < BATCHED_FROM {
            m.key = d.string(flexible, "FindCoordinatorRequest.key")?;
        }
        if version >= 1 {
            m.key_type = d.i8("FindCoordinatorRequest.key_type")?;
        }
        if version >= BATCHED_FROM {
            m.coordinator_keys =
                d.array(flexible, "FindCoordinatorRequest.coordinator_keys", |d| {
                    d.string(flexible, "FindCoordinatorRequest.coordinator_keys")
                })?;
        }
        if flexible {
            m.tagged_fields = d.unknown_tagged_fields()?;
        }
        Ok(m)
    }
}

/// FindCoordinator response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FindCoordinatorResponse {
    /// v1+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// v0–v3: the error code, 0 for none.
    pub error_code: i16,
    /// v1–v3: the error message, or null.
    pub error_message: Option<String>,
    /// v0–v3: the coordinator's broker id.
    pub node_id: i32,
    /// v0–v3: the coordinator's host name.
    pub host: String,
    /// v0–v3: the coordinator's port.
    pub port: i32,
    /// v4+: the answer for each key asked about.
    pub coordinators: Vec<Coordinator>,
    /// v3+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// The coordinator for one key of a batched FindCoordinator response (v4+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Coordinator {
    /// The key this answer is for.
    pub key: String,
    /// The coordinator's broker id.
    pub node_id: i32,
    /// The coordinator's host name.
    pub host: String,
    /// The coordinator's port.
    pub port: i32,
    /// The error code, 0 for none.
    pub error_code: i16,
    /// The error message, or null.
    pub error_message: Option<String>,
    /// Unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for FindCoordinatorResponse {
    const API_KEY: ApiKey = ApiKey::FindCoordinator;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE_FROM;
        if version >= 1 {
            buf.put_i32(self.throttle_time_ms);
        }
        if version < BATCHED_FROM {
            buf.put_i16(self.error_code);
            if version >= 1 {
                buf.put_nullable_string(
                    flexible,
                    self.error_message.as_deref(),
                    "FindCoordinatorResponse.error_message",
                )?;
            }
            buf.put_i32(self.node_id);
            buf.put_string(flexible, &self.host, "FindCoordinatorResponse.host")?;
            buf.put_i32(self.port);
        } else {
            buf.put_array(
                flexible,
                &self.coordinators,
                "FindCoordinatorResponse.coordinators",
                |buf, c| {
                    buf.put_string(flexible, &c.key, "FindCoordinatorResponse.coordinators.key")?;
                    buf.put_i32(c.node_id);
                    buf.put_string(
                        flexible,
                        &c.host,
                        "FindCoordinatorResponse.coordinators.host",
                    )?;
                    buf.put_i32(c.port);
                    buf.put_i16(c.error_code);
                    buf.put_nullable_string(
                        flexible,
                        c.error_message.as_deref(),
                        "FindCoordinatorResponse.coordinators.error_message",
                    )?;
                    c.tagged_fields.encode(buf)
                },
            )?;
        }
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE_FROM;
        let mut m = FindCoordinatorResponse::default();
        if version >= 1 {
            m.throttle_time_ms = d.i32("FindCoordinatorResponse.throttle_time_ms")?;
        }
        if version < BATCHED_FROM {
            m.error_code = d.i16("FindCoordinatorResponse.error_code")?;
            if version >= 1 {
                m.error_message =
                    d.nullable_string(flexible, "FindCoordinatorResponse.error_message")?;
            }
            m.node_id = d.i32("FindCoordinatorResponse.node_id")?;
            m.host = d.string(flexible, "FindCoordinatorResponse.host")?;
            m.port = d.i32("FindCoordinatorResponse.port")?;
        } else {
            m.coordinators = d.array(flexible, "FindCoordinatorResponse.coordinators", |d| {
                Ok(Coordinator {
                    key: d.string(flexible, "FindCoordinatorResponse.coordinators.key")?,
                    node_id: d.i32("FindCoordinatorResponse.coordinators.node_id")?,
                    host: d.string(flexible, "FindCoordinatorResponse.coordinators.host")?,
                    port: d.i32("FindCoordinatorResponse.coordinators.port")?,
                    error_code: d.i16("FindCoordinatorResponse.coordinators.error_code")?,
                    error_message: d.nullable_string(
                        flexible,
                        "FindCoordinatorResponse.coordinators.error_message",
                    )?,
                    tagged_fields: d.unknown_tagged_fields()?,
                })
            })?;
        }
        if flexible {
            m.tagged_fields = d.unknown_tagged_fields()?;
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> FindCoordinatorRequest {
        FindCoordinatorRequest {
            key: "g".into(),
            key_type: FindCoordinatorRequest::KEY_TYPE_TRANSACTION,
            coordinator_keys: vec!["a".into(), "bc".into()],
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn single_key_requests() {
        // v0: key only.
        assert_eq!(&request().to_bytes(0).unwrap()[..], &[0, 1, b'g']);
        // v1: key and key_type.
        assert_eq!(&request().to_bytes(1).unwrap()[..], &[0, 1, b'g', 1]);
        // v3: compact key, key_type, tags.
        let bytes = request().to_bytes(3).unwrap();
        assert_eq!(&bytes[..], &[2, b'g', 1, 0]);
        let back = FindCoordinatorRequest::decode_exact(bytes, 3).unwrap();
        assert_eq!(back.key, "g");
        assert!(back.coordinator_keys.is_empty());
        // v0 has no key_type: decoding yields the group type.
        let back = FindCoordinatorRequest::decode_exact(request().to_bytes(0).unwrap(), 0).unwrap();
        assert_eq!(back.key_type, FindCoordinatorRequest::KEY_TYPE_GROUP);
    }

    #[test]
    fn v4_request_batches_keys() {
        let expected: &[u8] = &[1, 3, 2, b'a', 3, b'b', b'c', 0];
        for version in 4..=6 {
            let bytes = request().to_bytes(version).unwrap();
            assert_eq!(&bytes[..], expected, "v{version}");
            let back = FindCoordinatorRequest::decode_exact(bytes, version).unwrap();
            assert_eq!(back.key, "");
            assert_eq!(back.coordinator_keys, request().coordinator_keys);
        }
    }

    #[test]
    fn single_key_responses() {
        let resp = FindCoordinatorResponse {
            throttle_time_ms: 2,
            error_code: 0,
            error_message: None,
            node_id: 3,
            host: "h".into(),
            port: 9092,
            ..Default::default()
        };
        let v0: &[u8] = &[0, 0, 0, 0, 0, 3, 0, 1, b'h', 0, 0, 0x23, 0x84];
        assert_eq!(&resp.to_bytes(0).unwrap()[..], v0);
        let v1: &[u8] = &[
            0, 0, 0, 2, // throttle_time_ms
            0, 0, // error_code
            0xff, 0xff, // error_message null
            0, 0, 0, 3, // node_id
            0, 1, b'h', // host
            0, 0, 0x23, 0x84, // port 9092
        ];
        assert_eq!(&resp.to_bytes(1).unwrap()[..], v1);
        let v3: &[u8] = &[
            0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 3, 2, b'h', 0, 0, 0x23, 0x84, 0,
        ];
        let bytes = resp.to_bytes(3).unwrap();
        assert_eq!(&bytes[..], v3);
        assert_eq!(
            FindCoordinatorResponse::decode_exact(bytes, 3).unwrap(),
            resp
        );
    }

    #[test]
    fn v4_response_lists_coordinators() {
        let resp = FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators: vec![Coordinator {
                key: "a".into(),
                node_id: 1,
                host: "h".into(),
                port: 9092,
                error_code: 15,
                error_message: Some("e".into()),
                tagged_fields: TaggedFields::default(),
            }],
            ..Default::default()
        };
        let expected: &[u8] = &[
            0, 0, 0, 0, // throttle_time_ms
            2, // one coordinator
            2, b'a', // key
            0, 0, 0, 1, // node_id
            2, b'h', // host
            0, 0, 0x23, 0x84, // port
            0, 15, // error_code
            2, b'e', // error_message
            0,    // coordinator tags
            0,    // response tags
        ];
        let bytes = resp.to_bytes(4).unwrap();
        assert_eq!(&bytes[..], expected);
        assert_eq!(
            FindCoordinatorResponse::decode_exact(bytes, 4).unwrap(),
            resp
        );
    }

    #[test]
    fn truncated_input_is_an_error() {
        for version in [0, 1, 3, 4, 6] {
            let full = request().to_bytes(version).unwrap();
            for len in 0..full.len() {
                assert!(FindCoordinatorRequest::decode_exact(full.slice(..len), version).is_err());
            }
        }
        let resp = FindCoordinatorResponse {
            error_message: Some("e".into()),
            host: "h".into(),
            coordinators: vec![Coordinator::default()],
            ..Default::default()
        };
        for version in [0, 1, 3, 4] {
            let full = resp.to_bytes(version).unwrap();
            for len in 0..full.len() {
                assert!(FindCoordinatorResponse::decode_exact(full.slice(..len), version).is_err());
            }
        }
    }
}
