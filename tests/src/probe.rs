//! Running `sagastream-probe` as a real process and talking to it: start,
//! wait until ready, read its metrics, SIGTERM or kill -9 it; produce its
//! inputs and read its outputs with real clients.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sagastream_contract::Record;
use sagastream_kafka::{base_record, record_from_message, BOOTSTRAP_ENV};

use crate::{bootstrap, repo_root, settings};

/// Processors that carry the runtime's `test-hooks` feature: the harness
/// builds them with it, so the hidden `--test-*` flags exist.
const HOOKED: [&str; 7] = [
    "sagastream-probe",
    "sagastream-escrow-saga",
    "sagastream-order-saga",
    "sagastream-inventory",
    "sagastream-tracking",
    "sagastream-runner",
    "sagastream-ingest",
];

/// Builds a workspace binary once per test run and returns its path.
pub fn binary(package: &str, name: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    built
        .entry(package.to_owned())
        .or_insert_with(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let features: &[&str] = if HOOKED.contains(&package) { &["--features", "test-hooks"] } else { &[] };
            let status = Command::new(cargo)
                .args(["build", "-q", "-j2", "--locked", "-p", package])
                .args(features)
                .current_dir(repo_root())
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building {package} failed");
            let target =
                std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
            let bin = target.join("debug").join(name);
            assert!(bin.exists(), "{} missing after the build", bin.display());
            bin
        })
        .clone()
}

pub fn probe_binary() -> PathBuf {
    binary("sagastream-probe", "sagastream-probe")
}

/// A unique topic prefix per test and run.
pub fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("e2e-{test}-{}-{}.", std::process::id(), nanos % 1_000_000)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One running probe instance.
pub struct Probe {
    pub name: String,
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
}

impl Probe {
    /// Starts an instance; `extra` are further flags.
    pub fn start(prefix: &str, instance: &str, extra: &[&str]) -> Probe {
        Probe::start_with(&probe_binary(), prefix, instance, free_port(), extra)
    }

    /// Starts an instance of any runtime processor binary, metrics on `port`.
    pub fn start_with(bin: &std::path::Path, prefix: &str, instance: &str, port: u16, extra: &[&str]) -> Probe {
        Probe::start_on(bootstrap(), bin, prefix, instance, port, extra)
    }

    /// [`Probe::start_with`] on a given cluster.
    pub fn start_on(
        bootstrap: &str,
        bin: &std::path::Path,
        prefix: &str,
        instance: &str,
        port: u16,
        extra: &[&str],
    ) -> Probe {
        let dir = repo_root().join(".local/e2e");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join(format!("{prefix}{instance}.log"));
        let mut file = File::options().create(true).append(true).open(&log).unwrap();
        writeln!(file, "---- start {instance} {extra:?}").unwrap();
        let child = Command::new(bin)
            .args(["--instance-id", instance, "--topic-prefix", prefix, "--metrics-addr"])
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .env(BOOTSTRAP_ENV, bootstrap)
            .env("RUST_LOG", "info,sagastream_runtime=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("probe starts");
        Probe { name: instance.into(), child: Some(child), port, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal (`-STOP`, `-CONT`, ...) to the instance.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid().to_string()]).status().expect("kill runs");
        assert!(status.success(), "kill {signal} {}", self.pid());
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        sagastream_testkit::get(&format!("127.0.0.1:{}", self.port), path).map(|r| (r.status, r.body))
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").map(|(_, b)| b).unwrap_or_default()
    }

    /// Sum of every sample of a metric whose line starts with `series`.
    pub fn metric(&self, series: &str) -> f64 {
        sum_metric(&self.metrics(), series)
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            panic!("{} exited with {status}; log: {}\n{}", self.name, self.log.display(), self.log_text());
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until /readyz answers 200 (partitions assigned and restored).
    pub fn wait_ready(&mut self, deadline: Duration) {
        let start = Instant::now();
        loop {
            self.assert_running();
            if matches!(self.get("/readyz"), Some((200, _))) {
                return;
            }
            assert!(
                start.elapsed() < deadline,
                "{} not ready after {deadline:?}; log:\n{}",
                self.name,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the condition on this instance's metrics holds.
    pub fn wait_metrics(&mut self, what: &str, deadline: Duration, cond: impl Fn(&str) -> bool) {
        self.wait_metrics_beside(what, deadline, &mut [], cond)
    }

    /// [`Probe::wait_metrics`] while helper processes (named, with their logs)
    /// must keep running: the wait fails at once, with the helper's log, when
    /// one has exited.
    pub fn wait_metrics_beside(
        &mut self,
        what: &str,
        deadline: Duration,
        helpers: &mut [(&str, &mut crate::sim::Guard, &std::path::Path)],
        cond: impl Fn(&str) -> bool,
    ) {
        let start = Instant::now();
        loop {
            self.assert_running();
            for (name, guard, log) in helpers.iter_mut() {
                guard.assert_running(name, log);
            }
            let m = self.metrics();
            if cond(&m) {
                return;
            }
            if start.elapsed() >= deadline {
                let mut helper_logs = String::new();
                for (name, _, log) in helpers.iter() {
                    let text = std::fs::read_to_string(log).unwrap_or_default();
                    helper_logs.push_str(&format!(
                        "\n---- {name}, last lines of {}:\n{}",
                        log.display(),
                        tail(&text, 40)
                    ));
                }
                panic!(
                    "{}: {what} not reached after {deadline:?}; metrics:\n{m}\n---- last lines of {}:\n{}{helper_logs}",
                    self.name,
                    self.log.display(),
                    tail(&self.log_text(), 120)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until a line of the log contains `needle`.
    pub fn wait_log(&mut self, needle: &str, deadline: Duration) {
        let start = Instant::now();
        while !self.log_text().contains(needle) {
            self.assert_running();
            assert!(start.elapsed() < deadline, "{}: no {needle:?} in the log after {deadline:?}", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status (within the deadline).
    pub fn terminate(&mut self, deadline: Duration) -> ExitStatus {
        let pid = self.pid().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        self.wait_exit(deadline)
    }

    pub fn kill9(&mut self) {
        let pid = self.pid().to_string();
        Command::new("kill").args(["-KILL", &pid]).status().expect("kill runs");
        self.wait_exit(Duration::from_secs(10));
    }

    /// Waits for the process to exit (by itself, or after a signal).
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let start = Instant::now();
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(start.elapsed() < deadline, "{} did not exit within {deadline:?}", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The last `n` lines of a log, for failure messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub use sagastream_testkit::sum_metric;

/// Produces records (in order) and waits for every acknowledgement; with
/// `transactional`, in transactions of `per_txn` records so inputs carry
/// commit markers like a chained processor's output does.
pub fn produce(topic: &str, records: &[Record], transactional: Option<usize>) {
    produce_with(topic, records, transactional, None)
}

/// [`produce`] with every record's Kafka timestamp set, so two runs' inputs
/// are the same bytes to the millisecond.
pub fn produce_at(topic: &str, records: &[Record], timestamp_ms: i64) {
    produce_with(topic, records, None, Some(timestamp_ms))
}

fn produce_with(topic: &str, records: &[Record], transactional: Option<usize>, timestamp_ms: Option<i64>) {
    let mut config: ClientConfig = settings("e2e-producer").producer();
    if transactional.is_some() {
        config.set("transactional.id", format!("e2e-producer-{topic}-{}", std::process::id()));
    }
    let producer: BaseProducer = config.create().unwrap();
    if transactional.is_some() {
        producer.init_transactions(Duration::from_secs(30)).unwrap();
    }
    let per_txn = transactional.unwrap_or(usize::MAX);
    for chunk in records.chunks(per_txn.max(1)) {
        if transactional.is_some() {
            producer.begin_transaction().unwrap();
        }
        for r in chunk {
            let mut br = base_record(topic, r);
            if let Some(ts) = timestamp_ms {
                br = br.timestamp(ts);
            }
            loop {
                match producer.send(br) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        br = back;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        if transactional.is_some() {
            producer.commit_transaction(Duration::from_secs(30)).unwrap();
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// A consumed record with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub record: Record,
}

impl Consumed {
    pub fn header(&self, name: &str) -> Option<String> {
        self.record
            .headers
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| h.value.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Reads a whole topic from the beginning until at least `min` records are
/// in and every partition is at its end, or the deadline passes.
pub fn read_topic(topic: &str, read_committed: bool, min: usize, deadline: Duration) -> Vec<Consumed> {
    let consumer: BaseConsumer = settings("e2e-reader")
        .base()
        .set("group.id", "e2e-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", if read_committed { "read_committed" } else { "read_uncommitted" })
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    assert!(partitions > 0, "{topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let mut at_end = BTreeSet::new();
    let start = Instant::now();
    while start.elapsed() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                out.push(Consumed { partition: m.partition(), offset: m.offset(), record: record_from_message(&m) });
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
        if out.len() >= min && at_end.len() == partitions as usize {
            break;
        }
    }
    out
}

/// Per partition of `topic`: the group's committed offset (-1 if none) and
/// the end offset (high watermark), read by a client that is not a member.
pub fn group_offsets(group: &str, topic: &str) -> Vec<(i32, i64, i64)> {
    let consumer: BaseConsumer = settings("e2e-lag").base().set("group.id", group).create().unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(30)).unwrap();
    (0..partitions)
        .map(|p| {
            let offset = match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => -1,
            };
            let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap();
            (p, offset, high)
        })
        .collect()
}

/// Waits until the group's committed offset equals the end offset on every
/// partition of `topic` that has records (lag exactly 0 as an exporter
/// computes it; an empty partition has nothing to commit); returns the last
/// reading either way.
pub fn wait_group_caught_up(group: &str, topic: &str, deadline: Duration) -> Vec<(i32, i64, i64)> {
    let start = Instant::now();
    loop {
        let offsets = group_offsets(group, topic);
        if offsets.iter().all(|(_, c, e)| c == e || *e == 0) || start.elapsed() > deadline {
            return offsets;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
