//! Real peers for kbus's tests, examples and benchmarks, each started on free loopback ports and torn
//! down when dropped (also when a test panics):
//!
//! - [`tansu`]: the tansu 0.6.0 broker on SQLite storage, optionally with SCRAM users, optionally
//!   advertising another port (a TLS proxy's);
//! - [`stunnel`]: stunnel in front of a broker for TLS and mutual TLS, with certificates (good,
//!   expired, wrong host, unknown CA) generated at run time;
//! - [`mock_cluster`]: librdkafka's in-process mock cluster (several brokers, leader moves, brokers
//!   down, injected errors and delays), through the `rdkafka` crate;
//! - [`mock_process`]: the same mock cluster in a child process (the `mock-cluster` binary), for
//!   benchmarks that measure the client's own CPU time;
//! - [`kafka`]: Apache Kafka itself (KRaft, from Maven Central) — single nodes with any listeners
//!   and users, 3-node clusters, and the Java client's tools as peers (the `kafka-node` binary runs
//!   one node for scripts);
//! - [`proxy`]: a TCP proxy in front of a real broker that cuts or blackholes its connections;
//! - [`certs`]: the TLS certificates the TLS tests need, generated at run time.
//!
//! `scripts/install-test-deps` installs what these need.

mod binaries;
pub mod bus_member;
pub mod certs;
pub mod eventsource;
pub mod kafka;
pub mod mock_cluster;
pub mod mock_process;
pub mod proxy;
pub mod stunnel;
pub mod tansu;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A free loopback port (bound, then released), never one this process handed out before: the
/// kernel may give a port it just released to the next bind, and two listeners of one broker on
/// the same port fail its start.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = l
            .local_addr()
            .expect("a bound socket has an address")
            .port();
        if given.insert(port) {
            return port;
        }
    }
}

/// A fresh directory under the system temp dir, named for `what`, this process and a counter.
pub fn temp_dir(what: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kbus-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}
