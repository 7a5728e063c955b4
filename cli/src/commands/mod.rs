//! One file per command.

pub mod bus;
pub mod consume;
pub mod dlq;
pub mod groups;
pub mod metadata;
pub mod perf;
pub mod produce;
pub mod topics;
