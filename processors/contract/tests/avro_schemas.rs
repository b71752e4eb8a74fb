//! Keeps `schemas/*.avsc` and the Rust payload types from drifting apart:
//! every sample payload must have exactly the schema's fields and survive an
//! Avro binary encode/decode unchanged, with optional fields present and absent.

use std::collections::BTreeSet;
use std::path::PathBuf;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{RecordSchema, Schema};
use apache_avro::types::Value as AvroValue;
use apache_avro::writer::datum::GenericDatumWriter;
use sagastream_contract::{samples, EventType, Payload};
use serde_json::Value as Json;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

fn load(t: EventType) -> (Schema, Json) {
    let path = schema_dir().join(format!("{}.avsc", t.as_str()));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema = Schema::parse_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (schema, serde_json::from_str(&text).unwrap())
}

fn record_fields(schema: &Schema) -> &RecordSchema {
    match schema {
        Schema::Record(r) => r,
        other => panic!("top-level schema is not a record: {other:?}"),
    }
}

/// apache-avro's own JSON conversion: serde would turn JSON integers into u64, which it maps to `fixed`.
fn to_avro(schema: &Schema, json: &Json) -> AvroValue {
    AvroValue::try_from(json.clone()).unwrap().resolve(schema).unwrap_or_else(|e| panic!("resolve: {e}"))
}

fn avro_round_trip(schema: &Schema, json: &Json) -> Json {
    let value = to_avro(schema, json);
    let bytes = GenericDatumWriter::builder(schema).build().unwrap().write_value_to_vec(value).unwrap();
    let back = GenericDatumReader::builder(schema).build().unwrap().read_value(&mut bytes.as_slice()).unwrap();
    let json = Json::try_from(back).unwrap();
    strip_nulls(json)
}

/// Avro writes an absent optional field as null; our JSON omits it.
fn strip_nulls(v: Json) -> Json {
    match v {
        Json::Object(m) => {
            Json::Object(m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls(v))).collect())
        }
        Json::Array(a) => Json::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

#[test]
fn every_event_type_has_exactly_one_schema_file() {
    let mut files: BTreeSet<String> = std::fs::read_dir(schema_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".avsc").map(str::to_owned))
        .collect();
    for t in EventType::ALL {
        assert!(files.remove(t.as_str()), "schemas/{}.avsc is missing", t.as_str());
        let (_, json) = load(*t);
        assert_eq!(json["sagastream.event_type"], t.as_str(), "schemas/{t}.avsc names another type");
    }
    assert!(files.is_empty(), "schemas without an event type in the catalog: {files:?}");
}

#[test]
fn every_payload_round_trips_through_its_schema() {
    for event in samples::one_of_each("avro") {
        let t = event.event_type();
        let (schema, _) = load(t);
        let json = event.data.to_json_value();

        let schema_fields: BTreeSet<&str> = record_fields(&schema).fields.iter().map(|f| f.name.as_str()).collect();
        let rust_fields: BTreeSet<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(schema_fields, rust_fields, "{t}: schema fields (left) differ from the Rust type's (right)");

        let back = avro_round_trip(&schema, &json);
        assert_eq!(back, json, "{t}: value changed through Avro");
        let typed = Payload::from_json(t, back.to_string().as_bytes()).unwrap();
        assert_eq!(typed, event.data, "{t}: typed payload changed through Avro");

        // Optional means nullable in the schema and omittable in Rust: the two sets must agree.
        let optional: BTreeSet<&str> = record_fields(&schema)
            .fields
            .iter()
            .filter(|f| matches!(f.schema, Schema::Union(_)))
            .map(|f| f.name.as_str())
            .collect();
        let rust_optional: BTreeSet<&str> = rust_fields
            .iter()
            .copied()
            .filter(|name| {
                let mut without = json.clone();
                without.as_object_mut().unwrap().remove(*name);
                Payload::from_json(t, without.to_string().as_bytes()).is_ok()
            })
            .collect();
        assert_eq!(optional, rust_optional, "{t}: nullable in the schema (left) vs optional in Rust (right)");

        // The same payload without its optional fields.
        if !optional.is_empty() {
            let mut minimal = json.clone();
            for name in &optional {
                minimal.as_object_mut().unwrap().remove(*name);
            }
            let typed_minimal = Payload::from_json(t, minimal.to_string().as_bytes())
                .unwrap_or_else(|e| panic!("{t}: {optional:?} are optional in the schema but required in Rust: {e:?}"));
            let back = avro_round_trip(&schema, &typed_minimal.to_json_value());
            assert_eq!(back, minimal, "{t}: minimal payload changed through Avro");
        }
    }
}

#[test]
fn schemas_never_use_floating_point_for_money() {
    for t in EventType::ALL {
        let (schema, _) = load(*t);
        for field in &record_fields(&schema).fields {
            let money = field.name.ends_with("_cents") || field.name.contains("amount") || field.name.contains("price");
            assert!(
                !(money && matches!(field.schema, Schema::Double | Schema::Float)),
                "{t}.{} is money and must not be a float",
                field.name
            );
        }
    }
}

#[test]
fn avro_value_kinds_are_what_the_contract_says() {
    let (schema, _) = load(EventType::InventoryLowStock);
    let json = samples::payload(EventType::InventoryLowStock, "k").to_json_value();
    let value = to_avro(&schema, &json);
    let AvroValue::Record(fields) = value else { panic!("not a record") };
    let level = fields.iter().find(|(n, _)| n == "alert_level").unwrap();
    assert!(matches!(level.1, AvroValue::Enum(_, ref s) if s == "warning"), "{level:?}");
}
