//! The connection layer against a real broker (tansu): version negotiation and pipelining.

use std::sync::Arc;
use std::time::Duration;

use kbus::net::{Connection, ConnectionConfig};
use kbus::protocol::messages::{ApiVersionsRequest, MetadataRequest};
use kbus::protocol::ApiKey;
use kbus::Error;
use kbus_testkit::tansu::Tansu;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiates_versions_with_a_real_broker() {
    let broker = Tansu::start();
    let conn = Connection::connect(&broker.addr(), ConnectionConfig::default())
        .await
        .unwrap();
    // tansu 0.6.0 speaks flexible versions of the data-path APIs.
    assert!(conn.version(ApiKey::Produce).unwrap() >= 9);
    assert!(conn.version(ApiKey::Fetch).unwrap() >= 12);
    assert!(conn.version(ApiKey::Metadata).unwrap() >= 9);
    let v = conn.send(&ApiVersionsRequest::default()).await.unwrap();
    assert_eq!(v.error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_requests_in_flight_on_one_connection() {
    let broker = Tansu::start();
    let conn = Arc::new(
        Connection::connect(&broker.addr(), ConnectionConfig::default())
            .await
            .unwrap(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..500 {
        let c = conn.clone();
        tasks.spawn(async move { c.send(&MetadataRequest::default()).await });
    }
    let mut answered = 0;
    while let Some(r) = tasks.join_next().await {
        let md = r.unwrap().unwrap();
        assert_eq!(md.brokers.len(), 1, "tansu is a single broker");
        answered += 1;
    }
    assert_eq!(answered, 500);
    assert!(!conn.is_closed());
}

#[tokio::test]
async fn an_unreachable_broker_is_a_clear_error_within_the_timeout() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = ConnectionConfig {
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let err = Connection::connect(&addr, config).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(err, Error::Io { .. } | Error::ConnectTimeout { .. }),
        "{err}"
    );
    assert_eq!(err.broker().expect("the error names its broker"), addr);
    assert!(err.to_string().contains(&addr), "{err}");
}

#[tokio::test]
async fn a_port_that_speaks_garbage_fails_the_handshake_cleanly() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut s, _) = listener.accept().await.unwrap();
        // An HTTP server's greeting, not Kafka: the first four bytes read as a huge frame size.
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        let _ = s.shutdown().await;
    });
    let config = ConnectionConfig {
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let err = Connection::connect(&addr, config).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol {
                source: kbus::protocol::ProtocolError::FrameTooLarge { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_retriable());
    assert!(err.to_string().contains(&addr), "{err}");
}
