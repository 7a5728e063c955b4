//! One file per command.

pub mod consume;
pub mod groups;
pub mod metadata;
pub mod produce;
pub mod topics;
