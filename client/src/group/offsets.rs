//! A group's committed offsets at its coordinator, for the consumer and the group layer alike:
//! OffsetCommit, fenced by the committing member's [`Generation`], and OffsetFetch in both its
//! layouts (one group per request up to v7, a batch of groups from v8).
//!
//! Both retry within `request.timeout.ms` while the coordinator moves, loads or cannot be reached
//! (looking it up again when it moved), and stop at the first answer retrying cannot change. A
//! commit refused because the member's generation is no longer the group's (ILLEGAL_GENERATION,
//! UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID) fails with an error naming the
//! group and the generation ([`is_commit_fenced`] recognises it): the partitions may belong to
//! another member by now, so the application must not retry with the same generation.
//!
//! A consumer outside any group generation commits as [`Generation::none`] (generation -1, empty
//! member id), Kafka's "simple consumer" commit, which the coordinator accepts while the group has
//! no active members.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::offset_commit::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kbus_protocol::messages::offset_fetch::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchResponseTopic,
};
use kbus_protocol::messages::{OffsetCommitRequest, OffsetFetchRequest};
use kbus_protocol::ApiKey;

use crate::cluster::{Backoff, Cluster, CoordinatorType};
use crate::error::{Error, Result};
use crate::net::Connection;
use crate::TopicPartition;

/// The first OffsetFetch version that asks about a batch of groups.
const OFFSET_FETCH_BATCHED_FROM: i16 = 8;

/// Who commits offsets: a member of a group generation, or nobody in particular.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The group generation (classic protocol); -1 outside a group.
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

/// Codes that refuse a commit because the committer is not (or no longer) a member of the group's
/// current generation.
fn fencing(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ILLEGAL_GENERATION
            | ErrorCode::UNKNOWN_MEMBER_ID
            | ErrorCode::REBALANCE_IN_PROGRESS
            | ErrorCode::FENCED_INSTANCE_ID
    )
}

/// True when `err` is a commit refused by generation fencing (see the module documentation).
pub fn is_commit_fenced(err: &Error) -> bool {
    matches!(
        err,
        Error::Broker { api: ApiKey::OffsetCommit, code, .. } if fencing(*code)
    )
}

/// The error of a commit refused with fencing `code`.
fn fenced(broker: &str, group_id: &str, who: &Generation, code: ErrorCode) -> Error {
    let why = match code {
        ErrorCode::REBALANCE_IN_PROGRESS => "the group is rebalancing".to_string(),
        ErrorCode::FENCED_INSTANCE_ID => format!(
            "another member uses group.instance.id {:?}",
            who.group_instance_id.as_deref().unwrap_or_default()
        ),
        _ => "the group has moved on to another generation".to_string(),
    };
    Error::Broker {
        broker: broker.into(),
        api: ApiKey::OffsetCommit,
        code,
        message: Some(format!(
            "commit to group {group_id} fenced: generation {} of member {:?} is not current \
             ({why}); its partitions may belong to another member now",
            who.generation_id, who.member_id
        )),
    }
}

/// Runs `attempt` against the coordinator of `group_id` until it succeeds, fails in a way retrying
/// cannot change, or `request.timeout.ms` has passed.
async fn at_coordinator<T, F, Fut>(cluster: &Cluster, group_id: &str, mut attempt: F) -> Result<T>
where
    F: FnMut(Arc<Connection>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let give_up = Instant::now() + cluster.config().connection.request_timeout;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    loop {
        let outcome = match cluster.coordinator(CoordinatorType::Group, group_id).await {
            Ok((_, conn)) => attempt(conn).await,
            Err(e) => Err(e),
        };
        let err = match outcome {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let retry = match &err {
            Error::Broker { code, .. }
                if matches!(
                    *code,
                    ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE
                ) =>
            {
                cluster.invalidate_coordinator(CoordinatorType::Group, group_id);
                true
            }
            Error::Broker { code, .. } => code.is_retriable(),
            e if e.is_retriable() => {
                // The connection failed or stayed silent: the coordinator may have moved.
                cluster.report(e);
                cluster.invalidate_coordinator(CoordinatorType::Group, group_id);
                true
            }
            _ => false,
        };
        if !retry || Instant::now() >= give_up {
            return Err(err);
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// A committed offset with the metadata string committed beside it (Java's
/// `OffsetAndMetadata`). The broker keeps the string with the offset (up to its
/// `offset.metadata.max.bytes`, 4096 by default) and returns it with the offset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetAndMetadata {
    /// The offset of the next record to consume.
    pub offset: i64,
    /// Free text kept with it.
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// `offset` with empty metadata.
    pub fn new(offset: i64) -> Self {
        OffsetAndMetadata {
            offset,
            metadata: String::new(),
        }
    }
}

/// Commits `offsets` (each the offset of the next record to consume) to group `group_id` as
/// `who`. Fails with the first partition the coordinator refused, naming it; fencing wins over
/// other refusals, as it says the most.
pub(crate) async fn commit(
    cluster: &Cluster,
    group_id: &str,
    who: &Generation,
    offsets: &[(TopicPartition, i64)],
) -> Result<()> {
    let entries: Vec<(TopicPartition, OffsetAndMetadata)> = offsets
        .iter()
        .map(|(tp, offset)| (tp.clone(), OffsetAndMetadata::new(*offset)))
        .collect();
    commit_with_metadata(cluster, group_id, who, &entries).await
}

/// Like [`commit`], with a metadata string per partition.
pub(crate) async fn commit_with_metadata(
    cluster: &Cluster,
    group_id: &str,
    who: &Generation,
    offsets: &[(TopicPartition, OffsetAndMetadata)],
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (tp, entry) in offsets {
        topics
            .entry(tp.topic.as_str())
            .or_default()
            .push(OffsetCommitRequestPartition {
                partition_index: tp.partition,
                committed_offset: entry.offset,
                committed_leader_epoch: -1,
                committed_metadata: Some(entry.metadata.clone()),
                ..Default::default()
            });
    }
    let request = OffsetCommitRequest {
        group_id: group_id.into(),
        generation_id: who.generation_id,
        member_id: who.member_id.clone(),
        group_instance_id: who.group_instance_id.clone(),
        retention_time_ms: -1,
        topics: topics
            .into_iter()
            .map(|(name, partitions)| OffsetCommitRequestTopic {
                name: name.into(),
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let result = at_coordinator(cluster, group_id, |conn| {
        let request = &request;
        async move {
            let response = conn.send(request).await?;
            // One refused partition fails the commit; fencing says the most, so it wins.
            let mut refused: Option<(ErrorCode, String)> = None;
            for topic in &response.topics {
                for p in &topic.partitions {
                    let code = ErrorCode(p.error_code);
                    if code.is_ok() {
                        continue;
                    }
                    if fencing(code) {
                        return Err(fenced(conn.broker(), group_id, who, code));
                    }
                    refused.get_or_insert_with(|| {
                        (code, format!("{}/{}", topic.name, p.partition_index))
                    });
                }
            }
            match refused {
                None => Ok(()),
                Some((code, partition)) => Err(Error::Broker {
                    broker: conn.broker().into(),
                    api: ApiKey::OffsetCommit,
                    code,
                    message: Some(format!("group {group_id}, partition {partition}")),
                }),
            }
        }
    })
    .await;
    match &result {
        Ok(()) => tracing::debug!(
            group = group_id,
            generation = who.generation_id,
            partitions = offsets.len(),
            "offsets committed"
        ),
        Err(e) => tracing::warn!(
            group = group_id,
            generation = who.generation_id,
            partitions = offsets.len(),
            error = %e,
            "offset commit failed"
        ),
    }
    result
}

/// The offsets group `group_id` committed for `partitions`; partitions without a committed offset
/// are left out.
///
/// With `require_stable` (read committed), the coordinator answers UNSTABLE_OFFSET_COMMIT while a
/// transactional commit is pending, and the lookup is retried (KIP-447). The request carries no
/// member id: a classic-protocol member reads its group's offsets like anyone else.
pub(crate) async fn committed(
    cluster: &Cluster,
    group_id: &str,
    partitions: &[TopicPartition],
    require_stable: bool,
) -> Result<HashMap<TopicPartition, i64>> {
    let found =
        committed_with_metadata(cluster, group_id, Some(partitions), require_stable).await?;
    Ok(found.into_iter().map(|(tp, e)| (tp, e.offset)).collect())
}

/// Like [`committed`], with the metadata committed beside each offset; `None` asks for every
/// partition the group committed (OffsetFetch v2 and later).
pub(crate) async fn committed_with_metadata(
    cluster: &Cluster,
    group_id: &str,
    partitions: Option<&[TopicPartition]>,
    require_stable: bool,
) -> Result<HashMap<TopicPartition, OffsetAndMetadata>> {
    let topics = match partitions {
        Some([]) => return Ok(HashMap::new()),
        Some(partitions) => {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in partitions {
                by_topic
                    .entry(tp.topic.as_str())
                    .or_default()
                    .push(tp.partition);
            }
            let topics: Vec<OffsetFetchRequestTopic> = by_topic
                .into_iter()
                .map(|(name, partition_indexes)| OffsetFetchRequestTopic {
                    name: name.into(),
                    partition_indexes,
                    ..Default::default()
                })
                .collect();
            Some(topics)
        }
        None => None,
    };
    // Both layouts are filled in; the version the connection negotiated decides which one goes on
    // the wire.
    let request = OffsetFetchRequest {
        group_id: group_id.into(),
        topics: topics.clone(),
        groups: vec![OffsetFetchRequestGroup {
            group_id: group_id.into(),
            topics,
            ..Default::default()
        }],
        require_stable,
        ..Default::default()
    };
    at_coordinator(cluster, group_id, |conn| {
        let request = &request;
        async move {
            let version =
                conn.version(ApiKey::OffsetFetch)
                    .ok_or_else(|| Error::UnsupportedApi {
                        broker: conn.broker().into(),
                        api: ApiKey::OffsetFetch,
                    })?;
            let response = conn.send_at(request, version).await?;
            let (code, topics) = if version >= OFFSET_FETCH_BATCHED_FROM {
                match response.groups.into_iter().find(|g| g.group_id == group_id) {
                    Some(group) => (ErrorCode(group.error_code), group.topics),
                    None => {
                        return Err(Error::Broker {
                            broker: conn.broker().into(),
                            api: ApiKey::OffsetFetch,
                            code: ErrorCode::UNKNOWN_SERVER_ERROR,
                            message: Some(format!("the answer does not mention group {group_id}")),
                        })
                    }
                }
            } else {
                (ErrorCode(response.error_code), response.topics)
            };
            if code.is_err() {
                return Err(Error::Broker {
                    broker: conn.broker().into(),
                    api: ApiKey::OffsetFetch,
                    code,
                    message: Some(format!("group {group_id}")),
                });
            }
            read_committed(conn.broker(), group_id, topics)
        }
    })
    .await
}

/// The offsets in an OffsetFetch answer; -1 means none was committed.
fn read_committed(
    broker: &str,
    group_id: &str,
    topics: Vec<OffsetFetchResponseTopic>,
) -> Result<HashMap<TopicPartition, OffsetAndMetadata>> {
    let mut found = HashMap::new();
    for topic in topics {
        for p in topic.partitions {
            let code = ErrorCode(p.error_code);
            if code.is_err() {
                return Err(Error::Broker {
                    broker: broker.into(),
                    api: ApiKey::OffsetFetch,
                    code,
                    message: Some(format!(
                        "group {group_id}, partition {}/{}",
                        topic.name, p.partition_index
                    )),
                });
            }
            if p.committed_offset >= 0 {
                found.insert(
                    TopicPartition::new(topic.name.clone(), p.partition_index),
                    OffsetAndMetadata {
                        offset: p.committed_offset,
                        metadata: p.metadata.unwrap_or_default(),
                    },
                );
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_commits_are_recognised_and_name_the_group() {
        let who = Generation {
            generation_id: 4,
            member_id: "m-1".into(),
            group_instance_id: None,
        };
        let err = fenced("b:9092", "billing", &who, ErrorCode::ILLEGAL_GENERATION);
        assert!(is_commit_fenced(&err));
        assert!(!err.is_retriable());
        let text = err.to_string();
        assert!(
            text.contains("billing") && text.contains("generation 4"),
            "{text}"
        );

        let other = Error::Broker {
            broker: "b:9092".into(),
            api: ApiKey::OffsetCommit,
            code: ErrorCode::OFFSET_METADATA_TOO_LARGE,
            message: None,
        };
        assert!(!is_commit_fenced(&other));
    }

    #[test]
    fn uncommitted_partitions_are_left_out() {
        use kbus_protocol::messages::offset_fetch::OffsetFetchResponsePartition;
        let topics = vec![OffsetFetchResponseTopic {
            name: "t".into(),
            partitions: vec![
                OffsetFetchResponsePartition {
                    partition_index: 0,
                    committed_offset: 42,
                    metadata: Some("m".into()),
                    ..Default::default()
                },
                OffsetFetchResponsePartition {
                    partition_index: 1,
                    committed_offset: -1,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }];
        let found = read_committed("b:9092", "g", topics).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[&TopicPartition::new("t", 0)],
            OffsetAndMetadata {
                offset: 42,
                metadata: "m".into()
            }
        );
    }
}
