//! `kbus metadata`: brokers, topics and partitions.

use kbus::admin::Admin;

use crate::failure::Failure;

pub async fn run(properties: Vec<(String, String)>) -> Result<(), Failure> {
    let admin = Admin::from_properties(properties).await?;
    let cluster = admin.cluster().clone();
    let mut names = admin.list_topics().await?;
    names.sort();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let topics = admin.describe_topics(&names).await?;
    let md = cluster.metadata();
    println!("{} brokers:", md.brokers.len());
    for b in md.brokers.values() {
        println!("  broker {} at {}", b.id, b.address());
    }
    println!("{} topics:", topics.len());
    for t in &topics {
        println!(
            "  topic \"{}\" with {} partitions:",
            t.name,
            t.partitions.len()
        );
        for p in &t.partitions {
            println!(
                "    partition {}, leader {}, replicas: {:?}, isrs: {:?}",
                p.id, p.leader, p.replicas, p.in_sync
            );
        }
    }
    Ok(())
}
