//! CloudEvents Kafka protocol binding 1.0: binary and structured content modes.
//!
//! Kafka-client agnostic: a [`Record`] is key, value and headers, so this
//! crate is testable without a broker and every client crate converts to it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::catalog::{EventType, Payload};
use crate::envelope::{Event, TraceParent, JSON_CONTENT_TYPE, SPECVERSION};
use crate::payloads::Timestamp;

pub const CONTENT_TYPE_HEADER: &str = "content-type";
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";
const HEADER_PREFIX: &str = "ce_";

/// Attributes whose value the encoder derives; a caller cannot set them as extensions.
const RESERVED: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "datacontenttype",
    "partitionkey",
    "traceparent",
    "correlationid",
    "sequence",
    "data",
    "data_base64",
];

/// One Kafka record, client-independent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Option<Vec<u8>>,
}

impl Record {
    /// The value of the first header with this name (exact match).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|h| h.name == name).and_then(|h| h.value.as_deref())
    }

    fn push_header(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.headers.push(Header { name: name.into(), value: Some(value.into()) });
    }
}

/// How the event is laid out in the record. Binary is our default for output;
/// both are accepted on input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentMode {
    #[default]
    Binary,
    Structured,
}

impl ContentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentMode::Binary => "binary",
            ContentMode::Structured => "structured",
        }
    }
}

/// A decoded record: the typed event and how it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub key: String,
    pub event: Event,
    pub mode: ContentMode,
    /// The `type` as sent, when it was a legacy alias rather than the canonical name.
    pub legacy_type: Option<String>,
}

/// Why a record is not an event we can process. [`DecodeError::class`] is the
/// stable code used in DLQ headers and metric labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a CloudEvent: {reason}")]
    NotCloudEvent { reason: String },
    #[error("unsupported content type {content_type:?}: expected JSON data in binary mode or application/cloudevents+json in structured mode")]
    UnsupportedContentType { content_type: String },
    #[error("required CloudEvents attribute `{name}` is missing or empty")]
    MissingAttribute { name: String },
    #[error("CloudEvents attribute `{name}` is invalid: {reason}")]
    InvalidAttribute { name: String, reason: String },
    #[error("unsupported CloudEvents specversion {found:?}: only \"1.0\" is supported")]
    UnsupportedSpecVersion { found: String },
    #[error("unknown event type {event_type:?}: it is not in the sagastream catalog (docs/events.md)")]
    UnknownType { event_type: String },
    #[error("record has no key: the key must be the aggregate id ({expected_field})")]
    MissingKey { expected_field: &'static str },
    #[error("record key is invalid: {reason}")]
    InvalidKey { reason: String },
    #[error("record key {key:?} differs from the payload's {field} {aggregate_id:?}: producers must key by the aggregate id")]
    KeyMismatch { key: String, field: &'static str, aggregate_id: String },
    #[error("invalid {event_type} payload at `{}`: {reason}", if path.is_empty() { "$" } else { path })]
    PayloadInvalid { event_type: EventType, path: String, reason: String },
}

impl DecodeError {
    pub fn class(&self) -> &'static str {
        match self {
            DecodeError::NotCloudEvent { .. } => "not_cloudevent",
            DecodeError::UnsupportedContentType { .. } => "unsupported_content_type",
            DecodeError::MissingAttribute { .. } => "missing_attribute",
            DecodeError::InvalidAttribute { .. } => "invalid_attribute",
            DecodeError::UnsupportedSpecVersion { .. } => "unsupported_specversion",
            DecodeError::UnknownType { .. } => "unknown_type",
            DecodeError::MissingKey { .. } => "missing_key",
            DecodeError::InvalidKey { .. } => "invalid_key",
            DecodeError::KeyMismatch { .. } => "key_mismatch",
            DecodeError::PayloadInvalid { .. } => "payload_invalid",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("attribute `{name}` is invalid: {reason}")]
    InvalidAttribute { name: String, reason: String },
}

/// Encodes an event. The record key, `subject` and `partitionkey` are the
/// aggregate id.
pub fn encode(event: &Event, mode: ContentMode) -> Result<Record, EncodeError> {
    encode_with_data(event, mode, event.data.to_json_vec())
}

/// [`encode`] with the payload already serialised (`Payload::to_json_vec`),
/// for a caller that needed the bytes first (the runtime derives ids from them).
pub fn encode_with_data(event: &Event, mode: ContentMode, data: Vec<u8>) -> Result<Record, EncodeError> {
    let attrs = attributes_of(event)?;
    let key = event.key().as_bytes().to_vec();
    let mut record = Record { key: Some(key), ..Record::default() };
    match mode {
        ContentMode::Binary => {
            record.headers.reserve(attrs.len());
            for (name, value) in attrs {
                match binary_header_name(&name) {
                    Some(header) => record.push_header(header, value),
                    None => record.push_header(format!("{HEADER_PREFIX}{name}"), value),
                }
            }
            record.value = Some(data);
        }
        ContentMode::Structured => {
            let data = event.data.to_json_value();
            let mut object = serde_json::Map::new();
            for (name, value) in attrs {
                object.insert(name.to_owned(), serde_json::Value::String(value));
            }
            object.insert("data".into(), data);
            record.push_header(CONTENT_TYPE_HEADER, STRUCTURED_CONTENT_TYPE);
            record.value = Some(serde_json::Value::Object(object).to_string().into_bytes());
        }
    }
    Ok(record)
}

/// Attribute name/value pairs in the order we write them.
fn attributes_of(event: &Event) -> Result<Vec<(String, String)>, EncodeError> {
    let invalid = |name: &str, reason: &str| EncodeError::InvalidAttribute { name: name.into(), reason: reason.into() };
    if event.id.is_empty() {
        return Err(invalid("id", "must not be empty"));
    }
    if event.source.is_empty() {
        return Err(invalid("source", "must not be empty"));
    }
    let key = event.key();
    let mut attrs = vec![
        ("specversion".to_owned(), SPECVERSION.to_owned()),
        ("id".to_owned(), event.id.clone()),
        ("source".to_owned(), event.source.clone()),
        ("type".to_owned(), event.event_type().as_str().to_owned()),
    ];
    if let Some(time) = event.time {
        attrs.push(("time".into(), format_time(time)));
    }
    attrs.push(("subject".into(), key.to_owned()));
    attrs.push(("datacontenttype".into(), JSON_CONTENT_TYPE.into()));
    attrs.push(("partitionkey".into(), key.to_owned()));
    if let Some(tp) = &event.traceparent {
        attrs.push(("traceparent".into(), tp.as_str().to_owned()));
    }
    if let Some(c) = &event.correlationid {
        attrs.push(("correlationid".into(), c.clone()));
    }
    if let Some(s) = event.sequence {
        attrs.push(("sequence".into(), s.to_string()));
    }
    for (name, value) in &event.extensions {
        if !is_attribute_name(name) {
            return Err(invalid(name, "extension names are 1 to 20 lower-case letters or digits"));
        }
        if RESERVED.contains(&name.as_str()) {
            return Err(invalid(name, "is set by the encoder; use the Event field instead"));
        }
        attrs.push((name.clone(), value.clone()));
    }
    Ok(attrs)
}

/// The header of a known attribute in binary mode (extensions: `ce_` + name).
fn binary_header_name(attribute: &str) -> Option<&'static str> {
    Some(match attribute {
        "datacontenttype" => CONTENT_TYPE_HEADER,
        "specversion" => "ce_specversion",
        "id" => "ce_id",
        "source" => "ce_source",
        "type" => "ce_type",
        "time" => "ce_time",
        "subject" => "ce_subject",
        "partitionkey" => "ce_partitionkey",
        "traceparent" => "ce_traceparent",
        "correlationid" => "ce_correlationid",
        "sequence" => "ce_sequence",
        _ => return None,
    })
}

fn format_time(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn is_attribute_name(name: &str) -> bool {
    (1..=20).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Decodes a record into a typed event, or says exactly why not. Never panics.
pub fn decode(record: &Record) -> Result<Decoded, DecodeError> {
    let content_type = content_type_header(record)?;
    let structured = content_type.as_deref().is_some_and(|ct| media_type(ct).starts_with("application/cloudevents"));
    let (mut attrs, data, mode) = if structured {
        let ct = content_type.unwrap_or_default();
        if media_type(&ct) != "application/cloudevents+json" {
            return Err(DecodeError::UnsupportedContentType { content_type: ct });
        }
        let (attrs, data) = structured_attributes(record)?;
        (attrs, data, ContentMode::Structured)
    } else if record.headers.iter().any(|h| h.name.eq_ignore_ascii_case("ce_specversion")) {
        let mut attrs = binary_attributes(record)?;
        if let Some(ct) = content_type {
            attrs.insert("datacontenttype".into(), ct);
        }
        (attrs, record.value.as_deref().map(Cow::Borrowed), ContentMode::Binary)
    } else {
        return Err(DecodeError::NotCloudEvent {
            reason: "no `ce_specversion` header (binary mode) and no `content-type: application/cloudevents+json` header (structured mode)".into(),
        });
    };

    let specversion = take_required(&mut attrs, "specversion")?;
    if specversion != SPECVERSION {
        return Err(DecodeError::UnsupportedSpecVersion { found: specversion });
    }
    let id = take_required(&mut attrs, "id")?;
    let source = take_required(&mut attrs, "source")?;
    let type_name = take_required(&mut attrs, "type")?;
    let event_type =
        EventType::parse(&type_name).ok_or_else(|| DecodeError::UnknownType { event_type: type_name.clone() })?;
    let legacy_type = (type_name != event_type.as_str()).then_some(type_name);

    if let Some(ct) = attrs.remove("datacontenttype") {
        let media = media_type(&ct);
        if !(media == "application/json" || media == "text/json" || media.ends_with("+json")) {
            return Err(DecodeError::UnsupportedContentType { content_type: ct });
        }
    }
    let time = attrs
        .remove("time")
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(&t)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| invalid_attr("time", format!("{t:?} is not an RFC 3339 timestamp ({e})")))
        })
        .transpose()?;
    let traceparent = attrs
        .remove("traceparent")
        .map(|t| TraceParent::parse(&t).map_err(|e| invalid_attr("traceparent", format!("{t:?}: {e}"))))
        .transpose()?;
    let sequence = attrs
        .remove("sequence")
        .map(|s| s.parse::<u64>().map_err(|_| invalid_attr("sequence", format!("{s:?} is not an unsigned integer"))))
        .transpose()?;
    let correlationid = attrs.remove("correlationid");
    // Derived from the key on our side; a foreign producer's values are not kept.
    attrs.remove("subject");
    attrs.remove("partitionkey");

    let key = match record.key.as_deref() {
        None | Some([]) => return Err(DecodeError::MissingKey { expected_field: event_type.key_field() }),
        Some(k) => {
            std::str::from_utf8(k).map_err(|_| DecodeError::InvalidKey { reason: "not UTF-8".into() })?.to_owned()
        }
    };

    let data = match data.as_deref() {
        None | Some([]) => {
            return Err(DecodeError::PayloadInvalid {
                event_type,
                path: String::new(),
                reason: "the record carries no data".into(),
            })
        }
        Some(d) => d,
    };
    let payload = Payload::from_json(event_type, data).map_err(|e| DecodeError::PayloadInvalid {
        event_type,
        path: e.path,
        reason: e.reason,
    })?;
    if payload.aggregate_id() != key {
        return Err(DecodeError::KeyMismatch {
            key,
            field: event_type.key_field(),
            aggregate_id: payload.aggregate_id().to_owned(),
        });
    }

    Ok(Decoded {
        key,
        event: Event { id, source, time, traceparent, correlationid, sequence, extensions: attrs, data: payload },
        mode,
        legacy_type,
    })
}

fn invalid_attr(name: &str, reason: impl Into<String>) -> DecodeError {
    DecodeError::InvalidAttribute { name: name.into(), reason: reason.into() }
}

fn take_required(attrs: &mut BTreeMap<String, String>, name: &str) -> Result<String, DecodeError> {
    match attrs.remove(name) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(DecodeError::MissingAttribute { name: name.into() }),
    }
}

/// `application/json; charset=utf-8` -> `application/json`.
fn media_type(content_type: &str) -> Cow<'_, str> {
    lowercase(content_type.split(';').next().unwrap_or_default().trim())
}

/// ASCII lower case, allocating only when something is upper case.
fn lowercase(s: &str) -> Cow<'_, str> {
    match s.bytes().any(|b| b.is_ascii_uppercase()) {
        true => Cow::Owned(s.to_ascii_lowercase()),
        false => Cow::Borrowed(s),
    }
}

fn header_text<'a>(name: &str, value: Option<&'a [u8]>) -> Result<&'a str, DecodeError> {
    let bytes = value.ok_or_else(|| invalid_attr(name, "header has no value"))?;
    std::str::from_utf8(bytes).map_err(|_| invalid_attr(name, "header value is not UTF-8"))
}

fn content_type_header(record: &Record) -> Result<Option<String>, DecodeError> {
    let mut found = None;
    for h in record.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(CONTENT_TYPE_HEADER)) {
        let value = header_text("datacontenttype", h.value.as_deref())?;
        if found.replace(value.to_owned()).is_some() {
            return Err(invalid_attr("datacontenttype", "more than one content-type header"));
        }
    }
    Ok(found)
}

fn binary_attributes(record: &Record) -> Result<BTreeMap<String, String>, DecodeError> {
    let mut attrs = BTreeMap::new();
    for h in &record.headers {
        let lower = lowercase(&h.name);
        let Some(name) = lower.strip_prefix(HEADER_PREFIX) else { continue };
        if !is_attribute_name(name) {
            return Err(invalid_attr(&h.name, "attribute names after `ce_` are 1 to 20 lower-case letters or digits"));
        }
        let value = header_text(name, h.value.as_deref())?;
        if attrs.insert(name.to_owned(), value.to_owned()).is_some() {
            return Err(invalid_attr(name, "header appears more than once"));
        }
    }
    Ok(attrs)
}

type Attributes = BTreeMap<String, String>;
/// The CloudEvent data: borrowed from the record, except when it arrived base64-encoded.
type Data<'a> = Option<Cow<'a, [u8]>>;

fn structured_attributes(record: &Record) -> Result<(Attributes, Data<'_>), DecodeError> {
    let value = record
        .value
        .as_deref()
        .ok_or_else(|| DecodeError::NotCloudEvent { reason: "structured-mode record has no value".into() })?;
    let object: BTreeMap<String, &RawValue> = serde_json::from_slice(value).map_err(|e| {
        DecodeError::NotCloudEvent { reason: format!("structured-mode value is not a JSON object: {e}") }
    })?;
    let mut attrs = BTreeMap::new();
    let mut data = None;
    for (name, raw) in object {
        match name.as_str() {
            "data" => data = Some(Cow::Borrowed(raw.get().as_bytes())),
            "data_base64" => {
                let text: String =
                    serde_json::from_str(raw.get()).map_err(|_| invalid_attr("data_base64", "must be a string"))?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| invalid_attr("data_base64", format!("not base64: {e}")))?;
                data = Some(Cow::Owned(bytes));
            }
            _ => {
                if !is_attribute_name(&name) {
                    return Err(invalid_attr(&name, "attribute names are 1 to 20 lower-case letters or digits"));
                }
                // CloudEvents JSON format: attributes are strings, integers or booleans; null means absent.
                let text = match serde_json::from_str::<serde_json::Value>(raw.get()) {
                    Ok(serde_json::Value::Null) => continue,
                    Ok(serde_json::Value::String(s)) => s,
                    Ok(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
                    Ok(serde_json::Value::Bool(b)) => b.to_string(),
                    _ => return Err(invalid_attr(&name, "must be a string, an integer or a boolean")),
                };
                attrs.insert(name, text);
            }
        }
    }
    Ok((attrs, data))
}

#[cfg(test)]
#[path = "binding_tests.rs"]
mod tests;
