//! The load generator's Kafka loop: start bookings at a rate with a bounded
//! number in flight, send each scenario's records, watch every topic the
//! saga and the participants write, then hand the observations to the
//! checker.

use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use sagastream_contract::decode;
use sagastream_escrow_saga::money::Bps;
use sagastream_kafka::{base_record_with, record_from_message, ClientSettings};

use crate::check::{Checker, Position, Report, Signal};
use crate::scenario::{plan, Booking, Mix, Planned, When};

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub settings: ClientSettings,
    pub topic_prefix: String,
    pub bookings: usize,
    pub mix: Mix,
    /// Bookings started per second; 0 = as fast as the window allows.
    pub rate: u32,
    /// Bookings started but not finished, at most.
    pub max_in_flight: usize,
    /// Give up waiting for outcomes this long after the last booking started.
    pub settle_timeout: Duration,
    /// Must match the saga's `--fee-bps`.
    pub fee: Bps,
    /// Prefix of every booking id, so runs sharing topics do not mix.
    pub run_id: String,
    /// The saga's `/metrics` endpoints, for the final consumer lag.
    pub saga_metrics: Vec<String>,
    pub progress: bool,
}

/// Positions of the bad records, from the delivery reports.
#[derive(Default)]
struct Deliveries {
    poison: Mutex<Vec<Position>>,
    failed: Mutex<Vec<String>>,
}

struct Context(Arc<Deliveries>);

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<bool>;

    fn delivery(&self, result: &DeliveryResult<'_>, poison: Box<bool>) {
        match result {
            Ok(m) if *poison => {
                self.0.poison.lock().expect("not poisoned").push((m.topic().to_owned(), m.partition(), m.offset()))
            }
            Ok(_) => {}
            Err((e, m)) => self.0.failed.lock().expect("not poisoned").push(format!("{}: {e}", m.topic())),
        }
    }
}

/// Topics the load generator watches (by their `topics.yaml` names).
const WATCHED: [&str; 6] = [
    "escrow.saga.events",
    "payment.events",
    "payment.commands",
    "booking.commands",
    "booking.events",
    "escrow.saga.dlq",
];

pub fn run(config: &LoadConfig, stop: &AtomicBool) -> anyhow::Result<Report> {
    let name = |t: &str| format!("{}{t}", config.topic_prefix);
    let deliveries = Arc::new(Deliveries::default());
    let producer: ThreadedProducer<Context> = config
        .settings
        .producer()
        .create_with_context(Context(deliveries.clone()))
        .context("creating the load generator's producer")?;
    let observer: BaseConsumer = config
        .settings
        .consumer(&format!("sagastream-load-{}", config.run_id))
        // Outcomes are timed when seen: do not let an empty fetch wait long.
        .set("fetch.wait.max.ms", "20")
        .create()
        .context("creating the load generator's observer")?;
    // Watch from the current end: only this run's records matter.
    let mut tpl = TopicPartitionList::new();
    for topic in WATCHED.map(name) {
        let metadata = observer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .with_context(|| format!("reading metadata of {topic}"))?;
        let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len());
        anyhow::ensure!(partitions > 0, "topic {topic} does not exist; run `sagactl topics apply` first");
        for p in 0..partitions as i32 {
            let (_, high) = observer.fetch_watermarks(&topic, p, Duration::from_secs(10))?;
            tpl.add_partition_offset(&topic, p, Offset::Offset(high))?;
        }
    }
    observer.assign(&tpl).context("assigning the watched partitions")?;
    let dlq_topic = name("escrow.saga.dlq");

    let bookings: Vec<Booking> =
        (0..config.bookings).map(|i| Booking::new(&config.run_id, i, config.mix.pick(i))).collect();
    let mut checker = Checker::new(bookings, config.fee);
    let mut deferred: HashMap<usize, Vec<Planned>> = HashMap::new();
    let mut progress = Progress::new(config.bookings, config.progress);
    let started_at = Instant::now();
    let mut next = 0usize;
    let mut ended = 0usize;
    let mut last_started: Option<Instant> = None;
    let mut sent = 0u64;

    let send = |planned: &Planned, sent: &mut u64| -> anyhow::Result<()> {
        let topic = name(planned.topic);
        sagastream_kafka::io::queue(&producer, base_record_with(&topic, &planned.record, Box::new(planned.poison)))?;
        *sent += 1;
        Ok(())
    };

    loop {
        if stop.load(Ordering::Relaxed) {
            anyhow::bail!("interrupted with {} of {} bookings finished", ended, config.bookings);
        }
        // Start bookings: within the window, at the rate.
        while next < config.bookings && next - ended < config.max_in_flight {
            if config.rate > 0 {
                let allowed = (started_at.elapsed().as_secs_f64() * config.rate as f64) as usize;
                if next >= allowed {
                    break;
                }
            }
            let booking = checker.bookings()[next].clone();
            let mut later = Vec::new();
            for planned in plan(&booking) {
                match planned.when {
                    When::Start => send(&planned, &mut sent)?,
                    When::AfterHeld => later.push(planned),
                }
            }
            if !later.is_empty() {
                deferred.insert(next, later);
            }
            checker.started(next, Instant::now());
            next += 1;
            last_started = Some(Instant::now());
        }
        // Observe.
        let deadline = Instant::now() + Duration::from_millis(20);
        while let Some(message) = observer.poll(deadline.saturating_duration_since(Instant::now())) {
            let message = message.context("reading the watched topics")?;
            let record = record_from_message(&message);
            if message.topic() == dlq_topic {
                checker.observe_dlq(&record);
                continue;
            }
            let Ok(decoded) = decode(&record) else { continue };
            let from = (message.topic(), message.partition(), message.offset());
            match checker.observe_at(&decoded.event, Instant::now(), Some(from)) {
                (Some(i), Signal::Held) => {
                    for planned in deferred.remove(&i).unwrap_or_default() {
                        send(&planned, &mut sent)?;
                    }
                }
                (Some(_), Signal::Ended) => ended += 1,
                _ => {}
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        progress.show(ended, next - ended, started_at.elapsed());
        if ended == config.bookings {
            break;
        }
        if next == config.bookings && last_started.is_some_and(|t| t.elapsed() > config.settle_timeout) {
            tracing::warn!(unfinished = config.bookings - ended, "settle timeout reached; reporting what finished");
            break;
        }
    }
    let elapsed = started_at.elapsed();
    progress.finish(ended, elapsed);
    producer.flush(Duration::from_secs(30)).context("flushing the load generator's records")?;
    if let Some(e) = deliveries.failed.lock().expect("not poisoned").first() {
        anyhow::bail!("a record could not be delivered: {e}");
    }
    for p in deliveries.poison.lock().expect("not poisoned").drain(..) {
        checker.poison_sent(p);
    }
    // Read everything written so far: trailing facts and DLQ records.
    catch_up(&observer, &dlq_topic, &mut checker, Duration::from_secs(30))?;
    let lag = final_lag(&config.saga_metrics, Duration::from_secs(20));
    tracing::info!(records_sent = sent, "load finished");
    Ok(checker.report(elapsed, lag))
}

/// Reads the watched partitions up to their current ends.
fn catch_up(observer: &BaseConsumer, dlq_topic: &str, checker: &mut Checker, limit: Duration) -> anyhow::Result<()> {
    let assignment = observer.assignment()?;
    let mut ends: HashMap<(String, i32), i64> = HashMap::new();
    for e in assignment.elements() {
        let (_, high) = observer.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))?;
        ends.insert((e.topic().to_owned(), e.partition()), high);
    }
    let deadline = Instant::now() + limit;
    let mut behind: VecDeque<(String, i32)> = VecDeque::new();
    while Instant::now() < deadline {
        let position = observer.position()?;
        behind.clear();
        for e in position.elements() {
            let reached = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            let end = ends.get(&(e.topic().to_owned(), e.partition())).copied().unwrap_or(0);
            // A trailing transaction marker is never returned as a message.
            if end > 0 && reached < end - 1 {
                behind.push_back((e.topic().to_owned(), e.partition()));
            }
        }
        // Once every partition is at its end (or just before a trailing
        // transaction marker, never returned as a message), drain briefly.
        let wait = if behind.is_empty() { Duration::from_millis(500) } else { Duration::from_millis(100) };
        let polled = observer.poll(wait);
        if behind.is_empty() && polled.is_none() {
            return Ok(());
        }
        if let Some(message) = polled {
            let message = message?;
            let record = record_from_message(&message);
            if message.topic() == dlq_topic {
                checker.observe_dlq(&record);
            } else if let Ok(decoded) = decode(&record) {
                let from = (message.topic(), message.partition(), message.offset());
                checker.observe_at(&decoded.event, Instant::now(), Some(from));
            }
        }
    }
    tracing::warn!(?behind, "could not read every watched partition to its end in time");
    Ok(())
}

/// Sum of `sagastream_consumer_lag_records` over the endpoints, once it
/// reaches 0 or at the deadline (the runtime refreshes it every second).
fn final_lag(endpoints: &[String], limit: Duration) -> Option<i64> {
    if endpoints.is_empty() {
        return None;
    }
    let deadline = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < deadline {
        let mut total = 0i64;
        for url in endpoints {
            let Some(body) = http_get(url) else { return last };
            total += body
                .lines()
                .filter(|l| l.starts_with("sagastream_consumer_lag_records{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .map(|v| v as i64)
                .sum::<i64>();
        }
        last = Some(total);
        if total == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    last
}

/// A plain HTTP/1.0 GET of `http://host:port/path`: enough for /metrics,
/// without an HTTP client dependency.
pub fn http_get(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body.split_once("\r\n\r\n").map_or(body.clone(), |(_, b)| b.to_owned()))
}

/// A progress bar on a terminal, a log line every 5 s otherwise.
struct Progress {
    total: usize,
    enabled: bool,
    tty: bool,
    last: Instant,
}

impl Progress {
    fn new(total: usize, enabled: bool) -> Progress {
        Progress { total, enabled, tty: std::io::stderr().is_terminal(), last: Instant::now() }
    }

    fn show(&mut self, done: usize, in_flight: usize, elapsed: Duration) {
        let every = if self.tty { Duration::from_millis(200) } else { Duration::from_secs(5) };
        if !self.enabled || self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        if self.tty {
            let width = 30;
            let filled = done * width / self.total.max(1);
            eprint!(
                "\r[{}{}] {done}/{} finished · {in_flight} in flight · {rate:.0} bookings/s   ",
                "=".repeat(filled),
                " ".repeat(width - filled),
                self.total
            );
        } else {
            tracing::info!(
                finished = done,
                total = self.total,
                in_flight,
                bookings_per_s = rate as u64,
                "load progress"
            );
        }
    }

    fn finish(&mut self, done: usize, elapsed: Duration) {
        if self.enabled && self.tty {
            eprintln!("\r{done}/{} bookings finished in {:.1} s{}", self.total, elapsed.as_secs_f64(), " ".repeat(40));
        }
    }
}
