//! Consumer groups through the [`Consumer`] on librdkafka's 3-broker mock cluster: a group of 3
//! members consuming while members join and leave. Every record is handled at least once, no
//! partition is owned by two members once a rebalance has completed, a member never gets records
//! of a partition it does not own, and the committed offsets survive a restart of the group.
//!
//! Each member is a task looping on `poll` with its own [`Cluster`] (its own connections), as
//! separate processes would; it records what it owns and handles in a view shared with the test,
//! which waits on that view. Timeouts only guard against hangs.
//!
//! The mock's deviations from Kafka and their workarounds are those of `tests/group_mock.rs`: group
//! API versions limited to those librdkafka uses, a slow broker 1 (which does not coordinate the
//! group) so that followers sync before the leader, rebalances lasting about the session timeout
//! (6 s here), and OffsetCommit refused with REBALANCE_IN_PROGRESS while a rebalance is being
//! prepared — a fenced commit on revocation is tolerated (the records are then handled again by
//! the next owner: at least once).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kbus::admin::{Admin, OffsetSpec};
use kbus::cluster::{Cluster, ClusterConfig};
use kbus::config::Settings;
use kbus::consumer::{is_commit_fenced, Consumer, ConsumerConfig, ConsumerRecord, Event};
use kbus::producer::{Producer, ProducerConfig, ProducerRecord};
use kbus::protocol::error_code::ErrorCode;
use kbus::protocol::ApiKey;
use kbus::TopicPartition;
use kbus_testkit::mock_cluster::MockCluster;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A failure guard: no single step of a test may take longer.
const GUARD: Duration = Duration::from_secs(60);
const TOPIC: &str = "t";
const PARTITIONS: i32 = 6;

fn all_partitions() -> BTreeSet<TopicPartition> {
    (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect()
}

fn value_of(r: &ConsumerRecord) -> String {
    String::from_utf8(r.value.as_deref().expect("a value").to_vec()).unwrap()
}

/// What one member has been told and has done, as its task recorded it.
#[derive(Debug, Default, Clone)]
struct View {
    owned: BTreeSet<TopicPartition>,
    /// The generation the member held when it was last assigned; -1 before.
    generation: i32,
    records: usize,
    revocations: usize,
    lost: Vec<Vec<TopicPartition>>,
    /// Commits made on revocation: accepted, and refused as fenced.
    revoke_commits_ok: usize,
    revoke_commits_fenced: usize,
}

#[derive(Debug, Default)]
struct World {
    members: BTreeMap<String, View>,
    /// How many times each value was handled, by any member.
    handled: HashMap<String, u32>,
}

type SharedWorld = Arc<watch::Sender<World>>;

fn mock_for(group_id: &str) -> MockCluster {
    let mock = MockCluster::start(3);
    mock.create_topic(TOPIC, PARTITIONS, 1);
    mock.use_tested_group_versions();
    // The leader refreshes metadata at broker 1 (the lowest id) before it assigns; slowing broker
    // 1, which does not coordinate the group, lets the followers' SyncGroup arrive first (see
    // tests/group_mock.rs).
    mock.set_group_coordinator(group_id, 3);
    mock.set_round_trip_time(Some(1), Duration::from_millis(100));
    mock
}

fn member_config(group_id: &str, strategy: &str, auto_commit: bool) -> ConsumerConfig {
    let mut c = ConsumerConfig::from_properties([
        ("group.id", group_id),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "100"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "300"),
        ("partition.assignment.strategy", strategy),
        ("auto.commit.interval.ms", "200"),
    ])
    .unwrap();
    c.enable_auto_commit = auto_commit;
    c
}

async fn connect(mock: &MockCluster) -> Cluster {
    Cluster::connect(ClusterConfig::new(&mock.bootstrap()))
        .await
        .unwrap()
}

/// A running member: its task, which hands the consumer back when told to stop.
struct Member {
    name: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<Consumer>,
}

impl Member {
    /// Stops the poll loop and returns the consumer, still in its group.
    async fn stop(self) -> Consumer {
        self.stop.send_replace(true);
        tokio::time::timeout(GUARD, self.task)
            .await
            .unwrap_or_else(|_| panic!("{} did not stop", self.name))
            .unwrap()
    }
}

/// Subscribes a new member `name` and starts its poll loop. Without auto-commit, the loop
/// commits what it consumed on every revocation and, in the background, every half second.
async fn join(
    mock: &MockCluster,
    world: &SharedWorld,
    name: &str,
    config: ConsumerConfig,
) -> Member {
    world.send_modify(|w| {
        w.members.insert(
            name.to_string(),
            View {
                generation: -1,
                ..Default::default()
            },
        );
    });
    let auto_commit = config.enable_auto_commit;
    let mut consumer = Consumer::new(connect(mock).await, config);
    consumer.subscribe([TOPIC]).unwrap();
    let (stop, mut stopped) = watch::channel(false);
    let world = world.clone();
    let me = name.to_string();
    let task = tokio::spawn(async move {
        let mut last_commit = Instant::now();
        loop {
            let event = tokio::select! {
                biased;
                _ = stopped.wait_for(|s| *s) => break,
                event = consumer.poll() => event,
            };
            let event = event.unwrap_or_else(|e| panic!("{me}: poll failed: {e}"));
            match event {
                Event::Records(batch) => {
                    let tp = batch.topic_partition.clone();
                    world.send_modify(|w| {
                        let view = w.members.get_mut(&me).unwrap();
                        assert!(
                            view.owned.contains(&tp),
                            "{me} got records of {tp}, which it does not own: {view:?}"
                        );
                        view.records += batch.records.len();
                        for r in &batch.records {
                            *w.handled.entry(value_of(r)).or_default() += 1;
                        }
                    });
                    if !auto_commit && last_commit.elapsed() >= Duration::from_millis(500) {
                        last_commit = Instant::now();
                        // Does not borrow the consumer: polling goes on meanwhile.
                        tokio::spawn(consumer.commit_consumed_async());
                    }
                }
                Event::Assigned(partitions) => {
                    let generation = consumer.generation().map_or(-1, |g| g.generation_id);
                    world.send_modify(|w| {
                        let view = w.members.get_mut(&me).unwrap();
                        for p in partitions {
                            assert!(view.owned.insert(p.clone()), "{me}: {p} assigned twice");
                        }
                        view.generation = generation;
                    });
                }
                Event::Revoked(partitions) => {
                    world.send_modify(|w| {
                        let view = w.members.get_mut(&me).unwrap();
                        for p in &partitions {
                            assert!(view.owned.remove(p), "{me}: {p} revoked but not owned");
                        }
                        view.revocations += 1;
                    });
                    if !auto_commit {
                        // The generation is still valid: the rebalance waits for the next poll.
                        let result = consumer.commit_consumed().await;
                        world.send_modify(|w| {
                            let view = w.members.get_mut(&me).unwrap();
                            match &result {
                                Ok(()) => view.revoke_commits_ok += 1,
                                Err(e) if is_commit_fenced(e) => view.revoke_commits_fenced += 1,
                                Err(e) => panic!("{me}: commit on revocation failed: {e}"),
                            }
                        });
                    }
                }
                Event::Lost(partitions) => world.send_modify(|w| {
                    let view = w.members.get_mut(&me).unwrap();
                    for p in &partitions {
                        view.owned.remove(p);
                    }
                    view.lost.push(partitions);
                }),
                other => panic!("{me}: unexpected event {other:?}"),
            }
        }
        consumer
    });
    Member {
        name: name.to_string(),
        stop,
        task,
    }
}

/// Waits until every member in `names` holds the same generation, newer than `after`, and owns
/// partitions that together are exactly the topic's; returns that generation. Whenever all of them
/// hold one generation, no partition may have two owners.
async fn settled(world: &SharedWorld, names: &[&str], after: i32) -> i32 {
    let all = all_partitions();
    let mut rx = world.subscribe();
    let found = tokio::time::timeout(GUARD, async {
        rx.wait_for(|w| {
            let views: Vec<&View> = names.iter().map(|n| &w.members[*n]).collect();
            let generation = views[0].generation;
            if generation <= after || views.iter().any(|v| v.generation != generation) {
                return false;
            }
            let owned: usize = views.iter().map(|v| v.owned.len()).sum();
            let union: BTreeSet<&TopicPartition> = views.iter().flat_map(|v| &v.owned).collect();
            assert_eq!(
                union.len(),
                owned,
                "a partition has two owners in generation {generation}: {:#?}",
                w.members
            );
            union.into_iter().eq(all.iter())
        })
        .await
        .map(|w| w.members[names[0]].generation)
        .expect("the world outlives the test")
    })
    .await;
    found.unwrap_or_else(|_| {
        panic!(
            "members {names:?} did not settle after generation {after}: {:#?}",
            world.borrow().members
        )
    })
}

/// Waits until `pred` holds of the world.
async fn until(world: &SharedWorld, what: &str, pred: impl Fn(&World) -> bool) {
    let mut rx = world.subscribe();
    tokio::time::timeout(GUARD, rx.wait_for(|w| pred(w)))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"))
        .unwrap();
}

/// Produces batches of records `v-{n}` back to back (each batch waits for its acknowledgements,
/// acks=all) until stopped; returns every value acknowledged.
fn produce_until_stopped(
    producer: Producer,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut sent = Vec::new();
        while !*stop.borrow_and_update() {
            let mut deliveries = Vec::new();
            for _ in 0..20 {
                let value = format!("v-{}", sent.len() + deliveries.len());
                let record = ProducerRecord::new(TOPIC)
                    .key(value.clone())
                    .value(value.clone());
                deliveries.push((value, producer.send(record).await.unwrap()));
            }
            for (value, delivery) in deliveries {
                delivery.await.unwrap();
                sent.push(value);
            }
        }
        sent
    })
}

/// Reads the log-end offset of every partition.
async fn log_ends(mock: &MockCluster) -> BTreeMap<TopicPartition, i64> {
    Admin::new(connect(mock).await)
        .list_offsets(TOPIC, &[], OffsetSpec::Latest)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (TopicPartition::new(TOPIC, p.partition), p.offset))
        .collect()
}

async fn members_join_and_leave_while_consuming(strategy: &str) {
    let group_id = format!("consumers-{strategy}");
    let mock = mock_for(&group_id);
    let world: SharedWorld = Arc::new(watch::Sender::new(World::default()));
    let producer = Producer::new(connect(&mock).await, ProducerConfig::default())
        .await
        .unwrap();
    let (stop_producing, producing) = watch::channel(false);
    let production = produce_until_stopped(producer.clone(), producing);

    // Members 1..3 join one by one; c commits by itself (enable.auto.commit).
    let a = join(
        &mock,
        &world,
        "a",
        member_config(&group_id, strategy, false),
    )
    .await;
    let g1 = settled(&world, &["a"], -1).await;
    until(&world, "a handles records", |w| w.members["a"].records > 0).await;
    let b = join(
        &mock,
        &world,
        "b",
        member_config(&group_id, strategy, false),
    )
    .await;
    let g2 = settled(&world, &["a", "b"], g1).await;
    let c = join(&mock, &world, "c", member_config(&group_id, strategy, true)).await;
    let g3 = settled(&world, &["a", "b", "c"], g2).await;
    for name in ["a", "b", "c"] {
        assert_eq!(world.borrow().members[name].owned.len(), 2, "{name}");
    }
    until(&world, "c handles records", |w| w.members["c"].records > 0).await;

    // One leaves: closing commits what it consumed (auto-commit), then leaves the group.
    let c = c.stop().await;
    match c.close().await {
        Ok(()) => {}
        Err(e) if is_commit_fenced(&e) => {}
        Err(e) => panic!("c: close failed: {e}"),
    }
    settled(&world, &["a", "b"], g3).await;

    stop_producing.send_replace(true);
    let produced = tokio::time::timeout(GUARD, production)
        .await
        .expect("production stops")
        .unwrap();
    assert!(
        produced.len() > 100,
        "only {} records produced",
        produced.len()
    );
    until(&world, "every produced record was handled", |w| {
        produced.iter().all(|v| w.handled.contains_key(v))
    })
    .await;

    {
        let w = world.borrow();
        for (name, view) in &w.members {
            assert!(view.lost.is_empty(), "{name} lost partitions: {view:?}");
        }
        assert!(
            w.members["a"].revocations > 0,
            "a gave partitions up: {:#?}",
            w.members
        );
        let unexpected: Vec<&String> = w.handled.keys().filter(|v| !produced.contains(v)).collect();
        assert!(
            unexpected.is_empty(),
            "values never produced: {unexpected:?}"
        );
    }

    // The group stops: the remaining members commit what they consumed, then close.
    let mut remaining = Vec::new();
    for member in [a, b] {
        let mut consumer = member.stop().await;
        consumer.commit_consumed().await.unwrap();
        remaining.push(consumer);
    }
    let closing: Vec<_> = remaining
        .into_iter()
        .map(|consumer| tokio::spawn(consumer.close()))
        .collect();
    for closed in closing {
        tokio::time::timeout(GUARD, closed)
            .await
            .expect("close in time")
            .unwrap()
            .unwrap();
    }

    // Everything handled was committed: the group's offsets are the log ends.
    let ends = log_ends(&mock).await;
    let all: Vec<TopicPartition> = all_partitions().into_iter().collect();
    let reader = Consumer::new(
        connect(&mock).await,
        member_config(&group_id, strategy, false),
    );
    let committed = reader.committed(&all).await.unwrap();
    for tp in &all {
        assert_eq!(committed[tp], Some(ends[tp]), "{tp}: committed vs log end");
    }

    // A fresh member of the group starts at the committed offsets: it reads what was produced
    // since, and nothing before (with auto.offset.reset=earliest, lost commits would show).
    let later: Vec<String> = (0..60).map(|i| format!("later-{i}")).collect();
    for value in &later {
        let record = ProducerRecord::new(TOPIC)
            .key(value.clone())
            .value(value.clone());
        producer.send(record).await.unwrap().await.unwrap();
    }
    producer.close().await.unwrap();
    let mut fresh = Consumer::new(
        connect(&mock).await,
        member_config(&group_id, strategy, false),
    );
    fresh.subscribe([TOPIC]).unwrap();
    let mut got: Vec<ConsumerRecord> = Vec::new();
    let mut assigned = BTreeSet::new();
    tokio::time::timeout(GUARD, async {
        while got.len() < later.len() {
            match fresh.poll().await.unwrap() {
                Event::Assigned(partitions) => assigned.extend(partitions),
                Event::Records(batch) => got.extend(batch.records),
                other => panic!("fresh member: unexpected event {other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the fresh member read only {} records", got.len()));
    assert_eq!(assigned, all_partitions());
    for r in &got {
        let tp = TopicPartition::new(TOPIC, r.partition);
        assert!(
            r.offset >= ends[&tp],
            "{tp}@{}: older than the committed offset {}",
            r.offset,
            ends[&tp]
        );
    }
    let mut values: Vec<String> = got.iter().map(value_of).collect();
    values.sort();
    let mut expected = later.clone();
    expected.sort();
    assert_eq!(
        values, expected,
        "exactly the records produced after the commits"
    );
    fresh.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eager_members_join_and_leave_while_consuming() {
    members_join_and_leave_while_consuming("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooperative_members_join_and_leave_while_consuming() {
    members_join_and_leave_while_consuming("cooperative-sticky").await;
}

/// A consumer either assigns partitions itself or subscribes; subscribing needs a group; a
/// subscribed consumer's commits are fenced by its generation.
#[tokio::test]
async fn assign_and_subscribe_are_mutually_exclusive() {
    let mock = MockCluster::start(1);
    mock.create_topic(TOPIC, 2, 1);
    mock.use_tested_group_versions();
    let config = ConsumerConfig {
        group: kbus::group::GroupConfig::new("exclusive"),
        ..Default::default()
    };
    let mut consumer = Consumer::new(connect(&mock).await, config);
    consumer.assign([TopicPartition::new(TOPIC, 0)]).unwrap();
    let err = consumer.subscribe([TOPIC]).unwrap_err();
    assert!(err.to_string().contains("assign"), "{err}");
    consumer.assign([]).unwrap();
    consumer.subscribe([TOPIC]).unwrap();
    assert_eq!(consumer.subscription(), BTreeSet::from([TOPIC.to_string()]));
    // Joining, the member holds no generation yet: a commit now would not be fenced by one, so
    // it is refused as fenced without asking the coordinator.
    assert_eq!(consumer.generation(), None);
    let err = consumer
        .commit(&[(TopicPartition::new(TOPIC, 0), 1)])
        .await
        .unwrap_err();
    assert!(is_commit_fenced(&err), "{err}");
    let err = consumer
        .assign([TopicPartition::new(TOPIC, 0)])
        .unwrap_err();
    assert!(err.to_string().contains("subscribe"), "{err}");
    tokio::time::timeout(GUARD, consumer.unsubscribe())
        .await
        .unwrap()
        .unwrap();
    assert!(consumer.subscription().is_empty());
    consumer.assign([TopicPartition::new(TOPIC, 1)]).unwrap();

    let mut loner = Consumer::new(connect(&mock).await, ConsumerConfig::default());
    let err = loner.subscribe([TOPIC]).unwrap_err();
    assert!(err.to_string().contains("group.id"), "{err}");
}

/// An unexpected SyncGroup error (INVALID_REQUEST, which the mock answers with a null assignment
/// the schema does not allow, or any other code that says nothing lasting about the member)
/// makes the member rejoin, as librdkafka does, instead of failing: the consumer is assigned all
/// the same and `poll` returns no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unexpected_sync_group_error_makes_the_member_rejoin() {
    let mock = mock_for("sync-errors");
    mock.push_request_errors(
        ApiKey::SyncGroup,
        &[ErrorCode::INVALID_REQUEST, ErrorCode::UNKNOWN_SERVER_ERROR],
    );
    let mut consumer = Consumer::new(
        connect(&mock).await,
        member_config("sync-errors", "range", false),
    );
    consumer.subscribe([TOPIC]).unwrap();
    let mut assigned = BTreeSet::new();
    tokio::time::timeout(GUARD, async {
        while assigned != all_partitions() {
            match consumer.poll().await.unwrap() {
                Event::Assigned(partitions) => assigned.extend(partitions),
                other => panic!("unexpected event {other:?}"),
            }
        }
    })
    .await
    .expect("assigned in time");
    assert!(consumer.generation().is_some());
    tokio::time::timeout(GUARD, consumer.close())
        .await
        .unwrap()
        .unwrap();
}

/// librdkafka's mock drops the connection on the flexible JoinGroup versions it offers but cannot
/// read. The member keeps retrying (with backoff), and `poll` says so with an `Event::Error`
/// rather than staying silent forever; the failures are counted in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_that_keeps_dropping_the_join_is_reported_by_poll() {
    let mock = MockCluster::start(1);
    mock.create_topic(TOPIC, 1, 1);
    let cluster = connect(&mock).await;
    let mut consumer = Consumer::new(
        cluster.clone(),
        member_config("dropped-joins", "range", false),
    );
    consumer.subscribe([TOPIC]).unwrap();
    let started = Instant::now();
    let error = match tokio::time::timeout(GUARD, consumer.poll()).await {
        Ok(Ok(Event::Error(e))) => e,
        Ok(Ok(Event::Assigned(p))) => {
            panic!("the mock was expected to drop flexible JoinGroups, yet assigned {p:?}")
        }
        Ok(other) => panic!("unexpected {other:?}"),
        Err(_) => panic!("poll stayed silent for {GUARD:?} while every join failed"),
    };
    assert!(
        error.is_retriable(),
        "a dropped connection is retried: {error}"
    );
    assert!(
        matches!(
            error,
            kbus::Error::Disconnected { .. } | kbus::Error::Io { .. }
        ),
        "the warning says the connection was dropped: {error}"
    );
    let metrics = consumer.metrics();
    let dropped = metrics.errors.get("disconnected").copied().unwrap_or(0)
        + metrics.errors.get("io").copied().unwrap_or(0);
    assert!(
        dropped >= 3,
        "three failures before the warning: {metrics:?}"
    );
    // Three failures with a backoff between them: retried, not spinning.
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "failures retried without backoff: {:?}",
        started.elapsed()
    );
    assert_eq!(metrics.rebalances, 0);
}
