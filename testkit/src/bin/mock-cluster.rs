//! librdkafka's mock cluster in a process of its own, so that a benchmark or a third-party client
//! (kcat, say) can talk to it without sharing a process (and its CPU accounting) with the brokers.
//!
//! ```text
//! mock-cluster [--brokers N] [--topic NAME[:PARTITIONS[:REPLICATION]]]...
//!              [--api-version KEY:MIN:MAX]...
//! ```
//!
//! Starts `N` brokers (default 3), creates each topic (default 1 partition, replication `N`),
//! limits the versions of API `KEY` (a number: 18 is ApiVersions) to `MIN..=MAX` if asked, prints
//! the bootstrap list (`host:port,host:port,...`) as one line on stdout, then serves until stdin
//! closes (or the process is killed), injecting the faults the lines it reads there ask for
//! (see `command`). `kbus_testkit::mock_process::MockClusterProcess` drives it.
//!
//! Note: the mock implements ApiVersions up to v2; its answer to v3 (even with
//! `--api-version 18:0:3`) is not well-formed, so clients that insist on v3 cannot use it.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use kbus::protocol::error_code::ErrorCode;
use kbus::protocol::ApiKey;
use kbus_testkit::mock_cluster::MockCluster;

const USAGE: &str =
    "usage: mock-cluster [--brokers N] [--topic NAME[:PARTITIONS[:REPLICATION]]]...";

struct Args {
    brokers: i32,
    topics: Vec<(String, i32, Option<i32>)>,
    api_versions: Vec<(ApiKey, i16, i16)>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        brokers: 3,
        topics: Vec::new(),
        api_versions: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--brokers" => {
                let v = value("--brokers")?;
                args.brokers = v
                    .parse()
                    .ok()
                    .filter(|&n: &i32| n > 0)
                    .ok_or_else(|| format!("--brokers: not a positive number: {v}"))?;
            }
            "--topic" => args.topics.push(parse_topic(&value("--topic")?)?),
            "--api-version" => args
                .api_versions
                .push(parse_api_version(&value("--api-version")?)?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// `NAME[:PARTITIONS[:REPLICATION]]`.
fn parse_topic(spec: &str) -> Result<(String, i32, Option<i32>), String> {
    let mut parts = spec.split(':');
    let name = parts.next().filter(|n| !n.is_empty());
    let number = |p: Option<&str>, what: &str| -> Result<Option<i32>, String> {
        p.map(|s| {
            s.parse()
                .ok()
                .filter(|&n: &i32| n > 0)
                .ok_or_else(|| format!("--topic {spec}: bad {what} {s}"))
        })
        .transpose()
    };
    let partitions = number(parts.next(), "partition count")?.unwrap_or(1);
    let replication = number(parts.next(), "replication factor")?;
    match (name, parts.next()) {
        (Some(name), None) => Ok((name.to_owned(), partitions, replication)),
        _ => Err(format!(
            "--topic {spec}: expected NAME[:PARTITIONS[:REPLICATION]]"
        )),
    }
}

/// `KEY:MIN:MAX`, the key as a number.
fn parse_api_version(spec: &str) -> Result<(ApiKey, i16, i16), String> {
    let bad = || format!("--api-version {spec}: expected KEY:MIN:MAX (numbers)");
    let numbers: Vec<i16> = spec
        .split(':')
        .map(|n| n.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [key, min, max] = numbers[..] else {
        return Err(bad());
    };
    let key = ApiKey::from_i16(key).map_err(|e| format!("--api-version {spec}: {e}"))?;
    if min > max {
        return Err(bad());
    }
    Ok((key, min, max))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("mock-cluster: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let cluster = MockCluster::start(args.brokers);
    for (name, partitions, replication) in &args.topics {
        cluster.create_topic(name, *partitions, replication.unwrap_or(args.brokers));
    }
    for &(key, min, max) in &args.api_versions {
        cluster.set_api_versions(key, Some(min), Some(max));
    }
    {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{}", cluster.bootstrap())
            .and_then(|()| out.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
    }
    // Serve until whoever started us closes our stdin (also when it dies), obeying the fault
    // commands it writes there, one per line.
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    loop {
        line.clear();
        match stdin.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Err(e) = command(&cluster, line.trim()) {
                    eprintln!("mock-cluster: {e}");
                }
            }
        }
    }
    drop(cluster);
    ExitCode::SUCCESS
}

/// One fault command (the forms [`MockClusterProcess`](kbus_testkit::mock_process) writes):
/// `errors API CODE...`, `disconnect API`, `leader TOPIC PARTITION BROKER`,
/// `coordinator GROUP BROKER`, `rtt MILLISECONDS` (every broker); APIs and codes as numbers.
fn command(cluster: &MockCluster, line: &str) -> Result<(), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |w: &str| -> Result<i64, String> {
        w.parse()
            .map_err(|_| format!("{line:?}: {w} is not a number"))
    };
    let api = |w: &str| -> Result<ApiKey, String> {
        ApiKey::from_i16(number(w)? as i16).map_err(|e| format!("{line:?}: {e}"))
    };
    match words.as_slice() {
        [] => {}
        ["errors", key, codes @ ..] => {
            let codes = codes
                .iter()
                .map(|c| number(c).map(|c| ErrorCode(c as i16)))
                .collect::<Result<Vec<_>, _>>()?;
            cluster.push_request_errors(api(key)?, &codes);
        }
        ["disconnect", key] => cluster.push_disconnect(api(key)?),
        ["leader", topic, partition, broker] => cluster.set_leader(
            topic,
            number(partition)? as i32,
            Some(number(broker)? as i32),
        ),
        ["coordinator", group, broker] => {
            cluster.set_group_coordinator(group, number(broker)? as i32)
        }
        ["rtt", ms] => {
            cluster.set_round_trip_time(None, Duration::from_millis(number(ms)?.max(0) as u64))
        }
        _ => return Err(format!("unknown command {line:?}")),
    }
    Ok(())
}
