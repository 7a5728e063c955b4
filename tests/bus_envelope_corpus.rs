//! Replays the committed corpus of the `bus_envelope` fuzz target (`fuzz/corpus/bus_envelope/*`)
//! through the check the target runs (`fuzz/src/bus_envelope.rs`): every record value a fuzzer
//! once found interesting stays a regression test of the bus's event reader on stable `cargo test`.

use std::path::Path;

#[path = "../fuzz/src/bus_envelope.rs"]
mod bus_envelope;

#[test]
fn bus_envelope_corpus_replays_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/bus_envelope");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus directory {} is missing: {e}", dir.display()))
        .map(|entry| entry.expect("reading the corpus directory").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    let failures: Vec<String> = files
        .iter()
        .filter(|path| {
            let data =
                std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            std::panic::catch_unwind(|| bus_envelope::bus_envelope(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failures.is_empty(),
        "corpus inputs failing the check: {failures:?}"
    );
}
