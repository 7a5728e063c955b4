//! The event bus end to end on a Kafka cluster: typed events of two types published over many
//! aggregates, a group of two members sharing them (each aggregate's events in order, aggregates
//! side by side), a handler that refuses a poison event so that it lands in the dead-letter topic
//! after its retries, then statistics and throughput. `scripts/demo` runs it against a local
//! Apache Kafka node, then lists and replays the dead letter with the `kbus` CLI.
//!
//! ```text
//! cargo run --release --example bus_demo -- 127.0.0.1:9092 [events] [prefix]
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kbus::bus::kafka::{KafkaEventBus, KafkaEventBusConfig};
use kbus::bus::{new_uuid, BusStats, Envelope, Event, EventBus, HandlerError, Uuid};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderPlaced {
    order_number: String,
    total_cents: i64,
}

impl Event for OrderPlaced {
    const EVENT_TYPE: &'static str = "OrderPlaced";
    const AGGREGATE_TYPE: &'static str = "Order";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PaymentReceived {
    amount_cents: i64,
}

impl Event for PaymentReceived {
    const EVENT_TYPE: &'static str = "PaymentReceived";
    const AGGREGATE_TYPE: &'static str = "Order";
}

/// What one member saw: events handled, and whether each order's events came in order.
#[derive(Default)]
struct Member {
    handled: AtomicU64,
    last_version: Mutex<HashMap<Uuid, u64>>,
    out_of_order: AtomicU64,
}

impl Member {
    fn saw(&self, aggregate: Uuid, version: u64) {
        let mut last = self.last_version.lock().unwrap();
        let before = last.insert(aggregate, version).unwrap_or(0);
        if version <= before {
            self.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let events: u64 = args.next().map_or(Ok(20_000), |n| n.parse())?;
    let prefix = args
        .next()
        .unwrap_or_else(|| format!("demo-{}", std::process::id()));
    let config = KafkaEventBusConfig {
        bootstrap_servers: bootstrap,
        topic_prefix: prefix.clone(),
        consumer_group: format!("{prefix}-group"),
        topic_partitions: 6,
        max_retries: 2,
        retry_base_delay: 0.2,
        session_timeout_ms: 10_000,
        heartbeat_interval_ms: 1_000,
        ..Default::default()
    };

    // Two members of one group share the partitions.
    let mut members = Vec::new();
    for name in ["member-a", "member-b"] {
        let mut c = config.clone();
        c.consumer_name = Some(name.into());
        let bus = KafkaEventBus::connect(c).await?;
        let seen = Arc::new(Member::default());
        let s = seen.clone();
        bus.subscribe(move |e: Arc<Envelope<OrderPlaced>>| {
            let s = s.clone();
            async move {
                if e.event.total_cents < 0 {
                    return Err(HandlerError::new(
                        "InvalidTotal",
                        format!("order {} has a negative total", e.event.order_number),
                    ));
                }
                s.saw(e.meta.aggregate_id, e.meta.aggregate_version);
                Ok(())
            }
        });
        let s = seen.clone();
        bus.subscribe(move |e: Arc<Envelope<PaymentReceived>>| {
            let s = s.clone();
            async move {
                s.saw(e.meta.aggregate_id, e.meta.aggregate_version);
                Ok(())
            }
        });
        bus.start().await?;
        members.push((name, bus, seen));
    }
    // Both members own partitions before anything is published.
    for (_, bus, _) in &members {
        bus.assignment().wait_for(|owned| !owned.is_empty()).await?;
    }
    let owned: Vec<String> = members
        .iter()
        .map(|(name, bus, _)| {
            let partitions: Vec<String> = bus
                .assignment()
                .borrow()
                .iter()
                .map(|tp| tp.partition.to_string())
                .collect();
            format!("{name} partitions {}", partitions.join(","))
        })
        .collect();
    println!("group {prefix}-group: {}", owned.join("; "));

    // Publish, while the members handle: orders placed and paid over 1,000 orders, one poison order among them.
    let orders: Vec<Uuid> = (0..1_000).map(|_| new_uuid()).collect();
    let poison = orders[7];
    let publisher = KafkaEventBus::connect(config.clone()).await?;
    let published_from = Instant::now();
    let mut version: HashMap<Uuid, u64> = HashMap::new();
    let mut batch_placed = Vec::new();
    let mut batch_paid = Vec::new();
    for i in 0..events {
        let order = orders[(i % orders.len() as u64) as usize];
        let v = version.entry(order).or_insert(0);
        *v += 1;
        if *v == 1 {
            let total_cents = if order == poison {
                -1
            } else {
                1_000 + i as i64
            };
            batch_placed.push(Envelope::new(
                order,
                *v,
                OrderPlaced {
                    order_number: format!("ORD-{i}"),
                    total_cents,
                },
            ));
        } else {
            batch_paid.push(Envelope::new(
                order,
                *v,
                PaymentReceived { amount_cents: 100 },
            ));
        }
        if batch_placed.len() + batch_paid.len() >= 1_000 || i + 1 == events {
            // Each call is acknowledged before the next; an order's events keep their order.
            publisher.publish(std::mem::take(&mut batch_placed)).await?;
            publisher.publish(std::mem::take(&mut batch_paid)).await?;
        }
    }
    let publish_secs = published_from.elapsed().as_secs_f64();
    publisher.shutdown(Duration::from_secs(10)).await?;
    println!(
        "published {events} events (OrderPlaced, PaymentReceived) over {} orders to {}.stream in {:.2} s: {:.0} events/s",
        orders.len(),
        prefix,
        publish_secs,
        events as f64 / publish_secs
    );

    // Every event but the poison one handled, and the poison one dead-lettered; its order's
    // later events wait behind it (per-aggregate order), then go on.
    let total = |members: &[(&str, KafkaEventBus, Arc<Member>)]| {
        members.iter().fold((0, 0), |(ok, dlq), (_, bus, _)| {
            let s: BusStats = bus.stats();
            (
                ok + s.events_processed_success,
                dlq + s.messages_sent_to_dlq,
            )
        })
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let (ok, dlq) = total(&members);
        if ok + dlq >= events {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {ok} handled and {dlq} dead-lettered of {events}").into());
        }
    }
    let consume_secs = published_from.elapsed().as_secs_f64();
    println!(
        "the two members had handled them {consume_secs:.2} s after the first publish: {:.0} events/s end to end",
        events as f64 / consume_secs
    );
    for (name, bus, seen) in &members {
        let s = bus.stats();
        println!(
            "  {name}: handled {:>6}, failed attempts {}, dead-lettered {}, rebalances {}, out of order {}",
            seen.handled.load(Ordering::Relaxed),
            s.handler_errors,
            s.messages_sent_to_dlq,
            s.rebalance_count,
            seen.out_of_order.load(Ordering::Relaxed),
        );
    }
    for (_, bus, _) in members {
        bus.shutdown(Duration::from_secs(30)).await?;
    }
    println!("the poison order {poison} is in {prefix}.stream.dlq");
    Ok(())
}
