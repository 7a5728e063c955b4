//! `kbus dlq list | count | replay`: the bus's dead letters.

use kbus::bus::kafka::{DeadLetter, DlqFilter, DlqFrom, KafkaEventBus};
use kbus::bus::{EventBus, Timestamp};
use serde_json::{json, Map, Value};

use super::bus::config;
use crate::args::{Dlq, DlqSelect};
use crate::failure::Failure;

pub async fn run(properties: Vec<(String, String)>, command: Dlq) -> Result<(), Failure> {
    let prefix = match &command {
        Dlq::List { bus, .. } | Dlq::Count { bus } | Dlq::Replay { bus, .. } => bus.prefix.clone(),
    };
    let mut config = config(&properties, &prefix);
    // The tools read what exists; they create nothing.
    config.create_topics = false;
    let bus = KafkaEventBus::connect(config).await?;
    let result = match command {
        Dlq::List { select, .. } => list(&bus, &filter(&select)?).await,
        Dlq::Count { .. } => bus
            .dlq_count()
            .await
            .map_err(Failure::from)
            .map(|n| println!("{n}")),
        Dlq::Replay {
            partition: Some(partition),
            offset: Some(offset),
            force,
            ..
        } => bus
            .replay_dlq_message(partition, offset, force)
            .await
            .map_err(Failure::from)
            .map(|n| println!("replayed {partition}/{offset} (replay {n})")),
        Dlq::Replay {
            select,
            all,
            force,
            dry_run,
            ..
        } => {
            let f = filter(&select)?;
            if f == DlqFilter::default() && !all {
                return Err(Failure::usage(
                    "dlq replay: say which: --partition and --offset, a filter, or --all",
                ));
            }
            match bus.replay_dlq(&f, force, dry_run).await {
                Ok(report) => {
                    let pairs = |v: &[(i32, i64)]| -> Vec<String> {
                        v.iter().map(|(p, o)| format!("{p}/{o}")).collect()
                    };
                    println!(
                        "{}",
                        json!({
                            "dry_run": report.dry_run,
                            "matched": pairs(&report.matched),
                            "replayed": pairs(&report.replayed),
                            "refused": report.refused.iter()
                                .map(|(p, o, n)| json!({"dead_letter": format!("{p}/{o}"), "replay_count": n}))
                                .collect::<Vec<_>>(),
                        })
                    );
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        }
    };
    bus.shutdown(std::time::Duration::from_secs(10)).await?;
    result
}

fn time(text: &Option<String>, flag: &str) -> Result<Option<Timestamp>, Failure> {
    text.as_deref()
        .map(|t| Timestamp::parse(t).map_err(|e| Failure::usage(format!("{flag} {t}: {e}"))))
        .transpose()
}

fn filter(select: &DlqSelect) -> Result<DlqFilter, Failure> {
    Ok(DlqFilter {
        from: match time(&select.since, "--since")? {
            Some(t) => DlqFrom::Time(t),
            None => DlqFrom::Beginning,
        },
        until: time(&select.until, "--until")?,
        event_type: select.event_type.clone(),
        error_type: select.error_type.clone(),
        limit: select.limit,
    })
}

async fn list(bus: &KafkaEventBus, filter: &DlqFilter) -> Result<(), Failure> {
    for d in bus.dlq_list(filter).await? {
        println!("{}", dead_letter_json(&d));
    }
    Ok(())
}

/// A dead letter as one JSON object: where it is, why it failed, the event.
fn dead_letter_json(d: &DeadLetter) -> Value {
    let mut o = Map::new();
    o.insert("partition".into(), d.partition.into());
    o.insert("offset".into(), d.offset.into());
    o.insert("timestamp".into(), d.timestamp.into());
    o.insert("reason".into(), d.reason.clone().into());
    o.insert("error_type".into(), d.error_type.clone().into());
    o.insert("error_message".into(), d.error_message.clone().into());
    o.insert("retry_count".into(), d.retry_count.into());
    o.insert(
        "dead_lettered_at".into(),
        d.dead_lettered_at.map(|t| t.to_header_string()).into(),
    );
    if let Some((topic, partition, offset)) = &d.original {
        o.insert(
            "original".into(),
            json!({"topic": topic, "partition": partition, "offset": offset}),
        );
    }
    o.insert("consumer_group".into(), d.consumer_group.clone().into());
    o.insert("replay_count".into(), d.replay_count.into());
    let value = d.value.as_deref().unwrap_or_default();
    match &d.event {
        Ok(_) => {
            o.insert(
                "event".into(),
                serde_json::from_slice(value).unwrap_or(Value::Null),
            );
        }
        Err(why) => {
            o.insert("event".into(), Value::Null);
            o.insert("event_error".into(), why.clone().into());
            o.insert(
                "value".into(),
                String::from_utf8_lossy(value).into_owned().into(),
            );
        }
    }
    Value::Object(o)
}
