//! The Kafka event bus over secured listeners of Apache Kafka: SASL_SSL with SCRAM-SHA-512 and
//! mutual TLS, configured through `KafkaEventBusConfig`'s eventsource-py fields (topics created,
//! events published and handled through that listener); and a wrong password, refused at connect
//! with an error that says so.

use kbus::bus::conformance::{Recorder, GUARD};
use kbus::bus::kafka::{KafkaEventBus, KafkaEventBusConfig};
use kbus::bus::{new_uuid, Envelope, Event, EventBus};
use kbus::net::sasl::Mechanism;
use kbus_testkit::certs::Certs;
use kbus_testkit::kafka::{Kafka, Security, User};
use serde::{Deserialize, Serialize};

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
