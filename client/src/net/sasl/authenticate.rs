//! The async driver: carries a mechanism's tokens over a connection.
//!
//! SaslHandshake v1 names the mechanism (and tells which ones the broker enables), then each token
//! travels in a SaslAuthenticate request and the broker's token comes back in its answer (KIP-152).
//! Kafka allows ApiVersions before the handshake, which is how [`Connection::connect`] begins, so
//! authentication comes right after connecting, before any other request.

use bytes::Bytes;
use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kbus_protocol::ApiKey;

use super::{random_nonce, Exchange, Mechanism, SaslConfig, SaslSession, Step};
use crate::error::{Error, Result};
use crate::net::Connection;

/// The SaslHandshake version kbus speaks: from v1 the tokens travel in SaslAuthenticate requests.
const HANDSHAKE_VERSION: i16 = 1;

/// Authenticates `conn` with `config`'s mechanism and credentials.
///
/// Call it right after [`Connection::connect`], before any other request. Failures are
/// [`Error::Authentication`] naming the mechanism and the broker (not retriable: the same
/// credentials fail again), except a request timeout, which stays [`Error::RequestTimeout`], and a
/// broker without SaslAuthenticate ([`Error::UnsupportedApi`]). After a failure the broker closes
/// or refuses the connection: drop it.
///
/// The returned [`SaslSession`] tells how long the broker keeps the session
/// (`session_lifetime_ms`); [`Connection::renew_sessions`] re-authenticates before it runs out
/// (`Connection::connect` sets that up itself for `SASL_*` security protocols).
pub async fn authenticate(conn: &Connection, config: &SaslConfig) -> Result<SaslSession> {
    let mechanism = config.mechanism;
    let fail = |message: String| authentication_error(conn.broker(), mechanism, message);

    handshake(conn, mechanism).await?;

    let nonce = random_nonce().map_err(|e| fail(format!("no random nonce: {e}")))?;
    let mut exchange = Exchange::new(config, nonce);
    let mut token = exchange.start().map_err(|e| fail(e.to_string()))?;
    // Each mechanism's state machine ends after a fixed number of steps (PLAIN one, SCRAM two)
    // and refuses anything after that, so this loop is bounded.
    loop {
        let request = SaslAuthenticateRequest {
            auth_bytes: Bytes::from(token),
            ..Default::default()
        };
        let answer = conn
            .send_ungated(&request)
            .await
            .map_err(|e| closed_means_refused(e, mechanism, ApiKey::SaslAuthenticate))?;
        let code = ErrorCode(answer.error_code);
        if code.is_err() {
            let mut message = code.to_string();
            if let Some(m) = answer.error_message.as_deref().filter(|m| !m.is_empty()) {
                message.push_str(&format!(" (broker says: {m})"));
            }
            return Err(fail(message));
        }
        match exchange
            .handle(&answer.auth_bytes)
            .map_err(|e| fail(e.to_string()))?
        {
            Step::Send(next) => token = next,
            Step::Done => {
                return Ok(SaslSession {
                    mechanism,
                    session_lifetime_ms: answer.session_lifetime_ms,
                })
            }
        }
    }
}

/// SaslHandshake v1: asks for `mechanism` and checks the broker enables it.
async fn handshake(conn: &Connection, mechanism: Mechanism) -> Result<()> {
    let name = mechanism.name();
    let fail = |message: String| authentication_error(conn.broker(), mechanism, message);
    match conn.version(ApiKey::SaslHandshake) {
        None => {
            return Err(fail(
                "the broker does not offer SASL (its ApiVersions lists no SaslHandshake)".into(),
            ))
        }
        Some(v) if v < HANDSHAKE_VERSION => {
            return Err(fail(
                "the broker speaks only SaslHandshake v0 (Kafka before 1.0), whose unframed \
                 SASL tokens kbus does not implement"
                    .into(),
            ))
        }
        Some(_) => {}
    }
    let request = SaslHandshakeRequest {
        mechanism: name.into(),
    };
    let answer = conn
        .send_at_ungated(&request, HANDSHAKE_VERSION)
        .await
        .map_err(|e| closed_means_refused(e, mechanism, ApiKey::SaslHandshake))?;
    let code = ErrorCode(answer.error_code);
    let listed = answer.mechanisms.iter().any(|m| m == name);
    if code == ErrorCode::UNSUPPORTED_SASL_MECHANISM || (!code.is_err() && !listed) {
        let offered = if answer.mechanisms.is_empty() {
            "none".to_owned()
        } else {
            answer.mechanisms.join(", ")
        };
        return Err(fail(format!(
            "{name} is not enabled on the broker (mechanisms it lists: {offered})"
        )));
    }
    if code == ErrorCode::ILLEGAL_SASL_STATE {
        // Kafka answers so on a listener without SASL (PLAINTEXT or SSL): the handshake reaches
        // its request handler instead of an authenticator.
        return Err(fail(format!(
            "SaslHandshake failed: {code}; a Kafka listener without SASL answers so: is this port \
             a SASL_PLAINTEXT or SASL_SSL listener? (check security.protocol)"
        )));
    }
    if code.is_err() {
        return Err(fail(format!("SaslHandshake failed: {code}")));
    }
    Ok(())
}

fn authentication_error(broker: &str, mechanism: Mechanism, message: String) -> Error {
    Error::Authentication {
        broker: broker.into(),
        mechanism: mechanism.name().into(),
        message,
    }
}

/// Turns a connection that closed during SASL into an authentication error.
///
/// Kafka brokers before 1.0 (SaslHandshake v0) answer failed authentication by closing the
/// connection, and Kafka's Java client reports a connection "terminated during authentication" as
/// a possible credentials failure; some brokers still do it today (tansu 0.6.0 does on a wrong
/// password). This is Kafka-compatible handling for every broker, not a special case for one. A
/// connection that closed mid-SASL cannot be used anyway, and reporting a non-retriable
/// authentication error keeps callers from reconnecting in a loop with bad credentials.
fn closed_means_refused(err: Error, mechanism: Mechanism, api: ApiKey) -> Error {
    let why = if api == ApiKey::SaslHandshake {
        // No credentials were sent yet: the broker refused the mechanism or SASL itself.
        format!(
            "the broker closed the connection during SaslHandshake instead of answering: it does \
             not enable {mechanism} (or SASL) on this listener"
        )
    } else {
        "the broker closed the connection during SaslAuthenticate, as brokers do when they \
         refuse the credentials"
            .to_owned()
    };
    match err {
        Error::Disconnected { broker } => authentication_error(&broker, mechanism, why),
        Error::Io { broker, source, .. } => {
            authentication_error(&broker, mechanism, format!("{why} ({source})"))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;
