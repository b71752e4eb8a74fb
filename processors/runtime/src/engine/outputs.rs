//! The engine's records besides derived events: the DLQ record of a refused
//! input, and the changelog records of a commit.

use std::collections::BTreeMap;

use sagastream_contract::{encode_with_data, Event, Payload, Record};
use sagastream_registry::records::{self, RecordError};

use super::{Engine, Input, Out, OutKind, OutputFormat, StepError};
use crate::changelog;
use crate::dlq::{self, Failure, Origin};
use crate::events::{DeadLettered, InternalEvent};
use crate::processor::{Envelope, Processor};

/// Room for a changelog value before it is written: most entries fit.
const CHANGELOG_VALUE_CAPACITY: usize = 1024;

impl<P: Processor> Engine<P> {
    pub(super) fn dead_letter(&self, input: &Input<'_>, failure: Failure) -> Out {
        DeadLettered {
            topic: input.topic,
            partition: input.partition,
            offset: input.offset,
            stage: failure.stage.as_str(),
            class: &failure.class,
            reason: &failure.message,
        }
        .emit(&self.metrics);
        let origin = Origin {
            topic: input.source,
            partition: input.partition,
            offset: input.offset,
            timestamp_ms: input.timestamp_ms,
            group: &self.config.group,
            processor: self.spec.name,
            version: self.spec.version,
            attempt: self.attempt,
        };
        Out {
            topic: self.spec.dlq,
            partition: None,
            record: dlq::record(input.record, &origin, &failure),
            kind: OutKind::Dlq,
            event_type: None,
        }
    }

    /// The record of an event passed on with its own attributes.
    pub(super) fn encode_forwarded(
        &self,
        envelope: Envelope,
        data: Payload,
        format: &OutputFormat,
        json: Vec<u8>,
        topic: &str,
    ) -> Result<Record, StepError> {
        let Envelope { id, source, time, traceparent, correlationid, sequence, extensions } = envelope;
        let event = Event { id, source, time, traceparent, correlationid, sequence, extensions, data };
        self.encode_for(&event, format, json, topic)
    }

    /// The record of an event in its topic's format; `json`, its payload's
    /// JSON encoding.
    pub(super) fn encode_for(
        &self,
        event: &Event,
        format: &OutputFormat,
        json: Vec<u8>,
        topic: &str,
    ) -> Result<Record, StepError> {
        let failed = |class: &str, e: &dyn std::fmt::Display| {
            StepError::Failed(Box::new(Failure::new(
                dlq::Stage::Produce,
                class,
                format!("{} to {topic}: {e}", event.event_type()),
            )))
        };
        let subject_topic = match format {
            OutputFormat::Json(mode) => {
                return encode_with_data(event, *mode, json).map_err(|e| failed("encode_failed", &e))
            }
            OutputFormat::Avro { subject_topic } => subject_topic,
        };
        let codec = self.config.avro.as_ref().expect("an Avro output needs a registry: checked at start");
        match records::write(codec, event, subject_topic) {
            Ok(record) => Ok(record),
            Err(RecordError::RetryLater(why)) => Err(StepError::RetryLater(why)),
            Err(RecordError::Refused { class, message }) => Err(failed(class, &message)),
        }
    }

    /// Changelog records for every key the transaction changed; `positions`
    /// gives each partition's next input offsets as of this commit.
    pub fn changelog(&self, positions: &BTreeMap<i32, BTreeMap<&'static str, i64>>) -> Vec<Out> {
        let Some(topic) = self.spec.changelog else { return Vec::new() };
        let empty = BTreeMap::new();
        let mut outs = Vec::new();
        for (partition, store) in &self.stores {
            if store.pending.is_empty() {
                continue;
            }
            let headers = changelog::headers(positions.get(partition).unwrap_or(&empty));
            for (key, entry) in &store.pending {
                let value = entry.as_ref().map(|e| {
                    // serde_json starts at 128 bytes; an entry is a few hundred
                    // (state, timers, 36-byte ids), which took two or three
                    // reallocations each.
                    let mut value = Vec::with_capacity(CHANGELOG_VALUE_CAPACITY);
                    serde_json::to_writer(&mut value, e).expect("state serialises to JSON");
                    value
                });
                outs.push(Out {
                    topic,
                    partition: Some(*partition),
                    record: Record { key: Some(key.clone().into_bytes()), value, headers: headers.clone() },
                    kind: OutKind::Changelog,
                    event_type: None,
                });
            }
        }
        outs
    }
}
