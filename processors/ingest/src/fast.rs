//! The common case without the JSON tree: a record with nothing personal in
//! what ingest writes (no `@` in its payload or the attributes it reads, no
//! string that is an IP address in its payload) is read from its text,
//! unscrubbed, and a First Viscount payload is decoded straight into its
//! catalog type. Anything else, and any record that is not a whole envelope,
//! takes the scrubbing path (`envelope::read_scrubbed`), which decides every
//! refusal. A unit test holds both paths to the same events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sagastream_topics::Envelope;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::envelope::{go4u_metadata, is_number, Native};

/// Whether JSON text may carry something to scrub: an `@` (an email), or a
/// string that parses as an IP address.
pub fn may_hold_personal_data(json: &str) -> bool {
    if json.contains('@') {
        return true;
    }
    let bytes = json.as_bytes();
    let mut i = 0;
    while let Some(open) = bytes[i..].iter().position(|b| *b == b'"') {
        let start = i + open + 1;
        let Some(len) = bytes[start..].iter().position(|b| *b == b'"' || *b == b'\\') else { return false };
        let end = start + len;
        let text = &json[start..end];
        let ip_like = (3..=45).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
            && (text.contains(':') || text.bytes().next().is_some_and(|b| b.is_ascii_digit()));
        if ip_like && text.parse::<std::net::IpAddr>().is_ok() {
            return true;
        }
        // An escape: skip the string the slow way (rare in these payloads).
        if bytes.get(end) == Some(&b'\\') {
            return true;
        }
        i = end + 1;
    }
    false
}

/// The members of the three envelopes that ingest reads, borrowed from the
/// record's text unparsed; any other member is skipped unread. A member
/// given twice fails the parse: the scrubbing path decides that record.
#[derive(Deserialize)]
struct Members<'a> {
    #[serde(borrow)]
    event_id: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    event_type: Option<&'a RawValue>,
    #[serde(borrow)]
    event_name: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    event_version: Option<&'a RawValue>,
    #[serde(borrow)]
    version: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    occurred_at: Option<&'a RawValue>,
    #[serde(borrow)]
    source_service: Option<&'a RawValue>,
    #[serde(borrow)]
    producer: Option<&'a RawValue>,
    #[serde(borrow)]
    source: Option<&'a RawValue>,
    #[serde(borrow)]
    correlation_id: Option<&'a RawValue>,
    #[serde(borrow, rename = "correlationId")]
    correlation_id_camel: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

/// The text of a JSON string that needs no unescaping and nothing
/// scrubbed; `None` otherwise (the scrubbing path decides).
fn plain(raw: &RawValue) -> Option<&str> {
    let text = raw.get().strip_prefix('"')?.strip_suffix('"')?;
    (!text.contains(['\\', '@'])).then_some(text)
}

/// A required attribute: a plain, non-blank string.
fn required(raw: Option<&RawValue>) -> Option<String> {
    plain(raw?).filter(|t| !t.trim().is_empty()).map(str::to_owned)
}

/// An optional attribute, as the scrubbing path reads one: missing, null or
/// blank is none. `None`: not plain, the scrubbing path decides.
fn optional(raw: Option<&RawValue>) -> Option<Option<String>> {
    match raw {
        None => Some(None),
        Some(r) => plain(r).map(|t| (!t.trim().is_empty()).then(|| t.to_owned())),
    }
}

/// A version (`"1.0"`, `"1"`, `1`) and its major, as `Fields::version`
/// reads it, for the spellings whose text is that reading's text.
fn version(raw: Option<&RawValue>) -> Option<Option<(String, u64)>> {
    let Some(raw) = raw else { return Some(None) };
    let text = match plain(raw) {
        Some(t) => t.trim(),
        // A whole number of up to 18 digits prints as it is written.
        None if (1..=18).contains(&raw.get().len()) && raw.get().bytes().all(|b| b.is_ascii_digit()) => raw.get(),
        None => return None,
    };
    let mut parts = text.split('.');
    let major = parts.next()?.parse::<u64>().ok()?;
    parts.all(|p| p.parse::<u64>().is_ok()).then(|| Some((text.to_owned(), major)))
}

fn time(raw: Option<&RawValue>) -> Option<DateTime<Utc>> {
    let text = required(raw)?;
    DateTime::parse_from_rfc3339(&text).ok().map(|t| t.with_timezone(&Utc))
}

/// The native event, when the record is a clean, whole envelope.
pub fn read(platform: Envelope, bytes: &[u8]) -> Option<Native> {
    let m: Members<'_> = serde_json::from_slice(bytes).ok()?;
    let member = match platform {
        Envelope::FirstViscount => m.data,
        Envelope::Go4u | Envelope::Korrectng => m.payload,
    };
    let text = member?.get();
    if !text.starts_with('{') || may_hold_personal_data(text) {
        return None;
    }
    let (payload, numbers) = match platform {
        // Taken as it is: decoded once, into the catalog type.
        Envelope::FirstViscount => (Map::new(), BTreeMap::new()),
        Envelope::Go4u | Envelope::Korrectng => {
            let raw: BTreeMap<String, &RawValue> = serde_json::from_str(text).ok()?;
            let mut fields = Map::new();
            let mut numbers = BTreeMap::new();
            for (k, v) in raw {
                if is_number(v) {
                    numbers.insert(k.clone(), v.get().to_owned());
                }
                fields.insert(k, serde_json::from_str(v.get()).ok()?);
            }
            (fields, numbers)
        }
    };
    let native = match platform {
        Envelope::FirstViscount => {
            let (version, major) = match version(m.event_version)? {
                Some(v) => v,
                None => version(m.version)??,
            };
            let correlation_id = optional(m.correlation_id)?;
            Native {
                platform,
                id: required(m.event_id)?,
                native_type: required(m.event_type)?,
                version,
                major,
                time: time(m.timestamp)?,
                producer: required(m.source_service)?,
                trace: correlation_id.clone(),
                correlation_id,
                sequence: None,
                payload,
                numbers,
                raw_payload: Some(text.into()),
            }
        }
        Envelope::Go4u => {
            let (version, major) = version(m.event_version)?.unwrap_or_else(|| ("1".into(), 1));
            // Small, and read only for the trace id and the sequence.
            let metadata: Map<String, Value> = match m.metadata {
                None => Map::new(),
                Some(raw) => serde_json::from_str(raw.get()).ok()?,
            };
            let (trace, sequence) = go4u_metadata(&metadata).ok()?;
            if trace.as_deref().is_some_and(|t| t.contains('@') || t.trim().parse::<std::net::IpAddr>().is_ok()) {
                return None;
            }
            Native {
                platform,
                id: required(m.event_id)?,
                native_type: required(m.event_name)?,
                version,
                major,
                time: time(m.occurred_at)?,
                producer: required(m.producer)?,
                correlation_id: None,
                trace,
                sequence,
                payload,
                numbers,
                raw_payload: None,
            }
        }
        Envelope::Korrectng => {
            let correlation_id = optional(m.correlation_id_camel)?;
            Native {
                platform,
                id: required(m.id)?,
                native_type: required(m.kind)?,
                version: "1".into(),
                major: 1,
                time: time(m.timestamp)?,
                producer: required(m.source)?,
                trace: correlation_id.clone(),
                correlation_id,
                sequence: None,
                payload,
                numbers,
                raw_payload: None,
            }
        }
    };
    Some(native)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_sends_a_record_the_slow_way() {
        assert!(may_hold_personal_data(r#"{"note":"mail a@b.co"}"#));
        assert!(may_hold_personal_data(r#"{"seen_from":"203.0.113.7"}"#));
        assert!(may_hold_personal_data(r#"{"seen_from":"2001:db8::1"}"#));
        assert!(may_hold_personal_data(r#"{"text":"say \"hi\""}"#), "escapes are left to the slow path");
        assert!(!may_hold_personal_data(r#"{"version":"1.0","ts":"2024-01-15T11:00:00Z","q":2,"cafe":"beef"}"#));
    }
}
