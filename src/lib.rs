//! # kbus
//!
//! A Kafka event bus for Rust that owns its whole stack. This crate holds the async client and, on
//! top of it, the event bus; the wire protocol lives in [`kbus_protocol`], re-exported as
//! [`protocol`].
//!
//! - [`net`]: connections to brokers (pipelining, timeouts, version negotiation).
//! - [`admin`]: topics, groups, offsets and configs.
//! - [`cluster`]: bootstrap, metadata, leaders, coordinators, reconnects with backoff.
//! - [`Error`]: the crate's one error type, naming the broker and API and saying whether a retry
//!   can help.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod cluster;
pub mod consumer;
pub mod error;
pub mod group;
pub mod net;
pub mod producer;
mod topic_partition;

pub use error::{Error, Result};
pub use kbus_protocol as protocol;
pub use topic_partition::TopicPartition;
