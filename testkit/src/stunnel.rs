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

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub use crate::free_port;
use crate::temp_dir;

/// A certificate and its private key, as PEM files.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The unencrypted private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// Every certificate the TLS tests need, generated fresh, in a directory removed on drop.
pub struct Certs {
    dir: PathBuf,
    /// The CA that signed every certificate below.
    pub ca: PathBuf,
    /// A CA that signed none of them (for "unknown CA").
    pub unrelated_ca: PathBuf,
    /// A server certificate for `localhost` and `127.0.0.1`.
    pub server: Pair,
    /// A client certificate for mutual TLS.
    pub client: Pair,
    /// A server certificate for `localhost` and `127.0.0.1` that expired in 2021.
    pub expired: Pair,
    /// A server certificate for `broker.invalid` only.
    pub wrong_host: Pair,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

impl Certs {
    /// Generates the CA, the server, client, expired and wrong-host certificates.
    pub fn generate() -> Self {
        let dir = temp_dir("certs");
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };

        let ca_key = KeyPair::generate().unwrap();
        let params = ca_params("kbus test CA");
        let ca_cert = params.self_signed(&ca_key).unwrap();
        let ca = write("ca.pem", ca_cert.pem());
        let issuer = Issuer::new(params, ca_key);

        let other_key = KeyPair::generate().unwrap();
        let other = ca_params("unrelated CA").self_signed(&other_key).unwrap();
        let unrelated_ca = write("unrelated-ca.pem", other.pem());

        let leaf = |name: &str, hosts: &[&str], usage: ExtendedKeyUsagePurpose, expired: bool| {
            let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
            let mut p = CertificateParams::new(hosts).unwrap();
            p.distinguished_name.push(DnType::CommonName, name);
            p.extended_key_usages = vec![usage];
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            if expired {
                p.not_before = rcgen::date_time_ymd(2020, 1, 1);
                p.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &issuer).unwrap();
            Pair {
                cert: write(&format!("{name}.pem"), cert.pem()),
                key: write(&format!("{name}.key"), key.serialize_pem()),
            }
        };
        let server_usage = || ExtendedKeyUsagePurpose::ServerAuth;
        let server = leaf("server", &["localhost", "127.0.0.1"], server_usage(), false);
        let client = leaf("client", &[], ExtendedKeyUsagePurpose::ClientAuth, false);
        let expired = leaf("expired", &["localhost", "127.0.0.1"], server_usage(), true);
        let wrong_host = leaf("wrong-host", &["broker.invalid"], server_usage(), false);
        Certs {
            dir,
            ca,
            unrelated_ca,
            server,
            client,
            expired,
            wrong_host,
        }
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

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
