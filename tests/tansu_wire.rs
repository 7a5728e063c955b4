//! The protocol crate against a real broker: what kbus encodes, tansu accepts, and what tansu sends
//! back, kbus decodes — record batches with every codec tansu can store included.

#[path = "../examples/roundtrip.rs"]
mod roundtrip;

use kbus_testkit::tansu::Tansu;

#[test]
fn produce_and_fetch_round_trip_through_tansu() {
    let broker = Tansu::start();
    let summary = roundtrip::run(&broker.addr(), "wire-roundtrip", 500).unwrap();
    assert_eq!(summary.records, 500 * summary.partitions);
    // tansu 0.6.0 speaks flexible versions of both; the test must exercise them.
    assert!(summary.produce_version >= 9, "{summary:?}");
    assert!(summary.fetch_version >= 12, "{summary:?}");
}
