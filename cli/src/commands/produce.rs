//! `kbus produce`: one record per input line, every one acknowledged (or reported) before exit.

use std::collections::VecDeque;

use kbus::producer::{DeliveryFuture, Producer, ProducerRecord};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::args::Produce;
use crate::failure::{Failure, Kind};
use crate::settings::key_value;

/// Deliveries awaited at most at once: the producer batches them, this bounds memory on a long
/// input.
const IN_FLIGHT: usize = 10_000;

pub async fn run(mut properties: Vec<(String, String)>, args: Produce) -> Result<(), Failure> {
    if let Some(codec) = args.compression {
        properties.push(("compression.type".into(), codec.property().into()));
    }
    let headers: Vec<(String, String)> = args
        .headers
        .iter()
        .map(|h| key_value(h, "-H"))
        .collect::<Result<_, _>>()?;
    if args.key_delimiter.as_deref() == Some("") {
        return Err(Failure::usage("-K: the delimiter cannot be empty"));
    }
    let input: Box<dyn AsyncRead + Unpin + Send> = match &args.file {
        Some(path) => Box::new(
            tokio::fs::File::open(path)
                .await
                .map_err(|e| Failure::usage(format!("-f {}: {e}", path.display())))?,
        ),
        None => Box::new(tokio::io::stdin()),
    };
    let producer = Producer::from_properties(properties).await?;
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    let mut pending: VecDeque<(u64, DeliveryFuture)> = VecDeque::new();
    let (mut sent, mut failed, mut line_no) = (0u64, Failed::default(), 0u64);
    // Lines are bytes: values need not be text.
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        line_no += 1;
        let mut record = ProducerRecord::new(&args.topic);
        let value: &[u8] = match &args.key_delimiter {
            Some(delim) => match split_once(&line, delim.as_bytes()) {
                Some((k, v)) => {
                    record = record.key(k.to_vec());
                    v
                }
                None => {
                    eprintln!(
                        "kbus: line {line_no}: no key delimiter {delim:?}; sent without a key"
                    );
                    &line
                }
            },
            None => &line,
        };
        record = record.value(value.to_vec());
        if let Some(key) = &args.key {
            record = record.key(key.as_bytes().to_vec());
        }
        if let Some(p) = args.partition {
            record = record.partition(p);
        }
        for (k, v) in &headers {
            record = record.header(k.as_bytes().to_vec(), v.as_bytes().to_vec());
        }
        match producer.send(record).await {
            Ok(delivery) => pending.push_back((line_no, delivery)),
            Err(e) => failed.add(line_no, &e),
        }
        while pending.len() >= IN_FLIGHT {
            let (n, d) = pending.pop_front().expect("not empty");
            settle(n, d.await, &mut sent, &mut failed);
        }
    }
    for (n, d) in pending {
        settle(n, d.await, &mut sent, &mut failed);
    }
    producer.close().await?;
    eprintln!("kbus: {sent} records produced to {}", args.topic);
    match failed.last {
        None => Ok(()),
        // Nothing went through: the failure's own kind (a dead broker, a refused password).
        Some(kind) if sent == 0 => Err(Failure::new(
            kind,
            format!("all {} records failed", failed.count),
        )),
        Some(_) => Err(Failure::new(
            Kind::Partial,
            format!("{} of {} records failed", failed.count, sent + failed.count),
        )),
    }
}

/// The records that failed: how many, and the kind of the last failure.
#[derive(Default)]
struct Failed {
    count: u64,
    last: Option<Kind>,
}

impl Failed {
    fn add(&mut self, line: u64, e: &kbus::Error) {
        self.count += 1;
        self.last = Some(crate::failure::kind_of(e));
        eprintln!("kbus: line {line}: {e}");
    }
}

fn settle(
    line: u64,
    result: kbus::Result<kbus::producer::RecordMetadata>,
    sent: &mut u64,
    failed: &mut Failed,
) {
    match result {
        Ok(_) => *sent += 1,
        Err(e) => failed.add(line, &e),
    }
}

/// `line` split at the first `delim`.
fn split_once<'a>(line: &'a [u8], delim: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let at = line.windows(delim.len()).position(|w| w == delim)?;
    Some((&line[..at], &line[at + delim.len()..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_splits_at_the_first_delimiter() {
        assert_eq!(
            split_once(b"k::v::w", b"::"),
            Some((&b"k"[..], &b"v::w"[..]))
        );
        assert_eq!(split_once(b"kv", b":"), None);
    }
}
