//! The Kafka event bus over secured listeners of Apache Kafka: SASL_SSL with SCRAM-SHA-512 and
//! mutual TLS, configured through `KafkaEventBusConfig`'s eventsource-py fields (topics created,
//! events published and handled through that listener); a wrong password, refused at connect
//! with an error that says so; and, on a broker with ACLs, a user who may use the bus's topics
//! but not create topics runs the bus on topics an administrator made.

use kbus::admin::{Admin, NewTopic};
use kbus::bus::conformance::{Recorder, GUARD};
use kbus::bus::kafka::{KafkaEventBus, KafkaEventBusConfig};
use kbus::bus::{new_uuid, Envelope, Event, EventBus};
use kbus::net::sasl::Mechanism;
use kbus_testkit::certs::Certs;
use kbus_testkit::kafka::{JavaTool, Kafka, KafkaVersion, Security, User};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const USER: (&str, &str) = ("billing", "billing-secret");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Invoiced {
    cents: i64,
}

impl Event for Invoiced {
    const EVENT_TYPE: &'static str = "Invoiced";
    const AGGREGATE_TYPE: &'static str = "Invoice";
}

fn broker() -> (Kafka, Certs) {
    let certs = Certs::generate();
    let kafka = Kafka::builder()
        .listener(
            "SASLSSL",
            Security::SaslSsl {
                server: certs.server.clone(),
            },
        )
        .listener(
            "MTLS",
            Security::Ssl {
                server: certs.server.clone(),
                ca: certs.ca.clone(),
                client_auth: true,
            },
        )
        .user(User::new(Mechanism::ScramSha512, USER.0, USER.1))
        .start();
    (kafka, certs)
}

fn base(kafka: &Kafka, listener: &str, prefix: &str) -> KafkaEventBusConfig {
    KafkaEventBusConfig {
        bootstrap_servers: kafka.addr(listener),
        topic_prefix: prefix.into(),
        consumer_group: format!("{prefix}-group"),
        session_timeout_ms: 6000,
        heartbeat_interval_ms: 500,
        topic_partitions: 1,
        ..Default::default()
    }
}

async fn round_trip(config: KafkaEventBusConfig) {
    let bus = KafkaEventBus::connect(config).await.unwrap();
    let got = Recorder::<Invoiced>::new();
    bus.subscribe(got.handler());
    bus.start().await.unwrap();
    let event = Envelope::new(new_uuid(), 1, Invoiced { cents: 1234 });
    bus.publish(vec![event.clone()]).await.unwrap();
    let seen = got.wait_for(1).await;
    assert_eq!(*seen[0], event);
    bus.shutdown(GUARD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_runs_over_sasl_ssl_and_mutual_tls_and_names_a_wrong_password() {
    let (kafka, certs) = broker();
    let _log = kafka.log_on_failure();
    let ca = certs.ca.to_string_lossy().into_owned();

    let sasl = KafkaEventBusConfig {
        security_protocol: "SASL_SSL".into(),
        sasl_mechanism: Some("SCRAM-SHA-512".into()),
        sasl_username: Some(USER.0.into()),
        sasl_password: Some(USER.1.into()),
        ssl_cafile: Some(ca.clone()),
        ..base(&kafka, "SASLSSL", "secured-sasl")
    };
    round_trip(sasl.clone()).await;

    let mtls = KafkaEventBusConfig {
        security_protocol: "SSL".into(),
        ssl_cafile: Some(ca),
        ssl_certfile: Some(certs.client.cert.to_string_lossy().into_owned()),
        ssl_keyfile: Some(certs.client.key.to_string_lossy().into_owned()),
        ..base(&kafka, "MTLS", "secured-mtls")
    };
    round_trip(mtls).await;

    let wrong = KafkaEventBusConfig {
        sasl_password: Some("not-the-password".into()),
        ..sasl
    };
    let e = KafkaEventBus::connect(wrong).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("SCRAM-SHA-512") && text.to_lowercase().contains("authentication"),
        "{text}"
    );
}

/// A broker with ACLs (the PLAINTEXT listener, where the testkit's administration goes, is a
/// super user), and a SCRAM user on a SASL listener with no rights until granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_may_not_create_topics_runs_the_bus_on_existing_ones() {
    const READER: (&str, &str) = ("orders-service", "orders-secret");
    let kafka = Kafka::builder()
        .listener("SASL", Security::SaslPlaintext)
        .user(User::new(Mechanism::ScramSha512, READER.0, READER.1))
        .property(
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        )
        .property("super.users", "User:ANONYMOUS")
        .start();
    let _log = kafka.log_on_failure();
    let config = KafkaEventBusConfig {
        security_protocol: "SASL_PLAINTEXT".into(),
        sasl_mechanism: Some("SCRAM-SHA-512".into()),
        sasl_username: Some(READER.0.into()),
        sasl_password: Some(READER.1.into()),
        ..base(&kafka, "SASL", "acl-orders")
    };
    assert!(
        config.create_topics,
        "the default asks for topics to be created"
    );

    // The administrator makes the topics and grants the service what it needs: read, write and
    // describe on its topics, read on its group; nothing on the cluster (no create).
    let admin = Admin::from_properties([("bootstrap.servers", kafka.bootstrap().as_str())])
        .await
        .unwrap();
    admin
        .create_topics(&[
            NewTopic::new(config.topic(), 1, 1),
            NewTopic::new(config.dlq_topic(), 1, 1),
        ])
        .await
        .unwrap();
    let principal = format!("User:{}", READER.0);
    let grant = |resource: &[&str], operations: &[&str]| {
        let out = JavaTool::new(KafkaVersion::Newest, "org.apache.kafka.tools.AclCommand")
            .args(["--bootstrap-server", &kafka.bootstrap(), "--add"])
            .args(["--allow-principal", &principal])
            .args(operations.iter().flat_map(|op| ["--operation", op]))
            .args(resource)
            .run(Duration::from_secs(120));
        assert!(out.success, "granting {resource:?} failed:\n{}", out.stderr);
    };
    grant(
        &[
            "--topic",
            &config.topic_prefix,
            "--resource-pattern-type",
            "prefixed",
        ],
        &["Read", "Write", "Describe"],
    );
    grant(&["--group", &config.consumer_group], &["Read"]);

    round_trip(config.clone()).await;

    // Topics it may not create are still refused, with the broker's word for it.
    let elsewhere = KafkaEventBusConfig {
        topic_prefix: "acl-missing".into(),
        ..config
    };
    let e = KafkaEventBus::connect(elsewhere).await.unwrap_err();
    assert!(e.to_string().contains("AUTHORIZATION_FAILED"), "{e}");
}
