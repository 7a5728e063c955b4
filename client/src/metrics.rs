//! Counters of what a client did: records and bytes sent and received, requests in flight, retries,
//! errors by code, rebalances. Read them with [`Cluster::metrics`](crate::cluster::Cluster::metrics)
//! (or a producer's or consumer's `metrics()`): a [`Metrics`] snapshot that tools (the bus's
//! statistics, the CLI's perf tool, an exporter of the application's choosing) read and compare.
//!
//! The counters belong to a [`Cluster`](crate::cluster::Cluster) handle and everything built on it:
//! a producer and a consumer sharing one cluster share one set. They only grow (except the
//! in-flight gauge); a rate is the difference of two snapshots over the time between them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use kbus_protocol::error_code::ErrorCode;

use crate::error::Error;

/// A snapshot of a client's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Records the brokers acknowledged (produced).
    pub records_sent: u64,
    /// Bytes of the record batches the brokers acknowledged, as sent (compressed).
    pub bytes_sent: u64,
    /// Records fetched and decoded (consumed), before the application polled them.
    pub records_received: u64,
    /// Bytes of the record batches fetched, as they came (compressed).
    pub bytes_received: u64,
    /// Fetch requests answered.
    pub fetches: u64,
    /// Of those, incremental fetches in a fetch session (KIP-227): requests that named only the
    /// partitions whose position changed.
    pub incremental_fetches: u64,
    /// Requests sent and not answered yet, over every open connection, now.
    pub requests_in_flight: u64,
    /// Connections to brokers open now.
    pub connections_open: u64,
    /// Produce batches sent again after a retriable error.
    pub retries: u64,
    /// Rebalances the consumer's group member completed (each assignment it received).
    pub rebalances: u64,
    /// Connections to a broker made again after an earlier one to it closed.
    pub reconnects: u64,
    /// Failed requests and error codes in answers, by Kafka's error name
    /// (`NOT_LEADER_OR_FOLLOWER`, ...) or, for errors without a code, by kind (`timeout`,
    /// `disconnected`, `io`, `protocol`, `tls`, `authentication`).
    pub errors: BTreeMap<String, u64>,
}

impl Metrics {
    /// Errors counted in all.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The live counters behind [`Metrics`], shared by a cluster and what is built on it.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    records_sent: AtomicU64,
    bytes_sent: AtomicU64,
    records_received: AtomicU64,
    bytes_received: AtomicU64,
    fetches: AtomicU64,
    incremental_fetches: AtomicU64,
    retries: AtomicU64,
    rebalances: AtomicU64,
    reconnects: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

impl Counters {
    /// A produced batch of `records` records and `bytes` bytes was acknowledged.
    pub fn sent(&self, records: u64, bytes: u64) {
        self.records_sent.fetch_add(records, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A fetch brought `records` records in `bytes` bytes of batches.
    pub fn received(&self, records: u64, bytes: u64) {
        self.records_received.fetch_add(records, Ordering::Relaxed);
        self.bytes_received.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A fetch was answered; `incremental` when it was an incremental one in a fetch session.
    pub fn fetched(&self, incremental: bool) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        if incremental {
            self.incremental_fetches.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A produce batch is sent again.
    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The group member completed a rebalance.
    pub fn rebalanced(&self) {
        self.rebalances.fetch_add(1, Ordering::Relaxed);
    }

    /// A broker was connected to again.
    pub fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// An error code came back in an answer.
    pub fn code(&self, code: ErrorCode) {
        if code.is_err() {
            self.count(code.name());
        }
    }

    /// A request failed with `error`.
    pub fn error(&self, error: &Error) {
        self.count(error_name(error));
    }

    fn count(&self, name: &'static str) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        *errors.entry(name).or_default() += 1;
    }

    /// The counters now, with `requests_in_flight` and `connections_open` measured by the caller.
    pub fn snapshot(&self, requests_in_flight: u64, connections_open: u64) -> Metrics {
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        Metrics {
            records_sent: self.records_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            records_received: self.records_received.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            fetches: self.fetches.load(Ordering::Relaxed),
            incremental_fetches: self.incremental_fetches.load(Ordering::Relaxed),
            requests_in_flight,
            connections_open,
            retries: self.retries.load(Ordering::Relaxed),
            rebalances: self.rebalances.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            errors: errors.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }
}

/// The name an error is counted under: its Kafka error code's, else its kind.
pub(crate) fn error_name(error: &Error) -> &'static str {
    match error {
        Error::Broker { code, .. }
        | Error::Partition { code, .. }
        | Error::Topic { code, .. }
        | Error::Consume { code, .. } => code.name(),
        Error::Io { .. } => "io",
        Error::ConnectTimeout { .. } | Error::RequestTimeout { .. } => "timeout",
        Error::Disconnected { .. } => "disconnected",
        Error::Protocol { .. } => "protocol",
        Error::UnsupportedApi { .. } => "unsupported_api",
        Error::Tls { .. } => "tls",
        Error::Authentication { .. } => "authentication",
        Error::UnknownBroker { .. } => "unknown_broker",
        Error::Delivery { cause, .. } => error_name(cause),
        Error::DeliveryTimeout { .. } => "delivery_timeout",
        Error::RecordTooLarge { .. } => "record_too_large",
        Error::Config { .. } | Error::Misuse { .. } | Error::Encode { .. } => "client",
        Error::Closed => "closed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbus_protocol::ApiKey;
    use std::time::Duration;

    #[test]
    fn errors_are_counted_by_kafka_name_or_by_kind() {
        let c = Counters::default();
        c.code(ErrorCode::NOT_LEADER_OR_FOLLOWER);
        c.code(ErrorCode::NONE);
        c.error(&Error::Partition {
            topic: "t".into(),
            partition: 0,
            code: ErrorCode::NOT_LEADER_OR_FOLLOWER,
        });
        c.error(&Error::RequestTimeout {
            broker: "b:9092".into(),
            api: ApiKey::Fetch,
            after: Duration::from_secs(30),
        });
        let m = c.snapshot(2, 1);
        assert_eq!(m.errors.get("NOT_LEADER_OR_FOLLOWER"), Some(&2));
        assert_eq!(m.errors.get("timeout"), Some(&1));
        assert_eq!(m.error_count(), 3, "success codes are not errors");
        assert_eq!(m.requests_in_flight, 2);
    }

    #[test]
    fn traffic_adds_up() {
        let c = Counters::default();
        c.sent(10, 1000);
        c.sent(5, 400);
        c.received(7, 700);
        c.fetched(false);
        c.fetched(true);
        c.retried();
        c.rebalanced();
        let m = c.snapshot(0, 0);
        assert_eq!((m.records_sent, m.bytes_sent), (15, 1400));
        assert_eq!((m.records_received, m.bytes_received), (7, 700));
        assert_eq!((m.fetches, m.incremental_fetches), (2, 1));
        assert_eq!((m.retries, m.rebalances), (1, 1));
    }
}
