//! `kbus metadata` against Apache Kafka: it lists the broker and a topic with its partitions, and
//! a dead address is an error with a non-zero exit status.

use std::process::Command;

use kbus::admin::{Admin, NewTopic};
use kbus::cluster::{Cluster, ClusterConfig};
use kbus_testkit::kafka::Kafka;

fn kbus(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kbus"))
        .args(args)
        .output()
        .expect("run kbus")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_brokers_and_topics() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    let cluster = Cluster::connect(ClusterConfig::new(&bootstrap))
        .await
        .unwrap();
    Admin::new(cluster)
        .create_topics(&[NewTopic::new("cli-metadata", 3, 1)])
        .await
        .unwrap();

    let out = tokio::task::spawn_blocking(move || kbus(&["metadata", "-b", &bootstrap]))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("broker 1 at {}", kafka.bootstrap())),
        "{text}"
    );
    assert!(
        text.contains("topic \"cli-metadata\" with 3 partitions"),
        "{text}"
    );
    assert!(text.matches("    partition ").count() >= 3, "{text}");

    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        kbus(&[
            "metadata",
            "-b",
            &dead.to_string(),
            "-X",
            "socket.connection.setup.timeout.ms=2000",
        ])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "a connection failure");
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    assert_eq!(kbus(&["frobnicate"]).status.code(), Some(2));
}
