//! The Kafka event bus's OpenTelemetry spans (feature `opentelemetry`) on Apache Kafka, collected
//! with the SDK's in-memory exporter: a publish span (PRODUCER) per event with the partition and
//! offset it was written at, a consume span (CONSUMER) that is a child of that publish span in the
//! same trace, a dispatch span (INTERNAL) per handler under it, named and attributed as
//! eventsource-py names them; and the record's traceparent names the publish span. Metrics come
//! from the meter `eventsource.bus.kafka` under eventsource-py's names, read with the in-memory
//! metric exporter.

use std::sync::Arc;

use kbus::bus::conformance::{Recorder, GUARD};
use kbus::bus::kafka::{KafkaEventBus, KafkaEventBusConfig};
use kbus::bus::trace::TraceContext;
use kbus::bus::{new_uuid, Envelope, Event, EventBus};
use kbus_testkit::kafka::Kafka;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Shipped {
    carrier: String,
}

impl Event for Shipped {
    const EVENT_TYPE: &'static str = "Shipped";
    const AGGREGATE_TYPE: &'static str = "Order";
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a KeyValue> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key)
}

fn text(span: &SpanData, key: &str) -> String {
    attribute(span, key)
        .map(|kv| kv.value.as_str().into_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_nest_publish_consume_dispatch_and_metrics_count_them() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let metric_exporter = InMemoryMetricExporter::default();
    let meters = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metric_exporter.clone()).build())
        .build();
    opentelemetry::global::set_meter_provider(meters.clone());

    let kafka = Kafka::shared();
    let prefix = format!("otel-{}", std::process::id());
    let bus = KafkaEventBus::connect(KafkaEventBusConfig {
        bootstrap_servers: kafka.bootstrap(),
        topic_prefix: prefix.clone(),
        consumer_group: format!("{prefix}-group"),
        session_timeout_ms: 6000,
        heartbeat_interval_ms: 500,
        topic_partitions: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    let got = Recorder::<Shipped>::new();
    let record = got.handler();
    let contexts = Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let contexts = contexts.clone();
        bus.subscribe(kbus::bus::named(
            "ShippingProjection",
            move |e: Arc<Envelope<Shipped>>| {
                contexts.lock().unwrap().push(TraceContext::current());
                record(e)
            },
        ));
    }
    bus.start().await.unwrap();
    let event = Envelope::new(
        new_uuid(),
        1,
        Shipped {
            carrier: "DHL".into(),
        },
    );
    bus.publish(vec![event.clone()]).await.unwrap();
    got.wait_for(1).await;
    bus.shutdown(GUARD).await.unwrap();
    provider.force_flush().unwrap();
    meters.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let named = |name: &str| {
        spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
            panic!(
                "no span {name} among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
    };
    let publish = named("eventsource.event_bus.publish Shipped");
    let consume = named("eventsource.event_bus.consume Shipped");
    let dispatch = named("eventsource.event_bus.dispatch ShippingProjection");
    assert_eq!(publish.span_kind, SpanKind::Producer);
    assert_eq!(consume.span_kind, SpanKind::Consumer);
    assert_eq!(dispatch.span_kind, SpanKind::Internal);
    assert_eq!(
        publish.instrumentation_scope.name(),
        "eventsource.adapters.kafka.bus"
    );

    let trace = publish.span_context.trace_id();
    assert_eq!(consume.span_context.trace_id(), trace, "one trace");
    assert_eq!(
        consume.parent_span_id,
        publish.span_context.span_id(),
        "consume under publish"
    );
    assert!(
        consume.parent_span_is_remote,
        "the parent came through Kafka"
    );
    assert_eq!(dispatch.span_context.trace_id(), trace);
    assert_eq!(
        dispatch.parent_span_id,
        consume.span_context.span_id(),
        "dispatch under consume"
    );
    assert_eq!(publish.status, Status::Unset);

    assert_eq!(text(publish, "messaging.system"), "kafka");
    assert_eq!(
        text(publish, "messaging.destination"),
        format!("{prefix}.stream")
    );
    assert_eq!(
        text(publish, "eventsource.event.id"),
        event.meta.event_id.to_string()
    );
    assert_eq!(
        text(publish, "eventsource.aggregate.id"),
        event.meta.aggregate_id.to_string()
    );
    assert!(
        attribute(publish, "messaging.kafka.offset").is_some(),
        "set after the ack"
    );
    assert_eq!(text(consume, "messaging.operation"), "receive");
    assert_eq!(
        text(consume, "messaging.kafka.consumer_group"),
        format!("{prefix}-group")
    );
    assert_eq!(
        text(dispatch, "eventsource.handler.name"),
        "ShippingProjection"
    );

    // eventsource-py's metrics.
    for (name, expected) in [
        ("kafka.eventbus.messages.published", 1),
        ("kafka.eventbus.messages.consumed", 1),
        ("kafka.eventbus.handler.invocations", 1),
        ("kafka.eventbus.rebalances", 1),
        ("kafka.eventbus.publish.duration", 1),
        ("kafka.eventbus.handler.duration", 1),
        ("kafka.eventbus.batch.size", 1),
        ("kafka.eventbus.consume.duration", 1),
        // One partition: one lag series; and the number of open connections.
        ("kafka.eventbus.consumer.lag", 1),
        ("kafka.eventbus.connections.active", 1),
    ] {
        assert_eq!(metric(&metric_exporter, name), Some(expected), "{name}");
    }

    // Per handler, as eventsource-py records them: the handler's name and the event type.
    for name in [
        "kafka.eventbus.handler.invocations",
        "kafka.eventbus.handler.duration",
    ] {
        let attributes = metric_attributes(&metric_exporter, name);
        assert!(
            attributes.contains(&("handler.name".into(), "ShippingProjection".into()))
                && attributes.iter().any(|(k, _)| k == "event.type"),
            "{name}: {attributes:?}"
        );
    }

    // The handler ran in the consume span's context.
    let seen = contexts.lock().unwrap()[0].clone().expect("a context");
    assert_eq!(seen.trace_id, trace.to_bytes());
    assert_eq!(seen.span_id, consume.span_context.span_id().to_bytes());
}

/// The attributes of the first data point of the u64 counter or f64 histogram `name` in the last
/// export.
fn metric_attributes(exporter: &InMemoryMetricExporter, name: &str) -> Vec<(String, String)> {
    let exported = exporter.get_finished_metrics().unwrap();
    let last = exported.last().expect("an export");
    let pairs = |kv: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
        kv.map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect::<Vec<_>>()
    };
    for scope in last.scope_metrics() {
        for m in scope.metrics().filter(|m| m.name() == name) {
            match m.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                    if let Some(p) = sum.data_points().next() {
                        return pairs(&mut p.attributes());
                    }
                }
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    if let Some(p) = h.data_points().next() {
                        return pairs(&mut p.attributes());
                    }
                }
                _ => {}
            }
        }
    }
    Vec::new()
}

/// The sum of the u64 counter `name` in the last export, or the count of the histogram `name`.
fn metric(exporter: &InMemoryMetricExporter, name: &str) -> Option<u64> {
    let exported = exporter.get_finished_metrics().unwrap();
    let last = exported.last()?;
    for scope in last.scope_metrics() {
        if scope.scope().name() != kbus::bus::METER {
            continue;
        }
        for m in scope.metrics() {
            if m.name() != name {
                continue;
            }
            return match m.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                    Some(sum.data_points().map(|p| p.value()).sum())
                }
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    Some(h.data_points().map(|p| p.count()).sum())
                }
                AggregatedMetrics::U64(MetricData::Histogram(h)) => {
                    Some(h.data_points().map(|p| p.count()).sum())
                }
                // Gauges: how many series were recorded.
                AggregatedMetrics::I64(MetricData::Gauge(g)) => {
                    Some(g.data_points().count() as u64)
                }
                AggregatedMetrics::U64(MetricData::Gauge(g)) => {
                    Some(g.data_points().count() as u64)
                }
                _ => None,
            };
        }
    }
    None
}
