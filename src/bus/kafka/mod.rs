//! The Kafka event bus: [`KafkaEventBus`] and its parts.
//!
//! ```no_run
//! use std::sync::Arc;
//! use kbus::bus::kafka::{KafkaEventBus, KafkaEventBusConfig};
//! use kbus::bus::{Envelope, Event, EventBus};
//! # #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
//! # struct OrderPlaced { order_number: String }
//! # impl Event for OrderPlaced {
//! #     const EVENT_TYPE: &'static str = "OrderPlaced";
//! #     const AGGREGATE_TYPE: &'static str = "Order";
//! # }
//! # async fn demo() -> Result<(), kbus::bus::BusError> {
//! let bus = KafkaEventBus::connect(KafkaEventBusConfig {
//!     bootstrap_servers: "k1:9092".into(),
//!     topic_prefix: "shop".into(),
//!     consumer_group: "billing".into(),
//!     ..Default::default()
//! })
//! .await?;
//! bus.subscribe(|e: Arc<Envelope<OrderPlaced>>| async move {
//!     println!("placed {}", e.event.order_number);
//!     Ok(())
//! });
//! bus.start().await?;
//! // ... publish, run ...
//! bus.shutdown(std::time::Duration::from_secs(30)).await?;
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - **At least once.** An event's offset is committed only after every handler succeeded, or it
//!   was written to the dead-letter topic and the write acknowledged. A crash, a lost partition or
//!   a shutdown that abandons a running handler means the event is handled again, by this member
//!   or another: handlers should be idempotent (the event id is stable).
//! - **Order per aggregate.** Events of one aggregate (one record key) are handled strictly in
//!   offset order, one at a time, retries included. Events of different aggregates — also in the
//!   same partition — run side by side, up to `max_concurrency` per partition (handlers stuck on
//!   one partition's events never take another partition's places); `strict_ordering` runs one
//!   event at a time per partition instead.
//! - **Nothing finished is done twice across a restart.** The commit names the lowest unfinished
//!   offset and lists the finished ones above it in its metadata; the next owner skips those.
//!
//! # Handlers and the consuming task
//!
//! A handler that finishes without waiting (it awaits nothing that is not ready) runs to its end on
//! the task that consumes, with no task of its own: the cheapest way for the many handlers that only
//! update memory or count. A handler that awaits I/O continues on a task of its own, so up to
//! `max_concurrency` of them per partition wait side by side. A handler that computes for long without awaiting
//! holds the consuming task meanwhile: give such work to `tokio::task::spawn_blocking` and await it.
//!
//! # Where it differs from eventsource-py's bus (on purpose)
//!
//! The records are the same in both directions, and mixed groups work with
//! `assignment_strategy = "roundrobin"` (aiokafka offers nothing else). But kbus retries in place
//! (only the failing aggregate waits; nothing is republished, so no retry copy overtakes later
//! events or reaches other groups), retries only the handlers that failed, awaits the dead-letter
//! write before committing, handles events concurrently, counts rebalances, makes the consumer's
//! span a child of the producer's span, and returns from an idle shutdown at once.
//!
//! # Parts
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
