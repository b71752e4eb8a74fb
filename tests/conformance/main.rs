//! One conformance test run over every processor, without Kafka: each is
//! driven through the runtime's engine with the same inputs, and each must
//! behave as docs/runtime.md promises for all of them:
//! - a record that is not a CloudEvent goes to the DLQ, classified, with the
//!   full set of context headers (counted by the runner when it commits,
//!   not by the engine);
//! - a payload that does not parse goes to the DLQ as `payload_invalid`;
//! - an applied input delivered again (same CloudEvent id) is a counted
//!   duplicate with no output;
//! - every metric it exposes follows the naming conventions.

use std::collections::HashMap;
use std::sync::Arc;

use sagastream_contract::{encode, samples, ContentMode, EventType, Header, Record};
use sagastream_runtime::engine::{Engine, EngineConfig, Input, Out, OutKind, OutputFormat};
use sagastream_runtime::metrics::Metrics;
use sagastream_runtime::Processor;

/// Every header a DLQ record carries, whatever failed (docs/runtime.md, "Dead-letter records").
const CONTEXT_HEADERS: [&str; 11] = [
    "__streams.errors.exception",
    "__streams.errors.message",
    "__streams.errors.stacktrace",
    "__streams.errors.topic",
    "__streams.errors.partition",
    "__streams.errors.offset",
    "__streams.errors.stage",
    "__streams.errors.group.id",
    "__streams.errors.processor",
    "__streams.errors.processor.version",
    "__streams.errors.attempt",
];

struct Harness<P: Processor> {
    engine: Engine<P>,
    metrics: Arc<Metrics>,
    topic: &'static str,
    offset: i64,
}

impl<P: Processor> Harness<P> {
    fn new(processor: P) -> Harness<P> {
        let spec = processor.spec();
        let metrics = Arc::new(Metrics::new(spec.name, spec.version));
        let output_formats =
            spec.outputs.iter().map(|t| (*t, OutputFormat::Json(ContentMode::Binary))).collect::<HashMap<_, _>>();
        let config = EngineConfig { group: "conformance".into(), dedup_window: 32, output_formats, avro: None };
        let topic = spec.inputs[0];
        let mut engine = Engine::new(processor, config, metrics.clone());
        engine.install(0, HashMap::new());
        Harness { engine, metrics, topic, offset: 0 }
    }

    fn feed(&mut self, record: &Record) -> Vec<Out> {
        self.offset += 1;
        let input = Input {
            topic: self.topic,
            source: self.topic,
            partition: 0,
            offset: self.offset,
            timestamp_ms: Some(1_700_000_000_000),
            record,
        };
        self.engine.process(&input).expect("partition 0 is owned")
    }

    fn metric(&self, series: &str) -> f64 {
        sagastream_testkit::sum_metric(&self.metrics.encode(), series)
    }
}

fn header<'a>(record: &'a Record, name: &str) -> Option<&'a str> {
    record
        .headers
        .iter()
        .find(|h| h.name == name)
        .and_then(|h| h.value.as_deref())
        .and_then(|v| std::str::from_utf8(v).ok())
}

fn only_dlq(name: &str, what: &str, outs: &[Out]) -> Record {
    let dlq: Vec<&Out> = outs.iter().filter(|o| o.kind == OutKind::Dlq).collect();
    assert_eq!((dlq.len(), outs.len()), (1, 1), "{name}: {what} gives exactly one DLQ record and nothing else");
    dlq[0].record.clone()
}

fn check_dlq_record(name: &str, version: &str, what: &str, dlq: &Record, stage: &str, class: &str) {
    let missing: Vec<&str> = CONTEXT_HEADERS.iter().copied().filter(|h| header(dlq, h).is_none()).collect();
    assert!(missing.is_empty(), "{name}: the DLQ record of {what} lacks {missing:?}");
    assert_eq!(header(dlq, "__streams.errors.exception"), Some(class), "{name}: {what}");
    assert_eq!(header(dlq, "__streams.errors.stage"), Some(stage), "{name}: {what}");
    assert_eq!(header(dlq, "__streams.errors.processor"), Some(name), "{name}: {what}");
    assert_eq!(header(dlq, "__streams.errors.processor.version"), Some(version), "{name}: {what}");
    assert_eq!(header(dlq, "__streams.errors.group.id"), Some("conformance"), "{name}: {what}");
}

/// The metric names a processor exposes follow Prometheus conventions.
fn check_metric_names(name: &str, text: &str) {
    for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let mut words = line.split(' ');
        let (family, kind) = (words.next().unwrap(), words.next().unwrap());
        assert!(family.starts_with("sagastream_"), "{name}: {family} is not under sagastream_");
        assert!(family.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{name}: {family}");
        assert!(!family.ends_with("_total"), "{name}: {family}: the exposition adds _total to counters");
        for unit in ["_ms", "_milliseconds", "_minutes", "_kb", "_mb", "_bytes_total"] {
            assert!(!family.ends_with(unit), "{name}: {family}: base units (seconds, bytes)");
        }
        if kind == "histogram" {
            assert!(
                family.ends_with("_seconds") || family.ends_with("_records") || family.ends_with("_bytes"),
                "{name}: histogram {family} names its unit"
            );
        }
    }
}

fn conforms<P: Processor>(processor: P) {
    let spec = processor.spec();
    let (name, version) = (spec.name, spec.version);
    let mut h = Harness::new(processor);

    // Not a CloudEvent at all.
    let junk = Record { key: Some(b"k-1".to_vec()), value: Some(b"\xff not json".to_vec()), headers: Vec::new() };
    let dlq = only_dlq(name, "a record that is not a CloudEvent", &h.feed(&junk));
    check_dlq_record(name, version, "a record that is not a CloudEvent", &dlq, "decode", "not_cloudevent");
    assert_eq!(dlq.value, junk.value, "{name}: the DLQ record keeps the original value");
    // Counted when the runner commits the transaction that carries it (the
    // e2e poison test reads the count), never by the engine on its own: a
    // retried transaction would count it again.
    assert_eq!(h.metric("sagastream_dlq_records_total"), 0.0, "{name}: counted at the commit, not before");

    // A CloudEvent of one of its input types whose data does not parse.
    let event_type = EventType::ALL.iter().copied().find(|t| t.topic() == h.topic).expect("an input type");
    let mut bad = encode(&samples::one_of_each("c")[0], ContentMode::Binary).unwrap();
    bad.headers.retain(|x| x.name != "ce_type");
    bad.headers.push(Header { name: "ce_type".into(), value: Some(event_type.as_str().as_bytes().to_vec()) });
    bad.value = Some(b"{\"not\": \"the payload\"}".to_vec());
    let dlq = only_dlq(name, "an unparsable payload", &h.feed(&bad));
    check_dlq_record(name, version, "an unparsable payload", &dlq, "decode", "payload_invalid");

    // An input it applies, delivered twice.
    let topic = h.topic;
    let applied = EventType::ALL.iter().copied().filter(|t| t.topic() == topic).find_map(|t| {
        let record =
            encode(&sagastream_contract::Event::new("/conformance", samples::payload(t, "c")), ContentMode::Binary)
                .unwrap();
        let series = format!("sagastream_events_processed_total{{event_type=\"{}\",outcome=\"applied\"}}", t.as_str());
        let outs = h.feed(&record);
        let dlq = outs.iter().any(|o| o.kind == OutKind::Dlq);
        (!dlq && h.metric(&series) == 1.0).then_some((t, record))
    });
    let (t, record) = applied.unwrap_or_else(|| panic!("{name}: no sample event of {} is applied", h.topic));
    let again = h.feed(&record);
    assert!(again.is_empty(), "{name}: {} delivered again gives no output: {again:?}", t.as_str());
    assert_eq!(h.metric("sagastream_duplicates_dropped_total"), 1.0, "{name}: the redelivery is counted");

    check_metric_names(name, &h.metrics.encode());
}

#[test]
fn the_probe_conforms() {
    conforms(sagastream_probe::Probe { idle_after: None });
}

#[test]
fn the_escrow_saga_conforms() {
    conforms(sagastream_escrow_saga::EscrowSaga { config: Default::default() });
}

#[test]
fn the_order_saga_conforms() {
    conforms(sagastream_order_saga::OrderSaga { config: Default::default() });
}

#[test]
fn the_inventory_projector_conforms() {
    conforms(sagastream_inventory::Inventory::default());
}

#[test]
fn the_tracking_processor_conforms() {
    conforms(sagastream_tracking::Tracking::default());
}

#[test]
fn the_runner_presence_processor_conforms() {
    conforms(sagastream_runner::RunnerPresence::default());
}

/// Ingest reads foreign envelopes, not CloudEvents, and keeps no state: its
/// conformance is the same DLQ contract on its own classes, and a
/// redelivery translated again to the same bytes (the consumers
/// de-duplicate on the producer's id it keeps).
#[test]
fn the_ingest_processor_conforms() {
    let spec = sagastream_ingest::Ingest.spec();
    let (name, version) = (spec.name, spec.version);
    let mut h = Harness::new(sagastream_ingest::Ingest);
    h.topic = "go4u.events";

    let junk = Record { key: Some(b"k-1".to_vec()), value: Some(b"\xff not json".to_vec()), headers: Vec::new() };
    let dlq = only_dlq(name, "a record that is not JSON", &h.feed(&junk));
    check_dlq_record(name, version, "a record that is not JSON", &dlq, "decode", "invalid_envelope");
    assert_eq!(dlq.value.as_deref(), Some(&b""[..]), "{name}: bytes it cannot scrub are not copied");

    let go4u = |name: &str, payload: serde_json::Value| Record {
        key: None,
        value: Some(
            serde_json::to_vec(&serde_json::json!({
                "event_id": "01JGQW0000000000000000000B", "event_name": name, "event_version": 1,
                "occurred_at": "2025-09-25T11:10:00Z", "producer": "admin-service", "payload": payload,
                "metadata": {"ip": "198.51.100.4"}
            }))
            .unwrap(),
        ),
        headers: Vec::new(),
    };
    let dlq = only_dlq(name, "a type it does not carry", &h.feed(&go4u("user.login", serde_json::json!({}))));
    check_dlq_record(name, version, "a type it does not carry", &dlq, "decode", "unmapped_type");
    assert!(!String::from_utf8_lossy(dlq.value.as_deref().unwrap()).contains("198.51.100.4"));

    let opened = go4u(
        "dispute.opened",
        serde_json::json!({"dispute_id": "d1", "task_id": "b1", "opened_by": "agent", "at": "2025-09-25T11:10:00Z"}),
    );
    let first = h.feed(&opened);
    assert_eq!((first.len(), first[0].kind, first[0].topic), (1, OutKind::Derived, "payment.events"), "{name}");
    let again = h.feed(&opened);
    assert_eq!(again.len(), 1, "{name}: stateless, a redelivery is translated again");
    assert_eq!(again[0].record, first[0].record, "{name}: to the same bytes");
    assert_eq!(h.metric("sagastream_ingest_records_total{platform=\"go4u\",outcome=\"translated\"}"), 2.0);
    assert_eq!(h.metric("sagastream_ingest_records_total{platform=\"go4u\",outcome=\"unmapped_type\"}"), 1.0);
    assert_eq!(h.metric("sagastream_ingest_records_total{platform=\"go4u\",outcome=\"invalid_envelope\"}"), 1.0);
    check_metric_names(name, &h.metrics.encode());
}
