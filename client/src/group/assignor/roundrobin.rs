//! The `roundrobin` assignor: every subscribed partition dealt in turn over the members.

use std::collections::BTreeMap;

use super::{
    dealing_order, empty_assignment, topic_set, Assignor, MemberSubscription, RebalanceProtocol,
};
use crate::TopicPartition;

/// Kafka's `roundrobin` assignor (eager).
///
/// All partitions of the subscribed topics, ordered by topic then partition, are dealt one at a
/// time over the members in order (static members by `group.instance.id` first, then the others by
/// member id), wrapping around; a member not subscribed to a partition's topic is skipped for it.
/// With identical subscriptions the counts differ by at most one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        members: &[MemberSubscription],
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut out = empty_assignment(members);
        let ordered = dealing_order(members);
        let subscriptions: Vec<_> = ordered.iter().map(|m| topic_set(m)).collect();
        let n = ordered.len();
        // The member to deal to next; it keeps turning across topics.
        let mut next = 0usize;
        for (topic, &count) in partitions {
            if !subscriptions.iter().any(|s| s.contains(topic.as_str())) {
                continue;
            }
            for p in 0..count.max(0) {
                // Terminates: at least one member is subscribed to this topic.
                while !subscriptions[next % n].contains(topic.as_str()) {
                    next += 1;
                }
                let member = ordered[next % n];
                if let Some(list) = out.get_mut(&member.member_id) {
                    list.push(TopicPartition::new(topic.clone(), p));
                }
                next = (next + 1) % n;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{assert_exactly_once, member, topics, tp};
    use super::*;

    #[test]
    fn two_members_two_topics_of_three() {
        let members = [member("C1", &["t0", "t1"]), member("C0", &["t0", "t1"])];
        let parts = topics(&[("t0", 3), ("t1", 3)]);
        let got = RoundRobinAssignor.assign(&members, &parts);
        assert_eq!(got["C0"], [tp("t0", 0), tp("t0", 2), tp("t1", 1)]);
        assert_eq!(got["C1"], [tp("t0", 1), tp("t1", 0), tp("t1", 2)]);
        assert_exactly_once(&members, &parts, &got);
    }

    #[test]
    fn different_subscriptions_skip_members() {
        // Kafka's documented example: C0 [t0], C1 [t0, t1], C2 [t0, t1, t2]; t0 1, t1 2, t2 3.
        let members = [
            member("C0", &["t0"]),
            member("C1", &["t0", "t1"]),
            member("C2", &["t0", "t1", "t2"]),
        ];
        let parts = topics(&[("t0", 1), ("t1", 2), ("t2", 3)]);
        let got = RoundRobinAssignor.assign(&members, &parts);
        assert_eq!(got["C0"], [tp("t0", 0)]);
        assert_eq!(got["C1"], [tp("t1", 0)]);
        assert_eq!(
            got["C2"],
            [tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)]
        );
        assert_exactly_once(&members, &parts, &got);
    }

    #[test]
    fn balanced_with_identical_subscriptions() {
        let members: Vec<_> = (0..4)
            .map(|i| member(&format!("m{i}"), &["a", "b", "c"]))
            .collect();
        let parts = topics(&[("a", 5), ("b", 1), ("c", 7)]);
        let got = RoundRobinAssignor.assign(&members, &parts);
        assert_exactly_once(&members, &parts, &got);
        let counts: Vec<usize> = got.values().map(Vec::len).collect();
        assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
    }

    #[test]
    fn unknown_topic_is_ignored() {
        let members = [member("a", &["missing"]), member("b", &["t", "missing"])];
        let parts = topics(&[("t", 3)]);
        let got = RoundRobinAssignor.assign(&members, &parts);
        assert!(got["a"].is_empty());
        assert_eq!(got["b"], [tp("t", 0), tp("t", 1), tp("t", 2)]);
        assert_exactly_once(&members, &parts, &got);
    }

    #[test]
    fn no_members_or_no_partitions() {
        assert!(RoundRobinAssignor
            .assign(&[], &topics(&[("t", 3)]))
            .is_empty());
        let members = [member("a", &["t"]), member("b", &[])];
        let got = RoundRobinAssignor.assign(&members, &topics(&[("t", 0), ("u", -1)]));
        assert_eq!(got.len(), 2);
        assert!(got.values().all(Vec::is_empty));
    }

    #[test]
    fn static_members_deal_first() {
        let mut s = member("zzz", &["t"]);
        s.group_instance_id = Some("static".into());
        let members = [member("aaa", &["t"]), s];
        let got = RoundRobinAssignor.assign(&members, &topics(&[("t", 3)]));
        assert_eq!(got["zzz"], [tp("t", 0), tp("t", 2)]);
        assert_eq!(got["aaa"], [tp("t", 1)]);
    }

    #[test]
    fn name_and_protocol() {
        assert_eq!(RoundRobinAssignor.name(), "roundrobin");
        assert_eq!(RoundRobinAssignor.protocol(), RebalanceProtocol::Eager);
    }
}
