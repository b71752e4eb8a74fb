//! The escrow saga end to end: the real `sagastream-escrow-saga`
//! and the participant simulator run as processes against the broker; the
//! load generator starts 2,000 bookings across the scenario mix and checks
//! every outcome, the money, the commands and the DLQ. Three phases on the
//! same topics: undisturbed, with a SIGTERM restart of the saga mid-run, and
//! with a kill -9 restart mid-run.

use std::path::Path;
use std::time::Duration;

use sagastream_e2e::apply_topics;
use sagastream_e2e::probe::{binary, free_port, prefix, Probe};
use sagastream_e2e::sim::{log_file, sim, wait};

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
        check(phase, &report, &text, &sim_log, 2_000);
        assert!(status.success(), "{phase}: the load generator's verdict is a failure:\n{text}");
        if let Disruption::None = disruption {
            // booking.completed goes to booking.events, an input of the saga:
            // such a transaction is committed early, not left to hold back
            // whatever was written behind it until the interval is up.
            let early = saga.metric("sagastream_early_commits_total");
            let all = saga.metric("sagastream_transactions_total{result=\"committed\"");
            assert!(early >= 1.0 && early <= all, "{phase}: {early} early commits of {all} transactions");
        }
    }
}

/// Every booking as expected, money conserved, no command or saga output
/// twice (by content or by id), the DLQ exactly the bad records.
pub(crate) fn check(phase: &str, r: &serde_json::Value, text: &str, sim_log: &Path, bookings: u64) {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("{phase}: not a number: {v}"));
    let context = || format!("{phase}:\n{text}\nsimulator log: {}", sim_log.display());
    assert_eq!(n(&r["bookings"]), bookings, "{}", context());
    assert_eq!(n(&r["finished"]), bookings, "every booking reached a terminal fact; {}", context());
    let scenarios = r["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 12, "every scenario of the mix ran; {}", context());
    for row in scenarios {
        assert!(n(&row["bookings"]) > 0);
        assert_eq!(n(&row["wrong"]), 0, "{}: {}", row["scenario"], context());
        assert_eq!(n(&row["as_expected"]), n(&row["bookings"]), "{}", context());
    }
    assert_eq!(r["money_conserved"], true, "{}", context());
    // Apache Kafka aborts the killed instance's open transaction when the
    // restart initialises the same transactional.id: no command of it is
    // ever visible, so not one step is commanded twice.
    assert_eq!(n(&r["duplicate_commands"]), 0, "no step commanded twice; {}", context());
    assert_eq!(n(&r["duplicate_outputs_by_id"]), 0, "no output of the saga seen twice; {}", context());
    let dlq = &r["dlq"];
    assert!(n(&dlq["expected"]) >= bookings / 10, "the mix sent bad records; {}", context());
    assert_eq!(n(&dlq["missing"]), 0, "every bad record is in the DLQ; {}", context());
    assert_eq!(n(&dlq["unexpected"]), 0, "the DLQ holds exactly the bad records; {}", context());
    assert_eq!(r["ok"], true, "{}", context());
}
