//! librdkafka's mock cluster in a child process (the `mock-cluster` binary of this crate), for
//! benchmarks that measure the client's own CPU time: the in-process [`crate::mock_cluster`] would
//! add the brokers' work to the caller's `getrusage`/`/proc/self/stat` figures.
//!
//! The binary is `$KBUS_MOCK_CLUSTER_BIN` when that is set; otherwise it is built (a no-op when
//! fresh) with `cargo build -p kbus-testkit --bin mock-cluster` in the profile the calling
//! executable was built in (`release` for `cargo bench`), and cargo's own report says where it is.
//! The child is killed when the handle is dropped; it also exits by itself when its stdin closes,
//! so it does not outlive a parent that dies without unwinding.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kbus::protocol::error_code::ErrorCode;
use kbus::protocol::ApiKey;

use crate::mock_cluster::TESTED_GROUP_VERSIONS;

/// One topic to create when the cluster starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockTopic {
    /// Topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replicas per partition (at most the broker count).
    pub replication: i32,
}

impl MockTopic {
    /// `name` with `partitions` partitions, each on `replication` brokers.
    pub fn new(name: impl Into<String>, partitions: i32, replication: i32) -> Self {
        MockTopic {
            name: name.into(),
            partitions,
            replication,
        }
    }
}

/// A mock cluster running in a child process; killed when dropped.
pub struct MockClusterProcess {
    child: Child,
    /// Held open: the child serves until it reads end-of-file here.
    stdin: Option<ChildStdin>,
    bootstrap: String,
}

impl std::fmt::Debug for MockClusterProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockClusterProcess")
            .field("pid", &self.child.id())
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}

impl MockClusterProcess {
    /// Starts `brokers` brokers with one topic of `partitions` partitions, replicated on every
    /// broker.
    pub fn spawn(brokers: i32, topic: &str, partitions: i32) -> Self {
        Self::spawn_topics(brokers, &[MockTopic::new(topic, partitions, brokers)])
    }

    /// Starts `brokers` brokers with `topics` created, and waits until they listen.
    pub fn spawn_topics(brokers: i32, topics: &[MockTopic]) -> Self {
        Self::spawn_with(brokers, topics, &[])
    }

    /// Like [`spawn_topics`](Self::spawn_topics), with the group APIs limited to the versions
    /// the mock reads right ([`TESTED_GROUP_VERSIONS`]): for consumer groups.
    pub fn spawn_for_groups(brokers: i32, topics: &[MockTopic]) -> Self {
        let versions: Vec<(ApiKey, i16, i16)> = TESTED_GROUP_VERSIONS
            .iter()
            .map(|(api, max)| (*api, 0, *max))
            .collect();
        Self::spawn_with(brokers, topics, &versions)
    }

    /// Starts `brokers` brokers with `topics`, each API of `api_versions` limited to its
    /// `min..=max`.
    pub fn spawn_with(
        brokers: i32,
        topics: &[MockTopic],
        api_versions: &[(ApiKey, i16, i16)],
    ) -> Self {
        let bin = binary();
        let mut command = Command::new(&bin);
        command.args(["--brokers", &brokers.to_string()]);
        for (api, min, max) in api_versions {
            command.args(["--api-version", &format!("{}:{min}:{max}", api.as_i16())]);
        }
        for t in topics {
            command.args([
                "--topic",
                &format!("{}:{}:{}", t.name, t.partitions, t.replication),
            ]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        // The first line is the bootstrap list; read it on a thread so a hung child times out.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let bootstrap = line.trim().to_owned();
        let mut process = MockClusterProcess {
            child,
            stdin,
            bootstrap,
        };
        if process.bootstrap.is_empty() {
            let status = process.child.try_wait().ok().flatten();
            drop(process);
            panic!(
                "{} printed no bootstrap list within 30 s (exit status: {status:?})",
                bin.display()
            );
        }
        process
    }

    /// The `bootstrap.servers` list: every broker, comma separated.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The next `codes.len()` requests of `api` fail with these codes, in order (as
    /// [`MockCluster::push_request_errors`](crate::mock_cluster::MockCluster::push_request_errors)).
    pub fn push_request_errors(&mut self, api: ApiKey, codes: &[ErrorCode]) {
        let codes: Vec<String> = codes.iter().map(|c| c.0.to_string()).collect();
        self.command(&format!("errors {} {}", api.as_i16(), codes.join(" ")));
    }

    /// The broker that gets the next request of `api` drops that connection instead of
    /// answering.
    pub fn push_disconnect(&mut self, api: ApiKey) {
        self.command(&format!("disconnect {}", api.as_i16()));
    }

    /// Makes broker `leader` lead `topic`/`partition`.
    pub fn set_leader(&mut self, topic: &str, partition: i32, leader: i32) {
        self.command(&format!("leader {topic} {partition} {leader}"));
    }

    /// Makes broker `id` coordinate group `group_id`.
    pub fn set_group_coordinator(&mut self, group_id: &str, id: i32) {
        self.command(&format!("coordinator {group_id} {id}"));
    }

    /// Delays every broker's answers by `delay`.
    pub fn set_round_trip_time(&mut self, delay: Duration) {
        self.command(&format!("rtt {}", delay.as_millis()));
    }

    /// Writes one command line to the child (applied in order; the child reports bad ones on its
    /// standard error).
    fn command(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self
            .stdin
            .as_mut()
            .expect("the mock cluster's stdin is open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("mock-cluster: cannot send {line:?}: {e}"));
    }

    /// The child's process id (to read its CPU time from `/proc/PID/stat`, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for MockClusterProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `mock-cluster` executable: `$KBUS_MOCK_CLUSTER_BIN`, or built by cargo.
fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KBUS_MOCK_CLUSTER_BIN") {
        return PathBuf::from(p);
    }
    crate::binaries::testkit_binary("mock-cluster")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn the_child_serves_every_broker_until_dropped() {
        let cluster = MockClusterProcess::spawn(3, "t", 2);
        let brokers: Vec<String> = cluster.bootstrap().split(',').map(str::to_owned).collect();
        assert_eq!(brokers.len(), 3, "bootstrap {}", cluster.bootstrap());
        for b in &brokers {
            TcpStream::connect(b).unwrap_or_else(|e| panic!("broker {b} does not listen: {e}"));
        }
        let pid = cluster.pid();
        drop(cluster);
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "the mock cluster process {pid} outlived its handle"
        );
    }
}
