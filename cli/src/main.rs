//! The `kbus` command-line tool, built only on the `kbus` library's public API: kcat-style
//! commands for topics, producing, consuming and groups. `kbus --help` lists them,
//! `kbus COMMAND --help` explains each.
//!
//! Global options: `-b/--brokers` (env `KBUS_BROKERS`, default `localhost:9092`), `-X key=value`
//! (Java/librdkafka property names: `security.protocol`, `sasl.*`, `ssl.*`, `acks`, ...), `-F FILE`
//! (a properties file), `-v` (the client's tracing on stderr).
//!
//! Errors are one line on stderr and an exit status by kind: 1 other, 2 usage, 3 connection,
//! 4 authentication or TLS, 5 some records failed.

mod args;
mod commands;
mod failure;
mod json;
mod settings;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use args::{Cli, Command};
use failure::Failure;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print and succeed; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    if cli.global.verbose > 0 {
        let level = if cli.global.verbose > 1 {
            tracing_subscriber::filter::LevelFilter::DEBUG
        } else {
            tracing_subscriber::filter::LevelFilter::INFO
        };
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kbus: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kbus: {e}");
            e.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "kbus", &mut std::io::stdout());
        return Ok(());
    }
    let properties = settings::properties(&cli.global)?;
    match cli.command {
        Command::Metadata => commands::metadata::run(properties).await,
        Command::Topics(t) => commands::topics::run(properties, t).await,
        Command::Produce(p) => commands::produce::run(properties, p).await,
        Command::Consume(c) => commands::consume::run(properties, c).await,
        Command::Groups(g) => commands::groups::run(properties, g).await,
        Command::Bus(b) => commands::bus::run(properties, b).await,
        Command::Dlq(d) => commands::dlq::run(properties, d).await,
        Command::Perf(p) => commands::perf::run(properties, p).await,
        Command::Completions { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kbus").chain(line.split_whitespace()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_anywhere_and_commands_read_their_own() {
        let cli =
            parse("-b k:1 consume -t orders -o -5 -e --json -X fetch.max.wait.ms=100").unwrap();
        assert_eq!(cli.global.brokers, "k:1");
        assert_eq!(cli.global.property, ["fetch.max.wait.ms=100"]);
        let Command::Consume(c) = cli.command else {
            panic!("consume")
        };
        assert_eq!(
            (c.topic.as_str(), c.offset.as_deref()),
            ("orders", Some("-5"))
        );
        assert!(c.exit_at_end && c.json);
        assert!(parse("produce").is_err(), "produce needs -t");
        assert!(
            parse("consume -t a -g g -p 1").is_err(),
            "-p and -g exclude each other"
        );
        assert!(parse("produce -t a -k x -K :").is_err());
        assert!(parse("frobnicate").is_err());
    }
}
