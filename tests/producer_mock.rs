//! The producer against librdkafka's 3-broker mock cluster: keyed placement, delivery reports,
//! retries through injected errors and leader moves, idempotence, acks=0, and bounded memory.
//! What was written is read back with the kbus consumer.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use kbus::cluster::{Cluster, ClusterConfig};
use kbus::producer::{murmur2_partition, Acks, Producer, ProducerConfig, ProducerRecord};
use kbus::protocol::error_code::ErrorCode;
use kbus::protocol::ApiKey;
use kbus_testkit::mock_cluster::MockCluster;

async fn producer(mock: &MockCluster, config: ProducerConfig) -> Producer {
    let cluster = Cluster::connect(ClusterConfig::new(&mock.bootstrap()))
        .await
        .unwrap();
    Producer::new(cluster, config).await.unwrap()
}

/// Sends `n` records with keys `key-{i % keys}` and values `value-{i}`; returns, per sent record,
/// its key index and the delivered (partition, offset).
async fn send_keyed(p: &Producer, topic: &str, n: usize, keys: usize) -> Vec<(usize, i32, i64)> {
    send_keyed_from(p, topic, 0, n, keys).await
}

/// Like [`send_keyed`], numbering the records from `from`.
async fn send_keyed_from(
    p: &Producer,
    topic: &str,
    from: usize,
    n: usize,
    keys: usize,
) -> Vec<(usize, i32, i64)> {
    let mut futures = Vec::with_capacity(n);
    for i in from..from + n {
        let rec = ProducerRecord::new(topic)
            .key(format!("key-{}", i % keys))
            .value(format!("value-{i}"));
        futures.push((i % keys, p.send(rec).await.unwrap()));
    }
    let mut out = Vec::with_capacity(n);
    for (k, f) in futures {
        let md = f.await.unwrap();
        out.push((k, md.partition, md.offset));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_land_on_their_murmur2_partition_in_order_and_are_read_exactly_once() {
    let mock = MockCluster::start(3);
    mock.create_topic("keyed", 6, 3);
    let p = producer(&mock, ProducerConfig::default()).await;
    assert!(
        p.identity().is_some(),
        "idempotence is on by default with acks=all"
    );
    let n = 100_000;
    let delivered = send_keyed(&p, "keyed", n, 1000).await;
    p.close().await.unwrap();

    let mut last_offset: HashMap<usize, i64> = HashMap::new();
    for (k, partition, offset) in &delivered {
        let key = format!("key-{k}");
        assert_eq!(*partition, murmur2_partition(key.as_bytes(), 6), "{key}");
        let prev = last_offset.insert(*k, *offset);
        assert!(prev.is_none_or(|o| o < *offset), "{key}: order kept");
    }

    assert_eq!(
        common::records_in_log(&mock.bootstrap(), "keyed").await,
        n as i64
    );
    let records = common::read_all(&mock.bootstrap(), "keyed", 6).await;
    common::assert_exactly_once(&records, n);
    common::assert_per_key_order(&records);
    for r in &records {
        let key = std::str::from_utf8(r.key.as_deref().unwrap()).unwrap();
        assert_eq!(r.partition, murmur2_partition(key.as_bytes(), 6), "{key}");
    }
}

/// librdkafka's mock checks idempotent sequence numbers only for transactional producers, so it
/// neither refuses an out-of-order batch nor drops a duplicate from a plain idempotent producer.
/// With several requests in flight, the order of records after a retry therefore rests on the
/// broker (as in Kafka) and cannot be checked here; with one request in flight per connection
/// the client alone keeps it, and that is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_produce_errors_are_retried_without_loss_or_duplicates() {
    for (round, max_in_flight) in [5, 1].into_iter().enumerate() {
        let topic = format!("retried-{round}");
        let mock = MockCluster::start(3);
        mock.create_topic(&topic, 3, 3);
        let p = producer(
            &mock,
            ProducerConfig {
                retry_backoff: Duration::from_millis(10),
                max_in_flight,
                ..Default::default()
            },
        )
        .await;
        assert!(p.identity().is_some());
        // The next Produce requests fail with retriable errors.
        mock.push_request_errors(
            ApiKey::Produce,
            &[
                ErrorCode::NOT_LEADER_OR_FOLLOWER,
                ErrorCode::REQUEST_TIMED_OUT,
                ErrorCode::NOT_ENOUGH_REPLICAS,
                ErrorCode::REQUEST_TIMED_OUT,
            ],
        );
        let n = 20_000;
        let delivered = send_keyed(&p, &topic, n, 100).await;
        p.close().await.unwrap();
        assert_eq!(delivered.len(), n);
        assert_eq!(
            common::records_in_log(&mock.bootstrap(), &topic).await,
            n as i64
        );
        let records = common::read_all(&mock.bootstrap(), &topic, 3).await;
        common::assert_exactly_once(&records, n);
        if max_in_flight == 1 {
            common::assert_per_key_order(&records);
        }
    }
}

/// Leadership moves between two rounds of sends; one request in flight per connection keeps
/// per-key order without the broker's sequence checks (see above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_leader_is_followed() {
    let mock = MockCluster::start(3);
    mock.create_topic("moving", 2, 3);
    let p = producer(
        &mock,
        ProducerConfig {
            max_in_flight: 1,
            ..Default::default()
        },
    )
    .await;
    let first = send_keyed(&p, "moving", 2_000, 10).await;
    for partition in 0..2 {
        let md = p.cluster().metadata();
        let leader = md
            .topic("moving")
            .unwrap()
            .partition(partition)
            .unwrap()
            .leader;
        mock.set_leader("moving", partition, Some(leader % 3 + 1));
    }
    let second = send_keyed_from(&p, "moving", 2_000, 2_000, 10).await;
    p.close().await.unwrap();
    assert_eq!(first.len() + second.len(), 4_000);
    assert_eq!(
        common::records_in_log(&mock.bootstrap(), "moving").await,
        4_000
    );
    let records = common::read_all(&mock.bootstrap(), "moving", 2).await;
    common::assert_exactly_once(&records, 4_000);
    common::assert_per_key_order(&records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_and_acks_one_deliver() {
    let mock = MockCluster::start(3);
    mock.create_topic("acks", 3, 1);
    for (acks, expect_offsets) in [(Acks::Leader, true), (Acks::None, false)] {
        let p = producer(
            &mock,
            ProducerConfig {
                acks,
                ..Default::default()
            },
        )
        .await;
        assert!(p.identity().is_none(), "idempotence needs acks=all");
        let delivered = send_keyed(&p, "acks", 1_000, 10).await;
        p.close().await.unwrap();
        assert!(delivered
            .iter()
            .all(|(_, _, offset)| (*offset >= 0) == expect_offsets));
    }
    assert_eq!(
        common::records_in_log(&mock.bootstrap(), "acks").await,
        2_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_makes_send_wait_instead_of_growing() {
    let mock = MockCluster::start(1);
    mock.create_topic("slow", 1, 1);
    // Every answer takes 200 ms: with room for ~2 batches, sends must wait for deliveries.
    mock.set_round_trip_time(None, Duration::from_millis(200));
    let p = producer(
        &mock,
        ProducerConfig {
            buffer_memory: 4096,
            batch_size: 2048,
            linger: Duration::ZERO,
            ..Default::default()
        },
    )
    .await;
    let mut deliveries = Vec::new();
    let mut waited = 0;
    for i in 0..100 {
        let send = p.send(ProducerRecord::new("slow").value(vec![i as u8; 100]));
        tokio::pin!(send);
        // A send that is not ready at once is waiting for memory.
        let ready = futures_poll_once(send.as_mut()).await;
        let delivery = match ready {
            Some(d) => d.unwrap(),
            None => {
                waited += 1;
                send.await.unwrap()
            }
        };
        deliveries.push(delivery);
    }
    assert!(waited > 0, "some sends waited for buffer memory");
    for d in deliveries {
        d.await.unwrap();
    }
    p.close().await.unwrap();
}

/// Polls `f` once: `Some(output)` if it finished at once, `None` if it would wait.
async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_records_and_unknown_partitions_are_refused_clearly() {
    let mock = MockCluster::start(1);
    mock.create_topic("limits", 2, 1);
    let p = producer(&mock, ProducerConfig::default()).await;
    let e = p
        .send(ProducerRecord::new("limits").value(vec![0u8; 2 << 20]))
        .await
        .unwrap_err();
    assert!(matches!(e, kbus::Error::RecordTooLarge { .. }), "{e}");
    let e = p
        .send(ProducerRecord::new("limits").partition(7).value("x"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("limits/7"), "{e}");
    p.close().await.unwrap();
    let e = p
        .send(ProducerRecord::new("limits").value("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, kbus::Error::Closed), "{e}");
}
