//! The producer: partitioning, per-partition accumulation, per-broker sending, retries and
//! idempotence.
