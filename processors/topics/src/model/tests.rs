use super::*;

const GOOD: &str = "\
version: 1
defaults:
  replication_factor: 3
  retention: 7d
topics:
  booking.events:
    description: bookings
    kind: domain
    partitions: 6
    key: booking_id
    owner: service-booking
    copartition_group: booking
    events: [booking.requested]
  payment.events:
    description: payments
    kind: domain
    partitions: 6
    key: booking_id
    owner: service-payment
    copartition_group: booking
    retention: 30d
    content_mode: structured
    config:
      min.insync.replicas: \"2\"
";

fn problems(text: &str) -> Vec<Problem> {
    match Topics::parse(text, "topics.yaml") {
        Ok(t) => panic!("accepted: {t:?}"),
        Err(e) => e.problems().to_vec(),
    }
}

fn only(text: &str) -> Problem {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    p.into_iter().next().unwrap()
}

#[test]
fn good_file_applies_defaults() {
    let t = Topics::parse(GOOD, "topics.yaml").unwrap();
    let b = t.get("booking.events").unwrap();
    assert_eq!(b.replication_factor, 3);
    assert_eq!(b.retention_ms, 7 * 86_400_000);
    assert_eq!(b.content_mode, ContentMode::Binary);
    assert_eq!(b.events, [EventType::BookingRequested]);
    let p = t.get("payment.events").unwrap();
    assert_eq!(p.retention_ms, 30 * 86_400_000);
    assert_eq!(p.content_mode, ContentMode::Structured);
    assert_eq!(p.broker_configs().get("min.insync.replicas").map(String::as_str), Some("2"));
    assert_eq!(p.broker_configs().get("cleanup.policy").map(String::as_str), Some("delete"));
    assert_eq!(t.clone().with_replication_factor(1).topics.iter().map(|t| t.replication_factor).max(), Some(1));
    let prefixed = t.with_prefix("staging.");
    assert!(prefixed.topics.iter().all(|t| t.name.starts_with("staging.")));
    assert!(prefixed.get("staging.booking.events").is_some());
}

#[test]
fn copartition_mismatch_is_rejected_with_both_lines() {
    let bad = GOOD.replacen("partitions: 6", "partitions: 12", 1);
    let p = problems(&bad);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!(p[0].line, Some(9));
    assert_eq!(p[0].field, "topics.booking.events.partitions");
    assert!(p[0].message.contains("booking.events=12, payment.events=6"), "{}", p[0]);
    assert_eq!(p[1].line, Some(17));
    assert!(p[0].to_string().starts_with("topics.yaml:9: topics.booking.events.partitions: co-partitioning group"));
    assert!(p[0].to_string().contains("hint:"));
}

#[test]
fn unknown_field_reports_line_and_hint() {
    let p = only(&GOOD.replace(
        "    partitions: 6\n    key: booking_id\n    owner: service-booking",
        "    partitons: 6\n    key: booking_id\n    owner: service-booking",
    ));
    assert_eq!(p.line, Some(9));
    assert!(p.message.contains("unknown field `partitons`"), "{p}");
    assert!(!p.message.contains("at line"), "line is not repeated: {p}");
    assert!(p.hint.contains("spelling"));
}

#[test]
fn wrong_type_and_missing_field() {
    let p = only(&GOOD.replacen("partitions: 6", "partitions: six", 1));
    assert_eq!(p.line, Some(9));
    assert!(p.message.contains("invalid type"), "{p}");
    let p = only(&GOOD.replacen("    owner: service-booking\n", "", 1));
    assert!(p.message.contains("missing field `owner`"), "{p}");
    let p = only(&GOOD.replacen("kind: domain", "kind: stream", 1));
    assert!(p.message.contains("unknown variant `stream`"), "{p}");
    let p = only("version: 1\ntopics:\n  a: [\n");
    assert!(p.line.is_some(), "syntax errors carry a line: {p}");
}

#[test]
fn semantic_problems_are_all_reported_with_lines() {
    let bad = GOOD
        .replacen("partitions: 6", "partitions: 0", 2)
        .replace("retention: 30d", "retention: 30 days")
        .replace(
            "events: [booking.requested]",
            "events: [booking.requested, payment.failed, nope.nothing, LowStockAlert]",
        )
        .replace("min.insync.replicas: \"2\"", "retention.ms: \"5\"");
    let p = problems(&bad);
    let text: Vec<String> = p.iter().map(ToString::to_string).collect();
    let has = |needle: &str| text.iter().any(|t| t.contains(needle));
    assert!(has("topics.yaml:9: topics.booking.events.partitions: must be between 1 and 10000 (got 0)"), "{text:#?}");
    assert!(has("topics.payment.events.retention: unknown unit"), "{text:#?}");
    assert!(has("payment.failed is carried by payment.events"), "{text:#?}");
    assert!(has("\"nope.nothing\" is not in the event catalog"), "{text:#?}");
    assert!(has("\"LowStockAlert\" is a legacy alias"), "{text:#?}");
    assert!(has("topics.payment.events.config.retention.ms: is a first-class field"), "{text:#?}");
    assert!(p.iter().all(|p| p.line.is_some()), "{text:#?}");
}

#[test]
fn names_keys_replication_and_changelogs() {
    let p = only(&GOOD.replace("  payment.events:", "  payment events:"));
    assert!(p.message.contains("contains ' '"), "{p}");
    let p = problems(&GOOD.replace("  replication_factor: 3\n", ""));
    assert_eq!(p.len(), 2, "one per topic: {p:#?}");
    assert!(p.iter().all(|p| p.message.contains("not set here nor under defaults")), "{p:#?}");
    assert_eq!(p[0].line, Some(5), "points at the topic when the field is absent");
    let p = problems(&GOOD.replacen("key: booking_id", "key: order_id", 1));
    assert!(p.iter().any(|p| p.message.contains("is keyed by \"booking_id\"")), "{p:#?}");
    assert!(p.iter().any(|p| p.message.contains("no key all its topics share")), "{p:#?}");
    let p = only(&GOOD.replacen("kind: domain", "kind: changelog", 1));
    assert!(p.message.contains("must be compacted"), "{p}");
    let p = only(&GOOD.replace("version: 1", "version: 2"));
    assert_eq!(p.line, Some(1));
}

#[test]
fn a_topic_can_carry_two_aggregates_and_join_two_groups() {
    let two = GOOD
        .replacen("    key: booking_id\n    owner: service-payment", "    key: [booking_id, order_id]\n    owner: service-payment", 1)
        .replacen("    copartition_group: booking\n    retention", "    copartition_group: [booking, order]\n    retention", 1)
        + "  order.events:\n    description: orders\n    kind: domain\n    partitions: 6\n    key: order_id\n    owner: oms\n    copartition_group: order\n    events: [order.created]\n";
    let t = Topics::parse(&two, "topics.yaml").unwrap_or_else(|e| panic!("{e}"));
    let p = t.get("payment.events").unwrap();
    assert_eq!(p.keys, ["booking_id", "order_id"]);
    assert_eq!(p.copartition_groups, ["booking", "order"]);
    let p = problems(&two.replace("    key: order_id\n    owner: oms", "    key: runner_id\n    owner: oms"));
    assert!(p.iter().any(|p| p.message.contains("no key all its topics share")), "{p:#?}");
    assert!(p.iter().any(|p| p.message.contains("is keyed by \"order_id\"")), "{p:#?}");
}

#[test]
fn the_repository_topics_yaml_is_valid_and_complete() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../topics.yaml");
    let topics = Topics::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(topics.uncovered_event_types(), [], "every catalog event needs a topic");
    for name in
        ["booking.events", "payment.events", "runner.events", "tracking.events", "order.events", "inventory.events"]
    {
        assert!(topics.get(name).is_some(), "{name} missing");
    }
}

#[test]
fn io_error_names_the_path() {
    let e = Topics::load(std::path::Path::new("/nonexistent/topics.yaml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/topics.yaml"), "{e}");
}

#[test]
fn a_raw_topic_names_its_envelope_and_no_catalog_events() {
    let raw = |extra: &str| {
        format!(
            "version: 1\ndefaults: {{replication_factor: 1, retention: 7d}}\ntopics:\n  go4u.events:\n    \
             description: Go4u's own envelope\n    kind: raw\n    partitions: 6\n    key: aggregate_id\n    \
             owner: go4u\n{extra}"
        )
    };
    let ok = Topics::parse(&raw("    envelope: go4u\n"), "topics.yaml").unwrap();
    assert_eq!(ok.topics[0].envelope, Some(Envelope::Go4u));
    let missing = only(&raw(""));
    // A missing field is reported at its topic's line.
    assert_eq!((missing.field.as_str(), missing.line), ("topics.go4u.events.envelope", Some(4)));
    assert!(missing.hint.contains("first_viscount"), "{missing:?}");
    let events = only(&raw("    envelope: go4u\n    events: [dispute.opened]\n"));
    assert!(events.message.contains("no catalog events"), "{events:?}");
    let text =
        GOOD.replace("    events: [booking.requested]", "    events: [booking.requested]\n    envelope: korrectng");
    assert!(only(&text).message.contains("only a `kind: raw` topic"));
    let unknown = only(&raw("    envelope: telegram\n"));
    assert!(unknown.message.contains("unknown variant"), "{unknown:?}");
}

#[test]
fn content_type_is_json_unless_avro_is_declared_where_it_fits() {
    let t = Topics::parse(GOOD, "topics.yaml").unwrap();
    assert_eq!(t.get("booking.events").unwrap().content_type, ContentType::Json, "the default");
    let avro =
        GOOD.replace("    events: [booking.requested]", "    events: [booking.requested]\n    content_type: avro");
    let t = Topics::parse(&avro, "topics.yaml").unwrap();
    assert_eq!(t.get("booking.events").unwrap().content_type, ContentType::Avro);
    let by_default = GOOD.replace("  retention: 7d\n", "  retention: 7d\n  content_type: avro\n");
    let p = only(&by_default);
    assert_eq!(p.field, "topics.payment.events.content_type", "structured mode cannot carry Avro: {p:?}");
    assert!(p.message.contains("binary"), "{p:?}");
    let dlq = GOOD
        .replace(
            "    kind: domain\n    partitions: 6\n    key: booking_id\n    owner: service-payment",
            "    kind: dlq\n    partitions: 6\n    key: booking_id\n    owner: service-payment\n    content_type: avro",
        )
        .replace("    content_mode: structured\n", "");
    let p = only(&dlq);
    assert!(p.message.contains("kind: dlq") && p.field.ends_with("content_type"), "{p:?}");
    let typo = GOOD.replace("    content_mode: structured", "    content_type: protobuf");
    assert!(Topics::parse(&typo, "topics.yaml").is_err(), "only json and avro");
}
