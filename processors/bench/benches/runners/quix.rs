//! The escrow saga on Quix Streams (`benches/peers/quix`), in a venv of
//! its own under `.local/quix-venv`, installed once per requirements change.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};
use sagastream_kafka::ClientSettings;

use super::Running;
use crate::kit::FEE_BPS;

/// The venv's Python, with the peer's requirements installed.
pub fn python(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join(".local/quix-venv");
    let requirements = root.join("benches/peers/quix/requirements.txt");
    let want = std::fs::read_to_string(&requirements)?;
    let stamp = venv.join("requirements.installed");
    let python = venv.join("bin/python");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        eprintln!("bench: installing the Quix Streams peer's requirements into {} (once)", venv.display());
        let run = |cmd: &mut Command, what: &str| -> anyhow::Result<()> {
            let status = cmd.status().with_context(|| format!("running {what}"))?;
            if !status.success() {
                bail!("{what} failed ({status}); output above");
            }
            Ok(())
        };
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3 -m venv (Python 3 with venv is needed)")?;
        run(Command::new(&python).args(["-m", "pip", "install", "-q", "-r"]).arg(&requirements), "pip install")?;
        std::fs::write(&stamp, want)?;
    }
    Ok(python)
}

/// Starts the peer on the topics under `prefix`; returns once its partitions are assigned.
pub fn start(
    settings: &ClientSettings,
    python: &Path,
    root: &Path,
    prefix: &str,
    logs: &Path,
) -> anyhow::Result<Running> {
    let group = format!("{prefix}quix");
    let state = logs.join("quix-state").join(&group);
    let log_path = logs.join("peers-quix.log");
    let log = std::fs::File::create(&log_path)?;
    let mut child = Command::new(python)
        .arg(root.join("benches/peers/quix/escrow_peer.py"))
        .args([&settings.bootstrap_servers, prefix, &group, &FEE_BPS.to_string()])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .context("starting the Quix Streams peer")?;
    super::wait_running(&mut child, "the Quix Streams peer", &log_path)?;
    Ok(Running { child, group, metrics: None })
}
