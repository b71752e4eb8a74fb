//! The Kafka loop: one consumer (range assignor, read_committed) and one
//! transactional producer per instance, KIP-447 style.
//!
//! A transaction is opened on the first input or due timer and carries the
//! derived records, DLQ records, changelog records and the consumed offsets
//! (`send_offsets_to_transaction` with the group metadata). It commits every
//! `commit_interval` or `commit_max_records` inputs, before partitions are
//! revoked, and on shutdown; a stateless processor's due commit runs in the
//! background while the next transaction fills, begun at the broker once the
//! commit has ended (`producer`). A transient error aborts it, rewinds the
//! consumer to the committed offsets and drops the pending state, then
//! retries with exponential backoff; a fatal one ends the process, unless
//! the broker merely ended a transaction that outlived its timeout, which a
//! fresh producer cures.
//!
//! By role, as Kafka Streams splits StreamThread: this file holds the types,
//! start-up and the loop, whose step runs the named phases in order
//! (assignment, poll, process, timers, commit); `process` the process and
//! timer phases, with event-time input order (`crate::order`);
//! `producer` the transactional producer (begin, send, commit, the one
//! abort path, which renews a producer the broker ended: StreamsProducer),
//! with `committer` the thread its background commits run on; `translator`
//! the thread a stateless processor's records are translated on, ahead of
//! the loop; `names` the topics' names on the cluster;
//! `transactions` what goes into a transaction (outputs, DLQ, changelog,
//! offsets) and the rewind after an abort; `assignment` partitions coming and going
//! (committed offsets, the task lifecycle of `crate::lifecycle`, revocation,
//! lag: TaskManager); `restore` reading state back in slices between polls,
//! with the inputs of the partitions being restored paused
//! (StoreChangelogReader), and `snapshots` the local state snapshots a clean
//! stop writes and a restore checks (Kafka Streams' checkpoint file);
//! `contexts` librdkafka's callbacks. Test hooks are `crate::hooks`, compiled
//! only with the `test-hooks` feature.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, Offset};
use sagastream_registry::avro::AvroCodec;
use sagastream_topics::ContentType;

use crate::changelog::Entry;
use crate::config::{Config, Scope};
use crate::engine::{Engine, EngineConfig, OutputFormat};
use crate::events::InternalEvent;
use crate::hooks::TestHooks;
use crate::http::{Health, Phase};
use crate::lifecycle::Tasks;
use crate::metrics::{KindLabel, Metrics};
use crate::order::{InputOrder, Lanes};
use crate::processor::Processor;

mod assignment;
mod committer;
mod contexts;
mod errors;
mod names;
mod own_writes;
mod process;
mod producer;
mod restore;
mod snapshots;
mod transactions;
mod translator;

use contexts::{LoopContext, RestoreContext};
pub use errors::LoopError;
use errors::{is_fatal, is_retriable};
use names::{check_topics, Names};
use producer::TxnProducer;

const TIMEOUT: Duration = Duration::from_secs(30);
const TIMERS_PER_ITERATION: usize = 1000;
const RETRIES: u32 = 5;
/// Inputs buffered for event-time order before the oldest goes regardless
/// (about 15 MB of CloudEvents records).
const ORDER_BUFFER: usize = 20_000;
/// Records handled back to back, polled without waiting, before the loop
/// looks at the clock again (heartbeat, timers, commit interval, lag): the
/// clock reads cost more than a saga step.
const BURST: u32 = 64;
/// How often the loop says, in one INFO line, that it runs and what it
/// holds: an idle instance is otherwise silent, and a stalled one looks the same.
const ALIVE_EVERY: Duration = Duration::from_secs(30);
/// The loop not coming round for this long is logged, with its phase.
const STALL_WARNING: Duration = Duration::from_secs(15);
/// A fenced producer is renewed at most this often in this long.
const RENEWALS: usize = 3;
const RENEWAL_WINDOW: Duration = Duration::from_secs(300);

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
    producer: TxnProducer,
    restorer: BaseConsumer<RestoreContext>,
    names: Names,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stop: Arc<AtomicBool>,
    commit_interval: Duration,
    commit_max_records: usize,
    /// Next offset to process, per owned input partition.
    positions: BTreeMap<(&'static str, i32), i64>,
    /// Offsets as of the last commit (`None`: the group has none yet).
    committed: BTreeMap<(&'static str, i32), Option<i64>>,
    pending_assignment: Option<Assignment>,
    /// Inputs waiting for their turn under event-time order (`None`: arrival order).
    lanes: Option<Lanes<process::Pending>>,
    /// What the open transaction wrote to the instance's own input
    /// partitions: their end is not judged until the commit, and they may
    /// call for an early one.
    own: own_writes::OwnWrites,
    /// The clock as of the start of this burst of records: exact enough for
    /// input-order idleness, and no clock read per record.
    tick: Instant,
    suspended: HashMap<i32, Suspended<P::State>>,
    /// Every task's place in its lifecycle (created, restoring, running, suspended).
    tasks: Tasks,
    /// The log end over time per owned input partition, for lag in seconds.
    ends: HashMap<(&'static str, i32), crate::lag::EndHistory>,
    hooks: TestHooks,
    repartitioned_total: usize,
    outputs_total: usize,
    /// Set by a rebalance callback that hit a fatal error.
    fatal: Option<LoopError>,
    /// Records of the transaction opened while a commit is in flight.
    staged: Vec<transactions::Staged>,
    spare: Vec<transactions::Staged>,
    /// What the commit in flight commits, per input partition.
    inflight_offsets: Vec<((&'static str, i32), i64)>,
    /// Translates polled records ahead of the loop: a stateless processor's,
    /// with no repartition step and no event-time buffering.
    translator: Option<translator::Translator>,
    /// The restore under way, read a slice per turn of the loop.
    restoring: Option<restore::Restoring<P::State>>,
    /// Where state snapshots are kept (`--state-dir`).
    state_dir: Option<std::path::PathBuf>,
    /// When the assignment being taken up was given (the rebalance), until
    /// all its partitions run.
    assigned_at: Option<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock already ends the process; the data is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the processor until SIGTERM/SIGINT (Ok) or a fatal error.
pub fn run<P: Processor>(processor: P, config: Config) -> Result<(), LoopError> {
    let spec = processor.spec();
    let metrics = Arc::new(Metrics::new(spec.name, spec.version));
    let health = Arc::new(Health::new(Duration::from_secs(60)).reporting_to(metrics.ready.clone()));
    let bound = crate::http::serve(config.metrics_addr, metrics.clone(), health.clone())
        .map_err(|e| LoopError::Setup(format!("cannot serve metrics on {}: {e}", config.metrics_addr)))?;
    tracing::info!(addr = %bound, "serving /metrics, /healthz, /readyz");
    crate::http::watch(health.clone(), metrics.clone(), STALL_WARNING)
        .map_err(|e| LoopError::Setup(format!("cannot start the stall watch: {e}")))?;

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
        partitions: physical.keys().map(|t| (*t, config.topic(t).partitions)).collect(),
        physical,
    };

    let mut producer_config = config.settings.producer();
    producer_config
        .set("transactional.id", &config.transactional_id)
        .set("transaction.timeout.ms", config.transaction_timeout.as_millis().to_string());
    apply(&mut producer_config, &config, Scope::Producer);
    let deliveries = Arc::new(own_writes::Deliveries::default());
    let producer = TxnProducer::create(
        producer_config,
        config.transaction_timeout,
        metrics.clone(),
        health.clone(),
        deliveries.clone(),
    )?;
    check_topics(&producer, &config, &names)?;
    producer.init(&format!("initialising transactional.id {}", config.transactional_id))?;
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

    metrics.expect_emitted(spec.outputs.iter().flat_map(|t| config.topic(t).events.iter().map(|e| e.as_str())));
    let output_formats = spec
        .outputs
        .iter()
        .map(|t| {
            let topic = config.topic(t);
            let format = match topic.content_type {
                ContentType::Json => OutputFormat::Json(topic.content_mode),
                ContentType::Avro => OutputFormat::Avro { subject_topic: config.physical(t) },
            };
            (*t, format)
        })
        .collect::<HashMap<&'static str, _>>();
    let avro = match &config.schema_registry_url {
        Some(url) => {
            let codec = AvroCodec::new(url)
                .map_err(|e| LoopError::Setup(format!("the schema registry client for {url}: {e}")))?;
            tracing::info!(url = %url, "reading and writing Avro through the schema registry");
            Some(Arc::new(codec))
        }
        None => None,
    };
    // One input topic has nothing to interleave: no buffering at all.
    let lanes = match config.input_order {
        InputOrder::EventTime { max_idle } if spec.inputs.len() > 1 => {
            Some(Lanes::new(spec.inputs.clone(), max_idle, ORDER_BUFFER))
        }
        _ => None,
    };
    let translate_ahead = spec.changelog.is_none() && spec.repartitions.is_empty() && lanes.is_none();
    let engine = Engine::new(
        processor,
        EngineConfig { group: config.group_id.clone(), dedup_window: config.dedup_window, output_formats, avro },
        metrics.clone(),
    );
    let translator = match translate_ahead {
        true => Some(translator::Translator::start(engine.processor())?),
        false => None,
    };
    let core = Arc::new(Mutex::new(Core {
        engine,
        producer,
        restorer,
        names,
        metrics: metrics.clone(),
        health: health.clone(),
        stop: stop.clone(),
        commit_interval: config.commit_interval,
        commit_max_records: config.commit_max_records,
        positions: BTreeMap::new(),
        committed: BTreeMap::new(),
        pending_assignment: None,
        lanes,
        own: own_writes::OwnWrites::new(deliveries),
        tick: Instant::now(),
        suspended: HashMap::new(),
        tasks: Tasks::default(),
        ends: HashMap::new(),
        hooks: config.hooks.clone(),
        repartitioned_total: 0,
        outputs_total: 0,
        fatal: None,
        staged: Vec::new(),
        spare: Vec::new(),
        inflight_offsets: Vec::new(),
        translator,
        restoring: None,
        state_dir: config.state_dir.clone(),
        assigned_at: None,
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

fn run_loop<P: Processor>(
    consumer: &BaseConsumer<LoopContext<P>>,
    core: &Arc<Mutex<Core<P>>>,
    stats: &Arc<Mutex<HashMap<(String, i32), PartitionStats>>>,
    stop: &AtomicBool,
    backoff_max: Duration,
) -> Result<(), LoopError> {
    let c_health = lock(core).health.clone();
    let mut backoff = Duration::from_millis(100);
    let mut last_lag = Instant::now();
    let mut last_alive = Instant::now();
    let mut burst = 0;
    loop {
        let timeout = match burst {
            0 => {
                let mut c = lock(core);
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
            c.abandon_restore(consumer)?;
            // The committed state is the changelog's up to its end now.
            c.write_snapshots();
            return Ok(());
        }
        c_health.enter(Phase::Poll);
        let message = consumer.poll(timeout);
        c_health.enter(Phase::Process);
        let mut c = lock(core);
        let mut result = match c.fatal.take() {
            Some(e) => Err(e),
            None => Ok(()),
        };
        let got = matches!(message, Some(Ok(_)));
        // Nothing came within a wait: the loop has nothing to do.
        let idle = message.is_none() && !timeout.is_zero();
        burst = match got && burst + 1 < BURST && !c.commit_due_by_count() {
            true => burst + 1,
            false => 0,
        };
        result = result.and_then(|()| c.step(consumer, message, burst == 0, idle));
        if burst == 0 && last_lag.elapsed() >= Duration::from_secs(1) {
            c.update_lag(&lock(stats));
            last_lag = Instant::now();
            c.health.enter(Phase::Markers);
            result = result.and_then(|()| c.advance_past_markers(consumer));
        }
        if burst == 0 && last_alive.elapsed() >= ALIVE_EVERY {
            c.alive().emit(&c.metrics);
            last_alive = Instant::now();
        }
        match result {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                // Every failure ends the open transaction the same way; a
                // producer the broker ended is renewed there.
                let ended = match c.abort(consumer) {
                    Ok(ended) => ended,
                    Err(abort) => return Err(if e.is_fatal() { e } else { abort }),
                };
                if e.is_fatal() {
                    if !ended.renewed {
                        return Err(e);
                    }
                    // Cured: the fresh producer goes on at once.
                    (burst, backoff) = (0, Duration::from_millis(100));
                    continue;
                }
                c.metrics.errors.get_or_create(&KindLabel { kind: e.retried_kind() }).inc();
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "transaction failed; aborted, retrying");
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
    fn alive(&self) -> crate::events::LoopAlive {
        crate::events::LoopAlive {
            owned: self.engine.owned().len(),
            buffered: self.lanes.as_ref().map_or(0, |l| l.buffered()),
            open_transaction_ms: self.producer.open().map(|t| t.started.elapsed().as_millis() as u64),
            outputs_total: self.outputs_total,
        }
    }

    fn poll_timeout(&mut self) -> Duration {
        self.tick = Instant::now();
        let mut t = self.wait_for_work();
        if let Some(txn) = self.producer.open() {
            let age = txn.started.elapsed();
            t = t.min(self.commit_interval.saturating_sub(age));
            if !self.own.is_empty() {
                // Back at the early-commit floor, and from then on after a
                // short wait: nothing coming in is what `idle` means there.
                let floor = self.commit_interval / own_writes::OwnWrites::EARLY_FLOOR;
                t = t.min(floor.saturating_sub(age).max(Duration::from_millis(1)));
            }
        }
        if self.is_restoring() {
            // The loop comes back for the next slice of the restore at once
            // when the inputs are quiet; not at zero, which would spin
            // while both wait for a fetch.
            return t.min(Duration::from_millis(1));
        }
        if self.producer.in_flight() || self.translator.as_ref().is_some_and(|t| t.in_flight() > 0) {
            // Their end lets records go on.
            t = t.min(Duration::from_millis(1));
        }
        t
    }

    fn commit_due_by_count(&self) -> bool {
        self.producer.open().is_some_and(|txn| txn.inputs >= self.commit_max_records)
    }

    /// One iteration after a poll: restore new partitions, process the
    /// message and, with `housekeeping`, fire due timers and commit when it
    /// is time (`idle`: the poll waited and nothing came).
    fn step<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        message: Option<Result<BorrowedMessage<'_>, KafkaError>>,
        housekeeping: bool,
        idle: bool,
    ) -> Result<(), LoopError> {
        if let Some((partitions, sources)) = self.pending_assignment.take() {
            if let Err(e) = self.assign(consumer, partitions.clone(), &sources) {
                // Retried after the backoff; nothing of these partitions is
                // processed meanwhile. The record this poll returned is not
                // processed either: put the consumer back on it, or the
                // position would have moved past an input nobody handled.
                self.pending_assignment = Some((partitions, sources));
                if let Some(Ok(m)) = &message {
                    if let Err(seek) = consumer.seek(m.topic(), m.partition(), Offset::Offset(m.offset()), TIMEOUT) {
                        return Err(LoopError::kafka(
                            format!("putting the consumer back on {}[{}] after: {e}", m.topic(), m.partition()),
                            seek,
                        ));
                    }
                }
                return Err(e);
            }
        }
        self.take_translated(false)?;
        match message {
            None => {
                // An empty poll is not the hot path: the exact time.
                if let Some(lanes) = self.lanes.as_mut() {
                    lanes.starved(Instant::now());
                }
            }
            Some(Ok(m)) => self.on_message(consumer, &m)?,
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) if is_fatal(&e) => return Err(LoopError::kafka("consuming", e)),
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error; librdkafka retries it"),
        }
        if !housekeeping {
            return Ok(());
        }
        if self.is_restoring() {
            self.restore_step(consumer)?;
        }
        if let Some(t) = self.translator.as_mut() {
            // The end of a burst: what it read goes over now, however few.
            t.flush()?;
        }
        if self.producer.in_flight_ended() {
            self.settle()?;
            self.resume()?;
        }
        // A task held back by a silent lane may go once max_idle has passed.
        self.drain_lanes(consumer)?;
        self.health.enter(Phase::Timers);
        self.fire_timers(consumer)?;
        if let Some(txn) = self.producer.open() {
            let age = txn.started.elapsed();
            if age >= self.commit_interval || txn.inputs >= self.commit_max_records {
                self.commit_due(consumer)?;
            } else if let Some(why) = self.own.early(age, self.commit_interval, idle, |topic, partition| {
                sagastream_kafka::fetched_high_watermark(consumer.client(), self.names.physical(topic), partition)
            }) {
                self.commit_due(consumer)?;
                crate::events::EarlyCommit { reason: why.label(), age }.emit(&self.metrics);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
