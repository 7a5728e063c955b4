//! Apache Kafka itself as the test peer: the broker in KRaft mode and the Java client's own tools,
//! run from the jars `scripts/install-test-deps` fetches from Maven Central with
//! `testkit/kafka/pom.xml` (`kafka_2.13`, `kafka-tools` and their runtime dependencies): one folder
//! per version under `~/.cache/kbus/kafka-VERSION/libs` (`$KBUS_CACHE` moves it), about 55 MB and
//! under a minute per version the first time, skipped when present. The versions are listed in
//! `testkit/kafka/versions`: the newest 4.x Maven Central serves, the oldest 4.0.x, the last 3.x and
//! the oldest 3.0.x. Java 17 or newer runs them (`$JAVA_HOME/bin/java`, else `java` on `PATH`). The
//! Java tools below name 4.x classes: run them on 4.x nodes.
//!
//! - [`Kafka`]: one node (broker and controller in one process) on free loopback ports, with any
//!   mix of listeners ([`Security`]: PLAINTEXT, SASL_PLAINTEXT with PLAIN and SCRAM users, SSL with
//!   or without client certificates, SASL_SSL), formatted storage in a temp dir, a small heap. It
//!   is killed when dropped (also when a test panics, and when the test process dies: a watchdog
//!   process holds a pipe from it), and its log is kept and printed for a failing test.
//! - [`KafkaCluster`]: three such nodes forming one cluster (a controller quorum of three), with
//!   replication factor 3 and `min.insync.replicas=2`, whose nodes can be killed and restarted.
//! - [`JavaTool`]: runs one of the Java client's tools (verifiable producer and consumer, console
//!   producer and consumer, performance tools, transactional copier) against it, as a finished
//!   command or as a process whose output lines arrive as they are printed.
//!
//! Starting a node takes about 5 s on 2 cores (a JVM) and about 0.5 GB of memory; tests share one
//! per process where they don't interfere (see [`Kafka::shared`]), and start a
//! [`KafkaCluster`] only for failover. The `kafka-node` binary of this crate runs one node for
//! scripts (`scripts/demo`).
//!
//! The node's settings are those of a small, quick test broker: `group.initial.rebalance.delay.ms=0`,
//! 5 partitions for the offsets and transaction topics, timed-out transactions aborted within a
//! second, a dead broker fenced within 4 s and out of the ISR within 5 s; the builder overrides any
//! of them.

mod cluster;
pub mod console;
mod java;
mod node;
mod verifiable;

pub use cluster::KafkaCluster;
pub use java::{JavaOutput, JavaProcess, JavaTool};
pub use node::{Kafka, KafkaBuilder, LogOnFailure, Security, User};
pub use verifiable::{ConsumerEvent, TopicPartitionOffset};

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

/// Which Kafka release to run: one of the lines of `testkit/kafka/versions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KafkaVersion {
    /// The newest 4.x release Maven Central serves here.
    Newest,
    /// The oldest 4.0.x release: the floor of protocol versions KIP-896 left.
    Floor,
    /// The last 3.x release: brokers many clusters still run (the Java client 4.x supports
    /// brokers from 2.1).
    Last3x,
    /// The oldest 3.0.x release: KRaft's first (preview) release, and the last whose Fetch (v12)
    /// names topics instead of topic ids, so fetch sessions there are kept by name.
    First3x,
}

const VERSIONS: &str = include_str!("../../kafka/versions");

impl KafkaVersion {
    /// The release number, e.g. `4.4.0`.
    pub fn number(self) -> &'static str {
        let role = match self {
            KafkaVersion::Newest => "newest",
            KafkaVersion::Floor => "floor",
            KafkaVersion::Last3x => "last-3.x",
            KafkaVersion::First3x => "first-3.x",
        };
        VERSIONS
            .lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(r, _)| *r == role)
            .map(|(_, v)| v.trim())
            .unwrap_or_else(|| panic!("testkit/kafka/versions names no {role} version"))
    }

    /// The folder holding this release's jars (the broker, the tools and their dependencies).
    /// Panics, saying what to run, when they have not been fetched.
    pub fn libs(self) -> PathBuf {
        let cache = std::env::var_os("KBUS_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kbus")))
            .unwrap_or_else(|| PathBuf::from(".cache/kbus"));
        let dir = cache.join(format!("kafka-{}", self.number()));
        assert!(
            dir.join("complete").exists(),
            "Apache Kafka {} is not in {}: run scripts/install-test-deps first",
            self.number(),
            dir.display()
        );
        dir.join("libs")
    }

    /// The Java class path of this release (`DIR/*`, expanded by the JVM).
    pub fn classpath(self) -> String {
        format!("{}/*", self.libs().display())
    }
}

/// The `java` to run: `$JAVA_HOME/bin/java` when set, else the one on `PATH`.
pub(crate) fn java() -> PathBuf {
    match std::env::var_os("JAVA_HOME") {
        Some(home) if PathBuf::from(&home).join("bin/java").exists() => {
            PathBuf::from(home).join("bin/java")
        }
        _ => PathBuf::from("java"),
    }
}

/// A `sh` that kills process `pid` (and removes `dir`) once its stdin reaches end-of-file: when
/// the returned pipe is dropped, or when the process holding it dies, however it dies. Kill the
/// shell first to keep `pid` and `dir` alive.
pub(crate) fn watchdog(pid: u32, dir: Option<&Path>) -> (Child, ChildStdin) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("read _ignored; kill -9 \"$0\" 2>/dev/null; [ -z \"$1\" ] || rm -rf \"$1\"")
        .arg(pid.to_string())
        .arg(dir.map(|d| d.as_os_str().to_owned()).unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the watchdog shell");
    let pipe = child.stdin.take().expect("piped");
    (child, pipe)
}
