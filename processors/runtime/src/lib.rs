//! The exactly-once runtime every sagastream processor runs on.
//!
//! A processor is a pure state machine ([`Processor`]); [`run`] drives it
//! from Kafka: one consumer and one transactional producer per instance,
//! keyed state restored from a changelog, durable timers, a dead-letter
//! topic for bad input, Prometheus metrics and health endpoints.
//! `docs/runtime.md` describes the design and its guarantees.

pub mod changelog;
pub mod config;
pub mod dlq;
pub mod engine;
pub mod events;
pub mod hooks;
pub mod http;
pub mod ids;
pub mod lag;
pub mod lifecycle;
pub mod memory;
pub mod metrics;
pub mod order;
pub mod processor;
pub mod rekey;
mod runner;
pub mod saga;
pub mod snapshot;
pub mod testing;
mod timers;

pub use config::{Config, ConfigError, RuntimeArgs};
pub use processor::{
    Context, Emit, Envelope, KeyView, Outcome, Processor, Refusal, Rejection, Repartition, Spec, StateChange, Step,
    Timer, TimerCommand, Translation,
};
pub use runner::LoopError;
pub use saga::{RejectionClass, SagaState, Working, PURGE};

/// Why a processor stopped.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("configuration: {0}")]
    Config(ConfigError),
    #[error(transparent)]
    Loop(#[from] LoopError),
}

/// Validates the configuration and runs the processor until SIGTERM/SIGINT
/// (`Ok`) or a fatal error.
pub fn run<P: Processor>(processor: P, args: &RuntimeArgs) -> Result<(), RuntimeError> {
    let huge_pages_off = memory::huge_pages_off();
    tracing::debug!(huge_pages_off, "transparent huge pages");
    let config = Config::resolve(args, &processor.spec()).map_err(RuntimeError::Config)?;
    runner::run(processor, config)?;
    Ok(())
}

/// The binary edge: runs the processor, reports a failure on stderr and the
/// log, and turns it into exit code 1.
pub fn main<P: Processor>(processor: P, args: &RuntimeArgs) -> std::process::ExitCode {
    match run(processor, args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` sets the filter (default `info`) and
/// `SAGASTREAM_LOG_FORMAT=json` gives one JSON object per line.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if std::env::var("SAGASTREAM_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
