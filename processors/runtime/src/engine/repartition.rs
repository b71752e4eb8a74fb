//! A repartition step's half of the engine: a source record re-keyed for
//! the internal topic, by its key read without decoding (`crate::rekey`)
//! or by the processor's key on the decoded event.

use sagastream_contract::Record;

use super::{Engine, EngineError, Input, Out, OutKind};
use crate::events::{InputHandled, InternalEvent};
use crate::processor::{Processor, Repartition};

impl<P: Processor> Engine<P> {
    /// Re-keys one record of a repartition source: the record for the
    /// internal topic, nothing when the record belongs to no aggregate of
    /// this processor, or a DLQ record when it cannot be decoded. Needs no
    /// partition ownership: the source is not co-partitioned with the state.
    pub fn rekey(&mut self, input: &Input<'_>, repartition: &Repartition) -> Result<Vec<Out>, EngineError> {
        let quick = repartition.quick_key.and_then(|key| {
            let view = crate::rekey::KeyView::of(input.record)?;
            Some((key(&view)?, view.event_type()))
        });
        if let Some((key, event_type)) = quick.filter(|(k, _)| !k.is_empty()) {
            let event_type = sagastream_contract::EventType::parse(event_type).map_or("unknown", |t| t.as_str());
            return Ok(vec![self.rekeyed(input, repartition, key, event_type)]);
        }
        let decoded = match self.decode_record(input.record, false)? {
            Ok(d) => d,
            Err(failure) => {
                InputHandled { event_type: "undecodable".into(), outcome: "rejected" }.emit(&self.metrics);
                return Ok(vec![self.dead_letter(input, *failure)]);
            }
        };
        let event_type = decoded.event.event_type().as_str();
        match (repartition.key)(&decoded.event).filter(|k| !k.is_empty()) {
            None => {
                InputHandled { event_type: event_type.into(), outcome: "not_repartitioned" }.emit(&self.metrics);
                Ok(Vec::new())
            }
            Some(key) => Ok(vec![self.rekeyed(input, repartition, key, event_type)]),
        }
    }

    /// The input under its new key, for the repartition topic.
    fn rekeyed(&self, input: &Input<'_>, repartition: &Repartition, key: String, event_type: &'static str) -> Out {
        InputHandled { event_type: event_type.into(), outcome: "repartitioned" }.emit(&self.metrics);
        // Value and headers unchanged: the event keeps its id, so the
        // processor's de-duplication still recognises a redelivery.
        let record = Record {
            key: Some(key.into_bytes()),
            value: input.record.value.clone(),
            headers: input.record.headers.clone(),
        };
        Out { topic: repartition.to, partition: None, record, kind: OutKind::Derived, event_type: None }
    }
}
