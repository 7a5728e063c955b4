//! Real peers for kbus's tests, examples and benchmarks, each started on free loopback ports and torn
//! down when dropped (also when a test panics):
//!
//! - [`tansu`]: the tansu 0.6.0 broker on SQLite storage, optionally with SCRAM users, optionally
//!   advertising another port (a TLS proxy's);
//! - [`stunnel`]: stunnel in front of a broker for TLS and mutual TLS, with certificates (good,
//!   expired, wrong host, unknown CA) generated at run time;
//! - [`mock_cluster`]: librdkafka's in-process mock cluster (several brokers, leader moves, brokers
//!   down, injected errors and delays), through the `rdkafka` crate.
//!
//! `scripts/install-test-deps` installs what these need.

pub mod mock_cluster;
pub mod stunnel;
pub mod tansu;
