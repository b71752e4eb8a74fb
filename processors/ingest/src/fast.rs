//! The common case without the JSON tree: a record with nothing personal in
//! what ingest writes (no `@` in its payload or the attributes it reads, no
//! string that is an IP address in its payload) is read from its text,
//! unscrubbed, and a First Viscount payload is decoded straight into its
//! catalog type. Anything else, and any record that is not a whole envelope,
//! takes the scrubbing path (`envelope::read_scrubbed`), which decides every
//! refusal. A unit test holds both paths to the same events.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use sagastream_topics::Envelope;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::envelope::{is_number, native, payload_field, Native};

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

/// The native event, when the record is a clean, whole envelope.
pub fn read(platform: Envelope, bytes: &[u8]) -> Option<Native> {
    let top: HashMap<Cow<'_, str>, &RawValue> = serde_json::from_slice(bytes).ok()?;
    let member = payload_field(platform);
    let payload = *top.get(member)?;
    let text = payload.get();
    if !text.starts_with('{') || may_hold_personal_data(text) {
        return None;
    }
    let mut envelope = Map::new();
    for (key, raw) in &top {
        if key == member {
            continue;
        }
        // Attributes (and Go4u's metadata, of which only the trace id and
        // sequence are read) are small: a tree each is cheap.
        if key != "metadata" && raw.get().contains('@') {
            return None;
        }
        envelope.insert(key.to_string(), serde_json::from_str(raw.get()).ok()?);
    }
    let first_viscount = platform == Envelope::FirstViscount;
    let (fields, numbers) = if first_viscount {
        // Taken as it is: decoded once, into the catalog type.
        (Map::new(), BTreeMap::new())
    } else {
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
    };
    envelope.insert(member.to_owned(), Value::Object(fields));
    let mut native = native(platform, envelope, numbers).ok()?;
    if first_viscount {
        native.raw_payload = Some(text.into());
    }
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
