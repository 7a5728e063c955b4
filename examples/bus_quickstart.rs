//! The README's example: a typed event published and handled through a Kafka event bus.
//!
//! ```text
//! cargo run --example bus_quickstart -- 127.0.0.1:9092
//! ```
use std::sync::Arc;

use kbus::bus::kafka::{KafkaEventBus, KafkaEventBusConfig};
use kbus::bus::{new_uuid, Envelope, Event, EventBus};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct OrderPlaced {
    order_number: String,
    total_cents: i64,
}

impl Event for OrderPlaced {
    const EVENT_TYPE: &'static str = "OrderPlaced";
    const AGGREGATE_TYPE: &'static str = "Order";
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bus = KafkaEventBus::connect(KafkaEventBusConfig {
        bootstrap_servers: std::env::args().nth(1).unwrap_or("localhost:9092".into()),
        topic_prefix: "shop".into(),
        consumer_group: "billing".into(),
        ..Default::default()
    })
    .await?;
    let handled = Arc::new(tokio::sync::Notify::new());
    let done = handled.clone();
    bus.subscribe(move |e: Arc<Envelope<OrderPlaced>>| {
        let done = done.clone();
        async move {
            println!(
                "{} placed: {} cents",
                e.event.order_number, e.event.total_cents
            );
            done.notify_one();
            Ok(())
        }
    });
    bus.start().await?;
    let order = OrderPlaced {
        order_number: "ORD-1".into(),
        total_cents: 4200,
    };
    bus.publish(vec![Envelope::new(new_uuid(), 1, order)])
        .await?;
    handled.notified().await;
    bus.shutdown(std::time::Duration::from_secs(30)).await?;
    Ok(())
}
