//! What the loop puts into a transaction and takes out of it: outputs, DLQ
//! records and the changelog produced, the consumed offsets committed, and
//! after an abort the rewind of inputs and pending state. The transaction
//! itself is `producer::TxnProducer`'s.

use std::collections::BTreeMap;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use sagastream_contract::Record;
use sagastream_kafka::base_record_with;

use super::producer::Ended;
use super::{Core, LoopError, TIMEOUT};
use crate::dlq::{self, Failure, Origin, Stage};
use crate::engine::{Input, Out, OutKind};
use crate::events::{DeadLettered, InternalEvent};
use crate::processor::Processor;

/// A record of a transaction not begun at the broker yet (a commit is in
/// flight), with where its input came from, should it go to the DLQ.
pub(super) struct Staged {
    out: Out,
    origin: Option<StagedOrigin>,
}

struct StagedOrigin {
    topic: &'static str,
    source: String,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
}

impl<P: Processor> Core<P> {
    /// Takes up offsets the consumer moved past without handing us a record:
    /// transaction markers, the last of which ends every transactional input
    /// partition. Committing only past the last record would leave the
    /// group's committed offset one short of the end offset forever, so lag
    /// read from the group (Burrow, KMinion, kafka-consumer-groups) would
    /// stay at 1 per partition; the next transaction commits them instead.
    pub(super) fn advance_past_markers<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), LoopError> {
        if self.translator.as_ref().is_some_and(|t| t.in_flight() > 0) {
            // The consumer's position is past records still on their way.
            return Ok(());
        }
        let Ok(position) = consumer.position() else { return Ok(()) };
        let mut moved = Vec::new();
        for e in position.elements() {
            let (Offset::Offset(at), Some(topic)) = (e.offset(), self.names.logical_input(e.topic())) else {
                continue;
            };
            let tp = (topic, e.partition());
            // Past records still waiting in their lane is not past them.
            if self.lanes.as_ref().is_some_and(|l| !l.is_drained(topic, e.partition())) {
                continue;
            }
            // A partition being restored has processed nothing: its position stays.
            let running = !self.names.is_input(topic) || self.engine.owns(e.partition());
            if running && self.committed.contains_key(&tp) && self.positions.get(&tp).is_some_and(|p| at > *p) {
                moved.push((tp, at));
            }
        }
        if moved.is_empty() {
            return Ok(());
        }
        let txn = self.producer.begin()?;
        for (tp, at) in moved {
            self.positions.insert(tp, at);
            txn.touched.insert(tp);
        }
        Ok(())
    }

    pub(super) fn begin(&mut self) -> Result<(), LoopError> {
        self.producer.begin().map(|_| ())
    }

    pub(super) fn send(&mut self, out: Out, input: Option<&Input<'_>>) -> Result<(), LoopError> {
        if !self.producer.accepting() {
            // The previous transaction's commit is in flight: this one is not begun yet.
            let origin = input.map(|i| StagedOrigin {
                topic: i.topic,
                source: i.source.to_owned(),
                partition: i.partition,
                offset: i.offset,
                timestamp_ms: i.timestamp_ms,
            });
            self.staged.push(Staged { out, origin });
            return Ok(());
        }
        let topic = self.names.physical(out.topic).to_owned();
        let mut partition = out.partition;
        // A record to one of our own inputs gets its partition here, so that
        // event-time order knows where the open transaction wrote (see
        // `probe_lanes`) and `own_writes` where it may hold others back; the
        // same partition the producer would pick.
        let own = self.names.is_input(out.topic);
        if let (true, None, Some(key)) = (own, partition, &out.record.key) {
            partition = Some(sagastream_kafka::java_partition(key, self.names.partitions[out.topic]));
        }
        let tag = match (own, partition) {
            (true, Some(p)) => self.own.wrote(out.topic, p),
            _ => 0,
        };
        let mut record = base_record_with(&topic, &out.record, tag);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        let in_transaction = match self.producer.send(out.topic, out.event_type, record) {
            Ok(n) => n,
            Err(KafkaError::MessageProduction(code @ RDKafkaErrorCode::MessageSizeTooLarge))
                if out.kind == OutKind::Derived =>
            {
                // The effect stands; its record goes to the DLQ instead of blocking the partition.
                let failure =
                    Failure::new(Stage::Produce, "record_too_large", format!("{} to {topic}: {code}", out.topic));
                return self.send_dead_output(out, input, failure);
            }
            Err(e) => return Err(LoopError::kafka(format!("producing to {topic}"), e)),
        };
        self.outputs_total += 1;
        if out.kind == OutKind::Dlq {
            let stage = out.record.header(dlq::STAGE).map_or("unknown", Stage::of_header);
            let class = out.record.header(dlq::EXCEPTION).map(String::from_utf8_lossy).unwrap_or_default();
            let txn = self.producer.open_mut().expect("send inside a transaction");
            *txn.dead.entry((stage, class.into_owned())).or_default() += 1;
        }
        self.hooks.after_output(self.producer.inner(), in_transaction, self.outputs_total)?;
        Ok(())
    }

    pub(super) fn send_dead_output(
        &mut self,
        out: Out,
        input: Option<&Input<'_>>,
        failure: Failure,
    ) -> Result<(), LoopError> {
        let spec = self.engine.spec();
        let (topic, partition, offset, ts) =
            input.map_or(("", -1, -1, None), |i| (i.source, i.partition, i.offset, i.timestamp_ms));
        let group = self.engine.group().to_owned();
        let origin = Origin {
            topic,
            partition,
            offset,
            timestamp_ms: ts,
            group: &group,
            processor: spec.name,
            version: spec.version,
            attempt: self.engine.attempt,
        };
        DeadLettered {
            topic,
            partition,
            offset,
            stage: failure.stage.as_str(),
            class: &failure.class,
            reason: &failure.message,
        }
        .emit(&self.metrics);
        let record: Record = dlq::record(&out.record, &origin, &failure);
        let dlq = Out { topic: spec.dlq, partition: None, record, kind: OutKind::Dlq, event_type: None };
        self.send(dlq, input)
    }

    /// Commits the open transaction, if any, with the changelog of every
    /// changed key and the consumed offsets, and returns once it is
    /// committed (with any commit in flight before it).
    pub(super) fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), LoopError> {
        self.end_transaction(consumer, false)
    }

    /// Commits the open transaction because it is due, in the background,
    /// so that the next one fills meanwhile.
    pub(super) fn commit_due<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), LoopError> {
        self.end_transaction(consumer, true)
    }

    /// Takes the outcome of a commit in flight, waiting for it: once
    /// committed, its offsets and its sealed state are the committed ones.
    /// A failed one is the open transaction again, for the abort path.
    pub(super) fn settle(&mut self) -> Result<(), LoopError> {
        let offsets = std::mem::take(&mut self.inflight_offsets);
        if self.producer.finish()?.is_some() {
            // The transaction opened meanwhile stays pending on top of it.
            self.engine.commit_sealed();
            self.own.settled();
            for (tp, offset) in offsets {
                self.committed.insert(tp, Some(offset));
            }
        }
        Ok(())
    }

    /// After a commit in flight ended: begins the transaction opened
    /// meanwhile and sends the records it holds.
    pub(super) fn resume(&mut self) -> Result<(), LoopError> {
        if self.producer.resume()? {
            // Both vectors keep their capacity: the next transaction held back reuses it.
            let mut batch = std::mem::take(&mut self.spare);
            std::mem::swap(&mut batch, &mut self.staged);
            if !batch.is_empty() {
                crate::events::HeldRecordsSent { records: batch.len() }.emit(&self.metrics);
            }
            for staged in batch.drain(..) {
                let record = Record::default();
                let input = staged.origin.as_ref().map(|o| Input {
                    topic: o.topic,
                    source: &o.source,
                    partition: o.partition,
                    offset: o.offset,
                    timestamp_ms: o.timestamp_ms,
                    record: &record,
                });
                self.send(staged.out, input.as_ref())?;
            }
            self.spare = batch;
        }
        Ok(())
    }

    fn end_transaction<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        background: bool,
    ) -> Result<(), LoopError> {
        self.settle()?;
        self.resume()?;
        if self.producer.open().is_none() {
            return Ok(());
        }
        self.health.enter(crate::http::Phase::Commit);
        // Changelog headers carry every input position of the partition as of this commit.
        let mut positions: BTreeMap<i32, BTreeMap<&'static str, i64>> = BTreeMap::new();
        for ((topic, partition), pos) in &self.positions {
            // A source partition has nothing to do with the state partition of the same number.
            if self.names.is_input(topic) {
                positions.entry(*partition).or_default().insert(topic, *pos);
            }
        }
        for out in self.engine.changelog(&positions) {
            self.send(out, None)?;
        }
        let touched = &self.producer.open().expect("checked above").touched;
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in touched {
            let offset = self.positions[&(*topic, *partition)];
            tpl.add_partition_offset(self.names.physical(topic), *partition, Offset::Offset(offset))
                .map_err(|e| LoopError::kafka("building offsets", e))?;
        }
        let group = match touched.is_empty() {
            true => None,
            false => {
                Some(consumer.group_metadata().ok_or_else(|| LoopError::Setup("no consumer group metadata".into()))?)
            }
        };
        let offsets: Vec<_> = touched.iter().map(|tp| (*tp, self.positions[tp])).collect();
        if background {
            self.producer.commit_in_background(group.map(|g| (tpl, g)), self.hooks.fail_commit())?;
            // Its changelog is written: what follows is the next transaction's.
            self.engine.seal();
            self.own.hand_over();
            self.inflight_offsets = offsets;
            return Ok(());
        }
        self.producer.commit(group.as_ref().map(|g| (&tpl, g)), self.hooks.fail_commit())?.expect("checked above");
        self.own.clear();
        self.engine.commit();
        for (tp, offset) in offsets {
            self.committed.insert(tp, Some(offset));
        }
        Ok(())
    }

    /// Aborts the open transaction (the producer's one abort path, which may
    /// renew the producer), drops pending state and rewinds every owned
    /// input partition to its committed offset.
    pub(super) fn abort<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<Ended, LoopError> {
        // A commit in flight that went through stays committed: the rewind starts after it.
        if let Err(e) = self.settle() {
            tracing::warn!(error = %e, "the commit in flight failed; aborting it");
        }
        let ended = self.producer.abort()?;
        self.rewind(consumer, ended.open)?;
        Ok(ended)
    }

    /// Forgets what the aborted transactions left in this instance: the
    /// engine's sealed and pending state (with `attempted`), the records held
    /// for a transaction never begun, and what they wrote to its own inputs.
    /// The consumer's positions are the caller's to rewind or give up.
    pub(super) fn drop_uncommitted(&mut self, attempted: bool) {
        if attempted {
            self.engine.abort();
        }
        if !self.staged.is_empty() {
            tracing::debug!(records = self.staged.len(), "dropping the records held for a transaction never begun");
        }
        self.staged.clear();
        self.own.clear();
    }

    /// Drops pending state (with `attempted`: a transaction processed
    /// inputs, which the retry attempts again) and rewinds every owned input
    /// partition to its committed offset. A failure outside a transaction (an
    /// assignment that could not restore) attempted nothing: the DLQ's
    /// attempt header stays as it is.
    pub(super) fn rewind<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        attempted: bool,
    ) -> Result<(), LoopError> {
        self.drop_uncommitted(attempted);
        if let Some(t) = self.translator.as_mut() {
            if t.in_flight() > 0 {
                tracing::debug!(records = t.in_flight(), "forgetting the records on their way to translation");
            }
            t.forget();
        }
        if let Some(lanes) = self.lanes.as_mut() {
            lanes.rewind(Instant::now());
        }
        for ((topic, partition), committed) in self.committed.clone() {
            let offset = committed.map_or(Offset::Beginning, Offset::Offset);
            match committed {
                Some(o) => self.positions.insert((topic, partition), o),
                None => self.positions.remove(&(topic, partition)),
            };
            if let Err(e) = consumer.seek(self.names.physical(topic), partition, offset, TIMEOUT) {
                return Err(LoopError::kafka(format!("rewinding {topic}[{partition}]"), e));
            }
        }
        Ok(())
    }
}
