//! Publishing contract records and reading back exact positions: what the
//! demo and the end-to-end tests need, without a consumer group's state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, FutureProducer, FutureRecord, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use sagastream_contract::Record;

use crate::{record_from_message, to_owned_headers, ClientSettings, KafkaError};

/// Where a record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

pub fn producer(settings: &ClientSettings) -> Result<FutureProducer, KafkaError> {
    settings.producer().create().map_err(KafkaError::client("creating the producer"))
}

/// Sends one record and waits for the broker's acknowledgement.
pub async fn send<'a>(producer: &FutureProducer, topic: &'a str, record: &Record) -> Result<Position<'a>, KafkaError> {
    let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(to_owned_headers(record));
    if let Some(k) = record.key.as_deref() {
        fr = fr.key(k);
    }
    if let Some(v) = record.value.as_deref() {
        fr = fr.payload(v);
    }
    let delivery = producer
        .send(fr, Duration::from_secs(30))
        .await
        .map_err(|(source, _)| KafkaError::Client { what: format!("producing to {topic}"), source })?;
    Ok(Position { topic, partition: delivery.partition, offset: delivery.offset })
}

/// Queues a record on a threaded producer, waiting while its local queue is
/// full (the producer's own thread drains it); any other error is returned.
pub fn queue<C: ProducerContext>(
    producer: &ThreadedProducer<C>,
    mut record: BaseRecord<'_, [u8], [u8], C::DeliveryOpaque>,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((source, back)) => {
                return Err(KafkaError::Client { what: format!("producing to {}", back.topic), source })
            }
        }
    }
}

/// Reads the records at exactly these positions (read_committed), or fails at the deadline.
pub fn read_positions<'a>(
    settings: &ClientSettings,
    positions: &[Position<'a>],
    deadline: Duration,
) -> Result<BTreeMap<Position<'a>, Record>, KafkaError> {
    let consumer: BaseConsumer = settings
        .consumer(&format!("{}-reader", settings.client_id))
        .create()
        .map_err(KafkaError::client("creating the reader"))?;
    let mut starts: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for p in positions {
        let s = starts.entry((p.topic, p.partition)).or_insert(p.offset);
        *s = (*s).min(p.offset);
    }
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in &starts {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(KafkaError::client("building the assignment"))?;
    }
    consumer.assign(&tpl).map_err(KafkaError::client("assigning partitions"))?;

    let wanted: BTreeSet<Position<'a>> = positions.iter().copied().collect();
    let mut found = BTreeMap::new();
    let start = Instant::now();
    while found.len() < wanted.len() {
        if start.elapsed() > deadline {
            let missing: Vec<String> = wanted
                .iter()
                .filter(|p| !found.contains_key(*p))
                .map(|p| format!("{}[{}]@{}", p.topic, p.partition, p.offset))
                .collect();
            return Err(KafkaError::NotReadBack { positions: missing, waited_ms: start.elapsed().as_millis() });
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(source)) => return Err(KafkaError::Client { what: "reading back".into(), source }),
            Some(Ok(m)) => {
                if let Some(p) = wanted
                    .iter()
                    .find(|p| p.topic == m.topic() && p.partition == m.partition() && p.offset == m.offset())
                {
                    found.insert(*p, record_from_message(&m));
                }
            }
        }
    }
    Ok(found)
}
