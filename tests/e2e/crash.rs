//! Crashes, hangs and compaction on Apache Kafka, strictly: the real
//! `sagastream-probe` as processes, every figure exact. A kill -9 of one of
//! two instances (its partitions move to the survivor, another
//! transactional.id), a hung instance (SIGSTOP past the transaction timeout,
//! then SIGCONT), and a compacted changelog that a restore reads in about one
//! record per key.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, AlterConfig, ResourceSpecifier};
use sagastream_contract::{decode, Payload};
use sagastream_e2e::probe::{prefix, produce, read_topic, sum_metric, Probe};
use sagastream_e2e::{apply_topics, java_partition, settings};
use sagastream_kafka::admin::admin_client;

use crate::runtime::{
    assert_effectively_once, batch, deduplicate, input_topic, online, read_outputs, total, Expected, READ, READY,
};

fn assigned(p: &Probe) -> f64 {
    p.metric("sagastream_assigned_partitions")
}

/// Records in the aborted transactions of a topic: read_uncommitted minus read_committed.
fn aborted(prefix: &str, committed: usize) -> usize {
    read_topic(&format!("{prefix}probe.events"), false, committed + 1, READ).len() - committed
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_one_of_two_instances_moves_its_partitions_to_the_survivor_without_duplicates() {
    let prefix = prefix("survivor");
    apply_topics(&prefix).await;
    let mut expected = Expected::new();
    let mut survivor = Probe::start(&prefix, "probe-0", &[]);
    survivor.wait_ready(READY);
    // The victim hangs with its transaction open after 60 outputs, flushed.
    let mut victim =
        Probe::start(&prefix, "probe-1", &["--commit-max-records", "20", "--test-hang-after-outputs", "60"]);
    victim.wait_metrics("the victim owns partitions", READY, |m| sum_metric(m, "sagastream_assigned_partitions") > 0.0);
    survivor
        .wait_metrics("the survivor gave some up", READY, |m| sum_metric(m, "sagastream_assigned_partitions") < 6.0);
    survivor.wait_ready(READY);
    victim.wait_ready(READY);
    assert_eq!(assigned(&survivor) + assigned(&victim), 6.0);

    produce(&input_topic(&prefix), &batch("a", 24, 10, &mut expected), None);
    victim.wait_log("hanging with the transaction open", READ);
    victim.kill9();
    let killed = Instant::now();

    // No leave-group: the survivor gets the partitions once the victim's
    // session times out, then waits for the offsets its open transaction
    // holds, which the broker aborts within the victim's transaction timeout.
    survivor.wait_metrics("the survivor owns all six", Duration::from_secs(120), |m| {
        sum_metric(m, "sagastream_assigned_partitions") == 6.0
    });
    survivor.wait_ready(READY);
    let moved_after = killed.elapsed();
    let waited = survivor.metric("sagastream_committed_offsets_wait_seconds");
    let outputs = read_outputs(&prefix, total(&expected));
    assert_effectively_once(&outputs, &expected, "kill -9 of one of two");
    let aborted = aborted(&prefix, outputs.len());
    assert!(aborted > 0, "the victim's open transaction had outputs in the log, all aborted");
    assert!(
        waited <= 15.0,
        "the survivor waited {waited} s for the offsets: about the transaction timeout (10 s) at most"
    );
    println!(
        "kill -9 of one of two: {} outputs read_committed, 0 duplicates, {aborted} aborted outputs of the victim \
         never visible; partitions moved and restored {moved_after:?} after the kill; offsets wait {waited:.2} s; \
         the survivor restored {} changelog records",
        outputs.len(),
        survivor.metric("sagastream_restored_records_total"),
    );
    assert!(survivor.terminate(Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_instance_is_aborted_by_the_broker_then_renews_its_producer_without_duplicates() {
    let prefix = prefix("hung");
    apply_topics(&prefix).await;
    let mut expected = Expected::new();
    // Long commit interval: after processing a batch the transaction stays
    // open for seconds, which is when the test stops the process.
    let flags = ["--commit-interval", "4s"];
    let mut probe = Probe::start(&prefix, "probe-0", &flags);
    probe.wait_ready(READY);
    produce(&input_topic(&prefix), &batch("a", 12, 10, &mut expected), None);
    probe.wait_metrics("first transaction committed", READ, |m| {
        sum_metric(m, "sagastream_transactions_total{result=\"committed\"}") >= 1.0
    });
    let before = read_outputs(&prefix, 120).len();
    assert_eq!(before, 120);

    produce(&input_topic(&prefix), &batch("b", 12, 10, &mut expected), None);
    probe.wait_metrics("the second batch processed, its transaction open", READ, |m| {
        sum_metric(m, "sagastream_events_processed_total") >= 240.0
    });
    probe.signal("-STOP");
    let stopped = Instant::now();
    // The open transaction's outputs are in the log, invisible read_committed.
    let in_log = read_topic(&format!("{prefix}probe.events"), false, 240, READ).len();
    assert_eq!(in_log, 240, "the open transaction's 120 outputs reached the log");
    assert_eq!(read_outputs(&prefix, 120).len(), 120, "read_committed shows only the committed transaction");
    // The broker aborts the transaction once it outlives its timeout: the
    // abort markers end it, and read_committed readers move past it.
    let topic = format!("{prefix}probe.events");
    let watermark = || -> i64 {
        let consumer: rdkafka::consumer::BaseConsumer = settings("e2e-hwm").base().create().unwrap();
        (0..6).map(|p| rdkafka::consumer::Consumer::fetch_watermarks(&consumer, &topic, p, READ).unwrap().1).sum()
    };
    let high_stopped = watermark();
    let deadline = Instant::now() + Duration::from_secs(60);
    while watermark() == high_stopped {
        assert!(Instant::now() < deadline, "the broker did not abort the hung instance's transaction within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let aborted_after = stopped.elapsed();
    probe.signal("-CONT");
    // The instance finds its producer fenced for a transaction older than the
    // timeout, starts a fresh one, rewinds and processes the batch again.
    let outputs = read_outputs(&prefix, total(&expected));
    assert_effectively_once(&outputs, &expected, "hung instance");
    probe.wait_metrics("the fresh producer committed", READ, |m| {
        sum_metric(m, "sagastream_errors_total{kind=\"producer_renewed\"}") == 1.0
    });
    let log = probe.log_text();
    let line = log.lines().find(|l| l.contains("outlived the transaction timeout")).unwrap_or_else(|| panic!("{log}"));
    println!(
        "hung instance: SIGSTOP with 120 outputs in an open transaction; the broker aborted it {aborted_after:?} \
         after the stop (timeout 10 s); after SIGCONT it renewed its producer and went on: {} outputs, 0 \
         duplicates; its line: {line}",
        outputs.len()
    );
    assert!(probe.terminate(Duration::from_secs(30)).success());
}

const KEYS: usize = 1_000;
const UPDATES: usize = 100;

#[tokio::test(flavor = "multi_thread")]
async fn a_compacted_changelog_restores_in_about_one_record_per_key() {
    let prefix = prefix("compact");
    apply_topics(&prefix).await;
    // Test-only settings on this run's changelog: short segments and a low
    // dirty ratio, so the broker's cleaner compacts within seconds.
    let changelog = format!("{prefix}probe.changelog");
    let admin = admin_client(&settings("e2e-admin")).unwrap();
    let config = AlterConfig::new(ResourceSpecifier::Topic(&changelog))
        .set("cleanup.policy", "compact")
        .set("segment.ms", "1000")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("min.compaction.lag.ms", "0");
    for r in admin.alter_configs([&config], &AdminOptions::new()).await.unwrap() {
        r.unwrap_or_else(|e| panic!("altering {changelog}: {e:?}"));
    }
    let mut probe = Probe::start(&prefix, "probe-0", &["--commit-max-records", "2000"]);
    probe.wait_ready(READY);
    // One update per key per round, each round committed before the next,
    // so every key gets a changelog record per round.
    let mut expected = Expected::new();
    let written = |p: &Probe| p.metric("sagastream_records_produced_total{topic=\"probe.changelog\"}");
    for round in 0..UPDATES {
        produce(&input_topic(&prefix), &batch(&format!("r{round}"), KEYS, 1, &mut expected), None);
        probe.wait_metrics("the round's changelog records committed", READ, |m| {
            sum_metric(m, "sagastream_records_produced_total{topic=\"probe.changelog\"}") >= ((round + 1) * KEYS) as f64
        });
    }
    let before = written(&probe);
    assert!(before >= (KEYS * UPDATES) as f64, "{before} changelog records written");
    assert!(probe.terminate(Duration::from_secs(30)).success());
    // One more record per partition, after the segment age, rolls each
    // partition's last full segment, so the cleaner may compact everything
    // written above.
    std::thread::sleep(Duration::from_millis(1100));
    let mut rollers: BTreeMap<i32, String> = BTreeMap::new();
    for k in 0..KEYS {
        let key = format!("runner-{k}");
        rollers.entry(java_partition(key.as_bytes(), 6)).or_insert(key);
    }
    assert_eq!(rollers.len(), 6);
    let roll: Vec<_> = rollers
        .values()
        .map(|key| {
            let id = format!("roll-{key}-{}", uuid::Uuid::new_v4().simple());
            expected.entry(key.clone()).or_default().push(id.clone());
            online(key, &id, None)
        })
        .collect();
    let mut probe = Probe::start(&prefix, "probe-0", &[]);
    probe.wait_ready(READY);
    produce(&input_topic(&prefix), &roll, None);
    probe.wait_metrics("the roll records committed", READ, |m| {
        sum_metric(m, "sagastream_records_produced_total{topic=\"probe.changelog\"}") >= 6.0
    });
    assert!(probe.terminate(Duration::from_secs(30)).success());

    let deadline = Instant::now() + Duration::from_secs(120);
    let after = loop {
        let n = read_topic(&changelog, true, 1, READ).len();
        if n <= KEYS + KEYS / 10 {
            break n;
        }
        assert!(Instant::now() < deadline, "the changelog still holds {n} records after 120 s: not compacted");
        std::thread::sleep(Duration::from_millis(500));
    };

    let started = Instant::now();
    let mut probe = Probe::start(&prefix, "probe-0", &[]);
    probe.wait_ready(READY);
    let restore_took = started.elapsed();
    let m = probe.metrics();
    let restored = sum_metric(&m, "sagastream_restored_records_total");
    assert_eq!(sum_metric(&m, "sagastream_state_entries"), KEYS as f64, "every key restored");
    assert!(restored >= KEYS as f64 && restored <= (KEYS + KEYS / 10) as f64, "restore read {restored} records");
    // The restored counts are the real ones: each key's next input is its 101st.
    produce(&input_topic(&prefix), &batch("last", KEYS, 1, &mut expected), None);
    let outputs = read_outputs(&prefix, total(&expected));
    let (unique, duplicates) = deduplicate(&outputs);
    assert_eq!(duplicates, 0);
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for c in &unique {
        if let Payload::ProbeCounted(p) = decode(&c.record).unwrap().event.data {
            if p.input_id.starts_with("last-") {
                last.insert(p.aggregate_id, p.count);
            }
        }
    }
    assert_eq!(last.len(), KEYS);
    for (key, count) in &last {
        let rolled = rollers.values().any(|r| r == key);
        let want = UPDATES as u64 + 1 + u64::from(rolled);
        assert_eq!(*count, want, "{key}: the restored count is exact");
    }
    println!(
        "compaction: {KEYS} keys x {UPDATES} updates: {before} changelog records written, {after} after compaction; \
         the restore read {restored} records in {restore_took:?} (process start to ready)"
    );
    assert!(probe.terminate(Duration::from_secs(30)).success());
}
