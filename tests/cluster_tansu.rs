//! The cluster layer against a real broker (tansu): bootstrap, metadata, leaders, coordinators.

use std::time::Duration;

use kbus::cluster::{Cluster, ClusterConfig, CoordinatorType};
use kbus::protocol::error_code::ErrorCode;
use kbus::protocol::messages::create_topics::{CreatableTopic, CreateTopicsRequest};
use kbus::Error;
use kbus_testkit::tansu::Tansu;

async fn create_topic(cluster: &Cluster, name: &str, partitions: i32) {
    let conn = cluster.any_broker().await.unwrap();
    let resp = conn
        .send(&CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor: 1,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ErrorCode(resp.topics[0].error_code), ErrorCode::NONE);
}

fn unreachable_address() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstraps_past_dead_entries_and_finds_leaders() {
    let broker = Tansu::start();
    // A dead entry first: any reachable broker in the list will do.
    let bootstrap = format!("{},{}", unreachable_address(), broker.addr());
    let cluster = Cluster::connect(ClusterConfig::new(&bootstrap))
        .await
        .unwrap();
    let md = cluster.metadata();
    assert_eq!(md.brokers.len(), 1);
    let (&id, info) = md.brokers.iter().next().unwrap();
    assert_eq!(info.address(), broker.addr());

    create_topic(&cluster, "orders", 3).await;
    let md = cluster.metadata_for(&["orders"]).await.unwrap();
    let topic = md.topic("orders").unwrap();
    assert_eq!(topic.partitions.len(), 3);
    for p in 0..3 {
        let (leader, conn) = cluster.leader("orders", p).await.unwrap();
        assert_eq!(leader, id);
        assert_eq!(conn.broker(), broker.addr());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_partition_is_a_clear_error_after_a_refresh() {
    let broker = Tansu::start();
    let cluster = Cluster::connect(ClusterConfig::new(&broker.addr()))
        .await
        .unwrap();
    create_topic(&cluster, "small", 1).await;
    let err = cluster.leader("small", 5).await.unwrap_err();
    assert!(
        matches!(&err, Error::Partition { topic, partition: 5, code } if topic == "small"
            && *code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{err}"
    );
    let err = cluster.leader("no-such-topic", 0).await.unwrap_err();
    assert!(matches!(err, Error::Partition { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_the_group_coordinator() {
    let broker = Tansu::start();
    let cluster = Cluster::connect(ClusterConfig::new(&broker.addr()))
        .await
        .unwrap();
    let (id, conn) = cluster
        .coordinator(CoordinatorType::Group, "billing")
        .await
        .unwrap();
    assert!(cluster.metadata().brokers.contains_key(&id));
    assert_eq!(conn.broker(), broker.addr());
}

#[tokio::test]
async fn an_unreachable_bootstrap_list_fails_within_the_timeouts() {
    let mut config = ClusterConfig::new(&format!(
        "{},{}",
        unreachable_address(),
        unreachable_address()
    ));
    config.connection.connect_timeout = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let err = Cluster::connect(config).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.is_retriable(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_broker_restarts() {
    let mut broker = Tansu::start();
    let cluster = Cluster::connect(ClusterConfig::new(&broker.addr()))
        .await
        .unwrap();
    let id = *cluster.metadata().brokers.keys().next().unwrap();
    let first = cluster.broker(id).await.unwrap();
    broker.restart();
    // The old connection notices the restart on its next use, with an error naming the broker...
    let err = first
        .send(&kbus::protocol::messages::MetadataRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert_eq!(
        err.broker().expect("the error names its broker"),
        broker.addr()
    );
    assert!(first.is_closed());
    // ...and the cluster hands out a fresh one.
    let second = cluster.broker(id).await.unwrap();
    assert!(!second.is_closed());
    second
        .send(&kbus::protocol::messages::MetadataRequest::default())
        .await
        .unwrap();
}
