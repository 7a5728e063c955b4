//! What [`poll`](super::Consumer::poll) hands out: records, grouped by partition.

use std::sync::Arc;

use bytes::Bytes;

pub use kbus_protocol::record::{Header, TimestampType};

use crate::TopicPartition;

/// One consumed record.
///
/// Key, value and header bytes are slices of the buffer the broker's answer was read into (or of the
/// decompressed records of a compressed batch): nothing is copied, and the buffer is freed when the
/// last slice of it is dropped. Keeping a few records alive for long keeps their whole buffer alive;
/// copy them (`Bytes::copy_from_slice`) to avoid that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic (shared by every record of the partition).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Milliseconds since the epoch; what kind of time is told by `timestamp_type`.
    pub timestamp: i64,
    /// Whether the producer or the broker set the timestamp.
    pub timestamp_type: TimestampType,
    /// The key, `None` for a null key.
    pub key: Option<Bytes>,
    /// The value, `None` for a null value (a tombstone).
    pub value: Option<Bytes>,
    /// The headers, in the order the producer wrote them.
    pub headers: Vec<Header>,
}

/// Consecutive records of one partition, in offset order, from one fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecords {
    /// The partition.
    pub topic_partition: TopicPartition,
    /// The records; never empty.
    pub records: Vec<ConsumerRecord>,
    /// The partition's high watermark when these records were fetched: the offset after the last
    /// fully replicated record. `high_watermark - (last offset + 1)` is how far the consumer lags.
    pub high_watermark: i64,
    /// The last stable offset when fetched (-1 when the broker did not say): under
    /// `read_committed`, records are returned up to here.
    pub last_stable_offset: i64,
    /// The partition's log start offset when fetched (-1 when the broker did not say).
    pub log_start_offset: i64,
    /// The offset to continue from after these records (the last record's offset + 1, or further
    /// when transaction markers or aborted records follow): the partition's
    /// [`position`](super::Consumer::position) once these records are returned.
    pub next_offset: i64,
}

impl PartitionRecords {
    /// The offset of the last record.
    pub fn last_offset(&self) -> Option<i64> {
        self.records.last().map(|r| r.offset)
    }
}
