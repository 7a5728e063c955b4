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
//! offset after a backoff: nothing is lost or repeated. Corrupt data stops the partition after the
//! records before it, with an error naming the offset.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use kbus_protocol::error_code::ErrorCode;

use super::job::{
    FetchJob, FetchOutcome, FetchTarget, Job, JobInfo, Outcome, PartitionOutcome, Plan,
};
use super::record::PartitionRecords;
use super::state::{no_offset_error, ConsumerState, FetchState, Item};
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
                self.failed(&current, error, stale, now)
            }
            Outcome::Fetch(FetchOutcome::Done { broker, partitions }) => {
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
            Outcome::Committed(Err(error)) => self.failed(&current, error, false, now),
            Outcome::Reset(listed) => {
                let waiting = |s: &Self, tp: &TopicPartition| {
                    current.contains(tp)
                        && s.partitions
                            .get(tp)
                            .is_some_and(|p| matches!(p.fetch, FetchState::Reset(_)))
                };
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
                    self.failed(&tps, error, false, now);
                }
                for tp in unanswered {
                    let error = Error::Partition {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        code: ErrorCode::OFFSET_NOT_AVAILABLE,
                    };
                    self.failed(std::slice::from_ref(&tp), error, false, now);
                }
            }
            Outcome::Metadata(result) => self.leaders(result, now),
            Outcome::Lost => {
                let error = Error::Closed;
                self.failed(&current, error, false, now)
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
    /// application once when retrying cannot help by itself.
    fn failed(&mut self, tps: &[TopicPartition], error: Error, stale: bool, now: Instant) {
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
        if first && !error.is_retriable() && !matches!(error, Error::Closed) {
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
                let Some(p) = self.partitions.get_mut(tp) else {
                    return;
                };
                p.succeeded();
                if decoded.batches == 0 && decoded.truncated && decoded.error.is_none() {
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
                    if let Some(p) = self.partitions.get_mut(tp) {
                        p.fetch = FetchState::Stopped;
                    }
                    let error = Error::Consume {
                        broker: Some(broker.into()),
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        offset,
                        code: ErrorCode::CORRUPT_MESSAGE,
                        message: "corrupt record batch: seek past it to continue".into(),
                        source: Some(source),
                    };
                    self.push(tp, Item::Error(error));
                }
            }
            PartitionOutcome::Error(ErrorCode::OFFSET_OUT_OF_RANGE) => match self.reset_state() {
                FetchState::Reset(to) => {
                    // Records still queued were fetched before the log moved under them; the
                    // partition restarts from the reset offset, as the Java client does.
                    self.seek_to(tp, to).ok();
                }
                _ => {
                    if let Some(p) = self.partitions.get_mut(tp) {
                        p.fetch = FetchState::Stopped;
                    }
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
                    self.push(tp, Item::Error(error));
                }
            },
            PartitionOutcome::Error(code) => {
                let stale = needs_refresh(code) || code == ErrorCode::REPLICA_NOT_AVAILABLE;
                let error = Error::Partition {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    code,
                };
                self.failed(std::slice::from_ref(tp), error, stale, now);
            }
        }
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
        if let Err(e) = result {
            if !e.is_retriable() {
                self.errors.push_back(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{BrokerInfo, PartitionInfo, TopicInfo};
    use crate::consumer::config::{ConsumerConfig, OffsetReset};
    use crate::consumer::decode::Decoded;
    use crate::consumer::record::ConsumerRecord;
    use crate::list_offsets::{Found, Listed, OffsetSpec};
    use kbus_protocol::record::TimestampType;
    use kbus_protocol::{ProtocolError, Uuid};
    use std::collections::HashMap;
    use std::time::Duration;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn metadata(leaders: &[(i32, i32)]) -> Arc<Metadata> {
        let mut md = Metadata::empty();
        for id in 1..=3 {
            md.brokers.insert(
                id,
                BrokerInfo {
                    id,
                    host: "h".into(),
                    port: id,
                    rack: None,
                },
            );
        }
        md.topics.insert(
            "t".into(),
            TopicInfo {
                name: "t".into(),
                id: Uuid::NIL,
                internal: false,
                error: ErrorCode::NONE,
                partitions: leaders
                    .iter()
                    .map(|&(id, leader)| PartitionInfo {
                        id,
                        leader,
                        leader_epoch: 4,
                        replicas: vec![leader],
                        in_sync: vec![leader],
                        offline: vec![],
                        error: ErrorCode::NONE,
                    })
                    .collect(),
            },
        );
        Arc::new(md)
    }

    fn state(config: ConsumerConfig) -> ConsumerState {
        ConsumerState::new(ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..config
        })
    }

    /// Runs the metadata job of a fresh plan with `leaders`.
    fn route(s: &mut ConsumerState, now: Instant, leaders: &[(i32, i32)]) {
        let plan = s.plan(now);
        let (id, _) = plan
            .jobs
            .iter()
            .find(|(_, j)| matches!(j, Job::Metadata { .. }))
            .expect("a metadata job");
        let id = *id;
        for (other, job) in plan.jobs {
            if other != id {
                // Hand back whatever else was planned unanswered.
                let _ = job;
                s.apply(other, Outcome::Lost, now);
            }
        }
        s.apply(id, Outcome::Metadata(Ok(metadata(leaders))), now);
    }

    fn fetches(plan: &Plan) -> Vec<(u64, FetchJob)> {
        plan.jobs
            .iter()
            .filter_map(|(id, j)| match j {
                Job::Fetch(f) => Some((*id, f.clone())),
                _ => None,
            })
            .collect()
    }

    fn data(target: &FetchTarget, n: i64, hw: i64) -> PartitionOutcome {
        let records = (0..n)
            .map(|i| ConsumerRecord {
                topic: target.topic.clone(),
                partition: target.tp.partition,
                offset: target.offset + i,
                timestamp: 0,
                timestamp_type: TimestampType::CreateTime,
                key: None,
                value: None,
                headers: Vec::new(),
            })
            .collect();
        PartitionOutcome::Data {
            decoded: Decoded {
                records,
                next_offset: target.offset + n,
                bytes: 100 * n as usize,
                batches: 1,
                truncated: false,
                error: None,
            },
            high_watermark: hw,
            last_stable_offset: -1,
            log_start_offset: 0,
        }
    }

    fn done(targets: &[FetchTarget], f: impl Fn(&FetchTarget) -> PartitionOutcome) -> Outcome {
        Outcome::Fetch(FetchOutcome::Done {
            broker: "h:1".into(),
            partitions: targets.iter().map(|t| (t.clone(), f(t))).collect(),
        })
    }

    #[test]
    fn one_fetch_per_broker_covers_every_partition_it_leads() {
        let now = Instant::now();
        let mut s = state(ConsumerConfig::default());
        s.assign((0..4).map(tp));
        for p in 0..4 {
            s.seek(&tp(p), 0).unwrap();
        }
        route(&mut s, now, &[(0, 1), (1, 2), (2, 1), (3, 2)]);
        let plan = s.plan(now);
        let f = fetches(&plan);
        assert_eq!(f.len(), 2);
        let mut brokers: Vec<(i32, Vec<i32>)> = f
            .iter()
            .map(|(_, j)| {
                let mut ps: Vec<i32> = j.targets.iter().map(|t| t.tp.partition).collect();
                ps.sort();
                (j.broker, ps)
            })
            .collect();
        brokers.sort();
        assert_eq!(brokers, vec![(1, vec![0, 2]), (2, vec![1, 3])]);
        assert_eq!(f[0].1.targets[0].leader_epoch, 4);
        // Nothing more while those are in flight.
        assert!(fetches(&s.plan(now)).is_empty());
    }

    #[test]
    fn every_broker_gets_a_fetch_however_large_fetch_max_bytes_is() {
        let now = Instant::now();
        let mut s = state(ConsumerConfig::default());
        s.assign((0..6).map(tp));
        for p in 0..6 {
            s.seek(&tp(p), 0).unwrap();
        }
        route(
            &mut s,
            now,
            &[(0, 1), (1, 2), (2, 3), (3, 1), (4, 2), (5, 3)],
        );
        let f = fetches(&s.plan(now));
        assert_eq!(f.len(), 3, "one fetch per broker at once");
        for (_, job) in &f {
            assert_eq!(job.max_bytes, 2 << 20, "two partitions' worth reserved");
        }
        assert_eq!(s.reserved, 6 << 20);
    }

    #[test]
    fn fetched_records_are_delivered_in_order_and_fetching_continues_after_them() {
        let now = Instant::now();
        let mut s = state(ConsumerConfig::default());
        s.assign([tp(0)]);
        s.seek(&tp(0), 10).unwrap();
        route(&mut s, now, &[(0, 1)]);
        let (id, job) = fetches(&s.plan(now)).remove(0);
        assert_eq!(job.targets[0].offset, 10);
        s.apply(id, done(&job.targets, |t| data(t, 3, 20)), now);
        let (id2, job2) = fetches(&s.plan(now)).remove(0);
        assert_eq!(job2.targets[0].offset, 13, "prefetching continues");
        let got = s.pop().unwrap().unwrap();
        let offsets: Vec<i64> = got.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [10, 11, 12]);
        assert_eq!(got.high_watermark, 20);
        assert_eq!(s.position(&tp(0)), Some(13));
        s.apply(id2, done(&job2.targets, |t| data(t, 2, 20)), now);
        assert_eq!(s.pop().unwrap().unwrap().records[0].offset, 13);
        assert_eq!(s.position(&tp(0)), Some(15));
        assert!(s.jobs.is_empty());
        assert_eq!((s.buffered, s.reserved), (0, 0));
    }

    #[test]
    fn a_fetch_in_flight_across_a_seek_is_discarded() {
        let now = Instant::now();
        let mut s = state(ConsumerConfig::default());
        s.assign([tp(0)]);
        s.seek(&tp(0), 0).unwrap();
        route(&mut s, now, &[(0, 1)]);
        let (id, job) = fetches(&s.plan(now)).remove(0);
        s.seek(&tp(0), 100).unwrap();
        s.apply(id, done(&job.targets, |t| data(t, 5, 200)), now);
        assert!(
            s.pop().is_none(),
            "records from before the seek are never delivered"
        );
        let (_, job) = fetches(&s.plan(now)).remove(0);
        assert_eq!(job.targets[0].offset, 100);
        // The same for a pause: nothing delivered, fetched again from the position on resume.
        let mut s = state(ConsumerConfig::default());
        s.assign([tp(0)]);
        s.seek(&tp(0), 0).unwrap();
        route(&mut s, now, &[(0, 1)]);
        let (id, job) = fetches(&s.plan(now)).remove(0);
        s.pause(&tp(0));
        s.apply(id, done(&job.targets, |t| data(t, 5, 200)), now);
        assert!(s.pop().is_none());
        assert!(
            fetches(&s.plan(now)).is_empty(),
            "a paused partition is not fetched"
        );
        s.resume(&tp(0));
        let (_, job) = fetches(&s.plan(now)).remove(0);
        assert_eq!(job.targets[0].offset, 0);
    }

    #[test]
    fn a_moved_leader_is_looked_up_again_and_fetching_resumes_at_the_same_offset() {
        let now = Instant::now();
        let mut s = state(ConsumerConfig::default());
        s.assign([tp(0)]);
        s.seek(&tp(0), 7).unwrap();
        route(&mut s, now, &[(0, 1)]);
        let (id, job) = fetches(&s.plan(now)).remove(0);
        s.apply(
            id,
            done(&job.targets, |_| {
                PartitionOutcome::Error(ErrorCode::NOT_LEADER_OR_FOLLOWER)
            }),
            now,
        );
        assert!(
            s.pop().is_none(),
            "a retriable error is not the application's business"
        );
        assert_eq!(s.partitions[&tp(0)].leader, None);
        // After the backoff, metadata first, then the new leader from the same offset.
        let later = now + Duration::from_millis(150);
        assert!(s.plan(now).jobs.is_empty(), "backing off");
        route(&mut s, later, &[(0, 3)]);
        let (_, job) = fetches(&s.plan(later)).remove(0);
        assert_eq!((job.broker, job.targets[0].offset), (3, 7));
        assert_eq!(s.position(&tp(0)), Some(7));
    }

    #[test]
    fn a_lost_connection_forgets_the_leader_and_keeps_the_offset() {
        let now = Instant::now();
        let mut s = state(ConsumerConfig::default());
        s.assign([tp(0)]);
        s.seek(&tp(0), 3).unwrap();
        route(&mut s, now, &[(0, 1)]);
        let (id, _) = fetches(&s.plan(now)).remove(0);
        let error = Error::Disconnected {
            broker: "h:1".into(),
        };
        s.apply(
            id,
            Outcome::Fetch(FetchOutcome::Failed { error, stale: true }),
            now,
        );
        assert!(s.pop().is_none());
        assert_eq!(s.partitions[&tp(0)].leader, None);
        assert_eq!(s.partitions[&tp(0)].fetch, FetchState::At(3));
    }

    #[test]
    fn offset_out_of_range_resets_or_stops_per_policy() {
        let now = Instant::now();
        for (reset, expect) in [
            (
                OffsetReset::Earliest,
                FetchState::Reset(OffsetSpec::Earliest),
            ),
            (OffsetReset::Latest, FetchState::Reset(OffsetSpec::Latest)),
            (OffsetReset::None, FetchState::Stopped),
        ] {
            let mut s = ConsumerState::new(ConsumerConfig {
                auto_offset_reset: reset,
                ..Default::default()
            });
            s.assign([tp(0)]);
            s.seek(&tp(0), 1000).unwrap();
            route(&mut s, now, &[(0, 1)]);
            let (id, job) = fetches(&s.plan(now)).remove(0);
            s.apply(
                id,
                done(&job.targets, |_| {
                    PartitionOutcome::Error(ErrorCode::OFFSET_OUT_OF_RANGE)
                }),
                now,
            );
            assert_eq!(s.partitions[&tp(0)].fetch, expect);
            if reset == OffsetReset::None {
                let err = s.pop().unwrap().unwrap_err();
                assert!(
                    matches!(&err, Error::Consume { topic, partition: 0, offset: 1000, .. } if topic == "t"),
                    "{err}"
                );
                assert!(err.to_string().contains("t/0 at offset 1000"), "{err}");
                assert!(s.plan(now).jobs.is_empty(), "stopped until a seek");
            } else {
                let plan = s.plan(now);
                let resets: Vec<&Job> = plan
                    .jobs
                    .iter()
                    .map(|(_, j)| j)
                    .filter(|j| matches!(j, Job::Reset(_)))
                    .collect();
                assert_eq!(resets.len(), 1);
            }
        }
    }

    #[test]
    fn committed_offsets_start_partitions_and_missing_ones_follow_the_reset_policy() {
        let now = Instant::now();
        let mut s = ConsumerState::new(ConsumerConfig {
            group: crate::group::GroupConfig::new("g"),
            auto_offset_reset: OffsetReset::Latest,
            ..Default::default()
        });
        s.assign([tp(0), tp(1)]);
        let plan = s.plan(now);
        let (id, job) = plan
            .jobs
            .iter()
            .find(|(_, j)| matches!(j, Job::Committed(_)))
            .unwrap();
        assert!(matches!(job, Job::Committed(tps) if tps.len() == 2));
        let offsets = HashMap::from([(tp(0), 42)]);
        s.apply(*id, Outcome::Committed(Ok(offsets)), now);
        assert_eq!(s.position(&tp(0)), Some(42));
        assert_eq!(
            s.partitions[&tp(1)].fetch,
            FetchState::Reset(OffsetSpec::Latest)
        );
        let plan = s.plan(now);
        let (id, _) = plan
            .jobs
            .iter()
            .find(|(_, j)| matches!(j, Job::Reset(_)))
            .unwrap();
        let listed = Listed {
            offsets: HashMap::from([(
                tp(1),
                Found {
                    offset: 9,
                    timestamp: -1,
                },
            )]),
            errors: Vec::new(),
        };
        s.apply(*id, Outcome::Reset(listed), now);
        assert_eq!(s.position(&tp(1)), Some(9));
    }

    #[test]
    fn a_corrupt_batch_stops_the_partition_after_the_records_before_it() {
        let now = Instant::now();
        let mut s = state(ConsumerConfig::default());
        s.assign([tp(0)]);
        s.seek(&tp(0), 0).unwrap();
        route(&mut s, now, &[(0, 1)]);
        let (id, job) = fetches(&s.plan(now)).remove(0);
        s.apply(
            id,
            done(&job.targets, |t| {
                let PartitionOutcome::Data { mut decoded, .. } = data(t, 2, 10) else {
                    unreachable!()
                };
                decoded.error = Some((
                    2,
                    ProtocolError::CrcMismatch {
                        expected: 1,
                        computed: 2,
                        base_offset: 2,
                    },
                ));
                PartitionOutcome::Data {
                    decoded,
                    high_watermark: 10,
                    last_stable_offset: -1,
                    log_start_offset: 0,
                }
            }),
            now,
        );
        assert_eq!(s.pop().unwrap().unwrap().records.len(), 2);
        let err = s.pop().unwrap().unwrap_err();
        assert!(err.to_string().contains("t/0 at offset 2"), "{err}");
        assert!(err.to_string().contains("h:1"), "{err}");
        assert!(fetches(&s.plan(now)).is_empty());
        s.seek(&tp(0), 3).unwrap();
        assert_eq!(fetches(&s.plan(now))[0].1.targets[0].offset, 3);
    }

    #[test]
    fn no_whole_batch_doubles_the_partition_limit_up_to_fetch_max_bytes() {
        let now = Instant::now();
        let mut s = state(ConsumerConfig {
            max_partition_fetch_bytes: 1000,
            fetch_max_bytes: 3000,
            ..Default::default()
        });
        s.assign([tp(0)]);
        s.seek(&tp(0), 0).unwrap();
        route(&mut s, now, &[(0, 1)]);
        let mut asked = Vec::new();
        for _ in 0..3 {
            let (id, job) = fetches(&s.plan(now)).remove(0);
            asked.push(job.targets[0].max_bytes);
            let outcome = PartitionOutcome::Data {
                decoded: Decoded {
                    next_offset: 0,
                    truncated: true,
                    ..Default::default()
                },
                high_watermark: 10,
                last_stable_offset: -1,
                log_start_offset: 0,
            };
            s.apply(
                id,
                Outcome::Fetch(FetchOutcome::Done {
                    broker: "h:1".into(),
                    partitions: vec![(job.targets[0].clone(), outcome)],
                }),
                now,
            );
        }
        assert_eq!(asked, [1000, 2000, 3000]);
    }

    #[test]
    fn prefetching_stops_at_the_bound_and_resumes_when_the_application_catches_up() {
        let now = Instant::now();
        let mut s = state(ConsumerConfig {
            max_prefetch_bytes: 1000,
            max_partition_fetch_bytes: 400,
            fetch_max_bytes: 10_000,
            ..Default::default()
        });
        s.assign([tp(0)]);
        s.seek(&tp(0), 0).unwrap();
        route(&mut s, now, &[(0, 1)]);
        let (id, job) = fetches(&s.plan(now)).remove(0);
        assert!(job.max_bytes <= 1000);
        // 10 records of 100 bytes fill the bound.
        s.apply(id, done(&job.targets, |t| data(t, 10, 100)), now);
        assert_eq!(s.buffered, 1000);
        assert!(fetches(&s.plan(now)).is_empty(), "the bound is reached");
        s.pop().unwrap().unwrap();
        assert_eq!(s.buffered, 0);
        assert_eq!(fetches(&s.plan(now))[0].1.targets[0].offset, 10);
    }

    #[test]
    fn control_only_data_moves_the_position_without_delivering_anything() {
        let now = Instant::now();
        let mut s = state(ConsumerConfig::default());
        s.assign([tp(0)]);
        s.seek(&tp(0), 5).unwrap();
        route(&mut s, now, &[(0, 1)]);
        let (id, job) = fetches(&s.plan(now)).remove(0);
        let outcome = |_: &FetchTarget| PartitionOutcome::Data {
            decoded: Decoded {
                next_offset: 6,
                batches: 1,
                ..Default::default()
            },
            high_watermark: 6,
            last_stable_offset: 6,
            log_start_offset: 0,
        };
        s.apply(id, done(&job.targets, outcome), now);
        assert!(s.pop().is_none());
        assert_eq!(s.position(&tp(0)), Some(6));
    }
}
