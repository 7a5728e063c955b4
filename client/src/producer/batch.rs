//! One producer batch: the records of one partition travelling together, from the first append to
//! the broker's answer (and through retries).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kbus_protocol::compression::Compression;
use kbus_protocol::record::{restamp_producer, RecordBatchBuilder};

use super::record::{BatchDelivery, BatchOutcome};
use crate::error::{Error, Result};

/// A batch of one partition.
#[derive(Debug)]
pub(crate) struct ProducerBatch {
    /// Orders batches for `flush`: every batch made before a flush started must finish.
    pub id: u64,
    pub topic: Arc<str>,
    pub partition: i32,
    /// Records are appended here until the batch is sent for the first time.
    builder: Option<RecordBatchBuilder>,
    /// The encoded batch, kept for retries so a retry resends the very same bytes (and
    /// sequence numbers).
    built: Option<Bytes>,
    pub records: i32,
    pub delivery: Arc<BatchDelivery>,
    pub created: Instant,
    /// Bytes of `buffer.memory` this batch holds until it completes.
    pub memory: usize,
    pub attempts: u32,
    pub retry_at: Option<Instant>,
    /// The idempotent sequence of its first record, fixed when it is first sent.
    pub base_sequence: Option<i32>,
    pub last_error: Option<Arc<Error>>,
    /// A record did not fit ([`mark_full`](Self::mark_full)).
    full: bool,
}

impl ProducerBatch {
    pub fn new(
        id: u64,
        topic: Arc<str>,
        partition: i32,
        compression: Compression,
        level: Option<u32>,
        capacity: usize,
        now: Instant,
    ) -> Self {
        ProducerBatch {
            id,
            topic,
            partition,
            builder: Some(RecordBatchBuilder::with_capacity(compression, capacity).level(level)),
            built: None,
            records: 0,
            delivery: Arc::new(BatchDelivery::default()),
            created: now,
            memory: 0,
            attempts: 0,
            retry_at: None,
            base_sequence: None,
            last_error: None,
            full: false,
        }
    }

    /// Bytes of records so far (uncompressed, batch header included).
    pub fn size(&self) -> usize {
        match (&self.builder, &self.built) {
            (Some(b), _) => b.size_in_bytes(),
            (None, Some(b)) => b.len(),
            (None, None) => 0,
        }
    }

    /// True while records can still be appended (it has not been sent yet).
    pub fn is_open(&self) -> bool {
        self.builder.is_some()
    }

    /// A record did not fit: no more are appended, and the batch is ready to send now rather than
    /// after `linger.ms` (as the Java client closes a batch for appends).
    pub fn mark_full(&mut self) {
        self.full = true;
    }

    /// True once a record did not fit.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Appends a record; returns its index in the batch.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[kbus_protocol::record::Header],
        memory: usize,
    ) -> Result<i32> {
        let builder = self.builder.as_mut().ok_or(Error::Closed)?;
        builder
            .push(timestamp, key, value, headers)
            .map_err(|source| Error::Encode {
                what: "a record batch",
                source,
            })?;
        self.memory += memory;
        self.records += 1;
        Ok(self.records - 1)
    }

    /// Stamps the idempotent producer identity and sequence (first send only).
    pub fn set_producer(&mut self, producer_id: i64, epoch: i16, base_sequence: i32) {
        if let Some(b) = self.builder.take() {
            self.builder = Some(b.producer(producer_id, epoch, base_sequence));
            self.base_sequence = Some(base_sequence);
        }
    }

    /// Numbers a batch that was sent before again, under a new producer epoch (KIP-360): its
    /// encoded bytes get the new producer fields and CRC, its records stay as they are.
    pub fn restamp(&mut self, producer_id: i64, epoch: i16, base_sequence: i32) -> Result<()> {
        if let Some(b) = self.builder.take() {
            self.builder = Some(b.producer(producer_id, epoch, base_sequence));
        }
        if let Some(bytes) = &self.built {
            let again =
                restamp_producer(bytes, producer_id, epoch, base_sequence).map_err(|source| {
                    Error::Encode {
                        what: "a record batch",
                        source,
                    }
                })?;
            self.built = Some(again);
        }
        self.base_sequence = Some(base_sequence);
        Ok(())
    }

    /// Takes what is needed to encode the batch: the builder on the first send, the bytes after.
    pub fn take_payload(&mut self) -> Payload {
        match self.builder.take() {
            Some(b) => Payload::Build(b),
            None => Payload::Built(self.built.clone().unwrap_or_default()),
        }
    }

    /// Keeps the encoded bytes (after the first send) for retries.
    pub fn set_built(&mut self, bytes: Bytes) {
        self.built = Some(bytes);
    }

    /// Resolves every record's delivery future.
    pub fn complete(&self, outcome: BatchOutcome) {
        self.delivery.complete(outcome);
    }
}

/// A batch's bytes on their way into a request.
#[derive(Debug)]
pub(crate) enum Payload {
    /// First send: compress and encode (done on the request's task, not the sender loop).
    Build(RecordBatchBuilder),
    /// A retry: the bytes of the first send.
    Built(Bytes),
}

impl Payload {
    pub fn into_bytes(self) -> Result<Bytes> {
        match self {
            Payload::Build(b) => b.build().map_err(|source| Error::Encode {
                what: "a record batch",
                source,
            }),
            Payload::Built(b) => Ok(b),
        }
    }
}
