//! Personal data out, before anything is written (Go4u: "payloads exclude
//! raw PII; use hashed references or IDs"): an email becomes a `sha256:`
//! reference, IP addresses, personal names, phone numbers and identity
//! documents are dropped. It runs on the whole foreign record, so neither
//! the CloudEvent nor the DLQ record nor a log line can carry them.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Fields dropped wherever they appear, compared lowercase without `_`/`-`
/// (`first_name`, `firstName` and `FirstName` are one).
const DROPPED: &[&str] = &[
    "ip",
    "ipaddress",
    "clientip",
    "remoteip",
    "userip",
    "firstname",
    "lastname",
    "middlename",
    "fullname",
    "givenname",
    "familyname",
    "surname",
    "displayname",
    "phone",
    "phonenumber",
    "mobile",
    "mobilenumber",
    "passport",
    "passportnumber",
    "nationalid",
    "documentnumber",
    "ssn",
    "taxid",
    "dateofbirth",
    "dob",
];

fn normalised(key: &str) -> String {
    key.chars().filter(|c| !matches!(c, '_' | '-')).flat_map(char::to_lowercase).collect()
}

/// `sha256:<hex>` of the trimmed, lowercased address, so one address gives
/// one reference whatever its spelling.
pub fn email_reference(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Scrubs a JSON document in place.
pub fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => scrub_object(map),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::String(s) => {
            if let Some(clean) = without_emails(s) {
                *s = clean;
            }
        }
        _ => {}
    }
}

fn scrub_object(map: &mut Map<String, Value>) {
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let norm = normalised(&key);
        let is_ip = map.get(&key).and_then(Value::as_str).is_some_and(|s| s.trim().parse::<std::net::IpAddr>().is_ok());
        if DROPPED.contains(&norm.as_str()) || is_ip {
            map.remove(&key);
            continue;
        }
        if norm.ends_with("email") {
            if let Some(Value::String(email)) = map.remove(&key) {
                // `email` → `email_hash` (Go4u's name), `customerEmail` → `customerEmailHash`.
                let hashed = if key.chars().any(|c| c.is_ascii_uppercase()) {
                    format!("{key}Hash")
                } else {
                    format!("{key}_hash")
                };
                map.insert(hashed, Value::String(email_reference(&email)));
            }
            continue;
        }
        if let Some(v) = map.get_mut(&key) {
            scrub(v);
        }
    }
}

/// The text with every email address in it replaced by its reference, or
/// `None` when it has none.
fn without_emails(text: &str) -> Option<String> {
    if !text.contains('@') {
        return None;
    }
    let local = |c: char| c.is_ascii_alphanumeric() || "._%+-".contains(c);
    let domain = |c: char| c.is_ascii_alphanumeric() || ".-".contains(c);
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut found = false;
    for (i, &(at, c)) in chars.iter().enumerate() {
        if c != '@' || at < copied {
            continue;
        }
        let mut start = i;
        while start > 0 && local(chars[start - 1].1) {
            start -= 1;
        }
        let mut end = i + 1;
        while end < chars.len() && domain(chars[end].1) {
            end += 1;
        }
        // A sentence's full stop is not part of the domain.
        while end > i + 1 && chars[end - 1].1 == '.' {
            end -= 1;
        }
        let start_byte = chars[start].0;
        let end_byte = chars.get(end).map_or(text.len(), |(b, _)| *b);
        let host = &text[at + 1..end_byte];
        let labels_ok = host.contains('.') && host.split('.').all(|l| !l.is_empty());
        if start == i || !labels_ok {
            continue;
        }
        out.push_str(&text[copied..start_byte]);
        out.push_str(&email_reference(&text[start_byte..end_byte]));
        copied = end_byte;
        found = true;
    }
    if !found {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emails_become_references_and_personal_fields_go() {
        let mut v = json!({
            "userId": "usr_1",
            "email": "Ada.Obi@Example.ng",
            "firstName": "Ada",
            "last_name": "Obi",
            "customerEmail": "ada.obi@example.ng",
            "metadata": {"ip": "redacted", "client_ip": "203.0.113.7", "locale": "en", "seen_from": "2001:db8::1"},
            "items": [{"full_name": "Ada Obi", "qty": 2}],
            "name": "Premium Coffee Beans",
            "note": "write to ada.obi@example.ng. thanks",
            "handle": "@ada",
        });
        scrub(&mut v);
        let reference = email_reference("ada.obi@example.ng");
        assert_eq!(reference.len(), 7 + 64);
        assert_eq!(
            v,
            json!({
                "userId": "usr_1",
                "email_hash": reference,
                "customerEmailHash": reference,
                "metadata": {"locale": "en"},
                "items": [{"qty": 2}],
                "name": "Premium Coffee Beans",
                "note": format!("write to {reference}. thanks"),
                "handle": "@ada",
            })
        );
        let text = v.to_string();
        for raw in ["Ada", "Obi", "example.ng", "203.0.113", "2001:db8", "redacted"] {
            assert!(!text.contains(raw), "{raw} left in {text}");
        }
    }

    #[test]
    fn scrubbing_twice_changes_nothing_more() {
        let mut v = json!({"email": "a@b.co", "text": "x a@b.co y"});
        scrub(&mut v);
        let once = v.clone();
        scrub(&mut v);
        assert_eq!(v, once);
    }
}
