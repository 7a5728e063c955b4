//! The background driver: plans jobs from the shared state and runs each on its own task
//! (fetches, lookups). A job applies its own outcome to the state as it ends, wakes the
//! application when records are ready, and wakes the engine to plan again: the records of a fetch
//! reach `poll` without a hop through the engine's task. A fetch's task also plans at once and
//! goes on with the next fetch from the same broker itself (handing any other jobs of that plan
//! to the engine), so the broker is without a fetch for no longer than applying an answer takes:
//! records that arrive meanwhile would wait for the next fetch. The logic lives in
//! [`ConsumerState`]; this file only moves messages and spawns tasks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{mpsc, Notify};
use tokio::task::{JoinHandle, JoinSet};

use super::config::{ConsumerConfig, IsolationLevel};
use super::fetcher::{fetch, FetchSessions, FetchSettings};
use super::job::{Job, Outcome};
use super::state::ConsumerState;
use crate::cluster::Cluster;
use crate::group::offsets;
use crate::list_offsets;

/// A message to the engine.
enum Msg {
    /// The state changed (assignment, seek, pause, resume, records taken, a job ended): plan
    /// again.
    Wake,
    /// Jobs a fetch's task planned and leaves to the engine to start.
    Start(Vec<(u64, Job)>),
}

/// What the consumer and its engine share.
pub(crate) struct Shared {
    state: Mutex<ConsumerState>,
    /// Wakes [`poll`](super::Consumer::poll) when records or errors are ready.
    pub ready: Notify,
    /// Wakes everyone waiting for a job's outcome to be applied (positions looked up, ...).
    pub changed: Notify,
    /// The fetch session with each broker.
    pub sessions: FetchSessions,
    tx: mpsc::UnboundedSender<Msg>,
    /// True while a `Wake` is queued and not yet seen: wakes in a burst coalesce.
    wake_queued: AtomicBool,
}

impl Shared {
    /// The state, locked. Every critical section is short and panics in none can leave the state
    /// half-updated in a way later calls trip over, so a poisoned lock is used as is.
    pub fn lock(&self) -> MutexGuard<'_, ConsumerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the engine to plan again.
    pub fn wake(&self) {
        if !self.wake_queued.swap(true, Ordering::AcqRel) {
            let _ = self.tx.send(Msg::Wake);
        }
    }

    /// Applies the outcome of job `id`, then wakes the application when something is ready for
    /// it, everyone waiting for a change, and the engine to plan again. For a fetch from
    /// `broker`, plans at once and returns the next fetch from that broker for the caller to run
    /// (the plan's other jobs go to the engine).
    fn finish(&self, id: u64, outcome: Outcome, broker: Option<i32>) -> Option<(u64, Job)> {
        let mut state = self.lock();
        let warned = state.warnings_made;
        let now = Instant::now();
        state.apply(id, outcome, now);
        let mut next = None;
        if let Some(broker) = broker {
            let mut others = Vec::new();
            for (id, job) in state.plan(now).jobs {
                match job {
                    Job::Fetch(fetch) if fetch.broker == broker && next.is_none() => {
                        next = Some((id, Job::Fetch(fetch)));
                    }
                    job => others.push((id, job)),
                }
            }
            if !others.is_empty() {
                let _ = self.tx.send(Msg::Start(others));
            }
        }
        // New warnings are logged here, the application gets them from `poll`.
        let new = (state.warnings_made - warned) as usize;
        for error in state.warnings.iter().rev().take(new).rev() {
            tracing::warn!(error = %error, "consumer requests keep failing; retrying");
        }
        let ready = state.has_ready();
        drop(state);
        if ready {
            self.ready.notify_one();
        }
        self.changed.notify_waiters();
        self.wake();
        next
    }
}

/// Applies a job's outcome; `Lost` for a job whose task ended without an answer (it panicked or
/// was aborted), so its partitions do not stay busy forever.
struct Reporter {
    shared: Arc<Shared>,
    id: u64,
    sent: bool,
}

impl Reporter {
    /// Applies the outcome; for a fetch from `broker`, returns the next one to run.
    fn send(mut self, outcome: Outcome, broker: Option<i32>) -> Option<(u64, Job)> {
        self.sent = true;
        self.shared.finish(self.id, outcome, broker)
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if !self.sent {
            self.shared.finish(self.id, Outcome::Lost, None);
        }
    }
}

/// The engine task; aborted (with every job it started) when dropped.
pub(crate) struct Engine {
    task: JoinHandle<()>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The shared state of a new consumer, and the receiver its engine will read.
pub(crate) fn shared(config: ConsumerConfig) -> (Arc<Shared>, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        state: Mutex::new(ConsumerState::new(config)),
        ready: Notify::new(),
        changed: Notify::new(),
        sessions: FetchSessions::default(),
        tx,
        wake_queued: AtomicBool::new(false),
    });
    (shared, Receiver(rx))
}

/// The engine's end of the message channel, kept until the engine starts.
pub(crate) struct Receiver(mpsc::UnboundedReceiver<Msg>);

/// Starts the engine on the current tokio runtime.
pub(crate) fn start(shared: Arc<Shared>, rx: Receiver, cluster: Cluster) -> Engine {
    let group = shared.lock().config.group_id().unwrap_or("").to_owned();
    let span = tracing::info_span!("consumer", group = %group);
    Engine {
        task: tokio::spawn(tracing::Instrument::instrument(
            run(shared, rx.0, cluster),
            span,
        )),
    }
}

async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Msg>, cluster: Cluster) {
    let config = shared.lock().config.clone();
    let settings = Arc::new(FetchSettings::new(&config));
    let mut tasks = JoinSet::new();
    let spawn = |tasks: &mut JoinSet<()>, id: u64, job: Job| {
        tasks.spawn(run_jobs(
            shared.clone(),
            cluster.clone(),
            settings.clone(),
            config.clone(),
            id,
            job,
        ));
    };
    loop {
        while tasks.try_join_next().is_some() {}
        let plan = shared.lock().plan(Instant::now());
        for (id, job) in plan.jobs {
            spawn(&mut tasks, id, job);
        }
        let msg = match plan.wake_at {
            Some(at) => match tokio::time::timeout_at(at.into(), rx.recv()).await {
                Ok(msg) => msg,
                Err(_) => continue,
            },
            None => rx.recv().await,
        };
        let Some(msg) = msg else {
            return;
        };
        // Wakes in a burst coalesce: the flag is cleared before planning, so a change made
        // while planning queues a wake of its own. Jobs planned elsewhere start now.
        let mut msg = Some(msg);
        while let Some(m) = msg.take().or_else(|| rx.try_recv().ok()) {
            if let Msg::Start(jobs) = m {
                for (id, job) in jobs {
                    spawn(&mut tasks, id, job);
                }
            }
        }
        shared.wake_queued.store(false, Ordering::Release);
    }
}

/// Runs job `id`, applies its outcome, and goes on with the next fetch from the same broker
/// while its outcome plans one (see the module's notes).
async fn run_jobs(
    shared: Arc<Shared>,
    cluster: Cluster,
    settings: Arc<FetchSettings>,
    config: ConsumerConfig,
    mut id: u64,
    mut job: Job,
) {
    loop {
        let reporter = Reporter {
            shared: shared.clone(),
            id,
            sent: false,
        };
        let broker = match &job {
            Job::Fetch(fetch) => Some(fetch.broker),
            _ => None,
        };
        let outcome = run_job(&cluster, job, &settings, &config, &shared.sessions).await;
        match reporter.send(outcome, broker) {
            Some((next_id, next)) => (id, job) = (next_id, next),
            None => return,
        }
    }
}

async fn run_job(
    cluster: &Cluster,
    job: Job,
    settings: &FetchSettings,
    config: &ConsumerConfig,
    sessions: &FetchSessions,
) -> Outcome {
    match job {
        Job::Fetch(job) => Outcome::Fetch(fetch(cluster, job, settings, sessions).await),
        Job::Committed(tps) => {
            let group = config.group_id().unwrap_or_default();
            let stable = config.isolation_level == IsolationLevel::ReadCommitted;
            Outcome::Committed(offsets::committed(cluster, group, &tps, stable).await)
        }
        Job::Reset(tps) => Outcome::Reset(
            list_offsets::list_offsets(cluster, &tps, config.isolation_level.wire()).await,
        ),
        Job::Metadata { topics, refresh } => {
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            let md = if refresh {
                cluster.refresh(&topics).await
            } else {
                cluster.metadata_for(&topics).await
            };
            Outcome::Metadata(md)
        }
    }
}
