//! InitProducerId (key 22): obtain a producer id and epoch for idempotent or transactional
//! producing. Versions 0–5; flexible from 2.
//!
//! Version 3 lets a producer pass its current id and epoch to have the epoch bumped instead of
//! getting a new id (KIP-360). Versions 4 and 5 have the wire format of version 3: 4 lets the broker
//! answer `PRODUCER_FENCED`, 5 `TRANSACTION_ABORTABLE` (KIP-890). Version 6 (two-phase commit,
//! KIP-939) arrived after Kafka 4.0 and is not implemented.

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};
use crate::primitives::put_tags;

/// The first flexible version.
const FLEXIBLE_FROM: i16 = 2;

/// InitProducerId request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct InitProducerIdRequest {
    /// The transactional id, or null for a producer that is only idempotent.
    pub transactional_id: Option<String>,
    /// How long the coordinator waits before aborting an idle transaction of this producer, in
    /// milliseconds. Only meaningful with a transactional id.
    pub transaction_timeout_ms: i32,
    /// v3+: the producer's current id, to have its epoch bumped; -1 for a fresh producer.
    pub producer_id: i64,
    /// v3+: the producer's current epoch, checked against the broker's; -1 for a fresh producer.
    pub producer_epoch: i16,
    /// v2+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for InitProducerIdRequest {
    fn default() -> Self {
        InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 0,
            producer_id: -1,
            producer_epoch: -1,
            tagged_fields: TaggedFields::default(),
        }
    }
}

impl Message for InitProducerIdRequest {
    const API_KEY: ApiKey = ApiKey::InitProducerId;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE_FROM;
        buf.put_nullable_string(
            flexible,
            self.transactional_id.as_deref(),
            "InitProducerIdRequest.transactional_id",
        )?;
        buf.put_i32(self.transaction_timeout_ms);
        if version >= 3 {
            buf.put_i64(self.producer_id);
            buf.put_i16(self.producer_epoch);
        }
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE_FROM;
        let mut m = InitProducerIdRequest {
            transactional_id: d
                .nullable_string(flexible, "InitProducerIdRequest.transactional_id")?,
            transaction_timeout_ms: d.i32("InitProducerIdRequest.transaction_timeout_ms")?,
            ..Default::default()
        };
        if version >= 3 {
            m.producer_id = d.i64("InitProducerIdRequest.producer_id")?;
            m.producer_epoch = d.i16("InitProducerIdRequest.producer_epoch")?;
        }
        if flexible {
            m.tagged_fields = d.unknown_tagged_fields()?;
        }
        Ok(m)
    }
}

/// InitProducerId response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct InitProducerIdResponse {
    /// How long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// The error code, 0 for none.
    pub error_code: i16,
    /// The producer id to use, -1 on error.
    pub producer_id: i64,
    /// The epoch that goes with `producer_id`.
    pub producer_epoch: i16,
    /// v2+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for InitProducerIdResponse {
    fn default() -> Self {
        InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: 0,
            producer_id: -1,
            producer_epoch: 0,
            tagged_fields: TaggedFields::default(),
        }
    }
}

impl Message for InitProducerIdResponse {
    const API_KEY: ApiKey = ApiKey::InitProducerId;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        buf.put_i32(self.throttle_time_ms);
        buf.put_i16(self.error_code);
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        if version >= FLEXIBLE_FROM {
            self.tagged_fields.encode(buf)?;
        }
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let mut m = InitProducerIdResponse {
            throttle_time_ms: d.i32("InitProducerIdResponse.throttle_time_ms")?,
            error_code: d.i16("InitProducerIdResponse.error_code")?,
            producer_id: d.i64("InitProducerIdResponse.producer_id")?,
            producer_epoch: d.i16("InitProducerIdResponse.producer_epoch")?,
            tagged_fields: TaggedFields::default(),
        };
        if version >= FLEXIBLE_FROM {
            m.tagged_fields = d.unknown_tagged_fields()?;
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn request() -> InitProducerIdRequest {
        InitProducerIdRequest {
            transactional_id: Some("tx".into()),
            transaction_timeout_ms: 60_000,
            producer_id: 7,
            producer_epoch: 2,
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn v1_request_has_id_and_timeout_only() {
        // "tx", 60000 = 0x0000ea60
        let expected: &[u8] = &[0, 2, b't', b'x', 0, 0, 0xea, 0x60];
        let bytes = request().to_bytes(1).unwrap();
        assert_eq!(&bytes[..], expected);
        let back = InitProducerIdRequest::decode_exact(bytes, 1).unwrap();
        assert_eq!(back.producer_id, -1);
        assert_eq!(back.producer_epoch, -1);
        // An idempotent-only producer sends a null id.
        let idempotent = InitProducerIdRequest::default();
        assert_eq!(
            &idempotent.to_bytes(0).unwrap()[..],
            &[0xff, 0xff, 0, 0, 0, 0]
        );
    }

    #[test]
    fn flexible_requests() {
        // v2: compact id, timeout, tags.
        assert_eq!(
            &request().to_bytes(2).unwrap()[..],
            &[3, b't', b'x', 0, 0, 0xea, 0x60, 0]
        );
        // v3+: adds producer id and epoch.
        let expected: &[u8] = &[
            3, b't', b'x', // transactional_id
            0, 0, 0xea, 0x60, // transaction_timeout_ms
            0, 0, 0, 0, 0, 0, 0, 7, // producer_id
            0, 2, // producer_epoch
            0, // tags
        ];
        for version in 3..=5 {
            let bytes = request().to_bytes(version).unwrap();
            assert_eq!(&bytes[..], expected, "v{version}");
            assert_eq!(
                InitProducerIdRequest::decode_exact(bytes, version).unwrap(),
                request()
            );
        }
    }

    #[test]
    fn responses_pin_bytes() {
        let resp = InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: 0,
            producer_id: 1000,
            producer_epoch: 5,
            tagged_fields: TaggedFields::default(),
        };
        let v0: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 5];
        assert_eq!(&resp.to_bytes(0).unwrap()[..], v0);
        let back = InitProducerIdResponse::decode_exact(Bytes::from_static(v0), 0).unwrap();
        assert_eq!(back, resp);
        let v2: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 5, 0];
        let bytes = resp.to_bytes(2).unwrap();
        assert_eq!(&bytes[..], v2);
        assert_eq!(
            InitProducerIdResponse::decode_exact(bytes, 2).unwrap(),
            resp
        );
        // Unknown tags survive a round trip.
        let tagged = InitProducerIdResponse {
            tagged_fields: TaggedFields(vec![(9, Bytes::from_static(b"z"))]),
            ..resp
        };
        let bytes = tagged.to_bytes(5).unwrap();
        assert_eq!(&bytes[bytes.len() - 4..], &[1, 9, 1, b'z']);
        assert_eq!(
            InitProducerIdResponse::decode_exact(bytes, 5).unwrap(),
            tagged
        );
    }

    #[test]
    fn truncated_input_is_an_error() {
        for version in [0, 2, 3] {
            let full = request().to_bytes(version).unwrap();
            for len in 0..full.len() {
                assert!(InitProducerIdRequest::decode_exact(full.slice(..len), version).is_err());
            }
            let full = InitProducerIdResponse::default().to_bytes(version).unwrap();
            for len in 0..full.len() {
                assert!(InitProducerIdResponse::decode_exact(full.slice(..len), version).is_err());
            }
        }
    }
}
