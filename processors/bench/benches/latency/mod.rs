//! Latency under load: sagastream's escrow saga fed at a steady rate (half
//! the maximum it reached in the same run) with the runtime's default
//! commit interval (100 ms). Every input is stamped with the time it is
//! produced; the engine gives each output its input's CloudEvent `time`, so
//! an output's latency is the moment a `read_committed` consumer receives it
//! minus that time: produce, fetch, process, the wait for the commit, the
//! commit, and the fetch of the committed output, end to end.
//!
//! Each booking's five booking facts go out in turn; its three payment facts
//! follow one second later (what a payment service answering the saga's
//! commands would do), interleaved with newer bookings' facts. The first
//! [`WARM_UP`] of inputs are processed and checked but not measured.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers as _;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use sagastream_contract::{encode, ContentMode, Event, Payload};
use sagastream_kafka::{base_record, ClientSettings};

use crate::kit::{apply_topics, facts};
use crate::runners::{check_outputs, ends, reached, wait_committed};

/// What one latency run measured.
#[derive(Debug, Clone)]
pub struct Latency {
    /// The input rate asked for and the one the producer kept.
    pub target_per_s: f64,
    pub achieved_per_s: f64,
    pub inputs: usize,
    pub outputs: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// p50, p99 and max per output event type.
    pub by_type: BTreeMap<String, (f64, f64, f64)>,
    /// The saga's transactions over the run, those committed early (its own
    /// records held others' back, or waited to be read back while the loop
    /// idled), and the inputs event-time order let go after waiting out the
    /// idle limit.
    pub transactions: f64,
    pub held_back: f64,
    pub read_back: f64,
    pub let_go_idle: f64,
}

/// Inputs sent in the first this long are not measured (see `measure`).
const WARM_UP: Duration = Duration::from_secs(3);

/// The saga's outputs whose latency is measured: its commands and its facts.
const OUTPUTS: [&str; 2] = ["payment.commands", "escrow.saga.events"];

/// Feeds the saga `rate` inputs a second for the warm-up and `seconds`, then the payment
/// facts still owed, and measures every output's latency.
pub fn measure(
    settings: &ClientSettings,
    root: &std::path::Path,
    logs: &std::path::Path,
    prefix: &str,
    rate: f64,
    seconds: u64,
) -> anyhow::Result<Latency> {
    let name = |t: &str| format!("{prefix}{t}");
    tokio::runtime::Runtime::new()?.block_on(apply_topics(settings, root, prefix))?;
    let running = crate::runners::sagastream::start(settings, prefix, logs)?;
    let stop = Arc::new(AtomicBool::new(false));
    let outputs: Vec<String> = OUTPUTS.iter().map(|t| name(t)).collect();
    // Outputs of inputs sent in the warm-up are read, not measured: the
    // reader's and the producer's first fetch and metadata round trips are
    // the bench's own start, not the saga's latency.
    let measured_from = Utc::now() + chrono::Duration::from_std(WARM_UP)?;
    let reader = {
        let (settings, outputs, stop) = (settings.clone(), outputs.clone(), stop.clone());
        std::thread::spawn(move || read_latencies(&settings, &outputs, &stop, measured_from))
    };

    let producer: ThreadedProducer<DefaultProducerContext> = settings.producer().set("linger.ms", "5").create()?;
    let (bookings_topic, payments_topic) = (name("booking.events"), name("payment.events"));
    let send = |topic: &str, fact: Payload| -> anyhow::Result<()> {
        let record = encode(&Event::new("/bench", fact).with_time(Utc::now()), ContentMode::Binary)?;
        Ok(sagastream_kafka::io::queue(&producer, base_record(topic, &record))?)
    };
    // Eight inputs a booking; the payment facts of booking i go out with the
    // booking facts of booking i + lag, a second later.
    let per_s = rate / 8.0;
    let lag = per_s.round().max(1.0) as usize;
    let bookings = (per_s * (seconds as f64 + WARM_UP.as_secs_f64())).round().max(1.0) as usize;
    let started = Instant::now();
    let mut sent = 0usize;
    for i in 0..bookings + lag {
        let due = started + Duration::from_secs_f64(sent as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if i < bookings {
            let (booking, _) = facts(i, Utc::now());
            for fact in booking {
                send(&bookings_topic, fact)?;
            }
            sent += 5;
        }
        if i >= lag {
            let (_, payment) = facts(i - lag, Utc::now());
            for fact in payment {
                send(&payments_topic, fact)?;
            }
            sent += 3;
        }
    }
    producer.flush(Duration::from_secs(60))?;
    let achieved = sent as f64 / started.elapsed().as_secs_f64();

    let mut running = running;
    let limit = Duration::from_secs(300);
    wait_committed(settings, &running.group, &bookings_topic, limit, &mut running.child)?;
    wait_committed(settings, &running.group, &payments_topic, limit, &mut running.child)?;
    let text = running
        .metrics
        .as_deref()
        .and_then(|addr| sagastream_testkit::get(addr, "/metrics"))
        .map(|r| r.body)
        .unwrap_or_default();
    let metric = |name: &str| sagastream_testkit::sum_metric(&text, name);
    let (transactions, held_back, read_back, let_go_idle) = (
        metric("sagastream_transactions_total{result=\"committed\""),
        metric("sagastream_early_commits_total{reason=\"held_back\""),
        metric("sagastream_early_commits_total{reason=\"read_back\""),
        metric("sagastream_input_order_enforced_total{kind=\"idle\""),
    );
    stop.store(true, Ordering::Relaxed);
    let latencies = reader.join().map_err(|_| anyhow::anyhow!("the latency reader panicked"))??;
    running.stop();
    check_outputs(settings, prefix, bookings, "sagastream (latency run)")?;
    anyhow::ensure!(!latencies.is_empty(), "no output was read");
    let mut by_type: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (kind, ms) in &latencies {
        by_type.entry(kind.clone()).or_default().push(*ms);
    }
    let by_type = by_type.into_iter().map(|(kind, mut ms)| (kind, quantiles(&mut ms))).collect();
    let mut latencies: Vec<f64> = latencies.into_iter().map(|(_, ms)| ms).collect();
    let (p50_ms, p99_ms, max_ms) = quantiles(&mut latencies);
    Ok(Latency {
        target_per_s: rate,
        achieved_per_s: achieved,
        inputs: sent,
        outputs: latencies.len(),
        p50_ms,
        p99_ms,
        max_ms,
        by_type,
        transactions,
        held_back,
        read_back,
        let_go_idle,
    })
}

/// Reads the output topics (`read_committed`) from their beginning, each
/// record's latency in ms, until `stop` is set and every partition is read
/// to the end it had then.
fn read_latencies(
    settings: &ClientSettings,
    topics: &[String],
    stop: &AtomicBool,
    measured_from: chrono::DateTime<Utc>,
) -> anyhow::Result<Vec<(String, f64)>> {
    let consumer: BaseConsumer = settings.consumer("bench-latency-reader").create()?;
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        for p in 0..partitions(&consumer, topic)? {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    let mut latencies = Vec::new();
    let mut ends_then: Option<BTreeMap<String, BTreeMap<i32, i64>>> = None;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        anyhow::ensure!(Instant::now() < deadline, "the latency reader ran for 15 min");
        if let Some(m) = consumer.poll(Duration::from_millis(20)) {
            let m = m?;
            let received = Utc::now();
            let time = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "ce_time").and_then(|h| h.value))
                .context("an output without ce_time")?;
            let time = chrono::DateTime::parse_from_rfc3339(std::str::from_utf8(time)?)?;
            if time >= measured_from {
                let kind = m
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == "ce_type").and_then(|h| h.value))
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .unwrap_or_default();
                let ms = (received - time.with_timezone(&Utc)).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0;
                latencies.push((kind, ms));
            }
            continue;
        }
        if !stop.load(Ordering::Relaxed) {
            continue;
        }
        if ends_then.is_none() {
            let mut all = BTreeMap::new();
            for topic in topics {
                all.insert(topic.clone(), ends(&consumer, topic)?);
            }
            ends_then = Some(all);
        }
        let position = consumer.position()?;
        let done = ends_then.as_ref().expect("set above").iter().all(|(topic, ends)| {
            let mut mine = TopicPartitionList::new();
            for e in position.elements_for_topic(topic) {
                let _ = mine.add_partition_offset(topic, e.partition(), e.offset());
            }
            reached(&mine, ends)
        });
        if done {
            return Ok(latencies);
        }
    }
}

/// p50, p99 and max of `ms`, which it sorts.
fn quantiles(ms: &mut [f64]) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99), at(1.0))
}

fn partitions(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<i32> {
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    Ok(md.topics().first().map_or(0, |t| t.partitions().len()) as i32)
}
