//! Consumer groups (the classic protocol): membership, assignors, the consumer protocol's
//! subscription and assignment formats, and [`Group`], the task that keeps a member in its group.

pub mod assignor;
pub mod consumer_protocol;
pub mod coordinator;
pub mod membership;
pub(crate) mod offsets;

pub use coordinator::{Group, GroupConfig, GroupEvent, RevokeAck};
pub use offsets::{is_commit_fenced, Generation};
