//! What an operator sees of a consumer group on librdkafka's mock cluster: the `tracing` events
//! the client emits (a rebalance at INFO with the group, generation and partitions as fields,
//! nothing above DEBUG while records flow) and the metrics it counts.
//!
//! The runtime is single-threaded so that every task of the client runs on the thread where the
//! test's collecting subscriber is installed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kbus::cluster::{Cluster, ClusterConfig};
use kbus::consumer::{Consumer, ConsumerConfig, Event};
use kbus::producer::{Producer, ProducerConfig, ProducerRecord};
use kbus::Settings;
use kbus_testkit::mock_cluster::MockCluster;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event as TracingEvent, Level, Metadata, Subscriber};

const GUARD: Duration = Duration::from_secs(60);

/// One event as the subscriber saw it: level, message, fields, and the names of the spans it was
/// emitted in.
#[derive(Debug, Clone)]
struct Seen {
    level: Level,
    message: String,
    fields: BTreeMap<String, String>,
    spans: Vec<String>,
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

/// Collects every event at DEBUG or above, with the spans entered when it fired.
#[derive(Default, Clone)]
struct Collector {
    events: Arc<Mutex<Vec<Seen>>>,
    spans: Arc<Mutex<BTreeMap<u64, String>>>,
    stack: Arc<Mutex<Vec<u64>>>,
    next: Arc<AtomicU64>,
}

impl Subscriber for Collector {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::DEBUG
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = Fields::default();
        span.record(&mut fields);
        let name = match fields.0.get("group") {
            Some(group) => format!("{}[{group}]", span.metadata().name()),
            None => span.metadata().name().to_string(),
        };
        self.spans.lock().unwrap().insert(id, name);
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &TracingEvent<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or_default();
        let names = self.spans.lock().unwrap();
        let spans = self
            .stack
            .lock()
            .unwrap()
            .iter()
            .filter_map(|id| names.get(id).cloned())
            .collect();
        self.events.lock().unwrap().push(Seen {
            level: *event.metadata().level(),
            message,
            fields: fields.0,
            spans,
        });
    }
    fn enter(&self, span: &Id) {
        self.stack.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, span: &Id) {
        let mut stack = self.stack.lock().unwrap();
        if let Some(i) = stack.iter().rposition(|id| *id == span.into_u64()) {
            stack.remove(i);
        }
    }
}

impl Collector {
    fn events(&self) -> Vec<Seen> {
        self.events.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_rebalance_is_logged_with_its_group_and_steady_consumption_is_quiet() {
    let collector = Collector::default();
    let _guard = tracing::subscriber::set_default(collector.clone());

    let mock = MockCluster::start(1);
    mock.create_topic("observed", 2, 1);
    mock.use_tested_group_versions();
    let bootstrap = mock.bootstrap();
    let producer = Producer::new(
        Cluster::connect(ClusterConfig::new(&bootstrap))
            .await
            .unwrap(),
        ProducerConfig::default(),
    )
    .await
    .unwrap();
    let mut config = ConsumerConfig::from_properties([
        ("group.id", "observers"),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "100"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "300"),
    ])
    .unwrap();
    config.enable_auto_commit = false;
    let mut consumer = Consumer::new(
        Cluster::connect(ClusterConfig::new(&bootstrap))
            .await
            .unwrap(),
        config,
    );
    consumer.subscribe(["observed"]).unwrap();
    let assigned = match tokio::time::timeout(GUARD, consumer.poll()).await {
        Ok(Ok(Event::Assigned(p))) => p,
        Ok(Ok(Event::Error(e))) => panic!("the group should join: {e}"),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(_) => panic!("no assignment within {GUARD:?}"),
    };
    assert_eq!(assigned.len(), 2);

    let joined = collector.events();
    let rebalance = joined
        .iter()
        .find(|e| e.message == "rebalance done: partitions assigned")
        .unwrap_or_else(|| panic!("no rebalance event among {joined:#?}"));
    assert_eq!(rebalance.level, Level::INFO);
    assert_eq!(rebalance.fields["group"], "observers");
    assert!(rebalance.fields["generation"].parse::<i32>().unwrap() >= 1);
    assert!(
        rebalance.fields["partitions"].contains("observed"),
        "{rebalance:?}"
    );
    assert!(
        rebalance.spans.iter().any(|s| s == "group[observers]"),
        "emitted in the member's span: {rebalance:?}"
    );

    // Steady state: records produced and consumed, nothing logged above DEBUG.
    let before = collector.events().len();
    let mut deliveries = Vec::new();
    for i in 0..200 {
        let record = ProducerRecord::new("observed")
            .partition(i % 2)
            .value(format!("v{i}"));
        deliveries.push(producer.send(record).await.unwrap());
    }
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    let mut got = 0;
    while got < 200 {
        match tokio::time::timeout(GUARD, consumer.poll()).await {
            Ok(Ok(Event::Records(r))) => got += r.records.len(),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => panic!("only {got} of 200 records within {GUARD:?}"),
        }
    }
    consumer.commit_consumed().await.unwrap();
    let steady: Vec<Seen> = collector.events()[before..]
        .iter()
        .filter(|e| e.level < Level::DEBUG)
        .cloned()
        .collect();
    assert!(
        steady.is_empty(),
        "quiet at INFO in steady state: {steady:#?}"
    );

    let metrics = consumer.metrics();
    assert_eq!(metrics.records_received, 200, "{metrics:?}");
    assert_eq!(metrics.rebalances, 1, "{metrics:?}");
    let sent = producer.metrics();
    assert_eq!(sent.records_sent, 200, "{sent:?}");
    assert!(sent.bytes_sent > 200, "{sent:?}");
}
