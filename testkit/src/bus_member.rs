//! A kbus event bus member in a process of its own (the `bus-member` program), for tests that kill
//! a member without warning (`kill -9`) while it works.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running member; killed when dropped.
pub struct BusMember {
    child: Child,
    handled: mpsc::Receiver<String>,
}

impl BusMember {
    /// Starts a member of `group` on `{prefix}.stream`; returns once it owns partitions.
    pub fn start(bootstrap: &str, prefix: &str, group: &str) -> BusMember {
        let mut child = Command::new(crate::binaries::testkit_binary("bus-member"))
            .args([bootstrap, prefix, group])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run bus-member");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("bus-member consumes within a minute");
        assert_eq!(first, "ready", "bus-member's first line");
        BusMember { child, handled: rx }
    }

    /// The ids of events it handled since the last call (without waiting).
    pub fn handled(&self) -> Vec<String> {
        self.handled.try_iter().collect()
    }

    /// Waits until it handled `n` more events (or `within` passed); returns their ids.
    pub fn wait_handled(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + within;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.handled.recv_timeout(left) {
                Ok(id) => out.push(id),
                Err(_) => break,
            }
        }
        out
    }

    /// Kills the process at once (SIGKILL): no shutdown, no commit, no leaving the group.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.handled()
    }
}

impl Drop for BusMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
