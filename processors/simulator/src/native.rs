//! Other teams' envelopes (docs/simulator.md, "Through ingest"): with
//! `--via-ingest-every N`, the order.created of about one order in N is
//! published as First Viscount's order service would (its envelope, on its
//! per-type topic) and the dispute events of about one booking in N as
//! Go4u's admin service would, so they reach
//! the sagas through the ingest processor. The event keeps its id, so the
//! checkers recognise it when ingest writes it to the domain topic.

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use sagastream_contract::{decode, Payload, Record};
use serde::Serialize;
use serde_json::{json, Value};

/// Routes a share of the records through their platform's envelope.
#[derive(Debug, Default)]
pub struct Native {
    every: usize,
    /// Records sent in a foreign envelope, per platform.
    pub sent: BTreeMap<&'static str, u64>,
}

impl Native {
    /// `every` 0 sends everything as CloudEvents.
    pub fn new(every: usize) -> Native {
        Native { every, ..Native::default() }
    }

    /// The raw topic (`topics.yaml` name) and record to send instead of
    /// `record`, when it is one of the share.
    pub fn route(&mut self, record: &Record) -> Option<(&'static str, Record)> {
        if self.every == 0 {
            return None;
        }
        let ce_type = record.header("ce_type")?;
        if !matches!(ce_type, b"order.created" | b"dispute.opened" | b"dispute.resolved") {
            return None;
        }
        // By the aggregate, so a dispute's opening and resolution take the
        // same road and keep their order.
        let key = record.key.as_deref()?;
        let hash = key.iter().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)));
        if hash % self.every as u64 != 0 {
            return None;
        }
        let event = decode(record).ok()?.event;
        let time = event.time?.to_rfc3339_opts(SecondsFormat::Millis, true);
        let (platform, topic, value) = match &event.data {
            Payload::OrderCreated(o) => {
                let value = json!({
                    "event_id": event.id,
                    "correlation_id": event.correlationid,
                    "timestamp": time,
                    "source_service": "order-management-service",
                    "event_version": "1.0",
                    "event_type": "order.created",
                    "data": serde_json::to_value(o).ok()?,
                });
                ("first_viscount", "order-management.order.created.v1", value)
            }
            Payload::DisputeOpened(d) => {
                let payload = json!({
                    "dispute_id": d.dispute_id, "task_id": d.booking_id, "opened_by": d.opened_by,
                    "at": d.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                });
                ("go4u", "go4u.events", go4u(&event.id, "dispute.opened", &time, payload, event.traceparent.as_ref()))
            }
            Payload::DisputeResolved(d) => {
                let mut payload = json!({
                    "dispute_id": d.dispute_id, "task_id": d.booking_id,
                    "resolution": serde_json::to_value(d.resolution).ok()?,
                    "resolved_at": d.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                });
                // Go4u writes ratios as decimals: the exact text of the basis points.
                for (field, bps) in [("ratio_requester", d.ratio_requester_bps), ("ratio_agent", d.ratio_agent_bps)] {
                    if let Some(bps) = bps {
                        payload[field] = number_placeholder(&ratio_text(bps));
                    }
                }
                ("go4u", "go4u.events", go4u(&event.id, "dispute.resolved", &time, payload, event.traceparent.as_ref()))
            }
            _ => return None,
        };
        *self.sent.entry(platform).or_default() += 1;
        let value = splice_numbers(serde_json::to_string(&value).ok()?).into_bytes();
        Some((topic, Record { key: Some(event.key().as_bytes().to_vec()), value: Some(value), headers: Vec::new() }))
    }
}

/// Basis points as decimal text, written from the digits: 2500 is `0.25`.
fn ratio_text(bps: u32) -> String {
    if bps >= 10_000 {
        return "1".to_owned();
    }
    let digits = format!("{bps:04}");
    let digits = digits.trim_end_matches('0');
    if digits.is_empty() {
        "0".to_owned()
    } else {
        format!("0.{digits}")
    }
}

/// A placeholder for a number spliced in as text after serialising, so the
/// ratio never becomes a float on the way.
fn number_placeholder(text: &str) -> Value {
    Value::String(format!("@number:{text}@"))
}

/// The JSON text with every placeholder replaced by its bare number.
fn splice_numbers(json: String) -> String {
    let mut out = String::with_capacity(json.len());
    let mut rest = json.as_str();
    while let Some(start) = rest.find("\"@number:") {
        let end = rest[start..].find("@\"").map(|e| start + e).expect("a closed placeholder");
        out.push_str(&rest[..start]);
        out.push_str(&rest[start + 9..end]);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn go4u(id: &str, name: &str, time: &str, payload: Value, trace: Option<&sagastream_contract::TraceParent>) -> Value {
    json!({
        "event_id": id,
        "event_name": name,
        "event_version": 1,
        "occurred_at": time,
        "producer": "admin-service",
        "payload": payload,
        "metadata": {"trace_id": trace.map(|t| t.trace_id().to_owned())},
    })
}

/// The ingest processor's counts, scraped from its `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    /// Sent in a foreign envelope by this process, per platform.
    pub sent: BTreeMap<String, u64>,
    /// `sagastream_ingest_records_total`, per platform and outcome.
    pub ingested: BTreeMap<String, u64>,
}

impl IngestReport {
    pub fn table(&self) -> String {
        let fmt = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                "none".to_owned()
            } else {
                m.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
            }
        };
        format!("through ingest      sent {}; ingest counted {}\n", fmt(&self.sent), fmt(&self.ingested))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_written_as_their_exact_decimal() {
        for (bps, text) in [(5000, "0.5"), (2500, "0.25"), (3333, "0.3333"), (1, "0.0001"), (0, "0"), (10_000, "1")] {
            assert_eq!(ratio_text(bps), text);
        }
        let json = splice_numbers(json!({"a": number_placeholder("0.3333"), "b": "x"}).to_string());
        assert_eq!(json, r#"{"a":0.3333,"b":"x"}"#);
        let parsed: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["b"], "x");
    }
}
