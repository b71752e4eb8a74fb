//! CloudEvents Kafka protocol binding 1.0: binary and structured content modes.
//!
//! Kafka-client agnostic: a [`Record`] is key, value and headers, so this
//! crate is testable without a broker and every client crate converts to it.

use std::borrow::Cow;

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

use crate::catalog::{EventType, Payload};
use crate::envelope::{Event, TraceParent, JSON_CONTENT_TYPE, SPECVERSION};
use crate::payloads::Timestamp;

pub const CONTENT_TYPE_HEADER: &str = "content-type";
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";
/// The `content-type` of a binary-mode record whose value is Avro in the
/// Confluent wire format; the caller decodes it through a Schema Registry.
pub const AVRO_CONTENT_TYPE: &str = "application/avro";
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
    /// Static for the names we write and the well-known ones we read, so
    /// most headers cost no allocation for their name.
    pub name: Cow<'static, str>,
    pub value: Option<Vec<u8>>,
}

/// Every attribute the codec knows, with its binary-mode header: one table
/// for the encoder's header names, the decoder's attribute slots and the
/// header names read without an allocation.
const KNOWN_ATTRIBUTES: [(&str, &str); 11] = [
    ("specversion", "ce_specversion"),
    ("id", "ce_id"),
    ("source", "ce_source"),
    ("type", "ce_type"),
    ("datacontenttype", CONTENT_TYPE_HEADER),
    ("time", "ce_time"),
    ("traceparent", "ce_traceparent"),
    ("sequence", "ce_sequence"),
    ("correlationid", "ce_correlationid"),
    ("subject", "ce_subject"),
    ("partitionkey", "ce_partitionkey"),
];

/// W3C trace context, which other producers may set next to ours.
const W3C_TRACEPARENT_HEADER: &str = "traceparent";

impl Header {
    /// The name of a header read from Kafka, without an allocation when it
    /// is one of the headers we write.
    pub fn name_from(name: &str) -> Cow<'static, str> {
        match KNOWN_ATTRIBUTES.iter().map(|(_, h)| *h).chain([W3C_TRACEPARENT_HEADER]).find(|h| *h == name) {
            Some(h) => Cow::Borrowed(h),
            None => Cow::Owned(name.to_owned()),
        }
    }
}

impl Record {
    /// The value of the first header with this name (exact match).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|h| h.name == name).and_then(|h| h.value.as_deref())
    }

    fn push_header(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Vec<u8>>) {
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
    encode_data(event, mode, data, JSON_CONTENT_TYPE, None)
}

/// A binary-mode record whose value is Avro in the Confluent wire format
/// (`wire`), with `dataschema` the registry's URL of its schema. An event's
/// own `dataschema` (an input's) gives way to it.
pub fn encode_avro(event: &Event, wire: Vec<u8>, dataschema: &str) -> Result<Record, EncodeError> {
    encode_data(event, ContentMode::Binary, wire, AVRO_CONTENT_TYPE, Some(dataschema))
}

fn encode_data(
    event: &Event,
    mode: ContentMode,
    data: Vec<u8>,
    content_type: &'static str,
    dataschema: Option<&str>,
) -> Result<Record, EncodeError> {
    let attrs = attributes_of(event, content_type, dataschema)?;
    let key = event.key().as_bytes().to_vec();
    let mut record = Record { key: Some(key), ..Record::default() };
    match mode {
        ContentMode::Binary => {
            record.headers.reserve(attrs.len());
            for (name, value) in attrs {
                match binary_header_name(&name) {
                    Some(header) => record.push_header(header, value.into_owned()),
                    None => record.push_header(format!("{HEADER_PREFIX}{name}"), value.into_owned()),
                }
            }
            record.value = Some(data);
        }
        ContentMode::Structured => {
            let data = event.data.to_json_value();
            let mut object = serde_json::Map::new();
            for (name, value) in attrs {
                object.insert(name.into_owned(), serde_json::Value::String(value.into_owned()));
            }
            object.insert("data".into(), data);
            record.push_header(CONTENT_TYPE_HEADER, STRUCTURED_CONTENT_TYPE);
            record.value = Some(serde_json::Value::Object(object).to_string().into_bytes());
        }
    }
    Ok(record)
}

/// An attribute to write: static names, values borrowed from the event where they can be.
type Attribute<'a> = (Cow<'static, str>, Cow<'a, str>);

/// Attribute name/value pairs in the order we write them.
fn attributes_of<'a>(
    event: &'a Event,
    content_type: &'static str,
    dataschema: Option<&'a str>,
) -> Result<Vec<Attribute<'a>>, EncodeError> {
    let invalid = |name: &str, reason: &str| EncodeError::InvalidAttribute { name: name.into(), reason: reason.into() };
    if event.id.is_empty() {
        return Err(invalid("id", "must not be empty"));
    }
    if event.source.is_empty() {
        return Err(invalid("source", "must not be empty"));
    }
    let key = event.key();
    let mut attrs: Vec<Attribute<'a>> = Vec::with_capacity(12 + event.extensions.len());
    attrs.extend([
        ("specversion".into(), SPECVERSION.into()),
        ("id".into(), event.id.as_str().into()),
        ("source".into(), event.source.as_str().into()),
        ("type".into(), event.event_type().as_str().into()),
    ]);
    if let Some(time) = event.time {
        attrs.push(("time".into(), format_time(time).into()));
    }
    attrs.push(("subject".into(), key.into()));
    attrs.push(("datacontenttype".into(), content_type.into()));
    if let Some(url) = dataschema {
        attrs.push(("dataschema".into(), url.into()));
    }
    attrs.push(("partitionkey".into(), key.into()));
    if let Some(tp) = &event.traceparent {
        attrs.push(("traceparent".into(), tp.as_str().into()));
    }
    if let Some(c) = &event.correlationid {
        attrs.push(("correlationid".into(), c.as_str().into()));
    }
    if let Some(s) = event.sequence {
        attrs.push(("sequence".into(), s.to_string().into()));
    }
    for (name, value) in &event.extensions {
        if dataschema.is_some() && name == "dataschema" {
            continue;
        }
        if !is_attribute_name(name) {
            return Err(invalid(name, "extension names are 1 to 20 lower-case letters or digits"));
        }
        if RESERVED.contains(&name.as_str()) {
            return Err(invalid(name, "is set by the encoder; use the Event field instead"));
        }
        attrs.push((name.clone().into(), value.as_str().into()));
    }
    Ok(attrs)
}

/// The header of a known attribute in binary mode (extensions: `ce_` + name).
fn binary_header_name(attribute: &str) -> Option<&'static str> {
    KNOWN_ATTRIBUTES.iter().find(|(a, _)| *a == attribute).map(|(_, h)| *h)
}

/// RFC 3339 in UTC with exactly three fractional digits, as docs/events.md
/// promises: an input's microseconds (other teams' producers write them) do
/// not leak into our outputs, and every SDK parses milliseconds.
fn format_time(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn is_attribute_name(name: &str) -> bool {
    (1..=20).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Decodes a record into a typed event, or says exactly why not. Never panics.
pub fn decode(record: &Record) -> Result<Decoded, DecodeError> {
    decode_keyed(record, true, None)
}

/// Whether the record's data is Avro ([`AVRO_CONTENT_TYPE`]): the caller
/// reads it through the registry and passes the JSON to [`decode_avro`].
pub fn is_avro(record: &Record) -> bool {
    matches!(content_type_header(record), Ok(Some(ct)) if media_type(&ct) == AVRO_CONTENT_TYPE)
}

/// [`decode`] of a binary-mode Avro record, its attributes from the headers
/// and its data, `json`, as the caller read it from the Avro; `rekeyed` as
/// for [`decode_rekeyed`]. The record's `dataschema` names the Avro schema,
/// not the event's, and is not kept.
pub fn decode_avro(record: &Record, json: &[u8], rekeyed: bool) -> Result<Decoded, DecodeError> {
    decode_keyed(record, !rekeyed, Some(json))
}

/// [`decode`] of a record re-keyed by a repartition step: its key is
/// another aggregate's id (an order's, for an inventory event), so it is not
/// compared with the payload's aggregate id. `Decoded::key` is the record key.
pub fn decode_rekeyed(record: &Record) -> Result<Decoded, DecodeError> {
    decode_keyed(record, false, None)
}

/// `avro`: the JSON of a binary-mode record's Avro data, read by the caller.
fn decode_keyed(record: &Record, check_key: bool, avro: Option<&[u8]>) -> Result<Decoded, DecodeError> {
    let content_type = content_type_header(record)?;
    let structured = content_type.as_deref().is_some_and(|ct| media_type(ct).starts_with("application/cloudevents"));
    let (mut attrs, data, mode) = if structured {
        let ct = content_type.unwrap_or_default();
        if media_type(&ct) != "application/cloudevents+json" {
            return Err(DecodeError::UnsupportedContentType { content_type: ct.into_owned() });
        }
        let (attrs, data) = structured_attributes(record)?;
        (attrs, data, ContentMode::Structured)
    } else if record.headers.iter().any(|h| h.name.eq_ignore_ascii_case("ce_specversion")) {
        let mut attrs = binary_attributes(record)?;
        match avro {
            Some(json) => {
                attrs.remove("dataschema");
                (attrs, Some(Cow::Borrowed(json)), ContentMode::Binary)
            }
            None => {
                if let Some(ct) = content_type {
                    attrs.insert("datacontenttype".into(), ct);
                }
                (attrs, record.value.as_deref().map(Cow::Borrowed), ContentMode::Binary)
            }
        }
    } else {
        return Err(DecodeError::NotCloudEvent {
            reason: "no `ce_specversion` header (binary mode) and no `content-type: application/cloudevents+json` header (structured mode)".into(),
        });
    };

    let specversion = take_required(&mut attrs, "specversion")?;
    if specversion != SPECVERSION {
        return Err(DecodeError::UnsupportedSpecVersion { found: specversion.into_owned() });
    }
    let id = take_required(&mut attrs, "id")?;
    let source = take_required(&mut attrs, "source")?;
    let type_name = take_required(&mut attrs, "type")?;
    let event_type =
        EventType::parse(&type_name).ok_or_else(|| DecodeError::UnknownType { event_type: type_name.to_string() })?;
    let legacy_type = (type_name != event_type.as_str()).then(|| type_name.into_owned());

    if let Some(ct) = attrs.remove("datacontenttype") {
        let media = media_type(&ct);
        if !(media == "application/json" || media == "text/json" || media.ends_with("+json")) {
            return Err(DecodeError::UnsupportedContentType { content_type: ct.into_owned() });
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
    let correlationid = attrs.remove("correlationid").map(Cow::into_owned);
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
    if check_key && payload.aggregate_id() != key {
        return Err(DecodeError::KeyMismatch {
            key,
            field: event_type.key_field(),
            aggregate_id: payload.aggregate_id().to_owned(),
        });
    }

    Ok(Decoded {
        key,
        event: Event {
            id: id.into_owned(),
            source: source.into_owned(),
            time,
            traceparent,
            correlationid,
            sequence,
            extensions: attrs.extensions.into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
            data: payload,
        },
        mode,
        legacy_type,
    })
}

fn invalid_attr(name: &str, reason: impl Into<String>) -> DecodeError {
    DecodeError::InvalidAttribute { name: name.into(), reason: reason.into() }
}

fn take_required<'a>(attrs: &mut Attributes<'a>, name: &'static str) -> Result<Cow<'a, str>, DecodeError> {
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

mod read;
use read::{binary_attributes, content_type_header, structured_attributes, Attributes};

#[cfg(test)]
mod tests;
