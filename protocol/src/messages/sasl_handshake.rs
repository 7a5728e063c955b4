//! PLACEHOLDER: being written.
#![allow(missing_docs)]
use bytes::BytesMut;
use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::Decoder;
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SaslHandshakeRequest {}
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SaslHandshakeResponse {}
impl Message for SaslHandshakeRequest {
    const API_KEY: ApiKey = ApiKey::SaslHandshake;
    fn encode_body(&self, _buf: &mut BytesMut, _version: i16) -> Result<()> { Ok(()) }
    fn decode_body(_d: &mut Decoder, _version: i16) -> Result<Self> { Ok(Self::default()) }
}
impl Message for SaslHandshakeResponse {
    const API_KEY: ApiKey = ApiKey::SaslHandshake;
    fn encode_body(&self, _buf: &mut BytesMut, _version: i16) -> Result<()> { Ok(()) }
    fn decode_body(_d: &mut Decoder, _version: i16) -> Result<Self> { Ok(Self::default()) }
}
