//! SASL authentication of a connection (KIP-43, KIP-84, KIP-152): PLAIN, SCRAM-SHA-256 and
//! SCRAM-SHA-512.
//!
//! The mechanisms are sans-IO state machines (`plain.rs`, `scram.rs`): they turn the server's
//! tokens into the client's next token and know nothing of sockets. [`authenticate`] is the thin
//! async driver that carries the tokens over a [`Connection`](super::Connection) in SaslHandshake
//! v1 and SaslAuthenticate requests.
//!
//! SCRAM is written on the RustCrypto crates (sha2, hmac, pbkdf2) rather than on the `sasl` crate:
//! sasl 0.5 has no SCRAM-SHA-512, sends usernames unescaped, does not check that the server's
//! nonce extends the client's, accepts any iteration count, and cannot take a fixed nonce outside
//! its own tests.
//!
//! ```no_run
//! # async fn demo() -> kbus_client::Result<()> {
//! use kbus_client::net::sasl::{authenticate, Credentials, Mechanism, SaslConfig};
//! use kbus_client::net::{Connection, ConnectionConfig};
//!
//! let conn = Connection::connect("127.0.0.1:9092", ConnectionConfig::default()).await?;
//! let sasl = SaslConfig::new(Mechanism::ScramSha512, Credentials::new("alice", "secret"));
//! let session = authenticate(&conn, &sasl).await?;
//! println!("re-authenticate within {} ms", session.session_lifetime_ms);
//! # Ok(()) }
//! ```

mod authenticate;
mod credentials;
mod plain;
mod scram;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

pub use authenticate::authenticate;
pub use credentials::Credentials;

use crate::error::{Error, Result};
use plain::PlainClient;
use scram::{ScramClient, ScramHash};

/// A SASL mechanism (`sasl.mechanism`), spelled as Kafka spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616): the password itself is sent; use it over TLS only.
    Plain,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl Mechanism {
    /// Every mechanism kbus implements.
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ];

    /// The name Kafka uses: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a Kafka mechanism name. Like Kafka's `sasl.mechanism`, the name is case-sensitive.
impl FromStr for Mechanism {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Error::Config {
                message: format!(
                    "unknown sasl.mechanism {s:?}; kbus implements {}",
                    Mechanism::ALL.map(Mechanism::name).join(", ")
                ),
            })
    }
}

/// How to authenticate a connection. `Debug` does not show the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// `sasl.mechanism`.
    pub mechanism: Mechanism,
    /// `sasl.username` and `sasl.password`.
    pub credentials: Credentials,
}

impl SaslConfig {
    /// Authenticate with `mechanism` and `credentials`.
    pub fn new(mechanism: Mechanism, credentials: Credentials) -> Self {
        SaslConfig {
            mechanism,
            credentials,
        }
    }
}

/// A successful authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslSession {
    /// The mechanism that authenticated the connection.
    pub mechanism: Mechanism,
    /// How long the broker keeps the session (KIP-368), in milliseconds from the final
    /// SaslAuthenticate answer; 0 when it never expires (or the broker speaks SaslAuthenticate
    /// v0). Before it runs out the connection must re-authenticate or close:
    /// [`Connection::renew_sessions`](crate::net::Connection::renew_sessions) does that.
    pub session_lifetime_ms: i64,
}

impl SaslSession {
    /// The session lifetime, `None` when the session never expires.
    pub fn session_lifetime(&self) -> Option<Duration> {
        u64::try_from(self.session_lifetime_ms)
            .ok()
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis)
    }
}

/// What a mechanism wants after taking a server token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send this token next.
    Send(Vec<u8>),
    /// The exchange is complete and, where the mechanism can tell, the server is verified.
    Done,
}

/// Why a mechanism's exchange failed. The driver turns it into [`Error::Authentication`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SaslError {
    /// A server message did not parse.
    Malformed {
        /// Which message (`server-first`, `server-final`).
        message: &'static str,
        /// What was wrong with it.
        why: String,
    },
    /// The server asked for an iteration count outside the accepted range.
    Iterations(u32),
    /// The server reported an error (`e=` in SCRAM).
    Server(String),
    /// The server's signature does not match: it does not know the credentials.
    ServerSignature,
    /// The credentials or nonce cannot be used with the mechanism.
    InvalidCredentials(&'static str),
    /// A message arrived when the exchange was not expecting one.
    OutOfOrder(&'static str),
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslError::Malformed { message, why } => {
                write!(f, "malformed {message} message from the broker: {why}")
            }
            SaslError::Iterations(i) => write!(
                f,
                "the broker asked for {i} iterations, outside the accepted {}..={}",
                scram::MIN_ITERATIONS,
                scram::MAX_ITERATIONS
            ),
            SaslError::Server(e) => write!(f, "the broker reported an error: {e}"),
            SaslError::ServerSignature => f.write_str(
                "the broker's signature is wrong: it does not know the credentials (a broker \
                 impersonation or a tampered exchange)",
            ),
            SaslError::InvalidCredentials(why) => f.write_str(why),
            SaslError::OutOfOrder(why) => write!(f, "out of order: {why}"),
        }
    }
}

/// One mechanism's exchange, whichever it is.
pub(crate) enum Exchange {
    Plain(PlainClient),
    Scram(ScramClient),
}

impl Exchange {
    /// An exchange for `config`; `nonce` is used by SCRAM only.
    pub(crate) fn new(config: &SaslConfig, nonce: String) -> Self {
        let credentials = config.credentials.clone();
        match config.mechanism {
            Mechanism::Plain => Exchange::Plain(PlainClient::new(credentials)),
            Mechanism::ScramSha256 => {
                Exchange::Scram(ScramClient::new(ScramHash::Sha256, credentials, nonce))
            }
            Mechanism::ScramSha512 => {
                Exchange::Scram(ScramClient::new(ScramHash::Sha512, credentials, nonce))
            }
        }
    }

    /// The client's first token.
    pub(crate) fn start(&mut self) -> Result<Vec<u8>, SaslError> {
        match self {
            Exchange::Plain(c) => c.client_first(),
            Exchange::Scram(c) => c.client_first(),
        }
    }

    /// Takes the server's token; returns the next client token or the end of the exchange.
    pub(crate) fn handle(&mut self, server: &[u8]) -> Result<Step, SaslError> {
        match self {
            Exchange::Plain(c) => c.handle(server),
            Exchange::Scram(c) => c.handle(server),
        }
    }
}

/// A fresh SCRAM client nonce: 24 bytes from the operating system's CSPRNG, base64url-encoded
/// (32 printable characters, none of them `,`).
pub(crate) fn random_nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names_are_kafkas() {
        for m in Mechanism::ALL {
            assert_eq!(m.name().parse::<Mechanism>().unwrap(), m);
            assert_eq!(m.to_string(), m.name());
        }
        assert_eq!(Mechanism::ScramSha256.name(), "SCRAM-SHA-256");
        let err = "scram-sha-256".parse::<Mechanism>().unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err}");
        assert!(err.to_string().contains("SCRAM-SHA-512"), "{err}");
    }

    #[test]
    fn config_debug_does_not_show_the_password() {
        let c = SaslConfig::new(Mechanism::Plain, Credentials::new("alice", "hunter2"));
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
    }

    #[test]
    fn nonces_are_random_and_printable() {
        let a = random_nonce().unwrap();
        let b = random_nonce().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_graphic() && c != b','), "{a}");
    }

    #[test]
    fn exchanges_dispatch_to_their_mechanism() {
        let creds = Credentials::new("user", "pencil");
        let mut plain = Exchange::new(
            &SaslConfig::new(Mechanism::Plain, creds.clone()),
            "n".into(),
        );
        assert_eq!(plain.start().unwrap(), b"\0user\0pencil");
        assert_eq!(plain.handle(b"").unwrap(), Step::Done);
        let mut scram = Exchange::new(
            &SaslConfig::new(Mechanism::ScramSha512, creds),
            "abc".into(),
        );
        assert_eq!(scram.start().unwrap(), b"n,,n=user,r=abc");
    }

    #[test]
    fn session_lifetime() {
        let s = SaslSession {
            mechanism: Mechanism::ScramSha256,
            session_lifetime_ms: 60_000,
        };
        assert_eq!(s.session_lifetime(), Some(Duration::from_secs(60)));
        let s = SaslSession {
            session_lifetime_ms: 0,
            ..s
        };
        assert_eq!(s.session_lifetime(), None);
    }
}
