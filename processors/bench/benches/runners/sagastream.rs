//! sagastream's escrow saga, the bench's own build of it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use sagastream_kafka::{ClientSettings, BOOTSTRAP_ENV};

use super::Running;
use crate::kit::{wait, FEE_BPS};

/// Starts the saga on the topics under `prefix`; returns once `/readyz` answers 200.
pub fn start(settings: &ClientSettings, prefix: &str, logs: &Path) -> anyhow::Result<Running> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let group = format!("{prefix}escrow-saga");
    let log = std::fs::File::create(logs.join("peers-sagastream.log"))?;
    let child = Command::new(env!("CARGO_BIN_EXE_bench-escrow-saga"))
        .args(["--instance-id", "bench-0", "--topic-prefix", prefix, "--fee-bps", &FEE_BPS.to_string()])
        .args(["--group-id", &group, "--metrics-addr", &format!("127.0.0.1:{port}")])
        .env(BOOTSTRAP_ENV, &settings.bootstrap_servers)
        .env("RUST_LOG", std::env::var("SAGASTREAM_BENCH_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting sagastream-escrow-saga")?;
    let running = Running { child, group, metrics: Some(format!("127.0.0.1:{port}")) };
    let ready = || sagastream_testkit::get(&format!("127.0.0.1:{port}"), "/readyz").is_some_and(|r| r.status == 200);
    wait(Duration::from_secs(120), "sagastream's escrow saga to be ready", ready)?;
    Ok(running)
}
