use rdkafka::message::{Header as KafkaHeader, Headers, Message, OwnedHeaders};
use sagastream_contract::{Header, Record};

/// Headers of a contract record in rdkafka's form.
pub fn to_owned_headers(record: &Record) -> OwnedHeaders {
    record.headers.iter().fold(OwnedHeaders::new_with_capacity(record.headers.len()), |h, header| {
        h.insert(KafkaHeader { key: &header.name, value: header.value.as_deref() })
    })
}

/// Copies a consumed message into a contract record for the decoder.
pub fn record_from_message<M: Message>(m: &M) -> Record {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter().map(|h| Header { name: Header::name_from(h.key), value: h.value.map(<[u8]>::to_vec) }).collect()
        })
        .unwrap_or_default();
    Record { key: m.key().map(<[u8]>::to_vec), value: m.payload().map(<[u8]>::to_vec), headers }
}

/// A contract record addressed to a topic, for the base and threaded producers.
pub fn base_record<'a>(topic: &'a str, record: &'a Record) -> rdkafka::producer::BaseRecord<'a, [u8], [u8]> {
    base_record_with(topic, record, ())
}

/// [`base_record`] with a value the producer context's delivery callback gets back.
pub fn base_record_with<'a, D: rdkafka::util::IntoOpaque>(
    topic: &'a str,
    record: &'a Record,
    opaque: D,
) -> rdkafka::producer::BaseRecord<'a, [u8], [u8], D> {
    let mut r = rdkafka::producer::BaseRecord::with_opaque_to(topic, opaque).headers(to_owned_headers(record));
    if let Some(k) = record.key.as_deref() {
        r = r.key(k);
    }
    if let Some(v) = record.value.as_deref() {
        r = r.payload(v);
    }
    r
}
