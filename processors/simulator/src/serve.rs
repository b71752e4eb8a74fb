//! The participants' Kafka loop: read the sagas' commands, answer after the
//! configured latency. At-least-once: offsets are committed in the
//! background, and a redelivered command gets byte-identical answers (ids
//! derived from the command's), which the saga de-duplicates. A crash loses
//! answers still waiting out their latency; the saga's stuck alarm reports
//! those sagas.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use std::sync::Arc;

use sagastream_contract::{encode, ContentMode, Record};
use sagastream_kafka::{base_record, record_from_message, ClientSettings};

use crate::native::Native;
use crate::participants::{answer, PaymentBook, Rates};
use crate::shop::Shop;
use crate::wire::Wire;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub settings: ClientSettings,
    pub topic_prefix: String,
    pub group: String,
    /// Delay before each answer; a command's later answers come one more latency apart.
    pub latency: Duration,
    pub rates: Rates,
    /// The dispute events of about one booking in N in Go4u's envelope, through ingest (0: none).
    pub via_ingest_every: usize,
    /// Each topic's format: what the services write, how records are read.
    pub wire: Arc<Wire>,
}

/// How much later a dispute sent through ingest comes than it would directly.
const DISPUTE_DELAY: Duration = Duration::from_secs(1);

struct Due {
    topic: String,
    record: Record,
}

pub fn serve(config: &ServeConfig, stop: &AtomicBool) -> anyhow::Result<()> {
    let inputs: Vec<String> = ["payment.commands", "booking.commands", "inventory.commands"]
        .iter()
        .map(|t| format!("{}{t}", config.topic_prefix))
        .collect();
    let mut consumer_config = config.settings.consumer(&config.group);
    // Answer promptly: do not let the broker hold an empty fetch for long.
    consumer_config
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("fetch.wait.max.ms", "20");
    let consumer: BaseConsumer = consumer_config.create().context("creating the simulator's consumer")?;
    let topics: Vec<&str> = inputs.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).with_context(|| format!("subscribing to {topics:?}"))?;
    let producer: ThreadedProducer<DefaultProducerContext> =
        config.settings.producer().create().context("creating the simulator's producer")?;
    tracing::info!(?topics, latency_ms = config.latency.as_millis() as u64, "simulator answering commands");

    let mut queue: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut pending: std::collections::HashMap<u64, Due> = std::collections::HashMap::new();
    let mut seq = 0u64;
    let (mut commands, mut answers, mut skipped, mut refused) = (0u64, 0u64, 0u64, 0u64);
    let mut book = PaymentBook::default();
    let mut shop = Shop::default();
    let mut native = Native::new(config.via_ingest_every);
    let mut last_log = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while let Some(Reverse((due, id))) = queue.peek().copied() {
            if due > now {
                break;
            }
            queue.pop();
            let item = pending.remove(&id).expect("queued items are pending");
            sagastream_kafka::io::queue(&producer, base_record(&item.topic, &item.record))?;
            answers += 1;
        }
        let wait = queue
            .peek()
            .map_or(Duration::from_millis(100), |Reverse((due, _))| due.saturating_duration_since(now))
            .min(Duration::from_millis(100));
        let Some(message) = consumer.poll(wait) else { continue };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "consumer error; continuing");
                continue;
            }
        };
        let record = record_from_message(&message);
        let event = match config.wire.read(&record) {
            Ok(d) => d.event,
            Err(e) => {
                skipped += 1;
                tracing::warn!(error = %e, offset = rdkafka::Message::offset(&message), "skipping an undecodable command");
                continue;
            }
        };
        commands += 1;
        if let Err(why) = book.admit(&event, config.rates) {
            refused += 1;
            tracing::warn!(command = %event.event_type(), id = %event.id, reason = %why, "payment service refuses the command");
            continue;
        }
        // The order saga's commands go to the shop (inventory, order payments).
        let replies = match shop.answer(&event) {
            Ok(r) if !r.is_empty() => r,
            Ok(_) => answer(&event, config.rates),
            Err(why) => {
                refused += 1;
                tracing::warn!(command = %event.event_type(), id = %event.id, reason = %why, "the shop refuses the command");
                continue;
            }
        };
        let received = Instant::now();
        for reply in replies {
            let record = encode(&reply.event, ContentMode::Binary).context("encoding an answer")?;
            let (topic, record, later) = match native.route(&record) {
                // A dispute comes from Go4u's admin service, another producer:
                // nothing orders its records after this one's hold but time, so
                // it comes a while after, as people open disputes.
                Some((raw, native)) => (format!("{}{raw}", config.topic_prefix), native, DISPUTE_DELAY),
                None => {
                    let topic = reply.event.event_type().topic();
                    let record = config.wire.write(topic, &record)?.into_owned();
                    (format!("{}{topic}", config.topic_prefix), record, Duration::ZERO)
                }
            };
            seq += 1;
            queue.push(Reverse((received + config.latency * (reply.after + 1) + later, seq)));
            pending.insert(seq, Due { topic, record });
        }
        if last_log.elapsed() > Duration::from_secs(10) {
            tracing::info!(commands, answers, skipped, refused, waiting = queue.len(), "simulator progress");
            last_log = Instant::now();
        }
    }
    tracing::info!(commands, answers, skipped, refused, dropped = queue.len(), via_ingest = ?native.sent, "simulator stopping");
    producer.flush(Duration::from_secs(10)).context("flushing the simulator's answers")?;
    Ok(())
}
