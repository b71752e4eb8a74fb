//! The three foreign envelopes read into one shape: who sent what, when,
//! under which id and trace, with the payload scrubbed of personal data and
//! the exact text of its top-level numbers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sagastream_contract::TraceParent;
use sagastream_topics::Envelope;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::TranslateError;
use crate::scrub::scrub;

/// A foreign record, read and scrubbed.
#[derive(Debug, Clone, PartialEq)]
pub struct Native {
    pub platform: Envelope,
    pub id: String,
    /// The type as the platform names it (`InventoryReserved`, `dispute.resolved`).
    pub native_type: String,
    pub version: String,
    pub major: u64,
    pub time: DateTime<Utc>,
    /// The producing service: `source_service`, `producer` or `source`.
    pub producer: String,
    pub correlation_id: Option<String>,
    /// What the trace comes from: Go4u's trace id, else the correlation id.
    pub trace: Option<String>,
    pub sequence: Option<u64>,
    /// The payload (`data` or `payload`), scrubbed, keys as sent.
    pub payload: Map<String, Value>,
    /// The text of the payload's top-level numbers as written (`0.5`), for
    /// the fields whose value must not pass through a float.
    pub numbers: BTreeMap<String, String>,
    /// The payload's JSON text, when it was read without scrubbing (the
    /// fast path: nothing in it to scrub); then `payload` is left empty for
    /// a payload taken as it is.
    pub raw_payload: Option<Box<str>>,
}

/// A record that could be read as JSON: its scrubbed copy (for the DLQ)
/// and, when the envelope is whole, the native event.
pub struct Read {
    pub scrubbed: Option<Vec<u8>>,
    pub native: Result<Native, TranslateError>,
}

pub fn platform_name(platform: Envelope) -> &'static str {
    match platform {
        Envelope::FirstViscount => "first_viscount",
        Envelope::Go4u => "go4u",
        Envelope::Korrectng => "korrectng",
    }
}

/// The record parsed and scrubbed as a JSON tree: the path that decides
/// every refusal (`fast::read` takes the clean common case without the tree).
pub fn read_scrubbed(platform: Envelope, value: Option<&[u8]>) -> Read {
    let name = platform_name(platform);
    let invalid = |field: &'static str, reason: &str| TranslateError::InvalidEnvelope {
        platform: name,
        field,
        reason: reason.to_owned(),
    };
    let Some(bytes) = value else {
        return Read { scrubbed: None, native: Err(invalid("value", "the record has no value")) };
    };
    let Ok(mut doc) = serde_json::from_slice::<Value>(bytes) else {
        // Not JSON at all: nothing can be scrubbed, so the DLQ gets no copy
        // of the value; its headers point at the record on the raw topic.
        return Read { scrubbed: Some(Vec::new()), native: Err(invalid("value", "not JSON")) };
    };
    scrub(&mut doc);
    let scrubbed = Some(serde_json::to_vec(&doc).expect("a JSON value serialises"));
    let Value::Object(envelope) = doc else {
        return Read { scrubbed, native: Err(invalid("value", "not a JSON object")) };
    };
    let numbers = payload_numbers(bytes, platform);
    Read { scrubbed, native: native(platform, envelope, numbers) }
}

/// The native event of an envelope (its payload under its member).
pub(crate) fn native(
    platform: Envelope,
    envelope: Map<String, Value>,
    numbers: BTreeMap<String, String>,
) -> Result<Native, TranslateError> {
    match platform {
        Envelope::FirstViscount => first_viscount(envelope, numbers),
        Envelope::Go4u => go4u(envelope, numbers),
        Envelope::Korrectng => korrectng(envelope, numbers),
    }
}

/// The payload member of each envelope.
pub(crate) fn payload_field(platform: Envelope) -> &'static str {
    match platform {
        Envelope::FirstViscount => "data",
        Envelope::Go4u | Envelope::Korrectng => "payload",
    }
}

fn payload_numbers(bytes: &[u8], platform: Envelope) -> BTreeMap<String, String> {
    let top: BTreeMap<String, &RawValue> = serde_json::from_slice(bytes).unwrap_or_default();
    let Some(payload) = top.get(payload_field(platform)) else { return BTreeMap::new() };
    let fields: BTreeMap<String, &RawValue> = serde_json::from_str(payload.get()).unwrap_or_default();
    fields.into_iter().filter(|(_, v)| is_number(v)).map(|(k, v)| (k, v.get().to_owned())).collect()
}

/// Whether a raw JSON value is a number (its text is what counts, not a float).
pub(crate) fn is_number(raw: &RawValue) -> bool {
    raw.get().starts_with(|c: char| c == '-' || c.is_ascii_digit())
}

struct Fields {
    platform: &'static str,
    map: Map<String, Value>,
}

impl Fields {
    fn invalid(&self, field: &'static str, reason: &str) -> TranslateError {
        TranslateError::InvalidEnvelope { platform: self.platform, field, reason: reason.to_owned() }
    }

    fn string(&self, field: &'static str) -> Result<String, TranslateError> {
        match self.map.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(self.invalid(field, "is empty")),
            Some(_) => Err(self.invalid(field, "is not a string")),
            None => Err(self.invalid(field, "is missing")),
        }
    }

    fn optional_string(&self, field: &'static str) -> Result<Option<String>, TranslateError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.invalid(field, "is not a string")),
        }
    }

    fn time(&self, field: &'static str) -> Result<DateTime<Utc>, TranslateError> {
        let text = self.string(field)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| self.invalid(field, "is not an RFC 3339 timestamp"))
    }

    /// `"1.0"`, `"1"`, `1` or `1.2`: the version as text and its major.
    fn version(&self, field: &'static str) -> Result<Option<(String, u64)>, TranslateError> {
        let text = match self.map.get(field) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(self.invalid(field, "is not a version")),
        };
        let major = text.split('.').next().and_then(|m| m.parse::<u64>().ok());
        match major {
            Some(major) if text.split('.').skip(1).all(|p| p.parse::<u64>().is_ok()) => Ok(Some((text, major))),
            _ => Err(self.invalid(field, "is not a version such as 1 or 1.0")),
        }
    }

    fn payload(&mut self, field: &'static str) -> Result<Map<String, Value>, TranslateError> {
        match self.map.remove(field) {
            Some(Value::Object(m)) => Ok(m),
            Some(_) => Err(self.invalid(field, "is not a JSON object")),
            None => Err(self.invalid(field, "is missing")),
        }
    }
}

fn first_viscount(map: Map<String, Value>, numbers: BTreeMap<String, String>) -> Result<Native, TranslateError> {
    let mut f = Fields { platform: "first_viscount", map };
    // Inventory services write `version`, the others `event_version`.
    let version = match f.version("event_version")? {
        Some(v) => v,
        None => f.version("version")?.ok_or_else(|| f.invalid("event_version", "is missing (nor is version)"))?,
    };
    let correlation_id = f.optional_string("correlation_id")?;
    Ok(Native {
        platform: Envelope::FirstViscount,
        id: f.string("event_id")?,
        native_type: f.string("event_type")?,
        version: version.0,
        major: version.1,
        time: f.time("timestamp")?,
        producer: f.string("source_service")?,
        trace: correlation_id.clone(),
        correlation_id,
        sequence: None,
        payload: f.payload("data")?,
        numbers,
        raw_payload: None,
    })
}

fn go4u(map: Map<String, Value>, numbers: BTreeMap<String, String>) -> Result<Native, TranslateError> {
    let mut f = Fields { platform: "go4u", map };
    // The catalog's default version is 1.
    let (version, major) = f.version("event_version")?.unwrap_or_else(|| ("1".into(), 1));
    let (trace, sequence) = match f.map.get("metadata") {
        None | Some(Value::Null) => (None, None),
        Some(Value::Object(m)) => go4u_metadata(m)?,
        Some(_) => return Err(f.invalid("metadata", "is not a JSON object")),
    };
    Ok(Native {
        platform: Envelope::Go4u,
        id: f.string("event_id")?,
        native_type: f.string("event_name")?,
        version,
        major,
        time: f.time("occurred_at")?,
        producer: f.string("producer")?,
        correlation_id: None,
        trace,
        sequence,
        payload: f.payload("payload")?,
        numbers,
        raw_payload: None,
    })
}

/// What Go4u's metadata gives: the trace id and the sequence.
pub(crate) fn go4u_metadata(metadata: &Map<String, Value>) -> Result<(Option<String>, Option<u64>), TranslateError> {
    let invalid = |field: &'static str, reason: &str| TranslateError::InvalidEnvelope {
        platform: "go4u",
        field,
        reason: reason.to_owned(),
    };
    let sequence = match metadata.get("sequence") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            Some(n.as_u64().ok_or_else(|| invalid("metadata.sequence", "is not a whole number"))?)
        }
        Some(Value::String(s)) => {
            Some(s.parse::<u64>().map_err(|_| invalid("metadata.sequence", "is not a whole number"))?)
        }
        Some(_) => return Err(invalid("metadata.sequence", "is not a whole number")),
    };
    let trace = match metadata.get("trace_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid("metadata.trace_id", "is not a string")),
    };
    Ok((trace, sequence))
}

fn korrectng(map: Map<String, Value>, numbers: BTreeMap<String, String>) -> Result<Native, TranslateError> {
    let mut f = Fields { platform: "korrectng", map };
    let correlation_id = f.optional_string("correlationId")?;
    Ok(Native {
        platform: Envelope::Korrectng,
        id: f.string("id")?,
        native_type: f.string("type")?,
        // Event<T> has no version: every KorrectNG event is its first.
        version: "1".into(),
        major: 1,
        time: f.time("timestamp")?,
        producer: f.string("source")?,
        trace: correlation_id.clone(),
        correlation_id,
        sequence: None,
        payload: f.payload("payload")?,
        numbers,
        raw_payload: None,
    })
}

/// The W3C trace of a translated event, the same on every run: the trace id
/// is the producer's own when it is one (32 hex digits, dashes ignored, as a
/// UUID correlation id is), else derived from it, else from the event id;
/// the parent span is derived from the event id.
pub fn traceparent(native: &Native) -> TraceParent {
    // Built in one buffer: this runs once per record.
    fn hex(out: &mut String, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for b in bytes {
            out.push(DIGITS[usize::from(b >> 4)] as char);
            out.push(DIGITS[usize::from(b & 15)] as char);
        }
    }
    let digest = |tag: &str, text: &str| Sha256::new().chain_update(tag).chain_update(text).finalize();
    let mut out = String::with_capacity(55);
    out.push_str("00-");
    let own = native.trace.as_deref().filter(|t| {
        let digits = t.bytes().filter(|b| *b != b'-');
        digits.clone().count() == 32 && t.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()) && {
            let mut digits = digits;
            digits.any(|b| b != b'0')
        }
    });
    match (own, &native.trace) {
        (Some(t), _) => out.extend(t.chars().filter(|c| *c != '-').map(|c| c.to_ascii_lowercase())),
        (None, Some(t)) => hex(&mut out, &digest("trace:", t)[..16]),
        (None, None) => hex(&mut out, &digest("trace:", &native.id)[..16]),
    }
    out.push('-');
    hex(&mut out, &digest("span:", &native.id)[..8]);
    out.push_str("-01");
    TraceParent::parse_owned(out).expect("a well-formed traceparent")
}
