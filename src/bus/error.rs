//! The bus's error type.

use std::fmt;
use std::time::Duration;

use super::dead_letter::ReplayRefused;
use super::wire::EnvelopeError;

/// Errors of the event bus.
#[derive(Debug)]
#[non_exhaustive]
pub enum BusError {
    /// An event could not be written or read.
    Envelope(EnvelopeError),
    /// The Kafka client failed (a broker, the network, a setting).
    Client(Box<kbus_client::Error>),
    /// The bus's settings are unusable.
    Config(String),
    /// The bus was shut down.
    Closed,
    /// Shutting down did not finish in time; what was left was abandoned.
    ShutdownTimedOut(Duration),
    /// A dead letter was not replayed: the guard refused it.
    ReplayRefused(ReplayRefused),
    /// No record where one was asked for (a dead letter at a partition and offset).
    NotFound(String),
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::Envelope(e) => e.fmt(f),
            BusError::Client(e) => e.fmt(f),
            BusError::Config(m) => write!(f, "bus settings: {m}"),
            BusError::Closed => f.write_str("the event bus is shut down"),
            BusError::ShutdownTimedOut(after) => {
                write!(f, "shutting the event bus down took longer than {after:?}")
            }
            BusError::ReplayRefused(e) => e.fmt(f),
            BusError::NotFound(what) => write!(f, "not found: {what}"),
        }
    }
}

impl std::error::Error for BusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BusError::Envelope(e) => Some(e),
            BusError::Client(e) => Some(e.as_ref()),
            BusError::ReplayRefused(e) => Some(e),
            _ => None,
        }
    }
}

impl From<EnvelopeError> for BusError {
    fn from(e: EnvelopeError) -> BusError {
        BusError::Envelope(e)
    }
}

impl From<kbus_client::Error> for BusError {
    fn from(e: kbus_client::Error) -> BusError {
        BusError::Client(Box::new(e))
    }
}

impl From<ReplayRefused> for BusError {
    fn from(e: ReplayRefused) -> BusError {
        BusError::ReplayRefused(e)
    }
}
