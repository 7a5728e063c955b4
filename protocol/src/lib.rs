//! # kbus-protocol
//!
//! A sans-IO implementation of the Kafka wire protocol: primitives, frames, request and response
//! messages, record batches (message format v2) with CRC32C and compression, and the error table.
//! It performs no IO, reads no clock and never panics on input: every length and count from the wire
//! is checked against the bytes left before anything is allocated.
//!
//! ## Layout
//! - [`primitives`]: integers, varints, UUIDs, strings, bytes, arrays, tagged fields.
//! - [`frame`]: size-prefixed frames and an incremental splitter; [`header`]: request/response headers.
//! - [`messages`]: one module per API, each with request and response bodies.
//! - [`record`]: record batches v2 (builder and zero-copy decoder) and [`compression`].
//! - [`error_code`]: every Kafka error code, its name, whether it is retriable, and what it means.
//! - [`api_key`]: API keys, supported versions and [`negotiate`] against a broker's ApiVersions.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api_key;
pub mod compression;
pub mod error;
pub mod error_code;
pub mod frame;
pub mod header;
pub mod messages;
pub mod primitives;
pub mod record;

pub use api_key::{negotiate, negotiate_all, ApiKey, VersionRange};
pub use error::{ProtocolError, Result};
pub use frame::{encode_request, encode_response, FrameSplitter};
pub use header::{RequestHeader, ResponseHeader};
pub use messages::{AnyRequest, AnyResponse, Message, Request};
pub use primitives::{Decoder, Encoder, TaggedFields, Uuid};
