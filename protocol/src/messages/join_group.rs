//! JoinGroup (key 11): a member joins (or rejoins) a classic group; once every member has joined,
//! the coordinator answers with the generation, the protocol it chose and, to the leader only, every
//! member's metadata so the leader can compute the assignment. Versions 0–9; flexible from 6.
//!
//! Kafka 4.0.0 removed v0–1 (KIP-896); 4.0.1 and 4.1 brought them back (KAFKA-19444), so they are
//! implemented here too.

use bytes::{BufMut, Bytes, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};
use crate::primitives::tags;
use crate::primitives::put_tags;

/// The first flexible version.
const FLEXIBLE: i16 = 6;

/// JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct JoinGroupRequest {
    /// The group id.
    pub group_id: String,
    /// How long, in milliseconds, the coordinator waits for a heartbeat before it drops the member.
    pub session_timeout_ms: i32,
    /// v1+: how long, in milliseconds, the coordinator waits for every member to rejoin during a
    /// rebalance; -1 when absent (a v0 coordinator uses the session timeout instead).
    pub rebalance_timeout_ms: i32,
    /// The member id the coordinator assigned, empty on a first join.
    pub member_id: String,
    /// v5+: the static member's instance id (KIP-345), `None` for a dynamic member.
    pub group_instance_id: Option<String>,
    /// The kind of protocol the group runs, `consumer` for consumer groups.
    pub protocol_type: String,
    /// The protocols (for consumers: assignors) the member supports, most preferred first.
    pub protocols: Vec<JoinGroupRequestProtocol>,
    /// v8+: why the member joins or rejoins (KIP-800), `None` when not given.
    pub reason: Option<String>,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for JoinGroupRequest {
    fn default() -> Self {
        JoinGroupRequest {
            group_id: String::new(),
            session_timeout_ms: 0,
            rebalance_timeout_ms: -1,
            member_id: String::new(),
            group_instance_id: None,
            protocol_type: String::new(),
            protocols: Vec::new(),
            reason: None,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One protocol a joining member supports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct JoinGroupRequestProtocol {
    /// The protocol name, for example `range` or `cooperative-sticky`.
    pub name: String,
    /// The member's metadata for this protocol (for consumers: its subscription), opaque here.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::primitives::arb::bytes))]
    pub metadata: Bytes,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for JoinGroupRequest {
    const API_KEY: ApiKey = ApiKey::JoinGroup;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        buf.put_string(flexible, &self.group_id, "JoinGroupRequest.group_id")?;
        buf.put_i32(self.session_timeout_ms);
        if version >= 1 {
            buf.put_i32(self.rebalance_timeout_ms);
        }
        buf.put_string(flexible, &self.member_id, "JoinGroupRequest.member_id")?;
        if version >= 5 {
            buf.put_nullable_string(
                flexible,
                self.group_instance_id.as_deref(),
                "JoinGroupRequest.group_instance_id",
            )?;
        }
        buf.put_string(flexible, &self.protocol_type, "JoinGroupRequest.protocol_type")?;
        buf.put_array(flexible, &self.protocols, "JoinGroupRequest.protocols", |b, p| {
            b.put_string(flexible, &p.name, "JoinGroupRequest.protocols.name")?;
            b.put_bytes_field(flexible, &p.metadata, "JoinGroupRequest.protocols.metadata")?;
            put_tags(b, flexible, &p.tagged_fields)?;
            Ok(())
        })?;
        if version >= 8 {
            buf.put_nullable_string(flexible, self.reason.as_deref(), "JoinGroupRequest.reason")?;
        }
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = JoinGroupRequest {
            group_id: d.string(flexible, "JoinGroupRequest.group_id")?,
            session_timeout_ms: d.i32("JoinGroupRequest.session_timeout_ms")?,
            ..Default::default()
        };
        if version >= 1 {
            m.rebalance_timeout_ms = d.i32("JoinGroupRequest.rebalance_timeout_ms")?;
        }
        m.member_id = d.string(flexible, "JoinGroupRequest.member_id")?;
        if version >= 5 {
            m.group_instance_id =
                d.nullable_string(flexible, "JoinGroupRequest.group_instance_id")?;
        }
        m.protocol_type = d.string(flexible, "JoinGroupRequest.protocol_type")?;
        m.protocols = d.array(flexible, "JoinGroupRequest.protocols", |d| {
            Ok(JoinGroupRequestProtocol {
                name: d.string(flexible, "JoinGroupRequest.protocols.name")?,
                metadata: d.bytes(flexible, "JoinGroupRequest.protocols.metadata")?,
                tagged_fields: tags(d, flexible)?,
            })
        })?;
        if version >= 8 {
            m.reason = d.nullable_string(flexible, "JoinGroupRequest.reason")?;
        }
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

/// JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct JoinGroupResponse {
    /// v2+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// The error code, 0 for none; v4+ answers a first join with `MEMBER_ID_REQUIRED` (79) and the
    /// member id to rejoin with.
    pub error_code: i16,
    /// The generation of the group, -1 when there is none.
    pub generation_id: i32,
    /// v7+: the group's protocol type (KIP-559), `None` when unknown.
    pub protocol_type: Option<String>,
    /// The protocol the coordinator chose. Nullable from v7; before v7 `None` is written as the empty
    /// string, as Kafka's broker does.
    pub protocol_name: Option<String>,
    /// The member id of the group leader.
    pub leader: String,
    /// v9+: true when the leader must not compute a new assignment (a static leader rejoining,
    /// KIP-814).
    pub skip_assignment: bool,
    /// The member id the coordinator assigned to this member.
    pub member_id: String,
    /// Every member with its metadata; filled only in the leader's response.
    pub members: Vec<JoinGroupResponseMember>,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for JoinGroupResponse {
    fn default() -> Self {
        JoinGroupResponse {
            throttle_time_ms: 0,
            error_code: 0,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: String::new(),
            members: Vec::new(),
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One group member as the leader sees it in a JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct JoinGroupResponseMember {
    /// The member id.
    pub member_id: String,
    /// v5+: the member's static instance id, `None` for a dynamic member.
    pub group_instance_id: Option<String>,
    /// The member's metadata for the chosen protocol, opaque here.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::primitives::arb::bytes))]
    pub metadata: Bytes,
    /// v6+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for JoinGroupResponse {
    const API_KEY: ApiKey = ApiKey::JoinGroup;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        if version >= 2 {
            buf.put_i32(self.throttle_time_ms);
        }
        buf.put_i16(self.error_code);
        buf.put_i32(self.generation_id);
        if version >= 7 {
            buf.put_nullable_string(
                flexible,
                self.protocol_type.as_deref(),
                "JoinGroupResponse.protocol_type",
            )?;
            buf.put_nullable_string(
                flexible,
                self.protocol_name.as_deref(),
                "JoinGroupResponse.protocol_name",
            )?;
        } else {
            let name = self.protocol_name.as_deref().unwrap_or_default();
            buf.put_string(flexible, name, "JoinGroupResponse.protocol_name")?;
        }
        buf.put_string(flexible, &self.leader, "JoinGroupResponse.leader")?;
        if version >= 9 {
            buf.put_bool(self.skip_assignment);
        }
        buf.put_string(flexible, &self.member_id, "JoinGroupResponse.member_id")?;
        buf.put_array(flexible, &self.members, "JoinGroupResponse.members", |b, mb| {
            b.put_string(flexible, &mb.member_id, "JoinGroupResponse.members.member_id")?;
            if version >= 5 {
                b.put_nullable_string(
                    flexible,
                    mb.group_instance_id.as_deref(),
                    "JoinGroupResponse.members.group_instance_id",
                )?;
            }
            b.put_bytes_field(flexible, &mb.metadata, "JoinGroupResponse.members.metadata")?;
            put_tags(b, flexible, &mb.tagged_fields)?;
            Ok(())
        })?;
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = JoinGroupResponse::default();
        if version >= 2 {
            m.throttle_time_ms = d.i32("JoinGroupResponse.throttle_time_ms")?;
        }
        m.error_code = d.i16("JoinGroupResponse.error_code")?;
        m.generation_id = d.i32("JoinGroupResponse.generation_id")?;
        if version >= 7 {
            m.protocol_type = d.nullable_string(flexible, "JoinGroupResponse.protocol_type")?;
            m.protocol_name = d.nullable_string(flexible, "JoinGroupResponse.protocol_name")?;
        } else {
            // Not nullable before v7, yet librdkafka's mock broker writes a null in its error
            // answers: read it as empty, as librdkafka does, so the error code is what counts.
            m.protocol_name = Some(
                d.nullable_string(flexible, "JoinGroupResponse.protocol_name")?
                    .unwrap_or_default(),
            );
        }
        // The same for the leader and member id, never nullable.
        m.leader = d
            .nullable_string(flexible, "JoinGroupResponse.leader")?
            .unwrap_or_default();
        if version >= 9 {
            m.skip_assignment = d.bool("JoinGroupResponse.skip_assignment")?;
        }
        m.member_id = d
            .nullable_string(flexible, "JoinGroupResponse.member_id")?
            .unwrap_or_default();
        m.members = d.array(flexible, "JoinGroupResponse.members", |d| {
            let member_id = d.string(flexible, "JoinGroupResponse.members.member_id")?;
            let group_instance_id = if version >= 5 {
                d.nullable_string(flexible, "JoinGroupResponse.members.group_instance_id")?
            } else {
                None
            };
            Ok(JoinGroupResponseMember {
                member_id,
                group_instance_id,
                metadata: d.bytes(flexible, "JoinGroupResponse.members.metadata")?,
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

    fn request() -> JoinGroupRequest {
        JoinGroupRequest {
            group_id: "g".into(),
            session_timeout_ms: 30_000,
            rebalance_timeout_ms: 60_000,
            member_id: String::new(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupRequestProtocol {
                name: "range".into(),
                metadata: Bytes::from_static(b"\x01\x02"),
                tagged_fields: TaggedFields::default(),
            }],
            reason: Some("r".into()),
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn request_v0_and_v1_bytes() {
        let v1: &[u8] = b"\x00\x01g\
            \x00\x00\x75\x30\
            \x00\x00\xea\x60\
            \x00\x00\
            \x00\x08consumer\
            \x00\x00\x00\x01\x00\x05range\x00\x00\x00\x02\x01\x02";
        assert_eq!(&request().to_bytes(1).unwrap()[..], v1);
        // v0 has no rebalance timeout; decoding it yields Kafka's default of -1.
        let v0: &[u8] = b"\x00\x01g\
            \x00\x00\x75\x30\
            \x00\x00\
            \x00\x08consumer\
            \x00\x00\x00\x01\x00\x05range\x00\x00\x00\x02\x01\x02";
        assert_eq!(&request().to_bytes(0).unwrap()[..], v0);
        let back = JoinGroupRequest::decode_exact(Bytes::from_static(v0), 0).unwrap();
        assert_eq!(back.rebalance_timeout_ms, -1);
        assert_eq!(back.reason, None);
        assert_eq!(back.protocols, request().protocols);
    }

    #[test]
    fn request_v8_bytes() {
        let v8: &[u8] = b"\x02g\
            \x00\x00\x75\x30\
            \x00\x00\xea\x60\
            \x01\
            \x00\
            \x09consumer\
            \x02\x06range\x03\x01\x02\x00\
            \x02r\
            \x00";
        assert_eq!(&request().to_bytes(8).unwrap()[..], v8);
        let back = JoinGroupRequest::decode_exact(Bytes::from_static(v8), 8).unwrap();
        assert_eq!(back, request());
    }

    fn response() -> JoinGroupResponse {
        JoinGroupResponse {
            throttle_time_ms: 0,
            error_code: 0,
            generation_id: 3,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader: "a".into(),
            skip_assignment: true,
            member_id: "a".into(),
            members: vec![JoinGroupResponseMember {
                member_id: "a".into(),
                group_instance_id: None,
                metadata: Bytes::from_static(b"\x09"),
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn response_v2_bytes() {
        let v2: &[u8] = b"\x00\x00\x00\x00\
            \x00\x00\
            \x00\x00\x00\x03\
            \x00\x05range\
            \x00\x01a\
            \x00\x01a\
            \x00\x00\x00\x01\x00\x01a\x00\x00\x00\x01\x09";
        assert_eq!(&response().to_bytes(2).unwrap()[..], v2);
        let back = JoinGroupResponse::decode_exact(Bytes::from_static(v2), 2).unwrap();
        assert_eq!(back.protocol_type, None);
        assert!(!back.skip_assignment);
        assert_eq!(back.members, response().members);
    }

    #[test]
    fn response_v9_bytes() {
        let v9: &[u8] = b"\x00\x00\x00\x00\
            \x00\x00\
            \x00\x00\x00\x03\
            \x09consumer\
            \x06range\
            \x02a\
            \x01\
            \x02a\
            \x02\x02a\x00\x02\x09\x00\
            \x00";
        assert_eq!(&response().to_bytes(9).unwrap()[..], v9);
        let back = JoinGroupResponse::decode_exact(Bytes::from_static(v9), 9).unwrap();
        assert_eq!(back, response());
    }

    #[test]
    fn null_protocol_name_before_v7_is_written_empty() {
        let resp = JoinGroupResponse {
            protocol_name: None,
            ..response()
        };
        let v6 = resp.to_bytes(6).unwrap();
        // throttle, error, generation, then an empty compact string for the protocol name.
        assert_eq!(&v6[10..11], b"\x01");
        let back = JoinGroupResponse::decode_exact(v6, 6).unwrap();
        assert_eq!(back.protocol_name.as_deref(), Some(""));
        let v7 = resp.to_bytes(7).unwrap();
        let back = JoinGroupResponse::decode_exact(v7, 7).unwrap();
        assert_eq!(back.protocol_name, None);
    }

    /// librdkafka's mock answers a failed join with null strings where the schema has none.
    #[test]
    fn null_strings_in_an_error_answer_read_as_empty() {
        for version in [5, 9] {
            let flexible = version >= FLEXIBLE;
            let null: &[u8] = if flexible { b"\x00" } else { b"\xff\xff" };
            let mut body = Vec::new();
            body.extend_from_slice(&0i32.to_be_bytes()); // throttle
            body.extend_from_slice(&30i16.to_be_bytes()); // GROUP_AUTHORIZATION_FAILED
            body.extend_from_slice(&(-1i32).to_be_bytes()); // generation
            if version >= 7 {
                body.extend_from_slice(null); // protocol type
            }
            body.extend_from_slice(null); // protocol name
            body.extend_from_slice(null); // leader
            if version >= 9 {
                body.push(0); // skip assignment
            }
            body.extend_from_slice(null); // member id
            body.extend_from_slice(if flexible { b"\x01" } else { b"\x00\x00\x00\x00" }); // members
            if flexible {
                body.push(0); // tags
            }
            let back = JoinGroupResponse::decode_exact(Bytes::from(body), version).unwrap();
            assert_eq!(back.error_code, 30);
            assert_eq!((back.leader.as_str(), back.member_id.as_str()), ("", ""));
        }
    }

    #[test]
    fn truncated_input_is_an_error() {
        for version in [1, 8] {
            let full = request().to_bytes(version).unwrap();
            for n in 0..full.len() {
                assert!(JoinGroupRequest::decode_exact(full.slice(..n), version).is_err());
            }
        }
        for version in [2, 9] {
            let full = response().to_bytes(version).unwrap();
            for n in 0..full.len() {
                assert!(JoinGroupResponse::decode_exact(full.slice(..n), version).is_err());
            }
        }
    }
}
