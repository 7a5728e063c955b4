//! Heartbeat (key 12): a member of a classic group tells the coordinator it is alive, and learns
//! from the error code whether a rebalance is under way. Versions 0–4; flexible from 4.

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};
use crate::primitives::put_tags;

/// The first flexible version.
const FLEXIBLE: i16 = 4;

/// Heartbeat request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct HeartbeatRequest {
    /// The group id.
    pub group_id: String,
    /// The generation the member believes the group is in.
    pub generation_id: i32,
    /// The member id the coordinator assigned.
    pub member_id: String,
    /// v3+: the static member's instance id (KIP-345), `None` for a dynamic member.
    pub group_instance_id: Option<String>,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for HeartbeatRequest {
    const API_KEY: ApiKey = ApiKey::Heartbeat;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        buf.put_string(flexible, &self.group_id, "HeartbeatRequest.group_id")?;
        buf.put_i32(self.generation_id);
        buf.put_string(flexible, &self.member_id, "HeartbeatRequest.member_id")?;
        if version >= 3 {
            buf.put_nullable_string(
                flexible,
                self.group_instance_id.as_deref(),
                "HeartbeatRequest.group_instance_id",
            )?;
        }
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = HeartbeatRequest {
            group_id: d.string(flexible, "HeartbeatRequest.group_id")?,
            generation_id: d.i32("HeartbeatRequest.generation_id")?,
            member_id: d.string(flexible, "HeartbeatRequest.member_id")?,
            ..Default::default()
        };
        if version >= 3 {
            m.group_instance_id =
                d.nullable_string(flexible, "HeartbeatRequest.group_instance_id")?;
        }
        if flexible {
            m.tagged_fields = d.unknown_tagged_fields()?;
        }
        Ok(m)
    }
}

/// Heartbeat response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct HeartbeatResponse {
    /// v1+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// The error code, 0 for none; `REBALANCE_IN_PROGRESS` (27) asks the member to rejoin.
    pub error_code: i16,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for HeartbeatResponse {
    const API_KEY: ApiKey = ApiKey::Heartbeat;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        if version >= 1 {
            buf.put_i32(self.throttle_time_ms);
        }
        buf.put_i16(self.error_code);
        if version >= FLEXIBLE {
            self.tagged_fields.encode(buf)?;
        }
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let mut m = HeartbeatResponse::default();
        if version >= 1 {
            m.throttle_time_ms = d.i32("HeartbeatResponse.throttle_time_ms")?;
        }
        m.error_code = d.i16("HeartbeatResponse.error_code")?;
        if version >= FLEXIBLE {
            m.tagged_fields = d.unknown_tagged_fields()?;
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn request() -> HeartbeatRequest {
        HeartbeatRequest {
            group_id: "g".into(),
            generation_id: 5,
            member_id: "m".into(),
            group_instance_id: Some("i".into()),
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn request_bytes_v0_v3_v4() {
        // v0: STRING group_id, INT32 generation_id, STRING member_id.
        let v0 = b"\x00\x01g\x00\x00\x00\x05\x00\x01m";
        assert_eq!(&request().to_bytes(0).unwrap()[..], v0);
        // v3 adds NULLABLE_STRING group_instance_id.
        let v3 = b"\x00\x01g\x00\x00\x00\x05\x00\x01m\x00\x01i";
        assert_eq!(&request().to_bytes(3).unwrap()[..], v3);
        // v4: compact strings (length + 1) and an empty tagged-field section.
        let v4 = b"\x02g\x00\x00\x00\x05\x02m\x02i\x00";
        assert_eq!(&request().to_bytes(4).unwrap()[..], v4);
        let back = HeartbeatRequest::decode_exact(Bytes::from_static(v4), 4).unwrap();
        assert_eq!(back, request());
        // v0 drops the instance id.
        let back = HeartbeatRequest::decode_exact(Bytes::from_static(v0), 0).unwrap();
        assert_eq!(back.group_instance_id, None);
    }

    #[test]
    fn null_instance_id_v3() {
        let req = HeartbeatRequest {
            group_instance_id: None,
            ..request()
        };
        let bytes = req.to_bytes(3).unwrap();
        assert_eq!(&bytes[..], b"\x00\x01g\x00\x00\x00\x05\x00\x01m\xff\xff");
        assert_eq!(HeartbeatRequest::decode_exact(bytes, 3).unwrap(), req);
    }

    #[test]
    fn response_bytes_v0_v1_v4() {
        let resp = HeartbeatResponse {
            throttle_time_ms: 100,
            error_code: 27,
            tagged_fields: TaggedFields::default(),
        };
        assert_eq!(&resp.to_bytes(0).unwrap()[..], b"\x00\x1b");
        assert_eq!(&resp.to_bytes(1).unwrap()[..], b"\x00\x00\x00\x64\x00\x1b");
        let v4 = b"\x00\x00\x00\x64\x00\x1b\x00";
        assert_eq!(&resp.to_bytes(4).unwrap()[..], v4);
        let back = HeartbeatResponse::decode_exact(Bytes::from_static(v4), 4).unwrap();
        assert_eq!(back, resp);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let full = request().to_bytes(4).unwrap();
        for n in 0..full.len() {
            assert!(HeartbeatRequest::decode_exact(full.slice(..n), 4).is_err(), "{n}");
        }
        let resp = HeartbeatResponse::default().to_bytes(4).unwrap();
        for n in 0..resp.len() {
            assert!(HeartbeatResponse::decode_exact(resp.slice(..n), 4).is_err(), "{n}");
        }
    }
}
