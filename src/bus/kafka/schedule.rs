//! Which events may run now: strictly in order within an aggregate (or within a partition, in the
//! strict mode), concurrently across aggregates — also within one partition — up to a bound per
//! partition, so that handlers stuck on one partition's events never take the places of another
//! partition's.
//!
//! A plain value: the bus pushes events as they arrive, takes the ones that may start
//! ([`Schedule::start_next`]), and says when one finished; the next event of that aggregate becomes
//! startable then. Partitions take turns when several have events ready.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;

/// The events waiting and running, by ordering key, grouped by partition.
#[derive(Debug)]
pub struct Schedule<K, T> {
    /// Waiting events by key (no empty queues).
    queues: HashMap<K, VecDeque<T>>,
    /// Keys with an event running, and their partition.
    running: HashMap<K, i32>,
    /// Events running per partition.
    running_in: BTreeMap<i32, usize>,
    /// Keys not running with events waiting, per partition, in the order they became startable.
    ready: BTreeMap<i32, VecDeque<K>>,
    /// The partition that goes first next time (turns).
    turn: i32,
    max_per_partition: usize,
    waiting: usize,
}

impl<K: Eq + Hash + Clone, T> Schedule<K, T> {
    /// A schedule running at most `max_per_partition` events of each partition at once (at least
    /// one).
    pub fn new(max_per_partition: usize) -> Self {
        Schedule {
            queues: HashMap::new(),
            running: HashMap::new(),
            running_in: BTreeMap::new(),
            ready: BTreeMap::new(),
            turn: i32::MIN,
            max_per_partition: max_per_partition.max(1),
            waiting: 0,
        }
    }

    /// Queues `item` of `partition` after the other events of `key` (a key belongs to one
    /// partition).
    pub fn push(&mut self, partition: i32, key: K, item: T) {
        let queue = self.queues.entry(key.clone()).or_default();
        queue.push_back(item);
        self.waiting += 1;
        if queue.len() == 1 && !self.running.contains_key(&key) {
            self.ready.entry(partition).or_default().push_back(key);
        }
    }

    /// The next event that may start now, if any; it runs until [`finished`](Self::finished) is
    /// called with its key.
    pub fn start_next(&mut self) -> Option<(K, T)> {
        // Partitions with room and a ready key, taking turns from `turn` on.
        let max = self.max_per_partition;
        let running_in = &self.running_in;
        let has_room = |p: &i32| running_in.get(p).copied().unwrap_or(0) < max;
        let partition = self
            .ready
            .range(self.turn..)
            .chain(self.ready.range(..self.turn))
            .find(|(p, keys)| !keys.is_empty() && has_room(p))
            .map(|(p, _)| *p)?;
        let keys = self.ready.get_mut(&partition)?;
        let key = keys.pop_front()?;
        if keys.is_empty() {
            self.ready.remove(&partition);
        }
        self.turn = partition.saturating_add(1);
        let queue = self.queues.get_mut(&key)?;
        let item = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&key);
        }
        self.waiting -= 1;
        self.running.insert(key.clone(), partition);
        *self.running_in.entry(partition).or_default() += 1;
        Some((key, item))
    }

    /// Starts an event of `key` in `partition` at once, without queueing it, when no event of
    /// `key` waits or runs and the partition has room: true when started (the caller runs it and
    /// reports [`finished`](Self::finished)), false when it must be [`push`](Self::push)ed.
    pub fn start_now(&mut self, partition: i32, key: &K) -> bool {
        if self.running.contains_key(key) || self.queues.contains_key(key) {
            return false;
        }
        let running = self.running_in.entry(partition).or_default();
        if *running >= self.max_per_partition {
            return false;
        }
        *running += 1;
        self.running.insert(key.clone(), partition);
        true
    }

    /// The running event of `key` finished: the key's next event may start.
    pub fn finished(&mut self, key: &K) {
        let Some(partition) = self.running.remove(key) else {
            return;
        };
        if let Some(n) = self.running_in.get_mut(&partition) {
            *n -= 1;
            if *n == 0 {
                self.running_in.remove(&partition);
            }
        }
        if self.queues.contains_key(key) {
            self.ready
                .entry(partition)
                .or_default()
                .push_back(key.clone());
        }
    }

    /// Drops the waiting events of the partitions `drop` picks (revoked ones), returning them;
    /// running ones are not touched.
    pub fn remove_waiting(&mut self, mut drop: impl FnMut(i32) -> bool) -> Vec<T> {
        let mut removed = Vec::new();
        let mut keys: Vec<K> = Vec::new();
        self.ready.retain(|p, ready| {
            if drop(*p) {
                keys.extend(ready.drain(..));
                false
            } else {
                true
            }
        });
        // Keys running in a dropped partition may have events queued behind them.
        keys.extend(
            self.running
                .iter()
                .filter(|(_, p)| drop(**p))
                .map(|(k, _)| k.clone()),
        );
        for key in keys {
            if let Some(queue) = self.queues.remove(&key) {
                removed.extend(queue);
            }
        }
        self.waiting -= removed.len();
        removed
    }

    /// Events waiting to start.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Events running.
    pub fn running(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut Schedule<&'static str, u32>) -> Vec<(&'static str, u32)> {
        std::iter::from_fn(|| s.start_next()).collect()
    }

    #[test]
    fn one_event_per_key_at_a_time_in_order_and_keys_side_by_side() {
        let mut s = Schedule::new(10);
        for (k, n) in [("a", 1), ("a", 2), ("b", 1), ("a", 3), ("b", 2), ("c", 1)] {
            s.push(0, k, n);
        }
        assert_eq!(drain(&mut s), [("a", 1), ("b", 1), ("c", 1)]);
        assert_eq!((s.running(), s.waiting()), (3, 3));
        s.finished(&"b");
        assert_eq!(drain(&mut s), [("b", 2)]);
        s.finished(&"a");
        assert_eq!(drain(&mut s), [("a", 2)]);
        s.finished(&"c");
        assert!(drain(&mut s).is_empty(), "c has nothing more");
        s.finished(&"a");
        assert_eq!(drain(&mut s), [("a", 3)]);
        s.finished(&"a");
        s.finished(&"b");
        assert_eq!((s.running(), s.waiting()), (0, 0));
        // A key that finished everything starts at once again.
        s.push(0, "a", 4);
        assert_eq!(drain(&mut s), [("a", 4)]);
    }

    #[test]
    fn an_idle_aggregate_starts_at_once_and_a_busy_one_queues_behind_its_events() {
        let mut s: Schedule<&str, u32> = Schedule::new(2);
        assert!(s.start_now(0, &"a"), "nothing of a anywhere: start");
        assert!(!s.start_now(0, &"a"), "a runs: its next event must queue");
        s.push(0, "a", 2);
        assert!(s.start_now(0, &"b"));
        assert!(!s.start_now(0, &"c"), "the partition is at its bound");
        assert!(s.start_now(1, &"c"), "another partition has room");
        s.finished(&"a");
        assert!(
            !s.start_now(0, &"a"),
            "a's queued event goes before any new one of a"
        );
        assert_eq!(drain(&mut s), [("a", 2)]);
        s.finished(&"a");
        s.finished(&"b");
        s.finished(&"c");
        assert_eq!((s.running(), s.waiting()), (0, 0));
        assert!(s.start_now(0, &"a"));
    }

    #[test]
    fn the_bound_holds_per_partition_and_frees_up_as_events_finish() {
        let mut s = Schedule::new(2);
        for k in ["a", "b", "c", "d"] {
            s.push(0, k, 1);
        }
        assert_eq!(drain(&mut s), [("a", 1), ("b", 1)]);
        s.finished(&"a");
        assert_eq!(drain(&mut s), [("c", 1)]);
        s.finished(&"b");
        s.finished(&"c");
        assert_eq!(drain(&mut s), [("d", 1)]);
    }

    #[test]
    fn a_partition_whose_events_are_stuck_never_takes_another_partitions_places() {
        let mut s = Schedule::new(2);
        for k in ["s1", "s2", "s3", "s4"] {
            s.push(0, k, 1);
        }
        assert_eq!(drain(&mut s).len(), 2, "partition 0 fills its own places");
        for k in ["f1", "f2", "f3"] {
            s.push(1, k, 1);
        }
        assert_eq!(
            drain(&mut s),
            [("f1", 1), ("f2", 1)],
            "partition 1 has its own"
        );
        s.finished(&"f1");
        assert_eq!(drain(&mut s), [("f3", 1)]);
    }

    #[test]
    fn partitions_take_turns() {
        let mut s = Schedule::new(10);
        for k in ["a1", "a2", "a3"] {
            s.push(0, k, 0);
        }
        for k in ["b1", "b2", "b3"] {
            s.push(1, k, 1);
        }
        let order: Vec<&str> = drain(&mut s).into_iter().map(|(k, _)| k).collect();
        assert_eq!(order, ["a1", "b1", "a2", "b2", "a3", "b3"]);
    }

    #[test]
    fn an_event_pushed_while_its_key_runs_waits_for_it() {
        let mut s = Schedule::new(4);
        s.push(0, "a", 1);
        assert_eq!(drain(&mut s), [("a", 1)]);
        s.push(0, "a", 2);
        assert!(drain(&mut s).is_empty());
        s.finished(&"a");
        assert_eq!(drain(&mut s), [("a", 2)]);
    }

    #[test]
    fn waiting_events_of_revoked_partitions_are_dropped_running_ones_stay() {
        let mut s = Schedule::new(4);
        s.push(0, "a", 1);
        s.push(0, "a", 2);
        s.push(1, "b", 1);
        s.push(1, "b", 2);
        s.push(0, "c", 1);
        assert_eq!(drain(&mut s).len(), 3);
        let mut dropped = s.remove_waiting(|p| p == 0);
        dropped.sort();
        assert_eq!(dropped, [2]);
        assert_eq!((s.running(), s.waiting()), (3, 1));
        s.finished(&"a");
        assert!(drain(&mut s).is_empty(), "a's next event was dropped");
        s.finished(&"b");
        assert_eq!(drain(&mut s), [("b", 2)]);
    }
}
