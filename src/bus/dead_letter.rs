//! Dead letters and their replay, as headers: what a record carries when it goes to the
//! dead-letter topic, how a replay turns it back into an event, and the retry headers
//! eventsource-py's retry copies carry. Plain functions over a record's headers, shared by the bus
//! and the DLQ tools; byte for byte what eventsource-py 0.8 writes.
//!
//! A dead letter keeps the original key, value and headers (including `retry_count` and
//! `retry_after` when present) and appends, in order: `dlq_reason`, `dlq_error_type`,
//! `dlq_error_message` (cut to 1000 characters), `dlq_retry_count`, `dlq_timestamp`,
//! `dlq_original_topic`, `dlq_original_partition`, `dlq_original_offset`, `dlq_consumer_group`.
//!
//! A replay publishes the original key and value to the main topic with the dead letter's headers
//! minus every `dlq_*` and `retry_count` header (`retry_after` stays), then `retry_count=0` and
//! `dlq_replay_count=n+1`, where `n` is the dead letter's first `dlq_replay_count` (0 when absent
//! or unreadable). It is refused once `n` reaches the limit (`dlq_max_replay_attempts`, 3 by
//! default) unless forced.

use std::fmt;

use bytes::Bytes;
use kbus_client::protocol::record::Header;

use super::time::Timestamp;

/// How long `dlq_error_message` may be, in characters.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 1000;

/// Why a record went to the dead-letter topic (`dlq_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// Its handlers kept failing through every retry (`max_retries_exceeded`).
    MaxRetriesExceeded,
    /// It could not be read as an event (`deserialization_error`).
    DeserializationError,
}

impl DeadLetterReason {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::MaxRetriesExceeded => "max_retries_exceeded",
            DeadLetterReason::DeserializationError => "deserialization_error",
        }
    }
}

/// What the dead-letter headers say about a failure.
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    /// Why.
    pub reason: DeadLetterReason,
    /// The error's type name (`HandlerDispatchError` when several handlers failed).
    pub error_type: &'a str,
    /// The error's text (cut to [`MAX_ERROR_MESSAGE_CHARS`]).
    pub error_message: &'a str,
    /// Attempts made beyond the first (0 for a record that could not be read).
    pub retry_count: u32,
    /// When the record was given up.
    pub at: Timestamp,
    /// Where the record was read.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The consumer group that gave up.
    pub group: &'a str,
}

/// The headers of the dead letter of a record with `original` headers.
pub fn dead_letter_headers(original: &[Header], failure: &Failure<'_>) -> Vec<Header> {
    let message: String = failure
        .error_message
        .chars()
        .take(MAX_ERROR_MESSAGE_CHARS)
        .collect();
    let mut headers = original.to_vec();
    for (key, value) in [
        ("dlq_reason", failure.reason.as_str().to_string()),
        ("dlq_error_type", failure.error_type.to_string()),
        ("dlq_error_message", message),
        ("dlq_retry_count", failure.retry_count.to_string()),
        ("dlq_timestamp", failure.at.to_header_string()),
        ("dlq_original_topic", failure.topic.to_string()),
        ("dlq_original_partition", failure.partition.to_string()),
        ("dlq_original_offset", failure.offset.to_string()),
        ("dlq_consumer_group", failure.group.to_string()),
    ] {
        headers.push(text_header(key, value));
    }
    headers
}

/// A replay refused by the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRefused {
    /// Replays made before.
    pub replays: u32,
    /// The limit.
    pub max: u32,
}

impl fmt::Display for ReplayRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the record was replayed {} times already (limit {}); force the replay to do it anyway",
            self.replays, self.max
        )
    }
}

impl std::error::Error for ReplayRefused {}

/// The headers a replay of the dead letter with `headers` is published with, or the guard's
/// refusal: refused once the record was replayed `max_replays` times, unless `force`.
pub fn replay_headers(
    headers: &[Header],
    max_replays: u32,
    force: bool,
) -> Result<Vec<Header>, ReplayRefused> {
    let replays = first_number(headers, "dlq_replay_count").unwrap_or(0);
    if replays >= max_replays && !force {
        return Err(ReplayRefused {
            replays,
            max: max_replays,
        });
    }
    let mut out: Vec<Header> = headers
        .iter()
        .filter(|h| {
            let key = h.key.as_ref();
            !key.starts_with(b"dlq_") && key != b"retry_count"
        })
        .cloned()
        .collect();
    out.push(text_header("retry_count", "0".into()));
    out.push(text_header(
        "dlq_replay_count",
        replays.saturating_add(1).to_string(),
    ));
    Ok(out)
}

/// The attempts an eventsource-py retry copy says were made (its `retry_count` header), 0 for a
/// record without one.
pub fn retry_count(headers: &[Header]) -> u32 {
    first_number(headers, "retry_count").unwrap_or(0)
}

/// The first header named `key` read as a count; `None` when absent, null or not a number.
fn first_number(headers: &[Header], key: &str) -> Option<u32> {
    headers
        .iter()
        .find(|h| h.key.as_ref() == key.as_bytes())
        .and_then(|h| h.value_str())
        .and_then(|v| v.trim().parse::<u32>().ok())
}

fn text_header(key: &'static str, value: String) -> Header {
    Header {
        key: Bytes::from_static(key.as_bytes()),
        value: Some(Bytes::from(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../../tests/vectors/eventsource-vectors.json");

    fn headers_of(record: &Value) -> Vec<Header> {
        record["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                Header::new(
                    h[0].as_str().unwrap().to_string(),
                    Some(h[1].as_str().unwrap().to_string()),
                )
            })
            .collect()
    }

    fn pairs(headers: &[Header]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|h| {
                (
                    h.key_str().unwrap().to_string(),
                    h.value_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The vector's dead letter with the headers the consumed record had.
    fn python_dead_letter(v: &Value, name: &str) -> (Vec<Header>, Vec<Header>) {
        let dlq = headers_of(&v[name]);
        let original: Vec<Header> = dlq
            .iter()
            .take_while(|h| !h.key.starts_with(b"dlq_"))
            .cloned()
            .collect();
        (original, dlq)
    }

    #[test]
    fn dead_letters_carry_exactly_pythons_headers() {
        let v: Value = serde_json::from_str(VECTORS).unwrap();
        let (original, theirs) = python_dead_letter(&v, "dlq_max_retries_exceeded");
        let source = &v["dlq_max_retries_exceeded"]["source"];
        let ours = dead_letter_headers(
            &original,
            &Failure {
                reason: DeadLetterReason::MaxRetriesExceeded,
                error_type: "Boom",
                error_message: "inventory service unavailable: timeout after 5000 ms",
                retry_count: retry_count(&original),
                at: Timestamp::parse("2026-11-28T10:20:00.250000+00:00").unwrap(),
                topic: source["topic"].as_str().unwrap(),
                partition: source["partition"].as_i64().unwrap() as i32,
                offset: source["offset"].as_i64().unwrap(),
                group: "billing",
            },
        );
        assert_eq!(pairs(&ours), pairs(&theirs));

        let (original, theirs) = python_dead_letter(&v, "dlq_unknown_event_type");
        let ours = dead_letter_headers(
            &original,
            &Failure {
                reason: DeadLetterReason::DeserializationError,
                error_type: "DeserializationError",
                error_message: "Unknown event type: OrderCancelled",
                retry_count: 0,
                at: Timestamp::parse("2026-11-28T10:20:00.25Z").unwrap(),
                topic: "events.stream",
                partition: 4,
                offset: 1200,
                group: "billing",
            },
        );
        assert_eq!(pairs(&ours), pairs(&theirs));
    }

    #[test]
    fn error_messages_are_cut_to_a_thousand_characters_not_bytes() {
        let long = "é".repeat(1500);
        let headers = dead_letter_headers(
            &[],
            &Failure {
                reason: DeadLetterReason::MaxRetriesExceeded,
                error_type: "E",
                error_message: &long,
                retry_count: 3,
                at: Timestamp::from_unix_micros(0),
                topic: "t",
                partition: 0,
                offset: 0,
                group: "g",
            },
        );
        let message = headers[2].value_str().unwrap();
        assert_eq!(message.chars().count(), 1000);
        assert_eq!(message.len(), 2000);
    }

    #[test]
    fn a_replay_is_pythons_replay_and_the_guard_counts_replays() {
        let v: Value = serde_json::from_str(VECTORS).unwrap();
        let dead = headers_of(&v["dlq_max_retries_exceeded"]);
        let replay = replay_headers(&dead, 3, false).unwrap();
        assert_eq!(
            pairs(&replay),
            pairs(&headers_of(&v["replay_of_dlq_record"]))
        );

        // A record replayed, failed and dead-lettered again carries its replay count along.
        let mut again = replay.clone();
        for n in 2..=3 {
            again.push(text_header("dlq_reason", "max_retries_exceeded".into()));
            again = replay_headers(&again, 3, false).unwrap();
            assert_eq!(first_number(&again, "dlq_replay_count"), Some(n));
        }
        again.push(text_header("dlq_reason", "max_retries_exceeded".into()));
        let refused = replay_headers(&again, 3, false).unwrap_err();
        assert_eq!(refused, ReplayRefused { replays: 3, max: 3 });
        assert!(refused.to_string().contains("force"), "{refused}");
        let forced = replay_headers(&again, 3, true).unwrap();
        assert_eq!(first_number(&forced, "dlq_replay_count"), Some(4));
        assert_eq!(
            forced
                .iter()
                .filter(|h| h.key.as_ref() == b"dlq_replay_count")
                .count(),
            1,
            "never a header twice"
        );
    }

    #[test]
    fn unreadable_counts_are_zero() {
        let headers = vec![
            Header::new("dlq_replay_count", Some("many")),
            Header::new("retry_count", None::<Bytes>),
        ];
        assert_eq!(retry_count(&headers), 0);
        let replay = replay_headers(&headers, 3, false).unwrap();
        assert_eq!(first_number(&replay, "dlq_replay_count"), Some(1));
    }
}
