//! Partition assignors: how the group leader spreads the subscribed partitions over the members.
//!
//! - [`RangeAssignor`] (`range`, eager): each topic's partitions in contiguous ranges.
//! - [`RoundRobinAssignor`] (`roundrobin`, eager): all partitions dealt one by one.
//! - [`CooperativeStickyAssignor`] (`cooperative-sticky`, cooperative): balanced, keeps what
//!   members own, and moves partitions in two rebalances (KIP-429).
//!
//! [`by_name`] finds one by the name a group agreed on in JoinGroup.

pub mod cooperative_sticky;
pub mod range;
pub mod roundrobin;

pub use cooperative_sticky::{withhold_moved_partitions, CooperativeStickyAssignor};
pub use range::RangeAssignor;
pub use roundrobin::RoundRobinAssignor;

use std::collections::{BTreeMap, BTreeSet};
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

/// The assignor with protocol name `name` (`range`, `roundrobin`, `cooperative-sticky`), or `None`
/// for a name this crate does not implement.
pub fn by_name(name: &str) -> Option<Box<dyn Assignor>> {
    match name {
        "range" => Some(Box::new(RangeAssignor)),
        "roundrobin" => Some(Box::new(RoundRobinAssignor)),
        "cooperative-sticky" => Some(Box::new(CooperativeStickyAssignor)),
        _ => None,
    }
}

/// Every member id with an empty list: the starting point of every assignment, so that members
/// that get nothing still appear.
fn empty_assignment(members: &[MemberSubscription]) -> BTreeMap<String, Vec<TopicPartition>> {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect()
}

/// Members with a repeated member id dropped (the first is kept), so no partition can be given
/// twice under one id.
fn unique_members(members: &[MemberSubscription]) -> Vec<&MemberSubscription> {
    let mut seen = BTreeSet::new();
    members
        .iter()
        .filter(|m| seen.insert(m.member_id.as_str()))
        .collect()
}

/// The members in the order Kafka's range and round-robin assignors deal to them: static members
/// (those with a `group.instance.id`) first, ordered by instance id, so that their share survives a
/// restart under a new member id; then dynamic members, ordered by member id.
fn dealing_order(members: &[MemberSubscription]) -> Vec<&MemberSubscription> {
    let mut out = unique_members(members);
    out.sort_by(|a, b| dealing_key(a).cmp(&dealing_key(b)));
    out
}

fn dealing_key(m: &MemberSubscription) -> (bool, &str, &str) {
    (
        m.group_instance_id.is_none(),
        m.group_instance_id.as_deref().unwrap_or(&m.member_id),
        &m.member_id,
    )
}

/// The topics a member subscribes to, as a set.
fn topic_set(member: &MemberSubscription) -> BTreeSet<&str> {
    member.topics.iter().map(String::as_str).collect()
}

/// Builders and checks shared by the assignors' tests.
#[cfg(test)]
mod testutil {
    use std::collections::{BTreeMap, BTreeSet};

    use super::MemberSubscription;
    use crate::TopicPartition;

    /// A dynamic member subscribed to `topics`, owning nothing.
    pub fn member(id: &str, topics: &[&str]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.to_owned(),
            group_instance_id: None,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
            user_data: None,
        }
    }

    /// Topic → partition count.
    pub fn topics(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    /// `t`/`p`.
    pub fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    /// Every partition of every topic someone subscribes to, given to exactly one member, and
    /// only to a member subscribed to its topic; every member appears.
    pub fn assert_exactly_once(
        members: &[MemberSubscription],
        partitions: &BTreeMap<String, i32>,
        got: &BTreeMap<String, Vec<TopicPartition>>,
    ) {
        let ids: BTreeSet<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
        let keys: BTreeSet<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(ids, keys, "every member appears, and only members");
        let mut seen = BTreeSet::new();
        for (id, tps) in got {
            let m = members.iter().find(|m| &m.member_id == id).unwrap();
            for tp in tps {
                assert!(m.topics.contains(&tp.topic), "{id} got {tp} unsubscribed");
                assert!(seen.insert(tp.clone()), "{tp} assigned twice");
            }
        }
        let mut expected = BTreeSet::new();
        for (topic, &n) in partitions {
            if members.iter().any(|m| m.topics.contains(topic)) {
                expected.extend((0..n).map(|p| TopicPartition::new(topic.clone(), p)));
            }
        }
        assert_eq!(seen, expected, "every subscribed partition assigned");
    }
}
