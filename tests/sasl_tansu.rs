//! SASL authentication against a real broker (tansu 0.6.0 with `--authentication`, which enables
//! SCRAM-SHA-256 and SCRAM-SHA-512).

use std::time::{Duration, Instant};

use kbus::config::Settings;
use kbus::net::sasl::{authenticate, Credentials, Mechanism, SaslConfig};
use kbus::net::{Connection, ConnectionConfig};
use kbus::protocol::messages::MetadataRequest;
use kbus::Error;
use kbus_testkit::tansu::Tansu;

const USERS: &[(&str, &str, Mechanism)] = &[
    ("alice", "alice-secret", Mechanism::ScramSha256),
    ("bob", "bob-secret", Mechanism::ScramSha512),
];

fn config() -> ConnectionConfig {
    ConnectionConfig {
        request_timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

async fn right_password_then_metadata(mechanism: Mechanism, user: &str, password: &str) {
    let broker = Tansu::start_with_scram(USERS);
    let conn = Connection::connect(&broker.addr(), config()).await.unwrap();
    let sasl = SaslConfig::new(mechanism, Credentials::new(user, password));
    let session = authenticate(&conn, &sasl).await.unwrap();
    assert_eq!(session.mechanism, mechanism);
    // tansu 0.6.0 keeps sessions for 60 s (the KIP-368 lifetime; Kafka's default is 0, no expiry).
    assert_eq!(session.session_lifetime(), Some(Duration::from_secs(60)));
    // The authenticated connection serves ordinary requests.
    let md = conn.send(&MetadataRequest::default()).await.unwrap();
    assert_eq!(md.brokers.len(), 1, "tansu is a single broker");
    assert!(!conn.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha256_with_the_right_password_authenticates() {
    right_password_then_metadata(Mechanism::ScramSha256, "alice", "alice-secret").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha512_with_the_right_password_authenticates() {
    right_password_then_metadata(Mechanism::ScramSha512, "bob", "bob-secret").await;
}

/// Asserts `err` is a clear authentication error naming `mechanism` and `addr`.
fn assert_authentication_error(err: &Error, mechanism: Mechanism, addr: &str) {
    match err {
        Error::Authentication {
            broker,
            mechanism: m,
            message,
        } => {
            assert_eq!(broker, addr);
            assert_eq!(m, mechanism.name());
            assert!(!message.is_empty());
        }
        other => panic!("expected an authentication error, got {other:?}"),
    }
    assert!(!err.is_retriable(), "{err}");
    assert_eq!(err.broker().expect("the error names its broker"), addr);
    let shown = err.to_string();
    assert!(shown.contains(mechanism.name()), "{shown}");
    assert!(shown.contains(addr), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_clear_authentication_error_without_hanging() {
    let broker = Tansu::start_with_scram(USERS);
    let addr = broker.addr();
    for (mechanism, user) in [
        (Mechanism::ScramSha256, "alice"),
        (Mechanism::ScramSha512, "bob"),
    ] {
        let conn = Connection::connect(&addr, config()).await.unwrap();
        let sasl = SaslConfig::new(mechanism, Credentials::new(user, "not-the-password"));
        let started = Instant::now();
        // tansu 0.6.0 drops the connection on a wrong password instead of answering
        // SASL_AUTHENTICATION_FAILED; kbus reports both as an authentication error.
        let err = authenticate(&conn, &sasl).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        assert_authentication_error(&err, mechanism, &addr);
        assert!(!err.to_string().contains("not-the-password"), "{err}");
    }
    // An unknown user fails the same way.
    let conn = Connection::connect(&addr, config()).await.unwrap();
    let sasl = SaslConfig::new(Mechanism::ScramSha256, Credentials::new("mallory", "x"));
    let err = authenticate(&conn, &sasl).await.unwrap_err();
    assert_authentication_error(&err, Mechanism::ScramSha256, &addr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_is_reported_as_not_enabled() {
    // tansu 0.6.0 is built without PLAIN, so the handshake refuses it. PLAIN's exchange itself is
    // covered by unit tests only (src/net/sasl/plain.rs, and a scripted Kafka-like peer in
    // src/net/sasl/authenticate.rs): no peer here checks a PLAIN password.
    let broker = Tansu::start_with_scram(USERS);
    let addr = broker.addr();
    let conn = Connection::connect(&addr, config()).await.unwrap();
    let sasl = SaslConfig::new(Mechanism::Plain, Credentials::new("alice", "alice-secret"));
    let started = Instant::now();
    let err = authenticate(&conn, &sasl).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_authentication_error(&err, Mechanism::Plain, &addr);
    let shown = err.to_string();
    // Kafka answers UNSUPPORTED_SASL_MECHANISM with the mechanisms it enables, and kbus lists them
    // (checked against a scripted peer in the unit tests). tansu 0.6.0 deviates: it fails the
    // handshake internally and drops the connection without an answer, so the error can only say
    // that the broker does not enable PLAIN.
    let kafka = shown.contains("PLAIN is not enabled on the broker (mechanisms it lists: ");
    let tansu_deviation = shown.contains("closed the connection during SaslHandshake")
        && shown.contains("does not enable PLAIN");
    assert!(kafka || tansu_deviation, "{shown}");
}

/// The whole path a user takes: Kafka-style properties, `security.protocol=SASL_PLAINTEXT`, then the
/// cluster layer authenticates every connection it makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_authenticates_every_connection_from_properties() {
    let broker = Tansu::start_with_scram(USERS);
    let props = |password: &str| {
        ConnectionConfig::from_properties([
            ("security.protocol", "SASL_PLAINTEXT".to_string()),
            ("sasl.mechanism", "SCRAM-SHA-512".to_string()),
            ("sasl.username", "bob".to_string()),
            ("sasl.password", password.to_string()),
        ])
        .unwrap()
    };
    let mut config = kbus::cluster::ClusterConfig::new(&broker.addr());
    config.connection = props("bob-secret");
    let cluster = kbus::cluster::Cluster::connect(config).await.unwrap();
    let id = *cluster.metadata().brokers.keys().next().unwrap();
    let conn = cluster.broker(id).await.unwrap();
    conn.send(&MetadataRequest::default()).await.unwrap();

    let mut config = kbus::cluster::ClusterConfig::new(&broker.addr());
    config.connection = props("not-bobs-pa55word");
    let started = Instant::now();
    let err = kbus::cluster::Cluster::connect(config).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        matches!(&err, Error::Authentication { mechanism, .. } if mechanism == "SCRAM-SHA-512"),
        "{err}"
    );
    assert!(
        !format!("{err} {err:?}").contains("not-bobs-pa55word"),
        "the password leaked into: {err:?}"
    );
}
