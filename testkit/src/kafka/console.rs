//! Kafka's console producer and consumer as peers that write and read records as text: keys,
//! values and headers (empty and null ones included), with the partition, offset and timestamp
//! each record got, in a form tests compare with what kbus wrote or read.
//!
//! The text forms: the producer reads `h1:v1,h2:v2<TAB>key<TAB>value` lines (`NULL` stands for a
//! null key, value or header value); the consumer prints
//! `CreateTime:TS|Partition:P|Offset:O|h1:v1,h2:v2|key|value` (`NO_HEADERS` when there are none).
//! Texts must not contain tabs, `|`, `,`, `:` or line breaks.

use std::time::Duration;

use super::{JavaOutput, JavaTool, KafkaVersion};

/// What stands for null in both directions.
pub const NULL: &str = "NULL";

/// One record as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TextRecord {
    /// Partition (what the consumer saw; ignored when producing).
    pub partition: i32,
    /// Offset (what the consumer saw; ignored when producing).
    pub offset: i64,
    /// Timestamp in ms and whether the broker set it (`LogAppendTime`) or the producer did.
    pub timestamp: Option<(TimestampKind, i64)>,
    /// Headers in order; a `None` value is a null header value.
    pub headers: Vec<(String, Option<String>)>,
    /// Key; `None` is a null key.
    pub key: Option<String>,
    /// Value; `None` is a null value (a tombstone).
    pub value: Option<String>,
}

/// Who set a record's timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimestampKind {
    /// The producer (`CreateTime`).
    Create,
    /// The broker (`LogAppendTime`).
    LogAppend,
}

impl TextRecord {
    /// A record to produce.
    pub fn new(
        headers: &[(&str, Option<&str>)],
        key: Option<&str>,
        value: Option<&str>,
    ) -> TextRecord {
        TextRecord {
            partition: -1,
            offset: -1,
            timestamp: None,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
                .collect(),
            key: key.map(str::to_owned),
            value: value.map(str::to_owned),
        }
    }

    /// The console producer's input line for this record.
    fn producer_line(&self) -> String {
        assert!(
            !self.headers.is_empty(),
            "the console producer's line format cannot express a record without headers"
        );
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| format!("{k}:{}", v.as_deref().unwrap_or(NULL)))
            .collect();
        format!(
            "{}\t{}\t{}\n",
            headers.join(","),
            self.key.as_deref().unwrap_or(NULL),
            self.value.as_deref().unwrap_or(NULL)
        )
    }

    /// Parses a console consumer line; `None` for anything else.
    fn parse(line: &str) -> Option<TextRecord> {
        let fields: Vec<&str> = line.split('|').collect();
        let [ts, partition, offset, headers, key, value] = fields.as_slice() else {
            return None;
        };
        let (kind, ts) = ts.split_once(':')?;
        let kind = match kind {
            "CreateTime" => TimestampKind::Create,
            "LogAppendTime" => TimestampKind::LogAppend,
            _ => return None,
        };
        let nullable = |s: &str| (s != NULL).then(|| s.to_owned());
        let headers = if *headers == "NO_HEADERS" {
            Vec::new()
        } else {
            headers
                .split(',')
                .map(|h| {
                    let (k, v) = h.split_once(':').unwrap_or((h, ""));
                    (k.to_owned(), nullable(v))
                })
                .collect()
        };
        Some(TextRecord {
            partition: partition.strip_prefix("Partition:")?.parse().ok()?,
            offset: offset.strip_prefix("Offset:")?.parse().ok()?,
            timestamp: Some((kind, ts.parse().ok()?)),
            headers,
            key: nullable(key),
            value: nullable(value),
        })
    }
}

/// Writes `records` to `topic` with the console producer (the Java producer with default
/// settings, plus `properties` such as `compression.type`); panics if it fails.
pub fn console_produce(
    version: KafkaVersion,
    bootstrap: &str,
    topic: &str,
    records: &[TextRecord],
    properties: &[(&str, &str)],
) -> JavaOutput {
    let input: String = records.iter().map(TextRecord::producer_line).collect();
    let mut tool = JavaTool::new(version, "org.apache.kafka.tools.ConsoleProducer")
        .args(["--bootstrap-server", bootstrap, "--topic", topic])
        .args(["--reader-property", "parse.key=true"])
        .args(["--reader-property", "parse.headers=true"])
        .args(["--reader-property", &format!("null.marker={NULL}")])
        .args(["--reader-property", "ignore.error=false"]);
    for (k, v) in properties {
        tool = match *k {
            // The tool sets compression.type from this option (default none) over the properties.
            "compression.type" => tool.args(["--compression-codec", v]),
            _ => tool.args(["--command-property", &format!("{k}={v}")]),
        };
    }
    let out = tool.stdin(input).run(Duration::from_secs(120));
    assert!(out.success, "the console producer failed:\n{}", out.stderr);
    out
}

/// Reads `count` records of `topic` (every partition, from the beginning) with the console
/// consumer at `isolation` (`read_committed` / `read_uncommitted`), sorted by partition and
/// offset. It gives up after 15 s without a new record, so a short result means records are
/// missing.
pub fn console_consume(
    version: KafkaVersion,
    bootstrap: &str,
    topic: &str,
    count: usize,
    isolation: &str,
) -> Vec<TextRecord> {
    let count = count.to_string();
    let out = JavaTool::new(version, "org.apache.kafka.tools.consumer.ConsoleConsumer")
        .args(["--bootstrap-server", bootstrap, "--topic", topic])
        .args(["--from-beginning", "--max-messages", &count])
        .args(["--timeout-ms", "15000", "--isolation-level", isolation])
        .args([
            "--formatter-property",
            "print.timestamp=true",
            "--formatter-property",
            "print.partition=true",
            "--formatter-property",
            "print.offset=true",
            "--formatter-property",
            "print.headers=true",
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            "key.separator=|",
            "--formatter-property",
            &format!("null.literal={NULL}"),
        ])
        .run(Duration::from_secs(180));
    assert!(
        out.success,
        "the console consumer failed; it logged:\n{}",
        out.stderr
    );
    let mut records: Vec<TextRecord> = out
        .lines()
        .into_iter()
        .filter_map(TextRecord::parse)
        .collect();
    records.sort_by_key(|r| (r.partition, r.offset));
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_parse_with_empty_and_null_parts() {
        let r =
            TextRecord::parse("CreateTime:17|Partition:2|Offset:5|h1:a,h2:,h3:NULL|k1|").unwrap();
        assert_eq!(r.partition, 2);
        assert_eq!(r.offset, 5);
        assert_eq!(r.timestamp, Some((TimestampKind::Create, 17)));
        assert_eq!(
            r.headers,
            vec![
                ("h1".into(), Some("a".into())),
                ("h2".into(), Some(String::new())),
                ("h3".into(), None)
            ]
        );
        assert_eq!(r.key.as_deref(), Some("k1"));
        assert_eq!(r.value.as_deref(), Some(""));
        let r =
            TextRecord::parse("LogAppendTime:1|Partition:0|Offset:0|NO_HEADERS|NULL|NULL").unwrap();
        assert!(r.headers.is_empty());
        assert_eq!((r.key, r.value), (None, None));
        assert_eq!(TextRecord::parse("Processed a total of 3 messages"), None);
    }

    #[test]
    fn producer_lines_mark_nulls() {
        let r = TextRecord::new(&[("a", None), ("b", Some(""))], None, Some("v"));
        assert_eq!(r.producer_line(), "a:NULL,b:\tNULL\tv\n");
    }
}
