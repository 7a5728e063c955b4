//! The dead-letter tools of [`KafkaEventBus`](super::KafkaEventBus): list, count, replay one
//! record (with eventsource-py's rules and guard), and replay what a filter picks, with a dry run.
//!
//! Reading the dead-letter topic uses a consumer of its own without a group: listing commits
//! nothing and moves nobody's offsets.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kbus_client::admin::{Admin, OffsetSpec};
use kbus_client::cluster::ClusterConfig;
use kbus_client::consumer::{Consumer, ConsumerConfig, ConsumerRecord, Event, OffsetReset};
use kbus_client::producer::{Producer, ProducerRecord};
use kbus_client::protocol::record::Header;
use kbus_client::{Settings, TopicPartition};

use crate::bus::dead_letter::replay_headers;
use crate::bus::error::BusError;
use crate::bus::event::RawEnvelope;
use crate::bus::time::Timestamp;
use crate::bus::wire;
use crate::config::Properties;

/// Where a listing starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DlqFrom {
    /// From the oldest dead letter kept.
    #[default]
    Beginning,
    /// From the first dead letter written at or after this time.
    Time(Timestamp),
    /// From this offset of this partition (that partition only).
    Offset {
        /// The partition.
        partition: i32,
        /// The first offset.
        offset: i64,
    },
}

/// Which dead letters a listing or a replay takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DlqFilter {
    /// Where to start.
    pub from: DlqFrom,
    /// Only dead letters written before this time.
    pub until: Option<Timestamp>,
    /// Only events of this type.
    pub event_type: Option<String>,
    /// Only failures of this error type (`dlq_error_type`).
    pub error_type: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
}

/// One dead letter, its headers read.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its partition in the dead-letter topic.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// The record's timestamp (milliseconds since the epoch).
    pub timestamp: i64,
    /// The record key (the aggregate id).
    pub key: Option<Bytes>,
    /// The record value (the event's JSON).
    pub value: Option<Bytes>,
    /// Every header, in order (values as text; `None` for null or non-UTF-8 ones).
    pub headers: Vec<(String, Option<String>)>,
    /// `dlq_reason`.
    pub reason: Option<String>,
    /// `dlq_error_type`.
    pub error_type: Option<String>,
    /// `dlq_error_message`.
    pub error_message: Option<String>,
    /// `dlq_retry_count`.
    pub retry_count: Option<u32>,
    /// `dlq_timestamp`.
    pub dead_lettered_at: Option<Timestamp>,
    /// `dlq_original_topic`, `dlq_original_partition`, `dlq_original_offset`.
    pub original: Option<(String, i32, i64)>,
    /// `dlq_consumer_group`.
    pub consumer_group: Option<String>,
    /// Replays so far (the first `dlq_replay_count`, 0 when absent).
    pub replay_count: u32,
    /// The event, or why it cannot be read.
    pub event: Result<RawEnvelope, String>,
    raw_headers: Vec<Header>,
}

impl DeadLetter {
    fn from_record(r: ConsumerRecord) -> DeadLetter {
        let headers: Vec<(String, Option<String>)> = r
            .headers
            .iter()
            .map(|h| {
                (
                    String::from_utf8_lossy(&h.key).into_owned(),
                    h.value_str().map(str::to_owned),
                )
            })
            .collect();
        // Like eventsource-py's listing, the last of a repeated name counts; the replay count is
        // the first, as its replay reads it.
        let last = |name: &str| {
            headers
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.clone())
        };
        let first = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.clone())
        };
        let original = match (
            last("dlq_original_topic"),
            last("dlq_original_partition").and_then(|p| p.parse().ok()),
            last("dlq_original_offset").and_then(|o| o.parse().ok()),
        ) {
            (Some(t), Some(p), Some(o)) => Some((t, p, o)),
            _ => None,
        };
        let event = wire::decode(
            r.value.as_deref().unwrap_or_default(),
            first("event_type").as_deref(),
        )
        .map_err(|e| e.to_string());
        DeadLetter {
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            reason: last("dlq_reason"),
            error_type: last("dlq_error_type"),
            error_message: last("dlq_error_message"),
            retry_count: last("dlq_retry_count").and_then(|n| n.parse().ok()),
            dead_lettered_at: last("dlq_timestamp").and_then(|t| Timestamp::parse(&t).ok()),
            original,
            consumer_group: last("dlq_consumer_group"),
            replay_count: first("dlq_replay_count")
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0),
            event,
            key: r.key,
            value: r.value,
            headers,
            raw_headers: r.headers,
        }
    }

    /// The event type, from the event or its header.
    pub fn event_type(&self) -> Option<&str> {
        match &self.event {
            Ok(e) => Some(&e.meta.event_type),
            Err(_) => self
                .headers
                .iter()
                .find(|(k, _)| k == "event_type")
                .and_then(|(_, v)| v.as_deref()),
        }
    }

    fn matches(&self, filter: &DlqFilter) -> bool {
        let written = Timestamp::from_unix_micros(self.timestamp.saturating_mul(1000));
        filter.until.is_none_or(|until| written < until)
            && filter
                .event_type
                .as_deref()
                .is_none_or(|t| self.event_type() == Some(t))
            && filter
                .error_type
                .as_deref()
                .is_none_or(|t| self.error_type.as_deref() == Some(t))
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Dead letters the filter picked, as (partition, offset).
    pub matched: Vec<(i32, i64)>,
    /// Those replayed (or, in a dry run, that would be).
    pub replayed: Vec<(i32, i64)>,
    /// Those the guard refused, with their replay counts.
    pub refused: Vec<(i32, i64, u32)>,
    /// True when nothing was published.
    pub dry_run: bool,
}

/// What the DLQ tools need from the bus.
pub(crate) struct DlqTools<'a> {
    pub properties: &'a Properties,
    pub dlq_topic: &'a str,
    pub topic: &'a str,
    pub producer: &'a Producer,
    pub max_replays: u32,
}

impl DlqTools<'_> {
    /// Dead letters the filter picks, oldest first per partition.
    pub async fn list(&self, filter: &DlqFilter) -> Result<Vec<DeadLetter>, BusError> {
        let admin = Admin::from_properties(self.properties).await?;
        let ends: BTreeMap<i32, i64> = admin
            .list_offsets(self.dlq_topic, &[], OffsetSpec::Latest)
            .await?
            .into_iter()
            .map(|p| (p.partition, p.offset))
            .collect();
        let starts: BTreeMap<i32, i64> = match &filter.from {
            DlqFrom::Beginning => admin
                .list_offsets(self.dlq_topic, &[], OffsetSpec::Earliest)
                .await?
                .into_iter()
                .map(|p| (p.partition, p.offset))
                .collect(),
            DlqFrom::Time(t) => admin
                .list_offsets(self.dlq_topic, &[], OffsetSpec::Timestamp(t.unix_millis()))
                .await?
                .into_iter()
                // No record at or after the time: nothing to read there.
                .map(|p| {
                    let end = ends.get(&p.partition).copied().unwrap_or(0);
                    (p.partition, if p.offset < 0 { end } else { p.offset })
                })
                .collect(),
            DlqFrom::Offset { partition, offset } => BTreeMap::from([(*partition, *offset)]),
        };
        let wanted: BTreeMap<i32, (i64, i64)> = starts
            .iter()
            .filter_map(|(p, s)| {
                let end = *ends.get(p)?;
                (*s < end).then_some((*p, (*s, end)))
            })
            .collect();
        let mut found = Vec::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        let mut consumer = self.reader().await?;
        let tps: Vec<TopicPartition> = wanted
            .keys()
            .map(|p| TopicPartition::new(self.dlq_topic, *p))
            .collect();
        consumer.assign(tps.clone())?;
        for tp in &tps {
            consumer.seek(tp, wanted[&tp.partition].0)?;
        }
        let mut left: HashMap<i32, i64> = wanted.iter().map(|(p, (_, end))| (*p, *end)).collect();
        let limit = filter.limit.unwrap_or(usize::MAX);
        while !left.is_empty() && found.len() < limit {
            match consumer.poll().await? {
                Event::Records(batch) => {
                    let p = batch.topic_partition.partition;
                    let Some(end) = left.get(&p).copied() else {
                        continue;
                    };
                    for record in batch.records {
                        if record.offset >= end {
                            break;
                        }
                        let letter = DeadLetter::from_record(record);
                        if letter.matches(filter) && found.len() < limit {
                            found.push(letter);
                        }
                    }
                    if batch.next_offset >= end {
                        left.remove(&p);
                    }
                }
                Event::Error(e) => tracing::warn!(error = %e, "reading dead letters: retrying"),
                _ => {}
            }
        }
        Ok(found)
    }

    /// Dead letters kept now (over every partition).
    pub async fn count(&self) -> Result<u64, BusError> {
        let admin = Admin::from_properties(self.properties).await?;
        let earliest = admin
            .list_offsets(self.dlq_topic, &[], OffsetSpec::Earliest)
            .await?;
        let latest = admin
            .list_offsets(self.dlq_topic, &[], OffsetSpec::Latest)
            .await?;
        Ok(latest
            .iter()
            .zip(&earliest)
            .map(|(l, e)| (l.offset - e.offset).max(0) as u64)
            .sum())
    }

    /// Replays the dead letter at `partition`/`offset`; returns its new replay count.
    pub async fn replay_one(
        &self,
        partition: i32,
        offset: i64,
        force: bool,
    ) -> Result<u32, BusError> {
        let filter = DlqFilter {
            from: DlqFrom::Offset { partition, offset },
            limit: Some(1),
            ..Default::default()
        };
        let letter = self
            .list(&filter)
            .await?
            .into_iter()
            .find(|l| l.offset == offset)
            .ok_or_else(|| {
                BusError::NotFound(format!(
                    "no dead letter at {}/{partition} offset {offset}",
                    self.dlq_topic
                ))
            })?;
        self.replay(&letter, force).await
    }

    /// Replays what `filter` picks (or says what it would, with `dry_run`).
    pub async fn replay_matching(
        &self,
        filter: &DlqFilter,
        force: bool,
        dry_run: bool,
    ) -> Result<ReplayReport, BusError> {
        let mut report = ReplayReport {
            dry_run,
            ..Default::default()
        };
        for letter in self.list(filter).await? {
            let at = (letter.partition, letter.offset);
            report.matched.push(at);
            if replay_headers(&letter.raw_headers, self.max_replays, force).is_err() {
                report.refused.push((at.0, at.1, letter.replay_count));
                continue;
            }
            if !dry_run {
                self.replay(&letter, force).await?;
            }
            report.replayed.push(at);
        }
        Ok(report)
    }

    /// Publishes `letter` to the main topic as a replay, and waits for the acknowledgement.
    async fn replay(&self, letter: &DeadLetter, force: bool) -> Result<u32, BusError> {
        let headers = replay_headers(&letter.raw_headers, self.max_replays, force)?;
        let mut record = ProducerRecord::new(self.topic.to_string());
        if let Some(key) = &letter.key {
            record = record.key(key.clone());
        }
        if let Some(value) = &letter.value {
            record = record.value(value.clone());
        }
        record.headers = headers;
        self.producer.send(record).await?.await?;
        tracing::info!(
            partition = letter.partition,
            offset = letter.offset,
            "dead letter replayed"
        );
        Ok(letter.replay_count + 1)
    }

    /// A consumer without a group.
    async fn reader(&self) -> Result<Consumer, BusError> {
        let cluster = ClusterConfig::read(self.properties)?;
        let config = ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..Default::default()
        };
        Ok(Consumer::connect(cluster, config).await?)
    }
}
