//! The name of one partition of one topic, shared by the producer, the consumer and the groups.
//!
//! Defined in the protocol crate, because the consumer protocol's subscription and assignment
//! formats carry it; re-exported here so that `kbus_client::TopicPartition` is the same type.

pub use kbus_protocol::TopicPartition;
