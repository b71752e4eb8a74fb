//! The escrow saga side by side in one run, on one broker: the
//! transactional copy-loop ceiling, sagastream, and the same saga on Kafka
//! Streams (`benches/peers/kafka-streams`) and on Quix Streams
//! (`benches/peers/quix`), in turns over several rounds,
//! each on fresh topics holding the same records. Every saga's outputs are
//! counted afterwards (a hold and a release command and a
//! `booking.completed` per booking, no DLQ record), so all of them did the
//! same work. Prints events/s, the ratios, peak RSS and CPU seconds per
//! 1,000 events; the medians go to `.local/bench/peers.json`.
//!
//! Then latency under load (`latency/mod.rs`): sagastream fed at half the
//! median rate it reached, p50 and p99 from input to committed output.
//!
//! `SAGASTREAM_BENCH_BOOKINGS` (default 20000) bookings of 8 inputs a
//! round, `SAGASTREAM_BENCH_ROUNDS` (default 3) rounds,
//! `SAGASTREAM_BENCH_LATENCY_SECONDS` (default 30, 0 skips it) at
//! `SAGASTREAM_BENCH_LATENCY_RATE` inputs/s (default: half the measured
//! maximum). Needs a broker
//! (`KAFKA_BOOTSTRAP_SERVERS`), Java, Maven and Python 3.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sagastream_kafka::ClientSettings;

mod common;
mod kit;
mod latency;
mod runners;

use kit::{apply_topics, copy_loop, cpu_seconds, inputs, produce, Inputs};
use runners::{check_outputs, peak_rss_kib, wait_committed, Measured, Running, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Runner {
    Ceiling,
    Sagastream,
    KafkaStreams,
    Quix,
}

impl Runner {
    /// Its name in `SAGASTREAM_BENCH_RUNNERS`.
    fn key(self) -> &'static str {
        match self {
            Runner::Ceiling => "ceiling",
            Runner::Sagastream => "sagastream",
            Runner::KafkaStreams => "kafka-streams",
            Runner::Quix => "quix",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Runner::Ceiling => "copy-loop ceiling",
            Runner::Sagastream => "sagastream",
            Runner::KafkaStreams => "Kafka Streams",
            Runner::Quix => "Quix Streams",
        }
    }
}

const LIMIT: Duration = Duration::from_secs(900);

fn main() -> anyhow::Result<()> {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let bookings = env("SAGASTREAM_BENCH_BOOKINGS", 20_000);
    let rounds = env("SAGASTREAM_BENCH_ROUNDS", 3);
    let kit::Setup { settings, root, logs, nanos } = kit::setup()?;
    // `SAGASTREAM_BENCH_RUNNERS=ceiling,sagastream` leaves the peers out (no Java, Maven or Python needed).
    let wanted = std::env::var("SAGASTREAM_BENCH_RUNNERS").unwrap_or_default();
    let order: Vec<Runner> = [Runner::Ceiling, Runner::Sagastream, Runner::KafkaStreams, Runner::Quix]
        .into_iter()
        .filter(|r| wanted.is_empty() || wanted.split(',').any(|w| w.trim() == r.key()))
        .collect();
    anyhow::ensure!(
        order.contains(&Runner::Ceiling) && order.contains(&Runner::Sagastream),
        "SAGASTREAM_BENCH_RUNNERS={wanted:?} must name ceiling and sagastream (and any of kafka-streams, quix)"
    );
    let jar = match order.contains(&Runner::KafkaStreams) {
        true => runners::kstreams::jar(&root)?,
        false => PathBuf::new(),
    };
    let python = match order.contains(&Runner::Quix) {
        true => runners::quix::python(&root)?,
        false => PathBuf::new(),
    };
    let (phase_a, phase_b) = inputs(bookings);
    let total = (phase_a.len() + phase_b.len()) as f64;
    eprintln!("bench: {rounds} rounds of {bookings} bookings ({total} inputs) for each runner");

    let bench = Bench {
        settings: &settings,
        root: &root,
        logs: &logs,
        jar: &jar,
        python: &python,
        bookings,
        phase_a: &phase_a,
        phase_b: &phase_b,
    };
    let mut results: BTreeMap<Runner, Vec<Measured>> = BTreeMap::new();
    for round in 0..rounds {
        // In turns: each round starts one runner later, so none always meets the freshest broker.
        for i in 0..order.len() {
            let runner = order[(i + round) % order.len()];
            let prefix = format!("peers-{nanos}-{round}-{i}.");
            let m = match runner {
                Runner::Ceiling => bench.ceiling(&prefix)?,
                _ => bench.saga(runner, &prefix)?,
            };
            println!(
                "round {}  {:<18} {:>9.0} events/s  peak RSS {:>7} KiB  {:>6.3} CPU s per 1,000 events",
                round + 1,
                runner.name(),
                m.events_per_s,
                m.peak_rss_kib,
                m.cpu_s_per_1000
            );
            results.entry(runner).or_default().push(m);
        }
    }

    let median = |r: Runner, f: fn(&Measured) -> f64| {
        let mut v: Vec<f64> = results[&r].iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rate = |r: Runner| median(r, |m| m.events_per_s);
    println!("\nmedians over {rounds} rounds of {bookings} bookings");
    let mut report = serde_json::json!({"bookings": bookings, "rounds": rounds, "inputs": total});
    for &r in &order {
        println!(
            "{:<18} {:>9.0} events/s  {:>5.2} of the ceiling  peak RSS {:>7.0} KiB  {:>6.3} CPU s per 1,000 events",
            r.name(),
            rate(r),
            rate(r) / rate(Runner::Ceiling),
            median(r, |m| m.peak_rss_kib as f64),
            median(r, |m| m.cpu_s_per_1000)
        );
        report[r.name()] = serde_json::json!({
            "events_per_s": rate(r).round(),
            "ratio_to_ceiling": (rate(r) / rate(Runner::Ceiling) * 100.0).round() / 100.0,
            "peak_rss_kib": median(r, |m| m.peak_rss_kib as f64),
            "cpu_s_per_1000_events": (median(r, |m| m.cpu_s_per_1000) * 1000.0).round() / 1000.0,
            "rounds_events_per_s": results[&r].iter().map(|m| m.events_per_s.round()).collect::<Vec<_>>(),
        });
    }
    for (peer, goal, field) in
        [(Runner::KafkaStreams, 1.5, "sagastream_to_kafka_streams"), (Runner::Quix, 3.0, "sagastream_to_quix")]
            .into_iter()
            .filter(|(peer, _, _)| order.contains(peer))
    {
        let vs = rate(Runner::Sagastream) / rate(peer);
        println!("sagastream / {:<13} {vs:>9.2}  (goal ≥ {goal})", peer.name());
        report[field] = serde_json::json!((vs * 100.0).round() / 100.0);
    }
    // Latency under load: sagastream at half the rate it reached above.
    let seconds = env("SAGASTREAM_BENCH_LATENCY_SECONDS", 30) as u64;
    if seconds > 0 {
        // A fixed rate compares builds on one footing; the goal's is half the measured maximum.
        let half = match env("SAGASTREAM_BENCH_LATENCY_RATE", 0) {
            0 => rate(Runner::Sagastream) / 2.0,
            fixed => fixed as f64,
        };
        let l = latency::measure(&settings, &root, &logs, &format!("peers-{nanos}-latency."), half, seconds)?;
        println!(
            "\nlatency at half the maximum rate ({:.0} inputs/s asked, {:.0} kept, {} inputs, {} outputs measured \
             after a warm-up, commit interval 100 ms): p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms  (goal: p99 ≤ 250 ms)",
            l.target_per_s, l.achieved_per_s, l.inputs, l.outputs, l.p50_ms, l.p99_ms, l.max_ms
        );
        println!(
            "  {:.0} transactions ({:.0} committed early as held back, {:.0} as read back), {:.0} inputs let go \
             after the idle limit",
            l.transactions, l.held_back, l.read_back, l.let_go_idle
        );
        for (kind, (p50, p99, max)) in &l.by_type {
            println!("  {kind:<36} p50 {p50:>5.0} ms  p99 {p99:>5.0} ms  max {max:>5.0} ms");
        }
        report["latency"] = serde_json::json!({
            "inputs_per_s": l.achieved_per_s.round(),
            "inputs": l.inputs,
            "outputs": l.outputs,
            "p50_ms": l.p50_ms.round(),
            "p99_ms": l.p99_ms.round(),
            "max_ms": l.max_ms.round(),
            "transactions": l.transactions,
            "early_commits_held_back": l.held_back,
            "early_commits_read_back": l.read_back,
            "let_go_idle": l.let_go_idle,
        });
    }
    std::fs::write(logs.join("peers.json"), serde_json::to_string_pretty(&report)?)?;
    println!("report: {}", logs.join("peers.json").display());
    Ok(())
}

/// What every round runs on: the broker, the records, the peer's jar.
struct Bench<'a> {
    settings: &'a ClientSettings,
    root: &'a std::path::Path,
    logs: &'a std::path::Path,
    jar: &'a std::path::Path,
    python: &'a std::path::Path,
    bookings: usize,
    phase_a: &'a Inputs,
    phase_b: &'a Inputs,
}

impl Bench<'_> {
    fn inputs(&self) -> usize {
        self.phase_a.len() + self.phase_b.len()
    }

    /// Fresh topics under `prefix`, phase A on them.
    fn fresh(&self, prefix: &str) -> anyhow::Result<()> {
        tokio::runtime::Runtime::new()?.block_on(apply_topics(self.settings, self.root, prefix))?;
        produce(self.settings, &|t: &str| format!("{prefix}{t}"), self.phase_a)
    }

    /// The ceiling: the bench's own transactional copy loop over the same
    /// records (its CPU is this process's, which does nothing else meanwhile).
    fn ceiling(&self, prefix: &str) -> anyhow::Result<Measured> {
        let name = |t: &str| format!("{prefix}{t}");
        self.fresh(prefix)?;
        produce(self.settings, &name, self.phase_b)?;
        let n = self.inputs();
        let me = std::process::id();
        let cpu = cpu_seconds(me)?;
        let inputs = [name("booking.events"), name("payment.events")];
        let took = copy_loop(self.settings, &name("ceiling-copy"), &inputs, &name("probe.events"), n)?;
        Ok(Measured {
            events_per_s: n as f64 / took.as_secs_f64(),
            peak_rss_kib: 0,
            cpu_s_per_1000: (cpu_seconds(me)? - cpu) / n as f64 * 1000.0,
        })
    }

    /// One saga run: phase A produced, the runner started and timed until
    /// its group committed phase A, then phase B produced and timed the same way.
    fn saga(&self, runner: Runner, prefix: &str) -> anyhow::Result<Measured> {
        let name = |t: &str| format!("{prefix}{t}");
        self.fresh(prefix)?;
        let mut running: Running = match runner {
            Runner::Sagastream => runners::sagastream::start(self.settings, prefix, self.logs)?,
            Runner::KafkaStreams => runners::kstreams::start(self.settings, self.jar, prefix, self.logs)?,
            Runner::Quix => runners::quix::start(self.settings, self.python, self.root, prefix, self.logs)?,
            Runner::Ceiling => unreachable!("the ceiling is no saga"),
        };
        let span = Span::start(running.pid())?;
        let started = Instant::now();
        wait_committed(self.settings, &running.group, &name("booking.events"), LIMIT, &mut running.child)?;
        produce(self.settings, &name, self.phase_b)?;
        wait_committed(self.settings, &running.group, &name("payment.events"), LIMIT, &mut running.child)?;
        let took = started.elapsed();
        let (_, cpu) = span.end()?;
        let peak = peak_rss_kib(running.pid())?;
        running.stop();
        check_outputs(self.settings, prefix, self.bookings, runner.name())?;
        let n = self.inputs() as f64;
        Ok(Measured { events_per_s: n / took.as_secs_f64(), peak_rss_kib: peak, cpu_s_per_1000: cpu / n * 1000.0 })
    }
}
