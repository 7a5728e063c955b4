//! `kbus consume`: print a topic's records, from a chosen start, as a group member or by reading
//! partitions directly; `-e` stops at the end, `-c` after a count, Ctrl-C at once (a group member
//! commits what it printed and leaves its group first).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use kbus::admin::{Admin, OffsetSpec};
use kbus::consumer::{Consumer, ConsumerRecord, Event};
use kbus::TopicPartition;

use crate::args::Consume;
use crate::failure::Failure;

/// Where reading starts (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Beginning,
    End,
    /// The group's committed offsets (`-g` only).
    Stored,
    Offset(i64),
    /// This many records before the end.
    BeforeEnd(i64),
    /// The first record at or after this time (ms).
    Time(i64),
}

impl Start {
    pub fn parse(text: &str) -> Result<Start, Failure> {
        let bad = || {
            Failure::usage(format!(
                "-o {text}: expected beginning, end, stored, an offset, -N or @TIMESTAMP"
            ))
        };
        Ok(match text {
            "beginning" | "earliest" => Start::Beginning,
            "end" | "latest" => Start::End,
            "stored" => Start::Stored,
            t if t.starts_with('@') => Start::Time(t[1..].parse().map_err(|_| bad())?),
            t if t.starts_with('-') => Start::BeforeEnd(t[1..].parse().map_err(|_| bad())?),
            t => Start::Offset(t.parse().map_err(|_| bad())?),
        })
    }
}

/// What to read, and when to stop.
pub struct Source {
    pub topic: String,
    pub group: Option<String>,
    /// Without a group: these partitions (all when empty).
    pub partitions: Vec<i32>,
    pub start: Option<Start>,
    pub count: Option<u64>,
    pub exit_at_end: bool,
}

/// Writes one record; false when it was left out (not counted).
pub type Printer<'a> = dyn FnMut(&ConsumerRecord, &mut dyn Write) -> std::io::Result<bool> + 'a;

pub async fn run(properties: Vec<(String, String)>, args: Consume) -> Result<(), Failure> {
    let json = args.json;
    let source = Source {
        start: args.offset.as_deref().map(Start::parse).transpose()?,
        topic: args.topic,
        group: args.group,
        partitions: args.partition,
        count: args.count,
        exit_at_end: args.exit_at_end,
    };
    read(properties, source, &mut |r, out| {
        if json {
            serde_json::to_writer(&mut *out, &crate::json::record(r))?;
        } else if let Some(v) = &r.value {
            out.write_all(v)?;
        }
        out.write_all(b"\n")?;
        Ok(true)
    })
    .await
}

/// Reads `source`, handing each record to `print`, until its count, its end (with
/// `exit_at_end`), or Ctrl-C. A group member commits what was printed, on revocation and at the
/// end, and leaves its group.
pub async fn read(
    mut properties: Vec<(String, String)>,
    source: Source,
    print: &mut Printer<'_>,
) -> Result<(), Failure> {
    let start = source.start;
    if let Some(group) = &source.group {
        let reset =
            match start {
                Some(Start::Beginning) => "earliest",
                None | Some(Start::End) | Some(Start::Stored) => "latest",
                Some(_) => return Err(Failure::usage(
                    "with -g, -o takes beginning, end or stored (the group's committed offsets \
                     come first; use `groups reset-offsets` to move them)",
                )),
            };
        properties.push(("group.id".into(), group.clone()));
        properties.push(("auto.offset.reset".into(), reset.into()));
        properties.push(("enable.auto.commit".into(), "false".into()));
    } else if start == Some(Start::Stored) {
        return Err(Failure::usage("-o stored needs a group (-g)"));
    }
    let admin = Admin::from_properties(properties.clone()).await?;
    let mut consumer = Consumer::from_properties(properties).await?;
    let mut reading = Reading {
        source: &source,
        admin: &admin,
        ends: BTreeMap::new(),
        done: BTreeSet::new(),
        printed: 0,
        through: BTreeMap::new(),
        out: std::io::BufWriter::new(std::io::stdout()),
        print,
    };
    if source.group.is_some() {
        consumer.subscribe([source.topic.clone()])?;
    } else {
        let partitions: Vec<TopicPartition> = if source.partitions.is_empty() {
            consumer.partitions_for(&source.topic).await?
        } else {
            source
                .partitions
                .iter()
                .map(|p| TopicPartition::new(&source.topic, *p))
                .collect()
        };
        consumer.assign(partitions.clone())?;
        position(
            &admin,
            &mut consumer,
            &partitions,
            start.unwrap_or(Start::Beginning),
        )
        .await?;
        reading.reached(&mut consumer, &partitions).await?;
    }
    let result = reading.run(&mut consumer).await;
    reading.out.flush()?;
    if source.group.is_some() {
        let through: Vec<(TopicPartition, i64)> =
            std::mem::take(&mut reading.through).into_iter().collect();
        if !through.is_empty() {
            if let Err(e) = consumer.commit(&through).await {
                eprintln!("kbus: committing what was printed failed: {e}");
            }
        }
    }
    consumer.close().await?;
    result
}

struct Reading<'a, 'p> {
    source: &'a Source,
    admin: &'a Admin,
    /// With `-e`: each partition's end when it was assigned.
    ends: BTreeMap<TopicPartition, i64>,
    /// With `-e`: partitions read to their end.
    done: BTreeSet<TopicPartition>,
    printed: u64,
    /// Per partition, the offset after the last record handed to `print`: what a group member
    /// commits (records fetched but not reached, past a count, are not).
    through: BTreeMap<TopicPartition, i64>,
    out: std::io::BufWriter<std::io::Stdout>,
    print: &'a mut Printer<'p>,
}

impl Reading<'_, '_> {
    fn finished(&self) -> bool {
        self.source.count.is_some_and(|c| self.printed >= c)
            || (self.source.exit_at_end
                && !self.ends.is_empty()
                && self.done.len() >= self.ends.len())
    }

    async fn run(&mut self, consumer: &mut Consumer) -> Result<(), Failure> {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        while !self.finished() {
            let event = tokio::select! {
                _ = &mut ctrl_c => return Ok(()),
                event = consumer.poll() => event?,
            };
            match event {
                Event::Records(batch) => {
                    let mut through = None;
                    for r in &batch.records {
                        if self.source.count.is_some_and(|c| self.printed >= c) {
                            break;
                        }
                        self.print(r)?;
                        through = Some(r.offset + 1);
                    }
                    self.out.flush()?;
                    if let Some(offset) = through {
                        self.through.insert(batch.topic_partition.clone(), offset);
                    }
                    let tp = batch.topic_partition.clone();
                    if self
                        .ends
                        .get(&tp)
                        .is_some_and(|end| batch.next_offset >= *end)
                    {
                        self.done.insert(tp);
                    }
                }
                Event::Assigned(tps) => self.reached(consumer, &tps).await?,
                Event::Revoked(tps) => {
                    // Commit what was printed while the generation still holds them.
                    let revoked: Vec<(TopicPartition, i64)> = tps
                        .iter()
                        .filter_map(|tp| Some((tp.clone(), self.through.remove(tp)?)))
                        .collect();
                    if !revoked.is_empty() {
                        if let Err(e) = consumer.commit(&revoked).await {
                            eprintln!("kbus: committing before a rebalance failed: {e}");
                        }
                    }
                    self.forget(&tps);
                }
                Event::Lost(tps) => {
                    for tp in &tps {
                        self.through.remove(tp);
                    }
                    self.forget(&tps);
                }
                Event::Error(e) => eprintln!("kbus: still retrying: {e}"),
                _ => {}
            }
        }
        Ok(())
    }

    fn forget(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            self.ends.remove(tp);
            self.done.remove(tp);
        }
    }

    /// With `-e`, notes the ends of newly read partitions, and those already at their end.
    async fn reached(
        &mut self,
        consumer: &mut Consumer,
        tps: &[TopicPartition],
    ) -> Result<(), Failure> {
        if !self.source.exit_at_end || tps.is_empty() {
            return Ok(());
        }
        let partitions: Vec<i32> = tps.iter().map(|tp| tp.partition).collect();
        let ends = self
            .admin
            .list_offsets(&self.source.topic, &partitions, OffsetSpec::Latest)
            .await?;
        for tp in tps {
            let end = ends
                .iter()
                .find(|o| o.partition == tp.partition)
                .map_or(0, |o| o.offset);
            self.ends.insert(tp.clone(), end);
            if consumer.resolve_position(tp).await? >= end {
                self.done.insert(tp.clone());
            }
        }
        Ok(())
    }

    fn print(&mut self, r: &ConsumerRecord) -> Result<(), Failure> {
        if (self.print)(r, &mut self.out)? {
            self.printed += 1;
        }
        Ok(())
    }
}

/// Moves `partitions` to where `start` says.
pub async fn position(
    admin: &Admin,
    consumer: &mut Consumer,
    partitions: &[TopicPartition],
    start: Start,
) -> Result<(), Failure> {
    let topic = partitions
        .first()
        .map(|tp| tp.topic.clone())
        .unwrap_or_default();
    let ids: Vec<i32> = partitions.iter().map(|tp| tp.partition).collect();
    let offset_of = |list: &[kbus::admin::PartitionOffset], p: i32| {
        list.iter().find(|o| o.partition == p).map(|o| o.offset)
    };
    match start {
        Start::Beginning => consumer.seek_to_beginning(partitions)?,
        Start::End => consumer.seek_to_end(partitions)?,
        Start::Stored => unreachable!("refused without a group"),
        Start::Offset(n) => {
            for tp in partitions {
                consumer.seek(tp, n)?;
            }
        }
        Start::BeforeEnd(n) => {
            let low = admin
                .list_offsets(&topic, &ids, OffsetSpec::Earliest)
                .await?;
            let high = admin.list_offsets(&topic, &ids, OffsetSpec::Latest).await?;
            for tp in partitions {
                let (l, h) = (
                    offset_of(&low, tp.partition).unwrap_or(0),
                    offset_of(&high, tp.partition).unwrap_or(0),
                );
                consumer.seek(tp, (h - n).max(l))?;
            }
        }
        Start::Time(ms) => {
            let found = admin
                .list_offsets(&topic, &ids, OffsetSpec::Timestamp(ms))
                .await?;
            let high = admin.list_offsets(&topic, &ids, OffsetSpec::Latest).await?;
            for tp in partitions {
                // No record that late: the end.
                let at = offset_of(&found, tp.partition)
                    .filter(|o| *o >= 0)
                    .or_else(|| offset_of(&high, tp.partition))
                    .unwrap_or(0);
                consumer.seek(tp, at)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_read_as_kcat_spells_them() {
        assert_eq!(Start::parse("beginning").unwrap(), Start::Beginning);
        assert_eq!(Start::parse("end").unwrap(), Start::End);
        assert_eq!(Start::parse("stored").unwrap(), Start::Stored);
        assert_eq!(Start::parse("42").unwrap(), Start::Offset(42));
        assert_eq!(Start::parse("-10").unwrap(), Start::BeforeEnd(10));
        assert_eq!(
            Start::parse("@1700000000000").unwrap(),
            Start::Time(1_700_000_000_000)
        );
        assert!(Start::parse("soon").is_err());
        assert!(Start::parse("@x").is_err());
    }
}
