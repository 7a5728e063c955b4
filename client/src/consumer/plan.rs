//! The requests the consuming state needs ([`ConsumerState::plan`]) and what their answers do to it
//! ([`ConsumerState::apply`]); sans-IO: the engine runs the jobs and passes `now`.
//!
//! - One fetch per broker at a time, covering every assigned, unpaused partition it leads whose
//!   prefetched bytes are under its share of the bound, while the whole bound has room.
//! - One metadata lookup at a time, for partitions without a known leader.
//! - Committed-offset and earliest/latest lookups for partitions that need a starting offset.
//!
//! Errors: OFFSET_OUT_OF_RANGE resets per `auto.offset.reset` (or stops the partition and tells the
//! application, with `none`); errors that mean the leader moved (NOT_LEADER_OR_FOLLOWER,
//! FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, UNKNOWN_TOPIC_OR_PARTITION, a lost connection, ...)
//! forget the leader so metadata is looked up again, and the partition is fetched from the same
//! offset after a backoff: nothing is lost or repeated. A fetch that times out (a broker too slow
//! for `request.timeout.ms`) backs off and asks for half as many bytes per partition next time;
//! answers grow the size back. Corrupt data stops the partition after the
//! records before it, with an error naming the offset.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use kbus_protocol::error_code::ErrorCode;

use super::job::{
    FetchJob, FetchOutcome, FetchTarget, Job, JobInfo, Outcome, PartitionOutcome, Plan,
};
use super::record::PartitionRecords;
use super::state::{no_offset_error, ConsumerState, FetchState, Item, Trouble};
use crate::cluster::{needs_refresh, Metadata};
use crate::error::{Error, Result};
use crate::TopicPartition;

impl ConsumerState {
    /// The jobs to start at `now`; marks their partitions busy.
    pub fn plan(&mut self, now: Instant) -> Plan {
        let mut plan = Plan::default();
        for p in self.partitions.values() {
            if let Some(at) = p.retry_at.filter(|at| *at > now && p.job.is_none()) {
                plan.wake_at = Some(plan.wake_at.map_or(at, |w: Instant| w.min(at)));
            }
        }
        self.plan_metadata(now, &mut plan);
        self.plan_lookups(now, &mut plan);
        self.plan_fetches(now, &mut plan);
        plan
    }

    fn plan_metadata(&mut self, now: Instant, plan: &mut Plan) {
        if self.jobs.metadata {
            return;
        }
        let mut refresh = false;
        let topics: BTreeSet<String> = self
            .partitions
            .iter()
            .filter(|(_, p)| {
                p.leader.is_none()
                    && p.fetch != FetchState::Stopped
                    && p.retry_at.is_none_or(|at| at <= now)
            })
            .map(|(tp, p)| {
                refresh |= p.failures > 0;
                tp.topic.clone()
            })
            .collect();
        if topics.is_empty() {
            return;
        }
        let id = self.jobs.start(JobInfo {
            partitions: Vec::new(),
            broker: None,
            reserved: 0,
            metadata: true,
        });
        let topics = topics.into_iter().collect();
        plan.jobs.push((id, Job::Metadata { topics, refresh }));
    }

    fn plan_lookups(&mut self, now: Instant, plan: &mut Plan) {
        let mut committed = Vec::new();
        let mut resets = Vec::new();
        for (tp, p) in &self.partitions {
            if !p.idle(now) {
                continue;
            }
            match p.fetch {
                FetchState::Committed => committed.push((tp.clone(), p.epoch)),
                FetchState::Reset(to) => resets.push((tp.clone(), p.epoch, to)),
                _ => {}
            }
        }
        if !committed.is_empty() {
            committed.sort();
            let tps = committed.iter().map(|(tp, _)| tp.clone()).collect();
            let id = self.start_lookup(committed);
            plan.jobs.push((id, Job::Committed(tps)));
        }
        if !resets.is_empty() {
            resets.sort_by(|a, b| a.0.cmp(&b.0));
            let job = resets.iter().map(|(tp, _, to)| (tp.clone(), *to)).collect();
            let id = self.start_lookup(resets.into_iter().map(|(tp, e, _)| (tp, e)).collect());
            plan.jobs.push((id, Job::Reset(job)));
        }
    }

    fn start_lookup(&mut self, partitions: Vec<(TopicPartition, u64)>) -> u64 {
        let id = self.jobs.start(JobInfo {
            partitions: Vec::new(),
            broker: None,
            reserved: 0,
            metadata: false,
        });
        for (tp, _) in &partitions {
            if let Some(p) = self.partitions.get_mut(tp) {
                p.job = Some(id);
            }
        }
        if let Some(info) = self.jobs.jobs.get_mut(&id) {
            info.partitions = partitions;
        }
        id
    }

    fn plan_fetches(&mut self, now: Instant, plan: &mut Plan) {
        let bound = self.config.max_prefetch_bytes;
        let mut room = bound.saturating_sub(self.buffered + self.reserved);
        // Start a fetch only with room for a partition's worth, so the bound holds (give or take a
        // batch larger than that, which Kafka returns whole); with nothing buffered there always is.
        let least = (self.config.max_partition_fetch_bytes.max(1) as usize).min(bound);
        if room < least {
            return;
        }
        let cap = self.partition_cap();
        let mut by_broker: BTreeMap<i32, Vec<&TopicPartition>> = BTreeMap::new();
        for (tp, p) in &self.partitions {
            let (FetchState::At(_), Some((leader, _))) = (p.fetch, p.leader) else {
                continue;
            };
            if !p.paused && p.idle(now) && p.buffered < cap && !self.jobs.brokers.contains(&leader)
            {
                by_broker.entry(leader).or_default().push(tp);
            }
        }
        // Brokers fill partitions in request order, and the room goes to brokers in turn: rotate
        // both so none is always last.
        self.jobs.rotation = self.jobs.rotation.wrapping_add(1);
        let rotation = self.jobs.rotation;
        let mut by_broker: Vec<(i32, Vec<&TopicPartition>)> = by_broker.into_iter().collect();
        if !by_broker.is_empty() {
            let shift = rotation % by_broker.len();
            by_broker.rotate_left(shift);
        }
        let mut fetches = Vec::new();
        for (broker, mut tps) in by_broker {
            if room < least {
                break;
            }
            tps.sort();
            let shift = rotation % tps.len();
            tps.rotate_left(shift);
            // A fetch brings at most its partitions' limits (Kafka may exceed one with a single
            // larger batch): reserve that much of the room, not all of fetch.max.bytes.
            let asked: usize = tps
                .iter()
                .map(|tp| self.partitions[*tp].max_bytes.max(1) as usize)
                .sum();
            let max_bytes = room
                .min(self.config.fetch_max_bytes.max(1) as usize)
                .min(asked);
            room -= max_bytes;
            let max_bytes = max_bytes as i32;
            let targets: Vec<FetchTarget> = tps
                .into_iter()
                .filter_map(|tp| {
                    let p = &self.partitions[tp];
                    let (FetchState::At(offset), Some((_, leader_epoch))) = (p.fetch, p.leader)
                    else {
                        return None;
                    };
                    Some(FetchTarget {
                        tp: tp.clone(),
                        topic: p.topic.clone(),
                        epoch: p.epoch,
                        offset,
                        leader_epoch,
                        max_bytes: p.max_bytes.min(max_bytes),
                    })
                })
                .collect();
            fetches.push(FetchJob {
                broker,
                max_bytes,
                targets,
            });
        }
        for job in fetches {
            let id = self.jobs.start(JobInfo {
                partitions: job
                    .targets
                    .iter()
                    .map(|t| (t.tp.clone(), t.epoch))
                    .collect(),
                broker: Some(job.broker),
                reserved: job.max_bytes as usize,
                metadata: false,
            });
            self.reserved += job.max_bytes as usize;
            for t in &job.targets {
                if let Some(p) = self.partitions.get_mut(&t.tp) {
                    p.job = Some(id);
                }
            }
            plan.jobs.push((id, Job::Fetch(job)));
        }
    }

    /// Applies the outcome of job `id` at `now`. Work for partitions sought, paused, reset or
    /// reassigned since the job was planned is discarded.
    pub fn apply(&mut self, id: u64, outcome: Outcome, now: Instant) {
        let Some(info) = self.jobs.jobs.remove(&id) else {
            return;
        };
        if let Some(b) = info.broker {
            self.jobs.brokers.remove(&b);
        }
        if info.metadata {
            self.jobs.metadata = false;
        }
        self.reserved -= info.reserved;
        for (tp, _) in &info.partitions {
            if let Some(p) = self.partitions.get_mut(tp) {
                if p.job == Some(id) {
                    p.job = None;
                }
            }
        }
        // The partitions still in the state the job was planned for.
        let current: Vec<TopicPartition> = info
            .partitions
            .iter()
            .filter(|(tp, epoch)| self.partitions.get(tp).is_some_and(|p| p.epoch == *epoch))
            .map(|(tp, _)| tp.clone())
            .collect();
        match outcome {
            Outcome::Fetch(FetchOutcome::Failed { error, stale }) => {
                let trouble = Trouble::Fetch(info.broker.unwrap_or(-1));
                if matches!(error, Error::RequestTimeout { .. }) {
                    for tp in &current {
                        if let Some(p) = self.partitions.get_mut(tp) {
                            p.ask_less();
                        }
                    }
                }
                self.failed(trouble, &current, error, stale, now)
            }
            Outcome::Fetch(FetchOutcome::Done { broker, partitions }) => {
                self.untroubled(&Trouble::Fetch(info.broker.unwrap_or(-1)));
                for (target, outcome) in partitions {
                    let planned = self.partitions.get(&target.tp).is_some_and(|p| {
                        p.epoch == target.epoch && p.fetch == FetchState::At(target.offset)
                    });
                    if planned {
                        self.fetched(&broker, target, outcome, now);
                    }
                }
            }
            Outcome::Committed(Ok(offsets)) => {
                self.untroubled(&Trouble::Lookup);
                for tp in current {
                    if self.partitions[&tp].fetch != FetchState::Committed {
                        continue;
                    }
                    match offsets.get(&tp).copied().filter(|o| *o >= 0) {
                        Some(offset) => self.start_at(&tp, offset),
                        None => self.reset(&tp),
                    }
                }
            }
            Outcome::Committed(Err(error)) => {
                self.failed(Trouble::Lookup, &current, error, false, now)
            }
            Outcome::Reset(listed) => {
                let waiting = |s: &Self, tp: &TopicPartition| {
                    current.contains(tp)
                        && s.partitions
                            .get(tp)
                            .is_some_and(|p| matches!(p.fetch, FetchState::Reset(_)))
                };
                if listed.errors.is_empty() {
                    self.untroubled(&Trouble::Lookup);
                }
                let mut unanswered = Vec::new();
                for tp in &current {
                    if !waiting(self, tp) {
                        continue;
                    }
                    match listed.offsets.get(tp) {
                        Some(found) if found.offset >= 0 => self.start_at(tp, found.offset),
                        _ if listed.errors.iter().any(|(tps, _)| tps.contains(tp)) => {}
                        _ => unanswered.push(tp.clone()),
                    }
                }
                for (tps, error) in listed.errors {
                    let tps: Vec<TopicPartition> =
                        tps.into_iter().filter(|tp| waiting(self, tp)).collect();
                    self.failed(Trouble::Lookup, &tps, error, false, now);
                }
                for tp in unanswered {
                    let error = Error::Partition {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        code: ErrorCode::OFFSET_NOT_AVAILABLE,
                    };
                    self.failed(
                        Trouble::Lookup,
                        std::slice::from_ref(&tp),
                        error,
                        false,
                        now,
                    );
                }
            }
            Outcome::Metadata(result) => self.leaders(result, now),
            Outcome::Lost => {
                let trouble = Trouble::Fetch(info.broker.unwrap_or(-1));
                self.failed(trouble, &current, Error::Closed, false, now)
            }
        }
    }

    /// The partition starts (again) at `offset`.
    fn start_at(&mut self, tp: &TopicPartition, offset: i64) {
        if let Some(p) = self.partitions.get_mut(tp) {
            p.fetch = FetchState::At(offset);
            p.position = Some(offset);
            p.succeeded();
        }
    }

    /// Follows `auto.offset.reset` for a partition without a usable offset.
    fn reset(&mut self, tp: &TopicPartition) {
        let state = self.reset_state();
        if let Some(p) = self.partitions.get_mut(tp) {
            p.fetch = state;
            p.position = None;
        }
        if state == FetchState::Stopped {
            self.push(tp, Item::Error(no_offset_error(tp)));
        }
    }

    /// A job for `tps` failed: back off; forget the leader when it may have moved; tell the
    /// application once when retrying cannot help by itself, and when failures that retrying
    /// might fix have gone on for a while.
    fn failed(
        &mut self,
        trouble: Trouble,
        tps: &[TopicPartition],
        error: Error,
        stale: bool,
        now: Instant,
    ) {
        let base = self.config.retry_backoff;
        let mut first = false;
        for tp in tps {
            if let Some(p) = self.partitions.get_mut(tp) {
                if stale {
                    p.leader = None;
                }
                p.back_off(now, base);
                first |= p.failures == 1;
            }
        }
        if error.is_retriable() {
            self.trouble(trouble, error, now);
        } else if first && !matches!(error, Error::Closed) {
            self.errors.push_back(error);
        }
    }

    /// Applies one partition's fetch outcome.
    fn fetched(
        &mut self,
        broker: &str,
        target: FetchTarget,
        outcome: PartitionOutcome,
        now: Instant,
    ) {
        let tp = &target.tp;
        match outcome {
            PartitionOutcome::Data {
                decoded,
                high_watermark,
                last_stable_offset,
                log_start_offset,
            } => {
                let fetch_max = self.config.fetch_max_bytes;
                let base = self.config.retry_backoff;
                self.untroubled(&Trouble::Partition(tp.clone()));
                let Some(p) = self.partitions.get_mut(tp) else {
                    return;
                };
                p.succeeded();
                let too_small = decoded.batches == 0 && decoded.truncated;
                if !too_small {
                    p.ask_more(self.config.max_partition_fetch_bytes);
                }
                if too_small && decoded.error.is_none() {
                    // Not one whole batch fit in the partition's byte limit (a broker that does not
                    // return an oversized first batch): ask for twice as much next time, up to
                    // fetch.max.bytes (as franz-go does); at that limit, retry after a backoff.
                    if p.max_bytes >= fetch_max {
                        p.back_off(now, base);
                    }
                    p.max_bytes = p.max_bytes.saturating_mul(2).min(fetch_max);
                }
                let next = decoded.next_offset;
                let queued = !p.queue.is_empty();
                p.fetch = FetchState::At(next);
                if !decoded.records.is_empty() {
                    let records = PartitionRecords {
                        topic_partition: tp.clone(),
                        records: decoded.records,
                        high_watermark,
                        last_stable_offset,
                        log_start_offset,
                        next_offset: next,
                    };
                    self.push(tp, Item::Records(records, decoded.bytes));
                } else if next > target.offset {
                    if queued {
                        self.push(tp, Item::Skip(next));
                    } else {
                        p.position = Some(next);
                    }
                }
                if let Some((offset, source)) = decoded.error {
                    let error = Error::Consume {
                        broker: Some(broker.into()),
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        offset,
                        code: ErrorCode::CORRUPT_MESSAGE,
                        message: "corrupt record batch: seek past it to continue".into(),
                        source: Some(source),
                    };
                    self.stop(tp, error);
                }
            }
            PartitionOutcome::Error(ErrorCode::OFFSET_OUT_OF_RANGE) => match self.reset_state() {
                FetchState::Reset(to) => {
                    // Records still queued were fetched before the log moved under them; the
                    // partition restarts from the reset offset, as the Java client does.
                    self.seek_to(tp, to).ok();
                }
                _ => {
                    let error = Error::Consume {
                        broker: Some(broker.into()),
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        offset: target.offset,
                        code: ErrorCode::OFFSET_OUT_OF_RANGE,
                        message: "the offset is not in the log, and auto.offset.reset is none: \
                                  seek to continue"
                            .into(),
                        source: None,
                    };
                    self.stop(tp, error);
                }
            },
            PartitionOutcome::Error(code) => {
                let stale = needs_refresh(code) || code == ErrorCode::REPLICA_NOT_AVAILABLE;
                let error = Error::Partition {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    code,
                };
                let trouble = Trouble::Partition(tp.clone());
                self.failed(trouble, std::slice::from_ref(tp), error, stale, now);
            }
        }
    }

    /// Stops fetching `tp` until the application seeks, and hands it `error` after the records
    /// before it.
    fn stop(&mut self, tp: &TopicPartition, error: Error) {
        if let Some(p) = self.partitions.get_mut(tp) {
            p.fetch = FetchState::Stopped;
        }
        self.push(tp, Item::Error(error));
    }

    /// Takes the leaders of leaderless partitions from fresh metadata.
    fn leaders(&mut self, result: Result<Arc<Metadata>>, now: Instant) {
        let base = self.config.retry_backoff;
        for (tp, p) in self.partitions.iter_mut() {
            if p.leader.is_some() || p.fetch == FetchState::Stopped {
                continue;
            }
            let leader = result
                .as_ref()
                .ok()
                .and_then(|md| md.leader_of(&tp.topic, tp.partition));
            match leader {
                Some(l) => p.leader = Some(l),
                None if p.retry_at.is_none_or(|at| at <= now) => p.back_off(now, base),
                None => {}
            }
        }
        match result {
            Ok(_) => self.untroubled(&Trouble::Metadata),
            Err(e) if e.is_retriable() => self.trouble(Trouble::Metadata, e, now),
            Err(e) => self.errors.push_back(e),
        }
    }
}

#[cfg(test)]
mod tests;
