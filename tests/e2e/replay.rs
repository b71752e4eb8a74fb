//! Replay equals live: the escrow saga runs bookings live against the
//! participant simulator; then every record of its input topics is copied,
//! with its partition, key, headers and timestamp, onto fresh topics, and a
//! fresh saga with no participants reads that whole history from topics
//! that already hold it. Each booking must end as it did live, and the DLQ
//! must hold exactly what it held live (the deliberately bad records), not
//! a payment read before its booking.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use sagastream_e2e::probe::{binary, free_port, prefix, read_topic, wait_group_caught_up, Probe};
use sagastream_e2e::sim::{log_file, sim, wait};
use sagastream_e2e::{apply_topics, settings};

const BOOKINGS: u64 = 600;
const SAGA_FLAGS: &[&str] =
    &["--hold-timeout", "30s", "--auto-confirm-after", "3s", "--stuck-after", "2m", "--commit-interval", "50ms"];
const INPUTS: [&str; 2] = ["booking.events", "payment.events"];
const TERMINAL: [&str; 3] = ["escrow.saga.completed", "escrow.saga.cancelled", "escrow.saga.compensated"];

/// booking id → (terminal event type, its data without the time it was written).
type Outcomes = BTreeMap<String, (String, serde_json::Value)>;

fn header(c: &sagastream_e2e::probe::Consumed, name: &str) -> String {
    c.header(name).unwrap_or_default()
}

fn outcomes(prefix: &str, min: usize) -> Outcomes {
    let mut out = Outcomes::new();
    for c in read_topic(&format!("{prefix}escrow.saga.events"), true, min, Duration::from_secs(60)) {
        let kind = header(&c, "ce_type");
        if !TERMINAL.contains(&kind.as_str()) {
            continue;
        }
        let mut data: serde_json::Value = serde_json::from_slice(c.record.value.as_deref().unwrap_or(b"null")).unwrap();
        data.as_object_mut().map(|o| o.remove("occurred_at"));
        let key = String::from_utf8_lossy(c.record.key.as_deref().unwrap_or_default()).into_owned();
        let previous = out.insert(key.clone(), (kind, data));
        assert!(previous.is_none(), "{prefix}: booking {key} ended twice");
    }
    out
}

/// Dead-lettered inputs by (original key, original value), with how often.
type DeadLettered = BTreeMap<(Vec<u8>, Vec<u8>), usize>;

/// The DLQ: each dead-lettered input (its original key and value, which the
/// DLQ record carries) and, apart, how many per error class. The class of a
/// deliberately bad record can differ between runs: a payment in the wrong
/// currency is `currency_mismatch` once its booking is known and
/// `invalid_transition` before, and live inputs written within the same
/// millisecond by different producers arrive in either order.
fn dead_letters(prefix: &str) -> (DeadLettered, BTreeMap<String, usize>) {
    let (mut inputs, mut by_class) = (BTreeMap::new(), BTreeMap::new());
    for c in read_topic(&format!("{prefix}escrow.saga.dlq"), true, 0, Duration::from_secs(30)) {
        let original = (c.record.key.clone().unwrap_or_default(), c.record.value.clone().unwrap_or_default());
        *inputs.entry(original).or_default() += 1;
        *by_class.entry(header(&c, "__streams.errors.exception")).or_default() += 1;
    }
    (inputs, by_class)
}

/// Copies every committed record of `topic` to the same partition under
/// `to`, keeping key, value, headers and timestamp; returns how many.
fn copy(from: &str, to: &str, topic: &str) -> usize {
    let consumer: BaseConsumer = settings("e2e-replay-copy")
        .base()
        .set("group.id", "e2e-replay-copy")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let source = format!("{from}{topic}");
    let metadata = consumer.fetch_metadata(Some(&source), Duration::from_secs(10)).unwrap();
    let partitions = metadata.topics()[0].partitions().len();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(&source, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> =
        settings("e2e-replay-copy").producer().set("linger.ms", "5").create().unwrap();
    let target = format!("{to}{topic}");
    let (mut copied, mut at_end) = (0, std::collections::BTreeSet::new());
    let deadline = Instant::now() + Duration::from_secs(120);
    while at_end.len() < partitions {
        assert!(Instant::now() < deadline, "copying {source}: {copied} records, partitions at end {at_end:?}");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                let mut record = BaseRecord::<[u8], [u8]>::to(&target).partition(m.partition());
                if let Some(k) = m.key() {
                    record = record.key(k);
                }
                if let Some(v) = m.payload() {
                    record = record.payload(v);
                }
                if let Some(h) = m.headers() {
                    record = record.headers(h.detach());
                }
                if let Some(ts) = m.timestamp().to_millis() {
                    record = record.timestamp(ts);
                }
                producer.send(record).map_err(|(e, _)| e).unwrap();
                copied += 1;
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("copying {source}: {e}"),
            None => {}
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    copied
}

#[test]
fn a_saga_started_on_topics_that_hold_the_whole_history_ends_every_booking_as_live() {
    // --- live ------------------------------------------------------------
    let live = prefix("replay-live");
    tokio::runtime::Runtime::new().unwrap().block_on(apply_topics(&live));
    let saga_bin = binary("sagastream-escrow-saga", "sagastream-escrow-saga");
    let port = free_port();
    let mut saga = Probe::start_with(&saga_bin, &live, "saga-0", port, SAGA_FLAGS);
    saga.wait_ready(Duration::from_secs(90));
    let (participants, sim_log) = sim(&live, &["serve", "--latency", "10ms", "--group", "e2e-sim"], "sim");
    let (_, report) = log_file(&live, "live-report");
    let report = report.with_extension("json");
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let n = BOOKINGS.to_string();
    let args = ["load", "-n", &n, "--run-id", "live", "--max-in-flight", "200", "--settle-timeout", "120s"];
    let (mut load, load_log) = sim(
        &live,
        &[&args[..], &["--saga-metrics", &metrics, "--report", report.to_str().unwrap(), "--quiet"]].concat(),
        "live-load",
    );
    let status = wait(&mut load.0, Duration::from_secs(400), &load_log);
    let text = std::fs::read_to_string(&load_log).unwrap_or_default();
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default())
        .unwrap_or_else(|e| panic!("no live report ({e}); log:\n{text}"));
    crate::escrow::check("live", &r, &text, &sim_log, BOOKINGS);
    assert!(status.success(), "the live run's verdict is a failure:\n{text}");
    let status = saga.terminate(Duration::from_secs(60));
    assert!(status.success(), "the live saga stops cleanly: {status}");
    drop(participants);

    let live_outcomes = outcomes(&live, BOOKINGS as usize);
    assert_eq!(live_outcomes.len() as u64, BOOKINGS, "every live booking ended once");
    let (live_dlq, live_classes) = dead_letters(&live);
    let live_bad: usize = live_dlq.values().sum();
    assert_eq!(live_bad as u64, r["dlq"]["expected"].as_u64().unwrap(), "live DLQ: the bad records, no more");

    // --- replay from topics that already hold the history ------------------
    let replay = prefix("replay-history");
    tokio::runtime::Runtime::new().unwrap().block_on(apply_topics(&replay));
    let copied: Vec<usize> = INPUTS.iter().map(|t| copy(&live, &replay, t)).collect();
    println!("copied {copied:?} records of {INPUTS:?}");
    let port = free_port();
    let started = Instant::now();
    let mut saga = Probe::start_with(&saga_bin, &replay, "saga-0", port, SAGA_FLAGS);
    saga.wait_ready(Duration::from_secs(90));
    let group = format!("{replay}escrow-saga");
    for t in INPUTS {
        let offsets = wait_group_caught_up(&group, &format!("{replay}{t}"), Duration::from_secs(300));
        assert!(
            offsets.iter().all(|(_, committed, end)| committed == end || *end == 0),
            "the replay saga did not catch up on {t} in 300 s: {offsets:?}\n{}",
            sagastream_e2e::probe::tail(&saga.log_text(), 80)
        );
    }
    let took = started.elapsed();
    let enforced = saga.metric("sagastream_input_order_enforced_total");
    let replayed = outcomes(&replay, BOOKINGS as usize);
    let (replay_dlq, replay_classes) = dead_letters(&replay);
    println!(
        "replay: {} inputs in {:.1} s, {} bookings ended, DLQ {replay_classes:?} (live {live_classes:?}), \
         {} inputs let go before their partition's other inputs were known",
        copied.iter().sum::<usize>(),
        took.as_secs_f64(),
        replayed.len(),
        enforced as u64
    );
    let differing: Vec<_> = live_outcomes
        .iter()
        .filter(|(k, v)| replayed.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: live {v:?}, replay {:?}", replayed.get(k)))
        .take(10)
        .collect();
    assert!(differing.is_empty(), "bookings that ended otherwise in the replay (first 10):\n{}", differing.join("\n"));
    assert_eq!(replayed.len(), live_outcomes.len(), "no booking ended in the replay that did not end live");
    assert_eq!(replay_dlq.values().sum::<usize>(), live_bad, "the replay dead-lettered as many inputs as live");
    assert!(
        replay_dlq == live_dlq,
        "the replay dead-lettered other inputs than live: the deliberately bad ones, no more"
    );
}
