//! Restoring state: the changelog partitions of an assignment are read to
//! their end (read_committed: the last stable offset) with a consumer of
//! their own, and the state installed is the one as of the committed input
//! offsets (Kafka Streams' StoreChangelogReader).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sagastream_kafka::record_from_message;

use super::{is_fatal, Core, LoopError, TIMEOUT};
use crate::changelog::{self, Entry};
use crate::engine::Engine;
use crate::events::{ChangelogRecordSkipped, InternalEvent, PartitionRestored};
use crate::metrics::PartitionLabel;
use crate::processor::Processor;

impl<P: Processor> Core<P> {
    /// Reads the changelog partitions to their end (read_committed: the last
    /// stable offset) and installs the state as of the committed offsets.
    pub(super) fn restore(
        &mut self,
        partitions: &[i32],
        committed: &BTreeMap<(&'static str, i32), Option<i64>>,
    ) -> Result<(), LoopError> {
        let Some(topic) = self.names.changelog.clone() else {
            for p in partitions {
                self.engine.install(*p, HashMap::new());
            }
            return Ok(());
        };
        if partitions.is_empty() {
            return Ok(());
        }
        self.refresh_changelog_leaders(&topic)?;
        let mut tpl = TopicPartitionList::new();
        let mut pending: BTreeMap<i32, Instant> = BTreeMap::new();
        let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
        let mut states: BTreeMap<i32, HashMap<String, Entry<P::State>>> = BTreeMap::new();
        for p in partitions {
            let (low, high) = self
                .restorer
                .fetch_watermarks(&topic, *p, TIMEOUT)
                .map_err(|e| LoopError::kafka(format!("reading the end of {topic}[{p}]"), e))?;
            states.insert(*p, HashMap::new());
            ends.insert(*p, high);
            self.metrics.restore_remaining.get_or_create(&PartitionLabel { partition: *p }).set(high - low);
            if high > low {
                tpl.add_partition_offset(&topic, *p, Offset::Beginning).map_err(|e| LoopError::kafka("restore", e))?;
                pending.insert(*p, Instant::now());
            } else {
                self.metrics.restore_duration.get_or_create(&PartitionLabel { partition: *p }).set(0.0);
            }
        }
        self.restorer.assign(&tpl).map_err(|e| LoopError::kafka("assigning the changelog", e))?;
        self.health.enter(crate::http::Phase::Restore);
        let started = Instant::now();
        let mut last_log = Instant::now();
        let mut records = 0u64;
        while !pending.is_empty() {
            self.health.beat();
            if self.stop.load(Ordering::Relaxed) {
                return Err(LoopError::Stopped);
            }
            match self.restorer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Ok(m)) => {
                    records += 1;
                    let p = m.partition();
                    match changelog::decode::<P::State>(&record_from_message(&m)) {
                        Ok(change) => {
                            let known = |t: &str| {
                                self.names
                                    .inputs
                                    .iter()
                                    .find(|(l, _)| *l == t)
                                    .and_then(|(l, _)| committed.get(&(*l, p)).copied().flatten())
                            };
                            if changelog::is_committed(&change.positions, known) {
                                self.metrics.restored_records.inc();
                                Engine::<P>::restore_into(states.get_mut(&p).expect("restoring"), change);
                            } else {
                                ChangelogRecordSkipped {
                                    partition: p,
                                    offset: m.offset(),
                                    key: Some(&change.key),
                                    error: None,
                                }
                                .emit(&self.metrics);
                            }
                        }
                        Err(e) => {
                            let error = e.to_string();
                            ChangelogRecordSkipped { partition: p, offset: m.offset(), key: None, error: Some(&error) }
                                .emit(&self.metrics);
                        }
                    }
                    let end = ends[&p];
                    self.metrics
                        .restore_remaining
                        .get_or_create(&PartitionLabel { partition: p })
                        .set((end - m.offset() - 1).max(0));
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(t0) = pending.remove(&p) {
                        self.metrics
                            .restore_duration
                            .get_or_create(&PartitionLabel { partition: p })
                            .set(t0.elapsed().as_secs_f64());
                        self.metrics.restore_remaining.get_or_create(&PartitionLabel { partition: p }).set(0);
                    }
                }
                Some(Err(e)) if is_fatal(&e) => return Err(LoopError::kafka("restoring", e)),
                Some(Err(e)) => tracing::warn!(error = %e, "changelog read error; retrying"),
            }
            if last_log.elapsed() >= Duration::from_secs(10) {
                tracing::info!(records, remaining_partitions = pending.len(), "restoring state");
                last_log = Instant::now();
            }
        }
        let _ = self.restorer.unassign();
        for (p, state) in states {
            PartitionRestored { partition: p, keys: state.len() }.emit(&self.metrics);
            self.engine.install(p, state);
        }
        tracing::info!(records, took_ms = started.elapsed().as_millis() as u64, "restore finished");
        Ok(())
    }
}
