//! Building record batches.

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    Header, TimestampType, ATTR_CONTROL, ATTR_LOG_APPEND_TIME, ATTR_TRANSACTIONAL,
    BATCH_HEADER_SIZE, CRC_START, LOG_OVERHEAD, MAGIC,
};
use crate::compression::Compression;
use crate::error::{ProtocolError, Result};
use crate::primitives::varint;

/// Builds one record batch (message format v2).
///
/// Records are encoded as they are pushed, straight into the buffer the batch will be sent from, after
/// room left for the header; [`build`](Self::build) fills the header in (and compresses the records
/// section first when a codec is set). An uncompressed batch is therefore never copied.
///
/// The buffer is zero-filled ahead of the write position in steps of a few KiB, so a push writes
/// into bytes that already exist (one bounds check, no per-record growth or fill).
///
/// ```
/// use kbus_protocol::record::{BatchDecoder, RecordBatchBuilder};
/// use kbus_protocol::compression::Compression;
///
/// let mut b = RecordBatchBuilder::new(Compression::Gzip);
/// b.push(1_700_000_000_000, Some(b"key"), Some(b"value"), &[]).unwrap();
/// let batch = b.build().unwrap();
/// let decoded = BatchDecoder::new(batch).next().unwrap().unwrap();
/// let record = decoded.records().next().unwrap().unwrap();
/// assert_eq!(record.value.as_deref(), Some(&b"value"[..]));
/// ```
#[derive(Debug)]
pub struct RecordBatchBuilder {
    /// Zero-filled ahead of `end`; bytes past `end` are not part of the batch yet.
    buf: BytesMut,
    /// Where the next record goes: the batch's length so far.
    end: usize,
    compression: Compression,
    /// The codec's level (gzip only), `None` for its default.
    level: Option<u32>,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    attributes: i16,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    count: i32,
    last_offset_delta: i32,
}

impl RecordBatchBuilder {
    /// A builder for a batch compressed with `compression` (Compression::None for none).
    pub fn new(compression: Compression) -> Self {
        Self::with_capacity(compression, 16 * 1024)
    }

    /// Like [`new`](Self::new), reserving `capacity` bytes for the records.
    pub fn with_capacity(compression: Compression, capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(BATCH_HEADER_SIZE + capacity);
        buf.put_bytes(0, BATCH_HEADER_SIZE);
        RecordBatchBuilder {
            buf,
            end: BATCH_HEADER_SIZE,
            compression,
            level: None,
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: 0,
            base_timestamp: None,
            max_timestamp: -1,
            count: 0,
            last_offset_delta: -1,
        }
    }

    /// Sets the codec's level (gzip: 1 to 9; the other codecs have none here); `None`, the
    /// default, is the codec's default level. A level out of range fails [`build`](Self::build).
    pub fn level(mut self, level: Option<u32>) -> Self {
        self.level = level;
        self
    }

    /// Sets the base offset (producers leave it 0; the broker assigns offsets).
    pub fn base_offset(mut self, offset: i64) -> Self {
        self.base_offset = offset;
        self
    }

    /// Sets the partition leader epoch (brokers set it; producers leave -1).
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Sets the idempotent producer identity and the sequence number of the first record.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of a transaction.
    pub fn transactional(mut self, on: bool) -> Self {
        self.set_flag(ATTR_TRANSACTIONAL, on);
        self
    }

    /// Marks the batch as holding control records.
    pub fn control(mut self, on: bool) -> Self {
        self.set_flag(ATTR_CONTROL, on);
        self
    }

    /// Sets how the timestamps are to be read.
    pub fn timestamp_type(mut self, t: TimestampType) -> Self {
        self.set_flag(ATTR_LOG_APPEND_TIME, t == TimestampType::LogAppendTime);
        self
    }

    fn set_flag(&mut self, flag: i16, on: bool) {
        if on {
            self.attributes |= flag;
        } else {
            self.attributes &= !flag;
        }
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True before the first record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the batch takes so far, before compression (header included).
    pub fn size_in_bytes(&self) -> usize {
        self.end
    }

    /// The number of bytes a record with these parts adds to the batch (before compression).
    pub fn estimate_record_size(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let body = record_body_len(i64::MAX, i32::MAX, key, value, headers);
        varint::len_i32(body as i32) + body
    }

    /// Appends a record with the next offset.
    #[inline]
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<()> {
        let delta = self.last_offset_delta.wrapping_add(1);
        self.push_with_offset_delta(delta, timestamp, key, value, headers)
    }

    /// Appends a record at `offset_delta` from the base offset (deltas must increase; compacted
    /// batches written by brokers have gaps).
    #[inline]
    pub fn push_with_offset_delta(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<()> {
        if offset_delta <= self.last_offset_delta {
            return Err(ProtocolError::InvalidValue {
                what: "Record.offset_delta",
                value: i64::from(offset_delta),
            });
        }
        let base = *self.base_timestamp.get_or_insert(timestamp);
        let ts_delta = timestamp.wrapping_sub(base);
        let body = record_body_len(ts_delta, offset_delta, key, value, headers);
        let body_i32 = i32::try_from(body).map_err(|_| ProtocolError::TooLong {
            what: "Record",
            length: body,
        })?;
        // The record is written in place, into zero-filled room ahead of `end`: the varints byte by
        // byte, key, value and headers copied in.
        let start = self.end;
        let stop = start + varint::len_i32(body_i32) + body;
        if stop > self.buf.len() {
            self.make_room(stop);
        }
        let out = &mut self.buf[start..stop];
        let mut p = put_varint_at(out, 0, zigzag32(body_i32));
        p += 1; // record attributes: unused in v2, left zero
        p = put_varint_at(out, p, zigzag64(ts_delta));
        p = put_varint_at(out, p, zigzag32(offset_delta));
        p = put_bytes_at(out, p, key);
        p = put_bytes_at(out, p, value);
        p = put_varint_at(out, p, zigzag32(headers.len() as i32));
        for h in headers {
            p = put_bytes_at(out, p, Some(&h.key));
            p = put_bytes_at(out, p, h.value.as_deref());
        }
        debug_assert_eq!(p, stop - start);
        self.end = stop;
        self.count += 1;
        self.last_offset_delta = offset_delta;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        Ok(())
    }

    /// Zero-fills the buffer up to at least `stop`: a few KiB ahead, within the reserved capacity
    /// while the batch fits it, doubling past it.
    #[cold]
    fn make_room(&mut self, stop: usize) {
        const STEP: usize = 8 * 1024;
        let len = self.buf.len();
        let cap = self.buf.capacity();
        let new_len = if stop <= cap {
            (len + STEP).clamp(stop, cap)
        } else {
            stop.max(len * 2)
        };
        self.buf.resize(new_len, 0);
    }

    /// Finishes the batch: compresses the records if asked, writes the header and the CRC.
    pub fn build(self) -> Result<Bytes> {
        let RecordBatchBuilder {
            mut buf,
            end,
            compression,
            level,
            ..
        } = self;
        buf.truncate(end);
        if compression != Compression::None {
            let mut out = BytesMut::with_capacity(BATCH_HEADER_SIZE + buf.len() / 2);
            out.put_bytes(0, BATCH_HEADER_SIZE);
            compression.compress_at(&buf[BATCH_HEADER_SIZE..], &mut out, level)?;
            buf = out;
        }
        let batch_length = buf.len() - LOG_OVERHEAD;
        let batch_length = i32::try_from(batch_length).map_err(|_| ProtocolError::TooLong {
            what: "RecordBatch",
            length: batch_length,
        })?;
        let base_timestamp = self.base_timestamp.unwrap_or(-1);
        let mut h = &mut buf[..BATCH_HEADER_SIZE];
        h.put_i64(self.base_offset);
        h.put_i32(batch_length);
        h.put_i32(self.partition_leader_epoch);
        h.put_i8(MAGIC);
        h.put_u32(0); // CRC, filled below
        h.put_i16(self.attributes | i16::from(compression.id()));
        h.put_i32(self.last_offset_delta.max(0));
        h.put_i64(base_timestamp);
        h.put_i64(self.max_timestamp.max(base_timestamp));
        h.put_i64(self.producer_id);
        h.put_i16(self.producer_epoch);
        h.put_i32(self.base_sequence);
        h.put_i32(self.count);
        let crc = crc32c::crc32c(&buf[CRC_START..]);
        buf[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
        Ok(buf.freeze())
    }
}

/// Where the producer id starts in a batch header; the epoch and base sequence follow it.
const PRODUCER_ID_OFFSET: usize = 43;

/// A copy of the encoded `batch` with its producer id, epoch and base sequence replaced and its CRC
/// recomputed: what an idempotent producer resends after bumping its epoch (KIP-360), when every
/// unacknowledged batch is numbered again from sequence 0. The records are not re-encoded.
///
/// ```
/// use kbus_protocol::compression::Compression;
/// use kbus_protocol::record::{restamp_producer, BatchDecoder, RecordBatchBuilder};
///
/// let mut b = RecordBatchBuilder::new(Compression::None).producer(7, 0, 40);
/// b.push(1, None, Some(b"v"), &[]).unwrap();
/// let again = restamp_producer(&b.build().unwrap(), 7, 1, 0).unwrap();
/// let batch = BatchDecoder::new(again).next().unwrap().unwrap(); // the CRC checks out
/// assert_eq!((batch.producer_epoch, batch.base_sequence), (1, 0));
/// ```
pub fn restamp_producer(
    batch: &[u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<Bytes> {
    if batch.len() < BATCH_HEADER_SIZE {
        return Err(ProtocolError::Truncated {
            what: "RecordBatch header",
            needed: BATCH_HEADER_SIZE,
            remaining: batch.len(),
        });
    }
    if batch[16] as i8 != MAGIC {
        return Err(ProtocolError::InvalidValue {
            what: "RecordBatch magic",
            value: i64::from(batch[16] as i8),
        });
    }
    let mut out = BytesMut::from(batch);
    let mut fields = &mut out[PRODUCER_ID_OFFSET..BATCH_HEADER_SIZE - 4];
    fields.put_i64(producer_id);
    fields.put_i16(producer_epoch);
    fields.put_i32(base_sequence);
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}

#[inline(always)]
fn varint_bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint::len_i32(b.len() as i32) + b.len(),
    }
}

#[inline(always)]
fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

#[inline(always)]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Writes an unsigned varint into `out` at `pos`, returning the position after it. The caller
/// sized `out` with the same length functions, so every index is in bounds.
#[inline(always)]
fn put_varint_at(out: &mut [u8], mut pos: usize, mut v: u64) -> usize {
    // One and two bytes cover nearly every length and delta in a batch.
    if v < 0x80 {
        out[pos] = v as u8;
        return pos + 1;
    }
    if v < 0x4000 {
        out[pos] = (v as u8) | 0x80;
        out[pos + 1] = (v >> 7) as u8;
        return pos + 2;
    }
    while v >= 0x80 {
        out[pos] = (v as u8) | 0x80;
        v >>= 7;
        pos += 1;
    }
    out[pos] = v as u8;
    pos + 1
}

/// Writes `b` with its varint length (-1 for `None`) at `pos`.
#[inline(always)]
fn put_bytes_at(out: &mut [u8], pos: usize, b: Option<&[u8]>) -> usize {
    match b {
        None => put_varint_at(out, pos, zigzag32(-1)),
        Some(b) => {
            let p = put_varint_at(out, pos, zigzag32(b.len() as i32));
            out[p..p + b.len()].copy_from_slice(b);
            p + b.len()
        }
    }
}

#[inline(always)]
fn record_body_len(
    ts_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let mut n = 1
        + varint::len_i64(ts_delta)
        + varint::len_i32(offset_delta)
        + varint_bytes_len(key)
        + varint_bytes_len(value)
        + varint::len_i32(headers.len() as i32);
    for h in headers {
        n += varint_bytes_len(Some(&h.key[..])) + varint_bytes_len(h.value.as_deref());
    }
    n
}
