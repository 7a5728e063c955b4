//! A tansu 0.6.0 broker (a Kafka-compatible broker written in Rust) on SQLite storage in a temporary
//! directory, on a free loopback port. Killed when dropped, also when the test panics.
//!
//! The binary is found in `$KBUS_TANSU`, then `~/.cache/kbus/tansu-0.6.0/bin/tansu` (where
//! `scripts/install-test-deps` builds it), then `PATH`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

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

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

impl Tansu {
    /// Starts a broker and waits until it says it is ready.
    pub fn start() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kbus-tansu-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let bin = binary();
        // tansu reads a .env file and LISTENER_URL-style variables: give it a clean environment.
        let mut child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&dir)
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
        let mut broker = Tansu { child, dir, port };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let status = broker.child.try_wait();
            panic!("tansu on port {port} did not become ready (exit status: {status:?})");
        }
        broker
    }

    /// `host:port` to bootstrap from.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
