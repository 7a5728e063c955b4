//! The `cooperative-sticky` assignor (KIP-54 stickiness, KIP-429 cooperative rebalancing).
//!
//! An assignment is computed in two steps, kept apart so each can be read and tested alone:
//!
//! 1. **A balanced, sticky target.** Every member keeps the partitions it owns, unless a newer
//!    generation's claim or balance says otherwise; partitions nobody keeps go to the least loaded
//!    eligible member; then partitions move along chains of members (each handing one on to the
//!    next, which subscribes to its topic) from a member with the most to one with at least two
//!    fewer, until no such chain exists: the most balanced assignment there is, so no two members
//!    with the same subscriptions differ by more than one partition. Partitions nobody kept move
//!    first; kept ones only when balance cannot be reached otherwise.
//! 2. **Withhold moved partitions** ([`withhold_moved_partitions`]). A partition the target gives
//!    to member B while member A still owns it is given to nobody in this generation: A sees it
//!    missing from its assignment, revokes it (committing its offsets first) and rejoins, and the
//!    next rebalance, where nobody owns it, gives it to B. So no partition is ever consumed by two
//!    members at once, and members never stop consuming what they keep.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{
    empty_assignment, topic_set, unique_members, Assignor, MemberSubscription, RebalanceProtocol,
};
use crate::TopicPartition;

/// Kafka's `cooperative-sticky` assignor (cooperative).
///
/// Balanced (partition counts differ by at most one among members with the same subscriptions),
/// sticky (members keep what they own as far as balance allows), and cooperative: a partition
/// that changes owner is first only taken away, and given to its new owner in the follow-up
/// rebalance (see [`withhold_moved_partitions`]). When two members claim the same partition, the
/// claim from the newer generation wins and the stale one is ignored; two claims from the same
/// generation cancel each other (the partition is reassigned once both have revoked it). The output
/// depends only on the input, not on the order of `members`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CooperativeStickyAssignor;

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    /// The balanced sticky target with moved partitions withheld: unlike the eager assignors, a
    /// partition still owned by another member is left unassigned until the next rebalance.
    fn assign(
        &self,
        members: &[MemberSubscription],
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut assignment = sticky_target(members, partitions);
        withhold_moved_partitions(members, &mut assignment);
        assignment
    }
}

/// Removes from `assignment` every partition given to a member while another member still owns it,
/// and returns those partitions, sorted.
///
/// "Owns" means the partition is in that member's `owned_partitions` and no member claims it from
/// a newer generation; a stale claim (an older generation than another claim on the same
/// partition) does not count, as its member lost the partition since. This is the cooperative
/// protocol's rule: a partition changes owner over two rebalances, first revoked, then assigned.
/// It works on any assignment, so an eager assignor's output can be made safe for cooperative
/// members with it.
pub fn withhold_moved_partitions(
    members: &[MemberSubscription],
    assignment: &mut BTreeMap<String, Vec<TopicPartition>>,
) -> Vec<TopicPartition> {
    let owners = current_owners(&unique_members(members));
    let mut withheld = Vec::new();
    for (member_id, list) in assignment.iter_mut() {
        list.retain(|tp| match owners.get(tp) {
            Some(claimants) if claimants.iter().any(|c| *c != member_id) => {
                withheld.push(tp.clone());
                false
            }
            _ => true,
        });
    }
    withheld.sort();
    withheld
}

/// The generation a member's owned partitions belong to: the subscription's (v2+), else the one
/// Kafka's cooperative-sticky assignor puts in its user data for older subscription versions (a
/// single big-endian `INT32`), else -1.
fn claim_generation(member: &MemberSubscription) -> i32 {
    if member.generation_id >= 0 {
        return member.generation_id;
    }
    match member.user_data.as_deref() {
        Some(&[a, b, c, d]) => i32::from_be_bytes([a, b, c, d]),
        _ => -1,
    }
}

/// For each claimed partition, the ids of the members claiming it from the newest generation that
/// claims it (more than one when claims from the same generation conflict).
fn current_owners<'a>(
    members: &[&'a MemberSubscription],
) -> BTreeMap<&'a TopicPartition, Vec<&'a str>> {
    let mut newest: BTreeMap<&TopicPartition, (i32, Vec<&str>)> = BTreeMap::new();
    for m in members {
        let generation = claim_generation(m);
        for tp in &m.owned_partitions {
            let (gen, claimants) = newest.entry(tp).or_insert((generation, Vec::new()));
            if generation > *gen {
                *gen = generation;
                claimants.clear();
            }
            if generation == *gen && !claimants.contains(&m.member_id.as_str()) {
                claimants.push(&m.member_id);
            }
        }
    }
    newest
        .into_iter()
        .map(|(tp, (_, claimants))| (tp, claimants))
        .collect()
}

/// Step 1: the balanced, sticky target assignment, before anything is withheld.
fn sticky_target(
    members: &[MemberSubscription],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut out = empty_assignment(members);
    // Sorted by member id so that ties break the same way whatever the input order.
    let mut members = unique_members(members);
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let n = members.len();
    let index: BTreeMap<&str, usize> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.member_id.as_str(), i))
        .collect();
    let subscriptions: Vec<BTreeSet<&str>> = members.iter().map(|m| topic_set(m)).collect();

    // Topic → (partition count, members subscribed), for topics that exist and have a subscriber.
    let mut eligible: BTreeMap<&str, (i32, Vec<usize>)> = BTreeMap::new();
    for (topic, &count) in partitions {
        let subscribers: Vec<usize> = (0..n)
            .filter(|&i| subscriptions[i].contains(topic.as_str()))
            .collect();
        if count > 0 && !subscribers.is_empty() {
            eligible.insert(topic, (count, subscribers));
        }
    }

    // Keep: a partition stays with its one current owner if it still exists and the owner still
    // subscribes to its topic.
    let mut assigned: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); n];
    for (tp, claimants) in current_owners(&members) {
        let [owner] = claimants[..] else { continue };
        let Some(&i) = index.get(owner) else { continue };
        let exists = eligible
            .get(tp.topic.as_str())
            .is_some_and(|(count, _)| (0..*count).contains(&tp.partition));
        if exists && subscriptions[i].contains(tp.topic.as_str()) {
            assigned[i].insert(tp.clone());
        }
    }
    let kept = assigned.clone();

    // Fill: the partitions nobody kept, those with the fewest eligible members first (they have
    // the least choice), each to the least loaded eligible member.
    let taken: BTreeSet<&TopicPartition> = kept.iter().flatten().collect();
    let mut free: Vec<(usize, TopicPartition)> = Vec::new();
    for (topic, (count, subscribers)) in &eligible {
        for p in 0..*count {
            let tp = TopicPartition::new(*topic, p);
            if !taken.contains(&tp) {
                free.push((subscribers.len(), tp));
            }
        }
    }
    free.sort();
    for (_, tp) in free {
        let subscribers = &eligible[tp.topic.as_str()].1;
        if let Some(&i) = subscribers.iter().min_by_key(|&&i| (assigned[i].len(), i)) {
            assigned[i].insert(tp);
        }
    }

    // Balance, first moving only partitions nobody kept (free to move), then any. Each phase
    // ends when no cost-reducing path is left, which makes the sum of squared counts as small as
    // it can be: after the first phase given what members keep, after the second overall.
    balance(&mut assigned, &kept, &eligible, true);
    balance(&mut assigned, &kept, &eligible, false);

    for (m, tps) in members.iter().zip(assigned) {
        out.insert(m.member_id.clone(), tps.into_iter().collect());
    }
    out
}

/// One partition handed from member `.0` to member `.1`.
type Step = (usize, usize, TopicPartition);

/// Moves partitions along cost-reducing paths until none is left.
///
/// A cost-reducing path starts at a member with `L` partitions and ends at one with at most
/// `L - 2`; each hop hands one partition from a member to the next, which must subscribe to its
/// topic. Along the path, only the two ends change count: one down, one up, so the sum of squared
/// counts drops and the loop ends. An assignment with no such path has the smallest sum of squared
/// counts possible (the optimality condition of semi-matchings, Harvey et al. 2003); in particular,
/// two members with the same subscriptions never differ by more than one.
///
/// With `fresh_only`, only partitions a member did not keep from its previous assignment may hop.
/// Running that phase first means kept partitions move only when balance cannot be reached
/// otherwise, and it is what makes the cooperative follow-up rebalance stable: there, what members
/// kept is already part of an optimal assignment, the first phase reaches an optimum, and the second
/// finds nothing to move, so nothing is withheld twice.
fn balance(
    assigned: &mut [BTreeSet<TopicPartition>],
    kept: &[BTreeSet<TopicPartition>],
    eligible: &BTreeMap<&str, (i32, Vec<usize>)>,
    fresh_only: bool,
) {
    while let Some(path) = cost_reducing_path(assigned, kept, eligible, fresh_only) {
        // From the source on: each member receives before it gives, and gives a partition it held
        // when the path was found.
        for (from, to, tp) in path {
            assigned[from].remove(&tp);
            assigned[to].insert(tp);
        }
    }
}

/// The shortest cost-reducing path from the most loaded member that has one, or `None`.
fn cost_reducing_path(
    assigned: &[BTreeSet<TopicPartition>],
    kept: &[BTreeSet<TopicPartition>],
    eligible: &BTreeMap<&str, (i32, Vec<usize>)>,
    fresh_only: bool,
) -> Option<Vec<Step>> {
    let n = assigned.len();
    let mut sources: Vec<usize> = (0..n).collect();
    sources.sort_by_key(|&i| (Reverse(assigned[i].len()), i));
    // Members known to have no path this round.
    let mut stuck = vec![false; n];
    for source in sources {
        let top = assigned[source].len();
        if top < 2 {
            break;
        }
        if stuck[source] {
            continue;
        }
        // Breadth first over members; each topic is expanded once, as every subscriber of a topic
        // is reached the first time a member holding it is.
        let mut via: Vec<Option<(usize, &str)>> = vec![None; n];
        let mut seen = vec![false; n];
        let mut expanded: BTreeSet<&str> = BTreeSet::new();
        let mut queue = VecDeque::from([source]);
        seen[source] = true;
        while let Some(x) = queue.pop_front() {
            for topic in movable_topics(&assigned[x], &kept[x], fresh_only) {
                if !expanded.insert(topic) {
                    continue;
                }
                let Some((_, subscribers)) = eligible.get(topic) else {
                    continue;
                };
                for &y in subscribers {
                    if seen[y] {
                        continue;
                    }
                    seen[y] = true;
                    via[y] = Some((x, topic));
                    if assigned[y].len() + 2 <= top {
                        return trace_path(y, &via, assigned, kept, fresh_only);
                    }
                    queue.push_back(y);
                }
            }
        }
        // A member this search reached, holding no more than the source, reaches only members it
        // reached too: it has no path either.
        for i in 0..n {
            if seen[i] && assigned[i].len() <= top {
                stuck[i] = true;
            }
        }
    }
    None
}

/// The hops from the search's source to `sink`, each with the partition it hands on.
fn trace_path(
    sink: usize,
    via: &[Option<(usize, &str)>],
    assigned: &[BTreeSet<TopicPartition>],
    kept: &[BTreeSet<TopicPartition>],
    fresh_only: bool,
) -> Option<Vec<Step>> {
    let mut path = Vec::new();
    let mut to = sink;
    while let Some((from, topic)) = via[to] {
        let tp = partition_to_hand_on(&assigned[from], &kept[from], topic, fresh_only)?;
        path.push((from, to, tp));
        to = from;
    }
    path.reverse();
    Some(path)
}

/// The distinct topics of the partitions a member may hand on, in order.
fn movable_topics<'a>(
    held: &'a BTreeSet<TopicPartition>,
    kept: &BTreeSet<TopicPartition>,
    fresh_only: bool,
) -> Vec<&'a str> {
    let mut topics: Vec<&str> = Vec::new();
    for tp in held {
        if (!fresh_only || !kept.contains(tp)) && topics.last() != Some(&tp.topic.as_str()) {
            topics.push(&tp.topic);
        }
    }
    topics
}

/// Which partition of `topic` a member hands on: the first it did not keep from its previous
/// assignment (moving that costs nothing), else, unless `fresh_only`, the last one it kept.
fn partition_to_hand_on(
    held: &BTreeSet<TopicPartition>,
    kept: &BTreeSet<TopicPartition>,
    topic: &str,
    fresh_only: bool,
) -> Option<TopicPartition> {
    let range = TopicPartition::new(topic, i32::MIN)..=TopicPartition::new(topic, i32::MAX);
    let mut last_kept = None;
    for tp in held.range(range) {
        if !kept.contains(tp) {
            return Some(tp.clone());
        }
        last_kept = Some(tp);
    }
    if fresh_only {
        None
    } else {
        last_kept.cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{assert_exactly_once, member, topics, tp};
    use super::*;

    type Assignment = BTreeMap<String, Vec<TopicPartition>>;

    fn owning(
        id: &str,
        subscribed: &[&str],
        generation: i32,
        owned: &[TopicPartition],
    ) -> MemberSubscription {
        MemberSubscription {
            generation_id: generation,
            owned_partitions: owned.to_vec(),
            ..member(id, subscribed)
        }
    }

    /// Members as they rejoin after `previous`: each owns what it was assigned, in `generation`.
    fn rejoin(
        members: &[MemberSubscription],
        previous: &Assignment,
        generation: i32,
    ) -> Vec<MemberSubscription> {
        members
            .iter()
            .map(|m| MemberSubscription {
                owned_partitions: previous.get(&m.member_id).cloned().unwrap_or_default(),
                generation_id: generation,
                ..m.clone()
            })
            .collect()
    }

    fn all(assignment: &Assignment) -> BTreeSet<TopicPartition> {
        assignment.values().flatten().cloned().collect()
    }

    /// Among members with the same subscriptions, counts differ by at most one.
    fn assert_balanced(members: &[MemberSubscription], got: &Assignment) {
        let mut by_subscription: BTreeMap<BTreeSet<&str>, Vec<usize>> = BTreeMap::new();
        for m in members {
            by_subscription
                .entry(topic_set(m))
                .or_default()
                .push(got[&m.member_id].len());
        }
        for (subscription, counts) in by_subscription {
            let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(
                max - min <= 1,
                "unbalanced for {subscription:?}: {counts:?}"
            );
        }
    }

    #[test]
    fn a_new_group_is_balanced_and_complete() {
        let members = [
            member("c", &["t0", "t1"]),
            member("a", &["t0", "t1"]),
            member("b", &["t0", "t1"]),
        ];
        let parts = topics(&[("t0", 3), ("t1", 3)]);
        let got = CooperativeStickyAssignor.assign(&members, &parts);
        assert_exactly_once(&members, &parts, &got);
        assert_balanced(&members, &got);
        assert!(got.values().all(|l| l.len() == 2));
    }

    #[test]
    fn output_does_not_depend_on_member_order() {
        let members = vec![
            owning("a", &["t0", "t1"], 3, &[tp("t0", 0), tp("t1", 4)]),
            owning("b", &["t0"], 3, &[tp("t0", 1), tp("t0", 2), tp("t0", 3)]),
            member("c", &["t1", "t0"]),
            member("d", &["t1"]),
        ];
        let parts = topics(&[("t0", 5), ("t1", 6)]);
        let first = CooperativeStickyAssignor.assign(&members, &parts);
        let mut reversed = members.clone();
        reversed.reverse();
        assert_eq!(CooperativeStickyAssignor.assign(&reversed, &parts), first);
        assert_eq!(CooperativeStickyAssignor.assign(&members, &parts), first);
    }

    #[test]
    fn a_third_member_takes_two_partitions_over_two_rebalances() {
        let parts = topics(&[("t", 6)]);
        let a_owned = [tp("t", 0), tp("t", 1), tp("t", 2)];
        let b_owned = [tp("t", 3), tp("t", 4), tp("t", 5)];
        let members = [
            owning("a", &["t"], 1, &a_owned),
            owning("b", &["t"], 1, &b_owned),
            member("c", &["t"]),
        ];

        // First rebalance: each old member gives up one partition, the new member gets nothing yet.
        let first = CooperativeStickyAssignor.assign(&members, &parts);
        assert_eq!(first["a"].len(), 2);
        assert_eq!(first["b"].len(), 2);
        assert!(
            first["c"].is_empty(),
            "moved partitions are withheld: {first:?}"
        );
        assert!(first["a"].iter().all(|p| a_owned.contains(p)));
        assert!(first["b"].iter().all(|p| b_owned.contains(p)));
        let moved: BTreeSet<_> = (0..6)
            .map(|p| tp("t", p))
            .filter(|p| !all(&first).contains(p))
            .collect();
        assert_eq!(moved.len(), 2, "only two partitions move");
        // The unwithheld target would have given both to c.
        let target = sticky_target(&members, &parts);
        assert_eq!(target["c"].iter().cloned().collect::<BTreeSet<_>>(), moved);

        // Follow-up rebalance: a and b revoked them, so c gets exactly those two, nothing else moves.
        let members = rejoin(&members, &first, 2);
        let second = CooperativeStickyAssignor.assign(&members, &parts);
        assert_eq!(second["a"], first["a"]);
        assert_eq!(second["b"], first["b"]);
        assert_eq!(second["c"].iter().cloned().collect::<BTreeSet<_>>(), moved);
        assert_exactly_once(&members, &parts, &second);
    }

    #[test]
    fn a_leaving_member_only_its_partitions_move() {
        let parts = topics(&[("t", 6)]);
        let members = [
            owning("a", &["t"], 4, &[tp("t", 0), tp("t", 1)]),
            owning("b", &["t"], 4, &[tp("t", 2), tp("t", 3)]),
        ];
        // c, which owned t/4 and t/5, has left.
        let got = CooperativeStickyAssignor.assign(&members, &parts);
        assert_exactly_once(&members, &parts, &got);
        assert!(got["a"].starts_with(&[tp("t", 0), tp("t", 1)]));
        assert!(got["b"].starts_with(&[tp("t", 2), tp("t", 3)]));
        assert_eq!(got["a"].len(), 3);
        assert_eq!(got["b"].len(), 3);
    }

    #[test]
    fn a_balanced_assignment_stays_as_it_is() {
        let parts = topics(&[("x", 4), ("y", 3)]);
        let members = [
            owning("a", &["x", "y"], 9, &[tp("y", 2), tp("x", 3)]),
            owning("b", &["x", "y"], 9, &[tp("x", 0), tp("y", 0)]),
            owning("c", &["x", "y"], 9, &[tp("x", 1), tp("x", 2), tp("y", 1)]),
        ];
        let got = CooperativeStickyAssignor.assign(&members, &parts);
        for m in &members {
            let mut owned = m.owned_partitions.clone();
            owned.sort();
            assert_eq!(got[&m.member_id], owned);
        }
    }

    #[test]
    fn a_stale_claim_loses_to_the_newer_generation() {
        let parts = topics(&[("t", 2)]);
        let members = [
            owning("a", &["t"], 5, &[tp("t", 0)]),
            // b was a zombie in generation 4: its claim on t/0 is stale; its claim on t/1 is the only one.
            owning("b", &["t"], 4, &[tp("t", 0), tp("t", 1)]),
        ];
        let got = CooperativeStickyAssignor.assign(&members, &parts);
        assert_eq!(got["a"], [tp("t", 0)]);
        assert_eq!(got["b"], [tp("t", 1)]);

        // The stale claim neither keeps the partition nor holds it back from its new owner.
        let members = [
            owning("a", &["t"], 5, &[tp("t", 0), tp("t", 1)]),
            owning("b", &["t"], 2, &[tp("t", 0)]),
            member("c", &["t"]),
        ];
        let got = CooperativeStickyAssignor.assign(&members, &parts);
        assert_eq!(got["a"], [tp("t", 0)]);
        assert!(got["b"].is_empty());
        // t/1 moves from a to someone: withheld this round.
        assert!(got["c"].is_empty());
    }

    #[test]
    fn claims_from_the_same_generation_cancel() {
        let parts = topics(&[("t", 2)]);
        let members = [
            owning("a", &["t"], 5, &[tp("t", 0)]),
            owning("b", &["t"], 5, &[tp("t", 0)]),
        ];
        let got = CooperativeStickyAssignor.assign(&members, &parts);
        // Nobody keeps t/0, and whoever the target gives it to must wait until both revoked it.
        assert!(!all(&got).contains(&tp("t", 0)));
        assert!(all(&got).contains(&tp("t", 1)));
        let members = rejoin(&members, &got, 6);
        let again = CooperativeStickyAssignor.assign(&members, &parts);
        assert_exactly_once(&members, &parts, &again);
    }

    #[test]
    fn generation_from_old_style_user_data() {
        let parts = topics(&[("t", 1)]);
        let mut a = owning("a", &["t"], -1, &[tp("t", 0)]);
        a.user_data = Some(bytes::Bytes::from_static(&[0, 0, 0, 7]));
        let b = owning("b", &["t"], 6, &[tp("t", 0)]);
        let got = CooperativeStickyAssignor.assign(&[a, b], &parts);
        assert_eq!(got["a"], [tp("t", 0)]);
        assert!(got["b"].is_empty());
    }

    #[test]
    fn withholding_removes_only_partitions_someone_else_owns() {
        let members = [
            owning("a", &["t"], 3, &[tp("t", 0), tp("t", 1)]),
            owning("b", &["t"], 3, &[tp("t", 2)]),
            owning("old", &["t"], 1, &[tp("t", 3)]),
            member("c", &["t"]),
        ];
        let mut assignment: Assignment = [
            ("a".to_owned(), vec![tp("t", 0)]),
            // t/1 still belongs to a; t/3's only claim is old's: both withheld.
            ("b".to_owned(), vec![tp("t", 1), tp("t", 2)]),
            ("c".to_owned(), vec![tp("t", 3), tp("t", 4)]),
            ("old".to_owned(), vec![]),
        ]
        .into_iter()
        .collect();
        let withheld = withhold_moved_partitions(&members, &mut assignment);
        assert_eq!(withheld, [tp("t", 1), tp("t", 3)]);
        assert_eq!(assignment["a"], [tp("t", 0)]);
        assert_eq!(assignment["b"], [tp("t", 2)]);
        assert_eq!(assignment["c"], [tp("t", 4)]);
    }

    #[test]
    fn an_unsubscribed_topic_is_given_away_after_revocation() {
        let parts = topics(&[("t", 1), ("u", 1)]);
        let members = [
            // a dropped t from its subscription but still reports owning t/0.
            owning("a", &["u"], 2, &[tp("t", 0), tp("u", 0)]),
            owning("b", &["t"], 2, &[]),
        ];
        let got = CooperativeStickyAssignor.assign(&members, &parts);
        assert_eq!(got["a"], [tp("u", 0)]);
        assert!(got["b"].is_empty());
        let members = rejoin(&members, &got, 3);
        let got = CooperativeStickyAssignor.assign(&members, &parts);
        assert_eq!(got["b"], [tp("t", 0)]);
    }

    #[test]
    fn owned_partitions_that_no_longer_exist_are_dropped() {
        let parts = topics(&[("t", 2)]);
        let members = [
            owning(
                "a",
                &["t", "gone"],
                1,
                &[tp("t", 0), tp("t", 7), tp("gone", 0), tp("t", -1)],
            ),
            member("b", &["t"]),
        ];
        let got = CooperativeStickyAssignor.assign(&members, &parts);
        assert_exactly_once(&members, &parts, &got);
        assert_eq!(got["a"], [tp("t", 0)]);
        assert_eq!(got["b"], [tp("t", 1)]);
    }

    #[test]
    fn different_subscriptions() {
        let members = [
            member("a", &["t0"]),
            member("b", &["t0", "t1"]),
            member("c", &["t1"]),
            member("d", &["t0", "t1"]),
        ];
        let parts = topics(&[("t0", 5), ("t1", 3)]);
        let got = CooperativeStickyAssignor.assign(&members, &parts);
        assert_exactly_once(&members, &parts, &got);
        assert_balanced(&members, &got);
        let counts: Vec<usize> = got.values().map(Vec::len).collect();
        assert_eq!(counts, [2, 2, 2, 2]);
    }

    #[test]
    fn unknown_topics_and_empty_groups() {
        let parts = topics(&[("t", 2)]);
        assert!(CooperativeStickyAssignor.assign(&[], &parts).is_empty());
        let members = [
            member("a", &["missing"]),
            member("b", &[]),
            member("c", &["t", "missing"]),
        ];
        let got = CooperativeStickyAssignor.assign(&members, &parts);
        assert_exactly_once(&members, &parts, &got);
        assert_eq!(got["c"], [tp("t", 0), tp("t", 1)]);
        let got = CooperativeStickyAssignor.assign(&members, &topics(&[]));
        assert_eq!(got.len(), 3);
        assert!(got.values().all(Vec::is_empty));
    }

    #[test]
    fn name_and_protocol() {
        assert_eq!(CooperativeStickyAssignor.name(), "cooperative-sticky");
        assert_eq!(
            CooperativeStickyAssignor.protocol(),
            RebalanceProtocol::Cooperative
        );
    }

    /// SplitMix64: a small deterministic generator, enough for test case variety.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// The two-step cooperative convergence: one rebalance revokes, the next one assigns; after
    /// the second, every partition is assigned exactly once and the group is balanced, and nothing
    /// a member kept through the first rebalance was taken in the second.
    fn converge(
        members: &[MemberSubscription],
        parts: &BTreeMap<String, i32>,
        generation: i32,
    ) -> Assignment {
        let first = CooperativeStickyAssignor.assign(members, parts);
        // Withholding never gives a member something another one still owns.
        for (id, list) in &first {
            for tp in list {
                assert!(
                    members
                        .iter()
                        .all(|m| &m.member_id == id || !m.owned_partitions.contains(tp)),
                    "{tp} given to {id} while another member owns it"
                );
            }
        }
        let rejoined = rejoin(members, &first, generation + 1);
        let second = CooperativeStickyAssignor.assign(&rejoined, parts);
        assert_exactly_once(&rejoined, parts, &second);
        assert_balanced(&rejoined, &second);
        for (id, kept) in &first {
            for tp in kept {
                assert!(
                    second[id].contains(tp),
                    "{id} lost {tp} in the follow-up rebalance"
                );
            }
        }
        second
    }

    #[test]
    fn property_identical_subscriptions_converge_in_two_rebalances() {
        let mut rng = Rng(0x6b62_7573);
        for case in 0..300 {
            let topic_names = ["a", "b", "c", "d"];
            let n_topics = 1 + rng.below(topic_names.len());
            let subscribed = &topic_names[..n_topics];
            let parts: BTreeMap<String, i32> = subscribed
                .iter()
                .map(|t| ((*t).to_owned(), rng.below(9) as i32))
                .collect();
            let n_members = 1 + rng.below(8);
            let mut members: Vec<_> = (0..n_members)
                .map(|i| member(&format!("m{i}"), subscribed))
                .collect();
            let mut generation = 1;
            let mut current = converge(&members, &parts, generation);
            // Churn: members leave and join, several times over.
            let mut next_id = n_members;
            for _ in 0..4 {
                if members.len() > 1 && rng.below(2) == 0 {
                    let gone = rng.below(members.len());
                    members.remove(gone);
                }
                for _ in 0..rng.below(3) {
                    members.push(member(&format!("m{next_id}"), subscribed));
                    next_id += 1;
                }
                generation += 2;
                let rejoined = rejoin(&members, &current, generation);
                current = converge(&rejoined, &parts, generation);
                // Stickiness: a member that stayed keeps at least what balance lets it keep.
                let total: usize = parts.values().map(|&n| n as usize).sum();
                let ceiling = total.div_ceil(members.len());
                for m in &rejoined {
                    let kept = m
                        .owned_partitions
                        .iter()
                        .filter(|tp| current[&m.member_id].contains(tp))
                        .count();
                    assert!(
                        kept >= m.owned_partitions.len().min(ceiling.saturating_sub(1)),
                        "case {case}: {} kept {kept} of {}",
                        m.member_id,
                        m.owned_partitions.len()
                    );
                }
            }
        }
    }

    #[test]
    fn property_mixed_subscriptions_converge() {
        let mut rng = Rng(0x5eed);
        let topic_names = ["a", "b", "c"];
        for case in 0..300 {
            let parts: BTreeMap<String, i32> = topic_names
                .iter()
                .map(|t| ((*t).to_owned(), rng.below(7) as i32))
                .collect();
            let n_members = rng.below(7);
            let members: Vec<_> = (0..n_members)
                .map(|i| {
                    let subscribed: Vec<&str> = topic_names
                        .iter()
                        .copied()
                        .filter(|_| rng.below(2) == 0)
                        .collect();
                    member(&format!("m{i}"), &subscribed)
                })
                .collect();
            // Start from a random (possibly unbalanced) ownership, as after a subscription change.
            let mut owned: Assignment = members
                .iter()
                .map(|m| (m.member_id.clone(), Vec::new()))
                .collect();
            if n_members > 0 {
                for (t, &n) in &parts {
                    for p in 0..n {
                        let m = &members[rng.below(n_members)];
                        owned.get_mut(&m.member_id).unwrap().push(tp(t, p));
                    }
                }
            }
            let mut members = rejoin(&members, &owned, 1);
            // Rebalance until nothing is withheld: at most two rounds, whatever the subscriptions.
            let mut rounds = 0;
            loop {
                rounds += 1;
                assert!(rounds <= 2, "case {case}: no convergence in 2 rebalances");
                let got = CooperativeStickyAssignor.assign(&members, &parts);
                let target = sticky_target(&members, &parts);
                if got == target {
                    assert_exactly_once(&members, &parts, &got);
                    assert_balanced(&members, &got);
                    break;
                }
                members = rejoin(&members, &got, rounds + 1);
            }
        }
    }
}
