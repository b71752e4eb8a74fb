//! Restore of a million active escrow sagas: assignment to ready after a
//! crash (kill -9: the whole compacted changelog is read back) and after a
//! clean restart (SIGTERM: each partition's local snapshot and the
//! changelog written after it). Needs a broker: `scripts/broker.sh start`
//! and `KAFKA_BOOTSTRAP_SERVERS`.
//!
//! `SAGASTREAM_BENCH_SAGAS` (default 1,000,000) bookings, each requested
//! and accepted, so every saga is active, waiting for its hold with a timer
//! set (a one-hour hold timeout: none fires during the run). Figures per
//! start: `sagastream_assignment_ready_seconds` (the rebalance to every
//! partition running: the goal's measure), the process start to `/readyz`,
//! changelog records read, RSS once ready; and the clean stop's time (the
//! final commit and the snapshots written).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::Utc;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use sagastream_contract::{encode, ContentMode, Event};
use sagastream_kafka::{base_record, ClientSettings, BOOTSTRAP_ENV};
use sagastream_testkit::sum_metric as metric;
use sagastream_testkit::Guard;

mod common;
mod kit;

use kit::{apply_topics, rss_kib, wait, FEE_BPS};

/// One start of the saga and what it took.
struct Start {
    guard: Guard,
    port: u16,
    /// Process start to `/readyz` 200.
    to_ready: Duration,
}

fn start(settings: &ClientSettings, prefix: &str, state: &Path, log: &Path) -> anyhow::Result<Start> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = std::fs::File::options().create(true).append(true).open(log)?;
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_bench-escrow-saga"))
        .args(["--instance-id", "restore-0", "--topic-prefix", prefix, "--fee-bps", &FEE_BPS.to_string()])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}"), "--hold-timeout", "1h"])
        .arg("--state-dir")
        .arg(state)
        // A killed member leaves the group in 6 s, not librdkafka's 45 s
        // (the wait is before the assignment, so outside the measure anyway).
        .args(["-X", "consumer.session.timeout.ms=6000"])
        .env(BOOTSTRAP_ENV, &settings.bootstrap_servers)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting the escrow saga")?;
    let mut guard = Guard(child);
    let ready = || sagastream_testkit::get(&format!("127.0.0.1:{port}"), "/readyz").is_some_and(|r| r.status == 200);
    let deadline = Instant::now() + Duration::from_secs(600);
    while !ready() {
        if let Some(status) = guard.0.try_wait()? {
            bail!("the saga exited ({status}) before it was ready");
        }
        if Instant::now() > deadline {
            bail!("the saga was not ready within 10 min");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Start { guard, port, to_ready: started.elapsed() })
}

fn metrics(port: u16) -> String {
    sagastream_testkit::get(&format!("127.0.0.1:{port}"), "/metrics").map(|r| r.body).unwrap_or_default()
}

/// What one restart measured.
struct Restore {
    what: &'static str,
    assignment_ready: f64,
    to_ready: Duration,
    records: f64,
    from_snapshot: f64,
    entries: f64,
    rss_mib: u64,
}

fn measure(what: &'static str, s: &Start) -> anyhow::Result<Restore> {
    let m = metrics(s.port);
    Ok(Restore {
        what,
        assignment_ready: metric(&m, "sagastream_assignment_ready_seconds"),
        to_ready: s.to_ready,
        records: metric(&m, "sagastream_restored_records_total"),
        from_snapshot: metric(&m, "sagastream_restores_total{kind=\"snapshot\"}"),
        entries: metric(&m, "sagastream_state_entries"),
        rss_mib: rss_kib(s.guard.0.id())? / 1024,
    })
}

fn main() -> anyhow::Result<()> {
    let sagas: usize = std::env::var("SAGASTREAM_BENCH_SAGAS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let kit::Setup { settings, root, logs, nanos } = kit::setup()?;
    let prefix = format!("bench-restore-{nanos}.");
    let state = logs.join(format!("restore-state-{nanos}"));
    let log = logs.join("restore-saga.log");
    let _ = std::fs::remove_file(&log);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(apply_topics(&settings, &root, &prefix))?;

    // --- a million active sagas ----------------------------------------------
    let produced = Instant::now();
    let producer: ThreadedProducer<DefaultProducerContext> = settings.producer().set("linger.ms", "20").create()?;
    let topic = format!("{prefix}booking.events");
    let now = Utc::now();
    for i in 0..sagas {
        let [requested, accepted, ..] = common::delivery(&common::Booking::nth(i), now);
        for fact in [requested, accepted] {
            let record = encode(&Event::new("/bench", fact).with_time(now), ContentMode::Binary)?;
            sagastream_kafka::io::queue(&producer, base_record(&topic, &record))?;
        }
    }
    producer.flush(Duration::from_secs(120))?;
    eprintln!("restore bench: {} inputs produced in {:.1} s", 2 * sagas, produced.elapsed().as_secs_f64());

    let first = start(&settings, &prefix, &state, &log)?;
    let processing = Instant::now();
    wait(Duration::from_secs(1800), "every saga in committed state", || {
        metric(&metrics(first.port), "sagastream_state_entries") >= sagas as f64
    })?;
    eprintln!(
        "restore bench: {sagas} sagas active after {:.1} s of processing, RSS {} MiB",
        processing.elapsed().as_secs_f64(),
        rss_kib(first.guard.0.id())? / 1024
    );

    // --- after a crash: the whole changelog --------------------------------
    let mut first = first;
    first.guard.0.kill()?;
    first.guard.0.wait()?;
    let crashed = start(&settings, &prefix, &state, &log)?;
    let crash = measure("after a crash (kill -9)", &crashed)?;

    // --- after a clean restart: the snapshots ------------------------------
    let mut crashed = crashed;
    let stopping = Instant::now();
    crashed.guard.stop();
    let stop_took = stopping.elapsed();
    let snapshot_bytes: u64 = std::fs::read_dir(state.join(format!("{prefix}escrow.saga.changelog")))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let clean = start(&settings, &prefix, &state, &log)?;
    let restart = measure("after a clean restart (SIGTERM)", &clean)?;
    let mut clean = clean;
    clean.guard.stop();

    println!("\nrestore of {sagas} active escrow sagas (compacted changelog, 6 partitions, one instance)\n");
    println!("| start | assignment to ready | process start to ready | changelog records read | partitions from a snapshot | keys | RSS when ready |");
    println!("|---|---|---|---|---|---|---|");
    for r in [&crash, &restart] {
        println!(
            "| {} | {:.2} s | {:.2} s | {:.0} | {:.0} | {:.0} | {} MiB |",
            r.what,
            r.assignment_ready,
            r.to_ready.as_secs_f64(),
            r.records,
            r.from_snapshot,
            r.entries,
            r.rss_mib
        );
    }
    println!(
        "\nclean stop (final commit, {:.0} MiB of snapshots written): {:.2} s",
        snapshot_bytes as f64 / (1 << 20) as f64,
        stop_took.as_secs_f64()
    );
    println!(
        "goals: after a crash within 10 s: {:.2} s ({}); after a clean restart within 2 s: {:.2} s ({})",
        crash.assignment_ready,
        if crash.assignment_ready <= 10.0 { "met" } else { "not met" },
        restart.assignment_ready,
        if restart.assignment_ready <= 2.0 { "met" } else { "not met" },
    );
    for (r, want) in [(&crash, 0.0), (&restart, 6.0)] {
        anyhow::ensure!(r.entries == sagas as f64, "{}: {} keys restored, not {sagas}", r.what, r.entries);
        anyhow::ensure!(
            r.from_snapshot == want,
            "{}: {} partitions from a snapshot, not {want}",
            r.what,
            r.from_snapshot
        );
    }
    let _ = std::fs::remove_dir_all(&state);
    Ok(())
}
