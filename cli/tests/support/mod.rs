//! Running the `kbus` binary from the CLI's tests.

#![allow(dead_code)] // each test file uses its own part

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs kbus with `args`, `stdin` as its input (`KBUS_BROKERS` unset).
pub fn kbus_with<S: AsRef<OsStr>>(args: &[S], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kbus"))
        .args(args)
        .env_remove("KBUS_BROKERS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kbus");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs kbus with `args` and no input.
pub fn kbus<S: AsRef<OsStr>>(args: &[S]) -> Output {
    kbus_with(args, b"")
}

/// Runs kbus and requires success; returns stdout (bytes that are not UTF-8 replaced).
pub fn ok<S: AsRef<OsStr>>(args: &[S], stdin: &[u8]) -> String {
    String::from_utf8_lossy(&ok_bytes(args, stdin)).into_owned()
}

/// Runs kbus and requires success; returns stdout's bytes.
pub fn ok_bytes<S: AsRef<OsStr>>(args: &[S], stdin: &[u8]) -> Vec<u8> {
    let out = kbus_with(args, stdin);
    let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    assert!(
        out.status.success(),
        "kbus {shown:?}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `-b bootstrap` followed by `rest`.
pub fn on(bootstrap: &str, rest: &[&str]) -> Vec<String> {
    ["-b", bootstrap]
        .iter()
        .chain(rest)
        .map(|s| s.to_string())
        .collect()
}

/// Each line of `text` read as JSON.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
