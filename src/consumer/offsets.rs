//! Offsets kept by the cluster: a group's committed offsets (OffsetFetch, OffsetCommit, at the
//! group's coordinator) and the earliest/latest offsets of partitions (ListOffsets, at each leader).
//!
//! Commits carry the committer's group generation, so the group layer can have the coordinator
//! fence commits from a member of an older generation; a consumer outside any group commits with
//! [`Generation::none`] (generation -1, empty member id), Kafka's "simple consumer" commit.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kbus_protocol::messages::offset_commit::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kbus_protocol::messages::offset_fetch::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchResponseTopic,
};
use kbus_protocol::ApiKey;

use super::config::IsolationLevel;
use super::positions::ResetTo;
use crate::cluster::{Backoff, Cluster, CoordinatorType};
use crate::error::{Error, Result};
use crate::TopicPartition;

/// Who commits offsets: a member of a group generation, or nobody in particular.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The group generation (classic protocol) or member epoch; -1 outside a group.
    pub generation_id: i32,
    /// The member id the coordinator gave; empty outside a group.
    pub member_id: String,
    /// The static member id (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
}

impl Generation {
    /// No group membership: generation -1, empty member id (a "simple" consumer's commit, which
    /// the coordinator accepts only while the group has no active members).
    pub fn none() -> Self {
        Generation {
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

/// Codes after which asking the coordinator again soon can succeed; the first two mean it moved.
fn coordinator_moved(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE
    )
}

fn coordinator_busy(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS | ErrorCode::UNSTABLE_OFFSET_COMMIT
    )
}

/// Runs `attempt` against the group's coordinator until it succeeds, fails for good, or the
/// request timeout runs out; a moved coordinator or a lost connection makes it look the
/// coordinator up again.
async fn with_coordinator<T, F, Fut>(cluster: &Cluster, group_id: &str, mut attempt: F) -> Result<T>
where
    F: FnMut(std::sync::Arc<crate::net::Connection>) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = Instant::now() + cluster.config().connection.request_timeout;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    loop {
        let result = match cluster.coordinator(CoordinatorType::Group, group_id).await {
            Ok((_, conn)) => attempt(conn).await,
            Err(e) => Err(e),
        };
        let retry = match &result {
            Ok(_) => return result,
            Err(Error::Broker { code, .. }) if coordinator_moved(*code) => {
                cluster.invalidate_coordinator(CoordinatorType::Group, group_id);
                true
            }
            Err(Error::Broker { code, .. }) => coordinator_busy(*code),
            Err(e) if e.is_retriable() => {
                cluster.invalidate_coordinator(CoordinatorType::Group, group_id);
                true
            }
            Err(_) => false,
        };
        if !retry || Instant::now() >= deadline {
            return result;
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

fn broker_error(broker: &str, api: ApiKey, code: ErrorCode, message: Option<String>) -> Error {
    Error::Broker {
        broker: broker.into(),
        api,
        code,
        message,
    }
}

/// The committed offsets of `partitions` in group `group_id`: `None` for a partition without one.
///
/// With `require_stable` (read committed), the coordinator answers UNSTABLE_OFFSET_COMMIT while a
/// transactional commit is pending, and the lookup is retried (KIP-447). The request carries no
/// member id: a classic-protocol member reads its group's offsets like anyone else.
pub(crate) async fn fetch_committed(
    cluster: &Cluster,
    group_id: &str,
    partitions: &[TopicPartition],
    require_stable: bool,
) -> Result<HashMap<TopicPartition, Option<i64>>> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    let topics: Vec<OffsetFetchRequestTopic> = by_topic
        .into_iter()
        .map(|(name, partition_indexes)| OffsetFetchRequestTopic {
            name: name.into(),
            partition_indexes,
            ..Default::default()
        })
        .collect();
    with_coordinator(cluster, group_id, |conn| {
        let topics = topics.clone();
        async move {
            let version =
                conn.version(ApiKey::OffsetFetch)
                    .ok_or_else(|| Error::UnsupportedApi {
                        broker: conn.broker().into(),
                        api: ApiKey::OffsetFetch,
                    })?;
            let req = OffsetFetchRequest {
                group_id: group_id.into(),
                topics: Some(topics.clone()),
                groups: vec![OffsetFetchRequestGroup {
                    group_id: group_id.into(),
                    topics: Some(topics),
                    ..Default::default()
                }],
                require_stable,
                ..Default::default()
            };
            let resp = conn.send_at(&req, version).await?;
            // Version 8 and later answer per group; earlier versions at the top level.
            let (code, topics) = if version >= 8 {
                let group = resp.groups.into_iter().find(|g| g.group_id == group_id);
                match group {
                    Some(g) => (g.error_code, g.topics),
                    None => (ErrorCode::UNKNOWN_SERVER_ERROR.0, Vec::new()),
                }
            } else {
                (resp.error_code, resp.topics)
            };
            let code = ErrorCode(code);
            if code.is_err() {
                return Err(broker_error(conn.broker(), ApiKey::OffsetFetch, code, None));
            }
            committed_offsets(conn.broker(), topics)
        }
    })
    .await
}

fn committed_offsets(
    broker: &str,
    topics: Vec<OffsetFetchResponseTopic>,
) -> Result<HashMap<TopicPartition, Option<i64>>> {
    let mut out = HashMap::new();
    for t in topics {
        for p in t.partitions {
            let code = ErrorCode(p.error_code);
            if code.is_err() {
                return Err(broker_error(
                    broker,
                    ApiKey::OffsetFetch,
                    code,
                    Some(format!("{}/{}", t.name, p.partition_index)),
                ));
            }
            let offset = (p.committed_offset >= 0).then_some(p.committed_offset);
            out.insert(
                TopicPartition::new(t.name.clone(), p.partition_index),
                offset,
            );
        }
    }
    Ok(out)
}

/// Commits `offsets` (each the offset of the next record to consume) for group `group_id`, as
/// `generation`. Fails with the first partition the coordinator refused (ILLEGAL_GENERATION,
/// UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, ...), naming it.
pub(crate) async fn commit(
    cluster: &Cluster,
    group_id: &str,
    generation: &Generation,
    offsets: &[(TopicPartition, i64)],
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (tp, offset) in offsets {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push(OffsetCommitRequestPartition {
                partition_index: tp.partition,
                committed_offset: *offset,
                committed_leader_epoch: -1,
                committed_metadata: Some(String::new()),
                ..Default::default()
            });
    }
    let req = OffsetCommitRequest {
        group_id: group_id.into(),
        generation_id: generation.generation_id,
        member_id: generation.member_id.clone(),
        group_instance_id: generation.group_instance_id.clone(),
        retention_time_ms: -1,
        topics: by_topic
            .into_iter()
            .map(|(name, partitions)| OffsetCommitRequestTopic {
                name: name.into(),
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    with_coordinator(cluster, group_id, |conn| {
        let req = &req;
        async move {
            let resp = conn.send(req).await?;
            for t in resp.topics {
                for p in t.partitions {
                    let code = ErrorCode(p.error_code);
                    if code.is_err() {
                        return Err(broker_error(
                            conn.broker(),
                            ApiKey::OffsetCommit,
                            code,
                            Some(format!("{}/{}", t.name, p.partition_index)),
                        ));
                    }
                }
            }
            Ok(())
        }
    })
    .await
}

/// What a ListOffsets lookup found: offsets by partition, and the errors of the partitions it did
/// not find, grouped by error.
#[derive(Debug, Default)]
pub(crate) struct Listed {
    /// The offsets found.
    pub offsets: HashMap<TopicPartition, i64>,
    /// The partitions not found, with why.
    pub errors: Vec<(Vec<TopicPartition>, Error)>,
}

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
