//! The command line: flags, their environment variables and defaults, and
//! the start of the processor (the binary's `main` is this).

use clap::{CommandFactory, Parser};
use sagastream_runtime::config::parse_time_delta;
use sagastream_runtime::RuntimeArgs;

use crate::{Config, RunnerPresence};

/// The runner presence processor: online, last seen, position and booking per runner.
#[derive(Parser)]
#[command(name = "sagastream-runner", version)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// A runner not heard of for this long is marked offline.
    #[arg(long, env = "SAGASTREAM_RUNNER_OFFLINE_AFTER", default_value = "5m", value_parser = parse_time_delta)]
    offline_after: chrono::TimeDelta,
}

/// Parses the command line and runs the processor until SIGTERM.
pub fn main() -> std::process::ExitCode {
    sagastream_runtime::init_logging();
    let cli = Cli::parse();
    sagastream_runtime::main(RunnerPresence { config: Config { offline_after: cli.offline_after } }, &cli.runtime)
}

/// The command line's definition, for `--help` and the docs test of the flags table.
pub fn command() -> clap::Command {
    Cli::command()
}
