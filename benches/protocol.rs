//! Codec benchmarks, kbus-protocol side by side with the `kafka-protocol` crate on identical input.
//!
//! Run with `cargo bench --bench protocol`. After the measurements, a table prints each pair's
//! throughput ratio (kbus / kafka-protocol, higher is better), read from criterion's own estimates,
//! and a second table measures the same pairs in alternating rounds. Criterion measures one side
//! after the other, so on a machine with other load the two sides can see different conditions;
//! the alternating rounds expose both sides to the same load and give the steadier ratio.

use std::hint::black_box;

#[path = "common/record.rs"]
mod record;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};

mod peer {
    pub use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };
}

use kbus_protocol::compression::Compression;
use kbus_protocol::record::{BatchDecoder, Record, RecordBatchBuilder};

const RECORDS: usize = 1_000;
const VALUE_SIZE: usize = 100;
const BASE_TS: i64 = 1_764_000_000_000;

/// The shared input: 1,000 records with a short key and a 100-byte value.
fn input() -> Vec<(Bytes, Bytes)> {
    (0..RECORDS)
        .map(|i| {
            let key = Bytes::from(format!("key-{i:06}"));
            let value: Vec<u8> = (0..VALUE_SIZE)
                .map(|j| b'a' + ((i * 7 + j) % 26) as u8)
                .collect();
            (key, Bytes::from(value))
        })
        .collect()
}

fn kbus_encode(input: &[(Bytes, Bytes)], codec: Compression) -> Bytes {
    let mut b = RecordBatchBuilder::with_capacity(codec, RECORDS * (VALUE_SIZE + 24));
    for (i, (k, v)) in input.iter().enumerate() {
        b.push(BASE_TS + i as i64, Some(k), Some(v), &[]).unwrap();
    }
    b.build().unwrap()
}

fn peer_records(input: &[(Bytes, Bytes)]) -> Vec<peer::Record> {
    input
        .iter()
        .enumerate()
        .map(|(i, (k, v))| peer::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: peer::TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol starts a new batch whenever offset - sequence changes, so the sequence
            // must advance with the offset for all 1,000 records to land in one batch as ours do.
            sequence: i as i32,
            timestamp: BASE_TS + i as i64,
            key: Some(k.clone()),
            value: Some(v.clone()),
            headers: Default::default(),
        })
        .collect()
}

fn peer_encode(records: &[peer::Record], codec: peer::Compression) -> Bytes {
    let mut buf = BytesMut::with_capacity(RECORDS * (VALUE_SIZE + 24));
    let opts = peer::RecordEncodeOptions {
        version: 2,
        compression: codec,
    };
    peer::RecordBatchEncoder::encode(&mut buf, records, &opts).unwrap();
    buf.freeze()
}

fn kbus_decode(batch: &Bytes) -> Vec<Record> {
    let mut out = Vec::with_capacity(RECORDS);
    for b in BatchDecoder::new(batch.clone()) {
        let b = b.unwrap();
        for r in b.records() {
            out.push(r.unwrap());
        }
    }
    out
}

fn peer_decode(batch: &Bytes) -> Vec<peer::Record> {
    let mut buf = batch.clone();
    peer::RecordBatchDecoder::decode(&mut buf).unwrap().records
}

fn record_batches(c: &mut Criterion) {
    let input = input();
    let peer_input = peer_records(&input);
    for (name, ours, theirs) in [
        ("none", Compression::None, peer::Compression::None),
        ("gzip", Compression::Gzip, peer::Compression::Gzip),
    ] {
        // Both sides must accept each other's bytes, or the comparison means nothing.
        let our_batch = kbus_encode(&input, ours);
        let their_batch = peer_encode(&peer_input, theirs);
        if ours == Compression::None {
            assert_eq!(
                our_batch.len(),
                their_batch.len(),
                "both sides must write one identical-size batch"
            );
        }
        assert_eq!(peer_decode(&our_batch).len(), RECORDS);
        assert_eq!(kbus_decode(&their_batch).len(), RECORDS);

        let mut g = c.benchmark_group(format!("record_batch_encode_{name}"));
        g.throughput(Throughput::Elements(RECORDS as u64));
        g.bench_function("kbus", |b| b.iter(|| kbus_encode(black_box(&input), ours)));
        g.bench_function("kafka-protocol", |b| {
            b.iter(|| peer_encode(black_box(&peer_input), theirs))
        });
        g.finish();

        let mut g = c.benchmark_group(format!("record_batch_decode_{name}"));
        g.throughput(Throughput::Elements(RECORDS as u64));
        g.bench_with_input(
            BenchmarkId::from_parameter("kbus"),
            &our_batch,
            |b, batch| b.iter(|| kbus_decode(black_box(batch))),
        );
        g.bench_with_input(
            BenchmarkId::from_parameter("kafka-protocol"),
            &our_batch,
            |b, batch| b.iter(|| peer_decode(black_box(batch))),
        );
        g.finish();
    }
}

/// Partitions in the Produce request and Fetch response benchmarks (the 1,000 records are spread
/// over them, one batch each).
const PARTITIONS: usize = 4;
const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;

fn kbus_produce(input: &[(Bytes, Bytes)]) -> BytesMut {
    use kbus_protocol::messages::produce::{ProducePartition, ProduceRequest, ProduceTopic};
    use kbus_protocol::{encode_request, ApiKey, RequestHeader};
    let per = input.len() / PARTITIONS;
    let partitions = input
        .chunks(per)
        .enumerate()
        .map(|(p, chunk)| {
            let mut b =
                RecordBatchBuilder::with_capacity(Compression::None, per * (VALUE_SIZE + 24));
            for (i, (k, v)) in chunk.iter().enumerate() {
                b.push(BASE_TS + i as i64, Some(k), Some(v), &[]).unwrap();
            }
            ProducePartition {
                index: p as i32,
                records: Some(b.build().unwrap()),
                ..Default::default()
            }
        })
        .collect();
    let req = ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            name: "bench".into(),
            partitions,
            ..Default::default()
        }],
        ..Default::default()
    };
    let header = RequestHeader::new(ApiKey::Produce, PRODUCE_VERSION, 7, Some("bench"));
    let mut buf = BytesMut::with_capacity(input.len() * (VALUE_SIZE + 32));
    encode_request(&header, &req, &mut buf).unwrap();
    buf
}

fn peer_produce(records: &[peer::Record]) -> BytesMut {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let per = records.len() / PARTITIONS;
    let partition_data = records
        .chunks(per)
        .enumerate()
        .map(|(p, chunk)| {
            let mut b = BytesMut::with_capacity(per * (VALUE_SIZE + 24));
            let opts = peer::RecordEncodeOptions {
                version: 2,
                compression: peer::Compression::None,
            };
            peer::RecordBatchEncoder::encode(&mut b, chunk, &opts).unwrap();
            PartitionProduceData::default()
                .with_index(p as i32)
                .with_records(Some(b.freeze()))
        })
        .collect();
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("bench")))
            .with_partition_data(partition_data)]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(PRODUCE_VERSION)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("bench")));
    let mut buf = BytesMut::with_capacity(records.len() * (VALUE_SIZE + 32));
    buf.extend_from_slice(&[0; 4]);
    header.encode(&mut buf, 2).unwrap();
    req.encode(&mut buf, PRODUCE_VERSION).unwrap();
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf
}

/// A Fetch response body (after its header) holding the 1,000 records in PARTITIONS batches.
fn fetch_response_body(input: &[(Bytes, Bytes)]) -> Bytes {
    use kbus_protocol::messages::fetch::{FetchResponse, FetchableTopicResponse, PartitionData};
    use kbus_protocol::Message;
    let per = input.len() / PARTITIONS;
    let partitions = input
        .chunks(per)
        .enumerate()
        .map(|(p, chunk)| {
            let mut b = RecordBatchBuilder::new(Compression::None).base_offset((p * per) as i64);
            for (i, (k, v)) in chunk.iter().enumerate() {
                b.push(BASE_TS + i as i64, Some(k), Some(v), &[]).unwrap();
            }
            PartitionData {
                partition_index: p as i32,
                high_watermark: 10_000,
                last_stable_offset: 10_000,
                log_start_offset: 0,
                aborted_transactions: None,
                records: Some(b.build().unwrap()),
                ..Default::default()
            }
        })
        .collect();
    let resp = FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: "bench".into(),
            partitions,
            ..Default::default()
        }],
        ..Default::default()
    };
    resp.to_bytes(FETCH_VERSION).unwrap()
}

fn kbus_fetch_decode(body: &Bytes) -> usize {
    use kbus_protocol::messages::FetchResponse;
    use kbus_protocol::{Decoder, Message};
    let resp = FetchResponse::decode(&mut Decoder::new(body.clone()), FETCH_VERSION).unwrap();
    let mut n = 0;
    for t in &resp.responses {
        for p in &t.partitions {
            n += kbus_decode(p.records.as_ref().unwrap()).len();
        }
    }
    n
}

fn peer_fetch_decode(body: &Bytes) -> usize {
    use kafka_protocol::messages::FetchResponse;
    use kafka_protocol::protocol::Decodable;
    let resp = FetchResponse::decode(&mut body.clone(), FETCH_VERSION).unwrap();
    let mut n = 0;
    for t in &resp.responses {
        for p in &t.partitions {
            n += peer_decode(p.records.as_ref().unwrap()).len();
        }
    }
    n
}

fn messages(c: &mut Criterion) {
    let input = input();
    let peer_input = peer_records(&input);
    // Identical wire bytes from both encoders (same records, same batch layout) make the comparison fair.
    let (ours, theirs) = (kbus_produce(&input), peer_produce(&peer_input));
    assert!(
        ours.len().abs_diff(theirs.len()) < 64,
        "{} vs {}",
        ours.len(),
        theirs.len()
    );
    let body = fetch_response_body(&input);
    assert_eq!(kbus_fetch_decode(&body), RECORDS);
    assert_eq!(peer_fetch_decode(&body), RECORDS);

    let mut g = c.benchmark_group("produce_request_encode");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function("kbus", |b| b.iter(|| kbus_produce(black_box(&input))));
    g.bench_function("kafka-protocol", |b| {
        b.iter(|| peer_produce(black_box(&peer_input)))
    });
    g.finish();

    let mut g = c.benchmark_group("fetch_response_decode");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function("kbus", |b| b.iter(|| kbus_fetch_decode(black_box(&body))));
    g.bench_function("kafka-protocol", |b| {
        b.iter(|| peer_fetch_decode(black_box(&body)))
    });
    g.finish();
}

criterion_group!(benches, record_batches, messages);

/// Reads criterion's mean estimate (nanoseconds per iteration) for one benchmark.
fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let path = format!("target/criterion/{group}/{function}/new/estimates.json");
    let dir = std::env::var("CARGO_TARGET_DIR").ok();
    let text = match dir {
        Some(d) => std::fs::read_to_string(path.replacen("target", &d, 1)).ok(),
        None => std::fs::read_to_string(&path)
            .or_else(|_| std::fs::read_to_string(format!("../{path}")))
            .ok(),
    }?;
    let mean = text.split("\"mean\"").nth(1)?;
    let pe = mean.split("\"point_estimate\":").nth(1)?;
    pe.split([',', '}']).next()?.trim().parse().ok()
}

fn print_ratios() {
    let groups = [
        "record_batch_encode_none",
        "record_batch_decode_none",
        "record_batch_encode_gzip",
        "record_batch_decode_gzip",
        "produce_request_encode",
        "fetch_response_decode",
    ];
    println!(
        "\nthroughput ratio kbus / kafka-protocol (same input, same run; > 1 means kbus is faster)"
    );
    for g in groups {
        match (mean_ns(g, "kbus"), mean_ns(g, "kafka-protocol")) {
            (Some(ours), Some(theirs)) => println!(
                "  {g:<28} {:>6.2}x   (kbus {:>9.1} µs, kafka-protocol {:>9.1} µs)",
                theirs / ours,
                ours / 1000.0,
                theirs / 1000.0
            ),
            _ => println!("  {g:<28} (not measured in this run)"),
        }
    }
}

/// Times `n` calls of `f`, in nanoseconds per call.
fn per_call(n: u32, f: &mut dyn FnMut()) -> f64 {
    let start = std::time::Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

/// Measures the two sides in alternating rounds (a few milliseconds each, the order swapped every
/// round) and returns the per-round ratios sorted: load from elsewhere on the machine then hits both
/// sides of a round alike, where criterion's sequential measurements can catch one side in a quiet
/// moment and the other in a busy one.
fn alternating_ratios(ours: &mut dyn FnMut(), theirs: &mut dyn FnMut(), rounds: usize) -> Vec<f64> {
    let one = per_call(10, ours).max(per_call(10, theirs));
    let n = ((5_000_000.0 / one) as u32).max(1);
    let mut ratios: Vec<f64> = (0..rounds)
        .map(|round| {
            if round % 2 == 0 {
                let a = per_call(n, ours);
                per_call(n, theirs) / a
            } else {
                let b = per_call(n, theirs);
                b / per_call(n, ours)
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios
}

fn print_alternating_ratios() {
    let input = input();
    let peer_input = peer_records(&input);
    let none = kbus_encode(&input, Compression::None);
    let gzip = kbus_encode(&input, Compression::Gzip);
    let body = fetch_response_body(&input);
    type Side<'a> = Box<dyn FnMut() + 'a>;
    let pairs: Vec<(&str, Side, Side)> = vec![
        (
            "record_batch_encode_none",
            Box::new(|| {
                black_box(kbus_encode(&input, Compression::None));
            }),
            Box::new(|| {
                black_box(peer_encode(&peer_input, peer::Compression::None));
            }),
        ),
        (
            "record_batch_decode_none",
            Box::new(|| {
                black_box(kbus_decode(&none));
            }),
            Box::new(|| {
                black_box(peer_decode(&none));
            }),
        ),
        (
            "record_batch_encode_gzip",
            Box::new(|| {
                black_box(kbus_encode(&input, Compression::Gzip));
            }),
            Box::new(|| {
                black_box(peer_encode(&peer_input, peer::Compression::Gzip));
            }),
        ),
        (
            "record_batch_decode_gzip",
            Box::new(|| {
                black_box(kbus_decode(&gzip));
            }),
            Box::new(|| {
                black_box(peer_decode(&gzip));
            }),
        ),
        (
            "produce_request_encode",
            Box::new(|| {
                black_box(kbus_produce(&input));
            }),
            Box::new(|| {
                black_box(peer_produce(&peer_input));
            }),
        ),
        (
            "fetch_response_decode",
            Box::new(|| {
                black_box(kbus_fetch_decode(&body));
            }),
            Box::new(|| {
                black_box(peer_fetch_decode(&body));
            }),
        ),
    ];
    println!(
        "\nthe same ratios measured in 31 alternating rounds of ~5 ms per side (median, quartiles)"
    );
    for (name, mut ours, mut theirs) in pairs {
        let r = alternating_ratios(&mut ours, &mut theirs, 31);
        println!(
            "  {name:<28} {:>6.2}x   (quartiles {:.2}x .. {:.2}x)",
            r[15], r[7], r[23]
        );
        let micros = |side| mean_ns(name, side).map_or(f64::NAN, |ns| ns / 1000.0);
        record::record(record::Row {
            group: "codecs",
            row: &name
                .replace("_none", ", uncompressed")
                .replace("_gzip", ", gzip")
                .replace('_', " "),
            peer: "kafka-protocol 0.18",
            ratio: r[15],
            kbus: micros("kbus"),
            peer_value: micros("kafka-protocol"),
            unit: "µs per call (ratio: median of 31 alternating rounds)",
            command: "cargo bench --bench protocol",
        });
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench` passes --bench; `cargo test --benches` runs each benchmark once without it.
    if std::env::args().any(|a| a == "--bench") {
        print_ratios();
        print_alternating_ratios();
    }
}
