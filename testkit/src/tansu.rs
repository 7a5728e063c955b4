//! A tansu 0.6.0 broker (a Kafka-compatible broker written in Rust) on SQLite storage in a temporary
//! directory, on a free loopback port. Killed when dropped, also when the test panics.
//!
//! The binary is found in `$KBUS_TANSU`, then `~/.cache/kbus/tansu-0.6.0/bin/tansu` (where
//! `scripts/install-test-deps` builds it), then `PATH`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kbus::net::sasl::Mechanism;

/// A running tansu broker.
pub struct Tansu {
    child: Child,
    dir: PathBuf,
    port: u16,
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KBUS_TANSU") {
        return PathBuf::from(p);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = PathBuf::from(home).join(".cache/kbus/tansu-0.6.0/bin/tansu");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("tansu")
}

use crate::free_port;

fn temp_dir() -> PathBuf {
    crate::temp_dir("tansu")
}

/// A broker process killed when dropped (also when a test panics), leaving its directory.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts tansu on SQLite in `dir`, listening on `port`, and waits until it says it is ready.
fn spawn_ready(dir: &Path, port: u16, authentication: bool) -> Child {
    spawn_ready_advertising(dir, port, port, authentication)
}

/// Like [`spawn_ready`], but metadata names `advertised` as the broker's port (a TLS proxy's, say).
fn spawn_ready_advertising(dir: &Path, port: u16, advertised: u16, authentication: bool) -> Child {
    let url = format!("tcp://127.0.0.1:{port}");
    let advertised_url = format!("tcp://127.0.0.1:{advertised}");
    let bin = binary();
    // tansu reads a .env file and LISTENER_URL-style variables: give it a clean environment.
    let mut command = Command::new(&bin);
    command
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised_url,
        ])
        .args(["--storage-engine", "sqlite://tansu.db"]);
    if authentication {
        command.arg("--authentication");
    }
    let mut child = command
        .current_dir(dir)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start tansu ({}): {e}; run scripts/install-test-deps first",
                bin.display()
            )
        });
    // Wait for the line "ready in Nms" on its output, then keep draining it in the background.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("ready in") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let status = child.try_wait();
        let _ = child.kill();
        let _ = child.wait();
        panic!("tansu on port {port} did not become ready (exit status: {status:?})");
    }
    child
}

impl Tansu {
    /// Starts a broker and waits until it says it is ready.
    pub fn start() -> Self {
        let dir = temp_dir();
        let port = free_port();
        let child = spawn_ready(&dir, port, false);
        Tansu { child, dir, port }
    }

    /// Starts a broker that requires SASL (SCRAM-SHA-256 and SCRAM-SHA-512; tansu 0.6.0 has no
    /// PLAIN) and knows `users` (name, password, mechanism).
    ///
    /// tansu stores users only on SQLite/Postgres storage, and creating them needs a broker that
    /// does not require authentication: so this starts one without `--authentication`, creates the
    /// users with `tansu user create`, stops it and starts it again on the same file and port with
    /// `--authentication`.
    pub fn start_with_scram(users: &[(&str, &str, Mechanism)]) -> Self {
        let dir = temp_dir();
        let port = free_port();
        let open = KillOnDrop(spawn_ready(&dir, port, false));
        for (name, password, mechanism) in users {
            let mechanism = match mechanism {
                Mechanism::ScramSha256 => "scram256",
                Mechanism::ScramSha512 => "scram512",
                other => panic!("tansu 0.6.0 cannot store {other} users"),
            };
            let out = Command::new(binary())
                .args(["user", "create", name, password, "--mechanism", mechanism])
                .args(["--broker", &format!("tcp://127.0.0.1:{port}")])
                .current_dir(&dir)
                .env_clear()
                .stdin(Stdio::null())
                .output()
                .expect("run tansu user create");
            assert!(
                out.status.success(),
                "tansu user create {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        drop(open);
        let child = spawn_ready(&dir, port, true);
        Tansu { child, dir, port }
    }

    /// Starts a broker listening on `listen_port` whose metadata sends clients to
    /// `advertised_port` instead (where a TLS proxy in front of it listens).
    pub fn start_advertising(listen_port: u16, advertised_port: u16) -> Self {
        let dir = temp_dir();
        let child = spawn_ready_advertising(&dir, listen_port, advertised_port, false);
        Tansu {
            child,
            dir,
            port: listen_port,
        }
    }

    /// Stops the broker and starts it again on the same port and storage (a broker restart:
    /// every client connection drops, the data stays). For brokers started without authentication.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_ready(&self.dir, self.port, false);
    }

    /// `host:port` to bootstrap from.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's process id (to read its CPU time from `/proc/PID/stat`, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
