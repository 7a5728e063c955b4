//! The benchmark record: one JSON line per comparison a bench makes, appended to the file named
//! by `$KBUS_BENCH_RESULTS` when it is set (nothing otherwise). `scripts/bench-record` sets it,
//! runs every bench and turns the lines into BENCHMARKS.md's summary table and its chart
//! (`testkit/src/bin/bench-report.rs`). Each bench includes this file with `#[path]`.

use std::io::Write;

/// One comparison: kbus against a peer measured in the same run.
pub struct Row<'a> {
    /// The table it belongs to (`codecs`, `clients on the mock cluster`, `event bus`, ...).
    pub group: &'a str,
    /// What was measured (`producer, gzip`, `record batch decode, uncompressed`, ...).
    pub row: &'a str,
    /// Who kbus is compared with.
    pub peer: &'a str,
    /// kbus's figure divided by the peer's (above 1: kbus is faster).
    pub ratio: f64,
    /// kbus's figure, and the peer's, in `unit`.
    pub kbus: f64,
    pub peer_value: f64,
    pub unit: &'a str,
    /// The command that reproduces the row.
    pub command: &'a str,
}

/// Appends `row` to the record file, if one is set.
pub fn record(row: Row<'_>) {
    let Some(path) = std::env::var_os("KBUS_BENCH_RESULTS") else {
        return;
    };
    let line = serde_json::json!({
        "group": row.group,
        "row": row.row,
        "peer": row.peer,
        "ratio": row.ratio,
        "kbus": row.kbus,
        "peer_value": row.peer_value,
        "unit": row.unit,
        "command": row.command,
    });
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = written {
        eprintln!(
            "bench record: cannot append to {}: {e}",
            path.to_string_lossy()
        );
    }
}
