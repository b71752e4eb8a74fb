//! The escrow saga's runners in the peer bench, each one a process of its
//! own on topics of its own, timed the same way: from the process saying
//! it is ready until its consumer group has committed every input (phase A
//! on `booking.events`, then phase B on `payment.events`). Then its
//! outputs are counted, so every runner is shown to have done the same work.

pub mod kstreams;
pub mod quix;
pub mod sagastream;

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::bail;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use sagastream_kafka::ClientSettings;

pub use crate::kit::peak_rss_kib;
use crate::kit::{cpu_seconds, wait};

/// A running escrow saga, whichever engine runs it.
pub struct Running {
    pub child: Child,
    /// The consumer group whose committed offsets say how far it got.
    pub group: String,
    /// Where its Prometheus metrics are served (sagastream only).
    pub metrics: Option<String>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits for the exit.
    pub fn stop(mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        let _ = self.child.wait();
    }
}

/// What one runner measured in one round.
#[derive(Debug, Clone)]
pub struct Measured {
    pub events_per_s: f64,
    pub peak_rss_kib: u64,
    pub cpu_s_per_1000: f64,
}

/// Waits until `group` has committed every record `topic` holds now.
pub fn wait_committed(
    settings: &ClientSettings,
    group: &str,
    topic: &str,
    limit: Duration,
    child: &mut Child,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = settings.consumer(group).create()?;
    let want = ends(&consumer, topic)?;
    let mut tpl = TopicPartitionList::new();
    for p in want.keys() {
        tpl.add_partition(topic, *p);
    }
    let mut failed = None;
    wait(limit, &format!("{group} to commit all of {topic}"), || {
        if let Ok(Some(status)) = child.try_wait() {
            failed = Some(status);
            return true;
        }
        consumer.committed_offsets(tpl.clone(), Duration::from_secs(5)).is_ok_and(|c| reached(&c, &want))
    })?;
    if let Some(status) = failed {
        bail!("the runner exited ({status}) before {group} committed all of {topic}");
    }
    Ok(())
}

/// Each partition of `topic` and its end offset now.
pub fn ends(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let n = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
    anyhow::ensure!(n > 0, "topic {topic} has no partitions");
    (0..n).map(|p| Ok((p, consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?.1))).collect()
}

/// Whether every offset in `offsets` is at or past its partition's end.
pub fn reached(offsets: &TopicPartitionList, ends: &BTreeMap<i32, i64>) -> bool {
    offsets.elements().iter().all(|e| match e.offset() {
        Offset::Offset(o) => o >= ends[&e.partition()],
        _ => ends[&e.partition()] == 0,
    })
}

/// Committed records of `topic` counted by `ce_type`.
pub fn count_types(settings: &ClientSettings, topic: &str) -> anyhow::Result<BTreeMap<String, usize>> {
    let consumer: BaseConsumer = settings.consumer(&format!("{topic}-count")).create()?;
    let ends = ends(&consumer, topic)?;
    let mut tpl = TopicPartitionList::new();
    for p in ends.keys() {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut counts = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = |c: &BaseConsumer| c.position().is_ok_and(|pos| reached(&pos, &ends));
    while !done(&consumer) {
        anyhow::ensure!(Instant::now() < deadline, "reading {topic} took over 120 s");
        let Some(m) = consumer.poll(Duration::from_millis(100)) else { continue };
        let m = m?;
        use rdkafka::message::Headers as _;
        let ty = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "ce_type").and_then(|h| h.value))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| "(no ce_type)".into());
        *counts.entry(ty).or_default() += 1;
    }
    Ok(counts)
}

/// Every booking got one hold command, one release command and one
/// `booking.completed`; nothing was dead-lettered.
pub fn check_outputs(settings: &ClientSettings, prefix: &str, bookings: usize, who: &str) -> anyhow::Result<()> {
    let commands = count_types(settings, &format!("{prefix}payment.commands"))?;
    let booking = count_types(settings, &format!("{prefix}booking.events"))?;
    let dlq = count_types(settings, &format!("{prefix}escrow.saga.dlq"))?;
    let get = |m: &BTreeMap<String, usize>, t: &str| m.get(t).copied().unwrap_or(0);
    let holds = get(&commands, "payment.escrow_hold_requested");
    let releases = get(&commands, "payment.escrow_release_requested");
    let completed = get(&booking, "booking.completed");
    if holds != bookings || releases != bookings || completed != bookings || !dlq.is_empty() {
        bail!(
            "{who} did other work than asked: {holds} hold and {releases} release commands, {completed} booking.completed \
             for {bookings} bookings; DLQ {dlq:?}"
        );
    }
    Ok(())
}

/// Waits for a peer's `state RUNNING` line on its stdout (two minutes at most).
pub fn wait_running(child: &mut Child, what: &str, log: &std::path::Path) -> anyhow::Result<()> {
    let states = lines(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match states.recv_timeout(left.min(Duration::from_millis(500))) {
            Ok(line) if line == "state RUNNING" => return Ok(()),
            Ok(line) if line == "state ERROR" || line == "state NOT_RUNNING" => {
                bail!("{what} stopped ({line}); log in {}", log.display())
            }
            Ok(_) => {}
            Err(_) if Instant::now() < deadline => {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!("{what} exited ({status}); log in {}", log.display());
                }
            }
            Err(_) => bail!("{what} is not RUNNING after 120 s; log in {}", log.display()),
        }
    }
}

/// Forwards a child's stdout lines; the receiver gets each line.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// CPU seconds and wall time of a runner over a measured span.
pub struct Span {
    started: Instant,
    cpu: f64,
    pid: u32,
}

impl Span {
    pub fn start(pid: u32) -> anyhow::Result<Span> {
        Ok(Span { started: Instant::now(), cpu: cpu_seconds(pid)?, pid })
    }

    /// (wall time, CPU seconds) since the start.
    pub fn end(&self) -> anyhow::Result<(Duration, f64)> {
        Ok((self.started.elapsed(), cpu_seconds(self.pid)? - self.cpu))
    }
}
