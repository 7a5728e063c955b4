//! The async driver of consumer-group membership: one tokio task around the sans-IO
//! [`Membership`] machine, and the [`Group`] handle a consumer holds.
//!
//! The task finds the group's coordinator, sends JoinGroup, SyncGroup, Heartbeat and LeaveGroup
//! (each on its own spawned future, so heartbeats keep flowing while a JoinGroup waits at the
//! coordinator), keeps the partition counts of the topics the member must know fresh (at start, every
//! `metadata.max.age.ms`, sooner while a topic is missing, whenever another part of the client
//! refreshed metadata, and on the leader right before it assigns), and wakes at the machine's next
//! deadline. A subscription reaches the machine once its topics' metadata is known, so a leader
//! never assigns without partition counts. What the application must act on
//! comes out of [`Group::next_event`] as [`GroupEvent`]s:
//!
//! - [`GroupEvent::Revoked`]: stop consuming these partitions and commit what was processed (the
//!   generation is still valid: [`Group::commit`] works), then drop the [`RevokeAck`]. The rebalance
//!   waits for it.
//! - [`GroupEvent::Assigned`]: a rebalance completed; start consuming these (newly added)
//!   partitions from their committed offsets ([`Group::committed`]).
//! - [`GroupEvent::Lost`]: these partitions were taken away without a chance to commit (session
//!   expired, member fenced): drop them, do not commit.
//! - [`GroupEvent::Failing`]: the member's requests keep failing (it goes on retrying); for the
//!   application to show or log.
//! - [`GroupEvent::Fatal`]: the member cannot go on; the event stream ends after it.
//!
//! The task logs (with `tracing`) the coordinator it finds, each join and rebalance (INFO, with
//! group, generation and partitions), lost partitions and streaks of failures (WARN), and fatal
//! errors (ERROR); every request at DEBUG.
//!
//! ```no_run
//! use std::collections::BTreeSet;
//! use kbus_client::cluster::{Cluster, ClusterConfig};
//! use kbus_client::group::coordinator::{Group, GroupConfig, GroupEvent};
//! # async fn demo() -> kbus_client::Result<()> {
//! let cluster = Cluster::connect(ClusterConfig::new("localhost:9092")).await?;
//! let topics = BTreeSet::from(["orders".to_string()]);
//! let group = Group::start(cluster, GroupConfig::new("billing"), topics)?;
//! while let Some(event) = group.next_event().await {
//!     match event {
//!         GroupEvent::Assigned { partitions, generation } => {
//!             let from = group.committed(&partitions).await?;
//!             println!("generation {generation}: consuming {partitions:?} from {from:?}");
//!         }
//!         GroupEvent::Revoked { partitions, done } => {
//!             // Commit what was processed of `partitions` while the generation is valid.
//!             group.commit(&[]).await?;
//!             drop(done);
//!         }
//!         GroupEvent::Lost { partitions } => println!("lost {partitions:?}"),
//!         GroupEvent::Failing(e) => eprintln!("the member keeps retrying: {e}"),
//!         GroupEvent::Fatal(e) => return Err(e),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::{
    HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse, SyncGroupResponse,
};
use kbus_protocol::{ApiKey, Request};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio::task::{JoinHandle, JoinSet};

use crate::cluster::{Backoff, Cluster, CoordinatorType, Metadata};
use crate::config::{self, Settings};
use crate::error::{Error, Result};
use crate::failure_streak::FailureStreak;
use crate::group::assignor::{self, Assignor};
use crate::group::consumer_protocol::Subscription;
use crate::group::membership::{
    check_config, MemberState, Membership, MembershipConfig, Output, RequestKind,
};
use crate::group::offsets::{self, Generation};
use crate::TopicPartition;

pub use crate::group::offsets::is_commit_fenced;

/// How much longer than the rebalance timeout a JoinGroup may wait for its answer (as Java does).
const JOIN_GRACE: Duration = Duration::from_secs(5);

/// Settings of a group member. Names and defaults follow the Java consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`: makes the member static (KIP-345); it then sends no LeaveGroup when it
    /// closes, and keeps its partitions across a restart within the session timeout.
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms` (45 s).
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (3 s); below the session timeout.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms` (300 s): the rebalance timeout, and the longest gap allowed between
    /// two [`Group::polled`] calls once the application has called it.
    pub max_poll_interval: Duration,
    /// `partition.assignment.strategy`, by protocol name, in order of preference (Java's default
    /// `range,cooperative-sticky`). Known names: `range`, `roundrobin`, `cooperative-sticky`.
    pub assignment_strategy: Vec<String>,
    /// `retry.backoff.ms` (100 ms).
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms` (1 s).
    pub retry_backoff_max: Duration,
    /// `client.rack`, sent in the subscription for rack-aware assignors.
    pub client_rack: Option<String>,
}

impl GroupConfig {
    /// The Java consumer's defaults for group `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        GroupConfig {
            group_id: group_id.into(),
            group_instance_id: None,
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            assignment_strategy: vec!["range".into(), "cooperative-sticky".into()],
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            client_rack: None,
        }
    }

    /// The membership machine's settings.
    pub(crate) fn membership_config(&self) -> Result<MembershipConfig> {
        let config = self.membership_settings()?;
        check_config(&config, true)?;
        Ok(config)
    }

    fn membership_settings(&self) -> Result<MembershipConfig> {
        let mut assignors: Vec<Arc<dyn Assignor>> = Vec::new();
        for name in &self.assignment_strategy {
            let found = assignor::by_name(strategy_name(name)).ok_or_else(|| {
                config_error(format!(
                    "partition.assignment.strategy: unknown assignor {name:?}"
                ))
            })?;
            assignors.push(Arc::from(found));
        }
        Ok(MembershipConfig {
            group_id: self.group_id.clone(),
            group_instance_id: self.group_instance_id.clone(),
            session_timeout: self.session_timeout,
            rebalance_timeout: self.max_poll_interval,
            heartbeat_interval: self.heartbeat_interval,
            retry_backoff: self.retry_backoff,
            retry_backoff_max: self.retry_backoff_max,
            assignors,
            rack_id: self.client_rack.clone(),
        })
    }
}

impl Default for GroupConfig {
    /// No group (empty `group.id`), the Java consumer's defaults otherwise.
    fn default() -> Self {
        GroupConfig::new("")
    }
}

impl Settings for GroupConfig {
    /// Sets one property by its Java name: `group.id`, `group.instance.id`,
    /// `session.timeout.ms`, `heartbeat.interval.ms`, `max.poll.interval.ms`,
    /// `partition.assignment.strategy` (comma-separated names, or the Java assignor class names),
    /// `retry.backoff.ms`, `retry.backoff.max.ms`, `client.rack`. Returns `Ok(false)` for a key
    /// that is not a group setting, an error for a value that cannot be read.
    fn set_property(&mut self, key: &str, value: &str) -> Result<bool> {
        let key = key.trim();
        let text = value.trim();
        let ms = || config::millis(key, text);
        match key {
            "group.id" => self.group_id = text.to_string(),
            "group.instance.id" => self.group_instance_id = config::optional(text),
            "client.rack" => self.client_rack = config::optional(text),
            "session.timeout.ms" => self.session_timeout = ms()?,
            "heartbeat.interval.ms" => self.heartbeat_interval = ms()?,
            "max.poll.interval.ms" => self.max_poll_interval = ms()?,
            "retry.backoff.ms" => self.retry_backoff = ms()?,
            "retry.backoff.max.ms" => self.retry_backoff_max = ms()?,
            "partition.assignment.strategy" => self.assignment_strategy = parse_strategies(text)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the member's settings (but not the group id: a consumer needs one only to join a
    /// group or commit).
    fn finish(&mut self) -> Result<()> {
        check_config(&self.membership_settings()?, false)
    }
}

/// The assignors of a `partition.assignment.strategy` value: comma-separated protocol names or
/// Java assignor class names, in order of preference.
pub(crate) fn parse_strategies(text: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let name = strategy_name(entry);
        if assignor::by_name(name).is_none() {
            return Err(config_error(format!(
                "partition.assignment.strategy: unknown assignor {entry:?} \
                 (known: range, roundrobin, cooperative-sticky)"
            )));
        }
        names.push(name.to_string());
    }
    if names.is_empty() {
        return Err(config_error(
            "partition.assignment.strategy needs at least one assignor".into(),
        ));
    }
    Ok(names)
}

/// The protocol name for a strategy given by name or by Java class name.
fn strategy_name(entry: &str) -> &str {
    match entry.rsplit('.').next().unwrap_or(entry) {
        "RangeAssignor" => "range",
        "RoundRobinAssignor" => "roundrobin",
        "CooperativeStickyAssignor" => "cooperative-sticky",
        _ => entry,
    }
}

fn config_error(message: String) -> Error {
    Error::Config { message }
}

/// What the group asks of the application, from [`Group::next_event`].
#[derive(Debug)]
#[non_exhaustive]
pub enum GroupEvent {
    /// A rebalance completed in `generation`, and these partitions were added to the member's
    /// assignment (possibly none): fetch their committed offsets and start consuming them.
    Assigned {
        /// The partitions added.
        partitions: Vec<TopicPartition>,
        /// The generation id of the group they were assigned in.
        generation: i32,
    },
    /// Stop consuming these partitions and commit what was processed (the generation is still
    /// valid), then drop `done` (or call [`RevokeAck::ack`]). The member waits for it before it
    /// rejoins or leaves the group.
    Revoked {
        /// The partitions taken away.
        partitions: Vec<TopicPartition>,
        /// Dropping it tells the group the application let go of the partitions.
        done: RevokeAck,
    },
    /// These partitions were taken away without a chance to commit (session lost, member fenced,
    /// poll interval exceeded): another member may own them already. Drop them without
    /// committing.
    Lost {
        /// The partitions lost.
        partitions: Vec<TopicPartition>,
    },
    /// The member's requests keep failing — the coordinator cannot be found, drops the
    /// connection, times out, answers with an error — and it goes on retrying with backoff. Given
    /// once a streak reaches three failures or thirty seconds, then once a minute while it
    /// lasts.
    Failing(Error),
    /// The member cannot go on; everything it owned was reported [`GroupEvent::Lost`] first. No
    /// event follows.
    Fatal(Error),
}

/// The application's acknowledgement of a [`GroupEvent::Revoked`]: given when it is dropped, so
/// an application that forgets about it cannot stall the group.
pub struct RevokeAck(Option<oneshot::Sender<()>>);

impl RevokeAck {
    /// Acknowledges the revocation now (the same as dropping it).
    pub fn ack(self) {}
}

impl Drop for RevokeAck {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

impl std::fmt::Debug for RevokeAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RevokeAck")
    }
}

/// What the task publishes for the handle to read at any time.
#[derive(Debug, Clone, PartialEq)]
struct Status {
    state: MemberState,
    /// Generation id and member id, while commits can be fenced with them.
    generation: Option<(i32, String)>,
    /// The coordinator's broker id and address.
    coordinator: Option<(i32, String)>,
}

enum Command {
    Polled,
    Subscribe(BTreeSet<String>),
    Leave,
}

/// A member of a consumer group. Its task runs until the member has left (or failed); dropping
/// the handle makes it leave, as [`Group::leave`] does, without waiting for revocations.
pub struct Group {
    cluster: Cluster,
    group_id: String,
    group_instance_id: Option<String>,
    commands: mpsc::UnboundedSender<Command>,
    events: Mutex<mpsc::UnboundedReceiver<GroupEvent>>,
    status: watch::Receiver<Status>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("group_id", &self.group_id)
            .field("status", &*self.status.borrow())
            .finish()
    }
}

impl Group {
    /// Joins group `config.group_id` subscribed to `topics`, on a task of the current tokio
    /// runtime. Fails at once on settings that cannot work (an empty group id, an unknown
    /// assignor, a heartbeat interval not below the session timeout, ...).
    pub fn start(cluster: Cluster, config: GroupConfig, topics: BTreeSet<String>) -> Result<Group> {
        let membership = Membership::new(config.membership_config()?)?;
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let (status_tx, status_rx) = watch::channel(Status {
            state: membership.state(),
            generation: None,
            coordinator: None,
        });
        let metadata_max_age = cluster.config().metadata_max_age;
        let driver = Driver {
            cluster: cluster.clone(),
            group_id: config.group_id.clone(),
            membership,
            join_timeout: config.max_poll_interval.saturating_add(JOIN_GRACE),
            leader_metadata_limit: config.session_timeout / 2,
            coordinator: None,
            work: JoinSet::new(),
            events: event_tx,
            status: status_tx,
            revokes: Vec::new(),
            failed: false,
            leaves_in_flight: 0,
            pending_subscription: Some(topics),
            metadata_in_flight: false,
            refreshed_topics: BTreeSet::new(),
            next_refresh: None,
            metadata_backoff: Backoff::new(
                Duration::from_secs(1),
                metadata_max_age.clamp(Duration::from_secs(1), Duration::from_secs(30)),
            ),
            seen_metadata: None,
            counts: BTreeMap::new(),
            group_topics: BTreeSet::new(),
            failures: FailureStreak::default(),
            metadata_failures: FailureStreak::default(),
        };
        let span = tracing::info_span!("group", group = %config.group_id);
        let task = tokio::spawn(tracing::Instrument::instrument(
            driver.run(command_rx),
            span,
        ));
        Ok(Group {
            cluster,
            group_id: config.group_id,
            group_instance_id: config.group_instance_id,
            commands: command_tx,
            events: Mutex::new(event_rx),
            status: status_rx,
            task,
        })
    }

    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The next event, waiting for one; `None` once the member has left the group or failed (after
    /// every event before that was delivered).
    pub async fn next_event(&self) -> Option<GroupEvent> {
        self.events.lock().await.recv().await
    }

    /// The application asked for records: restarts the `max.poll.interval.ms` timer (and rejoins
    /// after that timer made the member leave). Until the first call, no poll interval applies.
    pub fn polled(&self) {
        let _ = self.commands.send(Command::Polled);
    }

    /// Changes the subscription; the member rejoins (an eager member revokes everything first, a
    /// cooperative one only the partitions of topics it dropped).
    pub fn subscribe(&self, topics: BTreeSet<String>) {
        let _ = self.commands.send(Command::Subscribe(topics));
    }

    /// The generation to fence commits with: generation id, member id and `group.instance.id`.
    /// `None` while the member is not settled in a generation (joining, syncing, left).
    pub fn generation(&self) -> Option<Generation> {
        self.status
            .borrow()
            .generation
            .clone()
            .map(|(generation_id, member_id)| Generation {
                generation_id,
                member_id,
                group_instance_id: self.group_instance_id.clone(),
            })
    }

    /// The broker id of the group's coordinator, once found.
    pub fn coordinator(&self) -> Option<i32> {
        self.status.borrow().coordinator.as_ref().map(|c| c.0)
    }

    /// Where the member stands in the group.
    pub fn state(&self) -> MemberState {
        self.status.borrow().state
    }

    /// Starts leaving the group. Keep reading [`next_event`](Self::next_event): the member's
    /// partitions come in a [`GroupEvent::Revoked`] first (commit, then drop the ack), then a
    /// dynamic member sends LeaveGroup (a static one does not: KIP-345), and the events end.
    pub fn leave(&self) {
        let _ = self.commands.send(Command::Leave);
    }

    /// Leaves the group and waits until the member is out, acknowledging any revocation at once
    /// (commit before calling this).
    pub async fn close(self) {
        self.leave();
        while self.next_event().await.is_some() {}
        let _ = self.task.await;
    }

    /// Commits `offsets` (each the offset of the next record to consume) with the current
    /// generation. Fails with an error [`is_commit_fenced`] recognises when the member holds no
    /// generation (a rebalance is under way) or the coordinator says it is no longer current;
    /// retries within `request.timeout.ms` while the coordinator moves or cannot be reached.
    pub async fn commit(&self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        match self.generation() {
            Some(generation) => self.commit_with(&generation, offsets).await,
            None => Err(self.no_generation_error()),
        }
    }

    /// Commits `offsets` as `generation`, as [`commit`](Self::commit) does with the current one:
    /// for a commit that must be fenced by the generation the offsets were processed in.
    pub async fn commit_with(
        &self,
        generation: &Generation,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<()> {
        offsets::commit(&self.cluster, &self.group_id, generation, offsets).await
    }

    /// The group's committed offsets for `partitions`; partitions without one are left out.
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>> {
        offsets::committed(&self.cluster, &self.group_id, partitions, false).await
    }

    /// The next event if one is waiting, without waiting: `Err(Disconnected)` once the events
    /// have ended, `Err(Empty)` when none is waiting — or while another caller is inside
    /// [`next_event`](Self::next_event), which then gets it.
    pub(crate) fn try_next_event(&self) -> std::result::Result<GroupEvent, TryRecvError> {
        match self.events.try_lock() {
            Ok(mut events) => events.try_recv(),
            Err(_) => Err(TryRecvError::Empty),
        }
    }

    /// The fenced error of a commit attempted while the member holds no generation.
    pub(crate) fn no_generation_error(&self) -> Error {
        let broker = self
            .status
            .borrow()
            .coordinator
            .as_ref()
            .map(|c| c.1.clone())
            .unwrap_or_default();
        Error::Broker {
            broker,
            api: ApiKey::OffsetCommit,
            code: ErrorCode::REBALANCE_IN_PROGRESS,
            message: Some(format!(
                "commit to group {} fenced: the member holds no generation (it is joining the \
                 group or rebalancing); its partitions may belong to another member",
                self.group_id
            )),
        }
    }
}

/// What a spawned piece of work came back with.
enum Done {
    Coordinator(Result<(i32, String)>),
    Join(Result<JoinGroupResponse>),
    Sync(Result<SyncGroupResponse>),
    Heartbeat(Result<HeartbeatResponse>),
    Leave(Result<LeaveGroupResponse>),
    Metadata(BTreeSet<String>, Result<Arc<Metadata>>),
    /// The metadata refresh a leader makes before it assigns, with the JoinGroup answer held back
    /// meanwhile.
    LeaderMetadata(Box<JoinGroupResponse>, Result<Arc<Metadata>>),
}

/// The task: owns the machine and everything in flight for it.
struct Driver {
    cluster: Cluster,
    group_id: String,
    membership: Membership,
    join_timeout: Duration,
    /// How long a leader's metadata refresh may hold back its assignment.
    leader_metadata_limit: Duration,
    coordinator: Option<(i32, String)>,
    /// Requests, coordinator lookups and metadata refreshes under way; dropped (cancelled) with
    /// the task.
    work: JoinSet<Done>,
    events: mpsc::UnboundedSender<GroupEvent>,
    status: watch::Sender<Status>,
    /// The acknowledgements of the revocations the application holds, oldest first; the machine
    /// hears `revoke_done` once all have come.
    revokes: Vec<oneshot::Receiver<()>>,
    /// A request failed in a way no retry can fix; the task ends.
    failed: bool,
    leaves_in_flight: usize,
    /// A subscription waiting for the metadata of its topics before the machine gets it, so a
    /// leader assigns with partition counts known.
    pending_subscription: Option<BTreeSet<String>>,
    metadata_in_flight: bool,
    /// The topics of the last refresh this task asked for.
    refreshed_topics: BTreeSet<String>,
    next_refresh: Option<Instant>,
    metadata_backoff: Backoff,
    /// The last metadata snapshot partition counts were read from.
    seen_metadata: Option<Arc<Metadata>>,
    counts: BTreeMap<String, i32>,
    /// Leader only, while its JoinGroup answer waits for fresh metadata: every member's topics.
    group_topics: BTreeSet<String>,
    /// Failures in a row of the member's requests, and of its metadata refreshes.
    failures: FailureStreak,
    metadata_failures: FailureStreak,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut commands_open = true;
        loop {
            let now = Instant::now();
            self.read_metadata(self.cluster.metadata());
            self.apply_subscription_if_known();
            self.drain(now);
            if self.finished() {
                break;
            }
            self.refresh_metadata_if_due(now);
            let wake = [self.membership.next_deadline(), self.next_refresh]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                command = commands.recv(), if commands_open => match command {
                    Some(command) => self.on_command(command),
                    None => {
                        // The handle is gone: leave; revocations are acknowledged at once since
                        // nobody can receive them.
                        commands_open = false;
                        self.membership.leave(Instant::now());
                    }
                },
                Some(joined) = self.work.join_next(), if !self.work.is_empty() => match joined {
                    Ok(done) => self.on_done(done),
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(_) => {}
                },
                _ = acknowledged(&mut self.revokes) => {
                    self.revokes.remove(0);
                    if self.revokes.is_empty() {
                        self.membership.revoke_done(Instant::now());
                    }
                }
                _ = sleep_until(wake), if wake.is_some() => {}
            }
        }
        let state = if self.failed {
            MemberState::Failed
        } else {
            self.membership.state()
        };
        self.status.send_modify(|s| {
            s.state = state;
            s.generation = None;
        });
    }

    fn finished(&self) -> bool {
        self.failed
            || match self.membership.state() {
                MemberState::Failed => true,
                MemberState::Closed => self.leaves_in_flight == 0,
                _ => false,
            }
    }

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Polled => self.membership.app_polled(now),
            Command::Subscribe(topics) => self.pending_subscription = Some(topics),
            Command::Leave => self.membership.leave(now),
        }
    }

    fn on_done(&mut self, done: Done) {
        let now = Instant::now();
        match done {
            Done::Coordinator(Ok((id, address))) => {
                tracing::debug!(group = %self.group_id, coordinator = %address, "group coordinator found");
                self.coordinator = Some((id, address.clone()));
                self.membership.coordinator_found(address, now);
            }
            Done::Coordinator(Err(e)) => self.failed_request(RequestKind::FindCoordinator, e),
            Done::Join(Ok(r)) => {
                self.answered(ApiKey::JoinGroup, r.error_code);
                if r.error_code == 0 {
                    tracing::debug!(
                        group = %self.group_id,
                        generation = r.generation_id,
                        member_id = %r.member_id,
                        leader = r.leader == r.member_id,
                        "joined group"
                    );
                }
                self.joined(r)
            }
            Done::LeaderMetadata(r, result) => {
                match result {
                    Ok(md) => self.read_metadata(md),
                    Err(e) => {
                        // Assign with the counts known; the leader rejoins when they change.
                        self.cluster.report(&e);
                    }
                }
                self.group_topics.clear();
                self.membership.on_join_response(*r, now);
            }
            Done::Join(Err(e)) => self.failed_request(RequestKind::JoinGroup, e),
            Done::Sync(Ok(r)) => {
                self.answered(ApiKey::SyncGroup, r.error_code);
                self.membership.on_sync_response(r, now)
            }
            Done::Sync(Err(e)) => self.failed_request(RequestKind::SyncGroup, e),
            Done::Heartbeat(Ok(r)) => {
                self.answered(ApiKey::Heartbeat, r.error_code);
                self.membership.on_heartbeat_response(r, now)
            }
            Done::Heartbeat(Err(e)) => self.failed_request(RequestKind::Heartbeat, e),
            Done::Leave(result) => {
                self.leaves_in_flight = self.leaves_in_flight.saturating_sub(1);
                match result {
                    Ok(r) => self.membership.on_leave_response(r, now),
                    Err(e) => {
                        self.cluster.report(&e);
                        self.membership
                            .on_request_failed(RequestKind::LeaveGroup, now);
                    }
                }
            }
            Done::Metadata(asked, result) => {
                self.metadata_in_flight = false;
                match result {
                    Ok(md) => {
                        let missing = asked.iter().any(|t| {
                            md.topic(t).is_none_or(|info| {
                                info.error.is_err() || info.partitions.is_empty()
                            })
                        });
                        self.metadata_failures.succeeded();
                        self.next_refresh = Some(if missing {
                            now + self.metadata_backoff.next_delay()
                        } else {
                            self.metadata_backoff.reset();
                            now + self.cluster.config().metadata_max_age
                        });
                        self.read_metadata(md);
                    }
                    Err(e) => {
                        // The cluster counted it and keeps its metadata marked stale.
                        self.next_refresh = Some(now + self.metadata_backoff.next_delay());
                        if self.metadata_failures.failed(now) {
                            tracing::warn!(
                                group = %self.group_id,
                                error = %e,
                                failures = self.metadata_failures.failures(),
                                "group metadata refreshes keep failing; retrying"
                            );
                            self.emit(GroupEvent::Failing(e));
                        }
                    }
                }
                // Asked about (answered or not): the machine gets the subscription now.
                if let Some(pending) = &self.pending_subscription {
                    if pending.is_subset(&asked) {
                        let topics = self.pending_subscription.take().unwrap_or_default();
                        self.membership.subscribe(topics);
                    }
                }
            }
        }
    }

    /// A JoinGroup answer. A leader first refreshes the metadata of every topic the group
    /// subscribes to, as librdkafka does, so it assigns with current partition counts (including
    /// topics only other members subscribe to); the answer goes to the machine afterwards.
    fn joined(&mut self, response: JoinGroupResponse) {
        let leads = ErrorCode(response.error_code).is_ok()
            && !response.member_id.is_empty()
            && response.leader == response.member_id;
        if !leads {
            self.membership.on_join_response(response, Instant::now());
            return;
        }
        let mut topics = self.wanted_topics();
        for member in &response.members {
            // An undecodable subscription is the machine's to report.
            if let Ok(subscription) = Subscription::decode(member.metadata.clone()) {
                topics.extend(subscription.topics);
            }
        }
        self.group_topics = topics.clone();
        // Counts are read again from the refreshed snapshot, with the group's topics.
        self.seen_metadata = None;
        let cluster = self.cluster.clone();
        // The coordinator waits for the leader's SyncGroup only so long: a slow refresh gives up
        // and the leader assigns with the counts it has.
        let limit = self.leader_metadata_limit;
        self.work.spawn(async move {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            let result = tokio::time::timeout(limit, cluster.refresh(&names))
                .await
                .unwrap_or_else(|_| {
                    Err(Error::RequestTimeout {
                        // A refresh asks whichever broker answers first.
                        broker: "the cluster".into(),
                        api: ApiKey::Metadata,
                        after: limit,
                    })
                });
            Done::LeaderMetadata(Box::new(response), result)
        });
    }

    /// A request got no answer. Errors a retry cannot fix end the member; the others go to the
    /// machine, which looks the coordinator up again and retries after a backoff.
    ///
    /// A SyncGroup answer that cannot be read is an unexpected SyncGroup error like any other: the
    /// member rejoins. (librdkafka's mock cluster answers a follower that syncs after the leader
    /// with INVALID_REQUEST and a null assignment, which the schema does not allow.)
    fn failed_request(&mut self, kind: RequestKind, error: Error) {
        if kind == RequestKind::SyncGroup && unreadable_answer(&error) {
            self.membership.on_sync_unreadable(Instant::now());
            return;
        }
        self.cluster.report(&error);
        let hopeless = match &error {
            Error::Broker { code, .. } => !code.is_retriable(),
            e => !e.is_retriable(),
        };
        if hopeless {
            tracing::error!(group = %self.group_id, request = ?kind, error = %error, "group member failed");
            let owned: Vec<TopicPartition> = self.membership.assignment().iter().cloned().collect();
            if !owned.is_empty() {
                self.emit(GroupEvent::Lost { partitions: owned });
            }
            self.emit(GroupEvent::Fatal(error));
            self.failed = true;
            return;
        }
        let now = Instant::now();
        self.membership.on_request_failed(kind, now);
        self.count_failure(kind, error, now);
    }

    /// An answer from the coordinator: a success ends the failure streak; an error code other
    /// than the protocol's ordinary steps (a new member asked for its id, a rebalance under way)
    /// counts as a failure of the request.
    fn answered(&mut self, api: ApiKey, error_code: i16) {
        let code = ErrorCode(error_code);
        self.cluster.counters().code(code);
        if code.is_ok() {
            if self.failures.succeeded() {
                tracing::info!(group = %self.group_id, "group requests succeed again");
            }
            return;
        }
        if matches!(
            code,
            ErrorCode::MEMBER_ID_REQUIRED | ErrorCode::REBALANCE_IN_PROGRESS
        ) {
            return;
        }
        let broker = self
            .coordinator
            .as_ref()
            .map_or_else(|| "the coordinator".to_string(), |c| c.1.clone());
        let error = Error::Broker {
            broker,
            api,
            code,
            message: None,
        };
        let kind = match api {
            ApiKey::JoinGroup => RequestKind::JoinGroup,
            ApiKey::SyncGroup => RequestKind::SyncGroup,
            _ => RequestKind::Heartbeat,
        };
        self.count_failure(kind, error, Instant::now());
    }

    /// One more failure in a row of the member's requests: logged, and told the application when
    /// the streak has gone on long enough.
    fn count_failure(&mut self, kind: RequestKind, error: Error, now: Instant) {
        if self.failures.failed(now) {
            tracing::warn!(
                group = %self.group_id,
                request = ?kind,
                error = %error,
                failures = self.failures.failures(),
                "group requests keep failing; retrying"
            );
            self.emit(GroupEvent::Failing(error));
        } else {
            tracing::debug!(group = %self.group_id, request = ?kind, error = %error, "group request failed");
        }
    }

    /// Carries out every output the machine has, then publishes its status.
    fn drain(&mut self, now: Instant) {
        while !self.failed {
            let Some(output) = self.membership.poll(now) else {
                break;
            };
            match output {
                Output::FindCoordinator => self.find_coordinator(),
                Output::SendJoin(req) => {
                    tracing::debug!(group = %self.group_id, "joining group");
                    let timeout = self.join_timeout;
                    self.send(req, Some(timeout), Done::Join);
                }
                Output::SendSync(req) => self.send(req, None, Done::Sync),
                Output::SendHeartbeat(req) => self.send(req, None, Done::Heartbeat),
                Output::SendLeave(req) => {
                    tracing::info!(group = %self.group_id, "leaving group");
                    self.leaves_in_flight += 1;
                    self.send(req, None, Done::Leave);
                }
                Output::Revoke(partitions) => {
                    tracing::info!(group = %self.group_id, partitions = ?partitions, "partitions revoked");
                    let (tx, rx) = oneshot::channel();
                    self.revokes.push(rx);
                    self.emit(GroupEvent::Revoked {
                        partitions,
                        done: RevokeAck(Some(tx)),
                    });
                }
                Output::Assigned(partitions) => {
                    let generation = self.membership.generation().map_or(-1, |g| g.0);
                    tracing::info!(
                        group = %self.group_id,
                        generation,
                        partitions = ?partitions,
                        "rebalance done: partitions assigned"
                    );
                    self.cluster.counters().rebalanced();
                    self.emit(GroupEvent::Assigned {
                        partitions,
                        generation,
                    });
                }
                Output::Lost(partitions) => {
                    tracing::warn!(group = %self.group_id, partitions = ?partitions, "partitions lost");
                    self.emit(GroupEvent::Lost { partitions })
                }
                Output::Fatal(error) => {
                    tracing::error!(group = %self.group_id, error = %error, "group member failed");
                    self.emit(GroupEvent::Fatal(error))
                }
            }
        }
        self.publish_status();
    }

    /// Publishes the machine's state, generation and coordinator to the handle.
    fn publish_status(&self) {
        let status = Status {
            state: self.membership.state(),
            generation: self.membership.generation(),
            coordinator: self.coordinator.clone(),
        };
        self.status.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }

    /// Sends an event; when nobody listens any more it is dropped (a [`RevokeAck`] in it then
    /// acknowledges at once). The status is published first, so a handler sees the generation
    /// the event belongs to.
    fn emit(&self, event: GroupEvent) {
        self.publish_status();
        let _ = self.events.send(event);
    }

    fn find_coordinator(&mut self) {
        // The machine asks only when it has no coordinator or lost it: never trust the cache.
        self.cluster
            .invalidate_coordinator(CoordinatorType::Group, &self.group_id);
        self.coordinator = None;
        let cluster = self.cluster.clone();
        let group_id = self.group_id.clone();
        self.work.spawn(async move {
            let found = cluster
                .coordinator(CoordinatorType::Group, &group_id)
                .await
                .map(|(id, conn)| (id, conn.broker().to_string()));
            Done::Coordinator(found)
        });
    }

    /// Sends `req` to the coordinator on its own task; `wrap` makes the answer a [`Done`].
    fn send<R>(&mut self, req: R, timeout: Option<Duration>, wrap: fn(Result<R::Response>) -> Done)
    where
        R: Request + Send + Sync + 'static,
        R::Response: Send + 'static,
    {
        let cluster = self.cluster.clone();
        let coordinator = self.coordinator.as_ref().map(|c| c.0);
        self.work.spawn(async move {
            let answer = async {
                let id = coordinator.ok_or(Error::UnknownBroker { id: -1 })?;
                let conn = cluster.broker(id).await?;
                match timeout {
                    Some(t) => conn.send_with_timeout(&req, t).await,
                    None => conn.send(&req).await,
                }
            }
            .await;
            wrap(answer)
        });
    }

    /// The topics whose partition counts the member needs.
    fn wanted_topics(&self) -> BTreeSet<String> {
        let mut topics = self.membership.metadata_topics();
        if let Some(pending) = &self.pending_subscription {
            topics.extend(pending.iter().cloned());
        }
        topics.extend(self.group_topics.iter().cloned());
        topics
    }

    /// Hands the machine the partition counts in `md` when it is a snapshot not read yet (this
    /// task's refresh, or anyone else's).
    fn read_metadata(&mut self, md: Arc<Metadata>) {
        if self
            .seen_metadata
            .as_ref()
            .is_some_and(|seen| Arc::ptr_eq(seen, &md))
        {
            return;
        }
        let mut counts = BTreeMap::new();
        for topic in self.wanted_topics() {
            let Some(info) = md.topic(&topic) else {
                continue;
            };
            if info.error.is_ok() && !info.partitions.is_empty() {
                counts.insert(topic, info.partitions.len() as i32);
            } else if info.error.is_retriable() {
                // A passing error (no leader yet, ...) says nothing about the partition count:
                // keep the last one rather than make a leader reassign without the topic.
                if let Some(&n) = self.counts.get(&topic) {
                    counts.insert(topic, n);
                }
            }
        }
        self.seen_metadata = Some(md);
        if counts != self.counts {
            self.counts = counts.clone();
            self.membership.set_partition_counts(counts);
        }
    }

    /// A pending subscription whose topics the latest snapshot already describes goes to the
    /// machine at once (no refresh to wait for).
    fn apply_subscription_if_known(&mut self) {
        let Some(pending) = &self.pending_subscription else {
            return;
        };
        let md = self.cluster.metadata();
        if pending.iter().all(|t| md.topics.contains_key(t)) {
            let topics = self.pending_subscription.take().unwrap_or_default();
            self.membership.subscribe(topics);
        }
    }

    /// Starts a metadata refresh when topics are wanted that the last one did not ask about, or
    /// the refresh timer is due.
    fn refresh_metadata_if_due(&mut self, now: Instant) {
        if self.metadata_in_flight || self.failed {
            return;
        }
        let wanted = self.wanted_topics();
        if wanted.is_empty() {
            self.next_refresh = None;
            return;
        }
        let new_topics = !wanted.is_subset(&self.refreshed_topics);
        if !new_topics && self.next_refresh.is_some_and(|at| at > now) {
            return;
        }
        self.metadata_in_flight = true;
        self.next_refresh = None;
        self.refreshed_topics = wanted.clone();
        let cluster = self.cluster.clone();
        self.work.spawn(async move {
            let names: Vec<&str> = wanted.iter().map(String::as_str).collect();
            let result = cluster.refresh(&names).await;
            Done::Metadata(wanted, result)
        });
    }
}

/// True for an answer that arrived but could not be decoded (as opposed to a request that could
/// not be encoded, or a connection that broke).
fn unreadable_answer(error: &Error) -> bool {
    use kbus_protocol::ProtocolError as P;
    matches!(
        error,
        Error::Protocol {
            source: P::Truncated { .. }
                | P::InvalidLength { .. }
                | P::VarintOverflow { .. }
                | P::InvalidUtf8 { .. }
                | P::InvalidValue { .. }
                | P::UnexpectedNull { .. },
            ..
        }
    )
}

/// Resolves when the application acknowledged (or dropped) the oldest revocation it holds.
async fn acknowledged(revokes: &mut [oneshot::Receiver<()>]) {
    match revokes.first_mut() {
        Some(rx) => {
            let _ = rx.await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
