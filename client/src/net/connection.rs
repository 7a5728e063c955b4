//! One TCP connection to one broker, with many requests in flight.
//!
//! Requests are encoded by the caller, queued to a writer task that owns the socket's write half, and
//! matched to their answers by correlation id in a reader task that owns the read half. The caller
//! waits on a oneshot channel, under the request timeout.
//!
//! Cancellation safety: once a request is queued, its frame is written whole by the writer task even if
//! the caller's future is dropped; its answer then finds no one waiting and is discarded. The stream
//! never desynchronises.
//!
//! An answer whose correlation id matches no request sent on the connection (neither waiting nor
//! given up on) closes it at once: the byte stream is not the broker's answers any more.
//!
//! When the connection closes (the broker hung up, a frame broke the protocol, a write failed), every
//! request still waiting fails with an error naming the broker, and the connection refuses new ones;
//! reconnecting is the owner's job.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kbus_protocol::{
    encode_request, negotiate_all, ApiKey, Decoder, FrameSplitter, Message, ProtocolError, Request,
    RequestHeader, ResponseHeader,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::tls::{self, SecurityProtocol, TlsConfig};
use crate::error::{Error, Result};
use crate::net::sasl::{authenticate, SaslConfig, SaslSession};

/// The ApiVersions version tried first. Version 3 is flexible and carries the client's name; a broker
/// that does not know it answers with error 35 and the versions it does know.
const API_VERSIONS_FIRST: i16 = 3;

/// Settings of a connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// `client.id`, sent in every request header.
    pub client_id: Option<String>,
    /// How long establishing the TCP connection may take (and then, again, the TLS handshake).
    pub connect_timeout: Duration,
    /// `request.timeout.ms`: how long a request may wait for its answer.
    pub request_timeout: Duration,
    /// The largest response frame accepted; a larger one closes the connection.
    pub max_frame_size: usize,
    /// `security.protocol`: plain TCP or TLS (SASL is set up separately).
    pub security_protocol: SecurityProtocol,
    /// The `ssl.*` settings, used when `security_protocol` is `SSL` or `SASL_SSL`.
    pub tls: TlsConfig,
    /// The `sasl.*` settings, required when `security_protocol` is `SASL_PLAINTEXT` or `SASL_SSL`.
    pub sasl: Option<SaslConfig>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: Some("kbus".into()),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_frame_size: kbus_protocol::frame::DEFAULT_MAX_FRAME_SIZE,
            security_protocol: SecurityProtocol::Plaintext,
            tls: TlsConfig::default(),
            sasl: None,
        }
    }
}

/// Why a connection closed; turned into an error for every request that was waiting.
#[derive(Debug, Clone)]
enum Closed {
    HungUp,
    Io(String),
    Protocol(ProtocolError),
}

type Waiter = oneshot::Sender<Bytes>;

#[derive(Default)]
struct State {
    waiting: HashMap<i32, Waiter>,
    /// Requests given up on (timed out or cancelled) whose answers may still come: those answers
    /// are dropped. An answer with any other correlation id breaks the protocol.
    abandoned: HashSet<i32>,
    closed: Option<Closed>,
}

struct Shared {
    broker: String,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the connection closed; dropping the waiters wakes every pending request.
    fn close(&self, why: Closed) {
        let mut st = self.lock();
        if st.closed.is_none() {
            st.closed = Some(why);
        }
        st.waiting.clear();
        st.abandoned.clear();
    }

    fn error(&self, api: ApiKey) -> Error {
        let broker = self.broker.clone();
        match self.lock().closed.clone() {
            Some(Closed::Protocol(source)) => Error::Protocol {
                broker,
                api: Some(api),
                source,
            },
            Some(Closed::Io(msg)) => Error::Io {
                broker,
                action: "connection to",
                source: std::io::Error::other(msg),
            },
            Some(Closed::HungUp) | None => Error::Disconnected { broker },
        }
    }
}

/// Removes a request's waiter when its future is dropped early (timeout or cancellation).
struct WaitGuard<'a> {
    shared: &'a Shared,
    correlation_id: i32,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if st.waiting.remove(&self.correlation_id).is_some() && st.closed.is_none() {
            st.abandoned.insert(self.correlation_id);
        }
    }
}

/// A connection to one broker, shared by any number of concurrent requests.
pub struct Connection {
    shared: Arc<Shared>,
    outgoing: mpsc::UnboundedSender<Bytes>,
    next_correlation_id: AtomicI32,
    config: ConnectionConfig,
    versions: HashMap<ApiKey, i16>,
    tasks: [JoinHandle<()>; 2],
    renewal: Option<Renewal>,
}

/// Keeps a SASL session alive (KIP-368): once 85–95% of the session lifetime the broker granted
/// has passed, the next request first authenticates the connection again.
struct Renewal {
    sasl: SaslConfig,
    /// When the session must be renewed; `None` when the broker set no lifetime.
    due: Mutex<Option<tokio::time::Instant>>,
    /// Requests hold it shared while in flight; a renewal holds it exclusively, so no other request
    /// is on the wire while the SASL exchange runs, as KIP-368 requires.
    gate: tokio::sync::RwLock<()>,
}

impl Renewal {
    fn schedule(&self, session: &SaslSession) {
        let due = u64::try_from(session.session_lifetime_ms)
            .ok()
            .filter(|ms| *ms > 0)
            .map(|ms| {
                // Spread renewals over 85-95% of the lifetime (as the Java client does), so many
                // connections authenticated together do not all renew at once.
                let spread = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos() % 1000);
                let fraction = 0.85 + 0.10 * f64::from(spread) / 1000.0;
                tokio::time::Instant::now() + Duration::from_millis(ms).mul_f64(fraction)
            });
        *self.due.lock().unwrap_or_else(|e| e.into_inner()) = due;
    }

    fn is_due(&self) -> bool {
        self.due
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| tokio::time::Instant::now() >= at)
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("broker", &self.shared.broker)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Connection {
    /// Connects to `broker` (`host:port`), over TLS when `security.protocol` asks for it, and
    /// negotiates API versions with it.
    pub async fn connect(broker: &str, config: ConnectionConfig) -> Result<Self> {
        let stream =
            match tokio::time::timeout(config.connect_timeout, TcpStream::connect(broker)).await {
                Err(_) => {
                    return Err(Error::ConnectTimeout {
                        broker: broker.into(),
                        after: config.connect_timeout,
                    })
                }
                Ok(Err(source)) => {
                    return Err(Error::Io {
                        broker: broker.into(),
                        action: "connecting to",
                        source,
                    })
                }
                Ok(Ok(s)) => s,
            };
        let _ = stream.set_nodelay(true);
        let sasl = if config.security_protocol.uses_sasl() {
            Some(config.sasl.clone().ok_or_else(|| Error::Config {
                message: format!(
                    "security.protocol {:?} needs sasl.mechanism, sasl.username and sasl.password",
                    config.security_protocol
                ),
            })?)
        } else {
            None
        };
        let conn = if config.security_protocol.uses_tls() {
            let tls_config = config.tls.clone();
            let stream =
                tls::handshake(stream, broker, &tls_config, config.connect_timeout).await?;
            Self::establish(stream, broker, config)
                .await
                .map_err(|e| tls::explain_first_exchange(e, broker, &tls_config))?
        } else {
            let mut conn = Self::from_stream(stream, broker, config);
            conn.versions = conn
                .negotiate()
                .await
                .map_err(|e| tls::explain_plaintext_first_exchange(e, broker))?;
            conn
        };
        let mut conn = conn;
        if let Some(sasl) = sasl {
            let session = authenticate(&conn, &sasl).await?;
            tracing::debug!(broker, mechanism = %sasl.mechanism, "authenticated");
            conn.renew_sessions(sasl, &session);
        }
        tracing::debug!(
            broker,
            security_protocol = ?conn.config.security_protocol,
            "connection ready"
        );
        Ok(conn)
    }

    /// Sets up a connection over an established byte stream (for example a TLS session over TCP)
    /// and negotiates API versions on it.
    pub async fn establish<S>(stream: S, broker: &str, config: ConnectionConfig) -> Result<Self>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        let mut conn = Self::from_halves(read, write, broker, config);
        conn.versions = conn.negotiate().await?;
        Ok(conn)
    }

    fn from_stream(stream: TcpStream, broker: &str, config: ConnectionConfig) -> Self {
        let (read, write) = stream.into_split();
        Self::from_halves(read, write, broker, config)
    }

    /// A connection over any byte stream split in two halves (plain TCP, TLS, a test pipe).
    pub(crate) fn from_halves<R, W>(
        read: R,
        write: W,
        broker: &str,
        config: ConnectionConfig,
    ) -> Self
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared {
            broker: broker.into(),
            state: Mutex::new(State::default()),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let span = tracing::debug_span!("connection", broker);
        let reader = tokio::spawn(tracing::Instrument::instrument(
            read_loop(read, shared.clone(), config.max_frame_size),
            span,
        ));
        let writer = tokio::spawn(write_loop(write, rx, shared.clone()));
        Connection {
            shared,
            outgoing: tx,
            next_correlation_id: AtomicI32::new(0),
            config,
            versions: HashMap::new(),
            tasks: [reader, writer],
            renewal: None,
        }
    }

    /// Asks the broker which versions it speaks and keeps, per API, the highest shared one.
    async fn negotiate(&self) -> Result<HashMap<ApiKey, i16>> {
        let req = ApiVersionsRequest {
            client_software_name: "kbus".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let mut version = API_VERSIONS_FIRST;
        loop {
            let frame = self.round_trip(&req, version).await?;
            let resp = decode_api_versions(&self.shared.broker, frame, version)?;
            let code = ErrorCode(resp.error_code);
            if code == ErrorCode::UNSUPPORTED_VERSION && version > 0 {
                // The broker names the ApiVersions versions it knows; retry with the highest we share.
                let theirs = resp
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions.as_i16())
                    .map_or(0, |k| k.max_version);
                version = theirs.clamp(0, version - 1);
                continue;
            }
            if code.is_err() {
                return Err(Error::Broker {
                    broker: self.shared.broker.clone(),
                    api: ApiKey::ApiVersions,
                    code,
                    message: None,
                });
            }
            return Ok(negotiate_all(resp.ranges()).into_iter().collect());
        }
    }

    /// Requests sent on this connection and waiting for their answers.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().waiting.len()
    }

    /// The broker this connection talks to.
    pub fn broker(&self) -> &str {
        &self.shared.broker
    }

    /// True once the connection has closed; it accepts no more requests.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// The version negotiated for `api`, if the broker and kbus share one.
    pub fn version(&self, api: ApiKey) -> Option<i16> {
        self.versions.get(&api).copied()
    }

    /// The version negotiated for `api`, or the error saying the broker and kbus share none.
    fn negotiated(&self, api: ApiKey) -> Result<i16> {
        self.version(api).ok_or_else(|| Error::UnsupportedApi {
            broker: self.shared.broker.clone(),
            api,
        })
    }

    /// Admits one request: renews a due SASL session first; the guard keeps a renewal from
    /// starting while the request is in flight.
    async fn admit(&self) -> Result<Option<tokio::sync::RwLockReadGuard<'_, ()>>> {
        match &self.renewal {
            Some(renewal) => Ok(Some(self.renew_if_due(renewal).await?)),
            None => Ok(None),
        }
    }

    /// Sends `req` at the negotiated version and waits for the answer.
    pub async fn send<R: Request>(&self, req: &R) -> Result<R::Response> {
        let version = self.negotiated(R::API_KEY)?;
        self.send_at(req, version).await
    }

    /// Sends `req` at `version` and waits for the answer.
    pub async fn send_at<R: Request>(&self, req: &R, version: i16) -> Result<R::Response> {
        let _in_flight = self.admit().await?;
        self.send_at_ungated(req, version).await
    }

    /// Sends `req` at the negotiated version without waiting for an answer: for requests the
    /// broker does not answer (Produce with `acks=0`). Returns once the frame is queued for
    /// writing; a closed connection is an error.
    pub async fn send_oneway<R: Request>(&self, req: &R) -> Result<()> {
        let version = self.negotiated(R::API_KEY)?;
        let _in_flight = self.admit().await?;
        let (_, frame) = self.encode_frame(req, version)?;
        if self.is_closed() || self.outgoing.send(frame).is_err() {
            return Err(self.shared.error(R::API_KEY));
        }
        Ok(())
    }

    /// Keeps the SASL session `session` (just established with `sasl`) alive: from now on, once most
    /// of its lifetime has passed, the next request first re-authenticates the connection
    /// (KIP-368). [`Connection::connect`] does this itself for `SASL_*` security protocols.
    pub fn renew_sessions(&mut self, sasl: SaslConfig, session: &SaslSession) {
        let renewal = Renewal {
            sasl,
            due: Mutex::new(None),
            gate: tokio::sync::RwLock::new(()),
        };
        renewal.schedule(session);
        self.renewal = Some(renewal);
    }

    /// Renews the session first if it is due, then admits one request.
    async fn renew_if_due<'a>(
        &'a self,
        renewal: &'a Renewal,
    ) -> Result<tokio::sync::RwLockReadGuard<'a, ()>> {
        if renewal.is_due() {
            let _exclusive = renewal.gate.write().await;
            // Another request may have renewed it while this one waited.
            if renewal.is_due() {
                let session = authenticate(self, &renewal.sasl).await?;
                renewal.schedule(&session);
            }
        }
        Ok(renewal.gate.read().await)
    }

    /// Sends `req` at the negotiated version without waiting for a due session renewal: for the
    /// SASL exchange itself.
    pub(crate) async fn send_ungated<R: Request>(&self, req: &R) -> Result<R::Response> {
        let version = self.negotiated(R::API_KEY)?;
        self.send_at_ungated(req, version).await
    }

    /// Sends `req` at `version` without waiting for a due session renewal.
    pub(crate) async fn send_at_ungated<R: Request>(
        &self,
        req: &R,
        version: i16,
    ) -> Result<R::Response> {
        let frame = self.round_trip(req, version).await?;
        self.decode_answer::<R>(frame, version)
    }

    /// Sends `req` at the negotiated version and waits up to `timeout` for the answer instead of
    /// `request.timeout.ms`: for requests the broker may legitimately hold longer (JoinGroup waits
    /// up to the group's rebalance timeout).
    pub(crate) async fn send_with_timeout<R: Request>(
        &self,
        req: &R,
        timeout: Duration,
    ) -> Result<R::Response> {
        let version = self.negotiated(R::API_KEY)?;
        let _in_flight = self.admit().await?;
        let frame = self.round_trip_within(req, version, timeout, None).await?;
        self.decode_answer::<R>(frame, version)
    }

    /// Sends `req` at the negotiated version and waits for the answer, firing `queued` as soon as
    /// the request has its place in the connection's write order (dropping it on failure). Callers
    /// chain these signals to keep requests in the order they were made while preparing them in
    /// parallel (the producer keeps a partition's batches in order this way).
    pub(crate) async fn send_queued<R: Request>(
        &self,
        req: &R,
        queued: oneshot::Sender<()>,
    ) -> Result<R::Response> {
        let version = self.negotiated(R::API_KEY)?;
        let _in_flight = self.admit().await?;
        let timeout = self.config.request_timeout;
        let frame = self
            .round_trip_within(req, version, timeout, Some(queued))
            .await?;
        self.decode_answer::<R>(frame, version)
    }

    /// Decodes an answer frame (header included) to `R`.
    fn decode_answer<R: Request>(&self, frame: Bytes, version: i16) -> Result<R::Response> {
        let mut d = Decoder::new(frame);
        let protocol = |source| Error::Protocol {
            broker: self.shared.broker.clone(),
            api: Some(R::API_KEY),
            source,
        };
        ResponseHeader::decode(&mut d, R::API_KEY, version).map_err(protocol)?;
        // Bytes after a complete body are tolerated: newer brokers may append fields an older
        // version does not define, as Kafka's own clients tolerate.
        R::Response::decode(&mut d, version).map_err(protocol)
    }

    /// Queues one request and returns its raw answer frame (header included).
    async fn round_trip<M: Message>(&self, req: &M, version: i16) -> Result<Bytes> {
        self.round_trip_within(req, version, self.config.request_timeout, None)
            .await
    }

    /// Encodes `req` as a whole frame under the next correlation id.
    fn encode_frame<M: Message>(&self, req: &M, version: i16) -> Result<(i32, Bytes)> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::new(
            M::API_KEY,
            version,
            correlation_id,
            self.config.client_id.as_deref(),
        );
        let mut buf = BytesMut::new();
        encode_request(&header, req, &mut buf).map_err(|source| Error::Protocol {
            broker: self.shared.broker.clone(),
            api: Some(M::API_KEY),
            source,
        })?;
        Ok((correlation_id, buf.freeze()))
    }

    /// Like [`round_trip`](Self::round_trip), waiting up to `timeout` for the answer.
    async fn round_trip_within<M: Message>(
        &self,
        req: &M,
        version: i16,
        timeout: Duration,
        queued: Option<oneshot::Sender<()>>,
    ) -> Result<Bytes> {
        let (correlation_id, frame) = self.encode_frame(req, version)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if st.closed.is_some() {
                drop(st);
                return Err(self.shared.error(M::API_KEY));
            }
            st.waiting.insert(correlation_id, tx);
        }
        let _guard = WaitGuard {
            shared: &self.shared,
            correlation_id,
        };
        if self.outgoing.send(frame).is_err() {
            return Err(self.shared.error(M::API_KEY));
        }
        if let Some(queued) = queued {
            let _ = queued.send(());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(_)) => Err(self.shared.error(M::API_KEY)),
            Err(_) => Err(Error::RequestTimeout {
                broker: self.shared.broker.clone(),
                api: M::API_KEY,
                after: timeout,
            }),
        }
    }
}

/// Decodes an ApiVersions answer. A broker that does not know the version asked for answers in
/// version 0 form with error 35, so that case is read at version 0.
fn decode_api_versions(broker: &str, frame: Bytes, version: i16) -> Result<ApiVersionsResponse> {
    let protocol = |source| Error::Protocol {
        broker: broker.into(),
        api: Some(ApiKey::ApiVersions),
        source,
    };
    let mut d = Decoder::new(frame);
    ResponseHeader::decode(&mut d, ApiKey::ApiVersions, version).map_err(protocol)?;
    let error_code = d
        .peek_rest()
        .get(..2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]));
    let as_version = if error_code == Some(ErrorCode::UNSUPPORTED_VERSION.0) {
        0
    } else {
        version
    };
    match ApiVersionsResponse::decode(&mut d.clone(), as_version) {
        Ok(resp) => Ok(resp),
        // Some peers answer error 35 in a form that is not quite version 0; the code is what counts.
        Err(_) if as_version == 0 && error_code.is_some() => Ok(ApiVersionsResponse {
            error_code: error_code.unwrap_or_default(),
            ..Default::default()
        }),
        Err(e) => Err(protocol(e)),
    }
}

async fn read_loop<R: AsyncRead + Unpin>(mut read: R, shared: Arc<Shared>, max_frame_size: usize) {
    let mut splitter = FrameSplitter::new(max_frame_size);
    let why = loop {
        match read.read_buf(splitter.buffer_mut()).await {
            Ok(0) => break Closed::HungUp,
            Ok(_) => {}
            Err(e) => break Closed::Io(e.to_string()),
        }
        let mut failed = None;
        loop {
            match splitter.next_frame() {
                Ok(Some(frame)) => {
                    let Some(id) = ResponseHeader::peek_correlation_id(&frame) else {
                        failed = Some(Closed::Protocol(ProtocolError::Truncated {
                            what: "ResponseHeader.correlation_id",
                            needed: 4,
                            remaining: frame.len(),
                        }));
                        break;
                    };
                    let mut st = shared.lock();
                    if let Some(w) = st.waiting.remove(&id) {
                        drop(st);
                        let _ = w.send(frame);
                    } else if !st.abandoned.remove(&id) {
                        // Not a request sent here: the stream cannot be trusted any more. Fail
                        // the connection now rather than leave every request to time out.
                        drop(st);
                        failed = Some(Closed::Protocol(ProtocolError::InvalidValue {
                            what: "ResponseHeader.correlation_id (it matches no request sent on \
                                   this connection)",
                            value: i64::from(id),
                        }));
                        break;
                    }
                    // An abandoned request's answer (it timed out or was cancelled) is dropped.
                }
                Ok(None) => break,
                Err(e) => {
                    failed = Some(Closed::Protocol(e));
                    break;
                }
            }
        }
        if let Some(why) = failed {
            break why;
        }
    };
    match &why {
        Closed::HungUp => {
            tracing::debug!(broker = %shared.broker, "connection closed by the broker")
        }
        why => tracing::debug!(broker = %shared.broker, reason = ?why, "connection lost"),
    }
    shared.close(why);
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    mut frames: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
) {
    while let Some(frame) = frames.recv().await {
        if let Err(e) = write.write_all(&frame).await {
            shared.close(Closed::Io(e.to_string()));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbus_protocol::messages::MetadataRequest;
    use tokio::net::TcpListener;

    /// A peer that accepts one connection and runs `script` on it.
    async fn peer<F, Fut>(script: F) -> String
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            script(s).await;
        });
        addr
    }

    async fn read_request(s: &mut TcpStream) -> Option<(i32, Vec<u8>)> {
        let mut size = [0u8; 4];
        s.read_exact(&mut size).await.ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        s.read_exact(&mut body).await.ok()?;
        let corr = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
        Some((corr, body))
    }

    /// Writes a Metadata v1 answer to request `id`, carrying `controller_id` as a marker.
    async fn answer_metadata(s: &mut TcpStream, id: i32, controller_id: i32) {
        let resp = kbus_protocol::messages::MetadataResponse {
            controller_id,
            ..Default::default()
        };
        let h = ResponseHeader {
            correlation_id: id,
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        kbus_protocol::encode_response(&h, 1, &resp, &mut buf).unwrap();
        s.write_all(&buf).await.unwrap();
    }

    fn raw_connection(addr: &str, stream: TcpStream, config: ConnectionConfig) -> Connection {
        Connection::from_stream(stream, addr, config)
    }

    #[tokio::test]
    async fn answers_out_of_order_reach_the_right_requests() {
        // The peer reads 300 Metadata requests, then answers them in reverse order, each answer
        // carrying its correlation id as the controller id so the caller can tell them apart.
        let addr = peer(|mut s| async move {
            let mut ids = Vec::new();
            for _ in 0..300 {
                ids.push(read_request(&mut s).await.unwrap().0);
            }
            for id in ids.into_iter().rev() {
                answer_metadata(&mut s, id, id).await;
            }
        })
        .await;
        let stream = TcpStream::connect(&addr).await.unwrap();
        let conn = Arc::new(raw_connection(&addr, stream, ConnectionConfig::default()));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..300 {
            let c = conn.clone();
            tasks.spawn(async move {
                let r = c.send_at(&MetadataRequest::default(), 1).await.unwrap();
                r.controller_id
            });
        }
        let mut got = Vec::new();
        while let Some(id) = tasks.join_next().await {
            got.push(id.unwrap());
        }
        got.sort();
        assert_eq!(got, (0..300).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_peer_that_hangs_up_fails_every_waiting_request_naming_it() {
        let addr = peer(|mut s| async move {
            let _ = read_request(&mut s).await;
            // Hang up mid-conversation.
        })
        .await;
        let stream = TcpStream::connect(&addr).await.unwrap();
        let conn = raw_connection(&addr, stream, ConnectionConfig::default());
        let err = conn
            .send_at(&MetadataRequest::default(), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Disconnected { broker } if *broker == addr),
            "{err}"
        );
        assert!(err.is_retriable());
        assert!(conn.is_closed());
        // Later requests fail at once, without a timeout.
        let err = conn
            .send_at(&MetadataRequest::default(), 1)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Disconnected { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_peer_that_closes_mid_response_fails_the_request_cleanly() {
        let addr = peer(|mut s| async move {
            let (id, _) = read_request(&mut s).await.unwrap();
            // Announce 100 bytes, send the correlation id and a few more, then hang up.
            let mut partial = Vec::new();
            partial.extend_from_slice(&100i32.to_be_bytes());
            partial.extend_from_slice(&id.to_be_bytes());
            partial.extend_from_slice(&[0, 0, 0]);
            s.write_all(&partial).await.unwrap();
        })
        .await;
        let stream = TcpStream::connect(&addr).await.unwrap();
        let conn = raw_connection(&addr, stream, ConnectionConfig::default());
        let err = conn
            .send_at(&MetadataRequest::default(), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Disconnected { broker } if *broker == addr),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_oversized_frame_is_a_protocol_error_not_an_allocation() {
        let addr = peer(|mut s| async move {
            let _ = read_request(&mut s).await;
            s.write_all(&i32::MAX.to_be_bytes()).await.unwrap();
            // Keep the socket open: the client must give up on its own.
            let _ = read_request(&mut s).await;
        })
        .await;
        let stream = TcpStream::connect(&addr).await.unwrap();
        let config = ConnectionConfig {
            max_frame_size: 1024,
            ..Default::default()
        };
        let conn = raw_connection(&addr, stream, config);
        let err = conn
            .send_at(&MetadataRequest::default(), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Protocol {
                    source: ProtocolError::FrameTooLarge { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_silent_peer_times_out_and_a_late_answer_is_discarded() {
        let (late_tx, late_rx) = oneshot::channel::<()>();
        let addr = peer(|mut s| async move {
            let (first, _) = read_request(&mut s).await.unwrap();
            // Answer the first request only after the client gave up on it.
            let _ = late_rx.await;
            answer_metadata(&mut s, first, -1).await;
            // Then answer the second normally.
            let (second, _) = read_request(&mut s).await.unwrap();
            answer_metadata(&mut s, second, 7).await;
        })
        .await;
        let stream = TcpStream::connect(&addr).await.unwrap();
        let config = ConnectionConfig {
            request_timeout: Duration::from_millis(200),
            ..Default::default()
        };
        let conn = raw_connection(&addr, stream, config);
        let err = conn
            .send_at(&MetadataRequest::default(), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::RequestTimeout {
                    api: ApiKey::Metadata,
                    ..
                }
            ),
            "{err}"
        );
        late_tx.send(()).unwrap();
        let r = conn.send_at(&MetadataRequest::default(), 1).await.unwrap();
        assert_eq!(
            r.controller_id, 7,
            "the late answer to the first request was misrouted"
        );
    }
    /// An answer whose correlation id matches no request (a broken proxy, a peer that is not
    /// Kafka) fails the connection at once, with every waiting request, instead of leaving them
    /// to wait out the request timeout.
    #[tokio::test]
    async fn an_answer_matching_no_request_fails_the_connection_at_once() {
        let addr = peer(|mut s| async move {
            let (a, _) = read_request(&mut s).await.unwrap();
            let (_b, _) = read_request(&mut s).await.unwrap();
            answer_metadata(&mut s, a + 1000, -1).await;
            // Keep the socket open: only the client may end this.
            let _ = read_request(&mut s).await;
        })
        .await;
        let stream = TcpStream::connect(&addr).await.unwrap();
        let conn = raw_connection(&addr, stream, ConnectionConfig::default());
        let started = std::time::Instant::now();
        let request = MetadataRequest::default();
        let (one, two) = tokio::join!(conn.send_at(&request, 1), conn.send_at(&request, 1));
        for err in [one.unwrap_err(), two.unwrap_err()] {
            assert!(
                matches!(&err, Error::Protocol { broker, .. } if *broker == addr),
                "{err}"
            );
            assert!(err.to_string().contains("correlation_id"), "{err}");
            assert!(err.to_string().contains("matches no request"), "{err}");
        }
        assert!(
            started.elapsed() < ConnectionConfig::default().request_timeout / 2,
            "failed only after {:?}",
            started.elapsed()
        );
        assert!(conn.is_closed());
    }
}
