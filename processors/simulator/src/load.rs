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
use sagastream_escrow_saga::money::Bps;
use sagastream_kafka::{base_record_with, record_from_message, ClientSettings};

use crate::check::{Checker, Signal};
use crate::common::Position;
use crate::native::{IngestReport, Native};
use crate::order_check::{OrderChecker, OrderSignal};
use crate::orders::{self, OrderScenario};
use crate::report::Report;
use crate::scenario::{plan_trip, Booking, Mix, Planned, Scenario, When};
use crate::trips::TripChecker;
use crate::wire::Wire;

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub settings: ClientSettings,
    pub topic_prefix: String,
    pub bookings: usize,
    pub mix: Mix,
    /// Orders started alongside the bookings (the order saga's world).
    pub orders: usize,
    pub order_mix: Mix<OrderScenario>,
    /// The inventory projector's `--warning-below` and `--critical-below`.
    pub thresholds: (u32, u32),
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
    /// Happy bookings driven as trips by their runners (tracking and presence).
    pub trips: bool,
    /// Every Nth order.created in First Viscount's envelope, through ingest (0: none).
    pub via_ingest_every: usize,
    /// The ingest processor's `/metrics`, for its counts per platform.
    pub ingest_metrics: Option<String>,
    /// Each topic's format: what the services write, how records are read.
    pub wire: Arc<Wire>,
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
/// And with orders.
const WATCHED_FOR_ORDERS: [&str; 4] = ["order.events", "inventory.events", "inventory.commands", "order.saga.dlq"];
/// And with trips.
const WATCHED_FOR_TRIPS: [&str; 2] = ["tracking.events", "runner.presence"];

/// The two checkers, and which topics are dead letters.
struct Observers {
    bookings: Checker,
    orders: OrderChecker,
    dlq: String,
    order_dlq: String,
    trips: Option<TripChecker>,
    wire: Arc<Wire>,
}

impl Observers {
    /// Feeds one record to both checkers (each skips what is not its own).
    fn feed<M: Message>(&mut self, message: &M) -> Fed {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let record = &record_from_message(message);
        if topic == self.dlq {
            self.bookings.observe_dlq(record);
            return Fed::default();
        }
        if topic == self.order_dlq {
            self.orders.observe_dlq(record);
            return Fed::default();
        }
        let decoded = match self.wire.read(record) {
            Ok(d) => d,
            Err(e) => {
                // Bad records the run sent are on the processors' input topics; anything
                // else here that does not decode is worth a line.
                tracing::debug!(topic, partition, offset, error = %e, "an undecodable record on a watched topic");
                return Fed::default();
            }
        };
        let from = Some((topic, partition, offset));
        // When the record was written, not when we read it: a record read
        // late (a slow poll, the final catch-up) keeps its real time.
        let now = Instant::now();
        let now = match message.timestamp().to_millis() {
            Some(ms) => {
                let age = chrono::Utc::now().timestamp_millis().saturating_sub(ms).max(0) as u64;
                now.checked_sub(Duration::from_millis(age)).unwrap_or(now)
            }
            None => now,
        };
        Fed {
            booking: self.bookings.observe_at(&decoded.event, now, from),
            order: self.orders.observe(&decoded.event, now, from),
            tracked: self.trips.as_mut().and_then(|t| t.observe(&decoded.event)),
        }
    }
}

#[derive(Default)]
struct Fed {
    booking: (Option<usize>, Signal),
    order: OrderSignal,
    /// A trip the tracking processor started, or whose every fix it placed.
    tracked: Option<(usize, When)>,
}

/// The end offset of a partition. A leader that does not serve a fresh
/// partition yet, or one being elected, answers with a retriable error:
/// asked again for up to 30 s.
fn end_offset(observer: &BaseConsumer, topic: &str, partition: i32) -> anyhow::Result<i64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match observer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
            Ok((_, high)) => return Ok(high),
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(%topic, partition, error = %e, "reading the end offset; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading the end offset of {topic}[{partition}] for 30 s"))
            }
        }
    }
}

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
    let watched = WATCHED
        .iter()
        .chain(if config.orders > 0 { &WATCHED_FOR_ORDERS[..] } else { &[] })
        .chain(if config.trips { &WATCHED_FOR_TRIPS[..] } else { &[] });
    for topic in watched.map(|t| name(t)) {
        let metadata = observer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .with_context(|| format!("reading metadata of {topic}"))?;
        let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len());
        anyhow::ensure!(partitions > 0, "topic {topic} does not exist; run `sagactl topics apply` first");
        for p in 0..partitions as i32 {
            let high = end_offset(&observer, &topic, p)?;
            tpl.add_partition_offset(&topic, p, Offset::Offset(high))?;
        }
    }
    observer.assign(&tpl).context("assigning the watched partitions")?;
    let bookings: Vec<Booking> =
        (0..config.bookings).map(|i| Booking::new(&config.run_id, i, config.mix.pick(i))).collect();
    let (order_list, _) = orders::orders(&config.run_id, config.orders, |i| config.order_mix.pick(i));
    let trips = config.trips.then(|| {
        let happy: Vec<(usize, &Booking)> =
            bookings.iter().enumerate().filter(|(_, b)| b.scenario == Scenario::Happy).collect();
        TripChecker::new(&happy)
    });
    let mut native = Native::new(config.via_ingest_every);
    let mut obs = Observers {
        trips,
        bookings: Checker::new(bookings, config.fee),
        orders: OrderChecker::new(&config.run_id, order_list, config.thresholds),
        dlq: name("escrow.saga.dlq"),
        order_dlq: name("order.saga.dlq"),
        wire: config.wire.clone(),
    };
    let mut deferred: HashMap<usize, Vec<Planned>> = HashMap::new();
    let mut deferred_orders: HashMap<usize, Vec<Planned>> = HashMap::new();
    let total = config.bookings + config.orders;
    let mut progress = Progress::new(total, config.progress);
    let started_at = Instant::now();
    let (mut next, mut next_order) = (0usize, 0usize);
    let mut ended = 0usize;
    let mut last_started: Option<Instant> = None;
    let mut sent = 0u64;

    // `routable`: the record may go through ingest. Not when the scenario
    // orders it against a record sent directly (a cancel before its order):
    // two producers' records are ordered by nothing.
    let mut send = |planned: &Planned, routable: bool, sent: &mut u64| -> anyhow::Result<()> {
        let routed = if planned.poison || !routable { None } else { native.route(&planned.record) };
        let (topic, record) = match &routed {
            Some((raw, record)) => (name(raw), std::borrow::Cow::Borrowed(record)),
            // A bad record goes as it was made: its fault is in the JSON.
            None if planned.poison => (name(planned.topic), std::borrow::Cow::Borrowed(&planned.record)),
            None => (name(planned.topic), config.wire.write(planned.topic, &planned.record)?),
        };
        sagastream_kafka::io::queue(&producer, base_record_with(&topic, &record, Box::new(planned.poison)))?;
        *sent += 1;
        Ok(())
    };

    loop {
        let ended_orders = config.orders - obs.orders.unfinished();
        if stop.load(Ordering::Relaxed) {
            anyhow::bail!("interrupted with {} of {total} bookings and orders finished", ended + ended_orders);
        }
        // Start bookings and orders, in proportion: within the window, at the rate.
        while (next < config.bookings || next_order < config.orders)
            && (next + next_order) - (ended + ended_orders) < config.max_in_flight
        {
            if config.rate > 0 {
                let allowed = (started_at.elapsed().as_secs_f64() * config.rate as f64) as usize;
                if next + next_order >= allowed {
                    break;
                }
            }
            let order_turn = next >= config.bookings
                || (next_order < config.orders && next_order * config.bookings < next * config.orders);
            let routable = order_turn && obs.orders.orders()[next_order].scenario != OrderScenario::Reordered;
            let (i, planned, deferred) = match order_turn {
                true => (next_order, orders::plan(&obs.orders.orders()[next_order]), &mut deferred_orders),
                false => (next, plan_trip(&obs.bookings.bookings()[next], config.trips.then_some(next)), &mut deferred),
            };
            let mut later = Vec::new();
            for p in planned {
                match p.when {
                    When::Start => send(&p, routable, &mut sent)?,
                    _ => later.push(p),
                }
            }
            if !later.is_empty() {
                deferred.insert(i, later);
            }
            let now = Instant::now();
            if order_turn {
                obs.orders.started(i, now);
                next_order += 1;
            } else {
                obs.bookings.started(i, now);
                next += 1;
            }
            last_started = Some(now);
        }
        // Observe.
        let deadline = Instant::now() + Duration::from_millis(20);
        while let Some(message) = observer.poll(deadline.saturating_duration_since(Instant::now())) {
            let message = match message {
                Ok(m) => m,
                // librdkafka reports a broker it lost (a failover) and reconnects by itself.
                Err(e) => {
                    tracing::warn!(error = %e, "consumer error; continuing");
                    continue;
                }
            };
            let (finished, ready) = follow_up(&obs.feed(&message), &mut deferred, &mut deferred_orders);
            ended += finished;
            for planned in ready {
                send(&planned, false, &mut sent)?;
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        let done = ended + config.orders - obs.orders.unfinished();
        progress.show(done, next + next_order - done, started_at.elapsed());
        if done == total {
            break;
        }
        if next == config.bookings
            && next_order == config.orders
            && last_started.is_some_and(|t| t.elapsed() > config.settle_timeout)
        {
            tracing::warn!(unfinished = total - done, "settle timeout reached; reporting what finished");
            break;
        }
    }
    let elapsed = started_at.elapsed();
    progress.finish(ended + config.orders - obs.orders.unfinished(), elapsed);
    producer.flush(Duration::from_secs(30)).context("flushing the load generator's records")?;
    if let Some(e) = deliveries.failed.lock().expect("not poisoned").first() {
        anyhow::bail!("a record could not be delivered: {e}");
    }
    let order_events = name("order.events");
    for p in deliveries.poison.lock().expect("not poisoned").drain(..) {
        if p.0 == order_events {
            obs.orders.poison_sent(p);
        } else {
            obs.bookings.poison_sent(p);
        }
    }
    // Read everything written so far: trailing facts and DLQ records.
    catch_up(&observer, &mut obs, Duration::from_secs(30))?;
    let lag = final_lag(&config.saga_metrics, Duration::from_secs(20));
    tracing::info!(records_sent = sent, "load finished");
    let mut report = obs.bookings.report(elapsed, lag);
    if config.orders > 0 {
        let orders = obs.orders.report();
        report.ok &= orders.ok;
        report.orders = Some(orders);
    }
    if let Some(trips) = &obs.trips {
        let trips = trips.report();
        report.ok &= trips.ok;
        report.trips = Some(trips);
    }
    if config.via_ingest_every > 0 {
        let ingest = ingest_report(&native, config.ingest_metrics.as_deref());
        if let Some(problem) = ingest_problem(&ingest) {
            report.problems.push(problem);
            report.ok = false;
        }
        report.ingest = Some(ingest);
    }
    Ok(report)
}

/// What went through ingest: sent here, and the processor's counts once
/// it has read what was sent (polled for up to 20 s).
fn ingest_report(native: &Native, metrics: Option<&str>) -> IngestReport {
    let sent: std::collections::BTreeMap<String, u64> = native.sent.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let mut report = IngestReport { sent: sent.clone(), ingested: Default::default() };
    let Some(url) = metrics else { return report };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Some(body) = http_get(url) else { break };
        report.ingested = body
            .lines()
            .filter_map(|l| l.strip_prefix("sagastream_ingest_records_total{"))
            .filter_map(|l| {
                let (labels, value) = l.rsplit_once("} ")?;
                let label = |name: &str| {
                    labels.split(',').find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))?.strip_suffix('"')
                };
                Some((format!("{} {}", label("platform")?, label("outcome")?), value.parse::<f64>().ok()? as u64))
            })
            .collect();
        let translated = |p: &str| report.ingested.get(&format!("{p} translated")).copied().unwrap_or(0);
        if sent.iter().all(|(p, n)| translated(p) >= *n) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    report
}

/// A record refused by ingest, or fewer translated than this run sent.
fn ingest_problem(report: &IngestReport) -> Option<String> {
    if let Some((k, n)) = report.ingested.iter().find(|(k, n)| !k.ends_with(" translated") && **n > 0) {
        return Some(format!("ingest refused records: {k} {n}"));
    }
    if report.ingested.is_empty() && !report.sent.is_empty() {
        return Some("ingest's metrics could not be read (--ingest-metrics)".into());
    }
    report.sent.iter().find_map(|(p, n)| {
        let got = report.ingested.get(&format!("{p} translated")).copied().unwrap_or(0);
        (got < *n).then(|| format!("ingest translated {got} of the {n} {p} records sent"))
    })
}

/// What an observation means for the run: a booking that finished (1 or
/// 0), and the deferred records it makes due.
fn follow_up(
    fed: &Fed,
    deferred: &mut HashMap<usize, Vec<Planned>>,
    deferred_orders: &mut HashMap<usize, Vec<Planned>>,
) -> (usize, Vec<Planned>) {
    let mut ready = match fed.booking {
        (Some(i), Signal::Held) => take_due(When::AfterHeld, i, deferred),
        _ => Vec::new(),
    };
    if let Some((i, when)) = fed.tracked {
        ready.extend(take_due(when, i, deferred));
    }
    ready.extend(match fed.order {
        OrderSignal::Reserved(i) => take_due(When::AfterReserved, i, deferred_orders),
        OrderSignal::Captured(i) => take_due(When::AfterCaptured, i, deferred_orders),
        _ => Vec::new(),
    });
    (usize::from(matches!(fed.booking, (Some(_), Signal::Ended))), ready)
}

/// The deferred records of item `i` due on `when`.
fn take_due(when: When, i: usize, deferred: &mut HashMap<usize, Vec<Planned>>) -> Vec<Planned> {
    let list = deferred.remove(&i).unwrap_or_default();
    let (now, rest): (Vec<Planned>, Vec<Planned>) = list.into_iter().partition(|p| p.when == when);
    if !rest.is_empty() {
        deferred.insert(i, rest);
    }
    now
}

/// Reads the watched partitions up to their current ends.
fn catch_up(observer: &BaseConsumer, obs: &mut Observers, limit: Duration) -> anyhow::Result<()> {
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
        match polled {
            Some(Ok(message)) => {
                obs.feed(&message);
            }
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error; continuing"),
            None => {}
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

/// The body of a GET of `url` (`http://host:port/path`).
pub fn http_get(url: &str) -> Option<String> {
    sagastream_testkit::get_url(url).map(|r| r.body)
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
