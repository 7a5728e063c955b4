//! Consumer settings, with the Java client's names and defaults.

use std::time::Duration;

use crate::cluster::ClusterConfig;
use crate::error::{Error, Result};

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
    /// `group.id`: the group whose committed offsets new partitions start from and
    /// [`commit`](super::Consumer::commit) writes to. `None`: no committed offsets.
    pub group_id: Option<String>,
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
    /// 100 ms); it doubles with each failure in a row up to one second.
    pub retry_backoff: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group_id: None,
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            fetch_max_bytes: 50 * 1024 * 1024,
            max_partition_fetch_bytes: 1024 * 1024,
            auto_offset_reset: OffsetReset::Latest,
            isolation_level: IsolationLevel::ReadUncommitted,
            check_crcs: true,
            max_prefetch_bytes: 64 * 1024 * 1024,
            retry_backoff: Duration::from_millis(100),
        }
    }
}

impl ConsumerConfig {
    /// Settings from `key = value` client properties, starting from the defaults.
    ///
    /// Understood: `group.id`, `fetch.min.bytes`, `fetch.max.wait.ms`, `fetch.max.bytes`,
    /// `max.partition.fetch.bytes`, `auto.offset.reset` (`earliest`, `latest`, `none`; librdkafka's
    /// `smallest`/`largest` too), `isolation.level` (`read_uncommitted`, `read_committed`),
    /// `check.crcs`, `queued.max.messages.kbytes`, `retry.backoff.ms` and `enable.auto.commit`
    /// (`false` only: nothing is committed automatically). Keys of the cluster and
    /// connection layers (see [`is_cluster_property`]) are skipped, so one list can feed both; any
    /// other key is an [`Error::Config`] naming it.
    ///
    /// ```
    /// use kbus::consumer::{ConsumerConfig, OffsetReset};
    /// # fn main() -> kbus::Result<()> {
    /// let config = ConsumerConfig::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("group.id", "billing"),
    ///     ("auto.offset.reset", "earliest"),
    /// ])?;
    /// assert_eq!(config.group_id.as_deref(), Some("billing"));
    /// assert_eq!(config.auto_offset_reset, OffsetReset::Earliest);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_properties<I, K, V>(properties: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = ConsumerConfig::default();
        for (key, value) in properties {
            let key = key.as_ref().trim();
            if !config.set_property(key, value.as_ref())? && !is_cluster_property(key) {
                return Err(Error::Config {
                    message: format!("unknown consumer property {key}"),
                });
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Applies one property; false when the key is not a consumer setting (nothing changed).
    pub fn set_property(&mut self, key: &str, value: &str) -> Result<bool> {
        let value = value.trim();
        match key.trim() {
            "group.id" => self.group_id = (!value.is_empty()).then(|| value.to_owned()),
            "fetch.min.bytes" => self.fetch_min_bytes = number(key, value)?,
            "fetch.max.wait.ms" => self.fetch_max_wait = Duration::from_millis(number(key, value)?),
            "fetch.max.bytes" => self.fetch_max_bytes = number(key, value)?,
            "max.partition.fetch.bytes" => self.max_partition_fetch_bytes = number(key, value)?,
            "queued.max.messages.kbytes" => {
                self.max_prefetch_bytes = number::<usize>(key, value)?.saturating_mul(1024)
            }
            "retry.backoff.ms" => self.retry_backoff = Duration::from_millis(number(key, value)?),
            // Nothing commits by itself here: `false` states that, `true` cannot be honoured.
            "enable.auto.commit" => match value.to_ascii_lowercase().as_str() {
                "false" => {}
                "true" => {
                    return Err(Error::Config {
                        message: "enable.auto.commit=true is not supported by this consumer: \
                                  set it to false and commit with commit or commit_consumed"
                            .into(),
                    })
                }
                _ => return Err(invalid(key, value, "true or false")),
            },
            "check.crcs" => {
                self.check_crcs = match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid(key, value, "true or false")),
                }
            }
            "auto.offset.reset" => {
                self.auto_offset_reset = match value.to_ascii_lowercase().as_str() {
                    "earliest" | "smallest" | "beginning" => OffsetReset::Earliest,
                    "latest" | "largest" | "end" => OffsetReset::Latest,
                    "none" | "error" => OffsetReset::None,
                    _ => return Err(invalid(key, value, "earliest, latest or none")),
                }
            }
            "isolation.level" => {
                self.isolation_level = match value.to_ascii_lowercase().as_str() {
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    "read_committed" => IsolationLevel::ReadCommitted,
                    _ => return Err(invalid(key, value, "read_uncommitted or read_committed")),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks values that only make sense within bounds.
    fn validate(&self) -> Result<()> {
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
        Ok(())
    }
}

/// True for keys the cluster and connection layers read: see [`ClusterConfig::is_property`].
pub fn is_cluster_property(key: &str) -> bool {
    ClusterConfig::is_property(key)
}

/// Splits one property list into the cluster's settings (`bootstrap.servers`,
/// `metadata.max.age.ms`, `reconnect.backoff.ms`, `reconnect.backoff.max.ms`, and the
/// connection's, read by [`ConnectionConfig::from_properties`]) and the consumer's.
///
/// Every key must belong to one of them: an unknown key is an [`Error::Config`] naming it.
///
/// ```
/// use kbus::consumer::config_from_properties;
/// # fn main() -> kbus::Result<()> {
/// let (cluster, consumer) = config_from_properties([
///     ("bootstrap.servers", "k1:9092,k2:9092"),
///     ("client.id", "billing-1"),
///     ("group.id", "billing"),
///     ("fetch.max.wait.ms", "100"),
/// ])?;
/// assert_eq!(cluster.bootstrap_servers.len(), 2);
/// assert_eq!(consumer.group_id.as_deref(), Some("billing"));
/// # Ok(())
/// # }
/// ```
pub fn config_from_properties<I, K, V>(properties: I) -> Result<(ClusterConfig, ConsumerConfig)>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut consumer = ConsumerConfig::default();
    let mut cluster_properties = Vec::new();
    for (key, value) in properties {
        let (key, value) = (key.as_ref().trim(), value.as_ref());
        if consumer.set_property(key, value)? {
            continue;
        }
        if !ClusterConfig::is_property(key) {
            return Err(Error::Config {
                message: format!("unknown consumer property {key}"),
            });
        }
        cluster_properties.push((key.to_owned(), value.to_owned()));
    }
    consumer.validate()?;
    let cluster = ClusterConfig::from_properties(cluster_properties)?;
    if cluster.bootstrap_servers.is_empty() {
        return Err(Error::Config {
            message: "bootstrap.servers is missing".into(),
        });
    }
    Ok((cluster, consumer))
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "a non-negative whole number"))
}

fn invalid(key: &str, value: &str, expected: &str) -> Error {
    Error::Config {
        message: format!("{key} {value:?}: expected {expected}"),
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
        assert_eq!(c.group_id, None);
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
            ("enable.auto.commit", "false"),
        ])
        .unwrap();
        assert_eq!(c.group_id.as_deref(), Some("g"));
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
        let err = ConsumerConfig::from_properties([("enable.auto.commit", "true")]).unwrap_err();
        assert!(err.to_string().contains("enable.auto.commit"), "{err}");
        let err = ConsumerConfig::from_properties([("fetch.max.bytes", "0")]).unwrap_err();
        assert!(err.to_string().contains("fetch.max.bytes"), "{err}");
    }

    #[test]
    fn one_list_splits_into_cluster_and_consumer_settings() {
        let (cluster, consumer) = config_from_properties([
            ("bootstrap.servers", "a:1, b:2"),
            ("metadata.max.age.ms", "1500"),
            ("reconnect.backoff.ms", "5"),
            ("reconnect.backoff.max.ms", "50"),
            ("client.id", "svc"),
            ("request.timeout.ms", "2500"),
            ("group.id", "g"),
            ("isolation.level", "read_committed"),
        ])
        .unwrap();
        assert_eq!(cluster.bootstrap_servers, vec!["a:1", "b:2"]);
        assert_eq!(cluster.metadata_max_age, Duration::from_millis(1500));
        assert_eq!(cluster.reconnect_backoff, Duration::from_millis(5));
        assert_eq!(cluster.reconnect_backoff_max, Duration::from_millis(50));
        assert_eq!(cluster.connection.client_id.as_deref(), Some("svc"));
        assert_eq!(
            cluster.connection.request_timeout,
            Duration::from_millis(2500)
        );
        assert_eq!(consumer.group_id.as_deref(), Some("g"));
        assert_eq!(consumer.isolation_level, IsolationLevel::ReadCommitted);

        let err =
            config_from_properties([("bootstrap.servers", "a:1"), ("acks", "all")]).unwrap_err();
        assert!(err.to_string().contains("acks"), "{err}");
        let err = config_from_properties([("group.id", "g")]).unwrap_err();
        assert!(err.to_string().contains("bootstrap.servers"), "{err}");
        let err =
            config_from_properties([("bootstrap.servers", "a:1"), ("metadata.max.age.ms", "x")])
                .unwrap_err();
        assert!(err.to_string().contains("metadata.max.age.ms"), "{err}");
    }
}
