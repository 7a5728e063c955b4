//! TLS against a real broker: tansu behind stunnel, with certificates generated at test time.
//!
//! tansu 0.6.0 has TLS flags but never applies them, so stunnel terminates TLS in front of it and
//! tansu advertises stunnel's port: metadata sends clients back through TLS. Every test runs with
//! each crypto provider compiled in (ring and/or RustCrypto).
#![cfg(any(feature = "tls-ring", feature = "tls-rustcrypto"))]

use kbus::cluster::{Cluster, ClusterConfig};
use kbus::config::Settings;
use kbus::net::{Connection, ConnectionConfig, SecurityProtocol, TlsConfig, TlsProvider};
use kbus::protocol::messages::MetadataRequest;
use kbus::protocol::ApiKey;
use kbus::Error;
use kbus_testkit::stunnel::{free_port, Certs, Pair, Stunnel};
use kbus_testkit::tansu::Tansu;

/// The providers this build has.
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

/// tansu listening on a plain port but advertising the TLS port, and stunnel on that TLS port
/// serving `server` (requiring a client certificate signed by the test CA when `mutual`).
fn tls_broker(certs: &Certs, server: &Pair, mutual: bool) -> (Tansu, Stunnel) {
    let tls_port = free_port();
    let plain_port = free_port();
    let broker = Tansu::start_advertising(plain_port, tls_port);
    let client_ca = mutual.then_some(certs.ca.as_path());
    let tunnel = Stunnel::start(tls_port, plain_port, server, client_ca);
    (broker, tunnel)
}

fn ssl(tls: TlsConfig) -> ConnectionConfig {
    ConnectionConfig {
        security_protocol: SecurityProtocol::Ssl,
        tls,
        ..Default::default()
    }
}

fn trusting(ca: &std::path::Path, provider: TlsProvider) -> TlsConfig {
    TlsConfig {
        ca_location: Some(ca.to_path_buf()),
        provider,
        ..Default::default()
    }
}

/// Connects and expects a TLS error naming `addr`; returns its message.
async fn tls_error(addr: &str, config: ConnectionConfig) -> String {
    let err = Connection::connect(addr, config)
        .await
        .expect_err("the connection must be refused");
    assert!(matches!(err, Error::Tls { .. }), "not a TLS error: {err:?}");
    assert_eq!(
        err.broker().expect("the error names its broker"),
        addr,
        "{err}"
    );
    assert!(!err.is_retriable(), "{err}");
    let message = err.to_string();
    assert!(message.contains(addr), "{message}");
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tls_negotiates_answers_metadata_and_bootstraps_a_cluster() {
    let certs = Certs::generate();
    let (_broker, tunnel) = tls_broker(&certs, &certs.server, false);
    for provider in providers() {
        // By IP literal and by host name: the certificate lists both.
        for addr in [tunnel.addr(), tunnel.localhost_addr()] {
            let conn = Connection::connect(&addr, ssl(trusting(&certs.ca, provider)))
                .await
                .unwrap_or_else(|e| panic!("{provider:?} {addr}: {e}"));
            assert!(conn.version(ApiKey::Metadata).unwrap() >= 9);
            assert!(conn.version(ApiKey::Produce).is_some());
            let md = conn.send(&MetadataRequest::default()).await.unwrap();
            assert_eq!(md.brokers.len(), 1, "tansu is a single broker");
            assert_eq!(
                md.brokers[0].port,
                i32::from(tunnel.port()),
                "tansu advertises the TLS port"
            );
        }
    }

    // The settings as a user writes them, then a cluster bootstrapped through the TLS port: the
    // broker it finds in metadata is the TLS port again, and connecting to it by id works.
    let ca = certs.ca.to_str().unwrap();
    let connection =
        ConnectionConfig::from_properties([("security.protocol", "SSL"), ("ssl.ca.location", ca)])
            .unwrap();
    let config = ClusterConfig {
        connection,
        ..ClusterConfig::new(&tunnel.addr())
    };
    let cluster = Cluster::connect(config).await.unwrap();
    let md = cluster.metadata();
    assert_eq!(md.brokers.len(), 1);
    let (id, info) = md.brokers.iter().next().unwrap();
    assert_eq!(info.address(), tunnel.addr());
    let conn = cluster.broker(*id).await.unwrap();
    assert_eq!(conn.broker(), tunnel.addr());
    conn.send(&MetadataRequest::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_a_client_certificate() {
    let certs = Certs::generate();
    let (_broker, tunnel) = tls_broker(&certs, &certs.server, true);
    let addr = tunnel.addr();
    for provider in providers() {
        let with_cert = TlsConfig {
            certificate_location: Some(certs.client.cert.clone()),
            key_location: Some(certs.client.key.clone()),
            ..trusting(&certs.ca, provider)
        };
        let conn = Connection::connect(&addr, ssl(with_cert))
            .await
            .unwrap_or_else(|e| panic!("{provider:?}: {e}"));
        conn.send(&MetadataRequest::default()).await.unwrap();

        let message = tls_error(&addr, ssl(trusting(&certs.ca, provider))).await;
        assert!(
            message.contains("client certificate") && message.contains("ssl.certificate.location"),
            "{provider:?}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_is_rejected_unless_hostname_verification_is_off() {
    let certs = Certs::generate();
    let (_broker, tunnel) = tls_broker(&certs, &certs.wrong_host, false);
    let addr = tunnel.addr();
    for provider in providers() {
        let message = tls_error(&addr, ssl(trusting(&certs.ca, provider))).await;
        assert!(
            message.contains("another host") && message.contains("127.0.0.1"),
            "{provider:?}: {message}"
        );

        // ssl.endpoint.identification.algorithm= (empty): the name is not checked...
        let no_hostname = TlsConfig {
            verify_hostname: false,
            ..trusting(&certs.ca, provider)
        };
        let conn = Connection::connect(&addr, ssl(no_hostname.clone()))
            .await
            .unwrap_or_else(|e| panic!("{provider:?}: {e}"));
        conn.send(&MetadataRequest::default()).await.unwrap();

        // ...but the chain still is: a CA the client does not trust is still refused.
        let unknown_ca = TlsConfig {
            ca_location: Some(certs.unrelated_ca.clone()),
            ..no_hostname
        };
        let message = tls_error(&addr, ssl(unknown_ca)).await;
        assert!(message.contains("unknown CA"), "{provider:?}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_rejected_even_without_hostname_verification() {
    let certs = Certs::generate();
    let (_broker, tunnel) = tls_broker(&certs, &certs.expired, false);
    let addr = tunnel.addr();
    for provider in providers() {
        for verify_hostname in [true, false] {
            let tls = TlsConfig {
                verify_hostname,
                ..trusting(&certs.ca, provider)
            };
            let message = tls_error(&addr, ssl(tls)).await;
            assert!(message.contains("expired"), "{provider:?}: {message}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_unknown_ca_is_rejected() {
    let certs = Certs::generate();
    let (_broker, tunnel) = tls_broker(&certs, &certs.server, false);
    let addr = tunnel.addr();
    for provider in providers() {
        let message = tls_error(&addr, ssl(trusting(&certs.unrelated_ca, provider))).await;
        assert!(
            message.contains("unknown CA") && message.contains("ssl.ca.location"),
            "{provider:?}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_settings_that_cannot_work_are_named_before_connecting_anywhere() {
    let certs = Certs::generate();
    let (_broker, tunnel) = tls_broker(&certs, &certs.server, false);
    let addr = tunnel.addr();
    let missing = TlsConfig {
        ca_location: Some(certs.ca.with_file_name("no-such-ca.pem")),
        ..Default::default()
    };
    let message = tls_error(&addr, ssl(missing)).await;
    assert!(
        message.contains("ssl.ca.location") && message.contains("no-such-ca.pem"),
        "{message}"
    );
    let cert_without_key = TlsConfig {
        certificate_location: Some(certs.client.cert.clone()),
        ..trusting(&certs.ca, TlsProvider::Auto)
    };
    let message = tls_error(&addr, ssl(cert_without_key)).await;
    assert!(message.contains("ssl.key.location"), "{message}");
}
