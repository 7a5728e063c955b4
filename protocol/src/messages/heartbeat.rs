//! PLACEHOLDER: being written.
#![allow(missing_docs)]
use bytes::BytesMut;
use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::Decoder;
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct HeartbeatRequest {}
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct HeartbeatResponse {}
impl Message for HeartbeatRequest {
    const API_KEY: ApiKey = ApiKey::Heartbeat;
    fn encode_body(&self, _buf: &mut BytesMut, _version: i16) -> Result<()> { Ok(()) }
    fn decode_body(_d: &mut Decoder, _version: i16) -> Result<Self> { Ok(Self::default()) }
}
impl Message for HeartbeatResponse {
    const API_KEY: ApiKey = ApiKey::Heartbeat;
    fn encode_body(&self, _buf: &mut BytesMut, _version: i16) -> Result<()> { Ok(()) }
    fn decode_body(_d: &mut Decoder, _version: i16) -> Result<Self> { Ok(Self::default()) }
}
