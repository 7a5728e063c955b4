//! Fetch sessions (KIP-227), one per broker, sans-IO: which partitions a fetch must name and
//! which it may leave out.
//!
//! The first fetch to a broker is a full one (session id 0, epoch 0) asking the broker to open a
//! session. When its answer carries a session id, the broker remembers every partition of that
//! request with its offset, leader epoch and byte limit, and the next fetches are incremental
//! (that id, epochs 1, 2, ...): they name only partitions that are new or whose offset, leader
//! epoch or limit changed, and list as forgotten those the consumer no longer fetches from that
//! broker. The broker answers only for partitions with something to say (records, a new high
//! watermark, an error), so an idle partition costs neither side anything.
//!
//! A broker that answers a full fetch with session id 0 (one without sessions, such as tansu or
//! librdkafka's mock cluster, or a Kafka node whose session cache is full) gets full fetches
//! again. When a fetch gets no answer, or a session error, nothing is known about the epoch the
//! broker holds: the next fetch is full, closing the old session and opening a new one.

use std::collections::HashMap;
use std::sync::Arc;

use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::Uuid;

use super::job::FetchTarget;

/// The epoch of a full fetch that opens a session.
const OPEN: i32 = 0;
/// The epoch of a fetch that closes its session (or of a fetch without one).
pub(crate) const CLOSE: i32 = -1;

/// What the broker holds for one partition of a session: what was last sent for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    topic_id: Uuid,
    offset: i64,
    leader_epoch: i32,
    max_bytes: i32,
}

impl Held {
    fn of(target: &FetchTarget, topic_id: Uuid) -> Held {
        Held {
            topic_id,
            offset: target.offset,
            leader_epoch: target.leader_epoch,
            max_bytes: target.max_bytes,
        }
    }
}

type Key = (Arc<str>, i32);

/// The session fields and contents of the next fetch to a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRequest {
    /// The session id to send (0: none).
    pub session_id: i32,
    /// The epoch to send (0: a full fetch opening a session).
    pub epoch: i32,
    /// The indexes of the targets the request names (all of them in a full fetch).
    pub send: Vec<usize>,
    /// Partitions the broker holds that the fetch no longer wants: topic, its id, partition.
    pub forget: Vec<(Arc<str>, Uuid, i32)>,
}

impl SessionRequest {
    /// A full fetch of `targets` partitions: with `session_id` and epoch 0 it opens a session
    /// (closing that one, if any); with id 0 and epoch -1 it is a fetch without a session.
    pub fn full(session_id: i32, epoch: i32, targets: usize) -> SessionRequest {
        SessionRequest {
            session_id,
            epoch,
            send: (0..targets).collect(),
            forget: Vec::new(),
        }
    }

    /// True when the request names every partition it fetches.
    pub fn is_full(&self) -> bool {
        self.epoch == OPEN || self.epoch == CLOSE
    }
}

/// What to do after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Use the answer.
    Use,
    /// The broker no longer knows the session (or its epoch, or its topic ids): the answer holds
    /// no data; send the fetch again, now, as a full one.
    Resend,
}

/// The fetch session with one broker.
#[derive(Debug, Default)]
pub(crate) struct FetchSession {
    /// The broker's id for the session; 0 while there is none.
    id: i32,
    /// The epoch of the next fetch: 0 for a full one.
    epoch: i32,
    /// Whether the session names topics by id (Fetch v13 and later) or by name.
    by_id: bool,
    /// What the broker holds, per partition.
    held: HashMap<Key, Held>,
    /// What the broker will hold once the request in flight is answered, and whether it was full.
    pending: Option<(HashMap<Key, Held>, bool)>,
}

impl FetchSession {
    /// A session whose first fetch is a full one that closes session `old` (one the broker may
    /// still hold, its state here lost) and opens a new one.
    pub fn replacing(old: Option<i32>) -> FetchSession {
        FetchSession {
            id: old.unwrap_or(0),
            ..FetchSession::default()
        }
    }

    /// The id of the open session, if any.
    pub fn id(&self) -> Option<i32> {
        (self.id != 0).then_some(self.id)
    }

    /// Builds the next fetch for `targets` (with the topic id of each, `Uuid::NIL` when unknown);
    /// `by_id` when the request names topics by id. Call [`answered`](Self::answered) or
    /// [`failed`](Self::failed) with its outcome.
    pub fn request(
        &mut self,
        targets: &[FetchTarget],
        topic_ids: &[Uuid],
        by_id: bool,
    ) -> SessionRequest {
        let next: HashMap<Key, Held> = targets
            .iter()
            .zip(topic_ids)
            .map(|(t, id)| ((t.topic.clone(), t.tp.partition), Held::of(t, *id)))
            .collect();
        // A change of naming, or a topic whose id changed (deleted and created again), cannot be
        // said incrementally: start over.
        let renamed = by_id != self.by_id
            || next.iter().any(|(key, h)| {
                self.held
                    .get(key)
                    .is_some_and(|old| old.topic_id != h.topic_id)
            });
        if self.id == 0 || self.epoch == OPEN || renamed {
            self.by_id = by_id;
            // An open session is closed by the broker when a full fetch names it with epoch 0.
            self.epoch = OPEN;
            self.pending = Some((next, true));
            return SessionRequest::full(self.id, OPEN, targets.len());
        }
        let send = targets
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                let key = (t.topic.clone(), t.tp.partition);
                self.held.get(&key) != next.get(&key)
            })
            .map(|(i, _)| i)
            .collect();
        let mut forget: Vec<(Arc<str>, Uuid, i32)> = self
            .held
            .iter()
            .filter(|(key, _)| !next.contains_key(*key))
            .map(|((topic, partition), h)| (topic.clone(), h.topic_id, *partition))
            .collect();
        forget.sort_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2)));
        self.pending = Some((next, false));
        SessionRequest {
            session_id: self.id,
            epoch: self.epoch,
            send,
            forget,
        }
    }

    /// The broker answered the request with the top-level `error` and `session_id`.
    pub fn answered(&mut self, error: ErrorCode, session_id: i32) -> Next {
        let Some((next, full)) = self.pending.take() else {
            return Next::Use;
        };
        if error.is_err() {
            let session_error = error == ErrorCode::FETCH_SESSION_ID_NOT_FOUND
                || error == ErrorCode::INVALID_FETCH_SESSION_EPOCH
                || error == ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR;
            if error == ErrorCode::FETCH_SESSION_ID_NOT_FOUND {
                self.id = 0;
            }
            self.reset();
            return if session_error && !full {
                Next::Resend
            } else {
                Next::Use
            };
        }
        if session_id == 0 {
            // No session (the broker has none to offer, or closed ours): full fetches from now on,
            // each asking again.
            self.id = 0;
            self.reset();
            return Next::Use;
        }
        if !full && session_id != self.id {
            // An answer for another session than the one asked about: trust neither.
            self.reset();
            return Next::Resend;
        }
        self.id = session_id;
        self.held = next;
        // Epochs run from 1 up to i32::MAX, then start again at 1.
        self.epoch = if full || self.epoch == i32::MAX {
            1
        } else {
            self.epoch + 1
        };
        Next::Use
    }

    /// The request got no answer (a lost connection, a timeout): the broker may or may not have
    /// taken it, so the next fetch is full.
    pub fn failed(&mut self) {
        self.pending = None;
        self.reset();
    }

    /// The next fetch is a full one (closing the open session, if any, and opening a new one).
    fn reset(&mut self) {
        self.epoch = OPEN;
        self.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TopicPartition;

    fn target(topic: &str, partition: i32, offset: i64) -> FetchTarget {
        FetchTarget {
            tp: TopicPartition::new(topic, partition),
            topic: topic.into(),
            epoch: 0,
            offset,
            leader_epoch: 3,
            max_bytes: 1024,
        }
    }

    fn id(n: u8) -> Uuid {
        Uuid([n; 16])
    }

    /// Topic "a" has id 1, "b" id 2, ...
    fn ids(targets: &[FetchTarget]) -> Vec<Uuid> {
        targets
            .iter()
            .map(|t| id(t.topic.as_bytes()[0] - b'a' + 1))
            .collect()
    }

    fn request(s: &mut FetchSession, targets: &[FetchTarget]) -> SessionRequest {
        s.request(targets, &ids(targets), true)
    }

    /// A session opened with partitions 0..3 of "a" at offset 10, now at epoch 1.
    fn opened() -> (FetchSession, Vec<FetchTarget>) {
        let mut s = FetchSession::default();
        let targets: Vec<_> = (0..3).map(|p| target("a", p, 10)).collect();
        let r = request(&mut s, &targets);
        assert_eq!((r.session_id, r.epoch, r.send.len()), (0, 0, 3));
        assert!(r.is_full());
        assert_eq!(s.answered(ErrorCode::NONE, 77), Next::Use);
        assert_eq!(s.id(), Some(77));
        (s, targets)
    }

    #[test]
    fn after_a_full_fetch_only_changed_partitions_are_named() {
        let (mut s, mut targets) = opened();
        // Nothing changed: a fetch naming nothing waits on the whole session.
        let r = request(&mut s, &targets);
        assert_eq!((r.session_id, r.epoch), (77, 1));
        assert!(r.send.is_empty() && r.forget.is_empty() && !r.is_full());
        assert_eq!(s.answered(ErrorCode::NONE, 77), Next::Use);
        // Partition 1 got records (offset moved), partition 2's leader epoch changed.
        targets[1].offset = 25;
        targets[2].leader_epoch = 4;
        let r = request(&mut s, &targets);
        assert_eq!((r.epoch, r.send.clone()), (2, vec![1, 2]));
        s.answered(ErrorCode::NONE, 77);
        // What was sent is now held: the same targets again name nothing.
        assert!(request(&mut s, &targets).send.is_empty());
    }

    #[test]
    fn partitions_left_out_are_forgotten_and_new_ones_named() {
        let (mut s, targets) = opened();
        let next = vec![targets[0].clone(), target("b", 0, 5)];
        let r = request(&mut s, &next);
        assert_eq!(r.send, vec![1]);
        let forgotten: Vec<i32> = r.forget.iter().map(|f| f.2).collect();
        assert_eq!(forgotten, vec![1, 2]);
        assert!(r.forget.iter().all(|f| &*f.0 == "a" && f.1 == id(1)));
        s.answered(ErrorCode::NONE, 77);
        // Coming back, a forgotten partition is named again.
        let r = request(&mut s, &targets);
        assert_eq!(r.send, vec![1, 2]);
        assert_eq!(r.forget.len(), 1);
    }

    #[test]
    fn an_unanswered_request_leaves_the_held_partitions_as_they_were_until_answered() {
        let (mut s, mut targets) = opened();
        targets[0].offset = 99;
        let r = request(&mut s, &targets);
        assert_eq!(r.send, vec![0]);
        // The request failed: the next one is full and closes the old session by its id.
        s.failed();
        let r = request(&mut s, &targets);
        assert_eq!((r.session_id, r.epoch, r.send.len()), (77, 0, 3));
        assert_eq!(s.answered(ErrorCode::NONE, 78), Next::Use);
        assert_eq!(request(&mut s, &targets).epoch, 1);
    }

    #[test]
    fn session_errors_on_an_incremental_fetch_resend_it_full() {
        for (code, id_after) in [
            (ErrorCode::FETCH_SESSION_ID_NOT_FOUND, 0),
            (ErrorCode::INVALID_FETCH_SESSION_EPOCH, 77),
            (ErrorCode::FETCH_SESSION_TOPIC_ID_ERROR, 77),
        ] {
            let (mut s, targets) = opened();
            request(&mut s, &targets);
            assert_eq!(s.answered(code, 0), Next::Resend, "{code}");
            let r = request(&mut s, &targets);
            assert_eq!((r.session_id, r.epoch, r.send.len()), (id_after, 0, 3));
            // A full fetch's own session error is an answer to use, not to resend forever.
            assert_eq!(s.answered(code, 0), Next::Use);
        }
    }

    #[test]
    fn a_broker_without_sessions_gets_full_fetches() {
        let mut s = FetchSession::default();
        let targets: Vec<_> = (0..2).map(|p| target("a", p, 0)).collect();
        for _ in 0..3 {
            let r = request(&mut s, &targets);
            assert_eq!((r.session_id, r.epoch, r.send.len()), (0, 0, 2));
            assert_eq!(s.answered(ErrorCode::NONE, 0), Next::Use);
        }
        assert_eq!(s.id(), None);
    }

    #[test]
    fn other_errors_and_a_closed_session_start_over() {
        let (mut s, targets) = opened();
        request(&mut s, &targets);
        assert_eq!(s.answered(ErrorCode::UNKNOWN_SERVER_ERROR, 0), Next::Use);
        assert!(request(&mut s, &targets).is_full());
        s.answered(ErrorCode::NONE, 80);
        request(&mut s, &targets);
        // The broker answered an incremental fetch with session id 0: it closed the session.
        assert_eq!(s.answered(ErrorCode::NONE, 0), Next::Use);
        let r = request(&mut s, &targets);
        assert_eq!((r.session_id, r.epoch), (0, 0));
    }

    #[test]
    fn an_answer_for_another_session_is_not_trusted() {
        let (mut s, targets) = opened();
        request(&mut s, &targets);
        assert_eq!(s.answered(ErrorCode::NONE, 5), Next::Resend);
        assert!(request(&mut s, &targets).is_full());
    }

    #[test]
    fn a_topic_id_change_or_a_naming_change_starts_over() {
        let (mut s, targets) = opened();
        let mut other = ids(&targets);
        other[1] = id(9);
        let r = s.request(&targets, &other, true);
        assert!(r.is_full());
        assert_eq!((r.session_id, r.send.len()), (77, 3));
        s.answered(ErrorCode::NONE, 77);
        assert!(s.request(&targets, &other, false).is_full());
    }

    #[test]
    fn a_replaced_session_is_closed_by_the_first_full_fetch() {
        let targets = vec![target("a", 0, 0)];
        let mut s = FetchSession::replacing(Some(41));
        let r = request(&mut s, &targets);
        assert_eq!((r.session_id, r.epoch, r.send.len()), (41, 0, 1));
        assert_eq!(s.answered(ErrorCode::NONE, 42), Next::Use);
        assert_eq!((s.id(), request(&mut s, &targets).epoch), (Some(42), 1));
    }

    #[test]
    fn the_epoch_wraps_to_one() {
        let (mut s, targets) = opened();
        s.epoch = i32::MAX;
        assert_eq!(request(&mut s, &targets).epoch, i32::MAX);
        s.answered(ErrorCode::NONE, 77);
        assert_eq!(request(&mut s, &targets).epoch, 1);
    }
}
