use sagastream_contract::samples;
use sagastream_contract::{encode, ContentMode, EventType, Payload, Record};
use sagastream_runtime::config::EMBEDDED_TOPICS;
use sagastream_topics::{TopicKind, Topics};
use serde_json::{json, Value};

use super::*;
use crate::mapping::{Target, TABLE};

fn record(value: &Value) -> Record {
    Record { key: Some(b"k".to_vec()), value: Some(serde_json::to_vec(value).unwrap()), headers: Vec::new() }
}

fn translate(topic: &str, value: &Value) -> Result<Event, sagastream_runtime::Refusal> {
    let (_, platform) = RAW_TOPICS.iter().find(|(t, _)| *t == topic).expect("a raw topic");
    Ingest::translate_record(*platform, &record(value), topic)
}

fn fv(event_type: &str, version_field: &str, data: Value) -> Value {
    json!({
        "event_id": "550e8400-e29b-41d4-a716-446655440006",
        "correlation_id": "550e8400-e29b-41d4-a716-446655440001",
        "timestamp": "2024-01-15T11:00:00Z",
        "source_service": "inventory-management-service",
        version_field: "1.0",
        "event_type": event_type,
        "data": data,
    })
}

fn go4u(name: &str, payload: Value) -> Value {
    json!({
        "event_id": "01JGQW5V6Z3Y0000000000000A",
        "event_name": name,
        "event_version": 1,
        "occurred_at": "2025-09-25T15:00:00Z",
        "producer": "admin-service",
        "payload": payload,
        "metadata": {"trace_id": "a3f2", "sequence": 42, "ip": "203.0.113.7", "locale": "en", "actor_user_id": "usr_123"},
    })
}

fn korrectng(event_type: &str, payload: Value) -> Value {
    json!({
        "id": "7d4f3c2a-0b1e-4c5d-9e8f-1a2b3c4d5e6f",
        "type": event_type,
        "payload": payload,
        "timestamp": "2025-10-01T09:30:00.250Z",
        "source": "transaction-service",
        "correlationId": "c0ffee00-0000-4000-8000-000000000001",
    })
}

fn class(result: Result<Event, sagastream_runtime::Refusal>) -> &'static str {
    result.expect_err("refused").class
}

#[test]
fn the_raw_topics_are_topics_yaml_s() {
    let topics = Topics::parse(EMBEDDED_TOPICS, "topics.yaml").unwrap();
    let declared: Vec<(String, Envelope)> = topics
        .topics
        .iter()
        .filter(|t| t.kind == TopicKind::Raw)
        .map(|t| (t.name.clone(), t.envelope.expect("a raw topic names its envelope")))
        .collect();
    let mut ours: Vec<(String, Envelope)> = RAW_TOPICS.iter().map(|(t, e)| (t.to_string(), *e)).collect();
    ours.sort();
    assert_eq!(ours, declared);
    for row in TABLE {
        if let Some(t) = row.target.event_type() {
            assert!(OUTPUTS.contains(&t.topic()), "{} goes to {}, not an output", row.native, t.topic());
        }
    }
    // First Viscount publishes one topic per type: every carried and
    // not-carried First Viscount type has one.
    for row in TABLE.iter().filter(|r| r.platform == Envelope::FirstViscount) {
        let name = row.target.event_type().map_or(row.native, EventType::as_str);
        assert!(RAW_TOPICS.iter().any(|(t, _)| t.ends_with(&format!(".{name}.v1"))), "no topic for {}", row.native);
    }
}

#[test]
fn every_first_viscount_type_translates_its_payload_unchanged() {
    for row in TABLE.iter().filter(|r| r.platform == Envelope::FirstViscount) {
        let Some(event_type) = row.target.event_type() else {
            let topic = format!("product-catalog.{}.v1", row.native);
            let refused = translate(&topic, &fv(row.native, "event_version", json!({"product_id": "p"})));
            assert_eq!(class(refused), "unmapped_type", "{}", row.native);
            continue;
        };
        let sample = samples::payload(event_type, "fv");
        let topic = RAW_TOPICS.iter().map(|(t, _)| *t).find(|t| t.ends_with(&format!(".{}.v1", event_type.as_str())));
        let event = translate(topic.unwrap(), &fv(row.native, "version", sample.to_json_value()))
            .unwrap_or_else(|r| panic!("{}: {r:?}", row.native));
        assert_eq!(event.data, sample, "{}", row.native);
        assert_eq!(event.event_type(), event_type);
        assert_eq!(event.id, "550e8400-e29b-41d4-a716-446655440006");
        assert_eq!(event.source, "/first-viscount/inventory-management-service");
        assert_eq!(event.correlationid.as_deref(), Some("550e8400-e29b-41d4-a716-446655440001"));
        // A UUID correlation id is the trace id: one trace per business transaction.
        assert_eq!(event.traceparent.as_ref().unwrap().trace_id(), "550e8400e29b41d4a716446655440001");
        assert_eq!(event.time.unwrap().to_rfc3339(), "2024-01-15T11:00:00+00:00");
    }
}

#[test]
fn the_seed_s_inventory_reserved_example_becomes_inventory_reserved() {
    let value = fv(
        "InventoryReserved",
        "version",
        json!({
            "reservation_id": "res_123456789", "product_id": "prod_123456789", "quantity": 2,
            "location_id": "warehouse_main", "order_id": "order_987654321", "expires_at": "2024-01-15T11:15:00Z"
        }),
    );
    let topic = "inventory-management.inventory.reserved.v1";
    let event = translate(topic, &value).unwrap();
    assert_eq!(event.event_type(), EventType::InventoryReserved);
    assert_eq!(event.key(), "prod_123456789");
    let first = encode(&event, ContentMode::Binary).unwrap();
    let again = encode(&translate(topic, &value).unwrap(), ContentMode::Binary).unwrap();
    assert_eq!(first, again, "a translation is the same bytes every time");
    assert_eq!(first.header("ce_type"), Some(&b"inventory.reserved"[..]));
    assert_eq!(first.header("ce_subject"), Some(&b"prod_123456789"[..]));
    assert_eq!(first.header("ce_partitionkey"), Some(&b"prod_123456789"[..]));
}

#[test]
fn first_viscount_refusals_are_classified() {
    let reserved = json!({"reservation_id": "r", "product_id": "p", "quantity": 1, "location_id": "l", "order_id": "o", "expires_at": "2024-01-15T11:15:00Z"});
    let topic = "inventory-management.inventory.reserved.v1";
    let mut v2 = fv("InventoryReserved", "version", reserved.clone());
    v2["version"] = json!("2.0");
    assert_eq!(class(translate(topic, &v2)), "unsupported_version");
    let minor = {
        let mut v = fv("InventoryReserved", "version", reserved.clone());
        v["version"] = json!("1.3");
        v
    };
    assert!(translate(topic, &minor).is_ok(), "a minor version is backward compatible");
    let elsewhere =
        translate("order-management.order.created.v1", &fv("InventoryReserved", "version", reserved.clone()));
    assert_eq!(class(elsewhere), "wrong_topic");
    assert_eq!(class(translate(topic, &fv("InventoryTeleported", "version", reserved.clone()))), "unknown_type");
    let mut no_id = fv("InventoryReserved", "version", reserved.clone());
    no_id.as_object_mut().unwrap().remove("event_id");
    let refused = translate(topic, &no_id).unwrap_err();
    assert_eq!(refused.class, "invalid_envelope");
    assert!(refused.message.contains("event_id"), "{}", refused.message);
    let mut bad_time = fv("InventoryReserved", "version", reserved.clone());
    bad_time["timestamp"] = json!("yesterday");
    assert_eq!(class(translate(topic, &bad_time)), "invalid_envelope");
    let mut money = fv("InventoryReserved", "version", reserved);
    money["data"]["quantity"] = json!(-1);
    let refused = translate(topic, &money).unwrap_err();
    assert_eq!(refused.class, "payload_invalid");
    assert!(refused.message.contains("quantity"), "{}", refused.message);
    // An order's money stays an exact decimal string; a JSON number is refused.
    let mut order = samples::payload(EventType::OrderCreated, "fv").to_json_value();
    order["total_amount"] = json!(47.98);
    let refused = translate("order-management.order.created.v1", &fv("order.created", "event_version", order));
    assert_eq!(class(refused), "payload_invalid");
}

#[test]
fn records_that_are_not_json_objects_are_refused_without_a_copy_of_their_bytes() {
    let topic = "go4u.events";
    let raw = Record { key: None, value: Some(b"user ada@example.ng logged in".to_vec()), headers: Vec::new() };
    let refused = Ingest::translate_record(Envelope::Go4u, &raw, topic).unwrap_err();
    assert_eq!(refused.class, "invalid_envelope");
    assert_eq!(refused.scrubbed, Some(Vec::new()));
    let empty = Record { key: None, value: None, headers: Vec::new() };
    assert_eq!(Ingest::translate_record(Envelope::Go4u, &empty, topic).unwrap_err().class, "invalid_envelope");
    assert_eq!(class(translate(topic, &json!([1, 2]))), "invalid_envelope");
}

#[test]
fn go4u_disputes_become_ours_with_exact_basis_points() {
    let opened = translate(
        "go4u.events",
        &go4u("dispute.opened", json!({"dispute_id": "dsp_100", "task_id": "tsk_1001", "opened_by": "requester", "at": "2025-09-25T11:10:00Z"})),
    )
    .unwrap();
    let Payload::DisputeOpened(p) = &opened.data else { panic!("{opened:?}") };
    assert_eq!(
        (p.dispute_id.as_str(), p.booking_id.as_str(), p.opened_by.as_str()),
        ("dsp_100", "tsk_1001", "requester")
    );
    assert_eq!(p.occurred_at.to_rfc3339(), "2025-09-25T11:10:00+00:00");
    assert_eq!(opened.sequence, Some(42));
    assert_eq!(opened.source, "/go4u/admin-service");
    assert_eq!(opened.correlationid, None);
    let resolved = |requester: Value, agent: Value| {
        translate(
            "go4u.events",
            &go4u(
                "dispute.resolved",
                json!({"dispute_id": "dsp_100", "task_id": "tsk_1001", "resolution": "split",
                       "ratio_requester": requester, "ratio_agent": agent, "resolved_at": "2025-09-25T15:00:00Z"}),
            ),
        )
    };
    let split = |e: Event| match e.data {
        Payload::DisputeResolved(p) => (p.ratio_requester_bps, p.ratio_agent_bps),
        other => panic!("{other:?}"),
    };
    assert_eq!(split(resolved(json!(0.5), json!(0.5)).unwrap()), (Some(5000), Some(5000)));
    // 0.29 is not exact as a float; its text is.
    assert_eq!(split(resolved(json!(0.29), json!(0.71)).unwrap()), (Some(2900), Some(7100)));
    assert_eq!(split(resolved(json!("0.3333"), json!("0.6667")).unwrap()), (Some(3333), Some(6667)));
    let inexact = resolved(json!(0.33335), json!(0.66665)).unwrap_err();
    assert_eq!(inexact.class, "payload_invalid");
    assert!(
        inexact.message.contains("ratio_requester") && inexact.message.contains("basis points"),
        "{}",
        inexact.message
    );
    assert_eq!(class(resolved(json!(1.5), json!(0))), "payload_invalid");
    let mut v2 = go4u("dispute.opened", json!({}));
    v2["event_version"] = json!(2);
    assert_eq!(class(translate("go4u.events", &v2)), "unsupported_version");
    let missing = translate("go4u.events", &go4u("dispute.opened", json!({"dispute_id": "d"}))).unwrap_err();
    assert!(missing.message.contains("task_id"), "named as Go4u wrote it: {}", missing.message);
}

#[test]
fn go4u_s_other_types_are_unmapped_and_the_dlq_copy_holds_no_ip() {
    let rows: Vec<_> = TABLE.iter().filter(|r| r.platform == Envelope::Go4u).collect();
    assert_eq!(rows.len(), 34, "every type of the Go4u catalog has a row");
    for row in rows.iter().filter(|r| matches!(r.target, Target::NotCarried)) {
        let refused = translate("go4u.events", &go4u(row.native, json!({"user_id": "usr_123"}))).unwrap_err();
        assert_eq!(refused.class, "unmapped_type", "{}", row.native);
        let copy = String::from_utf8(refused.scrubbed.unwrap()).unwrap();
        assert!(!copy.contains("203.0.113.7") && copy.contains("usr_123"), "{copy}");
    }
    let unknown = translate("go4u.events", &go4u("task.teleported", json!({})));
    assert_eq!(class(unknown), "unknown_type");
}

#[test]
fn korrectng_disputes_are_renamed_and_split_exactly() {
    let opened = translate(
        "korrectng.events",
        &korrectng(
            "dispute.opened",
            json!({"disputeId": "dsp_9", "contractId": "ctr_7", "escrowId": "esc_1", "customerId": "cus_1",
                   "artisanId": "art_1", "category": "quality", "reason": "unfinished work"}),
        ),
    )
    .unwrap();
    let Payload::DisputeOpened(p) = &opened.data else { panic!("{opened:?}") };
    assert_eq!((p.dispute_id.as_str(), p.booking_id.as_str()), ("dsp_9", "ctr_7"));
    assert_eq!((p.opened_by.as_str(), p.reason.as_deref()), ("unknown", Some("unfinished work")));
    assert_eq!(p.occurred_at.to_rfc3339(), "2025-10-01T09:30:00.250+00:00");
    assert_eq!(opened.source, "/korrectng/transaction-service");
    assert_eq!(opened.key(), "ctr_7");
    let resolved = |decision: &str, refund: Value, payment: Value| {
        translate(
            "korrectng.events",
            &korrectng(
                "dispute.resolved",
                json!({"disputeId": "dsp_9", "contractId": "ctr_7", "decision": decision,
                       "customerRefund": refund, "artisanPayment": payment}),
            ),
        )
    };
    let bps = |e: Event| match e.data {
        Payload::DisputeResolved(p) => (p.resolution, p.ratio_requester_bps, p.ratio_agent_bps),
        other => panic!("{other:?}"),
    };
    use sagastream_contract::payloads::payment::DisputeResolution as R;
    assert_eq!(bps(resolved("split", json!(1500.5), json!(1500.5)).unwrap()), (R::Split, Some(5000), Some(5000)));
    assert_eq!(bps(resolved("split", json!(2500), json!(7500)).unwrap()), (R::Split, Some(2500), Some(7500)));
    assert_eq!(bps(resolved("refund_customer", Value::Null, Value::Null).unwrap()), (R::RefundRequester, None, None));
    assert_eq!(bps(resolved("release_to_artisan", Value::Null, Value::Null).unwrap()).0, R::ReleaseToAgent);
    assert_eq!(class(resolved("split", json!(1), json!(2))), "payload_invalid", "a third is no whole basis point");
    assert_eq!(class(resolved("split", json!(0.001), json!(2))), "payload_invalid", "no fraction of a kobo");
    assert_eq!(class(resolved("coin_toss", Value::Null, Value::Null)), "payload_invalid");
}

#[test]
fn korrectng_user_records_leave_no_email_or_name_in_the_dlq_copy() {
    let refused = translate(
        "korrectng.events",
        &korrectng(
            "user.created",
            json!({"userId": "usr_1", "email": "Ada.Obi@example.ng", "firstName": "Adaeze", "lastName": "Obi", "role": "customer"}),
        ),
    )
    .unwrap_err();
    assert_eq!(refused.class, "unmapped_type");
    assert!(!refused.message.contains("Ada") && !refused.message.contains("Obi"));
    let copy = String::from_utf8(refused.scrubbed.unwrap()).unwrap();
    for raw in ["Ada.Obi@example.ng", "ada.obi", "Adaeze", "Obi\""] {
        assert!(!copy.contains(raw), "{raw} in {copy}");
    }
    assert!(copy.contains("\"emailHash\":\"sha256:") || copy.contains("\"email_hash\":\"sha256:"), "{copy}");
    assert_eq!(TABLE.iter().filter(|r| r.platform == Envelope::Korrectng).count(), 21);
    for row in TABLE.iter().filter(|r| r.platform == Envelope::Korrectng && matches!(r.target, Target::NotCarried)) {
        let refused = translate("korrectng.events", &korrectng(row.native, json!({"userId": "usr_1"}))).unwrap_err();
        assert_eq!(refused.class, "unmapped_type", "{}", row.native);
    }
    assert_eq!(class(translate("korrectng.events", &korrectng("user.teleported", json!({})))), "unknown_type");
}

#[test]
fn the_trace_is_the_same_on_every_run_and_shared_by_a_correlation() {
    let a = translate(
        "go4u.events",
        &go4u(
            "dispute.opened",
            json!({"dispute_id": "d", "task_id": "t", "opened_by": "agent", "at": "2025-09-25T11:10:00Z"}),
        ),
    )
    .unwrap();
    let b = translate(
        "go4u.events",
        &go4u(
            "dispute.opened",
            json!({"dispute_id": "d", "task_id": "t", "opened_by": "agent", "at": "2025-09-25T11:10:00Z"}),
        ),
    )
    .unwrap();
    assert_eq!(a.traceparent, b.traceparent);
    let tp = a.traceparent.unwrap();
    // SHA-256 of "trace:a3f2" and of "span:" and the event id, computed outside (Python's hashlib).
    assert_eq!(tp.as_str(), "00-67ff955efc7ba92a3138cab151d3f64e-95280b56f4157cb4-01");
}

/// The fast path (no JSON tree, no scrub: nothing to scrub) and the
/// scrubbing path give the same event for every carried type, the seeds'
/// First Viscount samples and the Go4u and KorrectNG disputes.
#[test]
fn the_fast_path_gives_the_events_the_scrubbing_path_gives() {
    let mut cases: Vec<(&str, Value)> = Vec::new();
    for row in TABLE.iter().filter(|r| r.platform == Envelope::FirstViscount) {
        let Some(t) = row.target.event_type() else { continue };
        let topic = RAW_TOPICS.iter().map(|(t, _)| *t).find(|x| x.ends_with(&format!(".{}.v1", t.as_str()))).unwrap();
        cases.push((topic, fv(row.native, "version", samples::payload(t, "fast").to_json_value())));
    }
    cases.push((
        "go4u.events",
        go4u(
            "dispute.resolved",
            json!({"dispute_id": "d", "task_id": "t", "resolution": "split", "ratio_requester": 0.29,
                                        "ratio_agent": 0.71, "resolved_at": "2025-09-25T15:00:00Z"}),
        ),
    ));
    cases.push((
        "go4u.events",
        go4u(
            "dispute.opened",
            json!({"dispute_id": "d", "task_id": "t", "opened_by": "agent", "at": "2025-09-25T11:10:00Z"}),
        ),
    ));
    cases.push((
        "korrectng.events",
        korrectng(
            "dispute.resolved",
            json!({"disputeId": "d", "contractId": "c", "decision": "split",
                                             "customerRefund": 2500, "artisanPayment": 7500}),
        ),
    ));
    for (topic, value) in cases {
        let (_, platform) = RAW_TOPICS.iter().find(|(t, _)| *t == topic).unwrap();
        let bytes = serde_json::to_vec(&value).unwrap();
        let fast = crate::fast::read(*platform, &bytes).expect("a clean record takes the fast path");
        assert!(fast.raw_payload.is_some() == (*platform == Envelope::FirstViscount));
        let slow = crate::envelope::read_scrubbed(*platform, Some(&bytes)).native.unwrap();
        let (fast, slow) = (mapping::translate(&fast, topic).unwrap(), mapping::translate(&slow, topic).unwrap());
        assert_eq!(fast, slow, "{topic}: {value}");
        assert_eq!(encode(&fast, ContentMode::Binary).unwrap(), encode(&slow, ContentMode::Binary).unwrap());
    }
    // Something to scrub: the slow path.
    let mut personal = go4u(
        "dispute.opened",
        json!({"dispute_id": "d", "task_id": "t", "opened_by": "ada@example.ng", "at": "2025-09-25T11:10:00Z"}),
    );
    assert!(crate::fast::read(Envelope::Go4u, &serde_json::to_vec(&personal).unwrap()).is_none());
    personal["payload"]["opened_by"] = json!("agent");
    personal["producer"] = json!("admin@go4u");
    assert!(crate::fast::read(Envelope::Go4u, &serde_json::to_vec(&personal).unwrap()).is_none());
}

/// Spellings at the edge of what the fast path reads (versions as numbers
/// or strings, blank and null attributes, escapes, duplicates, a trace id
/// that is an address): wherever it gives an event, it is the scrubbing
/// path's event, byte for byte, and where the scrubbing path refuses, the
/// fast path gives none.
#[test]
fn the_fast_path_never_disagrees_with_the_scrubbing_path_at_the_edges() {
    let order = samples::payload(EventType::OrderCreated, "edge").to_json_value();
    let base_fv = fv("order.created", "event_version", order);
    let base_go4u = go4u(
        "dispute.resolved",
        json!({"dispute_id": "d", "task_id": "t", "resolution": "split", "ratio_requester": 0.5,
               "ratio_agent": 0.5, "resolved_at": "2025-09-25T15:00:00Z"}),
    );
    let edit = |base: &Value, path: &[&str], value: Option<Value>| {
        let mut v = base.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut at = &mut v;
        for p in parents {
            at = &mut at[*p];
        }
        match value {
            Some(x) => at[*last] = x,
            None => {
                at.as_object_mut().unwrap().remove(*last);
            }
        }
        serde_json::to_vec(&v).unwrap()
    };
    let topic_fv = "order-management.order.created.v1";
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        (topic_fv, serde_json::to_vec(&base_fv).unwrap()),
        ("go4u.events", serde_json::to_vec(&base_go4u).unwrap()),
    ];
    for v in [json!(1), json!("1"), json!(" 1.0 "), json!(1.0), json!("1.x"), json!(2), json!(null), json!("")] {
        cases.push((topic_fv, edit(&base_fv, &["event_version"], Some(v.clone()))));
        cases.push(("go4u.events", edit(&base_go4u, &["event_version"], Some(v))));
    }
    cases.push((topic_fv, edit(&base_fv, &["event_version"], None)));
    for v in [json!(null), json!(""), json!("  "), json!(7), json!("a\"b"), json!("x@y.z")] {
        cases.push((topic_fv, edit(&base_fv, &["correlation_id"], Some(v.clone()))));
        cases.push((topic_fv, edit(&base_fv, &["event_id"], Some(v.clone()))));
        cases.push((topic_fv, edit(&base_fv, &["source_service"], Some(v.clone()))));
        cases.push(("go4u.events", edit(&base_go4u, &["metadata", "trace_id"], Some(v.clone()))));
        cases.push(("go4u.events", edit(&base_go4u, &["producer"], Some(v))));
    }
    cases.push(("go4u.events", edit(&base_go4u, &["metadata", "trace_id"], Some(json!("10.0.0.1")))));
    cases.push(("go4u.events", edit(&base_go4u, &["metadata", "sequence"], Some(json!("12")))));
    cases.push(("go4u.events", edit(&base_go4u, &["metadata", "sequence"], Some(json!(-1)))));
    cases.push(("go4u.events", edit(&base_go4u, &["metadata"], Some(json!(null)))));
    cases.push(("go4u.events", edit(&base_go4u, &["metadata"], Some(json!("no")))));
    cases.push(("go4u.events", edit(&base_go4u, &["occurred_at"], Some(json!("yesterday")))));
    cases.push((topic_fv, edit(&base_fv, &["timestamp"], None)));
    let text = String::from_utf8(serde_json::to_vec(&base_fv).unwrap()).unwrap();
    cases.push((topic_fv, text.replacen("{", r#"{"event_id":"dup","#, 1).into_bytes()));
    let mut fast_taken = 0;
    for (topic, bytes) in &cases {
        let (_, platform) = RAW_TOPICS.iter().find(|(t, _)| t == topic).unwrap();
        let slow =
            crate::envelope::read_scrubbed(*platform, Some(bytes)).native.and_then(|n| mapping::translate(&n, topic));
        let Some(fast) = crate::fast::read(*platform, bytes) else { continue };
        let case = String::from_utf8_lossy(bytes);
        match (mapping::translate(&fast, topic), slow) {
            (Ok(f), Ok(s)) => {
                assert_eq!(f, s, "{case}");
                assert_eq!(encode(&f, ContentMode::Binary).unwrap(), encode(&s, ContentMode::Binary).unwrap());
                fast_taken += 1;
            }
            (Err(_), Err(_)) => {}
            (f, s) => panic!("the paths disagree on {case}: fast {f:?}, scrubbing {s:?}"),
        }
    }
    assert!(fast_taken >= 10, "the fast path took {fast_taken} of {} cases", cases.len());
}
