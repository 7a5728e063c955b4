//! SASL PLAIN (RFC 4616) as Kafka uses it: one client message, `authzid NUL authcid NUL passwd`
//! with an empty authorization id (as the Java client sends), answered by an empty token.
//!
//! PLAIN sends the password itself: use it over TLS only.

use super::{Credentials, SaslError, Step};

/// Where a PLAIN exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The client message is not built yet.
    Start,
    /// The client message went out; the server's (empty) answer is awaited.
    Sent,
    /// The server accepted.
    Done,
}

/// The client side of a PLAIN exchange. Sans-IO: the caller carries the tokens.
pub(crate) struct PlainClient {
    credentials: Credentials,
    state: State,
}

impl PlainClient {
    pub(crate) fn new(credentials: Credentials) -> Self {
        PlainClient {
            credentials,
            state: State::Start,
        }
    }

    /// The one client message. A NUL in the username or password is refused: RFC 4616 forbids
    /// it, and the server would split the message in the wrong place.
    pub(crate) fn client_first(&mut self) -> Result<Vec<u8>, SaslError> {
        let credentials = &self.credentials;
        if self.state != State::Start {
            return Err(SaslError::OutOfOrder("the PLAIN message was already sent"));
        }
        if credentials.username().contains('\0') || credentials.password().contains('\0') {
            return Err(SaslError::InvalidCredentials(
                "PLAIN usernames and passwords cannot contain NUL",
            ));
        }
        let mut msg =
            Vec::with_capacity(2 + credentials.username().len() + credentials.password().len());
        msg.push(0);
        msg.extend_from_slice(credentials.username().as_bytes());
        msg.push(0);
        msg.extend_from_slice(credentials.password().as_bytes());
        self.state = State::Sent;
        Ok(msg)
    }

    /// Takes the server's answer. Kafka answers PLAIN with an empty token; its content is not
    /// checked (there is nothing in PLAIN to verify: success is the absence of an error code).
    pub(crate) fn handle(&mut self, _server: &[u8]) -> Result<Step, SaslError> {
        match self.state {
            State::Sent => {
                self.state = State::Done;
                Ok(Step::Done)
            }
            State::Start => Err(SaslError::OutOfOrder(
                "a PLAIN answer arrived before the client message",
            )),
            State::Done => Err(SaslError::OutOfOrder("the PLAIN exchange is already over")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_empty_authzid_nul_user_nul_password() {
        let mut c = PlainClient::new(Credentials::new("alice", "pa,ss=word"));
        let msg = c.client_first().unwrap();
        // Unlike SCRAM, PLAIN does not escape `,` or `=`.
        assert_eq!(msg, b"\0alice\0pa,ss=word");
        assert_eq!(c.handle(b"").unwrap(), Step::Done);
        assert!(c.handle(b"").is_err(), "a second answer is out of order");
    }

    #[test]
    fn out_of_order_and_nul_are_errors_not_panics() {
        let mut c = PlainClient::new(Credentials::new("alice", "x"));
        assert!(matches!(c.handle(b""), Err(SaslError::OutOfOrder(_))));
        for (user, password) in [("al\0ice", "x"), ("alice", "x\0")] {
            let mut bad = PlainClient::new(Credentials::new(user, password));
            assert!(matches!(
                bad.client_first(),
                Err(SaslError::InvalidCredentials(_))
            ));
        }
        c.client_first().unwrap();
        assert!(matches!(c.client_first(), Err(SaslError::OutOfOrder(_))));
    }
}
