//! What a repartition step may read of a record without decoding it: the
//! CloudEvent's type and correlation id from its binary-mode headers, and
//! one top-level string member of its JSON data, found by a scan that
//! builds nothing else. A re-key needs only the new key, and decoding the
//! whole event (attributes checked, the typed payload built) was most of
//! the step's cost.
//!
//! Only a plain binary-mode JSON CloudEvent has a view; a structured or an
//! Avro record, or one without the required headers, goes the full decode
//! way, which also dead-letters what does not decode.

use std::borrow::Cow;
use std::fmt;

use sagastream_contract::Record;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// A binary-mode JSON CloudEvent record, read no further than asked.
#[derive(Debug, Clone, Copy)]
pub struct KeyView<'a> {
    event_type: &'a str,
    correlationid: Option<&'a str>,
    data: &'a [u8],
}

impl<'a> KeyView<'a> {
    /// The view of a binary-mode CloudEvent 1.0 with JSON data; `None` for
    /// anything else.
    pub fn of(record: &'a Record) -> Option<KeyView<'a>> {
        let header = |name: &str| record.header(name).and_then(|v| std::str::from_utf8(v).ok());
        if header("ce_specversion")? != "1.0" || header("ce_id")?.is_empty() || header("ce_source")?.is_empty() {
            return None;
        }
        if let Some(ct) = header("content-type") {
            if ct.split(';').next().map(str::trim) != Some("application/json") {
                return None;
            }
        }
        Some(KeyView {
            event_type: header("ce_type")?,
            correlationid: header("ce_correlationid"),
            data: record.value.as_deref()?,
        })
    }

    pub fn event_type(&self) -> &'a str {
        self.event_type
    }

    pub fn correlationid(&self) -> Option<&'a str> {
        self.correlationid
    }

    /// The top-level member `name` of the data when it is a string (the
    /// first, if the JSON repeats it); `None` when it is absent, not a
    /// string, or the data is not a JSON object.
    pub fn data_str(&self, name: &str) -> Option<String> {
        let mut de = serde_json::Deserializer::from_slice(self.data);
        let found = Member(name).deserialize(&mut de).ok()?;
        de.end().ok()?;
        found
    }
}

/// Scans a JSON object for one member, skipping the others unbuilt.
struct Member<'n>(&'n str);

impl<'de> DeserializeSeed<'de> for Member<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Member<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found: Option<Option<String>> = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if found.is_none() && key == self.0 {
                let value: serde_json::Value = map.next_value()?;
                found = Some(value.as_str().map(str::to_owned));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found.flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use sagastream_contract::payloads::inventory::InventoryReserved;
    use sagastream_contract::{encode, ContentMode, Event, Header};

    fn reserved() -> Event {
        Event::new(
            "/t",
            InventoryReserved {
                reservation_id: "res_1".into(),
                order_id: "order_\"7\"".into(),
                product_id: "p1".into(),
                location_id: "w1".into(),
                quantity: 2,
                expires_at: Utc::now(),
            },
        )
        .with_correlation_id("corr-1")
    }

    fn view_of(record: &Record) -> KeyView<'_> {
        KeyView::of(record).expect("a binary-mode JSON CloudEvent")
    }

    #[test]
    fn reads_the_type_the_correlation_id_and_one_member_of_the_data() {
        let record = encode(&reserved(), ContentMode::Binary).unwrap();
        let v = view_of(&record);
        assert_eq!(v.event_type(), "inventory.reserved");
        assert_eq!(v.correlationid(), Some("corr-1"));
        assert_eq!(v.data_str("order_id").as_deref(), Some("order_\"7\""), "escapes are undone");
        assert_eq!(v.data_str("quantity"), None, "not a string");
        assert_eq!(v.data_str("missing"), None);
    }

    #[test]
    fn data_that_is_not_one_json_object_has_no_member() {
        let with =
            |value: &[u8]| Record { value: Some(value.to_vec()), ..encode(&reserved(), ContentMode::Binary).unwrap() };
        for bad in [&b"[1,2]"[..], b"\"order_id\"", b"{\"order_id\": \"a\"", b"{\"order_id\": \"a\"} x", b"not json"] {
            let record = with(bad);
            assert_eq!(view_of(&record).data_str("order_id"), None, "{}", String::from_utf8_lossy(bad));
        }
        let record = with(br#"{"order_id": "first", "nested": {"order_id": "inner"}, "order_id": "second"}"#);
        assert_eq!(view_of(&record).data_str("order_id").as_deref(), Some("first"), "top level, first one");
    }

    #[test]
    fn only_plain_binary_json_cloudevents_have_a_view() {
        let structured = encode(&reserved(), ContentMode::Structured).unwrap();
        assert!(KeyView::of(&structured).is_none());
        let mut avro = encode(&reserved(), ContentMode::Binary).unwrap();
        avro.headers.retain(|h| h.name != "content-type");
        avro.headers.push(Header { name: "content-type".into(), value: Some(b"application/avro".to_vec()) });
        assert!(KeyView::of(&avro).is_none());
        let mut no_id = encode(&reserved(), ContentMode::Binary).unwrap();
        no_id.headers.retain(|h| h.name != "ce_id");
        assert!(KeyView::of(&no_id).is_none());
        let mut old = encode(&reserved(), ContentMode::Binary).unwrap();
        old.headers.retain(|h| h.name != "ce_specversion");
        old.headers.push(Header { name: "ce_specversion".into(), value: Some(b"0.3".to_vec()) });
        assert!(KeyView::of(&old).is_none());
    }
}
