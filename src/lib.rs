//! # kbus
//!
//! A Kafka event bus for Rust that owns its whole stack: a hand-written, sans-IO wire protocol
//! ([`protocol`], the `kbus-protocol` crate), an async client on tokio (the `kbus-client` crate,
//! re-exported here module by module), and the event bus on top of it, in this crate, built only
//! on the client's public API. `docs/ARCHITECTURE.md` in the repository describes the
//! layers.
//!
//! - [`net`]: connections to brokers (pipelining, timeouts, version negotiation, TLS, SASL).
//! - [`cluster`]: bootstrap, metadata, leaders, coordinators, reconnects with backoff.
//! - [`admin`]: topics, groups, offsets and configs.
//! - [`producer`]: the batching producer (Java-compatible partitioning, idempotence).
//! - [`consumer`] and [`group`]: the consumer, consumer groups, commits.
//! - [`config`]: settings as one map of Java-named properties ([`Properties`]) that every
//!   component reads its own keys from.
//! - [`metrics`]: counters of records, bytes, requests in flight, retries, errors and
//!   rebalances ([`Metrics`]); the client also logs through `tracing`.
//! - [`bus`]: the event bus: typed events in eventsource-py's envelope, handlers,
//!   [`bus::kafka::KafkaEventBus`] and [`bus::InMemoryEventBus`].
//! - [`Error`]: one error type, naming the broker and API and saying whether a retry can help.
//!
//! ```no_run
//! # async fn demo() -> kbus::Result<()> {
//! use kbus::producer::{Producer, ProducerRecord};
//!
//! let producer = Producer::from_properties([("bootstrap.servers", "127.0.0.1:9092")]).await?;
//! producer
//!     .send(ProducerRecord::new("orders").key("order-17").value("created"))
//!     .await?
//!     .await?;
//! producer.close().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bus;

pub use kbus_client::{
    admin, cluster, config, consumer, error, group, metrics, net, producer, protocol, Error,
    Metrics, Properties, Result, Settings, TopicPartition,
};
