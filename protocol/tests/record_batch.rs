//! Record batches v2: builder and decoder agree with each other, with every codec, and the decoder
//! handles what a broker may really send (several batches, a truncated tail, corruption).

use bytes::{Bytes, BytesMut};
use kbus_protocol::compression::Compression;
use kbus_protocol::record::{
    restamp_producer, BatchDecoder, ControlRecord, ControlRecordType, DecodeOptions, Header,
    RecordBatchBuilder, TimestampType,
};
use kbus_protocol::ProtocolError;

const CODECS: [Compression; 5] = Compression::ALL;

struct Input {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

fn inputs(n: usize) -> Vec<Input> {
    (0..n)
        .map(|i| Input {
            timestamp: 1_700_000_000_000 + (i as i64 * 37) % 1000 - 300,
            key: (i % 5 != 0).then(|| format!("key-{i}").into_bytes()),
            value: (i % 11 != 3).then(|| vec![(i % 256) as u8; i * 13 % 700]),
            headers: (0..i % 3)
                .map(|h| Header::new(format!("h{h}"), (h != 1).then(|| format!("v{i}"))))
                .collect(),
        })
        .collect()
}

/// A builder for the batches these tests check: base offset 1000, producer 42 / epoch 3 / sequence 7.
fn builder(codec: Compression, capacity: usize) -> RecordBatchBuilder {
    RecordBatchBuilder::with_capacity(codec, capacity)
        .base_offset(1000)
        .producer(42, 3, 7)
}

fn build(codec: Compression, inputs: &[Input]) -> Bytes {
    let mut b = builder(codec, 16 * 1024);
    for r in inputs {
        b.push(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        )
        .unwrap();
    }
    b.build().unwrap()
}

#[test]
fn batches_round_trip_with_every_codec() {
    let inputs = inputs(500);
    for codec in CODECS {
        let bytes = build(codec, &inputs);
        let mut batches = BatchDecoder::new(bytes.clone());
        let batch = batches.next().unwrap().unwrap();
        assert!(batches.next().is_none());
        assert!(!batches.truncated_tail());
        assert_eq!(batch.compression(), codec);
        assert_eq!(batch.base_offset, 1000);
        assert_eq!(batch.record_count, 500);
        assert_eq!(batch.last_offset(), 1499);
        assert_eq!(
            (batch.producer_id, batch.producer_epoch, batch.base_sequence),
            (42, 3, 7)
        );
        assert_eq!(batch.size_in_bytes, bytes.len());
        let max_ts = inputs.iter().map(|r| r.timestamp).max().unwrap();
        assert_eq!(batch.max_timestamp, max_ts);
        let records: Vec<_> = batch.records().collect::<Result<_, _>>().unwrap();
        assert_eq!(records.len(), inputs.len());
        for (i, (got, want)) in records.iter().zip(&inputs).enumerate() {
            assert_eq!(got.offset, 1000 + i as i64);
            assert_eq!(got.timestamp, want.timestamp);
            assert_eq!(got.key.as_deref(), want.key.as_deref());
            assert_eq!(got.value.as_deref(), want.value.as_deref());
            assert_eq!(got.headers, want.headers);
        }
    }
}

#[test]
fn restamping_changes_only_the_producer_fields_for_every_codec() {
    let records = inputs(50);
    for codec in Compression::ALL.into_iter().filter(|c| c.is_available()) {
        let original = build(codec, &records);
        let again = restamp_producer(&original, 12, 4, 0).unwrap();
        assert_eq!(again.len(), original.len());
        let before = BatchDecoder::new(original).next().unwrap().unwrap();
        let after = BatchDecoder::new(again.clone()).next().unwrap().unwrap();
        assert_eq!(
            (after.producer_id, after.producer_epoch, after.base_sequence),
            (12, 4, 0),
            "{codec:?}"
        );
        let r1: Vec<_> = before.records().map(|r| r.unwrap()).collect();
        let r2: Vec<_> = after.records().map(|r| r.unwrap()).collect();
        assert_eq!(r1, r2, "{codec:?}");
        // Changing a byte after restamping is still caught: the CRC was recomputed, not dropped.
        let mut broken = BytesMut::from(&again[..]);
        let last = broken.len() - 1;
        broken[last] ^= 1;
        assert!(BatchDecoder::new(broken.freeze()).next().unwrap().is_err());
    }
    assert!(restamp_producer(&[0u8; 20], 1, 1, 1).is_err());
}

#[test]
fn the_reserved_capacity_changes_nothing_but_allocation() {
    // The builder writes into zero-filled room ahead of the batch and grows it as records come in:
    // whatever it reserved, the bytes are the same and `size_in_bytes` is the batch's true length.
    let inputs = inputs(300);
    let reference = build(Compression::None, &inputs);
    for capacity in [0, 1, 61, 4096, 16 * 1024, 1 << 20] {
        let mut b = builder(Compression::None, capacity);
        let mut last = b.size_in_bytes();
        for r in &inputs {
            let expected = RecordBatchBuilder::estimate_record_size(
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            );
            b.push(
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            )
            .unwrap();
            let now = b.size_in_bytes();
            assert!(now > last && now - last <= expected, "capacity {capacity}");
            last = now;
        }
        let built = b.build().unwrap();
        assert_eq!(built.len(), last, "capacity {capacity}");
        assert_eq!(built, reference, "capacity {capacity}");
    }
}

#[test]
fn uncompressed_records_share_the_input_buffer() {
    let bytes = build(Compression::None, &inputs(3));
    let range = bytes.as_ptr_range();
    let batch = BatchDecoder::new(bytes.clone()).next().unwrap().unwrap();
    let rec = batch.records().nth(1).unwrap().unwrap();
    let key = rec.key.unwrap();
    assert!(range.contains(&key.as_ptr()), "key was copied");
}

#[test]
fn several_batches_and_a_truncated_tail() {
    let mut stream = BytesMut::new();
    for codec in CODECS {
        stream.extend_from_slice(&build(codec, &inputs(20)));
    }
    let whole = stream.len();
    // Cut the last batch short, as a Fetch response cut at max_bytes would.
    let cut = stream.split_to(whole - 10).freeze();
    let mut dec = BatchDecoder::new(cut);
    let got: Vec<_> = dec.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(got.len(), CODECS.len() - 1);
    assert!(dec.truncated_tail());
    // Only a few bytes of a batch header also count as a truncated tail.
    let mut dec = BatchDecoder::new(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0]));
    assert!(dec.next().is_none());
    assert!(dec.truncated_tail());
}

#[test]
fn corruption_is_detected_by_crc() {
    let bytes = build(Compression::None, &inputs(10));
    let mut bad = bytes.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    let err = BatchDecoder::new(Bytes::from(bad.clone()))
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProtocolError::CrcMismatch {
                base_offset: 1000,
                ..
            }
        ),
        "{err}"
    );
    // With CRC checks off, the same bytes decode (the damage is in a value, not a length).
    let opts = DecodeOptions {
        verify_crc: false,
        ..Default::default()
    };
    let batch = BatchDecoder::with_options(Bytes::from(bad), opts)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.records().count(), 10);
}

#[test]
fn legacy_message_formats_are_refused_clearly() {
    let mut bytes = build(Compression::None, &inputs(1)).to_vec();
    bytes[16] = 1;
    let err = BatchDecoder::new(Bytes::from(bytes))
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(err, ProtocolError::UnsupportedMagic(1));
}

#[test]
fn decompression_bound_applies_per_batch() {
    let big = vec![Input {
        timestamp: 0,
        key: None,
        value: Some(vec![7u8; 1 << 20]),
        headers: vec![],
    }];
    let bytes = build(Compression::Gzip, &big);
    assert!(bytes.len() < 10_000);
    let opts = DecodeOptions {
        max_decompressed_size: 64 * 1024,
        ..Default::default()
    };
    let err = BatchDecoder::with_options(bytes, opts)
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, ProtocolError::DecompressedTooLarge { .. }),
        "{err}"
    );
}

#[test]
fn control_batches_are_surfaced() {
    let marker = ControlRecord {
        version: 0,
        kind: ControlRecordType::Commit,
        coordinator_epoch: Some(5),
    };
    let (k, v) = marker.to_key_value();
    let mut b = RecordBatchBuilder::new(Compression::None)
        .producer(9, 1, -1)
        .transactional(true)
        .control(true);
    b.push(10, Some(&k), Some(&v), &[]).unwrap();
    let batch = BatchDecoder::new(b.build().unwrap())
        .next()
        .unwrap()
        .unwrap();
    assert!(batch.is_control() && batch.is_transactional());
    assert_eq!(batch.control_record().unwrap().unwrap(), marker);
}

#[test]
fn log_append_time_uses_the_batch_max_timestamp() {
    let mut b =
        RecordBatchBuilder::new(Compression::None).timestamp_type(TimestampType::LogAppendTime);
    b.push(5, None, Some(b"a"), &[]).unwrap();
    b.push(9, None, Some(b"b"), &[]).unwrap();
    let batch = BatchDecoder::new(b.build().unwrap())
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    assert!(batch.records().all(|r| r.unwrap().timestamp == 9));
}

#[test]
fn hostile_record_lengths_are_errors() {
    let bytes = build(Compression::None, &inputs(4));
    // Flip each byte of the records section in turn; with CRC checks off every result must be an
    // error or a value, never a panic.
    let opts = DecodeOptions {
        verify_crc: false,
        ..Default::default()
    };
    for i in 61..bytes.len() {
        for x in [0x01u8, 0x80, 0xff] {
            let mut bad = bytes.to_vec();
            bad[i] ^= x;
            if let Some(Ok(batch)) = BatchDecoder::with_options(Bytes::from(bad), opts).next() {
                for r in batch.records() {
                    let _ = r;
                }
            }
        }
    }
}
