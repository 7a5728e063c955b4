//! [`KafkaEventBus`]: the event bus on Kafka, wire-compatible with eventsource-py 0.8's.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kbus_client::admin::{Admin, NewTopic};
use kbus_client::consumer::Consumer;
use kbus_client::producer::{DeliveryFuture, Producer, ProducerRecord};
use kbus_client::protocol::record::Header;
use kbus_client::TopicPartition;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use super::config::KafkaEventBusConfig;
use super::consume::ConsumeLoop;
use super::dlq::{DeadLetter, DlqFilter, DlqTools, ReplayReport};
use super::handle::Context;
use crate::bus::error::BusError;
use crate::bus::event::{Event, RawPayload};
use crate::bus::event_bus::{EventBus, Publish};
use crate::bus::handler::{Handler, Route, Subscriber};
use crate::bus::otel::{Attr, BusMetrics, Kind, Span};
use crate::bus::registry::{Registry, Subscription};
use crate::bus::stats::{BusStats, Counters};
use crate::bus::trace::TraceContext;
use crate::bus::wire::EventRecord;
use crate::config::Properties;

/// The event bus on Kafka.
///
/// [`connect`](Self::connect) makes sure the topics exist and starts the producer: enough to
/// publish. [`start`](Self::start) joins the consumer group and handles events in the
/// background; a bus that only publishes never joins a group.
#[derive(Clone)]
pub struct KafkaEventBus {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<KafkaEventBusConfig>,
    properties: Properties,
    topic: String,
    dlq_topic: String,
    registry: Arc<Registry>,
    counters: Arc<Counters>,
    producer: Producer,
    /// Room for background publishes.
    background: Arc<Semaphore>,
    stop: watch::Sender<bool>,
    assignment: watch::Sender<BTreeSet<TopicPartition>>,
    metrics: Arc<BusMetrics>,
    consuming: Mutex<Option<JoinHandle<Result<(), BusError>>>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for KafkaEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaEventBus")
            .field("topic", &self.inner.topic)
            .field("group", &self.inner.config.consumer_group)
            .field("stats", &self.inner.counters.snapshot())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl KafkaEventBus {
    /// Checks `config`, makes sure the topics exist (creating them when `create_topics` is on)
    /// and starts the producer.
    pub async fn connect(config: KafkaEventBusConfig) -> Result<KafkaEventBus, BusError> {
        config.validate()?;
        let member = config.member_name();
        let mut properties = config.client_properties();
        if !config.properties.contains_key("client.id") {
            properties.set("client.id", &member);
        }
        properties.check_known()?;
        let topic = config.topic();
        let dlq_topic = config.dlq_topic();
        ensure_topics(&config, &properties, &[topic.clone(), dlq_topic.clone()]).await?;
        let producer = Producer::from_properties(&properties).await?;
        let counters = Counters::new();
        counters.connected();
        let enable_metrics = config.enable_metrics;
        let handler_timeout = config.handler_timeout();
        let (stop, _) = watch::channel(false);
        Ok(KafkaEventBus {
            inner: Arc::new(Inner {
                background: Arc::new(Semaphore::new(config.publish_queue_size.max(1))),
                config: Arc::new(config),
                properties,
                topic,
                dlq_topic,
                registry: Arc::new(Registry::with_handler_timeout(handler_timeout)),
                counters: Arc::new(counters),
                producer,
                stop,
                assignment: watch::Sender::new(BTreeSet::new()),
                metrics: Arc::new(BusMetrics::new(enable_metrics)),
                consuming: Mutex::new(None),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &KafkaEventBusConfig {
        &self.inner.config
    }

    /// The partitions this member owns now, and every change after (empty before
    /// [`start`](Self::start) and after shutdown).
    pub fn assignment(&self) -> watch::Receiver<BTreeSet<TopicPartition>> {
        self.inner.assignment.subscribe()
    }

    /// The main topic.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// Joins the consumer group and handles events in the background, until
    /// [`shutdown`](EventBus::shutdown). Subscribe handlers first: events of types without a
    /// handler here are skipped (and committed). Starting twice does nothing.
    pub async fn start(&self) -> Result<(), BusError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(BusError::Closed);
        }
        if lock(&self.inner.consuming).is_some() {
            return Ok(());
        }
        let mut consumer = Consumer::from_properties(&self.inner.properties).await?;
        consumer.subscribe([self.inner.topic.clone()])?;
        let ctx = Arc::new(Context {
            registry: self.inner.registry.clone(),
            counters: self.inner.counters.clone(),
            producer: self.inner.producer.clone(),
            config: self.inner.config.clone(),
            dlq_topic: self.inner.config.dlq_topic(),
            stopping: self.inner.stop.subscribe(),
            assignment: self.inner.assignment.clone(),
            metrics: self.inner.metrics.clone(),
        });
        let run = ConsumeLoop::new(ctx, consumer, self.inner.stop.subscribe()).run();
        let span = tracing::info_span!(
            "kbus.bus",
            group = %self.inner.config.consumer_group,
            topic = %self.inner.topic
        );
        let mut consuming = lock(&self.inner.consuming);
        if consuming.is_none() {
            *consuming = Some(tokio::spawn(tracing::Instrument::instrument(run, span)));
        }
        Ok(())
    }

    fn dlq_tools(&self) -> DlqTools<'_> {
        DlqTools {
            properties: &self.inner.properties,
            dlq_topic: &self.inner.dlq_topic,
            topic: &self.inner.topic,
            producer: &self.inner.producer,
            max_replays: self.inner.config.dlq_max_replay_attempts,
        }
    }

    /// The dead letters `filter` picks, oldest first per partition, headers read and the event
    /// decoded where it can be.
    pub async fn dlq_list(&self, filter: &DlqFilter) -> Result<Vec<DeadLetter>, BusError> {
        self.dlq_tools().list(filter).await
    }

    /// How many dead letters the topic keeps.
    pub async fn dlq_count(&self) -> Result<u64, BusError> {
        self.dlq_tools().count().await
    }

    /// Publishes the dead letter at `partition`/`offset` again to the main topic (eventsource-py's
    /// `replay_dlq_message`): the original key and value, its headers without the `dlq_*` and
    /// `retry_count` ones, `retry_count=0` and `dlq_replay_count` one higher. Refused once the
    /// record was replayed `dlq_max_replay_attempts` times, unless `force`. The dead letter stays.
    /// Returns the new replay count once the replay is acknowledged.
    pub async fn replay_dlq_message(
        &self,
        partition: i32,
        offset: i64,
        force: bool,
    ) -> Result<u32, BusError> {
        self.dlq_tools().replay_one(partition, offset, force).await
    }

    /// Replays every dead letter `filter` picks (each as
    /// [`replay_dlq_message`](Self::replay_dlq_message) does; those the guard refuses are
    /// reported, not replayed). With `dry_run`, publishes nothing and reports what it would do.
    pub async fn replay_dlq(
        &self,
        filter: &DlqFilter,
        force: bool,
        dry_run: bool,
    ) -> Result<ReplayReport, BusError> {
        self.dlq_tools()
            .replay_matching(filter, force, dry_run)
            .await
    }

    /// Sends `records` (in order) and returns their deliveries. With tracing on, each record is a
    /// publish span, a child of the current trace context (or a new trace), carried in its
    /// `traceparent` (with `tracestate` and `baggage`).
    async fn send(
        &self,
        records: Vec<EventRecord>,
    ) -> Result<Vec<(DeliveryFuture, Span)>, BusError> {
        let tracing_on = self.inner.config.enable_tracing;
        let current = if tracing_on {
            TraceContext::current()
        } else {
            None
        };
        let mut deliveries = Vec::with_capacity(records.len());
        for r in records {
            let mut trace_headers = Vec::new();
            let mut span = Span::none();
            if tracing_on {
                let header = |i: usize| r.headers.get(i).map_or("", |(_, v)| v.as_str());
                let event_type = header(1);
                let (otel, otel_ctx) = Span::start(
                    || format!("eventsource.event_bus.publish {event_type}"),
                    Kind::Producer,
                    current.as_ref(),
                    || {
                        vec![
                            ("messaging.system", Attr::Str("kafka".into())),
                            ("messaging.destination", Attr::Str(self.inner.topic.clone())),
                            ("messaging.destination_kind", Attr::Str("topic".into())),
                            ("messaging.operation", Attr::Str("publish".into())),
                            ("eventsource.event.type", Attr::Str(event_type.into())),
                            ("eventsource.event.id", Attr::Str(header(0).into())),
                            ("eventsource.aggregate.id", Attr::Str(header(2).into())),
                            ("eventsource.aggregate.type", Attr::Str(header(3).into())),
                        ]
                    },
                );
                span = otel;
                let ctx = otel_ctx.unwrap_or_else(|| {
                    current
                        .as_ref()
                        .map_or_else(TraceContext::new_root, TraceContext::child)
                });
                let _span = tracing::info_span!(
                    "eventsource.event_bus.publish",
                    otel.name = %format!("eventsource.event_bus.publish {event_type}"),
                    otel.kind = "producer",
                    messaging.system = "kafka",
                    messaging.destination = %self.inner.topic,
                    messaging.destination_kind = "topic",
                    messaging.operation = "publish",
                    eventsource.event.type = event_type,
                    eventsource.aggregate.id = %String::from_utf8_lossy(&r.key),
                    trace_id = %ctx.trace_id_hex(),
                    span_id = %ctx.span_id_hex(),
                )
                .entered();
                trace_headers = ctx.headers();
            }
            // The event's header values move into the record; nothing is copied.
            let mut headers = Vec::with_capacity(r.headers.len() + trace_headers.len());
            headers.extend(
                r.headers
                    .into_iter()
                    .chain(trace_headers)
                    .map(|(k, v)| Header::new(k, Some(v))),
            );
            let mut record = ProducerRecord::new(self.inner.topic.clone())
                .key(r.key)
                .value(r.value);
            record.headers = headers;
            deliveries.push((self.inner.producer.send(record).await?, span));
        }
        Ok(deliveries)
    }

    fn encode<P: Publish>(&self, events: &[P]) -> Result<Vec<EventRecord>, BusError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(BusError::Closed);
        }
        events
            .iter()
            .map(|e| e.to_record().map_err(BusError::from))
            .collect()
    }
}

/// Creates the topics that are missing, or fails naming one that is missing when creating is off.
async fn ensure_topics(
    config: &KafkaEventBusConfig,
    properties: &Properties,
    topics: &[String],
) -> Result<(), BusError> {
    let admin = Admin::from_properties(properties).await?;
    for topic in topics {
        // A topic that exists is left alone: no CreateTopics, so a principal allowed to use the
        // topics but not to create any (the usual ACLs for a service) runs the bus.
        if admin.cluster().partitions(topic).await.is_ok() {
            continue;
        }
        if !config.create_topics {
            return Err(BusError::Config(format!(
                "topic {topic} does not exist and create_topics is off"
            )));
        }
        let new = NewTopic::new(
            topic.clone(),
            config.topic_partitions,
            config.topic_replication_factor,
        );
        match admin.ensure_topic(&new).await {
            Ok(true) => tracing::info!(topic = %topic, "bus: topic created"),
            // Created meanwhile by someone else.
            Ok(false) => {}
            // A broker that cannot create topics (librdkafka's mock, say) and a topic that
            // appeared since the lookup above.
            Err(kbus_client::Error::UnsupportedApi { .. })
                if admin.cluster().partitions(topic).await.is_ok() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl EventBus for KafkaEventBus {
    async fn publish<P: Publish>(&self, events: Vec<P>) -> Result<(), BusError> {
        let records = self.encode(&events)?;
        let n = records.len() as u64;
        let started = Instant::now();
        let deliveries = self.send(records).await?;
        for (delivery, mut span) in deliveries {
            match delivery.await {
                Ok(written) => {
                    span.set(
                        "messaging.kafka.partition",
                        Attr::Int(written.partition.into()),
                    );
                    span.set("messaging.kafka.offset", Attr::Int(written.offset));
                    span.end();
                }
                Err(e) => {
                    span.fail(e.to_string());
                    self.inner.counters.error();
                    self.inner.metrics.publish_failed();
                    return Err(e.into());
                }
            }
        }
        self.inner.counters.published(n);
        self.inner.metrics.published(n, started.elapsed());
        Ok(())
    }

    async fn publish_background<P: Publish>(&self, events: Vec<P>) -> Result<(), BusError> {
        let records = self.encode(&events)?;
        let n = records.len();
        let room = self.inner.config.publish_queue_size.max(1);
        let permits = self
            .inner
            .background
            .clone()
            .acquire_many_owned(n.min(room) as u32)
            .await
            .map_err(|_| BusError::Closed)?;
        let started = Instant::now();
        let deliveries = self.send(records).await?;
        let counters = self.inner.counters.clone();
        let metrics = self.inner.metrics.clone();
        tokio::spawn(async move {
            let mut written = 0;
            for (delivery, mut span) in deliveries {
                match delivery.await {
                    Ok(w) => {
                        written += 1;
                        span.set("messaging.kafka.partition", Attr::Int(w.partition.into()));
                        span.set("messaging.kafka.offset", Attr::Int(w.offset));
                    }
                    Err(e) => {
                        metrics.publish_failed();
                        span.fail(e.to_string());
                        counters.error();
                        tracing::warn!(error = %e, "bus: a background publish failed");
                    }
                }
            }
            counters.published(written);
            metrics.published(written, started.elapsed());
            drop(permits);
        });
        Ok(())
    }

    fn subscribe<E: Event>(&self, handler: impl Handler<E>) -> Subscription {
        self.inner.registry.add(Route::typed(handler))
    }

    fn subscribe_all(&self, handler: impl Handler<RawPayload>) -> Subscription {
        self.inner.registry.add(Route::all(handler))
    }

    fn unsubscribe(&self, subscription: Subscription) -> bool {
        self.inner.registry.remove(subscription)
    }

    fn register<S: Subscriber>(&self, subscriber: Arc<S>) -> Vec<Subscription> {
        self.inner.registry.register(subscriber)
    }

    fn stats(&self) -> BusStats {
        let mut stats = self.inner.counters.snapshot();
        // The consumer's reconnections are in the counters; the producer's are added here.
        stats.reconnections += self.inner.producer.metrics().reconnects;
        stats
    }

    async fn shutdown(&self, timeout: Duration) -> Result<(), BusError> {
        let deadline = Instant::now() + timeout;
        self.inner.closed.store(true, Ordering::Release);
        self.inner.stop.send_replace(true);
        let consuming = lock(&self.inner.consuming).take();
        let mut result = Ok(());
        if let Some(mut task) = consuming {
            // The loop keeps its own deadline (shutdown_timeout); this one bounds the caller's.
            match tokio::time::timeout_at(deadline.into(), &mut task).await {
                Ok(Ok(r)) => result = r,
                Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Ok(Err(_)) => {}
                Err(_) => {
                    task.abort();
                    result = Err(BusError::ShutdownTimedOut(timeout));
                }
            }
        }
        // Background publishes still under way get what is left of the time.
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.inner.producer.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = result.and(Err(e.into())),
            Err(_) => result = result.and(Err(BusError::ShutdownTimedOut(timeout))),
        }
        result
    }
}
