//! `kbus bus publish | tail | consume`: the event bus from a shell, in eventsource-py's JSON.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use kbus::bus::kafka::{KafkaEventBus, KafkaEventBusConfig};
use kbus::bus::trace::TraceContext;
use kbus::bus::{wire, Envelope, EventBus, EventMeta, HandlerError, RawEnvelope, Uuid};
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::consume::{self, Source, Start};
use crate::args::Bus;
use crate::failure::{Failure, Kind};

/// The bus settings a command line stands for: its brokers and prefix, every other property
/// through the bus's escape hatch.
pub fn config(properties: &[(String, String)], prefix: &str) -> KafkaEventBusConfig {
    let mut config = KafkaEventBusConfig {
        topic_prefix: prefix.into(),
        ..Default::default()
    };
    for (k, v) in properties {
        if k == "bootstrap.servers" {
            config.bootstrap_servers = v.clone();
        } else {
            config.properties.insert(k.clone(), v.clone());
        }
    }
    config
}

pub async fn run(properties: Vec<(String, String)>, command: Bus) -> Result<(), Failure> {
    match command {
        Bus::Publish {
            bus,
            event_type,
            aggregate_type,
            aggregate_id,
            aggregate_version,
            data,
            file,
        } => {
            let events = match event_type {
                Some(event_type) => vec![one_event(
                    event_type,
                    aggregate_type.unwrap_or_default(),
                    aggregate_id.unwrap_or_default(),
                    aggregate_version,
                    &data,
                )?],
                None => read_events(file.as_deref()).await?,
            };
            publish(config(&properties, &bus.prefix), events).await
        }
        Bus::Tail {
            bus,
            group,
            count,
            event_type,
            offset,
            exit_at_end,
        } => {
            let source = Source {
                topic: format!("{}.stream", bus.prefix),
                start: Some(if group.is_some() && offset == "end" {
                    Start::Stored
                } else {
                    Start::parse(&offset)?
                }),
                group,
                partitions: Vec::new(),
                count,
                exit_at_end,
            };
            consume::read(properties, source, &mut |r, out| {
                let Some(line) = tail_line(r, event_type.as_deref()) else {
                    return Ok(false);
                };
                serde_json::to_writer(&mut *out, &line)?;
                out.write_all(b"\n")?;
                Ok(true)
            })
            .await
        }
        Bus::Consume {
            bus,
            group,
            exec,
            concurrency,
            max_retries,
            event_types,
            count,
        } => {
            let mut config = config(&properties, &bus.prefix);
            config.consumer_group = group;
            config.max_concurrency = concurrency;
            config.max_retries = max_retries;
            consume_exec(config, exec, event_types, count).await
        }
    }
}

/// One event from flags.
fn one_event(
    event_type: String,
    aggregate_type: String,
    aggregate_id: String,
    aggregate_version: u64,
    data: &str,
) -> Result<RawEnvelope, Failure> {
    let aggregate_id = Uuid::parse_str(&aggregate_id)
        .map_err(|_| Failure::usage(format!("--aggregate-id {aggregate_id}: not a UUID")))?;
    let payload: Map<String, Value> = serde_json::from_str(data)
        .map_err(|e| Failure::usage(format!("--data: not a JSON object: {e}")))?;
    Ok(Envelope {
        meta: EventMeta::new(event_type, aggregate_type, aggregate_id, aggregate_version),
        event: payload,
    })
}

/// Events as NDJSON (blank lines skipped); a line that is not an event is an error naming it, and
/// nothing is published.
async fn read_events(file: Option<&std::path::Path>) -> Result<Vec<RawEnvelope>, Failure> {
    let mut text = String::new();
    match file {
        Some(path) => {
            text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| Failure::usage(format!("-f {}: {e}", path.display())))?
        }
        None => {
            tokio::io::stdin().read_to_string(&mut text).await?;
        }
    }
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event = wire::decode(line.as_bytes(), None).map_err(|e| {
            Failure::new(
                Kind::Other,
                format!("line {}: not an event ({e}); nothing was published", i + 1),
            )
        })?;
        events.push(event);
    }
    Ok(events)
}

async fn publish(config: KafkaEventBusConfig, events: Vec<RawEnvelope>) -> Result<(), Failure> {
    let topic = config.topic();
    let bus = KafkaEventBus::connect(config).await?;
    let n = events.len();
    let published = bus.publish(events).await;
    bus.shutdown(Duration::from_secs(30)).await?;
    published?;
    eprintln!("kbus: {n} events published to {topic}");
    Ok(())
}

/// A record of the bus as a tail line: the event's own JSON object plus partition, offset and
/// headers; `None` for events of other types. A record that is not an event is shown with the
/// reason instead of its fields.
fn tail_line(r: &kbus::consumer::ConsumerRecord, only: Option<&str>) -> Option<Value> {
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|h| h.key.as_ref() == name.as_bytes())
            .and_then(|h| h.value_str())
    };
    let value = r.value.clone().unwrap_or_default();
    let mut line = match wire::ReadEvent::read(value.clone(), header("event_type")) {
        Ok(event) => {
            if only.is_some_and(|t| t != event.meta.event_type) {
                return None;
            }
            serde_json::from_slice::<Map<String, Value>>(&value).unwrap_or_default()
        }
        Err(e) => {
            if only.is_some() {
                return None;
            }
            let mut m = Map::new();
            m.insert("error".into(), format!("not an event: {e}").into());
            m.insert(
                "value".into(),
                String::from_utf8_lossy(&value).into_owned().into(),
            );
            m
        }
    };
    line.insert("partition".into(), r.partition.into());
    line.insert("offset".into(), r.offset.into());
    let headers: Map<String, Value> = r
        .headers
        .iter()
        .map(|h| {
            (
                String::from_utf8_lossy(&h.key).into_owned(),
                h.value_str().map_or(Value::Null, Value::from),
            )
        })
        .collect();
    line.insert("headers".into(), Value::Object(headers));
    Some(Value::Object(line))
}

/// `bus consume --exec`: a started bus whose one handler runs the program.
async fn consume_exec(
    config: KafkaEventBusConfig,
    exec: String,
    event_types: Vec<String>,
    count: Option<u64>,
) -> Result<(), Failure> {
    let bus = KafkaEventBus::connect(config).await?;
    let exec = Arc::new(exec);
    let only = Arc::new(event_types);
    bus.subscribe_all(move |event: Arc<RawEnvelope>| {
        let (exec, only) = (exec.clone(), only.clone());
        async move {
            if !only.is_empty() && !only.contains(&event.meta.event_type) {
                return Ok(());
            }
            run_program(&exec, &event).await
        }
    });
    bus.start().await?;
    let finished = |s: kbus::bus::BusStats| {
        count.is_some_and(|c| s.events_processed_success + s.messages_sent_to_dlq >= c)
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut progress = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = progress.tick() => {
                if finished(bus.stats()) {
                    break;
                }
            }
        }
    }
    let shutdown = bus.shutdown(Duration::from_secs(30)).await;
    let s = bus.stats();
    eprintln!(
        "kbus: {} events handled, {} failed attempts, {} dead-lettered, {} skipped",
        s.events_processed_success, s.handler_errors, s.messages_sent_to_dlq, s.events_skipped
    );
    shutdown.map_err(Failure::from)
}

/// Runs `exec` with `sh -c` for `event`: the event's JSON on stdin, its fields in `KBUS_*`
/// variables (and `TRACEPARENT`). A non-zero exit is the handler's failure, with the last line
/// the program wrote on stderr.
async fn run_program(exec: &str, event: &RawEnvelope) -> Result<(), HandlerError> {
    let m = &event.meta;
    let json = wire::encode(m, &event.event)
        .map_err(|e| HandlerError::new("EncodeError", e.to_string()))?
        .value;
    let mut env: BTreeMap<&str, String> = BTreeMap::from([
        ("KBUS_EVENT_ID", m.event_id.to_string()),
        ("KBUS_EVENT_TYPE", m.event_type.clone()),
        ("KBUS_EVENT_VERSION", m.event_version.to_string()),
        ("KBUS_AGGREGATE_ID", m.aggregate_id.to_string()),
        ("KBUS_AGGREGATE_TYPE", m.aggregate_type.clone()),
        ("KBUS_AGGREGATE_VERSION", m.aggregate_version.to_string()),
        ("KBUS_OCCURRED_AT", m.occurred_at.to_header_string()),
        ("KBUS_CORRELATION_ID", m.correlation_id.to_string()),
    ]);
    if let Some(c) = m.causation_id {
        env.insert("KBUS_CAUSATION_ID", c.to_string());
    }
    if let Some(t) = m.tenant_id {
        env.insert("KBUS_TENANT_ID", t.to_string());
    }
    if let Some(a) = &m.actor_id {
        env.insert("KBUS_ACTOR_ID", a.clone());
    }
    if let Some(trace) = TraceContext::current() {
        env.insert("TRACEPARENT", trace.traceparent());
    }
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(exec)
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| HandlerError::new("SpawnError", format!("cannot run sh -c {exec:?}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A program that does not read its input is fine.
        let _ = stdin.write_all(&json).await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| HandlerError::new("SpawnError", e.to_string()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.is_empty() {
        eprint!("{stderr}");
    }
    if out.status.success() {
        return Ok(());
    }
    let last = stderr.lines().last().unwrap_or("").trim();
    let status = out.status.code().map_or_else(
        || "was killed by a signal".to_owned(),
        |c| format!("exited with {c}"),
    );
    Err(HandlerError::new(
        "CommandFailed",
        if last.is_empty() {
            format!("{exec} {status}")
        } else {
            format!("{exec} {status}: {last}")
        },
    ))
}
