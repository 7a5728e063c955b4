//! When a failure the client keeps retrying by itself is worth telling the application about.
//!
//! A single failed fetch or JoinGroup is routine (a leader moved, a broker restarted) and is
//! retried quietly. Failures in a row are not: the application hears of them (an
//! [`Event::Error`](crate::consumer::Event::Error) from `poll`, a WARN log line) once the streak
//! reaches [`REPORT_AFTER`] failures or has lasted [`REPORT_AFTER_TIME`], and again every
//! [`REPORT_EVERY`] while it goes on — as librdkafka's error callback hears of a cluster it cannot
//! reach. A plain value: the caller passes `now`.

use std::time::{Duration, Instant};

/// Failures in a row after which the streak is reported.
pub(crate) const REPORT_AFTER: u32 = 3;
/// How long a streak may last before it is reported, however few its failures (a request that
/// times out after 30 s fails rarely, but for a long time).
pub(crate) const REPORT_AFTER_TIME: Duration = Duration::from_secs(30);
/// How often a streak that goes on is reported again.
pub(crate) const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Failures of one kind of request since its last success.
#[derive(Debug, Clone, Default)]
pub(crate) struct FailureStreak {
    failures: u32,
    since: Option<Instant>,
    reported_at: Option<Instant>,
}

impl FailureStreak {
    /// Counts a failure at `now`; true when the application should hear of the streak now.
    pub fn failed(&mut self, now: Instant) -> bool {
        self.failures = self.failures.saturating_add(1);
        let since = *self.since.get_or_insert(now);
        let due = match self.reported_at {
            None => {
                self.failures >= REPORT_AFTER
                    || now.saturating_duration_since(since) >= REPORT_AFTER_TIME
            }
            Some(at) => now.saturating_duration_since(at) >= REPORT_EVERY,
        };
        if due {
            self.reported_at = Some(now);
        }
        due
    }

    /// Ends the streak after a success; true when it had been reported (worth saying it is over).
    pub fn succeeded(&mut self) -> bool {
        let reported = self.reported_at.is_some();
        *self = FailureStreak::default();
        reported
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_is_reported_at_the_third_failure_then_once_a_minute() {
        let t0 = Instant::now();
        let mut s = FailureStreak::default();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(!s.failed(at(0)));
        assert!(!s.failed(at(100)));
        assert!(s.failed(at(300)), "the third failure in a row is reported");
        assert!(!s.failed(at(700)));
        assert!(!s.failed(at(59_000)));
        assert!(s.failed(at(60_300)), "reported again a minute after");
        assert_eq!(s.failures(), 6);
    }

    #[test]
    fn a_long_streak_of_few_failures_is_reported_after_thirty_seconds() {
        let t0 = Instant::now();
        let mut s = FailureStreak::default();
        assert!(!s.failed(t0));
        assert!(s.failed(t0 + Duration::from_secs(31)));
    }

    #[test]
    fn a_success_ends_the_streak_and_says_whether_it_was_reported() {
        let t0 = Instant::now();
        let mut s = FailureStreak::default();
        s.failed(t0);
        s.failed(t0);
        assert!(!s.succeeded(), "an unreported streak ends quietly");
        s.failed(t0);
        s.failed(t0);
        assert!(
            s.failed(t0),
            "counted from the success, the third failure again"
        );
        assert!(s.succeeded(), "a reported streak's end is worth a word");
        assert_eq!(s.failures(), 0);
        assert!(!s.failed(t0), "a new streak starts from nothing");
    }
}
