//! What the throughput benches share: topics applied under a prefix, the
//! escrow saga's inputs (phase A, the booking facts; phase B, the payment
//! facts), producing them, the transactional copy-loop ceiling, waiting on
//! a condition, and a process's CPU time and memory from `/proc`. Each
//! bench uses a part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use sagastream_contract::payloads::payment::{PaymentEscrowCreated, PaymentEscrowHeld, PaymentEscrowReleased};
use sagastream_contract::{encode, Cents, ContentMode, Currency, Event, Payload, Record};
use sagastream_escrow_saga::money::{self, Bps};
use sagastream_kafka::{admin, base_record, record_from_message, ClientSettings};

use crate::common;

/// The platform fee every escrow bench run charges, in basis points.
pub const FEE_BPS: u32 = 1_500;

/// What every bench against a broker starts from: the cluster
/// (`KAFKA_BOOTSTRAP_SERVERS`), the repository, `.local/bench` for logs and
/// reports, and a run number for topic prefixes of its own.
pub struct Setup {
    pub settings: ClientSettings,
    pub root: std::path::PathBuf,
    pub logs: std::path::PathBuf,
    pub nanos: u128,
}

pub fn setup() -> anyhow::Result<Setup> {
    let Ok(bootstrap) = std::env::var(sagastream_kafka::BOOTSTRAP_ENV) else {
        bail!(
            "no broker: run `scripts/broker.sh start` and export {}=127.0.0.1:19092 (or point it at a cluster)",
            sagastream_kafka::BOOTSTRAP_ENV
        )
    };
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let logs = root.join(".local/bench");
    std::fs::create_dir_all(&logs)?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() % 1_000_000_000;
    Ok(Setup { settings: ClientSettings::new(bootstrap, "sagastream-bench"), root, logs, nanos })
}

pub async fn apply_topics(settings: &ClientSettings, root: &std::path::Path, prefix: &str) -> anyhow::Result<()> {
    let topics = sagastream_topics::Topics::load(&root.join("topics.yaml"))?.with_prefix(prefix);
    let admin = admin::admin_client(settings)?;
    let (observed, brokers) = admin::observe(&admin, &topics).await?;
    let topics = topics.with_replication_factor(brokers.min(3) as i32);
    let plan = sagastream_topics::plan(&topics, &observed);
    admin::create(&admin, &plan.to_create(), brokers).await?;
    Ok(())
}

/// Records by their `topics.yaml` topic.
pub type Inputs = Vec<(&'static str, Record)>;

/// Phase A: the booking facts; phase B: the payment facts answering the
/// saga's commands (what the simulator would send), in order per booking.
pub fn inputs(bookings: usize) -> (Inputs, Inputs) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let now = Utc::now();
    let rec = |p: Payload| encode(&Event::new("/bench", p).with_time(now), ContentMode::Binary).expect("encodes");
    for i in 0..bookings {
        let (booking, payment) = facts(i, now);
        a.extend(booking.map(|fact| ("booking.events", rec(fact))));
        b.extend(payment.map(|fact| ("payment.events", rec(fact))));
    }
    (a, b)
}

/// Booking `i`'s five booking facts and the three payment facts that
/// answer the saga's commands (escrow created, held, released).
pub fn facts(i: usize, now: DateTime<Utc>) -> ([Payload; 5], [Payload; 3]) {
    let booking = common::Booking::nth(i);
    let (id, owner, runner, price) = (booking.id.clone(), booking.owner.clone(), booking.runner.clone(), booking.price);
    let cents = Cents::new(price).expect("positive");
    let usd = Currency::new("USD").expect("ISO");
    let payment_id = format!("pay-{id}");
    let r = money::release(price, Bps::new(FEE_BPS).expect("valid"));
    let payment = [
        PaymentEscrowCreated {
            payment_id: payment_id.clone(),
            booking_id: id.clone(),
            owner_id: owner,
            amount_cents: cents,
            currency: usd.clone(),
            occurred_at: now,
        }
        .into(),
        PaymentEscrowHeld {
            payment_id: payment_id.clone(),
            booking_id: id.clone(),
            stripe_payment_id: format!("pi_{i}"),
            amount_cents: cents,
            currency: usd.clone(),
            occurred_at: now,
            owner_id: None,
        }
        .into(),
        PaymentEscrowReleased {
            payment_id,
            booking_id: id,
            runner_id: runner,
            runner_payout_cents: Cents::new(r.runner_payout).expect("positive"),
            platform_fee_cents: Cents::new(r.platform_fee).expect("positive"),
            currency: usd,
            occurred_at: now,
        }
        .into(),
    ];
    (common::delivery(&booking, now), payment)
}

pub fn produce(
    settings: &ClientSettings,
    name: &dyn Fn(&str) -> String,
    records: &[(&str, Record)],
) -> anyhow::Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = settings.producer().set("linger.ms", "20").create()?;
    for (topic, r) in records {
        sagastream_kafka::io::queue(&producer, base_record(&name(topic), r))?;
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

/// The ceiling: consume, produce the same record, send offsets, commit;
/// at the runtime's cadence (every 100 ms or 10,000 records).
pub fn copy_loop(
    settings: &ClientSettings,
    group: &str,
    inputs: &[String],
    output: &str,
    expected: usize,
) -> anyhow::Result<Duration> {
    let consumer: BaseConsumer = settings.consumer(group).create()?;
    let topics: Vec<&str> = inputs.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    let producer: BaseProducer = settings.producer().set("transactional.id", group).create()?;
    producer.init_transactions(Duration::from_secs(30))?;
    let mut copied = 0usize;
    let mut started: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while copied < expected {
        anyhow::ensure!(Instant::now() < deadline, "the copy loop copied {copied} of {expected} records in 10 min");
        producer.begin_transaction()?;
        let mut offsets: HashMap<(String, i32), i64> = HashMap::new();
        let opened = Instant::now();
        let mut in_txn = 0;
        while in_txn < 10_000 && opened.elapsed() < Duration::from_millis(100) && copied + in_txn < expected {
            let Some(m) = consumer.poll(Duration::from_millis(10)) else { continue };
            let m = m?;
            started.get_or_insert_with(Instant::now);
            let record = record_from_message(&m);
            loop {
                match producer.send(base_record(output, &record)) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        producer.poll(Duration::from_millis(1));
                    }
                    Err((e, _)) => return Err(e.into()),
                }
            }
            offsets.insert((m.topic().to_owned(), m.partition()), m.offset() + 1);
            in_txn += 1;
        }
        // Wait for acknowledgements here: commit_transaction would poll in 100 ms slices.
        while producer.in_flight_count() > 0 {
            producer.poll(Duration::from_millis(1));
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in &offsets {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))?;
        }
        if !offsets.is_empty() {
            producer.send_offsets_to_transaction(
                &tpl,
                &consumer.group_metadata().context("group metadata")?,
                Duration::from_secs(30),
            )?;
        }
        producer.commit_transaction(Duration::from_secs(30))?;
        copied += in_txn;
    }
    Ok(started.map_or(Duration::ZERO, |s| s.elapsed()))
}

pub fn wait(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// CPU time a process has used, user and system, over all its threads
/// (`/proc/<pid>/stat`, in clock ticks of 10 ms).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name, field 2, may hold spaces: count from its closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("no command name in /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).context("short /proc/<pid>/stat");
    // utime and stime are fields 14 and 15, the 12th and 13th after the name.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS")
}

/// The most a process has had resident so far.
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmHWM")
}

/// A field of `/proc/<pid>/status` in KiB.
fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|v| v.strip_prefix(':')))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}
