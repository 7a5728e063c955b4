//! The idempotent producer against Apache Kafka itself, which checks sequence numbers (the mock
//! cluster and tansu do not):
//! - through a broker killed and restarted mid-stream and connections cut again and again, every
//!   record is written exactly once and each key's records stay in order, on a topic created just
//!   before (whose partitions may refuse the first batches while they get their leader);
//! - a batch the broker refuses for good (too large for the topic) fails alone: the producer
//!   bumps its epoch (KIP-360) and the partition's later records are written;
//! - a batch that expires while its requests vanish (the network drops them) fails alone too, and
//!   the records after it are written once.
//!
//! Faults come from a TCP proxy in front of the broker (the broker advertises the proxy's port, so
//! every connection goes through it) and from killing the broker's process.

mod common;

use std::sync::{Arc, Mutex};

use kbus::producer::{Producer, ProducerRecord};
use kbus::protocol::error_code::ErrorCode;
use kbus::Error;
use kbus_testkit::kafka::Kafka;
use kbus_testkit::proxy::Proxy;

use common::{
    assert_exactly_once, assert_per_key_order, blocking, create_topic, read_all, records_in_log,
};

/// A single node whose clients all go through a proxy.
fn kafka_behind_proxy() -> (Kafka, Proxy) {
    let proxy = Proxy::bind();
    let kafka = Kafka::builder()
        .advertise("PLAINTEXT", proxy.port())
        .start();
    proxy.forward_to(kafka.port("PLAINTEXT"));
    (kafka, proxy)
}

async fn idempotent_producer(bootstrap: &str, extra: &[(&str, &str)]) -> Producer {
    let mut props = vec![
        ("bootstrap.servers", bootstrap),
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("max.in.flight.requests.per.connection", "5"),
        ("linger.ms", "2"),
        ("batch.size", "4096"),
    ];
    props.extend_from_slice(extra);
    Producer::from_properties(props).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_once_in_key_order_through_a_broker_restart_and_cut_connections() {
    const N: usize = 60_000;
    const PARTITIONS: i32 = 6;
    let (kafka, proxy) = kafka_behind_proxy();
    let _log = kafka.log_on_failure();
    let kafka = Arc::new(Mutex::new(kafka));
    let bootstrap = proxy.addr();
    create_topic(&bootstrap, "idempotent-restart", PARTITIONS, &[]).await;
    let producer = idempotent_producer(&bootstrap, &[]).await;

    let mut deliveries = Vec::with_capacity(N);
    let mut restart = None;
    let mut cuts = 0;
    for i in 0..N {
        let record = ProducerRecord::new("idempotent-restart")
            .key(format!("key-{}", i % 200))
            .value(format!("value-{i}"));
        deliveries.push(producer.send(record).await.unwrap());
        // Cut the connections twelve times while records flow (each time once what was sent
        // so far is acknowledged, so that a connection is up); kill the broker half way and
        // start it again on the same data while the producer keeps sending.
        if i % 5_000 == 2_500 && i != N / 2 + 2_500 {
            producer.flush().await.unwrap();
            cuts += proxy.cut();
        }
        if i == N / 2 {
            let kafka = kafka.clone();
            restart = Some(tokio::spawn(blocking(move || {
                kafka.lock().unwrap().restart()
            })));
        }
    }
    for d in deliveries {
        d.await.unwrap();
    }
    restart.unwrap().await.unwrap();
    producer.close().await.unwrap();
    assert!(cuts >= 10, "the faults hit live connections ({cuts} cut)");

    let records = read_all(&bootstrap, "idempotent-restart", PARTITIONS).await;
    assert_exactly_once(&records, N);
    assert_per_key_order(&records);
    assert_eq!(
        records_in_log(&bootstrap, "idempotent-restart").await,
        N as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_refused_for_good_does_not_hold_up_its_partition() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    // One partition whose batches may hold at most 2 KiB.
    create_topic(
        &bootstrap,
        "idempotent-too-large",
        1,
        &[("max.message.bytes", "2048")],
    )
    .await;
    // Without the epoch bump the records after the refused batch would wait out this timeout
    // and fail.
    let producer = idempotent_producer(&bootstrap, &[("delivery.timeout.ms", "20000")]).await;
    let before = producer.identity().unwrap();

    let send = |range: std::ops::Range<usize>| {
        let producer = producer.clone();
        async move {
            let mut out = Vec::new();
            for i in range {
                let r = ProducerRecord::new("idempotent-too-large")
                    .key("k")
                    .value(format!("value-{i}"));
                out.push(producer.send(r).await.unwrap());
            }
            producer.flush().await.unwrap();
            out
        }
    };
    for d in send(0..50).await {
        d.await.unwrap();
    }
    let big = producer
        .send(
            ProducerRecord::new("idempotent-too-large")
                .key("k")
                .value(vec![b'x'; 4000]),
        )
        .await
        .unwrap();
    producer.flush().await.unwrap();
    match big.await {
        Err(Error::Delivery { cause, .. }) if matches!(&*cause, Error::Broker { code, .. } if *code == ErrorCode::MESSAGE_TOO_LARGE) =>
            {}
        other => panic!("the oversized batch should fail with MESSAGE_TOO_LARGE: {other:?}"),
    }
    for d in send(50..100).await {
        d.await.unwrap();
    }
    let after = producer.identity().unwrap();
    assert_eq!(after.id, before.id);
    assert!(
        after.epoch > before.epoch,
        "the epoch was bumped: {before:?} -> {after:?}"
    );
    producer.close().await.unwrap();

    let records = read_all(&bootstrap, "idempotent-too-large", 1).await;
    assert_exactly_once(&records, 100);
    assert_per_key_order(&records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_expires_unanswered_does_not_hold_up_its_partition() {
    let (kafka, proxy) = kafka_behind_proxy();
    let _log = kafka.log_on_failure();
    let bootstrap = proxy.addr();
    create_topic(&bootstrap, "idempotent-expiry", 1, &[]).await;
    let producer = idempotent_producer(
        &bootstrap,
        &[
            ("delivery.timeout.ms", "3000"),
            ("request.timeout.ms", "1000"),
        ],
    )
    .await;
    // Sends record `i` and waits for its delivery.
    let deliver = |i: usize| {
        let producer = producer.clone();
        async move {
            let r = ProducerRecord::new("idempotent-expiry")
                .key("k")
                .value(format!("value-{i}"));
            producer.send(r).await.unwrap().await
        }
    };
    deliver(0).await.unwrap();
    let before = producer.identity().unwrap();
    // The network swallows everything: the next batch is sent and never answered, and expires.
    proxy.blackhole(true);
    match deliver(1).await {
        Err(Error::DeliveryTimeout { .. }) => {}
        other => panic!("the unanswered batch should expire: {other:?}"),
    }
    proxy.blackhole(false);
    for i in 2..20 {
        deliver(i).await.unwrap();
    }
    let after = producer.identity().unwrap();
    assert_eq!(after.id, before.id);
    assert!(
        after.epoch > before.epoch,
        "the epoch was bumped: {before:?} -> {after:?}"
    );
    producer.close().await.unwrap();

    // Record 1 never reached the broker; the others are there once each, in order.
    let records = read_all(&bootstrap, "idempotent-expiry", 1).await;
    let values: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.value.as_ref().unwrap().to_vec()).unwrap())
        .collect();
    let expected: Vec<String> = std::iter::once(0)
        .chain(2..20)
        .map(|i| format!("value-{i}"))
        .collect();
    assert_eq!(values, expected);
}
