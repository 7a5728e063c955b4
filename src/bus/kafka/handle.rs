//! One record's way through the bus: read it as an event, run its handlers, retry the ones that
//! failed in place (only this aggregate waits), and dead-letter it when retries run out or it
//! cannot be read — returning only once the dead letter is acknowledged, so that its offset is
//! committed only then.

use std::sync::Arc;
use std::time::Duration;

use kbus_client::consumer::ConsumerRecord;
use kbus_client::producer::{Producer, ProducerRecord};
use std::collections::BTreeSet;

use kbus_client::TopicPartition;
use tokio::sync::watch;

use super::config::KafkaEventBusConfig;
use crate::bus::dead_letter::{dead_letter_headers, retry_count, DeadLetterReason, Failure};
use crate::bus::handler::HandlerError;
use crate::bus::otel::{Attr, BusMetrics, Kind, Span};
use crate::bus::registry::{Dispatched, HandlerRuns, Registry, Subscription};
use crate::bus::stats::Counters;
use crate::bus::time::Timestamp;
use crate::bus::trace::TraceContext;
use crate::bus::wire;

/// What handling a record needs; shared by every record of a bus.
pub(crate) struct Context {
    pub registry: Arc<Registry>,
    pub counters: Arc<Counters>,
    pub producer: Producer,
    pub config: Arc<KafkaEventBusConfig>,
    pub dlq_topic: String,
    /// True once the bus is shutting down: a dead letter that cannot be written is abandoned
    /// then (the record stays uncommitted and is read again).
    pub stopping: watch::Receiver<bool>,
    /// The partitions this member owns, published for [`KafkaEventBus::assignment`](super::KafkaEventBus::assignment).
    pub assignment: watch::Sender<BTreeSet<TopicPartition>>,
    /// OpenTelemetry metrics (nothing without the feature).
    pub metrics: Arc<BusMetrics>,
}

/// How a record ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every handler succeeded.
    Handled,
    /// No handler here takes its type.
    Skipped,
    /// Written to the dead-letter topic (acknowledged).
    DeadLettered,
    /// Given up without a dead letter (`enable_dlq=false`).
    Dropped,
    /// Not finished: the bus stopped first. Its offset must not be committed.
    Abandoned,
}

impl Outcome {
    /// True when the record's offset may be committed.
    pub fn finished(self) -> bool {
        self != Outcome::Abandoned
    }
}

/// A record's event as read from its value: the base fields, or why they cannot be read.
pub(crate) type Read = Result<wire::ReadEvent, wire::EnvelopeError>;

/// Reads `record`'s event (pure work: the consume loop does it ahead, off its own turn, for
/// large batches).
pub(crate) fn read(record: &ConsumerRecord) -> Read {
    let value = record.value.clone().unwrap_or_default();
    wire::ReadEvent::read(value, header(record, "event_type"))
}

/// Handles `record`, whose event was read ahead as `read` (or is read here); see the module docs.
/// With tracing on, it runs in a consume span that is a child of the record's publish span (its
/// `traceparent`), and handlers see that context as [`TraceContext::current`].
pub(crate) async fn handle(ctx: &Context, record: &ConsumerRecord, read: Option<Read>) -> Outcome {
    if !ctx.config.enable_tracing {
        let started = std::time::Instant::now();
        let outcome = handle_record(ctx, record, read).await;
        ctx.metrics.consume_took(started.elapsed());
        return outcome;
    }
    let extracted = TraceContext::extract(
        header(record, "traceparent"),
        header(record, "tracestate"),
        header(record, "baggage"),
    );
    let event_type = header(record, "event_type").unwrap_or_default();
    let (mut otel, otel_ctx) = Span::start(
        || format!("eventsource.event_bus.consume {event_type}"),
        Kind::Consumer,
        extracted.as_ref(),
        || {
            vec![
                ("messaging.system", Attr::Str("kafka".into())),
                ("messaging.source", Attr::Str(record.topic.to_string())),
                ("messaging.source_kind", Attr::Str("topic".into())),
                ("messaging.operation", Attr::Str("receive".into())),
                (
                    "messaging.kafka.partition",
                    Attr::Int(record.partition.into()),
                ),
                ("messaging.kafka.offset", Attr::Int(record.offset)),
                (
                    "messaging.kafka.consumer_group",
                    Attr::Str(ctx.config.consumer_group.clone()),
                ),
                ("eventsource.event.type", Attr::Str(event_type.into())),
            ]
        },
    );
    let trace = otel_ctx.unwrap_or_else(|| {
        extracted
            .as_ref()
            .map_or_else(TraceContext::new_root, TraceContext::child)
    });
    let span = tracing::info_span!(
        "eventsource.event_bus.consume",
        otel.name = %format!("eventsource.event_bus.consume {event_type}"),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.source = %record.topic,
        messaging.source_kind = "topic",
        messaging.operation = "receive",
        messaging.kafka.partition = record.partition,
        messaging.kafka.offset = record.offset,
        messaging.kafka.consumer_group = %ctx.config.consumer_group,
        eventsource.event.type = %event_type,
        trace_id = %trace.trace_id_hex(),
        span_id = %trace.span_id_hex(),
        parent_span_id = %extracted.as_ref().map(TraceContext::span_id_hex).unwrap_or_default(),
    );
    let started = std::time::Instant::now();
    let outcome = trace
        .scope(tracing::Instrument::instrument(
            handle_record(ctx, record, read),
            span,
        ))
        .await;
    match outcome {
        Outcome::DeadLettered | Outcome::Dropped => otel.fail("dead-lettered".into()),
        Outcome::Abandoned => otel.fail("abandoned".into()),
        Outcome::Handled | Outcome::Skipped => {}
    }
    otel.end();
    ctx.metrics.consume_took(started.elapsed());
    outcome
}

/// The rare ways (dead letters, retry waits) are boxed: this future is made for every event.
async fn handle_record(ctx: &Context, record: &ConsumerRecord, read: Option<Read>) -> Outcome {
    let c = &ctx.counters;
    let event = match read.unwrap_or_else(|| self::read(record)) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(
                partition = record.partition,
                offset = record.offset,
                error = %e,
                "event cannot be read; dead-lettering it"
            );
            c.error();
            let message = e.to_string();
            let failure = failure(
                record,
                DeadLetterReason::DeserializationError,
                "DeserializationError",
                &message,
                0,
                &ctx.config.consumer_group,
            );
            return Box::pin(dead_letter(ctx, record, &failure)).await;
        }
    };
    // Attempts eventsource-py made already count toward the limit.
    let mut attempts = retry_count(&record.headers);
    let mut only: Option<Vec<Subscription>> = None;
    let event_type = event.meta.event_type.as_str();
    let measure = |handler: &str, elapsed, error: Option<&HandlerError>| {
        ctx.metrics.handler_ran(handler, event_type, elapsed, error)
    };
    let ran: Option<&HandlerRuns<'_>> = ctx.metrics.measures_handlers().then_some(&measure);
    loop {
        let dispatched = ctx.registry.dispatch_to(&event, only.as_deref(), ran).await;
        match dispatched {
            Dispatched::Handled => {
                Counters::add(&c.events_processed_success, 1);
                return Outcome::Handled;
            }
            Dispatched::NoHandler => {
                Counters::add(&c.events_skipped, 1);
                return Outcome::Skipped;
            }
            Dispatched::Undecodable(why) => {
                c.error();
                tracing::warn!(
                    event_type = %event.meta.event_type,
                    event_id = %event.meta.event_id,
                    error = %why,
                    "event not readable by its handlers; dead-lettering it"
                );
                let failure = failure(
                    record,
                    DeadLetterReason::DeserializationError,
                    "DeserializationError",
                    &why,
                    0,
                    &ctx.config.consumer_group,
                );
                return Box::pin(dead_letter(ctx, record, &failure)).await;
            }
            Dispatched::Failed(failures) => {
                Counters::add(&c.events_processed_failed, 1);
                Counters::add(&c.handler_errors, failures.len() as u64);
                c.error();
                let error_type = Dispatched::error_type(&failures);
                let message = Dispatched::error_message(&failures);
                if attempts >= ctx.config.max_retries {
                    tracing::warn!(
                        event_type = %event.meta.event_type,
                        event_id = %event.meta.event_id,
                        attempts,
                        error = %message,
                        "retries exhausted; dead-lettering the event"
                    );
                    let failure = failure(
                        record,
                        DeadLetterReason::MaxRetriesExceeded,
                        &error_type,
                        &message,
                        attempts,
                        &ctx.config.consumer_group,
                    );
                    return Box::pin(dead_letter(ctx, record, &failure)).await;
                }
                attempts += 1;
                let delay = jittered(ctx.config.retry_delay(attempts), ctx.config.retry_jitter);
                tracing::debug!(
                    event_type = %event.meta.event_type,
                    event_id = %event.meta.event_id,
                    attempt = attempts,
                    delay_ms = delay.as_millis() as u64,
                    error = %message,
                    "handler failed; retrying"
                );
                if !Box::pin(wait(ctx, delay)).await {
                    return Outcome::Abandoned;
                }
                only = Some(failures.iter().map(|f| f.subscription).collect());
            }
        }
    }
}

/// The text of `record`'s first header `name`.
pub(crate) fn header<'a>(record: &'a ConsumerRecord, name: &str) -> Option<&'a str> {
    record
        .headers
        .iter()
        .find(|h| h.key.as_ref() == name.as_bytes())
        .and_then(|h| h.value_str())
}

fn failure<'a>(
    record: &'a ConsumerRecord,
    reason: DeadLetterReason,
    error_type: &'a str,
    message: &'a str,
    retry_count: u32,
    group: &'a str,
) -> Failure<'a> {
    Failure {
        reason,
        error_type,
        error_message: message,
        retry_count,
        at: Timestamp::now(),
        topic: &record.topic,
        partition: record.partition,
        offset: record.offset,
        group,
    }
}

/// Writes the dead letter of `record` and waits for the acknowledgement, trying again (with
/// backoff) until it is written or the bus stops.
async fn dead_letter(ctx: &Context, record: &ConsumerRecord, failure: &Failure<'_>) -> Outcome {
    if !ctx.config.enable_dlq {
        tracing::warn!(
            partition = record.partition,
            offset = record.offset,
            "dead letters are off (enable_dlq=false): the event is dropped"
        );
        return Outcome::Dropped;
    }
    let mut dead = ProducerRecord::new(ctx.dlq_topic.clone());
    if let Some(key) = &record.key {
        dead = dead.key(key.clone());
    }
    if let Some(value) = &record.value {
        dead = dead.value(value.clone());
    }
    dead.headers = dead_letter_headers(&record.headers, failure);
    let mut delay = Duration::from_millis(100);
    loop {
        let written = match ctx.producer.send(dead.clone()).await {
            Ok(delivery) => delivery.await,
            Err(e) => Err(e),
        };
        match written {
            Ok(_) => {
                Counters::add(&ctx.counters.messages_sent_to_dlq, 1);
                ctx.metrics.dead_lettered();
                return Outcome::DeadLettered;
            }
            Err(e) => {
                ctx.counters.error();
                tracing::warn!(
                    topic = %ctx.dlq_topic,
                    error = %e,
                    "writing a dead letter failed; trying again"
                );
                if !wait(ctx, delay).await {
                    return Outcome::Abandoned;
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Sleeps `delay`; false when the bus started stopping meanwhile.
async fn wait(ctx: &Context, delay: Duration) -> bool {
    let mut stopping = ctx.stopping.clone();
    if *stopping.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = stopping.wait_for(|s| *s) => false,
    }
}

/// `delay` varied by up to `jitter` (a fraction) either way.
fn jittered(delay: Duration, jitter: f64) -> Duration {
    let r = crate::bus::new_uuid().as_u64_pair().0 as f64 / u64::MAX as f64;
    delay.mul_f64((1.0 + jitter * (2.0 * r - 1.0)).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_fraction() {
        let base = Duration::from_secs(10);
        for _ in 0..200 {
            let d = jittered(base, 0.1);
            assert!(
                d >= Duration::from_secs(9) && d <= Duration::from_secs(11),
                "{d:?}"
            );
        }
        assert_eq!(jittered(base, 0.0), base);
    }
}
