//! The `range` assignor: each topic's partitions cut into contiguous ranges, one per subscriber.

use std::collections::BTreeMap;

use super::{
    dealing_order, empty_assignment, topic_set, Assignor, MemberSubscription, RebalanceProtocol,
};
use crate::TopicPartition;

/// Kafka's `range` assignor (eager).
///
/// Topic by topic, the members subscribed to it are put in order (static members by
/// `group.instance.id` first, then the others by member id) and the partitions are cut into
/// contiguous ranges in that order; with `n` partitions and `m` subscribers, each gets `n / m` and
/// the first `n % m` one more. So with the same subscriptions, the first members get the same
/// partition numbers of every topic, which is what joins between co-partitioned topics rely on.
///
/// Kafka's rack-aware variant (KIP-881) needs the partitions' replica racks, which the [`Assignor`]
/// interface does not carry; the rack ids in subscriptions are ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
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
        for (topic, &count) in partitions {
            let subscribers: Vec<&MemberSubscription> = ordered
                .iter()
                .zip(&subscriptions)
                .filter(|(_, topics)| topics.contains(topic.as_str()))
                .map(|(m, _)| *m)
                .collect();
            if subscribers.is_empty() || count <= 0 {
                continue;
            }
            // No group has more than i32::MAX members; saturating keeps the arithmetic exact anyway
            // (every member past `count` gets nothing either way).
            let m = i32::try_from(subscribers.len()).unwrap_or(i32::MAX);
            let (each, extra) = (count / m, count % m);
            let mut next = 0;
            for (i, member) in subscribers.iter().enumerate() {
                let n = each + i32::from(i < extra as usize);
                if let Some(list) = out.get_mut(&member.member_id) {
                    list.extend((next..next + n).map(|p| TopicPartition::new(topic.clone(), p)));
                }
                next += n;
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
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let parts = topics(&[("t0", 3), ("t1", 3)]);
        let got = RangeAssignor.assign(&members, &parts);
        assert_eq!(
            got["C0"],
            [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
        );
        assert_eq!(got["C1"], [tp("t0", 2), tp("t1", 2)]);
        assert_exactly_once(&members, &parts, &got);
    }

    #[test]
    fn first_members_get_the_remainder() {
        let members = [
            member("c", &["t"]),
            member("a", &["t"]),
            member("b", &["t"]),
        ];
        let parts = topics(&[("t", 8)]);
        let got = RangeAssignor.assign(&members, &parts);
        assert_eq!(got["a"], [tp("t", 0), tp("t", 1), tp("t", 2)]);
        assert_eq!(got["b"], [tp("t", 3), tp("t", 4), tp("t", 5)]);
        assert_eq!(got["c"], [tp("t", 6), tp("t", 7)]);
    }

    #[test]
    fn different_subscriptions() {
        let members = [
            member("a", &["t0"]),
            member("b", &["t0", "t1"]),
            member("c", &["t1"]),
        ];
        let parts = topics(&[("t0", 3), ("t1", 2), ("other", 4)]);
        let got = RangeAssignor.assign(&members, &parts);
        assert_eq!(got["a"], [tp("t0", 0), tp("t0", 1)]);
        assert_eq!(got["b"], [tp("t0", 2), tp("t1", 0)]);
        assert_eq!(got["c"], [tp("t1", 1)]);
        assert_exactly_once(&members, &parts, &got);
    }

    #[test]
    fn more_members_than_partitions() {
        let members = [
            member("a", &["t"]),
            member("b", &["t"]),
            member("c", &["t"]),
        ];
        let parts = topics(&[("t", 2)]);
        let got = RangeAssignor.assign(&members, &parts);
        assert_eq!(got["a"], [tp("t", 0)]);
        assert_eq!(got["b"], [tp("t", 1)]);
        assert!(got["c"].is_empty());
    }

    #[test]
    fn unknown_topic_is_ignored() {
        let members = [member("a", &["t", "missing"]), member("b", &["missing"])];
        let parts = topics(&[("t", 2)]);
        let got = RangeAssignor.assign(&members, &parts);
        assert_eq!(got["a"], [tp("t", 0), tp("t", 1)]);
        assert!(got["b"].is_empty());
        assert_exactly_once(&members, &parts, &got);
    }

    #[test]
    fn no_members_or_no_partitions() {
        assert!(RangeAssignor.assign(&[], &topics(&[("t", 3)])).is_empty());
        let members = [member("a", &["t"])];
        let got = RangeAssignor.assign(&members, &topics(&[]));
        assert_eq!(got.len(), 1);
        assert!(got["a"].is_empty());
        // A nonsensical negative count from metadata gives nothing rather than a panic.
        let got = RangeAssignor.assign(&members, &topics(&[("t", -3), ("u", 0)]));
        assert!(got["a"].is_empty());
    }

    #[test]
    fn static_members_are_ordered_by_instance_id_first() {
        let mut a = member("a-dynamic", &["t"]);
        let mut z = member("z-static", &["t"]);
        let mut y = member("y-static", &["t"]);
        z.group_instance_id = Some("instance-1".into());
        y.group_instance_id = Some("instance-2".into());
        a.group_instance_id = None;
        let members = [a, y, z];
        let got = RangeAssignor.assign(&members, &topics(&[("t", 3)]));
        assert_eq!(got["z-static"], [tp("t", 0)]);
        assert_eq!(got["y-static"], [tp("t", 1)]);
        assert_eq!(got["a-dynamic"], [tp("t", 2)]);
    }

    #[test]
    fn a_repeated_member_id_gets_one_share() {
        let members = [
            member("a", &["t"]),
            member("a", &["t"]),
            member("b", &["t"]),
        ];
        let parts = topics(&[("t", 4)]);
        let got = RangeAssignor.assign(&members, &parts);
        assert_eq!(got["a"], [tp("t", 0), tp("t", 1)]);
        assert_eq!(got["b"], [tp("t", 2), tp("t", 3)]);
    }

    #[test]
    fn name_and_protocol() {
        assert_eq!(RangeAssignor.name(), "range");
        assert_eq!(RangeAssignor.protocol(), RebalanceProtocol::Eager);
    }
}
