//! The command line: flags, their environment variables and defaults, and
//! the start of the processor (the binary's `main` is this).

use crate::{Config, OrderSaga};
use chrono::TimeDelta;
use clap::{CommandFactory, Parser};
use sagastream_runtime::config::parse_time_delta;
use sagastream_runtime::RuntimeArgs;

/// The order saga: reserves stock, captures, compensates and refunds an order under exactly-once.
#[derive(Parser)]
#[command(name = "sagastream-order-saga", version)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Where reservations are made.
    #[arg(long, env = "SAGASTREAM_ORDER_LOCATION_ID", default_value = "warehouse_main")]
    location_id: String,
    /// A reservation's life: an order not captured by then is cancelled.
    #[arg(long, env = "SAGASTREAM_ORDER_RESERVATION_TTL", default_value = "15m", value_parser = parse_time_delta)]
    reservation_ttl: TimeDelta,
    /// Forget a closed order after this long (bounded state).
    #[arg(long, env = "SAGASTREAM_ORDER_PURGE_AFTER", default_value = "7d", value_parser = parse_time_delta)]
    purge_after: TimeDelta,
}

/// Parses the command line and runs the processor until SIGTERM.
pub fn main() -> std::process::ExitCode {
    sagastream_runtime::init_logging();
    let cli = Cli::parse();
    let config =
        Config { location_id: cli.location_id, reservation_ttl: cli.reservation_ttl, purge_after: cli.purge_after };
    sagastream_runtime::main(OrderSaga { config }, &cli.runtime)
}

/// The command line's definition, for `--help` and the docs test of the flags table.
pub fn command() -> clap::Command {
    Cli::command()
}
