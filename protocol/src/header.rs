//! Request and response headers.
//!
//! Request header v1 carries api key, version, correlation id and a nullable client id; v2 (flexible
//! APIs) adds a tagged-field section. Response header v0 is the correlation id; v1 adds tagged fields.
//! The header version follows from the API and its version (see [`ApiKey::request_header_version`]).

use bytes::{BufMut, BytesMut};

use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::{Decoder, Encoder, TaggedFields};

/// The header in front of every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// The API.
    pub api_key: ApiKey,
    /// The API version the body is encoded in.
    pub api_version: i16,
    /// Echoed by the broker in the response, to match it to this request.
    pub correlation_id: i32,
    /// The client id; the client id is never compact, even in header v2.
    pub client_id: Option<String>,
    /// Unknown tagged fields (header v2).
    pub tagged_fields: TaggedFields,
}

impl RequestHeader {
    /// A header for `api` at `api_version`.
    pub fn new(
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
        client_id: Option<&str>,
    ) -> Self {
        RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id: client_id.map(str::to_owned),
            tagged_fields: TaggedFields::default(),
        }
    }

    /// Writes the header.
    pub fn encode(&self, buf: &mut BytesMut) -> Result<()> {
        buf.put_i16(self.api_key.as_i16());
        buf.put_i16(self.api_version);
        buf.put_i32(self.correlation_id);
        buf.put_nullable_string(false, self.client_id.as_deref(), "RequestHeader.client_id")?;
        if self.api_key.request_header_version(self.api_version) >= 2 {
            self.tagged_fields.encode(buf)?;
        }
        Ok(())
    }

    /// Reads a header; the API key and version in it decide whether a tagged section follows.
    pub fn decode(d: &mut Decoder) -> Result<Self> {
        let api_key = ApiKey::from_i16(d.i16("RequestHeader.api_key")?)?;
        let api_version = d.i16("RequestHeader.api_version")?;
        let correlation_id = d.i32("RequestHeader.correlation_id")?;
        let client_id = d.nullable_string(false, "RequestHeader.client_id")?;
        let tagged_fields = if api_key.request_header_version(api_version) >= 2 {
            d.unknown_tagged_fields()?
        } else {
            TaggedFields::default()
        };
        Ok(RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id,
            tagged_fields,
        })
    }
}

/// The header in front of every response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseHeader {
    /// The request's correlation id.
    pub correlation_id: i32,
    /// Unknown tagged fields (header v1).
    pub tagged_fields: TaggedFields,
}

impl ResponseHeader {
    /// Writes the header for a response to `api` at `api_version`.
    pub fn encode(&self, buf: &mut BytesMut, api_key: ApiKey, api_version: i16) -> Result<()> {
        buf.put_i32(self.correlation_id);
        if api_key.response_header_version(api_version) >= 1 {
            self.tagged_fields.encode(buf)?;
        }
        Ok(())
    }

    /// Reads the header of a response to `api` at `api_version`.
    pub fn decode(d: &mut Decoder, api_key: ApiKey, api_version: i16) -> Result<Self> {
        let correlation_id = d.i32("ResponseHeader.correlation_id")?;
        let tagged_fields = if api_key.response_header_version(api_version) >= 1 {
            d.unknown_tagged_fields()?
        } else {
            TaggedFields::default()
        };
        Ok(ResponseHeader {
            correlation_id,
            tagged_fields,
        })
    }

    /// Reads only the correlation id at the start of a response frame, to find its request.
    pub fn peek_correlation_id(frame: &[u8]) -> Option<i32> {
        frame
            .get(..4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}
