//! One Apache Kafka node (KRaft, broker and controller in one JVM) for scripts: `scripts/demo`
//! runs the kbus example against it.
//!
//! ```text
//! kafka-node [--version newest|floor]
//! ```
//!
//! Starts the node on free loopback ports (the jars come from `scripts/install-test-deps`),
//! prints its bootstrap address (`127.0.0.1:PORT`) as one line on stdout once it serves clients,
//! then keeps it running until stdin closes; the node is stopped then, and also when this process
//! dies (the testkit's watchdog).

use std::io::{Read, Write};
use std::process::ExitCode;

use kbus_testkit::kafka::{Kafka, KafkaVersion};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut version = KafkaVersion::Newest;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().as_deref()) {
            ("--version", Some("newest")) => version = KafkaVersion::Newest,
            ("--version", Some("floor")) => version = KafkaVersion::Floor,
            _ => {
                eprintln!("usage: kafka-node [--version newest|floor]");
                return ExitCode::from(2);
            }
        }
    }
    let kafka = Kafka::builder().version(version).start();
    eprintln!(
        "kafka-node: Apache Kafka {} listening on {} (log: {})",
        version.number(),
        kafka.bootstrap(),
        kafka.log_path().display()
    );
    let mut out = std::io::stdout();
    if writeln!(out, "{}", kafka.bootstrap())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    // Serve until stdin reaches its end.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(kafka);
    ExitCode::SUCCESS
}
