//! SyncGroup (key 14): after a JoinGroup round, the leader sends the assignment it computed and every
//! member (leader included) receives its own share. Versions 0–5; flexible from 4.

use bytes::{BufMut, Bytes, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};
use crate::primitives::{put_tags, tags};

/// The first flexible version.
const FLEXIBLE: i16 = 4;

/// SyncGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SyncGroupRequest {
    /// The group id.
    pub group_id: String,
    /// The generation the JoinGroup round produced.
    pub generation_id: i32,
    /// The member id the coordinator assigned.
    pub member_id: String,
    /// v3+: the static member's instance id (KIP-345), `None` for a dynamic member.
    pub group_instance_id: Option<String>,
    /// v5+: the group's protocol type (KIP-559), checked by the coordinator; `None` when not sent.
    pub protocol_type: Option<String>,
    /// v5+: the protocol chosen in JoinGroup (KIP-559), checked by the coordinator; `None` when not
    /// sent.
    pub protocol_name: Option<String>,
    /// The leader's assignment for every member; empty from followers.
    pub assignments: Vec<SyncGroupRequestAssignment>,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One member's assignment, sent by the leader.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SyncGroupRequestAssignment {
    /// The member the assignment is for.
    pub member_id: String,
    /// The assignment, opaque here (for consumers: a ConsumerProtocolAssignment).
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::primitives::arb::bytes))]
    pub assignment: Bytes,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for SyncGroupRequest {
    const API_KEY: ApiKey = ApiKey::SyncGroup;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        buf.put_string(flexible, &self.group_id, "SyncGroupRequest.group_id")?;
        buf.put_i32(self.generation_id);
        buf.put_string(flexible, &self.member_id, "SyncGroupRequest.member_id")?;
        if version >= 3 {
            buf.put_nullable_string(
                flexible,
                self.group_instance_id.as_deref(),
                "SyncGroupRequest.group_instance_id",
            )?;
        }
        if version >= 5 {
            buf.put_nullable_string(
                flexible,
                self.protocol_type.as_deref(),
                "SyncGroupRequest.protocol_type",
            )?;
            buf.put_nullable_string(
                flexible,
                self.protocol_name.as_deref(),
                "SyncGroupRequest.protocol_name",
            )?;
        }
        buf.put_array(flexible, &self.assignments, "SyncGroupRequest.assignments", |b, a| {
            b.put_string(flexible, &a.member_id, "SyncGroupRequest.assignments.member_id")?;
            b.put_bytes_field(flexible, &a.assignment, "SyncGroupRequest.assignments.assignment")?;
            put_tags(b, flexible, &a.tagged_fields)?;
            Ok(())
        })?;
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = SyncGroupRequest {
            group_id: d.string(flexible, "SyncGroupRequest.group_id")?,
            generation_id: d.i32("SyncGroupRequest.generation_id")?,
            member_id: d.string(flexible, "SyncGroupRequest.member_id")?,
            ..Default::default()
        };
        if version >= 3 {
            m.group_instance_id =
                d.nullable_string(flexible, "SyncGroupRequest.group_instance_id")?;
        }
        if version >= 5 {
            m.protocol_type = d.nullable_string(flexible, "SyncGroupRequest.protocol_type")?;
            m.protocol_name = d.nullable_string(flexible, "SyncGroupRequest.protocol_name")?;
        }
        m.assignments = d.array(flexible, "SyncGroupRequest.assignments", |d| {
            Ok(SyncGroupRequestAssignment {
                member_id: d.string(flexible, "SyncGroupRequest.assignments.member_id")?,
                assignment: d.bytes(flexible, "SyncGroupRequest.assignments.assignment")?,
                tagged_fields: tags(d, flexible)?,
            })
        })?;
        if flexible {
            m.tagged_fields = d.unknown_tagged_fields()?;
        }
        Ok(m)
    }
}

/// SyncGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SyncGroupResponse {
    /// v1+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// The error code, 0 for none.
    pub error_code: i16,
    /// v5+: the group's protocol type (KIP-559), `None` when unknown.
    pub protocol_type: Option<String>,
    /// v5+: the group's chosen protocol (KIP-559), `None` when unknown.
    pub protocol_name: Option<String>,
    /// This member's assignment, opaque here.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::primitives::arb::bytes))]
    pub assignment: Bytes,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for SyncGroupResponse {
    const API_KEY: ApiKey = ApiKey::SyncGroup;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        if version >= 1 {
            buf.put_i32(self.throttle_time_ms);
        }
        buf.put_i16(self.error_code);
        if version >= 5 {
            buf.put_nullable_string(
                flexible,
                self.protocol_type.as_deref(),
                "SyncGroupResponse.protocol_type",
            )?;
            buf.put_nullable_string(
                flexible,
                self.protocol_name.as_deref(),
                "SyncGroupResponse.protocol_name",
            )?;
        }
        buf.put_bytes_field(flexible, &self.assignment, "SyncGroupResponse.assignment")?;
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = SyncGroupResponse::default();
        if version >= 1 {
            m.throttle_time_ms = d.i32("SyncGroupResponse.throttle_time_ms")?;
        }
        m.error_code = d.i16("SyncGroupResponse.error_code")?;
        if version >= 5 {
            m.protocol_type = d.nullable_string(flexible, "SyncGroupResponse.protocol_type")?;
            m.protocol_name = d.nullable_string(flexible, "SyncGroupResponse.protocol_name")?;
        }
        m.assignment = d.bytes(flexible, "SyncGroupResponse.assignment")?;
        if flexible {
            m.tagged_fields = d.unknown_tagged_fields()?;
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SyncGroupRequest {
        SyncGroupRequest {
            group_id: "g".into(),
            generation_id: 2,
            member_id: "m".into(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: vec![SyncGroupRequestAssignment {
                member_id: "m".into(),
                assignment: Bytes::from_static(b"\xaa"),
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn request_v0_bytes() {
        let v0: &[u8] = b"\x00\x01g\
            \x00\x00\x00\x02\
            \x00\x01m\
            \x00\x00\x00\x01\x00\x01m\x00\x00\x00\x01\xaa";
        assert_eq!(&request().to_bytes(0).unwrap()[..], v0);
        let back = SyncGroupRequest::decode_exact(Bytes::from_static(v0), 0).unwrap();
        assert_eq!(back.protocol_type, None);
        assert_eq!(back.protocol_name, None);
        assert_eq!(back.assignments, request().assignments);
    }

    #[test]
    fn request_v5_bytes() {
        let v5: &[u8] = b"\x02g\
            \x00\x00\x00\x02\
            \x02m\
            \x00\
            \x09consumer\
            \x06range\
            \x02\x02m\x02\xaa\x00\
            \x00";
        assert_eq!(&request().to_bytes(5).unwrap()[..], v5);
        let back = SyncGroupRequest::decode_exact(Bytes::from_static(v5), 5).unwrap();
        assert_eq!(back, request());
    }

    fn response() -> SyncGroupResponse {
        SyncGroupResponse {
            throttle_time_ms: 1,
            error_code: 0,
            protocol_type: Some("consumer".into()),
            protocol_name: None,
            assignment: Bytes::from_static(b"\x01\x02\x03"),
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn response_v0_v1_bytes() {
        assert_eq!(
            &response().to_bytes(0).unwrap()[..],
            b"\x00\x00\x00\x00\x00\x03\x01\x02\x03"
        );
        let v1: &[u8] = b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x03\x01\x02\x03";
        assert_eq!(&response().to_bytes(1).unwrap()[..], v1);
        let back = SyncGroupResponse::decode_exact(Bytes::from_static(v1), 1).unwrap();
        assert_eq!(back.protocol_type, None);
        assert_eq!(back.assignment, response().assignment);
    }

    #[test]
    fn response_v5_bytes() {
        let v5: &[u8] = b"\x00\x00\x00\x01\
            \x00\x00\
            \x09consumer\
            \x00\
            \x04\x01\x02\x03\
            \x00";
        assert_eq!(&response().to_bytes(5).unwrap()[..], v5);
        let back = SyncGroupResponse::decode_exact(Bytes::from_static(v5), 5).unwrap();
        assert_eq!(back, response());
    }

    #[test]
    fn truncated_input_is_an_error() {
        for version in [0, 5] {
            let full = request().to_bytes(version).unwrap();
            for n in 0..full.len() {
                assert!(SyncGroupRequest::decode_exact(full.slice(..n), version).is_err());
            }
            let full = response().to_bytes(version).unwrap();
            for n in 0..full.len() {
                assert!(SyncGroupResponse::decode_exact(full.slice(..n), version).is_err());
            }
        }
    }
}
