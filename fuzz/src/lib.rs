//! The check logic behind the fuzz targets of kbus-protocol.
//!
//! Each target in `fuzz_targets/` is a one-line call into [`checks`]; the protocol crate's
//! `tests/fuzz_corpus.rs` includes the same file to replay the committed corpus under `cargo test`,
//! so there is one copy of every property.

#[path = "checks.rs"]
pub mod checks;
