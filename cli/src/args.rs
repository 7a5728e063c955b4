//! The command line: global options and every command, as clap reads them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// kbus: Kafka from the shell — topics, produce, consume, groups, and the event bus's tools.
#[derive(Debug, Parser)]
#[command(
    name = "kbus",
    version,
    propagate_version = true,
    after_help = "Exit status: 0 success, 1 error, 2 usage, 3 no broker reachable (or it timed out), \
                  4 authentication or TLS refused, 5 some records failed (the others went through)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Bootstrap brokers, comma-separated host:port.
    #[arg(
        short = 'b',
        long = "brokers",
        env = "KBUS_BROKERS",
        default_value = "localhost:9092",
        global = true
    )]
    pub brokers: String,
    /// A client property, Java/librdkafka name (security.protocol, sasl.mechanism,
    /// sasl.username, ssl.ca.location, acks, linger.ms, compression.type, client.id, ...).
    /// Repeatable; wins over -F.
    #[arg(short = 'X', value_name = "KEY=VALUE", global = true)]
    pub property: Vec<String>,
    /// A properties file: one key=value per line, # comments.
    #[arg(short = 'F', value_name = "FILE", global = true)]
    pub properties_file: Option<PathBuf>,
    /// Log what the client does on stderr (-v info, -vv debug).
    #[arg(short = 'v', action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Brokers, topics and partitions of the cluster.
    Metadata,
    /// List, create, delete and describe topics.
    #[command(subcommand)]
    Topics(Topics),
    /// Produce one record per input line.
    Produce(Produce),
    /// Print records of a topic.
    Consume(Consume),
    /// List and describe consumer groups; reset their offsets.
    #[command(subcommand)]
    Groups(Groups),
    /// The event bus: publish events, tail them, handle them with any program.
    #[command(subcommand)]
    Bus(Bus),
    /// The bus's dead-letter topic: list, count, replay.
    #[command(subcommand)]
    Dlq(Dlq),
    /// Measure produce or consume throughput (and produce latency): a live line on stderr, one
    /// JSON summary line on stdout.
    #[command(subcommand)]
    Perf(Perf),
    /// Shell completions for bash, zsh, fish, elvish or powershell, on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum Topics {
    /// Topic names, one per line.
    List {
        /// Internal topics too (__consumer_offsets, ...).
        #[arg(long)]
        all: bool,
    },
    /// Create a topic.
    Create {
        name: String,
        /// Partitions (the broker's default when left out).
        #[arg(short = 'p', long, default_value_t = -1, allow_negative_numbers = true)]
        partitions: i32,
        /// Replication factor (the broker's default when left out).
        #[arg(short = 'r', long, default_value_t = -1, allow_negative_numbers = true)]
        replication_factor: i16,
        /// A topic config (retention.ms=..., cleanup.policy=compact, ...). Repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// Delete a topic.
    Delete { name: String },
    /// Partitions (leader, replicas, in-sync replicas, offsets) and configs of a topic.
    Describe { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub fn property(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

#[derive(Debug, Args)]
pub struct Produce {
    /// The topic.
    #[arg(short = 't', long)]
    pub topic: String,
    /// Every record to this partition (else the key decides, as the Java client does).
    #[arg(short = 'p', long)]
    pub partition: Option<i32>,
    /// Every record with this key.
    #[arg(short = 'k', long, conflicts_with = "key_delimiter")]
    pub key: Option<String>,
    /// Each line is KEY<DELIM>VALUE.
    #[arg(short = 'K', long = "key-delimiter", value_name = "DELIM")]
    pub key_delimiter: Option<String>,
    /// A header on every record. Repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// Compression.
    #[arg(short = 'z', long, value_enum)]
    pub compression: Option<Codec>,
    /// Read lines from this file instead of stdin.
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Consume {
    /// The topic.
    #[arg(short = 't', long)]
    pub topic: String,
    /// Consume as a member of this group (committing what was printed); else the partitions are
    /// read directly.
    #[arg(short = 'g', long)]
    pub group: Option<String>,
    /// Only this partition (not with -g). Repeatable.
    #[arg(short = 'p', long, conflicts_with = "group")]
    pub partition: Vec<i32>,
    /// Where to start: beginning, end, stored (the group's committed offsets, with -g), an
    /// offset N, -N (N before the end), or @TIMESTAMP (milliseconds).
    #[arg(short = 'o', long, allow_hyphen_values = true)]
    pub offset: Option<String>,
    /// Stop after this many records.
    #[arg(short = 'c', long)]
    pub count: Option<u64>,
    /// Stop at the end of the partitions (what was there when each was reached).
    #[arg(short = 'e', long)]
    pub exit_at_end: bool,
    /// One JSON object per record (topic, partition, offset, timestamp, key, value, headers);
    /// bytes that are not UTF-8 in base64, said so by a *_encoding field.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Groups {
    /// Consumer groups, one per line: id, state, protocol type.
    List,
    /// State, protocol, members, committed offsets and lag of a group.
    Describe { group: String },
    /// Set a group's committed offsets of a topic (the group must have no active members).
    ResetOffsets {
        group: String,
        /// The topic.
        #[arg(short = 't', long)]
        topic: String,
        /// earliest, latest, an offset, or @TIMESTAMP (milliseconds).
        #[arg(long = "to")]
        to: String,
    },
}

/// Which bus: its topics are PREFIX.stream and PREFIX.stream.dlq.
#[derive(Debug, Args)]
pub struct BusName {
    /// The bus's topic prefix.
    #[arg(long, default_value = "events")]
    pub prefix: String,
}

#[derive(Debug, Subcommand)]
pub enum Bus {
    /// Publish events: NDJSON on stdin in the eventsource JSON format, or one event from flags.
    /// Returns once every event is acknowledged.
    Publish {
        #[command(flatten)]
        bus: BusName,
        /// One event of this type (with --aggregate-type, --aggregate-id and --data).
        #[arg(long = "type", requires_all = ["aggregate_type", "aggregate_id"])]
        event_type: Option<String>,
        /// The aggregate's type.
        #[arg(long)]
        aggregate_type: Option<String>,
        /// The aggregate's id (a UUID).
        #[arg(long)]
        aggregate_id: Option<String>,
        /// The aggregate's version after this event.
        #[arg(long, default_value_t = 1)]
        aggregate_version: u64,
        /// The event's own fields, a JSON object.
        #[arg(long, default_value = "{}")]
        data: String,
        /// Read the NDJSON from this file instead of stdin.
        #[arg(short = 'f', long, conflicts_with = "event_type")]
        file: Option<PathBuf>,
    },
    /// Print every event as one JSON line: its fields plus partition, offset and headers.
    Tail {
        #[command(flatten)]
        bus: BusName,
        /// Read as a member of this group (committing); else every partition is read directly.
        #[arg(short = 'g', long)]
        group: Option<String>,
        /// Stop after this many events.
        #[arg(short = 'c', long)]
        count: Option<u64>,
        /// Only events of this type.
        #[arg(long = "type")]
        event_type: Option<String>,
        /// Where to start without a group: beginning, end, an offset, -N or @TIMESTAMP.
        #[arg(short = 'o', long, allow_hyphen_values = true, default_value = "end")]
        offset: String,
        /// Stop at the end of the partitions.
        #[arg(short = 'e', long)]
        exit_at_end: bool,
    },
    /// Handle events with a program: CMD runs once per event (through sh -c), the event's JSON on
    /// its stdin and its fields in KBUS_* environment variables. Exit status 0 is success;
    /// anything else is a failure that goes through the bus's retries and dead-letter topic.
    /// Runs until interrupted, then shuts down gracefully.
    Consume {
        #[command(flatten)]
        bus: BusName,
        /// The consumer group.
        #[arg(short = 'g', long)]
        group: String,
        /// The program, run with sh -c.
        #[arg(long)]
        exec: String,
        /// Events handled at once per partition (of different aggregates; one aggregate's events
        /// always one after the other).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Attempts after the first before an event goes to the dead-letter topic.
        #[arg(long, default_value_t = 3)]
        max_retries: u32,
        /// Only these event types (repeatable); others are skipped. All types when left out.
        #[arg(long = "type")]
        event_types: Vec<String>,
        /// Stop after this many events were handled or dead-lettered.
        #[arg(short = 'c', long)]
        count: Option<u64>,
    },
}

/// Which dead letters.
#[derive(Debug, Args)]
pub struct DlqSelect {
    /// Only events of this type.
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// Only failures of this error type.
    #[arg(long)]
    pub error_type: Option<String>,
    /// Only dead letters written at or after this time (ISO 8601, or Unix seconds).
    #[arg(long)]
    pub since: Option<String>,
    /// Only dead letters written before this time.
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many.
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum Dlq {
    /// Dead letters as NDJSON: where each is, why it failed, and the event.
    List {
        #[command(flatten)]
        bus: BusName,
        #[command(flatten)]
        select: DlqSelect,
    },
    /// How many dead letters the topic keeps.
    Count {
        #[command(flatten)]
        bus: BusName,
    },
    /// Publish dead letters to the main topic again: one (--partition and --offset), or those a
    /// filter picks (--all for every one). Refused past the replay limit unless --force.
    Replay {
        #[command(flatten)]
        bus: BusName,
        /// The dead letter's partition.
        #[arg(long, requires = "offset")]
        partition: Option<i32>,
        /// The dead letter's offset.
        #[arg(long, requires = "partition")]
        offset: Option<i64>,
        #[command(flatten)]
        select: DlqSelect,
        /// Every dead letter (when no filter is given).
        #[arg(long, conflicts_with = "partition")]
        all: bool,
        /// Replay even past the replay limit.
        #[arg(long)]
        force: bool,
        /// Say what would be replayed; publish nothing.
        #[arg(long, conflicts_with = "partition")]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum Perf {
    /// Produce COUNT records of SIZE bytes as fast as the producer goes (or at --rate).
    Produce {
        /// The topic.
        #[arg(short = 't', long)]
        topic: String,
        /// Records to produce.
        #[arg(short = 'n', long)]
        count: u64,
        /// Value size in bytes.
        #[arg(short = 's', long, default_value_t = 100)]
        size: usize,
        /// Keys cycle through this many distinct values (no keys when left out).
        #[arg(long)]
        keys: Option<u64>,
        /// Compression.
        #[arg(short = 'z', long, value_enum)]
        compression: Option<Codec>,
        /// Records per second at most.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Consume COUNT records from the beginning of a topic (or as a group member).
    Consume {
        /// The topic.
        #[arg(short = 't', long)]
        topic: String,
        /// Records to read.
        #[arg(short = 'n', long)]
        count: u64,
        /// Read as a member of this group (from its committed offsets, else the beginning).
        #[arg(short = 'g', long)]
        group: Option<String>,
    },
}
