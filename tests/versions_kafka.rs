//! Version negotiation against Apache Kafka releases kbus supports: the newest 4.x, the oldest
//! 4.0.x (the floor KIP-896 left), the last 3.x and the oldest 3.0.x (KRaft's first release, whose
//! APIs top out lower: Fetch v12, Produce v9, Metadata v11). For each, the test lists every API
//! kbus speaks with the range kbus implements, the range the broker offers and the version picked
//! — the highest both share, for every API — and then runs each of those APIs at its picked
//! version: topics created, described and deleted, an idempotent producer, a consumer group that
//! commits, offset listings, group listings, SASL logins (PLAIN; SCRAM-SHA-512 from 3.5 on, where
//! KRaft keeps SCRAM users) and a mutual-TLS connection (not on 3.0; see the comment below).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use kbus::admin::{Admin, NewTopic, OffsetSpec};
use kbus::cluster::{Cluster, ClusterConfig};
use kbus::config::Settings;
use kbus::consumer::{Consumer, Event};
use kbus::net::sasl::Mechanism;
use kbus::net::{Connection, ConnectionConfig};
use kbus::producer::{Producer, ProducerRecord};
use kbus::protocol::messages::ApiVersionsRequest;
use kbus::protocol::ApiKey;
use kbus::TopicPartition;
use kbus_testkit::certs::Certs;
use kbus_testkit::kafka::{Kafka, KafkaVersion, Security, User};

use common::{blocking, read_all};

/// A failure guard for the group's first records.
const GUARD: Duration = Duration::from_secs(60);

async fn negotiates_and_runs_every_api(version: KafkaVersion) {
    // KRaft keeps SCRAM users from 3.5 on, and Kafka 3.0 refuses a PEM key store whose key has no
    // password (the testkit writes unencrypted keys): 3.0 gets the PLAIN user and no TLS listener.
    let scram = version != KafkaVersion::First3x;
    let tls = version != KafkaVersion::First3x;
    let certs = Certs::generate();
    let mtls = Security::Ssl {
        server: certs.server.clone(),
        ca: certs.ca.clone(),
        client_auth: true,
    };
    let kafka = blocking(move || {
        let mut builder = Kafka::builder()
            .version(version)
            .listener("SASL", Security::SaslPlaintext)
            .user(User::new(Mechanism::Plain, "alice", "alice-secret"));
        if tls {
            builder = builder.listener("MTLS", mtls);
        }
        if scram {
            builder = builder.user(User::new(Mechanism::ScramSha512, "bob", "bob-secret"));
        }
        builder.start()
    })
    .await;
    let _log = kafka.log_on_failure();
    let release = version.number();
    let bootstrap = kafka.bootstrap();

    // What was picked, API by API.
    let conn = Connection::connect(&bootstrap, ConnectionConfig::default())
        .await
        .unwrap();
    // Kafka checks the client software name and version (KIP-511): they must be given.
    let answer = conn
        .send(&ApiVersionsRequest {
            client_software_name: "kbus-tests".into(),
            client_software_version: "1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(answer.error_code, 0, "ApiVersions on Kafka {release}");
    let offered: BTreeMap<i16, (i16, i16)> = answer
        .ranges()
        .map(|(key, min, max)| (key, (min, max)))
        .collect();
    let mut table = vec![format!(
        "Kafka {release}: api, kbus range, broker range, picked"
    )];
    let mut wrong = Vec::new();
    for &api in ApiKey::ALL {
        let ours = api.supported();
        let theirs = offered.get(&api.as_i16()).copied();
        let picked = conn.version(api);
        table.push(format!(
            "{api:?} ({}): kbus {}..={}, broker {}, picked {}",
            api.as_i16(),
            ours.min,
            ours.max,
            theirs.map_or("none".into(), |(a, b)| format!("{a}..={b}")),
            picked.map_or("none".into(), |v| v.to_string())
        ));
        let expected = theirs
            .map(|(min, max)| (ours.min.max(min), ours.max.min(max)))
            .filter(|(low, high)| low <= high)
            .map(|(_, high)| high);
        if expected.is_none() || picked != expected {
            wrong.push(format!("{api:?}: picked {picked:?}, expected {expected:?}"));
        }
    }
    let table = table.join("\n");
    println!("{table}");
    assert!(
        wrong.is_empty(),
        "every API kbus uses is negotiated at the highest shared version: {wrong:?}\n{table}"
    );

    // Every API at its picked version.
    let cluster = Cluster::connect(ClusterConfig::new(&bootstrap))
        .await
        .unwrap();
    let admin = Admin::new(cluster.clone());
    admin
        .create_topics(&[NewTopic::new("versions", 3, 1).config("retention.ms", "3600000")])
        .await
        .unwrap();
    let configs = admin.describe_topic_config("versions").await.unwrap();
    assert!(
        configs
            .iter()
            .any(|c| c.name == "retention.ms" && c.value.as_deref() == Some("3600000")),
        "{configs:?}"
    );
    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("enable.idempotence", "true"),
        ("compression.type", "zstd"),
    ])
    .await
    .unwrap();
    assert!(
        producer.identity().is_some(),
        "InitProducerId on Kafka {release}"
    );
    let mut deliveries = Vec::new();
    for i in 0..300 {
        let r = ProducerRecord::new("versions")
            .key(format!("k{}", i % 7))
            .value(format!("value-{i}"))
            .header("i", format!("{i}"));
        deliveries.push(producer.send(r).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close().await.unwrap();
    common::assert_exactly_once(&read_all(&bootstrap, "versions", 3).await, 300);
    let latest = admin
        .list_offsets("versions", &[], OffsetSpec::Latest)
        .await
        .unwrap();
    assert_eq!(latest.iter().map(|p| p.offset).sum::<i64>(), 300);

    let mut consumer = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", "versions-group"),
        ("auto.offset.reset", "earliest"),
    ])
    .await
    .unwrap();
    consumer.subscribe(["versions"]).unwrap();
    let mut seen = 0;
    tokio::time::timeout(GUARD, async {
        while seen < 300 {
            if let Event::Records(batch) = consumer.poll().await.unwrap() {
                seen += batch.records.len();
            }
        }
    })
    .await
    .expect("the group read everything");
    consumer.commit_consumed().await.unwrap();
    let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new("versions", p)).collect();
    let committed = consumer.committed(&tps).await.unwrap();
    let ends: BTreeMap<i32, i64> = latest.iter().map(|p| (p.partition, p.offset)).collect();
    for tp in &tps {
        assert_eq!(committed[tp], Some(ends[&tp.partition]), "{tp:?}");
    }
    let groups = admin.list_groups().await.unwrap();
    assert!(
        groups.iter().any(|g| g.group_id == "versions-group"),
        "{groups:?}"
    );
    let described = admin.describe_groups(&["versions-group"]).await.unwrap();
    assert_eq!(described[0].members.len(), 1, "{described:?}");
    consumer.close().await.unwrap();
    admin.delete_topics(&["versions"]).await.unwrap();

    // SaslHandshake and SaslAuthenticate, with each user the node has.
    let mut logins = vec![("PLAIN", "alice", "alice-secret")];
    if scram {
        logins.push(("SCRAM-SHA-512", "bob", "bob-secret"));
    }
    for (mechanism, user, password) in logins {
        let sasl = ConnectionConfig::from_properties([
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", mechanism),
            ("sasl.username", user),
            ("sasl.password", password),
        ])
        .unwrap();
        let conn = Connection::connect(&kafka.addr("SASL"), sasl)
            .await
            .unwrap_or_else(|e| panic!("{mechanism} login on Kafka {release}: {e}"));
        assert!(conn.version(ApiKey::Metadata).is_some());
    }

    // Mutual TLS (PEM key stores on the broker's side).
    if !tls {
        return;
    }
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let tls = ConnectionConfig::from_properties([
        ("security.protocol".to_string(), "SSL".to_string()),
        ("ssl.ca.location".into(), path(&certs.ca)),
        ("ssl.certificate.location".into(), path(&certs.client.cert)),
        ("ssl.key.location".into(), path(&certs.client.key)),
    ])
    .unwrap();
    let conn = Connection::connect(&kafka.addr("MTLS"), tls).await.unwrap();
    assert!(conn.version(ApiKey::Metadata).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_kafka() {
    negotiates_and_runs_every_api(KafkaVersion::Newest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_kafka_4_0() {
    negotiates_and_runs_every_api(KafkaVersion::Floor).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_kafka_3() {
    negotiates_and_runs_every_api(KafkaVersion::Last3x).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_kafka_3_0() {
    negotiates_and_runs_every_api(KafkaVersion::First3x).await;
}
