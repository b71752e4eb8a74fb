use std::path::Path;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use sagastream_kafka::{admin, ClientSettings};
use sagastream_topics::{plan, Topics};

#[derive(Subcommand)]
pub enum TopicsCommand {
    /// Check the file against the format and the event catalog; needs no broker.
    Validate,
    /// Show what apply would do.
    Plan(ClusterArgs),
    /// Create missing topics; report drift; never alter or delete.
    Apply {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Exit with an error when a topic differs from the file (the Helm
        /// chart's topics Job: a release does not start on drifted topics).
        #[arg(long)]
        fail_on_drift: bool,
    },
}

#[derive(Args)]
pub struct ClusterArgs {
    /// Use this replication factor for every topic (a development cluster has one broker).
    #[arg(long)]
    replication_factor: Option<i32>,
    /// Prefix every topic name, as processors do with --topic-prefix.
    #[arg(long, env = "SAGASTREAM_TOPIC_PREFIX", default_value = "")]
    prefix: String,
}

fn load(file: &Path) -> Result<Topics> {
    let topics = Topics::load(file)?;
    let uncovered = topics.uncovered_event_types();
    if !uncovered.is_empty() {
        let names: Vec<&str> = uncovered.iter().map(|t| t.as_str()).collect();
        bail!(
            "{}: no topic carries {}\n  hint: list each event type under the `events:` of its topic (docs/events.md)",
            file.display(),
            names.join(", ")
        );
    }
    Ok(topics)
}

pub async fn run(cmd: TopicsCommand, file: &Path, bootstrap: Option<String>, properties: &[String]) -> Result<()> {
    let topics = load(file)?;
    let (cluster, dry_run, fail_on_drift) = match cmd {
        TopicsCommand::Validate => {
            println!("{}: {} topics, valid", file.display(), topics.topics.len());
            return Ok(());
        }
        TopicsCommand::Plan(c) => (c, true, false),
        TopicsCommand::Apply { cluster, dry_run, fail_on_drift } => (cluster, dry_run, fail_on_drift),
    };
    let topics = match cluster.replication_factor {
        Some(rf) if rf < 1 => bail!("--replication-factor must be at least 1"),
        Some(rf) => topics.with_replication_factor(rf),
        None => topics,
    };
    let topics = topics.with_prefix(&cluster.prefix);
    let settings = ClientSettings::resolve(bootstrap, "sagactl")?.with_properties(properties)?;
    let admin = admin::admin_client(&settings)?;
    let (observed, brokers) = admin::observe(&admin, &topics).await?;
    let plan = plan(&topics, &observed);
    println!("cluster {} ({brokers} broker(s))", settings.bootstrap_servers);
    println!("{plan}");
    if dry_run {
        return Ok(());
    }
    let create = plan.to_create();
    admin::create(&admin, &create, brokers).await?;
    println!("applied: created {} topic(s)", create.len());
    if plan.drifted() > 0 && fail_on_drift {
        bail!(
            "{} topic(s) drifted from {} (listed above); fix them by hand or update the file (topics.failOnDrift=false in the chart only reports drift)",
            plan.drifted(),
            file.display()
        );
    }
    if plan.drifted() > 0 {
        println!("note: {} topic(s) drifted from topics.yaml; fix them by hand or update the file", plan.drifted());
    }
    Ok(())
}
