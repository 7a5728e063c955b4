// The property the `bus_envelope` fuzz target checks: reading a record's value as an event.
//
// Compiled twice, like `checks.rs`: as a module of the fuzz crate, and through `#[path]` inside the
// root crate's `tests/bus_envelope_corpus.rs`, which replays `fuzz/corpus/bus_envelope` on stable
// `cargo test`. It may use only `kbus`, `bytes`, `serde` and `serde_json`.
//
// Input: `flags u8 | value`. Bit 0 of `flags` says whether the record has an `event_type` header
// (then the header is `"Probe"`). The value is any bytes: what arrives on the bus's topics from
// any producer.

use bytes::Bytes;
use kbus::bus::wire::{self, ReadEvent};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A payload type of the kind handlers declare: optional fields of several shapes, unknown fields
/// ignored. Reading it the fast way (straight from the bytes) and the slow way (from the payload
/// as a JSON map) must agree.
#[derive(Debug, PartialEq, Deserialize)]
struct Probe {
    a: Option<Value>,
    n: Option<i64>,
    s: Option<String>,
    list: Option<Vec<u32>>,
    nested: Option<Map<String, Value>>,
}

/// A payload type that refuses unknown fields (the fast path falls back to the map path for it).
#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Strict {
    n: i64,
}

/// Reading never panics. When the value reads as an event:
/// - the payload read as a type equals the payload read from its JSON map (value or error kind);
/// - the payload as JSON holds no base field;
/// - written back with `wire::encode`, it reads back to the same base fields and payload, and the
///   one-shot `wire::decode` agrees with `ReadEvent`.
pub fn bus_envelope(data: &[u8]) {
    let Some((&flags, value)) = data.split_first() else {
        return;
    };
    let header = (flags & 1 == 1).then_some("Probe");
    let Ok(event) = ReadEvent::read(Bytes::copy_from_slice(value), header) else {
        assert!(
            wire::decode(value, header).is_err(),
            "decode accepts what ReadEvent refuses"
        );
        return;
    };
    let raw = event.raw().clone();
    for name in wire::BASE_FIELDS {
        assert!(
            !raw.event.contains_key(name),
            "base field {name} left in the payload"
        );
    }

    let json = Value::Object(raw.event.clone());
    let fast: Result<Probe, _> = event.payload();
    let slow: Result<Probe, _> = serde_json::from_value(json.clone());
    match (&fast, &slow) {
        (Ok(f), Ok(s)) => assert_eq!(f, s, "typed payload differs between the two paths"),
        (Err(_), Err(_)) => {}
        _ => panic!("typed payload: fast path {fast:?}, map path {slow:?}"),
    }
    let fast: Result<Strict, _> = event.payload();
    let slow: Result<Strict, _> = serde_json::from_value(json);
    assert_eq!(
        fast.is_ok(),
        slow.is_ok(),
        "strict payload: fast path {fast:?}, map path {slow:?}"
    );

    let mut once = wire::decode(value, header).expect("decode refuses what ReadEvent reads");
    // Fields missing (or null) in the value are made fresh by each reading: take those from the first.
    let written: Map<String, Value> = serde_json::from_slice(value).unwrap_or_default();
    let fresh = |name: &str| written.get(name).is_none_or(Value::is_null);
    if fresh("event_id") {
        once.meta.event_id = event.meta.event_id;
    }
    if fresh("correlation_id") {
        once.meta.correlation_id = event.meta.correlation_id;
    }
    if fresh("occurred_at") {
        once.meta.occurred_at = event.meta.occurred_at;
    }
    assert_eq!(
        once.meta, event.meta,
        "decode and ReadEvent read different base fields"
    );
    assert_eq!(
        once.event, raw.event,
        "decode and ReadEvent read different payloads"
    );

    let record = wire::encode(&raw.meta, &raw.event).expect("a read event writes back");
    let again = wire::decode(&record.value, Some(&raw.meta.event_type))
        .expect("a written event reads back");
    assert_eq!(again.meta, raw.meta, "base fields change through a write");
    assert_eq!(again.event, raw.event, "payload changes through a write");
}
