//! Reading attributes off a record: binary-mode headers and the members
//! of a structured-mode object, borrowed from the record where they can be.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::value::RawValue;

use super::{
    invalid_attr, is_attribute_name, lowercase, DecodeError, Record, CONTENT_TYPE_HEADER, HEADER_PREFIX,
    KNOWN_ATTRIBUTES,
};

pub(super) fn header_text<'a>(name: &str, value: Option<&'a [u8]>) -> Result<&'a str, DecodeError> {
    let bytes = value.ok_or_else(|| invalid_attr(name, "header has no value"))?;
    std::str::from_utf8(bytes).map_err(|_| invalid_attr(name, "header value is not UTF-8"))
}

pub(super) fn content_type_header(record: &Record) -> Result<Option<Cow<'_, str>>, DecodeError> {
    let mut found = None;
    for h in record.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(CONTENT_TYPE_HEADER)) {
        let value = header_text("datacontenttype", h.value.as_deref())?;
        if found.replace(Cow::Borrowed(value)).is_some() {
            return Err(invalid_attr("datacontenttype", "more than one content-type header"));
        }
    }
    Ok(found)
}

pub(super) fn binary_attributes(record: &Record) -> Result<Attributes<'_>, DecodeError> {
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
pub(super) struct Attributes<'a> {
    pub(super) known: [Option<Cow<'a, str>>; KNOWN_ATTRIBUTES.len()],
    pub(super) extensions: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
}

impl<'a> Attributes<'a> {
    fn slot(name: &str) -> Option<usize> {
        KNOWN_ATTRIBUTES.iter().position(|(a, _)| *a == name)
    }

    /// Sets an attribute; gives the name back when it was already set.
    pub(super) fn insert(&mut self, name: Cow<'a, str>, value: Cow<'a, str>) -> Option<Cow<'a, str>> {
        let earlier = match Self::slot(&name) {
            Some(i) => self.known[i].replace(value),
            None => self.extensions.insert(name.clone(), value),
        };
        earlier.map(|_| name)
    }

    pub(super) fn remove(&mut self, name: &'static str) -> Option<Cow<'a, str>> {
        match Self::slot(name) {
            Some(i) => self.known[i].take(),
            None => self.extensions.remove(name),
        }
    }
}
/// The CloudEvent data: borrowed from the record, except when it arrived base64-encoded.
pub(super) type Data<'a> = Option<Cow<'a, [u8]>>;

pub(super) fn structured_attributes(record: &Record) -> Result<(Attributes<'_>, Data<'_>), DecodeError> {
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
