//! Record batches, message format v2 (magic 2).
//!
//! ```text
//! base_offset i64 | batch_length i32 | partition_leader_epoch i32 | magic i8 = 2 | crc u32 |
//! attributes i16 | last_offset_delta i32 | base_timestamp i64 | max_timestamp i64 |
//! producer_id i64 | producer_epoch i16 | base_sequence i32 | record_count i32 | records...
//! ```
//! The CRC is a CRC32C over everything from `attributes` to the end of the batch. Records are
//! varint-framed and, when the batch is compressed, the whole records section is compressed as one.
//!
//! - [`RecordBatchBuilder`] writes a batch (plain or compressed) into one buffer.
//! - [`BatchDecoder`] walks the batches of a Fetch response's `records` bytes without copying payloads,
//!   verifies each CRC, stops quietly at the truncated batch a Fetch may end with, and bounds
//!   decompression. [`RecordBatch::records`] then yields each [`Record`] with zero-copy key, value and
//!   headers.

mod batch;
mod builder;
mod control;

pub use batch::{BatchDecoder, DecodeOptions, RecordBatch, Records};
pub use builder::{restamp_producer, RecordBatchBuilder};
pub use control::{ControlRecord, ControlRecordType};

use bytes::Bytes;

/// Bytes of the batch header, up to and including the record count.
pub const BATCH_HEADER_SIZE: usize = 61;
/// Offset of the batch length field's end: `base_offset` + `batch_length`.
pub const LOG_OVERHEAD: usize = 12;
/// Where the CRC-covered part of a batch starts (the `attributes` field).
pub const CRC_START: usize = 21;
/// The message format version this module reads and writes.
pub const MAGIC: i8 = 2;

/// Attribute bit: timestamps are log-append times set by the broker.
pub const ATTR_LOG_APPEND_TIME: i16 = 1 << 3;
/// Attribute bit: the batch belongs to a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 1 << 4;
/// Attribute bit: the batch holds control records (transaction markers).
pub const ATTR_CONTROL: i16 = 1 << 5;
/// Attribute bit: the batch carries a delete horizon in its base timestamp (compacted topics).
pub const ATTR_DELETE_HORIZON: i16 = 1 << 6;
/// Mask of the compression codec in the attributes.
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;

/// How a batch's timestamps were set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// By the producer.
    #[default]
    CreateTime,
    /// By the broker when it appended the batch.
    LogAppendTime,
}

/// A record header: a key and an optional value, both kept as the raw bytes from the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// The header key (Kafka clients write UTF-8).
    pub key: Bytes,
    /// The header value, `None` for a null value.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header from a key and value.
    pub fn new(key: impl Into<Bytes>, value: Option<impl Into<Bytes>>) -> Self {
        Header {
            key: key.into(),
            value: value.map(Into::into),
        }
    }

    /// The key as text, if it is UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }

    /// The value as text, if present and UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        self.value
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// One record, with its absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's timestamp in milliseconds since the epoch (see the batch's timestamp type).
    pub timestamp: i64,
    /// The key, `None` for a null key. Shares memory with the fetched or decompressed buffer.
    pub key: Option<Bytes>,
    /// The value, `None` for a null value (a tombstone). Shares memory like the key.
    pub value: Option<Bytes>,
    /// The headers, in wire order.
    pub headers: Vec<Header>,
}
