//! Avro on the wire at run time, against Apache Kafka and the registry:
//! JSON and Avro records mixed on one topic are both processed and a
//! processor writes Avro where `topics.yaml` says so; bad Avro is
//! dead-lettered with its class, and an Avro record reaching a processor
//! without a registry too. Then the escrow saga runs 2,000 bookings with
//! `booking.events` and `payment.events` in Avro, across a registry outage
//! that a restarted saga (its caches empty) has to wait out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sagastream_contract::{Payload, Record, AVRO_CONTENT_TYPE};
use sagastream_e2e::probe::{binary, free_port, prefix, produce, read_topic, sum_metric, Consumed, Probe};
use sagastream_e2e::sim::{log_file, sim, wait};
use sagastream_e2e::{apply_topics, repo_root, schema_registry, OwnRegistry};
use sagastream_registry::avro::{schema_id, AvroCodec};
use sagastream_registry::records::{self, NO_SCHEMA_REGISTRY};

use crate::runtime::{input_topic, online};

const READY: Duration = Duration::from_secs(90);
pub(crate) const READ: Duration = Duration::from_secs(60);

/// topics.yaml with `content_type: avro` on the given topics, for this test's processors.
fn avro_topics(prefix: &str, avro: &[&str]) -> PathBuf {
    let mut text = std::fs::read_to_string(repo_root().join("topics.yaml")).unwrap();
    for topic in avro {
        let entry = format!("\n  {topic}:\n");
        assert!(text.contains(&entry), "{topic} is declared");
        text = text.replace(&entry, &format!("{entry}    content_type: avro\n"));
    }
    let (_, path) = log_file(prefix, "topics");
    let path = path.with_extension("yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The probe under `prefix`, ready, writing `probe.events` as Avro through `registry`.
pub(crate) fn avro_probe(prefix: &str, registry: &str) -> Probe {
    let topics = avro_topics(prefix, &["probe.events"]);
    let mut probe = Probe::start(
        prefix,
        "probe-0",
        &["--topics-file", topics.to_str().unwrap(), "--schema-registry-url", registry],
    );
    probe.wait_ready(READY);
    probe
}

/// (count, input id) of every probe.counted output, read as Avro, checking
/// that each names the schema it was written with.
fn counted_avro(codec: &AvroCodec, outputs: &[Consumed]) -> Vec<(u64, String)> {
    outputs
        .iter()
        .map(|c| {
            assert_eq!(c.header("content-type").as_deref(), Some(AVRO_CONTENT_TYPE), "the output topic is Avro");
            let id = schema_id(c.record.value.as_deref().unwrap_or_default()).expect("the Confluent wire format");
            assert_eq!(c.header("ce_dataschema"), Some(codec.schema_url(id)), "dataschema names its schema");
            match records::read(Some(codec), &c.record, false).unwrap().event.data {
                Payload::ProbeCounted(p) => (p.count, p.input_id),
                other => panic!("not a probe.counted: {other:?}"),
            }
        })
        .collect()
}

// Not a tokio test: the registry client blocks, which an async context forbids.
#[test]
fn json_and_avro_on_one_topic_both_count_and_bad_avro_is_dead_lettered_by_class() {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let registry = schema_registry();
    let codec = AvroCodec::new(registry).unwrap();
    let prefix = prefix("avro-mixed");
    tokio.block_on(apply_topics(&prefix));
    let key = "runner-mixed";
    let run = uuid::Uuid::new_v4().simple().to_string();
    // One key, JSON and Avro in turns: counted 1..=n in input order.
    let mut inputs = Vec::new();
    let mut ids = Vec::new();
    for i in 0..20 {
        let id = format!("m-{i}-{run}");
        let json = online(key, &id, None);
        inputs.push(if i % 2 == 1 { records::transcode(&codec, &json, &input_topic(&prefix)).unwrap() } else { json });
        ids.push(id);
    }
    let avro = inputs[1].clone();
    let with_value = |value: Vec<u8>| Record { value: Some(value), ..avro.clone() };
    let mut unknown = avro.value.clone().unwrap();
    unknown[1..5].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
    let mut not_avro = avro.value.clone().unwrap();
    not_avro.truncate(5);
    not_avro.push(0xff);
    let mut offline = avro.clone();
    for h in offline.headers.iter_mut().filter(|h| h.name == "ce_type") {
        h.value = Some(b"runner.offline".to_vec());
    }
    let bad = [
        ("unknown_schema_id", with_value(unknown)),
        ("invalid_avro", with_value(not_avro)),
        ("avro_type_mismatch", offline),
    ];
    inputs.extend(bad.iter().map(|(_, r)| r.clone()));
    // The partition goes on after them.
    let tail = format!("tail-{run}");
    inputs.push(online(key, &tail, None));
    ids.push(tail);
    produce(&input_topic(&prefix), &inputs, None);

    let probe = avro_probe(&prefix, registry);
    let outputs = read_topic(&format!("{prefix}probe.events"), true, ids.len(), READ);
    let want: Vec<(u64, String)> = ids.iter().enumerate().map(|(i, id)| (i as u64 + 1, id.clone())).collect();
    let mut got = counted_avro(&codec, &outputs);
    got.sort();
    assert_eq!(got, want, "every JSON and every Avro input counted once, in order, written as Avro");

    let dlq = read_topic(&format!("{prefix}probe.dlq"), true, bad.len(), READ);
    let classes: BTreeMap<String, Option<Vec<u8>>> =
        dlq.iter().map(|d| (d.header("__streams.errors.exception").unwrap(), d.record.value.clone())).collect();
    let want: BTreeMap<String, Option<Vec<u8>>> = bad.iter().map(|(c, r)| (c.to_string(), r.value.clone())).collect();
    assert_eq!(classes, want, "each bad Avro record dead-lettered under its class, its bytes kept");
    assert!(dlq.iter().all(|d| d.header("__streams.errors.stage").as_deref() == Some("decode")));
    assert_eq!(sum_metric(&probe.metrics(), "sagastream_dlq_records_total"), bad.len() as f64);

    // The same records to a processor that has no registry: the JSON ones
    // count, every Avro one is dead-lettered as such, none is lost.
    let bare = sagastream_e2e::probe::prefix("avro-bare");
    tokio.block_on(apply_topics(&bare));
    produce(&input_topic(&bare), &inputs, None);
    let mut probe = Probe::start(&bare, "probe-0", &["--schema-registry-url", ""]);
    probe.wait_ready(READY);
    let json_inputs = inputs.iter().filter(|r| !sagastream_contract::is_avro(r)).count();
    let avro_inputs = inputs.len() - json_inputs;
    let outputs = read_topic(&format!("{bare}probe.events"), true, json_inputs, READ);
    assert_eq!(outputs.len(), json_inputs);
    assert!(outputs.iter().all(|c| c.header("content-type").as_deref() == Some("application/json")));
    let dlq = read_topic(&format!("{bare}probe.dlq"), true, avro_inputs, READ);
    assert_eq!(dlq.len(), avro_inputs);
    for d in &dlq {
        assert_eq!(d.header("__streams.errors.exception").as_deref(), Some(NO_SCHEMA_REGISTRY));
    }
}

/// A port for the registry whose management port (+10000) is free too.
fn registry_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// Longer than a registry outage here takes (about 35 s on a loaded CI machine).
const HOLD_TIMEOUT: Duration = Duration::from_secs(90);

const RETRIED: &str = "sagastream_errors_total{kind=\"schema_registry\"}";

#[test]
fn escrow_saga_runs_2000_bookings_on_avro_topics_across_a_registry_outage() {
    let registry = OwnRegistry::start(registry_port());
    let url = registry.url();
    let prefix = prefix("avro-escrow");
    tokio::runtime::Runtime::new().unwrap().block_on(apply_topics(&prefix));
    let topics = avro_topics(&prefix, &["booking.events", "payment.events"]);
    let topics = topics.to_str().unwrap();
    let saga_bin = binary("sagastream-escrow-saga", "sagastream-escrow-saga");
    let port = free_port();
    let hold = format!("{}s", HOLD_TIMEOUT.as_secs());
    let mut flags: Vec<&str> =
        vec!["--hold-timeout", &hold, "--auto-confirm-after", "3s", "--stuck-after", "2m", "--commit-interval", "50ms"];
    flags.extend(["--topics-file", topics, "--schema-registry-url", &url]);
    let mut saga = Probe::start_with(&saga_bin, &prefix, "saga-0", port, &flags);
    saga.wait_ready(READY);
    let wire = ["--topics-file", topics, "--schema-registry-url", &url];
    let serve: Vec<&str> = wire.iter().copied().chain(["serve", "--latency", "10ms", "--group", "e2e-sim"]).collect();
    let (_participants, sim_log) = sim(&prefix, &serve, "sim");
    let (_, report) = log_file(&prefix, "report");
    let report = report.with_extension("json");
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let load: Vec<&str> = wire
        .iter()
        .copied()
        .chain(["load", "-n", "2000", "--run-id", "avro", "--max-in-flight", "400", "--settle-timeout", "180s"])
        .chain(["--saga-metrics", &metrics, "--report", report.to_str().unwrap(), "--quiet"])
        .collect();
    let (mut load, load_log) = sim(&prefix, &load, "load");

    // Mid-run, the registry goes away and the saga restarts: with nothing
    // cached, it can neither read its Avro inputs nor write booking.completed.
    saga.wait_metrics("a quarter of the run processed", Duration::from_secs(180), |m| {
        sum_metric(m, "sagastream_events_processed_total") >= 3_000.0
    });
    let down = Instant::now();
    registry.stop();
    let status = saga.terminate(Duration::from_secs(60));
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
    saga = Probe::start_with(&saga_bin, &prefix, "saga-0", port, &flags);
    saga.wait_metrics("the saga waiting for the registry", Duration::from_secs(120), |m| sum_metric(m, RETRIED) >= 3.0);
    let stalled = saga.metrics();
    assert_eq!(sum_metric(&stalled, "sagastream_dlq_records_total"), 0.0, "an outage dead-letters nothing");
    registry.restart();
    let outage = down.elapsed();
    // An outage longer than the hold timeout times out holds the payment
    // service could not confirm meanwhile: the saga is right to cancel
    // them, and this test's expectations no longer hold.
    assert!(
        outage < HOLD_TIMEOUT,
        "the registry was down for {outage:?}, longer than the {HOLD_TIMEOUT:?} hold timeout"
    );
    let status = wait(&mut load.0, Duration::from_secs(400), &load_log);
    let text = std::fs::read_to_string(&load_log).unwrap_or_default();
    println!("---- avro (the registry was down for {outage:?})\n{text}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("no report ({e}); log:\n{text}")),
    )
    .unwrap();
    crate::escrow::check("avro", &report, &text, &sim_log, 2_000);
    assert!(status.success(), "the load generator's verdict is a failure:\n{text}");

    // What is on the Avro topics: the services' records and the saga's own
    // booking.completed in Avro; JSON only for the deliberately bad ones.
    let on = |topic: &str| read_topic(&format!("{prefix}{topic}"), true, 2_000, READ);
    let (booking, payment) = (on("booking.events"), on("payment.events"));
    let avro = |c: &&Consumed| c.header("content-type").as_deref() == Some(AVRO_CONTENT_TYPE);
    let saga_own = |c: &&Consumed| c.header("ce_source").as_deref() == Some("/sagastream/escrow-saga");
    assert!(booking.iter().filter(avro).count() >= 2_000, "every booking starts with an Avro booking.requested");
    assert!(payment.iter().filter(avro).count() >= 2_000, "the payment service writes Avro");
    let completed: Vec<&Consumed> = booking.iter().filter(saga_own).collect();
    assert!(!completed.is_empty(), "the saga wrote booking.completed");
    assert!(completed.iter().all(avro), "the saga writes Avro where topics.yaml says so");
    let types: BTreeSet<String> = booking.iter().filter(avro).filter_map(|c| c.header("ce_type")).collect();
    assert!(types.contains("booking.requested") && types.contains("booking.completed"), "{types:?}");
}
