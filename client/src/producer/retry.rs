//! What becomes of a sent batch that came back failed: sent again after the backoff, or failed
//! for good; and whether the idempotent producer must bump its epoch because the partition's
//! sequence numbers cannot go on. A pure function of the batch, the error, the settings and
//! `now`; the sender loop carries the decision out.

use std::time::Instant;

use kbus_protocol::error_code::ErrorCode;

use super::config::ProducerConfig;
use crate::error::Error;

/// The facts about a batch the decision needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt {
    /// The idempotent sequence of its first record, once it was sent with one.
    pub base_sequence: Option<i32>,
    /// How many times it was sent.
    pub attempts: u32,
    /// When its first record was appended (`delivery.timeout.ms` runs from here).
    pub created: Instant,
    /// Batches of the same partition before it are not acknowledged yet.
    pub earlier_unacked: bool,
}

/// The batch's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Send it again at this time.
    Retry { at: Instant },
    /// It failed for good. `timed_out`: a retry could have helped, but `delivery.timeout.ms` or
    /// `retries` ran out (the delivery error says so).
    Fail { timed_out: bool },
}

/// The decision about a failed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    pub fate: Fate,
    /// The partition's sequences cannot continue: bump the producer epoch before sending more.
    pub bump_epoch: bool,
}

/// Decides what happens to a batch that failed with `error` at `now`.
///
/// - OUT_OF_ORDER_SEQUENCE_NUMBER while earlier batches of the partition are unacknowledged means
///   "wait for them": retried, nothing lost.
/// - The broker not knowing the producer (UNKNOWN_PRODUCER_ID: its state expired), refusing its
///   epoch, or expecting another sequence with nothing of ours before the batch: numbering cannot
///   go on — retried under the next epoch.
/// - Other errors are retried when retriable, within `retries` and before the delivery deadline.
/// - A batch that held sequence numbers and fails for good leaves a gap (or, if it was written
///   after all, used numbers): later batches cannot follow it, so the epoch is bumped.
pub(crate) fn decide(
    attempt: Attempt,
    error: &Error,
    config: &ProducerConfig,
    now: Instant,
) -> Decision {
    let code = match error {
        Error::Broker { code, .. } => Some(*code),
        _ => None,
    };
    let sequenced = attempt.base_sequence.is_some();
    let out_of_order = code == Some(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER);
    let waiting_for_earlier = sequenced && out_of_order && attempt.earlier_unacked;
    let sequence_lost = sequenced
        && !waiting_for_earlier
        && matches!(
            code,
            Some(
                ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
                    | ErrorCode::UNKNOWN_PRODUCER_ID
                    | ErrorCode::INVALID_PRODUCER_EPOCH
            )
        );
    let retriable = error.is_retriable() || waiting_for_earlier || sequence_lost;
    let at = now + config.retry_backoff;
    let deadline = attempt.created + config.delivery_timeout;
    if retriable && attempt.attempts <= config.retries && at < deadline {
        return Decision {
            fate: Fate::Retry { at },
            bump_epoch: sequence_lost,
        };
    }
    Decision {
        fate: Fate::Fail {
            timed_out: retriable,
        },
        bump_epoch: sequenced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbus_protocol::ApiKey;
    use std::time::Duration;

    fn broker(code: ErrorCode) -> Error {
        Error::Broker {
            broker: "b:9092".into(),
            api: ApiKey::Produce,
            code,
            message: None,
        }
    }

    fn attempt(now: Instant, sequenced: bool, earlier_unacked: bool) -> Attempt {
        Attempt {
            base_sequence: sequenced.then_some(10),
            attempts: 1,
            created: now,
            earlier_unacked,
        }
    }

    #[test]
    fn retriable_errors_are_retried_after_the_backoff() {
        let config = ProducerConfig::default();
        let now = Instant::now();
        let d = decide(
            attempt(now, true, false),
            &broker(ErrorCode::NOT_LEADER_OR_FOLLOWER),
            &config,
            now,
        );
        assert_eq!(
            d,
            Decision {
                fate: Fate::Retry {
                    at: now + config.retry_backoff
                },
                bump_epoch: false
            }
        );
        let gone = Error::Disconnected {
            broker: "b:9092".into(),
        };
        assert!(matches!(
            decide(attempt(now, false, false), &gone, &config, now).fate,
            Fate::Retry { .. }
        ));
    }

    #[test]
    fn out_of_order_waits_for_earlier_batches_or_bumps_the_epoch() {
        let config = ProducerConfig::default();
        let now = Instant::now();
        let e = broker(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER);
        let waiting = decide(attempt(now, true, true), &e, &config, now);
        assert!(matches!(waiting.fate, Fate::Retry { .. }) && !waiting.bump_epoch);
        let lost = decide(attempt(now, true, false), &e, &config, now);
        assert!(matches!(lost.fate, Fate::Retry { .. }) && lost.bump_epoch);
        for code in [
            ErrorCode::UNKNOWN_PRODUCER_ID,
            ErrorCode::INVALID_PRODUCER_EPOCH,
        ] {
            let d = decide(attempt(now, true, false), &broker(code), &config, now);
            assert!(
                matches!(d.fate, Fate::Retry { .. }) && d.bump_epoch,
                "{code:?}"
            );
        }
        // Without idempotence these are not the producer's to fix.
        let plain = decide(attempt(now, false, false), &e, &config, now);
        assert_eq!(plain.fate, Fate::Fail { timed_out: false });
        assert!(!plain.bump_epoch);
    }

    #[test]
    fn failing_for_good_bumps_the_epoch_of_a_sequenced_batch() {
        let config = ProducerConfig::default();
        let now = Instant::now();
        let too_large = broker(ErrorCode::MESSAGE_TOO_LARGE);
        let d = decide(attempt(now, true, false), &too_large, &config, now);
        assert_eq!(
            d,
            Decision {
                fate: Fate::Fail { timed_out: false },
                bump_epoch: true
            }
        );
        assert!(!decide(attempt(now, false, false), &too_large, &config, now).bump_epoch);
    }

    #[test]
    fn the_delivery_deadline_and_retries_end_retrying() {
        let config = ProducerConfig {
            delivery_timeout: Duration::from_secs(2),
            retries: 3,
            ..Default::default()
        };
        let start = Instant::now();
        let e = broker(ErrorCode::REQUEST_TIMED_OUT);
        let late = decide(
            attempt(start, true, false),
            &e,
            &config,
            start + Duration::from_secs(2),
        );
        assert_eq!(late.fate, Fate::Fail { timed_out: true });
        assert!(late.bump_epoch);
        let tried = Attempt {
            attempts: 4,
            ..attempt(start, false, false)
        };
        assert_eq!(
            decide(tried, &e, &config, start).fate,
            Fate::Fail { timed_out: true }
        );
    }
}
