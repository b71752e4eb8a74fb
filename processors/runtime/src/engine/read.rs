//! How an input becomes an event: a CloudEvent decoded (under its new key
//! when it was re-keyed), its data JSON or Avro read through the Schema
//! Registry, or a foreign envelope the processor translates. What cannot
//! become one is the input's DLQ record; a registry that does not answer
//! is no fault of the record's, and the transaction is retried.

use sagastream_contract::{Decoded, Event, Record};
use sagastream_registry::records::{self, RecordError};

use super::{Engine, EngineError, Input, Out};
use crate::dlq::{Failure, Stage};
use crate::events::{InputHandled, InternalEvent, RecordTranslated};
use crate::processor::{Processor, Translation};

impl<P: Processor> Engine<P> {
    /// The input's key and event, or its DLQ record; `ahead`, the
    /// processor's translation of it when that was done ahead.
    pub(super) fn read(
        &self,
        input: &Input<'_>,
        ahead: Option<Option<Translation>>,
    ) -> Result<Result<(String, Event), Out>, EngineError> {
        let translation = ahead.unwrap_or_else(|| self.processor.translate(input.record, input.topic));
        if let Some(translation) = translation {
            let platform = translation.platform;
            return Ok(match translation.result {
                Ok(event) => {
                    RecordTranslated { platform, outcome: "translated" }.emit(&self.metrics);
                    Ok((event.key().to_owned(), event))
                }
                Err(refusal) => {
                    RecordTranslated { platform, outcome: refusal.class }.emit(&self.metrics);
                    InputHandled { event_type: "untranslatable".into(), outcome: "rejected" }.emit(&self.metrics);
                    let failure = Failure::new(Stage::Decode, refusal.class, refusal.message);
                    let scrubbed;
                    let input = match refusal.scrubbed {
                        Some(value) => {
                            scrubbed = Record { value: Some(value), ..input.record.clone() };
                            Input { record: &scrubbed, ..*input }
                        }
                        None => *input,
                    };
                    Err(self.dead_letter(&input, failure))
                }
            });
        }
        // A re-keyed record carries another aggregate's id as its key.
        let rekeyed = self.spec.repartitions.iter().any(|r| r.to == input.topic);
        Ok(match self.decode_record(input.record, rekeyed)? {
            Ok(d) => Ok((d.key, d.event)),
            Err(failure) => {
                InputHandled { event_type: "undecodable".into(), outcome: "rejected" }.emit(&self.metrics);
                Err(self.dead_letter(input, *failure))
            }
        })
    }

    /// A CloudEvent record decoded, its Avro data read through the
    /// registry; the inner error is the record's fault, the outer the
    /// registry's.
    pub(super) fn decode_record(
        &self,
        record: &Record,
        rekeyed: bool,
    ) -> Result<Result<Decoded, Box<Failure>>, EngineError> {
        match records::read(self.config.avro.as_deref(), record, rekeyed) {
            Ok(decoded) => Ok(Ok(decoded)),
            Err(RecordError::RetryLater(why)) => Err(EngineError::RegistryUnavailable(why)),
            Err(RecordError::Refused { class, message }) => {
                Ok(Err(Box::new(Failure::new(Stage::Decode, class, message))))
            }
        }
    }
}
