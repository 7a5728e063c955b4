//! Records waiting to be sent, grouped per partition into batches, with the memory they hold
//! bounded by `buffer.memory`.
//!
//! `send` appends here; the sender loop drains ready batches (full, lingered long enough, being
//! flushed, or due for a retry) grouped by leader, and puts failed batches back in sequence order.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{Notify, Semaphore};

use super::batch::ProducerBatch;
use super::compression_ratio::CompressionRatio;
use super::config::ProducerConfig;
use super::partitioner::StickyPartition;
use super::record::{BatchOutcome, DeliveryFuture, ProducerRecord};
use crate::error::{Error, Result};
use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::record::RecordBatchBuilder;

/// One partition's queue and idempotence bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct PartitionQueue {
    pub batches: VecDeque<ProducerBatch>,
    /// Batches of this partition currently in requests.
    pub in_flight: usize,
    /// The sequence number the next new batch starts at.
    pub next_sequence: i32,
    /// Every sequence below this one is acknowledged by the broker.
    pub acked_sequence: i32,
    /// The broker acknowledged a batch of this producer epoch here, so it knows the producer and
    /// refuses a batch out of sequence. Until then only one batch is in flight: a broker that
    /// does not know the producer takes any sequence as the first, so a later batch could be
    /// written ahead of an earlier one that failed with a retriable error (seen on a new topic
    /// whose partitions were not led yet), which then never fits.
    pub confirmed: bool,
}

#[derive(Debug)]
pub(crate) struct TopicQueues {
    pub name: Arc<str>,
    pub partitions: Vec<PartitionQueue>,
    sticky: StickyPartition,
    /// How much this topic's batches shrink when compressed: `batch.size` bounds their
    /// compressed size.
    ratio: CompressionRatio,
}

impl TopicQueues {
    /// True when `size` more bytes fit in `batch` within `batch.size` (compressed, as estimated)
    /// and `max.request.size` (uncompressed, so that no estimate makes a batch too large).
    fn fits(&self, batch: &ProducerBatch, size: usize, config: &ProducerConfig) -> bool {
        let after = batch.size() + size;
        batch.is_open()
            && !batch.is_full()
            && self.ratio.compressed(after) <= config.batch_size
            && after <= config.max_request_size
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub topics: HashMap<Arc<str>, TopicQueues>,
    next_batch_id: u64,
    /// Ids of batches not completed yet (queued or in flight).
    incomplete: BTreeSet<u64>,
    flushing: usize,
    closed: bool,
}

/// What one drain found to do.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    /// Batches to send, per leader broker id (one request each).
    pub requests: Vec<(i32, Vec<ProducerBatch>)>,
    /// Batches whose `delivery.timeout.ms` ran out while queued.
    pub expired: Vec<ProducerBatch>,
    /// When a batch not ready now becomes ready (linger or retry backoff ends).
    pub next_wake: Option<Instant>,
    /// Some ready partition has no known leader: metadata should be refreshed.
    pub missing_leader: bool,
}

/// The record accumulator.
#[derive(Debug)]
pub(crate) struct Accumulator {
    state: Mutex<State>,
    memory: Semaphore,
    config: Arc<ProducerConfig>,
    /// Wakes the sender loop: a batch filled up, a flush started, the producer is closing.
    pub wake: Notify,
    /// Signalled whenever batches complete (flush waits on it).
    done: Notify,
}

/// The partition's first batch, when it may go now: not waiting out a retry backoff (its end
/// goes to `next_wake`), and not held back because a batch must reach the broker alone (a retried
/// batch, so batches arrive in sequence order again; any batch while the broker has not confirmed
/// a first one of this producer epoch) while the partition has one in flight.
fn sendable_head<'q>(
    queue: &'q PartitionQueue,
    now: Instant,
    producer: Option<(i64, i16)>,
    next_wake: &mut Option<Instant>,
) -> Option<&'q ProducerBatch> {
    let head = queue.batches.front()?;
    if let Some(at) = head.retry_at.filter(|at| *at > now) {
        *next_wake = earliest(*next_wake, at);
        return None;
    }
    let one_at_a_time = head.base_sequence.is_some() || (producer.is_some() && !queue.confirmed);
    if one_at_a_time && queue.in_flight > 0 {
        return None;
    }
    Some(head)
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Accumulator {
    pub fn new(config: Arc<ProducerConfig>) -> Self {
        Accumulator {
            memory: Semaphore::new(config.buffer_memory.min(Semaphore::MAX_PERMITS)),
            state: Mutex::new(State::default()),
            config,
            wake: Notify::new(),
            done: Notify::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // The state is only changed in short sections that cannot panic halfway through a
        // multi-step update; a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `bytes` of `buffer.memory` are free and takes them (backpressure).
    pub async fn reserve(&self, bytes: usize) -> Result<()> {
        let n = u32::try_from(bytes).map_err(|_| Error::RecordTooLarge {
            size: bytes,
            max: self.config.buffer_memory,
        })?;
        match self.memory.try_acquire_many(n) {
            Ok(p) => p.forget(),
            Err(_) => self
                .memory
                .acquire_many(n)
                .await
                .map_err(|_| Error::Closed)?
                .forget(),
        }
        Ok(())
    }

    /// Gives back memory taken by [`reserve`](Self::reserve) for a record that was not appended.
    pub fn release(&self, bytes: usize) {
        self.memory.add_permits(bytes);
    }

    /// Makes `topic` known with `count` partitions (growing, never shrinking, its queues).
    pub fn set_partition_count(&self, topic: &str, count: i32) {
        let mut st = self.lock();
        let seed = st.next_batch_id ^ topic.len() as u64 ^ 0x9e37_79b9_7f4a_7c15;
        let t = st
            .topics
            .entry(Arc::from(topic))
            .or_insert_with(|| TopicQueues {
                name: Arc::from(topic),
                partitions: Vec::new(),
                sticky: StickyPartition::new(seed),
                ratio: CompressionRatio::default(),
            });
        while (t.partitions.len() as i32) < count {
            t.partitions.push(PartitionQueue::default());
        }
    }

    /// Appends `record` (whose `memory` bytes are already reserved). `Ok(None)` when the topic is
    /// not known yet: the caller learns its partition count and calls again.
    pub fn append(
        &self,
        record: &ProducerRecord,
        timestamp: i64,
        memory: usize,
        now: Instant,
    ) -> Result<Option<DeliveryFuture>> {
        let config = &*self.config;
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.closed {
            return Err(Error::Closed);
        }
        let Some(topic) = st.topics.get_mut(record.topic.as_str()) else {
            return Ok(None);
        };
        let count = topic.partitions.len() as i32;
        let keyed = config
            .partitioner
            .partition_for_key(record.key.as_deref(), count);
        let partition = match (record.partition, keyed) {
            (Some(p), _) if (0..count).contains(&p) => p,
            (Some(p), _) => {
                return Err(Error::Partition {
                    topic: record.topic.clone(),
                    partition: p,
                    code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                })
            }
            (None, Some(p)) => p,
            (None, None) => topic.sticky.current(count, &[]),
        };
        let sticky = record.partition.is_none() && keyed.is_none();
        let fits = topic.partitions[partition as usize]
            .batches
            .back()
            .is_some_and(|b| topic.fits(b, memory, config));
        let queue = &mut topic.partitions[partition as usize];
        let mut wake = false;
        if !fits {
            if let Some(open) = queue.batches.back_mut().filter(|b| b.is_open()) {
                // The open batch is full: it is ready now (not after linger.ms), and keyless
                // records move on.
                open.mark_full();
                if sticky {
                    topic.sticky.batch_closed(count, &[], partition);
                    if topic.sticky.current(count, &[]) != partition {
                        // Keyless records continue on the new sticky partition.
                        drop(guard);
                        self.wake.notify_one();
                        return self.append(record, timestamp, memory, now);
                    }
                }
            }
            // A full batch is ready now; a new batch has a linger deadline the sender must
            // know about.
            wake = true;
            let id = st.next_batch_id;
            st.next_batch_id += 1;
            st.incomplete.insert(id);
            let topic = st
                .topics
                .get_mut(record.topic.as_str())
                .expect("looked up above under the same lock");
            let name = topic.name.clone();
            let capacity = topic
                .ratio
                .uncompressed(config.batch_size)
                .min(config.max_request_size)
                .max(memory);
            topic.partitions[partition as usize]
                .batches
                .push_back(ProducerBatch::new(
                    id,
                    name,
                    partition,
                    config.compression,
                    config.compression_level,
                    capacity,
                    now,
                ));
        }
        let topic = st
            .topics
            .get_mut(record.topic.as_str())
            .expect("looked up above under the same lock");
        let name = topic.name.clone();
        let ratio = topic.ratio;
        let batch = topic.partitions[partition as usize]
            .batches
            .back_mut()
            .expect("a batch was just found or made");
        let index = batch.append(
            timestamp,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
            memory,
        )?;
        if ratio.compressed(batch.size()) >= config.batch_size {
            wake = true;
        }
        let delivery = batch.delivery.clone();
        drop(guard);
        if wake {
            self.wake.notify_one();
        }
        Ok(Some(DeliveryFuture {
            batch: delivery,
            topic: name,
            partition,
            index,
            timestamp,
        }))
    }

    /// A batch of `topic` of `uncompressed` bytes was compressed to `compressed`: later batches of
    /// the topic are filled by what they will weigh compressed.
    pub fn observe_compression(&self, topic: &str, uncompressed: usize, compressed: usize) {
        if let Some(t) = self.lock().topics.get_mut(topic) {
            t.ratio.observe(uncompressed, compressed);
        }
    }

    /// The bytes `record` holds in a batch (what `buffer.memory` is charged for it).
    pub fn record_size(record: &ProducerRecord) -> usize {
        RecordBatchBuilder::estimate_record_size(
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        )
    }

    /// Takes the batches to send now, at most one per partition and one request per broker, each
    /// request within `max.request.size`. A broker is sent to when one of its partitions has a
    /// ready batch (full, lingered long enough, flushing) and `can_send` to it; then the first
    /// batch of each of its partitions goes too, lingered or not, as the Java client drains a
    /// ready node: a request carries what there is, and the other partitions' records do not
    /// wait out their own linger behind it. Stamps idempotent sequences when `producer` is set.
    pub fn drain(
        &self,
        now: Instant,
        leader_of: impl Fn(&str, i32) -> Option<i32>,
        mut can_send: impl FnMut(i32) -> bool,
        producer: Option<(i64, i16)>,
    ) -> Drained {
        let config = &*self.config;
        let mut out = Drained::default();
        let mut st = self.lock();
        let urgent = st.flushing > 0 || st.closed;
        // First: expired batches out, and the brokers that have a ready batch.
        let mut ready_brokers: HashMap<i32, bool> = HashMap::new();
        for topic in st.topics.values_mut() {
            let ratio = topic.ratio;
            for (p, queue) in topic.partitions.iter_mut().enumerate() {
                while queue.in_flight == 0
                    && queue
                        .batches
                        .front()
                        .is_some_and(|b| now >= b.created + config.delivery_timeout)
                {
                    out.expired.extend(queue.batches.pop_front());
                }
                let Some(head) = sendable_head(queue, now, producer, &mut out.next_wake) else {
                    continue;
                };
                let lingered = head.created + config.linger;
                let ready = urgent
                    || queue.batches.len() > 1
                    || !head.is_open()
                    || head.is_full()
                    || ratio.compressed(head.size()) >= config.batch_size
                    || now >= lingered;
                if !ready {
                    // The sender sleeps on a precise timer (see `precise_timer`): the batch goes
                    // when its linger ends, not up to two milliseconds later.
                    out.next_wake = earliest(out.next_wake, lingered);
                    continue;
                }
                let Some(leader) = leader_of(&topic.name, p as i32) else {
                    out.missing_leader = true;
                    continue;
                };
                ready_brokers
                    .entry(leader)
                    .or_insert_with(|| can_send(leader));
            }
        }
        // Then: the head of every partition led by such a broker.
        let mut per_broker: HashMap<i32, (usize, Vec<ProducerBatch>)> = HashMap::new();
        let mut ignored_wake = None;
        for topic in st.topics.values_mut() {
            let count = topic.partitions.len() as i32;
            for (p, queue) in topic.partitions.iter_mut().enumerate() {
                let p = p as i32;
                let Some(head) = sendable_head(queue, now, producer, &mut ignored_wake) else {
                    continue;
                };
                let Some(leader) = leader_of(&topic.name, p) else {
                    continue;
                };
                if ready_brokers.get(&leader) != Some(&true) {
                    continue;
                }
                let entry = per_broker.entry(leader).or_default();
                let size = head.size();
                if !entry.1.is_empty() && entry.0 + size > config.max_request_size {
                    continue;
                }
                let mut batch = queue.batches.pop_front().expect("head exists");
                if let (Some((id, epoch)), None) = (producer, batch.base_sequence) {
                    let seq = queue.next_sequence;
                    batch.set_producer(id, epoch, seq);
                    queue.next_sequence = next_sequence(seq, batch.records);
                }
                queue.in_flight += 1;
                batch.attempts += 1;
                topic.sticky.batch_closed(count, &[], p);
                entry.0 += size;
                entry.1.push(batch);
            }
        }
        out.requests = per_broker.into_iter().map(|(b, (_, v))| (b, v)).collect();
        out
    }

    /// A sent batch came back for a retry: it goes before every batch not sent yet, in sequence
    /// order among retried ones.
    pub fn requeue(&self, batch: ProducerBatch) {
        let mut st = self.lock();
        let Some(topic) = st.topics.get_mut(&*batch.topic) else {
            return;
        };
        let Some(queue) = topic.partitions.get_mut(batch.partition as usize) else {
            return;
        };
        queue.in_flight = queue.in_flight.saturating_sub(1);
        let acked = queue.acked_sequence;
        let at = queue
            .batches
            .iter()
            .position(|b| {
                b.is_open()
                    || matches!((b.base_sequence, batch.base_sequence),
                        (Some(x), Some(y)) if distance(acked, x) > distance(acked, y))
            })
            .unwrap_or(queue.batches.len());
        queue.batches.insert(at, batch);
    }

    /// After the producer epoch was bumped (nothing in flight): every partition starts again at
    /// sequence 0, and the batches that were sent before (retries waiting at the front of their
    /// queues) are numbered again from there in their order. Batches that cannot be renumbered
    /// are taken out and returned with the reason, to be failed.
    pub fn reset_sequences(&self, producer_id: i64, epoch: i16) -> Vec<(ProducerBatch, Error)> {
        let mut failed = Vec::new();
        let mut st = self.lock();
        for topic in st.topics.values_mut() {
            for queue in &mut topic.partitions {
                let mut next = 0;
                let mut kept = VecDeque::with_capacity(queue.batches.len());
                for mut b in queue.batches.drain(..) {
                    if b.base_sequence.is_some() {
                        if let Err(e) = b.restamp(producer_id, epoch, next) {
                            failed.push((b, e));
                            continue;
                        }
                        next = next_sequence(next, b.records);
                    }
                    kept.push_back(b);
                }
                queue.batches = kept;
                queue.next_sequence = next;
                queue.acked_sequence = 0;
                queue.confirmed = false;
            }
        }
        failed
    }

    /// A batch is done (written or failed for good): resolve its futures, free its memory.
    pub fn complete(&self, batch: ProducerBatch, outcome: BatchOutcome, was_in_flight: bool) {
        {
            let mut st = self.lock();
            st.incomplete.remove(&batch.id);
            if was_in_flight {
                if let Some(q) = st
                    .topics
                    .get_mut(&*batch.topic)
                    .and_then(|t| t.partitions.get_mut(batch.partition as usize))
                {
                    q.in_flight = q.in_flight.saturating_sub(1);
                    if let (BatchOutcome::Written { .. }, Some(seq)) =
                        (&outcome, batch.base_sequence)
                    {
                        q.acked_sequence = next_sequence(seq, batch.records);
                        q.confirmed = true;
                    }
                }
            }
        }
        self.memory.add_permits(batch.memory);
        batch.complete(outcome);
        self.done.notify_waiters();
    }

    /// True when batch `seq` of `topic`/`partition` has earlier, unacknowledged batches (so an
    /// OUT_OF_ORDER_SEQUENCE_NUMBER answer means "wait for them", not "lost").
    pub fn has_earlier_unacked(&self, topic: &str, partition: i32, seq: i32) -> bool {
        self.lock()
            .topics
            .get(topic)
            .and_then(|t| t.partitions.get(partition as usize))
            .is_some_and(|q| q.acked_sequence != seq)
    }

    /// Waits until every batch that exists now has completed, sending lingering batches at once.
    pub async fn flush(&self) {
        let target = {
            let mut st = self.lock();
            st.flushing += 1;
            st.next_batch_id
        };
        self.wake.notify_one();
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let pending = self
                .lock()
                .incomplete
                .first()
                .is_some_and(|id| *id < target);
            if !pending {
                break;
            }
            notified.await;
        }
        self.lock().flushing -= 1;
    }

    /// Refuses new records from now on; queued ones are still sent.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// True once closed and nothing is left to send or wait for.
    pub fn is_drained(&self) -> bool {
        let st = self.lock();
        st.closed && st.incomplete.is_empty()
    }

    /// Every topic with queued records (for metadata refreshes).
    pub fn topics(&self) -> Vec<String> {
        self.lock().topics.keys().map(|t| t.to_string()).collect()
    }
}

/// The sequence after a batch of `records` starting at `seq`; sequences wrap to 0 after
/// `i32::MAX`, as Kafka's do.
fn next_sequence(seq: i32, records: i32) -> i32 {
    let next = i64::from(seq) + i64::from(records);
    (next % (i64::from(i32::MAX) + 1)) as i32
}

/// How far `seq` lies after `from` in the wrapping sequence space: orders sequences of batches
/// not yet acknowledged across the wrap from `i32::MAX` to 0.
fn distance(from: i32, seq: i32) -> i64 {
    (i64::from(seq) - i64::from(from)).rem_euclid(i64::from(i32::MAX) + 1)
}

#[cfg(test)]
mod tests;
