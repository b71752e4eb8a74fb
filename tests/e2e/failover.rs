//! The escrow saga under churn and broker failure, strictly on Apache Kafka:
//! the real saga, simulator and load generator as processes. Rebalance
//! churn: 20,000 bookings while instances go 1 → 3 → 1. Broker failover: on
//! a three-node cluster of the test's own, kill -9 the leader of saga input
//! and changelog partitions mid-run; every outcome still as expected.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use sagastream_e2e::probe::{binary, free_port, prefix, sum_metric, Probe};
use sagastream_e2e::sim::{log_file, sim_on, wait, Guard};
use sagastream_e2e::{apply_topics_on, bootstrap, Cluster};
use sagastream_kafka::ClientSettings;

use crate::escrow::check;

/// Long enough to outlast a rebalance or a leader election (timers are
/// wall-clock, due from event time).
const SAGA_FLAGS: &[&str] =
    &["--hold-timeout", "60s", "--auto-confirm-after", "3s", "--stuck-after", "5m", "--commit-interval", "50ms"];

/// The two heaviest tests of the suite (20,000 bookings; a three-node
/// cluster of their own) take turns: run together on two cores they starved
/// the brokers' controllers for seconds, long enough to fence a live broker.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy_turn() -> std::sync::MutexGuard<'static, ()> {
    // A panicking holder poisons the lock; the next test may still run.
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn saga_bin() -> PathBuf {
    binary("sagastream-escrow-saga", "sagastream-escrow-saga")
}

fn processed(instances: &[&Probe]) -> f64 {
    instances.iter().map(|p| p.metric("sagastream_events_processed_total")).sum()
}

/// Starts the load generator; returns it with its log and report paths.
fn load(bootstrap: &str, prefix: &str, run: &str, bookings: &str, metrics: &[String]) -> (Guard, PathBuf, PathBuf) {
    let (_, report) = log_file(prefix, &format!("{run}-report"));
    let report = report.with_extension("json");
    let mut args = vec!["load", "-n", bookings, "--run-id", run, "--max-in-flight", "600", "--settle-timeout", "180s"];
    for m in metrics {
        args.extend(["--saga-metrics", m.as_str()]);
    }
    args.extend(["--report", report.to_str().unwrap(), "--quiet"]);
    let (load, log) = sim_on(bootstrap, prefix, &args, &format!("{run}-load"));
    (load, log, report)
}

fn finish(mut load: Guard, log: &std::path::Path, report: &std::path::Path, sim_log: &std::path::Path, n: u64) {
    let status = wait(&mut load.0, Duration::from_secs(900), log);
    let text = std::fs::read_to_string(log).unwrap_or_default();
    println!("{text}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(report).unwrap_or_else(|e| panic!("no report ({e}); log:\n{text}")),
    )
    .unwrap();
    check("load", &report, &text, sim_log, n);
    assert!(status.success(), "the load generator's verdict is a failure:\n{text}");
}

#[test]
fn rebalance_churn_1_3_1_instances_over_20000_bookings_keeps_every_outcome_and_no_duplicate() {
    let _turn = heavy_turn();
    let prefix = prefix("churn");
    let cluster = bootstrap();
    tokio::runtime::Runtime::new().unwrap().block_on(apply_topics_on(cluster, &prefix));
    let ports = [free_port(), free_port(), free_port()];
    let start = |i: usize| Probe::start_on(cluster, &saga_bin(), &prefix, &format!("saga-{i}"), ports[i], SAGA_FLAGS);
    let mut first = start(0);
    first.wait_ready(Duration::from_secs(90));
    let (mut participants, sim_log) =
        sim_on(cluster, &prefix, &["serve", "--latency", "10ms", "--group", "e2e-sim"], "sim");
    let metrics: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}/metrics")).collect();
    let (mut load, log, report) = load(cluster, &prefix, "churn", "20000", &metrics[..1]);

    // 1 → 3 once about a sixth of the ~120,000 inputs are processed.
    let mut helpers =
        [("the load generator", &mut load, log.as_path()), ("the simulator", &mut participants, sim_log.as_path())];
    first.wait_metrics_beside("a sixth processed", Duration::from_secs(300), &mut helpers, |m| {
        sum_metric(m, "sagastream_events_processed_total") >= 20_000.0
    });
    let grown = Instant::now();
    let mut second = start(1);
    let mut third = start(2);
    for p in [&mut second, &mut third] {
        p.wait_metrics("owns partitions", Duration::from_secs(120), |m| {
            sum_metric(m, "sagastream_assigned_partitions") > 0.0
        });
    }
    for p in [&mut first, &mut second, &mut third] {
        p.wait_ready(Duration::from_secs(120));
    }
    let owned: f64 = [&first, &second, &third].iter().map(|p| p.metric("sagastream_assigned_partitions")).sum();
    assert_eq!(owned, 6.0, "the three instances share the six partitions");
    println!("1 -> 3 instances: all three ready {:?} after the scale-up", grown.elapsed());

    // 3 → 1 after another third of the run, by SIGTERM.
    let at = processed(&[&first, &second, &third]);
    let deadline = Instant::now() + Duration::from_secs(300);
    while processed(&[&first, &second, &third]) < at + 40_000.0 {
        assert!(Instant::now() < deadline, "another third not processed within 300 s");
        for (name, guard, log) in helpers.iter_mut() {
            guard.assert_running(name, log);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let shrunk = Instant::now();
    for p in [&mut second, &mut third] {
        let status = p.terminate(Duration::from_secs(60));
        assert!(status.success(), "{}: SIGTERM exits cleanly: {status}", p.name);
    }
    first.wait_metrics("the first owns all again", Duration::from_secs(120), |m| {
        sum_metric(m, "sagastream_assigned_partitions") == 6.0
    });
    first.wait_ready(Duration::from_secs(120));
    println!("3 -> 1 instances: the first owns all six again {:?} after the scale-down", shrunk.elapsed());

    finish(load, &log, &report, &sim_log, 20_000);
    assert!(first.terminate(Duration::from_secs(60)).success());
}

/// The node that leads most of the given partitions, and the partitions it leads.
fn busiest_leader(bootstrap: &str, topics: &[String]) -> (i32, Vec<String>) {
    let consumer: BaseConsumer = ClientSettings::new(bootstrap, "e2e-leaders").base().create().unwrap();
    let mut led: std::collections::BTreeMap<i32, Vec<String>> = std::collections::BTreeMap::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
        for p in metadata.topics()[0].partitions() {
            led.entry(p.leader()).or_default().push(format!("{topic}[{}]", p.id()));
        }
    }
    led.into_iter().max_by_key(|(_, ps)| ps.len()).expect("partitions have leaders")
}

#[test]
fn broker_failover_kill_9_of_the_leader_mid_run_loses_and_duplicates_nothing() {
    let _turn = heavy_turn();
    let port: u16 = std::env::var("SAGASTREAM_E2E_CLUSTER_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(19192);
    let cluster = Cluster::start(3, port);
    let bootstrap = cluster.bootstrap.as_str();
    let prefix = prefix("failover");
    let topics = tokio::runtime::Runtime::new().unwrap().block_on(apply_topics_on(bootstrap, &prefix));
    assert!(topics.topics.iter().all(|t| t.replication_factor == 3), "three replicas of every topic");
    let metrics_port = free_port();
    let mut saga = Probe::start_on(bootstrap, &saga_bin(), &prefix, "saga-0", metrics_port, SAGA_FLAGS);
    saga.wait_ready(Duration::from_secs(120));
    let (mut participants, sim_log) =
        sim_on(bootstrap, &prefix, &["serve", "--latency", "10ms", "--group", "e2e-sim"], "sim");
    let metrics = vec![format!("http://127.0.0.1:{metrics_port}/metrics")];
    let (mut load, log, report) = load(bootstrap, &prefix, "failover", "3000", &metrics);

    let mut helpers =
        [("the load generator", &mut load, log.as_path()), ("the simulator", &mut participants, sim_log.as_path())];
    saga.wait_metrics_beside("a third processed", Duration::from_secs(300), &mut helpers, |m| {
        sum_metric(m, "sagastream_events_processed_total") >= 6_000.0
    });
    let watched: Vec<String> =
        ["booking.events", "payment.events", "escrow.saga.changelog"].iter().map(|t| format!("{prefix}{t}")).collect();
    let (node, led) = busiest_leader(bootstrap, &watched);
    let committed = |p: &Probe| p.metric("sagastream_transactions_total{result=\"committed\"}");
    let before = committed(&saga);
    cluster.kill(node);
    let killed = Instant::now();
    // The pause: from the kill until transactions commit again.
    saga.wait_metrics_beside("a transaction committed after the kill", Duration::from_secs(120), &mut helpers, |m| {
        sum_metric(m, "sagastream_transactions_total{result=\"committed\"}") > before + 1.0
    });
    let pause = killed.elapsed();
    let (new_node, _) = busiest_leader(bootstrap, &watched[..1]);
    assert_ne!(new_node, node, "another node leads after the election");
    finish(load, &log, &report, &sim_log, 3_000);
    let m = saga.metrics();
    println!(
        "broker failover: killed node {node}, leader of {} partitions ({}); transactions committed again {pause:?} \
         after the kill; {} transient error(s) retried, {} producer(s) renewed, {} transaction(s) aborted; \
         3000/3000 bookings as expected",
        led.len(),
        led.join(", "),
        sum_metric(&m, "sagastream_errors_total{kind=\"transient\"}") + 0.0,
        sum_metric(&m, "sagastream_errors_total{kind=\"producer_renewed\"}") + 0.0,
        sum_metric(&m, "sagastream_transactions_total{result=\"aborted\"}") + 0.0,
    );
    // Leaving the group can wait out librdkafka's 60 s socket timeout on a
    // request to the dead node (seen here); the stop still commits and exits 0.
    let stopping = Instant::now();
    assert!(saga.terminate(Duration::from_secs(120)).success(), "the saga survived the failover and stops cleanly");
    println!("broker failover: SIGTERM to exit took {:?}", stopping.elapsed());
}
