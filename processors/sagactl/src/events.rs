use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use sagastream_contract::{decode, encode, samples};
use sagastream_kafka::{io, ClientSettings};
use sagastream_topics::Topics;

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Publish one event of every type to its topic (in the topic's content
    /// mode), read each back read_committed, decode it and compare.
    Roundtrip {
        /// Suffix for the aggregate ids; defaults to a random one.
        #[arg(long)]
        tag: Option<String>,
    },
}

pub async fn run(cmd: EventsCommand, file: &Path, bootstrap: Option<String>, properties: &[String]) -> Result<()> {
    let EventsCommand::Roundtrip { tag } = cmd;
    let topics = Topics::load(file)?;
    let settings = ClientSettings::resolve(bootstrap, "sagactl")?.with_properties(properties)?;
    let tag = tag.unwrap_or_else(uuid_tag);
    let events = samples::one_of_each(&tag);
    let producer = io::producer(&settings)?;

    let started = Instant::now();
    let mut sent = Vec::with_capacity(events.len());
    for event in &events {
        let topic = event.event_type().topic();
        let mode =
            topics.get(topic).with_context(|| format!("{topic} is not declared in {}", file.display()))?.content_mode;
        let record = encode(event, mode)?;
        sent.push((io::send(&producer, topic, &record).await?, mode));
    }
    let published = started.elapsed();
    let positions: Vec<io::Position> = sent.iter().map(|(p, _)| *p).collect();
    let read = io::read_positions(&settings, &positions, Duration::from_secs(30))?;

    println!("{:<30} {:<17} {:>4} {:>7}  {:<10}  result", "event type", "topic", "part", "offset", "mode");
    let mut failures = 0;
    for (event, (pos, mode)) in events.iter().zip(&sent) {
        let outcome = match decode(&read[pos]) {
            Ok(d) if d.event == *event => "ok: decoded typed, identical".to_owned(),
            Ok(d) => format!("MISMATCH: read back {:?}", d.event.id),
            Err(e) => format!("FAILED [{}]: {e}", e.class()),
        };
        if !outcome.starts_with("ok") {
            failures += 1;
        }
        println!(
            "{:<30} {:<17} {:>4} {:>7}  {:<10}  {outcome}",
            event.event_type(),
            pos.topic,
            pos.partition,
            pos.offset,
            mode.as_str()
        );
    }
    println!(
        "{} event types published in {:.0?} and read back in {:.0?}: {} ok, {failures} failed",
        events.len(),
        published,
        started.elapsed() - published,
        events.len() - failures
    );
    if failures > 0 {
        bail!("{failures} event type(s) did not round-trip");
    }
    Ok(())
}

fn uuid_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}
