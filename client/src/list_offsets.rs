//! ListOffsets: where a partition starts, where it ends, or where a timestamp falls in it, asked
//! of each partition's leader (one request per leader). The one place this request is built: the
//! admin client and the consumer (starting positions, `auto.offset.reset`) both use it.

use std::collections::{BTreeMap, HashMap};

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};

use crate::cluster::Cluster;
use crate::error::Error;
use crate::TopicPartition;

/// Which offset of a partition to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The first offset still in the log.
    Earliest,
    /// The offset the next record will get (the high watermark; the last stable offset under
    /// `read_committed`).
    Latest,
    /// The first offset whose timestamp is at or after this (milliseconds since the epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    /// The value ListOffsets carries for it.
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// An offset found, with the timestamp of its record (-1 when not applicable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub offset: i64,
    pub timestamp: i64,
}

/// What a lookup found: offsets by partition, and the errors of the partitions it did not find,
/// grouped by error.
#[derive(Debug, Default)]
pub(crate) struct Listed {
    /// The offsets found.
    pub offsets: HashMap<TopicPartition, Found>,
    /// The partitions not found, with why.
    pub errors: Vec<(Vec<TopicPartition>, Error)>,
}

/// Looks up `spec` of each partition at its leader, one request per leader, at `isolation` (0:
/// read_uncommitted, 1: read_committed). Errors that mean the leader moved are reported to the
/// cluster, so the next lookup refreshes metadata first.
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    partitions: &[(TopicPartition, OffsetSpec)],
    isolation: i8,
) -> Listed {
    let mut out = Listed::default();
    let mut by_leader: BTreeMap<i32, Vec<&(TopicPartition, OffsetSpec)>> = BTreeMap::new();
    for entry in partitions {
        match cluster.leader(&entry.0.topic, entry.0.partition).await {
            Ok((leader, _)) => by_leader.entry(leader).or_default().push(entry),
            Err(e) => {
                cluster.report(&e);
                out.errors.push((vec![entry.0.clone()], e));
            }
        }
    }
    for (leader, entries) in by_leader {
        let tps = || entries.iter().map(|(tp, _)| tp.clone()).collect::<Vec<_>>();
        let conn = match cluster.broker(leader).await {
            Ok(c) => c,
            Err(e) => {
                cluster.report(&e);
                out.errors.push((tps(), e));
                continue;
            }
        };
        let mut by_topic: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
        for (tp, spec) in &entries {
            by_topic
                .entry(&tp.topic)
                .or_default()
                .push(ListOffsetsPartition {
                    partition_index: tp.partition,
                    current_leader_epoch: -1,
                    timestamp: spec.wire(),
                    ..Default::default()
                });
        }
        let req = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: isolation,
            topics: by_topic
                .into_iter()
                .map(|(name, partitions)| ListOffsetsTopic {
                    name: name.into(),
                    partitions,
                    ..Default::default()
                })
                .collect(),
            timeout_ms: cluster.config().connection.request_timeout.as_millis() as i32,
            ..Default::default()
        };
        let resp = match conn.send(&req).await {
            Ok(r) => r,
            Err(e) => {
                cluster.report(&e);
                out.errors.push((tps(), e));
                continue;
            }
        };
        for t in resp.topics {
            for p in t.partitions {
                let tp = TopicPartition::new(t.name.clone(), p.partition_index);
                let code = ErrorCode(p.error_code);
                if code.is_err() {
                    cluster.report_code(code);
                    let error = Error::Partition {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        code,
                    };
                    out.errors.push((vec![tp], error));
                } else {
                    let found = Found {
                        offset: p.offset,
                        timestamp: p.timestamp,
                    };
                    out.offsets.insert(tp, found);
                }
            }
        }
    }
    out
}
