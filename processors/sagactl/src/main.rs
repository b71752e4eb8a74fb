//! `sagactl`: the operator CLI. Topic administration from `topics.yaml`, an
//! end-to-end check that publishes every event type and reads it back, and
//! `schemas/` against a Schema Registry.

mod events;
mod schemas;
mod topics;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sagactl", version, about = "Operate a sagastream deployment")]
struct Cli {
    /// Kafka bootstrap servers; defaults to $KAFKA_BOOTSTRAP_SERVERS.
    #[arg(long, global = true)]
    bootstrap_servers: Option<String>,
    /// The topics file.
    #[arg(long, global = true, default_value = "topics.yaml")]
    file: PathBuf,
    /// librdkafka property (TLS, SASL), as the processors take it: `consumer.`
    /// or `producer.` prefixed ones reach only those clients. Repeatable; the
    /// variable takes `;`-separated pairs.
    #[arg(
        short = 'X',
        long = "kafka-property",
        global = true,
        env = "SAGASTREAM_KAFKA_PROPERTIES",
        value_delimiter = ';',
        hide_env_values = true
    )]
    kafka_properties: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate, plan or apply topics.yaml.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Publish and read back events.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Register and check schemas/ against a Schema Registry.
    #[command(subcommand)]
    Schemas(schemas::SchemasCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Topics(cmd) => topics::run(cmd, &cli.file, cli.bootstrap_servers, &cli.kafka_properties).await,
        Command::Events(cmd) => events::run(cmd, &cli.file, cli.bootstrap_servers, &cli.kafka_properties).await,
        Command::Schemas(cmd) => schemas::run(cmd, &cli.file).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
