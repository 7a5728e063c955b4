//! Consumer settings, with the Java client's names and defaults.

use std::time::Duration;

use crate::config::{boolean, invalid, millis, number, Settings};
use crate::error::{Error, Result};
use crate::group::GroupConfig;

/// Where a partition without a usable offset starts (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The first offset still in the log (`earliest`).
    Earliest,
    /// The offset the next produced record will get (`latest`, the default).
    #[default]
    Latest,
    /// No automatic reset (`none`): [`poll`](super::Consumer::poll) fails with
    /// [`Error::Consume`] naming the partition, which waits until the application seeks.
    None,
}

/// Which records a consumer sees of transactional producers (`isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record, committed or not, up to the high watermark (`read_uncommitted`, the default).
    #[default]
    ReadUncommitted,
    /// Only records of committed transactions (and non-transactional ones), up to the last stable
    /// offset (`read_committed`).
    ReadCommitted,
}

impl IsolationLevel {
    /// The value Fetch and ListOffsets carry on the wire.
    pub(crate) fn wire(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// Settings of a [`Consumer`](super::Consumer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The group settings: `group.id` (the group whose committed offsets new partitions start
    /// from and [`commit`](super::Consumer::commit) writes to; empty: none), and the member's
    /// when the consumer [subscribes](super::Consumer::subscribe): `group.instance.id`,
    /// `session.timeout.ms`, `heartbeat.interval.ms`, `max.poll.interval.ms` (also the longest
    /// the application may go without calling [`poll`](super::Consumer::poll)),
    /// `partition.assignment.strategy`, `client.rack`.
    pub group: GroupConfig,
    /// `fetch.min.bytes`: the bytes a broker waits for before answering a fetch (default 1).
    pub fetch_min_bytes: i32,
    /// `fetch.max.wait.ms`: how long a broker may wait for `fetch_min_bytes` (default 500 ms).
    pub fetch_max_wait: Duration,
    /// `fetch.max.bytes`: the most bytes one fetch returns (default 50 MiB). A first batch larger
    /// than this is still returned, so progress is always possible.
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`: the most bytes one fetch returns per partition (default 1 MiB).
    pub max_partition_fetch_bytes: i32,
    /// `auto.offset.reset`: where to start without a committed offset or after
    /// OFFSET_OUT_OF_RANGE (default [`OffsetReset::Latest`], as in Java).
    pub auto_offset_reset: OffsetReset,
    /// `isolation.level` (default [`IsolationLevel::ReadUncommitted`]).
    pub isolation_level: IsolationLevel,
    /// `check.crcs`: verify each fetched batch's CRC32C (default true).
    pub check_crcs: bool,
    /// The most prefetched bytes kept that the application has not polled yet (default 64 MiB;
    /// librdkafka's `queued.max.messages.kbytes`). Fetching stops while the buffer is full, and
    /// for a partition while its own share is.
    pub max_prefetch_bytes: usize,
    /// `retry.backoff.ms`: the first wait before retrying a partition after an error (default
    /// 100 ms); it doubles with each failure in a row up to one second. Group requests back off
    /// from it too.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the longest wait between retries of a group request (default 1 s).
    pub retry_backoff_max: Duration,

    /// `enable.auto.commit`: commit what [`poll`](super::Consumer::poll) has returned every
    /// `auto.commit.interval.ms`, before partitions are revoked, and on
    /// [`close`](super::Consumer::close). **Default false**, unlike the Java client: see
    /// [Committing](super#committing) for why.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`: how often auto-commit commits (default 5 s).
    pub auto_commit_interval: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group: GroupConfig::default(),
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            fetch_max_bytes: 50 * 1024 * 1024,
            max_partition_fetch_bytes: 1024 * 1024,
            auto_offset_reset: OffsetReset::Latest,
            isolation_level: IsolationLevel::ReadUncommitted,
            check_crcs: true,
            max_prefetch_bytes: 64 * 1024 * 1024,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            enable_auto_commit: false,
            auto_commit_interval: Duration::from_secs(5),
        }
    }
}

impl ConsumerConfig {
    /// The group, when `group.id` is set.
    pub fn group_id(&self) -> Option<&str> {
        Some(self.group.group_id.as_str()).filter(|g| !g.is_empty())
    }

    /// The settings of the group member a [`subscribe`](super::Consumer::subscribe) starts.
    pub(crate) fn group_config(&self) -> Result<GroupConfig> {
        if self.group_id().is_none() {
            return Err(Error::Config {
                message: "subscribe needs group.id".into(),
            });
        }
        Ok(self.group.clone())
    }
}

impl Settings for ConsumerConfig {
    /// Applies one property: `fetch.min.bytes`, `fetch.max.wait.ms`, `fetch.max.bytes`,
    /// `max.partition.fetch.bytes`, `auto.offset.reset` (`earliest`, `latest`, `none`;
    /// librdkafka's `smallest`/`largest` too), `isolation.level` (`read_uncommitted`,
    /// `read_committed`), `check.crcs`, `queued.max.messages.kbytes`, `retry.backoff.ms`,
    /// `retry.backoff.max.ms`, `enable.auto.commit`, `auto.commit.interval.ms`, and the group's
    /// settings ([`GroupConfig`]: `group.id`, `group.instance.id`, `session.timeout.ms`, ...).
    ///
    /// ```
    /// use kbus_client::config::Settings;
    /// use kbus_client::consumer::{ConsumerConfig, OffsetReset};
    /// # fn main() -> kbus_client::Result<()> {
    /// let config = ConsumerConfig::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("group.id", "billing"),
    ///     ("auto.offset.reset", "earliest"),
    /// ])?;
    /// assert_eq!(config.group_id(), Some("billing"));
    /// assert_eq!(config.auto_offset_reset, OffsetReset::Earliest);
    /// # Ok(())
    /// # }
    /// ```
    fn set_property(&mut self, key: &str, value: &str) -> Result<bool> {
        let value = value.trim();
        let mine = match key.trim() {
            "fetch.min.bytes" => {
                self.fetch_min_bytes = number(key, value)?;
                true
            }
            "fetch.max.wait.ms" => {
                self.fetch_max_wait = millis(key, value)?;
                true
            }
            "fetch.max.bytes" => {
                self.fetch_max_bytes = number(key, value)?;
                true
            }
            "max.partition.fetch.bytes" => {
                self.max_partition_fetch_bytes = number(key, value)?;
                true
            }
            "queued.max.messages.kbytes" => {
                self.max_prefetch_bytes = number::<usize>(key, value)?.saturating_mul(1024);
                true
            }
            // The group backs off by these too: both read them.
            "retry.backoff.ms" => {
                self.retry_backoff = millis(key, value)?;
                false
            }
            "retry.backoff.max.ms" => {
                self.retry_backoff_max = millis(key, value)?;
                false
            }
            "enable.auto.commit" => {
                self.enable_auto_commit = boolean(key, value)?;
                true
            }
            "auto.commit.interval.ms" => {
                self.auto_commit_interval = millis(key, value)?;
                true
            }
            "check.crcs" => {
                self.check_crcs = boolean(key, value)?;
                true
            }
            "auto.offset.reset" => {
                self.auto_offset_reset = match value.to_ascii_lowercase().as_str() {
                    "earliest" | "smallest" | "beginning" => OffsetReset::Earliest,
                    "latest" | "largest" | "end" => OffsetReset::Latest,
                    "none" | "error" => OffsetReset::None,
                    _ => return Err(invalid(key, value, "earliest, latest or none")),
                };
                true
            }
            "isolation.level" => {
                self.isolation_level = match value.to_ascii_lowercase().as_str() {
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    "read_committed" => IsolationLevel::ReadCommitted,
                    _ => return Err(invalid(key, value, "read_uncommitted or read_committed")),
                };
                true
            }
            _ => false,
        };
        let group = self.group.set_property(key, value)?;
        Ok(mine || group)
    }

    /// Checks values that only make sense within bounds, the group's included.
    fn finish(&mut self) -> Result<()> {
        let positive = [
            ("fetch.max.bytes", self.fetch_max_bytes),
            ("max.partition.fetch.bytes", self.max_partition_fetch_bytes),
        ];
        for (key, v) in positive {
            if v <= 0 {
                return Err(invalid(key, &v.to_string(), "a positive number of bytes"));
            }
        }
        if self.fetch_min_bytes < 0 {
            return Err(invalid(
                "fetch.min.bytes",
                &self.fetch_min_bytes.to_string(),
                "zero or more bytes",
            ));
        }
        if self.fetch_max_wait.as_millis() > i32::MAX as u128 {
            return Err(invalid(
                "fetch.max.wait.ms",
                &self.fetch_max_wait.as_millis().to_string(),
                "at most 2147483647",
            ));
        }
        if self.max_prefetch_bytes == 0 {
            return Err(invalid(
                "queued.max.messages.kbytes",
                "0",
                "a positive number of kilobytes",
            ));
        }
        if self.enable_auto_commit && self.auto_commit_interval.is_zero() {
            return Err(invalid(
                "auto.commit.interval.ms",
                "0",
                "a positive number of milliseconds",
            ));
        }
        // The group's checks (heartbeat below the session timeout, durations that fit the wire,
        // ...) name a problem before anything connects.
        self.group.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_java_client() {
        let c = ConsumerConfig::default();
        assert_eq!(c.fetch_min_bytes, 1);
        assert_eq!(c.fetch_max_wait, Duration::from_millis(500));
        assert_eq!(c.fetch_max_bytes, 52_428_800);
        assert_eq!(c.max_partition_fetch_bytes, 1_048_576);
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        assert_eq!(c.isolation_level, IsolationLevel::ReadUncommitted);
        assert!(c.check_crcs);
        assert_eq!(c.max_prefetch_bytes, 64 << 20);
        assert_eq!(c.group_id(), None);
        assert_eq!(c.group.session_timeout, Duration::from_secs(45));
        assert_eq!(c.group.heartbeat_interval, Duration::from_secs(3));
        assert_eq!(c.group.max_poll_interval, Duration::from_secs(300));
        assert_eq!(
            c.group.assignment_strategy,
            vec!["range", "cooperative-sticky"]
        );
        assert_eq!(c.auto_commit_interval, Duration::from_secs(5));
        // The one deliberate difference: see the module documentation of the consumer.
        assert!(!c.enable_auto_commit);
    }

    #[test]
    fn every_consumer_key_is_read() {
        let c = ConsumerConfig::from_properties([
            ("group.id", "g"),
            ("fetch.min.bytes", "10"),
            ("fetch.max.wait.ms", "20"),
            ("fetch.max.bytes", "3000"),
            ("max.partition.fetch.bytes", "400"),
            ("auto.offset.reset", "none"),
            ("isolation.level", "read_committed"),
            ("check.crcs", "false"),
            ("queued.max.messages.kbytes", "2"),
            ("retry.backoff.ms", "7"),
            ("retry.backoff.max.ms", "70"),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "250"),
            ("group.instance.id", "i-1"),
            ("client.rack", "r1"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "300"),
            ("max.poll.interval.ms", "60000"),
            (
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
            ),
        ])
        .unwrap();
        assert!(c.enable_auto_commit);
        assert_eq!(c.auto_commit_interval, Duration::from_millis(250));
        let g = c.group_config().unwrap();
        assert_eq!(g.group_id, "g");
        assert_eq!(g.group_instance_id.as_deref(), Some("i-1"));
        assert_eq!(g.client_rack.as_deref(), Some("r1"));
        assert_eq!(g.session_timeout, Duration::from_secs(6));
        assert_eq!(g.heartbeat_interval, Duration::from_millis(300));
        assert_eq!(g.max_poll_interval, Duration::from_secs(60));
        assert_eq!(g.assignment_strategy, vec!["cooperative-sticky"]);
        assert_eq!(g.retry_backoff, Duration::from_millis(7));
        assert_eq!(g.retry_backoff_max, Duration::from_millis(70));
        assert_eq!(c.group_id(), Some("g"));
        assert_eq!(c.fetch_min_bytes, 10);
        assert_eq!(c.fetch_max_wait, Duration::from_millis(20));
        assert_eq!(c.fetch_max_bytes, 3000);
        assert_eq!(c.max_partition_fetch_bytes, 400);
        assert_eq!(c.auto_offset_reset, OffsetReset::None);
        assert_eq!(c.isolation_level, IsolationLevel::ReadCommitted);
        assert!(!c.check_crcs);
        assert_eq!(c.max_prefetch_bytes, 2048);
        assert_eq!(c.retry_backoff, Duration::from_millis(7));
    }

    #[test]
    fn cluster_keys_are_skipped_and_unknown_keys_named() {
        let c = ConsumerConfig::from_properties([
            ("bootstrap.servers", "a:1"),
            ("client.id", "x"),
            ("request.timeout.ms", "1000"),
            ("security.protocol", "PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("metadata.max.age.ms", "10"),
            ("auto.offset.reset", "earliest"),
        ])
        .unwrap();
        assert_eq!(c.auto_offset_reset, OffsetReset::Earliest);
        let err = ConsumerConfig::from_properties([("fetch.max.wiat.ms", "1")]).unwrap_err();
        assert!(err.to_string().contains("fetch.max.wiat.ms"), "{err}");
        let err = ConsumerConfig::from_properties([("auto.offset.reset", "soon")]).unwrap_err();
        assert!(err.to_string().contains("auto.offset.reset"), "{err}");
        let err = ConsumerConfig::from_properties([("enable.auto.commit", "yes")]).unwrap_err();
        assert!(err.to_string().contains("enable.auto.commit"), "{err}");
        let err = ConsumerConfig::from_properties([("partition.assignment.strategy", "sticky")])
            .unwrap_err();
        assert!(err.to_string().contains("sticky"), "{err}");
        let err = ConsumerConfig::from_properties([
            ("session.timeout.ms", "1000"),
            ("heartbeat.interval.ms", "3000"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("heartbeat.interval.ms"), "{err}");
        assert!(
            ConsumerConfig::default().group_config().is_err(),
            "needs group.id"
        );
        let err = ConsumerConfig::from_properties([("fetch.max.bytes", "0")]).unwrap_err();
        assert!(err.to_string().contains("fetch.max.bytes"), "{err}");
    }

    #[test]
    fn one_map_feeds_cluster_consumer_and_producer() {
        use crate::cluster::ClusterConfig;
        use crate::config::Properties;
        use crate::producer::{Acks, ProducerConfig};
        let props = Properties::from([
            ("bootstrap.servers", "a:1, b:2"),
            ("metadata.max.age.ms", "1500"),
            ("reconnect.backoff.ms", "5"),
            ("reconnect.backoff.max.ms", "50"),
            ("client.id", "svc"),
            ("request.timeout.ms", "2500"),
            ("group.id", "g"),
            ("isolation.level", "read_committed"),
            ("acks", "1"),
            ("enable.idempotence", "false"),
        ]);
        props.check_known().unwrap();
        let cluster = ClusterConfig::read(&props).unwrap();
        assert_eq!(cluster.bootstrap_servers, vec!["a:1", "b:2"]);
        assert_eq!(cluster.metadata_max_age, Duration::from_millis(1500));
        assert_eq!(cluster.reconnect_backoff, Duration::from_millis(5));
        assert_eq!(cluster.reconnect_backoff_max, Duration::from_millis(50));
        assert_eq!(cluster.connection.client_id.as_deref(), Some("svc"));
        assert_eq!(
            cluster.connection.request_timeout,
            Duration::from_millis(2500)
        );
        let consumer = ConsumerConfig::read(&props).unwrap();
        assert_eq!(consumer.group_id(), Some("g"));
        assert_eq!(consumer.isolation_level, IsolationLevel::ReadCommitted);
        // The producer's keys are the producer's; the request timeout is the connections' and
        // the producer's.
        let producer = ProducerConfig::read(&props).unwrap();
        assert_eq!(producer.acks, Acks::Leader);
        assert_eq!(producer.request_timeout, Duration::from_millis(2500));

        let err =
            ConsumerConfig::from_properties(props.clone().with("acks.typo", "1")).unwrap_err();
        assert!(err.to_string().contains("acks.typo"), "{err}");
        let err = ClusterConfig::from_properties([("metadata.max.age.ms", "x")]).unwrap_err();
        assert!(err.to_string().contains("metadata.max.age.ms"), "{err}");
    }

    #[tokio::test]
    async fn a_consumer_without_bootstrap_servers_is_refused() {
        let err = super::super::Consumer::from_properties([("group.id", "g")])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("bootstrap.servers"), "{err}");
    }
}
