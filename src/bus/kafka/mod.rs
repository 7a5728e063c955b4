//! The Kafka event bus: [`KafkaEventBus`] and its parts.
//!
//! - [`config`]: [`KafkaEventBusConfig`], eventsource-py's settings and kbus's.
//! - `bus.rs`: the bus (publishing, subscriptions, start, shutdown).
//! - `consume.rs`: the consuming task (scheduling, commits, rebalances, backpressure).
//! - [`dlq`]: the dead-letter tools (list, count, replay with its guard, filtered replay).
//! - `handle.rs`: one record's way (read, handlers, retries in place, dead letter).
//! - [`progress`]: per partition, what is finished and what to commit (with the offsets finished
//!   above the commit in its metadata).
//! - [`schedule`]: which events may run now (per-aggregate order, bounded concurrency).

mod bus;
pub mod config;
mod consume;
pub mod dlq;
mod handle;
pub mod progress;
pub mod schedule;

pub use bus::KafkaEventBus;
pub use config::KafkaEventBusConfig;
pub use dlq::{DeadLetter, DlqFilter, DlqFrom, ReplayReport};
