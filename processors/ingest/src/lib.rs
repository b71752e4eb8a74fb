//! The ingest processor (docs/ingest.md): other teams publish in their own
//! envelopes (First Viscount's per-type topics, Go4u's and KorrectNG's
//! topics); ingest reads them as they are and writes the catalog CloudEvent
//! each stands for to its domain topic, with the producer's event id, so
//! de-duplication works end to end. Stateless and exactly-once: an input
//! and its output commit in one transaction. Personal data is scrubbed
//! before anything is written; a record that is no catalog event is a DLQ
//! record with its class, counted per platform.

pub mod cli;
pub mod envelope;
pub mod error;
pub mod exact;
mod fast;
pub mod mapping;
pub mod scrub;

use sagastream_contract::{Event, Record};
use sagastream_runtime::{Context, Emit, Outcome, Processor, Spec, Step, Translation};
use sagastream_topics::Envelope;

pub use error::TranslateError;

pub const NAME: &str = "ingest";

/// The raw topics ingest reads, with the envelope each carries; equal to
/// the `kind: raw` topics of topics.yaml (a unit test checks).
pub const RAW_TOPICS: &[(&str, Envelope)] = &[
    ("product-catalog.product.created.v1", Envelope::FirstViscount),
    ("product-catalog.product.updated.v1", Envelope::FirstViscount),
    ("product-catalog.product.deleted.v1", Envelope::FirstViscount),
    ("product-catalog.product.price_changed.v1", Envelope::FirstViscount),
    ("product-catalog.product.out_of_stock.v1", Envelope::FirstViscount),
    ("inventory-management.inventory.reserved.v1", Envelope::FirstViscount),
    ("inventory-management.inventory.released.v1", Envelope::FirstViscount),
    ("inventory-management.inventory.adjusted.v1", Envelope::FirstViscount),
    ("inventory-management.inventory.low_stock.v1", Envelope::FirstViscount),
    ("inventory-management.inventory.updated.v1", Envelope::FirstViscount),
    ("order-management.order.created.v1", Envelope::FirstViscount),
    ("order-management.order.validated.v1", Envelope::FirstViscount),
    ("order-management.order.completed.v1", Envelope::FirstViscount),
    ("order-management.order.cancelled.v1", Envelope::FirstViscount),
    ("order-management.order.refunded.v1", Envelope::FirstViscount),
    ("go4u.events", Envelope::Go4u),
    ("korrectng.events", Envelope::Korrectng),
];

/// The domain topics the translated events go to.
pub const OUTPUTS: &[&str] = &["inventory.events", "order.events", "payment.events"];

#[derive(Debug, Clone, Default)]
pub struct Ingest;

impl Ingest {
    /// The event a foreign record stands for, or why it is none, with the
    /// scrubbed copy the DLQ record carries.
    pub fn translate_record(
        platform: Envelope,
        record: &Record,
        topic: &str,
    ) -> Result<Event, sagastream_runtime::Refusal> {
        let clean = record.value.as_deref().and_then(|bytes| fast::read(platform, bytes));
        if let Some(event) = clean.and_then(|native| mapping::translate(&native, topic).ok()) {
            return Ok(event);
        }
        // Refused, or something to scrub: the whole way, which decides.
        let read = envelope::read_scrubbed(platform, record.value.as_deref());
        let scrubbed = read.scrubbed;
        read.native.and_then(|n| mapping::translate(&n, topic)).map_err(|e| e.into_refusal(scrubbed))
    }
}

impl Processor for Ingest {
    type State = ();

    fn spec(&self) -> Spec {
        Spec {
            name: NAME,
            version: env!("CARGO_PKG_VERSION"),
            inputs: RAW_TOPICS.iter().map(|(t, _)| *t).collect(),
            outputs: OUTPUTS.to_vec(),
            changelog: None,
            dlq: "ingest.dlq",
            repartitions: Vec::new(),
        }
    }

    fn translate(&self, record: &Record, topic: &str) -> Option<Translation> {
        let (_, platform) = RAW_TOPICS.iter().find(|(t, _)| *t == topic)?;
        Some(Translation {
            platform: envelope::platform_name(*platform),
            result: Ingest::translate_record(*platform, record, topic),
        })
    }

    fn process(&self, _state: Option<&()>, event: &Event, _ctx: &Context<'_>) -> Outcome<()> {
        Ok(Step::keep().push(Emit::forward(event.clone())))
    }
}

#[cfg(test)]
mod tests;
