//! The vocabulary between the consuming state and the engine that runs its IO: the jobs the state
//! plans ([`Job`], in a [`Plan`]), what they come back with ([`Outcome`]), and the book of jobs in
//! flight. Plain data at the bottom of the consumer: the state ([`super::state`]), the planner
//! ([`super::plan`]) and the IO edge ([`super::engine`], [`super::fetcher`],
//! [`super::list_offsets`]) all speak it, and it knows none of them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use kbus_protocol::error_code::ErrorCode;

use super::decode::Decoded;
use crate::cluster::Metadata;
use crate::error::{Error, Result};
use crate::list_offsets::{Listed, OffsetSpec};
use crate::TopicPartition;

/// One partition of a fetch.
#[derive(Debug, Clone)]
pub(crate) struct FetchTarget {
    /// The partition.
    pub tp: TopicPartition,
    /// Its topic, shared with the records.
    pub topic: Arc<str>,
    /// The partition's epoch when planned.
    pub epoch: u64,
    /// The offset to fetch from.
    pub offset: i64,
    /// The leader epoch metadata gave, for fencing (-1: unknown).
    pub leader_epoch: i32,
    /// The most bytes to ask for.
    pub max_bytes: i32,
}

/// One fetch request to one broker.
#[derive(Debug, Clone)]
pub(crate) struct FetchJob {
    /// The broker id.
    pub broker: i32,
    /// The most bytes for the whole request.
    pub max_bytes: i32,
    /// The partitions.
    pub targets: Vec<FetchTarget>,
}

/// Work for the engine to run.
#[derive(Debug, Clone)]
pub(crate) enum Job {
    /// Fetch records.
    Fetch(FetchJob),
    /// Look up the group's committed offsets of these partitions.
    Committed(Vec<TopicPartition>),
    /// Look up the earliest or latest offsets.
    Reset(Vec<(TopicPartition, OffsetSpec)>),
    /// Look up the leaders of these topics; `refresh` asks the brokers even when the cached
    /// metadata knows the topics (it named no leader, or a leader that refused).
    Metadata {
        /// The topics.
        topics: Vec<String>,
        /// Skip the cache.
        refresh: bool,
    },
}

/// What the engine should start now, and when to plan again at the latest.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Jobs with their ids.
    pub jobs: Vec<(u64, Job)>,
    /// The earliest backoff that ends; plan again then.
    pub wake_at: Option<Instant>,
}

/// How one partition of a fetch came back.
#[derive(Debug)]
pub(crate) enum PartitionOutcome {
    /// Data (possibly none), decoded.
    Data {
        /// The records and where to continue.
        decoded: Decoded,
        /// The high watermark.
        high_watermark: i64,
        /// The last stable offset.
        last_stable_offset: i64,
        /// The log start offset.
        log_start_offset: i64,
    },
    /// The broker's error code for the partition.
    Error(ErrorCode),
}

/// How a fetch came back.
#[derive(Debug)]
pub(crate) enum FetchOutcome {
    /// The request failed as a whole (no connection, a timeout, ...); `stale` when the cluster
    /// said metadata must be refreshed.
    Failed {
        /// What went wrong.
        error: Error,
        /// True when the leader may have moved.
        stale: bool,
    },
    /// Answered: the outcome of each partition the broker answered for.
    Done {
        /// The broker's address, to name in errors.
        broker: String,
        /// Per partition.
        partitions: Vec<(FetchTarget, PartitionOutcome)>,
    },
}

/// The result of a job.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Of [`Job::Fetch`].
    Fetch(FetchOutcome),
    /// Of [`Job::Committed`]: the committed offsets found; partitions without one are left out.
    Committed(Result<HashMap<TopicPartition, i64>>),
    /// Of [`Job::Reset`]: the offsets found, and why others were not.
    Reset(Listed),
    /// Of [`Job::Metadata`].
    Metadata(Result<Arc<Metadata>>),
    /// The job's task ended without an answer.
    Lost,
}

/// What is known about a job in flight.
#[derive(Debug)]
pub(crate) struct JobInfo {
    /// The partitions it covers, with their epochs when planned.
    pub partitions: Vec<(TopicPartition, u64)>,
    /// The broker a fetch goes to.
    pub broker: Option<i32>,
    /// The prefetch bytes a fetch reserved.
    pub reserved: usize,
    /// True for the metadata lookup.
    pub metadata: bool,
}

/// The jobs in flight.
#[derive(Debug, Default)]
pub(crate) struct JobBook {
    /// The jobs by id.
    pub jobs: HashMap<u64, JobInfo>,
    /// The brokers a fetch is in flight to.
    pub brokers: HashSet<i32>,
    /// A metadata lookup is in flight.
    pub metadata: bool,
    next_id: u64,
    /// Which partitions a fetch serves first: rotated every plan, so all get their turn.
    pub rotation: usize,
}

impl JobBook {
    /// Records a job started now; returns its id.
    pub fn start(&mut self, info: JobInfo) -> u64 {
        self.next_id += 1;
        if let Some(b) = info.broker {
            self.brokers.insert(b);
        }
        self.metadata |= info.metadata;
        self.jobs.insert(self.next_id, info);
        self.next_id
    }

    /// True while no job is in flight.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}
