//! Tests of [`super`] against the records eventsource-py 0.8.1 wrote
//! (`tests/vectors/eventsource-vectors.json`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::*;
use crate::bus::event::{Envelope, Event};
use crate::bus::time::Timestamp;

const VECTORS: &str = include_str!("../../../tests/vectors/eventsource-vectors.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

/// The records of the vectors that carry an event: the three published, the retry copies, the
/// dead letters and the replay.
fn every_event_record() -> Vec<Value> {
    let v = vectors();
    let mut out: Vec<Value> = v["records"].as_array().unwrap().clone();
    out.extend(v["retry_copies"].as_array().unwrap().iter().cloned());
    out.push(v["dlq_max_retries_exceeded"].clone());
    out.push(v["dlq_unknown_event_type"].clone());
    out.push(v["replay_of_dlq_record"].clone());
    out
}

fn headers_of(record: &Value) -> Vec<(String, String)> {
    record["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn owned(headers: &[(&'static str, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn decode_record(record: &Value) -> RawEnvelope {
    let headers = headers_of(record);
    let event_type = headers
        .iter()
        .find(|(k, _)| k == "event_type")
        .map(|(_, v)| v.as_str());
    decode(
        record["value_utf8"].as_str().unwrap().as_bytes(),
        event_type,
    )
    .unwrap_or_else(|e| panic!("{e}: {}", record["value_utf8"]))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderPlaced {
    order_number: String,
    total_cents: i64,
}

impl Event for OrderPlaced {
    const EVENT_TYPE: &'static str = "OrderPlaced";
    const AGGREGATE_TYPE: &'static str = "Order";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderLineAdded {
    sku: String,
    description: String,
    quantity: i64,
    /// A Decimal in Python: written as text, trailing zeros kept.
    unit_price: String,
    weight_kg: f64,
    tags: Vec<String>,
    attributes: Map<String, Value>,
    gift_note: Option<String>,
    delivery_by: Timestamp,
    warehouse_id: Uuid,
    express: bool,
}

impl Event for OrderLineAdded {
    const EVENT_TYPE: &'static str = "OrderLineAdded";
    const EVENT_VERSION: u32 = 2;
    const AGGREGATE_TYPE: &'static str = "Order";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderShipped {
    carrier: String,
}

impl Event for OrderShipped {
    const EVENT_TYPE: &'static str = "order.shipped.v2";
    const AGGREGATE_TYPE: &'static str = "Order";
}

/// Compares JSON values, numbers by value (Python writes `1e+20` and
/// `100000000000000000000` where serde_json writes `1e20`), objects key by key in order.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.keys().eq(y.keys()) && x.values().zip(y.values()).all(|(a, b)| same_json(a, b))
        }
        _ => a == b,
    }
}

#[test]
fn events_are_written_as_python_writes_them() {
    let v = vectors();
    let records = v["records"].as_array().unwrap();

    let placed = decode_record(&records[0]).decode::<OrderPlaced>().unwrap();
    assert_eq!(
        placed.event,
        OrderPlaced {
            order_number: "ORD-1".into(),
            total_cents: 4200
        }
    );
    let written = encode(&placed.meta, &placed.event).unwrap();
    assert_eq!(written.value, records[0]["value_utf8"].as_str().unwrap());
    assert_eq!(written.key, records[0]["key"].as_str().unwrap());
    assert_eq!(owned(&written.headers), headers_of(&records[0]));

    // An empty actor id is written in the JSON and gets no header.
    let shipped = decode_record(&records[2]).decode::<OrderShipped>().unwrap();
    assert_eq!(shipped.meta.actor_id.as_deref(), Some(""));
    let written = encode(&shipped.meta, &shipped.event).unwrap();
    assert_eq!(written.value, records[2]["value_utf8"].as_str().unwrap());
    assert_eq!(owned(&written.headers), headers_of(&records[2]));

    // Unicode, escapes, decimals as text, nested metadata in its order, floats by value.
    let line = decode_record(&records[1])
        .decode::<OrderLineAdded>()
        .unwrap();
    assert_eq!(line.event.unit_price, "19.990");
    assert_eq!(
        line.event.delivery_by.to_json_string(),
        "2026-12-01T09:00:00.001000Z"
    );
    let written = encode(&line.meta, &line.event).unwrap();
    let ours: Value = serde_json::from_slice(&written.value).unwrap();
    let theirs: Value = serde_json::from_str(records[1]["value_utf8"].as_str().unwrap()).unwrap();
    assert!(
        same_json(&ours, &theirs),
        "ours:   {}\ntheirs: {}",
        String::from_utf8_lossy(&written.value),
        records[1]["value_utf8"]
    );
    let text = std::str::from_utf8(&written.value).unwrap();
    assert!(
        text.contains(r#""sku":"SKU-é/1""#),
        "raw UTF-8, no escaped slash: {text}"
    );
    assert!(
        text.contains(r#"\u0001"#),
        "control characters escaped: {text}"
    );
    // The trace headers come with tracing; the others are the event's.
    let theirs = headers_of(&records[1]);
    assert_eq!(owned(&written.headers), theirs[..theirs.len() - 2]);
}

#[test]
fn every_record_python_wrote_is_read() {
    for record in every_event_record() {
        let event = decode_record(&record);
        let json: Value = serde_json::from_str(record["value_utf8"].as_str().unwrap()).unwrap();
        assert_eq!(event.meta.event_id.to_string(), json["event_id"]);
        assert_eq!(event.meta.event_type, json["event_type"]);
        assert_eq!(event.meta.aggregate_id.to_string(), record["key"]);
        assert_eq!(
            event.meta.occurred_at.to_json_string(),
            json["occurred_at"].as_str().unwrap()
        );
        // The payload is what is left, in order.
        let payload: Vec<&String> = event.event.keys().collect();
        let expected: Vec<&String> = json
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !BASE_FIELDS.contains(&k.as_str()))
            .collect();
        assert_eq!(payload, expected);
        // Written again, the same object.
        let again = encode(&event.meta, &event.event).unwrap();
        let again: Value = serde_json::from_slice(&again.value).unwrap();
        assert!(same_json(&again, &json), "{again}\n{json}");
    }
}

#[test]
fn reading_is_lenient_where_python_is() {
    let minimal = br#"{"aggregate_id":"5F0C2C2E-8A8B-4A64-9D5E-1B2C3D4E5F60","aggregate_type":"Order","order_number":"X","total_cents":1,"unknown":true}"#;
    let e = decode(minimal, Some("OrderPlaced")).unwrap();
    assert_eq!(e.meta.event_type, "OrderPlaced", "taken from the header");
    assert_eq!(
        e.meta.aggregate_id.to_string(),
        "5f0c2c2e-8a8b-4a64-9d5e-1b2c3d4e5f60",
        "written lower-case"
    );
    assert_eq!((e.meta.event_version, e.meta.aggregate_version), (1, 1));
    assert!(e.meta.metadata.is_empty());
    assert!(!e.meta.event_id.is_nil() && !e.meta.correlation_id.is_nil());
    let typed = e.decode::<OrderPlaced>().unwrap();
    assert_eq!(typed.event.order_number, "X", "unknown fields are ignored");

    let spelled = br#"{"aggregate_id":"5f0c2c2e-8a8b-4a64-9d5e-1b2c3d4e5f60","aggregate_type":"Order","event_type":"T","occurred_at":"2026-11-28 12:15:30.1234567+02:00","aggregate_version":"3"}"#;
    let e = decode(spelled, None).unwrap();
    assert_eq!(
        e.meta.occurred_at.to_json_string(),
        "2026-11-28T10:15:30.123456Z"
    );
    assert_eq!(e.meta.aggregate_version, 3);
}

#[test]
fn reading_refuses_what_python_refuses_naming_the_field() {
    let base = json!({
        "event_type": "T",
        "aggregate_id": "5f0c2c2e-8a8b-4a64-9d5e-1b2c3d4e5f60",
        "aggregate_type": "Order",
    });
    let with = |field: &str, value: Value| {
        let mut v = base.clone();
        match value {
            Value::Null if field == "-" => {}
            value => {
                v[field] = value;
            }
        }
        serde_json::to_vec(&v).unwrap()
    };
    let cases = [
        (with("metadata", Value::Null), "metadata"),
        (with("tenant_id", json!("acme")), "tenant_id"),
        (with("correlation_id", json!("x")), "correlation_id"),
        (with("correlation_id", Value::Null), "correlation_id"),
        (with("causation_id", json!(5)), "causation_id"),
        (with("event_version", json!(0)), "event_version"),
        (with("aggregate_version", json!(-1)), "aggregate_version"),
        (with("aggregate_id", json!("not-a-uuid")), "aggregate_id"),
        (with("occurred_at", json!("yesterday")), "occurred_at"),
    ];
    for (bytes, field) in cases {
        let e = decode(&bytes, None).unwrap_err();
        assert_eq!(e.field_name(), Some(field), "{e}");
        assert!(e.to_string().contains(field), "{e}");
    }
    let mut no_aggregate = base.clone();
    no_aggregate.as_object_mut().unwrap().remove("aggregate_id");
    let e = decode(&serde_json::to_vec(&no_aggregate).unwrap(), None).unwrap_err();
    assert_eq!(e.field_name(), Some("aggregate_id"));
    let mut no_type = base.clone();
    no_type.as_object_mut().unwrap().remove("event_type");
    let e = decode(&serde_json::to_vec(&no_type).unwrap(), None).unwrap_err();
    assert_eq!(e.field_name(), Some("event_type"));
    for garbage in [&b"not json"[..], b"[1,2]", b"", b"{\"aggregate_id\":"] {
        let e = decode(garbage, Some("T")).unwrap_err();
        assert_eq!(e.field_name(), None, "{e}");
    }
}

/// Found by the `bus_envelope` fuzz target: a payload field that is not valid JSON text (a lone
/// UTF-16 surrogate escape, bytes that are not UTF-8, a number out of range) used to pass the base
/// field reading and then leave the payload empty. The whole record is refused instead (so the
/// bus dead-letters it as undecodable rather than handing handlers a payload with fields missing).
#[test]
fn a_payload_that_is_not_valid_json_text_refuses_the_record() {
    let head =
        br#"{"aggregate_id":"5f0c2c2e-8a8b-4a64-9d5e-1b2c3d4e5f60","aggregate_type":"T","n":2,"#;
    let tails: [&[u8]; 5] = [
        br#""bad":"x\ude00"}"#,
        br#""bad":["\ud83d"]}"#,
        b"\"bad\":\"\xff\xfe\"}",
        br#""bad":{"deep":1e400}}"#,
        br#""k\ud800":1}"#,
    ];
    for tail in tails {
        let value = [&head[..], tail].concat();
        let e = decode(&value, Some("T")).unwrap_err();
        assert_eq!(e.field_name(), None, "{e}");
        assert!(e.to_string().contains("not a JSON object"), "{e}");
    }
    // The same record with a valid pair of surrogates is read whole.
    let value = [&head[..], br#""ok":"\ud83d\ude00"}"#].concat();
    let e = decode(&value, Some("T")).unwrap();
    assert_eq!(e.event["ok"], "\u{1f600}");
    assert_eq!(e.event["n"], 2);
}

#[test]
fn a_payload_field_named_like_a_base_field_is_refused() {
    #[derive(Serialize)]
    struct Clash {
        metadata: u8,
    }
    let meta = EventMeta::new("T", "A", Uuid::nil(), 1);
    let e = encode(&meta, &Clash { metadata: 1 }).unwrap_err();
    assert_eq!(e.field_name(), Some("metadata"));
    // A value that merely mentions a base field is fine.
    let written = encode(&meta, &json!({"note": "\"metadata\": is a base field"})).unwrap();
    let back = decode(&written.value, None).unwrap();
    assert_eq!(back.event["note"], "\"metadata\": is a base field");
    let e = encode(&meta, &[1, 2]).unwrap_err();
    assert!(e.to_string().contains("JSON object"), "{e}");
    // An empty payload is just the base fields.
    let written = encode(&meta, &json!({})).unwrap();
    let back = decode(&written.value, None).unwrap();
    assert!(back.event.is_empty());
    assert_eq!(back.meta, meta);
}

#[test]
fn a_typed_event_round_trips_with_every_base_field() {
    let cause = EventMeta::new("Cause", "Order", Uuid::nil(), 1);
    let mut e = Envelope::new(
        Uuid::parse_str("00000000-0000-4000-8000-000000000001").unwrap(),
        7,
        OrderPlaced {
            order_number: "ORD-2".into(),
            total_cents: -5,
        },
    );
    e.meta = e.meta.caused_by(&cause);
    e.meta.tenant_id = Some(Uuid::parse_str("7d3b9e8a-1c2f-4e5d-8a9b-0c1d2e3f4a5b").unwrap());
    e.meta.actor_id = Some("user:1".into());
    e.meta.metadata.insert("z".into(), json!(1));
    e.meta.metadata.insert("a".into(), json!({"k": [1, 2]}));
    let written = encode(&e.meta, &e.event).unwrap();
    let back = decode(&written.value, None)
        .unwrap()
        .decode::<OrderPlaced>()
        .unwrap();
    assert_eq!(back, e);
    assert_eq!(back.meta.correlation_id, cause.correlation_id);
    assert_eq!(back.meta.causation_id, Some(cause.event_id));
    let names: Vec<&str> = written.headers.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "event_id",
            "event_type",
            "aggregate_id",
            "aggregate_type",
            "aggregate_version",
            "occurred_at",
            "correlation_id",
            "tenant_id",
            "causation_id",
            "actor_id"
        ]
    );
}

/// The payload as the plain reading gives it: the whole object as a JSON map, base fields taken
/// out.
fn payload_by_map(value: &[u8]) -> Map<String, Value> {
    let mut all: Map<String, Value> = serde_json::from_slice(value).unwrap();
    all.retain(|k, _| !BASE_FIELDS.contains(&k.as_str()));
    all
}

#[test]
fn handlers_read_the_payload_from_the_bytes_as_from_the_json_map() {
    for record in every_event_record() {
        let value = record["value_utf8"].as_str().unwrap().as_bytes();
        let read = ReadEvent::read(Bytes::copy_from_slice(value), None).unwrap();
        let expected = payload_by_map(value);
        // Straight from the bytes into a type (here a map), and through the shared JSON form.
        assert_eq!(read.payload::<Map<String, Value>>().unwrap(), expected);
        assert_eq!(read.raw().event, expected);
        assert_eq!(
            read.raw().event.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "payload order kept"
        );
        assert_eq!(read.meta, decode_record(&record).meta);
    }
}

#[derive(Debug, PartialEq, Deserialize)]
struct Moved {
    to: String,
    #[serde(default)]
    metadata: Option<Value>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Strict {
    to: String,
}

const MOVED: &str = r#"{"event_id":"5f0c2c2e-8a8b-4a64-9d5e-1b2c3d4e5f60","event_type":"Moved","aggregate_id":"6f0c2c2e-8a8b-4a64-9d5e-1b2c3d4e5f60","aggregate_type":"Thing","metadata":{"k":1},"t\u006f":"north","extra":[1,{"a":null}]}"#;

#[test]
fn a_payload_type_sees_the_payload_fields_only_whatever_its_shape() {
    let read = ReadEvent::read(Bytes::from_static(MOVED.as_bytes()), None).unwrap();
    // An escaped field name is read; a payload field named like a base field sees nothing (the
    // base field is not the payload's), unknown fields are ignored.
    assert_eq!(
        read.payload::<Moved>().unwrap(),
        Moved {
            to: "north".into(),
            metadata: None
        }
    );
    assert_eq!(read.meta.metadata["k"], 1);
    // A type refusing unknown fields reads the payload as the JSON-map way does.
    let by_map = Strict::deserialize(&read.raw().event);
    let direct = read.payload::<Strict>();
    assert_eq!(
        direct.map_err(|e| e.to_string()),
        by_map.map_err(|e| e.to_string())
    );
    // A payload that is not the type fails with the JSON-map way's error.
    let wrong = read.payload::<OrderPlaced>().unwrap_err().to_string();
    assert_eq!(
        wrong,
        OrderPlaced::deserialize(&read.raw().event)
            .unwrap_err()
            .to_string()
    );
}

#[test]
fn a_repeated_field_keeps_its_last_value_as_python_does() {
    let value = r#"{"aggregate_id":"6f0c2c2e-8a8b-4a64-9d5e-1b2c3d4e5f60","aggregate_type":"Thing","aggregate_type":"Other","to":"a","to":"b"}"#;
    let read = ReadEvent::read(Bytes::from_static(value.as_bytes()), Some("Moved")).unwrap();
    assert_eq!(read.meta.aggregate_type, "Other");
    assert_eq!(read.payload::<Moved>().unwrap().to, "b");
    assert_eq!(read.raw().event["to"], "b");
}
