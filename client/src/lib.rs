//! # kbus-client
//!
//! The async Kafka client under [kbus](https://example.invalid/kbus): everything between an
//! application and the brokers, on tokio. The wire protocol lives in [`kbus_protocol`],
//! re-exported as [`protocol`]; the `kbus` crate re-exports this one and adds the event bus on
//! top, using only what is public here.
//!
//! - [`config`]: settings as one map of Java-named properties ([`Properties`]) that every
//!   component ([`Settings`]) reads its own keys from.
//! - [`net`]: one connection to one broker (pipelining, timeouts, version negotiation, TLS, SASL).
//! - [`cluster`]: bootstrap, metadata, leaders, coordinators, reconnects with backoff.
//! - [`admin`]: topics, groups, offsets and configs.
//! - [`producer`]: partitioning, batching, one request per broker, retries, idempotence.
//! - [`consumer`]: fetching per broker, positions, commits, and consumer groups through
//!   [`group`] (membership, assignors, offsets).
//! - [`metrics`]: counters of records, bytes, requests, retries, errors and rebalances.
//! - [`Error`]: the crate's one error type, naming the broker and API and saying whether a retry
//!   can help.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod cluster;
pub mod config;
pub mod consumer;
pub mod error;
mod failure_streak;
pub mod group;
mod list_offsets;
pub mod metrics;
pub mod net;
mod precise_timer;
pub mod producer;
mod topic_partition;

pub use config::{Properties, Settings};
pub use error::{Error, Result};
pub use kbus_protocol as protocol;
pub use metrics::Metrics;
pub use topic_partition::TopicPartition;

/// True when a component of the client has the setting `key`: the connection and cluster, the
/// producer, the consumer (with its group). What [`Properties::check_known`] asks.
pub(crate) fn reads_key(key: &str) -> bool {
    <cluster::ClusterConfig as Settings>::reads(key)
        || <producer::ProducerConfig as Settings>::reads(key)
        || <consumer::ConsumerConfig as Settings>::reads(key)
}
