//! The transactional producer (Kafka Streams' StreamsProducer): begin, send,
//! commit, and one way to end a transaction without committing it,
//! [`TxnProducer::abort`], which also replaces a producer the broker ended.
//! It knows nothing of inputs, state or the consumer's positions: `Core`
//! rewinds those after an abort.
//!
//! A commit may also run in the background
//! ([`TxnProducer::commit_in_background`]): the broker takes most of a
//! commit's time (the offsets wait behind the produce requests, then
//! EndTxn), and a stateless processor need not sit idle meanwhile. The next
//! transaction opens at once but is begun at the broker only once the
//! commit has ended ([`TxnProducer::finish`]); until then its records wait
//! with `Core`, unsent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, TopicPartitionList};

use super::committer::{Committer, Outcome};
use super::contexts::ProducerContext;
use super::own_writes::Deliveries;
use super::{is_retriable, LoopError, RENEWALS, RENEWAL_WINDOW, RETRIES, TIMEOUT};
use crate::events::{InternalEvent, ProducerRenewed, TransactionAborted, TransactionCommitted};
use crate::hooks::Injected;
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
    /// DLQ records, per stage and class: counted once committed.
    pub(super) dead: BTreeMap<(&'static str, String), u64>,
    /// Input partitions whose offsets it commits.
    pub(super) touched: BTreeSet<(&'static str, i32)>,
    /// Whether the broker knows it (begin_transaction): not while the
    /// previous transaction's commit is still in flight.
    pub(super) begun: bool,
}

/// A commit running in the background, with the transaction it ends.
struct InFlight {
    txn: Txn,
    started: Instant,
    /// Its outcome, once seen ended.
    outcome: Option<Outcome>,
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
    /// Shared with a commit running in the background.
    producer: Arc<ThreadedProducer<ProducerContext>>,
    /// To create a fresh producer when the broker ended this one.
    config: ClientConfig,
    /// Where delivery reports of records to own inputs go, this producer's and a fresh one's.
    deliveries: Arc<Deliveries>,
    transaction_timeout: Duration,
    /// When the producer was renewed, within the last [`RENEWAL_WINDOW`].
    renewals: Vec<Instant>,
    txn: Option<Txn>,
    inflight: Option<InFlight>,
    /// Started with the first background commit.
    committer: Option<Committer>,
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
        deliveries: Arc<Deliveries>,
    ) -> Result<TxnProducer, LoopError> {
        let producer = config
            .create_with_context(ProducerContext { deliveries: deliveries.clone() })
            .map_err(|e| LoopError::Setup(format!("creating the producer: {e} (check the -X properties)")))?;
        Ok(TxnProducer {
            producer: Arc::new(producer),
            config,
            deliveries,
            transaction_timeout,
            renewals: Vec::new(),
            txn: None,
            inflight: None,
            committer: None,
            metrics,
            health,
        })
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

    /// The open transaction, opened if none is; begun at the broker unless
    /// a commit is still in flight.
    pub(super) fn begin(&mut self) -> Result<&mut Txn, LoopError> {
        if self.txn.is_none() {
            let begun = self.inflight.is_none();
            if begun {
                self.producer.begin_transaction().map_err(|e| LoopError::kafka("beginning a transaction", e))?;
            }
            self.txn = Some(Txn {
                started: Instant::now(),
                inputs: 0,
                outputs: 0,
                produced: BTreeMap::new(),
                emitted: BTreeMap::new(),
                dead: BTreeMap::new(),
                touched: BTreeSet::new(),
                begun,
            });
        }
        Ok(self.txn.as_mut().expect("just opened"))
    }

    /// Whether a record sent now goes to the broker: a transaction is open
    /// and begun. Otherwise `Core` holds it until [`TxnProducer::resume`].
    pub(super) fn accepting(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.begun)
    }

    pub(super) fn in_flight(&self) -> bool {
        self.inflight.is_some()
    }

    /// Whether the commit in flight has ended, either way.
    pub(super) fn in_flight_ended(&mut self) -> bool {
        let (Some(f), Some(c)) = (self.inflight.as_mut(), self.committer.as_ref()) else { return false };
        if f.outcome.is_none() {
            f.outcome = c.try_outcome();
        }
        f.outcome.is_some()
    }

    /// Begins at the broker the transaction opened while a commit was in
    /// flight; returns whether there was one.
    pub(super) fn resume(&mut self) -> Result<bool, LoopError> {
        match self.txn.as_mut() {
            Some(txn) if !txn.begun && self.inflight.is_none() => {
                self.producer.begin_transaction().map_err(|e| LoopError::kafka("beginning a transaction", e))?;
                txn.begun = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Produces one record of `topic` (its `topics.yaml` name; an emitted
    /// event of `event_type`) in the open transaction, waiting while the
    /// local queue is full. Returns how many records the transaction
    /// carries now.
    pub(super) fn send(
        &mut self,
        topic: &'static str,
        event_type: Option<&'static str>,
        mut record: BaseRecord<'_, [u8], [u8], usize>,
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
        injected: Option<Injected>,
    ) -> Result<Option<Txn>, LoopError> {
        if self.txn.is_none() {
            return Ok(None);
        }
        let commit_started = Instant::now();
        let offsets_sent = end(&self.producer, offsets, injected, Some(&self.health))?;
        let txn = self.txn.take().expect("checked above");
        committed(&txn, offsets_sent, commit_started.elapsed(), &self.metrics);
        Ok(Some(txn))
    }

    /// Starts committing the open transaction with the consumed `offsets`
    /// on a thread of its own and returns at once; [`TxnProducer::finish`]
    /// takes the outcome. A transaction opened meanwhile is not begun at
    /// the broker until then.
    pub(super) fn commit_in_background(
        &mut self,
        offsets: Option<(TopicPartitionList, ConsumerGroupMetadata)>,
        injected: Option<Injected>,
    ) -> Result<(), LoopError> {
        debug_assert!(self.inflight.is_none(), "one commit in flight at a time");
        let Some(txn) = self.txn.take() else { return Ok(()) };
        let producer = self.producer.clone();
        // Off the loop thread: the phases the stall watch sees stay the loop's.
        let commit = move || end(&producer, offsets.as_ref().map(|(tpl, group)| (tpl, group)), injected, None);
        let submitted = match &self.committer {
            Some(c) => c.submit(commit),
            None => Committer::start().and_then(|c| c.submit(commit).map(|()| self.committer = Some(c))),
        };
        match submitted {
            Ok(()) => {
                self.inflight = Some(InFlight { txn, started: Instant::now(), outcome: None });
                Ok(())
            }
            Err(e) => {
                self.txn = Some(txn);
                Err(e)
            }
        }
    }

    /// Waits for the commit in flight, if any, and returns its transaction
    /// once committed. A commit that failed makes its transaction the open
    /// one again, for the abort path; one opened meanwhile (never begun, its
    /// records never sent) is dropped with it, and its inputs are replayed.
    pub(super) fn finish(&mut self) -> Result<Option<Txn>, LoopError> {
        let Some(mut f) = self.inflight.take() else { return Ok(None) };
        self.health.enter(Phase::EndTransaction);
        let outcome = match (f.outcome.take(), &self.committer) {
            (Some(o), _) => o,
            (None, Some(c)) => c.outcome(),
            (None, None) => Err(LoopError::Setup("a commit in flight without a commit thread".into())),
        };
        match outcome {
            Ok(offsets_sent) => {
                committed(&f.txn, offsets_sent, f.started.elapsed(), &self.metrics);
                Ok(Some(f.txn))
            }
            Err(e) => {
                self.txn = Some(f.txn);
                Err(e)
            }
        }
    }

    /// Ends the open transaction without committing it: the only way other
    /// than [`TxnProducer::commit`]. A producer in a fatal state that a fresh
    /// one cures (see [`TxnProducer::renewable`]) is replaced, which ends at
    /// the broker whatever the old one held; any other fatal state, and an
    /// abort that fails after its retries, is returned: stop the instance.
    pub(super) fn abort(&mut self) -> Result<Ended, LoopError> {
        debug_assert!(self.inflight.is_none(), "the caller takes a commit in flight first (`finish`)");
        if self.txn.as_ref().is_some_and(|t| !t.begun) {
            // Never begun at the broker: its records were never sent.
            let open_for = self.txn.take().expect("checked above").started.elapsed();
            TransactionAborted { open_for }.emit(&self.metrics);
            return Ok(Ended { open: true, renewed: false });
        }
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
            .create_with_context(ProducerContext { deliveries: self.deliveries.clone() })
            .map_err(|e| LoopError::Setup(format!("creating a fresh producer: {e}")))?;
        fresh.init_transactions(TIMEOUT).map_err(|e| LoopError::kafka("initialising the fresh producer", e))?;
        self.producer = Arc::new(fresh);
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

/// Waits until every produced record is acknowledged. rdkafka's
/// `commit_transaction` flushes first, but its flush polls in 100 ms slices
/// whenever anything is outstanding, which would cap throughput at ten
/// transactions a second; the producer's own thread serves the
/// acknowledgements, so a short wait here is all it takes.
fn drain(producer: &ThreadedProducer<ProducerContext>) -> Result<(), LoopError> {
    let deadline = Instant::now() + TIMEOUT;
    while producer.in_flight_count() > 0 {
        if Instant::now() > deadline {
            return Err(LoopError::NotAcknowledged(producer.in_flight_count()));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}

/// The whole of a commit, on whichever thread runs it: the consumed offsets
/// sent, every record acknowledged, EndTxn (unless a test hook fails it
/// first). `health`, the loop's, is told each phase when the loop waits in
/// it. Returns how long sending the offsets took.
fn end(
    producer: &ThreadedProducer<ProducerContext>,
    offsets: Option<(&TopicPartitionList, &ConsumerGroupMetadata)>,
    injected: Option<Injected>,
    health: Option<&Health>,
) -> Outcome {
    let phase = |p| {
        if let Some(h) = health {
            h.enter(p);
        }
    };
    let started = Instant::now();
    if let Some((tpl, group)) = offsets {
        phase(Phase::SendOffsets);
        retry(|| producer.send_offsets_to_transaction(tpl, group, TIMEOUT), "sending offsets")?;
    }
    let offsets_sent = started.elapsed();
    phase(Phase::Flush);
    drain(producer)?;
    if let Some(injected) = injected {
        return Err(injected.into());
    }
    phase(Phase::EndTransaction);
    retry(|| producer.commit_transaction(TIMEOUT), "committing")?;
    Ok(offsets_sent)
}

fn committed(txn: &Txn, offsets_sent: Duration, commit: Duration, metrics: &Metrics) {
    TransactionCommitted {
        inputs: txn.inputs,
        outputs: txn.outputs,
        produced: &txn.produced,
        emitted: &txn.emitted,
        dead: &txn.dead,
        open_for: txn.started.elapsed(),
        offsets_ms: offsets_sent.as_millis() as u64,
        commit_ms: commit.as_millis() as u64,
    }
    .emit(metrics);
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
        TxnProducer::create(config, transaction_timeout, metrics, health, Arc::default()).unwrap()
    }

    fn open(p: &mut TxnProducer, age: Duration) {
        let started = Instant::now().checked_sub(age).expect("the clock is past the age");
        p.txn = Some(Txn {
            started,
            inputs: 1,
            outputs: 0,
            produced: BTreeMap::new(),
            emitted: BTreeMap::new(),
            dead: BTreeMap::new(),
            touched: BTreeSet::new(),
            begun: true,
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
    fn a_transaction_opened_while_a_commit_is_in_flight_holds_its_records_and_aborts_locally() {
        let mut p = producer(Duration::from_secs(10));
        open(&mut p, Duration::from_secs(1));
        assert!(p.accepting(), "begun: records go to the broker");
        p.txn.as_mut().unwrap().begun = false;
        assert!(!p.accepting(), "not begun: the records wait");
        assert!(!p.in_flight() && !p.in_flight_ended());
        // Never begun at the broker: ending it asks the broker nothing (there is none here).
        assert_eq!(p.abort().unwrap(), Ended { open: true, renewed: false });
        assert!(p.open().is_none());
    }

    #[test]
    fn nothing_open_aborts_nothing() {
        let mut p = producer(Duration::from_secs(10));
        assert_eq!(p.abort().unwrap(), Ended { open: false, renewed: false });
        assert!(p.open().is_none());
        assert!(p.commit(None, None).unwrap().is_none());
    }
}
