//! The command line: flags, their environment variables and defaults, and
//! the start of the processor (the binary's `main` is this).

use clap::{CommandFactory, Parser};
use sagastream_runtime::config::parse_time_delta;
use sagastream_runtime::RuntimeArgs;

use crate::{Config, Tracking};

/// The tracking processor: a trip per booking, waypoints, throttled updates, the trip's distance.
#[derive(Parser)]
#[command(name = "sagastream-tracking", version)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// At most one tracking.updated per booking per this long...
    #[arg(long, env = "SAGASTREAM_TRACKING_UPDATE_INTERVAL", default_value = "10s", value_parser = parse_time_delta)]
    update_interval: chrono::TimeDelta,
    /// ...and per this many metres of movement (0: time only).
    #[arg(long, env = "SAGASTREAM_TRACKING_UPDATE_DISTANCE", default_value_t = 50.0)]
    update_distance_m: f64,
    /// A fix implying a faster move from the last one goes to the DLQ.
    #[arg(long, env = "SAGASTREAM_TRACKING_MAX_SPEED_KMH", default_value_t = 250.0)]
    max_speed_kmh: f64,
    /// A finished trip's state is forgotten after this long.
    #[arg(long, env = "SAGASTREAM_TRACKING_PURGE_AFTER", default_value = "1d", value_parser = parse_time_delta)]
    purge_after: chrono::TimeDelta,
}

/// Parses the command line and runs the processor until SIGTERM.
pub fn main() -> std::process::ExitCode {
    sagastream_runtime::init_logging();
    let cli = Cli::parse();
    if !(cli.update_distance_m >= 0.0 && cli.max_speed_kmh > 0.0) {
        eprintln!(
            "error: --update-distance-m {} must be at least 0 and --max-speed-kmh {} above 0\n  hint: e.g. --update-distance-m 50 --max-speed-kmh 250",
            cli.update_distance_m, cli.max_speed_kmh
        );
        return std::process::ExitCode::from(2);
    }
    let config = Config {
        update_interval: cli.update_interval,
        update_distance_m: cli.update_distance_m,
        max_speed_kmh: cli.max_speed_kmh,
        purge_after: cli.purge_after,
    };
    sagastream_runtime::main(Tracking { config }, &cli.runtime)
}

/// The command line's definition, for `--help` and the docs test of the flags table.
pub fn command() -> clap::Command {
    Cli::command()
}
