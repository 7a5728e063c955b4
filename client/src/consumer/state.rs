//! Per-partition consuming state, as plain data advanced by explicit calls (no IO, no clock).
//!
//! Each assigned partition has:
//! - a fetch state: look up the committed offset, look up the earliest/latest offset, fetch from an
//!   offset, or stopped after an error was handed to the application (until it seeks);
//! - a position: the offset of the next record the application will get;
//! - an epoch, renewed by every seek, reset and reassignment: work started under an older
//!   epoch (a fetch or a lookup in flight) is discarded when it completes, so no record from before
//!   a seek is ever delivered;
//! - a queue of fetched, undelivered records, counted against the prefetch bound; a paused
//!   partition keeps its queue (not handed out, not fetched further) for when it is resumed.
//!
//! [`plan`](super::plan) plans the requests this state needs and applies their outcomes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kbus_protocol::error_code::ErrorCode;

use super::config::{ConsumerConfig, OffsetReset};
use super::job::JobBook;
use super::record::PartitionRecords;
use crate::error::{Error, Result};
use crate::failure_streak::FailureStreak;
use crate::list_offsets::OffsetSpec;
use crate::TopicPartition;

/// What a partition waits for before it can be fetched, or where it is fetched from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FetchState {
    /// Look up the group's committed offset.
    Committed,
    /// Look up the earliest or latest offset.
    Reset(OffsetSpec),
    /// Fetch from this offset.
    At(i64),
    /// An error was handed to the application; nothing happens until it seeks.
    Stopped,
}

/// One entry of a partition's delivery queue.
#[derive(Debug)]
pub(crate) enum Item {
    /// Records, and the bytes they count against the prefetch bound.
    Records(PartitionRecords, usize),
    /// Nothing to show up to this offset (transaction markers, aborted records): the position moves.
    Skip(i64),
    /// An error for the application, after the records before it.
    Error(Error),
}

/// The state of one assigned partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    /// The topic, shared with every record handed out.
    pub topic: Arc<str>,
    /// Renewed whenever earlier work on the partition must be discarded.
    pub epoch: u64,
    /// What happens next.
    pub fetch: FetchState,
    /// The offset of the next record the application gets; `None` until known.
    pub position: Option<i64>,
    /// Paused by the application: not fetched.
    pub paused: bool,
    /// The leader's broker id and leader epoch, `None` until metadata names one (or after an error
    /// said it moved).
    pub leader: Option<(i32, i32)>,
    /// The job (fetch or lookup) now covering the partition.
    pub job: Option<u64>,
    /// No new job before this time (backoff after an error).
    pub retry_at: Option<Instant>,
    /// Errors in a row, for the backoff.
    pub failures: u32,
    /// The most bytes asked per fetch; doubled when not even one batch fit, halved when a fetch
    /// timed out.
    pub max_bytes: i32,
    /// Fetched, undelivered items.
    pub queue: VecDeque<Item>,
    /// Bytes held by `queue`.
    pub buffered: usize,
}

impl PartitionState {
    /// True when the partition may be in a new job at `now`.
    pub fn idle(&self, now: Instant) -> bool {
        self.job.is_none() && self.retry_at.is_none_or(|at| at <= now)
    }

    /// Notes an error: the next attempt waits `base` doubled per error in a row, up to one second
    /// (or `base`, if larger).
    pub fn back_off(&mut self, now: Instant, base: Duration) {
        self.failures = self.failures.saturating_add(1);
        let doubled = base.saturating_mul(1u32 << (self.failures - 1).min(10));
        self.retry_at = Some(now + doubled.min(Duration::from_secs(1).max(base)));
    }

    /// Notes a success: no more backoff.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    /// A fetch covering the partition timed out (a broker too slow for `request.timeout.ms`):
    /// ask for half as much next time, down to [`LEAST_FETCH_BYTES`] (or the current size, if
    /// smaller), so an overloaded broker gets requests it can answer in time.
    pub fn ask_less(&mut self) {
        self.max_bytes = (self.max_bytes / 2)
            .max(LEAST_FETCH_BYTES)
            .min(self.max_bytes);
    }

    /// A fetch came back: grow a size cut by [`ask_less`](Self::ask_less) back towards
    /// `configured` (`max.partition.fetch.bytes`), doubling per answer.
    pub fn ask_more(&mut self, configured: i32) {
        if self.max_bytes < configured {
            self.max_bytes = self.max_bytes.saturating_mul(2).min(configured);
        }
    }
}

/// The least a partition's fetch size is cut to after timeouts.
pub(crate) const LEAST_FETCH_BYTES: i32 = 64 * 1024;

/// What keeps failing, for [`FailureStreak`]s: the fetches to one broker, one partition's data,
/// the offset lookups, the metadata lookups.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Trouble {
    /// Fetch requests to this broker id.
    Fetch(i32),
    /// Error codes for this partition in fetch answers.
    Partition(TopicPartition),
    /// Committed-offset and earliest/latest lookups.
    Lookup,
    /// Metadata lookups for leaders.
    Metadata,
}

/// The most warnings kept for the application; older ones are dropped first.
const MAX_WARNINGS: usize = 64;

/// The consuming state of every assigned partition, and the queue of what is ready for the
/// application.
#[derive(Debug)]
pub(crate) struct ConsumerState {
    /// The settings the state depends on.
    pub config: ConsumerConfig,
    /// The assigned partitions.
    pub partitions: HashMap<TopicPartition, PartitionState>,
    /// Partitions with a queued item, in arrival order, with the epoch the item was queued under.
    pub ready: VecDeque<(TopicPartition, u64)>,
    /// The same for paused partitions: held back until they are resumed.
    pub held: VecDeque<(TopicPartition, u64)>,
    /// Errors for the application that concern no single partition.
    pub errors: VecDeque<Error>,
    /// Failures the consumer keeps retrying by itself that went on long enough for the
    /// application to hear of them ([`Event::Error`](super::Event::Error)).
    pub warnings: VecDeque<Error>,
    /// Warnings made so far (the driver logs the new ones).
    pub warnings_made: u64,
    /// Failures in a row, by what failed.
    pub streaks: HashMap<Trouble, FailureStreak>,
    /// Bytes held by every partition's queue.
    pub buffered: usize,
    /// Bytes that fetches in flight may still bring.
    pub reserved: usize,
    /// The jobs in flight.
    pub jobs: JobBook,
    next_epoch: u64,
}

impl ConsumerState {
    /// No partitions yet.
    pub fn new(config: ConsumerConfig) -> Self {
        ConsumerState {
            config,
            partitions: HashMap::new(),
            ready: VecDeque::new(),
            held: VecDeque::new(),
            errors: VecDeque::new(),
            warnings: VecDeque::new(),
            warnings_made: 0,
            streaks: HashMap::new(),
            buffered: 0,
            reserved: 0,
            jobs: JobBook::default(),
            next_epoch: 0,
        }
    }

    fn new_epoch(&mut self) -> u64 {
        self.next_epoch += 1;
        self.next_epoch
    }

    /// Where a partition without a known offset starts.
    fn initial_state(&self) -> FetchState {
        if self.config.group_id().is_some() {
            FetchState::Committed
        } else {
            self.reset_state()
        }
    }

    /// The state `auto.offset.reset` leads to; `Stopped` for `none` (the caller queues the error).
    pub fn reset_state(&self) -> FetchState {
        match self.config.auto_offset_reset {
            OffsetReset::Earliest => FetchState::Reset(OffsetSpec::Earliest),
            OffsetReset::Latest => FetchState::Reset(OffsetSpec::Latest),
            OffsetReset::None => FetchState::Stopped,
        }
    }

    /// Replaces the assignment. Partitions kept keep their state; new ones start from the
    /// committed offset (with a group) or per `auto.offset.reset`.
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let wanted: HashSet<TopicPartition> = partitions.into_iter().collect();
        let dropped: Vec<TopicPartition> = self
            .partitions
            .keys()
            .filter(|tp| !wanted.contains(*tp))
            .cloned()
            .collect();
        self.remove(&dropped);
        self.add(wanted);
    }

    /// Adds `partitions` to the assignment; those already assigned keep their state, new ones
    /// start from the committed offset (with a group) or per `auto.offset.reset`.
    pub fn add(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        for tp in partitions {
            if self.partitions.contains_key(&tp) {
                continue;
            }
            let epoch = self.new_epoch();
            let fetch = self.initial_state();
            let state = PartitionState {
                topic: Arc::from(tp.topic.as_str()),
                epoch,
                fetch,
                position: None,
                paused: false,
                leader: None,
                job: None,
                retry_at: None,
                failures: 0,
                max_bytes: self.config.max_partition_fetch_bytes,
                queue: VecDeque::new(),
                buffered: 0,
            };
            self.partitions.insert(tp.clone(), state);
            if fetch == FetchState::Stopped {
                self.push(&tp, Item::Error(no_offset_error(&tp)));
            }
        }
    }

    /// Takes `partitions` out of the assignment (those not assigned are ignored): they are no
    /// longer fetched, and their prefetched records are dropped. Returns the position each had.
    pub fn remove(&mut self, partitions: &[TopicPartition]) -> Vec<(TopicPartition, i64)> {
        let mut positions = Vec::new();
        for tp in partitions {
            if let Some(p) = self.partitions.remove(tp) {
                self.buffered -= p.buffered;
                if let Some(position) = p.position {
                    positions.push((tp.clone(), position));
                }
            }
        }
        let partitions = &self.partitions;
        self.held.retain(|(tp, _)| partitions.contains_key(tp));
        positions
    }

    /// The assigned partitions, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        let mut tps: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        tps.sort();
        tps
    }

    fn get_mut(&mut self, tp: &TopicPartition, what: &str) -> Result<&mut PartitionState> {
        self.partitions.get_mut(tp).ok_or_else(|| Error::Misuse {
            message: format!("{what}: {tp} is not assigned to this consumer"),
        })
    }

    /// Drops the partition's queued items and renews its epoch, so work in flight is discarded.
    fn restart(&mut self, tp: &TopicPartition) {
        let epoch = self.new_epoch();
        if let Some(p) = self.partitions.get_mut(tp) {
            self.buffered -= p.buffered;
            p.buffered = 0;
            p.queue.clear();
            p.epoch = epoch;
        }
    }

    /// The next record of `tp` the application gets will be at `offset`.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        if offset < 0 {
            return Err(Error::Misuse {
                message: format!("seek: offset {offset} of {tp} is negative"),
            });
        }
        self.get_mut(tp, "seek")?;
        self.restart(tp);
        if let Some(p) = self.partitions.get_mut(tp) {
            p.fetch = FetchState::At(offset);
            p.position = Some(offset);
            p.succeeded();
        }
        Ok(())
    }

    /// The next record of `tp` will be the first (`Earliest`) or the next produced (`Latest`); the
    /// position is unknown until the offset is looked up.
    pub fn seek_to(&mut self, tp: &TopicPartition, to: OffsetSpec) -> Result<()> {
        self.get_mut(tp, "seek")?;
        self.restart(tp);
        if let Some(p) = self.partitions.get_mut(tp) {
            p.fetch = FetchState::Reset(to);
            p.position = None;
            p.succeeded();
        }
        Ok(())
    }

    /// Stops fetching `tp` and handing out its records (unassigned partitions are ignored). What
    /// was prefetched stays queued (as in the Java client since KAFKA-7548), so pausing for a
    /// moment, as backpressure does, costs no second fetch of the same records; a fetch in flight
    /// still lands in the queue.
    pub fn pause(&mut self, tp: &TopicPartition) {
        if let Some(p) = self.partitions.get_mut(tp) {
            p.paused = true;
        }
    }

    /// Fetches `tp` and hands out its queued records again after [`pause`](Self::pause)
    /// (unassigned partitions are ignored).
    pub fn resume(&mut self, tp: &TopicPartition) {
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        if !std::mem::replace(&mut p.paused, false) {
            return;
        }
        let (back, held): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(t, _)| t == tp);
        self.held = held;
        self.ready.extend(back);
    }

    /// The paused partitions, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        let mut tps: Vec<TopicPartition> = self
            .partitions
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(tp, _)| tp.clone())
            .collect();
        tps.sort();
        tps
    }

    /// The offset of the next record of `tp` the application will get, if known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp).and_then(|p| p.position)
    }

    /// The position of every assigned partition that has one: what a commit of everything
    /// consumed so far writes.
    pub fn consumed(&self) -> Vec<(TopicPartition, i64)> {
        let mut out: Vec<(TopicPartition, i64)> = self
            .partitions
            .iter()
            .filter_map(|(tp, p)| p.position.map(|o| (tp.clone(), o)))
            .collect();
        out.sort();
        out
    }

    /// Queues `item` for delivery after the partition's earlier items.
    pub fn push(&mut self, tp: &TopicPartition, item: Item) {
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        if let Item::Records(_, bytes) = &item {
            p.buffered += bytes;
            self.buffered += bytes;
        }
        p.queue.push_back(item);
        let entry = (tp.clone(), p.epoch);
        if p.paused {
            self.held.push_back(entry);
        } else {
            self.ready.push_back(entry);
        }
    }

    /// True when [`pop`](Self::pop) or [`pop_warning`](Self::pop_warning) has something to
    /// return.
    pub fn has_ready(&self) -> bool {
        !self.errors.is_empty() || !self.warnings.is_empty() || !self.ready.is_empty()
    }

    /// Counts a retriable failure of `trouble` at `now`; a streak long enough for the
    /// application to hear of becomes a warning.
    pub fn trouble(&mut self, trouble: Trouble, error: Error, now: Instant) {
        if self.streaks.entry(trouble).or_default().failed(now) {
            if self.warnings.len() == MAX_WARNINGS {
                self.warnings.pop_front();
            }
            self.warnings.push_back(error);
            self.warnings_made += 1;
        }
    }

    /// Ends the failure streak of `trouble`.
    pub fn untroubled(&mut self, trouble: &Trouble) {
        self.streaks.remove(trouble);
    }

    /// The oldest warning not handed out yet.
    pub fn pop_warning(&mut self) -> Option<Error> {
        self.warnings.pop_front()
    }

    /// The next records or error for the application, in fetch order across partitions and offset
    /// order within one. Returning records moves the partition's position past them.
    pub fn pop(&mut self) -> Option<Result<PartitionRecords>> {
        if let Some(e) = self.errors.pop_front() {
            return Some(Err(e));
        }
        while let Some((tp, epoch)) = self.ready.pop_front() {
            let Some(p) = self.partitions.get_mut(&tp) else {
                continue;
            };
            if p.epoch != epoch {
                continue;
            }
            if p.paused {
                self.held.push_back((tp, epoch));
                continue;
            }
            match p.queue.pop_front() {
                None => continue,
                Some(Item::Records(records, bytes)) => {
                    p.buffered -= bytes;
                    self.buffered -= bytes;
                    p.position = Some(records.next_offset);
                    return Some(Ok(records));
                }
                Some(Item::Skip(offset)) => p.position = Some(offset),
                Some(Item::Error(e)) => return Some(Err(e)),
            }
        }
        None
    }

    /// Bytes one partition may hold before it is no longer fetched: an even share of the bound,
    /// but at least one fetch's worth.
    pub fn partition_cap(&self) -> usize {
        let share = self.config.max_prefetch_bytes / self.partitions.len().max(1);
        share
            .max(self.config.max_partition_fetch_bytes.max(1) as usize)
            .min(self.config.max_prefetch_bytes)
    }
}

/// The error for a partition with nowhere to start under `auto.offset.reset=none`.
pub(crate) fn no_offset_error(tp: &TopicPartition) -> Error {
    Error::Consume {
        broker: None,
        topic: tp.topic.clone(),
        partition: tp.partition,
        offset: -1,
        code: ErrorCode::OFFSET_OUT_OF_RANGE,
        message:
            "no committed offset, and auto.offset.reset is none: seek to choose where to start"
                .into(),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn records(p: i32, from: i64, n: i64) -> PartitionRecords {
        PartitionRecords {
            topic_partition: tp(p),
            records: Vec::new(),
            high_watermark: from + n,
            last_stable_offset: -1,
            log_start_offset: 0,
            next_offset: from + n,
        }
    }

    fn positions(reset: OffsetReset, group: bool) -> ConsumerState {
        ConsumerState::new(ConsumerConfig {
            auto_offset_reset: reset,
            group: crate::group::GroupConfig::new(if group { "g" } else { "" }),
            ..Default::default()
        })
    }

    #[test]
    fn new_partitions_start_from_the_committed_offset_with_a_group_else_per_reset_policy() {
        let mut s = positions(OffsetReset::Earliest, true);
        s.assign([tp(0)]);
        assert_eq!(s.partitions[&tp(0)].fetch, FetchState::Committed);
        let mut s = positions(OffsetReset::Latest, false);
        s.assign([tp(0)]);
        assert_eq!(
            s.partitions[&tp(0)].fetch,
            FetchState::Reset(OffsetSpec::Latest)
        );
        assert_eq!(s.position(&tp(0)), None);
        // With `none` and no group there is nowhere to start: the application hears it.
        let mut s = positions(OffsetReset::None, false);
        s.assign([tp(0)]);
        assert_eq!(s.partitions[&tp(0)].fetch, FetchState::Stopped);
        let err = s.pop().unwrap().unwrap_err();
        assert!(err.to_string().contains("t/0"), "{err}");
    }

    #[test]
    fn reassigning_keeps_kept_partitions_and_drops_the_others_with_their_buffers() {
        let mut s = positions(OffsetReset::Earliest, false);
        s.assign([tp(0), tp(1)]);
        s.seek(&tp(0), 5).unwrap();
        s.push(&tp(1), Item::Records(records(1, 0, 3), 100));
        assert_eq!(s.buffered, 100);
        s.assign([tp(0), tp(2)]);
        assert_eq!(s.assignment(), vec![tp(0), tp(2)]);
        assert_eq!(s.position(&tp(0)), Some(5));
        assert_eq!(s.buffered, 0);
        assert!(
            s.pop().is_none(),
            "records of a dropped partition are not delivered"
        );
    }

    #[test]
    fn partitions_added_and_removed_one_by_one_leave_the_others_alone() {
        let mut s = positions(OffsetReset::Earliest, true);
        s.add([tp(0), tp(1)]);
        s.seek(&tp(0), 4).unwrap();
        s.push(&tp(0), Item::Records(records(0, 4, 2), 30));
        s.push(&tp(1), Item::Records(records(1, 0, 1), 10));
        // Adding an assigned partition again changes nothing.
        s.add([tp(0), tp(2)]);
        assert_eq!(s.position(&tp(0)), Some(4));
        assert_eq!(s.partitions[&tp(2)].fetch, FetchState::Committed);
        assert_eq!(s.buffered, 40);

        let removed = s.remove(&[tp(0), tp(2), tp(7)]);
        assert_eq!(removed, vec![(tp(0), 4)], "only known positions come back");
        assert_eq!(s.assignment(), vec![tp(1)]);
        assert_eq!(s.buffered, 10);
        let got = s.pop().unwrap().unwrap();
        assert_eq!(
            got.topic_partition,
            tp(1),
            "a removed partition delivers nothing"
        );
        assert!(s.pop().is_none());
    }

    #[test]
    fn delivery_moves_the_position_and_frees_the_buffer() {
        let mut s = positions(OffsetReset::Earliest, false);
        s.assign([tp(0)]);
        s.seek(&tp(0), 10).unwrap();
        s.push(&tp(0), Item::Records(records(0, 10, 5), 50));
        s.push(&tp(0), Item::Skip(16));
        s.push(&tp(0), Item::Records(records(0, 16, 2), 20));
        assert_eq!((s.buffered, s.partitions[&tp(0)].buffered), (70, 70));
        assert_eq!(s.position(&tp(0)), Some(10), "queued is not delivered");
        assert_eq!(s.pop().unwrap().unwrap().next_offset, 15);
        assert_eq!(s.position(&tp(0)), Some(15));
        assert_eq!(s.pop().unwrap().unwrap().next_offset, 18);
        assert_eq!(s.position(&tp(0)), Some(18));
        assert_eq!(s.buffered, 0);
        assert!(s.pop().is_none());
    }

    #[test]
    fn a_seek_discards_queued_records_and_renews_the_epoch() {
        let mut s = positions(OffsetReset::Earliest, false);
        s.assign([tp(0), tp(1)]);
        s.seek(&tp(0), 0).unwrap();
        s.push(&tp(0), Item::Records(records(0, 0, 5), 50));
        s.push(&tp(1), Item::Records(records(1, 0, 1), 10));
        let before = s.partitions[&tp(0)].epoch;
        s.seek(&tp(0), 3).unwrap();
        assert_ne!(s.partitions[&tp(0)].epoch, before);
        assert_eq!(s.partitions[&tp(0)].fetch, FetchState::At(3));
        assert_eq!(s.position(&tp(0)), Some(3));
        assert_eq!(s.buffered, 10);
        let got = s.pop().unwrap().unwrap();
        assert_eq!(
            got.topic_partition,
            tp(1),
            "only the other partition's records remain"
        );
        assert!(s.pop().is_none());
        assert!(
            s.seek(&tp(9), 0).is_err(),
            "an unassigned partition cannot be sought"
        );
        assert!(s.seek(&tp(0), -1).is_err());
    }

    #[test]
    fn seek_to_an_end_forgets_the_position_until_looked_up() {
        let mut s = positions(OffsetReset::Earliest, false);
        s.assign([tp(0)]);
        s.seek(&tp(0), 7).unwrap();
        s.seek_to(&tp(0), OffsetSpec::Latest).unwrap();
        assert_eq!(s.position(&tp(0)), None);
        assert_eq!(
            s.partitions[&tp(0)].fetch,
            FetchState::Reset(OffsetSpec::Latest)
        );
    }

    /// Partitions 0 and 1, both to be fetched from offset 0.
    fn two_partitions_from_zero() -> ConsumerState {
        let mut s = positions(OffsetReset::Earliest, false);
        s.assign([tp(0), tp(1)]);
        s.seek(&tp(0), 0).unwrap();
        s.seek(&tp(1), 0).unwrap();
        s
    }

    #[test]
    fn a_paused_partition_keeps_its_prefetched_records_for_its_resumption() {
        let mut s = two_partitions_from_zero();
        s.push(&tp(0), Item::Records(records(0, 0, 5), 50));
        s.push(&tp(1), Item::Records(records(1, 0, 2), 20));
        s.partitions.get_mut(&tp(0)).unwrap().fetch = FetchState::At(5);
        s.pause(&tp(0));
        assert_eq!(s.paused(), vec![tp(0)]);
        assert_eq!(
            s.partitions[&tp(0)].fetch,
            FetchState::At(5),
            "fetching goes on from past the prefetched records on resume"
        );
        let got = s.pop().unwrap().unwrap();
        assert_eq!(got.topic_partition, tp(1), "only the running partition");
        assert!(s.pop().is_none(), "the paused partition's records wait");
        // A fetch that was in flight lands in the paused partition's queue, not in the hand-out.
        s.push(&tp(0), Item::Records(records(0, 5, 3), 30));
        assert!(!s.has_ready());
        assert!(s.pop().is_none());
        assert_eq!((s.buffered, s.partitions[&tp(0)].buffered), (80, 80));
        assert_eq!(s.position(&tp(0)), Some(0), "nothing of it handed out");

        s.resume(&tp(0));
        assert!(s.paused().is_empty());
        assert!(s.has_ready());
        assert_eq!(s.pop().unwrap().unwrap().next_offset, 5);
        assert_eq!(s.pop().unwrap().unwrap().next_offset, 8);
        assert_eq!(s.position(&tp(0)), Some(8));
        assert_eq!(s.buffered, 0);
        assert!(s.pop().is_none());
        s.resume(&tp(0));
        assert!(s.pop().is_none(), "resuming twice hands out nothing twice");
        s.pause(&tp(5));
        s.resume(&tp(5));
    }

    #[test]
    fn a_seek_or_a_removal_while_paused_drops_what_was_held() {
        let mut s = two_partitions_from_zero();
        s.pause(&tp(0));
        s.pause(&tp(1));
        s.push(&tp(0), Item::Records(records(0, 0, 5), 50));
        s.push(&tp(1), Item::Records(records(1, 0, 5), 50));
        s.seek(&tp(0), 2).unwrap();
        s.remove(&[tp(1)]);
        assert!(s.held.iter().all(|(t, _)| *t == tp(0)));
        assert_eq!(s.buffered, 0);
        s.resume(&tp(0));
        assert!(
            s.pop().is_none(),
            "the records from before the seek are gone"
        );
        s.push(&tp(0), Item::Records(records(0, 2, 1), 10));
        assert_eq!(s.pop().unwrap().unwrap().next_offset, 3);
    }

    #[test]
    fn an_error_is_delivered_after_the_records_before_it() {
        let mut s = positions(OffsetReset::Earliest, false);
        s.assign([tp(0)]);
        s.seek(&tp(0), 0).unwrap();
        s.push(&tp(0), Item::Records(records(0, 0, 2), 1));
        s.push(&tp(0), Item::Error(no_offset_error(&tp(0))));
        assert!(s.pop().unwrap().is_ok());
        assert!(s.pop().unwrap().is_err());
        assert!(s.pop().is_none());
    }

    #[test]
    fn backoff_doubles_up_to_a_second_and_a_success_clears_it() {
        let mut s = positions(OffsetReset::Earliest, false);
        s.assign([tp(0)]);
        let now = Instant::now();
        let p = s.partitions.get_mut(&tp(0)).unwrap();
        let base = Duration::from_millis(100);
        let mut waits = Vec::new();
        for _ in 0..6 {
            p.back_off(now, base);
            waits.push(p.retry_at.unwrap() - now);
        }
        let ms: Vec<u128> = waits.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert!(!p.idle(now));
        assert!(p.idle(now + Duration::from_secs(1)));
        p.succeeded();
        assert!(p.idle(now));
    }

    #[test]
    fn each_partition_may_prefetch_an_even_share_but_at_least_one_fetch() {
        let mut s = ConsumerState::new(ConsumerConfig {
            max_prefetch_bytes: 8 << 20,
            max_partition_fetch_bytes: 1 << 20,
            ..Default::default()
        });
        s.assign([tp(0), tp(1)]);
        assert_eq!(s.partition_cap(), 4 << 20);
        s.assign((0..100).map(tp));
        assert_eq!(s.partition_cap(), 1 << 20);
    }
}
