//! Failover on a 3-node Apache Kafka cluster (replication factor 3, `min.insync.replicas=2`):
//! while an idempotent producer writes with `acks=all` and a group of two kbus consumers reads,
//! the node coordinating the group (and leading some partitions) is killed, then started again.
//! Nothing is lost — every send is acknowledged and every record consumed — and the log holds
//! each record exactly once, each key's records in order.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kbus::cluster::{Cluster, ClusterConfig, CoordinatorType};
use kbus::config::Properties;
use kbus::consumer::{Consumer, Event};
use kbus::producer::{Producer, ProducerRecord};
use kbus_testkit::kafka::Kafka;
use tokio::sync::{oneshot, Notify};

use common::{
    assert_exactly_once, assert_per_key_order, blocking, create_topic, read_all, records_in_log,
};

const N: usize = 30_000;
const PARTITIONS: i32 = 6;
const GROUP: &str = "failover-group";
/// A failure guard for waiting on the consumers.
const GUARD: Duration = Duration::from_secs(180);

/// Records consumed so far (partition, offset), and a signal on each change.
#[derive(Default)]
struct Seen {
    records: Mutex<BTreeSet<(i32, i64)>>,
    changed: Notify,
}

/// A group member that consumes until stopped, committing after every few polls and when
/// partitions are revoked.
fn member(bootstrap: &str, seen: Arc<Seen>) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let properties = Properties::from([
        ("bootstrap.servers", bootstrap),
        ("group.id", GROUP),
        ("auto.offset.reset", "earliest"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "1000"),
    ]);
    let task = tokio::spawn(async move {
        let mut consumer = Consumer::from_properties(properties).await.unwrap();
        consumer.subscribe(["failover"]).unwrap();
        let mut polls = 0u64;
        loop {
            let event = tokio::select! {
                _ = &mut stopped => break,
                event = consumer.poll() => event.expect("poll fails over without surfacing errors"),
            };
            match event {
                Event::Records(batch) => {
                    let p = batch.topic_partition.partition;
                    seen.records
                        .lock()
                        .unwrap()
                        .extend(batch.records.iter().map(|r| (p, r.offset)));
                    seen.changed.notify_waiters();
                    polls += 1;
                    if polls % 20 == 0 {
                        // A commit may fail while the coordinator moves; the next one covers it.
                        let _ = consumer.commit_consumed().await;
                    }
                }
                Event::Revoked(_) => {
                    let _ = consumer.commit_consumed().await;
                }
                _ => {}
            }
        }
        consumer.close().await.unwrap();
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_or_duplicated_when_a_broker_dies_and_returns() {
    let cluster = blocking(|| Kafka::builder().start_cluster(3)).await;
    let _logs = cluster.log_on_failure();
    let bootstrap = cluster.bootstrap();
    let cluster = Arc::new(Mutex::new(cluster));
    create_topic(&bootstrap, "failover", PARTITIONS, &[]).await;

    let seen = Arc::new(Seen::default());
    let (stop_a, a) = member(&bootstrap, seen.clone());
    let (stop_b, b) = member(&bootstrap, seen.clone());

    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("linger.ms", "5"),
    ])
    .await
    .unwrap();
    // The node to kill: the group's coordinator (it also leads some partitions).
    let client = Cluster::connect(ClusterConfig::new(&bootstrap))
        .await
        .unwrap();
    let (victim, _) = client
        .coordinator(CoordinatorType::Group, GROUP)
        .await
        .unwrap();

    let mut deliveries = Vec::with_capacity(N);
    let mut restarted = None;
    for i in 0..N {
        let r = ProducerRecord::new("failover")
            .key(format!("key-{}", i % 300))
            .value(format!("value-{i}"));
        deliveries.push(producer.send(r).await.unwrap());
        if i == N / 3 {
            // Everything so far is in; then the node dies with records in flight.
            producer.flush().await.unwrap();
            let cluster = cluster.clone();
            blocking(move || cluster.lock().unwrap().node(victim).kill()).await;
        }
        if i == 2 * N / 3 {
            producer.flush().await.unwrap();
            let cluster = cluster.clone();
            restarted = Some(tokio::spawn(blocking(move || {
                cluster.lock().unwrap().node(victim).restart()
            })));
        }
        if i % 100 == 99 {
            // A steady stream, not one burst: the failover happens while records flow.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for d in deliveries {
        d.await
            .expect("acks=all with a replica down still delivers");
    }
    producer.close().await.unwrap();
    restarted.unwrap().await.unwrap();

    // Every record is consumed by the group (at least once).
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let changed = seen.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let count = seen.records.lock().unwrap().len();
        if count == N {
            break;
        }
        assert!(
            tokio::time::timeout_at(deadline, changed).await.is_ok(),
            "the group consumed {count} of {N} records"
        );
    }
    let _ = stop_a.send(());
    let _ = stop_b.send(());
    a.await.unwrap();
    b.await.unwrap();

    // The log: each record exactly once, each key's records in order.
    let records = read_all(&bootstrap, "failover", PARTITIONS).await;
    assert_exactly_once(&records, N);
    assert_per_key_order(&records);
    assert_eq!(records_in_log(&bootstrap, "failover").await, N as i64);
}
