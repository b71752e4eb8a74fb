use super::*;
use crate::samples;
use base64::Engine as _;

fn header(name: &str, value: &str) -> Header {
    Header { name: name.to_owned().into(), value: Some(value.as_bytes().to_vec()) }
}

fn sample(t: EventType) -> Event {
    samples::one_of_each("t1").into_iter().find(|e| e.event_type() == t).unwrap()
}

/// A valid binary-mode record built by hand, to be broken by the tests.
fn binary_record() -> Record {
    Record {
        key: Some(b"run_1".to_vec()),
        value: Some(br#"{"runner_id":"run_1","occurred_at":"2024-01-15T10:30:00Z"}"#.to_vec()),
        headers: vec![
            header("ce_specversion", "1.0"),
            header("ce_id", "e-1"),
            header("ce_source", "/kilat/service-runner"),
            header("ce_type", "runner.offline"),
            header("content-type", "application/json"),
        ],
    }
}

fn without(mut r: Record, name: &str) -> Record {
    r.headers.retain(|h| h.name != name);
    r
}

fn with_header(mut r: Record, name: &str, value: &str) -> Record {
    r.headers.retain(|h| h.name != name);
    r.headers.push(header(name, value));
    r
}

#[test]
fn every_sample_round_trips_in_both_modes() {
    for event in samples::one_of_each("rt") {
        for mode in [ContentMode::Binary, ContentMode::Structured] {
            let record = encode(&event, mode).unwrap();
            assert_eq!(record.key.as_deref(), Some(event.key().as_bytes()));
            let decoded = decode(&record).unwrap_or_else(|e| panic!("{} {mode:?}: {e}", event.event_type()));
            assert_eq!(decoded.event, event, "{} {mode:?}", event.event_type());
            assert_eq!(decoded.mode, mode);
            assert_eq!(decoded.key, event.key());
            assert_eq!(decoded.legacy_type, None);
        }
    }
}

#[test]
fn binary_mode_layout() {
    let event = sample(EventType::BookingAccepted).with_id("evt-1");
    let r = encode(&event, ContentMode::Binary).unwrap();
    assert_eq!(r.header("ce_specversion"), Some(&b"1.0"[..]));
    assert_eq!(r.header("ce_id"), Some(&b"evt-1"[..]));
    assert_eq!(r.header("ce_type"), Some(&b"booking.accepted"[..]));
    assert_eq!(r.header("ce_subject"), Some(&b"bk_t1"[..]));
    assert_eq!(r.header("ce_partitionkey"), Some(&b"bk_t1"[..]));
    assert_eq!(r.header("content-type"), Some(&b"application/json"[..]));
    assert_eq!(r.header("ce_datacontenttype"), None, "datacontenttype travels as content-type");
    assert_eq!(r.header("ce_sequence"), Some(&b"2"[..]));
    assert!(r.header("ce_traceparent").is_some());
    assert!(r.header("ce_time").is_some());
    let value: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
    assert_eq!(value["booking_id"], "bk_t1", "the value is the bare payload");
    assert!(value.get("specversion").is_none());
}

/// docs/events.md: `time` has millisecond precision, whatever the input's.
#[test]
fn time_is_written_with_exactly_milliseconds() {
    use chrono::TimeZone;
    let micros =
        chrono::Utc.with_ymd_and_hms(2026, 12, 1, 10, 30, 0).unwrap() + chrono::TimeDelta::microseconds(123_456);
    let whole = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 10, 30, 0).unwrap();
    for (time, written) in [(micros, "2026-12-01T10:30:00.123Z"), (whole, "2026-12-01T10:30:00.000Z")] {
        let event = sample(EventType::BookingAccepted).with_time(time);
        let r = encode(&event, ContentMode::Binary).unwrap();
        assert_eq!(r.header("ce_time"), Some(written.as_bytes()));
        let s = encode(&event, ContentMode::Structured).unwrap();
        let value: serde_json::Value = serde_json::from_slice(s.value.as_deref().unwrap()).unwrap();
        assert_eq!(value["time"], written);
    }
}

#[test]
fn structured_mode_layout() {
    let event = sample(EventType::OrderCreated);
    let r = encode(&event, ContentMode::Structured).unwrap();
    assert_eq!(r.headers.len(), 1);
    assert_eq!(r.header("content-type"), Some(STRUCTURED_CONTENT_TYPE.as_bytes()));
    let value: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
    assert_eq!(value["specversion"], "1.0");
    assert_eq!(value["type"], "order.created");
    assert_eq!(value["subject"], "order_t1");
    assert_eq!(value["data"]["total_amount"], "47.98", "decimal strings stay strings");
}

#[test]
fn structured_input_accepts_base64_data_integer_sequence_and_extensions() {
    let data = base64::engine::general_purpose::STANDARD
        .encode(br#"{"runner_id":"run_1","occurred_at":"2024-01-15T10:30:00+07:00"}"#);
    let value = format!(
        r#"{{"specversion":"1.0","id":"x","source":"/s","type":"runner.offline","sequence":7,
            "dataschema":"https://example.com/s","comexampleflag":true,"subject":null,"data_base64":"{data}"}}"#
    );
    let r = Record {
        key: Some(b"run_1".to_vec()),
        value: Some(value.into_bytes()),
        headers: vec![header("Content-Type", "application/cloudevents+json")],
    };
    let d = decode(&r).unwrap();
    assert_eq!(d.mode, ContentMode::Structured);
    assert_eq!(d.event.sequence, Some(7));
    assert_eq!(d.event.extensions.get("dataschema").map(String::as_str), Some("https://example.com/s"));
    assert_eq!(d.event.extensions.get("comexampleflag").map(String::as_str), Some("true"));
    let crate::Payload::RunnerOffline(p) = d.event.data else { panic!("wrong payload") };
    assert_eq!(p.occurred_at.to_rfc3339(), "2024-01-15T03:30:00+00:00", "normalised to UTC");
}

#[test]
fn legacy_type_names_map_to_canonical() {
    let mut r = encode(&sample(EventType::InventoryLowStock), ContentMode::Binary).unwrap();
    r = with_header(r, "ce_type", "LowStockAlert");
    let d = decode(&r).unwrap();
    assert_eq!(d.event.event_type(), EventType::InventoryLowStock);
    assert_eq!(d.legacy_type.as_deref(), Some("LowStockAlert"));
    let again = encode(&d.event, ContentMode::Binary).unwrap();
    assert_eq!(again.header("ce_type"), Some(&b"inventory.low_stock"[..]), "written back canonical");
}

#[test]
fn header_names_are_case_insensitive_on_input() {
    let mut r = binary_record();
    for h in &mut r.headers {
        h.name = h.name.to_ascii_uppercase().into();
    }
    assert_eq!(decode(&r).unwrap().event.id, "e-1");
}

#[test]
fn malformed_inputs_are_classified() {
    let cases: Vec<(&str, Record, &str)> = vec![
        ("no headers at all", Record { headers: vec![], ..binary_record() }, "not_cloudevent"),
        ("empty record", Record::default(), "not_cloudevent"),
        ("wrong specversion", with_header(binary_record(), "ce_specversion", "0.3"), "unsupported_specversion"),
        ("missing id", without(binary_record(), "ce_id"), "missing_attribute"),
        ("empty source", with_header(binary_record(), "ce_source", ""), "missing_attribute"),
        ("missing type", without(binary_record(), "ce_type"), "missing_attribute"),
        ("unknown type", with_header(binary_record(), "ce_type", "booking.teleported"), "unknown_type"),
        ("bad time", with_header(binary_record(), "ce_time", "yesterday"), "invalid_attribute"),
        ("bad sequence", with_header(binary_record(), "ce_sequence", "-1"), "invalid_attribute"),
        ("bad traceparent", with_header(binary_record(), "ce_traceparent", "00-xyz"), "invalid_attribute"),
        ("bad attribute name", with_header(binary_record(), "ce_Bad-Name", "x"), "invalid_attribute"),
        (
            "non-JSON content type",
            with_header(binary_record(), "content-type", "text/plain"),
            "unsupported_content_type",
        ),
        (
            "batch mode",
            with_header(binary_record(), "content-type", "application/cloudevents-batch+json"),
            "unsupported_content_type",
        ),
        ("missing key", Record { key: None, ..binary_record() }, "missing_key"),
        ("empty key", Record { key: Some(vec![]), ..binary_record() }, "missing_key"),
        ("non-UTF-8 key", Record { key: Some(vec![0xff, 0xfe]), ..binary_record() }, "invalid_key"),
        ("key is not the aggregate id", Record { key: Some(b"run_2".to_vec()), ..binary_record() }, "key_mismatch"),
        ("non-JSON data", Record { value: Some(b"\x00\x01garbage".to_vec()), ..binary_record() }, "payload_invalid"),
        ("no data", Record { value: None, ..binary_record() }, "payload_invalid"),
        (
            "truncated data",
            Record { value: Some(br#"{"runner_id":"run_1","occurred_"#.to_vec()), ..binary_record() },
            "payload_invalid",
        ),
        (
            "structured value not JSON",
            Record {
                value: Some(b"{\"specversion\":".to_vec()),
                headers: vec![header("content-type", "application/cloudevents+json")],
                ..binary_record()
            },
            "not_cloudevent",
        ),
        (
            "structured without specversion",
            Record {
                value: Some(br#"{"id":"1","source":"/s","type":"runner.offline","data":{}}"#.to_vec()),
                headers: vec![header("content-type", "application/cloudevents+json")],
                ..binary_record()
            },
            "missing_attribute",
        ),
        (
            "structured attribute of wrong JSON type",
            Record {
                value: Some(br#"{"specversion":"1.0","id":{"a":1},"source":"/s","type":"runner.offline"}"#.to_vec()),
                headers: vec![header("content-type", "application/cloudevents+json")],
                ..binary_record()
            },
            "invalid_attribute",
        ),
    ];
    for (what, record, class) in cases {
        match decode(&record) {
            Ok(d) => panic!("{what}: decoded {:?}", d.event.id),
            Err(e) => {
                assert_eq!(e.class(), class, "{what}: {e}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

#[test]
fn truncated_and_broken_headers() {
    // A header whose value was lost (null) and one cut inside a UTF-8 sequence.
    let mut r = binary_record();
    r.headers.push(Header { name: "ce_traceparent".into(), value: None });
    assert_eq!(decode(&r).unwrap_err().class(), "invalid_attribute");

    let mut r = without(binary_record(), "ce_source");
    r.headers.push(Header { name: "ce_source".into(), value: Some(vec![b'/', 0xe2, 0x82]) });
    let err = decode(&r).unwrap_err();
    assert_eq!(err.class(), "invalid_attribute");
    assert!(err.to_string().contains("UTF-8"), "{err}");

    // A header name that is only the prefix.
    let r = with_header(binary_record(), "ce_", "x");
    assert_eq!(decode(&r).unwrap_err().class(), "invalid_attribute");

    // The same attribute twice is ambiguous.
    let mut r = binary_record();
    r.headers.push(header("ce_id", "e-2"));
    assert_eq!(decode(&r).unwrap_err().class(), "invalid_attribute");
}

#[test]
fn payload_errors_carry_the_field_path() {
    let r = Record { value: Some(br#"{"runner_id":"run_1","occurred_at":"not a time"}"#.to_vec()), ..binary_record() };
    match decode(&r).unwrap_err() {
        DecodeError::PayloadInvalid { event_type, path, .. } => {
            assert_eq!(event_type, EventType::RunnerOffline);
            assert_eq!(path, "occurred_at");
        }
        e => panic!("{e}"),
    }
    let mut event = sample(EventType::PaymentEscrowHeld);
    let mut r = encode(&event, ContentMode::Binary).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
    v["amount_cents"] = serde_json::json!(-100);
    r.value = Some(v.to_string().into_bytes());
    let err = decode(&r).unwrap_err();
    assert!(err.to_string().contains("amount_cents"), "{err}");
    assert!(err.to_string().contains("negative"), "{err}");
    v["amount_cents"] = serde_json::json!(45.5);
    r.value = Some(v.to_string().into_bytes());
    assert_eq!(decode(&r).unwrap_err().class(), "payload_invalid", "float money is refused");
    event.extensions.insert("Bad".into(), "x".into());
    assert!(encode(&event, ContentMode::Binary).is_err());
}

#[test]
fn encode_refuses_reserved_or_empty_attributes() {
    let mut e = sample(EventType::RunnerOffline);
    e.extensions.insert("subject".into(), "other".into());
    assert!(encode(&e, ContentMode::Binary).is_err());
    let e = sample(EventType::RunnerOffline).with_id("");
    assert!(encode(&e, ContentMode::Structured).is_err());
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    match rng.below(4) {
        0 => bytes.truncate(rng.below(bytes.len() + 1)),
        1 if !bytes.is_empty() => {
            let i = rng.below(bytes.len());
            bytes[i] = rng.next() as u8;
        }
        2 => {
            let i = rng.below(bytes.len() + 1);
            bytes.insert(i, rng.next() as u8);
        }
        _ => bytes.clear(),
    }
}

#[test]
fn decoder_never_panics_on_mutated_records() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let seeds: Vec<Record> = samples::one_of_each("fz")
        .iter()
        .flat_map(|e| [encode(e, ContentMode::Binary).unwrap(), encode(e, ContentMode::Structured).unwrap()])
        .collect();
    let mut ok = 0;
    for i in 0..40_000 {
        let mut r = seeds[i % seeds.len()].clone();
        for _ in 0..=rng.below(3) {
            match rng.below(4) {
                0 => {
                    if let Some(v) = r.value.as_mut() {
                        mutate(v, &mut rng)
                    }
                }
                1 if !r.headers.is_empty() => {
                    let h = rng.below(r.headers.len());
                    match r.headers[h].value.as_mut() {
                        Some(v) if rng.below(5) > 0 => mutate(v, &mut rng),
                        _ => r.headers[h].value = None,
                    }
                }
                2 if !r.headers.is_empty() => {
                    let h = rng.below(r.headers.len());
                    let mut name = std::mem::take(&mut r.headers[h].name).into_owned().into_bytes();
                    mutate(&mut name, &mut rng);
                    r.headers[h].name = String::from_utf8_lossy(&name).into_owned().into();
                }
                _ => {
                    if let Some(k) = r.key.as_mut() {
                        mutate(k, &mut rng)
                    }
                }
            }
        }
        if decode(&r).is_ok() {
            ok += 1;
        }
    }
    // Some mutations are harmless (e.g. a byte flipped inside a string); most are not.
    assert!(ok < 40_000, "every mutated record decoded: mutations are not reaching the decoder");
}

#[test]
fn attribute_slots_reject_repeats_and_keep_extensions() {
    let mut r = binary_record();
    r.headers.push(header("CE_ID", "e-2"));
    let e = decode(&r).unwrap_err();
    assert_eq!(e.class(), "invalid_attribute");
    assert!(e.to_string().contains("`id`") && e.to_string().contains("more than once"), "{e}");

    let mut r = binary_record();
    r.headers.push(header("ce_tenant", "t-9"));
    r.headers.push(header("ce_dataschema", "urn:x"));
    let d = decode(&r).unwrap();
    assert_eq!(d.event.extensions.get("tenant").map(String::as_str), Some("t-9"));
    assert_eq!(d.event.extensions.get("dataschema").map(String::as_str), Some("urn:x"));
    assert_eq!(d.event.extensions.len(), 2, "known attributes are not extensions");
}

#[test]
fn known_header_names_are_not_allocated() {
    assert!(matches!(Header::name_from("ce_id"), Cow::Borrowed("ce_id")));
    assert!(matches!(Header::name_from(CONTENT_TYPE_HEADER), Cow::Borrowed(_)));
    assert!(matches!(Header::name_from("x-custom"), Cow::Owned(ref n) if n == "x-custom"));
}

#[test]
fn avro_records_carry_their_schema_url_and_decode_from_the_json_the_caller_read() {
    let mut event = sample(EventType::BookingRequested);
    event.extensions.insert("dataschema".into(), "urn:an-input's".into());
    let wire = vec![0, 0, 0, 0, 7, 2, 4];
    let r = encode_avro(&event, wire.clone(), "http://r/apis/ccompat/v7/schemas/ids/7").unwrap();
    assert!(is_avro(&r));
    assert_eq!(r.value.as_deref(), Some(&wire[..]));
    assert_eq!(r.header(CONTENT_TYPE_HEADER), Some(AVRO_CONTENT_TYPE.as_bytes()));
    let schemas: Vec<_> = r.headers.iter().filter(|h| h.name == "ce_dataschema").collect();
    assert_eq!(schemas.len(), 1, "the event's own dataschema gives way to the registry's");
    assert_eq!(schemas[0].value.as_deref(), Some(&b"http://r/apis/ccompat/v7/schemas/ids/7"[..]));
    assert!(!is_avro(&encode(&event, ContentMode::Binary).unwrap()));

    // Without the caller's JSON the Avro value is no JSON payload.
    assert_eq!(decode(&r).unwrap_err().class(), "unsupported_content_type");
    let json = event.data.to_json_vec();
    let d = decode_avro(&r, &json, false).unwrap();
    assert_eq!(d.event.data, event.data);
    assert_eq!(d.event.id, event.id);
    assert!(!d.event.extensions.contains_key("dataschema"), "it named the Avro schema, not the event's");
    let mut other_key = r.clone();
    other_key.key = Some(b"someone-else".to_vec());
    assert_eq!(decode_avro(&other_key, &json, false).unwrap_err().class(), "key_mismatch");
    assert_eq!(decode_avro(&other_key, &json, true).unwrap().key, "someone-else", "re-keyed");
    assert_eq!(decode_avro(&r, b"{}", false).unwrap_err().class(), "payload_invalid");
    let mut no_specversion = r.clone();
    no_specversion.headers.retain(|h| h.name != "ce_specversion");
    assert_eq!(decode_avro(&no_specversion, &json, false).unwrap_err().class(), "not_cloudevent");
}
