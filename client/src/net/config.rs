//! Connection settings from Kafka client properties (the Java client's / librdkafka's names).

use std::path::PathBuf;
use std::time::Duration;

use super::connection::ConnectionConfig;
use super::sasl::{Credentials, Mechanism, SaslConfig};
use super::tls;
use crate::error::{Error, Result};

impl ConnectionConfig {
    /// Settings from `key = value` client properties, starting from the defaults.
    ///
    /// Understood here: `client.id`, `request.timeout.ms`, `socket.connection.setup.timeout.ms`,
    /// `security.protocol` (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`), `ssl.ca.location`,
    /// `ssl.certificate.location`, `ssl.key.location` and `ssl.endpoint.identification.algorithm`
    /// (`https`, the default, checks the broker's host name; empty or `none` does not, while still
    /// checking the certificate chain). Other `ssl.*` keys are an error, so a typo is not silently
    /// ignored; keys of other layers (`bootstrap.servers`, `acks`, `sasl.*`, ...) are left to them.
    ///
    /// ```
    /// use kbus_client::net::{ConnectionConfig, SecurityProtocol};
    /// # fn main() -> kbus_client::Result<()> {
    /// # if !cfg!(any(feature = "tls-rustcrypto", feature = "tls-ring")) { return Ok(()); }
    /// let config = ConnectionConfig::from_properties([
    ///     ("security.protocol", "SSL"),
    ///     ("ssl.ca.location", "/etc/kafka/ca.pem"),
    /// ])?;
    /// assert_eq!(config.security_protocol, SecurityProtocol::Ssl);
    /// assert!(config.tls.verify_hostname);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_properties<I, K, V>(properties: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = ConnectionConfig::default();
        let (mut mechanism, mut username, mut password) = (None, None, None);
        for (key, value) in properties {
            let (key, value) = (key.as_ref().trim(), value.as_ref());
            match key {
                "sasl.mechanism" => mechanism = Some(value.trim().parse::<Mechanism>()?),
                "sasl.username" => username = Some(value.to_owned()),
                "sasl.password" => password = Some(value.to_owned()),
                _ => {
                    config.set_property(key, value)?;
                }
            }
        }
        if config.security_protocol.uses_sasl() || mechanism.is_some() || username.is_some() {
            match (mechanism, username, password) {
                (Some(m), Some(u), Some(p)) => {
                    config.sasl = Some(SaslConfig::new(m, Credentials::new(u, p)));
                }
                _ => {
                    return Err(Error::Config {
                        message: "SASL needs sasl.mechanism (PLAIN, SCRAM-SHA-256 or \
                                  SCRAM-SHA-512), sasl.username and sasl.password together"
                            .into(),
                    })
                }
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Applies one property; false when the key belongs to another layer (nothing changed).
    pub fn set_property(&mut self, key: &str, value: &str) -> Result<bool> {
        let value = value.trim();
        let path = || (!value.is_empty()).then(|| PathBuf::from(value));
        match key.trim() {
            "client.id" => self.client_id = (!value.is_empty()).then(|| value.to_owned()),
            "request.timeout.ms" => self.request_timeout = millis(key, value)?,
            "socket.connection.setup.timeout.ms" => self.connect_timeout = millis(key, value)?,
            "security.protocol" => self.security_protocol = value.parse()?,
            "ssl.ca.location" => self.tls.ca_location = path(),
            "ssl.certificate.location" => self.tls.certificate_location = path(),
            "ssl.key.location" => self.tls.key_location = path(),
            "ssl.endpoint.identification.algorithm" => {
                self.tls.verify_hostname = match value.to_ascii_lowercase().as_str() {
                    "https" => true,
                    "" | "none" => false,
                    _ => {
                        return Err(Error::Config {
                            message: format!(
                                "ssl.endpoint.identification.algorithm {value:?}: use https (check \
                                 the host name) or leave it empty (do not)"
                            ),
                        })
                    }
                }
            }
            k if k.starts_with("ssl.") => {
                return Err(Error::Config {
                    message: format!(
                        "{k} is not supported (known: ssl.ca.location, ssl.certificate.location, \
                         ssl.key.location, ssl.endpoint.identification.algorithm)"
                    ),
                })
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks settings that only make sense together.
    fn validate(&self) -> Result<()> {
        tls::check_available(self.security_protocol)?;
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

fn millis(key: &str, value: &str) -> Result<Duration> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| Error::Config {
            message: format!("{key} {value:?} is not a number of milliseconds"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::SecurityProtocol;

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
