//! Cluster metadata from a 3-node Apache Kafka cluster, strictly: the twin of
//! tests/mock_cluster.rs without the mock's deviations.
//! - Every broker lists all three with the addresses they listen on, names a live broker as
//!   controller, and spreads the leaders of a topic's partitions over all of them.
//! - A broker killed: its connection fails with a retriable error naming it; the others stop
//!   listing it once its session ends, report the partition it alone held as leaderless
//!   (LEADER_NOT_AVAILABLE, leader -1, the broker among the offline replicas), and move the
//!   leadership of replicated partitions to the survivors; kbus's cluster layer follows them.
//! - Restarted, it is listed again and leads its partition again.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kbus::admin::{Admin, NewTopic};
use kbus::cluster::{Cluster, ClusterConfig};
use kbus::net::{Connection, ConnectionConfig};
use kbus::protocol::error_code::ErrorCode;
use kbus::protocol::messages::metadata::{MetadataRequestTopic, MetadataResponsePartition};
use kbus::protocol::messages::{MetadataRequest, MetadataResponse};
use kbus::Error;
use kbus_testkit::kafka::Kafka;

use common::blocking;

/// A failure guard for waiting on the cluster to notice a broker's death or return.
const GUARD: Duration = Duration::from_secs(60);

fn metadata_for(topics: &[&str]) -> MetadataRequest {
    MetadataRequest {
        topics: Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic::by_name(*t))
                .collect(),
        ),
        allow_auto_topic_creation: false,
        ..Default::default()
    }
}

fn partitions(md: &MetadataResponse, topic: &str) -> BTreeMap<i32, MetadataResponsePartition> {
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(topic))
        .unwrap_or_else(|| panic!("topic {topic} missing from metadata: {md:?}"));
    assert_eq!(ErrorCode(t.error_code), ErrorCode::NONE, "topic {topic}");
    t.partitions
        .iter()
        .map(|p| (p.partition_index, p.clone()))
        .collect()
}

/// Asks `conn` for metadata until `done` holds for the answer; returns that answer.
async fn metadata_until(
    conn: &Connection,
    topics: &[&str],
    what: &str,
    done: impl Fn(&MetadataResponse) -> bool,
) -> MetadataResponse {
    let deadline = Instant::now() + GUARD;
    loop {
        let md = conn.send(&metadata_for(topics)).await.unwrap();
        if done(&md) {
            return md;
        }
        assert!(Instant::now() < deadline, "{what}: {md:?}");
        // The cluster changes on its own schedule (sessions, elections): ask again shortly.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_follows_a_broker_that_dies_and_returns() {
    let mut cluster = blocking(|| Kafka::builder().start_cluster(3)).await;
    let _logs = cluster.log_on_failure();
    let bootstrap = cluster.bootstrap();
    // "alone": one replica per partition; "replicated": three.
    let admin_cluster = Cluster::connect(ClusterConfig::new(&bootstrap))
        .await
        .unwrap();
    Admin::new(admin_cluster.clone())
        .create_topics(&[
            NewTopic::new("alone", 6, 1),
            NewTopic::new("replicated", 6, 3),
        ])
        .await
        .unwrap();
    let ids: BTreeSet<i32> = cluster.nodes().iter().map(|n| n.id()).collect();
    let addrs: BTreeMap<i32, String> = cluster
        .nodes()
        .iter()
        .map(|n| (n.id(), n.bootstrap()))
        .collect();
    let mut conns = BTreeMap::new();
    for (id, addr) in &addrs {
        let conn = Connection::connect(addr, ConnectionConfig::default())
            .await
            .unwrap();
        conns.insert(*id, conn);
    }

    // Every broker: all three listed where they listen, a live controller, leaders spread.
    for (id, conn) in &conns {
        let md = metadata_until(conn, &["alone", "replicated"], "both topics led", |md| {
            ["alone", "replicated"].iter().all(|t| {
                md.topics.iter().any(|x| {
                    x.name.as_deref() == Some(*t)
                        && x.error_code == 0
                        && x.partitions.len() == 6
                        && x.partitions.iter().all(|p| p.leader_id >= 0)
                })
            })
        })
        .await;
        let listed: BTreeMap<i32, String> = md
            .brokers
            .iter()
            .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
            .collect();
        assert_eq!(listed, addrs, "from broker {id}");
        assert!(
            ids.contains(&md.controller_id),
            "controller {}",
            md.controller_id
        );
        let alone = partitions(&md, "alone");
        let leading: BTreeSet<i32> = alone.values().map(|p| p.leader_id).collect();
        assert_eq!(leading, ids, "every broker leads some partition of alone");
        for (i, p) in &alone {
            assert_eq!(p.replica_nodes, vec![p.leader_id], "alone/{i}");
        }
        for (i, p) in partitions(&md, "replicated") {
            assert_eq!(p.replica_nodes.len(), 3, "replicated/{i}");
            assert_eq!(p.isr_nodes.len(), 3, "replicated/{i}");
        }
    }

    // Kill node 3.
    let victim = 3;
    let before = partitions(
        &conns[&1]
            .send(&metadata_for(&["alone", "replicated"]))
            .await
            .unwrap(),
        "alone",
    );
    let orphan = *before
        .iter()
        .find(|(_, p)| p.leader_id == victim)
        .unwrap()
        .0;
    cluster.node(victim).kill();
    let err = conns[&victim]
        .send(&metadata_for(&["alone"]))
        .await
        .expect_err("a request to a dead broker succeeded");
    assert!(
        matches!(err, Error::Disconnected { .. } | Error::Io { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.broker().expect("the error names its broker"),
        addrs[&victim]
    );
    assert!(err.is_retriable(), "{err}");

    let md = metadata_until(
        &conns[&1],
        &["alone", "replicated"],
        "the dead broker fenced",
        |md| {
            md.brokers.len() == 2
                && partitions(md, "replicated")
                    .values()
                    .all(|p| p.leader_id != victim)
                && partitions(md, "alone")[&orphan].leader_id == -1
        },
    )
    .await;
    let p = &partitions(&md, "alone")[&orphan];
    assert_eq!(
        ErrorCode(p.error_code),
        ErrorCode::LEADER_NOT_AVAILABLE,
        "{p:?}"
    );
    assert!(p.offline_replicas.contains(&victim), "{p:?}");
    for (i, p) in partitions(&md, "replicated") {
        assert_eq!(ErrorCode(p.error_code), ErrorCode::NONE, "replicated/{i}");
        assert!([1, 2].contains(&p.leader_id), "replicated/{i}: {p:?}");
    }
    // kbus's cluster layer sees the same after a refresh: a new leader for every replicated
    // partition, none for the orphan.
    let seen = admin_cluster
        .refresh(&["alone", "replicated"])
        .await
        .unwrap();
    for i in 0..6 {
        let leader = seen.leader("replicated", i).map(|b| b.id);
        assert!(
            matches!(leader, Some(1) | Some(2)),
            "replicated/{i}: {leader:?}"
        );
    }
    assert!(seen.leader("alone", orphan).is_none());

    // Back again.
    let _cluster = blocking(move || {
        cluster.node(victim).restart();
        cluster
    })
    .await;
    let md = metadata_until(&conns[&1], &["alone"], "the broker back", |md| {
        md.brokers.len() == 3 && partitions(md, "alone")[&orphan].leader_id == victim
    })
    .await;
    assert_eq!(
        ErrorCode(partitions(&md, "alone")[&orphan].error_code),
        ErrorCode::NONE
    );
}

/// A connection cut under the cluster is made again on the next request, and the metrics count
/// the reconnection (and the error that came of the cut).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_is_made_again_and_counted() {
    let proxy = kbus_testkit::proxy::Proxy::bind();
    let kafka = kbus_testkit::kafka::Kafka::builder()
        .advertise("PLAINTEXT", proxy.port())
        .start();
    proxy.forward_to(kafka.port("PLAINTEXT"));
    let cluster = Cluster::connect(ClusterConfig::new(&proxy.addr()))
        .await
        .unwrap();
    let id = *cluster.metadata().brokers.keys().next().unwrap();
    cluster.broker(id).await.unwrap();
    assert_eq!(cluster.metrics().reconnects, 0);
    assert!(proxy.cut() > 0);
    // The next request finds the connection closed (or fails on it) and connects again.
    let mut answered = false;
    for _ in 0..5 {
        match cluster.broker(id).await {
            Ok(conn) => match conn.send(&MetadataRequest::default()).await {
                Ok(_) => {
                    answered = true;
                    break;
                }
                Err(e) => {
                    cluster.report(&e);
                }
            },
            Err(e) => {
                cluster.report(&e);
            }
        }
    }
    assert!(answered, "the broker answers again");
    let metrics = cluster.metrics();
    assert_eq!(metrics.reconnects, 1, "{metrics:?}");
}
