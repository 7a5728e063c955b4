//! One member of a kbus event bus group, as a process of its own, for tests that kill a member
//! (`kill -9`) in the middle of its work.
//!
//! ```text
//! bus-member BOOTSTRAP PREFIX GROUP
//! ```
//!
//! Joins GROUP on `{PREFIX}.stream` and handles every event with a wildcard handler that waits
//! 2 ms, then prints the event id on stdout (one line each, flushed) — printed means handled; the
//! commit comes after. Prints `ready` first, once it owns partitions. Runs until killed or until
//! stdin closes.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use kbus::bus::kafka::{KafkaEventBus, KafkaEventBusConfig};
use kbus::bus::{Envelope, EventBus, RawPayload};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, prefix, group] = args.as_slice() else {
        eprintln!("usage: bus-member BOOTSTRAP PREFIX GROUP");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let bus = KafkaEventBus::connect(KafkaEventBusConfig {
            bootstrap_servers: bootstrap.clone(),
            topic_prefix: prefix.clone(),
            consumer_group: group.clone(),
            session_timeout_ms: 6000,
            heartbeat_interval_ms: 500,
            commit_interval_ms: 100,
            topic_partitions: 3,
            ..Default::default()
        })
        .await
        .expect("connect");
        bus.subscribe_all(|e: Arc<Envelope<RawPayload>>| async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", e.meta.event_id);
            let _ = out.flush();
            Ok(())
        });
        bus.start().await.expect("start");
        let mut assignment = bus.assignment();
        let _ = assignment.wait_for(|a| !a.is_empty()).await;
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "ready");
            let _ = out.flush();
        }
        // Serve until stdin closes (the test kills the process long before).
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .ok();
        let _ = bus.shutdown(Duration::from_secs(10)).await;
    });
}
