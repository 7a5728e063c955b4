//! The consuming side of the Kafka bus: one task owning the group member. It reads records,
//! schedules them ([`Schedule`]: in order per aggregate, side by side across aggregates), runs each
//! on its own task ([`handle`]), tracks what is finished per partition ([`PartitionProgress`]) and
//! commits that — on an interval, when partitions are revoked, and at shutdown.
//!
//! - A record of a type no handler here takes, or without an `event_type` header, is finished at
//!   once without being read (and counted as skipped).
//! - Reading ahead: the events of a large batch of records are read (their JSON base fields) on a
//!   task of their own while this one runs the handlers of the batches before, so the two cores
//!   of a small machine share the work; batches enter the schedule in the order they arrived.
//! - Backpressure: a partition holding more than its share of `max_in_flight_events` (records in
//!   the schedule or running, not finished) is paused, and resumed below half of it: a slow
//!   handler pauses its own partitions, the others go on, and memory stays bounded whatever the
//!   handlers' speed. Batches still being read ahead do not count (they are at most four): a
//!   fetch's worth of records arrives at once, and counting it would pause a partition whose
//!   handlers keep up, stopping its next fetch until the batch was handled.
//! - Revoked partitions: their waiting events are dropped (the next owner reads them), their
//!   running ones get until the revocation timeout (`session_timeout_ms`) to finish, then their
//!   progress is committed and the revocation acknowledged. Lost partitions: their events are
//!   abandoned at once, nothing is committed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kbus_client::consumer::{is_commit_fenced, Consumer, ConsumerRecord, Event, OffsetAndMetadata};
use kbus_client::TopicPartition;
use tokio::sync::watch;
use tokio::task::{AbortHandle, Id, JoinError, JoinHandle, JoinSet};

use super::handle::{handle, header, read, Context, Outcome, Read};
use super::progress::PartitionProgress;
use super::schedule::Schedule;
use crate::bus::error::BusError;
use crate::bus::stats::Counters;

/// The ordering key: the partition and the record key (the aggregate id); in the strict mode the
/// partition alone.
type Key = (i32, Bytes);

/// What a record's task returns.
type Done = (Key, i64, Outcome);

/// A record admitted for handling: its ordering key, the record, and its event once read.
type Admitted = (Key, ConsumerRecord, Option<Read>);

/// A batch of admitted records of one partition, read or being read.
struct Batch {
    partition: i32,
    /// How many records.
    len: usize,
    records: Records,
}

/// A batch's records: read when handled, or being read ahead.
enum Records {
    /// Small batches are read when handled.
    Read(Vec<Admitted>),
    Reading(JoinHandle<Vec<Admitted>>),
}

impl Batch {
    fn reading(&self) -> bool {
        matches!(self.records, Records::Reading(_))
    }
}

/// Batches of at least this many records are read ahead on a task of their own.
const READ_AHEAD_MIN: usize = 128;

/// No more records are taken from the consumer while this many batches wait to enter the
/// schedule.
const READ_AHEAD_MAX: usize = 4;

pub(crate) struct ConsumeLoop {
    pub ctx: Arc<Context>,
    pub consumer: Consumer,
    pub stop: watch::Receiver<bool>,
    progress: HashMap<TopicPartition, PartitionProgress>,
    schedule: Schedule<Key, (ConsumerRecord, Option<Read>)>,
    /// Admitted batches not in the schedule yet, in arrival order.
    reading: VecDeque<Batch>,
    tasks: JoinSet<Done>,
    /// The running tasks, to abort them and to know what a cancelled one was.
    /// The key holds the partition: the bus reads one topic, so no topic name is kept per event.
    running: HashMap<Id, (Key, i64, AbortHandle)>,
    /// Partitions paused for backpressure.
    paused: HashSet<TopicPartition>,
    dirty: bool,
    next_commit: Instant,
}

impl ConsumeLoop {
    pub fn new(ctx: Arc<Context>, consumer: Consumer, stop: watch::Receiver<bool>) -> Self {
        let max = if ctx.config.strict_ordering {
            usize::MAX
        } else {
            ctx.config.max_concurrency
        };
        ConsumeLoop {
            ctx,
            consumer,
            stop,
            progress: HashMap::new(),
            schedule: Schedule::new(max),
            reading: VecDeque::new(),
            tasks: JoinSet::new(),
            running: HashMap::new(),
            paused: HashSet::new(),
            dirty: false,
            next_commit: Instant::now(),
        }
    }

    fn commit_interval(&self) -> Duration {
        Duration::from_millis(self.ctx.config.commit_interval_ms.max(1))
    }

    /// Runs until the bus stops, then finishes within the shutdown timeout.
    pub async fn run(mut self) -> Result<(), BusError> {
        self.next_commit = Instant::now() + self.commit_interval();
        let result = loop {
            self.schedule_read();
            self.start_ready();
            // After starting what could start: handlers that finish at once leave nothing in
            // flight, and their partitions are not paused for records already done.
            self.backpressure();
            if *self.stop.borrow() {
                break Ok(());
            }
            let next_commit = self.next_commit;
            tokio::select! {
                biased;
                _ = self.stop.changed() => {}
                Some(done) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.on_done(done);
                    // Whatever else finished meanwhile, in the same turn.
                    while let Some(done) = self.tasks.try_join_next_with_id() {
                        self.on_done(done);
                    }
                }
                read = front_read(&mut self.reading), if self.reading.front().is_some_and(Batch::reading) => {
                    self.enter(read);
                }
                _ = tokio::time::sleep_until(next_commit.into()) => self.commit().await,
                event = self.consumer.poll(), if self.reading.len() < READ_AHEAD_MAX => {
                    if let Err(e) = self.on_event(event).await {
                        break Err(e);
                    }
                }
            }
        };
        let finished = self.finish().await;
        result.and(finished)
    }

    /// Starts every event the schedule lets start.
    fn start_ready(&mut self) {
        while let Some((key, (record, read))) = self.schedule.start_next() {
            self.run_event(key, record, read);
        }
    }

    /// Runs an event the schedule counts as running.
    fn run_event(&mut self, key: Key, record: ConsumerRecord, read: Option<Read>) {
        let ctx = self.ctx.clone();
        let offset = record.offset;
        let task_key = key.clone();
        let mut work = Box::pin(async move {
            let outcome = handle(&ctx, &record, read).await;
            (task_key, offset, outcome)
        });
        // A handler that finishes without waiting (most do, or they wait once the event is
        // under way) is run right here: no task, no wake-up across threads. One that waits
        // goes on in a task of its own, polled again there with a real waker.
        let mut noop = std::task::Context::from_waker(std::task::Waker::noop());
        match work.as_mut().poll(&mut noop) {
            std::task::Poll::Ready((key, offset, outcome)) => {
                self.finished(&key, offset, outcome);
            }
            std::task::Poll::Pending => {
                let abort = self.tasks.spawn(work);
                self.running.insert(abort.id(), (key, offset, abort));
            }
        }
    }

    /// A record's task ended.
    fn on_done(&mut self, done: Result<(Id, Done), JoinError>) {
        let (key, offset, outcome) = match done {
            Ok((id, done)) => {
                self.running.remove(&id);
                done
            }
            Err(e) => {
                // Aborted (revoked, lost, shutdown): not finished.
                let Some((key, offset, _)) = self.running.remove(&e.id()) else {
                    return;
                };
                (key, offset, Outcome::Abandoned)
            }
        };
        self.finished(&key, offset, outcome);
    }

    /// The event at `offset` of the key's partition (of ordering key `key`) ended with `outcome`.
    fn finished(&mut self, key: &Key, offset: i64, outcome: Outcome) {
        self.schedule.finished(key);
        if outcome.finished() {
            let partition = key.0;
            if let Some((_, p)) = self
                .progress
                .iter_mut()
                .find(|(tp, _)| tp.partition == partition)
            {
                p.finished(offset);
                self.dirty = true;
            }
        }
    }

    /// True when `key`'s partition is one of `tps`.
    fn of(key: &Key, tps: &[TopicPartition]) -> bool {
        tps.iter().any(|tp| tp.partition == key.0)
    }

    async fn on_event(&mut self, event: kbus_client::Result<Event>) -> Result<(), BusError> {
        let c = self.ctx.counters.clone();
        match event {
            Ok(Event::Records(batch)) => {
                self.ctx.metrics.lag(
                    batch.topic_partition.partition,
                    (batch.high_watermark - batch.next_offset).max(0),
                );
                self.receive(&batch.topic_partition, batch.records);
            }
            Ok(Event::Assigned(tps)) => {
                Counters::add(&c.rebalance_count, 1);
                self.ctx.metrics.rebalanced();
                let committed = self.committed(&tps).await;
                for tp in &tps {
                    let progress =
                        PartitionProgress::resume(committed.get(tp).and_then(Option::as_ref));
                    self.progress.insert(tp.clone(), progress);
                }
                self.ctx
                    .assignment
                    .send_modify(|owned| owned.extend(tps.iter().cloned()));
                tracing::info!(partitions = ?tps, "bus: partitions assigned");
            }
            Ok(Event::Revoked(tps)) => {
                self.settle_reading().await;
                self.revoke(&tps).await;
            }
            Ok(Event::Lost(tps)) => {
                tracing::warn!(partitions = ?tps, "bus: partitions lost; their events are abandoned");
                self.settle_reading().await;
                self.abandon(&tps);
            }
            Ok(Event::Error(e)) => {
                c.error();
                self.ctx.metrics.connection_error();
                tracing::warn!(error = %e, "bus: the consumer keeps retrying");
            }
            Ok(_) => {}
            Err(e) if e.is_retriable() => {
                c.error();
                tracing::warn!(error = %e, "bus: consuming failed; going on");
            }
            Err(e) => {
                c.error();
                tracing::error!(error = %e, "bus: consuming cannot go on");
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// The group's committed offsets (and metadata) of `tps`, tried a few times; on failure the
    /// partitions start knowing nothing (their events finished before may be handled again, and
    /// nothing is committed for them before a record arrives).
    async fn committed(
        &mut self,
        tps: &[TopicPartition],
    ) -> HashMap<TopicPartition, Option<OffsetAndMetadata>> {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=4 {
            match self.consumer.committed_with_metadata(tps).await {
                Ok(found) => return found,
                Err(e) if attempt < 4 => {
                    tracing::debug!(error = %e, "bus: reading committed offsets failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    self.ctx.counters.error();
                    tracing::warn!(error = %e, "bus: committed offsets unreadable; finished events may be handled again");
                }
            }
        }
        HashMap::new()
    }

    /// Records read from `tp`: each skipped, or scheduled.
    fn receive(&mut self, tp: &TopicPartition, records: Vec<ConsumerRecord>) {
        let ctx = &self.ctx;
        let c = &ctx.counters;
        let progress = self.progress.entry(tp.clone()).or_default();
        self.dirty = true;
        let (mut consumed, mut skipped) = (0, 0);
        let mut admitted = Vec::with_capacity(records.len());
        for record in records {
            let offset = record.offset;
            if progress.done_before(offset) {
                // Handled before the partition changed hands (the last commit says so).
                progress.finished(offset);
                skipped += 1;
                continue;
            }
            consumed += 1;
            let handled = header(&record, "event_type").is_some_and(|t| ctx.registry.handles(t));
            if !handled {
                progress.finished(offset);
                skipped += 1;
                continue;
            }
            progress.received(offset);
            let key = if ctx.config.strict_ordering {
                (record.partition, Bytes::new())
            } else {
                let aggregate = record
                    .key
                    .clone()
                    .unwrap_or_else(|| Bytes::from(format!("#{offset}")));
                (record.partition, aggregate)
            };
            admitted.push((key, record, None));
        }
        if consumed > 0 {
            c.consumed(consumed);
            ctx.metrics.consumed(consumed);
        }
        if skipped > 0 {
            Counters::add(&c.events_skipped, skipped);
        }
        let (partition, len) = (tp.partition, admitted.len());
        let records = if len >= READ_AHEAD_MIN {
            Records::Reading(tokio::spawn(read_all(admitted)))
        } else if len > 0 {
            Records::Read(admitted)
        } else {
            return;
        };
        self.reading.push_back(Batch {
            partition,
            len,
            records,
        });
    }

    /// Moves the batches at the front that are read (or small) into the schedule.
    fn schedule_read(&mut self) {
        while let Some(front) = self.reading.front_mut() {
            let batch = match &mut front.records {
                Records::Read(batch) => std::mem::take(batch),
                Records::Reading(task) if task.is_finished() => {
                    let mut noop = std::task::Context::from_waker(std::task::Waker::noop());
                    match std::pin::Pin::new(task).poll(&mut noop) {
                        std::task::Poll::Ready(read) => match read {
                            Ok(batch) => batch,
                            Err(e) => {
                                self.lost_batch(e);
                                Vec::new()
                            }
                        },
                        std::task::Poll::Pending => return,
                    }
                }
                Records::Reading(_) => return,
            };
            self.reading.pop_front();
            self.push_all(batch);
        }
    }

    /// The batch at the front of `reading` came back read: it leaves the queue for the schedule.
    fn enter(&mut self, read: Result<Vec<Admitted>, JoinError>) {
        self.reading.pop_front();
        match read {
            Ok(batch) => self.push_all(batch),
            Err(e) => self.lost_batch(e),
        }
        self.schedule_read();
    }

    /// Waits for every batch being read and puts it in the schedule: before partitions are
    /// revoked or lost, so their records are all where `remove_waiting` finds them.
    async fn settle_reading(&mut self) {
        while !self.reading.is_empty() {
            if self.reading.front().is_some_and(Batch::reading) {
                let read = front_read(&mut self.reading).await;
                self.enter(read);
            } else {
                self.schedule_read();
            }
        }
    }

    /// Puts a batch in the schedule; an event whose aggregate has nothing waiting or running
    /// starts at once, without queueing (most do, when aggregates are many).
    fn push_all(&mut self, batch: Vec<Admitted>) {
        for (key, record, read) in batch {
            if self.schedule.start_now(key.0, &key) {
                self.run_event(key, record, read);
            } else {
                self.schedule.push(key.0, key, (record, read));
            }
        }
    }

    /// A reading task ended without its batch (the runtime is shutting down; reading itself
    /// does not panic). Its records stay received and unfinished, so nothing past them is
    /// committed: the next owner of the partition reads them again.
    fn lost_batch(&mut self, e: JoinError) {
        self.ctx.counters.error();
        tracing::error!(error = %e, "bus: a batch of records read ahead was lost; it is read again after a restart");
    }

    /// Pauses the partitions holding more than their share of the bound (events read and not
    /// finished), and resumes them below half of it: a slow handler stops its own partitions from
    /// fetching, the others go on, and memory stays bounded.
    fn backpressure(&mut self) {
        let max = self.ctx.config.max_in_flight_events;
        let share = (max / self.progress.len().max(1)).max(1);
        let mut pause = Vec::new();
        let mut resume = Vec::new();
        for (tp, p) in &self.progress {
            let ahead: usize = self
                .reading
                .iter()
                .filter(|b| b.partition == tp.partition)
                .map(|b| b.len)
                .sum();
            let n = p.in_flight().saturating_sub(ahead);
            let paused = self.paused.contains(tp);
            if !paused && n >= share {
                pause.push(tp.clone());
            } else if paused && n <= share / 2 {
                resume.push(tp.clone());
            }
        }
        if !pause.is_empty() {
            tracing::debug!(partitions = ?pause, "bus: handlers are behind; fetching paused");
            self.consumer.pause(&pause);
            self.paused.extend(pause);
        }
        if !resume.is_empty() {
            tracing::debug!(partitions = ?resume, "bus: fetching resumed");
            self.consumer.resume(&resume);
            for tp in &resume {
                self.paused.remove(tp);
            }
        }
    }

    /// Commits the progress of every partition, when something changed.
    async fn commit(&mut self) {
        self.next_commit = Instant::now() + self.commit_interval();
        if !self.dirty {
            return;
        }
        let all: Vec<TopicPartition> = self.progress.keys().cloned().collect();
        self.commit_partitions(&all).await;
        self.dirty = false;
    }

    async fn commit_partitions(&mut self, tps: &[TopicPartition]) {
        // The consumer's reconnections, for the bus's statistics and metrics.
        let client = self.consumer.metrics();
        let before = self
            .ctx
            .counters
            .reconnections
            .swap(client.reconnects, std::sync::atomic::Ordering::Relaxed);
        self.ctx.metrics.connections(
            client.reconnects.saturating_sub(before),
            client.connections_open,
        );
        let entries: Vec<_> = tps
            .iter()
            .filter_map(|tp| Some((tp.clone(), self.progress.get(tp)?.committable()?)))
            .collect();
        if entries.is_empty() {
            return;
        }
        match self.consumer.commit_with_metadata(&entries).await {
            Ok(()) => {}
            Err(e) if is_commit_fenced(&e) => {
                tracing::debug!(error = %e, "bus: commit fenced by a rebalance; the next one covers it")
            }
            Err(e) => {
                self.ctx.counters.error();
                tracing::warn!(error = %e, "bus: commit failed; the next one covers it");
            }
        }
    }

    /// Partitions taken away with a chance to commit: drop their waiting events, let the running
    /// ones finish (for a while), commit, forget them.
    async fn revoke(&mut self, tps: &[TopicPartition]) {
        let revoked = |p: i32| tps.iter().any(|tp| tp.partition == p);
        self.schedule.remove_waiting(revoked);
        let deadline = Instant::now() + Duration::from_millis(self.ctx.config.session_timeout_ms);
        while self.running.values().any(|(key, _, _)| Self::of(key, tps)) {
            tokio::select! {
                Some(done) = self.tasks.join_next_with_id() => self.on_done(done),
                _ = tokio::time::sleep_until(deadline.into()) => {
                    tracing::warn!(partitions = ?tps, "bus: handlers of revoked partitions did not finish in time; abandoned");
                    self.abort(tps);
                    break;
                }
            }
        }
        self.commit_partitions(tps).await;
        for tp in tps {
            self.progress.remove(tp);
            self.paused.remove(tp);
        }
        self.disown(tps);
        tracing::info!(partitions = ?tps, "bus: partitions revoked");
    }

    /// Partitions taken away without a chance to commit.
    fn abandon(&mut self, tps: &[TopicPartition]) {
        self.schedule
            .remove_waiting(|p| tps.iter().any(|tp| tp.partition == p));
        self.abort(tps);
        for tp in tps {
            self.progress.remove(tp);
            self.paused.remove(tp);
        }
        self.disown(tps);
    }

    fn disown(&self, tps: &[TopicPartition]) {
        self.ctx.assignment.send_modify(|owned| {
            for tp in tps {
                owned.remove(tp);
            }
        });
    }

    fn abort(&mut self, tps: &[TopicPartition]) {
        for (key, _, abort) in self.running.values() {
            if Self::of(key, tps) {
                abort.abort();
            }
        }
    }

    /// Shutting down: no new events; the running ones get until the shutdown timeout; then the
    /// progress is committed and the member leaves its group.
    async fn finish(mut self) -> Result<(), BusError> {
        let timeout = self.ctx.config.shutdown_timeout();
        let deadline = Instant::now() + timeout;
        let everything: Vec<TopicPartition> = self.progress.keys().cloned().collect();
        for batch in self.reading.drain(..) {
            if let Records::Reading(task) = batch.records {
                task.abort();
            }
        }
        self.schedule.remove_waiting(|_| true);
        let mut timed_out = false;
        while !self.tasks.is_empty() {
            tokio::select! {
                Some(done) = self.tasks.join_next_with_id() => self.on_done(done),
                _ = tokio::time::sleep_until(deadline.into()) => {
                    tracing::warn!("bus: handlers did not finish before the shutdown timeout; abandoned");
                    timed_out = true;
                    self.abort(&everything);
                    while let Some(done) = self.tasks.join_next_with_id().await {
                        self.on_done(done);
                    }
                }
            }
        }
        self.commit_partitions(&everything).await;
        self.disown(&everything);
        self.consumer.close().await?;
        if timed_out {
            Err(BusError::ShutdownTimedOut(timeout))
        } else {
            Ok(())
        }
    }
}

/// Reads the events of `batch` (on a task of its own). A read that panicked (it does not: the
/// reader is fuzzed) is an unreadable event, dead-lettered like one.
async fn read_all(mut batch: Vec<Admitted>) -> Vec<Admitted> {
    for (_, record, event) in &mut batch {
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(record)));
        *event = Some(read.unwrap_or_else(|_| {
            Err(crate::bus::wire::EnvelopeError::whole(
                "reading the event panicked",
            ))
        }));
    }
    batch
}

/// The batch at the front of `reading`, once read (only called when it is being read).
async fn front_read(reading: &mut VecDeque<Batch>) -> Result<Vec<Admitted>, JoinError> {
    match reading.front_mut().map(|b| &mut b.records) {
        Some(Records::Reading(task)) => task.await,
        _ => std::future::pending().await,
    }
}
