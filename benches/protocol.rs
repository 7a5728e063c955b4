//! Codec benchmarks, kbus-protocol side by side with the `kafka-protocol` crate on identical input.
//!
//! Run with `cargo bench --bench protocol`. After the measurements, a table prints each pair's
//! throughput ratio (kbus / kafka-protocol, higher is better), read from criterion's own estimates.

use std::hint::black_box;

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
            sequence: -1,
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

criterion_group!(benches, record_batches);

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

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench` passes --bench; `cargo test --benches` runs each benchmark once without it.
    if std::env::args().any(|a| a == "--bench") {
        print_ratios();
    }
}
