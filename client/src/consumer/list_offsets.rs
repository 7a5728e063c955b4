//! The earliest and latest offsets of partitions (ListOffsets, at each leader), where a partition
//! without a usable offset starts. A group's committed offsets are the group layer's
//! ([`crate::group::offsets`]).

use std::collections::BTreeMap;

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};

use super::config::IsolationLevel;
use super::job::{Listed, ResetTo};
use crate::cluster::Cluster;
use crate::error::Error;
use crate::TopicPartition;

/// Looks up the earliest or latest offset of each partition at its leader, one request per leader.
/// Errors that mean the leader moved are reported to the cluster, so the next lookup refreshes
/// metadata first.
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    partitions: &[(TopicPartition, ResetTo)],
    isolation: IsolationLevel,
) -> Listed {
    let mut out = Listed::default();
    let mut by_leader: BTreeMap<i32, Vec<&(TopicPartition, ResetTo)>> = BTreeMap::new();
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
        for (tp, to) in &entries {
            by_topic
                .entry(&tp.topic)
                .or_default()
                .push(ListOffsetsPartition {
                    partition_index: tp.partition,
                    current_leader_epoch: -1,
                    timestamp: match to {
                        ResetTo::Earliest => -2,
                        ResetTo::Latest => -1,
                    },
                    ..Default::default()
                });
        }
        let req = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: isolation.wire(),
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
                    out.offsets.insert(tp, p.offset);
                }
            }
        }
    }
    out
}
