//! The escrow saga on Kafka Streams (`benches/peers/kafka-streams`, a
//! Maven module), built when its sources are newer than its jar.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{bail, Context as _};
use sagastream_kafka::ClientSettings;

use super::Running;
use crate::kit::FEE_BPS;

fn module(root: &Path) -> PathBuf {
    root.join("benches/peers/kafka-streams")
}

fn newest(dir: &Path) -> anyhow::Result<SystemTime> {
    let mut latest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let t = if entry.file_type()?.is_dir() { newest(&entry.path())? } else { entry.metadata()?.modified()? };
        latest = latest.max(t);
    }
    Ok(latest)
}

/// The peer's jar, built with Maven (into the repository's `.local/m2`) if stale.
pub fn jar(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = module(root);
    let jar = dir.join("target/escrow-peer.jar");
    let sources = newest(&dir.join("src"))?.max(std::fs::metadata(dir.join("pom.xml"))?.modified()?);
    let built = std::fs::metadata(&jar).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
    if built < sources {
        eprintln!("bench: building the Kafka Streams peer (mvn package; the first build fetches kafka-streams from Maven Central)");
        let status = Command::new("mvn")
            .args(["-q", "-B", "package"])
            .arg(format!("-Dmaven.repo.local={}", root.join(".local/m2").display()))
            .current_dir(&dir)
            .status()
            .context("running mvn (Maven is needed for the Kafka Streams peer: apt-get install maven)")?;
        if !status.success() {
            bail!("building the Kafka Streams peer failed ({status}); output above");
        }
    }
    Ok(jar)
}

/// Starts the peer on the topics under `prefix`; returns once Kafka Streams says RUNNING.
pub fn start(settings: &ClientSettings, jar: &Path, prefix: &str, logs: &Path) -> anyhow::Result<Running> {
    let group = format!("{prefix}kafka-streams");
    let state = logs.join("kstreams-state");
    let log = std::fs::File::create(logs.join("peers-kafka-streams.log"))?;
    let mut child = Command::new("java")
        .args(["-Xms256m", "-Xmx1g", "-XX:+UseG1GC"])
        .arg(format!("-Dpeer.state.dir={}", state.display()))
        .arg("-jar")
        .arg(jar)
        .args([&settings.bootstrap_servers, prefix, &group, &FEE_BPS.to_string()])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .context("starting the Kafka Streams peer (java -jar)")?;
    super::wait_running(&mut child, "the Kafka Streams peer", &logs.join("peers-kafka-streams.log"))?;
    Ok(Running { child, group, metrics: None })
}
