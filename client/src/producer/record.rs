//! What goes into the producer (a [`ProducerRecord`]) and what comes back (a [`DeliveryFuture`]
//! resolving to [`RecordMetadata`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use kbus_protocol::record::Header;

use crate::error::{Error, Result};

/// A record to produce.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    /// The topic.
    pub topic: String,
    /// The partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// The key (`None` for a null key).
    pub key: Option<Bytes>,
    /// The value (`None` for a tombstone).
    pub value: Option<Bytes>,
    /// The headers.
    pub headers: Vec<Header>,
    /// The timestamp in ms since the epoch; `None` uses the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with no key, value or headers yet.
    pub fn new(topic: impl Into<String>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            ..Default::default()
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Sends the record to this partition, whatever its key.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, Some(value)));
        self
    }

    /// Adds a header whose value is null (Kafka distinguishes it from an empty value).
    pub fn null_header(mut self, key: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, None::<Bytes>));
        self
    }

    /// Sets the timestamp (ms since the epoch).
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
}

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 with `acks=0`, or when the broker reported the batch as a
    /// duplicate of one it already has (idempotent retries) without its offset.
    pub offset: i64,
    /// The record's timestamp: the broker's log-append time when the topic uses it, else the
    /// record's own.
    pub timestamp: i64,
}

/// How a batch ended, shared by the delivery futures of its records.
#[derive(Debug)]
pub(crate) enum BatchOutcome {
    /// Written at `base_offset`; `log_append_time` is -1 unless the topic stamps records.
    Written {
        base_offset: i64,
        log_append_time: i64,
    },
    Failed(Arc<Error>),
}

#[derive(Debug, Default)]
struct DeliveryState {
    outcome: Option<Arc<BatchOutcome>>,
    wakers: Vec<Waker>,
}

/// One batch's completion, shared by its records' futures: one allocation per batch, not per
/// record.
#[derive(Debug, Default)]
pub(crate) struct BatchDelivery {
    state: Mutex<DeliveryState>,
}

impl BatchDelivery {
    pub(crate) fn complete(&self, outcome: BatchOutcome) {
        let wakers = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.outcome.is_some() {
                return;
            }
            st.outcome = Some(Arc::new(outcome));
            std::mem::take(&mut st.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }
}

/// Resolves when the record is acknowledged (or has failed for good). Dropping it does not cancel
/// the send.
#[derive(Debug)]
#[must_use = "the delivery result says whether the record was written"]
pub struct DeliveryFuture {
    pub(crate) batch: Arc<BatchDelivery>,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) index: i32,
    pub(crate) timestamp: i64,
}

impl DeliveryFuture {
    /// The partition the record was placed on.
    pub fn partition(&self) -> i32 {
        self.partition
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let outcome = {
            let mut st = this.batch.state.lock().unwrap_or_else(|e| e.into_inner());
            match &st.outcome {
                Some(o) => o.clone(),
                None => {
                    if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                        st.wakers.push(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
            }
        };
        Poll::Ready(match &*outcome {
            BatchOutcome::Written {
                base_offset,
                log_append_time,
            } => Ok(RecordMetadata {
                topic: this.topic.clone(),
                partition: this.partition,
                offset: if *base_offset < 0 {
                    -1
                } else {
                    base_offset + i64::from(this.index)
                },
                timestamp: if *log_append_time >= 0 {
                    *log_append_time
                } else {
                    this.timestamp
                },
            }),
            BatchOutcome::Failed(e) => Err(match &**e {
                Error::DeliveryTimeout { after, last_error } => Error::DeliveryTimeout {
                    after: *after,
                    last_error: last_error.clone(),
                },
                _ => Error::Delivery {
                    topic: this.topic.to_string(),
                    partition: this.partition,
                    cause: e.clone(),
                },
            }),
        })
    }
}
