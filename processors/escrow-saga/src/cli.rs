//! The command line: flags, their environment variables and defaults, and
//! the start of the processor (the binary's `main` is this).

use crate::money::Bps;
use crate::{Config, EscrowSaga};
use chrono::TimeDelta;
use clap::{CommandFactory, Parser};
use sagastream_runtime::config::parse_time_delta;
use sagastream_runtime::RuntimeArgs;

/// The escrow saga: holds, releases and refunds a booking's escrow under exactly-once.
#[derive(Parser)]
#[command(name = "sagastream-escrow-saga", version)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Platform fee on a release, in basis points (1500 = 15 %), rounded down.
    #[arg(long, env = "SAGASTREAM_ESCROW_FEE_BPS", default_value_t = 1500, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    fee_bps: u32,
    /// Cancel the booking when the escrow is not held this long after acceptance.
    #[arg(long, env = "SAGASTREAM_ESCROW_HOLD_TIMEOUT", default_value = "15m", value_parser = parse_time_delta)]
    hold_timeout: TimeDelta,
    /// Confirm the delivery as `system` (and release) after this long in delivery.
    #[arg(long, env = "SAGASTREAM_ESCROW_AUTO_CONFIRM_AFTER", default_value = "24h", value_parser = parse_time_delta)]
    auto_confirm_after: TimeDelta,
    /// First escrow.saga.stuck alarm when a release or refund is unconfirmed this long; then doubling.
    #[arg(long, env = "SAGASTREAM_ESCROW_STUCK_AFTER", default_value = "10m", value_parser = parse_time_delta)]
    stuck_after: TimeDelta,
    /// Forget a finished saga after this long (bounded state).
    #[arg(long, env = "SAGASTREAM_ESCROW_PURGE_AFTER", default_value = "7d", value_parser = parse_time_delta)]
    purge_after: TimeDelta,
    /// Ask again this often for a release or refund the payment service failed, then call an operator.
    #[arg(long, env = "SAGASTREAM_ESCROW_SETTLE_RETRIES", default_value_t = 3)]
    settle_retries: u32,
    /// Delay before the first such retry; later ones double.
    #[arg(long, env = "SAGASTREAM_ESCROW_SETTLE_RETRY_AFTER", default_value = "1m", value_parser = parse_time_delta)]
    settle_retry_after: TimeDelta,
}

/// Parses the command line and runs the processor until SIGTERM.
pub fn main() -> std::process::ExitCode {
    sagastream_runtime::init_logging();
    let cli = Cli::parse();
    let config = Config {
        fee: Bps::new(cli.fee_bps).expect("range-checked by clap"),
        hold_timeout: cli.hold_timeout,
        auto_confirm_after: cli.auto_confirm_after,
        stuck_after: cli.stuck_after,
        purge_after: cli.purge_after,
        settle_retries: cli.settle_retries,
        settle_retry_after: cli.settle_retry_after,
    };
    sagastream_runtime::main(EscrowSaga { config }, &cli.runtime)
}

/// The command line's definition, for `--help` and the docs test of the flags table.
pub fn command() -> clap::Command {
    Cli::command()
}
