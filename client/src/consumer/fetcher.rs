//! One fetch request to one broker, and the decoding of its answer, run on a background task so
//! that [`poll`](super::Consumer::poll) only hands out records already decoded.
//!
//! Fetch sessions (KIP-227) are not used: every request is a full fetch (session id 0, epoch -1)
//! naming all its partitions. That costs request bytes with many partitions per broker, and keeps
//! the broker and the consumer from ever disagreeing about a session.

use std::collections::HashMap;
use std::sync::Arc;

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::fetch::{FetchPartition, FetchRequest, FetchTopic};
use kbus_protocol::record::DecodeOptions;
use kbus_protocol::{ApiKey, Uuid};

use super::config::ConsumerConfig;
use super::decode::{decode_partition, DecodeInput};
use super::job::{FetchJob, FetchOutcome, FetchTarget, PartitionOutcome};
use crate::cluster::Cluster;
use crate::error::Error;

/// The first Fetch version that names topics by id.
const TOPIC_IDS: i16 = 13;

/// The settings every fetch of a consumer shares.
#[derive(Debug, Clone)]
pub(crate) struct FetchSettings {
    max_wait_ms: i32,
    min_bytes: i32,
    isolation_level: i8,
    read_committed: bool,
    options: DecodeOptions,
}

impl FetchSettings {
    /// The settings `config` asks for.
    pub fn new(config: &ConsumerConfig) -> Self {
        FetchSettings {
            max_wait_ms: config.fetch_max_wait.as_millis().min(i32::MAX as u128) as i32,
            min_bytes: config.fetch_min_bytes,
            isolation_level: config.isolation_level.wire(),
            read_committed: config.isolation_level.wire() == 1,
            options: DecodeOptions {
                verify_crc: config.check_crcs,
                ..DecodeOptions::default()
            },
        }
    }
}

/// Sends `job` to its broker and decodes the answer.
pub(crate) async fn fetch(
    cluster: &Cluster,
    job: FetchJob,
    settings: &FetchSettings,
) -> FetchOutcome {
    let broker_id = job.broker;
    let failed = |error: Error| {
        tracing::debug!(broker = broker_id, error = %error, "fetch failed");
        let stale = cluster.report(&error);
        FetchOutcome::Failed { error, stale }
    };
    let conn = match cluster.broker(job.broker).await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let Some(mut version) = conn.version(ApiKey::Fetch) else {
        return failed(Error::UnsupportedApi {
            broker: conn.broker().into(),
            api: ApiKey::Fetch,
        });
    };
    // Group the partitions by topic, keeping the (rotated) order of the job.
    let md = cluster.metadata();
    let mut topics: Vec<(Arc<str>, Uuid, Vec<usize>)> = Vec::new();
    for (i, t) in job.targets.iter().enumerate() {
        match topics.iter_mut().find(|(name, _, _)| *name == t.topic) {
            Some((_, _, members)) => members.push(i),
            None => {
                let id = md.topic(&t.topic).map_or(Uuid::NIL, |info| info.id);
                topics.push((t.topic.clone(), id, vec![i]));
            }
        }
    }
    // Versions 13+ name topics by id only: without an id for every topic, use names (v12).
    if version >= TOPIC_IDS && topics.iter().any(|(_, id, _)| id.is_nil()) {
        version = TOPIC_IDS - 1;
    }
    let req = FetchRequest {
        replica_id: -1,
        max_wait_ms: settings.max_wait_ms,
        min_bytes: settings.min_bytes,
        max_bytes: job.max_bytes,
        isolation_level: settings.isolation_level,
        // No fetch session: a full fetch every time.
        session_id: 0,
        session_epoch: -1,
        topics: topics
            .iter()
            .map(|(name, id, members)| FetchTopic {
                topic: name.to_string(),
                topic_id: *id,
                partitions: members
                    .iter()
                    .map(|&i| {
                        let t = &job.targets[i];
                        FetchPartition {
                            partition: t.tp.partition,
                            current_leader_epoch: t.leader_epoch,
                            fetch_offset: t.offset,
                            partition_max_bytes: t.max_bytes,
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let resp = match conn.send_at(&req, version).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let code = ErrorCode(resp.error_code);
    if code.is_err() {
        return failed(Error::Broker {
            broker: conn.broker().into(),
            api: ApiKey::Fetch,
            code,
            message: None,
        });
    }
    // Which target each answered partition belongs to.
    let mut index: HashMap<(usize, i32), usize> = HashMap::with_capacity(job.targets.len());
    for (ti, (_, _, members)) in topics.iter().enumerate() {
        for &i in members {
            index.insert((ti, job.targets[i].tp.partition), i);
        }
    }
    let mut targets: Vec<Option<FetchTarget>> = job.targets.into_iter().map(Some).collect();
    let mut partitions = Vec::with_capacity(targets.len());
    let (mut records, mut bytes) = (0u64, 0u64);
    for t in resp.responses {
        let ti = topics.iter().position(|(name, id, _)| {
            if version >= TOPIC_IDS {
                *id == t.topic_id
            } else {
                **name == *t.topic
            }
        });
        let Some(ti) = ti else {
            continue;
        };
        for p in t.partitions {
            let Some(target) = index
                .get(&(ti, p.partition_index))
                .and_then(|&i| targets.get_mut(i))
                .and_then(Option::take)
            else {
                continue;
            };
            let code = ErrorCode(p.error_code);
            if code.is_err() {
                tracing::debug!(
                    broker = broker_id,
                    topic = &*target.topic,
                    partition = target.tp.partition,
                    offset = target.offset,
                    error = %code,
                    "fetch error for a partition"
                );
                cluster.report_code(code);
                partitions.push((target, PartitionOutcome::Error(code)));
                continue;
            }
            let aborted = p.aborted_transactions.as_deref().unwrap_or_default();
            let data = p.records.unwrap_or_default();
            bytes += data.len() as u64;
            let decoded = decode_partition(
                data,
                &DecodeInput {
                    topic: &target.topic,
                    partition: target.tp.partition,
                    fetch_offset: target.offset,
                    read_committed: settings.read_committed,
                    aborted,
                    options: settings.options,
                },
            );
            records += decoded.records.len() as u64;
            partitions.push((
                target,
                PartitionOutcome::Data {
                    decoded,
                    high_watermark: p.high_watermark,
                    last_stable_offset: p.last_stable_offset,
                    log_start_offset: p.log_start_offset,
                },
            ));
        }
    }
    cluster.counters().received(records, bytes);
    FetchOutcome::Done {
        broker: conn.broker().into(),
        partitions,
    }
}
