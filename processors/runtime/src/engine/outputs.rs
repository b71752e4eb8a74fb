//! The engine's records besides derived events: the DLQ record of a refused
//! input, and the changelog records of a commit.

use std::collections::BTreeMap;

use sagastream_contract::{encode_with_data, ContentMode, Event, Payload, Record};

use super::{Engine, Input, Out, OutKind};
use crate::changelog;
use crate::dlq::{self, Failure, Origin};
use crate::events::{DeadLettered, InternalEvent};
use crate::processor::{Envelope, Processor};

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
        mode: ContentMode,
        json: Vec<u8>,
        topic: &str,
    ) -> Result<Record, Box<Failure>> {
        let Envelope { id, source, time, traceparent, correlationid, sequence, extensions } = envelope;
        let event = Event { id, source, time, traceparent, correlationid, sequence, extensions, data };
        encode_with_data(&event, mode, json).map_err(|e| {
            Box::new(Failure::new(
                dlq::Stage::Produce,
                "encode_failed",
                format!("{} to {topic}: {e}", event.event_type()),
            ))
        })
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
                let value = entry.as_ref().map(|e| serde_json::to_vec(e).expect("state serialises to JSON"));
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
