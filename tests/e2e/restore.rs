//! Restores, end to end with `sagastream-probe`: a clean stop leaves a
//! local snapshot that the next start reads instead of the changelog (and
//! a crash after it reads only the changelog written since), a snapshot
//! that does not check out is refused for the changelog, and a restore slower
//! than `max.poll.interval.ms` neither costs the instance its group
//! membership nor holds up the partitions it already runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sagastream_e2e::probe::{prefix, produce, sum_metric, Probe};
use sagastream_e2e::{apply_topics, repo_root};
use sagastream_kafka::java_partition;

use crate::runtime::{assert_exactly_once, batch, input_topic, online, read_outputs, Expected, READ, READY};

/// A fresh state directory for one test.
fn state_dir(prefix: &str) -> PathBuf {
    let dir = repo_root().join(".local/e2e/state").join(prefix.trim_end_matches('.'));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The snapshot files of the probe's changelog, by partition.
fn snapshots(dir: &Path, prefix: &str) -> Vec<(i32, PathBuf)> {
    let topic_dir = dir.join(format!("{prefix}probe.changelog"));
    let mut out: Vec<(i32, PathBuf)> = std::fs::read_dir(&topic_dir)
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let path = e.ok()?.path();
                    let p = path.file_name()?.to_str()?.strip_suffix(".snapshot")?.parse().ok()?;
                    Some((p, path))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A probe with a state directory: flags (`--state-dir` and `extra`).
struct WithState {
    prefix: String,
    dir: PathBuf,
    flags: Vec<String>,
}

impl WithState {
    async fn new(test: &str, extra: &[&str]) -> WithState {
        let prefix = prefix(test);
        apply_topics(&prefix).await;
        let dir = state_dir(&prefix);
        let mut flags = vec!["--state-dir".to_owned(), dir.to_str().unwrap().to_owned()];
        flags.extend(extra.iter().map(|f| f.to_string()));
        WithState { prefix, dir, flags }
    }

    fn start(&self) -> Probe {
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        let mut probe = Probe::start(&self.prefix, "probe-0", &flags);
        probe.wait_ready(READY);
        probe
    }

    /// A first run: `per_key` inputs for each of 12 keys, every output
    /// read, then SIGTERM; its snapshots and its log.
    fn first_run(&self, per_key: usize, expected: &mut Expected) -> (Vec<(i32, PathBuf)>, String) {
        let mut probe = self.start();
        produce(&input_topic(&self.prefix), &batch("a", 12, per_key, expected), None);
        assert_eq!(read_outputs(&self.prefix, 12 * per_key).len(), 12 * per_key);
        assert!(probe.terminate(Duration::from_secs(30)).success());
        (snapshots(&self.dir, &self.prefix), probe.log_text())
    }
}

/// Partitions of the probe's input that `keys` keys `runner-0..` land on.
fn partitions_of(keys: usize) -> std::collections::BTreeSet<i32> {
    (0..keys).map(|k| java_partition(format!("runner-{k}").as_bytes(), 6)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_stop_leaves_a_snapshot_the_next_start_reads_instead_of_the_changelog() {
    // A dead member leaves the group after this, not librdkafka's 45 s.
    let run = WithState::new("snapshot", &["-X", "consumer.session.timeout.ms=6000"]).await;
    let prefix = &run.prefix;
    let mut expected = Expected::new();
    let (files, log) = run.first_run(10, &mut expected);
    let with_state = partitions_of(12);
    assert_eq!(
        files.iter().map(|(p, _)| *p).collect::<std::collections::BTreeSet<_>>(),
        with_state,
        "one snapshot per partition with state, none for an empty changelog"
    );
    assert!(log.contains("state snapshots written"));

    // A clean restart: the snapshots stand in for the whole changelog.
    let mut probe = run.start();
    let m = probe.metrics();
    assert_eq!(sum_metric(&m, "sagastream_restores_total{kind=\"snapshot\"}"), files.len() as f64, "{m}");
    assert_eq!(sum_metric(&m, "sagastream_state_snapshots_total{result=\"used\"}"), files.len() as f64);
    assert_eq!(sum_metric(&m, "sagastream_state_snapshots_total{result=\"rejected\"}"), 0.0);
    assert_eq!(sum_metric(&m, "sagastream_restored_records_total"), 0.0, "no changelog record read: {m}");
    assert_eq!(sum_metric(&m, "sagastream_state_entries"), 12.0);
    // The counts go on from the snapshot's state: 11 is the next after 10.
    produce(&input_topic(prefix), &batch("b", 12, 5, &mut expected), None);
    assert_exactly_once(&read_outputs(prefix, 180), &expected);

    // A crash after it: no new snapshot, the old one and the changelog
    // written since (batch b's records) make the state.
    probe.kill9();
    let mut probe = run.start();
    let m = probe.metrics();
    assert_eq!(sum_metric(&m, "sagastream_restores_total{kind=\"snapshot\"}"), files.len() as f64, "{m}");
    let tail = sum_metric(&m, "sagastream_restored_records_total");
    assert!(tail >= 12.0, "batch b's changelog records were read on top of the snapshot: {m}");
    produce(&input_topic(prefix), &batch("c", 12, 5, &mut expected), None);
    assert_exactly_once(&read_outputs(prefix, 240), &expected);
    assert!(probe.terminate(Duration::from_secs(30)).success());
    println!(
        "clean restart: {} partitions from snapshots, 0 changelog records; after a crash: {tail} records",
        files.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_that_does_not_check_out_is_refused_for_the_changelog() {
    let run = WithState::new("badsnap", &[]).await;
    let prefix = &run.prefix;
    let mut expected = Expected::new();
    let (files, _) = run.first_run(4, &mut expected);
    assert!(files.len() >= 3, "keys on at least three partitions: {files:?}");

    // One damaged, one cut short, one another partition's.
    let mut bytes = std::fs::read(&files[0].1).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&files[0].1, bytes).unwrap();
    let bytes = std::fs::read(&files[1].1).unwrap();
    std::fs::write(&files[1].1, &bytes[..bytes.len() - 100]).unwrap();
    std::fs::copy(&files[0].1, &files[2].1).unwrap();

    let mut probe = run.start();
    let m = probe.metrics();
    assert_eq!(sum_metric(&m, "sagastream_state_snapshots_total{result=\"rejected\"}"), 3.0, "{m}");
    assert_eq!(sum_metric(&m, "sagastream_restores_total{kind=\"snapshot\"}"), files.len() as f64 - 3.0);
    assert!(sum_metric(&m, "sagastream_restored_records_total") > 0.0, "the three came from the changelog");
    let log = probe.log_text();
    assert_eq!(log.matches("state snapshot not used").count(), 3, "one line per refusal, with its reason:\n{log}");
    assert!(log.contains("holds"), "the copy is refused as another partition's:\n{log}");
    // And the state is right all the same.
    produce(&input_topic(prefix), &batch("b", 12, 3, &mut expected), None);
    assert_exactly_once(&read_outputs(prefix, 84), &expected);
    assert!(probe.terminate(Duration::from_secs(30)).success());
}

/// Keys of the probe's input on partition `p`, `n` of them.
fn keys_on(p: i32, n: usize) -> Vec<String> {
    (0..).map(|k| format!("slow-{k}")).filter(|k| java_partition(k.as_bytes(), 6) == p).take(n).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_slower_than_the_poll_interval_keeps_the_group_and_the_other_partitions_run() {
    let prefix = prefix("slowrestore");
    apply_topics(&prefix).await;
    let topic = input_topic(&prefix);
    // 400 keys on partition 0: 400 changelog records to read back.
    let slow = keys_on(0, 400);
    let inputs: Vec<_> = slow.iter().enumerate().map(|(i, k)| online(k, &format!("s-{i}"), None)).collect();
    let mut probe = Probe::start(&prefix, "probe-0", &[]);
    probe.wait_ready(READY);
    produce(&topic, &inputs, None);
    assert_eq!(read_outputs(&prefix, 400).len(), 400);
    assert!(probe.terminate(Duration::from_secs(30)).success());

    // 40 ms per changelog record: 16 s of restore, against a 6 s poll
    // interval, with room for a slow machine to show partition 1 running
    // while partition 0 still restores.
    let flags = [
        "--test-restore-record-delay-ms",
        "40",
        "-X",
        "consumer.max.poll.interval.ms=6000",
        "-X",
        "consumer.session.timeout.ms=6000",
    ];
    let started = Instant::now();
    let mut probe = Probe::start(&prefix, "probe-0", &flags);
    probe.wait_metrics("partition 0 restoring", READY, |m| sum_metric(m, "sagastream_restoring_partitions") == 1.0);
    // Partition 1 runs meanwhile: its inputs are answered before partition 0 is back.
    let fast = keys_on(1, 5);
    let fast_inputs: Vec<_> = fast.iter().enumerate().map(|(i, k)| online(k, &format!("f-{i}"), None)).collect();
    produce(&topic, &fast_inputs, None);
    let outputs = read_outputs(&prefix, 405);
    assert_eq!(outputs.len(), 405);
    let m = probe.metrics();
    assert_eq!(sum_metric(&m, "sagastream_restoring_partitions"), 1.0, "partition 0 still restoring: {m}");
    assert_eq!(probe.get("/readyz").map(|r| r.0), Some(503), "not ready while a partition restores");
    assert_eq!(probe.get("/healthz").map(|r| r.0), Some(200), "alive while it restores");

    probe.wait_ready(READ);
    let took = started.elapsed();
    let m = probe.metrics();
    let restore_seconds = sum_metric(&m, "sagastream_restore_duration_seconds{partition=\"0\"}");
    assert!(restore_seconds > 6.0, "the restore outlasted max.poll.interval.ms: {restore_seconds} s");
    // One assignment, six restores: the group never took the partitions away.
    assert_eq!(sum_metric(&m, "sagastream_restores_total"), 6.0, "{m}");
    let log = probe.log_text();
    assert!(!log.contains("maximum poll interval"), "the member never left the group:\n{log}");
    assert!(!log.contains("restore abandoned"), "{log}");
    // Partition 0's state is whole: each slow key counts on from 1.
    let mut expected = Expected::new();
    for (i, k) in slow.iter().enumerate() {
        expected.entry(k.clone()).or_default().push(format!("s-{i}"));
    }
    for (i, k) in fast.iter().enumerate() {
        expected.entry(k.clone()).or_default().push(format!("f-{i}"));
    }
    let more: Vec<_> = slow.iter().take(10).enumerate().map(|(i, k)| online(k, &format!("t-{i}"), None)).collect();
    for (i, k) in slow.iter().take(10).enumerate() {
        expected.entry(k.clone()).or_default().push(format!("t-{i}"));
    }
    produce(&topic, &more, None);
    assert_exactly_once(&read_outputs(&prefix, 415), &expected);
    assert!(probe.terminate(Duration::from_secs(30)).success());
    println!("restore of 400 records at 40 ms each took {restore_seconds:.1} s; ready after {took:?}; no rebalance");
}
