//! Tests of [`super`].

//! The driver against scripted peers that behave as Kafka does (answering with error codes),
//! over an in-memory pipe.

use super::*;
use crate::net::sasl::Credentials;
use crate::net::ConnectionConfig;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::BytesMut;
use kbus_protocol::messages::api_versions::ApiVersion;
use kbus_protocol::messages::{
    AnyRequest, AnyResponse, ApiVersionsResponse, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kbus_protocol::{encode_response, Decoder, Message, RequestHeader, ResponseHeader};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use std::time::Duration;

const BROKER: &str = "scripted:9092";

/// What the peer does with a SASL request: answer it, or hang up (`None`).
type Script = Box<dyn FnMut(AnyRequest) -> Option<AnyResponse> + Send>;

/// A connection to a peer that negotiates versions (SaslHandshake up to `handshake_max`) and
/// hands every other request to `script`.
async fn peer(handshake_max: i16, mut script: Script) -> Connection {
    let (client, mut server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        while let Some((header, request)) = read_request(&mut server).await {
            let answer = match request {
                AnyRequest::ApiVersions(_) => AnyResponse::ApiVersions(versions(handshake_max)),
                other => match script(other) {
                    Some(answer) => answer,
                    None => return,
                },
            };
            let buf = frame(header.correlation_id, header.api_version, &answer);
            if server.write_all(&buf).await.is_err() {
                return;
            }
        }
    });
    Connection::establish(client, BROKER, ConnectionConfig::default())
        .await
        .unwrap()
}

/// The frame of `answer` (one of the kinds these peers send) at `version`.
fn frame(correlation_id: i32, version: i16, answer: &AnyResponse) -> BytesMut {
    fn encode<M: Message>(correlation_id: i32, version: i16, body: &M) -> BytesMut {
        let h = ResponseHeader {
            correlation_id,
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        encode_response(&h, version, body, &mut buf).unwrap();
        buf
    }
    match answer {
        AnyResponse::ApiVersions(m) => encode(correlation_id, version, m),
        AnyResponse::SaslHandshake(m) => encode(correlation_id, version, m),
        AnyResponse::SaslAuthenticate(m) => encode(correlation_id, version, m),
        other => panic!("scripted peers do not send {:?}", other.api_key()),
    }
}

fn versions(handshake_max: i16) -> ApiVersionsResponse {
    let key = |api: ApiKey, max: i16| ApiVersion {
        api_key: api.as_i16(),
        min_version: 0,
        max_version: max,
        ..Default::default()
    };
    ApiVersionsResponse {
        api_keys: vec![
            key(ApiKey::ApiVersions, 3),
            key(ApiKey::SaslHandshake, handshake_max),
            key(ApiKey::SaslAuthenticate, 2),
        ],
        ..Default::default()
    }
}

async fn read_request(s: &mut DuplexStream) -> Option<(RequestHeader, AnyRequest)> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).await.ok()?;
    let mut body = vec![0u8; usize::try_from(i32::from_be_bytes(size)).ok()?];
    s.read_exact(&mut body).await.ok()?;
    let mut d = Decoder::new(Bytes::from(body));
    let header = RequestHeader::decode(&mut d).ok()?;
    let request = AnyRequest::decode(header.api_key, header.api_version, &mut d).ok()?;
    Some((header, request))
}

fn handshake_ok(mechanisms: &[&str]) -> Option<AnyResponse> {
    Some(AnyResponse::SaslHandshake(SaslHandshakeResponse {
        error_code: 0,
        mechanisms: mechanisms.iter().map(|m| m.to_string()).collect(),
    }))
}

fn token(bytes: impl Into<Bytes>, lifetime: i64) -> Option<AnyResponse> {
    Some(AnyResponse::SaslAuthenticate(SaslAuthenticateResponse {
        auth_bytes: bytes.into(),
        session_lifetime_ms: lifetime,
        ..Default::default()
    }))
}

fn plain(password: &str) -> SaslConfig {
    SaslConfig::new(Mechanism::Plain, Credentials::new("alice", password))
}

fn message(err: &Error) -> &str {
    match err {
        Error::Authentication {
            broker, message, ..
        } => {
            assert_eq!(broker, BROKER);
            message
        }
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_session_is_renewed_before_its_lifetime_runs_out() {
    use std::sync::{Arc, Mutex};
    let authentications = Arc::new(Mutex::new(0));
    let counted = authentications.clone();
    let mut conn = peer(
        1,
        Box::new(move |req| match req {
            AnyRequest::SaslHandshake(_) => handshake_ok(&["PLAIN"]),
            AnyRequest::SaslAuthenticate(_) => {
                *counted.lock().unwrap() += 1;
                token(Bytes::new(), 10_000)
            }
            _ => None,
        }),
    )
    .await;
    let session = authenticate(&conn, &plain("s3cret")).await.unwrap();
    conn.renew_sessions(plain("s3cret"), &session);
    let ask = kbus_protocol::messages::ApiVersionsRequest::default();
    conn.send(&ask).await.unwrap();
    assert_eq!(*authentications.lock().unwrap(), 1, "renewed too early");
    // Most of the 10 s lifetime passes: the next request re-authenticates first (KIP-368).
    tokio::time::advance(Duration::from_millis(9_600)).await;
    conn.send(&ask).await.unwrap();
    assert_eq!(
        *authentications.lock().unwrap(),
        2,
        "the session was not renewed"
    );
    conn.send(&ask).await.unwrap();
    assert_eq!(*authentications.lock().unwrap(), 2, "renewed twice");
}

#[tokio::test(start_paused = true)]
async fn a_session_without_a_lifetime_is_never_renewed() {
    use std::sync::{Arc, Mutex};
    let authentications = Arc::new(Mutex::new(0));
    let counted = authentications.clone();
    let mut conn = peer(
        1,
        Box::new(move |req| match req {
            AnyRequest::SaslHandshake(_) => handshake_ok(&["PLAIN"]),
            AnyRequest::SaslAuthenticate(_) => {
                *counted.lock().unwrap() += 1;
                token(Bytes::new(), 0)
            }
            _ => None,
        }),
    )
    .await;
    let session = authenticate(&conn, &plain("s3cret")).await.unwrap();
    conn.renew_sessions(plain("s3cret"), &session);
    tokio::time::advance(Duration::from_secs(24 * 3600)).await;
    conn.send(&kbus_protocol::messages::ApiVersionsRequest::default())
        .await
        .unwrap();
    assert_eq!(*authentications.lock().unwrap(), 1);
}

#[tokio::test]
async fn plain_succeeds_and_reports_the_session_lifetime() {
    let conn = peer(
        1,
        Box::new(|req| match req {
            AnyRequest::SaslHandshake(h) => {
                assert_eq!(h.mechanism, "PLAIN");
                handshake_ok(&["PLAIN", "SCRAM-SHA-512"])
            }
            AnyRequest::SaslAuthenticate(a) => {
                assert_eq!(&a.auth_bytes[..], b"\0alice\0s3cret");
                token(Bytes::new(), 3_600_000)
            }
            _ => None,
        }),
    )
    .await;
    let session = authenticate(&conn, &plain("s3cret")).await.unwrap();
    assert_eq!(session.mechanism, Mechanism::Plain);
    assert_eq!(session.session_lifetime_ms, 3_600_000);
}

#[tokio::test]
async fn a_mechanism_the_broker_does_not_enable_lists_the_ones_it_does() {
    // Kafka answers UNSUPPORTED_SASL_MECHANISM with its enabled mechanisms.
    let conn = peer(
        1,
        Box::new(|_| {
            Some(AnyResponse::SaslHandshake(SaslHandshakeResponse {
                error_code: ErrorCode::UNSUPPORTED_SASL_MECHANISM.0,
                mechanisms: vec!["SCRAM-SHA-256".into(), "SCRAM-SHA-512".into()],
            }))
        }),
    )
    .await;
    let err = authenticate(&conn, &plain("x")).await.unwrap_err();
    assert!(!err.is_retriable());
    assert_eq!(
        message(&err),
        "PLAIN is not enabled on the broker (mechanisms it lists: SCRAM-SHA-256, SCRAM-SHA-512)"
    );
    let shown = err.to_string();
    assert!(
        shown.contains("SASL PLAIN authentication with scripted:9092 failed"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_listener_without_sasl_is_named_as_such() {
    // What a Kafka PLAINTEXT or SSL listener answers to SaslHandshake.
    let conn = peer(
        1,
        Box::new(|_| {
            Some(AnyResponse::SaslHandshake(SaslHandshakeResponse {
                error_code: ErrorCode::ILLEGAL_SASL_STATE.0,
                mechanisms: Vec::new(),
            }))
        }),
    )
    .await;
    let err = authenticate(&conn, &plain("x")).await.unwrap_err();
    assert!(!err.is_retriable());
    let m = message(&err);
    assert!(m.contains("ILLEGAL_SASL_STATE"), "{m}");
    assert!(
        m.contains("without SASL") && m.contains("security.protocol"),
        "{m}"
    );
}

#[tokio::test]
async fn a_success_that_does_not_list_the_mechanism_is_refused() {
    let conn = peer(1, Box::new(|_| handshake_ok(&["GSSAPI"]))).await;
    let err = authenticate(&conn, &plain("x")).await.unwrap_err();
    assert!(
        message(&err).contains("mechanisms it lists: GSSAPI"),
        "{err}"
    );
}

#[tokio::test]
async fn a_broker_with_only_handshake_v0_is_a_clear_error() {
    let conn = peer(0, Box::new(|_| panic!("nothing may be sent"))).await;
    let err = authenticate(&conn, &plain("x")).await.unwrap_err();
    assert!(message(&err).contains("SaslHandshake v0"), "{err}");
}

#[tokio::test]
async fn an_authentication_failure_code_is_reported_with_the_brokers_message() {
    let conn = peer(
        1,
        Box::new(|req| match req {
            AnyRequest::SaslHandshake(_) => handshake_ok(&["PLAIN"]),
            _ => Some(AnyResponse::SaslAuthenticate(SaslAuthenticateResponse {
                error_code: ErrorCode::SASL_AUTHENTICATION_FAILED.0,
                error_message: Some("Invalid username or password".into()),
                ..Default::default()
            })),
        }),
    )
    .await;
    let err = authenticate(&conn, &plain("hunter2-pw")).await.unwrap_err();
    let m = message(&err);
    assert!(m.contains("SASL_AUTHENTICATION_FAILED"), "{m}");
    assert!(m.contains("Invalid username or password"), "{m}");
    assert!(!err.is_retriable());
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn a_hang_up_during_the_exchange_is_an_authentication_error() {
    let conn = peer(
        1,
        Box::new(|req| match req {
            AnyRequest::SaslHandshake(_) => handshake_ok(&["SCRAM-SHA-256"]),
            _ => None,
        }),
    )
    .await;
    let sasl = SaslConfig::new(Mechanism::ScramSha256, Credentials::new("u", "p"));
    let err = authenticate(&conn, &sasl).await.unwrap_err();
    assert!(message(&err).contains("closed the connection"), "{err}");
    assert!(!err.is_retriable());
}

#[tokio::test]
async fn a_scram_server_with_a_wrong_signature_is_refused() {
    // The peer plays along with the nonce but cannot sign: it does not know the password.
    let mut step = 0;
    let conn = peer(
        1,
        Box::new(move |req| match req {
            AnyRequest::SaslHandshake(_) => handshake_ok(&["SCRAM-SHA-256"]),
            AnyRequest::SaslAuthenticate(a) => {
                step += 1;
                if step == 1 {
                    let first = String::from_utf8(a.auth_bytes.to_vec()).unwrap();
                    let nonce = first.rsplit_once("r=").unwrap().1.to_owned();
                    let server_first = format!("r={nonce}peer,s=c2FsdA==,i=4096");
                    token(server_first.into_bytes(), 0)
                } else {
                    token(format!("v={}", BASE64.encode([7u8; 32])).into_bytes(), 0)
                }
            }
            _ => None,
        }),
    )
    .await;
    let sasl = SaslConfig::new(Mechanism::ScramSha256, Credentials::new("u", "p"));
    let err = authenticate(&conn, &sasl).await.unwrap_err();
    assert!(message(&err).contains("signature is wrong"), "{err}");
}
