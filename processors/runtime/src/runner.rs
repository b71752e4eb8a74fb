//! The Kafka loop: one consumer (range assignor, read_committed) and one
//! transactional producer per instance, KIP-447 style.
//!
//! A transaction is opened on the first input or due timer and carries the
//! derived records, DLQ records, changelog records and the consumed offsets
//! (`send_offsets_to_transaction` with the group metadata). It commits every
//! `commit_interval` or `commit_max_records` inputs, before partitions are
//! revoked, and on shutdown. A transient error aborts it, rewinds the
//! consumer to the committed offsets and drops the pending state, then
//! retries with exponential backoff; a fatal one ends the process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use sagastream_contract::Record;
use sagastream_kafka::{base_record, record_from_message};

use crate::changelog::{self, Entry};
use crate::config::{Config, Scope};
use crate::dlq::{self, Failure, Origin, Stage};
use crate::engine::{Engine, EngineConfig, Input, Out, OutKind};
use crate::http::Health;
use crate::metrics::{KindLabel, Metrics, PartitionLabel, ResultLabel, TopicLabel, TopicPartitionLabel};
use crate::processor::Processor;

const TIMEOUT: Duration = Duration::from_secs(30);
const TIMERS_PER_ITERATION: usize = 1000;
const RETRIES: u32 = 5;
/// Records handled back to back, polled without waiting, before the loop
/// looks at the clock again (heartbeat, timers, commit interval, lag): the
/// clock reads cost more than a saga step.
const BURST: u32 = 64;
/// A fenced producer is renewed at most this often in this long.
const RENEWALS: usize = 3;
const RENEWAL_WINDOW: Duration = Duration::from_secs(300);

/// Why the loop stopped or must retry.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// Abort the transaction, rewind, retry.
    #[error("{what}: {source}")]
    Transient {
        what: String,
        #[source]
        source: KafkaError,
    },
    #[error("{0}")]
    Injected(String),
    #[error("{0} produced record(s) not acknowledged within 30 s")]
    NotAcknowledged(i32),
    /// Stop the instance.
    #[error("{what}: {source}")]
    Fatal {
        what: String,
        #[source]
        source: KafkaError,
    },
    #[error("{0}")]
    Setup(String),
    /// A signal arrived while restoring; nothing is in flight.
    #[error("stopped by a signal during a restore")]
    Stopped,
}

impl LoopError {
    fn kafka(what: impl Into<String>, source: KafkaError) -> LoopError {
        let what = what.into();
        if is_fatal(&source) {
            LoopError::Fatal { what, source }
        } else {
            LoopError::Transient { what, source }
        }
    }

    fn is_fatal(&self) -> bool {
        matches!(self, LoopError::Fatal { .. } | LoopError::Setup(_))
    }
}

fn is_fatal(e: &KafkaError) -> bool {
    if let KafkaError::Transaction(rd) = e {
        if rd.is_fatal() {
            return true;
        }
    }
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::SaslAuthenticationFailed
        )
    )
}

fn is_retriable(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(rd) if rd.is_retriable() && !rd.txn_requires_abort())
}

/// Names on the cluster (with the prefix) and in `topics.yaml`.
struct Names {
    inputs: Vec<(&'static str, String)>,
    /// Repartition sources: read and re-keyed, never given to the processor.
    sources: Vec<(&'static str, String)>,
    changelog: Option<String>,
    physical: BTreeMap<&'static str, String>,
}

impl Names {
    /// The `topics.yaml` name of a consumed topic (an input or a source).
    fn logical_input(&self, physical: &str) -> Option<&'static str> {
        self.inputs.iter().chain(&self.sources).find(|(_, p)| p == physical).map(|(l, _)| *l)
    }

    fn is_input(&self, logical: &str) -> bool {
        self.inputs.iter().any(|(l, _)| *l == logical)
    }

    fn physical(&self, logical: &'static str) -> &str {
        &self.physical[logical]
    }
}

struct Txn {
    started: Instant,
    inputs: usize,
    outputs: usize,
    produced: BTreeMap<&'static str, u64>,
    touched: BTreeSet<(&'static str, i32)>,
}

/// Input partitions (the state's) and repartition source partitions.
type Assignment = (Vec<i32>, Vec<(&'static str, i32)>);

/// A partition given up in a rebalance, kept in case it comes straight back.
struct Suspended<S> {
    state: HashMap<String, Entry<S>>,
    committed: BTreeMap<&'static str, Option<i64>>,
    changelog_end: Option<i64>,
}

/// Latest per-partition figures from librdkafka's statistics.
#[derive(Debug, Clone, Copy, Default)]
struct PartitionStats {
    ls_offset: i64,
    app_offset: i64,
}

struct Core<P: Processor> {
    engine: Engine<P>,
    producer: ThreadedProducer<ProducerContext>,
    /// To create a fresh producer when the broker fenced this one for a
    /// transaction that outlived its timeout.
    producer_config: ClientConfig,
    /// When the producer was renewed, within the last [`RENEWAL_WINDOW`].
    renewals: Vec<Instant>,
    restorer: BaseConsumer<RestoreContext>,
    names: Names,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stop: Arc<AtomicBool>,
    commit_interval: Duration,
    commit_max_records: usize,
    transaction_timeout: Duration,
    txn: Option<Txn>,
    /// Next offset to process, per owned input partition.
    positions: BTreeMap<(&'static str, i32), i64>,
    /// Offsets as of the last commit (`None`: the group has none yet).
    committed: BTreeMap<(&'static str, i32), Option<i64>>,
    pending_assignment: Option<Assignment>,
    suspended: HashMap<i32, Suspended<P::State>>,
    fail_after_outputs: Option<usize>,
    hang_after_outputs: Option<usize>,
    fail_after_repartition: Option<usize>,
    repartitioned_total: usize,
    outputs_total: usize,
    /// Set by a rebalance callback that hit a fatal error.
    fatal: Option<LoopError>,
}

struct ProducerContext;
impl ClientContext for ProducerContext {}
impl rdkafka::producer::ProducerContext for ProducerContext {
    type DeliveryOpaque = ();
    // A failed delivery makes the transaction abortable; commit reports it.
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

struct RestoreContext;
impl ClientContext for RestoreContext {
    fn error(&self, error: KafkaError, reason: &str) {
        // End of a changelog partition is how a restore knows it is done, not an error.
        if !matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::PartitionEOF)) {
            tracing::warn!(%error, reason, "restore consumer error");
        }
    }
}
impl ConsumerContext for RestoreContext {}

struct LoopContext<P: Processor> {
    core: Arc<Mutex<Core<P>>>,
    stats: Arc<Mutex<HashMap<(String, i32), PartitionStats>>>,
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
            let lost = consumer.assignment_lost();
            if let Err(e) = core.on_revoke(consumer, lost) {
                core.fatal = Some(e);
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
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
                core.pending_assignment = Some((partitions.into_iter().collect(), sources.into_iter().collect()));
            }
            Rebalance::Revoke(tpl) => tracing::info!(partitions = tpl.count(), "partitions revoked"),
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock already ends the process; the data is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the processor until SIGTERM/SIGINT (Ok) or a fatal error.
pub fn run<P: Processor>(processor: P, config: Config) -> Result<(), LoopError> {
    let spec = processor.spec();
    let metrics = Arc::new(Metrics::new(spec.name, spec.version));
    let health = Arc::new(Health::new(Duration::from_secs(60)));
    let bound = crate::http::serve(config.metrics_addr, metrics.clone(), health.clone())
        .map_err(|e| LoopError::Setup(format!("cannot serve metrics on {}: {e}", config.metrics_addr)))?;
    tracing::info!(addr = %bound, "serving /metrics, /healthz, /readyz");

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| LoopError::Setup(format!("cannot handle signal {signal}: {e}")))?;
    }

    let mut physical = BTreeMap::new();
    for t in spec.inputs.iter().chain(&spec.outputs).chain(&[spec.dlq]).chain(spec.changelog.as_ref()) {
        physical.insert(*t, config.physical(t));
    }
    for r in &spec.repartitions {
        physical.insert(r.from, config.physical(r.from));
    }
    let names = Names {
        inputs: spec.inputs.iter().map(|t| (*t, config.physical(t))).collect(),
        sources: spec.repartitions.iter().map(|r| (r.from, config.physical(r.from))).collect(),
        changelog: spec.changelog.map(|t| config.physical(t)),
        physical,
    };

    let mut producer_config = config.settings.producer();
    producer_config
        .set("transactional.id", &config.transactional_id)
        .set("transaction.timeout.ms", config.transaction_timeout.as_millis().to_string());
    apply(&mut producer_config, &config, Scope::Producer);
    let producer: ThreadedProducer<ProducerContext> = producer_config
        .create_with_context(ProducerContext)
        .map_err(|e| LoopError::Setup(format!("creating the producer: {e} (check the -X properties)")))?;
    check_topics(&producer, &config, &names)?;
    producer
        .init_transactions(TIMEOUT)
        .map_err(|e| LoopError::kafka(format!("initialising transactional.id {}", config.transactional_id), e))?;
    tracing::info!(transactional_id = %config.transactional_id, "transactions initialised; any predecessor is fenced");

    let mut restore_config = config.settings.base();
    restore_config
        .set("group.id", format!("{}-restore", config.group_id))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest");
    apply(&mut restore_config, &config, Scope::Consumer);
    let restorer: BaseConsumer<RestoreContext> = restore_config
        .create_with_context(RestoreContext)
        .map_err(|e| LoopError::Setup(format!("creating the restore consumer: {e}")))?;

    let output_modes =
        spec.outputs.iter().map(|t| (*t, config.topic(t).content_mode)).collect::<HashMap<&'static str, _>>();
    let engine = Engine::new(
        processor,
        EngineConfig { group: config.group_id.clone(), dedup_window: config.dedup_window, output_modes },
        metrics.clone(),
    );
    let core = Arc::new(Mutex::new(Core {
        engine,
        producer,
        producer_config,
        renewals: Vec::new(),
        restorer,
        names,
        metrics: metrics.clone(),
        health: health.clone(),
        stop: stop.clone(),
        commit_interval: config.commit_interval,
        commit_max_records: config.commit_max_records,
        transaction_timeout: config.transaction_timeout,
        txn: None,
        positions: BTreeMap::new(),
        committed: BTreeMap::new(),
        pending_assignment: None,
        suspended: HashMap::new(),
        fail_after_outputs: config.fail_after_outputs,
        hang_after_outputs: config.hang_after_outputs,
        fail_after_repartition: config.fail_after_repartition,
        repartitioned_total: 0,
        outputs_total: 0,
        fatal: None,
    }));
    let stats = Arc::new(Mutex::new(HashMap::new()));

    let mut consumer_config = config.settings.consumer(&config.group_id);
    consumer_config
        .set("enable.auto.offset.store", "false")
        .set("partition.assignment.strategy", "range")
        .set("statistics.interval.ms", "1000");
    apply(&mut consumer_config, &config, Scope::Consumer);
    let consumer: BaseConsumer<LoopContext<P>> = consumer_config
        .create_with_context(LoopContext { core: core.clone(), stats: stats.clone() })
        .map_err(|e| LoopError::Setup(format!("creating the consumer: {e} (check the -X properties)")))?;
    let inputs: Vec<String> =
        spec.inputs.iter().chain(spec.repartitions.iter().map(|r| &r.from)).map(|t| config.physical(t)).collect();
    let input_refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    consumer.subscribe(&input_refs).map_err(|e| LoopError::Setup(format!("subscribing to {inputs:?}: {e}")))?;
    tracing::info!(group = %config.group_id, inputs = ?inputs, "subscribed");

    let result = run_loop(&consumer, &core, &stats, &stop, config.retry_backoff_max);
    health.set_ready(false);
    match result {
        Ok(()) => {
            // Leave the group now so partitions move at once; the revoke
            // callback commits nothing because the transaction is closed.
            consumer.unsubscribe();
            drop(consumer);
            tracing::info!("stopped cleanly");
            Ok(())
        }
        Err(e) => {
            metrics.errors.get_or_create(&KindLabel { kind: "fatal" }).inc();
            let cause = lock(&core).producer.client().fatal_error();
            match &cause {
                Some((RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced, reason)) => tracing::error!(
                    error = %e,
                    %reason,
                    transactional_id = %config.transactional_id,
                    "stopping on a fatal error: fenced by a newer instance with the same transactional.id; \
                     give every instance its own --instance-id"
                ),
                Some((code, reason)) => tracing::error!(error = %e, %code, %reason, "stopping on a fatal error"),
                None => tracing::error!(error = %e, "stopping on a fatal error"),
            }
            Err(match cause {
                Some((code, reason)) => LoopError::Setup(format!("{e}: {code}: {reason}")),
                None => e,
            })
        }
    }
}

fn apply(client: &mut ClientConfig, config: &Config, scope: Scope) {
    for (k, v) in config.properties(scope) {
        client.set(k, v);
    }
}

/// Every topic the processor touches exists with the partitions topics.yaml declares.
fn check_topics(producer: &ThreadedProducer<ProducerContext>, config: &Config, names: &Names) -> Result<(), LoopError> {
    let metadata = producer.client().fetch_metadata(None, TIMEOUT).map_err(|e| {
        LoopError::Setup(format!("reading cluster metadata from {}: {e}", config.settings.bootstrap_servers))
    })?;
    let mut problems = Vec::new();
    for (logical, physical) in &names.physical {
        let declared = config.topic(logical).partitions;
        match metadata.topics().iter().find(|t| t.name() == physical && t.error().is_none()) {
            None => problems.push(format!("{physical} does not exist")),
            Some(t) if t.partitions().len() as i32 != declared => problems
                .push(format!("{physical} has {} partitions, topics.yaml declares {declared}", t.partitions().len())),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let prefix =
        if config.topic_prefix.is_empty() { String::new() } else { format!(" --prefix {}", config.topic_prefix) };
    Err(LoopError::Setup(format!(
        "topics are not as declared: {}\n  hint: run `sagactl topics apply{prefix}` (it creates what is missing and reports drift)",
        problems.join("; ")
    )))
}

fn run_loop<P: Processor>(
    consumer: &BaseConsumer<LoopContext<P>>,
    core: &Arc<Mutex<Core<P>>>,
    stats: &Arc<Mutex<HashMap<(String, i32), PartitionStats>>>,
    stop: &AtomicBool,
    backoff_max: Duration,
) -> Result<(), LoopError> {
    let mut backoff = Duration::from_millis(100);
    let mut last_lag = Instant::now();
    let mut burst = 0;
    loop {
        let timeout = match burst {
            0 => {
                let c = lock(core);
                c.health.beat();
                c.poll_timeout()
            }
            _ => Duration::ZERO,
        };
        if stop.load(Ordering::Relaxed) {
            let mut c = lock(core);
            tracing::info!("signal received: committing and leaving the group");
            if let Err(e) = c.commit(consumer) {
                tracing::warn!(error = %e, "final commit failed; aborting");
                c.abort(consumer)?;
            }
            return Ok(());
        }
        let message = consumer.poll(timeout);
        let mut c = lock(core);
        let mut result = match c.fatal.take() {
            Some(e) => Err(e),
            None => Ok(()),
        };
        let got = matches!(message, Some(Ok(_)));
        burst = match got && burst + 1 < BURST && !c.commit_due_by_count() {
            true => burst + 1,
            false => 0,
        };
        result = result.and_then(|()| c.step(consumer, message, burst == 0));
        if burst == 0 && last_lag.elapsed() >= Duration::from_secs(1) {
            c.update_lag(&lock(stats));
            last_lag = Instant::now();
            result = result.and_then(|()| c.advance_past_markers(consumer));
        }
        let result = result.or_else(|e| c.recover(consumer, e));
        match result {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(LoopError::Stopped) => return Ok(()),
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                c.metrics.errors.get_or_create(&KindLabel { kind: "transient" }).inc();
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "transaction failed; aborting and retrying");
                if let Err(e) = c.abort(consumer) {
                    c.recover(consumer, e)?;
                }
                burst = 0;
                drop(c);
                let until = Instant::now() + backoff;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                backoff = (backoff * 2).min(backoff_max);
            }
        }
    }
}

impl<P: Processor> Core<P> {
    fn poll_timeout(&self) -> Duration {
        let mut t = Duration::from_millis(100);
        if let Some(txn) = &self.txn {
            t = t.min(self.commit_interval.saturating_sub(txn.started.elapsed()));
        }
        if let Some(due) = self.engine.next_due() {
            let wait = due - chrono::Utc::now().timestamp_millis();
            t = t.min(Duration::from_millis(wait.max(0) as u64));
        }
        t
    }

    fn commit_due_by_count(&self) -> bool {
        self.txn.as_ref().is_some_and(|txn| txn.inputs >= self.commit_max_records)
    }

    /// One iteration after a poll: restore new partitions, process the
    /// message and, with `housekeeping`, fire due timers and commit when it
    /// is time.
    fn step<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        message: Option<Result<BorrowedMessage<'_>, KafkaError>>,
        housekeeping: bool,
    ) -> Result<(), LoopError> {
        if let Some((partitions, sources)) = self.pending_assignment.take() {
            if let Err(e) = self.assign(consumer, partitions.clone(), &sources) {
                // Retried after the backoff; nothing of these partitions is processed meanwhile.
                self.pending_assignment = Some((partitions, sources));
                return Err(e);
            }
        }
        match message {
            None => {}
            Some(Ok(m)) => self.on_message(&m)?,
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) if is_fatal(&e) => return Err(LoopError::kafka("consuming", e)),
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error; librdkafka retries it"),
        }
        if !housekeeping {
            return Ok(());
        }
        self.fire_timers()?;
        if let Some(txn) = &self.txn {
            if txn.started.elapsed() >= self.commit_interval || txn.inputs >= self.commit_max_records {
                self.commit(consumer)?;
            }
        }
        Ok(())
    }

    /// Takes up offsets the consumer moved past without handing us a record:
    /// transaction markers, the last of which ends every transactional input
    /// partition. Committing only past the last record would leave the
    /// group's committed offset one short of the end offset forever, so lag
    /// read from the group (Burrow, KMinion, kafka-consumer-groups) would
    /// stay at 1 per partition; the next transaction commits them instead.
    fn advance_past_markers<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), LoopError> {
        let Ok(position) = consumer.position() else { return Ok(()) };
        let mut moved = Vec::new();
        for e in position.elements() {
            let (Offset::Offset(at), Some(topic)) = (e.offset(), self.names.logical_input(e.topic())) else {
                continue;
            };
            let tp = (topic, e.partition());
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

    /// The group's committed offsets for an assignment. The broker holds
    /// them back while a transaction that carries offsets for these
    /// partitions is open: a previous owner's that crashed or hangs
    /// mid-transaction. Starting before it ends would process its inputs a
    /// second time; the broker aborts it within that producer's transaction
    /// timeout, and the wait is reported while it lasts.
    fn committed_offsets<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: TopicPartitionList,
    ) -> Result<TopicPartitionList, LoopError> {
        const SLICE: Duration = Duration::from_secs(2);
        let started = Instant::now();
        let limit = self.transaction_timeout + TIMEOUT;
        loop {
            match consumer.committed_offsets(tpl.clone(), SLICE) {
                Ok(offsets) => {
                    let waited = started.elapsed();
                    self.metrics.offsets_wait.set(waited.as_secs_f64());
                    if waited >= SLICE {
                        tracing::info!(waited_ms = waited.as_millis() as u64, "committed offsets released");
                    }
                    return Ok(offsets);
                }
                Err(e)
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::OperationTimedOut)
                        && started.elapsed() < limit =>
                {
                    self.health.beat();
                    tracing::warn!(
                        waited_ms = started.elapsed().as_millis() as u64,
                        transaction_timeout_ms = self.transaction_timeout.as_millis() as u64,
                        "waiting for the committed offsets: an open transaction holds them (a previous owner \
                         crashed or hangs mid-transaction); the broker aborts it within its transaction timeout"
                    );
                }
                Err(e) => return Err(LoopError::kafka("reading committed offsets", e)),
            }
        }
    }

    fn begin(&mut self) -> Result<(), LoopError> {
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

    fn on_message(&mut self, m: &BorrowedMessage<'_>) -> Result<(), LoopError> {
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
            // Fetched before a revoke took effect; the owner will read it.
            tracing::debug!(topic, partition, offset = m.offset(), "record of a partition not owned; skipped");
            return Ok(());
        }
        self.begin()?;
        self.metrics.consumed.get_or_create(&TopicLabel { topic: topic.into() }).inc();
        let record = record_from_message(m);
        let input = Input {
            topic,
            source: m.topic(),
            partition,
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis(),
            record: &record,
        };
        let outs = match &repartition {
            Some(r) => self.engine.rekey(&input, r),
            None => self.engine.process(&input).map_err(|e| LoopError::Setup(format!("internal: {e}")))?,
        };
        self.positions.insert((topic, partition), m.offset() + 1);
        let txn = self.txn.as_mut().expect("begun");
        txn.inputs += 1;
        txn.touched.insert((topic, partition));
        for out in outs {
            let rekeyed = repartition.is_some() && out.kind == OutKind::Derived;
            self.send(out, Some(&input))?;
            if rekeyed {
                self.repartitioned_total += 1;
                if self.fail_after_repartition.is_some_and(|n| self.repartitioned_total >= n) {
                    self.fail_after_repartition = None;
                    // Flushed, so the re-keyed record really is in the log when the transaction aborts.
                    let _ = self.producer.flush(TIMEOUT);
                    let n = self.repartitioned_total;
                    return Err(LoopError::Injected(format!("test hook: injected failure after re-keyed record {n}")));
                }
            }
        }
        Ok(())
    }

    fn fire_timers(&mut self) -> Result<(), LoopError> {
        let now = chrono::Utc::now().timestamp_millis();
        if self.engine.next_due().is_none_or(|due| due > now) {
            return Ok(());
        }
        self.begin()?;
        let outs = self.engine.fire_due(now, TIMERS_PER_ITERATION);
        let txn = self.txn.as_mut().expect("begun");
        txn.inputs += 1;
        for out in outs {
            self.send(out, None)?;
        }
        Ok(())
    }

    fn send(&mut self, out: Out, input: Option<&Input<'_>>) -> Result<(), LoopError> {
        let topic = self.names.physical(out.topic).to_owned();
        let mut record = base_record(&topic, &out.record);
        if let Some(p) = out.partition {
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
        let txn = self.txn.as_mut().expect("send inside a transaction");
        txn.outputs += 1;
        *txn.produced.entry(out.topic).or_default() += 1;
        if let Some(n) = self.fail_after_outputs {
            if txn.outputs >= n {
                self.fail_after_outputs = None;
                // Flushed, so the doomed outputs really are in the log when the transaction aborts.
                let _ = self.producer.flush(TIMEOUT);
                return Err(LoopError::Injected(format!("test hook: injected failure after {n} outputs")));
            }
        }
        if let Some(n) = self.hang_after_outputs {
            if self.outputs_total >= n {
                let _ = self.producer.flush(TIMEOUT);
                tracing::warn!(outputs = n, "test hook: hanging with the transaction open");
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
        }
        Ok(())
    }

    fn send_dead_output(&mut self, out: Out, input: Option<&Input<'_>>, failure: Failure) -> Result<(), LoopError> {
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
        self.metrics.dlq(failure.stage.as_str(), &failure.class);
        let record: Record = dlq::record(&out.record, &origin, &failure);
        let dlq = Out { topic: spec.dlq, partition: None, record, kind: OutKind::Dlq };
        self.send(dlq, input)
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

    /// Commits the open transaction, if any.
    fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), LoopError> {
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
    fn abort<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), LoopError> {
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
    fn rewind<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, attempted: bool) -> Result<(), LoopError> {
        if attempted {
            self.engine.abort();
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
    fn renewable(&self) -> bool {
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
    fn recover<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, e: LoopError) -> Result<(), LoopError> {
        match e.is_fatal() && self.renewable() {
            true => self.renew_producer(consumer, &e),
            false => Err(e),
        }
    }

    /// Replaces the fenced producer with a fresh one of the same
    /// transactional.id (initialising it ends whatever the broker still
    /// holds of the old one), drops pending state and rewinds.
    fn renew_producer<C: ConsumerContext>(
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

    /// Revocation: commit what is in flight (or abort it when the
    /// assignment is lost), then give the partitions up, keeping their
    /// committed state aside in case they come straight back.
    fn on_revoke<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, lost: bool) -> Result<(), LoopError> {
        self.health.set_ready(false);
        let mut keep = !lost;
        // A fatal abort is reported after the partitions are released, so
        // that a renewed producer starts from a clean assignment.
        let mut fatal = None;
        if self.txn.is_some() {
            // A lost assignment is owned by another member already: its offsets cannot commit.
            let committed = if lost {
                Err("the assignment was lost".to_owned())
            } else {
                self.commit(consumer).map_err(|e| e.to_string())
            };
            if let Err(reason) = committed {
                tracing::warn!(%reason, lost, "could not commit before revocation; aborting");
                if self.txn.is_some() {
                    match self.producer.abort_transaction(TIMEOUT) {
                        // Kept in `txn`: its age decides whether a fresh producer may go on.
                        Err(e) if is_fatal(&e) => {
                            fatal = Some(LoopError::Fatal { what: "aborting before revocation".into(), source: e })
                        }
                        _ => {
                            self.txn = None;
                            self.metrics.transactions.get_or_create(&ResultLabel { result: "aborted" }).inc();
                        }
                    }
                }
                self.engine.abort();
                keep = false;
            }
        }
        for partition in self.engine.owned() {
            let state = self.engine.remove(partition).unwrap_or_default();
            let committed: BTreeMap<&'static str, Option<i64>> = self
                .names
                .inputs
                .iter()
                .map(|(t, _)| (*t, self.committed.get(&(*t, partition)).copied().flatten()))
                .collect();
            if keep {
                let changelog_end = self.changelog_end(partition);
                self.suspended.insert(partition, Suspended { state, committed, changelog_end });
            }
        }
        self.positions.clear();
        self.committed.clear();
        self.metrics.assigned_partitions.set(0);
        self.metrics.lag.clear();
        fatal.map_or(Ok(()), Err)
    }

    fn changelog_end(&self, partition: i32) -> Option<i64> {
        let topic = self.names.changelog.as_ref()?;
        self.restorer.fetch_watermarks(topic, partition, TIMEOUT).ok().map(|(_, high)| high)
    }

    /// Assignment: take back suspended partitions whose changelog and
    /// offsets nobody moved meanwhile; restore the others from the changelog.
    fn assign<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        partitions: Vec<i32>,
        sources: &[(&'static str, i32)],
    ) -> Result<(), LoopError> {
        let started = Instant::now();
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            for (_, physical) in &self.names.inputs {
                tpl.add_partition(physical, *p);
            }
        }
        for (topic, p) in sources {
            tpl.add_partition(self.names.physical(topic), *p);
        }
        let committed_tpl = self.committed_offsets(consumer, tpl)?;
        let mut committed: BTreeMap<(&'static str, i32), Option<i64>> = BTreeMap::new();
        for e in committed_tpl.elements() {
            if let Some(topic) = self.names.logical_input(e.topic()) {
                let offset = match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
                committed.insert((topic, e.partition()), offset);
            }
        }
        let mut to_restore = Vec::new();
        for p in &partitions {
            let now: BTreeMap<&'static str, Option<i64>> =
                self.names.inputs.iter().map(|(t, _)| (*t, committed.get(&(*t, *p)).copied().flatten())).collect();
            match self.suspended.remove(p) {
                Some(s) if s.committed == now && s.changelog_end == self.changelog_end(*p) => {
                    self.metrics.restores.get_or_create(&KindLabel { kind: "kept" }).inc();
                    self.engine.install(*p, s.state);
                }
                _ => to_restore.push(*p),
            }
        }
        self.suspended.clear();
        self.restore(&to_restore, &committed)?;
        for (tp, offset) in committed {
            if let Some(o) = offset {
                self.positions.insert(tp, o);
            }
            self.committed.insert(tp, offset);
        }
        self.metrics.assigned_partitions.set(self.engine.owned().len() as i64);
        self.health.set_ready(true);
        tracing::info!(
            partitions = ?partitions,
            restored = ?to_restore,
            took_ms = started.elapsed().as_millis() as u64,
            "partitions ready"
        );
        Ok(())
    }

    /// Reads the changelog partitions to their end (read_committed: the last
    /// stable offset) and installs the state as of the committed offsets.
    fn restore(
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
                                self.metrics.restore_skipped.inc();
                                tracing::info!(partition = p, offset = m.offset(), key = %change.key, "skipped a changelog record whose input offsets never committed");
                            }
                        }
                        Err(e) => {
                            self.metrics.restore_skipped.inc();
                            tracing::error!(partition = p, offset = m.offset(), error = %e, "unreadable changelog record skipped");
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
            self.metrics.restores.get_or_create(&KindLabel { kind: "restored" }).inc();
            tracing::info!(partition = p, keys = state.len(), "state restored");
            self.engine.install(p, state);
        }
        tracing::info!(records, took_ms = started.elapsed().as_millis() as u64, "restore finished");
        Ok(())
    }

    /// Lag against the last stable offset, so transaction markers do not leave 1.
    fn update_lag(&self, stats: &HashMap<(String, i32), PartitionStats>) {
        for (topic, physical) in &self.names.inputs {
            for p in self.engine.owned() {
                let Some(s) = stats.get(&(physical.clone(), p)) else { continue };
                if s.ls_offset < 0 {
                    continue;
                }
                let position = self.positions.get(&(*topic, p)).copied().unwrap_or(0).max(s.app_offset);
                let lag = (s.ls_offset - position).max(0);
                self.metrics.lag.get_or_create(&TopicPartitionLabel { topic: (*topic).into(), partition: p }).set(lag);
            }
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

    #[test]
    fn fencing_and_authorization_are_fatal_the_rest_transient() {
        for code in [
            RDKafkaErrorCode::ProducerFenced,
            RDKafkaErrorCode::Fenced,
            RDKafkaErrorCode::TransactionalIdAuthorizationFailed,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::Fatal,
        ] {
            let e = LoopError::kafka("x", KafkaError::MessageProduction(code));
            assert!(e.is_fatal(), "{code:?}");
        }
        for code in
            [RDKafkaErrorCode::RequestTimedOut, RDKafkaErrorCode::NotLeaderForPartition, RDKafkaErrorCode::QueueFull]
        {
            let e = LoopError::kafka("x", KafkaError::MessageProduction(code));
            assert!(!e.is_fatal(), "{code:?}");
        }
        assert!(!LoopError::Injected("hook".into()).is_fatal());
        assert!(!LoopError::Stopped.is_fatal());
    }
}
