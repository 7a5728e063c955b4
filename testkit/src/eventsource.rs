//! eventsource-py's `KafkaEventBus` (0.8.1, the Python library kbus's bus must interoperate with)
//! as a test peer: `testkit/python/eventsource_peer.py`, run with the virtual environment
//! `scripts/install-test-deps` builds at `~/.cache/kbus/eventsource-0.8.1`.
//!
//! [`Peer::publish`] publishes events and returns their ids; [`Peer::consume`] starts a consumer
//! in a group and hands its lines (one JSON object each) to the test as they come.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The Python interpreter of the eventsource-py environment.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("KBUS_EVENTSOURCE_PYTHON") {
        return p.into();
    }
    let cache = std::env::var("KBUS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/kbus")
        });
    cache.join("eventsource-0.8.1/bin/python")
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/eventsource_peer.py")
}

fn command(args: &[&str]) -> Command {
    let python = python();
    assert!(
        python.exists(),
        "eventsource-py is not installed at {}: run scripts/install-test-deps",
        python.display()
    );
    let mut c = Command::new(python);
    c.arg(script()).args(args);
    c
}

/// Publishes `count` OrderPlaced events with eventsource-py to `{prefix}.stream` (all on
/// `aggregate`, versions 1..=count, when given); returns their event ids in order.
pub fn publish(
    bootstrap: &str,
    prefix: &str,
    count: usize,
    aggregate: Option<&str>,
) -> Vec<String> {
    let count = count.to_string();
    let mut args = vec![
        "publish",
        "--bootstrap",
        bootstrap,
        "--prefix",
        prefix,
        "--count",
        &count,
    ];
    if let Some(a) = aggregate {
        args.extend(["--aggregate", a]);
    }
    let out = command(&args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run eventsource_peer.py");
    assert!(
        out.status.success(),
        "eventsource-py publish failed: {out:?}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["published"].as_str().map(str::to_owned))
        .collect()
}

/// A running eventsource-py consumer; killed when dropped.
pub struct Consumer {
    child: Child,
    lines: Option<Lines>,
}

/// The lines a consumer prints, one JSON object each; ends when it exits (or is killed).
pub struct Lines(BufReader<ChildStdout>);

impl Iterator for Lines {
    type Item = Value;
    fn next(&mut self) -> Option<Value> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.0.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if let Ok(v) = serde_json::from_str(&line) {
                return Some(v);
            }
        }
    }
}

impl Consumer {
    /// Starts eventsource-py's bus in group `group`, handling OrderPlaced until `count` were
    /// handled or `seconds` passed; returns once it consumes.
    pub fn start(
        bootstrap: &str,
        prefix: &str,
        group: &str,
        count: usize,
        seconds: u64,
    ) -> Consumer {
        let (count, seconds) = (count.to_string(), seconds.to_string());
        let mut child = command(&[
            "consume",
            "--bootstrap",
            bootstrap,
            "--prefix",
            prefix,
            "--group",
            group,
            "--count",
            &count,
            "--seconds",
            &seconds,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run eventsource_peer.py");
        let lines = Lines(BufReader::new(child.stdout.take().expect("piped stdout")));
        let mut consumer = Consumer {
            child,
            lines: Some(lines),
        };
        let ready = consumer.next_line();
        assert_eq!(
            ready.as_ref().map(|v| v["ready"].clone()),
            Some(Value::Bool(true)),
            "{ready:?}"
        );
        consumer
    }

    /// The next line it printed; `None` once it exited (or its lines were taken).
    pub fn next_line(&mut self) -> Option<Value> {
        self.lines.as_mut()?.next()
    }

    /// Its lines, to read on another thread while this handle keeps the process (and kills it
    /// when dropped, which ends the lines).
    pub fn take_lines(&mut self) -> Option<Lines> {
        self.lines.take()
    }

    /// Every event it handled, until it says it is done (blocking; it stops by itself after its
    /// count or its seconds).
    pub fn handled(mut self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut out = Vec::new();
        while let Some(v) = self.next_line() {
            if v.get("done").is_some() || Instant::now() > deadline {
                break;
            }
            if v.get("handled").is_some() {
                out.push(v);
            }
        }
        out
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
