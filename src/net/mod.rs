//! The network layer: connections to brokers over TCP, with request pipelining, timeouts and
//! version negotiation. It knows frames and correlation ids, not topics or groups.

mod connection;

pub use connection::{Connection, ConnectionConfig};
