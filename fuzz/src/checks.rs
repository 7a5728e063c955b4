// The properties the fuzz targets check, one public function per target.
//
// This file is compiled twice: as a module of the `kbus-protocol-fuzz` crate (the fuzz targets call
// it) and, through `#[path]`, inside `protocol/tests/fuzz_corpus.rs`, which replays the committed
// corpus on stable `cargo test`. It may therefore use only `kbus_protocol`, `bytes` and `arbitrary`,
// and every item must be reachable from `TARGETS` so that neither build warns about dead code.
//
// Every function returns quietly on input that does not make sense for it and panics (an assertion)
// only when the protocol crate misbehaves: a panic inside kbus-protocol, or a broken property.

use std::collections::HashMap;

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use kbus_protocol::compression::Compression;
use kbus_protocol::consumer_protocol::{
    Assignment, Subscription, ASSIGNMENT_MAX_VERSION, SUBSCRIPTION_MAX_VERSION,
};
use kbus_protocol::frame::DEFAULT_MAX_FRAME_SIZE;
use kbus_protocol::record::{
    BatchDecoder, ControlRecord, ControlRecordType, DecodeOptions, Header, RecordBatch,
    RecordBatchBuilder, TimestampType, BATCH_HEADER_SIZE,
};
use kbus_protocol::{
    encode_request, encode_response, AnyRequest, AnyResponse, ApiKey, Decoder, FrameSplitter,
    Message, ProtocolError, RequestHeader, ResponseHeader, TaggedFields, TopicPartition,
};

/// A fuzz target's check: returns on uninteresting input, panics on a broken property.
pub type Check = fn(&[u8]);

/// Every fuzz target by name, as the corpus directories under `fuzz/corpus/` are named.
pub const TARGETS: &[(&str, Check)] = &[
    ("frame_splitter", frame_splitter),
    ("response_decoders", response_decoders),
    ("request_decoders", request_decoders),
    ("record_batches", record_batches),
    ("message_roundtrip", message_roundtrip),
    ("consumer_protocol", consumer_protocol),
    ("compression", compression),
];

// ---------------------------------------------------------------------------------------------
// frame_splitter
// ---------------------------------------------------------------------------------------------

/// How a split ended: the frames cut out, then either an error or the bytes left buffered.
#[derive(Debug, PartialEq)]
struct Split {
    frames: Vec<Bytes>,
    end: Result<usize, ProtocolError>,
}

/// Input: `max_frame_size u16 | k u8 | k chunk sizes (u8 each) | stream`.
///
/// The stream is fed to a [`FrameSplitter`] in chunks of the given sizes (cycling; a zero-size chunk
/// is an empty append), draining frames after every append. The frames and the final state must be
/// those of a one-shot split and of a plain reference reading of the size prefixes.
pub fn frame_splitter(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let max = usize::from(u16::from_be_bytes([head[0], head[1]]));
    let k = usize::from(head[2] % 32).min(rest.len());
    let (sizes, stream) = rest.split_at(k);
    let mut sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s)).collect();
    if sizes.iter().all(|&s| s == 0) {
        sizes.push(stream.len().max(1));
    }

    let expected = reference_split(stream, max);

    let mut one_shot = FrameSplitter::new(max);
    one_shot.extend(stream);
    let mut frames = Vec::new();
    let end = drain(&mut one_shot, &mut frames).map(|()| one_shot.buffered());
    assert_eq!(Split { frames, end }, expected, "one-shot split");

    let mut splitter = FrameSplitter::new(max);
    let mut frames = Vec::new();
    let mut fed = 0;
    let mut result = Ok(());
    for (i, &size) in sizes.iter().cycle().enumerate() {
        if fed == stream.len() {
            break;
        }
        let chunk = &stream[fed..(fed + size).min(stream.len())];
        fed += chunk.len();
        // Both ways of appending are public; use both.
        if i % 2 == 0 {
            splitter.extend(chunk);
        } else {
            splitter.buffer_mut().extend_from_slice(chunk);
        }
        result = drain(&mut splitter, &mut frames);
        if result.is_err() {
            break;
        }
    }
    let end = result.map(|()| splitter.buffered());
    assert_eq!(
        Split { frames, end },
        expected,
        "chunked split, sizes {sizes:?}"
    );
}

/// Takes frames until the splitter needs more bytes (`Ok`) or fails.
fn drain(splitter: &mut FrameSplitter, frames: &mut Vec<Bytes>) -> Result<(), ProtocolError> {
    while let Some(frame) = splitter.next_frame()? {
        frames.push(frame);
    }
    Ok(())
}

/// What the Kafka framing rules say the stream holds.
fn reference_split(mut stream: &[u8], max: usize) -> Split {
    let mut frames = Vec::new();
    loop {
        let Some((prefix, body)) = stream.split_first_chunk::<4>() else {
            return Split {
                frames,
                end: Ok(stream.len()),
            };
        };
        let size = i32::from_be_bytes(*prefix);
        let Some(size) = usize::try_from(size).ok().filter(|&s| s <= max) else {
            return Split {
                frames,
                end: Err(ProtocolError::FrameTooLarge {
                    size: i64::from(size),
                    max,
                }),
            };
        };
        if body.len() < size {
            return Split {
                frames,
                end: Ok(stream.len()),
            };
        }
        frames.push(Bytes::copy_from_slice(&body[..size]));
        stream = &body[size..];
    }
}

// ---------------------------------------------------------------------------------------------
// response_decoders / request_decoders
// ---------------------------------------------------------------------------------------------

/// Input `api u16 | version u16 | body`: the API is an index into [`ApiKey::ALL`]; the version is
/// taken modulo the supported range, or, when its top bit is set, used nearly raw (mostly an
/// unsupported version, which must be refused).
fn select(data: &[u8]) -> Option<(ApiKey, i16, &[u8])> {
    let (head, body) = data.split_first_chunk::<4>()?;
    let api = ApiKey::ALL[usize::from(u16::from_be_bytes([head[0], head[1]])) % ApiKey::ALL.len()];
    let sel = u16::from_be_bytes([head[2], head[3]]);
    let range = api.supported();
    let version = if sel & 0x8000 == 0 {
        let span = (range.max - range.min + 1) as u16;
        range.min + (sel % span) as i16
    } else {
        // -16..=32751: negative, just past the range, and far beyond it.
        ((sel & 0x7fff) as i16).wrapping_sub(16)
    };
    Some((api, version, body))
}

fn assert_refused<T: std::fmt::Debug>(
    result: &Result<T, ProtocolError>,
    api: ApiKey,
    version: i16,
) {
    assert_eq!(
        result.as_ref().err(),
        Some(&ProtocolError::UnsupportedVersion { api, version }),
        "{api:?} v{version} is not supported and must be refused"
    );
}

/// Decodes a response body of the selected API and version; a decoded value must re-encode and
/// decode back to an equal value.
pub fn response_decoders(data: &[u8]) {
    let Some((api, version, body)) = select(data) else {
        return;
    };
    let mut d = Decoder::new(Bytes::copy_from_slice(body));
    let result = AnyResponse::decode(api, version, &mut d);
    if !api.supported().contains(version) {
        return assert_refused(&result, api, version);
    }
    if let Ok(decoded) = result {
        assert_eq!(decoded.api_key(), api);
        let bytes = encode_decoded(api, version, |b| decoded.encode(b, version), &decoded);
        let mut d = Decoder::new(bytes);
        let again = AnyResponse::decode(api, version, &mut d)
            .unwrap_or_else(|e| panic!("{api:?} v{version}: re-encoded response fails: {e}"));
        assert_eq!(d.remaining(), 0, "{api:?} v{version}: bytes left");
        assert_eq!(decoded, again, "{api:?} v{version}: value changed");
    }
}

/// Decodes a request body of the selected API and version (as `response_decoders` does), then the
/// whole input as a request frame body: header, then the body of the API and version it names.
pub fn request_decoders(data: &[u8]) {
    if let Some((api, version, body)) = select(data) {
        let mut d = Decoder::new(Bytes::copy_from_slice(body));
        let result = AnyRequest::decode(api, version, &mut d);
        if !api.supported().contains(version) {
            assert_refused(&result, api, version);
        } else if let Ok(decoded) = result {
            assert_eq!(decoded.api_key(), api);
            let bytes = encode_decoded(api, version, |b| decoded.encode(b, version), &decoded);
            let mut d = Decoder::new(bytes);
            let again = AnyRequest::decode(api, version, &mut d)
                .unwrap_or_else(|e| panic!("{api:?} v{version}: re-encoded request fails: {e}"));
            assert_eq!(d.remaining(), 0, "{api:?} v{version}: bytes left");
            assert_eq!(decoded, again, "{api:?} v{version}: value changed");
        }
    }
    request_frame(data);
}

fn request_frame(frame: &[u8]) {
    let mut d = Decoder::new(Bytes::copy_from_slice(frame));
    let Ok(header) = RequestHeader::decode(&mut d) else {
        return;
    };
    let (api, version) = (header.api_key, header.api_version);
    let result = AnyRequest::decode(api, version, &mut d);
    if !api.supported().contains(version) {
        return assert_refused(&result, api, version);
    }
    let Ok(body) = result else {
        return;
    };
    let bytes = encode_decoded(
        api,
        version,
        |b| {
            header.encode(b)?;
            body.encode(b, version)
        },
        &(&header, &body),
    );
    let mut d = Decoder::new(bytes);
    let header_again = RequestHeader::decode(&mut d)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: re-encoded header fails: {e}"));
    let body_again = AnyRequest::decode(api, version, &mut d)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: re-encoded request fails: {e}"));
    assert_eq!(d.remaining(), 0, "{api:?} v{version}: bytes left");
    assert_eq!(header, header_again, "{api:?} v{version}: header changed");
    assert_eq!(body, body_again, "{api:?} v{version}: value changed");
}

/// Encodes a value that was just decoded; that must always work.
fn encode_decoded(
    api: ApiKey,
    version: i16,
    encode: impl FnOnce(&mut BytesMut) -> Result<(), ProtocolError>,
    value: &impl std::fmt::Debug,
) -> Bytes {
    let mut buf = BytesMut::new();
    if let Err(e) = encode(&mut buf) {
        panic!("{api:?} v{version}: a decoded value does not encode: {e}\n{value:#?}");
    }
    buf.freeze()
}

// ---------------------------------------------------------------------------------------------
// record_batches
// ---------------------------------------------------------------------------------------------

const CODECS: [Compression; 5] = Compression::ALL;

/// Decompression limits to decode with: small, so bombs are cut short and the bound is exercised.
const LIMITS: [usize; 6] = [0, 1, 100, 4096, 64 * 1024, 1024 * 1024];

/// Input `options u8 | batches`: bit 0 turns CRC checks off, the next bits pick a decompression
/// limit. Every record of every batch is read. Then the whole input, read through `arbitrary`,
/// describes a batch that is built with every codec and must decode back to what was pushed.
pub fn record_batches(data: &[u8]) {
    if let Some((&options, batches)) = data.split_first() {
        decode_batches(options, batches);
    }
    build_batches(data);
}

fn decode_batches(options: u8, data: &[u8]) {
    let options = DecodeOptions {
        verify_crc: options & 1 == 0,
        max_decompressed_size: LIMITS[usize::from(options >> 1) % LIMITS.len()],
    };
    let mut batches = BatchDecoder::with_options(Bytes::copy_from_slice(data), options);
    let mut consumed = 0;
    loop {
        match batches.next() {
            None => break,
            Some(Ok(batch)) => {
                consumed += batch.size_in_bytes;
                read_batch(&batch);
            }
            Some(Err(_)) => {
                assert!(batches.next().is_none(), "iteration goes on after an error");
                return;
            }
        }
    }
    assert!(batches.next().is_none(), "iteration resumes after its end");
    assert_eq!(
        batches.truncated_tail(),
        consumed != data.len(),
        "truncated_tail must say whether bytes were left ({consumed} of {} used)",
        data.len()
    );
}

/// Reads every record of a decoded batch and everything the batch can say about itself.
fn read_batch(batch: &RecordBatch) {
    let _ = (
        batch.compression(),
        batch.timestamp_type(),
        batch.is_transactional(),
        batch.delete_horizon_ms(),
        batch.last_offset(),
        batch.next_offset(),
        batch.records_bytes().len(),
    );
    let mut items = 0usize;
    let mut failed = false;
    for record in batch.records() {
        items += 1;
        assert!(!failed, "records go on after an error");
        match record {
            Ok(r) => {
                let _ = (r.offset, r.timestamp, r.key, r.value);
                for h in &r.headers {
                    let _ = (h.key_str(), h.value_str());
                }
            }
            Err(_) => failed = true,
        }
    }
    let declared = batch.record_count as usize;
    if failed {
        assert!(
            items <= declared + 1,
            "{items} items for {declared} records"
        );
    } else {
        assert_eq!(items, declared, "records read without error");
    }
    let control = batch.control_record();
    assert!(
        control.is_none() || batch.is_control(),
        "a control record in a data batch"
    );
}

struct RecordSpec {
    offset_delta: i32,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

struct BatchSpec {
    base_offset: i64,
    partition_leader_epoch: i32,
    producer: (i64, i16, i32),
    transactional: bool,
    control: Option<ControlRecord>,
    timestamp_type: TimestampType,
    records: Vec<RecordSpec>,
}

fn batch_spec(u: &mut Unstructured<'_>) -> arbitrary::Result<BatchSpec> {
    let base_offset = u.arbitrary()?;
    let partition_leader_epoch = u.arbitrary()?;
    let producer = u.arbitrary()?;
    let transactional = u.arbitrary()?;
    let control = if u.arbitrary()? {
        Some(ControlRecord {
            version: u.arbitrary()?,
            kind: match u.int_in_range(0..=2)? {
                0 => ControlRecordType::Abort,
                1 => ControlRecordType::Commit,
                _ => ControlRecordType::Unknown(u.int_in_range(2..=i16::MAX)?),
            },
            coordinator_epoch: Some(u.arbitrary()?),
        })
    } else {
        None
    };
    let timestamp_type = if u.arbitrary()? {
        TimestampType::LogAppendTime
    } else {
        TimestampType::CreateTime
    };
    let base_timestamp: i64 = u.arbitrary()?;
    let mut records = Vec::new();
    let mut offset_delta: i32 = -1;
    while records.len() < 256 && u.arbitrary::<bool>()? {
        let gap: u8 = u.arbitrary()?;
        let Some(delta) = offset_delta.checked_add(1 + i32::from(gap % 4)) else {
            break;
        };
        offset_delta = delta;
        let mut headers = Vec::new();
        for _ in 0..u.int_in_range(0..=3)? {
            let key = Bytes::from(u.arbitrary::<Vec<u8>>()?);
            let value = u.arbitrary::<Option<Vec<u8>>>()?.map(Bytes::from);
            headers.push(Header { key, value });
        }
        records.push(RecordSpec {
            offset_delta,
            timestamp: base_timestamp.wrapping_add(i64::from(u.arbitrary::<i32>()?)),
            key: u.arbitrary()?,
            value: u.arbitrary()?,
            headers,
        });
    }
    // A control batch carries its marker in its first record.
    if let (Some(marker), Some(first)) = (control, records.first_mut()) {
        let (key, value) = marker.to_key_value();
        first.key = Some(key.to_vec());
        first.value = Some(value.to_vec());
    }
    Ok(BatchSpec {
        base_offset,
        partition_leader_epoch,
        producer,
        transactional,
        control,
        timestamp_type,
        records,
    })
}

fn build_batch(spec: &BatchSpec, codec: Compression) -> Bytes {
    let (producer_id, producer_epoch, base_sequence) = spec.producer;
    let mut builder = RecordBatchBuilder::new(codec)
        .base_offset(spec.base_offset)
        .partition_leader_epoch(spec.partition_leader_epoch)
        .producer(producer_id, producer_epoch, base_sequence)
        .transactional(spec.transactional)
        .control(spec.control.is_some())
        .timestamp_type(spec.timestamp_type);
    for r in &spec.records {
        builder
            .push_with_offset_delta(
                r.offset_delta,
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            )
            .unwrap_or_else(|e| panic!("push failed: {e}"));
    }
    assert_eq!(builder.len(), spec.records.len());
    builder
        .build()
        .unwrap_or_else(|e| panic!("{codec:?}: build failed: {e}"))
}

fn build_batches(data: &[u8]) {
    let Ok(spec) = batch_spec(&mut Unstructured::new(data)) else {
        return;
    };
    let plain = build_batch(&spec, Compression::None);
    let records_len = plain.len() - BATCH_HEADER_SIZE;
    for codec in CODECS {
        let bytes = if codec == Compression::None {
            plain.clone()
        } else {
            build_batch(&spec, codec)
        };
        let options = DecodeOptions {
            verify_crc: true,
            max_decompressed_size: records_len,
        };
        let mut batches = BatchDecoder::with_options(bytes.clone(), options);
        let batch = match batches.next() {
            Some(Ok(batch)) => batch,
            other => panic!("{codec:?}: built batch does not decode: {other:?}"),
        };
        assert!(batches.next().is_none(), "{codec:?}: more than one batch");
        assert!(!batches.truncated_tail(), "{codec:?}: truncated");
        check_built_batch(&spec, codec, &bytes, &batch);

        // Decompression is bounded exactly: one byte less than the records take must be refused.
        if codec != Compression::None && records_len > 0 {
            let options = DecodeOptions {
                verify_crc: true,
                max_decompressed_size: records_len - 1,
            };
            match BatchDecoder::with_options(bytes, options).next() {
                Some(Err(ProtocolError::DecompressedTooLarge { .. })) => {}
                other => panic!(
                    "{codec:?}: limit {} not enforced: {other:?}",
                    records_len - 1
                ),
            }
        }
    }
}

fn check_built_batch(spec: &BatchSpec, codec: Compression, bytes: &Bytes, batch: &RecordBatch) {
    assert_eq!(batch.compression(), codec);
    assert_eq!(batch.size_in_bytes, bytes.len());
    assert_eq!(batch.base_offset, spec.base_offset);
    assert_eq!(batch.partition_leader_epoch, spec.partition_leader_epoch);
    assert_eq!(
        (batch.producer_id, batch.producer_epoch, batch.base_sequence),
        spec.producer
    );
    assert_eq!(batch.is_transactional(), spec.transactional);
    assert_eq!(batch.is_control(), spec.control.is_some());
    assert_eq!(batch.timestamp_type(), spec.timestamp_type);
    assert_eq!(batch.record_count as usize, spec.records.len());
    let last_delta = spec.records.last().map_or(0, |r| r.offset_delta);
    assert_eq!(batch.last_offset_delta, last_delta);

    let mut records = batch.records();
    for (i, want) in spec.records.iter().enumerate() {
        let got = match records.next() {
            Some(Ok(r)) => r,
            other => panic!("{codec:?}: record {i}: {other:?}"),
        };
        assert_eq!(
            got.offset,
            spec.base_offset.wrapping_add(i64::from(want.offset_delta)),
            "{codec:?}: record {i} offset"
        );
        let timestamp = match spec.timestamp_type {
            TimestampType::CreateTime => want.timestamp,
            TimestampType::LogAppendTime => batch.max_timestamp,
        };
        assert_eq!(got.timestamp, timestamp, "{codec:?}: record {i} timestamp");
        assert_eq!(
            got.key.as_deref(),
            want.key.as_deref(),
            "{codec:?}: record {i} key"
        );
        assert_eq!(
            got.value.as_deref(),
            want.value.as_deref(),
            "{codec:?}: record {i} value"
        );
        assert_eq!(got.headers, want.headers, "{codec:?}: record {i} headers");
    }
    assert!(records.next().is_none(), "{codec:?}: extra records");

    match (spec.control, spec.records.is_empty()) {
        (Some(marker), false) => assert_eq!(batch.control_record(), Some(Ok(marker))),
        (Some(_), true) | (None, _) => assert!(batch.control_record().is_none()),
    }
}

// ---------------------------------------------------------------------------------------------
// message_roundtrip
// ---------------------------------------------------------------------------------------------

/// Structured: `arbitrary` picks an API, request or response, and a supported version, then builds
/// a message. Encoding, decoding and encoding again must give the same bytes; the same holds for a
/// whole frame cut by a [`FrameSplitter`] and decoded through the headers and `Any*` enums.
pub fn message_roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(index), Ok(is_request)) = (u.choose_index(ApiKey::ALL.len()), u.arbitrary::<bool>())
    else {
        return;
    };
    let api = ApiKey::ALL[index];
    let range = api.supported();
    let Ok(version) = u.int_in_range(range.min..=range.max) else {
        return;
    };
    macro_rules! dispatch {
        ($req:ty, $resp:ty) => {
            if <$req as Message>::API_KEY == api {
                assert_eq!(<$resp as Message>::API_KEY, api);
                if is_request {
                    typed_request::<$req>(&mut u, version);
                } else {
                    typed_response::<$resp>(&mut u, version);
                }
                return;
            }
        };
    }
    kbus_protocol::for_each_message!(dispatch);
    panic!("{api:?} has no message types");
}

/// Builds an arbitrary `M`, encodes it at `version` and checks the encode/decode/encode fixpoint.
/// Returns the decoded value and its encoding.
fn encode_decode<M>(u: &mut Unstructured<'_>, version: i16) -> Option<(M, Bytes)>
where
    M: Message + for<'a> Arbitrary<'a> + PartialEq + std::fmt::Debug,
{
    let name = std::any::type_name::<M>();
    let original = M::arbitrary(u).ok()?;
    let mut first = BytesMut::new();
    match original.encode(&mut first, version) {
        Ok(()) => {}
        // A value too long for its wire form (a string over 32767 bytes) cannot be sent at all.
        Err(ProtocolError::TooLong { .. }) => return None,
        Err(e) => panic!("{name} v{version}: encode failed: {e}\n{original:#?}"),
    }
    let first = first.freeze();
    let decoded = M::decode_exact(first.clone(), version)
        .unwrap_or_else(|e| panic!("{name} v{version}: decode failed: {e}\n{original:#?}"));
    let second = decoded
        .to_bytes(version)
        .unwrap_or_else(|e| panic!("{name} v{version}: re-encode failed: {e}\n{decoded:#?}"));
    assert_eq!(
        first, second,
        "{name} v{version}: re-encoding differs\n{original:#?}"
    );
    Some((decoded, first))
}

/// Cuts exactly one frame out of `frame` with a [`FrameSplitter`].
fn split_one(frame: &[u8]) -> Decoder {
    let mut splitter = FrameSplitter::new(DEFAULT_MAX_FRAME_SIZE);
    splitter.extend(frame);
    let body = splitter
        .next_frame()
        .unwrap_or_else(|e| panic!("frame refused: {e}"))
        .expect("a whole frame");
    assert_eq!(splitter.buffered(), 0);
    Decoder::new(body)
}

fn typed_request<M>(u: &mut Unstructured<'_>, version: i16)
where
    M: Message + for<'a> Arbitrary<'a> + PartialEq + std::fmt::Debug,
{
    let Some((body, encoded)) = encode_decode::<M>(u, version) else {
        return;
    };
    let (Ok(correlation_id), Ok(client_id), Ok(tagged_fields)) = (
        u.arbitrary::<i32>(),
        u.arbitrary::<Option<String>>(),
        TaggedFields::arbitrary(u),
    ) else {
        return;
    };
    let api = M::API_KEY;
    let mut header = RequestHeader::new(api, version, correlation_id, client_id.as_deref());
    header.tagged_fields = tagged_fields;
    let mut frame = BytesMut::new();
    match encode_request(&header, &body, &mut frame) {
        Ok(()) => {}
        Err(ProtocolError::TooLong { .. }) => return,
        Err(e) => panic!("{api:?} v{version}: request frame: {e}"),
    }
    if api.request_header_version(version) < 2 {
        header.tagged_fields = TaggedFields::default();
    }
    let mut d = split_one(&frame);
    let header_again = RequestHeader::decode(&mut d)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: request header: {e}"));
    assert_eq!(header_again, header, "{api:?} v{version}: request header");
    let again = AnyRequest::decode(api, version, &mut d)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: request body: {e}"));
    assert_eq!(
        d.remaining(),
        0,
        "{api:?} v{version}: bytes left in request frame"
    );
    assert_eq!(again.api_key(), api);
    let mut reencoded = BytesMut::new();
    again
        .encode(&mut reencoded, version)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: AnyRequest encode: {e}"));
    assert_eq!(
        reencoded.freeze(),
        encoded,
        "{api:?} v{version}: AnyRequest"
    );
}

fn typed_response<M>(u: &mut Unstructured<'_>, version: i16)
where
    M: Message + for<'a> Arbitrary<'a> + PartialEq + std::fmt::Debug,
{
    let Some((body, encoded)) = encode_decode::<M>(u, version) else {
        return;
    };
    let (Ok(correlation_id), Ok(tagged_fields)) =
        (u.arbitrary::<i32>(), TaggedFields::arbitrary(u))
    else {
        return;
    };
    let api = M::API_KEY;
    let mut header = ResponseHeader {
        correlation_id,
        tagged_fields,
    };
    let mut frame = BytesMut::new();
    encode_response(&header, version, &body, &mut frame)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: response frame: {e}"));
    if api.response_header_version(version) < 1 {
        header.tagged_fields = TaggedFields::default();
    }
    assert_eq!(
        ResponseHeader::peek_correlation_id(&frame[4..]),
        Some(correlation_id)
    );
    let mut d = split_one(&frame);
    let header_again = ResponseHeader::decode(&mut d, api, version)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: response header: {e}"));
    assert_eq!(header_again, header, "{api:?} v{version}: response header");
    let again = AnyResponse::decode(api, version, &mut d)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: response body: {e}"));
    assert_eq!(
        d.remaining(),
        0,
        "{api:?} v{version}: bytes left in response frame"
    );
    assert_eq!(again.api_key(), api);
    let mut reencoded = BytesMut::new();
    again
        .encode(&mut reencoded, version)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: AnyResponse encode: {e}"));
    assert_eq!(
        reencoded.freeze(),
        encoded,
        "{api:?} v{version}: AnyResponse"
    );
}

// ---------------------------------------------------------------------------------------------
// consumer_protocol
// ---------------------------------------------------------------------------------------------

/// The whole input is read as a consumer-protocol [`Subscription`] and as an [`Assignment`] (the
/// bytes other group members send through JoinGroup and SyncGroup). Neither may panic. A decoded
/// value, encoded at the version it was read at (its first `INT16`; one above the newest is written
/// as the newest) and decoded again, must come back equal — with its partitions grouped by topic,
/// as the wire groups them — and encoding that must give the same bytes again.
pub fn consumer_protocol(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    let version = data
        .first_chunk::<2>()
        .map_or(0, |v| i16::from_be_bytes(*v));

    if let Ok(decoded) = Subscription::decode(bytes.clone()) {
        assert!(version >= 0, "subscription v{version} decoded");
        let expected = Subscription {
            owned_partitions: grouped(&decoded.owned_partitions),
            ..decoded.clone()
        };
        let encoded = decoded
            .try_encode(version)
            .unwrap_or_else(|e| panic!("subscription v{version}: decoded, does not encode: {e}"));
        let written = version.min(SUBSCRIPTION_MAX_VERSION);
        assert_eq!(encoded[..2], written.to_be_bytes(), "subscription version");
        let again = Subscription::decode(encoded.clone())
            .unwrap_or_else(|e| panic!("subscription v{version}: re-encoded, fails: {e}"));
        assert_eq!(again, expected, "subscription v{version}: value changed");
        assert_eq!(again.try_encode(version).as_ref(), Ok(&encoded));
    }

    if let Ok(decoded) = Assignment::decode(bytes) {
        if data.is_empty() {
            // What coordinators send a member the leader gave nothing.
            assert_eq!(decoded, Assignment::default());
        }
        assert!(version >= 0, "assignment v{version} decoded");
        let expected = Assignment {
            partitions: grouped(&decoded.partitions),
            ..decoded.clone()
        };
        let encoded = decoded
            .try_encode(version)
            .unwrap_or_else(|e| panic!("assignment v{version}: decoded, does not encode: {e}"));
        let written = version.min(ASSIGNMENT_MAX_VERSION);
        assert_eq!(encoded[..2], written.to_be_bytes(), "assignment version");
        let again = Assignment::decode(encoded.clone())
            .unwrap_or_else(|e| panic!("assignment v{version}: re-encoded, fails: {e}"));
        assert_eq!(again, expected, "assignment v{version}: value changed");
        assert_eq!(again.try_encode(version).as_ref(), Ok(&encoded));
    }
}

/// `partitions` as the wire lists them: grouped by topic, topics in order of first appearance, each
/// topic's partitions in their order. Written out plainly, as the reference for the encoder's own
/// grouping.
fn grouped(partitions: &[TopicPartition]) -> Vec<TopicPartition> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<TopicPartition>> = Vec::new();
    for tp in partitions {
        let i = *index.entry(&tp.topic).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push(tp.clone());
    }
    groups.concat()
}

// ---------------------------------------------------------------------------------------------
// compression
// ---------------------------------------------------------------------------------------------

/// The most bytes one input expands to.
const EXPANDED_MAX: usize = 1 << 20;

/// Input: `mode u8 | program`. Mode bit 0 clear: the program itself is the data. Set: the program
/// is run to make data with repeats in it, as compressors meet them: each step is a byte `op`;
/// `op < 128` copies the next `op + 1` bytes as they are, otherwise two bytes give a distance
/// and two a length (scaled by the op's low bits), and that many bytes are copied from that far
/// back (overlapping copies make runs), up to 1 MiB in all.
///
/// Every codec compresses the data and reads it back equal, with a limit of exactly its size;
/// one byte less is refused. Our zstd frame with a byte changed (where the mode says), and the
/// program's raw bytes given to every codec, are refused or read within the limit. ruzstd's zstd
/// frame of the data reads back equal with our decoder.
pub fn compression(data: &[u8]) {
    let Some((&mode, program)) = data.split_first() else {
        return;
    };
    let input = if mode & 1 == 0 {
        program.to_vec()
    } else {
        expand(program)
    };
    for codec in Compression::ALL {
        if !codec.is_available() {
            continue;
        }
        let mut out = BytesMut::new();
        codec
            .compress(&input, &mut out)
            .unwrap_or_else(|e| panic!("{codec:?}: compressing {} bytes: {e}", input.len()));
        let back = codec
            .decompress(&out, input.len())
            .unwrap_or_else(|e| panic!("{codec:?}: reading back {} bytes: {e}", input.len()));
        assert!(
            back[..] == input[..],
            "{codec:?}: {} bytes came back otherwise",
            input.len()
        );
        if !input.is_empty() {
            match codec.decompress(&out, input.len() - 1) {
                Err(ProtocolError::DecompressedTooLarge { .. }) => {}
                other => panic!("{codec:?}: limit not enforced: {other:?}"),
            }
        }
        if codec == Compression::Zstd && !out.is_empty() {
            // Our frame with one byte changed: refused or read within the limit, never a panic.
            let at = usize::from(mode >> 1) * out.len() / 128;
            out[at] ^= 1 << (mode & 7);
            if let Ok(back) = codec.decompress(&out, input.len()) {
                assert!(back.len() <= input.len());
            }
        }
    }
    // The raw bytes as each codec's input: refused or read within the limit, never a panic.
    for codec in Compression::ALL {
        if codec.is_available() {
            if let Ok(back) = codec.decompress(program, 1 << 16) {
                assert!(back.len() <= 1 << 16, "{codec:?}: limit not enforced");
            }
        }
    }
    // Another encoder's frame (ruzstd's, with its own choices of blocks and tables) reads back.
    let theirs =
        ruzstd::encoding::compress_to_vec(&input[..], ruzstd::encoding::CompressionLevel::Fastest);
    let back = Compression::Zstd
        .decompress(&theirs, input.len())
        .unwrap_or_else(|e| panic!("zstd: reading ruzstd's frame of {} bytes: {e}", input.len()));
    assert!(
        back[..] == input[..],
        "zstd: ruzstd's frame came back otherwise"
    );
}

fn expand(program: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let mut rest = program;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        if op < 128 {
            let n = (usize::from(op) + 1).min(rest.len());
            out.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        } else {
            let Some((args, tail)) = rest.split_first_chunk::<4>() else {
                break;
            };
            rest = tail;
            let distance = usize::from(u16::from_le_bytes([args[0], args[1]])) + 1;
            let length = usize::from(u16::from_le_bytes([args[2], args[3]])) << (op & 3);
            if distance > out.len() {
                continue;
            }
            for _ in 0..length.min(EXPANDED_MAX - out.len()) {
                out.push(out[out.len() - distance]);
            }
        }
        if out.len() >= EXPANDED_MAX {
            break;
        }
    }
    out
}
