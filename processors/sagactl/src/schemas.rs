//! `sagactl schemas register|check|diff`: `schemas/` against a Schema
//! Registry, under TopicRecordNameStrategy subjects (docs/schemas.md).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use apache_avro::Schema;
use clap::{Args, Subcommand};
use sagastream_registry::{
    backward, catalog_rule, diff, load_dir, plan, FieldChange, Latest, Planned, Registry, RegistryError,
};
use sagastream_topics::Topics;

#[derive(Subcommand)]
pub enum SchemasCommand {
    /// Register every schema under its subjects (BACKWARD compatibility
    /// required of each subject first, so the registry refuses a breaking one).
    Register(RegistryArgs),
    /// Whether each schema may replace the latest registered version: the
    /// registry's BACKWARD check, apache-avro's offline one, and the
    /// catalog's rule (add fields freely; removing or changing one needs a
    /// new major version). Exits non-zero on any refusal.
    Check(RegistryArgs),
    /// The field changes of each schema against the latest registered version.
    Diff(RegistryArgs),
}

#[derive(Args)]
pub struct RegistryArgs {
    /// The registry's Confluent-compatible API (for Apicurio:
    /// `http://HOST:PORT/apis/ccompat/v7`; `scripts/registry.sh start` prints one).
    #[arg(long, env = "SCHEMA_REGISTRY_URL")]
    registry: Option<String>,
    /// The directory of `.avsc` files.
    #[arg(long, default_value = "schemas")]
    dir: PathBuf,
    /// Prefix every topic name, as processors do with --topic-prefix.
    #[arg(long, env = "SAGASTREAM_TOPIC_PREFIX", default_value = "")]
    prefix: String,
}

pub async fn run(cmd: SchemasCommand, file: &Path) -> Result<()> {
    let file = file.to_owned();
    // The registry client is blocking; keep it off the runtime's threads.
    tokio::task::spawn_blocking(move || run_blocking(cmd, &file)).await.context("the schemas command panicked")?
}

fn run_blocking(cmd: SchemasCommand, file: &Path) -> Result<()> {
    let args = match &cmd {
        SchemasCommand::Register(a) | SchemasCommand::Check(a) | SchemasCommand::Diff(a) => a,
    };
    let Some(url) = args.registry.as_deref() else {
        bail!("no schema registry: pass --registry URL or set SCHEMA_REGISTRY_URL\n  hint: scripts/registry.sh start runs one locally and prints its URL");
    };
    let topics = Topics::load(file)?.with_prefix(&args.prefix);
    let schemas = load_dir(&args.dir)?;
    let planned = plan(&topics, &schemas)?;
    let registry = Registry::new(url)?;
    let existing = registry.subjects()?;
    match cmd {
        SchemasCommand::Register(_) => register(&registry, &planned, &existing),
        SchemasCommand::Check(_) => check(&registry, &planned, &existing),
        SchemasCommand::Diff(_) => show_diff(&registry, &planned, &existing),
    }
}

/// Registers every subject it can: a refused one is reported and the rest
/// go on, so one breaking schema does not hide the state of the others.
fn register(registry: &Registry, planned: &[Planned<'_>], existing: &[String]) -> Result<()> {
    let mut refused = Vec::new();
    for p in planned {
        let new = !existing.contains(&p.subject);
        registry.require_backward(&p.subject)?;
        match registry.register(&p.subject, &p.schema.text) {
            Ok(id) => {
                println!("{} {}  id {id}  ({})", if new { "new " } else { "ok  " }, p.subject, p.schema.path.display())
            }
            Err(RegistryError::Refused { reason, .. }) => {
                println!("FAIL {}  ({}): {reason}", p.subject, p.schema.path.display());
                refused.push(p.subject.as_str());
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !refused.is_empty() {
        bail!(
            "the registry refused {} of {} subjects ({}): see `sagactl schemas check` for why, and docs/schemas.md for how to change a schema safely",
            refused.len(),
            planned.len(),
            refused.join(", ")
        );
    }
    println!("{} subjects registered at {}", planned.len(), registry.url());
    Ok(())
}

/// The subject's latest registered version, parsed, and the field changes
/// from it to the schema at hand.
fn against_latest(registry: &Registry, p: &Planned<'_>) -> Result<(Latest, Schema, Vec<FieldChange>)> {
    let latest = registry.latest(&p.subject)?;
    let schema = Schema::parse_str(&latest.schema)
        .with_context(|| format!("the registry's latest {} (id {}) is not an Avro schema", p.subject, latest.id))?;
    let changes = diff(&schema, &p.schema.schema);
    Ok((latest, schema, changes))
}

/// Why one schema may not replace its subject's latest version, if it may not.
fn refusals(registry: &Registry, p: &Planned<'_>, latest: &Schema, changes: &[FieldChange]) -> Result<Vec<String>> {
    let mut why = Vec::new();
    let online = registry.compatible(&p.subject, &p.schema.text)?;
    let offline = backward(latest, &p.schema.schema);
    match (online, &offline) {
        (true, Ok(())) => {}
        (false, Err(e)) => why.push(format!("not BACKWARD compatible (the registry and apache-avro agree): {e}")),
        (false, Ok(())) => {
            why.push("the registry refuses it as not BACKWARD compatible; apache-avro accepts it".into())
        }
        (true, Err(e)) => {
            why.push(format!("apache-avro refuses it as not BACKWARD compatible ({e}); the registry accepts it"))
        }
    }
    why.extend(catalog_rule(changes));
    Ok(why)
}

fn check(registry: &Registry, planned: &[Planned<'_>], existing: &[String]) -> Result<()> {
    let mut refused = 0;
    for p in planned {
        if !existing.contains(&p.subject) {
            println!("new  {}  (nothing registered yet)", p.subject);
            continue;
        }
        let (latest, latest_schema, changes) = against_latest(registry, p)?;
        let why = refusals(registry, p, &latest_schema, &changes)?;
        if why.is_empty() {
            let what = match changes.len() {
                0 => "unchanged".to_owned(),
                n => format!("{n} compatible change(s)"),
            };
            println!("ok   {}  ({what})", p.subject);
            continue;
        }
        refused += 1;
        println!("FAIL {}  ({} against id {})", p.subject, p.schema.path.display(), latest.id);
        for w in why {
            println!("       {w}");
        }
    }
    if refused > 0 {
        bail!(
            "{refused} of {} subjects refused: fix the schemas above, or give the event a new major version (docs/schemas.md, \"Changing a schema safely\")",
            planned.len()
        );
    }
    println!(
        "{} subjects checked against {}: every schema may replace its latest version",
        planned.len(),
        registry.url()
    );
    Ok(())
}

fn show_diff(registry: &Registry, planned: &[Planned<'_>], existing: &[String]) -> Result<()> {
    for p in planned {
        if !existing.contains(&p.subject) {
            println!("{}: new subject", p.subject);
            continue;
        }
        let (latest, _, changes) = against_latest(registry, p)?;
        match changes.is_empty() {
            true => println!("{}: unchanged (id {})", p.subject, latest.id),
            false => {
                println!("{}: against id {}", p.subject, latest.id);
                for c in changes {
                    println!("  {c}");
                }
            }
        }
    }
    Ok(())
}
