//! CloudEvents records whose data is Avro: read (JSON or Avro, whichever
//! the record's `content-type` says), written, and a JSON record's data
//! rewritten as Avro. Every failure says whose it is: the registry's
//! (retry) or the record's (its DLQ class).

use sagastream_contract::{
    decode, decode_avro, decode_rekeyed, encode_avro, is_avro, Decoded, Event, EventType, Header, Record,
    AVRO_CONTENT_TYPE,
};

use crate::avro::{AvroCodec, AvroError};

/// An Avro record read where no registry is configured.
pub const NO_SCHEMA_REGISTRY: &str = "no_schema_registry";
/// Avro data whose schema is of another event type than the record's `type`.
pub const AVRO_TYPE_MISMATCH: &str = "avro_type_mismatch";

/// Why a record could not be read or written, named after what the caller does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The registry did not answer: abort, back off, retry; never a DLQ record.
    #[error("the schema registry is unavailable: {0}")]
    RetryLater(String),
    /// The record's fault: dead-letter it under `class`.
    #[error("{class}: {message}")]
    Refused { class: &'static str, message: String },
}

impl RecordError {
    fn refused(class: &'static str, message: impl Into<String>) -> RecordError {
        RecordError::Refused { class, message: message.into() }
    }
}

impl From<AvroError> for RecordError {
    fn from(e: AvroError) -> RecordError {
        match (&e, e.class()) {
            (AvroError::RetryLater(why), _) => RecordError::RetryLater(why.clone()),
            (_, class) => RecordError::refused(class.unwrap_or("invalid_avro"), e.to_string()),
        }
    }
}

/// A CloudEvent record decoded, its Avro data read through `codec`;
/// `rekeyed` as for `decode_rekeyed` (the key is another aggregate's).
pub fn read(codec: Option<&AvroCodec>, record: &Record, rekeyed: bool) -> Result<Decoded, RecordError> {
    let class = |e: sagastream_contract::DecodeError| RecordError::refused(e.class(), e.to_string());
    if !is_avro(record) {
        return if rekeyed { decode_rekeyed(record) } else { decode(record) }.map_err(class);
    }
    let Some(codec) = codec else {
        return Err(RecordError::refused(
            NO_SCHEMA_REGISTRY,
            "the record's data is Avro (content-type: application/avro) and no schema registry is configured; \
             set SCHEMA_REGISTRY_URL and replay the record from the DLQ",
        ));
    };
    let avro = codec.decode(record.value.as_deref().unwrap_or_default())?;
    // Compared before the payload is read: data of another type may fit
    // the named type's payload by chance, or fail it with a misleading class.
    let named = record.headers.iter().find(|h| h.name.eq_ignore_ascii_case("ce_type")).and_then(|h| h.value.as_deref());
    if let Some(named) = named.and_then(|v| std::str::from_utf8(v).ok()).and_then(EventType::parse) {
        if named.as_str() != avro.event_type {
            return Err(RecordError::refused(
                AVRO_TYPE_MISMATCH,
                format!(
                    "the record's type is {named} but its Avro data is a {} (schema id {})",
                    avro.event_type, avro.schema_id
                ),
            ));
        }
    }
    let json = serde_json::to_vec(&avro.json).expect("JSON read from Avro serialises");
    // A `type` that does not parse was not compared above; decoding refuses it.
    decode_avro(record, &json, rekeyed).map_err(class)
}

/// The binary-mode Avro record of an event, under the subjects of
/// `subject_topic` (the topic's name on the cluster).
pub fn write(codec: &AvroCodec, event: &Event, subject_topic: &str) -> Result<Record, RecordError> {
    let (wire, id) = codec.encode(subject_topic, event.event_type().as_str(), event.data.to_json_value())?;
    encode_avro(event, wire, &codec.schema_url(id)).map_err(|e| RecordError::refused("encode_failed", e.to_string()))
}

/// A binary-mode JSON CloudEvent record with its data rewritten as Avro,
/// every other header kept as it was (a producer switching formats).
pub fn transcode(codec: &AvroCodec, record: &Record, subject_topic: &str) -> Result<Record, RecordError> {
    let event = read(None, record, false)?.event;
    let (wire, id) = codec.encode(subject_topic, event.event_type().as_str(), event.data.to_json_value())?;
    let mut out = record.clone();
    out.headers
        .retain(|h| !h.name.eq_ignore_ascii_case("content-type") && !h.name.eq_ignore_ascii_case("ce_dataschema"));
    out.headers.push(Header { name: "content-type".into(), value: Some(AVRO_CONTENT_TYPE.into()) });
    out.headers.push(Header { name: "ce_dataschema".into(), value: Some(codec.schema_url(id).into_bytes()) });
    out.value = Some(wire);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagastream_contract::{encode, ContentMode, EventType};

    const DOWN: &str = "http://127.0.0.1:1/apis/ccompat/v7";

    fn sample() -> Event {
        sagastream_contract::samples::one_of_each("records")
            .into_iter()
            .find(|e| e.event_type() == EventType::BookingRequested)
            .unwrap()
    }

    #[test]
    fn json_needs_no_registry_and_avro_without_one_is_the_records_fault() {
        let event = sample();
        let json = encode(&event, ContentMode::Binary).unwrap();
        assert_eq!(read(None, &json, false).unwrap().event, event);
        let avro = encode_avro(&event, vec![0, 0, 0, 0, 1, 0], "http://r/schemas/ids/1").unwrap();
        match read(None, &avro, false).unwrap_err() {
            RecordError::Refused { class, .. } => assert_eq!(class, NO_SCHEMA_REGISTRY),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn a_registry_that_does_not_answer_is_never_the_records_fault() {
        let codec = AvroCodec::new(DOWN).unwrap();
        let avro = encode_avro(&sample(), vec![0, 0, 0, 0, 1, 0], "http://r/schemas/ids/1").unwrap();
        assert!(matches!(read(Some(&codec), &avro, false), Err(RecordError::RetryLater(_))));
        assert!(matches!(write(&codec, &sample(), "t.booking.events"), Err(RecordError::RetryLater(_))));
        let json = encode(&sample(), ContentMode::Binary).unwrap();
        assert!(matches!(transcode(&codec, &json, "t.booking.events"), Err(RecordError::RetryLater(_))));
        let mut broken = json.clone();
        broken.value = Some(b"{".to_vec());
        let e = transcode(&codec, &broken, "t.booking.events").unwrap_err();
        assert!(matches!(e, RecordError::Refused { class: "payload_invalid", .. }), "{e}");
    }
}
