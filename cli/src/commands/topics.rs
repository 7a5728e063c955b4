//! `kbus topics list | create | delete | describe`.

use kbus::admin::{Admin, NewTopic, OffsetSpec};

use crate::args::Topics;
use crate::failure::{Failure, Kind};
use crate::settings::key_value;

pub async fn run(properties: Vec<(String, String)>, command: Topics) -> Result<(), Failure> {
    let admin = Admin::from_properties(properties).await?;
    match command {
        Topics::List { all } => {
            let mut names = admin.list_topics().await?;
            if !all {
                names.retain(|n| !n.starts_with("__"));
            }
            names.sort();
            for n in names {
                println!("{n}");
            }
        }
        Topics::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut topic = NewTopic::new(&name, partitions, replication_factor);
            for c in &configs {
                let (k, v) = key_value(c, "--config")?;
                topic = topic.config(k, v);
            }
            admin.create_topics(&[topic]).await?;
            eprintln!("created topic {name}");
        }
        Topics::Delete { name } => {
            admin.delete_topics(&[&name]).await?;
            eprintln!("deleted topic {name}");
        }
        Topics::Describe { name } => describe(&admin, &name).await?,
    }
    Ok(())
}

async fn describe(admin: &Admin, name: &str) -> Result<(), Failure> {
    let topics = admin.describe_topics(&[name]).await?;
    let Some(topic) = topics.into_iter().find(|t| t.name == name) else {
        return Err(Failure::new(Kind::Other, format!("no topic {name}")));
    };
    if topic.error.is_err() {
        return Err(Failure::new(
            Kind::Other,
            format!("topic {name}: {}", topic.error),
        ));
    }
    let earliest = admin.list_offsets(name, &[], OffsetSpec::Earliest).await?;
    let latest = admin.list_offsets(name, &[], OffsetSpec::Latest).await?;
    let offset = |list: &[kbus::admin::PartitionOffset], p: i32| {
        list.iter()
            .find(|o| o.partition == p)
            .map_or(-1, |o| o.offset)
    };
    println!(
        "topic {} ({} partitions, id {})",
        topic.name,
        topic.partitions.len(),
        topic.id
    );
    println!(
        "{:>9}  {:>6}  {:<12}  {:<12}  {:>12}  {:>12}  {:>10}",
        "partition", "leader", "replicas", "in-sync", "low", "high", "records"
    );
    for p in &topic.partitions {
        let (low, high) = (offset(&earliest, p.id), offset(&latest, p.id));
        println!(
            "{:>9}  {:>6}  {:<12}  {:<12}  {:>12}  {:>12}  {:>10}",
            p.id,
            p.leader,
            ids(&p.replicas),
            ids(&p.in_sync),
            low,
            high,
            (high - low).max(0)
        );
    }
    let mut configs = match admin.describe_topic_config(name).await {
        Ok(configs) => configs,
        // Some Kafka-compatible brokers (librdkafka's mock, say) keep no topic configs.
        Err(e @ kbus::Error::UnsupportedApi { .. }) => {
            println!("configs: not available ({e})");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    println!("configs:");
    for c in configs {
        let value = if c.sensitive {
            "(sensitive)".to_owned()
        } else {
            c.value.unwrap_or_else(|| "(null)".into())
        };
        println!("  {}={}", c.name, value);
    }
    Ok(())
}

fn ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}
