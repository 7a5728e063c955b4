//! `kbus groups list | describe | reset-offsets`.

use std::collections::BTreeMap;

use kbus::admin::{Admin, OffsetSpec};
use kbus::consumer::Consumer;
use kbus::TopicPartition;

use crate::args::Groups;
use crate::failure::{Failure, Kind};

pub async fn run(properties: Vec<(String, String)>, command: Groups) -> Result<(), Failure> {
    let admin = Admin::from_properties(properties.clone()).await?;
    match command {
        Groups::List => {
            let mut groups = admin.list_groups().await?;
            groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
            for g in groups {
                println!("{}\t{}\t{}", g.group_id, g.state, g.protocol_type);
            }
        }
        Groups::Describe { group } => describe(&admin, &group).await?,
        Groups::ResetOffsets { group, topic, to } => {
            reset(&admin, properties, &group, &topic, &to).await?
        }
    }
    Ok(())
}

async fn describe(admin: &Admin, group: &str) -> Result<(), Failure> {
    let described = admin.describe_groups(&[group]).await?;
    let Some(g) = described.into_iter().next() else {
        return Err(Failure::new(Kind::Other, format!("no group {group}")));
    };
    println!(
        "group {} state {} protocol {} ({} members)",
        g.group_id,
        g.state,
        if g.protocol.is_empty() {
            "-"
        } else {
            &g.protocol
        },
        g.members.len()
    );
    for m in &g.members {
        let assigned: Vec<String> = m.assignment.iter().map(ToString::to_string).collect();
        println!(
            "  member {} client {} host {}{}: {}",
            m.member_id,
            m.client_id,
            m.client_host,
            m.group_instance_id
                .as_ref()
                .map(|i| format!(" instance {i}"))
                .unwrap_or_default(),
            if assigned.is_empty() {
                "no partitions".to_owned()
            } else {
                assigned.join(", ")
            }
        );
    }
    let committed = admin.list_group_offsets(group).await?;
    if committed.is_empty() {
        println!("no committed offsets");
        return Ok(());
    }
    let mut by_topic: BTreeMap<&str, Vec<(&TopicPartition, i64)>> = BTreeMap::new();
    for (tp, c) in &committed {
        by_topic.entry(&tp.topic).or_default().push((tp, c.offset));
    }
    println!(
        "{:<30}  {:>9}  {:>12}  {:>12}  {:>10}",
        "topic", "partition", "committed", "end", "lag"
    );
    for (topic, partitions) in by_topic {
        let ids: Vec<i32> = partitions.iter().map(|(tp, _)| tp.partition).collect();
        let ends = admin.list_offsets(topic, &ids, OffsetSpec::Latest).await?;
        for (tp, offset) in partitions {
            let end = ends
                .iter()
                .find(|o| o.partition == tp.partition)
                .map_or(-1, |o| o.offset);
            println!(
                "{:<30}  {:>9}  {:>12}  {:>12}  {:>10}",
                topic,
                tp.partition,
                offset,
                end,
                (end - offset).max(0)
            );
        }
    }
    Ok(())
}

async fn reset(
    admin: &Admin,
    mut properties: Vec<(String, String)>,
    group: &str,
    topic: &str,
    to: &str,
) -> Result<(), Failure> {
    let spec = match to {
        "earliest" | "beginning" => Some(OffsetSpec::Earliest),
        "latest" | "end" => Some(OffsetSpec::Latest),
        t if t.starts_with('@') => {
            Some(OffsetSpec::Timestamp(t[1..].parse().map_err(|_| {
                Failure::usage(format!("--to {t}: expected milliseconds after @"))
            })?))
        }
        _ => None,
    };
    let fixed: Option<i64> = match spec {
        Some(_) => None,
        None => Some(to.parse().map_err(|_| {
            Failure::usage(format!(
                "--to {to}: expected earliest, latest, an offset or @TIMESTAMP"
            ))
        })?),
    };
    let described = admin.describe_groups(&[group]).await?;
    if let Some(g) = described.first().filter(|g| !g.members.is_empty()) {
        return Err(Failure::new(
            Kind::Other,
            format!(
                "group {group} has {} active members (state {}): stop them first",
                g.members.len(),
                g.state
            ),
        ));
    }
    let latest = admin.list_offsets(topic, &[], OffsetSpec::Latest).await?;
    let targets: Vec<(TopicPartition, i64)> = match (spec, fixed) {
        (Some(spec), _) => {
            let found = admin.list_offsets(topic, &[], spec).await?;
            found
                .iter()
                .map(|o| {
                    // A time after the last record: the end.
                    let end = latest
                        .iter()
                        .find(|l| l.partition == o.partition)
                        .map_or(0, |l| l.offset);
                    let at = if o.offset < 0 { end } else { o.offset };
                    (TopicPartition::new(topic, o.partition), at)
                })
                .collect()
        }
        (None, Some(n)) => latest
            .iter()
            .map(|l| (TopicPartition::new(topic, l.partition), n.min(l.offset)))
            .collect(),
        (None, None) => unreachable!("one of them is set"),
    };
    properties.push(("group.id".into(), group.into()));
    properties.push(("enable.auto.commit".into(), "false".into()));
    let mut consumer = Consumer::from_properties(properties).await?;
    consumer.assign(targets.iter().map(|(tp, _)| tp.clone()))?;
    consumer.commit(&targets).await?;
    consumer.close().await?;
    for (tp, offset) in &targets {
        println!("{tp}\t{offset}");
    }
    Ok(())
}
