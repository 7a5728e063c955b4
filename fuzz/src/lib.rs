//! The check logic behind the fuzz targets of kbus-protocol and of the bus's event reader.
//!
//! Each target in `fuzz_targets/` is a one-line call into [`checks`]; the protocol crate's
//! `tests/fuzz_corpus.rs` includes the same file to replay the committed corpus under `cargo test`,
//! so there is one copy of every property.

#[path = "checks.rs"]
pub mod checks;

/// The bus envelope check: `tests/bus_envelope_corpus.rs` of the root crate replays its corpus.
#[path = "bus_envelope.rs"]
pub mod bus_envelope;
