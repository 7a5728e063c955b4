//! PLACEHOLDER: being written.
#![allow(missing_docs)]
use bytes::BytesMut;
use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::Decoder;
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct InitProducerIdRequest {}
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct InitProducerIdResponse {}
impl Message for InitProducerIdRequest {
    const API_KEY: ApiKey = ApiKey::InitProducerId;
    fn encode_body(&self, _buf: &mut BytesMut, _version: i16) -> Result<()> { Ok(()) }
    fn decode_body(_d: &mut Decoder, _version: i16) -> Result<Self> { Ok(Self::default()) }
}
impl Message for InitProducerIdResponse {
    const API_KEY: ApiKey = ApiKey::InitProducerId;
    fn encode_body(&self, _buf: &mut BytesMut, _version: i16) -> Result<()> { Ok(()) }
    fn decode_body(_d: &mut Decoder, _version: i16) -> Result<Self> { Ok(Self::default()) }
}
