//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the same checks the fuzz
//! targets run, so every input a fuzzer once found interesting stays a regression test on stable
//! `cargo test`. The checks live in `fuzz/src/checks.rs`, shared with the fuzz targets.
//!
//! The test fails when a corpus directory is missing or empty, or when a directory names no known
//! target, so it cannot pass by finding nothing to replay.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/checks.rs"]
mod checks;

/// Targets whose checks need more than this crate, replayed by another crate's test: the bus's
/// event reader, by the root crate's `tests/bus_envelope_corpus.rs`.
const REPLAYED_ELSEWHERE: &[&str] = &["bus_envelope"];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("corpus directory {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("reading the corpus directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_directory_belongs_to_a_target() {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus directory {} is missing: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("reading the corpus directory").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        assert!(
            checks::TARGETS.iter().any(|(target, _)| *target == name)
                || REPLAYED_ELSEWHERE.contains(&&*name),
            "{} is not the corpus of a known fuzz target",
            path.display()
        );
    }
}

#[test]
fn fuzz_corpus_replays_cleanly() {
    let mut failures = Vec::new();
    for (target, check) in checks::TARGETS {
        let dir = corpus_dir().join(target);
        let files = files(&dir);
        assert!(!files.is_empty(), "corpus {} is empty", dir.display());
        for path in files {
            let data =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failures.push(path.display().to_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus inputs fail their checks:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
