//! The `kbus` binary against Apache Kafka: topics, produce, consume, groups, and the exit status of
//! each kind of failure. Records are checked with the library's own consumer or the binary's
//! `--json` output, both against what went in.

mod support;

use support::*;

use kbus::consumer::{Consumer, Event};
use kbus::net::sasl::Mechanism;
use kbus_testkit::kafka::{Kafka, Security, User};
use serde_json::Value;

#[test]
fn topics_are_created_listed_described_and_deleted() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let b = kafka.bootstrap();
    let with = |rest: &[&str]| on(&b, rest);
    ok(
        &with(&[
            "topics",
            "create",
            "cli-topics",
            "-p",
            "3",
            "-r",
            "1",
            "--config",
            "retention.ms=3600000",
        ]),
        b"",
    );
    let list = ok(&with(&["topics", "list"]), b"");
    assert!(list.lines().any(|l| l == "cli-topics"), "{list}");
    assert!(
        !list.contains("__consumer_offsets"),
        "internal topics only with --all"
    );
    let described = ok(&with(&["topics", "describe", "cli-topics"]), b"");
    assert!(described.contains("(3 partitions"), "{described}");
    assert!(described.contains("retention.ms=3600000"), "{described}");
    // Creating it again is an error naming the topic.
    let again = kbus(&with(&["topics", "create", "cli-topics", "-p", "1"]));
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("cli-topics"));
    ok(&with(&["topics", "delete", "cli-topics"]), b"");
    let list = ok(&with(&["topics", "list"]), b"");
    assert!(!list.lines().any(|l| l == "cli-topics"), "{list}");
}

#[test]
fn lines_go_in_with_keys_and_headers_and_come_out_as_json() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let b = kafka.bootstrap();
    let with = |rest: &[&str]| on(&b, rest);
    ok(&with(&["topics", "create", "cli-lines", "-p", "1"]), b"");
    let mut input = b"a:one\nb:two\nc:three\nd:four\n".to_vec();
    // A value that is not UTF-8, and a line with no key.
    input.extend_from_slice(b"e:\xff\xfe\nnokey\n");
    ok(
        &with(&[
            "produce",
            "-t",
            "cli-lines",
            "-K",
            ":",
            "-H",
            "source=cli",
            "-z",
            "lz4",
        ]),
        &input,
    );
    let all = json_lines(&ok(
        &with(&["consume", "-t", "cli-lines", "-e", "--json"]),
        b"",
    ));
    assert_eq!(all.len(), 6, "{all:?}");
    assert_eq!(all[0]["key"], "a");
    assert_eq!(all[0]["value"], "one");
    assert_eq!(all[0]["offset"], 0);
    assert_eq!(all[0]["partition"], 0);
    assert_eq!(all[0]["topic"], "cli-lines");
    assert_eq!(
        all[0]["headers"],
        serde_json::json!([{"key": "source", "value": "cli"}])
    );
    assert_eq!(all[4]["value"], "//4=");
    assert_eq!(all[4]["value_encoding"], "base64");
    assert_eq!(all[5]["key"], Value::Null);
    assert_eq!(all[5]["value"], "nokey");
    // Plain output is the values; -o -2 starts two before the end; -c stops after a count.
    let last_two = ok_bytes(
        &with(&["consume", "-t", "cli-lines", "-o", "-2", "-e"]),
        b"",
    );
    assert_eq!(last_two, b"\xff\xfe\nnokey\n");
    let first_three = ok(&with(&["consume", "-t", "cli-lines", "-c", "3"]), b"");
    assert_eq!(first_three, "one\ntwo\nthree\n");
    let from_offset = ok(
        &with(&["consume", "-t", "cli-lines", "-o", "3", "-c", "1"]),
        b"",
    );
    assert_eq!(from_offset, "four\n");
    // An empty partition read to its end: nothing, and no wait.
    ok(&with(&["topics", "create", "cli-empty", "-p", "2"]), b"");
    assert_eq!(ok(&with(&["consume", "-t", "cli-empty", "-e"]), b""), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_commits_what_it_printed_and_its_offsets_can_be_reset() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let b = kafka.bootstrap();
    let with = |rest: &[&str]| on(&b, rest);
    ok(&with(&["topics", "create", "cli-group", "-p", "2"]), b"");
    let lines: String = (0..20).map(|i| format!("k{i}:v{i}\n")).collect();
    ok(
        &with(&["produce", "-t", "cli-group", "-K", ":"]),
        lines.as_bytes(),
    );
    let read = ok(
        &with(&[
            "consume",
            "-t",
            "cli-group",
            "-g",
            "cli-g",
            "-o",
            "beginning",
            "-e",
        ]),
        b"",
    );
    let mut values: Vec<&str> = read.lines().collect();
    values.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(values, expected);
    let listed = ok(&with(&["groups", "list"]), b"");
    assert!(listed.lines().any(|l| l.starts_with("cli-g\t")), "{listed}");
    let described = ok(&with(&["groups", "describe", "cli-g"]), b"");
    let lag: i64 = lags(&described, "cli-group").iter().sum();
    assert_eq!(lag, 0, "{described}");
    // Read again as the same group: everything was committed, nothing is printed.
    let again = ok(
        &with(&["consume", "-t", "cli-group", "-g", "cli-g", "-e"]),
        b"",
    );
    assert_eq!(again, "");
    ok(
        &with(&[
            "groups",
            "reset-offsets",
            "cli-g",
            "-t",
            "cli-group",
            "--to",
            "earliest",
        ]),
        b"",
    );
    let described = ok(&with(&["groups", "describe", "cli-g"]), b"");
    let lag: i64 = lags(&described, "cli-group").iter().sum();
    assert_eq!(lag, 20, "{described}");

    // A live member: describe shows what it reads; its offsets cannot be reset under it.
    let mut member =
        Consumer::from_properties([("bootstrap.servers", b.as_str()), ("group.id", "cli-g")])
            .await
            .unwrap();
    member.subscribe(["cli-group"]).unwrap();
    loop {
        if let Event::Assigned(_) = member.poll().await.unwrap() {
            break;
        }
    }
    let live = with(&["groups", "describe", "cli-g"]);
    let described = tokio::task::spawn_blocking(move || ok(&live, b""))
        .await
        .unwrap();
    assert!(
        described.contains("cli-group/0, cli-group/1"),
        "{described}"
    );
    let refused = with(&[
        "groups",
        "reset-offsets",
        "cli-g",
        "-t",
        "cli-group",
        "--to",
        "latest",
    ]);
    let refused = tokio::task::spawn_blocking(move || kbus(&refused))
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("active members"));
    member.close().await.unwrap();
}

/// The lag column of `groups describe` for `topic`'s rows.
fn lags(described: &str, topic: &str) -> Vec<i64> {
    described
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(topic))
        .map(|l| l.split_whitespace().last().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn each_kind_of_failure_has_its_exit_status() {
    // Usage: a bad option, a malformed property.
    assert_eq!(kbus(&["frobnicate"]).status.code(), Some(2));
    let bad = kbus(&["topics", "list", "-X", "nonsense"]);
    assert_eq!(bad.status.code(), Some(2));
    let unknown = kbus(&["topics", "list", "-X", "no.such.property=1"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no.such.property"));
    // Connection: nothing listening.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = kbus(&[
        "-b",
        &dead,
        "topics",
        "list",
        "-X",
        "socket.connection.setup.timeout.ms=2000",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    // --help works on every command.
    for cmd in [
        &["topics", "create", "--help"][..],
        &["produce", "--help"],
        &["consume", "--help"],
        &["groups", "reset-offsets", "--help"],
    ] {
        let out = kbus(cmd);
        assert!(out.status.success(), "{cmd:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
    }
    let completions = kbus(&["completions", "bash"]);
    assert!(String::from_utf8_lossy(&completions.stdout).contains("kbus"));
}

#[test]
fn a_refused_password_is_an_authentication_failure_and_is_never_echoed() {
    let kafka = Kafka::builder()
        .listener("SASL", Security::SaslPlaintext)
        .user(User::new(Mechanism::ScramSha256, "cli", "right-password"))
        .start();
    let _log = kafka.log_on_failure();
    let addr = kafka.addr("SASL");
    let sasl = |password: &str| {
        kbus(&[
            "-b",
            &addr,
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanism=SCRAM-SHA-256",
            "-X",
            "sasl.username=cli",
            "-X",
            &format!("sasl.password={password}"),
            "topics",
            "list",
        ])
    };
    let out = sasl("wrong-password");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("wrong-password"), "{stderr}");
    assert!(sasl("right-password").status.success());
}

#[test]
fn perf_produces_and_consumes_and_reports_one_json_line() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let b = kafka.bootstrap();
    let with = |rest: &[&str]| on(&b, rest);
    ok(&with(&["topics", "create", "cli-perf", "-p", "3"]), b"");
    let produced: Value = serde_json::from_str(&ok(
        &with(&[
            "perf", "produce", "-t", "cli-perf", "-n", "20000", "-s", "200", "--keys", "50", "-z",
            "lz4",
        ]),
        b"",
    ))
    .unwrap();
    assert_eq!(produced["messages"], 20000);
    assert_eq!(produced["failed"], 0);
    assert_eq!(produced["bytes"], 20000 * 200);
    let latency = &produced["latency_ms"];
    assert!(latency["p50"].as_f64().unwrap() > 0.0);
    assert!(latency["p50"].as_f64() <= latency["p99"].as_f64());
    assert!(latency["p99"].as_f64() <= latency["max"].as_f64());
    let consumed: Value = serde_json::from_str(&ok(
        &with(&["perf", "consume", "-t", "cli-perf", "-n", "20000"]),
        b"",
    ))
    .unwrap();
    assert_eq!(consumed["messages"], 20000);
    // Keys were written too: 20000 values of 200 bytes plus keys "key-N".
    assert!(consumed["bytes"].as_u64().unwrap() > 20000 * 200);
    // --rate holds the producer back.
    let paced: Value = serde_json::from_str(&ok(
        &with(&[
            "perf", "produce", "-t", "cli-perf", "-n", "300", "--rate", "1000",
        ]),
        b"",
    ))
    .unwrap();
    assert!(paced["msgs_per_sec"].as_f64().unwrap() <= 1100.0, "{paced}");
}

#[test]
fn a_group_member_stopped_by_a_count_commits_only_what_it_printed() {
    let kafka = Kafka::shared();
    let _log = kafka.log_on_failure();
    let b = kafka.bootstrap();
    let with = |rest: &[&str]| on(&b, rest);
    ok(&with(&["topics", "create", "cli-count", "-p", "1"]), b"");
    let lines: String = (0..20).map(|i| format!("v{i}\n")).collect();
    ok(&with(&["produce", "-t", "cli-count"]), lines.as_bytes());
    let first = ok(
        &with(&[
            "consume",
            "-t",
            "cli-count",
            "-g",
            "cli-count-g",
            "-o",
            "beginning",
            "-c",
            "5",
        ]),
        b"",
    );
    assert_eq!(first, "v0\nv1\nv2\nv3\nv4\n");
    // The 15 fetched but not printed are still the group's to read.
    let rest = ok(
        &with(&["consume", "-t", "cli-count", "-g", "cli-count-g", "-e"]),
        b"",
    );
    let expected: String = (5..20).map(|i| format!("v{i}\n")).collect();
    assert_eq!(rest, expected);
}
