//! DescribeGroups (key 15): the state, protocol and members of classic groups. Versions 0–6;
//! flexible from 5.
//!
//! v6 (KIP-1043, Kafka 4.0) adds a per-group error message and answers an unknown group with
//! `GROUP_ID_NOT_FOUND` (69) instead of a `Dead` group.

use bytes::{BufMut, Bytes, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};
use crate::primitives::tags;
use crate::primitives::put_tags;

/// The first flexible version.
const FLEXIBLE: i16 = 5;

/// The value of `authorized_operations` when the broker did not report them.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// DescribeGroups request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DescribeGroupsRequest {
    /// The ids of the groups to describe.
    pub groups: Vec<String>,
    /// v3+: whether the broker should report the operations the caller may perform on each group.
    pub include_authorized_operations: bool,
    /// v5+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for DescribeGroupsRequest {
    const API_KEY: ApiKey = ApiKey::DescribeGroups;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        buf.put_array(flexible, &self.groups, "DescribeGroupsRequest.groups", |b, g| {
            b.put_string(flexible, g, "DescribeGroupsRequest.groups")
        })?;
        if version >= 3 {
            buf.put_bool(self.include_authorized_operations);
        }
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = DescribeGroupsRequest {
            groups: d.array(flexible, "DescribeGroupsRequest.groups", |d| {
                d.string(flexible, "DescribeGroupsRequest.groups")
            })?,
            ..Default::default()
        };
        if version >= 3 {
            m.include_authorized_operations =
                d.bool("DescribeGroupsRequest.include_authorized_operations")?;
        }
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

/// DescribeGroups response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DescribeGroupsResponse {
    /// v1+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// One entry per group asked about.
    pub groups: Vec<DescribedGroup>,
    /// v5+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One described group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DescribedGroup {
    /// The error code for this group, 0 for none.
    pub error_code: i16,
    /// v6+: a message describing the error, `None` when there is none.
    pub error_message: Option<String>,
    /// The group id.
    pub group_id: String,
    /// The group state (`Stable`, `PreparingRebalance`, `Empty`, `Dead`, ...), or empty.
    pub group_state: String,
    /// The group's protocol type, or empty.
    pub protocol_type: String,
    /// The protocol the group runs (for consumers: the assignor), filled only when stable.
    pub protocol_data: String,
    /// The group's members; always empty for a `Dead` group.
    pub members: Vec<DescribedGroupMember>,
    /// v3+: a bit field of the operations the caller may perform on the group, or
    /// [`AUTHORIZED_OPERATIONS_OMITTED`] (`i32::MIN`) when not requested.
    pub authorized_operations: i32,
    /// v5+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Default for DescribedGroup {
    fn default() -> Self {
        DescribedGroup {
            error_code: 0,
            error_message: None,
            group_id: String::new(),
            group_state: String::new(),
            protocol_type: String::new(),
            protocol_data: String::new(),
            members: Vec::new(),
            authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
            tagged_fields: TaggedFields::default(),
        }
    }
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct DescribedGroupMember {
    /// The member id the coordinator assigned.
    pub member_id: String,
    /// v4+: the static member's instance id, `None` for a dynamic member.
    pub group_instance_id: Option<String>,
    /// The client id from the member's latest JoinGroup.
    pub client_id: String,
    /// The host the member connects from.
    pub client_host: String,
    /// The member's metadata for the group's current protocol; filled only when stable.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::primitives::arb::bytes))]
    pub member_metadata: Bytes,
    /// The member's current assignment from the leader; filled only when stable.
    #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::primitives::arb::bytes))]
    pub member_assignment: Bytes,
    /// v5+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for DescribeGroupsResponse {
    const API_KEY: ApiKey = ApiKey::DescribeGroups;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        if version >= 1 {
            buf.put_i32(self.throttle_time_ms);
        }
        buf.put_array(flexible, &self.groups, "DescribeGroupsResponse.groups", |b, g| {
            b.put_i16(g.error_code);
            if version >= 6 {
                b.put_nullable_string(
                    flexible,
                    g.error_message.as_deref(),
                    "DescribeGroupsResponse.groups.error_message",
                )?;
            }
            b.put_string(flexible, &g.group_id, "DescribeGroupsResponse.groups.group_id")?;
            b.put_string(flexible, &g.group_state, "DescribeGroupsResponse.groups.group_state")?;
            b.put_string(
                flexible,
                &g.protocol_type,
                "DescribeGroupsResponse.groups.protocol_type",
            )?;
            b.put_string(
                flexible,
                &g.protocol_data,
                "DescribeGroupsResponse.groups.protocol_data",
            )?;
            b.put_array(
                flexible,
                &g.members,
                "DescribeGroupsResponse.groups.members",
                |b, mb| encode_member(b, mb, version, flexible),
            )?;
            if version >= 3 {
                b.put_i32(g.authorized_operations);
            }
            put_tags(b, flexible, &g.tagged_fields)?;
            Ok(())
        })?;
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = DescribeGroupsResponse::default();
        if version >= 1 {
            m.throttle_time_ms = d.i32("DescribeGroupsResponse.throttle_time_ms")?;
        }
        m.groups = d.array(flexible, "DescribeGroupsResponse.groups", |d| {
            let mut g = DescribedGroup {
                error_code: d.i16("DescribeGroupsResponse.groups.error_code")?,
                ..Default::default()
            };
            if version >= 6 {
                g.error_message =
                    d.nullable_string(flexible, "DescribeGroupsResponse.groups.error_message")?;
            }
            g.group_id = d.string(flexible, "DescribeGroupsResponse.groups.group_id")?;
            g.group_state = d.string(flexible, "DescribeGroupsResponse.groups.group_state")?;
            g.protocol_type = d.string(flexible, "DescribeGroupsResponse.groups.protocol_type")?;
            g.protocol_data = d.string(flexible, "DescribeGroupsResponse.groups.protocol_data")?;
            g.members = d.array(flexible, "DescribeGroupsResponse.groups.members", |d| {
                decode_member(d, version, flexible)
            })?;
            if version >= 3 {
                g.authorized_operations =
                    d.i32("DescribeGroupsResponse.groups.authorized_operations")?;
            }
            g.tagged_fields = tags(d, flexible)?;
            Ok(g)
        })?;
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

fn encode_member(
    b: &mut BytesMut,
    mb: &DescribedGroupMember,
    version: i16,
    flexible: bool,
) -> Result<()> {
    b.put_string(flexible, &mb.member_id, "DescribeGroupsResponse.groups.members.member_id")?;
    if version >= 4 {
        b.put_nullable_string(
            flexible,
            mb.group_instance_id.as_deref(),
            "DescribeGroupsResponse.groups.members.group_instance_id",
        )?;
    }
    b.put_string(flexible, &mb.client_id, "DescribeGroupsResponse.groups.members.client_id")?;
    b.put_string(
        flexible,
        &mb.client_host,
        "DescribeGroupsResponse.groups.members.client_host",
    )?;
    b.put_bytes_field(
        flexible,
        &mb.member_metadata,
        "DescribeGroupsResponse.groups.members.member_metadata",
    )?;
    b.put_bytes_field(
        flexible,
        &mb.member_assignment,
        "DescribeGroupsResponse.groups.members.member_assignment",
    )?;
    put_tags(b, flexible, &mb.tagged_fields)?;
    Ok(())
}

fn decode_member(d: &mut Decoder, version: i16, flexible: bool) -> Result<DescribedGroupMember> {
    let member_id = d.string(flexible, "DescribeGroupsResponse.groups.members.member_id")?;
    let group_instance_id = if version >= 4 {
        d.nullable_string(
            flexible,
            "DescribeGroupsResponse.groups.members.group_instance_id",
        )?
    } else {
        None
    };
    Ok(DescribedGroupMember {
        member_id,
        group_instance_id,
        client_id: d.string(flexible, "DescribeGroupsResponse.groups.members.client_id")?,
        client_host: d.string(flexible, "DescribeGroupsResponse.groups.members.client_host")?,
        member_metadata: d.bytes(
            flexible,
            "DescribeGroupsResponse.groups.members.member_metadata",
        )?,
        member_assignment: d.bytes(
            flexible,
            "DescribeGroupsResponse.groups.members.member_assignment",
        )?,
        tagged_fields: tags(d, flexible)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> DescribeGroupsRequest {
        DescribeGroupsRequest {
            groups: vec!["g".into()],
            include_authorized_operations: true,
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn request_bytes_v0_v3_v5() {
        let v0: &[u8] = b"\x00\x00\x00\x01\x00\x01g";
        assert_eq!(&request().to_bytes(0).unwrap()[..], v0);
        let back = DescribeGroupsRequest::decode_exact(Bytes::from_static(v0), 0).unwrap();
        assert!(!back.include_authorized_operations);
        let v3: &[u8] = b"\x00\x00\x00\x01\x00\x01g\x01";
        assert_eq!(&request().to_bytes(3).unwrap()[..], v3);
        let v5: &[u8] = b"\x02\x02g\x01\x00";
        assert_eq!(&request().to_bytes(5).unwrap()[..], v5);
        let back = DescribeGroupsRequest::decode_exact(Bytes::from_static(v5), 5).unwrap();
        assert_eq!(back, request());
    }

    fn response() -> DescribeGroupsResponse {
        DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups: vec![DescribedGroup {
                error_code: 69,
                error_message: Some("x".into()),
                group_id: "g".into(),
                group_state: "Stable".into(),
                protocol_type: "consumer".into(),
                protocol_data: "range".into(),
                members: vec![DescribedGroupMember {
                    member_id: "m".into(),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "/h".into(),
                    member_metadata: Bytes::from_static(b"\x01"),
                    member_assignment: Bytes::from_static(b"\x02"),
                    tagged_fields: TaggedFields::default(),
                }],
                authorized_operations: 0x100,
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn response_v0_bytes() {
        let v0: &[u8] = b"\x00\x00\x00\x01\
            \x00\x45\
            \x00\x01g\
            \x00\x06Stable\
            \x00\x08consumer\
            \x00\x05range\
            \x00\x00\x00\x01\
            \x00\x01m\x00\x01c\x00\x02/h\x00\x00\x00\x01\x01\x00\x00\x00\x01\x02";
        assert_eq!(&response().to_bytes(0).unwrap()[..], v0);
        let back = DescribeGroupsResponse::decode_exact(Bytes::from_static(v0), 0).unwrap();
        let g = &back.groups[0];
        assert_eq!(g.error_message, None);
        assert_eq!(g.authorized_operations, i32::MIN);
        assert_eq!(g.members, response().groups[0].members);
    }

    #[test]
    fn response_v6_bytes() {
        let v6: &[u8] = b"\x00\x00\x00\x00\
            \x02\
            \x00\x45\
            \x02x\
            \x02g\
            \x07Stable\
            \x09consumer\
            \x06range\
            \x02\x02m\x00\x02c\x03/h\x02\x01\x02\x02\x00\
            \x00\x00\x01\x00\
            \x00\
            \x00";
        assert_eq!(&response().to_bytes(6).unwrap()[..], v6);
        let back = DescribeGroupsResponse::decode_exact(Bytes::from_static(v6), 6).unwrap();
        assert_eq!(back, response());
        // v5 is the same without the error message.
        let v5 = response().to_bytes(5).unwrap();
        assert_eq!(v5.len(), v6.len() - 2);
        let back = DescribeGroupsResponse::decode_exact(v5, 5).unwrap();
        assert_eq!(back.groups[0].error_message, None);
    }

    #[test]
    fn truncated_input_is_an_error() {
        for version in [0, 3, 6] {
            let full = request().to_bytes(version).unwrap();
            for n in 0..full.len() {
                assert!(DescribeGroupsRequest::decode_exact(full.slice(..n), version).is_err());
            }
            let full = response().to_bytes(version).unwrap();
            for n in 0..full.len() {
                assert!(DescribeGroupsResponse::decode_exact(full.slice(..n), version).is_err());
            }
        }
    }
}
