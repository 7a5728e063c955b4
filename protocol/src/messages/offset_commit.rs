//! PLACEHOLDER: being written.
#![allow(missing_docs)]
use bytes::BytesMut;
use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::Decoder;
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetCommitRequest {}
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct OffsetCommitResponse {}
impl Message for OffsetCommitRequest {
    const API_KEY: ApiKey = ApiKey::OffsetCommit;
    fn encode_body(&self, _buf: &mut BytesMut, _version: i16) -> Result<()> { Ok(()) }
    fn decode_body(_d: &mut Decoder, _version: i16) -> Result<Self> { Ok(Self::default()) }
}
impl Message for OffsetCommitResponse {
    const API_KEY: ApiKey = ApiKey::OffsetCommit;
    fn encode_body(&self, _buf: &mut BytesMut, _version: i16) -> Result<()> { Ok(()) }
    fn decode_body(_d: &mut Decoder, _version: i16) -> Result<Self> { Ok(Self::default()) }
}
