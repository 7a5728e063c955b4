//! Membership of a classic consumer group (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a
//! sans-IO state machine.
//!
//! [`Membership`] owns no socket and reads no clock. A driver feeds it inputs — the answers to the
//! requests it asked for, request failures, the coordinator it found, the application's progress —
//! each with the current time, and drains its [`Output`]s with [`Membership::poll`]: requests to
//! send, a coordinator to look up, and partitions assigned, revoked or lost. Between inputs the
//! driver sleeps until [`Membership::next_deadline`] and calls `poll` again.
//!
//! ```text
//!             subscribe            JoinGroup ok           SyncGroup ok
//!  Unjoined ────────────► Joining ─────────────► Syncing ─────────────► Stable
//!     ▲                    ▲  ▲                                           │
//!     │                    │  └── rebalance, subscription or metadata ────┤
//!     │                    │      change (revoking first: everything      │
//!     │                    │      when eager, dropped topics when coop.)  │
//!     │                    └───── fenced generation, session lost ────────┤
//!     │                           (partitions Lost)                       │
//!     └──────────────────── poll interval expired (partitions Lost) ──────┘
//!                           (rejoins at the next app_polled)
//!  leave() ─► Leaving ─(revoke_done; LeaveGroup unless static)─► Closed     fatal ─► Failed
//! ```
//!
//! The driver's contract:
//! - after every input, call [`poll`](Membership::poll) until it returns `None`;
//! - answer every [`Output::SendJoin`], [`Output::SendSync`], [`Output::SendHeartbeat`] and
//!   [`Output::SendLeave`] with exactly one `on_*_response` call or one
//!   [`on_request_failed`](Membership::on_request_failed), and every [`Output::FindCoordinator`]
//!   with [`coordinator_found`](Membership::coordinator_found) or `on_request_failed`;
//! - after [`Output::Revoke`], call [`revoke_done`](Membership::revoke_done) once the application
//!   has committed and stopped using those partitions: the machine waits for it before it rejoins or
//!   leaves;
//! - call [`app_polled`](Membership::app_polled) whenever the application asks for records (and
//!   while it waits for them); a gap longer than the rebalance timeout (`max.poll.interval.ms`)
//!   makes the member leave the group, as the Java client does.
//!
//! Behaviour follows Kafka's Java client (`AbstractCoordinator`/`ConsumerCoordinator`), KIP-345
//! (static membership), KIP-394 (`MEMBER_ID_REQUIRED`) and KIP-429 (cooperative rebalancing).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::join_group::JoinGroupRequestProtocol;
use kbus_protocol::messages::leave_group::MemberIdentity;
use kbus_protocol::messages::sync_group::SyncGroupRequestAssignment;
use kbus_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kbus_protocol::{ApiKey, ProtocolError};

use crate::cluster::Backoff;
use crate::error::Error;
use crate::group::assignor::{
    Assignor, CooperativeStickyAssignor, RangeAssignor, RebalanceProtocol,
};
use crate::group::consumer_protocol::{Assignment, Subscription, PROTOCOL_TYPE, WRITE_VERSION};
use crate::TopicPartition;

mod leader;

use leader::LeadError;

/// Settings of one group member. Names and defaults follow the Java consumer.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`: set for a static member (KIP-345), whose partitions survive a restart
    /// within the session timeout.
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms` (45 s): how long the coordinator keeps the member without heartbeats.
    pub session_timeout: Duration,
    /// The rebalance timeout, which is `max.poll.interval.ms` (300 s): how long the coordinator
    /// waits for members to rejoin, and the longest gap allowed between two application polls.
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms` (3 s); must be below the session timeout.
    pub heartbeat_interval: Duration,
    /// `retry.backoff.ms` (100 ms): the first delay before retrying a failed request.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms` (1 s): the longest delay between retries.
    pub retry_backoff_max: Duration,
    /// `partition.assignment.strategy`, in order of preference (Java's default: `range`, then
    /// `cooperative-sticky`). The member rebalances cooperatively only when every assignor here is
    /// cooperative, as Java does.
    pub assignors: Vec<Arc<dyn Assignor>>,
    /// `client.rack`, sent in the subscription for rack-aware assignors.
    pub rack_id: Option<String>,
}

impl MembershipConfig {
    /// The Java consumer's defaults for group `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        MembershipConfig {
            group_id: group_id.into(),
            group_instance_id: None,
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            assignors: vec![
                Arc::new(RangeAssignor) as Arc<dyn Assignor>,
                Arc::new(CooperativeStickyAssignor),
            ],
            rack_id: None,
        }
    }
}

/// Where the member stands in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Not in the group: nothing subscribed yet, or out after the poll interval expired (the next
    /// [`Membership::app_polled`] rejoins).
    Unjoined,
    /// Finding the coordinator, waiting out a retry backoff or the application's revocation, or
    /// waiting for the JoinGroup answer.
    Joining,
    /// Joined a generation; waiting for the SyncGroup answer with this member's assignment.
    Syncing,
    /// Member of a generation with an assignment. A rebalance may be pending (the application may
    /// still be revoking partitions before the member rejoins).
    Stable,
    /// [`Membership::leave`] was called; waiting for the application to revoke its partitions.
    Leaving,
    /// Left the group (or never will be in it again); nothing more happens.
    Closed,
    /// A fatal error was reported in [`Output::Fatal`]; nothing more happens.
    Failed,
}

/// The requests the machine asks the driver to make, to report which one failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// The coordinator lookup asked for by [`Output::FindCoordinator`].
    FindCoordinator,
    /// A JoinGroup request.
    JoinGroup,
    /// A SyncGroup request.
    SyncGroup,
    /// A Heartbeat request.
    Heartbeat,
    /// A LeaveGroup request.
    LeaveGroup,
}

/// What the machine asks of its driver, drained with [`Membership::poll`].
#[derive(Debug)]
pub enum Output {
    /// Look up the group's coordinator, then call [`Membership::coordinator_found`] (or
    /// [`Membership::on_request_failed`] with [`RequestKind::FindCoordinator`]).
    FindCoordinator,
    /// Send this JoinGroup to the coordinator; answer with [`Membership::on_join_response`]. The
    /// coordinator may hold it for up to the rebalance timeout, so its request timeout must be
    /// longer than that (Java adds 5 s).
    SendJoin(JoinGroupRequest),
    /// Send this SyncGroup to the coordinator; answer with [`Membership::on_sync_response`].
    SendSync(SyncGroupRequest),
    /// Send this Heartbeat to the coordinator; answer with [`Membership::on_heartbeat_response`].
    SendHeartbeat(HeartbeatRequest),
    /// Send this LeaveGroup to the coordinator; the answer ([`Membership::on_leave_response`])
    /// changes nothing, it is a best effort.
    SendLeave(LeaveGroupRequest),
    /// The application must stop consuming these partitions, commit what it processed (with
    /// [`Membership::generation`], still valid now), and call [`Membership::revoke_done`].
    Revoke(Vec<TopicPartition>),
    /// A rebalance completed and these partitions were added to the assignment (possibly none):
    /// the driver fetches their committed offsets and starts consuming them.
    Assigned(Vec<TopicPartition>),
    /// These partitions were taken away without a chance to commit (session expired, member
    /// fenced or unknown, poll interval exceeded, fatal error): another member may own them
    /// already, so the application drops them without committing.
    Lost(Vec<TopicPartition>),
    /// The member cannot go on (fenced static instance, authorization, inconsistent protocol,
    /// an undecodable assignment, ...). Everything it owned was reported [`Output::Lost`] first.
    Fatal(Error),
}

/// One member of a classic consumer group: the join/sync/heartbeat/leave protocol as a state
/// machine. See the [module documentation](self) for the driver's contract.
#[derive(Debug)]
pub struct Membership {
    config: MembershipConfig,
    /// Eager unless every configured assignor is cooperative.
    protocol: RebalanceProtocol,
    state: MemberState,
    subscription: BTreeSet<String>,
    /// The subscription sent in the last JoinGroup.
    joined_subscription: BTreeSet<String>,
    partition_counts: BTreeMap<String, i32>,

    member_id: String,
    /// -1 when the member has no valid generation.
    generation_id: i32,
    protocol_name: Option<String>,
    is_leader: bool,
    /// Leader only: every member's topics.
    group_topics: BTreeSet<String>,
    /// Leader only: the partition counts the last assignment was computed with.
    assigned_with: Option<BTreeMap<String, i32>>,

    /// The partitions the application owns (assigned, neither revoked nor lost since).
    assignment: BTreeSet<TopicPartition>,
    /// The generation `assignment` was received in, sent along with it when rejoining.
    owned_generation: i32,
    /// An [`Output::Revoke`] is with the application; nothing proceeds until `revoke_done`.
    awaiting_revoke: bool,
    /// A rebalance is wanted, for this reason.
    rejoin: Option<String>,
    /// The reason sent in the pending JoinGroup.
    join_reason: String,
    /// Out of the group after the poll interval expired, until the application polls again.
    poll_expired: bool,

    coordinator: Option<String>,
    find_pending: bool,
    /// The JoinGroup or SyncGroup waiting for its answer.
    inflight: Option<RequestKind>,
    /// The generation and member id of the Heartbeat waiting for its answer.
    heartbeat_inflight: Option<(i32, String)>,
    next_heartbeat: Option<Instant>,
    /// Start of the session timer: the last heartbeat answer (or join/sync success).
    last_heartbeat_ok: Option<Instant>,
    last_app_poll: Option<Instant>,
    retry_at: Option<Instant>,
    backoff: Backoff,

    outputs: VecDeque<Output>,
}

impl Membership {
    /// A member that has not joined yet. Fails on settings that cannot work: an empty group id, no
    /// assignors, a duration above `i32::MAX` milliseconds, or a heartbeat interval that is zero or
    /// not below the session timeout.
    pub fn new(config: MembershipConfig) -> Result<Self, Error> {
        check_config(&config, true)?;
        let protocol = if config
            .assignors
            .iter()
            .all(|a| a.protocol() == RebalanceProtocol::Cooperative)
        {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        };
        let backoff = Backoff::new(config.retry_backoff, config.retry_backoff_max);
        Ok(Membership {
            config,
            protocol,
            state: MemberState::Unjoined,
            subscription: BTreeSet::new(),
            joined_subscription: BTreeSet::new(),
            partition_counts: BTreeMap::new(),
            member_id: String::new(),
            generation_id: -1,
            protocol_name: None,
            is_leader: false,
            group_topics: BTreeSet::new(),
            assigned_with: None,
            assignment: BTreeSet::new(),
            owned_generation: -1,
            awaiting_revoke: false,
            rejoin: None,
            join_reason: String::new(),
            poll_expired: false,
            coordinator: None,
            find_pending: false,
            inflight: None,
            heartbeat_inflight: None,
            next_heartbeat: None,
            last_heartbeat_ok: None,
            last_app_poll: None,
            retry_at: None,
            backoff,
            outputs: VecDeque::new(),
        })
    }

    // ---- queries ----

    /// Where the member stands.
    pub fn state(&self) -> MemberState {
        self.state
    }

    /// The generation id and member id to fence offset commits with: `Some` only while the member
    /// holds a valid generation outside a rebalance (stable, or revoking before it rejoins or
    /// leaves, so a revoke handler can still commit). `None` while joining or syncing, so no
    /// commit goes out with a generation that is about to be stale.
    pub fn generation(&self) -> Option<(i32, String)> {
        let settled = matches!(self.state, MemberState::Stable | MemberState::Leaving);
        (settled && self.generation_id >= 0 && !self.member_id.is_empty())
            .then(|| (self.generation_id, self.member_id.clone()))
    }

    /// The member id the coordinator gave this member ("" before the first join).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The partitions the application owns now.
    pub fn assignment(&self) -> &BTreeSet<TopicPartition> {
        &self.assignment
    }

    /// True when this member led the current generation (computed the assignment).
    pub fn is_leader(&self) -> bool {
        self.is_leader
    }

    /// Eager or cooperative: how this member rebalances.
    pub fn rebalance_protocol(&self) -> RebalanceProtocol {
        self.protocol
    }

    /// The topics the driver should keep partition counts for (via
    /// [`set_partition_counts`](Self::set_partition_counts)): the subscription, plus, on the leader,
    /// every other member's topics.
    pub fn metadata_topics(&self) -> BTreeSet<String> {
        let mut topics = self.subscription.clone();
        if self.is_leader {
            topics.extend(self.group_topics.iter().cloned());
        }
        topics
    }

    /// When the driver must call [`poll`](Self::poll) at the latest if no input arrives first: the
    /// next heartbeat, the end of a retry backoff, the session or poll-interval expiry. `None` when
    /// only an input can move the machine.
    pub fn next_deadline(&self) -> Option<Instant> {
        if matches!(self.state, MemberState::Closed | MemberState::Failed) {
            return None;
        }
        let mut deadline = self.retry_at;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                deadline = Some(deadline.map_or(t, |d| d.min(t)));
            }
        };
        if self.heartbeating() && self.coordinator.is_some() && self.heartbeat_inflight.is_none() {
            consider(self.next_heartbeat);
        }
        if self.in_generation() && self.generation_id >= 0 {
            consider(
                self.last_heartbeat_ok
                    .map(|t| t + self.config.session_timeout),
            );
        }
        if self.in_generation() {
            consider(
                self.last_app_poll
                    .map(|t| t + self.config.rebalance_timeout),
            );
        }
        deadline
    }

    // ---- inputs ----

    /// Sets the topics to consume. A change rejoins the group (cooperative members first revoke
    /// the partitions of topics they dropped; eager members revoke everything). An empty set while
    /// unjoined keeps the member out of the group.
    pub fn subscribe(&mut self, topics: BTreeSet<String>) {
        self.subscription = topics;
    }

    /// The current partition counts of (at least) [`metadata_topics`](Self::metadata_topics). When
    /// this member is the leader and a count it assigned with changed (or a topic appeared), it
    /// rejoins so the new partitions get assigned.
    pub fn set_partition_counts(&mut self, counts: BTreeMap<String, i32>) {
        self.partition_counts = counts;
    }

    /// The application asked for records: restarts the poll-interval timer, and rejoins if the
    /// member left because the interval had expired.
    pub fn app_polled(&mut self, now: Instant) {
        self.last_app_poll = Some(now);
        self.poll_expired = false;
        self.drive(now);
    }

    /// The application finished handling the last [`Output::Revoke`].
    pub fn revoke_done(&mut self, now: Instant) {
        self.awaiting_revoke = false;
        self.drive(now);
    }

    /// The coordinator asked for by [`Output::FindCoordinator`] is `broker` (named in errors).
    pub fn coordinator_found(&mut self, broker: impl Into<String>, now: Instant) {
        self.coordinator = Some(broker.into());
        self.find_pending = false;
        self.drive(now);
    }

    /// A request asked for by an output got no answer (connection lost, timeout) or, for
    /// [`RequestKind::FindCoordinator`], no coordinator was found. The coordinator is looked up
    /// again after a backoff, and the interrupted step is retried.
    pub fn on_request_failed(&mut self, kind: RequestKind, now: Instant) {
        match kind {
            RequestKind::FindCoordinator => {
                if self.find_pending {
                    self.find_pending = false;
                    self.retry_later(now);
                }
            }
            RequestKind::JoinGroup => {
                if self.take_inflight(RequestKind::JoinGroup) {
                    self.coordinator_lost();
                    self.retry_later(now);
                }
            }
            RequestKind::SyncGroup => {
                if self.take_inflight(RequestKind::SyncGroup) {
                    self.coordinator_lost();
                    self.retry_later(now);
                    if self.state == MemberState::Syncing {
                        self.restart_join("SyncGroup got no answer");
                    }
                }
            }
            RequestKind::Heartbeat => {
                if self.heartbeat_inflight.take().is_some() {
                    self.coordinator_lost();
                    self.retry_later(now);
                }
            }
            RequestKind::LeaveGroup => {}
        }
        self.drive(now);
    }

    /// The answer to [`Output::SendJoin`].
    pub fn on_join_response(&mut self, response: JoinGroupResponse, now: Instant) {
        if !self.take_inflight(RequestKind::JoinGroup) || self.state != MemberState::Joining {
            self.drive(now);
            return;
        }
        let code = ErrorCode::from(response.error_code);
        match code {
            ErrorCode::NONE => self.joined(response, now),
            ErrorCode::MEMBER_ID_REQUIRED => {
                // KIP-394: the coordinator hands out the id and wants it back in a second JoinGroup.
                self.member_id = response.member_id;
                self.join_reason = "rejoining with the member id the coordinator assigned".into();
            }
            ErrorCode::UNKNOWN_MEMBER_ID => {
                // Out of the group: whatever a cooperative member still owned is gone.
                self.lose_partitions();
                self.reset_generation(true);
                self.join_reason = "the coordinator did not know the member id".into();
            }
            ErrorCode::ILLEGAL_GENERATION | ErrorCode::REBALANCE_IN_PROGRESS => {
                self.join_reason = format!("JoinGroup failed with {}", code.name());
            }
            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                self.coordinator_lost();
                self.retry_later(now);
            }
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS => self.retry_later(now),
            ErrorCode::FENCED_INSTANCE_ID
            | ErrorCode::INCONSISTENT_GROUP_PROTOCOL
            | ErrorCode::INVALID_SESSION_TIMEOUT
            | ErrorCode::INVALID_GROUP_ID
            | ErrorCode::GROUP_AUTHORIZATION_FAILED
            | ErrorCode::GROUP_MAX_SIZE_REACHED
            | ErrorCode::UNSUPPORTED_VERSION => self.fail(ApiKey::JoinGroup, code, None),
            _ if code.is_retriable() => self.retry_later(now),
            _ => self.fail(ApiKey::JoinGroup, code, None),
        }
        self.drive(now);
    }

    /// The answer to [`Output::SendSync`].
    pub fn on_sync_response(&mut self, response: SyncGroupResponse, now: Instant) {
        if !self.take_inflight(RequestKind::SyncGroup) || self.state != MemberState::Syncing {
            self.drive(now);
            return;
        }
        let code = ErrorCode::from(response.error_code);
        match code {
            ErrorCode::NONE => self.synced(response, now),
            ErrorCode::REBALANCE_IN_PROGRESS => {
                self.restart_join("the group began another rebalance during SyncGroup")
            }
            ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => {
                // The member id survives ILLEGAL_GENERATION: the coordinator still knows it.
                self.lose_partitions();
                self.reset_generation(code == ErrorCode::UNKNOWN_MEMBER_ID);
                self.restart_join(&format!("SyncGroup failed with {}", code.name()));
            }
            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                self.coordinator_lost();
                self.retry_later(now);
                self.restart_join(&format!("SyncGroup failed with {}", code.name()));
            }
            ErrorCode::FENCED_INSTANCE_ID
            | ErrorCode::GROUP_AUTHORIZATION_FAILED
            | ErrorCode::INCONSISTENT_GROUP_PROTOCOL
            | ErrorCode::INVALID_GROUP_ID
            | ErrorCode::UNSUPPORTED_VERSION => self.fail(ApiKey::SyncGroup, code, None),
            _ => {
                // Anything else (INVALID_REQUEST, UNKNOWN_SERVER_ERROR, a passing error, a code
                // this client does not know) says nothing lasting about the member: rejoin after
                // a backoff, as librdkafka does, rather than give up on the group.
                self.retry_later(now);
                self.restart_join(&format!("SyncGroup failed with {}", code.name()));
            }
        }
        self.drive(now);
    }

    /// The answer to [`Output::SendSync`] arrived but could not be read (a null assignment, which
    /// the schema does not allow, ...): treated like an unexpected SyncGroup error, the member
    /// rejoins after a backoff. The coordinator is kept: it did answer.
    pub fn on_sync_unreadable(&mut self, now: Instant) {
        if self.take_inflight(RequestKind::SyncGroup) && self.state == MemberState::Syncing {
            self.retry_later(now);
            self.restart_join("the SyncGroup answer could not be read");
        }
        self.drive(now);
    }

    /// The answer to [`Output::SendHeartbeat`].
    pub fn on_heartbeat_response(&mut self, response: HeartbeatResponse, now: Instant) {
        let Some(sent) = self.heartbeat_inflight.take() else {
            self.drive(now);
            return;
        };
        if !self.heartbeating() {
            self.drive(now);
            return;
        }
        // Errors about a generation the member has already left behind say nothing about now.
        let current = sent.0 == self.generation_id && sent.1 == self.member_id;
        let code = ErrorCode::from(response.error_code);
        match code {
            ErrorCode::NONE => {
                self.last_heartbeat_ok = Some(now);
                self.backoff.reset();
            }
            ErrorCode::REBALANCE_IN_PROGRESS => {
                // The coordinator counts this heartbeat: the session stays alive while rebalancing.
                self.last_heartbeat_ok = Some(now);
                if current && self.state == MemberState::Stable && self.rejoin.is_none() {
                    self.rejoin = Some("the group is rebalancing".into());
                }
            }
            ErrorCode::ILLEGAL_GENERATION | ErrorCode::UNKNOWN_MEMBER_ID if current => {
                self.lose_partitions();
                self.reset_generation(code == ErrorCode::UNKNOWN_MEMBER_ID);
                if self.state != MemberState::Leaving {
                    self.restart_join(&format!("Heartbeat failed with {}", code.name()));
                }
            }
            ErrorCode::FENCED_INSTANCE_ID if current => {
                self.fail(ApiKey::Heartbeat, code, None);
            }
            ErrorCode::ILLEGAL_GENERATION
            | ErrorCode::UNKNOWN_MEMBER_ID
            | ErrorCode::FENCED_INSTANCE_ID => {}
            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
                self.coordinator_lost();
            }
            ErrorCode::GROUP_AUTHORIZATION_FAILED => self.fail(ApiKey::Heartbeat, code, None),
            _ => {
                self.next_heartbeat = Some(now + self.backoff.next_delay());
            }
        }
        self.drive(now);
    }

    /// The answer to [`Output::SendLeave`]. Leaving is a best effort, so the answer changes
    /// nothing; the member is already closed or out of the group.
    pub fn on_leave_response(&mut self, _response: LeaveGroupResponse, now: Instant) {
        self.drive(now);
    }

    /// Leaves the group (the consumer is closing). Owned partitions are revoked first
    /// ([`Output::Revoke`]) so the application can commit — or reported lost when no generation is
    /// valid to commit with (mid-rebalance). Once [`revoke_done`](Self::revoke_done) comes, a
    /// dynamic member sends LeaveGroup and the state becomes [`MemberState::Closed`].
    ///
    /// A static member (with `group.instance.id`) sends no LeaveGroup, as in Kafka since 2.3: the
    /// coordinator keeps its partitions until its session times out, so a restart within the
    /// session timeout gets them back without a rebalance.
    pub fn leave(&mut self, now: Instant) {
        if matches!(
            self.state,
            MemberState::Closed | MemberState::Failed | MemberState::Leaving
        ) {
            return;
        }
        if !self.assignment.is_empty() {
            let partitions: Vec<_> = std::mem::take(&mut self.assignment).into_iter().collect();
            if self.state == MemberState::Stable && self.generation_id >= 0 {
                self.outputs.push_back(Output::Revoke(partitions));
                self.awaiting_revoke = true;
            } else {
                self.outputs.push_back(Output::Lost(partitions));
            }
        }
        self.state = MemberState::Leaving;
        self.rejoin = None;
        self.drive(now);
    }

    /// Advances timers (heartbeats, retries, session and poll-interval expiry) and returns the
    /// next output, `None` when there is nothing to do until the next input or
    /// [`next_deadline`](Self::next_deadline).
    pub fn poll(&mut self, now: Instant) -> Option<Output> {
        if self.outputs.is_empty() {
            self.drive(now);
        }
        self.outputs.pop_front()
    }

    // ---- the machine ----

    /// Takes every step that is due at `now`.
    fn drive(&mut self, now: Instant) {
        if matches!(self.state, MemberState::Closed | MemberState::Failed) {
            return;
        }
        self.check_poll_interval(now);
        self.check_session(now);
        if !self.awaiting_revoke {
            match self.state {
                MemberState::Unjoined if !self.subscription.is_empty() && !self.poll_expired => {
                    self.state = MemberState::Joining;
                    self.join_reason = "joining the group".into();
                }
                MemberState::Stable => {
                    self.check_rejoin_triggers();
                    if self.rejoin.is_some() {
                        self.prepare_rejoin();
                    }
                }
                MemberState::Leaving => self.finish_leave(),
                _ => {}
            }
        }
        if self.state == MemberState::Joining
            && !self.awaiting_revoke
            && self.inflight.is_none()
            && self.retry_at.is_none_or(|t| t <= now)
            && self.coordinator_ready(now)
        {
            self.send_join();
        }
        self.maybe_heartbeat(now);
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
        }
    }

    /// Java's rule: a member whose application stalls longer than `max.poll.interval.ms` leaves
    /// the group so the others can take over, and loses its partitions.
    fn check_poll_interval(&mut self, now: Instant) {
        let Some(last) = self.last_app_poll else {
            return;
        };
        if !self.in_generation() || now < last + self.config.rebalance_timeout {
            return;
        }
        self.lose_partitions();
        self.send_leave("consumer poll timeout has expired");
        self.reset_generation(true);
        self.state = MemberState::Unjoined;
        self.poll_expired = true;
        self.rejoin = None;
    }

    /// No heartbeat answer for a whole session: the coordinator has most likely expired the
    /// member and given its partitions to others.
    fn check_session(&mut self, now: Instant) {
        let Some(last) = self.last_heartbeat_ok else {
            return;
        };
        if !self.in_generation()
            || self.generation_id < 0
            || now < last + self.config.session_timeout
        {
            return;
        }
        self.lose_partitions();
        self.reset_generation(false);
        self.coordinator_lost();
        self.restart_join("session timed out without a heartbeat answer");
    }

    /// Rejoin causes found by looking: the subscription changed since the last join, or (leader)
    /// the partition counts changed since the last assignment.
    fn check_rejoin_triggers(&mut self) {
        if self.rejoin.is_some() {
            return;
        }
        if self.joined_subscription != self.subscription {
            self.rejoin = Some("the subscription changed".into());
        } else if self.is_leader {
            if let Some(used) = &self.assigned_with {
                if *used != self.counts_of(&self.group_topics) {
                    self.rejoin = Some("partition counts changed since the assignment".into());
                }
            }
        }
    }

    /// Stable with a rejoin wanted: revoke what must be revoked first, then join.
    fn prepare_rejoin(&mut self) {
        let revoke: Vec<TopicPartition> = match self.protocol {
            RebalanceProtocol::Eager => self.assignment.iter().cloned().collect(),
            RebalanceProtocol::Cooperative => self
                .assignment
                .iter()
                .filter(|tp| !self.subscription.contains(&tp.topic))
                .cloned()
                .collect(),
        };
        if !revoke.is_empty() {
            for tp in &revoke {
                self.assignment.remove(tp);
            }
            self.outputs.push_back(Output::Revoke(revoke));
            self.awaiting_revoke = true;
            return;
        }
        let reason = self.rejoin.take().unwrap_or_default();
        self.restart_join(&reason);
    }

    fn finish_leave(&mut self) {
        self.send_leave("the consumer is being closed");
        self.reset_generation(true);
        self.state = MemberState::Closed;
        self.outputs
            .retain(|o| !matches!(o, Output::FindCoordinator));
    }

    /// Sends LeaveGroup if this member can and should: dynamic, known to the coordinator, and the
    /// coordinator known. Static members never send it (KIP-345).
    fn send_leave(&mut self, reason: &str) {
        if self.config.group_instance_id.is_some()
            || self.member_id.is_empty()
            || self.coordinator.is_none()
        {
            return;
        }
        self.outputs.push_back(Output::SendLeave(LeaveGroupRequest {
            group_id: self.config.group_id.clone(),
            member_id: self.member_id.clone(),
            members: vec![MemberIdentity {
                member_id: self.member_id.clone(),
                group_instance_id: None,
                reason: Some(reason.into()),
                ..Default::default()
            }],
            ..Default::default()
        }));
    }

    fn send_join(&mut self) {
        let owned: Vec<TopicPartition> = self.assignment.iter().cloned().collect();
        let mut protocols = Vec::with_capacity(self.config.assignors.len());
        for assignor in &self.config.assignors {
            let subscription = Subscription {
                topics: self.subscription.iter().cloned().collect(),
                user_data: None,
                owned_partitions: owned.clone(),
                generation_id: self.owned_generation,
                rack_id: self.config.rack_id.clone(),
            };
            let metadata = match subscription.try_encode(WRITE_VERSION) {
                Ok(m) => m,
                Err(source) => {
                    self.fail_protocol(ApiKey::JoinGroup, source);
                    return;
                }
            };
            protocols.push(JoinGroupRequestProtocol {
                name: assignor.name().into(),
                metadata,
                ..Default::default()
            });
        }
        self.joined_subscription = self.subscription.clone();
        self.is_leader = false;
        self.inflight = Some(RequestKind::JoinGroup);
        self.outputs.push_back(Output::SendJoin(JoinGroupRequest {
            group_id: self.config.group_id.clone(),
            session_timeout_ms: millis(self.config.session_timeout),
            rebalance_timeout_ms: millis(self.config.rebalance_timeout),
            member_id: self.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            protocol_type: PROTOCOL_TYPE.into(),
            protocols,
            reason: Some(self.join_reason.clone()),
            ..Default::default()
        }));
    }

    /// A successful JoinGroup: the member is in generation `response.generation_id`. The leader
    /// computes everyone's assignment; every member then sends SyncGroup.
    fn joined(&mut self, response: JoinGroupResponse, now: Instant) {
        if response
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != PROTOCOL_TYPE)
        {
            let message = format!(
                "the group's protocol type is {:?}, not {PROTOCOL_TYPE}",
                response.protocol_type
            );
            return self.fail(
                ApiKey::JoinGroup,
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                Some(message),
            );
        }
        let Some(protocol_name) = response.protocol_name.clone() else {
            return self.fail(
                ApiKey::JoinGroup,
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                Some("the coordinator chose no assignment protocol".into()),
            );
        };
        self.backoff.reset();
        self.member_id = response.member_id.clone();
        self.generation_id = response.generation_id;
        self.protocol_name = Some(protocol_name.clone());
        self.state = MemberState::Syncing;
        self.last_heartbeat_ok = Some(now);
        self.next_heartbeat = Some(now + self.config.heartbeat_interval);
        self.is_leader = response.leader == self.member_id;
        self.group_topics.clear();
        self.assigned_with = None;

        let assignments = if self.is_leader {
            match self.lead(&response, &protocol_name) {
                Some(a) => a,
                None => return,
            }
        } else {
            Vec::new()
        };
        self.inflight = Some(RequestKind::SyncGroup);
        self.outputs.push_back(Output::SendSync(SyncGroupRequest {
            group_id: self.config.group_id.clone(),
            generation_id: self.generation_id,
            member_id: self.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            protocol_type: Some(PROTOCOL_TYPE.into()),
            protocol_name: Some(protocol_name),
            assignments,
            ..Default::default()
        }));
    }

    /// The leader's part ([`leader::assign`]); `None` after a fatal error.
    fn lead(
        &mut self,
        response: &JoinGroupResponse,
        protocol_name: &str,
    ) -> Option<Vec<SyncGroupRequestAssignment>> {
        let known = &self.partition_counts;
        let counts_of = |topics: &BTreeSet<String>| counts_in(known, topics);
        match leader::assign(response, protocol_name, &self.config.assignors, counts_of) {
            Ok(led) => {
                self.group_topics = led.group_topics;
                self.assigned_with = led.counts;
                Some(led.assignments)
            }
            Err(LeadError::Protocol(api, source)) => {
                self.fail_protocol(api, source);
                None
            }
            Err(LeadError::UnknownProtocol(message)) => {
                self.fail(
                    ApiKey::JoinGroup,
                    ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                    Some(message),
                );
                None
            }
        }
    }

    /// A successful SyncGroup: the member is stable with its new assignment.
    fn synced(&mut self, response: SyncGroupResponse, now: Instant) {
        if response
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != PROTOCOL_TYPE)
        {
            let message = format!(
                "SyncGroup names protocol type {:?}, not {PROTOCOL_TYPE}",
                response.protocol_type
            );
            return self.fail(
                ApiKey::SyncGroup,
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                Some(message),
            );
        }
        if let Some(name) = &response.protocol_name {
            if Some(name) != self.protocol_name.as_ref() {
                let message = format!(
                    "SyncGroup names protocol {name}, JoinGroup chose {:?}",
                    self.protocol_name
                );
                return self.fail(
                    ApiKey::SyncGroup,
                    ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                    Some(message),
                );
            }
        }
        if response.assignment.is_empty() {
            // Every leader, kbus's and Kafka's own, encodes an assignment for each member, also one
            // without partitions: no bytes at all mean the leader left this member out (it did not
            // see it join). Rejoining lets the next generation include it.
            self.retry_later(now);
            return self.restart_join("the SyncGroup answer carried no assignment");
        }
        let assignment = match Assignment::decode(response.assignment) {
            Ok(a) => a,
            Err(source) => return self.fail_protocol(ApiKey::SyncGroup, source),
        };
        self.backoff.reset();
        self.state = MemberState::Stable;
        self.last_heartbeat_ok = Some(now);
        let new: BTreeSet<TopicPartition> = assignment.partitions.into_iter().collect();
        if new.iter().any(|tp| !self.subscription.contains(&tp.topic)) {
            // The subscription changed while joining; Java drops such an assignment and rejoins.
            self.rejoin = Some("the assignment does not match the current subscription".into());
            return;
        }
        self.owned_generation = self.generation_id;
        let revoked: Vec<TopicPartition> = self.assignment.difference(&new).cloned().collect();
        let added: Vec<TopicPartition> = new.difference(&self.assignment).cloned().collect();
        self.assignment = new;
        if !revoked.is_empty() {
            // Cooperative (KIP-429): the partitions that move are given up now, and a second
            // rebalance, right after the revoke, hands them to their new owners.
            self.outputs.push_back(Output::Revoke(revoked));
            self.awaiting_revoke = true;
            if self.protocol == RebalanceProtocol::Cooperative {
                self.rejoin = Some("revoked partitions must be reassigned".into());
            }
        }
        self.outputs.push_back(Output::Assigned(added));
    }

    fn maybe_heartbeat(&mut self, now: Instant) {
        // The coordinator is looked up at once when lost, not only when a heartbeat is due.
        if !self.heartbeating()
            || !self.coordinator_ready(now)
            || self.heartbeat_inflight.is_some()
            || self.next_heartbeat.is_some_and(|t| now < t)
        {
            return;
        }
        self.heartbeat_inflight = Some((self.generation_id, self.member_id.clone()));
        self.next_heartbeat = Some(now + self.config.heartbeat_interval);
        self.outputs
            .push_back(Output::SendHeartbeat(HeartbeatRequest {
                group_id: self.config.group_id.clone(),
                generation_id: self.generation_id,
                member_id: self.member_id.clone(),
                group_instance_id: self.config.group_instance_id.clone(),
                ..Default::default()
            }));
    }

    /// True when the coordinator is known; otherwise asks for it (once, after any backoff).
    fn coordinator_ready(&mut self, now: Instant) -> bool {
        if self.coordinator.is_some() {
            return true;
        }
        if !self.find_pending && self.retry_at.is_none_or(|t| t <= now) {
            self.retry_at = None;
            self.find_pending = true;
            self.outputs.push_back(Output::FindCoordinator);
        }
        false
    }

    fn coordinator_lost(&mut self) {
        self.coordinator = None;
    }

    fn retry_later(&mut self, now: Instant) {
        self.retry_at = Some(now + self.backoff.next_delay());
    }

    /// Back to Joining without revoking (the rebalance that is under way was never completed).
    fn restart_join(&mut self, reason: &str) {
        self.state = MemberState::Joining;
        self.rejoin = None;
        self.is_leader = false;
        self.join_reason = reason.into();
    }

    fn take_inflight(&mut self, kind: RequestKind) -> bool {
        if self.inflight == Some(kind) {
            self.inflight = None;
            true
        } else {
            false
        }
    }

    /// Members of a generation (joined, syncing or stable) whose session and poll interval count.
    fn in_generation(&self) -> bool {
        matches!(self.state, MemberState::Syncing | MemberState::Stable)
    }

    /// Heartbeats keep the session alive from JoinGroup's answer on, while syncing, stable,
    /// revoking, and leaving (until LeaveGroup goes out).
    fn heartbeating(&self) -> bool {
        self.generation_id >= 0
            && matches!(
                self.state,
                MemberState::Syncing | MemberState::Stable | MemberState::Leaving
            )
    }

    fn lose_partitions(&mut self) {
        if !self.assignment.is_empty() {
            let lost = std::mem::take(&mut self.assignment).into_iter().collect();
            self.outputs.push_back(Output::Lost(lost));
        }
        self.owned_generation = -1;
    }

    fn reset_generation(&mut self, reset_member_id: bool) {
        self.generation_id = -1;
        self.protocol_name = None;
        self.is_leader = false;
        self.assigned_with = None;
        if reset_member_id {
            self.member_id.clear();
        }
    }

    fn counts_of(&self, topics: &BTreeSet<String>) -> BTreeMap<String, i32> {
        counts_in(&self.partition_counts, topics)
    }

    fn broker(&self) -> String {
        self.coordinator.clone().unwrap_or_default()
    }

    fn fail(&mut self, api: ApiKey, code: ErrorCode, message: Option<String>) {
        let error = Error::Broker {
            broker: self.broker(),
            api,
            code,
            message,
        };
        self.fatal(error);
    }

    fn fail_protocol(&mut self, api: ApiKey, source: ProtocolError) {
        let error = Error::Protocol {
            broker: self.broker(),
            api: Some(api),
            source,
        };
        self.fatal(error);
    }

    fn fatal(&mut self, error: Error) {
        self.lose_partitions();
        self.outputs.push_back(Output::Fatal(error));
        self.state = MemberState::Failed;
        self.awaiting_revoke = false;
        self.inflight = None;
        self.heartbeat_inflight = None;
    }
}

/// The partition counts of `topics`, of those `known` has.
fn counts_in(known: &BTreeMap<String, i32>, topics: &BTreeSet<String>) -> BTreeMap<String, i32> {
    topics
        .iter()
        .filter_map(|t| known.get(t).map(|&n| (t.clone(), n)))
        .collect()
}

/// Checks a member's settings: a group id (when `need_group_id`), at least one assignor, every
/// duration within what the wire carries (INT32 milliseconds, which also keeps the deadline
/// arithmetic far from overflow), a heartbeat interval above zero and below the session timeout.
pub(crate) fn check_config(config: &MembershipConfig, need_group_id: bool) -> Result<(), Error> {
    if need_group_id && config.group_id.is_empty() {
        return Err(config_error("group.id must not be empty"));
    }
    if config.assignors.is_empty() {
        return Err(config_error(
            "partition.assignment.strategy needs at least one assignor",
        ));
    }
    let max = Duration::from_millis(i32::MAX as u64);
    for (name, value) in [
        ("session.timeout.ms", config.session_timeout),
        ("max.poll.interval.ms", config.rebalance_timeout),
        ("heartbeat.interval.ms", config.heartbeat_interval),
        ("retry.backoff.ms", config.retry_backoff),
        ("retry.backoff.max.ms", config.retry_backoff_max),
    ] {
        if value > max {
            return Err(config_error(&format!(
                "{name} must be at most {} ms",
                i32::MAX
            )));
        }
    }
    if config.heartbeat_interval.is_zero() || config.heartbeat_interval >= config.session_timeout {
        return Err(config_error(
            "heartbeat.interval.ms must be above zero and below session.timeout.ms",
        ));
    }
    Ok(())
}

fn config_error(message: &str) -> Error {
    Error::Config {
        message: message.into(),
    }
}

/// A duration in whole milliseconds for an `INT32` field, saturating.
fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests;
