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
mod tests;
