//! The `kbus` command-line tool, built only on the `kbus` library's public API. Its kcat-style
//! commands (produce, consume, topics, groups) and the bus tools come with the CLI issue; for now
//! it answers `--version` and lists a cluster's metadata:
//!
//! ```text
//! kbus metadata -b HOST:PORT[,HOST:PORT...] [-X key=value]...
//! ```
//!
//! `-X` takes Java/librdkafka-style client properties (`security.protocol`, `sasl.*`, `ssl.*`, ...).

use std::process::ExitCode;

use kbus::admin::Admin;

const USAGE: &str =
    "usage: kbus --version\n       kbus metadata -b HOST:PORT[,...] [-X key=value]...";

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Version,
    Metadata { properties: Vec<(String, String)> },
}

fn parse(args: &[String]) -> Result<Command, String> {
    let (first, rest) = args.split_first().ok_or("no command")?;
    match first.as_str() {
        "--version" | "-V" => Ok(Command::Version),
        "metadata" => {
            let mut properties = Vec::new();
            let mut it = rest.iter();
            while let Some(flag) = it.next() {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                match flag.as_str() {
                    "-b" | "--bootstrap-server" => {
                        properties.push(("bootstrap.servers".to_owned(), value.clone()))
                    }
                    "-X" => {
                        let (k, v) = value
                            .split_once('=')
                            .ok_or_else(|| format!("-X {value}: expected key=value"))?;
                        properties.push((k.to_owned(), v.to_owned()));
                    }
                    other => return Err(format!("unknown option {other}")),
                }
            }
            if !properties.iter().any(|(k, _)| k == "bootstrap.servers") {
                return Err("metadata needs -b HOST:PORT".into());
            }
            Ok(Command::Metadata { properties })
        }
        other => Err(format!("unknown command {other}")),
    }
}

async fn metadata(properties: Vec<(String, String)>) -> kbus::Result<()> {
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kbus: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Version => {
            println!("kbus {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Metadata { properties } => {
            let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
            match runtime.block_on(metadata(properties)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("kbus: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_metadata_with_properties() {
        assert_eq!(
            parse(&args("metadata -b 127.0.0.1:9092 -X security.protocol=SSL")),
            Ok(Command::Metadata {
                properties: vec![
                    ("bootstrap.servers".into(), "127.0.0.1:9092".into()),
                    ("security.protocol".into(), "SSL".into()),
                ]
            })
        );
        assert_eq!(parse(&args("--version")), Ok(Command::Version));
    }

    #[test]
    fn bad_command_lines_are_errors() {
        assert!(parse(&args("metadata")).is_err());
        assert!(parse(&args("metadata -b")).is_err());
        assert!(parse(&args("metadata -b x:1 -X nonsense")).is_err());
        assert!(parse(&args("produce")).is_err());
        assert!(parse(&[]).is_err());
    }
}
