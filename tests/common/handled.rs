//! What a bus test's handlers did, and the checks the fault tests make on it: every published
//! event handled, each aggregate's events first handled in order, each event once in the log.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use kbus::bus::{EventMeta, Uuid};
use tokio::sync::watch;

/// A failure guard for waiting on handlers.
const GUARD: std::time::Duration = std::time::Duration::from_secs(60);

/// The events handlers finished, in order: (event id, aggregate, version).
pub struct Handled(watch::Sender<Vec<(Uuid, Uuid, u64)>>);

impl Handled {
    pub fn new() -> Arc<Handled> {
        Arc::new(Handled(watch::Sender::new(Vec::new())))
    }

    /// Notes that a handler finished the event `meta` describes.
    pub fn record(&self, meta: &EventMeta) {
        self.0
            .send_modify(|l| l.push((meta.event_id, meta.aggregate_id, meta.aggregate_version)));
    }

    /// Waits until `done` holds for what was handled; fails the test after the guard.
    pub async fn wait(&self, what: &str, done: impl Fn(&[(Uuid, Uuid, u64)]) -> bool) {
        let mut watching = self.0.subscribe();
        if tokio::time::timeout(GUARD, watching.wait_for(|l| done(l)))
            .await
            .is_err()
        {
            panic!(
                "not within {GUARD:?}: {what} ({} handled)",
                self.0.borrow().len()
            );
        }
    }

    /// Waits until every event of `all` was handled at least once.
    pub async fn wait_for_all(&self, all: &BTreeSet<Uuid>) {
        self.wait("every published event handled", |l| {
            l.iter().map(|(id, _, _)| *id).collect::<BTreeSet<_>>() == *all
        })
        .await
    }

    /// What was handled so far.
    pub fn seen(&self) -> Vec<(Uuid, Uuid, u64)> {
        self.0.borrow().clone()
    }

    /// Each aggregate's versions, first handlings only, come in order (1, 2, 3, ...).
    pub fn assert_in_order(&self) {
        let mut seen = BTreeSet::new();
        let mut last: HashMap<Uuid, u64> = HashMap::new();
        for (id, aggregate, version) in self.0.borrow().iter() {
            if !seen.insert(*id) {
                continue;
            }
            let before = last.insert(*aggregate, *version).unwrap_or(0);
            assert_eq!(
                *version,
                before + 1,
                "aggregate {aggregate}: version {version} handled after {before}"
            );
        }
    }
}

/// The bus's topic `topic` (of `partitions` partitions) holds each event of `published` exactly
/// once, and nothing else.
pub async fn assert_each_event_once_in_log(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    published: &[Uuid],
) {
    let records = super::read_all(bootstrap, topic, partitions).await;
    let mut in_log: HashMap<String, usize> = HashMap::new();
    for r in &records {
        let value: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        *in_log
            .entry(value["event_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let expected: BTreeSet<String> = published.iter().map(Uuid::to_string).collect();
    let found: BTreeSet<String> = in_log.keys().cloned().collect();
    assert_eq!(
        found, expected,
        "the log holds exactly the published events"
    );
    let twice = in_log.values().filter(|n| **n > 1).count();
    assert_eq!(twice, 0, "events written more than once");
}
