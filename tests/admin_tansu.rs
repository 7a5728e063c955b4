//! Administration against a real broker (tansu): topics, offsets, configs.

use kbus::admin::{Admin, NewTopic, OffsetSpec};
use kbus::cluster::{Cluster, ClusterConfig};
use kbus::protocol::compression::Compression;
use kbus::protocol::error_code::ErrorCode;
use kbus::protocol::messages::produce::{ProducePartition, ProduceRequest, ProduceTopic};
use kbus::protocol::record::RecordBatchBuilder;
use kbus::Error;
use kbus_testkit::tansu::Tansu;

async fn admin(broker: &Tansu) -> (Cluster, Admin) {
    let cluster = Cluster::connect(ClusterConfig::new(&broker.addr()))
        .await
        .unwrap();
    (cluster.clone(), Admin::new(cluster))
}

async fn produce(cluster: &Cluster, topic: &str, partition: i32, timestamps: &[i64]) {
    let mut b = RecordBatchBuilder::new(Compression::None);
    for ts in timestamps {
        b.push(*ts, Some(b"k"), Some(b"v"), &[]).unwrap();
    }
    let (_, conn) = cluster.leader(topic, partition).await.unwrap();
    let resp = conn
        .send(&ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topics: vec![ProduceTopic {
                name: topic.into(),
                partitions: vec![ProducePartition {
                    index: partition,
                    records: Some(b.build().unwrap()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(resp.responses[0].partitions[0].error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_idempotently_listed_described_and_deleted() {
    let broker = Tansu::start();
    let (_, admin) = admin(&broker).await;
    let topic = NewTopic::new("events.stream", 4, 1);
    assert!(
        admin.ensure_topic(&topic).await.unwrap(),
        "first ensure creates"
    );
    assert!(
        !admin.ensure_topic(&topic).await.unwrap(),
        "second ensure finds it"
    );
    let err = admin
        .create_topics(std::slice::from_ref(&topic))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Topic { topic, code, .. }
            if topic == "events.stream" && *code == ErrorCode::TOPIC_ALREADY_EXISTS),
        "{err}"
    );
    admin
        .create_topics(&[NewTopic::new("events.stream.dlq", 1, 1)])
        .await
        .unwrap();
    let names = admin.list_topics().await.unwrap();
    assert!(names.contains(&"events.stream".to_string()), "{names:?}");
    assert!(
        names.contains(&"events.stream.dlq".to_string()),
        "{names:?}"
    );

    let described = admin.describe_topics(&["events.stream"]).await.unwrap();
    assert_eq!(described[0].partitions.len(), 4);
    assert!(described[0].partitions.iter().all(|p| p.leader >= 0));

    admin.delete_topics(&["events.stream.dlq"]).await.unwrap();
    let names = admin.list_topics().await.unwrap();
    assert!(
        !names.contains(&"events.stream.dlq".to_string()),
        "{names:?}"
    );
    let err = admin
        .describe_topics(&["events.stream.dlq"])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Topic {
                code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_by_earliest_latest_and_timestamp() {
    let broker = Tansu::start();
    let (cluster, admin) = admin(&broker).await;
    admin
        .ensure_topic(&NewTopic::new("clicks", 2, 1))
        .await
        .unwrap();
    let base = 1_764_000_000_000;
    produce(
        &cluster,
        "clicks",
        0,
        &[base, base + 10, base + 20, base + 30],
    )
    .await;

    let earliest = admin
        .list_offsets("clicks", &[], OffsetSpec::Earliest)
        .await
        .unwrap();
    let latest = admin
        .list_offsets("clicks", &[], OffsetSpec::Latest)
        .await
        .unwrap();
    assert_eq!(
        earliest
            .iter()
            .map(|p| (p.partition, p.offset))
            .collect::<Vec<_>>(),
        vec![(0, 0), (1, 0)]
    );
    assert_eq!(
        latest
            .iter()
            .map(|p| (p.partition, p.offset))
            .collect::<Vec<_>>(),
        vec![(0, 4), (1, 0)]
    );

    let at = admin
        .list_offsets("clicks", &[0], OffsetSpec::Timestamp(base + 15))
        .await
        .unwrap();
    assert_eq!(
        at[0].offset, 2,
        "the first record at or after the timestamp is offset 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_are_described() {
    let broker = Tansu::start();
    let (_, admin) = admin(&broker).await;
    admin
        .ensure_topic(&NewTopic::new("compacted", 1, 1).config("cleanup.policy", "compact"))
        .await
        .unwrap();
    let configs = admin.describe_topic_config("compacted").await.unwrap();
    // tansu 0.6.0 reports the configs a topic was created with.
    let policy = configs.iter().find(|c| c.name == "cleanup.policy");
    assert_eq!(
        policy.and_then(|c| c.value.as_deref()),
        Some("compact"),
        "{configs:?}"
    );
}
