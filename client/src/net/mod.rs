//! The network layer: connections to brokers over TCP, with request pipelining, timeouts and
//! version negotiation. It knows frames and correlation ids, not topics or groups.
//!
//! [`tls`] secures a connection with rustls; [`ConnectionConfig`] (a [`Settings`](crate::Settings) component) reads
//! `security.protocol` and the `ssl.*` settings.
//!
//! [`sasl`] authenticates a connection (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).

mod config;
mod connection;
pub mod sasl;
pub mod tls;

pub use connection::{Connection, ConnectionConfig};
pub use tls::{SecurityProtocol, TlsConfig, TlsProvider};
