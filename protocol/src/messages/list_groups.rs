//! ListGroups (key 16): the groups a broker coordinates, optionally filtered by state (v4+,
//! KIP-518) and type (v5+, KIP-848). Versions 0–5; flexible from 3.

use bytes::{BufMut, BytesMut};

use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};
use crate::primitives::tags;
use crate::primitives::put_tags;

/// The first flexible version.
const FLEXIBLE: i16 = 3;

/// ListGroups request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ListGroupsRequest {
    /// v4+: only list groups in these states (`Stable`, `Empty`, ...); empty lists every state.
    pub states_filter: Vec<String>,
    /// v5+: only list groups of these types (`classic`, `consumer`, ...); empty lists every type.
    pub types_filter: Vec<String>,
    /// v3+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for ListGroupsRequest {
    const API_KEY: ApiKey = ApiKey::ListGroups;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        if version >= 4 {
            buf.put_array(flexible, &self.states_filter, "ListGroupsRequest.states_filter", |b, s| {
                b.put_string(flexible, s, "ListGroupsRequest.states_filter")
            })?;
        }
        if version >= 5 {
            buf.put_array(flexible, &self.types_filter, "ListGroupsRequest.types_filter", |b, t| {
                b.put_string(flexible, t, "ListGroupsRequest.types_filter")
            })?;
        }
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = ListGroupsRequest::default();
        if version >= 4 {
            m.states_filter = d.array(flexible, "ListGroupsRequest.states_filter", |d| {
                d.string(flexible, "ListGroupsRequest.states_filter")
            })?;
        }
        if version >= 5 {
            m.types_filter = d.array(flexible, "ListGroupsRequest.types_filter", |d| {
                d.string(flexible, "ListGroupsRequest.types_filter")
            })?;
        }
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

/// ListGroups response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ListGroupsResponse {
    /// v1+: how long the request was throttled, in milliseconds.
    pub throttle_time_ms: i32,
    /// The error code, 0 for none.
    pub error_code: i16,
    /// The groups this broker coordinates that match the filters.
    pub groups: Vec<ListedGroup>,
    /// v3+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

/// One listed group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ListedGroup {
    /// The group id.
    pub group_id: String,
    /// The group's protocol type, `consumer` for consumer groups, empty when none.
    pub protocol_type: String,
    /// v4+: the group's state.
    pub group_state: String,
    /// v5+: the group's type (`classic`, `consumer`, `share`, ...).
    pub group_type: String,
    /// v3+: unknown tagged fields.
    pub tagged_fields: TaggedFields,
}

impl Message for ListGroupsResponse {
    const API_KEY: ApiKey = ApiKey::ListGroups;

    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        let flexible = version >= FLEXIBLE;
        if version >= 1 {
            buf.put_i32(self.throttle_time_ms);
        }
        buf.put_i16(self.error_code);
        buf.put_array(flexible, &self.groups, "ListGroupsResponse.groups", |b, g| {
            b.put_string(flexible, &g.group_id, "ListGroupsResponse.groups.group_id")?;
            b.put_string(flexible, &g.protocol_type, "ListGroupsResponse.groups.protocol_type")?;
            if version >= 4 {
                b.put_string(flexible, &g.group_state, "ListGroupsResponse.groups.group_state")?;
            }
            if version >= 5 {
                b.put_string(flexible, &g.group_type, "ListGroupsResponse.groups.group_type")?;
            }
            put_tags(b, flexible, &g.tagged_fields)?;
            Ok(())
        })?;
        put_tags(buf, flexible, &self.tagged_fields)?;
        Ok(())
    }

    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self> {
        let flexible = version >= FLEXIBLE;
        let mut m = ListGroupsResponse::default();
        if version >= 1 {
            m.throttle_time_ms = d.i32("ListGroupsResponse.throttle_time_ms")?;
        }
        m.error_code = d.i16("ListGroupsResponse.error_code")?;
        m.groups = d.array(flexible, "ListGroupsResponse.groups", |d| {
            let mut g = ListedGroup {
                group_id: d.string(flexible, "ListGroupsResponse.groups.group_id")?,
                protocol_type: d.string(flexible, "ListGroupsResponse.groups.protocol_type")?,
                ..Default::default()
            };
            if version >= 4 {
                g.group_state = d.string(flexible, "ListGroupsResponse.groups.group_state")?;
            }
            if version >= 5 {
                g.group_type = d.string(flexible, "ListGroupsResponse.groups.group_type")?;
            }
            g.tagged_fields = tags(d, flexible)?;
            Ok(g)
        })?;
        m.tagged_fields = tags(d, flexible)?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn request() -> ListGroupsRequest {
        ListGroupsRequest {
            states_filter: vec!["Stable".into()],
            types_filter: vec!["classic".into()],
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn request_bytes() {
        // v0–2 have an empty body; v3 only a tagged-field section.
        assert!(request().to_bytes(0).unwrap().is_empty());
        assert!(request().to_bytes(2).unwrap().is_empty());
        assert_eq!(&request().to_bytes(3).unwrap()[..], b"\x00");
        assert_eq!(&request().to_bytes(4).unwrap()[..], b"\x02\x07Stable\x00");
        let v5: &[u8] = b"\x02\x07Stable\x02\x08classic\x00";
        assert_eq!(&request().to_bytes(5).unwrap()[..], v5);
        let back = ListGroupsRequest::decode_exact(Bytes::from_static(v5), 5).unwrap();
        assert_eq!(back, request());
        let back = ListGroupsRequest::decode_exact(Bytes::new(), 0).unwrap();
        assert_eq!(back, ListGroupsRequest::default());
    }

    fn response() -> ListGroupsResponse {
        ListGroupsResponse {
            throttle_time_ms: 0,
            error_code: 0,
            groups: vec![ListedGroup {
                group_id: "g".into(),
                protocol_type: "consumer".into(),
                group_state: "Stable".into(),
                group_type: "classic".into(),
                tagged_fields: TaggedFields::default(),
            }],
            tagged_fields: TaggedFields::default(),
        }
    }

    #[test]
    fn response_v0_v1_bytes() {
        let v0: &[u8] = b"\x00\x00\x00\x00\x00\x01\x00\x01g\x00\x08consumer";
        assert_eq!(&response().to_bytes(0).unwrap()[..], v0);
        let back = ListGroupsResponse::decode_exact(Bytes::from_static(v0), 0).unwrap();
        assert_eq!(back.groups[0].group_state, "");
        assert_eq!(back.groups[0].protocol_type, "consumer");
        let v1: &[u8] = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01g\x00\x08consumer";
        assert_eq!(&response().to_bytes(1).unwrap()[..], v1);
    }

    #[test]
    fn response_v5_bytes() {
        let v5: &[u8] = b"\x00\x00\x00\x00\x00\x00\x02\x02g\x09consumer\x07Stable\x08classic\x00\x00";
        assert_eq!(&response().to_bytes(5).unwrap()[..], v5);
        let back = ListGroupsResponse::decode_exact(Bytes::from_static(v5), 5).unwrap();
        assert_eq!(back, response());
    }

    #[test]
    fn truncated_input_is_an_error() {
        for version in [3, 5] {
            let full = request().to_bytes(version).unwrap();
            for n in 0..full.len() {
                assert!(ListGroupsRequest::decode_exact(full.slice(..n), version).is_err());
            }
        }
        for version in [0, 5] {
            let full = response().to_bytes(version).unwrap();
            for n in 0..full.len() {
                assert!(ListGroupsResponse::decode_exact(full.slice(..n), version).is_err());
            }
        }
    }
}
