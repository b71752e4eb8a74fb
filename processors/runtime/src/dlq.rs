//! Dead-letter records: the original key, value and headers, plus context
//! headers named after Kafka Streams' KIP-1034 set (`__streams.errors.*`),
//! so tooling built for Kafka Streams DLQs reads ours. The first six are
//! KIP-1034's; the rest extend the same namespace.

use sagastream_contract::{Header, Record};

/// Error class, e.g. `payload_invalid` (KIP-1034 puts the exception class here).
pub const EXCEPTION: &str = "__streams.errors.exception";
pub const MESSAGE: &str = "__streams.errors.message";
/// Where the failure was raised, e.g. `sagastream.decode`; there is no Java stack.
pub const STACKTRACE: &str = "__streams.errors.stacktrace";
pub const TOPIC: &str = "__streams.errors.topic";
pub const PARTITION: &str = "__streams.errors.partition";
pub const OFFSET: &str = "__streams.errors.offset";
/// `decode`, `process` or `produce`.
pub const STAGE: &str = "__streams.errors.stage";
/// Timestamp of the failed record, ms since the epoch.
pub const TIMESTAMP: &str = "__streams.errors.timestamp";
pub const GROUP: &str = "__streams.errors.group.id";
pub const PROCESSOR: &str = "__streams.errors.processor";
pub const PROCESSOR_VERSION: &str = "__streams.errors.processor.version";
/// 1 on the first try; higher when the transaction was retried.
pub const ATTEMPT: &str = "__streams.errors.attempt";
/// CloudEvent id of the input, when it decoded that far.
pub const EVENT_ID: &str = "__streams.errors.event.id";
/// The key's state (JSON) when a processor rejected the input.
pub const STATE: &str = "__streams.errors.state";
/// For a failed timer, its name and due time (the record has no original).
pub const TIMER: &str = "__streams.errors.timer";

/// Every context header the runtime writes, in the order it writes them.
pub const CONTEXT_HEADERS: &[&str] = &[
    EXCEPTION,
    MESSAGE,
    STACKTRACE,
    TOPIC,
    PARTITION,
    OFFSET,
    STAGE,
    TIMESTAMP,
    GROUP,
    PROCESSOR,
    PROCESSOR_VERSION,
    ATTEMPT,
    EVENT_ID,
    STATE,
    TIMER,
];

/// State kept in a header is cut here so a large state cannot make the DLQ
/// record exceed the broker's size limit.
const MAX_STATE_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Decode,
    Process,
    Produce,
}

impl Stage {
    /// The stage a DLQ record's stage header names.
    pub fn of_header(value: &[u8]) -> &'static str {
        [Stage::Decode, Stage::Process, Stage::Produce]
            .into_iter()
            .map(Stage::as_str)
            .find(|s| s.as_bytes() == value)
            .unwrap_or("unknown")
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Process => "process",
            Stage::Produce => "produce",
        }
    }
}

/// Why and where one record failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub stage: Stage,
    pub class: String,
    pub message: String,
    pub event_id: Option<String>,
    pub state: Option<String>,
    pub timer: Option<String>,
}

impl Failure {
    pub fn new(stage: Stage, class: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure { stage, class: class.into(), message: message.into(), event_id: None, state: None, timer: None }
    }
}

/// Where the failed record came from and who failed it.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub group: &'a str,
    pub processor: &'a str,
    pub version: &'a str,
    pub attempt: u32,
}

/// The DLQ record: the original with context headers replacing any earlier ones.
pub fn record(original: &Record, origin: &Origin<'_>, failure: &Failure) -> Record {
    let mut headers: Vec<Header> =
        original.headers.iter().filter(|h| !CONTEXT_HEADERS.contains(&h.name.as_ref())).cloned().collect();
    let mut add =
        |name: &'static str, value: String| headers.push(Header { name: name.into(), value: Some(value.into_bytes()) });
    add(EXCEPTION, failure.class.clone());
    add(MESSAGE, failure.message.clone());
    add(STACKTRACE, format!("sagastream.{}", failure.stage.as_str()));
    add(TOPIC, origin.topic.into());
    add(PARTITION, origin.partition.to_string());
    add(OFFSET, origin.offset.to_string());
    add(STAGE, failure.stage.as_str().into());
    if let Some(ts) = origin.timestamp_ms {
        add(TIMESTAMP, ts.to_string());
    }
    add(GROUP, origin.group.into());
    add(PROCESSOR, origin.processor.into());
    add(PROCESSOR_VERSION, origin.version.into());
    add(ATTEMPT, origin.attempt.to_string());
    if let Some(id) = &failure.event_id {
        add(EVENT_ID, id.clone());
    }
    if let Some(state) = &failure.state {
        add(STATE, truncate(state, MAX_STATE_BYTES));
    }
    if let Some(timer) = &failure.timer {
        add(TIMER, timer.clone());
    }
    Record { key: original.key.clone(), value: original.value.clone(), headers }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a Record, name: &str) -> Option<&'a str> {
        r.headers.iter().find(|h| h.name == name).and_then(|h| std::str::from_utf8(h.value.as_deref()?).ok())
    }

    #[test]
    fn keeps_the_original_and_adds_context() {
        let original = Record {
            key: Some(b"k".to_vec()),
            value: Some(b"garbage".to_vec()),
            headers: vec![
                Header { name: "ce_id".into(), value: Some(b"1".to_vec()) },
                Header { name: EXCEPTION.into(), value: Some(b"old".to_vec()) },
            ],
        };
        let origin = Origin {
            topic: "runner.events",
            partition: 3,
            offset: 17,
            timestamp_ms: Some(5),
            group: "g",
            processor: "probe",
            version: "0.1.0",
            attempt: 2,
        };
        let mut f = Failure::new(Stage::Decode, "not_cloudevent", "no ce_specversion");
        f.state = Some("x".repeat(MAX_STATE_BYTES + 10));
        let r = record(&original, &origin, &f);
        assert_eq!(r.key, original.key);
        assert_eq!(r.value, original.value);
        assert_eq!(header(&r, "ce_id"), Some("1"));
        assert_eq!(r.headers.iter().filter(|h| h.name == EXCEPTION).count(), 1, "earlier context replaced");
        assert_eq!(header(&r, EXCEPTION), Some("not_cloudevent"));
        assert_eq!(header(&r, STAGE), Some("decode"));
        assert_eq!(header(&r, TOPIC), Some("runner.events"));
        assert_eq!(header(&r, PARTITION), Some("3"));
        assert_eq!(header(&r, OFFSET), Some("17"));
        assert_eq!(header(&r, ATTEMPT), Some("2"));
        assert_eq!(header(&r, GROUP), Some("g"));
        assert!(header(&r, STATE).unwrap().len() <= MAX_STATE_BYTES + 3);
    }
}
