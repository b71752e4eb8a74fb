//! The command line: flags, their environment variables and defaults, and
//! the start of the processor (the binary's `main` is this).

use std::time::Duration;

use crate::Probe;
use clap::{CommandFactory, Parser};
use sagastream_runtime::RuntimeArgs;

/// The sagastream runtime canary: counts events per aggregate on runner.events.
#[derive(Parser)]
#[command(name = "sagastream-probe", version)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Emit probe.idle for an aggregate with no input for this long (event time), e.g. 30s.
    #[arg(long, env = "SAGASTREAM_PROBE_IDLE_AFTER", value_parser = sagastream_runtime::config::parse_duration)]
    idle_after: Option<Duration>,
}

/// Parses the command line and runs the processor until SIGTERM.
pub fn main() -> std::process::ExitCode {
    sagastream_runtime::init_logging();
    let cli = Cli::parse();
    sagastream_runtime::main(Probe { idle_after: cli.idle_after }, &cli.runtime)
}

/// The command line's definition, for `--help` and the docs test of the flags table.
pub fn command() -> clap::Command {
    Cli::command()
}
