//! Tests of [`super`].

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
