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
//! dropped; a dropped sleep's entry is discarded when it comes due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// A registered deadline: the waker to call, and whether its sleep still wants it.
struct Entry {
    waker: Waker,
    live: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Default)]
struct Deadlines {
    /// Ordered by deadline; the sequence number keeps equal deadlines apart.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    entries: std::collections::HashMap<u64, Entry>,
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
                if let Some(entry) = d.entries.remove(&id) {
                    if entry.live.load(std::sync::atomic::Ordering::Acquire) {
                        due.push(entry.waker);
                    }
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
    fn register(&self, at: Instant, waker: Waker, live: Arc<std::sync::atomic::AtomicBool>) -> u64 {
        let mut d = self.lock();
        let id = d.next;
        d.next += 1;
        let earliest = d.heap.peek().is_none_or(|Reverse((first, _))| at < *first);
        d.heap.push(Reverse((at, id)));
        d.entries.insert(id, Entry { waker, live });
        drop(d);
        if earliest {
            self.changed.notify_one();
        }
        id
    }

    /// Replaces the waker of entry `id` (a task polled from another context).
    fn update(&self, id: u64, waker: &Waker) {
        if let Some(entry) = self.lock().entries.get_mut(&id) {
            if !entry.waker.will_wake(waker) {
                entry.waker = waker.clone();
            }
        }
    }
}

/// A future that completes at `deadline`, within the operating system's timer precision (tens
/// of microseconds) rather than tokio's millisecond.
pub(crate) struct Sleep {
    deadline: Instant,
    registered: Option<(u64, Arc<std::sync::atomic::AtomicBool>)>,
}

/// Sleeps until `deadline`.
pub(crate) fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registered: None,
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        match &self.registered {
            Some((id, _)) => timer().update(*id, cx.waker()),
            None => {
                let live = Arc::new(std::sync::atomic::AtomicBool::new(true));
                let id = timer().register(self.deadline, cx.waker().clone(), live.clone());
                self.registered = Some((id, live));
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((_, live)) = &self.registered {
            // The entry stays until its deadline (removing it from the heap would cost a search);
            // it wakes nobody then.
            live.store(false, std::sync::atomic::Ordering::Release);
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
            let waker = futures_noop_waker();
            let _ = dropped.as_mut().poll(&mut Context::from_waker(&waker));
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

    fn futures_noop_waker() -> Waker {
        Waker::noop().clone()
    }
}
