//! Tests of the membership machine: inputs fed with explicit times, outputs asserted.

use super::*;
use crate::group::assignor::MemberSubscription;
use bytes::Bytes;
use kbus_protocol::messages::join_group::JoinGroupResponseMember;

const BROKER: &str = "broker-1:9092";

/// Deals each topic's partitions in turn to the members subscribed to it, members sorted by id.
#[derive(Debug)]
struct DealAssignor(RebalanceProtocol);

impl Assignor for DealAssignor {
    fn name(&self) -> &'static str {
        "deal"
    }
    fn protocol(&self) -> RebalanceProtocol {
        self.0
    }
    fn assign(
        &self,
        members: &[MemberSubscription],
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
        sorted.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        let mut out: BTreeMap<String, Vec<TopicPartition>> = sorted
            .iter()
            .map(|m| (m.member_id.clone(), Vec::new()))
            .collect();
        let mut turn = 0;
        for (topic, &count) in partitions {
            let subscribers: Vec<&&MemberSubscription> =
                sorted.iter().filter(|m| m.topics.contains(topic)).collect();
            if subscribers.is_empty() {
                continue;
            }
            for p in 0..count {
                let m = subscribers[turn % subscribers.len()];
                out.entry(m.member_id.clone())
                    .or_default()
                    .push(TopicPartition::new(topic.clone(), p));
                turn += 1;
            }
        }
        out
    }
}

fn config(protocol: RebalanceProtocol) -> MembershipConfig {
    MembershipConfig {
        assignors: vec![Arc::new(DealAssignor(protocol))],
        ..MembershipConfig::new("g")
    }
}

fn eager() -> MembershipConfig {
    config(RebalanceProtocol::Eager)
}

fn cooperative() -> MembershipConfig {
    config(RebalanceProtocol::Cooperative)
}

fn topics(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn drain(m: &mut Membership, now: Instant) -> Vec<Output> {
    let mut out = Vec::new();
    while let Some(o) = m.poll(now) {
        out.push(o);
        assert!(out.len() < 100, "poll never runs dry");
    }
    out
}

fn one(mut out: Vec<Output>) -> Output {
    assert_eq!(out.len(), 1, "expected one output, got {out:?}");
    out.pop().unwrap()
}

fn expect_join(out: Vec<Output>) -> JoinGroupRequest {
    match one(out) {
        Output::SendJoin(j) => j,
        o => panic!("expected SendJoin, got {o:?}"),
    }
}

fn expect_sync(out: Vec<Output>) -> SyncGroupRequest {
    match one(out) {
        Output::SendSync(s) => s,
        o => panic!("expected SendSync, got {o:?}"),
    }
}

fn expect_heartbeat(out: Vec<Output>) -> HeartbeatRequest {
    match one(out) {
        Output::SendHeartbeat(h) => h,
        o => panic!("expected SendHeartbeat, got {o:?}"),
    }
}

fn expect_assigned(out: Vec<Output>) -> Vec<TopicPartition> {
    match one(out) {
        Output::Assigned(p) => p,
        o => panic!("expected Assigned, got {o:?}"),
    }
}

/// The subscription carried by the first protocol of a JoinGroup.
fn join_subscription(join: &JoinGroupRequest) -> Subscription {
    Subscription::decode(join.protocols[0].metadata.clone()).unwrap()
}

fn subscription(topic_names: &[&str]) -> Bytes {
    Subscription::new(topic_names.iter().copied()).encode(3)
}

fn join_ok(
    generation_id: i32,
    member_id: &str,
    leader: &str,
    members: &[(&str, Bytes)],
) -> JoinGroupResponse {
    JoinGroupResponse {
        generation_id,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("deal".into()),
        leader: leader.into(),
        member_id: member_id.into(),
        members: members
            .iter()
            .map(|(id, metadata)| JoinGroupResponseMember {
                member_id: id.to_string(),
                metadata: metadata.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn join_err(code: ErrorCode, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code.0,
        member_id: member_id.into(),
        ..Default::default()
    }
}

fn sync_ok(partitions: &[TopicPartition]) -> SyncGroupResponse {
    SyncGroupResponse {
        protocol_type: Some("consumer".into()),
        protocol_name: Some("deal".into()),
        assignment: Assignment::new(partitions.to_vec()).encode(3),
        ..Default::default()
    }
}

fn sync_err(code: ErrorCode) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: code.0,
        ..Default::default()
    }
}

fn heartbeat(code: ErrorCode) -> HeartbeatResponse {
    HeartbeatResponse {
        error_code: code.0,
        ..Default::default()
    }
}

/// A member subscribed to `subscribed`, coordinator found, its first JoinGroup returned.
fn start(
    config: MembershipConfig,
    subscribed: &[&str],
    now: Instant,
) -> (Membership, JoinGroupRequest) {
    let mut m = Membership::new(config).unwrap();
    m.subscribe(topics(subscribed));
    assert!(matches!(one(drain(&mut m, now)), Output::FindCoordinator));
    m.coordinator_found(BROKER, now);
    let join = expect_join(drain(&mut m, now));
    (m, join)
}

/// A follower `m1` stable in generation 1 with `partitions`, all at `now`.
fn stable_follower(
    config: MembershipConfig,
    subscribed: &[&str],
    partitions: &[TopicPartition],
    now: Instant,
) -> Membership {
    let (mut m, _) = start(config, subscribed, now);
    m.on_join_response(join_ok(1, "m1", "leader", &[]), now);
    expect_sync(drain(&mut m, now));
    m.on_sync_response(sync_ok(partitions), now);
    assert_eq!(expect_assigned(drain(&mut m, now)), partitions);
    assert_eq!(m.state(), MemberState::Stable);
    m
}

#[test]
fn member_id_required_then_leader_assigns_and_syncs() {
    let t0 = Instant::now();
    let (mut m, join) = start(eager(), &["a"], t0);
    assert_eq!(join.group_id, "g");
    assert_eq!(join.member_id, "");
    assert_eq!(join.session_timeout_ms, 45_000);
    assert_eq!(join.rebalance_timeout_ms, 300_000);
    assert_eq!(join.protocol_type, "consumer");
    assert_eq!(join.protocols[0].name, "deal");
    assert!(join.reason.is_some());
    let sub = join_subscription(&join);
    assert_eq!(sub.topics, vec!["a".to_string()]);
    assert!(sub.owned_partitions.is_empty());
    assert_eq!(sub.generation_id, -1);

    m.set_partition_counts(BTreeMap::from([("a".into(), 4), ("b".into(), 2)]));
    m.on_join_response(join_err(ErrorCode::MEMBER_ID_REQUIRED, "m1"), t0);
    let join = expect_join(drain(&mut m, t0));
    assert_eq!(join.member_id, "m1");
    assert_eq!(m.generation(), None);

    let members = [
        ("m1", subscription(&["a"])),
        ("m2", subscription(&["a", "b"])),
    ];
    m.on_join_response(join_ok(1, "m1", "m1", &members), t0);
    let sync = expect_sync(drain(&mut m, t0));
    assert!(m.is_leader());
    assert_eq!(m.state(), MemberState::Syncing);
    assert_eq!(m.generation(), None);
    assert_eq!(m.metadata_topics(), topics(&["a", "b"]));
    assert_eq!((sync.generation_id, sync.member_id.as_str()), (1, "m1"));
    assert_eq!(sync.protocol_name.as_deref(), Some("deal"));
    let assignments: BTreeMap<String, Vec<TopicPartition>> = sync
        .assignments
        .iter()
        .map(|a| {
            let decoded = Assignment::decode(a.assignment.clone()).unwrap();
            (a.member_id.clone(), decoded.partitions)
        })
        .collect();
    assert_eq!(
        assignments,
        BTreeMap::from([
            ("m1".to_string(), vec![tp("a", 0), tp("a", 2)]),
            (
                "m2".to_string(),
                vec![tp("a", 1), tp("a", 3), tp("b", 0), tp("b", 1)]
            ),
        ])
    );

    m.on_sync_response(sync_ok(&[tp("a", 0), tp("a", 2)]), t0);
    assert_eq!(
        expect_assigned(drain(&mut m, t0)),
        vec![tp("a", 0), tp("a", 2)]
    );
    assert_eq!(m.state(), MemberState::Stable);
    assert_eq!(m.generation(), Some((1, "m1".to_string())));
    assert_eq!(
        m.assignment(),
        &[tp("a", 0), tp("a", 2)].into_iter().collect()
    );
}

#[test]
fn follower_syncs_with_no_assignments() {
    let t0 = Instant::now();
    let (mut m, _) = start(eager(), &["a"], t0);
    m.on_join_response(join_ok(5, "m1", "m0", &[]), t0);
    let sync = expect_sync(drain(&mut m, t0));
    assert!(!m.is_leader());
    assert!(sync.assignments.is_empty());
    assert_eq!(sync.generation_id, 5);
    assert_eq!(sync.group_instance_id, None);
    m.on_sync_response(sync_ok(&[tp("a", 1)]), t0);
    assert_eq!(expect_assigned(drain(&mut m, t0)), vec![tp("a", 1)]);
    assert_eq!(m.generation(), Some((5, "m1".to_string())));
}

#[test]
fn heartbeats_follow_the_interval() {
    let t0 = Instant::now();
    let mut m = stable_follower(eager(), &["a"], &[tp("a", 0)], t0);
    assert_eq!(m.next_deadline(), Some(t0 + secs(3)));
    assert!(drain(&mut m, t0 + secs(1)).is_empty());

    let hb = expect_heartbeat(drain(&mut m, t0 + secs(3)));
    assert_eq!((hb.generation_id, hb.member_id.as_str()), (1, "m1"));
    assert_eq!(hb.group_id, "g");
    // While the heartbeat is out, only the session bounds the wait.
    assert_eq!(m.next_deadline(), Some(t0 + secs(45)));
    assert!(drain(&mut m, t0 + secs(5)).is_empty());

    m.on_heartbeat_response(heartbeat(ErrorCode::NONE), t0 + secs(4));
    assert_eq!(m.next_deadline(), Some(t0 + secs(6)));
    expect_heartbeat(drain(&mut m, t0 + secs(6)));
    assert_eq!(m.assignment().len(), 1);
}

#[test]
fn eager_rebalance_revokes_everything_before_rejoining() {
    let t0 = Instant::now();
    let mut m = stable_follower(eager(), &["a"], &[tp("a", 0), tp("a", 1)], t0);
    expect_heartbeat(drain(&mut m, t0 + secs(3)));
    m.on_heartbeat_response(heartbeat(ErrorCode::REBALANCE_IN_PROGRESS), t0 + secs(3));
    match one(drain(&mut m, t0 + secs(3))) {
        Output::Revoke(p) => assert_eq!(p, vec![tp("a", 0), tp("a", 1)]),
        o => panic!("expected Revoke, got {o:?}"),
    }
    assert!(m.assignment().is_empty());
    // The revoke handler may still commit with the old generation.
    assert_eq!(m.generation(), Some((1, "m1".to_string())));
    // No JoinGroup until the application is done; heartbeats keep the session alive meanwhile.
    assert!(drain(&mut m, t0 + secs(4)).is_empty());
    expect_heartbeat(drain(&mut m, t0 + secs(6)));

    m.revoke_done(t0 + secs(7));
    let join = expect_join(drain(&mut m, t0 + secs(7)));
    assert_eq!(join.member_id, "m1");
    assert!(join_subscription(&join).owned_partitions.is_empty());
    assert_eq!(m.state(), MemberState::Joining);
    assert_eq!(m.generation(), None);
}

#[test]
fn cooperative_rebalance_revokes_only_moved_partitions_then_rejoins() {
    let t0 = Instant::now();
    let owned = [tp("a", 0), tp("a", 1), tp("a", 2)];
    let mut m = stable_follower(cooperative(), &["a", "b"], &owned, t0);
    expect_heartbeat(drain(&mut m, t0 + secs(3)));
    m.on_heartbeat_response(heartbeat(ErrorCode::REBALANCE_IN_PROGRESS), t0 + secs(3));

    // No revocation before the join: the owned partitions travel in the subscription.
    let join = expect_join(drain(&mut m, t0 + secs(3)));
    let sub = join_subscription(&join);
    assert_eq!(sub.owned_partitions, owned.to_vec());
    assert_eq!(sub.generation_id, 1);
    assert_eq!(m.assignment().len(), 3);
    assert_eq!(m.generation(), None);

    let t1 = t0 + secs(4);
    m.on_join_response(join_ok(2, "m1", "leader", &[]), t1);
    expect_sync(drain(&mut m, t1));
    m.on_sync_response(sync_ok(&[tp("a", 0), tp("a", 1), tp("b", 0)]), t1);
    let out = drain(&mut m, t1);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(matches!(&out[0], Output::Revoke(p) if p == &vec![tp("a", 2)]));
    assert!(matches!(&out[1], Output::Assigned(p) if p == &vec![tp("b", 0)]));
    assert_eq!(m.generation(), Some((2, "m1".to_string())));
    assert_eq!(m.assignment().len(), 3);

    // The second rebalance waits for the revocation.
    assert!(drain(&mut m, t1).is_empty());
    m.revoke_done(t1);
    let join = expect_join(drain(&mut m, t1));
    let sub = join_subscription(&join);
    assert_eq!(
        sub.owned_partitions,
        vec![tp("a", 0), tp("a", 1), tp("b", 0)]
    );
    assert_eq!(sub.generation_id, 2);

    m.on_join_response(join_ok(3, "m1", "leader", &[]), t1);
    expect_sync(drain(&mut m, t1));
    m.on_sync_response(sync_ok(&[tp("a", 0), tp("a", 1), tp("b", 0)]), t1);
    assert!(expect_assigned(drain(&mut m, t1)).is_empty());
    assert_eq!(m.generation(), Some((3, "m1".to_string())));
}

#[test]
fn cooperative_subscription_change_revokes_only_dropped_topics() {
    let t0 = Instant::now();
    let mut m = stable_follower(cooperative(), &["a", "b"], &[tp("a", 0), tp("b", 0)], t0);
    m.subscribe(topics(&["a"]));
    match one(drain(&mut m, t0)) {
        Output::Revoke(p) => assert_eq!(p, vec![tp("b", 0)]),
        o => panic!("expected Revoke, got {o:?}"),
    }
    m.revoke_done(t0);
    let join = expect_join(drain(&mut m, t0));
    let sub = join_subscription(&join);
    assert_eq!(sub.topics, vec!["a".to_string()]);
    assert_eq!(sub.owned_partitions, vec![tp("a", 0)]);
}

#[test]
fn illegal_generation_on_heartbeat_loses_partitions_and_keeps_the_member_id() {
    let t0 = Instant::now();
    let mut m = stable_follower(eager(), &["a"], &[tp("a", 0)], t0);
    expect_heartbeat(drain(&mut m, t0 + secs(3)));
    m.on_heartbeat_response(heartbeat(ErrorCode::ILLEGAL_GENERATION), t0 + secs(3));
    let out = drain(&mut m, t0 + secs(3));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(matches!(&out[0], Output::Lost(p) if p == &vec![tp("a", 0)]));
    assert!(matches!(&out[1], Output::SendJoin(j) if j.member_id == "m1"));
    assert!(m.assignment().is_empty());
    assert_eq!(m.generation(), None);
}

#[test]
fn unknown_member_id_on_heartbeat_loses_partitions_and_resets_the_member_id() {
    let t0 = Instant::now();
    let mut m = stable_follower(eager(), &["a"], &[tp("a", 0)], t0);
    expect_heartbeat(drain(&mut m, t0 + secs(3)));
    m.on_heartbeat_response(heartbeat(ErrorCode::UNKNOWN_MEMBER_ID), t0 + secs(3));
    let out = drain(&mut m, t0 + secs(3));
    assert!(matches!(&out[0], Output::Lost(p) if p == &vec![tp("a", 0)]));
    assert!(matches!(&out[1], Output::SendJoin(j) if j.member_id.is_empty()));
    assert_eq!(m.member_id(), "");
}

#[test]
fn session_timeout_without_heartbeat_answers_loses_partitions() {
    let t0 = Instant::now();
    let mut m = stable_follower(eager(), &["a"], &[tp("a", 0)], t0);
    expect_heartbeat(drain(&mut m, t0 + secs(3)));
    // The heartbeat is never answered.
    assert_eq!(m.next_deadline(), Some(t0 + secs(45)));
    assert!(drain(&mut m, t0 + secs(44)).is_empty());
    let out = drain(&mut m, t0 + secs(45));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(matches!(&out[0], Output::Lost(p) if p == &vec![tp("a", 0)]));
    assert!(matches!(&out[1], Output::FindCoordinator));
    assert_eq!(m.state(), MemberState::Joining);
    assert_eq!(m.generation(), None);
    // A late answer to the old heartbeat changes nothing.
    m.on_heartbeat_response(heartbeat(ErrorCode::NONE), t0 + secs(46));
    m.coordinator_found(BROKER, t0 + secs(46));
    let join = expect_join(drain(&mut m, t0 + secs(46)));
    assert_eq!(join.member_id, "m1");
}

#[test]
fn coordinator_lost_mid_join_finds_it_and_rejoins_with_the_same_member_id() {
    let t0 = Instant::now();
    let (mut m, _) = start(eager(), &["a"], t0);
    m.on_join_response(join_err(ErrorCode::MEMBER_ID_REQUIRED, "m1"), t0);
    expect_join(drain(&mut m, t0));
    m.on_request_failed(RequestKind::JoinGroup, t0);
    // The lookup waits for the retry backoff.
    assert!(drain(&mut m, t0).is_empty());
    let retry = m.next_deadline().expect("a retry deadline");
    assert!(retry > t0 && retry <= t0 + secs(1), "{:?}", retry - t0);
    assert!(matches!(one(drain(&mut m, retry)), Output::FindCoordinator));
    m.coordinator_found("broker-2:9092", retry);
    let join = expect_join(drain(&mut m, retry));
    assert_eq!(join.member_id, "m1");

    // A NOT_COORDINATOR answer does the same.
    m.on_join_response(join_err(ErrorCode::NOT_COORDINATOR, ""), retry);
    let later = retry + secs(2);
    assert!(matches!(one(drain(&mut m, later)), Output::FindCoordinator));
    m.coordinator_found(BROKER, later);
    assert_eq!(expect_join(drain(&mut m, later)).member_id, "m1");
}

#[test]
fn coordinator_load_in_progress_retries_after_backoff() {
    let t0 = Instant::now();
    let (mut m, _) = start(eager(), &["a"], t0);
    m.on_join_response(join_err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS, ""), t0);
    assert!(drain(&mut m, t0).is_empty());
    let retry = m.next_deadline().expect("a retry deadline");
    assert!(retry > t0 && retry <= t0 + secs(1));
    expect_join(drain(&mut m, retry));
}

#[test]
fn not_coordinator_on_heartbeat_rediscovers_and_keeps_the_assignment() {
    let t0 = Instant::now();
    let mut m = stable_follower(eager(), &["a"], &[tp("a", 0)], t0);
    expect_heartbeat(drain(&mut m, t0 + secs(3)));
    m.on_heartbeat_response(heartbeat(ErrorCode::NOT_COORDINATOR), t0 + secs(3));
    assert!(matches!(
        one(drain(&mut m, t0 + secs(3))),
        Output::FindCoordinator
    ));
    m.coordinator_found("broker-2:9092", t0 + secs(4));
    assert!(drain(&mut m, t0 + secs(4)).is_empty());
    let hb = expect_heartbeat(drain(&mut m, t0 + secs(6)));
    assert_eq!(hb.generation_id, 1);
    assert_eq!(m.generation(), Some((1, "m1".to_string())));
    assert_eq!(m.assignment().len(), 1);
}

#[test]
fn rebalance_in_progress_on_sync_rejoins_at_once() {
    let t0 = Instant::now();
    let (mut m, _) = start(eager(), &["a"], t0);
    m.on_join_response(join_ok(1, "m1", "m0", &[]), t0);
    expect_sync(drain(&mut m, t0));
    m.on_sync_response(sync_err(ErrorCode::REBALANCE_IN_PROGRESS), t0);
    assert_eq!(expect_join(drain(&mut m, t0)).member_id, "m1");
    assert_eq!(m.generation(), None);
}

#[test]
fn static_member_sends_its_instance_id_and_does_not_leave_on_close() {
    let t0 = Instant::now();
    let config = MembershipConfig {
        group_instance_id: Some("instance-1".into()),
        ..eager()
    };
    let (mut m, join) = start(config, &["a"], t0);
    assert_eq!(join.group_instance_id.as_deref(), Some("instance-1"));
    m.on_join_response(join_ok(1, "m1", "m0", &[]), t0);
    let sync = expect_sync(drain(&mut m, t0));
    assert_eq!(sync.group_instance_id.as_deref(), Some("instance-1"));
    m.on_sync_response(sync_ok(&[tp("a", 0)]), t0);
    expect_assigned(drain(&mut m, t0));
    let hb = expect_heartbeat(drain(&mut m, t0 + secs(3)));
    assert_eq!(hb.group_instance_id.as_deref(), Some("instance-1"));
    m.on_heartbeat_response(heartbeat(ErrorCode::NONE), t0 + secs(3));

    m.leave(t0 + secs(4));
    match one(drain(&mut m, t0 + secs(4))) {
        Output::Revoke(p) => assert_eq!(p, vec![tp("a", 0)]),
        o => panic!("expected Revoke, got {o:?}"),
    }
    m.revoke_done(t0 + secs(4));
    assert!(drain(&mut m, t0 + secs(4)).is_empty(), "no LeaveGroup");
    assert_eq!(m.state(), MemberState::Closed);
    assert_eq!(m.next_deadline(), None);
}

#[test]
fn dynamic_member_revokes_then_sends_leave_group() {
    let t0 = Instant::now();
    let mut m = stable_follower(eager(), &["a"], &[tp("a", 0)], t0);
    m.leave(t0 + secs(1));
    assert!(matches!(
        one(drain(&mut m, t0 + secs(1))),
        Output::Revoke(_)
    ));
    assert_eq!(m.state(), MemberState::Leaving);
    assert_eq!(m.generation(), Some((1, "m1".to_string())));
    assert!(drain(&mut m, t0 + secs(2)).is_empty());

    m.revoke_done(t0 + secs(2));
    match one(drain(&mut m, t0 + secs(2))) {
        Output::SendLeave(l) => {
            assert_eq!(l.group_id, "g");
            assert_eq!(l.member_id, "m1");
            assert_eq!(l.members.len(), 1);
            assert_eq!(l.members[0].member_id, "m1");
            assert!(l.members[0].reason.is_some());
        }
        o => panic!("expected SendLeave, got {o:?}"),
    }
    assert_eq!(m.state(), MemberState::Closed);
    assert_eq!(m.generation(), None);
    assert!(drain(&mut m, t0 + secs(100)).is_empty());
}

#[test]
fn leaving_mid_rebalance_reports_partitions_lost() {
    let t0 = Instant::now();
    let mut m = stable_follower(cooperative(), &["a"], &[tp("a", 0)], t0);
    m.subscribe(topics(&["a", "b"]));
    expect_join(drain(&mut m, t0));
    // No generation to commit with while joining: the partitions are lost, not revoked.
    m.leave(t0);
    let out = drain(&mut m, t0);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(matches!(&out[0], Output::Lost(p) if p == &vec![tp("a", 0)]));
    assert!(matches!(&out[1], Output::SendLeave(l) if l.member_id == "m1"));
    assert_eq!(m.state(), MemberState::Closed);
    // The JoinGroup answer that comes later is ignored.
    m.on_join_response(join_ok(2, "m1", "m1", &[]), t0);
    assert!(drain(&mut m, t0).is_empty());
}

#[test]
fn fenced_instance_id_is_fatal() {
    let t0 = Instant::now();
    let config = MembershipConfig {
        group_instance_id: Some("instance-1".into()),
        ..eager()
    };
    let mut m = stable_follower(config.clone(), &["a"], &[tp("a", 0)], t0);
    expect_heartbeat(drain(&mut m, t0 + secs(3)));
    m.on_heartbeat_response(heartbeat(ErrorCode::FENCED_INSTANCE_ID), t0 + secs(3));
    let out = drain(&mut m, t0 + secs(3));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(matches!(&out[0], Output::Lost(p) if p == &vec![tp("a", 0)]));
    match &out[1] {
        Output::Fatal(Error::Broker {
            broker, api, code, ..
        }) => {
            assert_eq!(broker, BROKER);
            assert_eq!(*api, ApiKey::Heartbeat);
            assert_eq!(*code, ErrorCode::FENCED_INSTANCE_ID);
        }
        o => panic!("expected Fatal, got {o:?}"),
    }
    assert_eq!(m.state(), MemberState::Failed);
    assert_eq!(m.next_deadline(), None);
    assert!(drain(&mut m, t0 + secs(100)).is_empty());

    // On JoinGroup too.
    let (mut m, _) = start(config, &["a"], t0);
    m.on_join_response(join_err(ErrorCode::FENCED_INSTANCE_ID, ""), t0);
    assert!(matches!(
        one(drain(&mut m, t0)),
        Output::Fatal(Error::Broker {
            code: ErrorCode::FENCED_INSTANCE_ID,
            ..
        })
    ));
}

#[test]
fn max_poll_interval_exceeded_leaves_and_loses_partitions() {
    let t0 = Instant::now();
    let config = MembershipConfig {
        rebalance_timeout: secs(10),
        ..eager()
    };
    let mut m = stable_follower(config, &["a"], &[tp("a", 0)], t0);
    m.app_polled(t0);
    for s in [3, 6, 9] {
        expect_heartbeat(drain(&mut m, t0 + secs(s)));
        m.on_heartbeat_response(heartbeat(ErrorCode::NONE), t0 + secs(s));
    }
    assert_eq!(m.next_deadline(), Some(t0 + secs(10)));
    let out = drain(&mut m, t0 + secs(10));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(matches!(&out[0], Output::Lost(p) if p == &vec![tp("a", 0)]));
    match &out[1] {
        Output::SendLeave(l) => assert_eq!(l.member_id, "m1"),
        o => panic!("expected SendLeave, got {o:?}"),
    }
    assert_eq!(m.state(), MemberState::Unjoined);
    assert_eq!(m.generation(), None);
    assert_eq!(m.next_deadline(), None);
    assert!(
        drain(&mut m, t0 + secs(60)).is_empty(),
        "stays out until the app polls"
    );

    m.app_polled(t0 + secs(60));
    let join = expect_join(drain(&mut m, t0 + secs(60)));
    assert_eq!(join.member_id, "");
}

#[test]
fn generation_is_none_during_a_rebalance() {
    let t0 = Instant::now();
    let mut m = stable_follower(cooperative(), &["a"], &[tp("a", 0)], t0);
    assert_eq!(m.generation(), Some((1, "m1".to_string())));
    m.subscribe(topics(&["a", "b"]));
    expect_join(drain(&mut m, t0));
    assert_eq!(m.state(), MemberState::Joining);
    assert_eq!(m.generation(), None);
    m.on_join_response(join_ok(2, "m1", "m0", &[]), t0);
    expect_sync(drain(&mut m, t0));
    assert_eq!(m.generation(), None);
    m.on_sync_response(sync_ok(&[tp("a", 0), tp("b", 0)]), t0);
    assert_eq!(expect_assigned(drain(&mut m, t0)), vec![tp("b", 0)]);
    assert_eq!(m.generation(), Some((2, "m1".to_string())));
}

#[test]
fn leader_rejoins_when_partition_counts_change() {
    let t0 = Instant::now();
    let (mut m, _) = start(cooperative(), &["a"], t0);
    m.set_partition_counts(BTreeMap::from([("a".into(), 2)]));
    m.on_join_response(join_ok(1, "m1", "m1", &[("m1", subscription(&["a"]))]), t0);
    expect_sync(drain(&mut m, t0));
    m.on_sync_response(sync_ok(&[tp("a", 0), tp("a", 1)]), t0);
    expect_assigned(drain(&mut m, t0));

    // Unrelated topics do not matter.
    m.set_partition_counts(BTreeMap::from([("a".into(), 2), ("z".into(), 9)]));
    assert!(drain(&mut m, t0).is_empty());
    m.set_partition_counts(BTreeMap::from([("a".into(), 3)]));
    let join = expect_join(drain(&mut m, t0));
    assert!(join.reason.unwrap().contains("partition counts"));
}

#[test]
fn follower_ignores_partition_count_changes() {
    let t0 = Instant::now();
    let mut m = stable_follower(cooperative(), &["a"], &[tp("a", 0)], t0);
    m.set_partition_counts(BTreeMap::from([("a".into(), 7)]));
    assert!(drain(&mut m, t0).is_empty());
}

#[test]
fn leader_fails_when_the_coordinator_picks_a_protocol_it_did_not_offer() {
    let t0 = Instant::now();
    let (mut m, _) = start(eager(), &["a"], t0);
    let response = JoinGroupResponse {
        protocol_name: Some("other".into()),
        ..join_ok(1, "m1", "m1", &[("m1", subscription(&["a"]))])
    };
    m.on_join_response(response, t0);
    assert!(matches!(
        one(drain(&mut m, t0)),
        Output::Fatal(Error::Broker {
            code: ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
            ..
        })
    ));
}

#[test]
fn invalid_settings_are_rejected() {
    let no_assignors = MembershipConfig {
        assignors: Vec::new(),
        ..eager()
    };
    assert!(Membership::new(no_assignors).is_err());
    let slow_heartbeat = MembershipConfig {
        heartbeat_interval: secs(50),
        ..eager()
    };
    assert!(Membership::new(slow_heartbeat).is_err());
    let default = Membership::new(MembershipConfig::new("g")).unwrap();
    assert_eq!(default.rebalance_protocol(), RebalanceProtocol::Eager);
    assert_eq!(
        Membership::new(cooperative()).unwrap().rebalance_protocol(),
        RebalanceProtocol::Cooperative
    );
}

/// A member whose SyncGroup failed with `code` (or whose answer was unreadable, with `None`)
/// after joining generation 1 as a follower.
fn sync_fails(config: MembershipConfig, code: Option<ErrorCode>, t0: Instant) -> Membership {
    let (mut m, _) = start(config, &["a"], t0);
    m.on_join_response(join_ok(1, "m1", "m0", &[]), t0);
    expect_sync(drain(&mut m, t0));
    match code {
        Some(code) => m.on_sync_response(sync_err(code), t0),
        None => m.on_sync_unreadable(t0),
    }
    m
}

#[test]
fn unexpected_sync_errors_rejoin_after_a_backoff() {
    let t0 = Instant::now();
    let unknown_code = ErrorCode(-77);
    for code in [
        ErrorCode::INVALID_REQUEST,
        ErrorCode::UNKNOWN_SERVER_ERROR,
        ErrorCode::REQUEST_TIMED_OUT,
        ErrorCode::CORRUPT_MESSAGE,
        unknown_code,
    ] {
        let mut m = sync_fails(eager(), Some(code), t0);
        assert_eq!(m.state(), MemberState::Joining, "{code:?}");
        assert_eq!(m.generation(), None);
        // Not at once: the backoff applies, and the coordinator is kept.
        assert!(drain(&mut m, t0).is_empty(), "{code:?}");
        let join = expect_join(drain(&mut m, t0 + secs(1)));
        assert_eq!(join.member_id, "m1", "{code:?}");
        let reason = join.reason.unwrap_or_default();
        assert!(reason.contains("SyncGroup failed"), "{code:?}: {reason}");
    }
}

#[test]
fn an_unreadable_sync_answer_rejoins_after_a_backoff_with_the_same_coordinator() {
    let t0 = Instant::now();
    let mut m = sync_fails(eager(), None, t0);
    assert_eq!(m.state(), MemberState::Joining);
    assert!(drain(&mut m, t0).is_empty());
    let join = expect_join(drain(&mut m, t0 + secs(1)));
    assert_eq!(join.member_id, "m1");
    // The rebalance completes on the second try.
    m.on_join_response(join_ok(2, "m1", "m0", &[]), t0 + secs(1));
    expect_sync(drain(&mut m, t0 + secs(1)));
    m.on_sync_response(sync_ok(&[tp("a", 0)]), t0 + secs(1));
    assert_eq!(
        expect_assigned(drain(&mut m, t0 + secs(1))),
        vec![tp("a", 0)]
    );
    assert_eq!(m.generation(), Some((2, "m1".to_string())));
    // A late duplicate changes nothing.
    m.on_sync_unreadable(t0 + secs(1));
    assert_eq!(m.state(), MemberState::Stable);
}

#[test]
fn a_sync_answer_without_an_assignment_rejoins() {
    let t0 = Instant::now();
    let (mut m, _) = start(eager(), &["a"], t0);
    m.on_join_response(join_ok(1, "m1", "m0", &[]), t0);
    expect_sync(drain(&mut m, t0));
    let empty = SyncGroupResponse {
        protocol_type: Some("consumer".into()),
        protocol_name: Some("deal".into()),
        assignment: Bytes::new(),
        ..Default::default()
    };
    m.on_sync_response(empty, t0);
    assert_eq!(m.state(), MemberState::Joining);
    assert!(m.assignment().is_empty());
    assert!(drain(&mut m, t0).is_empty(), "no Assigned, no Fatal");
    let join = expect_join(drain(&mut m, t0 + secs(1)));
    assert!(join.reason.unwrap_or_default().contains("no assignment"));
}

#[test]
fn a_cooperative_member_keeps_its_partitions_through_a_failed_sync() {
    let t0 = Instant::now();
    let owned = [tp("a", 0), tp("a", 1)];
    let mut m = stable_follower(cooperative(), &["a"], &owned, t0);
    expect_heartbeat(drain(&mut m, t0 + secs(3)));
    m.on_heartbeat_response(heartbeat(ErrorCode::REBALANCE_IN_PROGRESS), t0 + secs(3));
    expect_join(drain(&mut m, t0 + secs(3)));
    m.on_join_response(join_ok(2, "m1", "m0", &[]), t0 + secs(3));
    expect_sync(drain(&mut m, t0 + secs(3)));
    m.on_sync_response(sync_err(ErrorCode::INVALID_REQUEST), t0 + secs(3));
    assert!(drain(&mut m, t0 + secs(3)).is_empty(), "nothing lost");
    let join = expect_join(drain(&mut m, t0 + secs(4)));
    assert_eq!(join_subscription(&join).owned_partitions, owned.to_vec());
    assert_eq!(m.assignment().len(), 2);
}

#[test]
fn truly_fatal_sync_errors_end_the_member() {
    let t0 = Instant::now();
    for code in [
        ErrorCode::GROUP_AUTHORIZATION_FAILED,
        ErrorCode::FENCED_INSTANCE_ID,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
        ErrorCode::UNSUPPORTED_VERSION,
        ErrorCode::INVALID_GROUP_ID,
    ] {
        let mut m = sync_fails(eager(), Some(code), t0);
        match one(drain(&mut m, t0)) {
            Output::Fatal(Error::Broker { api, code: c, .. }) => {
                assert_eq!((api, c), (ApiKey::SyncGroup, code));
            }
            o => panic!("{code:?}: expected Fatal, got {o:?}"),
        }
        assert_eq!(m.state(), MemberState::Failed);
    }
}
