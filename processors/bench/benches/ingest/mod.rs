//! The ingest processor in the same bench run: foreign records translated
//! per second under exactly-once, against the transactional copy loop over
//! the same raw records. Stateless, so its target is close to the ceiling.
//!
//! `SAGASTREAM_BENCH_INGEST` (default 200000) records a round, half First
//! Viscount `order.created` envelopes on `order-management.order.created.v1`,
//! half Go4u `dispute.resolved` envelopes (a decimal ratio to turn into basis
//! points, an IP to scrub) on `go4u.events`, produced before either reader
//! starts; each timed from its first record to its last. The two read the
//! same records, each with its group, in turns over
//! `SAGASTREAM_BENCH_INGEST_ROUNDS` (default 4) rounds, the copy loop first
//! in every other round: a broker that warms up as the run goes on favours
//! neither. The figures are the rounds' medians.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use sagastream_kafka::{ClientSettings, BOOTSTRAP_ENV};

use crate::{copy_loop, cpu_seconds, metric, produce, wait, Guard};

use sagastream_bench::ingest_records::inputs;

pub struct IngestRun {
    pub records: usize,
    /// Per round: ingest's records/s, the copy loop's, and which went first.
    pub rounds: Vec<Round>,
}

pub struct Round {
    pub ingest: f64,
    pub copy: f64,
    /// CPU per record of each reader's process, all its threads
    /// (librdkafka's too) from its start to its last record: a figure the
    /// broker's speed, which moves the ceiling, changes far less.
    pub ingest_cpu_us: f64,
    pub copy_cpu_us: f64,
    pub copy_first: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl IngestRun {
    pub fn rate(&self) -> f64 {
        median(self.rounds.iter().map(|r| r.ingest).collect())
    }

    pub fn ceiling(&self) -> f64 {
        median(self.rounds.iter().map(|r| r.copy).collect())
    }

    /// The median of the rounds' own ratios (each against the copy loop next to it).
    pub fn ratio(&self) -> f64 {
        median(self.rounds.iter().map(|r| r.ingest / r.copy).collect())
    }

    pub fn ingest_cpu_us(&self) -> f64 {
        median(self.rounds.iter().map(|r| r.ingest_cpu_us).collect())
    }

    pub fn copy_cpu_us(&self) -> f64 {
        median(self.rounds.iter().map(|r| r.copy_cpu_us).collect())
    }
}

fn binary() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_bench-ingest").into()
}

pub fn run(settings: &ClientSettings, root: &Path, prefix: &str, n: usize) -> anyhow::Result<IngestRun> {
    let rounds: usize = std::env::var("SAGASTREAM_BENCH_INGEST_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    let name = |t: &str| format!("{prefix}{t}");
    let raw = [name("order-management.order.created.v1"), name("go4u.events")];
    let records = inputs(n);
    let mut out = IngestRun { records: n, rounds: Vec::new() };
    for round in 0..rounds.max(1) {
        // The same groups go on from where they stopped: each round reads the n records just written.
        produce(settings, &name, &records)?;
        let copy_first = round % 2 == 0;
        // The copy loop runs in this process, which does nothing else meanwhile.
        let copy = |_: ()| -> anyhow::Result<(f64, f64)> {
            let cpu = cpu_seconds(std::process::id())?;
            let took = copy_loop(settings, &name("ceiling-copy"), &raw, &name("probe.events"), n)?;
            let cpu = cpu_seconds(std::process::id())? - cpu;
            Ok((n as f64 / took.as_secs_f64(), cpu * 1e6 / n as f64))
        };
        let ((ingest, ingest_cpu_us), (copy, copy_cpu_us)) = if copy_first {
            let c = copy(())?;
            (ingest_round(settings, root, prefix, n, round)?, c)
        } else {
            let i = ingest_round(settings, root, prefix, n, round)?;
            (i, copy(())?)
        };
        eprintln!(
            "bench: ingest round {}: {ingest:.0} records/s, copy loop {copy:.0} ({} first); CPU {ingest_cpu_us:.1} and {copy_cpu_us:.1} µs a record",
            round + 1,
            if copy_first { "copy" } else { "ingest" }
        );
        out.rounds.push(Round { ingest, copy, ingest_cpu_us, copy_cpu_us, copy_first });
    }
    Ok(out)
}

/// One ingest process over the `n` records not yet read: its records/s and
/// its CPU µs a record.
fn ingest_round(
    settings: &ClientSettings,
    root: &Path,
    prefix: &str,
    n: usize,
    round: usize,
) -> anyhow::Result<(f64, f64)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = std::fs::File::create(root.join(format!(".local/bench/ingest-{}.log", round + 1)))?;
    let mut ingest = Guard(
        Command::new(binary())
            .args(["--instance-id", "bench-0", "--topic-prefix", prefix])
            .args(["--group-id", &format!("{prefix}ingest"), "--metrics-addr", &format!("127.0.0.1:{port}")])
            .env(BOOTSTRAP_ENV, &settings.bootstrap_servers)
            .env("RUST_LOG", std::env::var("SAGASTREAM_BENCH_RUST_LOG").unwrap_or("warn".into()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting sagastream-ingest")?,
    );
    let metrics =
        || sagastream_testkit::get(&format!("127.0.0.1:{port}"), "/metrics").map(|r| r.body).unwrap_or_default();
    let mut started = None;
    wait(Duration::from_secs(600), "ingest to translate every record", || {
        let all = metric(&metrics(), "sagastream_ingest_records_total{");
        if all > 0.0 && started.is_none() {
            started = Some(Instant::now());
        }
        all >= n as f64
    })?;
    let elapsed = started.map_or(Duration::ZERO, |s| s.elapsed());
    let cpu = cpu_seconds(ingest.0.id())?;
    let text = metrics();
    let translated = ["first_viscount", "go4u"]
        .iter()
        .map(|p| metric(&text, &format!("sagastream_ingest_records_total{{platform=\"{p}\",outcome=\"translated\"")))
        .sum::<f64>();
    ingest.stop();
    if translated < n as f64 {
        bail!("the ingest run was not clean: {translated} of {n} records translated");
    }
    Ok((n as f64 / elapsed.as_secs_f64(), cpu * 1e6 / n as f64))
}
