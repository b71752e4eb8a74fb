use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sagastream_escrow_saga::money::Bps;
use sagastream_kafka::ClientSettings;
use sagastream_runtime::config::{parse_duration, EMBEDDED_TOPICS};
use sagastream_sim::load::{self, LoadConfig};
use sagastream_sim::orders::OrderScenario;
use sagastream_sim::participants::Rates;
use sagastream_sim::scenario::Mix;
use sagastream_sim::serve::{self, ServeConfig};
use sagastream_sim::wire::Wire;
use sagastream_topics::Topics;

/// The sagas' world: simulated participants and a checking load generator.
#[derive(Parser)]
#[command(name = "sagastream-sim", version)]
struct Cli {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS", global = true)]
    bootstrap_servers: Option<String>,
    /// Prefix of every physical topic name (as given to the processors).
    #[arg(long, env = "SAGASTREAM_TOPIC_PREFIX", default_value = "", global = true)]
    topic_prefix: String,
    /// topics.yaml to use instead of the built-in one (as given to the
    /// processors): which topics the services write in Avro.
    #[arg(long, env = "SAGASTREAM_TOPICS_FILE", global = true)]
    topics_file: Option<std::path::PathBuf>,
    /// The Schema Registry's Confluent-compatible API, for Avro topics and records.
    #[arg(long, env = "SCHEMA_REGISTRY_URL", global = true)]
    schema_registry_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Play the booking, payment and inventory services: answer the sagas' commands.
    Serve {
        /// Consumer group of the simulator.
        #[arg(long, default_value = "sagastream-sim")]
        group: String,
        /// Delay before each answer, e.g. 20ms.
        #[arg(long, default_value = "20ms", value_parser = parse_duration)]
        latency: Duration,
        /// Fraction of holds declined for owners without a test-customer marker (0.0-1.0).
        #[arg(long, default_value_t = 0.0, value_parser = fraction)]
        failure_rate: f64,
        /// Fraction of held escrows disputed for owners without a marker (0.0-1.0).
        #[arg(long, default_value_t = 0.0, value_parser = fraction)]
        dispute_rate: f64,
        /// Every Nth dispute event in Go4u's own envelope on go4u.events, through ingest (0: none).
        #[arg(long, default_value_t = 0)]
        via_ingest_every: usize,
    },
    /// Start bookings (and orders) across the scenario mixes, then check every outcome.
    Load {
        /// Number of bookings.
        #[arg(long, short = 'n', default_value_t = 2_000)]
        bookings: usize,
        /// Scenario weights, e.g. happy=40,dispute_split=5 (default: every scenario, happy most).
        #[arg(long)]
        mix: Option<Mix>,
        /// Orders started alongside the bookings, for the order saga (0: none).
        #[arg(long, default_value_t = 0)]
        orders: usize,
        /// Order scenario weights, e.g. order_happy=20,order_out_of_stock=5 (default: every one, happy most).
        #[arg(long)]
        order_mix: Option<Mix<OrderScenario>>,
        /// The inventory projector's --warning-below (the checker counts the alerts it must raise).
        #[arg(long, env = "SAGASTREAM_INVENTORY_WARNING_BELOW", default_value_t = 10)]
        warning_below: u32,
        /// The inventory projector's --critical-below.
        #[arg(long, env = "SAGASTREAM_INVENTORY_CRITICAL_BELOW", default_value_t = 3)]
        critical_below: u32,
        /// Bookings started per second (0 = as fast as --max-in-flight allows).
        #[arg(long, default_value_t = 0)]
        rate: u32,
        /// Bookings started and not yet finished, at most.
        #[arg(long, default_value_t = 500)]
        max_in_flight: usize,
        /// Wait this long for outcomes after the last booking started.
        #[arg(long, default_value = "2m", value_parser = parse_duration)]
        settle_timeout: Duration,
        /// The saga's --fee-bps (the checker computes the expected payouts with it).
        #[arg(long, env = "SAGASTREAM_ESCROW_FEE_BPS", default_value_t = 1500)]
        fee_bps: u32,
        /// Prefix of the booking ids (default: a random one per run).
        #[arg(long)]
        run_id: Option<String>,
        /// The saga's metrics endpoint(s), for the final consumer lag, e.g. http://127.0.0.1:9464/metrics.
        #[arg(long = "saga-metrics")]
        saga_metrics: Vec<String>,
        /// Write the report as JSON here too.
        #[arg(long)]
        report: Option<std::path::PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Drive the happy bookings as trips: runners online, GPS fixes along a known path, offline
        /// (needs the tracking and runner presence processors).
        #[arg(long)]
        trips: bool,
        /// Every Nth order.created in First Viscount's own envelope, through ingest (0: none).
        #[arg(long, default_value_t = 0)]
        via_ingest_every: usize,
        /// The ingest processor's metrics endpoint, for its counts per platform.
        #[arg(long)]
        ingest_metrics: Option<String>,
    },
}

fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a fraction between 0.0 and 1.0")),
    }
}

fn main() -> ExitCode {
    sagastream_runtime::init_logging();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("installing the signal handler")?;
    }
    let settings = |client: &str| {
        ClientSettings::resolve(cli.bootstrap_servers.clone(), client)
            .context("no Kafka cluster: pass --bootstrap-servers or set KAFKA_BOOTSTRAP_SERVERS")
    };
    let topics = match &cli.topics_file {
        Some(path) => Topics::load(path)?,
        None => Topics::parse(EMBEDDED_TOPICS, "topics.yaml (built in)")?,
    };
    let wire = Arc::new(Wire::new(&topics, &cli.topic_prefix, cli.schema_registry_url.as_deref())?);
    match cli.command {
        Command::Serve { group, latency, failure_rate, dispute_rate, via_ingest_every } => {
            let config = ServeConfig {
                settings: settings("sagastream-sim")?,
                topic_prefix: cli.topic_prefix.clone(),
                group,
                latency,
                rates: Rates { failure: failure_rate, dispute: dispute_rate },
                via_ingest_every,
                wire,
            };
            serve::serve(&config, &stop)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Load {
            bookings,
            mix,
            orders,
            order_mix,
            warning_below,
            critical_below,
            rate,
            max_in_flight,
            settle_timeout,
            fee_bps,
            run_id,
            saga_metrics,
            report,
            quiet,
            trips,
            via_ingest_every,
            ingest_metrics,
        } => {
            let config = LoadConfig {
                settings: settings("sagastream-load")?,
                topic_prefix: cli.topic_prefix.clone(),
                bookings,
                mix: mix.unwrap_or_default(),
                orders,
                order_mix: order_mix.unwrap_or_default(),
                thresholds: (warning_below, critical_below),
                rate,
                max_in_flight: max_in_flight.max(1),
                settle_timeout,
                fee: Bps::new(fee_bps).map_err(|e| anyhow::anyhow!("--fee-bps: {e}"))?,
                run_id: run_id.unwrap_or_else(|| format!("bk{}", &uuid::Uuid::new_v4().simple().to_string()[..8])),
                saga_metrics,
                progress: !quiet,
                trips,
                via_ingest_every,
                ingest_metrics,
                wire,
            };
            let result = load::run(&config, &stop)?;
            print!("{}", result.table());
            if let Some(path) = report {
                let json = serde_json::to_string_pretty(&result)?;
                std::fs::write(&path, json).with_context(|| format!("writing the report to {}", path.display()))?;
            }
            Ok(if result.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
