//! Producer settings, named and defaulted as in the Java client.

use std::time::Duration;

use kbus_protocol::compression::Compression;

use super::partitioner::Partitioner;
use crate::config::{boolean, millis, number, Settings};
use crate::error::{Error, Result};

/// How many replicas must have a record before the broker acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: the broker sends no answer; a delivery resolves once the request is written, with
    /// offset -1.
    None,
    /// `acks=1`: the leader has written it.
    Leader,
    /// `acks=all` (or -1): every in-sync replica has it.
    All,
}

impl Acks {
    /// The value sent in ProduceRequest.acks.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Settings of a [`Producer`](super::Producer).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `acks` (default all).
    pub acks: Acks,
    /// `linger.ms`: how long a batch waits for more records before it is sent (default 5 ms).
    pub linger: Duration,
    /// `batch.size`: bytes of records in one batch before it is sent without waiting (16 KiB).
    /// With compression, the bytes the batch is expected to weigh compressed (learnt per topic
    /// from its batches, as the Java client does), never more than `max.request.size`
    /// uncompressed.
    pub batch_size: usize,
    /// `buffer.memory`: bytes of records waiting to be sent or acknowledged; `send` waits while it
    /// is full (32 MiB).
    pub buffer_memory: usize,
    /// `max.request.size`: the largest record (and ProduceRequest) sent (1 MiB).
    pub max_request_size: usize,
    /// `compression.type` (default none).
    pub compression: Compression,
    /// `compression.gzip.level` (KIP-390; librdkafka's `compression.level`): gzip's level, 1
    /// (fastest) to 9 (smallest); `None` (-1) is deflate's default, 6. lz4 and zstd compress at
    /// one level here.
    pub compression_level: Option<u32>,
    /// `max.in.flight.requests.per.connection` (default 5).
    pub max_in_flight: usize,
    /// `retries` (default unlimited within `delivery.timeout.ms`).
    pub retries: u32,
    /// `retry.backoff.ms` (100 ms).
    pub retry_backoff: Duration,
    /// `delivery.timeout.ms`: time from `send` to the end of the last retry (120 s).
    pub delivery_timeout: Duration,
    /// `request.timeout.ms` as the broker's Produce timeout (30 s).
    pub request_timeout: Duration,
    /// `enable.idempotence`: `None` turns it on when acks=all and the brokers support
    /// InitProducerId, off otherwise; `Some(true)` makes its absence an error.
    pub enable_idempotence: Option<bool>,
    /// `partitioner`: placement of keyed records (default Java's murmur2).
    pub partitioner: Partitioner,
    /// `max.block.ms`: how long `send` waits for a topic's metadata (60 s).
    pub max_block: Duration,
    /// `allow.auto.create.topics`: metadata requests for a topic not known yet let the broker
    /// create it, when the broker is configured to (`auto.create.topics.enable`). Default true, as
    /// in Java.
    pub allow_auto_create_topics: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 16 * 1024,
            buffer_memory: 32 * 1024 * 1024,
            max_request_size: 1024 * 1024,
            compression: Compression::None,
            compression_level: None,
            max_in_flight: 5,
            retries: u32::MAX,
            retry_backoff: Duration::from_millis(100),
            delivery_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            enable_idempotence: None,
            partitioner: Partitioner::Murmur2,
            max_block: Duration::from_secs(60),
            allow_auto_create_topics: true,
        }
    }
}

impl Settings for ProducerConfig {
    /// Applies one property by its Java name (librdkafka's where it differs): `acks`, `linger.ms`,
    /// `batch.size`, `buffer.memory`, `max.request.size`, `compression.type`,
    /// `compression.gzip.level`, `max.in.flight.requests.per.connection`, `retries`,
    /// `retry.backoff.ms`, `delivery.timeout.ms`, `request.timeout.ms` (also the connection's),
    /// `max.block.ms`, `allow.auto.create.topics`, `enable.idempotence`, `partitioner`.
    fn set_property(&mut self, key: &str, value: &str) -> Result<bool> {
        match key.trim() {
            "acks" | "request.required.acks" => {
                self.acks = match value.trim() {
                    "0" => Acks::None,
                    "1" => Acks::Leader,
                    "all" | "-1" => Acks::All,
                    other => {
                        return Err(Error::Config {
                            message: format!("acks: {other:?} is not 0, 1, all or -1"),
                        })
                    }
                }
            }
            "linger.ms" | "queue.buffering.max.ms" => self.linger = millis(key, value)?,
            "batch.size" => self.batch_size = number(key, value)?,
            "buffer.memory" => self.buffer_memory = number(key, value)?,
            "max.request.size" | "message.max.bytes" => self.max_request_size = number(key, value)?,
            "compression.type" | "compression.codec" => {
                let name = value.trim();
                self.compression = Compression::from_name(name).ok_or_else(|| Error::Config {
                    message: format!("compression.type: unknown codec {name:?}"),
                })?;
            }
            "compression.gzip.level" | "compression.level" => {
                let level: i32 = number(key, value)?;
                self.compression_level = match level {
                    -1 => None,
                    1..=9 => Some(level as u32),
                    other => {
                        return Err(Error::Config {
                            message: format!(
                                "{}: {other} is not a gzip level (1 to 9, or -1 for the default)",
                                key.trim()
                            ),
                        })
                    }
                };
            }
            "compression.lz4.level" | "compression.zstd.level" => {
                return Err(Error::Config {
                    message: format!(
                        "{}: not supported; lz4 and zstd compress at one level in kbus",
                        key.trim()
                    ),
                })
            }
            "max.in.flight.requests.per.connection" | "max.in.flight" => {
                self.max_in_flight = number::<usize>(key, value)?.max(1)
            }
            "retries" | "message.send.max.retries" => self.retries = number(key, value)?,
            "retry.backoff.ms" => self.retry_backoff = millis(key, value)?,
            "delivery.timeout.ms" | "message.timeout.ms" => {
                self.delivery_timeout = millis(key, value)?
            }
            "request.timeout.ms" => self.request_timeout = millis(key, value)?,
            "max.block.ms" => self.max_block = millis(key, value)?,
            "allow.auto.create.topics" => self.allow_auto_create_topics = boolean(key, value)?,
            "enable.idempotence" => self.enable_idempotence = Some(boolean(key, value)?),
            "partitioner" => {
                self.partitioner =
                    Partitioner::parse(value.trim()).ok_or_else(|| Error::Config {
                        message: format!(
                            "partitioner: {value:?} is not murmur2_random or consistent_random"
                        ),
                    })?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks settings that only make sense together.
    fn finish(&mut self) -> Result<()> {
        if self.enable_idempotence == Some(true) && self.acks != Acks::All {
            return Err(Error::Config {
                message: "enable.idempotence=true needs acks=all".into(),
            });
        }
        if self.enable_idempotence == Some(true) && self.max_in_flight > 5 {
            return Err(Error::Config {
                message: "enable.idempotence=true needs max.in.flight.requests.per.connection <= 5"
                    .into(),
            });
        }
        if self.batch_size == 0 || self.buffer_memory < self.batch_size {
            return Err(Error::Config {
                message: format!(
                    "buffer.memory ({}) must hold at least one batch.size ({})",
                    self.buffer_memory, self.batch_size
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_names_are_read() {
        let mut c = ProducerConfig::default();
        for (k, v) in [
            ("acks", "1"),
            ("linger.ms", "20"),
            ("batch.size", "65536"),
            ("compression.type", "gzip"),
            ("enable.idempotence", "false"),
            ("partitioner", "consistent_random"),
        ] {
            assert!(c.set_property(k, v).unwrap(), "{k}");
        }
        assert_eq!(c.acks, Acks::Leader);
        assert_eq!(c.linger, Duration::from_millis(20));
        assert_eq!(c.batch_size, 65536);
        assert_eq!(c.compression, Compression::Gzip);
        assert_eq!(c.enable_idempotence, Some(false));
        assert_eq!(c.partitioner, Partitioner::ConsistentRandom);
        assert!(!c.set_property("bootstrap.servers", "x:1").unwrap());
        // The producer's request timeout is the connections' too: both read it.
        assert!(c.set_property("request.timeout.ms", "5000").unwrap());
    }

    #[test]
    fn gzip_levels_are_read_and_other_codecs_levels_refused() {
        let mut c = ProducerConfig::default();
        assert!(c.set_property("compression.gzip.level", "1").unwrap());
        assert_eq!(c.compression_level, Some(1));
        assert!(c.set_property("compression.level", "9").unwrap());
        assert_eq!(c.compression_level, Some(9));
        assert!(c.set_property("compression.gzip.level", "-1").unwrap());
        assert_eq!(c.compression_level, None);
        for bad in ["0", "10", "fast"] {
            let e = c
                .set_property("compression.gzip.level", bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("compression.gzip.level"), "{e}");
        }
        let e = c
            .set_property("compression.zstd.level", "3")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("compression.zstd.level") && e.contains("one level"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let mut c = ProducerConfig::default();
        let e = c.set_property("acks", "2").unwrap_err().to_string();
        assert!(e.contains("acks"), "{e}");
        let e = c.set_property("linger.ms", "soon").unwrap_err().to_string();
        assert!(e.contains("linger.ms"), "{e}");
        let e = c
            .set_property("compression.type", "brotli")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("compression.type") && e.contains("brotli"),
            "{e}"
        );
        assert!(c.set_property("compression.codec", " zstd ").unwrap());
        assert_eq!(c.compression, Compression::Zstd);
        c.acks = Acks::Leader;
        c.enable_idempotence = Some(true);
        assert!(c.finish().is_err());
    }
}
