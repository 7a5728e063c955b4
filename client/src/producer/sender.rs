//! The sender loop: drains ready batches into one ProduceRequest per leader broker, keeps up to
//! `max.in.flight.requests.per.connection` of them in flight per broker, and settles each batch
//! from the answer — written, retried after a backoff (re-routed when the leader moved), or failed.
//!
//! Batches are encoded (and compressed) on the request's own task, so compression of requests to
//! different brokers runs in parallel and the loop itself stays cheap.
//!
//! With idempotence, a batch that held sequence numbers and failed for good, or an answer saying
//! the broker lost track of the producer's sequence, makes the loop bump the producer epoch: it
//! stops sending, waits until nothing is in flight, takes the next epoch (KIP-360) and numbers the
//! waiting batches again from 0 before sending resumes.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kbus_protocol::compression::Compression;
use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::produce::{ProducePartition, ProduceTopic};
use kbus_protocol::messages::{ProduceRequest, ProduceResponse};
use kbus_protocol::ApiKey;
use tokio::sync::{mpsc, oneshot};

use super::accumulator::Accumulator;
use super::batch::ProducerBatch;
use super::config::{Acks, ProducerConfig};
use super::idempotence::{self, ProducerIdentity};
use super::record::BatchOutcome;
use super::retry::{self, Attempt, Fate};
use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::precise_timer;

/// What finished while the loop waited.
enum Event {
    Sent {
        broker: i32,
        batches: Vec<ProducerBatch>,
        result: Result<Option<ProduceResponse>>,
    },
    Refreshed,
    Bumped(Result<ProducerIdentity>),
}

/// Where the idempotent producer's epoch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Epoch {
    /// Sequences continue.
    Current,
    /// Sequences cannot continue: send nothing, bump once nothing is in flight (not before
    /// `not_before`, after a failed attempt).
    BumpNeeded { not_before: Instant },
    /// The next identity is being worked out (a request for a new producer id once the epoch is
    /// exhausted).
    Bumping,
}

pub(crate) struct Sender {
    cluster: Cluster,
    acc: Arc<Accumulator>,
    config: Arc<ProducerConfig>,
    /// The idempotent identity, shared with [`Producer::identity`](super::Producer::identity).
    producer: Arc<Mutex<Option<ProducerIdentity>>>,
    epoch: Epoch,
    in_flight: HashMap<i32, usize>,
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
    refreshing: bool,
    /// Per broker, the signal that its latest request has its place in the connection's write
    /// order: the next request to that broker waits for it before queueing itself, so requests
    /// (and each partition's batches) reach the broker in the order they were drained, although
    /// they are encoded and compressed in parallel.
    last_queued: HashMap<i32, oneshot::Receiver<()>>,
}

impl Sender {
    pub fn new(
        cluster: Cluster,
        acc: Arc<Accumulator>,
        config: Arc<ProducerConfig>,
        producer: Arc<Mutex<Option<ProducerIdentity>>>,
    ) -> Self {
        let (events_tx, events) = mpsc::unbounded_channel();
        Sender {
            cluster,
            acc,
            config,
            producer,
            epoch: Epoch::Current,
            in_flight: HashMap::new(),
            events_tx,
            events,
            refreshing: false,
            last_queued: HashMap::new(),
        }
    }

    /// Runs until the producer is closed and everything queued has been settled.
    pub async fn run(mut self) {
        // linger.ms to the tenth of a millisecond, not tokio's whole ones; the same deadline
        // keeps its registration from one turn of the loop to the next.
        let mut timer: Option<Pin<Box<precise_timer::Sleep>>> = None;
        loop {
            let next_wake = self.send_ready();
            if self.acc.is_drained() && self.in_flight.values().all(|n| *n == 0) {
                return;
            }
            match next_wake {
                Some(at) if timer.as_ref().is_some_and(|t| t.deadline() == at) => {}
                Some(at) => timer = Some(Box::pin(precise_timer::sleep_until(at))),
                None => timer = None,
            }
            let sleep = async {
                match &mut timer {
                    Some(sleep) => sleep.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.acc.wake.notified() => {}
                _ = sleep => {}
                Some(event) = self.events.recv() => self.handle(event),
            }
            // Settle everything else that finished meanwhile before draining again.
            while let Ok(event) = self.events.try_recv() {
                self.handle(event);
            }
        }
    }

    fn identity(&self) -> Option<ProducerIdentity> {
        *self.producer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends every ready batch it can; returns when to look again.
    fn send_ready(&mut self) -> Option<Instant> {
        loop {
            let now = Instant::now();
            let md = self.cluster.metadata();
            let max = self.config.max_in_flight;
            let in_flight = &self.in_flight;
            let sending = self.epoch == Epoch::Current;
            let drained = self.acc.drain(
                now,
                |t, p| md.leader_of(t, p).map(|(id, _)| id),
                |b| sending && in_flight.get(&b).copied().unwrap_or(0) < max,
                self.identity().map(|p| (p.id, p.epoch)),
            );
            for batch in drained.expired {
                if batch.base_sequence.is_some() {
                    // Sent before and maybe written: its sequences cannot be reused.
                    self.need_bump(now);
                }
                let cause = Arc::new(Error::DeliveryTimeout {
                    after: self.config.delivery_timeout,
                    last_error: batch.last_error.clone(),
                });
                self.fail(batch, cause, false);
            }
            if drained.missing_leader {
                self.refresh();
            }
            if drained.requests.is_empty() {
                return self.maybe_bump(now, drained.next_wake);
            }
            for (broker, batches) in drained.requests {
                tracing::trace!(broker, batches = batches.len(), "produce request");
                *self.in_flight.entry(broker).or_default() += 1;
                let (queued, turn) = oneshot::channel();
                let previous = self.last_queued.insert(broker, turn);
                tokio::spawn(send_request(
                    self.acc.clone(),
                    self.cluster.clone(),
                    broker,
                    batches,
                    self.config.clone(),
                    Order { previous, queued },
                    self.events_tx.clone(),
                ));
            }
        }
    }

    /// Sequences cannot continue: stop sending and bump the epoch once nothing is in flight.
    fn need_bump(&mut self, now: Instant) {
        if self.epoch == Epoch::Current {
            self.epoch = Epoch::BumpNeeded { not_before: now };
        }
    }

    /// Starts the epoch bump when one is needed and nothing is in flight; returns when to look
    /// again.
    fn maybe_bump(&mut self, now: Instant, next_wake: Option<Instant>) -> Option<Instant> {
        let Epoch::BumpNeeded { not_before } = self.epoch else {
            return next_wake;
        };
        if self.in_flight.values().any(|n| *n > 0) {
            return next_wake;
        }
        if now < not_before {
            return Some(next_wake.map_or(not_before, |w| w.min(not_before)));
        }
        let Some(current) = self.identity() else {
            self.epoch = Epoch::Current;
            return next_wake;
        };
        self.epoch = Epoch::Bumping;
        let cluster = self.cluster.clone();
        let tx = self.events_tx.clone();
        tokio::spawn(async move {
            let result = idempotence::bump(&cluster, current).await;
            let _ = tx.send(Event::Bumped(result));
        });
        next_wake
    }

    /// The bump finished: number the waiting batches under the new epoch and send again, or try
    /// again after the backoff.
    fn bumped(&mut self, result: Result<ProducerIdentity>) {
        match result {
            Ok(identity) => {
                tracing::info!(
                    producer_id = identity.id,
                    epoch = identity.epoch,
                    "producer epoch bumped"
                );
                for (batch, e) in self.acc.reset_sequences(identity.id, identity.epoch) {
                    self.acc
                        .complete(batch, BatchOutcome::Failed(Arc::new(e)), false);
                }
                *self.producer.lock().unwrap_or_else(|e| e.into_inner()) = Some(identity);
                self.epoch = Epoch::Current;
            }
            Err(e) => {
                tracing::warn!(error = %e, "bumping the producer epoch failed; trying again");
                self.epoch = Epoch::BumpNeeded {
                    not_before: Instant::now() + self.config.retry_backoff,
                };
            }
        }
    }

    /// Refreshes metadata in the background (one refresh at a time).
    fn refresh(&mut self) {
        if self.refreshing {
            return;
        }
        self.refreshing = true;
        let cluster = self.cluster.clone();
        let acc = self.acc.clone();
        let tx = self.events_tx.clone();
        let backoff = self.config.retry_backoff;
        tokio::spawn(async move {
            let topics = acc.topics();
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            match cluster.refresh(&names).await {
                Ok(md) => {
                    for t in md.topics.values() {
                        if !t.partitions.is_empty() && topics.contains(&t.name) {
                            acc.set_partition_count(&t.name, t.partitions.len() as i32);
                        }
                    }
                }
                // No broker answered: try again after the backoff rather than spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "producer metadata refresh failed");
                    tokio::time::sleep(backoff).await
                }
            }
            let _ = tx.send(Event::Refreshed);
        });
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Refreshed => {
                self.refreshing = false;
            }
            Event::Bumped(result) => self.bumped(result),
            Event::Sent {
                broker,
                batches,
                result,
            } => {
                if let Some(n) = self.in_flight.get_mut(&broker) {
                    *n = n.saturating_sub(1);
                }
                match result {
                    Ok(None) => {
                        for b in batches {
                            self.written(b, -1, -1);
                        }
                    }
                    Ok(Some(resp)) => self.settle(broker, batches, resp),
                    Err(e) => {
                        if self.cluster.report(&e) {
                            self.refresh();
                        }
                        let e = Arc::new(e);
                        for b in batches {
                            self.retry_or_fail(b, e.clone());
                        }
                    }
                }
            }
        }
    }

    fn settle(&mut self, broker: i32, batches: Vec<ProducerBatch>, resp: ProduceResponse) {
        let mut answers: HashMap<&str, HashMap<i32, _>> = HashMap::new();
        for t in &resp.responses {
            let topic = answers.entry(t.name.as_str()).or_default();
            for p in &t.partitions {
                topic.insert(p.index, p);
            }
        }
        let broker_name = self
            .cluster
            .metadata()
            .brokers
            .get(&broker)
            .map(|b| b.address())
            .unwrap_or_else(|| format!("broker {broker}"));
        let mut refresh = false;
        let mut settled = Vec::with_capacity(batches.len());
        for b in batches {
            let answer = answers.get(&*b.topic).and_then(|t| t.get(&b.partition));
            let Some(p) = answer else {
                let e = Error::Partition {
                    topic: b.topic.to_string(),
                    partition: b.partition,
                    code: ErrorCode::UNKNOWN_SERVER_ERROR,
                };
                settled.push((b, Err(Arc::new(e))));
                continue;
            };
            let code = ErrorCode::from(p.error_code);
            if code.is_ok() {
                settled.push((b, Ok((p.base_offset, p.log_append_time_ms))));
                continue;
            }
            if code == ErrorCode::DUPLICATE_SEQUENCE_NUMBER {
                // The broker already has this batch (an earlier attempt was written).
                settled.push((b, Ok((-1, -1))));
                continue;
            }
            refresh |= self.cluster.report_code(code);
            let e = Arc::new(Error::Broker {
                broker: broker_name.clone(),
                api: ApiKey::Produce,
                code,
                message: p.error_message.clone(),
            });
            settled.push((b, Err(e)));
        }
        drop(answers);
        for (b, r) in settled {
            match r {
                Ok((offset, log_append_time)) => self.written(b, offset, log_append_time),
                Err(e) => self.retry_or_fail(b, e),
            }
        }
        if refresh {
            self.refresh();
        }
    }

    fn written(&self, batch: ProducerBatch, base_offset: i64, log_append_time: i64) {
        tracing::trace!(
            topic = &*batch.topic,
            partition = batch.partition,
            base_offset,
            records = batch.records,
            "produce acknowledged"
        );
        self.cluster
            .counters()
            .sent(batch.records.max(0) as u64, batch.size() as u64);
        self.acc.complete(
            batch,
            BatchOutcome::Written {
                base_offset,
                log_append_time,
            },
            true,
        );
    }

    /// Carries out [`retry::decide`] for a batch that came back failed: requeues it for another
    /// attempt, or fails it; asks for an epoch bump when the decision says so.
    fn retry_or_fail(&mut self, mut batch: ProducerBatch, e: Arc<Error>) {
        let now = Instant::now();
        let attempt = Attempt {
            base_sequence: batch.base_sequence,
            attempts: batch.attempts,
            created: batch.created,
            earlier_unacked: batch.base_sequence.is_some_and(|seq| {
                self.acc
                    .has_earlier_unacked(&batch.topic, batch.partition, seq)
            }),
        };
        let decision = retry::decide(attempt, &e, &self.config, now);
        if decision.bump_epoch {
            if self.epoch == Epoch::Current {
                tracing::warn!(
                    topic = &*batch.topic,
                    partition = batch.partition,
                    error = %e,
                    "idempotent sequences cannot continue: bumping the producer epoch"
                );
            }
            self.need_bump(now);
        }
        match decision.fate {
            Fate::Retry { at } => {
                tracing::debug!(
                    topic = &*batch.topic,
                    partition = batch.partition,
                    attempt = batch.attempts,
                    error = %e,
                    "produce retried"
                );
                self.cluster.counters().retried();
                batch.retry_at = Some(at);
                batch.last_error = Some(e);
                self.acc.requeue(batch);
                self.acc.wake.notify_one();
            }
            Fate::Fail { timed_out } => {
                let cause = if timed_out {
                    Arc::new(Error::DeliveryTimeout {
                        after: self.config.delivery_timeout,
                        last_error: Some(e),
                    })
                } else {
                    e
                };
                self.fail(batch, cause, true);
            }
        }
    }

    /// Fails `batch` for good with `cause` (`sent`: it was in a request), and says so in the log.
    fn fail(&self, batch: ProducerBatch, cause: Arc<Error>, sent: bool) {
        tracing::warn!(
            topic = &*batch.topic,
            partition = batch.partition,
            records = batch.records,
            error = %cause,
            "produce failed"
        );
        self.acc.complete(batch, BatchOutcome::Failed(cause), sent);
    }
}

/// A request's place in its broker's write order.
struct Order {
    /// Fires (or is dropped) once the previous request to the broker is queued.
    previous: Option<oneshot::Receiver<()>>,
    /// Fired (or dropped) once this request is queued.
    queued: oneshot::Sender<()>,
}

/// Encodes `batches` into one ProduceRequest, sends it to `broker` after the requests drained
/// before it, and reports back.
async fn send_request(
    acc: Arc<Accumulator>,
    cluster: Cluster,
    broker: i32,
    mut batches: Vec<ProducerBatch>,
    config: Arc<ProducerConfig>,
    order: Order,
    events: mpsc::UnboundedSender<Event>,
) {
    let result = async {
        let mut topics: Vec<ProduceTopic> = Vec::new();
        for b in &mut batches {
            let (fresh, uncompressed) = (b.is_open(), b.size());
            let bytes = b.take_payload().into_bytes()?;
            if fresh && config.compression != Compression::None {
                acc.observe_compression(&b.topic, uncompressed, bytes.len());
            }
            b.set_built(bytes.clone());
            let partition = ProducePartition {
                index: b.partition,
                records: Some(bytes),
                ..Default::default()
            };
            match topics.iter_mut().find(|t| t.name == *b.topic) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(ProduceTopic {
                    name: b.topic.to_string(),
                    partitions: vec![partition],
                    ..Default::default()
                }),
            }
        }
        let req = ProduceRequest {
            transactional_id: None,
            acks: config.acks.wire(),
            timeout_ms: i32::try_from(config.request_timeout.as_millis()).unwrap_or(i32::MAX),
            topics,
            ..Default::default()
        };
        // Either outcome of the previous request's signal means it is no longer ahead of us.
        if let Some(previous) = order.previous {
            let _ = previous.await;
        }
        let conn = cluster.broker(broker).await?;
        if config.acks == Acks::None {
            conn.send_oneway(&req).await?;
            drop(order.queued);
            Ok(None)
        } else {
            conn.send_queued(&req, order.queued).await.map(Some)
        }
    }
    .await;
    let _ = events.send(Event::Sent {
        broker,
        batches,
        result,
    });
}
