use std::time::Duration;

use clap::Parser;
use sagastream_probe::Probe;
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

/// As every processor: not glibc's malloc (see sagastream-escrow-saga's main).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sagastream_runtime::init_logging();
    let cli = Cli::parse();
    sagastream_runtime::main(Probe { idle_after: cli.idle_after }, &cli.runtime)
}
