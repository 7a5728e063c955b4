//! Consumer groups (the classic protocol): membership, assignors, the consumer protocol's
//! subscription and assignment formats, and [`Group`], the task that keeps a member in its group.

pub mod assignor;
pub mod consumer_protocol;
pub mod coordinator;
pub mod membership;
mod offsets;

pub use coordinator::{is_commit_fenced, Group, GroupConfig, GroupEvent, RevokeAck};
