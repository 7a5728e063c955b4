//! How a command fails: one line on stderr and an exit status that says what kind of failure it
//! was, so scripts can tell a typo from a dead broker from a refused password.

use std::fmt;
use std::process::ExitCode;

/// The kinds, each with its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Anything else (1).
    Other = 1,
    /// The command line or a properties file is wrong (2, as clap's own usage errors).
    Usage = 2,
    /// No broker could be reached, or it did not answer in time (3).
    Connection = 3,
    /// SASL or TLS refused (4).
    Authentication = 4,
    /// Some records failed, the others went through (5).
    Partial = 5,
}

#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Kind::Usage, message)
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind as u8)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The kind of a library error.
pub fn kind_of(e: &kbus::Error) -> Kind {
    use kbus::Error as E;
    match e {
        E::Authentication { .. } | E::Tls { .. } => Kind::Authentication,
        E::Io { .. }
        | E::ConnectTimeout { .. }
        | E::RequestTimeout { .. }
        | E::Disconnected { .. }
        | E::UnknownBroker { .. } => Kind::Connection,
        E::Config { .. } | E::Misuse { .. } => Kind::Usage,
        _ => Kind::Other,
    }
}

impl From<kbus::Error> for Failure {
    fn from(e: kbus::Error) -> Failure {
        Failure::new(kind_of(&e), e.to_string())
    }
}

impl From<kbus::bus::BusError> for Failure {
    fn from(e: kbus::bus::BusError) -> Failure {
        let kind = match &e {
            kbus::bus::BusError::Client(k) => kind_of(k),
            kbus::bus::BusError::Config(_) => Kind::Usage,
            _ => Kind::Other,
        };
        Failure::new(kind, e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::new(Kind::Other, e.to_string())
    }
}
