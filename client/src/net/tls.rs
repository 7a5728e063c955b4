//! TLS for broker connections: rustls over TCP, with a crypto provider chosen by cargo feature.
//!
//! # Crypto providers
//! rustls does the protocol; the cryptography comes from a provider picked at build time:
//!
//! | feature | provider | C compiler | maturity |
//! |---|---|---|---|
//! | `tls-rustcrypto` (default) | [`rustls-rustcrypto`], pure Rust | no | **alpha** (0.0.x, unaudited) |
//! | `tls-ring` | [ring] | yes (also for musl targets) | mature, widely deployed |
//!
//! `tls-rustcrypto` is a default feature because kbus's default build needs no C toolchain and
//! `security.protocol=SSL` should work out of the box — with the caveat that this provider is
//! **alpha**: version 0.0.2-alpha, unaudited, not called production-ready by its authors, and its RSA
//! code (the `rsa` crate) has a known timing side channel (RUSTSEC-2023-0071), which matters for an
//! RSA client key in mutual TLS. Leaving TLS out of the default build was the alternative; it was not
//! taken because a client that needs a rebuild before it can reach a TLS-only cluster is not the
//! default a user expects.
//!
//! Services that can build C code should enable `tls-ring`: when both features are on, ring is used
//! (see [`TlsProvider::Auto`]). To leave the alpha code out of the build entirely, use
//! `default-features = false, features = ["tls-ring", ...]`. With neither feature, asking for TLS
//! fails with an [`Error::Config`] or [`Error::Tls`] naming the features to enable.
//!
//! rustls is always built with `default-features = false`: its default provider is aws-lc, which
//! needs a C compiler and cmake.
//!
//! # Verification
//! The broker's certificate chain is checked against `ssl.ca.location` (a PEM file), or the system's
//! roots (via `rustls-native-certs`) when no CA file is given, and its validity period against the
//! clock. The host name is checked too, unless turned off with
//! `ssl.endpoint.identification.algorithm=` (empty); even then the chain and the dates are checked —
//! there is no "accept anything" mode.
//!
//! [`rustls-rustcrypto`]: https://crates.io/crates/rustls-rustcrypto
//! [ring]: https://crates.io/crates/ring

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};

/// `security.protocol`: how a connection is secured, with the Java client's / librdkafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// `PLAINTEXT`: plain TCP.
    #[default]
    Plaintext,
    /// `SSL`: TLS over TCP.
    Ssl,
    /// `SASL_PLAINTEXT`: SASL authentication over plain TCP.
    SaslPlaintext,
    /// `SASL_SSL`: SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// True for `SSL` and `SASL_SSL`.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// True for `SASL_PLAINTEXT` and `SASL_SSL`.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// The name as written in client properties.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SecurityProtocol {
    type Err = Error;

    /// Parses the Java client's / librdkafka's names, case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        let all = [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ];
        all.into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::Config {
                message: format!(
                    "security.protocol {s:?} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
                ),
            })
    }
}

/// Which crypto provider rustls uses; see the [module docs](self) for the cargo features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsProvider {
    /// ring when the `tls-ring` feature is on, else RustCrypto when `tls-rustcrypto` is on.
    #[default]
    Auto,
    /// ring (feature `tls-ring`).
    Ring,
    /// The pure-Rust RustCrypto provider (feature `tls-rustcrypto`; alpha).
    RustCrypto,
}

/// TLS settings of a connection (used when `security.protocol` is `SSL` or `SASL_SSL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `ssl.ca.location`: a PEM file of CA certificates to trust. `None`: the system's roots.
    pub ca_location: Option<PathBuf>,
    /// `ssl.certificate.location`: the client's certificate chain (PEM), for mutual TLS.
    pub certificate_location: Option<PathBuf>,
    /// `ssl.key.location`: the client's private key (PEM: PKCS#8, PKCS#1 or SEC1, unencrypted).
    pub key_location: Option<PathBuf>,
    /// `ssl.endpoint.identification.algorithm=https` (the default): check that the broker's
    /// certificate names the host connected to. When false, the chain and validity dates are still
    /// checked.
    pub verify_hostname: bool,
    /// The crypto provider.
    pub provider: TlsProvider,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ca_location: None,
            certificate_location: None,
            key_location: None,
            verify_hostname: true,
            provider: TlsProvider::Auto,
        }
    }
}

/// The message for a build without a TLS provider.
pub(crate) const NO_PROVIDER: &str =
    "kbus was built without TLS support: enable the cargo feature \
     `tls-rustcrypto` (pure Rust) or `tls-ring` (needs a C compiler)";

/// Checks that this build can do TLS at all (an [`Error::Config`] naming the features otherwise).
pub(crate) fn check_available(protocol: SecurityProtocol) -> Result<()> {
    if protocol.uses_tls() && !cfg!(feature = "_tls") {
        return Err(Error::Config {
            message: format!("security.protocol={protocol} needs TLS, but {NO_PROVIDER}"),
        });
    }
    Ok(())
}

#[cfg_attr(not(feature = "_tls"), allow(dead_code))]
/// The host part of `host:port` (IPv6 literals in brackets, `[::1]:9092`, lose their brackets).
fn host_of(broker: &str) -> &str {
    if let Some(rest) = broker.strip_prefix('[') {
        if let Some((host, _)) = rest.split_once(']') {
            return host;
        }
    }
    broker.rsplit_once(':').map_or(broker, |(host, _)| host)
}

fn tls_error(broker: &str, message: impl Into<String>) -> Error {
    Error::Tls {
        broker: broker.into(),
        message: message.into(),
    }
}

/// Turns a failure of the first exchange on a fresh TLS session into a TLS error when it most likely
/// is one: a broker that wants a client certificate (TLS 1.3 checks it only after the client
/// finished its handshake) or rejects the one given ends the session at the first request.
pub(crate) fn explain_first_exchange(err: Error, broker: &str, config: &TlsConfig) -> Error {
    let cause = match &err {
        Error::Io { source, .. } => source.to_string(),
        Error::Disconnected { .. } => "it closed the connection".to_string(),
        _ => return err,
    };
    let hint = if config.certificate_location.is_none() {
        "a broker that requires a client certificate (mutual TLS) does this: set \
         ssl.certificate.location and ssl.key.location"
    } else {
        "it may have rejected the client certificate (ssl.certificate.location): is it signed by a CA \
         the broker trusts, and still valid?"
    };
    tls_error(
        broker,
        format!("the broker ended the TLS session at the first request ({cause}); {hint}"),
    )
}

/// Turns a failure of the first exchange on a plain TCP connection into a TLS error when the broker
/// answered with TLS: a TLS listener (Kafka's `SSL` or `SASL_SSL`) takes the ApiVersions request
/// for a broken handshake and answers with a TLS alert, whose record header (`0x15 0x03 0x0N`,
/// or `0x16` for a handshake record) reads as a frame size of hundreds of megabytes. Without this,
/// the user sees "frame of 352518912 bytes exceeds the maximum" instead of the setting to change.
pub(crate) fn explain_plaintext_first_exchange(err: Error, broker: &str) -> Error {
    use kbus_protocol::ProtocolError;
    let Error::Protocol {
        source: ProtocolError::FrameTooLarge { size, .. },
        ..
    } = &err
    else {
        return err;
    };
    let Ok(header) = u32::try_from(*size).map(u32::to_be_bytes) else {
        return err;
    };
    let tls_record = matches!(header, [0x15 | 0x16, 0x03, 0x00..=0x04, _]);
    if !tls_record {
        return err;
    }
    tls_error(
        broker,
        "the broker answered with TLS: this is a TLS listener, so set security.protocol=SSL (or \
         SASL_SSL with SASL)",
    )
}

#[cfg(feature = "_tls")]
pub(crate) use imp::handshake;

#[cfg(not(feature = "_tls"))]
pub(crate) use none::handshake;

#[cfg(feature = "_tls")]
mod imp {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::client::{verify_server_cert_signed_by_trust_anchor, WebPkiServerVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use rustls::server::ParsedCertificate;
    use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
    use rustls::{Error as RustlsError, SignatureScheme};
    use tokio::net::TcpStream;
    use tokio_rustls::TlsConnector;

    use super::{host_of, tls_error, TlsConfig, TlsProvider};
    use crate::error::{Error, Result};

    /// A TLS session over TCP.
    pub(crate) type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

    /// Runs the TLS handshake with `broker` over `stream`, within `timeout`.
    pub(crate) async fn handshake(
        stream: TcpStream,
        broker: &str,
        config: &TlsConfig,
        timeout: Duration,
    ) -> Result<TlsStream> {
        let client = client_config(broker, config)?;
        let host = host_of(broker);
        let name = ServerName::try_from(host.to_string()).map_err(|e| {
            tls_error(
                broker,
                format!("{host:?} is not a valid TLS server name: {e}"),
            )
        })?;
        let connect = TlsConnector::from(Arc::new(client)).connect(name, stream);
        match tokio::time::timeout(timeout, connect).await {
            // A plain Kafka listener reads the ClientHello as the size of a request of hundreds of
            // megabytes and waits for the rest (or hangs up, when above socket.request.max.bytes).
            // An overloaded TLS listener may be slow too: this stays retriable, but says TLS.
            Err(_) => Err(Error::Io {
                broker: broker.into(),
                action: "TLS handshake with",
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no answer to the TLS handshake within {timeout:?}: is this port a TLS \
                         listener? (security.protocol SSL and SASL_SSL need one; use PLAINTEXT \
                         or SASL_PLAINTEXT for a plain listener)"
                    ),
                ),
            }),
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(handshake_error(broker, host, config, e)),
        }
    }

    /// Says what went wrong in a handshake, in the terms of the settings a user can change.
    fn handshake_error(broker: &str, host: &str, config: &TlsConfig, e: std::io::Error) -> Error {
        let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<RustlsError>()) else {
            // A plain listener hangs up on a ClientHello (with or without a reset).
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) {
                return tls_error(
                    broker,
                    format!(
                        "the broker closed the connection during the TLS handshake ({e}): is this \
                         port a TLS listener?"
                    ),
                );
            }
            return Error::Io {
                broker: broker.into(),
                action: "TLS handshake with",
                source: e,
            };
        };
        let trusted = match &config.ca_location {
            Some(p) => format!("the CA certificates in ssl.ca.location ({})", p.display()),
            None => "the system's root certificates (no ssl.ca.location given)".to_string(),
        };
        let message = match tls {
            RustlsError::InvalidCertificate(c) => match c {
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    format!(
                        "the broker's certificate is for another host, not {host:?} ({tls}); \
                         connect by a name the certificate lists, or turn hostname verification off \
                         with ssl.endpoint.identification.algorithm= (empty)"
                    )
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    format!("the broker's certificate has expired ({tls})")
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    format!("the broker's certificate is not valid yet ({tls})")
                }
                CertificateError::UnknownIssuer => format!(
                    "the broker's certificate is signed by an unknown CA: not by any of {trusted}"
                ),
                _ => format!("the broker's certificate was rejected: {tls}"),
            },
            RustlsError::AlertReceived(alert) => format!(
                "the broker refused the TLS handshake (alert {alert:?}){}",
                if config.certificate_location.is_none() {
                    "; if it requires a client certificate, set ssl.certificate.location and \
                     ssl.key.location"
                } else {
                    ""
                }
            ),
            other => format!("TLS handshake failed: {other}"),
        };
        tls_error(broker, message)
    }

    #[cfg(feature = "tls-ring")]
    fn ring() -> Option<CryptoProvider> {
        Some(rustls::crypto::ring::default_provider())
    }
    #[cfg(not(feature = "tls-ring"))]
    fn ring() -> Option<CryptoProvider> {
        None
    }
    #[cfg(feature = "tls-rustcrypto")]
    fn rustcrypto() -> Option<CryptoProvider> {
        Some(rustls_rustcrypto::provider())
    }
    #[cfg(not(feature = "tls-rustcrypto"))]
    fn rustcrypto() -> Option<CryptoProvider> {
        None
    }

    /// The crypto provider chosen by `choice` among those the enabled features compiled in.
    fn provider(broker: &str, choice: TlsProvider) -> Result<Arc<CryptoProvider>> {
        let (found, feature) = match choice {
            TlsProvider::Auto => (ring().or_else(rustcrypto), "tls-rustcrypto` or `tls-ring"),
            TlsProvider::Ring => (ring(), "tls-ring"),
            TlsProvider::RustCrypto => (rustcrypto(), "tls-rustcrypto"),
        };
        found.map(Arc::new).ok_or_else(|| {
            tls_error(
                broker,
                format!("the {choice:?} TLS provider needs kbus's `{feature}` cargo feature"),
            )
        })
    }

    fn read(broker: &str, setting: &str, path: &Path) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|e| {
            tls_error(
                broker,
                format!("cannot read {setting} {}: {e}", path.display()),
            )
        })
    }

    fn certificates(
        broker: &str,
        setting: &str,
        path: &Path,
    ) -> Result<Vec<CertificateDer<'static>>> {
        let pem = read(broker, setting, path)?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                tls_error(
                    broker,
                    format!("{setting} {} is not valid PEM: {e}", path.display()),
                )
            })?;
        if certs.is_empty() {
            return Err(tls_error(
                broker,
                format!("{setting} {} holds no PEM certificate", path.display()),
            ));
        }
        Ok(certs)
    }

    fn roots(broker: &str, config: &TlsConfig) -> Result<Arc<RootCertStore>> {
        let mut roots = RootCertStore::empty();
        match &config.ca_location {
            Some(path) => {
                for cert in certificates(broker, "ssl.ca.location", path)? {
                    roots.add(cert).map_err(|e| {
                        tls_error(
                            broker,
                            format!(
                                "ssl.ca.location {}: unusable CA certificate: {e}",
                                path.display()
                            ),
                        )
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                // Individual unreadable system certificates are skipped, as browsers do.
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    let why = found
                        .errors
                        .first()
                        .map_or_else(String::new, |e| format!(" ({e})"));
                    return Err(tls_error(
                        broker,
                        format!(
                            "no system root certificates found{why}: set ssl.ca.location to the CA \
                             that signed the broker's certificate"
                        ),
                    ));
                }
            }
        }
        Ok(Arc::new(roots))
    }

    /// The rustls client settings for `config` (files are read on every connect, so renewed
    /// certificates are picked up by the next connection).
    fn client_config(broker: &str, config: &TlsConfig) -> Result<ClientConfig> {
        let provider = provider(broker, config.provider)?;
        let roots = roots(broker, config)?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(broker, format!("TLS provider: {e}")))?;
        let builder = if config.verify_hostname {
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| tls_error(broker, format!("certificate verifier: {e}")))?;
            builder.with_webpki_verifier(verifier)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly { roots, provider }))
        };
        match (&config.certificate_location, &config.key_location) {
            (None, None) => Ok(builder.with_no_client_auth()),
            (Some(_), None) => Err(tls_error(
                broker,
                "ssl.certificate.location is set but ssl.key.location is not: a client certificate \
                 needs its private key",
            )),
            (None, Some(_)) => Err(tls_error(
                broker,
                "ssl.key.location is set but ssl.certificate.location is not: a private key needs \
                 its client certificate",
            )),
            (Some(cert), Some(key)) => {
                let chain = certificates(broker, "ssl.certificate.location", cert)?;
                let pem = read(broker, "ssl.key.location", key)?;
                let key_der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
                    tls_error(
                        broker,
                        format!(
                            "ssl.key.location {} holds no usable unencrypted private key: {e}",
                            key.display()
                        ),
                    )
                })?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    tls_error(
                        broker,
                        format!(
                            "client certificate {} with key {}: {e}",
                            cert.display(),
                            key.display()
                        ),
                    )
                })
            }
        }
    }

    /// Checks the broker's certificate chain against the trusted roots and its validity dates, but
    /// not the host name it was issued for (`ssl.endpoint.identification.algorithm=` empty).
    #[derive(Debug)]
    struct ChainOnly {
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
    }

    impl ServerCertVerifier for ChainOnly {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, RustlsError> {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                &self.roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, RustlsError> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, RustlsError> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}

/// A build without TLS: the handshake fails, naming the features to enable.
#[cfg(not(feature = "_tls"))]
mod none {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::TcpStream;

    use super::{tls_error, TlsConfig, NO_PROVIDER};
    use crate::error::Result;

    /// Never made: there is no TLS session without a provider.
    pub(crate) enum TlsStream {}

    pub(crate) async fn handshake(
        _stream: TcpStream,
        broker: &str,
        _config: &TlsConfig,
        _timeout: Duration,
    ) -> Result<TlsStream> {
        Err(tls_error(broker, NO_PROVIDER))
    }

    impl AsyncRead for TlsStream {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match *self {}
        }
    }

    impl AsyncWrite for TlsStream {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            match *self {}
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match *self {}
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            match *self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_protocols_parse_from_their_java_names() {
        assert_eq!(
            "PLAINTEXT".parse::<SecurityProtocol>().unwrap(),
            SecurityProtocol::Plaintext
        );
        assert_eq!(
            "ssl".parse::<SecurityProtocol>().unwrap(),
            SecurityProtocol::Ssl
        );
        assert_eq!(
            "SASL_PLAINTEXT".parse::<SecurityProtocol>().unwrap(),
            SecurityProtocol::SaslPlaintext
        );
        let p = "Sasl_Ssl".parse::<SecurityProtocol>().unwrap();
        assert_eq!(p, SecurityProtocol::SaslSsl);
        assert!(p.uses_tls() && p.uses_sasl());
        assert_eq!(p.to_string(), "SASL_SSL");
        let err = "TLS".parse::<SecurityProtocol>().unwrap_err();
        assert!(err.to_string().contains("\"TLS\""), "{err}");
    }

    #[test]
    fn the_host_of_a_broker_address() {
        assert_eq!(host_of("localhost:9092"), "localhost");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9092"), "::1");
        assert_eq!(host_of("broker"), "broker");
    }

    #[test]
    fn a_tls_answer_on_a_plain_connection_names_security_protocol() {
        use kbus_protocol::ProtocolError;
        let too_large = |size: i64| Error::Protocol {
            broker: "b:9093".into(),
            api: Some(kbus_protocol::ApiKey::ApiVersions),
            source: ProtocolError::FrameTooLarge {
                size,
                max: 100 << 20,
            },
        };
        // What Kafka's TLS listener sends back for a plaintext ApiVersions: an alert record of
        // TLS 1.2 (`15 03 03 00 02 ...`), read as a frame size.
        let err = explain_plaintext_first_exchange(too_large(0x1503_0300), "b:9093");
        assert!(
            matches!(&err, Error::Tls { broker, .. } if broker == "b:9093"),
            "{err:?}"
        );
        assert!(!err.is_retriable());
        assert!(err.to_string().contains("security.protocol=SSL"), "{err}");
        // A handshake record too.
        let err = explain_plaintext_first_exchange(too_large(0x1603_0100), "b:9093");
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
        // A genuinely oversized frame, or a negative size, stays what it is.
        for size in [0x0800_0000, -1, 0x1505_0000] {
            let err = explain_plaintext_first_exchange(too_large(size), "b:9093");
            assert!(matches!(err, Error::Protocol { .. }), "{size:#x}: {err:?}");
        }
        let other = Error::Disconnected {
            broker: "b:9093".into(),
        };
        let err = explain_plaintext_first_exchange(other, "b:9093");
        assert!(matches!(err, Error::Disconnected { .. }), "{err:?}");
    }

    #[test]
    fn hostname_verification_is_on_by_default() {
        assert!(TlsConfig::default().verify_hostname);
    }

    #[cfg(not(feature = "_tls"))]
    #[test]
    fn without_a_provider_tls_names_the_features_to_enable() {
        let err = check_available(SecurityProtocol::Ssl).unwrap_err();
        assert!(err.to_string().contains("tls-rustcrypto"), "{err}");
        assert!(check_available(SecurityProtocol::Plaintext).is_ok());
    }

    #[cfg(feature = "_tls")]
    mod with_provider {
        use super::super::*;
        use std::time::Duration;

        /// Runs a handshake against a listener that never answers; the settings must fail first.
        async fn handshake_error(config: TlsConfig) -> Error {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap().to_string();
            let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let err = handshake(stream, &addr, &config, Duration::from_secs(5))
                .await
                .expect_err("the handshake must fail");
            assert_eq!(
                err.broker().expect("the error names its broker"),
                addr,
                "{err}"
            );
            assert!(err.to_string().contains(&addr), "{err}");
            assert!(!err.is_retriable(), "{err}");
            err
        }

        #[tokio::test]
        async fn a_missing_ca_file_is_named() {
            let err = handshake_error(TlsConfig {
                ca_location: Some("/nonexistent/kbus-ca.pem".into()),
                ..Default::default()
            })
            .await;
            let s = err.to_string();
            assert!(
                s.contains("ssl.ca.location") && s.contains("/nonexistent/kbus-ca.pem"),
                "{s}"
            );
        }

        #[tokio::test]
        async fn a_client_certificate_without_its_key_is_refused() {
            let dir = std::env::temp_dir().join(format!("kbus-tls-unit-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
            let ca_path = dir.join("ca.pem");
            std::fs::write(&ca_path, ca.cert.pem()).unwrap();
            let err = handshake_error(TlsConfig {
                ca_location: Some(ca_path.clone()),
                certificate_location: Some(ca_path),
                ..Default::default()
            })
            .await;
            let _ = std::fs::remove_dir_all(&dir);
            assert!(err.to_string().contains("ssl.key.location"), "{err}");
        }

        #[tokio::test]
        async fn a_file_without_certificates_is_named() {
            let path =
                std::env::temp_dir().join(format!("kbus-tls-empty-{}.pem", std::process::id()));
            std::fs::write(&path, "not a certificate\n").unwrap();
            let err = handshake_error(TlsConfig {
                ca_location: Some(path.clone()),
                ..Default::default()
            })
            .await;
            let _ = std::fs::remove_file(&path);
            assert!(err.to_string().contains("no PEM certificate"), "{err}");
        }
    }
}
