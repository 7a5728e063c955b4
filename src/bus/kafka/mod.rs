//! The Kafka event bus (being built): its parts that are plain values.
//!
//! - [`config`]: [`config::KafkaEventBusConfig`], eventsource-py's settings and kbus's.
//! - [`progress`]: per partition, what is finished and what to commit (with the offsets finished
//!   above the commit in its metadata).
//! - [`schedule`]: which events may run now (per-aggregate order, bounded concurrency).

pub mod config;
pub mod progress;
pub mod schedule;
