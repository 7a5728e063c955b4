//! librdkafka's mock cluster (through the `rdkafka` crate): N in-process brokers on loopback ports,
//! with topics created directly, partition leaders moved, brokers taken down and up, request errors
//! injected and round trips delayed. The multi-broker and fault-injection peer of the test suite
//! (tansu is a single broker).
//!
//! The brokers have ids `1..=N` and run on librdkafka's own threads inside the test process; they
//! are destroyed when the [`MockCluster`] is dropped, also when a test panics. Every control call
//! below is synchronous: the change has happened when it returns.
//!
//! Known limits of the mock (librdkafka 2.12): no admin APIs (CreateTopics, DeleteTopics,
//! DescribeConfigs, ...), so topics are made with [`MockCluster::create_topic`]; no SASL or TLS;
//! ApiVersions only up to v2.

use std::time::Duration;

use kbus::protocol::error_code::ErrorCode;
use kbus::protocol::ApiKey;
use rdkafka::mocking::{MockCluster as RdMockCluster, MockCoordinator};
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// A running mock cluster.
pub struct MockCluster {
    /// Owns the cluster and the librdkafka client handle it runs on; dropping it destroys the
    /// brokers (closing their sockets) before the handle goes.
    inner: RdMockCluster<'static, DefaultProducerContext>,
    /// `host:port` of broker `id` at index `id - 1`.
    brokers: Vec<String>,
}

// SAFETY: `RdMockCluster` is only `!Send`/`!Sync` because it holds the raw `rd_kafka_mock_cluster_t`
// pointer. librdkafka makes that handle safe to share: every control call used here is either posted
// to the cluster's own thread through its op queue and awaited (topic create, leader, up/down, rtt,
// topic error, api versions, coordinator) or guarded by the cluster's mutex (request error stacks),
// and the bootstrap string is immutable after creation. The client handle it owns is `Send + Sync`.
unsafe impl Send for MockCluster {}
unsafe impl Sync for MockCluster {}

impl std::fmt::Debug for MockCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockCluster")
            .field("brokers", &self.brokers)
            .finish()
    }
}

impl MockCluster {
    /// Starts `brokers` mock brokers (ids `1..=brokers`) on free loopback ports.
    pub fn start(brokers: i32) -> Self {
        assert!(brokers > 0, "a mock cluster needs at least one broker");
        let inner = RdMockCluster::new(brokers)
            .unwrap_or_else(|e| panic!("cannot start a mock cluster of {brokers} brokers: {e}"));
        // librdkafka lists the brokers in id order (1, 2, ...) as `host:port,host:port,...`.
        let addrs: Vec<String> = inner
            .bootstrap_servers()
            .split(',')
            .map(str::to_owned)
            .collect();
        assert_eq!(
            addrs.len(),
            brokers as usize,
            "unexpected mock bootstrap list {addrs:?}"
        );
        MockCluster {
            inner,
            brokers: addrs,
        }
    }

    /// The `bootstrap.servers` list: every broker, comma separated.
    pub fn bootstrap(&self) -> String {
        self.brokers.join(",")
    }

    /// The broker ids, `1..=N`.
    pub fn broker_ids(&self) -> Vec<i32> {
        (1..=self.brokers.len() as i32).collect()
    }

    /// `host:port` of broker `id` (as its metadata advertises it).
    pub fn broker_addr(&self, id: i32) -> &str {
        usize::try_from(id)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| self.brokers.get(i))
            .unwrap_or_else(|| {
                panic!(
                    "mock broker {id} does not exist (ids are 1..={})",
                    self.brokers.len()
                )
            })
    }

    /// The broker id listening on `addr`, if one does.
    pub fn broker_id(&self, addr: &str) -> Option<i32> {
        self.brokers
            .iter()
            .position(|a| a == addr)
            .map(|i| i as i32 + 1)
    }

    /// Creates `topic` with `partitions` partitions, each on `replication` brokers (the mock has no
    /// CreateTopics API). Replicas are placed round robin; the leader is a random replica, so with
    /// `replication` 1 partition `p` is led by broker `p % N + 1`.
    pub fn create_topic(&self, topic: &str, partitions: i32, replication: i32) {
        self.inner
            .create_topic(topic, partitions, replication)
            .unwrap_or_else(|e| panic!("mock: cannot create topic {topic}: {e}"));
    }

    /// Makes broker `leader` the leader of `topic`/`partition` (creating the topic if needed), or
    /// leaves the partition without a leader when `None`. Bumps the partition's leader epoch.
    pub fn set_leader(&self, topic: &str, partition: i32, leader: Option<i32>) {
        self.inner
            .partition_leader(topic, partition, leader)
            .unwrap_or_else(|e| panic!("mock: cannot set leader of {topic}/{partition}: {e}"));
    }

    /// Makes broker `follower` the preferred read replica of `topic`/`partition` (KIP-392).
    pub fn set_follower(&self, topic: &str, partition: i32, follower: i32) {
        self.inner
            .partition_follower(topic, partition, follower)
            .unwrap_or_else(|e| panic!("mock: cannot set follower of {topic}/{partition}: {e}"));
    }

    /// Takes broker `id` down: its open connections are closed and new ones refused (the port
    /// stays reserved). Partition leadership does not move: do that with [`Self::set_leader`].
    pub fn broker_down(&self, id: i32) {
        self.broker_addr(id);
        self.inner
            .broker_down(id)
            .unwrap_or_else(|e| panic!("mock: cannot take broker {id} down: {e}"));
    }

    /// Brings broker `id` back up on the same port.
    pub fn broker_up(&self, id: i32) {
        self.broker_addr(id);
        self.inner
            .broker_up(id)
            .unwrap_or_else(|e| panic!("mock: cannot bring broker {id} up: {e}"));
    }

    /// Delays every response of broker `id` (all brokers when `None`) by `delay`.
    pub fn set_round_trip_time(&self, id: Option<i32>, delay: Duration) {
        self.inner
            .broker_round_trip_time(id.unwrap_or(-1), delay)
            .unwrap_or_else(|e| panic!("mock: cannot set round trip time: {e}"));
    }

    /// Sets the rack broker `id` (all brokers when `None`) reports in metadata.
    pub fn set_rack(&self, id: Option<i32>, rack: &str) {
        self.inner
            .broker_rack(id.unwrap_or(-1), rack)
            .unwrap_or_else(|e| panic!("mock: cannot set rack: {e}"));
    }

    /// Queues error codes for the next requests of `api`, on any broker: the next request of that
    /// API fails with `codes[0]` (for every partition in it, for partitioned APIs), the one after
    /// with `codes[1]`, and so on; later requests succeed again.
    ///
    /// Only APIs the mock implements consult the queue; Metadata does not.
    pub fn push_request_errors(&self, api: ApiKey, codes: &[ErrorCode]) {
        let errors: Vec<RDKafkaRespErr> = codes.iter().map(|&c| resp_err(c)).collect();
        self.inner.request_errors(rd_api_key(api), &errors);
    }

    /// Makes the broker that gets the next request of `api` drop that connection instead of
    /// answering (librdkafka's `_TRANSPORT` pseudo error).
    pub fn push_disconnect(&self, api: ApiKey) {
        self.inner.request_errors(
            rd_api_key(api),
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR__TRANSPORT],
        );
    }

    /// Drops the queued errors of `api` that were not used up.
    pub fn clear_request_errors(&self, api: ApiKey) {
        self.inner.clear_request_errors(rd_api_key(api));
    }

    /// Makes Metadata report `code` for `topic` (`ErrorCode::NONE` to clear it).
    pub fn set_topic_error(&self, topic: &str, code: ErrorCode) {
        self.inner
            .topic_error(topic, resp_err(code))
            .unwrap_or_else(|e| panic!("mock: cannot set the error of topic {topic}: {e}"));
    }

    /// Limits the versions of `api` the brokers offer (and accept) to `min..=max`; `None` for
    /// both removes the API.
    pub fn set_api_versions(&self, api: ApiKey, min: Option<i16>, max: Option<i16>) {
        self.inner
            .apiversion(rd_api_key(api), min, max)
            .unwrap_or_else(|e| panic!("mock: cannot set versions of {api:?}: {e}"));
    }

    /// Makes broker `id` the coordinator of group `group_id` (by default the mock picks one by
    /// hashing the group id).
    pub fn set_group_coordinator(&self, group_id: &str, id: i32) {
        self.broker_addr(id);
        self.inner
            .coordinator(MockCoordinator::Group(group_id.into()), id)
            .unwrap_or_else(|e| panic!("mock: cannot make broker {id} coordinate {group_id}: {e}"));
    }

    /// Limits the classic group APIs to the versions librdkafka's own consumer uses (JoinGroup
    /// 0–5, SyncGroup 0–3, Heartbeat 0–3, LeaveGroup 0–1), the only ones the mock reads right.
    /// The mock offers more, but it reads JoinGroup v6's and SyncGroup v4's arrays (flexible
    /// versions) with fixed-size counts, dropping the connection, and LeaveGroup v3+'s batch of
    /// members as v0's single member id, never finding the member. Call it before a group test.
    pub fn use_tested_group_versions(&self) {
        for (api, max) in TESTED_GROUP_VERSIONS {
            self.set_api_versions(api, Some(0), Some(max));
        }
    }
}

/// The newest version of each classic group API the mock reads right (see
/// [`MockCluster::use_tested_group_versions`]).
pub const TESTED_GROUP_VERSIONS: [(ApiKey, i16); 4] = [
    (ApiKey::JoinGroup, 5),
    (ApiKey::SyncGroup, 3),
    (ApiKey::Heartbeat, 3),
    (ApiKey::LeaveGroup, 1),
];

/// librdkafka's error enum for a Kafka error code.
fn resp_err(code: ErrorCode) -> RDKafkaRespErr {
    RDKafkaRespErr::try_from(i32::from(code.0))
        .unwrap_or_else(|_| panic!("librdkafka does not know error code {}", code.0))
}

/// librdkafka's API key enum for a kbus one (the APIs the mock implements).
fn rd_api_key(api: ApiKey) -> RDKafkaApiKey {
    match api {
        ApiKey::Produce => RDKafkaApiKey::Produce,
        ApiKey::Fetch => RDKafkaApiKey::Fetch,
        ApiKey::ListOffsets => RDKafkaApiKey::ListOffsets,
        ApiKey::Metadata => RDKafkaApiKey::Metadata,
        ApiKey::OffsetCommit => RDKafkaApiKey::OffsetCommit,
        ApiKey::OffsetFetch => RDKafkaApiKey::OffsetFetch,
        ApiKey::FindCoordinator => RDKafkaApiKey::FindCoordinator,
        ApiKey::JoinGroup => RDKafkaApiKey::JoinGroup,
        ApiKey::Heartbeat => RDKafkaApiKey::Heartbeat,
        ApiKey::LeaveGroup => RDKafkaApiKey::LeaveGroup,
        ApiKey::SyncGroup => RDKafkaApiKey::SyncGroup,
        ApiKey::DescribeGroups => RDKafkaApiKey::DescribeGroups,
        ApiKey::ListGroups => RDKafkaApiKey::ListGroups,
        ApiKey::ApiVersions => RDKafkaApiKey::ApiVersion,
        ApiKey::CreateTopics => RDKafkaApiKey::CreateTopics,
        ApiKey::DeleteTopics => RDKafkaApiKey::DeleteTopics,
        ApiKey::InitProducerId => RDKafkaApiKey::InitProducerId,
        ApiKey::DescribeConfigs => RDKafkaApiKey::DescribeConfigs,
        other => panic!("no librdkafka mock API key mapped for {other:?}"),
    }
}
