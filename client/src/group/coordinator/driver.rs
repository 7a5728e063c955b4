//! The member's task: one tokio task around the sans-IO [`Membership`] machine. It finds the
//! coordinator, sends the group's requests (each on its own spawned future), keeps the partition
//! counts of the wanted topics fresh ([`MetadataWatch`]), hands the application its events, and
//! logs what an operator needs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::{
    HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse, SyncGroupResponse,
};
use kbus_protocol::{ApiKey, Request};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::{Command, GroupConfig, GroupEvent, RevokeAck, Status, JOIN_GRACE};
use crate::cluster::{Backoff, Cluster, CoordinatorType, Metadata};
use crate::error::{Error, Result};
use crate::failure_streak::FailureStreak;
use crate::group::consumer_protocol::Subscription;
use crate::group::membership::{MemberState, Membership, Output, RequestKind};
use crate::group::metadata_watch::MetadataWatch;
use crate::TopicPartition;

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
pub(super) struct Driver {
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
    /// When the topics' metadata is refreshed next.
    metadata: MetadataWatch,
    /// The last metadata snapshot partition counts were read from.
    seen_metadata: Option<Arc<Metadata>>,
    counts: BTreeMap<String, i32>,
    /// Leader only, while its JoinGroup answer waits for fresh metadata: every member's topics.
    group_topics: BTreeSet<String>,
    /// Failures in a row of the member's requests, and of its metadata refreshes.
    failures: FailureStreak,
}

impl Driver {
    /// The task of a member of `config.group_id` with `membership`, publishing its events and
    /// status on `outputs`, subscribing to `topics` once their metadata is known.
    pub(super) fn new(
        cluster: Cluster,
        config: &GroupConfig,
        membership: Membership,
        outputs: (mpsc::UnboundedSender<GroupEvent>, watch::Sender<Status>),
        topics: BTreeSet<String>,
    ) -> Driver {
        let (event_tx, status_tx) = outputs;
        let metadata_max_age = cluster.config().metadata_max_age;
        Driver {
            cluster,
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
            metadata: MetadataWatch::new(
                metadata_max_age,
                Backoff::new(
                    Duration::from_secs(1),
                    metadata_max_age.clamp(Duration::from_secs(1), Duration::from_secs(30)),
                ),
            ),
            seen_metadata: None,
            counts: BTreeMap::new(),
            group_topics: BTreeSet::new(),
            failures: FailureStreak::default(),
        }
    }
    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
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
            let wake = [self.membership.next_deadline(), self.metadata.next_at()]
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
                match result {
                    Ok(md) => {
                        self.metadata.answered(&asked, &md, now);
                        self.read_metadata(md);
                    }
                    Err(e) => {
                        // The cluster counted it and keeps its metadata marked stale.
                        if self.metadata.failed(now) {
                            tracing::warn!(
                                group = %self.group_id,
                                error = %e,
                                failures = self.metadata.failures(),
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
                let conn = cluster.coordinator_link(id).await?;
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
        if self.failed {
            return;
        }
        let Some(wanted) = self.metadata.due(self.wanted_topics(), now) else {
            return;
        };
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
