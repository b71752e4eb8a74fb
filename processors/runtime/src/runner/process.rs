//! The process phase: a polled record goes to the processor at once, or,
//! under event-time order, into its task's lanes (see [`crate::order`])
//! until it is the oldest of its task; timers fire up to their task's
//! horizon.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::Offset;
use sagastream_contract::Record;
use sagastream_kafka::record_from_message;

use super::translator::{Work, AHEAD};
use super::{Core, LoopError, TIMEOUT, TIMERS_PER_ITERATION};
use crate::engine::{Input, OutKind};
use crate::events::{InputOrderEnforced, InternalEvent};
use crate::lifecycle::TaskState;
use crate::metrics::TopicLabel;
use crate::order::{Buffered, Enforced};
use crate::processor::{Processor, Repartition, Translation};

/// What becomes of an input: processed, processed with its translation
/// done ahead (`translator`), or re-keyed (a repartition source's).
// Made and taken once per input, by value: boxing the large variant would
// cost an allocation per record instead.
#[allow(clippy::large_enum_variant)]
enum Route {
    Process,
    Translated(Option<Translation>),
    Rekey(Repartition),
}

/// An input waiting in its lane.
pub(super) struct Pending {
    pub(super) offset: i64,
    pub(super) timestamp_ms: Option<i64>,
    pub(super) record: Record,
}

impl<P: Processor> Core<P> {
    pub(super) fn on_message<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        m: &BorrowedMessage<'_>,
    ) -> Result<(), LoopError> {
        let Some(topic) = self.names.logical_input(m.topic()) else { return Ok(()) };
        let partition = m.partition();
        // A repartition source is read only to be re-keyed into the internal
        // topic, in the transaction that commits its offset; its partitions
        // are not the state's.
        let repartition = self.engine.spec().repartitions.iter().find(|r| r.from == topic).copied();
        let owned = match repartition {
            Some(_) => self.committed.contains_key(&(topic, partition)),
            None => self.engine.owns(partition),
        };
        if !owned {
            if repartition.is_none() && self.tasks.state(partition) != TaskState::Closed {
                // Assigned, its state not read yet (fetched before its pause
                // took effect): read again from here once it runs.
                tracing::debug!(
                    topic,
                    partition,
                    offset = m.offset(),
                    "record of a partition being restored; put back"
                );
                return consumer
                    .seek(m.topic(), partition, Offset::Offset(m.offset()), TIMEOUT)
                    .map_err(|e| LoopError::kafka(format!("putting {topic}[{partition}] back"), e));
            }
            // Fetched before a revoke took effect; the owner will read it.
            tracing::debug!(topic, partition, offset = m.offset(), "record of a partition not owned; skipped");
            return Ok(());
        }
        let record = record_from_message(m);
        let timestamp_ms = m.timestamp().to_millis();
        if let (None, Some(lanes)) = (repartition, self.lanes.as_mut()) {
            // No timestamp: nothing to order by, so it goes as soon as it is at the head.
            let ts = timestamp_ms.unwrap_or(i64::MIN);
            let now = self.tick;
            if lanes.pass(topic, partition, ts, now) {
                self.fire_timers_before(partition, ts)?;
                let pending = Pending { offset: m.offset(), timestamp_ms, record };
                return self.process_input(topic, m.topic(), partition, pending, Route::Process);
            }
            let item = Pending { offset: m.offset(), timestamp_ms, record };
            match lanes.push(Buffered { topic, partition, timestamp_ms: ts, item }, now) {
                Ok(()) => return self.drain_lanes(consumer),
                Err(b) => return self.process_input(topic, m.topic(), partition, b.item, Route::Process),
            }
        }
        let pending = Pending { offset: m.offset(), timestamp_ms, record };
        if let Some(translator) = self.translator.as_mut() {
            translator.send(Work { topic, partition, pending })?;
            let full = translator.in_flight() >= AHEAD;
            return self.take_translated(full);
        }
        let route = repartition.map_or(Route::Process, Route::Rekey);
        self.process_input(topic, m.topic(), partition, pending, route)
    }

    /// Processes the records back from the translation thread, in order;
    /// with `wait`, waits for at least one while any is on its way.
    pub(super) fn take_translated(&mut self, wait: bool) -> Result<(), LoopError> {
        let mut wait = wait;
        while let Some(t) = match self.translator.as_mut() {
            Some(translator) => translator.next(wait)?,
            None => None,
        } {
            wait = false;
            let Work { topic, partition, pending } = t.work;
            if !self.engine.owns(partition) {
                // Revoked while on its way; the new owner reads it.
                continue;
            }
            let source = self.names.physical(topic).to_owned();
            self.process_input(topic, &source, partition, pending, Route::Translated(t.translation))?;
        }
        Ok(())
    }

    /// Processes buffered inputs while their tasks allow it.
    pub(super) fn drain_lanes<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), LoopError> {
        let mut probed = false;
        loop {
            let Some(lanes) = self.lanes.as_mut() else { return Ok(()) };
            match lanes.pop(self.tick) {
                Some((b, why)) => {
                    let kind = match why {
                        Enforced::No => None,
                        Enforced::Idle => Some("idle"),
                        Enforced::Full => Some("full"),
                    };
                    if let Some(kind) = kind {
                        InputOrderEnforced { topic: b.topic, partition: b.partition, kind }.emit(&self.metrics);
                    }
                    self.fire_timers_before(b.partition, b.timestamp_ms)?;
                    let source = self.names.physical(b.topic).to_owned();
                    self.process_input(b.topic, &source, b.partition, b.item, Route::Process)?;
                }
                None if probed || lanes.buffered() == 0 => break,
                None => {
                    self.probe_lanes(consumer, true);
                    probed = true;
                }
            }
        }
        let buffered = self.lanes.as_ref().map_or(0, |l| l.buffered());
        self.metrics.order_buffered.set(buffered as i64);
        Ok(())
    }

    /// Marks the empty lanes the client has fetched to their end: the
    /// position (past transaction markers) reached the high watermark of
    /// the latest fetch. A partition this instance's open transaction wrote
    /// to is not marked: its own records sit beyond the last stable offset,
    /// and how many of them the cached high watermark already counts is not
    /// known. Counting them all let a CI replay call a lane read to its end
    /// with history still to come (3 of 600 bookings out of order); the
    /// lane is decided after the commit instead, or by its records.
    pub(super) fn probe_lanes<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, blocking: bool) {
        let Some(lanes) = self.lanes.as_ref() else { return };
        let unknown = lanes.unknown(blocking);
        let mut ends = Vec::new();
        for (topic, partition) in unknown {
            if self.own.contains(topic, partition) {
                continue;
            }
            let physical = self.names.physical(topic);
            let Some(high) = sagastream_kafka::fetched_high_watermark(consumer.client(), physical, partition) else {
                continue;
            };
            let processed = self.positions.get(&(topic, partition)).copied();
            // The consumer's position (past markers) only when what was processed is not enough.
            let at_end = processed.is_some_and(|p| p >= high) || {
                let fetched = sagastream_kafka::fetched(consumer.client(), physical, partition);
                fetched.position.max(processed).unwrap_or(fetched.low_watermark) >= high
            };
            if at_end {
                ends.push((topic, partition));
            }
        }
        let lanes = self.lanes.as_mut().expect("checked above");
        for (topic, partition) in ends {
            lanes.mark_at_end(topic, partition);
        }
    }

    fn process_input(
        &mut self,
        topic: &'static str,
        source: &str,
        partition: i32,
        pending: Pending,
        route: Route,
    ) -> Result<(), LoopError> {
        self.begin()?;
        self.metrics.consumed.get_or_create(&TopicLabel { topic: topic.into() }).inc();
        let input = Input {
            topic,
            source,
            partition,
            offset: pending.offset,
            timestamp_ms: pending.timestamp_ms,
            record: &pending.record,
        };
        let rekeying = matches!(route, Route::Rekey(_));
        let outs = match route {
            Route::Rekey(r) => self.engine.rekey(&input, &r),
            Route::Process => self.engine.process(&input),
            Route::Translated(t) => self.engine.process_translated(&input, Some(t)),
        }?;
        self.positions.insert((topic, partition), pending.offset + 1);
        let txn = self.producer.open_mut().expect("begun");
        txn.inputs += 1;
        txn.touched.insert((topic, partition));
        for out in outs {
            let rekeyed = rekeying && out.kind == OutKind::Derived;
            self.send(out, Some(&input))?;
            if rekeyed {
                self.repartitioned_total += 1;
                self.hooks.after_rekeyed(self.producer.inner(), self.repartitioned_total)?;
            }
        }
        Ok(())
    }

    /// Fires the due timers of every task, each up to its horizon.
    pub(super) fn fire_timers<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), LoopError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        if self.engine.next_due().is_none_or(|due| due > now_ms) {
            return Ok(());
        }
        self.probe_lanes(consumer, false);
        let now = Instant::now();
        // (partition, its earliest due time, how far its timers may fire)
        let tasks: Vec<(i32, i64, i64)> = self
            .engine
            .next_due_by_partition()
            .into_iter()
            .map(|(p, due)| (p, due, self.lanes.as_ref().map_or(now_ms, |l| l.horizon(p, now_ms, now))))
            .collect();
        if !tasks.iter().any(|(_, due, horizon)| due <= horizon) {
            return Ok(());
        }
        let horizon = |p: i32| tasks.iter().find(|(q, _, _)| *q == p).map_or(i64::MIN, |(_, _, h)| *h);
        self.begin()?;
        let outs = self.engine.fire_due_by(&horizon, TIMERS_PER_ITERATION)?;
        self.send_timer_outputs(outs)
    }

    /// Fires the task's timers due before an input of `timestamp_ms`, as
    /// they fired before it live (and due by now: never early). The common
    /// case, no such timer, reads no clock.
    fn fire_timers_before(&mut self, partition: i32, timestamp_ms: i64) -> Result<(), LoopError> {
        let before = timestamp_ms.saturating_sub(1);
        if self.engine.next_due_in(partition).is_none_or(|due| due > before) {
            return Ok(());
        }
        let upto = chrono::Utc::now().timestamp_millis().min(before);
        if self.engine.next_due_in(partition).is_none_or(|due| due > upto) {
            return Ok(());
        }
        self.begin()?;
        let outs = self.engine.fire_due_by(&|p| if p == partition { upto } else { i64::MIN }, usize::MAX)?;
        self.send_timer_outputs(outs)
    }

    fn send_timer_outputs(&mut self, outs: Vec<crate::engine::Out>) -> Result<(), LoopError> {
        let txn = self.producer.open_mut().expect("begun");
        txn.inputs += 1;
        for out in outs {
            self.send(out, None)?;
        }
        Ok(())
    }

    /// How long the loop may wait in poll before a timer or a waiting task needs it.
    pub(super) fn wait_for_work(&self) -> Duration {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let now = Instant::now();
        let mut wait = Duration::from_millis(100);
        for (p, due) in self.engine.next_due_by_partition() {
            let horizon = self.lanes.as_ref().map_or(now_ms, |l| l.horizon(p, now_ms, now));
            if due <= horizon {
                return Duration::ZERO;
            }
            // Beyond a horizon short of now, the timer waits for records, which wake poll.
            if horizon >= now_ms {
                wait = wait.min(Duration::from_millis((due - now_ms) as u64));
            }
        }
        if let Some(at) = self.lanes.as_ref().and_then(|l| l.next_deadline()) {
            wait = wait.min(at.saturating_duration_since(now));
        }
        wait
    }
}
