//! librdkafka's callbacks: delivery reports (a failed one is the commit's
//! to report; a delivered record to an own input tells `own_writes` where
//! it landed), the restore consumer's errors, the loop consumer's
//! statistics (lag) and rebalances (revocation commits or aborts, an
//! assignment's inputs are paused and the assignment queued for the loop).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;

use super::own_writes::Deliveries;
use super::{lock, Core, PartitionStats};
use crate::processor::Processor;

pub(super) struct ProducerContext {
    pub(super) deliveries: Arc<Deliveries>,
}
impl ClientContext for ProducerContext {}
impl rdkafka::producer::ProducerContext for ProducerContext {
    /// `own_writes`' tag of a record to an own input partition, else 0.
    type DeliveryOpaque = usize;
    // A failed delivery makes the transaction abortable; commit reports it.
    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, tag: usize) {
        if let (Ok(m), true) = (result, tag != 0) {
            self.deliveries.delivered(tag, rdkafka::Message::offset(m));
        }
    }
}

pub(super) struct RestoreContext;
impl ClientContext for RestoreContext {
    fn error(&self, error: KafkaError, reason: &str) {
        // End of a changelog partition is how a restore knows it is done, not an error.
        if !matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::PartitionEOF)) {
            tracing::warn!(%error, reason, "restore consumer error");
        }
    }
}
impl ConsumerContext for RestoreContext {}

pub(super) struct LoopContext<P: Processor> {
    pub(super) core: Arc<Mutex<Core<P>>>,
    pub(super) stats: Arc<Mutex<HashMap<(String, i32), PartitionStats>>>,
}

impl<P: Processor> ClientContext for LoopContext<P> {
    fn stats(&self, statistics: Statistics) {
        let mut stats = lock(&self.stats);
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                if partition >= 0 {
                    stats.insert(
                        (topic.clone(), partition),
                        PartitionStats { ls_offset: p.ls_offset, app_offset: p.app_offset },
                    );
                }
            }
        }
    }
}

impl<P: Processor> ConsumerContext for LoopContext<P> {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            let mut core = lock(&self.core);
            core.health.enter(crate::http::Phase::Rebalance);
            let lost = consumer.assignment_lost();
            if let Err(e) = core.on_revoke(consumer, lost) {
                core.fatal = Some(e);
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let mut core = lock(&self.core);
                let mut partitions = BTreeSet::new();
                let mut sources = BTreeSet::new();
                for e in tpl.elements() {
                    match core.names.logical_input(e.topic()) {
                        Some(t) if core.names.is_input(t) => {
                            partitions.insert(e.partition());
                        }
                        Some(t) => {
                            sources.insert((t, e.partition()));
                        }
                        None => {}
                    }
                }
                tracing::info!(partitions = ?partitions, sources = ?sources, "partitions assigned");
                core.assigned_at = Some(std::time::Instant::now());
                if core.names.changelog.is_some() {
                    // Nothing of them is fetched until their state is known
                    // (the loop resumes each one then): a record of a
                    // partition being restored must not reach the loop.
                    if let Err(e) = core.pause_inputs(consumer, partitions.iter().copied(), true) {
                        tracing::warn!(error = %e, "could not pause the assigned inputs; the loop pauses them");
                    }
                }
                core.pending_assignment = Some((partitions.into_iter().collect(), sources.into_iter().collect()));
            }
            Rebalance::Revoke(tpl) => tracing::info!(partitions = tpl.count(), "partitions revoked"),
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}
