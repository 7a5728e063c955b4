//! # kbus
//!
//! A Kafka event bus for Rust that owns its whole stack. This crate will hold the async client
//! (connections, cluster metadata, producer, consumer, groups, admin) and the event bus; today it
//! re-exports the wire protocol crate, [`kbus_protocol`], that everything else stands on.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use kbus_protocol as protocol;
