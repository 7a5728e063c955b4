//! Which events may run now: strictly in order within an aggregate (or within a partition, in the
//! strict mode), concurrently across aggregates — also within one partition — up to a bound.
//!
//! A plain value: the bus pushes events as they arrive, takes the ones that may start, and says
//! when one finished; the next event of that aggregate becomes startable then.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;

/// The events waiting and running, by ordering key.
#[derive(Debug)]
pub struct Schedule<K, T> {
    /// Waiting events by key (no empty queues).
    queues: HashMap<K, VecDeque<T>>,
    /// Keys with an event running.
    running: HashSet<K>,
    /// Keys not running with events waiting, in the order they became startable.
    ready: VecDeque<K>,
    max_running: usize,
    waiting: usize,
}

impl<K: Eq + Hash + Clone, T> Schedule<K, T> {
    /// A schedule running at most `max_running` events at once (at least one).
    pub fn new(max_running: usize) -> Self {
        Schedule {
            queues: HashMap::new(),
            running: HashSet::new(),
            ready: VecDeque::new(),
            max_running: max_running.max(1),
            waiting: 0,
        }
    }

    /// Queues `item` after the other events of `key`.
    pub fn push(&mut self, key: K, item: T) {
        let queue = self.queues.entry(key.clone()).or_default();
        queue.push_back(item);
        self.waiting += 1;
        if queue.len() == 1 && !self.running.contains(&key) {
            self.ready.push_back(key);
        }
    }

    /// The next event that may start now, if any; it runs until [`finished`](Self::finished) is
    /// called with its key.
    pub fn start_next(&mut self) -> Option<(K, T)> {
        if self.running.len() >= self.max_running {
            return None;
        }
        let key = self.ready.pop_front()?;
        let queue = self.queues.get_mut(&key)?;
        let item = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&key);
        }
        self.waiting -= 1;
        self.running.insert(key.clone());
        Some((key, item))
    }

    /// The running event of `key` finished: the key's next event may start.
    pub fn finished(&mut self, key: &K) {
        if self.running.remove(key) && self.queues.contains_key(key) {
            self.ready.push_back(key.clone());
        }
    }

    /// Drops the waiting events `drop` picks (a revoked partition's), returning them; running
    /// ones are not touched.
    pub fn remove_waiting(&mut self, mut drop: impl FnMut(&K, &T) -> bool) -> Vec<T> {
        let mut removed = Vec::new();
        self.queues.retain(|key, queue| {
            let mut kept = VecDeque::with_capacity(queue.len());
            for item in queue.drain(..) {
                if drop(key, &item) {
                    removed.push(item);
                } else {
                    kept.push_back(item);
                }
            }
            *queue = kept;
            !queue.is_empty()
        });
        self.waiting -= removed.len();
        let queues = &self.queues;
        self.ready.retain(|k| queues.contains_key(k));
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
            s.push(k, n);
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
        s.push("a", 4);
        assert_eq!(drain(&mut s), [("a", 4)]);
    }

    #[test]
    fn the_bound_holds_and_frees_up_as_events_finish() {
        let mut s = Schedule::new(2);
        for k in ["a", "b", "c", "d"] {
            s.push(k, 1);
        }
        assert_eq!(drain(&mut s), [("a", 1), ("b", 1)]);
        s.finished(&"a");
        assert_eq!(drain(&mut s), [("c", 1)]);
        s.finished(&"b");
        s.finished(&"c");
        assert_eq!(drain(&mut s), [("d", 1)]);
    }

    #[test]
    fn an_event_pushed_while_its_key_runs_waits_for_it() {
        let mut s = Schedule::new(4);
        s.push("a", 1);
        assert_eq!(drain(&mut s), [("a", 1)]);
        s.push("a", 2);
        assert!(drain(&mut s).is_empty());
        s.finished(&"a");
        assert_eq!(drain(&mut s), [("a", 2)]);
    }

    #[test]
    fn waiting_events_of_revoked_partitions_are_dropped_running_ones_stay() {
        let mut s = Schedule::new(4);
        for (k, n) in [
            ("p0-a", 1),
            ("p0-a", 2),
            ("p1-b", 1),
            ("p1-b", 2),
            ("p0-c", 1),
        ] {
            s.push(k, n);
        }
        assert_eq!(drain(&mut s).len(), 3);
        let dropped = s.remove_waiting(|k, _| k.starts_with("p0"));
        assert_eq!(dropped, [2]);
        assert_eq!((s.running(), s.waiting()), (3, 1));
        s.finished(&"p0-a");
        assert!(drain(&mut s).is_empty(), "p0-a's next event was dropped");
        s.finished(&"p1-b");
        assert_eq!(drain(&mut s), [("p1-b", 2)]);
    }
}
