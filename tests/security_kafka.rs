//! TLS and SASL against Apache Kafka itself: one KRaft broker, shared by every test here, with a
//! listener per security setup (starting a JVM broker takes seconds, and none of these tests
//! changes broker state another one reads).
//!
//! - SASL/PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 logins: records produced and read back through
//!   the SASL listener with kbus's producer and consumer, configured from Java-style properties;
//! - a wrong password (PLAIN and both SCRAMs) and an unknown user are an authentication error that
//!   names the broker and the mechanism and carries Kafka's own message, at once;
//! - TLS with the CA from `ssl.ca.location`, and SASL_SSL with SCRAM: records both ways again; a CA
//!   that did not sign the broker's certificate is refused;
//! - mutual TLS: accepted with `ssl.certificate.location`/`ssl.key.location`, refused without a
//!   client certificate and with one from a CA the broker does not trust;
//! - a certificate for another host: refused while hostname verification is on (the default),
//!   accepted with `ssl.endpoint.identification.algorithm=` (empty);
//! - an expired certificate: refused, with or without hostname verification;
//! - settings that do not match the listener (a mechanism it does not enable, plain TCP to TLS,
//!   SASL to a listener without it, TLS to plain TCP) are errors that say which setting to check;
//! - KIP-368 re-authentication: on a listener whose sessions last 3 s, one connection kept busy
//!   with pipelined requests for four session lifetimes re-authenticates on the same TCP connection
//!   (counted by a proxy that reads the client's request frames, and by the broker's own log) and
//!   every request succeeds, for PLAIN and SCRAM; a connection left idle past its session's end
//!   renews at its next request; and, as the control, a session never renewed is cut by Kafka.
//!
//! The TLS checks at connection level run with every crypto provider this build has (ring and/or
//! RustCrypto) against Java's TLS stack.
#![cfg(any(feature = "tls-ring", feature = "tls-rustcrypto"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use kbus::admin::{Admin, NewTopic};
use kbus::cluster::{Cluster, ClusterConfig};
use kbus::config::Settings;
use kbus::consumer::{Consumer, Event};
use kbus::net::sasl::{authenticate, Credentials, Mechanism, SaslConfig};
use kbus::net::{Connection, ConnectionConfig, SecurityProtocol, TlsConfig, TlsProvider};
use kbus::producer::{Producer, ProducerRecord};
use kbus::protocol::messages::{ApiVersionsRequest, MetadataRequest};
use kbus::{Error, TopicPartition};
use kbus_testkit::certs::Certs;
use kbus_testkit::kafka::{Kafka, Security, User};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The users every SASL listener knows: PLAIN users live in the JAAS configuration, SCRAM users in
/// the storage (one per mechanism, so a login can only succeed with the mechanism named).
const ALICE: (&str, &str) = ("alice", "alice-secret");
const BOB: (&str, &str) = ("bob", "bob-secret");
const CAROL: (&str, &str) = ("carol", "carol-secret");

/// The session lifetime of the `REAUTH` listener (`connections.max.reauth.ms` for its mechanisms).
const REAUTH_MS: u64 = 3000;

/// A failure guard for anything that should take a moment: an error must not take longer.
const PROMPTLY: Duration = Duration::from_secs(10);

struct Broker {
    kafka: Kafka,
    certs: Certs,
}

/// The broker every test shares, started by the first test that asks (on a blocking thread: the
/// start waits for the JVM). It lives until the process exits; its watchdog then kills it.
async fn broker() -> &'static Broker {
    static BROKER: OnceLock<Broker> = OnceLock::new();
    if let Some(b) = BROKER.get() {
        return b;
    }
    tokio::task::spawn_blocking(|| BROKER.get_or_init(start_broker))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

fn start_broker() -> Broker {
    let certs = Certs::generate();
    let ssl = |server: &kbus_testkit::certs::Pair, client_auth| Security::Ssl {
        server: server.clone(),
        ca: certs.ca.clone(),
        client_auth,
    };
    let mut builder = Kafka::builder()
        .listener("SASL", Security::SaslPlaintext)
        .listener("REAUTH", Security::SaslPlaintext)
        .listener("SSL", ssl(&certs.server, false))
        .listener("MTLS", ssl(&certs.server, true))
        .listener(
            "SASLSSL",
            Security::SaslSsl {
                server: certs.server.clone(),
            },
        )
        .listener("BADHOST", ssl(&certs.wrong_host, false))
        .listener("EXPIRED", ssl(&certs.expired, false))
        .user(User::new(Mechanism::Plain, ALICE.0, ALICE.1))
        .user(User::new(Mechanism::ScramSha256, BOB.0, BOB.1))
        .user(User::new(Mechanism::ScramSha512, CAROL.0, CAROL.1))
        // The broker logs each re-authentication it begins at debug level only: the KIP-368
        // test reads that line as the broker's side of the story.
        .jvm_options(&[
            "-Xms128m",
            "-Xmx512m",
            "-XX:+UseSerialGC",
            "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.common.security.authenticator.\
             SaslServerAuthenticator=debug",
        ]);
    // Short sessions on the REAUTH listener only (Kafka reads the setting per listener and
    // mechanism), so the other SASL listener's sessions never expire.
    for mechanism in ["plain", "scram-sha-256"] {
        builder = builder.property(
            &format!("listener.name.reauth.{mechanism}.connections.max.reauth.ms"),
            &REAUTH_MS.to_string(),
        );
    }
    // The REAUTH listener leaves SCRAM-SHA-512 out, to see how Kafka refuses a mechanism.
    let builder = builder.property(
        "listener.name.reauth.sasl.enabled.mechanisms",
        "PLAIN,SCRAM-SHA-256",
    );
    let kafka = builder.start();
    Broker { kafka, certs }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Kafka-style properties as owned pairs.
fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The properties of a SASL login with `mechanism` as `user`.
fn sasl_props(protocol: &str, mechanism: Mechanism, user: (&str, &str)) -> Vec<(String, String)> {
    props(&[
        ("security.protocol", protocol),
        ("sasl.mechanism", mechanism.name()),
        ("sasl.username", user.0),
        ("sasl.password", user.1),
    ])
}

/// Creates `topic` (one partition) through the PLAINTEXT listener.
async fn create_topic(kafka: &Kafka, topic: &str) {
    let cluster = Cluster::connect(ClusterConfig::new(&kafka.bootstrap()))
        .await
        .unwrap();
    Admin::new(cluster)
        .create_topics(&[NewTopic::new(topic, 1, -1)])
        .await
        .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
}

/// Produces five records to a fresh topic through the listener at `addr` with kbus's producer, then
/// reads them back through the same listener with kbus's consumer, both configured from
/// `security` (Java-style properties) plus `bootstrap.servers`. Checks that metadata sent both
/// back to that listener (not to the PLAINTEXT one) and that every record came back as written.
/// One record is 300 kB: over TLS its request and the fetch answer span many TLS records.
async fn produce_and_consume(
    kafka: &Kafka,
    addr: &str,
    topic: &str,
    security: &[(String, String)],
) {
    create_topic(kafka, topic).await;
    let mut producer_props = security.to_vec();
    producer_props.extend(props(&[
        ("bootstrap.servers", addr),
        ("acks", "all"),
        ("linger.ms", "0"),
    ]));
    let producer = Producer::from_properties(producer_props)
        .await
        .unwrap_or_else(|e| panic!("producer through {addr}: {e}"));
    let brokers: Vec<String> = producer
        .cluster()
        .metadata()
        .brokers
        .values()
        .map(|b| b.address())
        .collect();
    assert_eq!(brokers, [addr], "metadata names the listener asked");

    let values: Vec<String> = (0..5)
        .map(|i| {
            let padding = if i == 2 {
                "x".repeat(300_000)
            } else {
                String::new()
            };
            format!("{topic}-value-{i}{padding}")
        })
        .collect();
    let mut deliveries = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let record = ProducerRecord::new(topic)
            .partition(0)
            .key(format!("key-{i}"))
            .value(v.clone());
        deliveries.push(producer.send(record).await.unwrap());
    }
    for (i, d) in deliveries.into_iter().enumerate() {
        let meta = tokio::time::timeout(PROMPTLY, d)
            .await
            .expect("delivered in time")
            .unwrap_or_else(|e| panic!("record {i} through {addr}: {e}"));
        assert_eq!((meta.partition, meta.offset), (0, i as i64));
    }
    producer.close().await.unwrap();

    let mut consumer_props = security.to_vec();
    consumer_props.extend(props(&[
        ("bootstrap.servers", addr),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "100"),
    ]));
    let mut consumer = Consumer::from_properties(consumer_props)
        .await
        .unwrap_or_else(|e| panic!("consumer through {addr}: {e}"));
    consumer.assign([TopicPartition::new(topic, 0)]).unwrap();
    let mut read = Vec::new();
    tokio::time::timeout(PROMPTLY, async {
        while read.len() < values.len() {
            if let Event::Records(batch) = consumer.poll().await.unwrap() {
                read.extend(batch.records);
            }
        }
    })
    .await
    .expect("read the records back in time");
    let got: Vec<(i64, &[u8])> = read
        .iter()
        .map(|r| (r.offset, r.value.as_deref().expect("a value")))
        .collect();
    let want: Vec<(i64, &[u8])> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64, v.as_bytes()))
        .collect();
    // Compared whole, reported by offset and length (the large value would flood the output).
    let sizes = |v: &[(i64, &[u8])]| v.iter().map(|(o, b)| (*o, b.len())).collect::<Vec<_>>();
    assert!(
        got == want,
        "read {:?}, wrote {:?}",
        sizes(&got),
        sizes(&want)
    );
}

/// Asserts `err` is a clear, final SASL authentication error: it names the broker and mechanism,
/// carries Kafka's SASL_AUTHENTICATION_FAILED with the broker's own message, and leaks no password.
fn assert_refused_credentials(err: &Error, mechanism: Mechanism, addr: &str, password: &str) {
    let Error::Authentication {
        broker,
        mechanism: m,
        message,
    } = err
    else {
        panic!("expected an authentication error, got {err:?}");
    };
    assert_eq!(broker, addr);
    assert_eq!(m, mechanism.name());
    // Kafka answers with an error code and a message (it does not just hang up): both are shown.
    assert!(message.contains("SASL_AUTHENTICATION_FAILED"), "{message}");
    assert!(
        message.contains("broker says: Authentication failed"),
        "{message}"
    );
    assert!(!err.is_retriable(), "{err}");
    let shown = err.to_string();
    assert!(
        shown.contains(&format!(
            "SASL {} authentication with {addr} failed",
            mechanism.name()
        )),
        "{shown}"
    );
    assert!(
        !format!("{shown} {err:?}").contains(password),
        "the password leaked: {err:?}"
    );
}

/// The crypto providers this build has.
fn providers() -> Vec<TlsProvider> {
    let mut v = Vec::new();
    if cfg!(feature = "tls-ring") {
        v.push(TlsProvider::Ring);
    }
    if cfg!(feature = "tls-rustcrypto") {
        v.push(TlsProvider::RustCrypto);
    }
    v
}

/// An SSL connection configuration trusting `ca` through `provider`.
fn ssl(ca: &std::path::Path, provider: TlsProvider) -> ConnectionConfig {
    ConnectionConfig {
        security_protocol: SecurityProtocol::Ssl,
        tls: TlsConfig {
            ca_location: Some(ca.to_path_buf()),
            provider,
            ..Default::default()
        },
        request_timeout: PROMPTLY,
        connect_timeout: PROMPTLY,
        ..Default::default()
    }
}

/// Connects and sends one Metadata request: the connection serves ordinary requests.
async fn connect_and_ask(addr: &str, config: ConnectionConfig) {
    let conn = Connection::connect(addr, config)
        .await
        .unwrap_or_else(|e| panic!("{addr}: {e}"));
    let md = conn.send(&MetadataRequest::default()).await.unwrap();
    assert_eq!(md.brokers.len(), 1, "a single broker");
    assert!(!conn.is_closed());
}

/// Connects, expects a TLS error naming `addr` that is final, and returns its text; it must come
/// at once (no hang until a timeout).
async fn tls_refusal(addr: &str, config: ConnectionConfig) -> String {
    let started = Instant::now();
    let err = tokio::time::timeout(PROMPTLY, Connection::connect(addr, config))
        .await
        .expect("refused in time, not left hanging")
        .expect_err("the connection must be refused");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Tls { .. }), "not a TLS error: {err:?}");
    assert_eq!(
        err.broker().expect("the error names its broker"),
        addr,
        "{err}"
    );
    assert!(!err.is_retriable(), "{err}");
    let shown = err.to_string();
    assert!(shown.contains(addr), "{shown}");
    shown
}

// ---------------------------------------------------------------------------------------------
// SASL
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_login_produces_and_consumes() {
    let b = broker().await;
    let _log = b.kafka.log_on_failure();
    let addr = b.kafka.addr("SASL");
    let security = sasl_props("SASL_PLAINTEXT", Mechanism::Plain, ALICE);
    produce_and_consume(&b.kafka, &addr, "sasl-plain", &security).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha256_and_sha512_logins_produce_and_consume() {
    let b = broker().await;
    let _log = b.kafka.log_on_failure();
    let addr = b.kafka.addr("SASL");
    let sha256 = sasl_props("SASL_PLAINTEXT", Mechanism::ScramSha256, BOB);
    produce_and_consume(&b.kafka, &addr, "sasl-scram-sha256", &sha256).await;
    let sha512 = sasl_props("SASL_PLAINTEXT", Mechanism::ScramSha512, CAROL);
    produce_and_consume(&b.kafka, &addr, "sasl-scram-sha512", &sha512).await;

    // Each SCRAM user exists for its own hash only: the other hash's stored credentials differ,
    // so the same name and password fail with it. (This also shows the mechanism really is the
    // one named, not silently another.)
    let config = ConnectionConfig::from_properties(sasl_props(
        "SASL_PLAINTEXT",
        Mechanism::ScramSha512,
        BOB,
    ))
    .unwrap();
    let err = Connection::connect(&addr, config).await.unwrap_err();
    assert_refused_credentials(&err, Mechanism::ScramSha512, &addr, BOB.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_prompt_clear_authentication_error() {
    let b = broker().await;
    let _log = b.kafka.log_on_failure();
    let addr = b.kafka.addr("SASL");
    let wrong = "not-the-pa55word";
    for (mechanism, user) in [
        (Mechanism::Plain, ALICE.0),
        (Mechanism::ScramSha256, BOB.0),
        (Mechanism::ScramSha512, CAROL.0),
        // An unknown user fails the same way as a wrong password (neither PLAIN nor SCRAM tells
        // the two apart).
        (Mechanism::ScramSha256, "mallory"),
        (Mechanism::Plain, "mallory"),
    ] {
        let config = ConnectionConfig::from_properties(sasl_props(
            "SASL_PLAINTEXT",
            mechanism,
            (user, wrong),
        ))
        .unwrap();
        let started = Instant::now();
        let err = tokio::time::timeout(PROMPTLY, Connection::connect(&addr, config))
            .await
            .expect("refused in time, not left hanging")
            .expect_err("a wrong password must not log in");
        // Kafka delays a failure answer by connection.failed.authentication.delay.ms (100 ms).
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{mechanism} {user}: {:?}",
            started.elapsed()
        );
        assert_refused_credentials(&err, mechanism, &addr, wrong);
    }

    // A producer configured from properties fails to start with the same error, not a retry loop.
    let mut producer_props = sasl_props("SASL_PLAINTEXT", Mechanism::Plain, (ALICE.0, wrong));
    producer_props.push(("bootstrap.servers".into(), addr.clone()));
    let started = tokio::time::timeout(PROMPTLY, Producer::from_properties(producer_props))
        .await
        .expect("refused in time");
    let Err(err) = started else {
        panic!("a producer with a wrong password must not start");
    };
    assert_refused_credentials(&err, Mechanism::Plain, &addr, wrong);
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_ca_configured_produces_and_consumes() {
    let b = broker().await;
    let _log = b.kafka.log_on_failure();
    let addr = b.kafka.addr("SSL");
    // By host name too: the certificate lists localhost and 127.0.0.1.
    let by_name = format!("localhost:{}", b.kafka.port("SSL"));
    for provider in providers() {
        connect_and_ask(&addr, ssl(&b.certs.ca, provider)).await;
        connect_and_ask(&by_name, ssl(&b.certs.ca, provider)).await;
        // A CA that did not sign the broker's certificate is refused, naming the setting.
        let shown = tls_refusal(&addr, ssl(&b.certs.unrelated_ca, provider)).await;
        assert!(
            shown.contains("unknown CA") && shown.contains("ssl.ca.location"),
            "{provider:?}: {shown}"
        );
    }
    let ca = b.certs.ca.to_str().unwrap();
    let security = props(&[("security.protocol", "SSL"), ("ssl.ca.location", ca)]);
    produce_and_consume(&b.kafka, &addr, "tls", &security).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl_with_scram_produces_and_consumes() {
    let b = broker().await;
    let _log = b.kafka.log_on_failure();
    let addr = b.kafka.addr("SASLSSL");
    let ca = b.certs.ca.to_str().unwrap();
    let mut security = sasl_props("SASL_SSL", Mechanism::ScramSha512, CAROL);
    security.push(("ssl.ca.location".into(), ca.into()));
    produce_and_consume(&b.kafka, &addr, "sasl-ssl-scram", &security).await;

    // A wrong password inside TLS is the same clear error.
    let mut wrong = sasl_props("SASL_SSL", Mechanism::ScramSha256, (BOB.0, "nope-nope"));
    wrong.push(("ssl.ca.location".into(), ca.into()));
    let config = ConnectionConfig::from_properties(wrong).unwrap();
    let err = Connection::connect(&addr, config).await.unwrap_err();
    assert_refused_credentials(&err, Mechanism::ScramSha256, &addr, "nope-nope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_accepts_a_client_certificate_and_refuses_none() {
    let b = broker().await;
    let _log = b.kafka.log_on_failure();
    let addr = b.kafka.addr("MTLS");
    for provider in providers() {
        let mut with_cert = ssl(&b.certs.ca, provider);
        with_cert.tls.certificate_location = Some(b.certs.client.cert.clone());
        with_cert.tls.key_location = Some(b.certs.client.key.clone());
        connect_and_ask(&addr, with_cert).await;

        let shown = tls_refusal(&addr, ssl(&b.certs.ca, provider)).await;
        assert!(
            shown.contains("client certificate") && shown.contains("ssl.certificate.location"),
            "{provider:?}: {shown}"
        );

        // A client certificate from a CA the broker does not trust is refused too, and the error
        // points at the certificate given.
        let mut untrusted = ssl(&b.certs.ca, provider);
        untrusted.tls.certificate_location = Some(b.certs.untrusted_client.cert.clone());
        untrusted.tls.key_location = Some(b.certs.untrusted_client.key.clone());
        let shown = tls_refusal(&addr, untrusted).await;
        assert!(
            shown.contains("rejected the client certificate")
                && shown.contains("ssl.certificate.location"),
            "{provider:?}: {shown}"
        );
    }
    // The whole path from properties, with records both ways.
    let security = props(&[
        ("security.protocol", "SSL"),
        ("ssl.ca.location", b.certs.ca.to_str().unwrap()),
        (
            "ssl.certificate.location",
            b.certs.client.cert.to_str().unwrap(),
        ),
        ("ssl.key.location", b.certs.client.key.to_str().unwrap()),
    ]);
    produce_and_consume(&b.kafka, &addr, "mtls", &security).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_is_refused_unless_hostname_verification_is_off() {
    let b = broker().await;
    let _log = b.kafka.log_on_failure();
    let addr = b.kafka.addr("BADHOST");
    for provider in providers() {
        let shown = tls_refusal(&addr, ssl(&b.certs.ca, provider)).await;
        assert!(
            shown.contains("another host")
                && shown.contains("127.0.0.1")
                && shown.contains("ssl.endpoint.identification.algorithm"),
            "{provider:?}: {shown}"
        );
    }
    // ssl.endpoint.identification.algorithm= (empty), as a Java client user writes it: the name
    // is not checked, the chain still is.
    let ca = b.certs.ca.to_str().unwrap();
    let off = ConnectionConfig::from_properties([
        ("security.protocol", "SSL"),
        ("ssl.ca.location", ca),
        ("ssl.endpoint.identification.algorithm", ""),
    ])
    .unwrap();
    assert!(!off.tls.verify_hostname);
    connect_and_ask(&addr, off.clone()).await;
    let mut unknown_ca = off;
    unknown_ca.tls.ca_location = Some(b.certs.unrelated_ca.clone());
    let shown = tls_refusal(&addr, unknown_ca).await;
    assert!(shown.contains("unknown CA"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused() {
    let b = broker().await;
    let _log = b.kafka.log_on_failure();
    let addr = b.kafka.addr("EXPIRED");
    for provider in providers() {
        for verify_hostname in [true, false] {
            let mut config = ssl(&b.certs.ca, provider);
            config.tls.verify_hostname = verify_hostname;
            let shown = tls_refusal(&addr, config).await;
            assert!(
                shown.contains("certificate has expired"),
                "{provider:?}: {shown}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Settings that do not match the listener
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_do_not_match_the_listener_are_named() {
    let b = broker().await;
    let _log = b.kafka.log_on_failure();
    let connect = |listener: &str, config: ConnectionConfig| {
        let addr = b.kafka.addr(listener);
        async move {
            let err = tokio::time::timeout(PROMPTLY, Connection::connect(&addr, config))
                .await
                .expect("refused in time, not left hanging")
                .expect_err("the connection must be refused");
            assert_eq!(
                err.broker().expect("the error names its broker"),
                addr,
                "{err}"
            );
            assert!(!err.is_retriable(), "{err}");
            err
        }
    };

    // A mechanism the listener does not enable: Kafka answers with the ones it does.
    let config = ConnectionConfig::from_properties(sasl_props(
        "SASL_PLAINTEXT",
        Mechanism::ScramSha512,
        CAROL,
    ))
    .unwrap();
    let err = connect("REAUTH", config).await;
    assert!(
        matches!(&err, Error::Authentication { mechanism, message, .. }
            if mechanism == "SCRAM-SHA-512"
            && message == "SCRAM-SHA-512 is not enabled on the broker (mechanisms it lists: \
                           PLAIN, SCRAM-SHA-256)"),
        "{err:?}"
    );

    // Plain TCP to TLS listeners: Kafka answers the ApiVersions request with a TLS alert.
    for listener in ["SSL", "SASLSSL"] {
        let err = connect(listener, ConnectionConfig::default()).await;
        assert!(matches!(err, Error::Tls { .. }), "{listener}: {err:?}");
        assert!(
            err.to_string()
                .contains("this is a TLS listener, so set security.protocol=SSL"),
            "{listener}: {err}"
        );
    }

    // SASL against a listener without it: Kafka answers the handshake with ILLEGAL_SASL_STATE.
    for listener in ["PLAINTEXT", "SSL"] {
        let mut config = ConnectionConfig::from_properties(sasl_props(
            "SASL_PLAINTEXT",
            Mechanism::Plain,
            ALICE,
        ))
        .unwrap();
        if listener == "SSL" {
            config.security_protocol = SecurityProtocol::SaslSsl;
            config.tls.ca_location = Some(b.certs.ca.clone());
        }
        let err = connect(listener, config).await;
        let shown = err.to_string();
        assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
        assert!(
            shown.contains("ILLEGAL_SASL_STATE")
                && shown.contains("a Kafka listener without SASL")
                && shown.contains("security.protocol"),
            "{listener}: {shown}"
        );
    }

    // TLS to a plain listener: the broker hangs up on the ClientHello.
    let mut config = ssl(&b.certs.ca, TlsProvider::Auto);
    config.connect_timeout = PROMPTLY;
    let err = connect("PLAINTEXT", config).await;
    assert!(
        matches!(&err, Error::Tls { message, .. } if message.contains("is this port a TLS listener?")),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// KIP-368 re-authentication
// ---------------------------------------------------------------------------------------------

/// A TCP proxy in front of one plaintext listener that forwards bytes unchanged and reads the
/// client's request frames as they pass, counting connections and SaslHandshake requests: a
/// re-authentication starts with a SaslHandshake on the connection it renews.
struct HandshakeCounter {
    addr: String,
    accepted: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
}

impl HandshakeCounter {
    async fn start(target: String) -> HandshakeCounter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let (a, h) = (accepted.clone(), handshakes.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let upstream = TcpStream::connect(&target).await.unwrap();
                let (client_read, client_write) = client.into_split();
                let (up_read, up_write) = upstream.into_split();
                tokio::spawn(count_requests(client_read, up_write, h.clone()));
                tokio::spawn(async move {
                    let (mut r, mut w) = (up_read, client_write);
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        HandshakeCounter {
            addr,
            accepted,
            handshakes,
        }
    }
}

/// Forwards the client's bytes to the broker as they come, and counts the SaslHandshake requests
/// (API key 17) among the frames they make up.
async fn count_requests(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    handshakes: Arc<AtomicUsize>,
) {
    const SASL_HANDSHAKE: i16 = 17;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        // Whole frames: a 4-byte size, then the header (API key first).
        while pending.len() >= 6 {
            let size = i32::from_be_bytes(pending[..4].try_into().unwrap()) as usize;
            if pending.len() < 4 + size {
                break;
            }
            if i16::from_be_bytes([pending[4], pending[5]]) == SASL_HANDSHAKE {
                handshakes.fetch_add(1, Ordering::SeqCst);
            }
            pending.drain(..4 + size);
        }
    }
    let _ = to.shutdown().await;
}

/// How many times the broker's log says it began re-authenticating a connection.
fn reauthentications_logged(kafka: &Kafka) -> usize {
    std::fs::read_to_string(kafka.log_path())
        .unwrap_or_default()
        .matches("Beginning re-authentication")
        .count()
}

/// Authenticates a connection through a counting proxy to the REAUTH listener by hand (to see the
/// session the broker grants), keeps it renewing, and keeps it busy with up to 32 pipelined
/// requests at a time for four session lifetimes. Every request must succeed on that one TCP
/// connection (Kafka closes a connection whose session ran out at its next request), which
/// must have re-authenticated at least three times.
async fn stays_authenticated_while_busy(kafka: &Kafka, mechanism: Mechanism, user: (&str, &str)) {
    let proxy = HandshakeCounter::start(kafka.addr("REAUTH")).await;
    let config = ConnectionConfig {
        request_timeout: PROMPTLY,
        ..Default::default()
    };
    let mut conn = Connection::connect(&proxy.addr, config).await.unwrap();
    let sasl = SaslConfig::new(mechanism, Credentials::new(user.0, user.1));
    let session = authenticate(&conn, &sasl).await.unwrap();
    assert_eq!(session.mechanism, mechanism);
    assert_eq!(
        session.session_lifetime(),
        Some(Duration::from_millis(REAUTH_MS)),
        "the broker grants the listener's connections.max.reauth.ms"
    );
    conn.renew_sessions(sasl, &session);
    let conn = Arc::new(conn);
    let logged_before = reauthentications_logged(kafka);

    let lifetimes = 4;
    let until = Instant::now() + Duration::from_millis(REAUTH_MS * lifetimes);
    let answered = Arc::new(AtomicUsize::new(0));
    let mut load = tokio::task::JoinSet::new();
    for worker in 0..32 {
        let (conn, answered) = (conn.clone(), answered.clone());
        load.spawn(async move {
            while Instant::now() < until {
                // A mix of requests, as a client's connection carries.
                let result = if worker % 2 == 0 {
                    conn.send(&MetadataRequest::default()).await.map(|_| ())
                } else {
                    conn.send(&ApiVersionsRequest::default()).await.map(|_| ())
                };
                if let Err(e) = result {
                    panic!("request {} failed: {e}", answered.load(Ordering::SeqCst));
                }
                answered.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    while let Some(done) = load.join_next().await {
        if let Err(e) = done {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    assert!(!conn.is_closed());
    let answered = answered.load(Ordering::SeqCst);
    assert!(
        answered > 1000,
        "only {answered} requests in four lifetimes"
    );
    assert_eq!(
        proxy.accepted.load(Ordering::SeqCst),
        1,
        "one TCP connection throughout"
    );
    let handshakes = proxy.handshakes.load(Ordering::SeqCst);
    assert!(
        handshakes > lifetimes as usize - 1,
        "{mechanism}: {handshakes} SaslHandshakes (the first login and its renewals) in {lifetimes} \
         session lifetimes"
    );
    let logged = reauthentications_logged(kafka) - logged_before;
    assert!(
        logged >= lifetimes as usize - 1,
        "{mechanism}: the broker logged {logged} re-authentications"
    );
}

/// Without re-authentication Kafka does end the session: a connection authenticated by hand and
/// never renewed fails its first request after the session lifetime (so the busy connection's
/// success above means something). Returns when it failed.
async fn an_unrenewed_session_is_cut(kafka: &Kafka) {
    let conn = Connection::connect(&kafka.addr("REAUTH"), ConnectionConfig::default())
        .await
        .unwrap();
    let sasl = SaslConfig::new(Mechanism::Plain, Credentials::new(ALICE.0, ALICE.1));
    authenticate(&conn, &sasl).await.unwrap();
    let authenticated = Instant::now();
    let err = loop {
        if let Err(e) = conn.send(&MetadataRequest::default()).await {
            break e;
        }
        assert!(
            authenticated.elapsed() < Duration::from_millis(REAUTH_MS) + PROMPTLY,
            "Kafka kept serving an expired session"
        );
    };
    let after = authenticated.elapsed();
    assert!(
        matches!(err, Error::Disconnected { .. }),
        "the broker closes the connection: {err:?}"
    );
    // The broker's clock starts a little before ours (it answered the last SaslAuthenticate).
    assert!(
        after > Duration::from_millis(REAUTH_MS - 500),
        "cut after {after:?}, before the session ended"
    );
}

/// A connection left idle past the end of its session re-authenticates at its next request and
/// that request succeeds: a pooled connection to a broker written to now and then keeps working.
/// (Kafka accepts a SaslHandshake on a connection whose session expired; anything else closes
/// it.) The idle time is the condition under test, so this one waits on the clock.
async fn an_idle_connection_renews_at_its_next_request(kafka: &Kafka) {
    let proxy = HandshakeCounter::start(kafka.addr("REAUTH")).await;
    let config =
        ConnectionConfig::from_properties(sasl_props("SASL_PLAINTEXT", Mechanism::Plain, ALICE))
            .unwrap();
    let conn = Connection::connect(&proxy.addr, config).await.unwrap();
    conn.send(&MetadataRequest::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(REAUTH_MS * 3 / 2)).await;
    conn.send(&MetadataRequest::default())
        .await
        .unwrap_or_else(|e| panic!("the request after idling failed: {e}"));
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(
        proxy.handshakes.load(Ordering::SeqCst),
        2,
        "the login and one renewal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_connection_reauthenticates_before_its_session_expires() {
    let b = broker().await;
    let _log = b.kafka.log_on_failure();
    // The other SASL listener sets no lifetime: the setting really is per listener.
    let conn = Connection::connect(&b.kafka.addr("SASL"), ConnectionConfig::default())
        .await
        .unwrap();
    let sasl = SaslConfig::new(Mechanism::Plain, Credentials::new(ALICE.0, ALICE.1));
    let session = authenticate(&conn, &sasl).await.unwrap();
    assert_eq!(session.session_lifetime(), None);

    tokio::join!(
        an_unrenewed_session_is_cut(&b.kafka),
        an_idle_connection_renews_at_its_next_request(&b.kafka)
    );
    // One after the other: each counts the broker's re-authentication log lines.
    stays_authenticated_while_busy(&b.kafka, Mechanism::Plain, ALICE).await;
    stays_authenticated_while_busy(&b.kafka, Mechanism::ScramSha256, BOB).await;
}
