//! The cluster layer against librdkafka's 3-broker mock cluster: metadata spread over brokers, a
//! moved leader followed after a refresh, and failover when a broker goes down.

use kbus::cluster::{needs_refresh, Cluster, ClusterConfig};
use kbus::protocol::compression::Compression;
use kbus::protocol::error_code::ErrorCode;
use kbus::protocol::messages::produce::{ProducePartition, ProduceRequest, ProduceTopic};
use kbus::protocol::record::RecordBatchBuilder;
use kbus_testkit::mock_cluster::MockCluster;

fn one_record() -> ProduceRequest {
    let mut b = RecordBatchBuilder::new(Compression::None);
    b.push(1_764_000_000_000, Some(b"k"), Some(b"v"), &[])
        .unwrap();
    ProduceRequest {
        acks: -1,
        timeout_ms: 5_000,
        topics: vec![ProduceTopic {
            name: "orders".into(),
            partitions: vec![ProducePartition {
                index: 0,
                records: Some(b.build().unwrap()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Produces one record to orders/0 through the leader the cluster knows; returns the partition's
/// error code.
async fn produce(cluster: &Cluster) -> ErrorCode {
    let (_, conn) = cluster.leader("orders", 0).await.unwrap();
    let resp = conn.send(&one_record()).await.unwrap();
    ErrorCode(resp.responses[0].partitions[0].error_code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_spreads_leaders_over_every_broker() {
    let mock = MockCluster::start(3);
    mock.create_topic("orders", 6, 1);
    let cluster = Cluster::connect(ClusterConfig::new(&mock.bootstrap()))
        .await
        .unwrap();
    let md = cluster.metadata_for(&["orders"]).await.unwrap();
    assert_eq!(md.brokers.len(), 3);
    let mut leaders: Vec<i32> = md
        .topic("orders")
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.leader)
        .collect();
    leaders.sort();
    leaders.dedup();
    assert_eq!(leaders, vec![1, 2, 3], "every broker leads some partition");
    for p in 0..6 {
        let (leader, conn) = cluster.leader("orders", p).await.unwrap();
        assert_eq!(conn.broker(), mock.broker_addr(leader));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_leader_is_followed_after_a_refresh() {
    let mock = MockCluster::start(3);
    mock.create_topic("orders", 1, 3);
    let cluster = Cluster::connect(ClusterConfig::new(&mock.bootstrap()))
        .await
        .unwrap();
    let (old, _) = cluster.leader("orders", 0).await.unwrap();
    assert_eq!(produce(&cluster).await, ErrorCode::NONE);

    let new = if old == 3 { 1 } else { old + 1 };
    mock.set_leader("orders", 0, Some(new));
    // The cached metadata still points at the old leader, which now refuses the write...
    let code = produce(&cluster).await;
    assert_eq!(code, ErrorCode::NOT_LEADER_OR_FOLLOWER);
    assert!(needs_refresh(code));
    // ...and once the code is reported, the next lookup refreshes and follows the leader.
    assert!(cluster.report_code(code));
    let (leader, conn) = cluster.leader("orders", 0).await.unwrap();
    assert_eq!(leader, new);
    assert_eq!(conn.broker(), mock.broker_addr(new));
    assert_eq!(produce(&cluster).await, ErrorCode::NONE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downed_brokers_partitions_fail_over_after_a_refresh() {
    let mock = MockCluster::start(3);
    mock.create_topic("orders", 1, 3);
    mock.create_topic("payments", 1, 3);
    let cluster = Cluster::connect(ClusterConfig::new(&mock.bootstrap()))
        .await
        .unwrap();
    mock.set_leader("orders", 0, Some(1));
    mock.set_leader("payments", 0, Some(2));
    cluster.refresh(&["orders", "payments"]).await.unwrap();
    let (_, to_one) = cluster.leader("orders", 0).await.unwrap();
    let (_, to_two) = cluster.leader("payments", 0).await.unwrap();

    mock.broker_down(1);
    // Requests to broker 1 fail, naming it; requests to broker 2 carry on.
    let err = to_one.send(&one_record()).await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert_eq!(
        err.broker().expect("the error names its broker"),
        mock.broker_addr(1)
    );
    let md = to_two
        .send(&kbus::protocol::messages::MetadataRequest::default())
        .await
        .unwrap();
    assert_eq!(
        md.brokers.len(),
        2,
        "the mock lists only the brokers that are up"
    );

    // The cluster elects a new leader (the mock needs telling); the lost connection, once
    // reported, makes the next lookup refresh, and the partition's requests go to the new leader.
    mock.set_leader("orders", 0, Some(3));
    assert!(cluster.report(&err));
    let (leader, _) = cluster.leader("orders", 0).await.unwrap();
    assert_eq!(leader, 3);
    assert_eq!(produce(&cluster).await, ErrorCode::NONE);
}

/// `Admin::list_offsets` tries again, with fresh metadata, when a leader answers that it no
/// longer leads (as one does while a new topic's leaders settle), instead of failing the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_rides_out_a_moved_leader() {
    use kbus::admin::{Admin, OffsetSpec};
    let mock = MockCluster::start(3);
    mock.create_topic("offsets", 3, 1);
    let admin = Admin::new(
        Cluster::connect(ClusterConfig::new(&mock.bootstrap()))
            .await
            .unwrap(),
    );
    mock.push_request_errors(
        kbus::protocol::ApiKey::ListOffsets,
        &[
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
        ],
    );
    let found = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        admin.list_offsets("offsets", &[], OffsetSpec::Latest),
    )
    .await
    .expect("answered in time")
    .expect("the retries got through");
    assert_eq!(
        found
            .iter()
            .map(|o| (o.partition, o.offset))
            .collect::<Vec<_>>(),
        [(0, 0), (1, 0), (2, 0)]
    );
}
