//! LeaveGroup (key 13): members leave a classic group so the coordinator can rebalance at once
//! instead of waiting for their sessions to expire. Versions 0–5; flexible from 4.
//!
//! Up to v2 a request names one member (`member_id`); from v3 it carries a batch of member
//! identities (`members`, KIP-345), and the response reports an error per member.

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};
use crate::primitives::tags;
use crate::primitives::put_tags;

/// The first flexible version.
const FLEXIBLE: i16 = 4;

/// LeaveGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LeaveGroupRequest {
    /// The group id.
    pub group_id: String,
    /// v0–2: the id of the member leaving. Not sent from v3, which uses `members`.
    pub member_id: String,
    /// v3+: the members leaving. Not sent before v3, which uses `member_id`.
    pub members: Vec<MemberIdentity>,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// A member leaving the group (v3+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MemberIdentity {
    /// The member id; may be empty when `group_instance_id` identifies a static member.
    pub member_id: String,
    /// The static member's instance id, `None` for a dynamic member.
    pub group_instance_id: Option<String>,
    /// v5+: why the member leaves (KIP-800), `None` when not given.
    pub reason: Option<String>,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for LeaveGroupRequest {
    const API_KEY: ApiKey = ApiKey::LeaveGroup;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        buf.put_string(flexible, &self.group_id, "LeaveGroupRequest.group_id")?;
        if version <= 2 {
            buf.put_string(flexible, &self.member_id, "LeaveGroupRequest.member_id")?;
        } else {
            buf.put_array(flexible, &self.members, "LeaveGroupRequest.members", |b, mb| {
                b.put_string(flexible, &mb.member_id, "LeaveGroupRequest.members.member_id")?;
                b.put_nullable_string(
                    flexible,
                    mb.group_instance_id.as_deref(),
                    "LeaveGroupRequest.members.group_instance_id",
                )?;
                if version >= 5 {
                    b.put_nullable_string(
                        flexible,
                        mb.reason.as_deref(),
                        "LeaveGroupRequest.members.reason",
                    )?;
                }
                put_tags(b, flexible, &mb.tagged_fields)?;
                Ok(())
            })?;
        }
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = LeaveGroupRequest {
            group_id: d.string(flexible, "LeaveGroupRequest.group_id")?,
            ..Default::default()
        };
        if version <= 2 {
            m.member_id = d.string(flexible, "LeaveGroupRequest.member_id")?;
        } else {
            m.members = d.array(flexible, "LeaveGroupRequest.members", |d| {
                let member_id = d.string(flexible, "LeaveGroupRequest.members.member_id")?;
                let group_instance_id =
                    d.nullable_string(flexible, "LeaveGroupRequest.members.group_instance_id")?;
                let reason = if version >= 5 {
                    d.nullable_string(flexible, "LeaveGroupRequest.members.reason")?
                } else {
                    None
                };
                Ok(MemberIdentity {
                    member_id,
                    group_instance_id,
                    reason,
                    tagged_fields: tags(d, flexible)?,
                })
            })?;
        }
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

/// LeaveGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LeaveGroupResponse {
    /// v1+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// The error code for the whole request, 0 for none.
    pub error_code: i16,
    /// v3+: the outcome for each member that asked to leave.
    pub members: Vec<MemberResponse>,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// The outcome for one leaving member (v3+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MemberResponse {
    /// The member id.
    pub member_id: String,
    /// The static member's instance id, `None` for a dynamic member.
    pub group_instance_id: Option<String>,
    /// The error code for this member, 0 for none.
    pub error_code: i16,
    /// v4+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for LeaveGroupResponse {
    const API_KEY: ApiKey = ApiKey::LeaveGroup;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        if version >= 1 {
            buf.put_i32(self.throttle_time_ms);
        }
        buf.put_i16(self.error_code);
        if version >= 3 {
            buf.put_array(flexible, &self.members, "LeaveGroupResponse.members", |b, mb| {
                b.put_string(flexible, &mb.member_id, "LeaveGroupResponse.members.member_id")?;
                b.put_nullable_string(
                    flexible,
                    mb.group_instance_id.as_deref(),
                    "LeaveGroupResponse.members.group_instance_id",
                )?;
                b.put_i16(mb.error_code);
                put_tags(b, flexible, &mb.tagged_fields)?;
                Ok(())
            })?;
        }
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = LeaveGroupResponse::default();
        if version >= 1 {
            m.throttle_time_ms = d.i32("LeaveGroupResponse.throttle_time_ms")?;
        }
        m.error_code = d.i16("LeaveGroupResponse.error_code")?;
        if version >= 3 {
            m.members = d.array(flexible, "LeaveGroupResponse.members", |d| {
                Ok(MemberResponse {
                    member_id: d.string(flexible, "LeaveGroupResponse.members.member_id")?,
                    group_instance_id: d.nullable_string(
                        flexible,
                        "LeaveGroupResponse.members.group_instance_id",
                    )?,
                    error_code: d.i16("LeaveGroupResponse.members.error_code")?,
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

    fn request() -> LeaveGroupRequest {
        LeaveGroupRequest {
            group_id: "g".into(),
            member_id: "m".into(),
            members: vec![MemberIdentity {
                member_id: "m".into(),
                group_instance_id: Some("i".into()),
                reason: Some("bye".into()),
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn request_v0_uses_member_id_and_v3_uses_members() {
        let v0: &[u8] = b"\x00\x01g\x00\x01m";
        assert_eq!(&request().to_bytes(0).unwrap()[..], v0);
        let back = LeaveGroupRequest::decode_exact(Bytes::from_static(v0), 0).unwrap();
        assert_eq!(back.member_id, "m");
        assert!(back.members.is_empty());

        let v3: &[u8] = b"\x00\x01g\x00\x00\x00\x01\x00\x01m\x00\x01i";
        assert_eq!(&request().to_bytes(3).unwrap()[..], v3);
        let back = LeaveGroupRequest::decode_exact(Bytes::from_static(v3), 3).unwrap();
        assert_eq!(back.member_id, "");
        assert_eq!(back.members[0].group_instance_id.as_deref(), Some("i"));
        assert_eq!(back.members[0].reason, None);
    }

    #[test]
    fn request_v5_bytes() {
        let v5: &[u8] = b"\x02g\x02\x02m\x02i\x04bye\x00\x00";
        assert_eq!(&request().to_bytes(5).unwrap()[..], v5);
        let back = LeaveGroupRequest::decode_exact(Bytes::from_static(v5), 5).unwrap();
        assert_eq!(back.members, request().members);
        assert_eq!(back.member_id, "");
    }

    fn response() -> LeaveGroupResponse {
        LeaveGroupResponse {
            throttle_time_ms: 0,
            error_code: 0,
            members: vec![MemberResponse {
                member_id: "m".into(),
                group_instance_id: None,
                error_code: 25,
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn response_v0_v3_bytes() {
        assert_eq!(&response().to_bytes(0).unwrap()[..], b"\x00\x00");
        let v3: &[u8] = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01m\xff\xff\x00\x19";
        assert_eq!(&response().to_bytes(3).unwrap()[..], v3);
        let back = LeaveGroupResponse::decode_exact(Bytes::from_static(v3), 3).unwrap();
        assert_eq!(back, response());
    }

    #[test]
    fn response_v4_bytes() {
        let v4: &[u8] = b"\x00\x00\x00\x00\x00\x00\x02\x02m\x00\x00\x19\x00\x00";
        assert_eq!(&response().to_bytes(4).unwrap()[..], v4);
        let back = LeaveGroupResponse::decode_exact(Bytes::from_static(v4), 4).unwrap();
        assert_eq!(back, response());
    }

    #[test]
    fn truncated_input_is_an_error() {
        for version in [0, 3, 5] {
            let full = request().to_bytes(version).unwrap();
            for n in 0..full.len() {
                assert!(LeaveGroupRequest::decode_exact(full.slice(..n), version).is_err());
            }
            let full = response().to_bytes(version).unwrap();
            for n in 0..full.len() {
                assert!(LeaveGroupResponse::decode_exact(full.slice(..n), version).is_err());
            }
        }
    }
}
