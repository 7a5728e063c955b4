//! PLACEHOLDER: being written.
#![allow(missing_docs)]
use bytes::BytesMut;
use super::Message;
use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::Decoder;
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FindCoordinatorRequest {}
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FindCoordinatorResponse {}
impl Message for FindCoordinatorRequest {
    const API_KEY: ApiKey = ApiKey::FindCoordinator;
    fn encode_body(&self, _buf: &mut BytesMut, _version: i16) -> Result<()> { Ok(()) }
    fn decode_body(_d: &mut Decoder, _version: i16) -> Result<Self> { Ok(Self::default()) }
}
impl Message for FindCoordinatorResponse {
    const API_KEY: ApiKey = ApiKey::FindCoordinator;
    fn encode_body(&self, _buf: &mut BytesMut, _version: i16) -> Result<()> { Ok(()) }
    fn decode_body(_d: &mut Decoder, _version: i16) -> Result<Self> { Ok(Self::default()) }
}
