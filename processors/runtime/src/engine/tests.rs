use chrono::{TimeDelta, TimeZone};
use sagastream_contract::payloads::probe::ProbeCounted;
use sagastream_contract::payloads::runner::RunnerOnline;
use sagastream_contract::Payload;

use super::*;
use crate::metrics::ProcessedLabel;
use crate::processor::{Emit, Outcome, Rejection};
use crate::{changelog, dlq};
use sagastream_contract::{decode, encode};

/// Counts inputs per key; `latitude` drives the test cases.
pub(super) struct Counter;

impl Processor for Counter {
    type State = u64;

    fn spec(&self) -> Spec {
        Spec {
            name: "counter",
            version: "1.0.0",
            inputs: vec!["runner.events"],
            outputs: vec!["probe.events"],
            changelog: Some("probe.changelog"),
            dlq: "probe.dlq",
            repartitions: Vec::new(),
        }
    }

    fn process(&self, state: Option<&u64>, event: &Event, ctx: &Context<'_>) -> Outcome<u64> {
        let Payload::RunnerOnline(p) = &event.data else { return Ok(Step::keep()) };
        let count = state.copied().unwrap_or(0) + 1;
        let counted = ProbeCounted {
            aggregate_id: ctx.key.into(),
            count,
            input_id: event.id.clone(),
            input_type: "runner.online".into(),
            occurred_at: ctx.now,
        };
        match p.latitude as i64 {
            1 => Err(Rejection::new("invalid_transition", "latitude 1 is refused")),
            2 => Ok(Step::set(count).push(Emit::new(counted).to_topic("runner.events"))),
            3 => Ok(Step::set(count).set_timer("t", ctx.now + TimeDelta::seconds(10))),
            4 => Ok(Step::delete()),
            _ => Ok(Step::set(count).emit(counted)),
        }
    }

    fn state_label(&self, count: &u64) -> Option<&'static str> {
        Some(if count.is_multiple_of(2) { "even" } else { "odd" })
    }

    fn on_timer(&self, state: Option<&u64>, timer: &Timer, ctx: &Context<'_>) -> Outcome<u64> {
        Ok(Step::set(state.copied().unwrap_or(0) + 100).emit(ProbeCounted {
            aggregate_id: ctx.key.into(),
            count: 0,
            input_id: timer.name.clone(),
            input_type: "timer".into(),
            occurred_at: ctx.now,
        }))
    }
}

pub(super) fn engine() -> Engine<Counter> {
    let config = EngineConfig {
        group: "g".into(),
        dedup_window: 3,
        output_formats: HashMap::from([("probe.events", OutputFormat::Json(ContentMode::Binary))]),
        avro: None,
    };
    let mut e = Engine::new(Counter, config, Arc::new(Metrics::new("counter", "1.0.0")));
    e.install(0, HashMap::new());
    e
}

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 15, 10, 0, 0).unwrap()
}

pub(super) fn record(key: &str, id: &str, latitude: f64) -> Record {
    let event = Event::new("/t", RunnerOnline { runner_id: key.into(), latitude, longitude: 0.0, occurred_at: t0() })
        .with_id(id)
        .with_time(t0());
    encode(&event, ContentMode::Binary).unwrap()
}

pub(super) fn input(record: &Record, offset: i64) -> Input<'_> {
    Input { topic: "runner.events", source: "t.runner.events", partition: 0, offset, timestamp_ms: Some(0), record }
}

pub(super) fn header<'a>(r: &'a Record, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|h| h.name == name).and_then(|h| std::str::from_utf8(h.value.as_deref()?).ok())
}

fn decode_out(out: &Out) -> Event {
    decode(&out.record).unwrap().event
}

#[test]
fn applies_emits_and_commits_with_changelog() {
    let mut e = engine();
    let r = record("r1", "e1", 0.0);
    let outs = e.process(&input(&r, 0)).unwrap();
    assert_eq!(outs.len(), 1);
    assert_eq!((outs[0].topic, outs[0].kind, outs[0].partition), ("probe.events", OutKind::Derived, None));
    let derived = decode_out(&outs[0]);
    let data = derived.data.to_json_vec();
    let expected = ids::derived_id("counter", Cause::Input { event_id: "e1" }, "probe.counted", &data, 0);
    assert_eq!(derived.id, expected.to_string());
    assert_eq!(derived.time, Some(t0()), "derived events carry the event clock");
    assert_eq!(derived.source, "/sagastream/counter");
    assert!(matches!(derived.data, Payload::ProbeCounted(ref c) if c.count == 1 && c.aggregate_id == "r1"));
    assert_eq!(e.committed_state(0, "r1"), None, "not committed yet");

    let positions = BTreeMap::from([(0, BTreeMap::from([("runner.events", 1)]))]);
    let log = e.changelog(&positions);
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].topic, log[0].partition), ("probe.changelog", Some(0)));
    assert_eq!(header(&log[0].record, changelog::POSITIONS_HEADER), Some("runner.events:1"));
    let change: Change<u64> = changelog::decode(&log[0].record).unwrap();
    assert_eq!(change.entry.as_ref().unwrap().state, Some(1));
    let seen = &change.entry.as_ref().unwrap().seen;
    assert!(seen.contains("e1") && seen.len() == 1, "{seen:?}");
    e.commit();
    assert_eq!(e.committed_state(0, "r1"), Some(&1));
    assert!(e.changelog(&positions).is_empty(), "nothing pending after commit");
}

#[test]
fn active_keys_by_state_follow_the_committed_state_only() {
    let mut e = engine();
    let by_state = |e: &Engine<Counter>| {
        let text = e.metrics.encode();
        ["even", "odd"].map(|s| {
            let series = format!("sagastream_sagas_active{{state=\"{s}\"}} ");
            text.lines().find_map(|l| l.strip_prefix(series.as_str())).map_or(-1, |v| v.parse::<i64>().unwrap())
        })
    };
    let (r1, r2, r3) = (record("a", "e1", 0.0), record("b", "e2", 0.0), record("a", "e3", 0.0));
    e.process(&input(&r1, 0)).unwrap();
    e.process(&input(&r2, 1)).unwrap();
    assert_eq!(by_state(&e), [-1, -1], "nothing counted before the commit");
    e.commit();
    assert_eq!(by_state(&e), [-1, 2], "a and b counted once each");
    e.process(&input(&r3, 2)).unwrap();
    e.abort();
    e.commit();
    assert_eq!(by_state(&e), [-1, 2], "an aborted change is not counted");
    e.process(&input(&r3, 2)).unwrap();
    e.commit();
    assert_eq!(by_state(&e), [1, 1], "a moved from odd to even");
    let state = e.remove(0).unwrap();
    assert_eq!(by_state(&e), [0, 0], "a partition given up takes its keys along");
    e.install(0, state);
    assert_eq!(by_state(&e), [1, 1], "and brings them back");
}

#[test]
fn rerun_is_byte_identical() {
    let r = record("r1", "e1", 0.0);
    let a = engine().process(&input(&r, 0)).unwrap();
    let b = engine().process(&input(&r, 0)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn duplicates_are_dropped_within_the_window() {
    let mut e = engine();
    for (i, id) in ["a", "b", "a", "c", "d", "a"].iter().enumerate() {
        e.process(&input(&record("r1", id, 0.0), i as i64)).unwrap();
    }
    // a, b, (a dropped), c, d, then a again: the window of 3 holds b, c, d.
    assert_eq!(e.stores[&0].get("r1").unwrap().state, Some(5));
    assert_eq!(e.metrics.duplicates.get(), 1);
}

#[test]
fn poison_goes_to_the_dlq_with_context() {
    let mut e = engine();
    let garbage = Record { key: Some(b"r1".to_vec()), value: Some(b"\x00\x01".to_vec()), headers: vec![] };
    let outs = e.process(&input(&garbage, 7)).unwrap();
    assert_eq!(outs.len(), 1);
    let dlq = &outs[0];
    assert_eq!((dlq.topic, dlq.kind), ("probe.dlq", OutKind::Dlq));
    assert_eq!(dlq.record.value, garbage.value);
    assert_eq!(header(&dlq.record, dlq::STAGE), Some("decode"));
    assert_eq!(header(&dlq.record, dlq::EXCEPTION), Some("not_cloudevent"));
    assert_eq!(header(&dlq.record, dlq::OFFSET), Some("7"));
    assert_eq!(header(&dlq.record, dlq::PROCESSOR), Some("counter"));
    assert_eq!(header(&dlq.record, dlq::ATTEMPT), Some("1"));

    // A rejection keeps the state and names it.
    e.process(&input(&record("r1", "ok", 0.0), 8)).unwrap();
    let outs = e.process(&input(&record("r1", "bad", 1.0), 9)).unwrap();
    assert_eq!(header(&outs[0].record, dlq::STAGE), Some("process"));
    assert_eq!(header(&outs[0].record, dlq::EXCEPTION), Some("invalid_transition"));
    assert_eq!(header(&outs[0].record, dlq::STATE), Some("1"));
    assert_eq!(header(&outs[0].record, dlq::EVENT_ID), Some("bad"));
    assert_eq!(e.stores[&0].get("r1").unwrap().state, Some(1));

    // An output to an undeclared topic fails the whole step.
    let outs = e.process(&input(&record("r1", "undeclared", 2.0), 10)).unwrap();
    assert_eq!(outs.len(), 1);
    assert_eq!(header(&outs[0].record, dlq::STAGE), Some("produce"));
    assert_eq!(header(&outs[0].record, dlq::EXCEPTION), Some("undeclared_output"));
    assert_eq!(e.stores[&0].get("r1").unwrap().state, Some(1));
}

#[test]
fn abort_restores_the_committed_state_and_timers() {
    let mut e = engine();
    e.process(&input(&record("r1", "a", 0.0), 0)).unwrap();
    e.commit();
    e.process(&input(&record("r1", "b", 3.0), 1)).unwrap();
    assert!(e.next_due().is_some());
    assert_eq!(e.stores[&0].get("r1").unwrap().state, Some(2));
    e.abort();
    assert_eq!(e.stores[&0].get("r1").unwrap().state, Some(1));
    assert_eq!(e.next_due(), None);
    assert_eq!(e.attempt, 2);
    assert!(!e.has_pending());
    // The retry is not a duplicate: the aborted input's id was dropped with the pending state.
    e.process(&input(&record("r1", "b", 3.0), 1)).unwrap();
    assert_eq!(e.stores[&0].get("r1").unwrap().state, Some(2));
}

#[test]
fn timers_fire_once_survive_a_restore_and_move_with_the_partition() {
    let mut e = engine();
    e.process(&input(&record("r1", "a", 3.0), 0)).unwrap();
    e.commit();
    let due = (t0() + TimeDelta::seconds(10)).timestamp_millis();
    assert_eq!(e.next_due(), Some(due));
    assert!(e.fire_due(due - 1, 10).unwrap().is_empty(), "not due yet");

    // Restore the partition from its changelog into a new engine.
    let positions = BTreeMap::new();
    let state = e.remove(0).unwrap();
    assert_eq!(e.next_due(), None, "timers leave with the partition");
    let mut restored = engine();
    restored.remove(0);
    restored.install(0, state);
    assert_eq!(restored.next_due(), Some(due));

    let outs = restored.fire_due(due, 10).unwrap();
    assert_eq!(outs.len(), 1);
    let fired = decode_out(&outs[0]);
    assert_eq!(fired.time.unwrap().timestamp_millis(), due, "timer outputs carry the due time");
    let cause = Cause::Timer { key: "r1", name: "t", due_ms: due };
    assert_eq!(fired.id, ids::derived_id("counter", cause, "probe.counted", &fired.data.to_json_vec(), 0).to_string());
    assert_eq!(restored.stores[&0].get("r1").unwrap().state, Some(101));
    assert!(restored.fire_due(due + 1000, 10).unwrap().is_empty(), "fires once");
    let log = restored.changelog(&positions);
    assert_eq!(log.len(), 1);
    restored.commit();
    assert_eq!(restored.next_due(), None);
}

#[test]
fn delete_writes_a_tombstone_and_forgets_the_key() {
    let mut e = engine();
    e.process(&input(&record("r1", "a", 0.0), 0)).unwrap();
    e.commit();
    e.process(&input(&record("r1", "b", 4.0), 1)).unwrap();
    let log = e.changelog(&BTreeMap::new());
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].record.value, None);
    e.commit();
    assert_eq!(e.committed_state(0, "r1"), None);
    let mut map = HashMap::from([("r1".to_string(), Entry { state: Some(1u64), ..Entry::default() })]);
    Engine::<Counter>::restore_into(&mut map, Change { key: "r1".into(), entry: None, positions: vec![] });
    assert!(map.is_empty());
}

#[test]
fn unowned_partition_is_an_error_not_a_guess() {
    let mut e = engine();
    let r = record("r1", "a", 0.0);
    let i = Input { partition: 5, ..input(&r, 0) };
    assert_eq!(e.process(&i), Err(EngineError::NotOwned(5)));
}

/// Re-emits every runner.online as probe.counted; keeps nothing.
struct Stateless;

impl Processor for Stateless {
    type State = ();

    fn spec(&self) -> Spec {
        Spec { changelog: None, ..Counter.spec() }
    }

    fn process(&self, _: Option<&()>, event: &Event, ctx: &Context<'_>) -> Outcome<()> {
        let counted = ProbeCounted {
            aggregate_id: ctx.key.into(),
            count: 0,
            input_id: event.id.clone(),
            input_type: event.event_type().as_str().into(),
            occurred_at: ctx.now,
        };
        match &event.data {
            Payload::RunnerOnline(p) if p.latitude as i64 == 3 => Ok(Step::set(())),
            _ => Ok(Step::keep().emit(counted)),
        }
    }
}

#[test]
fn stateless_processors_use_the_same_api_and_keep_nothing() {
    let config = EngineConfig {
        group: "g".into(),
        dedup_window: 3,
        output_formats: HashMap::from([("probe.events", OutputFormat::Json(ContentMode::Binary))]),
        avro: None,
    };
    let mut e = Engine::new(Stateless, config, Arc::new(Metrics::new("stateless", "1")));
    e.install(0, HashMap::new());
    let r = record("r1", "a", 0.0);
    assert_eq!(e.process(&input(&r, 0)).unwrap().len(), 1);
    // No de-duplication without state: the same id is processed again, with the same bytes.
    assert_eq!(e.process(&input(&r, 1)).unwrap(), e.process(&input(&r, 1)).unwrap());
    assert!(!e.has_pending());
    assert!(e.changelog(&BTreeMap::new()).is_empty());
    // Asking to keep state without a changelog is a bug in the processor: DLQ, not silent loss.
    let outs = e.process(&input(&record("r1", "b", 3.0), 2)).unwrap();
    assert_eq!(header(&outs[0].record, dlq::EXCEPTION), Some("stateless_processor_kept_state"));
}

#[test]
fn own_outputs_read_back_are_skipped_undecoded() {
    let mut e = engine();
    let r = record("r1", "e1", 0.0);
    let outs = e.process(&input(&r, 0)).unwrap();
    // The derived record (source /sagastream/counter) arrives on an input topic.
    let echoed = e.process(&input(&outs[0].record, 1)).unwrap();
    assert!(echoed.is_empty(), "no output, no DLQ record");
    e.commit();
    assert_eq!(e.committed_state(0, "r1"), Some(&1), "the state did not count it");
    // A foreign producer's record with the same body is processed.
    let mut foreign = outs[0].record.clone();
    for h in &mut foreign.headers {
        if h.name == "ce_source" {
            h.value = Some(b"/elsewhere".to_vec());
        }
    }
    e.process(&input(&foreign, 2)).unwrap();
    let count = |outcome: &'static str| {
        e.metrics.processed.get_or_create(&ProcessedLabel { event_type: "probe.counted".into(), outcome }).get()
    };
    assert_eq!((count("own_output"), count("ignored")), (1, 1), "ours skipped, the foreign one decoded and ignored");
}

/// Counts inputs per order, with inventory events joined by re-keying.
struct Joiner;

impl Processor for Joiner {
    type State = u64;

    fn spec(&self) -> Spec {
        Spec {
            name: "joiner",
            version: "1.0.0",
            inputs: vec!["order.events", "payment.events", "order.saga.inventory.repartition"],
            outputs: vec![],
            changelog: Some("order.saga.changelog"),
            dlq: "order.saga.dlq",
            repartitions: vec![crate::Repartition {
                from: "inventory.events",
                to: "order.saga.inventory.repartition",
                key: |e| match &e.data {
                    Payload::InventoryReserved(r) => Some(r.order_id.clone()),
                    _ => e.correlationid.clone(),
                },
                quick_key: Some(|v| match v.event_type() {
                    "inventory.reserved" => v.data_str("order_id"),
                    _ => None,
                }),
            }],
        }
    }

    fn process(&self, state: Option<&u64>, _: &Event, _: &Context<'_>) -> Outcome<u64> {
        Ok(Step::set(state.copied().unwrap_or(0) + 1))
    }
}

#[test]
fn rekeyed_records_reach_the_state_of_their_new_key_once() {
    use sagastream_contract::{samples, EventType};
    let config = EngineConfig { group: "g".into(), dedup_window: 3, output_formats: HashMap::new(), avro: None };
    let metrics = Arc::new(Metrics::new("joiner", "1.0.0"));
    let mut e = Engine::new(Joiner, config, metrics.clone());
    e.install(0, HashMap::new());
    let repartition = e.spec().repartitions[0];
    fn source(record: &Record) -> Input<'_> {
        Input {
            topic: "inventory.events",
            source: "t.inventory.events",
            partition: 4,
            offset: 7,
            timestamp_ms: Some(0),
            record,
        }
    }
    let outcome = |event_type: &'static str, outcome| {
        metrics.processed.get_or_create(&ProcessedLabel { event_type: event_type.into(), outcome }).get()
    };

    // inventory.reserved names its order: re-keyed by it, value and headers untouched.
    let reserved = Event::new("/inv", samples::payload(EventType::InventoryReserved, "x"));
    let original = encode(&reserved, ContentMode::Binary).unwrap();
    let outs = e.rekey(&source(&original), &repartition).unwrap();
    assert_eq!(outs.len(), 1);
    assert_eq!(
        (outs[0].topic, outs[0].kind, outs[0].partition),
        ("order.saga.inventory.repartition", OutKind::Derived, None)
    );
    assert_eq!(outs[0].record.key.as_deref(), Some(&b"order_x"[..]));
    assert_eq!((&outs[0].record.value, &outs[0].record.headers), (&original.value, &original.headers));
    assert_eq!(outcome("inventory.reserved", "repartitioned"), 1);

    // Consumed on the repartition topic, it is state of the order, not the product.
    let rekeyed = outs[0].record.clone();
    let on_topic = |offset| Input {
        topic: "order.saga.inventory.repartition",
        source: "t.order.saga.inventory.repartition",
        partition: 0,
        offset,
        timestamp_ms: Some(0),
        record: &rekeyed,
    };
    assert!(e.process(&on_topic(0)).unwrap().is_empty());
    assert!(e.process(&on_topic(1)).unwrap().is_empty(), "a second copy is a duplicate, not a second input");
    e.commit();
    assert_eq!(e.committed_state(0, "order_x"), Some(&1));
    assert_eq!(e.committed_state(0, "prod_x"), None);
    assert_eq!(outcome("inventory.reserved", "duplicate"), 1);

    // No order reference: not re-keyed. Undecodable: a DLQ record, classified.
    let adjusted =
        encode(&Event::new("/inv", samples::payload(EventType::InventoryAdjusted, "x")), ContentMode::Binary).unwrap();
    assert!(e.rekey(&source(&adjusted), &repartition).unwrap().is_empty());
    assert_eq!(outcome("inventory.adjusted", "not_repartitioned"), 1);
    let garbage = Record { key: Some(b"prod_x".to_vec()), value: Some(b"{".to_vec()), headers: Vec::new() };
    let outs = e.rekey(&source(&garbage), &repartition).unwrap();
    assert_eq!((outs.len(), outs[0].topic, outs[0].kind), (1, "order.saga.dlq", OutKind::Dlq));
    assert_eq!(header(&outs[0].record, dlq::EXCEPTION), Some("not_cloudevent"));
    assert_eq!(header(&outs[0].record, dlq::TOPIC), Some("t.inventory.events"));

    // The quick way reads only the order id: a reservation whose payload is
    // short of fields is re-keyed, and dead-lettered when read back.
    let mut short = original.clone();
    short.value = Some(br#"{"order_id": "order_y"}"#.to_vec());
    let outs = e.rekey(&source(&short), &repartition).unwrap();
    assert_eq!((outs.len(), outs[0].record.key.as_deref()), (1, Some(&b"order_y"[..])));
    assert_eq!(outcome("inventory.reserved", "repartitioned"), 2);
    let back = outs[0].record.clone();
    let outs = e.process(&Input { record: &back, ..on_topic(2) }).unwrap();
    assert_eq!((outs.len(), outs[0].topic, outs[0].kind), (1, "order.saga.dlq", OutKind::Dlq));
    assert_eq!(header(&outs[0].record, dlq::TOPIC), Some("t.order.saga.inventory.repartition"));

    // A payload whose key field disagrees with the record key is still refused on a normal input.
    let on_orders = Input { topic: "order.events", ..on_topic(2) };
    let outs = e.process(&on_orders).unwrap();
    assert_eq!(header(&outs[0].record, dlq::EXCEPTION), Some("key_mismatch"));
}

/// The counter with the sequence guard on.
struct Guarded;

impl Processor for Guarded {
    type State = u64;

    fn spec(&self) -> Spec {
        Counter.spec()
    }

    fn sequence_guard(&self) -> bool {
        true
    }

    fn process(&self, state: Option<&u64>, event: &Event, ctx: &Context<'_>) -> Outcome<u64> {
        Counter.process(state, event, ctx)
    }
}

#[test]
fn the_sequence_guard_drops_what_is_not_newer_for_its_key() {
    let config = EngineConfig { group: "g".into(), dedup_window: 3, output_formats: HashMap::new(), avro: None };
    let mut e = Engine::new(Guarded, config, Arc::new(Metrics::new("guarded", "1.0.0")));
    e.install(0, HashMap::new());
    let sequenced = |id: &str, seq: Option<u64>| {
        let mut event =
            Event::new("/t", RunnerOnline { runner_id: "r1".into(), latitude: 0.0, longitude: 0.0, occurred_at: t0() })
                .with_id(id)
                .with_time(t0());
        event.sequence = seq;
        encode(&event, ContentMode::Binary).unwrap()
    };
    let inputs = [("e1", Some(5)), ("e2", Some(5)), ("e3", Some(4)), ("e4", Some(7)), ("e5", None), ("e6", Some(6))];
    for (offset, (id, seq)) in inputs.iter().enumerate() {
        let r = sequenced(id, *seq);
        e.process(&input(&r, offset as i64)).unwrap();
    }
    e.commit();
    // 5 and 7 apply, and the one without a sequence; 5 again, 4 and 6 are stale.
    assert_eq!(e.committed_state(0, "r1"), Some(&3));
    let text = e.metrics.encode();
    let stale = text.lines().find_map(|l| {
        l.strip_prefix("sagastream_events_processed_total{event_type=\"runner.online\",outcome=\"stale_sequence\"} ")
    });
    assert_eq!(stale, Some("3"));
    // Without the guard the same inputs all apply.
    let mut plain = engine();
    for (offset, (id, seq)) in inputs.iter().enumerate() {
        let r = sequenced(id, *seq);
        plain.process(&input(&r, offset as i64)).unwrap();
    }
    plain.commit();
    assert_eq!(plain.committed_state(0, "r1"), Some(&6));
}

/// Reads "foreign" records: a value `ok:<runner>` is that runner's
/// `runner.online` with id `f-<runner>`; anything else is refused, with a
/// scrubbed copy for the DLQ.
struct Translator;

impl Processor for Translator {
    type State = ();

    fn spec(&self) -> Spec {
        Spec {
            name: "translator",
            version: "1.0.0",
            inputs: vec!["runner.events"],
            outputs: vec!["runner.events"],
            changelog: None,
            dlq: "probe.dlq",
            repartitions: Vec::new(),
        }
    }

    fn translate(&self, record: &Record, _topic: &str) -> Option<crate::Translation> {
        let text = std::str::from_utf8(record.value.as_deref()?).ok()?;
        let result = match text.strip_prefix("ok:") {
            Some(runner) => Ok(Event::new(
                "/elsewhere/svc",
                RunnerOnline { runner_id: runner.into(), latitude: 1.0, longitude: 2.0, occurred_at: t0() },
            )
            .with_id(format!("f-{runner}"))
            .with_time(t0())
            .with_sequence(7)),
            None => Err(crate::Refusal { class: "unknown_type", message: "no".into(), scrubbed: Some(b"{}".to_vec()) }),
        };
        Some(crate::Translation { platform: "elsewhere", result })
    }

    fn process(&self, _: Option<&()>, event: &Event, _: &Context<'_>) -> Outcome<()> {
        Ok(Step::keep().push(Emit::forward(event.clone())))
    }
}

#[test]
fn a_translated_record_is_forwarded_with_its_own_attributes_and_a_refused_one_dead_lettered_scrubbed() {
    let metrics = Arc::new(Metrics::new("translator", "1.0.0"));
    let config = EngineConfig { group: "g".into(), dedup_window: 3, output_formats: HashMap::new(), avro: None };
    let mut e = Engine::new(Translator, config, metrics.clone());
    e.install(0, HashMap::new());
    let foreign = Record { key: None, value: Some(b"ok:r9".to_vec()), headers: Vec::new() };
    let outs = e.process(&input(&foreign, 0)).unwrap();
    assert_eq!(outs.len(), 1);
    let event = decode_out(&outs[0]);
    assert_eq!((event.id.as_str(), event.source.as_str()), ("f-r9", "/elsewhere/svc"), "not derived ids");
    assert_eq!((event.time, event.sequence, event.key()), (Some(t0()), Some(7), "r9"));
    assert_eq!(outs[0].record.key.as_deref(), Some(&b"r9"[..]));
    let refused = Record { key: None, value: Some(b"secret ada@example.ng".to_vec()), headers: Vec::new() };
    let outs = e.process(&input(&refused, 1)).unwrap();
    assert_eq!((outs.len(), outs[0].kind, outs[0].topic), (1, OutKind::Dlq, "probe.dlq"));
    assert_eq!(outs[0].record.value.as_deref(), Some(&b"{}"[..]), "the DLQ holds the scrubbed copy");
    assert_eq!(header(&outs[0].record, dlq::EXCEPTION), Some("unknown_type"));
    let text = metrics.encode();
    assert!(
        text.contains("sagastream_ingest_records_total{platform=\"elsewhere\",outcome=\"translated\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sagastream_ingest_records_total{platform=\"elsewhere\",outcome=\"unknown_type\"} 1"),
        "{text}"
    );
}

mod avro;
mod layers;
