//! Sleeping until a deadline with sub-millisecond precision, for `linger.ms`.
//!
//! tokio's timer works in whole milliseconds: a deadline is rounded up to the next tick, and the
//! runtime parks until that tick with a timeout that is itself rounded up, so a 5 ms linger ends
//! anywhere from 5 to about 7 ms after the batch opened. The producer's records then wait a
//! millisecond or more beyond what `linger.ms` promises, which librdkafka (condition variables
//! with microsecond timeouts) and the Java client (its own selector timeouts) do not do.
//!
//! This module keeps one thread for the whole process (started on first use) that sleeps until
//! the earliest registered deadline with the operating system's precision and wakes the tasks
//! whose deadlines passed. A [`Sleep`] registers itself when first polled and unregisters when
//! dropped (its place in the deadline heap is skipped when it comes due, and the heap is rebuilt
//! when such places outnumber the live ones), so what the timer holds stays proportional to the
//! sleeps that exist.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

#[derive(Default)]
struct Deadlines {
    /// Ordered by deadline; the sequence number keeps equal deadlines apart. Holds the ids of
    /// dropped sleeps too, until they come due or the heap is rebuilt.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The wakers of the sleeps that exist, by id.
    wakers: HashMap<u64, Waker>,
    next: u64,
}

struct Timer {
    deadlines: Mutex<Deadlines>,
    changed: Condvar,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            deadlines: Mutex::new(Deadlines::default()),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("kbus-timer".into())
            .spawn(move || timer.run())
            .expect("starting the timer thread");
        timer
    })
}

impl Timer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Deadlines> {
        self.deadlines.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        let mut due = Vec::new();
        let mut d = self.lock();
        loop {
            let now = Instant::now();
            while let Some(&Reverse((at, id))) = d.heap.peek() {
                if at > now {
                    break;
                }
                d.heap.pop();
                if let Some(waker) = d.wakers.remove(&id) {
                    due.push(waker);
                }
            }
            if !due.is_empty() {
                // Woken outside the lock: a waker may register again at once.
                drop(d);
                due.drain(..).for_each(Waker::wake);
                d = self.lock();
                continue;
            }
            d = match d.heap.peek() {
                Some(&Reverse((at, _))) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    self.changed
                        .wait_timeout(d, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.changed.wait(d).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    /// Registers `waker` for `at`; returns its id. Wakes the thread if `at` is the earliest.
    fn register(&self, at: Instant, waker: Waker) -> u64 {
        let mut d = self.lock();
        let id = d.next;
        d.next += 1;
        let earliest = d.heap.peek().is_none_or(|Reverse((first, _))| at < *first);
        d.heap.push(Reverse((at, id)));
        d.wakers.insert(id, waker);
        drop(d);
        if earliest {
            self.changed.notify_one();
        }
        id
    }

    /// Replaces the waker of entry `id` (a task polled from another context).
    fn update(&self, id: u64, waker: &Waker) {
        if let Some(known) = self.lock().wakers.get_mut(&id) {
            if !known.will_wake(waker) {
                *known = waker.clone();
            }
        }
    }

    /// Forgets entry `id`; rebuilds the heap once dropped entries are most of it.
    fn remove(&self, id: u64) {
        let mut d = self.lock();
        if d.wakers.remove(&id).is_some() && d.heap.len() > 64 && d.heap.len() > 4 * d.wakers.len()
        {
            let Deadlines { heap, wakers, .. } = &mut *d;
            heap.retain(|Reverse((_, id))| wakers.contains_key(id));
        }
    }
}

/// A future that completes at `deadline`, within the operating system's timer precision (tens
/// of microseconds) rather than tokio's millisecond.
pub(crate) struct Sleep {
    deadline: Instant,
    registered: Option<u64>,
}

/// Sleeps until `deadline`.
pub(crate) fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registered: None,
    }
}

impl Sleep {
    /// When it ends.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        match self.registered {
            Some(id) => timer().update(id, cx.waker()),
            None => self.registered = Some(timer().register(self.deadline, cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.registered {
            timer().remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_sleep_ends_at_its_deadline_not_before() {
        for micros in [0u64, 300, 1_500, 4_000] {
            let deadline = Instant::now() + Duration::from_micros(micros);
            sleep_until(deadline).await;
            assert!(Instant::now() >= deadline, "{micros} µs");
        }
    }

    #[tokio::test]
    async fn many_sleeps_in_any_order_all_end_and_dropped_ones_do_not_matter() {
        let start = Instant::now();
        // Dropped before their deadline: they must not disturb the others.
        for i in 0..100u64 {
            let mut dropped = Box::pin(sleep_until(start + Duration::from_micros(500 + i)));
            let _ = dropped
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()));
        }
        let mut tasks = Vec::new();
        for i in (0..50u64).rev() {
            let deadline = start + Duration::from_micros(200 * i);
            tasks.push(tokio::spawn(async move {
                sleep_until(deadline).await;
                Instant::now() >= deadline
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap());
        }
    }

    #[test]
    fn dropped_sleeps_leave_nothing_behind_however_far_their_deadlines() {
        let far = Instant::now() + Duration::from_secs(3600);
        let ids: Vec<u64> = (0..1000u32)
            .map(|i| {
                let mut sleep = Box::pin(sleep_until(far + Duration::from_micros(u64::from(i))));
                let _ = sleep.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                sleep.registered.expect("registered on first poll")
            })
            .collect();
        let d = timer().lock();
        assert!(ids.iter().all(|id| !d.wakers.contains_key(id)));
        // The heap was rebuilt along the way: it holds no more than a few times the live sleeps
        // (other tests' among them), not the thousand dropped ones.
        assert!(
            d.heap.len() <= 64.max(4 * d.wakers.len()) + 1,
            "{}",
            d.heap.len()
        );
    }
}
