//! # kbus-protocol
//!
//! A sans-IO implementation of the Kafka wire protocol: primitives, frames, request and response
//! messages, record batches (message format v2) with CRC32C and compression, the consumer group
//! protocol's subscription and assignment formats, and the error table.
//! It performs no IO, reads no clock and never panics on input: every length and count from the wire
//! is checked against the bytes left before anything is allocated.
//!
//! ## Layout
//! - [`primitives`]: integers, varints, UUIDs, strings, bytes, arrays, tagged fields.
//! - [`frame`]: size-prefixed frames and an incremental splitter; [`header`]: request/response headers.
//! - [`messages`]: one module per API, each with request and response bodies.
//! - [`record`]: record batches v2 (builder and zero-copy decoder) and [`compression`].
//! - [`consumer_protocol`]: the `consumer` protocol type's subscription and assignment bytes, which
//!   members exchange through JoinGroup and SyncGroup, and [`TopicPartition`], which they carry.
//! - [`error_code`]: every Kafka error code, its name, whether it is retriable, and what it means.
//! - [`api_key`]: API keys, supported versions and [`negotiate`] against a broker's ApiVersions.
//!
//! ## Supported versions
//! Each API is implemented in both directions (request encode and decode, response encode and
//! decode) for every version from Kafka 4.0's floor (KIP-896) to the newest version Kafka 4.0
//! defines. The version used with a broker is the highest both sides support: see [`negotiate`].
//!
//! | API | key | versions | flexible from |
//! |---|---|---|---|
//! | Produce | 0 | 3–12 | 9 |
//! | Fetch | 1 | 4–17 | 12 |
//! | ListOffsets | 2 | 1–10 | 6 |
//! | Metadata | 3 | 0–13 | 9 |
//! | OffsetCommit | 8 | 2–9 | 8 |
//! | OffsetFetch | 9 | 1–9 | 6 |
//! | FindCoordinator | 10 | 0–6 | 3 |
//! | JoinGroup | 11 | 0–9 | 6 |
//! | Heartbeat | 12 | 0–4 | 4 |
//! | LeaveGroup | 13 | 0–5 | 4 |
//! | SyncGroup | 14 | 0–5 | 4 |
//! | DescribeGroups | 15 | 0–6 | 5 |
//! | ListGroups | 16 | 0–5 | 3 |
//! | SaslHandshake | 17 | 0–1 | never |
//! | ApiVersions | 18 | 0–4 | 3 |
//! | CreateTopics | 19 | 2–7 | 5 |
//! | DeleteTopics | 20 | 1–6 | 4 |
//! | InitProducerId | 22 | 0–5 | 2 |
//! | DescribeConfigs | 32 | 1–4 | 4 |
//! | SaslAuthenticate | 36 | 0–2 | 2 |
//!
//! ApiVersions' response header stays at version 0 even in flexible versions, so a client can read
//! the answer before it knows what the broker speaks.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api_key;
pub mod compression;
pub mod consumer_protocol;
pub mod error;
pub mod error_code;
pub mod frame;
pub mod header;
pub mod messages;
pub mod primitives;
pub mod record;
mod topic_partition;

pub use api_key::{negotiate, negotiate_all, ApiKey, VersionRange};
pub use error::{ProtocolError, Result};
pub use frame::{encode_request, encode_response, FrameSplitter};
pub use header::{RequestHeader, ResponseHeader};
pub use messages::{AnyRequest, AnyResponse, Message, Request};
pub use primitives::{Decoder, Encoder, TaggedFields, Uuid};
pub use topic_partition::TopicPartition;
