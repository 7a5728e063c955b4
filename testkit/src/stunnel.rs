//! TLS in front of a plain broker: stunnel4 on a free loopback port, forwarding to the broker, with
//! certificates generated at test time (rcgen) in a temporary directory. Killed when dropped.
//!
//! stunnel is found in `$KBUS_STUNNEL`, then as `stunnel4`, then `stunnel` on `PATH` (Debian
//! package `stunnel4`, installed by `scripts/install-test-deps`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

pub use crate::certs::{Certs, Pair};
pub use crate::free_port;
use crate::temp_dir;

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KBUS_STUNNEL") {
        return PathBuf::from(p);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join("stunnel4");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("stunnel")
}

/// A running stunnel: TLS on `port`, plain TCP to the broker behind it.
pub struct Stunnel {
    child: Child,
    dir: PathBuf,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Stunnel {
    /// Starts stunnel on `tls_port` in front of `127.0.0.1:plain_port`, serving `server`. With
    /// `client_ca`, it requires a client certificate signed by that CA (mutual TLS). Returns once
    /// stunnel says it is listening.
    pub fn start(tls_port: u16, plain_port: u16, server: &Pair, client_ca: Option<&Path>) -> Self {
        let dir = temp_dir("stunnel");
        let mut conf = format!(
            "foreground = yes\npid =\ndebug = 6\n\n[kafka]\naccept = 127.0.0.1:{tls_port}\n\
             connect = 127.0.0.1:{plain_port}\ncert = {}\nkey = {}\n",
            server.cert.display(),
            server.key.display()
        );
        if let Some(ca) = client_ca {
            conf.push_str(&format!("CAfile = {}\nverify = 2\n", ca.display()));
        }
        let conf_path = dir.join("stunnel.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let bin = binary();
        let mut child = Command::new(&bin)
            .arg(&conf_path)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start stunnel ({}): {e}; run scripts/install-test-deps first",
                    bin.display()
                )
            });
        // In the foreground stunnel logs to stderr; it names the port once it listens on it.
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let listening = format!("bound to 127.0.0.1:{tls_port}");
        let lines = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains(&listening) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
                lines.lock().unwrap().push(line);
            }
        });
        let tunnel = Stunnel {
            child,
            dir,
            port: tls_port,
            log,
        };
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            panic!(
                "stunnel did not start listening on port {tls_port}; its log:\n{}",
                tunnel.log().join("\n")
            );
        }
        tunnel
    }

    /// `host:port` of the TLS side, by IP literal.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `host:port` of the TLS side, by host name.
    pub fn localhost_addr(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// The TLS port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What stunnel logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
