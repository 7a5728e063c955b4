//! Request and response bodies, one file per API.
//!
//! Every message is a plain struct implementing [`Message`]: `encode` writes it at a given version,
//! `decode` reads it. Fields carry doc comments naming the versions that have them; a field absent
//! from the version being encoded is left out, and when decoding it keeps its default. Both
//! directions exist for every API, so tests and fuzzers can round-trip everything and a test peer can
//! be written with the same types.

use bytes::{Bytes, BytesMut};

use crate::api_key::ApiKey;
use crate::error::Result;
use crate::primitives::Decoder;

/// A request or response body of one API.
pub trait Message: Sized {
    /// The API this body belongs to.
    const API_KEY: ApiKey;

    /// Writes the body at `version`, which the caller has checked is supported.
    fn encode_body(&self, buf: &mut BytesMut, version: i16) -> Result<()>;

    /// Reads the body at `version`, which the caller has checked is supported.
    fn decode_body(d: &mut Decoder, version: i16) -> Result<Self>;

    /// Writes the body at `version`, failing if this crate does not implement that version.
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
        Self::API_KEY.check_version(version)?;
        self.encode_body(buf, version)
    }

    /// Reads the body at `version`, failing if this crate does not implement that version.
    fn decode(d: &mut Decoder, version: i16) -> Result<Self> {
        Self::API_KEY.check_version(version)?;
        Self::decode_body(d, version)
    }

    /// Reads a body that must fill `bytes` exactly.
    fn decode_exact(bytes: Bytes, version: i16) -> Result<Self> {
        let mut d = Decoder::new(bytes);
        let m = Self::decode(&mut d, version)?;
        d.finish(std::any::type_name::<Self>())?;
        Ok(m)
    }

    /// Encodes the body at `version` into a fresh buffer.
    fn to_bytes(&self, version: i16) -> Result<Bytes> {
        let mut b = BytesMut::new();
        self.encode(&mut b, version)?;
        Ok(b.freeze())
    }
}

/// A request body, tied to the type of its response.
pub trait Request: Message {
    /// The response body type.
    type Response: Message;
}

macro_rules! messages {
    ($( $module:ident :: $api:ident => $req:ident, $resp:ident; )*) => {
        $( pub mod $module; pub use $module::{$req, $resp}; )*

        $( impl Request for $req { type Response = $resp; } )*

        /// Any request body, for code that handles requests by API key at run time (test peers,
        /// fuzzers, capture tools).
        #[derive(Debug, Clone, PartialEq)]
        #[allow(missing_docs, clippy::large_enum_variant)]
        pub enum AnyRequest { $( $api($req), )* }

        /// Any response body, for code that handles responses by API key at run time.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(missing_docs, clippy::large_enum_variant)]
        pub enum AnyResponse { $( $api($resp), )* }

        impl AnyRequest {
            /// Decodes a request body of `api` at `version`.
            pub fn decode(api: ApiKey, version: i16, d: &mut Decoder) -> Result<Self> {
                match api { $( ApiKey::$api => Ok(AnyRequest::$api($req::decode(d, version)?)), )* }
            }
            /// Encodes the body at `version`.
            pub fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
                match self { $( AnyRequest::$api(m) => m.encode(buf, version), )* }
            }
            /// The API of this body.
            pub fn api_key(&self) -> ApiKey {
                match self { $( AnyRequest::$api(_) => ApiKey::$api, )* }
            }
        }

        impl AnyResponse {
            /// Decodes a response body of `api` at `version`.
            pub fn decode(api: ApiKey, version: i16, d: &mut Decoder) -> Result<Self> {
                match api { $( ApiKey::$api => Ok(AnyResponse::$api($resp::decode(d, version)?)), )* }
            }
            /// Encodes the body at `version`.
            pub fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<()> {
                match self { $( AnyResponse::$api(m) => m.encode(buf, version), )* }
            }
            /// The API of this body.
            pub fn api_key(&self) -> ApiKey {
                match self { $( AnyResponse::$api(_) => ApiKey::$api, )* }
            }
        }

        /// Test support: calls `$visit!(Request, Response)` for every API (used by round-trip tests).
        #[doc(hidden)]
        #[macro_export]
        macro_rules! for_each_message {
            ($visit:ident) => { $( $visit!($crate::messages::$req, $crate::messages::$resp); )* };
        }
    };
}

messages! {
    produce::Produce => ProduceRequest, ProduceResponse;
    fetch::Fetch => FetchRequest, FetchResponse;
    list_offsets::ListOffsets => ListOffsetsRequest, ListOffsetsResponse;
    metadata::Metadata => MetadataRequest, MetadataResponse;
    offset_commit::OffsetCommit => OffsetCommitRequest, OffsetCommitResponse;
    offset_fetch::OffsetFetch => OffsetFetchRequest, OffsetFetchResponse;
    find_coordinator::FindCoordinator => FindCoordinatorRequest, FindCoordinatorResponse;
    join_group::JoinGroup => JoinGroupRequest, JoinGroupResponse;
    heartbeat::Heartbeat => HeartbeatRequest, HeartbeatResponse;
    leave_group::LeaveGroup => LeaveGroupRequest, LeaveGroupResponse;
    sync_group::SyncGroup => SyncGroupRequest, SyncGroupResponse;
    describe_groups::DescribeGroups => DescribeGroupsRequest, DescribeGroupsResponse;
    list_groups::ListGroups => ListGroupsRequest, ListGroupsResponse;
    sasl_handshake::SaslHandshake => SaslHandshakeRequest, SaslHandshakeResponse;
    api_versions::ApiVersions => ApiVersionsRequest, ApiVersionsResponse;
    create_topics::CreateTopics => CreateTopicsRequest, CreateTopicsResponse;
    delete_topics::DeleteTopics => DeleteTopicsRequest, DeleteTopicsResponse;
    init_producer_id::InitProducerId => InitProducerIdRequest, InitProducerIdResponse;
    describe_configs::DescribeConfigs => DescribeConfigsRequest, DescribeConfigsResponse;
    sasl_authenticate::SaslAuthenticate => SaslAuthenticateRequest, SaslAuthenticateResponse;
}
