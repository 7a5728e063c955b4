//! Consumer groups (the classic protocol): membership, assignors, the consumer protocol's
//! subscription and assignment formats, and [`Group`], the task that keeps a member in its group.

pub mod assignor;
mod config;
pub mod consumer_protocol;
pub mod coordinator;
pub mod membership;
mod metadata_watch;
pub(crate) mod offsets;

pub use config::GroupConfig;
pub use coordinator::{Group, GroupEvent, RevokeAck};
pub use offsets::{is_commit_fenced, Generation, OffsetAndMetadata};
