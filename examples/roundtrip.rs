//! A produce/consume round trip spoken in raw protocol messages, over a plain blocking socket.
//!
//! This is what the protocol crate alone can do with a real broker before the async client exists:
//! negotiate versions with ApiVersions, create a topic, produce record batches (one codec per
//! partition), then fetch everything back and check it record by record.
//!
//! ```text
//! cargo run --example roundtrip -- 127.0.0.1:9092 [records-per-partition]
//! ```
//! `scripts/demo` starts a local tansu broker and runs this against it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kbus_protocol::compression::Compression;
use kbus_protocol::error_code::ErrorCode;
use kbus_protocol::messages::{
    create_topics::{CreatableTopic, CreateTopicsRequest},
    fetch::{FetchPartition, FetchRequest, FetchTopic},
    metadata::{MetadataRequest, MetadataRequestTopic},
    produce::{ProducePartition, ProduceRequest, ProduceTopic},
    ApiVersionsRequest,
};
use kbus_protocol::record::{BatchDecoder, Header, RecordBatchBuilder};
use kbus_protocol::{
    encode_request, negotiate_all, ApiKey, Decoder, Message, Request, RequestHeader, ResponseHeader,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One blocking connection that sends a request and waits for its answer.
pub struct Connection {
    stream: TcpStream,
    correlation_id: i32,
    versions: HashMap<ApiKey, i16>,
}

impl Connection {
    /// Connects and negotiates API versions with the broker.
    pub fn connect(addr: &str) -> Result<Self, Error> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        let mut conn = Connection {
            stream,
            correlation_id: 0,
            versions: HashMap::new(),
        };
        let req = ApiVersionsRequest {
            client_software_name: "kbus-roundtrip".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let resp = conn.send_at(&req, 3)?;
        if resp.error_code != 0 {
            return Err(format!("ApiVersions: {}", ErrorCode(resp.error_code)).into());
        }
        conn.versions = negotiate_all(resp.ranges()).into_iter().collect();
        Ok(conn)
    }

    /// The negotiated version of `api`.
    pub fn version(&self, api: ApiKey) -> Result<i16, Error> {
        self.versions
            .get(&api)
            .copied()
            .ok_or_else(|| format!("the broker shares no version of {api:?} with kbus").into())
    }

    /// Sends `req` at the negotiated version and returns the decoded response.
    pub fn send<R: Request>(&mut self, req: &R) -> Result<R::Response, Error> {
        let version = self.version(R::API_KEY)?;
        self.send_at(req, version)
    }

    fn send_at<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response, Error> {
        self.correlation_id += 1;
        let header = RequestHeader::new(R::API_KEY, version, self.correlation_id, Some("kbus"));
        let mut frame = BytesMut::new();
        encode_request(&header, req, &mut frame)?;
        self.stream.write_all(&frame)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        let size = usize::try_from(size).map_err(|_| format!("negative frame size {size}"))?;
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body)?;
        let mut d = Decoder::new(Bytes::from(body));
        let rh = ResponseHeader::decode(&mut d, R::API_KEY, version)?;
        if rh.correlation_id != self.correlation_id {
            return Err(format!(
                "correlation id {} answered, {} expected",
                rh.correlation_id, self.correlation_id
            )
            .into());
        }
        Ok(R::Response::decode(&mut d, version)?)
    }
}

/// What a round trip did.
#[derive(Debug)]
pub struct Summary {
    /// Records produced and read back.
    pub records: usize,
    /// Partitions used.
    pub partitions: usize,
    /// Versions used for Produce and Fetch.
    pub produce_version: i16,
    /// Version used for Fetch.
    pub fetch_version: i16,
}

fn value_for(partition: usize, i: usize) -> Vec<u8> {
    format!(
        "{{\"partition\":{partition},\"n\":{i},\"pad\":\"{}\"}}",
        "x".repeat(i % 50)
    )
    .into_bytes()
}

/// Creates `topic` with one partition per codec, produces `per_partition` records to each, fetches
/// them back and checks every key, value and header.
pub fn run(addr: &str, topic: &str, per_partition: usize) -> Result<Summary, Error> {
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut conn = Connection::connect(addr)?;

    let created = conn.send(&CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: topic.into(),
            num_partitions: codecs.len() as i32,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    })?;
    for t in &created.topics {
        let code = ErrorCode(t.error_code);
        if code.is_err() && code != ErrorCode::TOPIC_ALREADY_EXISTS {
            return Err(format!("CreateTopics {topic}: {code}").into());
        }
    }

    let metadata = conn.send(&MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(topic.into()),
            ..Default::default()
        }]),
        ..Default::default()
    })?;
    let meta = metadata
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(topic))
        .ok_or("topic missing from metadata")?;
    let topic_id = meta.topic_id;

    // Produce: one batch per partition, each with its own codec.
    let base_ts = 1_764_000_000_000;
    let mut partitions = Vec::new();
    for (p, codec) in codecs.iter().enumerate() {
        let mut b = RecordBatchBuilder::new(*codec);
        for i in 0..per_partition {
            let key = format!("key-{p}-{i}");
            let headers = [Header::new("n", Some(i.to_string()))];
            b.push(
                base_ts + i as i64,
                Some(key.as_bytes()),
                Some(&value_for(p, i)),
                &headers,
            )?;
        }
        partitions.push(ProducePartition {
            index: p as i32,
            records: Some(b.build()?),
            ..Default::default()
        });
    }
    let produced = conn.send(&ProduceRequest {
        acks: -1,
        timeout_ms: 10_000,
        topics: vec![ProduceTopic {
            name: topic.into(),
            partitions,
            ..Default::default()
        }],
        ..Default::default()
    })?;
    for t in &produced.responses {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(
                    format!("Produce {topic}/{}: {}", p.index, ErrorCode(p.error_code)).into(),
                );
            }
        }
    }

    // Fetch everything back, partition by partition, from offset 0.
    let mut offsets = vec![0i64; codecs.len()];
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen < per_partition * codecs.len() {
        if Instant::now() > deadline {
            return Err(format!("only {seen} records fetched back").into());
        }
        let fetched = conn.send(&FetchRequest {
            replica_id: -1,
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: topic.into(),
                topic_id,
                partitions: offsets
                    .iter()
                    .enumerate()
                    .map(|(p, &o)| FetchPartition {
                        partition: p as i32,
                        fetch_offset: o,
                        partition_max_bytes: 1024 * 1024,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })?;
        for t in &fetched.responses {
            for pd in &t.partitions {
                let p = pd.partition_index as usize;
                if pd.error_code != 0 {
                    return Err(format!("Fetch {topic}/{p}: {}", ErrorCode(pd.error_code)).into());
                }
                let Some(records) = &pd.records else { continue };
                for batch in BatchDecoder::new(records.clone()) {
                    let batch = batch?;
                    for r in batch.records() {
                        let r = r?;
                        if r.offset < offsets[p] {
                            continue;
                        }
                        let i = r.offset as usize;
                        let want_key = format!("key-{p}-{i}");
                        if r.key.as_deref() != Some(want_key.as_bytes())
                            || r.value.as_deref() != Some(&value_for(p, i)[..])
                            || r.headers.first().and_then(|h| h.value_str()) != Some(&i.to_string())
                            || r.timestamp != base_ts + i as i64
                        {
                            return Err(format!("record {p}/{i} came back different: {r:?}").into());
                        }
                        offsets[p] = r.offset + 1;
                        seen += 1;
                    }
                }
            }
        }
    }
    Ok(Summary {
        records: seen,
        partitions: codecs.len(),
        produce_version: conn.version(ApiKey::Produce)?,
        fetch_version: conn.version(ApiKey::Fetch)?,
    })
}

#[allow(dead_code)]
fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let per_partition = args.next().map(|n| n.parse()).transpose()?.unwrap_or(1000);
    let topic = format!("kbus-roundtrip-{}", std::process::id());
    let started = Instant::now();
    let s = run(&addr, &topic, per_partition)?;
    println!(
        "round trip OK: {} records over {} partitions (none, gzip, lz4, zstd) produced and read back from {addr} \
         in {:.2?} (Produce v{}, Fetch v{})",
        s.records,
        s.partitions,
        started.elapsed(),
        s.produce_version,
        s.fetch_version
    );
    Ok(())
}
