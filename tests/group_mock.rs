//! Consumer-group membership ([`kbus::group::Group`]) on librdkafka's 3-broker mock cluster, which
//! implements the classic group protocol strictly: members joining one by one and leaving, eager
//! and cooperative rebalancing, commits fenced by generation, static members, and commits from the
//! revoke handler.
//!
//! Each member has its own [`Cluster`] (its own connections), as separate processes would. A task
//! per member reads its events and records what it owns in a view shared by the test, which waits
//! on that view; timeouts only guard against hangs.
//!
//! What the mock (librdkafka 2.12) does differently from Kafka, and how the tests deal with it:
//! - A rebalance started by a join or a leave while the group is stable lasts the whole rebalance
//!   delay (session timeout minus 1 s) even when every member has rejoined sooner; the first join
//!   of an empty group waits `group.initial.rebalance.delay.ms` (3 s, not settable through the
//!   `rdkafka` crate). Tests use a 6 s session timeout, so each rebalance takes about 5 s.
//! - The protocol is the leader's first one, not one every member supports; all members of a test
//!   offer the same list.
//! - It offers JoinGroup up to v6, SyncGroup up to v4 and LeaveGroup up to v4, but reads the
//!   flexible versions' arrays with fixed-size counts (dropping the connection) and LeaveGroup
//!   v3+'s batch of members as a single member id (never finding the member). The tests limit the
//!   group APIs to the versions librdkafka's own consumer uses
//!   ([`MockCluster::use_tested_group_versions`]).
//! - SyncGroup completes as soon as the leader's assignment covers every member, not when every
//!   member has sent SyncGroup: a follower whose SyncGroup arrives after the leader's is refused
//!   (INVALID_REQUEST, with a null assignment Kafka never sends), where Kafka hands it its
//!   assignment. kbus's leader refreshes metadata before it assigns (as librdkafka's does); the
//!   tests make that refresh slow (broker 1 answers after 100 ms and does not coordinate the
//!   group), so the followers' SyncGroup always arrives first. (A member refused that way rejoins,
//!   see tests/consumer_group_mock.rs, but on the mock each rejoin costs a whole rebalance delay:
//!   the workaround keeps these tests fast and their generations predictable.)
//! - OffsetCommit is refused with REBALANCE_IN_PROGRESS while the group prepares a rebalance; Kafka
//!   accepts commits of the current generation then (only CompletingRebalance refuses them).
//! - Static membership: the member with a `group.instance.id` is kept until its session expires
//!   when it closes (no LeaveGroup is sent, as in Kafka), but the mock does not let a restarted
//!   instance take its place: a new JoinGroup with the same instance id joins as another member.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kbus::cluster::{Cluster, ClusterConfig};
use kbus::config::Settings;
use kbus::group::{is_commit_fenced, Group, GroupConfig, GroupEvent};
use kbus::protocol::error_code::ErrorCode;
use kbus::protocol::ApiKey;
use kbus::{Error, TopicPartition};
use kbus_testkit::mock_cluster::MockCluster;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A failure guard: no single step of a test may take longer.
const GUARD: Duration = Duration::from_secs(30);

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

fn partitions(topic: &str, n: i32) -> BTreeSet<TopicPartition> {
    (0..n).map(|p| tp(topic, p)).collect()
}

fn topics(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The offset a test commits for a partition.
fn offset_for(p: &TopicPartition, round: i64) -> i64 {
    round * 100 + i64::from(p.partition)
}

/// What one member has been told, as its event reader recorded it.
#[derive(Debug, Default, Clone)]
struct View {
    owned: BTreeSet<TopicPartition>,
    /// The generation of the last Assigned event; -1 before the first.
    generation: i32,
    revoked: Vec<Vec<TopicPartition>>,
    lost: Vec<Vec<TopicPartition>>,
    /// Results of the commits made in the revoke handler: `Ok`, or the error's code.
    revoke_commits: Vec<Result<(), ErrorCode>>,
    fatal: Option<String>,
    /// The event stream ended (the member left or failed).
    ended: bool,
}

/// Every member's view, by member name.
type World = watch::Sender<BTreeMap<String, View>>;

struct Member {
    name: String,
    group: Arc<Group>,
    _reader: JoinHandle<()>,
}

async fn connect(mock: &MockCluster) -> Cluster {
    Cluster::connect(ClusterConfig::new(&mock.bootstrap()))
        .await
        .unwrap()
}

fn config(group_id: &str, strategy: &str) -> GroupConfig {
    let mut c = GroupConfig::new(group_id);
    c.set_property("session.timeout.ms", "6000").unwrap();
    c.set_property("heartbeat.interval.ms", "300").unwrap();
    c.set_property("partition.assignment.strategy", strategy)
        .unwrap();
    c
}

/// Starts member `name` and a task that records its events in `world`. With
/// `commit_on_revoke`, the revoke handler commits the revoked partitions (round 9 offsets) before
/// letting go of them.
async fn join(
    mock: &MockCluster,
    world: &Arc<World>,
    name: &str,
    config: GroupConfig,
    subscription: BTreeSet<String>,
    commit_on_revoke: bool,
) -> Member {
    world.send_modify(|w| {
        w.insert(
            name.to_string(),
            View {
                generation: -1,
                ..Default::default()
            },
        );
    });
    let group = Arc::new(Group::start(connect(mock).await, config, subscription).unwrap());
    let reader = {
        let group = group.clone();
        let world = world.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let update = |f: &mut dyn FnMut(&mut View)| {
                world.send_modify(|w| f(w.get_mut(&name).expect("member registered")));
            };
            while let Some(event) = group.next_event().await {
                match event {
                    GroupEvent::Assigned {
                        partitions,
                        generation,
                    } => update(&mut |v| {
                        for p in &partitions {
                            assert!(v.owned.insert(p.clone()), "{name}: {p} assigned twice");
                        }
                        v.generation = generation;
                    }),
                    GroupEvent::Revoked { partitions, done } => {
                        if commit_on_revoke {
                            let offsets: Vec<(TopicPartition, i64)> = partitions
                                .iter()
                                .map(|p| (p.clone(), offset_for(p, 9)))
                                .collect();
                            let result = group.commit(&offsets).await.map_err(|e| match e {
                                Error::Broker { code, .. } => code,
                                other => panic!("{name}: commit failed: {other}"),
                            });
                            update(&mut |v| v.revoke_commits.push(result));
                        }
                        update(&mut |v| {
                            for p in &partitions {
                                assert!(v.owned.remove(p), "{name}: {p} revoked but not owned");
                            }
                            v.revoked.push(partitions.clone());
                        });
                        drop(done);
                    }
                    GroupEvent::Lost { partitions } => update(&mut |v| {
                        for p in &partitions {
                            v.owned.remove(p);
                        }
                        v.lost.push(partitions.clone());
                    }),
                    GroupEvent::Fatal(e) => update(&mut |v| v.fatal = Some(e.to_string())),
                    // Streaks of retried failures: the tests assert on outcomes, not on these.
                    GroupEvent::Failing(_) => {}
                    other => panic!("{name}: unexpected group event {other:?}"),
                }
            }
            update(&mut |v| v.ended = true);
        })
    };
    Member {
        name: name.to_string(),
        group,
        _reader: reader,
    }
}

/// Waits until every member in `names` has been assigned in one and the same generation, their
/// partitions are disjoint and together are exactly `all`; returns that generation.
async fn settled(world: &World, names: &[&str], all: &BTreeSet<TopicPartition>) -> i32 {
    let mut rx = world.subscribe();
    let found = tokio::time::timeout(GUARD, async {
        rx.wait_for(|w| {
            for v in w.values() {
                assert!(v.fatal.is_none(), "fatal group error: {w:?}");
            }
            let views: Vec<&View> = names.iter().map(|n| &w[*n]).collect();
            let generation = views[0].generation;
            if generation < 0 || views.iter().any(|v| v.generation != generation) {
                return false;
            }
            let total: usize = views.iter().map(|v| v.owned.len()).sum();
            let union: BTreeSet<&TopicPartition> = views.iter().flat_map(|v| &v.owned).collect();
            if union.len() != total {
                panic!("a partition is owned by two members in generation {generation}: {w:?}");
            }
            union.len() == all.len() && union.into_iter().eq(all.iter())
        })
        .await
        .map(|w| w[names[0]].generation)
        .expect("the world outlives the test")
    })
    .await;
    match found {
        Ok(generation) => generation,
        Err(_) => panic!(
            "members {names:?} did not settle on {} partitions: {:#?}",
            all.len(),
            *world.borrow()
        ),
    }
}

/// Waits until `name`'s event stream has ended.
async fn ended(world: &World, name: &str) {
    let mut rx = world.subscribe();
    tokio::time::timeout(GUARD, rx.wait_for(|w| w[name].ended))
        .await
        .unwrap_or_else(|_| panic!("{name} did not leave: {:#?}", *world.borrow()))
        .unwrap();
}

fn view(world: &World, name: &str) -> View {
    world.borrow()[name].clone()
}

fn new_world() -> Arc<World> {
    Arc::new(watch::Sender::new(BTreeMap::new()))
}

/// A mock cluster of 3 brokers with topic `t` (6 partitions), speaking the group API versions it
/// reads right, where group `group_id`'s leader cannot sync before its followers (see the module
/// documentation).
fn mock_for(group_id: &str) -> MockCluster {
    let mock = MockCluster::start(3);
    mock.create_topic("t", 6, 1);
    mock.use_tested_group_versions();
    // The leader refreshes metadata (at broker 1, the lowest id) before it assigns; slowing broker
    // 1, which does not coordinate the group, lets the followers' SyncGroup arrive first.
    mock.set_group_coordinator(group_id, 3);
    mock.set_round_trip_time(Some(1), Duration::from_millis(100));
    mock
}

/// Three members join one by one, then one leaves; after every rebalance the members own disjoint
/// partitions that together cover the topic.
async fn join_one_by_one_then_leave(strategy: &str) {
    let group_id = format!("g-{strategy}");
    let mock = mock_for(&group_id);
    let world = new_world();
    let all = partitions("t", 6);

    let a = join(
        &mock,
        &world,
        "a",
        config(&group_id, strategy),
        topics(&["t"]),
        false,
    )
    .await;
    let g1 = settled(&world, &["a"], &all).await;
    let b = join(
        &mock,
        &world,
        "b",
        config(&group_id, strategy),
        topics(&["t"]),
        false,
    )
    .await;
    let g2 = settled(&world, &["a", "b"], &all).await;
    assert!(g2 > g1);
    let c = join(
        &mock,
        &world,
        "c",
        config(&group_id, strategy),
        topics(&["t"]),
        false,
    )
    .await;
    let g3 = settled(&world, &["a", "b", "c"], &all).await;
    assert!(g3 > g2);
    for m in [&a, &b, &c] {
        assert_eq!(
            view(&world, &m.name).owned.len(),
            2,
            "{m_name}",
            m_name = m.name
        );
        assert!(view(&world, &m.name).lost.is_empty());
    }

    c.group.leave();
    ended(&world, "c").await;
    assert!(view(&world, "c").owned.is_empty());
    let g4 = settled(&world, &["a", "b"], &all).await;
    assert!(g4 > g3);
    assert_eq!(view(&world, "a").owned.len(), 3);
    assert_eq!(view(&world, "b").owned.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn range_members_join_one_by_one_and_leave() {
    join_one_by_one_then_leave("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooperative_members_join_one_by_one_and_leave() {
    join_one_by_one_then_leave("cooperative-sticky").await;
}

/// Cooperative rebalancing (KIP-429): when a third member joins, the others are revoked only the
/// partitions that move to it, and keep the rest throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooperative_join_revokes_only_moved_partitions() {
    let mock = mock_for("coop");
    let world = new_world();
    let all = partitions("t", 6);
    let strategy = "cooperative-sticky";

    let _a = join(
        &mock,
        &world,
        "a",
        config("coop", strategy),
        topics(&["t"]),
        false,
    )
    .await;
    let _b = join(
        &mock,
        &world,
        "b",
        config("coop", strategy),
        topics(&["t"]),
        false,
    )
    .await;
    settled(&world, &["a", "b"], &all).await;
    let before: BTreeMap<&str, View> = ["a", "b"].map(|n| (n, view(&world, n))).into();

    let _c = join(
        &mock,
        &world,
        "c",
        config("coop", strategy),
        topics(&["t"]),
        false,
    )
    .await;
    settled(&world, &["a", "b", "c"], &all).await;

    let mut moved = BTreeSet::new();
    for name in ["a", "b"] {
        let (old, new) = (&before[name], view(&world, name));
        assert!(new.lost.is_empty(), "{name} lost partitions: {new:?}");
        assert!(
            new.owned.is_subset(&old.owned),
            "{name} gained partitions: {old:?} -> {new:?}"
        );
        let revoked_now: BTreeSet<TopicPartition> = new.revoked[old.revoked.len()..]
            .iter()
            .flatten()
            .cloned()
            .collect();
        let given_up: BTreeSet<TopicPartition> =
            old.owned.difference(&new.owned).cloned().collect();
        assert_eq!(
            revoked_now, given_up,
            "{name} was revoked partitions it kept: {old:?} -> {new:?}"
        );
        moved.extend(given_up);
    }
    let c = view(&world, "c");
    assert_eq!(c.owned, moved, "c owns exactly what the others gave up");
    assert_eq!(c.owned.len(), 2);
    assert!(c.revoked.is_empty());
}

/// Commits carry the member's generation: the current one is accepted (also after the coordinator
/// moved) and read back, an older one is refused with an error naming the group, and the offsets
/// outlive the members.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_are_fenced_by_generation_and_outlive_the_members() {
    let mock = mock_for("commits");
    let world = new_world();
    let all = partitions("t", 6);

    let a = join(
        &mock,
        &world,
        "a",
        config("commits", "range"),
        topics(&["t"]),
        false,
    )
    .await;
    settled(&world, &["a"], &all).await;
    let first = a
        .group
        .generation()
        .expect("a settled member has a generation");
    let offsets: Vec<(TopicPartition, i64)> =
        all.iter().map(|p| (p.clone(), offset_for(p, 1))).collect();
    // A coordinator that moved or is not ready yet is looked up again, within the request timeout.
    mock.push_request_errors(
        ApiKey::OffsetCommit,
        &[
            ErrorCode::NOT_COORDINATOR,
            ErrorCode::COORDINATOR_NOT_AVAILABLE,
        ],
    );
    a.group.commit(&offsets).await.unwrap();
    mock.push_request_errors(
        ApiKey::OffsetFetch,
        &[
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
            ErrorCode::NOT_COORDINATOR,
        ],
    );
    let read = a
        .group
        .committed(&all.iter().cloned().collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(read, offsets.iter().cloned().collect::<HashMap<_, _>>());

    let b = join(
        &mock,
        &world,
        "b",
        config("commits", "range"),
        topics(&["t"]),
        false,
    )
    .await;
    settled(&world, &["a", "b"], &all).await;
    let second = a.group.generation().unwrap();
    assert!(
        second.generation_id > first.generation_id,
        "{first:?} -> {second:?}"
    );
    assert_eq!(
        second.member_id, first.member_id,
        "a dynamic member keeps its member id"
    );

    // A commit made with the generation the offsets were processed in, now stale, is refused.
    let stale = [(tp("t", 0), offset_for(&tp("t", 0), 2))];
    let err = a.group.commit_with(&first, &stale).await.unwrap_err();
    assert!(is_commit_fenced(&err), "{err}");
    assert!(!err.is_retriable());
    assert!(
        matches!(
            err,
            Error::Broker {
                code: ErrorCode::ILLEGAL_GENERATION,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("commits"),
        "names the group: {err}"
    );

    // The current generation commits what each member owns.
    let mut latest: BTreeMap<TopicPartition, i64> = offsets.iter().cloned().collect();
    for m in [&a, &b] {
        let mine: Vec<(TopicPartition, i64)> = view(&world, &m.name)
            .owned
            .iter()
            .map(|p| (p.clone(), offset_for(p, 3)))
            .collect();
        m.group.commit(&mine).await.unwrap();
        latest.extend(mine);
    }

    a.group.leave();
    b.group.leave();
    ended(&world, "a").await;
    ended(&world, "b").await;

    // A new member of the group reads what the old ones committed.
    let d = join(
        &mock,
        &world,
        "d",
        config("commits", "range"),
        topics(&["t"]),
        false,
    )
    .await;
    let read = d
        .group
        .committed(&all.iter().cloned().collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(read, latest.into_iter().collect::<HashMap<_, _>>());
}

/// A static member (`group.instance.id`) sends no LeaveGroup when it closes: the coordinator keeps
/// it, and its partitions, until its session expires, so the other member sees no rebalance
/// before that.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn static_member_that_closes_stays_until_its_session_expires() {
    let mock = mock_for("static");
    let world = new_world();
    let all = partitions("t", 6);

    let mut static_config = config("static", "range");
    static_config
        .set_property("group.instance.id", "a-instance")
        .unwrap();
    let a = join(&mock, &world, "a", static_config, topics(&["t"]), false).await;
    let _b = join(
        &mock,
        &world,
        "b",
        config("static", "range"),
        topics(&["t"]),
        false,
    )
    .await;
    let generation = settled(&world, &["a", "b"], &all).await;
    assert_eq!(
        a.group.generation().unwrap().group_instance_id.as_deref(),
        Some("a-instance")
    );
    let b_before = view(&world, "b");

    a.group.leave();
    ended(&world, "a").await;
    assert_eq!(
        view(&world, "a").revoked.len(),
        1,
        "a revoked its partitions"
    );

    // A dynamic member's LeaveGroup would start a rebalance at once, which b would hear about
    // within a heartbeat (300 ms). Nothing happens for half the 6 s session.
    let mut rx = world.subscribe();
    let quiet = tokio::time::timeout(
        Duration::from_secs(3),
        rx.wait_for(|w| {
            w["b"].revoked.len() != b_before.revoked.len() || w["b"].generation != generation
        }),
    )
    .await;
    assert!(
        quiet.is_err(),
        "b rebalanced right after a static member closed: {:#?}",
        *world.borrow()
    );

    // Once a's session has expired the coordinator removes it and b takes over.
    settled(&world, &["b"], &all).await;
    assert!(view(&world, "b").lost.is_empty());
}

/// The revoke handler can commit: during a revocation before rejoining (eager) and before leaving,
/// the generation is still valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_handler_commits_with_the_generation_still_valid() {
    let mock = mock_for("revoke");
    mock.create_topic("u", 2, 1);
    let world = new_world();
    let t_only = partitions("t", 6);
    let both: BTreeSet<TopicPartition> = t_only.iter().cloned().chain(partitions("u", 2)).collect();

    let a = join(
        &mock,
        &world,
        "a",
        config("revoke", "range"),
        topics(&["t"]),
        true,
    )
    .await;
    settled(&world, &["a"], &t_only).await;

    // A subscription change makes the eager member revoke everything before it rejoins; the group
    // is still stable, so the commit is accepted.
    a.group.subscribe(topics(&["t", "u"]));
    settled(&world, &["a"], &both).await;
    let v = view(&world, "a");
    assert_eq!(v.revoked, vec![t_only.iter().cloned().collect::<Vec<_>>()]);
    assert_eq!(v.revoke_commits, vec![Ok(())]);
    let read = a
        .group
        .committed(&t_only.iter().cloned().collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(read.len(), 6);
    assert!(read.iter().all(|(p, o)| *o == offset_for(p, 9)), "{read:?}");

    // A second member joining: a revokes (eager) when its heartbeat hears of the rebalance. Kafka
    // accepts a commit of the current generation while the group prepares the rebalance; the mock
    // refuses it with REBALANCE_IN_PROGRESS (a documented deviation), which must then be the
    // fenced error, not anything else.
    let _b = join(
        &mock,
        &world,
        "b",
        config("revoke", "range"),
        topics(&["t", "u"]),
        false,
    )
    .await;
    settled(&world, &["a", "b"], &both).await;
    let v = view(&world, "a");
    assert_eq!(v.revoke_commits.len(), 2, "{v:?}");
    assert!(
        matches!(
            v.revoke_commits[1],
            Ok(()) | Err(ErrorCode::REBALANCE_IN_PROGRESS)
        ),
        "{v:?}"
    );

    // Leaving: the revocation comes before LeaveGroup, with the group stable: accepted.
    let owned: Vec<TopicPartition> = view(&world, "a").owned.into_iter().collect();
    a.group.leave();
    ended(&world, "a").await;
    let v = view(&world, "a");
    assert_eq!(v.revoke_commits.len(), 3, "{v:?}");
    assert_eq!(v.revoke_commits[2], Ok(()));
    assert_eq!(v.revoked.last(), Some(&owned));
    assert!(a.group.generation().is_none());
    let read = a.group.committed(&owned).await.unwrap();
    assert!(
        owned.iter().all(|p| read.get(p) == Some(&offset_for(p, 9))),
        "{read:?}"
    );
    settled(&world, &["b"], &both).await;
}
