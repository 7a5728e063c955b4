//! The bus's statistics: eventsource-py's counters and timestamps, live, cheap to update on the hot
//! path (atomics), read at any time as a [`BusStats`] snapshot.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;

use super::time::Timestamp;

/// A snapshot of a bus's statistics (eventsource-py's names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BusStats {
    /// Events published and acknowledged.
    pub events_published: u64,
    /// Events read from the topic (handled or not).
    pub events_consumed: u64,
    /// Events every handler succeeded with.
    pub events_processed_success: u64,
    /// Events some handler failed with (each failed attempt counts).
    pub events_processed_failed: u64,
    /// Records written to the dead-letter topic.
    pub messages_sent_to_dlq: u64,
    /// Handler failures (one event can have several).
    pub handler_errors: u64,
    /// Connections to the cluster made again after one was lost.
    pub reconnections: u64,
    /// Rebalances the bus's group member went through.
    pub rebalance_count: u64,
    /// Events read but not handled: no handler here for their type, or no `event_type` header.
    pub events_skipped: u64,
    /// When an event was last published.
    pub last_publish_at: Option<Timestamp>,
    /// When an event was last read.
    pub last_consume_at: Option<Timestamp>,
    /// When something last failed.
    pub last_error_at: Option<Timestamp>,
    /// When the bus connected.
    pub connected_at: Option<Timestamp>,
}

/// The live counters behind [`BusStats`].
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) events_published: AtomicU64,
    pub(crate) events_consumed: AtomicU64,
    pub(crate) events_processed_success: AtomicU64,
    pub(crate) events_processed_failed: AtomicU64,
    pub(crate) messages_sent_to_dlq: AtomicU64,
    pub(crate) handler_errors: AtomicU64,
    pub(crate) reconnections: AtomicU64,
    pub(crate) rebalance_count: AtomicU64,
    pub(crate) events_skipped: AtomicU64,
    last_publish_at: AtomicI64,
    last_consume_at: AtomicI64,
    last_error_at: AtomicI64,
    connected_at: AtomicI64,
}

/// Stored for "never": no real timestamp is this one.
const NEVER: i64 = i64::MIN;

impl Counters {
    /// Counters at zero, nothing happened yet.
    pub fn new() -> Counters {
        let c = Counters::default();
        for t in [
            &c.last_publish_at,
            &c.last_consume_at,
            &c.last_error_at,
            &c.connected_at,
        ] {
            t.store(NEVER, Ordering::Relaxed);
        }
        c
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn published(&self, n: u64) {
        Counters::add(&self.events_published, n);
        self.last_publish_at
            .store(Timestamp::now().unix_micros(), Ordering::Relaxed);
    }

    pub(crate) fn consumed(&self, n: u64) {
        Counters::add(&self.events_consumed, n);
        self.last_consume_at
            .store(Timestamp::now().unix_micros(), Ordering::Relaxed);
    }

    pub(crate) fn error(&self) {
        self.last_error_at
            .store(Timestamp::now().unix_micros(), Ordering::Relaxed);
    }

    pub(crate) fn connected(&self) {
        self.connected_at
            .store(Timestamp::now().unix_micros(), Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> BusStats {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let t = |c: &AtomicI64| {
            let v = c.load(Ordering::Relaxed);
            (v != NEVER).then(|| Timestamp::from_unix_micros(v))
        };
        BusStats {
            events_published: n(&self.events_published),
            events_consumed: n(&self.events_consumed),
            events_processed_success: n(&self.events_processed_success),
            events_processed_failed: n(&self.events_processed_failed),
            messages_sent_to_dlq: n(&self.messages_sent_to_dlq),
            handler_errors: n(&self.handler_errors),
            reconnections: n(&self.reconnections),
            rebalance_count: n(&self.rebalance_count),
            events_skipped: n(&self.events_skipped),
            last_publish_at: t(&self.last_publish_at),
            last_consume_at: t(&self.last_consume_at),
            last_error_at: t(&self.last_error_at),
            connected_at: t(&self.connected_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_bus_has_done_nothing_and_counts_what_it_does() {
        let c = Counters::new();
        assert_eq!(c.snapshot(), BusStats::default());
        c.published(3);
        c.consumed(2);
        Counters::add(&c.handler_errors, 1);
        let s = c.snapshot();
        assert_eq!(
            (s.events_published, s.events_consumed, s.handler_errors),
            (3, 2, 1)
        );
        assert!(s.last_publish_at.is_some() && s.last_consume_at.is_some());
        assert!(s.last_error_at.is_none());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["events_published"], 3);
        assert!(json["last_publish_at"].as_str().unwrap().ends_with('Z'));
    }
}
