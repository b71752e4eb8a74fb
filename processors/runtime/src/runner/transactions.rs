//! The transaction's life: begin, produce (outputs, DLQ, changelog), commit
//! with the consumed offsets, abort and rewind, and renewing a producer the
//! broker ended.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use sagastream_contract::Record;
use sagastream_kafka::base_record;

use super::{is_retriable, Core, LoopError, ProducerContext, Txn, RENEWALS, RENEWAL_WINDOW, RETRIES, TIMEOUT};
use crate::dlq::{self, Failure, Origin, Stage};
use crate::engine::{Input, Out, OutKind};
use crate::events::{DeadLettered, InternalEvent};
use crate::metrics::{KindLabel, ResultLabel, TopicLabel};
use crate::processor::Processor;

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
            if self.committed.contains_key(&tp) && self.positions.get(&tp).is_some_and(|p| at > *p) {
                moved.push((tp, at));
            }
        }
        if moved.is_empty() {
            return Ok(());
        }
        self.begin()?;
        let txn = self.txn.as_mut().expect("begun");
        for (tp, at) in moved {
            self.positions.insert(tp, at);
            txn.touched.insert(tp);
        }
        Ok(())
    }

    pub(super) fn begin(&mut self) -> Result<(), LoopError> {
        if self.txn.is_none() {
            self.producer.begin_transaction().map_err(|e| LoopError::kafka("beginning a transaction", e))?;
            self.txn = Some(Txn {
                started: Instant::now(),
                inputs: 0,
                outputs: 0,
                produced: BTreeMap::new(),
                touched: BTreeSet::new(),
            });
        }
        Ok(())
    }

    pub(super) fn send(&mut self, out: Out, input: Option<&Input<'_>>) -> Result<(), LoopError> {
        let topic = self.names.physical(out.topic).to_owned();
        let mut record = base_record(&topic, &out.record);
        let mut partition = out.partition;
        // A record to one of our own inputs gets its partition here, so that
        // event-time order knows where the open transaction wrote (see
        // `probe_lanes`); the same partition the producer would pick.
        if let (true, None, Some(key)) =
            (self.lanes.is_some() && self.names.is_input(out.topic), partition, &out.record.key)
        {
            partition = Some(sagastream_kafka::java_partition(key, self.names.partitions[out.topic]));
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((KafkaError::MessageProduction(code @ RDKafkaErrorCode::MessageSizeTooLarge), _))
                    if out.kind == OutKind::Derived =>
                {
                    // The effect stands; its record goes to the DLQ instead of blocking the partition.
                    let failure =
                        Failure::new(Stage::Produce, "record_too_large", format!("{} to {topic}: {code}", out.topic));
                    return self.send_dead_output(out, input, failure);
                }
                Err((e, _)) => return Err(LoopError::kafka(format!("producing to {topic}"), e)),
            }
        }
        self.outputs_total += 1;
        if let (Some(p), true) = (partition, self.lanes.is_some() && self.names.is_input(out.topic)) {
            self.own_open.insert((out.topic, p));
        }
        let txn = self.txn.as_mut().expect("send inside a transaction");
        txn.outputs += 1;
        *txn.produced.entry(out.topic).or_default() += 1;
        let in_transaction = txn.outputs;
        self.hooks.after_output(&self.producer, in_transaction, self.outputs_total)?;
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
        let dlq = Out { topic: spec.dlq, partition: None, record, kind: OutKind::Dlq };
        self.send(dlq, input)
    }

    /// Waits until every produced record is acknowledged. rdkafka's
    /// `commit_transaction` flushes first, but its flush polls in 100 ms
    /// slices whenever anything is outstanding, which would cap throughput
    /// at ten transactions a second; the producer's own thread serves the
    /// acknowledgements, so a short wait here is all it takes.
    pub(super) fn drain(&self) -> Result<(), LoopError> {
        let deadline = Instant::now() + TIMEOUT;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() > deadline {
                return Err(LoopError::NotAcknowledged(self.producer.in_flight_count()));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Commits the open transaction, if any.
    pub(super) fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), LoopError> {
        let Some(txn) = &self.txn else { return Ok(()) };
        let commit_started = Instant::now();
        let touched = txn.touched.clone();
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
        if !touched.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for (topic, partition) in &touched {
                let offset = self.positions[&(*topic, *partition)];
                tpl.add_partition_offset(self.names.physical(topic), *partition, Offset::Offset(offset))
                    .map_err(|e| LoopError::kafka("building offsets", e))?;
            }
            let metadata =
                consumer.group_metadata().ok_or_else(|| LoopError::Setup("no consumer group metadata".into()))?;
            retry(|| self.producer.send_offsets_to_transaction(&tpl, &metadata, TIMEOUT), "sending offsets")?;
        }
        let offsets_sent = commit_started.elapsed();
        self.drain()?;
        retry(|| self.producer.commit_transaction(TIMEOUT), "committing")?;
        let txn = self.txn.take().expect("checked above");
        self.own_open.clear();
        self.engine.commit();
        for tp in &touched {
            self.committed.insert(*tp, Some(self.positions[tp]));
        }
        self.metrics.transactions.get_or_create(&ResultLabel { result: "committed" }).inc();
        self.metrics.transaction_duration.observe(txn.started.elapsed().as_secs_f64());
        self.metrics.transaction_records.observe(txn.inputs as f64);
        for (topic, n) in &txn.produced {
            self.metrics.produced.get_or_create(&TopicLabel { topic: (*topic).into() }).inc_by(*n);
        }
        tracing::debug!(
            inputs = txn.inputs,
            outputs = txn.outputs,
            offsets_ms = offsets_sent.as_millis() as u64,
            commit_ms = commit_started.elapsed().as_millis() as u64,
            "transaction committed"
        );
        Ok(())
    }

    /// Aborts the open transaction, drops pending state and rewinds every
    /// owned input partition to its committed offset. The transaction stays
    /// in `txn` until the abort succeeds, so a failed abort still tells how
    /// old it was.
    pub(super) fn abort<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), LoopError> {
        let open = self.txn.is_some();
        if open {
            retry(|| self.producer.abort_transaction(TIMEOUT), "aborting").map_err(|e| match e {
                LoopError::Transient { what, source } => LoopError::Fatal { what, source },
                e => e,
            })?;
            self.txn = None;
            self.metrics.transactions.get_or_create(&ResultLabel { result: "aborted" }).inc();
        }
        self.rewind(consumer, open)
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
        if attempted {
            self.engine.abort();
        }
        self.own_open.clear();
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

    /// Whether a fresh producer with the same transactional.id cures the
    /// producer's fatal error. The broker's coordinator aborts a transaction
    /// that stays open past the transaction timeout (a paused process, or a
    /// broker failure that held its records back) and bumps the epoch: the
    /// producer is then fenced, or its late EndTxn finds no such transaction
    /// (INVALID_TXN_STATE), or a moved coordinator no longer knows it. None
    /// of that means another instance owns the id, so a fresh producer may
    /// go on. Two answers stay fatal: a fencing of a young transaction (a
    /// newer instance with the same id really started; renewing would fence
    /// it back), and authorization failures. After [`RENEWALS`] renewals
    /// within [`RENEWAL_WINDOW`] the next fatal error is final, so a broken
    /// setup cannot loop.
    pub(super) fn renewable(&self) -> bool {
        let Some((code, _)) = self.producer.client().fatal_error() else { return false };
        if self.renewals.iter().filter(|t| t.elapsed() < RENEWAL_WINDOW).count() >= RENEWALS {
            return false;
        }
        let outlived = self.txn.as_ref().is_some_and(|t| t.started.elapsed() > self.transaction_timeout);
        match code {
            RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch => {
                outlived
            }
            RDKafkaErrorCode::TransactionalIdAuthorizationFailed
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::SaslAuthenticationFailed => false,
            _ => true,
        }
    }

    /// A fatal error that a fresh producer cures (see
    /// [`Core::renewable`]) is cured; any other error is returned.
    pub(super) fn recover<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        e: LoopError,
    ) -> Result<(), LoopError> {
        match e.is_fatal() && self.renewable() {
            true => self.renew_producer(consumer, &e),
            false => Err(e),
        }
    }

    /// Replaces the fenced producer with a fresh one of the same
    /// transactional.id (initialising it ends whatever the broker still
    /// holds of the old one), drops pending state and rewinds.
    pub(super) fn renew_producer<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        cause: &LoopError,
    ) -> Result<(), LoopError> {
        let open_for = self.txn.as_ref().map(|t| t.started.elapsed()).unwrap_or_default();
        tracing::warn!(
            error = %cause,
            open_for_ms = open_for.as_millis() as u64,
            transaction_timeout_ms = self.transaction_timeout.as_millis() as u64,
            "the broker ended this producer's transaction (it outlived the transaction timeout: a paused process, \
             or a broker failure that held its records back) and the producer cannot go on; starting a fresh producer"
        );
        self.renewals.retain(|t| t.elapsed() < RENEWAL_WINDOW);
        self.renewals.push(Instant::now());
        self.metrics.errors.get_or_create(&KindLabel { kind: "producer_renewed" }).inc();
        let open = self.txn.take().is_some();
        if open {
            self.metrics.transactions.get_or_create(&ResultLabel { result: "aborted" }).inc();
        }
        let producer: ThreadedProducer<ProducerContext> = self
            .producer_config
            .create_with_context(ProducerContext)
            .map_err(|e| LoopError::Setup(format!("creating a fresh producer: {e}")))?;
        producer.init_transactions(TIMEOUT).map_err(|e| LoopError::kafka("initialising the fresh producer", e))?;
        self.producer = producer;
        self.rewind(consumer, open)
    }
}

/// Retries a transactional call while librdkafka says it is retriable.
pub(super) fn retry(mut call: impl FnMut() -> Result<(), KafkaError>, what: &str) -> Result<(), LoopError> {
    let mut attempt = 0;
    loop {
        match call() {
            Ok(()) => return Ok(()),
            Err(e) if is_retriable(&e) && attempt < RETRIES => {
                attempt += 1;
                tracing::info!(error = %e, attempt, "{what}: retriable error, retrying");
                std::thread::sleep(Duration::from_millis(100 << attempt));
            }
            Err(e) => return Err(LoopError::kafka(what, e)),
        }
    }
}
