//! Several Kafka nodes forming one cluster: each node is broker and controller, the controllers
//! form a static quorum, and topics default to one replica per node with
//! `min.insync.replicas = nodes - 1`. Nodes can be killed and restarted one at a time while the
//! others keep serving.

use std::time::{Duration, Instant};

use kbus::cluster::{Cluster, ClusterConfig};

use super::node::{random_cluster_id, Kafka, KafkaBuilder, LogOnFailure};
use crate::free_port;

/// How long every broker may take to register with the controllers after the nodes started.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(120);

/// A running cluster; every node is killed when it is dropped.
#[derive(Debug)]
pub struct KafkaCluster {
    nodes: Vec<Kafka>,
}

impl KafkaCluster {
    /// Starts `n` nodes from `builder` and waits until each broker is registered and unfenced.
    pub(super) fn start(builder: KafkaBuilder, n: usize) -> Self {
        assert!(n >= 1);
        let voters: Vec<(i32, u16)> = (1..=n as i32).map(|id| (id, free_port())).collect();
        let cluster_id = random_cluster_id();
        let mut nodes: Vec<Kafka> = voters
            .iter()
            .map(|(id, port)| {
                Kafka::prepare(
                    &builder,
                    *id,
                    &voters,
                    &cluster_id,
                    &[("CONTROLLER".into(), *port)],
                )
            })
            .collect();
        // A node finishes starting only once a quorum of controllers runs: launch all first.
        let starting: Vec<_> = nodes.iter_mut().map(|node| node.launch()).collect();
        for (node, starting) in nodes.iter().zip(starting) {
            if let Err(e) = node.wait_ready(starting) {
                panic!("{e}");
            }
        }
        let cluster = KafkaCluster { nodes };
        cluster.wait_for_brokers(n);
        cluster
    }

    /// Every node's `PLAINTEXT` address, comma-separated, to bootstrap from.
    pub fn bootstrap(&self) -> String {
        let addrs: Vec<String> = self.nodes.iter().map(|n| n.bootstrap()).collect();
        addrs.join(",")
    }

    /// The nodes, in id order (ids start at 1).
    pub fn nodes(&self) -> &[Kafka] {
        &self.nodes
    }

    /// Node `id` (1-based), to kill or restart.
    pub fn node(&mut self, id: i32) -> &mut Kafka {
        self.nodes
            .iter_mut()
            .find(|n| n.id() == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Moves every partition's leadership back to its preferred replica (the first of its
    /// replicas) with Kafka's own leader-election tool; partitions already led by it stay.
    pub fn elect_preferred_leaders(&self) -> super::JavaOutput {
        let version = self.nodes[0].version();
        super::JavaTool::new(version, "org.apache.kafka.tools.LeaderElectionCommand")
            .args(["--bootstrap-server", &self.bootstrap()])
            .args(["--election-type", "PREFERRED", "--all-topic-partitions"])
            .run(Duration::from_secs(120))
    }

    /// Guards printing each node's log if the current thread panics; see
    /// [`Kafka::log_on_failure`].
    pub fn log_on_failure(&self) -> Vec<LogOnFailure> {
        self.nodes.iter().map(|n| n.log_on_failure()).collect()
    }

    /// Waits until the cluster's metadata lists `n` brokers (all registered and unfenced), asked
    /// with kbus on a runtime of its own (callers may be inside one).
    pub fn wait_for_brokers(&self, n: usize) {
        let bootstrap = self.bootstrap();
        let seen = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                let deadline = Instant::now() + REGISTER_TIMEOUT;
                let mut last = 0;
                while Instant::now() < deadline {
                    if let Ok(cluster) = Cluster::connect(ClusterConfig::new(&bootstrap)).await {
                        if let Ok(md) = cluster.refresh(&[]).await {
                            last = md.brokers.len();
                            if last >= n {
                                return last;
                            }
                        }
                    }
                    // Brokers register in the background: ask again shortly.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                last
            })
        })
        .join()
        .expect("the registration probe");
        if seen < n {
            let logs: Vec<String> = self
                .nodes
                .iter()
                .map(|node| format!("node {}:\n{}", node.id(), node.log_tail(30)))
                .collect();
            panic!(
                "only {seen} of {n} brokers registered within {REGISTER_TIMEOUT:?}\n{}",
                logs.join("\n")
            );
        }
    }
}
