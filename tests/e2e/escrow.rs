//! The escrow saga end to end (issue 4): the real `sagastream-escrow-saga`
//! and the participant simulator run as processes against the broker; the
//! load generator starts 2,000 bookings across the scenario mix and checks
//! every outcome, the money, the commands and the DLQ. Three phases on the
//! same topics: undisturbed, with a SIGTERM restart of the saga mid-run, and
//! with a kill -9 restart mid-run.

use std::path::Path;
use std::time::Duration;

use sagastream_e2e::probe::{binary, free_port, prefix, Probe};
use sagastream_e2e::sim::{log_file, sim, wait};
use sagastream_e2e::{apply_topics, strict_broker};

const BOOKINGS: &str = "2000";
/// Long enough to outlast a restart (timers are wall-clock, due from event time).
const SAGA_FLAGS: &[&str] =
    &["--hold-timeout", "30s", "--auto-confirm-after", "3s", "--stuck-after", "2m", "--commit-interval", "50ms"];

#[derive(Clone, Copy, Debug)]
enum Disruption {
    None,
    Sigterm,
    Kill9,
}

#[test]
fn escrow_saga_outcomes_hold_undisturbed_and_across_sigterm_and_kill9_restarts() {
    let prefix = prefix("escrow");
    tokio::runtime::Runtime::new().unwrap().block_on(apply_topics(&prefix));
    let saga_bin = binary("sagastream-escrow-saga", "sagastream-escrow-saga");
    let port = free_port();
    let mut saga = Probe::start_with(&saga_bin, &prefix, "saga-0", port, SAGA_FLAGS);
    saga.wait_ready(Duration::from_secs(90));
    let (_participants, sim_log) = sim(&prefix, &["serve", "--latency", "10ms", "--group", "e2e-sim"], "sim");
    let metrics = format!("http://127.0.0.1:{port}/metrics");

    for (phase, disruption) in
        [("clean", Disruption::None), ("sigterm", Disruption::Sigterm), ("kill9", Disruption::Kill9)]
    {
        let (_, report) = log_file(&prefix, &format!("{phase}-report"));
        let report = report.with_extension("json");
        let processed_before = saga.metric("sagastream_events_processed_total");
        let args = [
            "load",
            "-n",
            BOOKINGS,
            "--run-id",
            phase,
            "--max-in-flight",
            "400",
            "--settle-timeout",
            "120s",
            "--saga-metrics",
            &metrics,
            "--report",
            report.to_str().unwrap(),
            "--quiet",
        ];
        let (mut load, load_log) = sim(&prefix, &args, &format!("{phase}-load"));
        match disruption {
            Disruption::None => {}
            Disruption::Sigterm | Disruption::Kill9 => {
                // Mid-run: a quarter of the phase's ~12,000 inputs processed.
                saga.wait_metrics("a quarter of the phase processed", Duration::from_secs(180), |m| {
                    sagastream_e2e::probe::sum_metric(m, "sagastream_events_processed_total")
                        >= processed_before + 3_000.0
                });
                if let Disruption::Sigterm = disruption {
                    let status = saga.terminate(Duration::from_secs(60));
                    assert!(status.success(), "SIGTERM exits cleanly: {status}");
                } else {
                    saga.kill9();
                }
                saga = Probe::start_with(&saga_bin, &prefix, "saga-0", port, SAGA_FLAGS);
                saga.wait_ready(Duration::from_secs(90));
            }
        }
        let status = wait(&mut load.0, Duration::from_secs(400), &load_log);
        let text = std::fs::read_to_string(&load_log).unwrap_or_default();
        println!("---- {phase} ({disruption:?})\n{text}");
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{phase}: no report ({e}); log:\n{text}")),
        )
        .unwrap();
        // The local broker shows records of aborted transactions to
        // read_committed readers (docs/local-broker.md): after a kill -9 the
        // simulator may act on a command of the killed transaction next to
        // the re-run's one. A compliant broker (SAGASTREAM_E2E_STRICT_BROKER=1)
        // must show none.
        let leaky = matches!(disruption, Disruption::Kill9) && !strict_broker();
        let tolerated = if leaky { 5 } else { 0 };
        check(phase, &report, &text, &sim_log, tolerated);
        if report["duplicate_commands"] == 0 {
            assert!(status.success(), "{phase}: the load generator's verdict is a failure:\n{text}");
        }
    }
}

fn check(phase: &str, r: &serde_json::Value, text: &str, sim_log: &Path, tolerated_duplicates: u64) {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("{phase}: not a number: {v}"));
    let context = || format!("{phase}:\n{text}\nsimulator log: {}", sim_log.display());
    let problems: Vec<&str> = r["problems"].as_array().unwrap().iter().filter_map(|p| p.as_str()).collect();
    // Bookings a leaked command of the killed transaction reached (only
    // where duplicates are tolerated: the local broker after a kill -9).
    // The simulator may answer the leaked command first, and the saga then
    // refuses that answer as a transition it never asked for and waits for
    // the answer to its own command, which the payment service refuses as
    // a second payout: such a booking ends stuck (escrow.saga.stuck), not
    // terminal. docs/local-broker.md.
    let leaked: std::collections::BTreeSet<&str> =
        problems.iter().filter(|p| p.contains("times with distinct ids")).filter_map(|p| p.split(':').next()).collect();
    let stuck: Vec<&str> =
        problems.iter().filter(|p| p.contains("): no terminal fact")).filter_map(|p| p.split(' ').next()).collect();
    assert!(
        stuck.iter().all(|b| leaked.contains(b)),
        "only a booking a leaked command reached may end without a terminal fact: {stuck:?}; {}",
        context()
    );
    assert_eq!(n(&r["bookings"]), 2_000, "{}", context());
    assert_eq!(n(&r["finished"]), 2_000 - stuck.len() as u64, "every booking reached a terminal fact; {}", context());
    let scenarios = r["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 12, "every scenario of the mix ran; {}", context());
    for row in scenarios {
        assert!(n(&row["bookings"]) > 0);
        assert_eq!(n(&row["wrong"]), 0, "{}: {}", row["scenario"], context());
        assert_eq!(n(&row["as_expected"]) + n(&row["unfinished"]), n(&row["bookings"]), "{}", context());
    }
    assert_eq!(r["money_conserved"], true, "{}", context());
    let duplicates = n(&r["duplicate_commands"]);
    assert!(
        duplicates <= tolerated_duplicates,
        "no step commanded twice (tolerated here: {tolerated_duplicates}, from leaked aborted records); {}",
        context()
    );
    if duplicates > 0 {
        println!(
            "{phase}: {duplicates} command(s) of the killed transaction leaked next to the re-run's \
             ({} booking(s) left stuck by it); money conserved",
            stuck.len()
        );
    }
    let dlq = &r["dlq"];
    assert!(n(&dlq["expected"]) >= 2 * 100, "the mix sent bad records; {}", context());
    assert_eq!(n(&dlq["missing"]), 0, "every bad record is in the DLQ; {}", context());
    assert!(
        n(&dlq["unexpected"]) <= leaked.len() as u64,
        "the DLQ holds exactly the bad records (and, where a command leaked, the refused answer to it); {}",
        context()
    );
    if duplicates == 0 {
        assert_eq!(r["ok"], true, "{}", context());
    }
}
