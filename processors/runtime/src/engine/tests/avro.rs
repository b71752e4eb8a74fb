//! Avro without a registry that answers: an Avro input with no registry
//! configured is dead-lettered with its class; a registry that does not
//! answer fails the step as retriable and changes nothing, for an input,
//! an Avro output and a timer alike. (The round trip through a real
//! registry is the end-to-end suite's.)

use sagastream_contract::{encode_avro, payloads::runner::RunnerOnline};
use sagastream_registry::avro::AvroCodec;

use super::*;

/// Nothing listens on port 1.
const DOWN: &str = "http://127.0.0.1:1/apis/ccompat/v7";

fn avro_record(key: &str, id: &str) -> Record {
    let event =
        Event::new("/t", RunnerOnline { runner_id: key.into(), latitude: 0.0, longitude: 0.0, occurred_at: t0() })
            .with_id(id)
            .with_time(t0());
    encode_avro(&event, vec![0, 0, 0, 0, 1, 2], "http://r/schemas/ids/1").unwrap()
}

fn with_registry(avro_output: bool) -> Engine<Counter> {
    let format = match avro_output {
        true => OutputFormat::Avro { subject_topic: "t.probe.events".into() },
        false => OutputFormat::Json(ContentMode::Binary),
    };
    let config = EngineConfig {
        group: "g".into(),
        dedup_window: 3,
        output_formats: HashMap::from([("probe.events", format)]),
        avro: Some(Arc::new(AvroCodec::new(DOWN).unwrap())),
    };
    let mut e = Engine::new(Counter, config, Arc::new(Metrics::new("counter", "1.0.0")));
    e.install(0, HashMap::new());
    e
}

#[test]
fn an_avro_input_without_a_registry_is_dead_lettered_and_the_partition_goes_on() {
    let mut e = engine();
    let r = avro_record("r1", "e1");
    let outs = e.process(&input(&r, 0)).unwrap();
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].kind, OutKind::Dlq);
    assert_eq!(header(&outs[0].record, dlq::EXCEPTION), Some("no_schema_registry"));
    assert_eq!(outs[0].record.value, r.value, "the original bytes, to replay once a registry is set");
    let next = record("r1", "e2", 0.0);
    assert_eq!(e.process(&input(&next, 1)).unwrap()[0].kind, OutKind::Derived);
}

#[test]
fn a_registry_that_does_not_answer_fails_the_input_as_retriable_and_changes_nothing() {
    let mut e = with_registry(false);
    let r = avro_record("r1", "e1");
    let err = e.process(&input(&r, 0)).unwrap_err();
    assert!(matches!(err, EngineError::RegistryUnavailable(_)), "{err}");
    assert!(!e.has_pending());
    assert!(!e.metrics.encode().contains("sagastream_dlq_records_total{"), "nothing dead-lettered");
    // JSON inputs need no registry.
    let json = record("r2", "e2", 0.0);
    assert_eq!(e.process(&input(&json, 1)).unwrap()[0].kind, OutKind::Derived);
}

#[test]
fn an_avro_output_the_registry_cannot_take_fails_the_step_and_a_timer_comes_back_after_the_abort() {
    let mut e = with_registry(true);
    let r = record("r1", "e1", 0.0);
    let err = e.process(&input(&r, 0)).unwrap_err();
    assert!(matches!(err, EngineError::RegistryUnavailable(_)), "{err}");
    assert!(!e.has_pending(), "the step's state was not kept");
    assert_eq!(e.committed_state(0, "r1"), None);

    // A timer set and committed with a JSON output, fired with the registry down.
    let mut json = engine();
    let timed = record("r3", "e3", 3.0);
    json.process(&input(&timed, 1)).unwrap();
    json.commit();
    let committed = json.remove(0).unwrap();
    e.install(0, committed);
    let due = e.next_due().expect("the timer");
    assert!(matches!(e.fire_due(due, 10), Err(EngineError::RegistryUnavailable(_))));
    e.abort();
    assert_eq!(e.next_due(), Some(due), "back as committed, to fire on the retry");
}
