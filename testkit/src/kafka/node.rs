//! One Kafka node in KRaft mode (broker and controller in one JVM), and the builder that chooses its
//! version, listeners, users and settings. [`KafkaCluster`](super::KafkaCluster) puts several of
//! these nodes together.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use kbus::net::sasl::Mechanism;

use super::{java, watchdog, KafkaCluster, KafkaVersion};
use crate::certs::Pair;
use crate::{free_port, temp_dir};

/// How long a node may take to start (a JVM on a busy 2-core machine, log recovery after a kill).
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// The line a node logs once it serves clients.
const READY_LINE: &str = "Kafka Server started";

/// The security of one listener.
#[derive(Debug, Clone)]
pub enum Security {
    /// Plain TCP, no authentication.
    Plaintext,
    /// SASL over plain TCP with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (the builder's [`User`]s).
    SaslPlaintext,
    /// TLS serving `server` (key and certificate); with `client_auth`, a client certificate signed
    /// by `ca` is required (mutual TLS).
    Ssl {
        /// The server's certificate and key.
        server: Pair,
        /// The CA client certificates must be signed by.
        ca: PathBuf,
        /// Require a client certificate.
        client_auth: bool,
    },
    /// SASL (as [`Security::SaslPlaintext`]) inside TLS serving `server`.
    SaslSsl {
        /// The server's certificate and key.
        server: Pair,
    },
}

impl Security {
    fn protocol(&self) -> &'static str {
        match self {
            Security::Plaintext => "PLAINTEXT",
            Security::SaslPlaintext => "SASL_PLAINTEXT",
            Security::Ssl { .. } => "SSL",
            Security::SaslSsl { .. } => "SASL_SSL",
        }
    }

    fn uses_sasl(&self) -> bool {
        matches!(self, Security::SaslPlaintext | Security::SaslSsl { .. })
    }
}

/// A SASL user the broker knows: PLAIN users live in the listeners' JAAS configuration, SCRAM users
/// are written into the storage when it is formatted.
#[derive(Debug, Clone)]
pub struct User {
    /// The mechanism the user logs in with.
    pub mechanism: Mechanism,
    /// User name.
    pub name: String,
    /// Password.
    pub password: String,
}

impl User {
    /// A user of `mechanism`.
    pub fn new(mechanism: Mechanism, name: &str, password: &str) -> Self {
        User {
            mechanism,
            name: name.into(),
            password: password.into(),
        }
    }
}

/// Chooses what a node (or a cluster) runs with; [`start`](Self::start) starts it.
#[derive(Debug, Clone)]
pub struct KafkaBuilder {
    pub(super) version: KafkaVersion,
    listeners: Vec<(String, Security)>,
    users: Vec<User>,
    pub(super) properties: Vec<(String, String)>,
    advertised: BTreeMap<String, u16>,
    jvm: Vec<String>,
}

impl Default for KafkaBuilder {
    fn default() -> Self {
        KafkaBuilder {
            version: KafkaVersion::Newest,
            listeners: Vec::new(),
            users: Vec::new(),
            properties: Vec::new(),
            advertised: BTreeMap::new(),
            jvm: ["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl KafkaBuilder {
    /// Runs `version` (default: the newest).
    pub fn version(mut self, version: KafkaVersion) -> Self {
        self.version = version;
        self
    }

    /// Adds listener `name` (upper case, e.g. `SASL` or `MTLS`) besides the `PLAINTEXT` one every
    /// node has (brokers talk to each other over it).
    pub fn listener(mut self, name: &str, security: Security) -> Self {
        assert!(
            name != "PLAINTEXT" && name != "CONTROLLER",
            "{name} is always there"
        );
        self.listeners.push((name.to_owned(), security));
        self
    }

    /// Adds a SASL user (for every SASL listener).
    pub fn user(mut self, user: User) -> Self {
        self.users.push(user);
        self
    }

    /// Sets a broker property (`server.properties`), overriding the testkit's choice.
    pub fn property(mut self, key: &str, value: &str) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// Makes metadata name `port` for `listener` instead of the port the node listens on (where a
    /// proxy in front of it listens).
    pub fn advertise(mut self, listener: &str, port: u16) -> Self {
        self.advertised.insert(listener.into(), port);
        self
    }

    /// Replaces the JVM options (default: a 512 MB heap with the serial collector).
    pub fn jvm_options(mut self, options: &[&str]) -> Self {
        self.jvm = options.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Starts one node (broker and controller) and waits until it serves clients.
    pub fn start(self) -> Kafka {
        // A free port can be taken by someone else before the node binds it: then try others.
        for _ in 0..3 {
            let mut node = Kafka::prepare(&self, 1, &[], &random_cluster_id(), &[]);
            let starting = node.launch();
            match node.wait_ready(starting) {
                Ok(()) => return node,
                Err(e) if node.log_tail(200).contains("Address already in use") => {
                    eprintln!("{e}\nretrying on other ports");
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("Kafka did not find free ports in three attempts")
    }

    /// Starts `n` nodes forming one cluster, each broker and controller (a quorum of `n`), with
    /// replication factor `n` and `min.insync.replicas` `n - 1` as defaults; waits until every
    /// broker is registered.
    pub fn start_cluster(self, n: usize) -> KafkaCluster {
        KafkaCluster::start(self, n)
    }

    /// Every listener's name and security, `PLAINTEXT` first.
    fn all_listeners(&self) -> Vec<(String, Security)> {
        let mut all = vec![("PLAINTEXT".to_owned(), Security::Plaintext)];
        all.extend(self.listeners.iter().cloned());
        all
    }
}

/// A running Kafka node. Killed when dropped; when dropped during a panic, its directory (log,
/// data, configuration) is kept and the end of its log printed.
pub struct Kafka {
    id: i32,
    version: KafkaVersion,
    dir: PathBuf,
    ports: BTreeMap<String, u16>,
    advertised: BTreeMap<String, u16>,
    jvm: Vec<String>,
    process: Option<Running>,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("id", &self.id)
            .field("version", &self.version.number())
            .field("ports", &self.ports)
            .field("dir", &self.dir)
            .finish()
    }
}

struct Running {
    child: Child,
    /// A `sh` that kills the node once this pipe closes: when the test process dies without
    /// unwinding, its end of the pipe closes with it.
    watchdog: Child,
    _watchdog_pipe: ChildStdin,
}

enum Signal {
    Ready,
    Exited,
}

/// A node launched but not known to serve yet.
pub(super) struct Starting(mpsc::Receiver<Signal>);

impl Kafka {
    /// A builder, for a node with other than the default settings.
    pub fn builder() -> KafkaBuilder {
        KafkaBuilder::default()
    }

    /// Starts a node of the newest version with a PLAINTEXT listener only.
    pub fn start() -> Kafka {
        Kafka::builder().start()
    }

    /// One PLAINTEXT node of the newest version shared by every test of this process that calls
    /// it, started by the first. It lives until the process exits (its watchdog then kills it and
    /// removes its directory). Tests sharing it use their own topics and groups, and call
    /// [`log_on_failure`](Self::log_on_failure) to see its log when they fail.
    pub fn shared() -> &'static Kafka {
        static SHARED: OnceLock<Kafka> = OnceLock::new();
        SHARED.get_or_init(Kafka::start)
    }

    /// Writes the configuration of node `id` of a cluster whose controllers are `voters`
    /// (`id@host:port`, empty for a single node) and formats its storage.
    pub(super) fn prepare(
        builder: &KafkaBuilder,
        id: i32,
        voters: &[(i32, u16)],
        cluster_id: &str,
        ports: &[(String, u16)],
    ) -> Kafka {
        let dir = temp_dir(&format!("kafka-{id}"));
        let mut port_of: BTreeMap<String, u16> = ports.iter().cloned().collect();
        for (name, _) in builder.all_listeners() {
            port_of.entry(name).or_insert_with(free_port);
        }
        port_of.entry("CONTROLLER".into()).or_insert_with(free_port);
        let voters: Vec<(i32, u16)> = if voters.is_empty() {
            vec![(id, port_of["CONTROLLER"])]
        } else {
            voters.to_vec()
        };
        let node = Kafka {
            id,
            version: builder.version,
            dir,
            ports: port_of,
            advertised: builder.advertised.clone(),
            jvm: builder.jvm.clone(),
            process: None,
        };
        let config = node.server_properties(builder, &voters);
        std::fs::write(node.config_path(), config).expect("write server.properties");
        node.format(builder, cluster_id);
        node
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    /// The node's `server.properties`: the testkit's settings for a small, quick test broker,
    /// then the builder's own.
    fn server_properties(&self, builder: &KafkaBuilder, voters: &[(i32, u16)]) -> String {
        let listeners = builder.all_listeners();
        let mut props: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: String| props.push((k.to_owned(), v));
        set("process.roles", "broker,controller".into());
        set("node.id", self.id.to_string());
        let quorum: Vec<String> = voters
            .iter()
            .map(|(id, port)| format!("{id}@127.0.0.1:{port}"))
            .collect();
        set("controller.quorum.voters", quorum.join(","));
        set("controller.listener.names", "CONTROLLER".into());
        set("inter.broker.listener.name", "PLAINTEXT".into());
        let mut bind = vec![format!(
            "CONTROLLER://127.0.0.1:{}",
            self.ports["CONTROLLER"]
        )];
        let mut advertised = Vec::new();
        let mut map = vec!["CONTROLLER:PLAINTEXT".to_owned()];
        for (name, security) in &listeners {
            let port = self.ports[name];
            bind.push(format!("{name}://127.0.0.1:{port}"));
            let shown = self.advertised.get(name).copied().unwrap_or(port);
            advertised.push(format!("{name}://127.0.0.1:{shown}"));
            map.push(format!("{name}:{}", security.protocol()));
        }
        set("listeners", bind.join(","));
        set("advertised.listeners", advertised.join(","));
        set("listener.security.protocol.map", map.join(","));
        set("log.dirs", self.dir.join("data").display().to_string());
        let replicas = voters.len();
        set("num.partitions", "1".into());
        set("default.replication.factor", replicas.to_string());
        set(
            "min.insync.replicas",
            replicas.saturating_sub(1).max(1).to_string(),
        );
        set("offsets.topic.replication.factor", replicas.to_string());
        set("offsets.topic.num.partitions", "5".into());
        set(
            "transaction.state.log.replication.factor",
            replicas.to_string(),
        );
        set(
            "transaction.state.log.min.isr",
            replicas.saturating_sub(1).max(1).to_string(),
        );
        set("transaction.state.log.num.partitions", "5".into());
        set(
            "share.coordinator.state.topic.replication.factor",
            replicas.to_string(),
        );
        set("share.coordinator.state.topic.min.isr", "1".into());
        set("group.initial.rebalance.delay.ms", "0".into());
        // Timed-out transactions are aborted within a second, not ten.
        set(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "1000".into(),
        );
        // A killed broker leaves the ISR and loses its leaderships within seconds.
        set("replica.lag.time.max.ms", "5000".into());
        set("broker.session.timeout.ms", "4000".into());
        set("broker.heartbeat.interval.ms", "1000".into());
        // SASL: PLAIN users in each SASL listener's JAAS configuration, SCRAM users in storage.
        if listeners.iter().any(|(_, s)| s.uses_sasl()) {
            set(
                "sasl.enabled.mechanisms",
                "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512".into(),
            );
            let plain: String = builder
                .users
                .iter()
                .filter(|u| u.mechanism == Mechanism::Plain)
                .map(|u| format!(" user_{}=\"{}\"", u.name, u.password))
                .collect();
            for (name, _) in listeners.iter().filter(|(_, s)| s.uses_sasl()) {
                let l = name.to_lowercase();
                set(
                    &format!("listener.name.{l}.plain.sasl.jaas.config"),
                    format!(
                        "org.apache.kafka.common.security.plain.PlainLoginModule required{plain};"
                    ),
                );
                for scram in ["scram-sha-256", "scram-sha-512"] {
                    set(
                        &format!("listener.name.{l}.{scram}.sasl.jaas.config"),
                        "org.apache.kafka.common.security.scram.ScramLoginModule required;".into(),
                    );
                }
            }
        }
        // TLS: PEM key stores, per listener.
        for (name, security) in &listeners {
            let l = name.to_lowercase();
            let (server, ca, client_auth) = match security {
                Security::Ssl {
                    server,
                    ca,
                    client_auth,
                } => (server, Some(ca), *client_auth),
                Security::SaslSsl { server } => (server, None, false),
                _ => continue,
            };
            set(
                &format!("listener.name.{l}.ssl.keystore.type"),
                "PEM".into(),
            );
            set(
                &format!("listener.name.{l}.ssl.keystore.location"),
                server.keystore_pem().display().to_string(),
            );
            if let Some(ca) = ca {
                set(
                    &format!("listener.name.{l}.ssl.truststore.type"),
                    "PEM".into(),
                );
                set(
                    &format!("listener.name.{l}.ssl.truststore.location"),
                    ca.display().to_string(),
                );
            }
            let auth = if client_auth { "required" } else { "none" };
            set(&format!("listener.name.{l}.ssl.client.auth"), auth.into());
        }
        props.extend(builder.properties.iter().cloned());
        // Later settings win: keep only the last of each key, in first-seen order.
        let mut out = String::new();
        let last: BTreeMap<&str, &str> = props
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut written = std::collections::HashSet::new();
        for (k, _) in &props {
            if written.insert(k.as_str()) {
                out.push_str(&format!("{k}={}\n", last[k.as_str()]));
            }
        }
        out
    }

    /// Formats the node's storage (`kafka-storage format`), with the builder's SCRAM users.
    fn format(&self, builder: &KafkaBuilder, cluster_id: &str) {
        let mut command = Command::new(java());
        command
            .args(["-Xmx256m", "-cp", &self.version.classpath()])
            .args(["kafka.tools.StorageTool", "format"])
            // `=`: an id may start with `-`, which would read as an option.
            .arg(format!("--cluster-id={cluster_id}"))
            .arg("--config")
            .arg(self.config_path());
        for user in &builder.users {
            let mechanism = match user.mechanism {
                Mechanism::ScramSha256 => "SCRAM-SHA-256",
                Mechanism::ScramSha512 => "SCRAM-SHA-512",
                _ => continue,
            };
            command.args([
                "--add-scram",
                &format!(
                    "{mechanism}=[name={},password={}]",
                    user.name, user.password
                ),
            ]);
        }
        let out = command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run java ({e}); run scripts/install-test-deps"));
        assert!(
            out.status.success(),
            "formatting the storage of Kafka node {} failed:\n{}{}",
            self.id,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the node's JVM (without waiting for it to serve); [`wait_ready`](Self::wait_ready)
    /// then waits on what this returns.
    pub(super) fn launch(&mut self) -> Starting {
        assert!(self.process.is_none(), "node {} is running", self.id);
        let log_path = self.log_path();
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the node's log");
        let _ = writeln!(log, "---- kbus-testkit: starting node {} ----", self.id);
        // `exec` keeps the JVM's pid; `2>&1` puts its log (SLF4J writes to stderr) and anything
        // it prints on one pipe.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 2>&1")
            .arg(java())
            .args(&self.jvm)
            .args(["-cp", &self.version.classpath(), "kafka.Kafka"])
            .arg(self.config_path())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Kafka node {}: {e}", self.id));
        let out = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                if line.contains(READY_LINE) {
                    let _ = tx.send(Signal::Ready);
                }
            }
            let _ = tx.send(Signal::Exited);
        });
        let (watchdog, pipe) = watchdog(child.id(), Some(&self.dir));
        self.process = Some(Running {
            child,
            watchdog,
            _watchdog_pipe: pipe,
        });
        Starting(rx)
    }

    /// Waits until the node launched last logs that it serves clients; the error (with the end
    /// of its log) says why it did not.
    pub(super) fn wait_ready(&self, starting: Starting) -> Result<(), String> {
        match starting.0.recv_timeout(START_TIMEOUT) {
            Ok(Signal::Ready) => Ok(()),
            Ok(Signal::Exited) => Err(format!(
                "Kafka node {} exited while starting; its log ends:\n{}",
                self.id,
                self.log_tail(60)
            )),
            Err(_) => Err(format!(
                "Kafka node {} did not start within {START_TIMEOUT:?}; its log ends:\n{}",
                self.id,
                self.log_tail(60)
            )),
        }
    }

    /// The node id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The release it runs.
    pub fn version(&self) -> KafkaVersion {
        self.version
    }

    /// `127.0.0.1:PORT` of the `PLAINTEXT` listener, to bootstrap from.
    pub fn bootstrap(&self) -> String {
        self.addr("PLAINTEXT")
    }

    /// `127.0.0.1:PORT` of `listener` (where the node listens, not what it advertises).
    pub fn addr(&self, listener: &str) -> String {
        format!("127.0.0.1:{}", self.port(listener))
    }

    /// The port `listener` listens on.
    pub fn port(&self, listener: &str) -> u16 {
        *self
            .ports
            .get(listener)
            .unwrap_or_else(|| panic!("node {} has no listener {listener}", self.id))
    }

    /// The JVM's process id (to read its CPU time, say); `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.child.id())
    }

    /// True while the node's process runs.
    pub fn is_running(&mut self) -> bool {
        match &mut self.process {
            Some(p) => matches!(p.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the node at once (SIGKILL): no controlled shutdown, connections drop, what the
    /// broker had written stays in the files (the page cache survives the process).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            let _ = p.watchdog.kill();
            let _ = p.watchdog.wait();
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// Freezes the node (SIGSTOP): its connections stay open and its sockets accept, but nothing
    /// answers, as with a long GC pause or a stalled disk, until [`resume`](Self::resume).
    pub fn pause(&mut self) {
        self.signal("-STOP");
    }

    /// Lets a [`pause`](Self::pause)d node go on (SIGCONT).
    pub fn resume(&mut self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(p) = &self.process {
            let status = Command::new("kill")
                .args([signal, &p.child.id().to_string()])
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "kill {signal} node {}",
                self.id
            );
        }
    }

    /// Stops the node the way an operator does (SIGTERM: controlled shutdown, leaderships moved
    /// first), waiting up to a minute before killing it.
    pub fn stop(&mut self) {
        if let Some(p) = &mut self.process {
            let _ = Command::new("kill")
                .args(["-TERM", &p.child.id().to_string()])
                .status();
            for _ in 0..600 {
                if !matches!(p.child.try_wait(), Ok(None)) {
                    break;
                }
                // Polling the exit of a process we only signalled: std offers no wait with a
                // timeout.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.kill();
    }

    /// Starts the node again on the same ports, configuration and data (after
    /// [`kill`](Self::kill) or [`stop`](Self::stop)), and waits until it serves clients.
    pub fn restart(&mut self) {
        self.kill();
        let starting = self.launch();
        if let Err(e) = self.wait_ready(starting) {
            panic!("{e}");
        }
    }

    /// The node's log file (everything the JVM printed, across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("kafka.log")
    }

    /// The last `n` lines of the node's log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log_path(), n)
    }

    /// A guard that prints the end of this node's log if the current thread panics before the
    /// guard is dropped (a test's captured output then shows it with the failure).
    pub fn log_on_failure(&self) -> LogOnFailure {
        LogOnFailure {
            what: format!("Kafka node {}", self.id),
            path: self.log_path(),
        }
    }

    /// The folder holding the node's configuration, data and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "Kafka node {} kept in {}; its log ends:\n{}",
                self.id,
                self.dir.display(),
                self.log_tail(80)
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Prints the end of a log when dropped during a panic; see [`Kafka::log_on_failure`].
#[derive(Debug)]
pub struct LogOnFailure {
    pub(super) what: String,
    pub(super) path: PathBuf,
}

impl Drop for LogOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{} ({}), its log ends:\n{}",
                self.what,
                self.path.display(),
                tail(&self.path, 120)
            );
        }
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A random cluster id: 16 random bytes in URL-safe base64 without padding, like Kafka's.
pub(super) fn random_cluster_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = Vec::with_capacity(16);
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        bytes.extend_from_slice(&h.finish().to_be_bytes());
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}
