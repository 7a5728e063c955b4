//! Mixed consumer groups on Apache Kafka itself: kbus members and Java members (Kafka's
//! `VerifiableConsumer`, the classic protocol) in one group, for each assignor both clients have
//! (range, roundrobin, cooperative-sticky; cooperative-sticky on Kafka 3.0 too), while records
//! keep arriving:
//! - after every join, leave and a member killed without leaving, the members' assignments are
//!   disjoint and cover every partition, each live member owning some;
//! - every record produced is consumed by some member;
//! - the offsets Java members commit, kbus reads back, and the offsets kbus commits a Java member
//!   starts from: a last Java member reads exactly the records written after everyone stopped.
//!
//! What each member owns is followed from its own events: kbus's `Event::Assigned / Revoked /
//! Lost`, and the JSON lines `VerifiableConsumer` prints for each rebalance, record and commit.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kbus::cluster::ClusterConfig;
use kbus::config::Properties;
use kbus::consumer::{Consumer, Event};
use kbus::producer::{Producer, ProducerConfig, ProducerRecord};
use kbus::TopicPartition;
use kbus_testkit::kafka::{ConsumerEvent, JavaProcess, JavaTool, Kafka, KafkaVersion};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use common::{blocking, create_topic, produce_to_each_partition};

const PARTITIONS: i32 = 8;
/// A failure guard for each wait (a killed Java member leaves after its 6 s session timeout).
const GUARD: Duration = Duration::from_secs(90);

/// What the members reported, updated as their events arrive.
#[derive(Debug, Default)]
struct State {
    /// Member → the partitions it owns now.
    owned: BTreeMap<String, BTreeSet<i32>>,
    /// (partition, offset) → how many times a member consumed it.
    consumed: BTreeMap<(i32, i64), u32>,
    /// Member → partition → the first offset it consumed there.
    first: BTreeMap<String, BTreeMap<i32, i64>>,
    /// Every consumption, in the order reported: (member, partition, offset).
    log: Vec<(String, i32, i64)>,
    /// Member → partition → the last offset it committed there (successfully).
    committed: BTreeMap<String, BTreeMap<i32, i64>>,
}

#[derive(Default)]
struct Group {
    state: Mutex<State>,
    changed: Notify,
}

impl Group {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap());
        self.changed.notify_waiters();
    }

    fn consumed(&self, member: &str, partition: i32, offset: i64) {
        self.update(|s| {
            *s.consumed.entry((partition, offset)).or_default() += 1;
            s.log.push((member.to_owned(), partition, offset));
            s.first
                .entry(member.to_owned())
                .or_default()
                .entry(partition)
                .or_insert(offset);
        });
    }

    /// Waits (on the members' events) until `done` holds.
    async fn wait_for(&self, what: &str, done: impl Fn(&State) -> bool) {
        let deadline = Instant::now() + GUARD;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(&self.state.lock().unwrap()) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, changed).await.is_err() {
                panic!(
                    "{what}: not reached; {:#?}",
                    self.state.lock().unwrap().owned
                );
            }
        }
    }

    /// Waits until exactly `members` own partitions, disjoint ones covering all of them.
    async fn wait_balanced(&self, members: &[&str]) {
        let want: BTreeSet<&str> = members.iter().copied().collect();
        self.wait_for(&format!("a balanced group of {members:?}"), |s| {
            let owners: BTreeSet<&str> = s
                .owned
                .iter()
                .filter(|(_, ps)| !ps.is_empty())
                .map(|(m, _)| m.as_str())
                .collect();
            let total: usize = s.owned.values().map(BTreeSet::len).sum();
            let union: BTreeSet<i32> = s.owned.values().flatten().copied().collect();
            owners == want && total == PARTITIONS as usize && union.len() == PARTITIONS as usize
        })
        .await;
    }
}

/// A kbus member: polls, follows rebalances, commits what it consumed when partitions are
/// revoked and when it is stopped (then it leaves the group).
struct KbusMember {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl KbusMember {
    fn start(
        name: &str,
        bootstrap: &str,
        group_id: &str,
        topic: &str,
        assignor: &str,
        group: Arc<Group>,
    ) -> Self {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (name, topic) = (name.to_owned(), topic.to_owned());
        let properties = Properties::from([
            ("bootstrap.servers", bootstrap),
            ("group.id", group_id),
            ("auto.offset.reset", "earliest"),
            ("partition.assignment.strategy", assignor),
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "1000"),
        ]);
        let task = tokio::spawn(async move {
            let mut consumer = Consumer::from_properties(properties).await.unwrap();
            consumer.subscribe([topic.as_str()]).unwrap();
            // Partition → the next offset to read, for what this member consumed.
            let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
            let commit = |group: &Group, positions: &BTreeMap<i32, i64>, ps: &[i32]| {
                group.update(|s| {
                    let mine = s.committed.entry(name.clone()).or_default();
                    for p in ps {
                        if let Some(o) = positions.get(p) {
                            mine.insert(*p, *o);
                        }
                    }
                });
            };
            loop {
                let event = tokio::select! {
                    _ = &mut stopped => break,
                    event = consumer.poll() => event.unwrap(),
                };
                match event {
                    Event::Records(batch) => {
                        let p = batch.topic_partition.partition;
                        for r in &batch.records {
                            group.consumed(&name, p, r.offset);
                        }
                        positions.insert(p, batch.next_offset);
                    }
                    Event::Assigned(tps) => group.update(|s| {
                        s.owned
                            .entry(name.clone())
                            .or_default()
                            .extend(tps.iter().map(|tp| tp.partition))
                    }),
                    Event::Revoked(tps) => {
                        consumer.commit_consumed().await.unwrap();
                        let ps: Vec<i32> = tps.iter().map(|tp| tp.partition).collect();
                        commit(&group, &positions, &ps);
                        group.update(|s| {
                            let mine = s.owned.entry(name.clone()).or_default();
                            for p in &ps {
                                mine.remove(p);
                            }
                        });
                    }
                    Event::Lost(tps) => group.update(|s| {
                        let mine = s.owned.entry(name.clone()).or_default();
                        for tp in &tps {
                            mine.remove(&tp.partition);
                        }
                    }),
                    _ => {}
                }
            }
            consumer.commit_consumed().await.unwrap();
            let owned: Vec<i32> = group
                .state
                .lock()
                .unwrap()
                .owned
                .get(&name)
                .into_iter()
                .flatten()
                .copied()
                .collect();
            commit(&group, &positions, &owned);
            consumer.close().await.unwrap();
            group.update(|s| {
                s.owned.remove(&name);
            });
        });
        KbusMember { stop, task }
    }

    /// Commits, leaves the group and waits until it is out.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// A Java member: Kafka's VerifiableConsumer (commits synchronously after each poll), its
/// output lines turned into the group's state on a task of their own.
struct JavaMember {
    process: JavaProcess,
    reader: JoinHandle<()>,
}

impl JavaMember {
    fn start(
        name: &str,
        bootstrap: &str,
        group_id: &str,
        topic: &str,
        assignor_class: &str,
        max_messages: Option<usize>,
        group: Arc<Group>,
    ) -> Self {
        let mut tool = JavaTool::new(
            KafkaVersion::Newest,
            "org.apache.kafka.tools.VerifiableConsumer",
        )
        .args(["--bootstrap-server", bootstrap, "--topic", topic])
        .args(["--group-id", group_id, "--group-protocol", "classic"])
        .args([
            "--assignment-strategy",
            &format!("org.apache.kafka.clients.consumer.{assignor_class}"),
        ])
        .args([
            "--session-timeout",
            "6000",
            "--reset-policy",
            "earliest",
            "--verbose",
        ]);
        if let Some(n) = max_messages {
            tool = tool.args(["--max-messages", &n.to_string()]);
        }
        let mut process = tool.spawn();
        let mut lines = process.take_lines();
        let name = name.to_owned();
        let reader = tokio::spawn(async move {
            while let Some(line) = lines.recv().await {
                match ConsumerEvent::parse(&line) {
                    Some(ConsumerEvent::Assigned(ps)) => group.update(|s| {
                        s.owned
                            .entry(name.clone())
                            .or_default()
                            .extend(ps.iter().map(|p| p.1))
                    }),
                    Some(ConsumerEvent::Revoked(ps)) | Some(ConsumerEvent::Lost(ps)) => group
                        .update(|s| {
                            let mine = s.owned.entry(name.clone()).or_default();
                            for (_, p) in &ps {
                                mine.remove(p);
                            }
                        }),
                    Some(ConsumerEvent::Record { at, .. }) => {
                        group.consumed(&name, at.partition, at.offset)
                    }
                    Some(ConsumerEvent::Committed {
                        offsets,
                        success: true,
                        ..
                    }) => group.update(|s| {
                        let mine = s.committed.entry(name.clone()).or_default();
                        for o in offsets {
                            mine.insert(o.partition, o.offset);
                        }
                    }),
                    _ => {}
                }
            }
            // The process is gone (exited or killed): it owns nothing any more.
            group.update(|s| {
                s.owned.remove(&name);
            });
        });
        JavaMember { process, reader }
    }

    /// Kills it (SIGKILL): it vanishes without leaving the group.
    async fn kill(mut self) {
        self.process.kill();
        self.reader.await.unwrap();
    }

    /// Stops it the way an operator does (SIGTERM: it closes its consumer and leaves).
    async fn terminate(mut self) {
        self.process.terminate();
        let mut process = self.process;
        let exited = blocking(move || process.wait(GUARD)).await;
        assert!(exited.is_some(), "the Java member did not exit");
        self.reader.await.unwrap();
    }

    /// Waits until it exits by itself (after --max-messages).
    async fn finish(self) {
        let mut process = self.process;
        let (exited, stderr) = blocking(move || (process.wait(GUARD), process.stderr())).await;
        assert_eq!(exited, Some(true), "the Java member failed:\n{stderr}");
        self.reader.await.unwrap();
    }
}

/// Produces keyed records, one every few milliseconds, until stopped; returns where each went.
fn keep_producing(
    bootstrap: &str,
    topic: &str,
) -> (oneshot::Sender<()>, JoinHandle<BTreeSet<(i32, i64)>>) {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    let task = tokio::spawn(async move {
        let producer = Producer::connect(ClusterConfig::new(&bootstrap), ProducerConfig::default())
            .await
            .unwrap();
        let mut deliveries = Vec::new();
        let mut i = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tick.tick() => {}
            }
            let r = ProducerRecord::new(&topic)
                .key(format!("key-{}", i % 100))
                .value(format!("value-{i}"));
            deliveries.push(producer.send(r).await.unwrap());
            i += 1;
        }
        let mut written = BTreeSet::new();
        for d in deliveries {
            let at = d.await.unwrap();
            written.insert((at.partition, at.offset));
        }
        producer.close().await.unwrap();
        written
    });
    (stop, task)
}

async fn mixed_group(broker: KafkaVersion, kbus_assignor: &str, java_assignor: &str) {
    let own;
    let kafka = match broker {
        KafkaVersion::Newest => Kafka::shared(),
        older => {
            own = blocking(move || Kafka::builder().version(older).start()).await;
            &own
        }
    };
    let _log = kafka.log_on_failure();
    let bootstrap = kafka.bootstrap();
    let topic = format!("mixed-{kbus_assignor}");
    let group_id = format!("mixed-{kbus_assignor}");
    create_topic(&bootstrap, &topic, PARTITIONS, &[]).await;
    let group = Arc::new(Group::default());
    let kbus = |name: &str| {
        KbusMember::start(
            name,
            &bootstrap,
            &group_id,
            &topic,
            kbus_assignor,
            group.clone(),
        )
    };
    let java = |name: &str| {
        JavaMember::start(
            name,
            &bootstrap,
            &group_id,
            &topic,
            java_assignor,
            None,
            group.clone(),
        )
    };

    let (stop_producing, producing) = keep_producing(&bootstrap, &topic);
    let a = kbus("kbus-a");
    group.wait_balanced(&["kbus-a"]).await;
    let j1 = java("java-1");
    group.wait_balanced(&["kbus-a", "java-1"]).await;
    let b = kbus("kbus-b");
    group.wait_balanced(&["kbus-a", "java-1", "kbus-b"]).await;
    let j2 = java("java-2");
    group
        .wait_balanced(&["kbus-a", "java-1", "kbus-b", "java-2"])
        .await;
    a.stop().await;
    group.wait_balanced(&["java-1", "kbus-b", "java-2"]).await;
    j1.kill().await;
    group.wait_balanced(&["kbus-b", "java-2"]).await;

    // Every record written is consumed by someone.
    let _ = stop_producing.send(());
    let written = producing.await.unwrap();
    assert!(
        written.len() > 500,
        "records kept coming ({})",
        written.len()
    );
    group
        .wait_for("every record consumed", |s| {
            written.iter().all(|r| s.consumed.contains_key(r))
        })
        .await;

    // The kbus member leaves, committing what it consumed; the Java member takes its partitions
    // over from those commits: the first records it reads there are the ones written next.
    let b_partitions = group.state.lock().unwrap().owned["kbus-b"].clone();
    assert!(!b_partitions.is_empty());
    b.stop().await;
    group.wait_balanced(&["java-2"]).await;
    let handover = group.state.lock().unwrap().log.len();
    let ends = produce_to_each_partition(&bootstrap, &topic, PARTITIONS, 5, "after-b").await;
    // The Java member commits each poll's records: once its commits reach every partition's
    // end, it has read everything.
    group
        .wait_for("the Java member committed everything", |s| {
            s.committed
                .get("java-2")
                .is_some_and(|c| ends.iter().all(|(p, end)| c.get(p) == Some(end)))
        })
        .await;
    {
        let s = group.state.lock().unwrap();
        for p in &b_partitions {
            let first = s.log[handover..]
                .iter()
                .filter(|(m, q, _)| m == "java-2" && q == p)
                .map(|(_, _, o)| *o)
                .min();
            assert_eq!(
                first,
                Some(ends[p] - 5),
                "Java took partition {p} over from kbus's commit"
            );
        }
    }
    j2.terminate().await;

    // kbus reads back what the Java member committed.
    let properties = Properties::from([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", group_id.as_str()),
    ]);
    let reader = Consumer::from_properties(properties).await.unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(&topic, p))
        .collect();
    let committed = reader.committed(&tps).await.unwrap();
    for (p, end) in &ends {
        assert_eq!(
            committed[&TopicPartition::new(&topic, *p)],
            Some(*end),
            "committed offset of partition {p}"
        );
    }

    // A last Java member starts where the group committed and reads exactly what was written
    // after everyone stopped.
    let consumed_before = group.state.lock().unwrap().consumed.len();
    let _ = produce_to_each_partition(&bootstrap, &topic, PARTITIONS, 10, "late").await;
    let j3 = JavaMember::start(
        "java-3",
        &bootstrap,
        &group_id,
        &topic,
        java_assignor,
        Some(10 * PARTITIONS as usize),
        group.clone(),
    );
    j3.finish().await;
    let s = group.state.lock().unwrap();
    assert_eq!(
        s.first["java-3"], ends,
        "the last member's first offsets are the committed ones"
    );
    assert_eq!(
        s.consumed.len(),
        consumed_before + 10 * PARTITIONS as usize,
        "it read only the new records"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_group_with_the_range_assignor() {
    mixed_group(KafkaVersion::Newest, "range", "RangeAssignor").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_group_with_the_roundrobin_assignor() {
    mixed_group(KafkaVersion::Newest, "roundrobin", "RoundRobinAssignor").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_group_with_the_cooperative_sticky_assignor() {
    mixed_group(
        KafkaVersion::Newest,
        "cooperative-sticky",
        "CooperativeStickyAssignor",
    )
    .await;
}

/// The same on Kafka 3.0 (the oldest broker tested): the classic group protocol at its older
/// versions (JoinGroup v7, LeaveGroup v4), with the Java 4.4 client beside kbus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_group_with_the_cooperative_sticky_assignor_on_kafka_3_0() {
    mixed_group(
        KafkaVersion::First3x,
        "cooperative-sticky",
        "CooperativeStickyAssignor",
    )
    .await;
}
