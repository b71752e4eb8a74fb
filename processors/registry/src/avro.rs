//! Avro on the wire: a payload in the Confluent wire format (a zero magic
//! byte, the schema's registry id as a big-endian u32, the Avro binary),
//! written and read with schema_registry_converter and apache-avro, under
//! TopicRecordNameStrategy subjects. The writer registers the exact schema
//! of its build (an existing one is looked up, a new one is checked by the
//! registry); ids are cached by the converter, so the registry is asked
//! once per schema, not per record.

use std::collections::HashMap;
use std::path::Path;

use apache_avro::types::Value as AvroValue;
use schema_registry_converter::avro_common::DecodeResult;
use schema_registry_converter::blocking::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::blocking::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SubjectNameStrategy, SuppliedSchema};
use serde_json::Value as Json;

use crate::{embedded, SchemaFile};

/// Why a payload could not be written or read as Avro, named after what
/// the caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    /// The registry did not answer, or answered with a server error: abort,
    /// back off, retry. Never a reason to dead-letter a record.
    #[error("the schema registry is unavailable: {0}")]
    RetryLater(String),
    /// The record names a schema id the registry does not know: DLQ.
    #[error("schema id {id} is unknown to the registry")]
    UnknownSchemaId { id: u32 },
    /// The bytes are not Avro of the schema they name (or not the wire
    /// format at all): DLQ.
    #[error("not decodable as Avro: {0}")]
    Undecodable(String),
    /// Avro of a record that is no catalog event: DLQ.
    #[error("Avro record {0} is no catalog event")]
    NotAnEvent(String),
    /// The payload does not fit its own schema: a bug in this build.
    #[error("{event_type} does not fit its schema: {reason}")]
    DoesNotFit { event_type: String, reason: String },
}

impl AvroError {
    /// The DLQ class of a record that cannot be read (`None`: retry).
    pub fn class(&self) -> Option<&'static str> {
        match self {
            AvroError::RetryLater(_) => None,
            AvroError::UnknownSchemaId { .. } => Some("unknown_schema_id"),
            AvroError::Undecodable(_) => Some("invalid_avro"),
            AvroError::NotAnEvent(_) => Some("unknown_avro_record"),
            AvroError::DoesNotFit { .. } => Some("avro_schema_mismatch"),
        }
    }
}

/// A payload read from the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub event_type: String,
    pub schema_id: u32,
    /// The payload as JSON, absent optional fields left out (as the JSON
    /// encoding writes them), ready for `Payload::from_json`.
    pub json: Json,
}

pub struct AvroCodec {
    url: String,
    schemas: Vec<SchemaFile>,
    /// Index into `schemas` by event type and by record full name.
    by_type: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
    encoder: AvroEncoder,
    decoder: AvroDecoder,
}

impl std::fmt::Debug for AvroCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroCodec").field("url", &self.url).field("schemas", &self.schemas.len()).finish()
    }
}

/// The schema id of a record in the wire format.
pub fn schema_id(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [0, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// The schemas compiled into this build.
pub fn compiled_schemas() -> Vec<SchemaFile> {
    embedded::FILES
        .iter()
        .map(|(name, text)| {
            SchemaFile::parse(&Path::new("schemas").join(name), (*text).to_owned())
                .unwrap_or_else(|e| panic!("a compiled-in schema must parse (its unit test checks): {e}"))
        })
        .collect()
}

impl AvroCodec {
    /// A codec for the registry at `url` (its Confluent-compatible API).
    pub fn new(url: &str) -> Result<AvroCodec, AvroError> {
        let url = url.trim_end_matches('/').to_owned();
        let settings = || {
            SrSettings::new_builder(url.clone())
                .set_timeout(std::time::Duration::from_secs(5))
                .build()
                .map_err(|e| AvroError::RetryLater(e.to_string()))
        };
        let schemas = compiled_schemas();
        Ok(AvroCodec {
            by_type: schemas.iter().enumerate().map(|(i, s)| (s.event_type.clone(), i)).collect(),
            by_name: schemas.iter().enumerate().map(|(i, s)| (s.full_name.clone(), i)).collect(),
            schemas,
            encoder: AvroEncoder::new(settings()?),
            decoder: AvroDecoder::new(settings()?),
            url,
        })
    }

    /// Where the registry serves a schema id: the records' `dataschema`.
    pub fn schema_url(&self, id: u32) -> String {
        format!("{}/schemas/ids/{id}", self.url)
    }

    fn schema_of(&self, event_type: &str) -> Option<&SchemaFile> {
        self.by_type.get(event_type).map(|i| &self.schemas[*i])
    }

    /// The wire bytes of a payload (its JSON encoding) for `topic`, and the
    /// schema id they name.
    pub fn encode(&self, topic: &str, event_type: &str, payload: Json) -> Result<(Vec<u8>, u32), AvroError> {
        let schema = self.schema_of(event_type).ok_or_else(|| AvroError::DoesNotFit {
            event_type: event_type.to_owned(),
            reason: "no schema is compiled in for it".into(),
        })?;
        let misfit = |reason: String| AvroError::DoesNotFit { event_type: event_type.to_owned(), reason };
        let value = AvroValue::try_from(payload)
            .map_err(|e| misfit(e.to_string()))?
            .resolve(&schema.schema)
            .map_err(|e| misfit(e.to_string()))?;
        let AvroValue::Record(fields) = value else { return Err(misfit("not a record".into())) };
        let supplied = SuppliedSchema::new(Some(schema.full_name.clone()), SchemaType::Avro, schema.text.clone());
        let strategy = SubjectNameStrategy::TopicRecordNameStrategyWithSchema(topic.to_owned(), supplied);
        // The converter takes the fields with borrowed names: the values move, not copied.
        let (names, values): (Vec<String>, Vec<AvroValue>) = fields.into_iter().unzip();
        let fields: Vec<(&str, AvroValue)> = names.iter().map(String::as_str).zip(values).collect();
        let bytes = self.encoder.encode(fields, &strategy).map_err(|e| {
            // A failed lookup is cached; the next record asks again.
            self.encoder.remove_errors_from_cache();
            registry_error(e, None)
        })?;
        let id = schema_id(&bytes).ok_or_else(|| misfit("the converter wrote no wire-format header".into()))?;
        Ok((bytes, id))
    }

    /// The payload of wire bytes.
    pub fn decode(&self, bytes: &[u8]) -> Result<Decoded, AvroError> {
        let Some(id) = schema_id(bytes) else {
            return Err(AvroError::Undecodable("no magic byte and schema id (not the Confluent wire format)".into()));
        };
        let DecodeResult { name, value, .. } = self.decoder.decode(Some(bytes)).map_err(|e| {
            let error = registry_error(e, Some(id));
            if matches!(error, AvroError::RetryLater(_)) {
                // Not remembered as the schema's answer: the next record asks again.
                self.decoder.remove_errors_from_cache();
            }
            error
        })?;
        let full_name = name.map(|n| n.fullname(None)).unwrap_or_default();
        let event_type = self
            .by_name
            .get(&full_name)
            .map(|i| self.schemas[*i].event_type.clone())
            .ok_or_else(|| AvroError::NotAnEvent(full_name.clone()))?;
        let json = Json::try_from(value).map_err(|e| AvroError::Undecodable(e.to_string()))?;
        Ok(Decoded { event_type, schema_id: id, json: strip_nulls(json) })
    }
}

/// An error of the converter, sorted: only the registry's "not found" for
/// a schema id is the record's fault; a connection failure or a server
/// error is the registry's, and retried.
fn registry_error(e: SRCError, id: Option<u32>) -> AvroError {
    let text = format!("{} {}", e.error, e.cause.as_deref().unwrap_or(""));
    // A request that got no answer at all is retriable already; a 500 is not, by the converter's reckoning.
    if e.retriable || text.contains("status 5") {
        return AvroError::RetryLater(text.trim().to_owned());
    }
    match id {
        Some(id) if text.contains("status 404") => AvroError::UnknownSchemaId { id },
        _ if text.contains("status 4") => AvroError::RetryLater(text.trim().to_owned()),
        _ => AvroError::Undecodable(text.trim().to_owned()),
    }
}

/// Avro writes an absent optional field as null; the JSON encoding leaves it out.
fn strip_nulls(v: Json) -> Json {
    match v {
        Json::Object(m) => {
            Json::Object(m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls(v))).collect())
        }
        Json::Array(a) => Json::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_schemas_are_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let on_disk = crate::load_dir(&dir).expect("schemas/");
        let compiled = compiled_schemas();
        let names = |v: &[SchemaFile]| v.iter().map(|s| s.path.file_name().unwrap().to_owned()).collect::<Vec<_>>();
        assert_eq!(names(&compiled), names(&on_disk), "add the new file to src/embedded.rs");
        for (c, d) in compiled.iter().zip(&on_disk) {
            assert_eq!(c.text, d.text);
        }
    }

    #[test]
    fn the_wire_format_header_names_the_schema_id() {
        assert_eq!(schema_id(&[0, 0, 0, 1, 2, 9]), Some(258));
        assert_eq!(schema_id(&[1, 0, 0, 1, 2, 9]), None, "magic byte 0 only");
        assert_eq!(schema_id(b"{\"a\":1}"), None, "JSON is no wire format");
        assert_eq!(schema_id(&[0, 0, 0]), None);
    }

    #[test]
    fn only_the_registrys_not_found_dead_letters_a_record() {
        let not_found = SRCError::new("HTTP request to schema registry failed with status 404 Not Found", None, false);
        assert!(matches!(registry_error(not_found, Some(7)), AvroError::UnknownSchemaId { id: 7 }));
        let down = SRCError::new("http call to schema registry failed", Some("connection refused".into()), true);
        assert!(matches!(registry_error(down, Some(7)), AvroError::RetryLater(_)));
        let server = SRCError::new("HTTP request to schema registry failed with status 500", None, false);
        assert!(matches!(registry_error(server, Some(7)), AvroError::RetryLater(_)));
        assert_eq!(AvroError::UnknownSchemaId { id: 7 }.class(), Some("unknown_schema_id"));
        assert_eq!(AvroError::RetryLater(String::new()).class(), None);
    }
}
