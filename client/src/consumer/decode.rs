//! From one partition's fetched bytes to the records an application sees: pure functions.
//!
//! - Control batches (transaction markers) are never shown.
//! - Under `read_committed`, records of aborted transactions are dropped: the broker lists each
//!   aborted transaction among the returned data by producer id and first offset; from that offset
//!   that producer's transactional batches are skipped until its ABORT marker.
//! - A fetch from the middle of a batch returns the whole batch: records below the fetch offset are
//!   skipped.
//! - A partial last batch (the broker cuts at the byte limit) ends the data quietly; the next fetch
//!   starts at the offset after the last whole batch.
//! - A corrupt batch (CRC mismatch, malformed records) ends the data with an error naming the
//!   offset; the records before it are kept.

use std::sync::Arc;

use bytes::Bytes;
use kbus_protocol::compression::Compression;
use kbus_protocol::messages::fetch::AbortedTransaction;
use kbus_protocol::record::{BatchDecoder, ControlRecordType, DecodeOptions, RecordBatch};
use kbus_protocol::ProtocolError;

use super::record::ConsumerRecord;

/// What to decode and how.
#[derive(Debug, Clone)]
pub(crate) struct DecodeInput<'a> {
    /// The topic, shared by every record.
    pub topic: &'a Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The offset the fetch asked for: records below it are skipped.
    pub fetch_offset: i64,
    /// True under `read_committed`.
    pub read_committed: bool,
    /// The aborted transactions the broker listed (read committed only).
    pub aborted: &'a [AbortedTransaction],
    /// CRC checking and decompression bounds.
    pub options: DecodeOptions,
}

/// One partition's data, decoded.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// The records to show, in offset order.
    pub records: Vec<ConsumerRecord>,
    /// Where the next fetch continues: after the last whole batch (never below the fetch offset).
    pub next_offset: i64,
    /// Bytes of memory the records hold (fetched plus decompressed), for the prefetch bound.
    pub bytes: usize,
    /// Whole batches seen (shown or skipped).
    pub batches: usize,
    /// True when the data ended with a partial batch.
    pub truncated: bool,
    /// The corruption that ended the data early, and the offset it was found at.
    pub error: Option<(i64, ProtocolError)>,
}

/// Tracks which producers are inside an aborted transaction, batch by batch (read committed).
struct AbortTracker<'a> {
    /// Aborted transactions not yet reached, sorted by first offset.
    pending: Vec<&'a AbortedTransaction>,
    next: usize,
    /// Producers whose aborted transaction has started and whose ABORT marker has not been seen.
    /// Almost always empty or tiny: a Vec beats a set.
    aborting: Vec<i64>,
}

impl<'a> AbortTracker<'a> {
    fn new(aborted: &'a [AbortedTransaction]) -> Self {
        let mut pending: Vec<&AbortedTransaction> = aborted.iter().collect();
        pending.sort_by_key(|a| a.first_offset);
        AbortTracker {
            pending,
            next: 0,
            aborting: Vec::new(),
        }
    }

    /// True when `batch` must not be shown. Updates the state with the batch's control marker.
    fn skip(&mut self, batch: &RecordBatch) -> bool {
        if !batch.is_transactional() {
            return batch.is_control();
        }
        // Every aborted transaction starting at or before this batch's end has begun.
        while let Some(a) = self.pending.get(self.next) {
            if a.first_offset > batch.last_offset() {
                break;
            }
            if !self.aborting.contains(&a.producer_id) {
                self.aborting.push(a.producer_id);
            }
            self.next += 1;
        }
        if batch.is_control() {
            if let Some(Ok(marker)) = batch.control_record() {
                if marker.kind == ControlRecordType::Abort {
                    self.aborting.retain(|p| *p != batch.producer_id);
                }
            }
            return true;
        }
        self.aborting.contains(&batch.producer_id)
    }
}

/// Decodes one partition's `records` bytes.
pub(crate) fn decode_partition(data: Bytes, input: &DecodeInput<'_>) -> Decoded {
    let mut out = Decoded {
        next_offset: input.fetch_offset,
        bytes: data.len(),
        ..Default::default()
    };
    let mut aborts = input
        .read_committed
        .then(|| AbortTracker::new(input.aborted));
    let mut batches = BatchDecoder::with_options(data, input.options);
    for batch in batches.by_ref() {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                out.error = Some((out.next_offset, e));
                return out;
            }
        };
        out.batches += 1;
        let skip = match &mut aborts {
            Some(t) => t.skip(&batch),
            None => batch.is_control(),
        };
        if !skip && batch.last_offset() >= input.fetch_offset {
            if let Err((offset, e)) = push_records(&batch, input, &mut out) {
                out.error = Some((offset, e));
                return out;
            }
        }
        out.next_offset = out.next_offset.max(batch.next_offset());
    }
    out.truncated = batches.truncated_tail();
    out
}

/// Appends the records of `batch` at or after the fetch offset. On a malformed record, the records
/// before it stay and the error names the offset to continue from.
fn push_records(
    batch: &RecordBatch,
    input: &DecodeInput<'_>,
    out: &mut Decoded,
) -> Result<(), (i64, ProtocolError)> {
    if batch.compression() != Compression::None {
        out.bytes += batch.records_bytes().len();
    }
    let timestamp_type = batch.timestamp_type();
    out.records.reserve(batch.record_count.max(0) as usize);
    for record in batch.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let at = out
                    .records
                    .last()
                    .map_or(batch.base_offset, |r| r.offset + 1)
                    .max(out.next_offset);
                out.next_offset = at;
                return Err((at, e));
            }
        };
        if record.offset < input.fetch_offset {
            continue;
        }
        out.records.push(ConsumerRecord {
            topic: input.topic.clone(),
            partition: input.partition,
            offset: record.offset,
            timestamp: record.timestamp,
            timestamp_type,
            key: record.key,
            value: record.value,
            headers: record.headers,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kbus_protocol::record::{ControlRecord, Header, RecordBatchBuilder};

    const TS: i64 = 1_764_000_000_000;

    /// A batch at `base` with `n` records valued `v{offset}`.
    fn batch(base: i64, n: usize, compression: Compression) -> Bytes {
        let mut b = RecordBatchBuilder::new(compression).base_offset(base);
        for i in 0..n {
            let v = format!("v{}", base + i as i64);
            let headers = [Header::new("h", Some(format!("{i}")))];
            b.push(TS + i as i64, Some(b"k"), Some(v.as_bytes()), &headers)
                .unwrap();
        }
        b.build().unwrap()
    }

    /// A transactional batch of `n` records by `producer`.
    fn txn(base: i64, n: usize, producer: i64) -> Bytes {
        let mut b = RecordBatchBuilder::new(Compression::None)
            .base_offset(base)
            .producer(producer, 0, 0)
            .transactional(true);
        for i in 0..n {
            let v = format!("v{}", base + i as i64);
            b.push(TS, None, Some(v.as_bytes()), &[]).unwrap();
        }
        b.build().unwrap()
    }

    /// A control batch (transaction marker) by `producer`.
    fn marker(base: i64, producer: i64, kind: ControlRecordType) -> Bytes {
        let (k, v) = ControlRecord {
            version: 0,
            kind,
            coordinator_epoch: Some(0),
        }
        .to_key_value();
        let mut b = RecordBatchBuilder::new(Compression::None)
            .base_offset(base)
            .producer(producer, 0, -1)
            .transactional(true)
            .control(true);
        b.push(TS, Some(&k), Some(&v), &[]).unwrap();
        b.build().unwrap()
    }

    fn concat(parts: &[Bytes]) -> Bytes {
        let mut buf = BytesMut::new();
        for p in parts {
            buf.extend_from_slice(p);
        }
        buf.freeze()
    }

    fn decode(
        data: Bytes,
        fetch_offset: i64,
        read_committed: bool,
        aborted: &[(i64, i64)],
    ) -> Decoded {
        let topic: Arc<str> = Arc::from("t");
        let aborted: Vec<AbortedTransaction> = aborted
            .iter()
            .map(|&(producer_id, first_offset)| AbortedTransaction {
                producer_id,
                first_offset,
                ..Default::default()
            })
            .collect();
        decode_partition(
            data,
            &DecodeInput {
                topic: &topic,
                partition: 3,
                fetch_offset,
                read_committed,
                aborted: &aborted,
                options: DecodeOptions::default(),
            },
        )
    }

    fn values(d: &Decoded) -> Vec<String> {
        d.records
            .iter()
            .map(|r| String::from_utf8(r.value.as_deref().unwrap().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn records_keep_their_offsets_keys_values_and_headers() {
        let d = decode(
            concat(&[
                batch(0, 3, Compression::None),
                batch(3, 2, Compression::Gzip),
            ]),
            0,
            false,
            &[],
        );
        assert!(d.error.is_none());
        assert_eq!(values(&d), ["v0", "v1", "v2", "v3", "v4"]);
        assert_eq!(d.next_offset, 5);
        assert_eq!(d.batches, 2);
        let r = &d.records[4];
        assert_eq!((&*r.topic, r.partition, r.offset), ("t", 3, 4));
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.timestamp, TS + 1);
        assert_eq!(r.headers[0].value_str(), Some("1"));
    }

    #[test]
    fn a_fetch_from_the_middle_of_a_batch_skips_the_records_before_it() {
        let d = decode(
            concat(&[
                batch(10, 5, Compression::Lz4),
                batch(15, 2, Compression::None),
            ]),
            12,
            false,
            &[],
        );
        assert_eq!(values(&d), ["v12", "v13", "v14", "v15", "v16"]);
        assert_eq!(d.next_offset, 17);
    }

    #[test]
    fn a_partial_last_batch_ends_the_data_and_the_next_fetch_starts_there() {
        let whole = batch(0, 2, Compression::None);
        let next = batch(2, 3, Compression::None);
        let data = concat(&[whole, next.slice(..next.len() - 5)]);
        let d = decode(data.clone(), 0, false, &[]);
        assert!(d.truncated && d.error.is_none());
        assert_eq!(values(&d), ["v0", "v1"]);
        assert_eq!(d.next_offset, 2);
        // Nothing whole at all: no records, no progress, and the caller learns it was cut.
        let d = decode(next.slice(..20), 2, false, &[]);
        assert!(d.truncated && d.records.is_empty() && d.batches == 0);
        assert_eq!(d.next_offset, 2);
    }

    #[test]
    fn control_batches_are_never_shown_but_moved_past() {
        let data = concat(&[
            txn(0, 2, 7),
            marker(2, 7, ControlRecordType::Commit),
            batch(3, 1, Compression::None),
        ]);
        for read_committed in [false, true] {
            let d = decode(data.clone(), 0, read_committed, &[]);
            assert_eq!(values(&d), ["v0", "v1", "v3"]);
            assert_eq!(d.next_offset, 4);
        }
        // A fetch returning only a marker still moves the position past it.
        let d = decode(marker(9, 7, ControlRecordType::Commit), 9, false, &[]);
        assert!(d.records.is_empty());
        assert_eq!(d.next_offset, 10);
    }

    #[test]
    fn read_committed_drops_aborted_transactions_only() {
        // Producer 1 aborts (offsets 0-1, marker 4); producer 2 commits (2-3, marker 5),
        // interleaved; producer 1 then writes a committed transaction (6, marker 7).
        let data = concat(&[
            txn(0, 2, 1),
            txn(2, 2, 2),
            marker(4, 1, ControlRecordType::Abort),
            marker(5, 2, ControlRecordType::Commit),
            txn(6, 1, 1),
            marker(7, 1, ControlRecordType::Commit),
            batch(8, 1, Compression::None),
        ]);
        let d = decode(data.clone(), 0, true, &[(1, 0)]);
        assert_eq!(values(&d), ["v2", "v3", "v6", "v8"]);
        assert_eq!(d.next_offset, 9);
        // read_uncommitted shows everything that is not a marker.
        let d = decode(data, 0, false, &[(1, 0)]);
        assert_eq!(values(&d), ["v0", "v1", "v2", "v3", "v6", "v8"]);
    }

    #[test]
    fn an_aborted_transaction_starting_later_in_the_data_is_dropped_from_its_first_offset() {
        // Producer 5 commits one transaction (0, marker 1), then its next one (2-3) aborts (marker 4).
        let data = concat(&[
            txn(0, 1, 5),
            marker(1, 5, ControlRecordType::Commit),
            txn(2, 2, 5),
            marker(4, 5, ControlRecordType::Abort),
        ]);
        let d = decode(data, 0, true, &[(5, 2)]);
        assert_eq!(values(&d), ["v0"]);
        assert_eq!(d.next_offset, 5);
    }

    #[test]
    fn a_crc_mismatch_keeps_the_records_before_it_and_names_the_offset() {
        let good = batch(0, 2, Compression::None);
        let mut bad = BytesMut::from(&batch(2, 2, Compression::None)[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let d = decode(concat(&[good, bad.freeze()]), 0, false, &[]);
        assert_eq!(values(&d), ["v0", "v1"]);
        let (offset, e) = d.error.unwrap();
        assert_eq!(offset, 2);
        assert!(
            matches!(e, ProtocolError::CrcMismatch { base_offset: 2, .. }),
            "{e}"
        );
        assert_eq!(d.next_offset, 2);
    }
}
