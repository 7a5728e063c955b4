//! Certificates for the TLS tests, generated at run time with rcgen: a CA, a server certificate for
//! `localhost` and `127.0.0.1`, a client certificate, an expired one, one for the wrong host, and an
//! unrelated CA with a client certificate of its own. Used by [`crate::stunnel`] (TLS in front of
//! tansu) and [`crate::kafka`] (Kafka's own TLS listeners, which read PEM key stores).

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::temp_dir;

/// A certificate and its private key, as PEM files.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The unencrypted private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// Every certificate the TLS tests need, generated fresh, in a directory removed on drop, or when
/// the process ends if never dropped (a broker shared through a `static`).
pub struct Certs {
    dir: PathBuf,
    /// A shell that removes `dir` once this pipe closes: on drop, or when the process exits.
    remover: Option<(Child, ChildStdin)>,
    /// The CA that signed every certificate below except `untrusted_client`.
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
    /// A client certificate signed by the unrelated CA (one a broker does not trust).
    pub untrusted_client: Pair,
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
        let other_params = ca_params("unrelated CA");
        let other = other_params.self_signed(&other_key).unwrap();
        let unrelated_ca = write("unrelated-ca.pem", other.pem());
        let other_issuer = Issuer::new(other_params, other_key);

        let leaf_of = |issuer: &Issuer<'_, KeyPair>,
                       name: &str,
                       hosts: &[&str],
                       usage: ExtendedKeyUsagePurpose,
                       expired: bool| {
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
            let cert = p.signed_by(&key, issuer).unwrap();
            Pair {
                cert: write(&format!("{name}.pem"), cert.pem()),
                key: write(&format!("{name}.key"), key.serialize_pem()),
            }
        };
        let leaf = |name: &str, hosts: &[&str], usage: ExtendedKeyUsagePurpose, expired: bool| {
            leaf_of(&issuer, name, hosts, usage, expired)
        };
        let server_usage = || ExtendedKeyUsagePurpose::ServerAuth;
        let server = leaf("server", &["localhost", "127.0.0.1"], server_usage(), false);
        let client = leaf("client", &[], ExtendedKeyUsagePurpose::ClientAuth, false);
        let expired = leaf("expired", &["localhost", "127.0.0.1"], server_usage(), true);
        let wrong_host = leaf("wrong-host", &["broker.invalid"], server_usage(), false);
        let untrusted_client = leaf_of(
            &other_issuer,
            "untrusted-client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        );
        Certs {
            remover: remover(&dir),
            dir,
            ca,
            unrelated_ca,
            server,
            client,
            expired,
            wrong_host,
            untrusted_client,
        }
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((mut shell, pipe)) = self.remover.take() {
            drop(pipe);
            let _ = shell.wait();
        }
    }
}

/// A `sh` that removes `dir` once its stdin reaches end-of-file: when the pipe is dropped, or when
/// this process ends, however it ends (statics are never dropped).
fn remover(dir: &Path) -> Option<(Child, ChildStdin)> {
    let mut shell = Command::new("sh")
        .arg("-c")
        .arg("read _ignored; rm -rf \"$0\"")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let pipe = shell.stdin.take()?;
    Some((shell, pipe))
}

impl Pair {
    /// The private key followed by the certificate, in one PEM file next to them: the form of a
    /// Kafka `ssl.keystore.type=PEM` key store (`ssl.keystore.location`, no key password).
    pub fn keystore_pem(&self) -> PathBuf {
        let path = self.cert.with_extension("keystore.pem");
        if !path.exists() {
            let key = std::fs::read_to_string(&self.key).expect("read the key");
            let cert = std::fs::read_to_string(&self.cert).expect("read the certificate");
            std::fs::write(&path, format!("{key}{cert}")).expect("write the key store");
        }
        path
    }
}
