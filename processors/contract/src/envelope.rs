//! The CloudEvents 1.0 envelope as sagastream uses it.
//!
//! `subject`, `partitionkey` and the record key are not stored: they are
//! always the payload's aggregate id, so they cannot disagree with it.
//! `datacontenttype` is always `application/json` on what we write.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DurationRound, TimeDelta, Utc};

use crate::catalog::{EventType, Payload};
use crate::payloads::Timestamp;

pub const SPECVERSION: &str = "1.0";
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// A typed CloudEvent: attributes plus a payload from the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    /// URI-reference of the producer, e.g. `/kilat/service-booking`.
    pub source: String,
    pub time: Option<Timestamp>,
    /// W3C trace context of the work that produced the event.
    pub traceparent: Option<TraceParent>,
    /// Ties together every event of one business transaction (saga).
    pub correlationid: Option<String>,
    /// Position of the event in its aggregate's history, when the producer knows it.
    pub sequence: Option<u64>,
    /// Other attributes (`dataschema`, foreign extensions), kept verbatim.
    pub extensions: BTreeMap<String, String>,
    pub data: Payload,
}

impl Event {
    /// A new event with a random id, the current time (millisecond precision,
    /// which every CloudEvents SDK parses) and a fresh trace.
    pub fn new(source: impl Into<String>, data: impl Into<Payload>) -> Event {
        let now = Utc::now();
        Event {
            id: uuid::Uuid::new_v4().to_string(),
            source: source.into(),
            time: Some(now.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(now)),
            traceparent: Some(TraceParent::new_root()),
            correlationid: None,
            sequence: None,
            extensions: BTreeMap::new(),
            data: data.into(),
        }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Event {
        self.id = id.into();
        self
    }

    pub fn with_time(mut self, time: Timestamp) -> Event {
        self.time = Some(time);
        self
    }

    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Event {
        self.correlationid = Some(id.into());
        self
    }

    pub fn with_sequence(mut self, sequence: u64) -> Event {
        self.sequence = Some(sequence);
        self
    }

    pub fn with_traceparent(mut self, tp: TraceParent) -> Event {
        self.traceparent = Some(tp);
        self
    }

    pub fn event_type(&self) -> EventType {
        self.data.event_type()
    }

    /// The aggregate id: record key, `subject` and `partitionkey`.
    pub fn key(&self) -> &str {
        self.data.aggregate_id()
    }
}

/// A W3C `traceparent` value (version-traceid-parentid-flags).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceParent(String);

impl TraceParent {
    /// Starts a new sampled trace.
    pub fn new_root() -> TraceParent {
        let trace = uuid::Uuid::new_v4().simple().to_string();
        let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
        TraceParent(format!("00-{trace}-{span}-01"))
    }

    /// Validates per W3C Trace Context level 1; unknown future versions are
    /// accepted when their first four fields have the version-00 shape.
    pub fn parse(s: &str) -> Result<TraceParent, String> {
        Self::check(s)?;
        Ok(TraceParent(s.to_owned()))
    }

    /// [`TraceParent::parse`] of text the caller already owns.
    pub fn parse_owned(s: String) -> Result<TraceParent, String> {
        Self::check(&s)?;
        Ok(TraceParent(s))
    }

    fn check(s: &str) -> Result<(), String> {
        let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let mut parts = s.split('-');
        let (Some(version), Some(trace), Some(parent), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("expected version-traceid-parentid-flags".into());
        };
        if !hex(version, 2) || version == "ff" {
            return Err("version must be two lower-case hex digits other than ff".into());
        }
        if version == "00" && parts.next().is_some() {
            return Err("version 00 has exactly four fields".into());
        }
        if !hex(trace, 32) || trace.bytes().all(|b| b == b'0') {
            return Err("trace-id must be 32 lower-case hex digits, not all zero".into());
        }
        if !hex(parent, 16) || parent.bytes().all(|b| b == b'0') {
            return Err("parent-id must be 16 lower-case hex digits, not all zero".into());
        }
        if !hex(flags, 2) {
            return Err("trace-flags must be two lower-case hex digits".into());
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 32-hex-digit trace id, for log correlation.
    pub fn trace_id(&self) -> &str {
        &self.0[3..35]
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_validation() {
        let root = TraceParent::new_root();
        assert_eq!(TraceParent::parse(root.as_str()), Ok(root.clone()));
        assert_eq!(root.trace_id().len(), 32);
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(TraceParent::parse(ok).is_ok());
        assert!(TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_ok());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
