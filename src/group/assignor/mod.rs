//! Partition assignors: how the group leader spreads the subscribed partitions over the members.

use std::collections::BTreeMap;
use std::fmt::Debug;

use bytes::Bytes;

use crate::TopicPartition;

/// Whether a rebalance revokes everything first (eager) or only what moves (cooperative, KIP-429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Every member gives up all its partitions before rejoining.
    Eager,
    /// Members keep what they own; only partitions that move are revoked, in a second rebalance.
    Cooperative,
}

/// One member as the leader sees it in the JoinGroup answer, its subscription decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id` (static membership), if any.
    pub group_instance_id: Option<String>,
    /// The topics it subscribes to.
    pub topics: Vec<String>,
    /// The partitions it owned in the previous generation (subscription v1+).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation those partitions were owned in (subscription v2+, -1 when unknown).
    pub generation_id: i32,
    /// Its rack (subscription v3+).
    pub rack_id: Option<String>,
    /// Assignor-specific bytes.
    pub user_data: Option<Bytes>,
}

/// A strategy for assigning partitions to group members.
pub trait Assignor: Send + Sync + Debug {
    /// The protocol name sent in JoinGroup (`range`, `roundrobin`, `cooperative-sticky`).
    fn name(&self) -> &'static str;
    /// Eager or cooperative.
    fn protocol(&self) -> RebalanceProtocol;
    /// Assigns the partitions of the subscribed topics (`partitions` maps topic → partition count)
    /// to `members`. Returns member id → its partitions; every member id appears, every partition
    /// of a subscribed topic with a subscriber is assigned exactly once.
    fn assign(
        &self,
        members: &[MemberSubscription],
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>>;
}
