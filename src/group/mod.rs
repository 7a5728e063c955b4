//! Consumer groups (the classic protocol): membership, assignors and the consumer protocol's
//! subscription and assignment formats.

pub mod assignor;
