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
    let attrs = attributes_of(event)?;
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
fn attributes_of(event: &Event) -> Result<Vec<Attribute<'_>>, EncodeError> {
    let invalid = |name: &str, reason: &str| EncodeError::InvalidAttribute { name: name.into(), reason: reason.into() };
    if event.id.is_empty() {
        return Err(invalid("id", "must not be empty"));
    }
    if event.source.is_empty() {
        return Err(invalid("source", "must not be empty"));
    }
    let key = event.key();
    let mut attrs: Vec<Attribute<'_>> = Vec::with_capacity(11 + event.extensions.len());
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
    attrs.push(("datacontenttype".into(), JSON_CONTENT_TYPE.into()));
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
    decode_keyed(record, true)
}

/// [`decode`] of a record re-keyed by a repartition step: its key is
/// another aggregate's id (an order's, for an inventory event), so it is not
/// compared with the payload's aggregate id. `Decoded::key` is the record key.
pub fn decode_rekeyed(record: &Record) -> Result<Decoded, DecodeError> {
    decode_keyed(record, false)
}

fn decode_keyed(record: &Record, check_key: bool) -> Result<Decoded, DecodeError> {
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

fn header_text<'a>(name: &str, value: Option<&'a [u8]>) -> Result<&'a str, DecodeError> {
    let bytes = value.ok_or_else(|| invalid_attr(name, "header has no value"))?;
    std::str::from_utf8(bytes).map_err(|_| invalid_attr(name, "header value is not UTF-8"))
}

fn content_type_header(record: &Record) -> Result<Option<Cow<'_, str>>, DecodeError> {
    let mut found = None;
    for h in record.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(CONTENT_TYPE_HEADER)) {
        let value = header_text("datacontenttype", h.value.as_deref())?;
        if found.replace(Cow::Borrowed(value)).is_some() {
            return Err(invalid_attr("datacontenttype", "more than one content-type header"));
        }
    }
    Ok(found)
}

fn binary_attributes(record: &Record) -> Result<Attributes<'_>, DecodeError> {
    let mut attrs = Attributes::default();
    for h in &record.headers {
        // Borrowed from the record: decoding is on the hot path of every processor.
        let name: Cow<'_, str> = match lowercase(&h.name) {
            Cow::Borrowed(n) => match n.strip_prefix(HEADER_PREFIX) {
                Some(n) => Cow::Borrowed(n),
                None => continue,
            },
            Cow::Owned(n) => match n.strip_prefix(HEADER_PREFIX) {
                Some(n) => Cow::Owned(n.to_owned()),
                None => continue,
            },
        };
        if !is_attribute_name(&name) {
            return Err(invalid_attr(&h.name, "attribute names after `ce_` are 1 to 20 lower-case letters or digits"));
        }
        let value = header_text(&name, h.value.as_deref())?;
        if let Some(name) = attrs.insert(name, Cow::Borrowed(value)) {
            return Err(invalid_attr(&name, "header appears more than once"));
        }
    }
    Ok(attrs)
}

/// CloudEvents attributes as read, borrowed from the record where they can
/// be. The ones the decoder knows have a slot each rather than a map entry:
/// decoding runs for every input of every processor.
#[derive(Default)]
struct Attributes<'a> {
    known: [Option<Cow<'a, str>>; KNOWN_ATTRIBUTES.len()],
    extensions: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
}

impl<'a> Attributes<'a> {
    fn slot(name: &str) -> Option<usize> {
        KNOWN_ATTRIBUTES.iter().position(|(a, _)| *a == name)
    }

    /// Sets an attribute; gives the name back when it was already set.
    fn insert(&mut self, name: Cow<'a, str>, value: Cow<'a, str>) -> Option<Cow<'a, str>> {
        let earlier = match Self::slot(&name) {
            Some(i) => self.known[i].replace(value),
            None => self.extensions.insert(name.clone(), value),
        };
        earlier.map(|_| name)
    }

    fn remove(&mut self, name: &'static str) -> Option<Cow<'a, str>> {
        match Self::slot(name) {
            Some(i) => self.known[i].take(),
            None => self.extensions.remove(name),
        }
    }
}
/// The CloudEvent data: borrowed from the record, except when it arrived base64-encoded.
type Data<'a> = Option<Cow<'a, [u8]>>;

fn structured_attributes(record: &Record) -> Result<(Attributes<'_>, Data<'_>), DecodeError> {
    let value = record
        .value
        .as_deref()
        .ok_or_else(|| DecodeError::NotCloudEvent { reason: "structured-mode record has no value".into() })?;
    let object: BTreeMap<String, &RawValue> = serde_json::from_slice(value).map_err(|e| {
        DecodeError::NotCloudEvent { reason: format!("structured-mode value is not a JSON object: {e}") }
    })?;
    let mut attrs = Attributes::default();
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
                attrs.insert(Cow::Owned(name), Cow::Owned(text));
            }
        }
    }
    Ok((attrs, data))
}

#[cfg(test)]
mod tests;
