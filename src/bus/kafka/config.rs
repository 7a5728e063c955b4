//! [`KafkaEventBusConfig`]: eventsource-py's settings, with its names and defaults, plus kbus's
//! own (concurrency, ordering, commits, topic creation, an escape hatch for any client property).
//! Deserializable with serde, so it reads from TOML, JSON or the environment through whatever the
//! application uses; [`validate`](KafkaEventBusConfig::validate) names what is wrong.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::bus::error::BusError;
use crate::config::Properties;

/// The Kafka event bus's settings. Field names and defaults are eventsource-py 0.8's
/// (`KafkaEventBusConfig`); the fields after `shutdown_timeout` are kbus's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaEventBusConfig {
    /// Brokers to bootstrap from, comma-separated.
    pub bootstrap_servers: String,
    /// Topics are `{topic_prefix}.stream` and `{topic_prefix}.stream{dlq_topic_suffix}`.
    pub topic_prefix: String,
    /// The consumer group.
    pub consumer_group: String,
    /// This member's name (`client.id`); `{hostname}-{8 hex}` when not set.
    pub consumer_name: Option<String>,
    /// `acks`: `all`, `1` or `0`.
    pub acks: String,
    /// `compression.type`: `gzip`, `snappy`, `lz4`, `zstd`, or none.
    pub compression_type: Option<String>,
    /// `batch.size` in bytes.
    pub batch_size: usize,
    /// `linger.ms`.
    pub linger_ms: u64,
    /// Where a group without a committed offset starts: `earliest` or `latest`.
    pub auto_offset_reset: String,
    /// `session.timeout.ms`.
    pub session_timeout_ms: u64,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// `max.poll.interval.ms`.
    pub max_poll_interval_ms: u64,
    /// Retries of a failing event before it is dead-lettered.
    pub max_retries: u32,
    /// The first retry's delay, in seconds; doubled per retry.
    pub retry_base_delay: f64,
    /// The longest retry delay, in seconds.
    pub retry_max_delay: f64,
    /// Each delay varies by up to this fraction either way.
    pub retry_jitter: f64,
    /// Dead-letter events that keep failing (else they are dropped, counted and logged).
    pub enable_dlq: bool,
    /// The dead-letter topic's suffix.
    pub dlq_topic_suffix: String,
    /// The group reading the dead-letter topic (tools), when it should differ.
    pub dlq_consumer_group: Option<String>,
    /// Replays of one dead letter allowed before the guard refuses (unless forced).
    pub dlq_max_replay_attempts: u32,
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub security_protocol: String,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub sasl_mechanism: Option<String>,
    /// The SASL user.
    pub sasl_username: Option<String>,
    /// The SASL password.
    pub sasl_password: Option<String>,
    /// CA certificates (PEM) to trust instead of the system's.
    pub ssl_cafile: Option<String>,
    /// The client certificate (PEM), for mutual TLS.
    pub ssl_certfile: Option<String>,
    /// The client certificate's key (PEM).
    pub ssl_keyfile: Option<String>,
    /// Check that the broker's certificate names the host connected to.
    pub ssl_check_hostname: bool,
    /// Spans for publish, consume and dispatch, and trace context in headers.
    pub enable_tracing: bool,
    /// Metrics (the statistics are always kept).
    pub enable_metrics: bool,
    /// How long shutting down may take, in seconds.
    pub shutdown_timeout: f64,

    /// How long one handler call may run, in seconds; one that runs longer is cancelled (at its
    /// next await) and counts as a failure (`HandlerTimeout`): retried, then dead-lettered. `None`
    /// (the default, as in eventsource-py): no limit, and a handler that hangs holds its
    /// aggregate's later events until shutdown abandons it.
    pub handler_timeout: Option<f64>,
    /// Events handled at once per partition (of different aggregates): handlers stuck on one
    /// partition's events never take the places of another's.
    pub max_concurrency: usize,
    /// One event at a time per partition, whatever the aggregate.
    pub strict_ordering: bool,
    /// Events handed to the handlers' schedule and not finished, at most; beyond it, each
    /// partition over its share is paused until half its share is left. Batches of records still
    /// being read (at most four) come on top. The default (20,000) leaves each partition of a
    /// small topic room for more than one fetch of small events, so fetching goes on while
    /// handlers work; lower it for large events.
    pub max_in_flight_events: usize,
    /// Events queued by `publish_background` at most.
    pub publish_queue_size: usize,
    /// How often finished offsets are committed, in milliseconds.
    pub commit_interval_ms: u64,
    /// `partition.assignment.strategy`: `cooperative-sticky` by default; `roundrobin` lets kbus
    /// and eventsource-py members share a group.
    pub assignment_strategy: String,
    /// Create the topics when they are missing (else require them).
    pub create_topics: bool,
    /// Partitions of topics the bus creates.
    pub topic_partitions: i32,
    /// Replication factor of topics the bus creates (-1: the broker's default).
    pub topic_replication_factor: i16,
    /// Any client property (Java names), applied last.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaEventBusConfig {
    fn default() -> Self {
        KafkaEventBusConfig {
            bootstrap_servers: "localhost:9092".into(),
            topic_prefix: "events".into(),
            consumer_group: "default".into(),
            consumer_name: None,
            acks: "all".into(),
            compression_type: Some("gzip".into()),
            batch_size: 16_384,
            linger_ms: 5,
            auto_offset_reset: "earliest".into(),
            session_timeout_ms: 30_000,
            heartbeat_interval_ms: 10_000,
            max_poll_interval_ms: 300_000,
            max_retries: 3,
            retry_base_delay: 1.0,
            retry_max_delay: 60.0,
            retry_jitter: 0.1,
            enable_dlq: true,
            dlq_topic_suffix: ".dlq".into(),
            dlq_consumer_group: None,
            dlq_max_replay_attempts: 3,
            security_protocol: "PLAINTEXT".into(),
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            ssl_cafile: None,
            ssl_certfile: None,
            ssl_keyfile: None,
            ssl_check_hostname: true,
            enable_tracing: true,
            enable_metrics: true,
            shutdown_timeout: 30.0,
            handler_timeout: None,
            max_concurrency: 16,
            strict_ordering: false,
            max_in_flight_events: 20_000,
            publish_queue_size: 10_000,
            commit_interval_ms: 1000,
            assignment_strategy: "cooperative-sticky".into(),
            create_topics: true,
            topic_partitions: 6,
            topic_replication_factor: -1,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaEventBusConfig {
    /// The main topic.
    pub fn topic(&self) -> String {
        format!("{}.stream", self.topic_prefix)
    }

    /// The dead-letter topic.
    pub fn dlq_topic(&self) -> String {
        format!("{}.stream{}", self.topic_prefix, self.dlq_topic_suffix)
    }

    /// This member's name: `consumer_name`, or `{hostname}-{8 hex}`.
    pub fn member_name(&self) -> String {
        self.consumer_name.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "kbus".into());
            let id = crate::bus::new_uuid().simple().to_string();
            format!("{host}-{}", &id[..8])
        })
    }

    /// The delay before retry `attempt` (1 for the first), before jitter.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let base = self.retry_base_delay * 2f64.powi(attempt.saturating_sub(1).min(60) as i32);
        Duration::from_secs_f64(base.min(self.retry_max_delay).max(0.0))
    }

    /// How long one handler call may run, when limited.
    pub fn handler_timeout(&self) -> Option<Duration> {
        self.handler_timeout.map(Duration::from_secs_f64)
    }

    /// How long shutting down may take.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_timeout.max(0.0))
    }

    /// Checks the settings, naming the first that is wrong.
    pub fn validate(&self) -> Result<(), BusError> {
        let bad = |m: String| Err(BusError::Config(m));
        if self.bootstrap_servers.trim().is_empty() {
            return bad("bootstrap_servers is empty".into());
        }
        if self.topic_prefix.is_empty() || self.consumer_group.is_empty() {
            return bad("topic_prefix and consumer_group must not be empty".into());
        }
        let protocol = self.security_protocol.to_ascii_uppercase();
        if !["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"].contains(&protocol.as_str()) {
            return bad(format!(
                "security_protocol {:?}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                self.security_protocol
            ));
        }
        if protocol.starts_with("SASL")
            && (self.sasl_mechanism.is_none()
                || self.sasl_username.is_none()
                || self.sasl_password.is_none())
        {
            return bad(format!(
                "security_protocol {protocol} needs sasl_mechanism, sasl_username and sasl_password"
            ));
        }
        if let Some(m) = &self.sasl_mechanism {
            if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&m.as_str()) {
                return bad(format!(
                    "sasl_mechanism {m:?}: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                ));
            }
        }
        if self.ssl_certfile.is_some() != self.ssl_keyfile.is_some() {
            return bad(
                "ssl_certfile and ssl_keyfile go together (a client certificate needs its key)"
                    .into(),
            );
        }
        if self.retry_base_delay.is_nan() || self.retry_base_delay <= 0.0 {
            return bad(format!(
                "retry_base_delay must be above 0, not {}",
                self.retry_base_delay
            ));
        }
        if self.retry_max_delay.is_nan() || self.retry_max_delay < self.retry_base_delay {
            return bad(format!(
                "retry_max_delay ({}) must be at least retry_base_delay ({})",
                self.retry_max_delay, self.retry_base_delay
            ));
        }
        if !(0.0..=1.0).contains(&self.retry_jitter) {
            return bad(format!(
                "retry_jitter must be within 0 and 1, not {}",
                self.retry_jitter
            ));
        }
        if let Some(t) = self.handler_timeout {
            if t.is_nan() || t <= 0.0 || Duration::try_from_secs_f64(t).is_err() {
                return bad(format!("handler_timeout must be above 0 seconds, not {t}"));
            }
        }
        if self.max_concurrency == 0 || self.max_in_flight_events == 0 {
            return bad("max_concurrency and max_in_flight_events must be at least 1".into());
        }
        if !["earliest", "latest"].contains(&self.auto_offset_reset.as_str()) {
            return bad(format!(
                "auto_offset_reset {:?}: expected earliest or latest",
                self.auto_offset_reset
            ));
        }
        Ok(())
    }

    /// The client properties these settings stand for (Java names), `properties` last.
    pub fn client_properties(&self) -> Properties {
        let mut p: Vec<(String, String)> = vec![
            ("bootstrap.servers".into(), self.bootstrap_servers.clone()),
            ("acks".into(), self.acks.clone()),
            (
                "compression.type".into(),
                self.compression_type
                    .clone()
                    .unwrap_or_else(|| "none".into()),
            ),
            ("batch.size".into(), self.batch_size.to_string()),
            ("linger.ms".into(), self.linger_ms.to_string()),
            ("group.id".into(), self.consumer_group.clone()),
            ("auto.offset.reset".into(), self.auto_offset_reset.clone()),
            (
                "session.timeout.ms".into(),
                self.session_timeout_ms.to_string(),
            ),
            (
                "heartbeat.interval.ms".into(),
                self.heartbeat_interval_ms.to_string(),
            ),
            (
                "max.poll.interval.ms".into(),
                self.max_poll_interval_ms.to_string(),
            ),
            (
                "partition.assignment.strategy".into(),
                self.assignment_strategy.clone(),
            ),
            ("enable.auto.commit".into(), "false".into()),
            (
                "security.protocol".into(),
                self.security_protocol.to_ascii_uppercase(),
            ),
        ];
        let optional = [
            ("sasl.mechanism", &self.sasl_mechanism),
            ("sasl.username", &self.sasl_username),
            ("sasl.password", &self.sasl_password),
            ("ssl.ca.location", &self.ssl_cafile),
            ("ssl.certificate.location", &self.ssl_certfile),
            ("ssl.key.location", &self.ssl_keyfile),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                p.push((key.into(), v.clone()));
            }
        }
        if !self.ssl_check_hostname {
            p.push((
                "ssl.endpoint.identification.algorithm".into(),
                String::new(),
            ));
        }
        for (k, v) in &self.properties {
            p.retain(|(key, _)| key != k);
            p.push((k.clone(), v.clone()));
        }
        Properties::from_iter(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_eventsource_pys() {
        let c = KafkaEventBusConfig::default();
        assert_eq!(c.topic(), "events.stream");
        assert_eq!(c.dlq_topic(), "events.stream.dlq");
        assert_eq!(
            (c.max_retries, c.retry_base_delay, c.retry_max_delay),
            (3, 1.0, 60.0)
        );
        assert_eq!(c.compression_type.as_deref(), Some("gzip"));
        c.validate().unwrap();
        let name = c.member_name();
        assert_eq!(name.rsplit('-').next().unwrap().len(), 8, "{name}");
    }

    #[test]
    fn reads_from_json_with_defaults_and_refuses_unknown_fields() {
        let c: KafkaEventBusConfig = serde_json::from_str(
            r#"{"bootstrap_servers": "k1:9092", "topic_prefix": "orders", "max_retries": 5,
                "properties": {"linger.ms": "20"}}"#,
        )
        .unwrap();
        assert_eq!(c.topic(), "orders.stream");
        assert_eq!(c.max_retries, 5);
        assert_eq!(c.consumer_group, "default");
        let p = c.client_properties();
        assert_eq!(p.get("linger.ms"), Some("20"), "the escape hatch wins");
        assert_eq!(p.get("enable.auto.commit"), Some("false"));
        let e = serde_json::from_str::<KafkaEventBusConfig>(r#"{"max_retrys": 5}"#).unwrap_err();
        assert!(e.to_string().contains("max_retrys"), "{e}");
    }

    #[test]
    fn validation_names_what_is_wrong() {
        type Change = fn(&mut KafkaEventBusConfig);
        let cases: Vec<(Change, &str)> = vec![
            (
                |c| c.security_protocol = "SASL_SSL".into(),
                "sasl_mechanism",
            ),
            (|c| c.security_protocol = "TLS".into(), "security_protocol"),
            (|c| c.ssl_certfile = Some("c.pem".into()), "ssl_keyfile"),
            (|c| c.retry_base_delay = 0.0, "retry_base_delay"),
            (|c| c.retry_max_delay = 0.5, "retry_max_delay"),
            (|c| c.retry_jitter = 1.5, "retry_jitter"),
            (|c| c.auto_offset_reset = "none".into(), "auto_offset_reset"),
            (|c| c.max_concurrency = 0, "max_concurrency"),
            (|c| c.handler_timeout = Some(0.0), "handler_timeout"),
            (|c| c.handler_timeout = Some(f64::NAN), "handler_timeout"),
            (
                |c| {
                    c.security_protocol = "SASL_PLAINTEXT".into();
                    c.sasl_mechanism = Some("GSSAPI".into());
                    c.sasl_username = Some("u".into());
                    c.sasl_password = Some("p".into());
                },
                "sasl_mechanism",
            ),
        ];
        for (change, field) in cases {
            let mut c = KafkaEventBusConfig::default();
            change(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn security_settings_map_onto_the_client_properties() {
        let c = KafkaEventBusConfig {
            security_protocol: "sasl_ssl".into(),
            sasl_mechanism: Some("SCRAM-SHA-512".into()),
            sasl_username: Some("billing".into()),
            sasl_password: Some("secret".into()),
            ssl_cafile: Some("/ca.pem".into()),
            ssl_certfile: Some("/c.pem".into()),
            ssl_keyfile: Some("/c.key".into()),
            ssl_check_hostname: false,
            ..Default::default()
        };
        c.validate().unwrap();
        let p = c.client_properties();
        assert_eq!(p.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(p.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(p.get("ssl.key.location"), Some("/c.key"));
        assert_eq!(p.get("ssl.endpoint.identification.algorithm"), Some(""));
        p.check_known().unwrap();
    }

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let c = KafkaEventBusConfig {
            retry_base_delay: 0.5,
            retry_max_delay: 3.0,
            ..Default::default()
        };
        let delays: Vec<f64> = (1..=5).map(|a| c.retry_delay(a).as_secs_f64()).collect();
        assert_eq!(delays, [0.5, 1.0, 2.0, 3.0, 3.0]);
    }
}
