//! The consumer's side of group membership: the [`Group`] a [`subscribe`](super::Consumer::subscribe)
//! starts, the revocation the application is handling, and auto-commit's timer.
//!
//! Kept apart from the public API so that [`Consumer`](super::Consumer) reads as what it offers;
//! the rules live here:
//! - a `Revoked` event is handed out once the partitions are out of fetching; its acknowledgement
//!   is held until the application polls again, so the generation stays valid while it commits;
//! - the positions the revoked partitions had are kept for that commit;
//! - `polled` reaches the group at most once per [`Subscribed::keepalive`], and also while `poll`
//!   waits, so a consumer waiting for records is never taken for a stalled one.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::group::{Group, RevokeAck};
use crate::TopicPartition;

/// A consumer subscribed to topics through its group.
pub(crate) struct Subscribed {
    /// The member.
    pub group: Group,
    /// The topics subscribed to.
    pub topics: BTreeSet<String>,
    /// A revocation received but not handed out yet: the auto-commit before it is under way, or
    /// the `poll` that received it was cancelled.
    pub pending: Option<(Vec<TopicPartition>, RevokeAck)>,
    /// The acknowledgement of the revocation last handed out, held until the next `poll`.
    pub held: Option<RevokeAck>,
    /// The positions the partitions of `pending` or `held` had when they were revoked.
    pub revoked: Vec<(TopicPartition, i64)>,
    /// The group's events have ended (after a fatal error, or its task is gone).
    pub ended: bool,
    /// When `polled` last went to the group.
    last_polled: Option<Instant>,
    /// How often `polled` goes to the group.
    keepalive: Duration,
}

impl Subscribed {
    /// A subscription through `group`; `max_poll_interval` sets how often the group hears that
    /// the application polls.
    pub fn new(group: Group, topics: BTreeSet<String>, max_poll_interval: Duration) -> Self {
        Subscribed {
            group,
            topics,
            pending: None,
            held: None,
            revoked: Vec::new(),
            ended: false,
            last_polled: None,
            // Often enough that the member never comes near the interval while the application
            // keeps polling; rarely enough that a busy poll loop does not flood the group's task.
            keepalive: (max_poll_interval / 4)
                .min(Duration::from_secs(1))
                .max(Duration::from_millis(10)),
        }
    }

    /// The application polled (or is waiting in `poll`) at `now`.
    pub fn polled(&mut self, now: Instant) {
        if self.last_polled.is_none_or(|t| now >= t + self.keepalive) {
            self.group.polled();
            self.last_polled = Some(now);
        }
    }

    /// When `poll` must tell the group again that it is still waiting.
    pub fn next_keepalive(&self) -> Option<Instant> {
        self.last_polled.map(|t| t + self.keepalive)
    }

    /// The application is back in `poll`: the revocation it was handed is over.
    pub fn release_revocation(&mut self) {
        if self.held.take().is_some() && self.pending.is_none() {
            self.revoked.clear();
        }
    }
}

/// `enable.auto.commit`: when to commit next, and the background commit under way.
pub(crate) struct AutoCommit {
    /// Auto-commit is on (and the consumer has a group).
    pub enabled: bool,
    interval: Duration,
    next: Option<Instant>,
    /// The background commit under way, if any.
    pub inflight: Option<JoinHandle<()>>,
}

impl AutoCommit {
    /// Auto-commit every `interval` when `enabled`.
    pub fn new(enabled: bool, interval: Duration) -> Self {
        AutoCommit {
            enabled,
            // A zero interval would make poll spin; the configuration check refuses it, this
            // keeps a hand-built configuration harmless.
            interval: interval.max(Duration::from_millis(1)),
            next: None,
            inflight: None,
        }
    }

    /// True when a commit is due at `now` (and none is under way); the next one is then
    /// scheduled. The first call starts the timer.
    pub fn due(&mut self, now: Instant) -> bool {
        if !self.enabled {
            return false;
        }
        let next = *self.next.get_or_insert(now + self.interval);
        if now < next {
            return false;
        }
        self.next = Some(now + self.interval);
        // One background commit at a time: a slow coordinator must not pile them up.
        self.inflight.as_ref().is_none_or(|task| task.is_finished())
    }

    /// When the next commit is due, while auto-commit is on.
    pub fn next_at(&self) -> Option<Instant> {
        self.next.filter(|_| self.enabled)
    }

    /// Waits for the background commit under way, so that a commit made after this cannot be
    /// overtaken by it (and overwritten with older offsets). Cancellation safe.
    pub async fn settle(&mut self) {
        if let Some(task) = self.inflight.as_mut() {
            let _ = task.await;
            self.inflight = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_commit_is_due_once_per_interval_and_only_when_enabled() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut off = AutoCommit::new(false, ms(100));
        assert!(!off.due(t0 + ms(500)));
        assert_eq!(off.next_at(), None);

        let mut on = AutoCommit::new(true, ms(100));
        assert!(!on.due(t0), "the first call starts the timer");
        assert_eq!(on.next_at(), Some(t0 + ms(100)));
        assert!(!on.due(t0 + ms(99)));
        assert!(on.due(t0 + ms(100)));
        assert!(!on.due(t0 + ms(150)), "not twice in one interval");
        assert!(on.due(t0 + ms(260)));
        assert_eq!(on.next_at(), Some(t0 + ms(360)));
    }
}
