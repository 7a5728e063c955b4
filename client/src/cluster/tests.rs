//! Tests of [`Cluster`] against a small scripted broker (ApiVersions and Metadata only). The
//! integration tests run the cluster against real brokers; these pin down what is hard to observe
//! there, such as how many Metadata requests a burst of refreshes sends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kbus_protocol::header::ResponseHeader;
use kbus_protocol::messages::api_versions::{ApiVersion, ApiVersionsResponse};
use kbus_protocol::messages::metadata::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kbus_protocol::{encode_response, ApiKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::*;

/// A broker that answers ApiVersions (offering Metadata v1 only) and Metadata (itself as broker
/// 1, leading partition 0 of every topic asked), holding each Metadata answer for `delay` — a slow
/// broker. It counts the Metadata requests and signals each one it receives.
struct ScriptedBroker {
    addr: String,
    metadata_requests: Arc<AtomicUsize>,
    metadata_received: Arc<Notify>,
}

impl ScriptedBroker {
    async fn start(delay: Duration) -> ScriptedBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let port = listener.local_addr().unwrap().port() as i32;
        let metadata_requests = Arc::new(AtomicUsize::new(0));
        let metadata_received = Arc::new(Notify::new());
        let (count, signal) = (metadata_requests.clone(), metadata_received.clone());
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(s, port, delay, count.clone(), signal.clone()));
            }
        });
        ScriptedBroker {
            addr,
            metadata_requests,
            metadata_received,
        }
    }
}

async fn serve(
    mut s: TcpStream,
    port: i32,
    delay: Duration,
    count: Arc<AtomicUsize>,
    signal: Arc<Notify>,
) {
    loop {
        let mut size = [0u8; 4];
        if s.read_exact(&mut size).await.is_err() {
            return;
        }
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        if s.read_exact(&mut body).await.is_err() {
            return;
        }
        let key = i16::from_be_bytes([body[0], body[1]]);
        let version = i16::from_be_bytes([body[2], body[3]]);
        let header = ResponseHeader {
            correlation_id: i32::from_be_bytes([body[4], body[5], body[6], body[7]]),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        if key == ApiKey::ApiVersions.as_i16() {
            let offered = [(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 1, 1)];
            let resp = ApiVersionsResponse {
                api_keys: offered
                    .iter()
                    .map(|(k, min, max)| ApiVersion {
                        api_key: k.as_i16(),
                        min_version: *min,
                        max_version: *max,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            encode_response(&header, version, &resp, &mut out).unwrap();
        } else if key == ApiKey::Metadata.as_i16() {
            count.fetch_add(1, Ordering::SeqCst);
            signal.notify_one();
            tokio::time::sleep(delay).await;
            let resp = MetadataResponse {
                brokers: vec![MetadataResponseBroker {
                    node_id: 1,
                    host: "127.0.0.1".into(),
                    port,
                    ..Default::default()
                }],
                controller_id: 1,
                topics: vec![MetadataResponseTopic {
                    name: Some("t".into()),
                    partitions: vec![MetadataResponsePartition {
                        partition_index: 0,
                        leader_id: 1,
                        replica_nodes: vec![1],
                        isr_nodes: vec![1],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            encode_response(&header, version, &resp, &mut out).unwrap();
        } else {
            return;
        }
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_burst_of_refreshes_while_one_is_out_sends_one_more_not_one_each() {
    let broker = ScriptedBroker::start(Duration::from_millis(200)).await;
    let cluster = Cluster::connect(ClusterConfig::new(&broker.addr))
        .await
        .unwrap();
    let before = broker.metadata_requests.load(Ordering::SeqCst);
    // The signal of the bootstrap's Metadata request, left waiting.
    broker.metadata_received.notified().await;

    // One refresh goes out; once the broker has it, eight more callers ask (errors of eight
    // partitions, say). They must not reuse the answer already on its way (it may predate what
    // they saw), but one refresh after it serves them all.
    let first = tokio::spawn({
        let cluster = cluster.clone();
        async move { cluster.refresh(&["t"]).await }
    });
    broker.metadata_received.notified().await;
    let burst: Vec<_> = (0..8)
        .map(|_| {
            let cluster = cluster.clone();
            tokio::spawn(async move { cluster.refresh(&["t"]).await })
        })
        .collect();
    first.await.unwrap().unwrap();
    for refresh in burst {
        let md = refresh.await.unwrap().unwrap();
        assert_eq!(md.leader_of("t", 0).map(|(id, _)| id), Some(1));
    }
    assert_eq!(
        broker.metadata_requests.load(Ordering::SeqCst) - before,
        2,
        "the first refresh and one for the whole burst"
    );

    // A refresh asking about a topic the last one did not ask about goes out.
    cluster.refresh(&["t", "other"]).await.unwrap();
    assert_eq!(broker.metadata_requests.load(Ordering::SeqCst) - before, 3);
}
