//! When a group member refreshes the metadata of the topics it needs (its subscription's, and as
//! leader every member's): at once for topics no refresh has asked about yet, every
//! `metadata.max.age.ms` after a complete answer, and sooner — with exponential backoff — while a
//! topic is missing or in error (being created, say) or the refresh failed. A plain value: the
//! driver passes `now` and the answers, and runs the refreshes it is told to.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::cluster::{Backoff, Metadata};
use crate::failure_streak::FailureStreak;

/// The member's metadata refresh schedule.
#[derive(Debug)]
pub(crate) struct MetadataWatch {
    in_flight: bool,
    /// The topics the last refresh asked about.
    asked: BTreeSet<String>,
    /// When the next refresh is due; `None` until a refresh has been answered.
    next_at: Option<Instant>,
    /// `metadata.max.age.ms`: the wait after a complete answer.
    max_age: Duration,
    backoff: Backoff,
    failures: FailureStreak,
}

impl MetadataWatch {
    /// A schedule refreshing complete answers every `max_age`, and retrying missing topics and
    /// failures with `backoff`.
    pub fn new(max_age: Duration, backoff: Backoff) -> Self {
        MetadataWatch {
            in_flight: false,
            asked: BTreeSet::new(),
            next_at: None,
            max_age,
            backoff,
            failures: FailureStreak::default(),
        }
    }

    /// The topics to refresh now, if a refresh is due for `wanted` at `now`: when one of them was
    /// not asked about before, or the timer ran out. The refresh is then in flight until
    /// [`answered`](Self::answered) or [`failed`](Self::failed).
    pub fn due(&mut self, wanted: BTreeSet<String>, now: Instant) -> Option<BTreeSet<String>> {
        if self.in_flight {
            return None;
        }
        if wanted.is_empty() {
            self.next_at = None;
            return None;
        }
        let new_topics = !wanted.is_subset(&self.asked);
        if !new_topics && self.next_at.is_some_and(|at| at > now) {
            return None;
        }
        self.in_flight = true;
        self.next_at = None;
        self.asked = wanted.clone();
        Some(wanted)
    }

    /// The refresh of `asked` came back with `md`: the next one in `metadata.max.age.ms` when
    /// every topic is there, else after the backoff.
    pub fn answered(&mut self, asked: &BTreeSet<String>, md: &Metadata, now: Instant) {
        self.in_flight = false;
        self.failures.succeeded();
        let missing = asked.iter().any(|t| {
            md.topic(t)
                .is_none_or(|info| info.error.is_err() || info.partitions.is_empty())
        });
        self.next_at = Some(if missing {
            now + self.backoff.next_delay()
        } else {
            self.backoff.reset();
            now + self.max_age
        });
    }

    /// The refresh failed: the next one after the backoff. True when the failures in a row have
    /// gone on long enough to tell the application.
    pub fn failed(&mut self, now: Instant) -> bool {
        self.in_flight = false;
        self.next_at = Some(now + self.backoff.next_delay());
        self.failures.failed(now)
    }

    /// Failed refreshes since the last answer.
    pub fn failures(&self) -> u32 {
        self.failures.failures()
    }

    /// When to look again.
    pub fn next_at(&self) -> Option<Instant> {
        self.next_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{PartitionInfo, TopicInfo};
    use kbus_protocol::error_code::ErrorCode;
    use kbus_protocol::Uuid;

    const AGE: Duration = Duration::from_secs(300);

    fn watch() -> MetadataWatch {
        let backoff = Backoff::with_seed(Duration::from_secs(1), Duration::from_secs(30), 0.0, 1);
        MetadataWatch::new(AGE, backoff)
    }

    fn topics(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|t| t.to_string()).collect()
    }

    /// Metadata listing `present` with one partition each.
    fn md(present: &[&str]) -> Metadata {
        let mut md = Metadata::empty();
        for name in present {
            md.topics.insert(
                name.to_string(),
                TopicInfo {
                    name: name.to_string(),
                    id: Uuid::NIL,
                    error: ErrorCode::NONE,
                    internal: false,
                    partitions: vec![PartitionInfo {
                        id: 0,
                        leader: 1,
                        leader_epoch: 0,
                        replicas: vec![1],
                        in_sync: vec![1],
                        offline: vec![],
                        error: ErrorCode::NONE,
                    }],
                },
            );
        }
        md
    }

    #[test]
    fn new_topics_are_refreshed_at_once_and_complete_answers_wait_the_max_age() {
        let t0 = Instant::now();
        let mut w = watch();
        let asked = w.due(topics(&["a"]), t0).expect("first refresh");
        assert_eq!(
            w.due(topics(&["a", "b"]), t0),
            None,
            "one refresh at a time"
        );
        w.answered(&asked, &md(&["a"]), t0);
        assert_eq!(w.next_at(), Some(t0 + AGE));
        assert_eq!(w.due(topics(&["a"]), t0 + Duration::from_secs(10)), None);
        assert_eq!(
            w.due(topics(&["a", "b"]), t0 + Duration::from_secs(10)),
            Some(topics(&["a", "b"])),
            "a topic not asked about yet is asked at once"
        );
        w.answered(&topics(&["a", "b"]), &md(&["a", "b"]), t0);
        assert_eq!(
            w.due(topics(&["a", "b"]), t0 + AGE),
            Some(topics(&["a", "b"]))
        );
    }

    #[test]
    fn a_missing_topic_is_asked_again_with_backoff_until_it_is_there() {
        let t0 = Instant::now();
        let mut w = watch();
        let asked = w.due(topics(&["new"]), t0).unwrap();
        w.answered(&asked, &md(&[]), t0);
        assert_eq!(w.next_at(), Some(t0 + Duration::from_secs(1)));
        let asked = w
            .due(topics(&["new"]), t0 + Duration::from_secs(1))
            .unwrap();
        w.answered(&asked, &md(&[]), t0 + Duration::from_secs(1));
        assert_eq!(w.next_at(), Some(t0 + Duration::from_secs(3)), "doubled");
        let asked = w
            .due(topics(&["new"]), t0 + Duration::from_secs(3))
            .unwrap();
        w.answered(&asked, &md(&["new"]), t0 + Duration::from_secs(3));
        assert_eq!(w.next_at(), Some(t0 + Duration::from_secs(3) + AGE));
        // The backoff starts over for the next missing topic.
        let asked = w
            .due(topics(&["new", "newer"]), t0 + Duration::from_secs(4))
            .unwrap();
        w.answered(&asked, &md(&["new"]), t0 + Duration::from_secs(4));
        assert_eq!(w.next_at(), Some(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn failures_back_off_and_the_third_in_a_row_is_reported() {
        let t0 = Instant::now();
        let mut w = watch();
        let mut now = t0;
        for n in 1..=3 {
            assert!(w.due(topics(&["a"]), now).is_some(), "refresh {n}");
            let report = w.failed(now);
            assert_eq!(report, n == 3, "failure {n}");
            let next = w.next_at().unwrap();
            assert!(next > now, "backs off");
            now = next;
        }
        assert_eq!(w.failures(), 3);
        let asked = w.due(topics(&["a"]), now).unwrap();
        w.answered(&asked, &md(&["a"]), now);
        assert_eq!(w.failures(), 0);
    }

    #[test]
    fn nothing_wanted_means_no_refresh() {
        let mut w = watch();
        assert_eq!(w.due(BTreeSet::new(), Instant::now()), None);
        assert_eq!(w.next_at(), None);
    }
}
