//! `kbus bus` and `kbus dlq` against Apache Kafka: events eventsource-py wrote (the vectors) are
//! published from the shell and tailed back field for field; a program handles events, fails on
//! a poison one that lands in the dead-letter topic, which is listed and replayed.

mod support;

use support::*;

use kbus_testkit::kafka::Kafka;
use kbus_testkit::mock_process::{MockClusterProcess, MockTopic};
use serde_json::{Map, Value};

const VECTORS: &str = include_str!("../../tests/vectors/eventsource-vectors.json");

/// The vector records' values (eventsource-py's bytes), as NDJSON.
fn vector_events() -> Vec<String> {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value_utf8"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn events_python_wrote_are_published_and_tailed_back_field_for_field() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let b = kafka.bootstrap();
    let with = |rest: &[&str]| on(&b, rest);
    let events = vector_events();
    let input = events.join("\n") + "\n";
    ok(
        &with(&["bus", "publish", "--prefix", "cli-vec"]),
        input.as_bytes(),
    );
    // One more from flags.
    ok(
        &with(&[
            "bus",
            "publish",
            "--prefix",
            "cli-vec",
            "--type",
            "NoteAdded",
            "--aggregate-type",
            "Note",
            "--aggregate-id",
            "6f0c2c2e-8a8b-4a64-9d5e-1b2c3d4e5f61",
            "--data",
            r#"{"text":"hello"}"#,
        ]),
        b"",
    );
    let tailed = json_lines(&ok(
        &with(&[
            "bus",
            "tail",
            "--prefix",
            "cli-vec",
            "-o",
            "beginning",
            "-e",
        ]),
        b"",
    ));
    assert_eq!(tailed.len(), events.len() + 1);
    for wrote in &events {
        let wrote: Map<String, Value> = serde_json::from_str(wrote).unwrap();
        let line = tailed
            .iter()
            .find(|l| l["event_id"] == wrote["event_id"])
            .unwrap_or_else(|| panic!("{} not tailed", wrote["event_id"]));
        for (k, v) in &wrote {
            assert_eq!(&line[k], v, "field {k}");
        }
        assert!(line["partition"].is_i64() && line["offset"].is_i64());
        assert_eq!(line["headers"]["event_type"], wrote["event_type"]);
        assert_eq!(line["headers"]["aggregate_id"], wrote["aggregate_id"]);
    }
    let note = tailed
        .iter()
        .find(|l| l["event_type"] == "NoteAdded")
        .unwrap();
    assert_eq!(note["text"], "hello");
    assert_eq!(note["aggregate_type"], "Note");
    // --type picks one type.
    let notes = json_lines(&ok(
        &with(&[
            "bus",
            "tail",
            "--prefix",
            "cli-vec",
            "-o",
            "beginning",
            "-e",
            "--type",
            "NoteAdded",
        ]),
        b"",
    ));
    assert_eq!(notes.len(), 1);
    // A line that is not an event: an error naming it, and nothing published.
    let bad = kbus_with(
        &with(&["bus", "publish", "--prefix", "cli-vec"]),
        format!("{}\n{{\"event_type\":\"X\"}}\n", events[0]).as_bytes(),
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line 2"));
    let again = ok(
        &with(&[
            "bus",
            "tail",
            "--prefix",
            "cli-vec",
            "-o",
            "beginning",
            "-e",
        ]),
        b"",
    );
    assert_eq!(again.lines().count(), events.len() + 1);
}

#[test]
fn a_program_handles_events_and_a_poison_one_is_dead_lettered_listed_and_replayed() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let b = kafka.bootstrap();
    let with = |rest: &[&str]| on(&b, rest);
    let dir = std::env::temp_dir().join(format!("kbus-cli-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seen = dir.join("seen");
    let _ = std::fs::remove_dir_all(&seen);
    std::fs::create_dir_all(&seen).unwrap();
    let mut input = String::new();
    for i in 0..10 {
        input.push_str(&format!(
            r#"{{"event_type":"Deposited","aggregate_type":"Account","aggregate_id":"00000000-0000-4000-8000-00000000000{}","aggregate_version":1,"amount":{i}}}"#,
            i % 3
        ));
        input.push('\n');
    }
    input.push_str(r#"{"event_type":"Poison","aggregate_type":"Account","aggregate_id":"00000000-0000-4000-8000-000000000009","aggregate_version":1}"#);
    input.push('\n');
    ok(
        &with(&["bus", "publish", "--prefix", "cli-exec"]),
        input.as_bytes(),
    );
    // The program records each event (stdin) in a file of its own (programs run side by side),
    // named by its id (environment), and fails on Poison.
    let program = format!(
        r#"if [ "$KBUS_EVENT_TYPE" = Poison ]; then echo "poison refused" >&2; exit 3; fi; cat > {}/"$KBUS_EVENT_ID".json"#,
        seen.display()
    );
    let out = kbus_with(
        &with(&[
            "bus",
            "consume",
            "--prefix",
            "cli-exec",
            "-g",
            "cli-exec-g",
            "--exec",
            &program,
            "--max-retries",
            "1",
            "-c",
            "11",
        ]),
        b"",
    );
    assert!(out.status.success(), "{out:?}");
    let seen_events: Vec<Map<String, Value>> = std::fs::read_dir(&seen)
        .unwrap()
        .map(|f| serde_json::from_slice(&std::fs::read(f.unwrap().path()).unwrap()).unwrap())
        .collect();
    assert_eq!(seen_events.len(), 10, "every Deposited once");
    let mut amounts: Vec<i64> = seen_events
        .iter()
        .map(|e| e["amount"].as_i64().unwrap())
        .collect();
    amounts.sort();
    assert_eq!(amounts, (0..10).collect::<Vec<_>>());

    assert_eq!(
        ok(&with(&["dlq", "count", "--prefix", "cli-exec"]), b"").trim(),
        "1"
    );
    let dead = json_lines(&ok(&with(&["dlq", "list", "--prefix", "cli-exec"]), b""));
    assert_eq!(dead.len(), 1);
    let d = &dead[0];
    assert_eq!(d["error_type"], "CommandFailed");
    assert!(
        d["error_message"]
            .as_str()
            .unwrap()
            .contains("poison refused"),
        "{d:?}"
    );
    assert_eq!(d["retry_count"], 1);
    assert_eq!(d["event"]["event_type"], "Poison");
    assert_eq!(d["consumer_group"], "cli-exec-g");
    let (partition, offset) = (d["partition"].to_string(), d["offset"].to_string());

    // A dry run says what it would replay and replays nothing.
    let report: Value = serde_json::from_str(&ok(
        &with(&[
            "dlq",
            "replay",
            "--prefix",
            "cli-exec",
            "--type",
            "Poison",
            "--dry-run",
        ]),
        b"",
    ))
    .unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        report["matched"],
        serde_json::json!([format!("{partition}/{offset}")])
    );
    let tail = || {
        json_lines(&ok(
            &with(&[
                "bus",
                "tail",
                "--prefix",
                "cli-exec",
                "-o",
                "beginning",
                "-e",
                "--type",
                "Poison",
            ]),
            b"",
        ))
    };
    assert_eq!(tail().len(), 1, "the dry run published nothing");
    // The replay puts it back on the main topic, counted.
    ok(
        &with(&[
            "dlq",
            "replay",
            "--prefix",
            "cli-exec",
            "--partition",
            &partition,
            "--offset",
            &offset,
        ]),
        b"",
    );
    let poison = tail();
    assert_eq!(poison.len(), 2);
    assert_eq!(poison[1]["headers"]["dlq_replay_count"], "1");
    assert_eq!(poison[1]["event_id"], poison[0]["event_id"]);
    // Replaying needs a selection.
    let out = kbus_with(&with(&["dlq", "replay", "--prefix", "cli-exec"]), b"");
    assert_eq!(out.status.code(), Some(2));
    // Kept when the test fails, to look at.
    let _ = std::fs::remove_dir_all(&dir);
}

/// A broker that cannot create topics or describe configs (librdkafka's mock cluster): the bus
/// uses topics that exist, and `topics describe` says configs are not available.
#[test]
fn the_bus_tools_work_where_topics_exist_and_cannot_be_created() {
    let mock = MockClusterProcess::spawn_for_groups(
        3,
        &[
            MockTopic::new("on-mock.stream", 3, 1),
            MockTopic::new("on-mock.stream.dlq", 3, 1),
        ],
    );
    let b = mock.bootstrap().to_owned();
    let with = |rest: &[&str]| on(&b, rest);
    let events = vector_events();
    ok(
        &with(&["bus", "publish", "--prefix", "on-mock"]),
        (events.join("\n") + "\n").as_bytes(),
    );
    let tailed = ok(
        &with(&[
            "bus",
            "tail",
            "--prefix",
            "on-mock",
            "-o",
            "beginning",
            "-e",
        ]),
        b"",
    );
    assert_eq!(tailed.lines().count(), events.len());
    let described = ok(&with(&["topics", "describe", "on-mock.stream"]), b"");
    assert!(described.contains("configs: not available"), "{described}");
    // A topic the broker cannot create is an error naming it, not a hang.
    let missing = kbus_with(&with(&["bus", "publish", "--prefix", "nowhere"]), b"");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("CreateTopics"));
}
