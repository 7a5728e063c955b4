//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka speaks them (KIP-84).
//!
//! The exchange, client side:
//! ```text
//! client-first  n,,n=<saslname>,r=<client nonce>
//! server-first  r=<client nonce + server nonce>,s=<base64 salt>,i=<iterations>
//! client-final  c=biws,r=<nonce>,p=<base64 ClientProof>
//! server-final  v=<base64 ServerSignature>          (or e=<error>)
//! ```
//! Like Kafka's Java client: no channel binding (`n,,`, so `c=biws`), no authorization id, the
//! username escaped (`=` as `=3D`, `,` as `=2C`) but not SASLprep-normalised, the password used as
//! its UTF-8 bytes, and at least 4096 iterations required of the server. Kafka's `tokenauth`
//! extension (delegation tokens) is not sent.
//!
//! Everything from the server is hostile input: a malformed message, a nonce that does not extend
//! ours, an iteration count out of range or a wrong server signature is an error, never a panic.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::{Credentials, SaslError, Step};

/// The fewest iterations accepted, as Kafka's `ScramMechanism` requires for both hashes: fewer
/// would make a captured exchange cheap to brute-force.
pub(crate) const MIN_ITERATIONS: u32 = 4096;

/// The most iterations accepted. Kafka brokers refuse to store credentials above 16384; a count
/// far beyond that only makes the client burn CPU, so it is treated as hostile input.
pub(crate) const MAX_ITERATIONS: u32 = 1 << 20;

/// The `c=` attribute of the client-final message: base64 of the GS2 header `n,,` (no channel
/// binding, no authorization id).
const CHANNEL_BINDING: &str = "biws";

/// The hash a SCRAM exchange uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScramHash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

/// HMAC takes keys of any length (long ones are hashed first), so keying it cannot fail.
const ANY_KEY: &str = "HMAC accepts keys of any length";

/// Runs `$body` with `$h` naming the hash type of `$hash`.
macro_rules! with_hash {
    ($hash:expr, $h:ident => $body:expr) => {
        match $hash {
            ScramHash::Sha256 => {
                type $h = Sha256;
                $body
            }
            ScramHash::Sha512 => {
                type $h = Sha512;
                $body
            }
        }
    };
}

impl ScramHash {
    fn hash(self, data: &[u8]) -> Vec<u8> {
        with_hash!(self, H => H::digest(data).to_vec())
    }

    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        with_hash!(self, H => {
            let mut mac = <Hmac<H> as KeyInit>::new_from_slice(key).expect(ANY_KEY);
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        })
    }

    /// Checks `HMAC(key, data) == expected` in constant time.
    fn verify_mac(self, key: &[u8], data: &[u8], expected: &[u8]) -> bool {
        with_hash!(self, H => {
            let mut mac = <Hmac<H> as KeyInit>::new_from_slice(key).expect(ANY_KEY);
            mac.update(data);
            mac.verify_slice(expected).is_ok()
        })
    }

    /// `Hi(password, salt, i)` of RFC 5802: PBKDF2 with HMAC over the hash, one block long.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        with_hash!(self, H => {
            let mut out = vec![0u8; <H as Digest>::output_size()];
            pbkdf2::pbkdf2_hmac::<H>(password, salt, iterations, &mut out);
            out
        })
    }
}

/// Where a SCRAM exchange stands.
enum State {
    /// The client-first message is not built yet.
    Start,
    /// The client-first message went out; the server-first is awaited.
    SentFirst {
        /// client-first-message-bare, part of the AuthMessage.
        client_first_bare: String,
    },
    /// The client-final message went out; the server-final is awaited.
    SentFinal {
        /// The key the server signs with.
        server_key: Vec<u8>,
        /// The AuthMessage both sides sign.
        auth_message: String,
    },
    /// The server proved it knows the credentials.
    Done,
    /// A step failed; the exchange cannot go on.
    Failed,
}

/// The client side of a SCRAM exchange. Sans-IO: the caller carries the messages.
pub(crate) struct ScramClient {
    hash: ScramHash,
    credentials: Credentials,
    nonce: String,
    state: State,
}

impl ScramClient {
    /// A client that will send `nonce` as its nonce (printable ASCII without `,`; from a CSPRNG,
    /// see [`super::random_nonce`], or fixed in tests).
    pub(crate) fn new(hash: ScramHash, credentials: Credentials, nonce: String) -> Self {
        ScramClient {
            hash,
            credentials,
            nonce,
            state: State::Start,
        }
    }

    /// The client-first message.
    pub(crate) fn client_first(&mut self) -> Result<Vec<u8>, SaslError> {
        if !matches!(self.state, State::Start) {
            return Err(SaslError::OutOfOrder(
                "the SCRAM client-first message was already sent",
            ));
        }
        if self.nonce.is_empty() || !self.nonce.bytes().all(is_printable) {
            return Err(SaslError::InvalidCredentials(
                "a SCRAM nonce must be printable ASCII without ','",
            ));
        }
        let client_first_bare = format!(
            "n={},r={}",
            escape_username(self.credentials.username()),
            self.nonce
        );
        let msg = format!("n,,{client_first_bare}").into_bytes();
        self.state = State::SentFirst { client_first_bare };
        Ok(msg)
    }

    /// Takes the server's next message: the server-first (answered with the client-final) or
    /// the server-final (checked, ending the exchange).
    pub(crate) fn handle(&mut self, server: &[u8]) -> Result<Step, SaslError> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::SentFirst { client_first_bare } => self
                .server_first(&client_first_bare, server)
                .map(|(msg, next)| {
                    self.state = next;
                    Step::Send(msg)
                }),
            State::SentFinal {
                server_key,
                auth_message,
            } => self
                .server_final(&server_key, &auth_message, server)
                .map(|()| {
                    self.state = State::Done;
                    Step::Done
                }),
            State::Start => Err(SaslError::OutOfOrder(
                "a SCRAM server message arrived before the client-first message",
            )),
            State::Done => Err(SaslError::OutOfOrder("the SCRAM exchange is already over")),
            State::Failed => Err(SaslError::OutOfOrder("the SCRAM exchange already failed")),
        }
    }

    fn server_first(
        &self,
        client_first_bare: &str,
        server: &[u8],
    ) -> Result<(Vec<u8>, State), SaslError> {
        let server_first = std::str::from_utf8(server)
            .map_err(|_| malformed("server-first", "it is not UTF-8"))?;
        let mut attrs = server_first.split(',');
        let first = attrs.next().unwrap_or_default();
        if let Some(e) = first.strip_prefix("e=") {
            return Err(SaslError::Server(e.to_owned()));
        }
        if first.starts_with("m=") {
            return Err(malformed(
                "server-first",
                "it demands an extension (m=) kbus does not know",
            ));
        }
        let nonce = attribute(first, 'r', "server-first")?;
        let salt = attribute(attrs.next().unwrap_or_default(), 's', "server-first")?;
        let iterations = attribute(attrs.next().unwrap_or_default(), 'i', "server-first")?;
        // Further attributes are extensions, which RFC 5802 says to ignore when unknown.

        if !nonce.bytes().all(is_printable) {
            return Err(malformed("server-first", "its nonce is not printable"));
        }
        if nonce.len() <= self.nonce.len() || !nonce.starts_with(&self.nonce) {
            return Err(malformed(
                "server-first",
                "its nonce does not extend the client nonce",
            ));
        }
        let salt = BASE64
            .decode(salt)
            .map_err(|_| malformed("server-first", "its salt is not base64"))?;
        if salt.is_empty() {
            return Err(malformed("server-first", "its salt is empty"));
        }
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| malformed("server-first", "its iteration count is not a number"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(SaslError::Iterations(iterations));
        }

        let client_final_bare = format!("c={CHANNEL_BINDING},r={nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{client_final_bare}");
        let h = self.hash;
        let salted = h.salted_password(self.credentials.password().as_bytes(), &salt, iterations);
        let client_key = h.mac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        let client_signature = h.mac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = h.mac(&salted, b"Server Key");
        let msg = format!("{client_final_bare},p={}", BASE64.encode(proof)).into_bytes();
        Ok((
            msg,
            State::SentFinal {
                server_key,
                auth_message,
            },
        ))
    }

    fn server_final(
        &self,
        server_key: &[u8],
        auth_message: &str,
        server: &[u8],
    ) -> Result<(), SaslError> {
        let server_final = std::str::from_utf8(server)
            .map_err(|_| malformed("server-final", "it is not UTF-8"))?;
        let first = server_final.split(',').next().unwrap_or_default();
        if let Some(e) = first.strip_prefix("e=") {
            return Err(SaslError::Server(e.to_owned()));
        }
        let signature = attribute(first, 'v', "server-final")?;
        let signature = BASE64
            .decode(signature)
            .map_err(|_| malformed("server-final", "its signature is not base64"))?;
        if self
            .hash
            .verify_mac(server_key, auth_message.as_bytes(), &signature)
        {
            Ok(())
        } else {
            Err(SaslError::ServerSignature)
        }
    }
}

/// Escapes a username into a SCRAM `saslname` as Kafka's `ScramFormatter` does: `=` becomes `=3D`
/// and `,` becomes `=2C`. No SASLprep.
pub(crate) fn escape_username(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

/// RFC 5802 `printable`: ASCII 0x21–0x7E except `,`.
fn is_printable(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b','
}

/// The value of `attr`, which must be `<name>=<value>`.
fn attribute<'a>(attr: &'a str, name: char, message: &'static str) -> Result<&'a str, SaslError> {
    attr.strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('='))
        .ok_or_else(|| SaslError::Malformed {
            message,
            why: format!("attribute {name}= is missing where expected"),
        })
}

fn malformed(message: &'static str, why: &str) -> SaslError {
    SaslError::Malformed {
        message,
        why: why.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(hash: ScramHash, user: &str, password: &str, nonce: &str) -> ScramClient {
        ScramClient::new(hash, Credentials::new(user, password), nonce.to_owned())
    }

    fn send(step: Step) -> String {
        match step {
            Step::Send(m) => String::from_utf8(m).unwrap(),
            Step::Done => panic!("expected a message to send"),
        }
    }

    // RFC 7677 section 3.
    const RFC7677_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const RFC7677_SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                        s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC7677_CLIENT_FINAL: &str =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                        p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    #[test]
    fn rfc7677_scram_sha256_test_vector() {
        let mut c = client(ScramHash::Sha256, "user", "pencil", RFC7677_NONCE);
        assert_eq!(
            c.client_first().unwrap(),
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        let client_final = send(c.handle(RFC7677_SERVER_FIRST.as_bytes()).unwrap());
        assert_eq!(client_final, RFC7677_CLIENT_FINAL);
        assert_eq!(
            c.handle(RFC7677_SERVER_FINAL.as_bytes()).unwrap(),
            Step::Done
        );
        assert!(matches!(c.handle(b"v=x"), Err(SaslError::OutOfOrder(_))));
    }

    #[test]
    fn a_tampered_server_signature_is_an_error() {
        let mut c = client(ScramHash::Sha256, "user", "pencil", RFC7677_NONCE);
        c.client_first().unwrap();
        c.handle(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        // One bit of the real signature flipped: same length, valid base64.
        let mut sig = BASE64.decode(&RFC7677_SERVER_FINAL[2..]).unwrap();
        sig[0] ^= 1;
        let tampered = format!("v={}", BASE64.encode(sig));
        assert_eq!(
            c.handle(tampered.as_bytes()).unwrap_err(),
            SaslError::ServerSignature
        );
        // The exchange is over: nothing more is accepted.
        assert!(c.handle(RFC7677_SERVER_FINAL.as_bytes()).is_err());
    }

    #[test]
    fn a_truncated_or_missing_server_signature_is_an_error() {
        for server_final in ["v=6rriTRBi23WpRR/w", "v=", "x=abc", "", "v=!!!"] {
            let mut c = client(ScramHash::Sha256, "user", "pencil", RFC7677_NONCE);
            c.client_first().unwrap();
            c.handle(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
            assert!(c.handle(server_final.as_bytes()).is_err(), "{server_final}");
        }
    }

    #[test]
    fn a_server_error_in_the_final_message_is_reported() {
        let mut c = client(ScramHash::Sha256, "user", "pencil", RFC7677_NONCE);
        c.client_first().unwrap();
        c.handle(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            c.handle(b"e=invalid-proof").unwrap_err(),
            SaslError::Server("invalid-proof".into())
        );
    }

    #[test]
    fn malformed_server_first_messages_are_errors_not_panics() {
        let n = RFC7677_NONCE;
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b",,,".to_vec(),
            b"garbage".to_vec(),
            b"\xff\xfe".to_vec(),
            format!("r={n}xyz").into_bytes(),
            format!("r={n}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==").into_bytes(),
            format!("r={n}xyz,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==").into_bytes(),
            format!("r={n}xyz,s=***,i=4096").into_bytes(),
            format!("r={n}xyz,s=,i=4096").into_bytes(),
            format!("r={n}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=many").into_bytes(),
            format!("r={n}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1").into_bytes(),
            format!("r={n}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999").into_bytes(),
            // Too few iterations (Kafka's minimum is 4096), and absurdly many.
            format!("r={n}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095").into_bytes(),
            format!("r={n}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4000000000").into_bytes(),
            // A nonce that does not extend ours, or only repeats it.
            b"r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_vec(),
            format!("r={n},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096").into_bytes(),
            format!("r={n}\x01,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096").into_bytes(),
            // A mandatory extension kbus does not know.
            format!("m=ext,r={n}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096").into_bytes(),
        ];
        for case in cases {
            let mut c = client(ScramHash::Sha256, "user", "pencil", n);
            c.client_first().unwrap();
            let err = c.handle(&case).unwrap_err();
            assert!(
                matches!(err, SaslError::Malformed { .. } | SaslError::Iterations(_)),
                "{:?}: {err:?}",
                String::from_utf8_lossy(&case)
            );
            assert!(!err.to_string().is_empty());
        }
        // Extensions after the iteration count are ignored, as RFC 5802 says.
        let mut c = client(ScramHash::Sha256, "user", "pencil", n);
        c.client_first().unwrap();
        let with_ext = format!("{RFC7677_SERVER_FIRST},x=y");
        assert!(matches!(c.handle(with_ext.as_bytes()), Ok(Step::Send(_))));
        // An error instead of a server-first.
        let mut c = client(ScramHash::Sha256, "user", "pencil", n);
        c.client_first().unwrap();
        assert_eq!(
            c.handle(b"e=unknown-user").unwrap_err(),
            SaslError::Server("unknown-user".into())
        );
    }

    #[test]
    fn usernames_are_escaped_like_kafka_does() {
        assert_eq!(escape_username("a=b,c"), "a=3Db=2Cc");
        assert_eq!(escape_username("=2C"), "=3D2C");
        assert_eq!(escape_username("plain"), "plain");
        let mut c = client(ScramHash::Sha512, "a=b,c", "pw", "nonce");
        assert_eq!(c.client_first().unwrap(), b"n,,n=a=3Db=2Cc,r=nonce");
    }

    #[test]
    fn out_of_order_calls_and_bad_nonces_are_errors() {
        let mut c = client(ScramHash::Sha256, "user", "pencil", RFC7677_NONCE);
        assert!(matches!(
            c.handle(RFC7677_SERVER_FIRST.as_bytes()),
            Err(SaslError::OutOfOrder(_))
        ));
        // A failed exchange stays failed.
        assert!(c.client_first().is_err());
        let mut c = client(ScramHash::Sha256, "user", "pencil", RFC7677_NONCE);
        c.client_first().unwrap();
        assert!(matches!(c.client_first(), Err(SaslError::OutOfOrder(_))));
        for bad in ["", "has,comma", "has space"] {
            let mut c = client(ScramHash::Sha256, "user", "pencil", bad);
            assert!(c.client_first().is_err(), "{bad:?}");
        }
    }

    /// The server side of SCRAM-SHA-512, computed straight from RFC 5802's formulas with the
    /// RustCrypto crates (not through the client's helpers).
    struct Sha512Server {
        salted: Vec<u8>,
    }

    impl Sha512Server {
        fn new(password: &str, salt: &[u8], iterations: u32) -> Self {
            let mut salted = vec![0u8; 64];
            pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut salted);
            Sha512Server { salted }
        }

        fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut m = <Hmac<Sha512> as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }

        /// Checks the client's proof against AuthMessage; returns the server signature.
        fn verify(&self, auth_message: &str, proof: &[u8]) -> Option<Vec<u8>> {
            let client_key = Self::hmac(&self.salted, b"Client Key");
            let stored_key = Sha512::digest(&client_key).to_vec();
            let client_signature = Self::hmac(&stored_key, auth_message.as_bytes());
            let recovered: Vec<u8> = proof
                .iter()
                .zip(&client_signature)
                .map(|(p, s)| p ^ s)
                .collect();
            if Sha512::digest(&recovered).to_vec() != stored_key {
                return None;
            }
            let server_key = Self::hmac(&self.salted, b"Server Key");
            Some(Self::hmac(&server_key, auth_message.as_bytes()))
        }
    }

    fn sha512_exchange(password_client: &str, password_server: &str) -> Option<Vec<u8>> {
        let salt = b"kbus-salt-512";
        let server = Sha512Server::new(password_server, salt, 4096);
        let mut c = client(
            ScramHash::Sha512,
            "bob,=x",
            password_client,
            "clientnonce512",
        );
        let first = String::from_utf8(c.client_first().unwrap()).unwrap();
        let first_bare = first.strip_prefix("n,,").unwrap();
        assert_eq!(first_bare, "n=bob=2C=3Dx,r=clientnonce512");
        let server_first = format!(
            "r=clientnonce512servernonce,s={},i=4096",
            BASE64.encode(salt)
        );
        let client_final = send(c.handle(server_first.as_bytes()).unwrap());
        let (without_proof, proof) = client_final.rsplit_once(",p=").unwrap();
        assert_eq!(without_proof, "c=biws,r=clientnonce512servernonce");
        let proof = BASE64.decode(proof).unwrap();
        assert_eq!(proof.len(), 64, "a SHA-512 proof is 64 bytes");
        let auth_message = format!("{first_bare},{server_first},{without_proof}");
        let signature = server.verify(&auth_message, &proof)?;
        let server_final = format!("v={}", BASE64.encode(signature));
        assert_eq!(c.handle(server_final.as_bytes()).unwrap(), Step::Done);
        Some(proof)
    }

    #[test]
    fn scram_sha512_exchange_checks_out_against_the_rfc_formulas() {
        assert!(sha512_exchange("s3cret", "s3cret").is_some());
        // The server rejects a proof made from the wrong password.
        assert!(sha512_exchange("wrong", "s3cret").is_none());
    }
}
