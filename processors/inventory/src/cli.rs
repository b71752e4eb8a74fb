//! The command line: flags, their environment variables and defaults, and
//! the start of the processor (the binary's `main` is this).

use crate::{Inventory, Thresholds};
use clap::{CommandFactory, Parser};
use sagastream_runtime::RuntimeArgs;

/// The inventory projector: stock per product and location, low-stock and out-of-stock alerts.
#[derive(Parser)]
#[command(name = "sagastream-inventory", version)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// `warning` low-stock alert when availability falls below this.
    #[arg(long, env = "SAGASTREAM_INVENTORY_WARNING_BELOW", default_value_t = 10)]
    warning_below: u32,
    /// `critical` low-stock alert when availability falls below this.
    #[arg(long, env = "SAGASTREAM_INVENTORY_CRITICAL_BELOW", default_value_t = 3)]
    critical_below: u32,
}

/// Parses the command line and runs the processor until SIGTERM.
pub fn main() -> std::process::ExitCode {
    sagastream_runtime::init_logging();
    let cli = Cli::parse();
    if cli.critical_below > cli.warning_below {
        eprintln!(
            "error: --critical-below {} is above --warning-below {}\n  hint: critical is the lower threshold, e.g. --warning-below 10 --critical-below 3",
            cli.critical_below, cli.warning_below
        );
        return std::process::ExitCode::from(2);
    }
    let thresholds = Thresholds { warning: cli.warning_below, critical: cli.critical_below };
    sagastream_runtime::main(Inventory { thresholds }, &cli.runtime)
}

/// The command line's definition, for `--help` and the docs test of the flags table.
pub fn command() -> clap::Command {
    Cli::command()
}
