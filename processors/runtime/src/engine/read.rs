//! How an input becomes an event: a CloudEvent decoded (under its new key
//! when it was re-keyed), or a foreign envelope the processor translates.
//! What cannot become one is the input's DLQ record.

use sagastream_contract::{decode, decode_rekeyed, Event, Record};

use super::{Engine, Input, Out};
use crate::dlq::{Failure, Stage};
use crate::events::{InputHandled, InternalEvent, RecordTranslated};
use crate::processor::{Processor, Translation};

impl<P: Processor> Engine<P> {
    /// The input's key and event, or its DLQ record; `ahead`, the
    /// processor's translation of it when that was done ahead.
    pub(super) fn read(&self, input: &Input<'_>, ahead: Option<Option<Translation>>) -> Result<(String, Event), Out> {
        let translation = ahead.unwrap_or_else(|| self.processor.translate(input.record, input.topic));
        if let Some(translation) = translation {
            let platform = translation.platform;
            return match translation.result {
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
            };
        }
        // A re-keyed record carries another aggregate's id as its key.
        let rekeyed = self.spec.repartitions.iter().any(|r| r.to == input.topic);
        match if rekeyed { decode_rekeyed(input.record) } else { decode(input.record) } {
            Ok(d) => Ok((d.key, d.event)),
            Err(e) => {
                InputHandled { event_type: "undecodable".into(), outcome: "rejected" }.emit(&self.metrics);
                let failure = Failure::new(Stage::Decode, e.class(), e.to_string());
                Err(self.dead_letter(input, failure))
            }
        }
    }
}
