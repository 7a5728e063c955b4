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

mod driver;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::ApiKey;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::group::membership::{MemberState, Membership};
use crate::group::offsets::{self, Generation};
use crate::TopicPartition;
use driver::Driver;

pub use crate::group::config::GroupConfig;
pub use crate::group::offsets::is_commit_fenced;

/// How much longer than the rebalance timeout a JoinGroup may wait for its answer (as Java does).
const JOIN_GRACE: Duration = Duration::from_secs(5);

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
        let driver = Driver::new(
            cluster.clone(),
            &config,
            membership,
            (event_tx, status_tx),
            topics,
        );
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

#[cfg(test)]
mod tests;
