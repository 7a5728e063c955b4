//! Decoding record batches: zero-copy over `Bytes`, CRC-checked, tolerant of a truncated last batch.

use bytes::{Buf, Bytes};

use super::{
    ControlRecord, Header, Record, TimestampType, ATTR_COMPRESSION_MASK, ATTR_CONTROL,
    ATTR_DELETE_HORIZON, ATTR_LOG_APPEND_TIME, ATTR_TRANSACTIONAL, BATCH_HEADER_SIZE, CRC_START,
    LOG_OVERHEAD, MAGIC,
};
use crate::compression::Compression;
use crate::error::{ProtocolError, Result};
use crate::primitives::varint;

/// Where the magic byte sits, in v2 batches and in the legacy message sets alike.
const MAGIC_OFFSET: usize = 16;

/// How batches are checked while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Verify each batch's CRC32C (Java's `check.crcs`, on by default).
    pub verify_crc: bool,
    /// The most bytes one batch's records may decompress to; more is an error.
    pub max_decompressed_size: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            verify_crc: true,
            max_decompressed_size: 128 * 1024 * 1024,
        }
    }
}

/// Iterates the record batches in a byte buffer, such as a Fetch response's `records`.
///
/// A Fetch response may end with a partial batch (the broker cuts at `max_bytes`); the iterator stops
/// before it without an error and [`truncated_tail`](Self::truncated_tail) reports it. A corrupt
/// batch yields one error and ends the iteration.
#[derive(Debug, Clone)]
pub struct BatchDecoder {
    data: Bytes,
    options: DecodeOptions,
    truncated: bool,
}

impl BatchDecoder {
    /// Decodes `data` with default options.
    pub fn new(data: Bytes) -> Self {
        Self::with_options(data, DecodeOptions::default())
    }

    /// Decodes `data` with `options`.
    pub fn with_options(data: Bytes, options: DecodeOptions) -> Self {
        BatchDecoder {
            data,
            options,
            truncated: false,
        }
    }

    /// True when iteration stopped at an incomplete last batch.
    pub fn truncated_tail(&self) -> bool {
        self.truncated
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let data = &self.data;
        if data.is_empty() {
            return Ok(None);
        }
        if data.len() < LOG_OVERHEAD {
            self.truncated = true;
            return Ok(None);
        }
        let base_offset = i64::from_be_bytes(data[0..8].try_into().unwrap_or_default());
        let batch_length = i32::from_be_bytes(data[8..12].try_into().unwrap_or_default());
        if let Some(&magic) = data.get(MAGIC_OFFSET) {
            if magic as i8 != MAGIC {
                return Err(ProtocolError::UnsupportedMagic(magic as i8));
            }
        }
        if batch_length < (BATCH_HEADER_SIZE - LOG_OVERHEAD) as i32 {
            return Err(ProtocolError::InvalidLength {
                what: "RecordBatch.batch_length",
                length: i64::from(batch_length),
            });
        }
        let size = LOG_OVERHEAD + batch_length as usize;
        if data.len() < size {
            self.truncated = true;
            return Ok(None);
        }
        let raw = self.data.split_to(size);
        RecordBatch::parse(raw, base_offset, &self.options).map(Some)
    }
}

impl Iterator for BatchDecoder {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_batch() {
            Ok(batch) => batch.map(Ok),
            Err(e) => {
                self.data = Bytes::new();
                Some(Err(e))
            }
        }
    }
}

/// One record batch: its header, and its (decompressed) records section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of the first record.
    pub base_offset: i64,
    /// The leader epoch the batch was appended in (-1 when written by a producer).
    pub partition_leader_epoch: i32,
    /// The attributes (codec, timestamp type, transactional and control bits).
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or the delete horizon, see [`Self::delete_horizon_ms`]).
    pub base_timestamp: i64,
    /// The largest timestamp in the batch.
    pub max_timestamp: i64,
    /// The producer id, -1 without idempotence.
    pub producer_id: i64,
    /// The producer epoch, -1 without idempotence.
    pub producer_epoch: i16,
    /// The sequence number of the first record, -1 without idempotence.
    pub base_sequence: i32,
    /// How many records the batch declares.
    pub record_count: i32,
    /// The whole batch's size on the wire, in bytes.
    pub size_in_bytes: usize,
    records: Bytes,
}

impl RecordBatch {
    fn parse(raw: Bytes, base_offset: i64, options: &DecodeOptions) -> Result<Self> {
        let size_in_bytes = raw.len();
        let mut h = &raw[LOG_OVERHEAD..BATCH_HEADER_SIZE];
        let partition_leader_epoch = h.get_i32();
        let _magic = h.get_i8();
        let crc = h.get_u32();
        if options.verify_crc {
            let computed = crc32c::crc32c(&raw[CRC_START..]);
            if computed != crc {
                return Err(ProtocolError::CrcMismatch {
                    expected: crc,
                    computed,
                    base_offset,
                });
            }
        }
        let attributes = h.get_i16();
        let last_offset_delta = h.get_i32();
        let base_timestamp = h.get_i64();
        let max_timestamp = h.get_i64();
        let producer_id = h.get_i64();
        let producer_epoch = h.get_i16();
        let base_sequence = h.get_i32();
        let record_count = h.get_i32();
        if record_count < 0 {
            return Err(ProtocolError::InvalidLength {
                what: "RecordBatch.record_count",
                length: i64::from(record_count),
            });
        }
        let body = raw.slice(BATCH_HEADER_SIZE..);
        let codec = Compression::from_id((attributes & ATTR_COMPRESSION_MASK) as u8)?;
        let records = if codec == Compression::None {
            body
        } else {
            codec.decompress(&body, options.max_decompressed_size)?
        };
        // Every record takes at least 7 bytes; a larger count cannot be honest.
        if record_count as usize > records.len() / 7 + 1 {
            return Err(ProtocolError::InvalidLength {
                what: "RecordBatch.record_count",
                length: i64::from(record_count),
            });
        }
        Ok(RecordBatch {
            base_offset,
            partition_leader_epoch,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            record_count,
            size_in_bytes,
            records,
        })
    }

    /// The codec the batch was compressed with.
    pub fn compression(&self) -> Compression {
        Compression::from_id((self.attributes & ATTR_COMPRESSION_MASK) as u8)
            .unwrap_or(Compression::None)
    }

    /// How the batch's timestamps were set.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & ATTR_LOG_APPEND_TIME != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// True when the batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// True when the batch holds control records (transaction markers), which applications never see.
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// The delete horizon of a compacted batch, if set.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// The offset after this batch: where the next fetch continues.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// The records section, decompressed.
    pub fn records_bytes(&self) -> &Bytes {
        &self.records
    }

    /// The records, decoded one at a time without copying their payloads.
    pub fn records(&self) -> Records<'_> {
        Records {
            batch: self,
            pos: 0,
            left: self.record_count,
        }
    }

    /// For a control batch, its marker (taken from its first record).
    pub fn control_record(&self) -> Option<Result<ControlRecord>> {
        if !self.is_control() {
            return None;
        }
        Some(
            self.records()
                .next()?
                .and_then(|r| ControlRecord::parse(r.key.as_deref(), r.value.as_deref())),
        )
    }
}

/// The records of one batch; yields an error (and then stops) on a malformed record.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    batch: &'a RecordBatch,
    pos: usize,
    left: i32,
}

/// Reads a zigzag varint from the front of `rest` and advances past it.
#[inline(always)]
fn varint(rest: &mut &[u8], what: &'static str) -> Result<i32> {
    let (v, n) = varint::read_i32(rest, what)?;
    *rest = &rest[n..];
    Ok(v)
}

/// Reads a varint length and the bytes it announces from the front of `rest` (-1 means null).
/// `rest` ends at offset `end` of the records section; the range returned is within the section.
#[inline(always)]
fn length_prefixed(
    rest: &mut &[u8],
    end: usize,
    what: &'static str,
) -> Result<Option<std::ops::Range<usize>>> {
    let len = varint(rest, what)?;
    if len == -1 {
        return Ok(None);
    }
    let Some(tail) = usize::try_from(len).ok().and_then(|n| rest.get(n..)) else {
        return Err(ProtocolError::InvalidLength {
            what,
            length: i64::from(len),
        });
    };
    let start = end - rest.len();
    let range = start..start + len as usize;
    *rest = tail;
    Ok(Some(range))
}

impl Records<'_> {
    #[inline]
    fn parse_one(&mut self) -> Result<Record> {
        let batch = self.batch;
        let bytes = &batch.records;
        let all: &[u8] = bytes;
        let total = all.len();
        let mut rest = &all[self.pos.min(total)..];
        let len = varint(&mut rest, "Record.length")?;
        // Everything below reads within the record: `rest` is cut at its end so no field runs over.
        let Some(record) = usize::try_from(len).ok().and_then(|n| rest.get(..n)) else {
            return Err(ProtocolError::InvalidLength {
                what: "Record.length",
                length: i64::from(len),
            });
        };
        let end = total - rest.len() + record.len();
        let mut rest = record;
        // Record attributes: one byte, unused in format v2.
        let Some((_, tail)) = rest.split_first() else {
            return Err(ProtocolError::truncated("Record.attributes", 1, 0));
        };
        rest = tail;
        let (ts_delta, n) = varint::read_i64(rest, "Record.timestamp_delta")?;
        rest = &rest[n..];
        let offset_delta = varint(&mut rest, "Record.offset_delta")?;
        let key = length_prefixed(&mut rest, end, "Record.key")?;
        let value = length_prefixed(&mut rest, end, "Record.value")?;
        let header_count = varint(&mut rest, "Record.headers")?;
        let headers = if header_count == 0 {
            Vec::new()
        } else {
            if header_count < 0 || header_count as usize > rest.len() / 2 {
                return Err(ProtocolError::InvalidLength {
                    what: "Record.headers",
                    length: i64::from(header_count),
                });
            }
            let mut headers = Vec::with_capacity((header_count as usize).min(64));
            for _ in 0..header_count {
                let key = length_prefixed(&mut rest, end, "Record.headers.key")?.ok_or(
                    ProtocolError::UnexpectedNull {
                        what: "Record.headers.key",
                    },
                )?;
                let value = length_prefixed(&mut rest, end, "Record.headers.value")?;
                headers.push(Header {
                    key: bytes.slice(key),
                    value: value.map(|r| bytes.slice(r)),
                });
            }
            headers
        };
        if !rest.is_empty() {
            return Err(ProtocolError::TrailingBytes {
                what: "Record",
                remaining: rest.len(),
            });
        }
        self.pos = end;
        let timestamp = if batch.attributes & ATTR_LOG_APPEND_TIME != 0 {
            batch.max_timestamp
        } else {
            batch.base_timestamp.wrapping_add(ts_delta)
        };
        Ok(Record {
            offset: batch.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp,
            key: key.map(|r| bytes.slice(r)),
            value: value.map(|r| bytes.slice(r)),
            headers,
        })
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left <= 0 {
            if self.left == 0 && self.pos != self.batch.records.len() {
                self.left = -1;
                return Some(Err(ProtocolError::TrailingBytes {
                    what: "RecordBatch records",
                    remaining: self.batch.records.len() - self.pos,
                }));
            }
            return None;
        }
        self.left -= 1;
        match self.parse_one() {
            Ok(r) => Some(Ok(r)),
            Err(e) => {
                self.left = -1;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.left.max(0) as usize;
        (0, Some(n + 1))
    }
}
