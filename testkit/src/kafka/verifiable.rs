//! The JSON lines Kafka's `VerifiableConsumer` and `VerifiableProducer` print, one event per line
//! (made for cross-checking clients: every rebalance, record, commit and acknowledgement is
//! visible).

use serde_json::Value;

/// A topic, partition and offset (an offset to commit, or a record's offset).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartitionOffset {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Offset (for commits: the next offset to read).
    pub offset: i64,
}

/// One line of `VerifiableConsumer` (or `VerifiableProducer`) output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerEvent {
    /// `startup_complete`: the consumer runs.
    Started,
    /// `partitions_assigned`: a rebalance gave it these partitions (eager protocols: its whole
    /// assignment; cooperative ones: the additions).
    Assigned(Vec<(String, i32)>),
    /// `partitions_revoked`: these partitions were taken away (it committed first).
    Revoked(Vec<(String, i32)>),
    /// `partitions_lost`: taken away without a chance to commit.
    Lost(Vec<(String, i32)>),
    /// `record_data` (with `--verbose`): one record consumed.
    Record {
        /// Where it was read.
        at: TopicPartitionOffset,
        /// Its key as text, `None` for a null key.
        key: Option<String>,
        /// Its value as text, `None` for a null value.
        value: Option<String>,
    },
    /// `records_consumed`: a poll returned `count` records.
    Consumed {
        /// How many.
        count: u64,
    },
    /// `offsets_committed`: a commit of these next-offsets finished.
    Committed {
        /// The offsets committed.
        offsets: Vec<TopicPartitionOffset>,
        /// Whether the coordinator accepted them.
        success: bool,
        /// The error, when it did not.
        error: Option<String>,
    },
    /// `producer_send_success` (VerifiableProducer): a record was acknowledged.
    Sent {
        /// Where it was written.
        at: TopicPartitionOffset,
        /// Its key as text.
        key: Option<String>,
        /// Its value as text.
        value: Option<String>,
    },
    /// `shutdown_complete`: the tool is done.
    ShutdownComplete,
    /// Any other event, by name.
    Other(String),
}

fn partitions(v: &Value) -> Vec<(String, i32)> {
    v["partitions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some((
                        p["topic"].as_str()?.to_owned(),
                        i32::try_from(p["partition"].as_i64()?).ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn at(v: &Value) -> Option<TopicPartitionOffset> {
    Some(TopicPartitionOffset {
        topic: v["topic"].as_str()?.to_owned(),
        partition: i32::try_from(v["partition"].as_i64()?).ok()?,
        offset: v["offset"].as_i64()?,
    })
}

impl ConsumerEvent {
    /// Parses one output line; `None` for a line that is not such an event.
    pub fn parse(line: &str) -> Option<ConsumerEvent> {
        let v: Value = serde_json::from_str(line).ok()?;
        let name = v["name"].as_str()?;
        Some(match name {
            "startup_complete" => ConsumerEvent::Started,
            "partitions_assigned" => ConsumerEvent::Assigned(partitions(&v)),
            "partitions_revoked" => ConsumerEvent::Revoked(partitions(&v)),
            "partitions_lost" => ConsumerEvent::Lost(partitions(&v)),
            "record_data" => ConsumerEvent::Record {
                at: at(&v)?,
                key: text(&v["key"]),
                value: text(&v["value"]),
            },
            "records_consumed" => ConsumerEvent::Consumed {
                count: v["count"].as_u64()?,
            },
            "offsets_committed" => ConsumerEvent::Committed {
                offsets: v["offsets"]
                    .as_array()
                    .map(|a| a.iter().filter_map(at).collect())
                    .unwrap_or_default(),
                success: v["success"].as_bool().unwrap_or(false),
                error: text(&v["error"]),
            },
            "producer_send_success" => ConsumerEvent::Sent {
                at: at(&v)?,
                key: text(&v["key"]),
                value: text(&v["value"]),
            },
            "shutdown_complete" => ConsumerEvent::ShutdownComplete,
            other => ConsumerEvent::Other(other.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_events_the_tools_print() {
        let assigned = r#"{"timestamp":1,"name":"partitions_assigned","partitions":[{"topic":"t1","partition":0}]}"#;
        assert_eq!(
            ConsumerEvent::parse(assigned),
            Some(ConsumerEvent::Assigned(vec![("t1".into(), 0)]))
        );
        let record = r#"{"timestamp":1,"name":"record_data","key":null,"value":"4","topic":"t1","partition":0,"offset":4}"#;
        assert_eq!(
            ConsumerEvent::parse(record),
            Some(ConsumerEvent::Record {
                at: TopicPartitionOffset {
                    topic: "t1".into(),
                    partition: 0,
                    offset: 4
                },
                key: None,
                value: Some("4".into())
            })
        );
        let commit = r#"{"timestamp":1,"name":"offsets_committed","offsets":[{"topic":"t1","partition":0,"offset":5}],"success":true}"#;
        assert!(matches!(
            ConsumerEvent::parse(commit),
            Some(ConsumerEvent::Committed { success: true, ref offsets, .. }) if offsets.len() == 1
        ));
        assert_eq!(ConsumerEvent::parse("[main] INFO something"), None);
    }
}
