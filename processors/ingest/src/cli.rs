//! The command line: the runtime's flags (ingest has none of its own) and
//! the start of the processor.

use clap::{CommandFactory, Parser};
use sagastream_runtime::RuntimeArgs;

use crate::Ingest;

/// The ingest processor: other teams' envelopes translated into catalog CloudEvents.
#[derive(Parser)]
#[command(name = "sagastream-ingest", version)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// Parses the command line and runs the processor until SIGTERM.
pub fn main() -> std::process::ExitCode {
    sagastream_runtime::init_logging();
    let cli = Cli::parse();
    sagastream_runtime::main(Ingest, &cli.runtime)
}

/// The command line's definition, for `--help` and the docs test of the flags table.
pub fn command() -> clap::Command {
    Cli::command()
}
