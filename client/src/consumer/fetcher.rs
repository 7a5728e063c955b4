//! One fetch request to one broker, and the decoding of its answer, run on a background task so
//! that [`poll`](super::Consumer::poll) only hands out records already decoded.
//!
//! Fetches go in a fetch session (KIP-227, [`super::fetch_session`]) with every broker that
//! offers one (Fetch v7 and later): after the first, a fetch names only the partitions whose
//! offset, leader epoch or limit changed. When the broker has lost the session, the fetch is sent
//! again at once as a full one. [`close_sessions`] ends them when the consumer closes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::fetch::{FetchPartition, FetchRequest, FetchTopic, ForgottenTopic};
use kbus_protocol::record::DecodeOptions;
use kbus_protocol::{ApiKey, Uuid};

use super::config::ConsumerConfig;
use super::decode::{decode_partition, DecodeInput};
use super::fetch_session::{FetchSession, Next, SessionRequest, CLOSE};
use super::job::{FetchJob, FetchOutcome, FetchTarget, PartitionOutcome};
use crate::cluster::Cluster;
use crate::error::Error;

/// The first Fetch version that names topics by id.
const TOPIC_IDS: i16 = 13;
/// The first Fetch version with fetch sessions.
const SESSIONS: i16 = 7;

/// The fetch session with each broker (by id). A fetch takes its broker's session out while it
/// runs (one fetch per broker at a time) and puts it back when it ends; the ids of open sessions
/// stay known meanwhile, so that [`close_sessions`] can close them after stopping the fetches, and
/// so that a fetch whose task died with the session closes it with its next full fetch.
#[derive(Debug, Default)]
pub(crate) struct FetchSessions(Mutex<Sessions>);

#[derive(Debug, Default)]
struct Sessions {
    idle: HashMap<i32, FetchSession>,
    open: HashMap<i32, i32>,
    /// Set by [`close_sessions`]: fetches still running go without a session from then on.
    closed: bool,
}

impl FetchSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session with `broker`; `None` once the sessions are closed.
    fn take(&self, broker: i32) -> Option<FetchSession> {
        let mut sessions = self.lock();
        if sessions.closed {
            return None;
        }
        let session = match sessions.idle.remove(&broker) {
            Some(session) => session,
            // None yet, or lost with a fetch that never ended: replace the one the broker may
            // still hold.
            None => FetchSession::replacing(sessions.open.get(&broker).copied()),
        };
        Some(session)
    }

    fn put(&self, broker: i32, session: FetchSession) {
        let mut sessions = self.lock();
        if sessions.closed {
            return;
        }
        match session.id() {
            Some(id) => sessions.open.insert(broker, id),
            None => sessions.open.remove(&broker),
        };
        sessions.idle.insert(broker, session);
    }
}

/// Closes every open fetch session (a fetch naming no partitions, epoch -1) so that the brokers
/// free their slots now instead of when they evict idle sessions. The closes run on tasks of
/// their own, each for at most `within`, and nobody waits for them: a broker answers a close only
/// after the fetch it may still be holding on that connection (up to `fetch.max.wait.ms`), and a
/// consumer's close should not wait that long for a courtesy. Failures are only logged; a session
/// not closed is evicted by the broker in the end.
pub(crate) fn close_sessions(cluster: &Cluster, sessions: &FetchSessions, within: Duration) {
    let open: Vec<(i32, i32)> = {
        let mut sessions = sessions.lock();
        sessions.closed = true;
        sessions.idle.clear();
        sessions.open.drain().collect()
    };
    for (broker, session_id) in open {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let close = async {
                let conn = cluster.broker(broker).await?;
                let version = conn.version(ApiKey::Fetch).unwrap_or(0);
                let req = FetchRequest {
                    replica_id: -1,
                    session_id,
                    session_epoch: CLOSE,
                    ..Default::default()
                };
                conn.send_at(&req, version).await.map(|_| ())
            };
            match tokio::time::timeout(within, close).await {
                Ok(Ok(())) => tracing::debug!(broker, session_id, "fetch session closed"),
                Ok(Err(error)) => {
                    tracing::debug!(broker, session_id, error = %error, "closing a fetch session failed")
                }
                Err(_) => tracing::debug!(broker, session_id, "closing a fetch session timed out"),
            }
        });
    }
}

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

/// Sends `job` to its broker, in the broker's fetch session, and decodes the answer.
pub(crate) async fn fetch(
    cluster: &Cluster,
    job: FetchJob,
    settings: &FetchSettings,
    sessions: &FetchSessions,
) -> FetchOutcome {
    let broker = job.broker;
    match sessions.take(broker) {
        Some(mut session) => {
            let outcome = fetch_in(cluster, job, settings, Some(&mut session)).await;
            sessions.put(broker, session);
            outcome
        }
        None => fetch_in(cluster, job, settings, None).await,
    }
}

/// [`fetch`] in `session`, or without one.
async fn fetch_in(
    cluster: &Cluster,
    job: FetchJob,
    settings: &FetchSettings,
    mut session: Option<&mut FetchSession>,
) -> FetchOutcome {
    let broker_id = job.broker;
    let failed = |error: Error| {
        tracing::debug!(broker = broker_id, error = %error, "fetch failed");
        let stale = cluster.report(&error);
        FetchOutcome::Failed { error, stale }
    };
    let conn = match cluster.broker(job.broker).await {
        Ok(c) => c,
        Err(e) => {
            if let Some(session) = session.as_deref_mut() {
                session.failed();
            }
            return failed(e);
        }
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
    let by_id = version >= TOPIC_IDS;
    let mut topic_ids = vec![Uuid::NIL; job.targets.len()];
    for (_, id, members) in &topics {
        for &i in members {
            topic_ids[i] = *id;
        }
    }
    // At most one resend: after a session error the fetch goes again as a full one, whose answer
    // is always used.
    let mut resent = false;
    if version < SESSIONS {
        session = None;
    }
    let resp = loop {
        let in_session = match session.as_deref_mut() {
            Some(session) => session.request(&job.targets, &topic_ids, by_id),
            None => SessionRequest::full(0, CLOSE, job.targets.len()),
        };
        let req = request(settings, &job, &topics, &in_session);
        let resp = match conn.send_at(&req, version).await {
            Ok(r) => r,
            Err(e) => {
                if let Some(session) = session.as_deref_mut() {
                    session.failed();
                }
                return failed(e);
            }
        };
        let code = ErrorCode(resp.error_code);
        cluster
            .counters()
            .fetched(!in_session.is_full() && code.is_ok());
        let next = match session.as_deref_mut() {
            Some(session) => session.answered(code, resp.session_id),
            None => Next::Use,
        };
        if next == Next::Resend && !resent {
            cluster.counters().code(code);
            tracing::debug!(
                broker = broker_id,
                session_id = in_session.session_id,
                error = %code,
                "fetch session lost; fetching in full"
            );
            resent = true;
            continue;
        }
        break resp;
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

/// The Fetch request for `job`, naming the targets `in_session` sends (grouped as `topics`) and
/// forgetting those it lists.
fn request(
    settings: &FetchSettings,
    job: &FetchJob,
    topics: &[(Arc<str>, Uuid, Vec<usize>)],
    in_session: &SessionRequest,
) -> FetchRequest {
    let mut named = vec![false; job.targets.len()];
    for &i in &in_session.send {
        named[i] = true;
    }
    let mut forgotten: Vec<ForgottenTopic> = Vec::new();
    for (topic, topic_id, partition) in &in_session.forget {
        match forgotten.last_mut() {
            Some(f) if *f.topic == **topic => f.partitions.push(*partition),
            _ => forgotten.push(ForgottenTopic {
                topic: topic.to_string(),
                topic_id: *topic_id,
                partitions: vec![*partition],
                ..Default::default()
            }),
        }
    }
    FetchRequest {
        replica_id: -1,
        max_wait_ms: settings.max_wait_ms,
        min_bytes: settings.min_bytes,
        max_bytes: job.max_bytes,
        isolation_level: settings.isolation_level,
        session_id: in_session.session_id,
        session_epoch: in_session.epoch,
        topics: topics
            .iter()
            .filter(|(_, _, members)| members.iter().any(|&i| named[i]))
            .map(|(name, id, members)| FetchTopic {
                topic: name.to_string(),
                topic_id: *id,
                partitions: members
                    .iter()
                    .filter(|&&i| named[i])
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
        forgotten_topics_data: forgotten,
        ..Default::default()
    }
}
