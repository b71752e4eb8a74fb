//! The transactional producer (Kafka Streams' StreamsProducer): begin, send,
//! commit, and one way to end a transaction without committing it,
//! [`TxnProducer::abort`], which also replaces a producer the broker ended.
//! It knows nothing of inputs, state or the consumer's positions: `Core`
//! rewinds those after an abort.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, TopicPartitionList};

use super::contexts::ProducerContext;
use super::{is_retriable, LoopError, RENEWALS, RENEWAL_WINDOW, RETRIES, TIMEOUT};
use crate::events::{InternalEvent, ProducerRenewed, TransactionAborted, TransactionCommitted};
use crate::http::{Health, Phase};
use crate::metrics::Metrics;

/// The open transaction: what it carries so far.
pub(super) struct Txn {
    pub(super) started: Instant,
    pub(super) inputs: usize,
    pub(super) outputs: usize,
    pub(super) produced: BTreeMap<&'static str, u64>,
    /// Events the processor emitted, per type.
    pub(super) emitted: BTreeMap<&'static str, u64>,
    /// Input partitions whose offsets it commits.
    pub(super) touched: BTreeSet<(&'static str, i32)>,
}

/// How [`TxnProducer::abort`] ended things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ended {
    /// A transaction was open: the inputs it carried are to be attempted again.
    pub(super) open: bool,
    /// The producer was replaced by a fresh one of the same transactional.id.
    pub(super) renewed: bool,
}

pub(super) struct TxnProducer {
    producer: ThreadedProducer<ProducerContext>,
    /// To create a fresh producer when the broker ended this one.
    config: ClientConfig,
    transaction_timeout: Duration,
    /// When the producer was renewed, within the last [`RENEWAL_WINDOW`].
    renewals: Vec<Instant>,
    txn: Option<Txn>,
    metrics: Arc<Metrics>,
    /// Told which call the loop waits in, for the stall watch.
    health: Arc<Health>,
}

impl TxnProducer {
    pub(super) fn create(
        config: ClientConfig,
        transaction_timeout: Duration,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Result<TxnProducer, LoopError> {
        let producer = config
            .create_with_context(ProducerContext)
            .map_err(|e| LoopError::Setup(format!("creating the producer: {e} (check the -X properties)")))?;
        Ok(TxnProducer { producer, config, transaction_timeout, renewals: Vec::new(), txn: None, metrics, health })
    }

    /// Registers the transactional.id with the broker, fencing any
    /// predecessor and ending what it left open.
    pub(super) fn init(&self, what: &str) -> Result<(), LoopError> {
        self.producer.init_transactions(TIMEOUT).map_err(|e| LoopError::kafka(what.to_owned(), e))
    }

    pub(super) fn client(&self) -> &rdkafka::client::Client<ProducerContext> {
        self.producer.client()
    }

    /// For the test hooks, which act on the producer itself.
    pub(super) fn inner(&self) -> &ThreadedProducer<ProducerContext> {
        &self.producer
    }

    pub(super) fn transaction_timeout(&self) -> Duration {
        self.transaction_timeout
    }

    pub(super) fn open(&self) -> Option<&Txn> {
        self.txn.as_ref()
    }

    pub(super) fn open_mut(&mut self) -> Option<&mut Txn> {
        self.txn.as_mut()
    }

    /// The open transaction, begun if none is.
    pub(super) fn begin(&mut self) -> Result<&mut Txn, LoopError> {
        if self.txn.is_none() {
            self.producer.begin_transaction().map_err(|e| LoopError::kafka("beginning a transaction", e))?;
            self.txn = Some(Txn {
                started: Instant::now(),
                inputs: 0,
                outputs: 0,
                produced: BTreeMap::new(),
                emitted: BTreeMap::new(),
                touched: BTreeSet::new(),
            });
        }
        Ok(self.txn.as_mut().expect("just begun"))
    }

    /// Produces one record of `topic` (its `topics.yaml` name; an emitted
    /// event of `event_type`) in the open transaction, waiting while the
    /// local queue is full. Returns how many records the transaction
    /// carries now.
    pub(super) fn send(
        &mut self,
        topic: &'static str,
        event_type: Option<&'static str>,
        mut record: BaseRecord<'_, [u8], [u8]>,
    ) -> Result<usize, KafkaError> {
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => return Err(e),
            }
        }
        let txn = self.txn.as_mut().expect("send inside a transaction");
        txn.outputs += 1;
        *txn.produced.entry(topic).or_default() += 1;
        if let Some(t) = event_type {
            *txn.emitted.entry(t).or_default() += 1;
        }
        Ok(txn.outputs)
    }

    /// Commits the open transaction with the consumed `offsets`, and returns
    /// it; `None` if none was open.
    pub(super) fn commit(
        &mut self,
        offsets: Option<(&TopicPartitionList, &ConsumerGroupMetadata)>,
    ) -> Result<Option<Txn>, LoopError> {
        if self.txn.is_none() {
            return Ok(None);
        }
        let commit_started = Instant::now();
        if let Some((tpl, group)) = offsets {
            self.health.enter(Phase::SendOffsets);
            retry(|| self.producer.send_offsets_to_transaction(tpl, group, TIMEOUT), "sending offsets")?;
        }
        let offsets_sent = commit_started.elapsed();
        self.health.enter(Phase::Flush);
        self.drain()?;
        self.health.enter(Phase::EndTransaction);
        retry(|| self.producer.commit_transaction(TIMEOUT), "committing")?;
        let txn = self.txn.take().expect("checked above");
        TransactionCommitted {
            inputs: txn.inputs,
            outputs: txn.outputs,
            produced: &txn.produced,
            emitted: &txn.emitted,
            open_for: txn.started.elapsed(),
            offsets_ms: offsets_sent.as_millis() as u64,
            commit_ms: commit_started.elapsed().as_millis() as u64,
        }
        .emit(&self.metrics);
        Ok(Some(txn))
    }

    /// Waits until every produced record is acknowledged. rdkafka's
    /// `commit_transaction` flushes first, but its flush polls in 100 ms
    /// slices whenever anything is outstanding, which would cap throughput
    /// at ten transactions a second; the producer's own thread serves the
    /// acknowledgements, so a short wait here is all it takes.
    fn drain(&self) -> Result<(), LoopError> {
        let deadline = Instant::now() + TIMEOUT;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() > deadline {
                return Err(LoopError::NotAcknowledged(self.producer.in_flight_count()));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Ends the open transaction without committing it: the only way other
    /// than [`TxnProducer::commit`]. A producer in a fatal state that a fresh
    /// one cures (see [`TxnProducer::renewable`]) is replaced, which ends at
    /// the broker whatever the old one held; any other fatal state, and an
    /// abort that fails after its retries, is returned: stop the instance.
    pub(super) fn abort(&mut self) -> Result<Ended, LoopError> {
        if self.client().fatal_error().is_none() {
            let Some(txn) = &self.txn else { return Ok(Ended { open: false, renewed: false }) };
            let open_for = txn.started.elapsed();
            self.health.enter(Phase::Abort);
            match retry(|| self.producer.abort_transaction(TIMEOUT), "aborting") {
                Ok(()) => {
                    self.txn = None;
                    TransactionAborted { open_for }.emit(&self.metrics);
                    return Ok(Ended { open: true, renewed: false });
                }
                // The abort made the producer fatal: perhaps a renewal cures it.
                Err(_) if self.client().fatal_error().is_some() => {}
                Err(LoopError::Transient { what, source } | LoopError::Fatal { what, source }) => {
                    return Err(LoopError::Fatal { what, source })
                }
                Err(e) => return Err(e),
            }
        }
        let (code, reason) = self.client().fatal_error().expect("fatal, checked above");
        // `run` reports the code and reason with the error it ends on.
        if !self.renewable(code) {
            return Err(LoopError::Setup("the producer's fatal error is not one a fresh producer cures".into()));
        }
        self.health.enter(Phase::RenewProducer);
        let fresh: ThreadedProducer<ProducerContext> = self
            .config
            .create_with_context(ProducerContext)
            .map_err(|e| LoopError::Setup(format!("creating a fresh producer: {e}")))?;
        fresh.init_transactions(TIMEOUT).map_err(|e| LoopError::kafka("initialising the fresh producer", e))?;
        self.producer = fresh;
        self.renewals.retain(|t| t.elapsed() < RENEWAL_WINDOW);
        self.renewals.push(Instant::now());
        let open_for = self.txn.take().map(|t| t.started.elapsed());
        ProducerRenewed { code, reason: &reason, open_for, transaction_timeout: self.transaction_timeout }
            .emit(&self.metrics);
        if let Some(open_for) = open_for {
            TransactionAborted { open_for }.emit(&self.metrics);
        }
        Ok(Ended { open: open_for.is_some(), renewed: true })
    }

    /// Whether a fresh producer with the same transactional.id cures the
    /// producer's fatal error `code`. The broker's coordinator aborts a
    /// transaction that stays open past the transaction timeout (a paused
    /// process, or a broker failure that held its records back) and bumps
    /// the epoch: the producer is then fenced, or its late EndTxn finds no
    /// such transaction (INVALID_TXN_STATE), or a moved coordinator no
    /// longer knows it. None of that means another instance owns the id, so
    /// a fresh producer may go on. Two answers stay fatal: a fencing of a
    /// young transaction (a newer instance with the same id really started;
    /// renewing would fence it back), and authorization failures. After
    /// [`RENEWALS`] renewals within [`RENEWAL_WINDOW`] the next fatal error
    /// is final, so a broken setup cannot loop.
    fn renewable(&self, code: RDKafkaErrorCode) -> bool {
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
}

/// Retries a transactional call while librdkafka says it is retriable.
fn retry(mut call: impl FnMut() -> Result<(), KafkaError>, what: &str) -> Result<(), LoopError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A producer that is never started: creating one needs no broker.
    fn producer(transaction_timeout: Duration) -> TxnProducer {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", "127.0.0.1:1").set("transactional.id", "t");
        let (metrics, health) = (Arc::new(Metrics::new("t", "0")), Arc::new(Health::new(Duration::from_secs(60))));
        TxnProducer::create(config, transaction_timeout, metrics, health).unwrap()
    }

    fn open(p: &mut TxnProducer, age: Duration) {
        let started = Instant::now().checked_sub(age).expect("the clock is past the age");
        p.txn = Some(Txn {
            started,
            inputs: 1,
            outputs: 0,
            produced: BTreeMap::new(),
            emitted: BTreeMap::new(),
            touched: BTreeSet::new(),
        });
    }

    #[test]
    fn a_fresh_producer_cures_an_ended_transaction_not_a_newer_instance_or_a_denial() {
        let mut p = producer(Duration::from_secs(10));
        open(&mut p, Duration::from_secs(1));
        assert!(!p.renewable(RDKafkaErrorCode::ProducerFenced), "a young transaction fenced: another instance");
        assert!(p.renewable(RDKafkaErrorCode::InvalidTransactionalState), "the coordinator forgot it");
        open(&mut p, Duration::from_secs(11));
        assert!(p.renewable(RDKafkaErrorCode::ProducerFenced), "it outlived the timeout: the broker ended it");
        assert!(p.renewable(RDKafkaErrorCode::InvalidProducerEpoch));
        assert!(!p.renewable(RDKafkaErrorCode::TransactionalIdAuthorizationFailed));
        assert!(!p.renewable(RDKafkaErrorCode::TopicAuthorizationFailed));
    }

    #[test]
    fn renewals_are_bounded_within_their_window() {
        let mut p = producer(Duration::from_secs(10));
        p.renewals = vec![Instant::now(); RENEWALS];
        assert!(!p.renewable(RDKafkaErrorCode::InvalidTransactionalState), "a broken setup cannot loop");
        let long_ago = Instant::now().checked_sub(RENEWAL_WINDOW + Duration::from_secs(1)).expect("clock");
        p.renewals = vec![long_ago; RENEWALS];
        assert!(p.renewable(RDKafkaErrorCode::InvalidTransactionalState), "old renewals do not count");
    }

    #[test]
    fn nothing_open_aborts_nothing() {
        let mut p = producer(Duration::from_secs(10));
        assert_eq!(p.abort().unwrap(), Ended { open: false, renewed: false });
        assert!(p.open().is_none());
        assert!(p.commit(None).unwrap().is_none());
    }
}
