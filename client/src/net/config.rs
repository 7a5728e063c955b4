//! Connection settings from Kafka client properties (the Java client's / librdkafka's names).
//!
//! ```
//! use kbus_client::config::Settings;
//! use kbus_client::net::{ConnectionConfig, SecurityProtocol};
//! # fn main() -> kbus_client::Result<()> {
//! # if !cfg!(any(feature = "tls-rustcrypto", feature = "tls-ring")) { return Ok(()); }
//! let config = ConnectionConfig::from_properties([
//!     ("security.protocol", "SSL"),
//!     ("ssl.ca.location", "/etc/kafka/ca.pem"),
//! ])?;
//! assert_eq!(config.security_protocol, SecurityProtocol::Ssl);
//! assert!(config.tls.verify_hostname);
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;

use super::connection::ConnectionConfig;
use super::sasl::{Credentials, Mechanism, SaslConfig};
use super::tls;
use crate::config::{self, Properties, Settings};
use crate::error::{Error, Result};

impl Settings for ConnectionConfig {
    /// Applies one property: `client.id`, `request.timeout.ms`,
    /// `socket.connection.setup.timeout.ms`, `security.protocol` (`PLAINTEXT`, `SSL`,
    /// `SASL_PLAINTEXT`, `SASL_SSL`), `ssl.ca.location`, `ssl.certificate.location`,
    /// `ssl.key.location`, `ssl.endpoint.identification.algorithm` (`https`, the default, checks
    /// the broker's host name; empty or `none` does not, while still checking the certificate
    /// chain), `sasl.mechanism` (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`), `sasl.username`,
    /// `sasl.password`. Other `ssl.*` and `sasl.*` keys are an error, so a typo is not silently
    /// ignored. Applied one by one, `sasl.mechanism` comes before the credentials; from
    /// [`Properties`] the order does not matter.
    fn set_property(&mut self, key: &str, value: &str) -> Result<bool> {
        let text = value.trim();
        let path = || (!text.is_empty()).then(|| PathBuf::from(text));
        match key.trim() {
            "client.id" => self.client_id = config::optional(text),
            "request.timeout.ms" => self.request_timeout = config::millis(key, text)?,
            "socket.connection.setup.timeout.ms" => {
                self.connect_timeout = config::millis(key, text)?
            }
            "security.protocol" => self.security_protocol = text.parse()?,
            "ssl.ca.location" => self.tls.ca_location = path(),
            "ssl.certificate.location" => self.tls.certificate_location = path(),
            "ssl.key.location" => self.tls.key_location = path(),
            "ssl.endpoint.identification.algorithm" => {
                self.tls.verify_hostname = match text.to_ascii_lowercase().as_str() {
                    "https" => true,
                    "" | "none" => false,
                    _ => {
                        return Err(config::invalid(
                            key,
                            text,
                            "https (check the host name) or empty (do not)",
                        ))
                    }
                }
            }
            "sasl.mechanism" => {
                let mechanism = text.parse::<Mechanism>()?;
                match &mut self.sasl {
                    Some(sasl) => sasl.mechanism = mechanism,
                    None => self.sasl = Some(SaslConfig::new(mechanism, Credentials::new("", ""))),
                }
            }
            // The password is kept as given, spaces included.
            "sasl.username" | "sasl.password" => {
                let sasl = self.sasl.as_mut().ok_or_else(|| Error::Config {
                    message: format!("{key}: set sasl.mechanism first"),
                })?;
                let (user, password) = if key.trim() == "sasl.username" {
                    (text, sasl.credentials.password())
                } else {
                    (sasl.credentials.username(), value)
                };
                sasl.credentials = Credentials::new(user, password);
            }
            k if k.starts_with("ssl.") || k.starts_with("sasl.") => {
                return Err(Error::Config {
                    message: format!(
                        "{k} is not supported (known: ssl.ca.location, ssl.certificate.location, \
                         ssl.key.location, ssl.endpoint.identification.algorithm, sasl.mechanism, \
                         sasl.username, sasl.password)"
                    ),
                })
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Reads the properties in any order: the SASL mechanism is applied before the credentials.
    fn read(properties: &Properties) -> Result<Self> {
        let mut config = ConnectionConfig::default();
        let sasl_order = |key: &str| match key {
            "sasl.mechanism" => 0,
            "sasl.username" | "sasl.password" => 1,
            _ => 2,
        };
        let mut entries: Vec<(&str, &str)> = properties.iter().collect();
        entries.sort_by_key(|(k, _)| sasl_order(k));
        for (key, value) in entries {
            match key {
                // Credentials without a mechanism are reported as such by `finish`.
                "sasl.username" | "sasl.password" if config.sasl.is_none() => {
                    return Err(sasl_incomplete())
                }
                _ => config.set_property(key, value)?,
            };
        }
        config.finish()?;
        Ok(config)
    }

    /// Checks settings that only make sense together.
    fn finish(&mut self) -> Result<()> {
        tls::check_available(self.security_protocol)?;
        if let Some(sasl) = &self.sasl {
            if sasl.credentials.username().is_empty() || sasl.credentials.password().is_empty() {
                return Err(sasl_incomplete());
            }
        }
        if self.security_protocol.uses_sasl() != self.sasl.is_some() {
            return Err(Error::Config {
                message: format!(
                    "security.protocol {:?} and the sasl.* settings disagree: SASL_PLAINTEXT and \
                     SASL_SSL need sasl.mechanism, sasl.username and sasl.password; PLAINTEXT and \
                     SSL take none",
                    self.security_protocol
                ),
            });
        }
        if self.tls.certificate_location.is_some() != self.tls.key_location.is_some() {
            return Err(Error::Config {
                message: "ssl.certificate.location and ssl.key.location go together: a client \
                          certificate needs its private key"
                    .into(),
            });
        }
        Ok(())
    }
}

fn sasl_incomplete() -> Error {
    Error::Config {
        message: "SASL needs sasl.mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), \
                  sasl.username and sasl.password together"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::SecurityProtocol;
    use std::time::Duration;

    #[test]
    fn defaults_are_plain_tcp_with_hostname_verification_ready() {
        let c = ConnectionConfig::from_properties(Vec::<(&str, &str)>::new()).unwrap();
        assert_eq!(c.security_protocol, SecurityProtocol::Plaintext);
        assert!(c.tls.verify_hostname);
        assert!(c.tls.ca_location.is_none());
    }

    #[test]
    fn ssl_properties_are_read() {
        let props = [
            ("security.protocol", "SSL"),
            ("ssl.ca.location", "/ca.pem"),
            ("ssl.certificate.location", "/client.pem"),
            ("ssl.key.location", "/client.key"),
            ("ssl.endpoint.identification.algorithm", ""),
            ("bootstrap.servers", "ignored:9092"),
            ("request.timeout.ms", "1500"),
            ("client.id", "svc"),
        ];
        let r = ConnectionConfig::from_properties(props);
        if !cfg!(feature = "_tls") {
            let err = r.unwrap_err();
            assert!(err.to_string().contains("tls-rustcrypto"), "{err}");
            return;
        }
        let c = r.unwrap();
        assert_eq!(c.security_protocol, SecurityProtocol::Ssl);
        assert_eq!(c.tls.ca_location, Some(PathBuf::from("/ca.pem")));
        assert_eq!(
            c.tls.certificate_location,
            Some(PathBuf::from("/client.pem"))
        );
        assert_eq!(c.tls.key_location, Some(PathBuf::from("/client.key")));
        assert!(!c.tls.verify_hostname);
        assert_eq!(c.request_timeout, Duration::from_millis(1500));
        assert_eq!(c.client_id.as_deref(), Some("svc"));
    }

    #[test]
    fn https_turns_hostname_verification_back_on() {
        let mut c = ConnectionConfig::default();
        c.set_property("ssl.endpoint.identification.algorithm", "none")
            .unwrap();
        assert!(!c.tls.verify_hostname);
        c.set_property("ssl.endpoint.identification.algorithm", "HTTPS")
            .unwrap();
        assert!(c.tls.verify_hostname);
        let err = c
            .set_property("ssl.endpoint.identification.algorithm", "dns")
            .unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
    }

    #[test]
    fn mistakes_are_reported() {
        let err = ConnectionConfig::from_properties([("ssl.ca.locaton", "/x")]).unwrap_err();
        assert!(err.to_string().contains("ssl.ca.locaton"), "{err}");
        let err = ConnectionConfig::from_properties([("security.protocol", "TLS")]).unwrap_err();
        assert!(err.to_string().contains("SASL_SSL"), "{err}");
        let err = ConnectionConfig::from_properties([("ssl.certificate.location", "/c.pem")])
            .unwrap_err();
        assert!(err.to_string().contains("ssl.key.location"), "{err}");
        let err = ConnectionConfig::from_properties([("request.timeout.ms", "soon")]).unwrap_err();
        assert!(err.to_string().contains("request.timeout.ms"), "{err}");
    }
}
