//! Reading state back: the changelog partitions of an assignment are read to
//! their end (read_committed: the last stable offset) with a consumer of
//! their own, and the state installed is the one as of the committed input
//! offsets (Kafka Streams' StoreChangelogReader).
//!
//! A restore does not hold the loop: the input partitions being restored
//! are paused on the group's consumer (from the rebalance callback on, so
//! none of their records is fetched), the loop goes on polling (so the
//! group never sees a member past `max.poll.interval.ms`) and processing
//! the partitions that run, and each turn of the loop reads a slice of the
//! changelog. A partition runs as soon as its own changelog is read.
//!
//! A local snapshot (`crate::snapshot`, written when the instance last
//! stopped cleanly; checked in `snapshots`) stands in for the changelog up
//! to its offset; only what was written after it is read.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::{is_fatal, Core, LoopError, TIMEOUT};
use crate::changelog::{self, Entry};
use crate::engine::Engine;
use crate::events::{ChangelogRecordSkipped, InternalEvent, PartitionRestored, SnapshotRejected};
use crate::lifecycle::TaskState;
use crate::metrics::PartitionLabel;
use crate::processor::Processor;

/// How long one turn of the loop reads the changelog while other
/// partitions run, and while none does (the loop still comes round to
/// poll the group, serve a rebalance and notice a signal).
const SLICE: Duration = Duration::from_millis(20);
const IDLE_SLICE: Duration = Duration::from_millis(200);

/// The group's committed input offsets of an assignment.
pub(super) type Committed = BTreeMap<(&'static str, i32), Option<i64>>;

/// A partition's state from its snapshot, and the changelog offset to read on from.
type Snapshot<S> = (HashMap<String, Entry<S>>, i64);

/// A restore under way.
pub(super) struct Restoring<S> {
    topic: String,
    committed: Committed,
    partitions: BTreeMap<i32, PartitionRestore<S>>,
    records: u64,
    started: Instant,
    last_log: Instant,
}

pub(super) struct PartitionRestore<S> {
    state: HashMap<String, Entry<S>>,
    /// The changelog's end when the restore began.
    end: i64,
    started: Instant,
    /// Changelog records read for it.
    records: u64,
    /// `snapshot` or `restored` (from the changelog's beginning).
    kind: &'static str,
}

impl<P: Processor> Core<P> {
    /// Starts restoring `partitions` (tasks in `Restoring`, inputs paused):
    /// each one's snapshot is taken if it checks out, the changelog after it
    /// (or all of it) is assigned to the restore consumer, and the loop reads
    /// it in slices (`restore_step`). Partitions with nothing to read run at once.
    pub(super) fn begin_restore<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        partitions: &[i32],
        committed: &Committed,
    ) -> Result<(), LoopError> {
        let Some(topic) = self.names.changelog.clone() else {
            // No state: nothing was paused, nothing to read.
            for p in partitions {
                self.engine.install(*p, HashMap::new());
                self.task(*p, TaskState::Running)?;
            }
            return Ok(());
        };
        if partitions.is_empty() {
            return Ok(());
        }
        // A partition's restore time includes checking and reading its snapshot.
        let began = Instant::now();
        // Paused from the rebalance callback on already; again here, so no
        // resume since (an abandoned restore's) lets them be fetched.
        self.pause_inputs(consumer, partitions.iter().copied(), true)?;
        self.health.enter(crate::http::Phase::Restore);
        self.refresh_changelog_leaders(&topic)?;
        let mut marks = BTreeMap::new();
        for p in partitions {
            let (low, high) = self
                .restorer
                .fetch_watermarks(&topic, *p, TIMEOUT)
                .map_err(|e| LoopError::kafka(format!("reading the end of {topic}[{p}]"), e))?;
            marks.insert(*p, (low, high));
        }
        let mut loaded = self.load_snapshots(&topic, &marks, committed)?;
        let mut restoring = Restoring {
            topic: topic.clone(),
            committed: committed.clone(),
            partitions: BTreeMap::new(),
            records: 0,
            started: Instant::now(),
            last_log: Instant::now(),
        };
        let mut tpl = TopicPartitionList::new();
        let mut ready = Vec::new();
        let mut to_read = 0;
        for p in partitions {
            let (low, high) = marks[p];
            let (state, from, kind) = match loaded.remove(p) {
                Some((state, end)) => (state, end, "snapshot"),
                None => (HashMap::new(), low, "restored"),
            };
            let remaining = (high - from).max(0);
            self.metrics.restore_remaining.get_or_create(&PartitionLabel { partition: *p }).set(remaining);
            let task = PartitionRestore { state, end: high, started: began, records: 0, kind };
            if remaining > 0 {
                to_read += remaining;
                tpl.add_partition_offset(&topic, *p, Offset::Offset(from))
                    .map_err(|e| LoopError::kafka("restore", e))?;
                restoring.partitions.insert(*p, task);
            } else {
                ready.push((*p, task));
            }
        }
        self.assign_restorer(&tpl).map_err(|e| LoopError::kafka("assigning the changelog", e))?;
        self.metrics.restoring_partitions.set(restoring.partitions.len() as i64);
        for (p, task) in ready {
            self.finish_partition(consumer, p, task)?;
        }
        if restoring.partitions.is_empty() {
            let _ = self.restorer.unassign();
        } else {
            tracing::info!(
                partitions = ?restoring.partitions.keys().collect::<Vec<_>>(),
                records = to_read,
                "restoring state; the other partitions run meanwhile"
            );
            self.restoring = Some(restoring);
        }
        Ok(())
    }

    /// Assigns the restore consumer these changelog partitions, read from
    /// the offsets given. A partition a restore paused when it reached its
    /// end stays paused in librdkafka through an unassign and the next
    /// assign: resumed here, or it would never be read again.
    pub(super) fn assign_restorer(&self, tpl: &TopicPartitionList) -> Result<(), KafkaError> {
        self.restorer.assign(tpl)?;
        self.restorer.resume(tpl)
    }

    /// Whether a restore is under way.
    pub(super) fn is_restoring(&self) -> bool {
        self.restoring.is_some()
    }

    /// One slice of the restore: reads changelog records for up to
    /// [`SLICE`] (or [`IDLE_SLICE`] with nothing running), and puts each
    /// partition whose end it reached into service.
    pub(super) fn restore_step<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), LoopError> {
        let Some(mut r) = self.restoring.take() else { return Ok(()) };
        let result = self.read_slice(consumer, &mut r);
        self.metrics.restoring_partitions.set(r.partitions.len() as i64);
        if result.is_ok() && r.partitions.is_empty() {
            let _ = self.restorer.unassign();
            tracing::info!(records = r.records, took_ms = r.started.elapsed().as_millis() as u64, "restore finished");
        } else {
            self.restoring = Some(r);
        }
        result
    }

    fn read_slice<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        r: &mut Restoring<P::State>,
    ) -> Result<(), LoopError> {
        self.health.enter(crate::http::Phase::Restore);
        let idle = self.engine.owned().is_empty();
        let slice_end = Instant::now() + if idle { IDLE_SLICE } else { SLICE };
        // With nothing else to do the loop may wait here for the next fetch.
        let wait = if idle { Duration::from_millis(100) } else { Duration::ZERO };
        // A signal is the loop's to handle (it commits what runs); the restore just yields.
        while !self.stop.load(Ordering::Relaxed) {
            match self.restorer.poll(wait) {
                None => break,
                Some(Ok(m)) => {
                    r.records += 1;
                    self.hooks.after_restored_record();
                    let p = m.partition();
                    let Some(task) = r.partitions.get_mut(&p) else { continue };
                    task.records += 1;
                    let headers = m.headers();
                    let header =
                        |name: &str| headers.and_then(|hs| hs.iter().find(|h| h.key == name).and_then(|h| h.value));
                    match changelog::decode_parts::<P::State>(m.key(), m.payload(), header) {
                        Ok(change) => {
                            let known = |t: &str| {
                                self.names
                                    .inputs
                                    .iter()
                                    .find(|(l, _)| *l == t)
                                    .and_then(|(l, _)| r.committed.get(&(*l, p)).copied().flatten())
                            };
                            if changelog::is_committed(&change.positions, known) {
                                self.metrics.restored_records.inc();
                                Engine::<P>::restore_into(&mut task.state, change);
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
                    if task.records % 1024 == 0 {
                        self.metrics
                            .restore_remaining
                            .get_or_create(&PartitionLabel { partition: p })
                            .set((task.end - m.offset() - 1).max(0));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(task) = r.partitions.remove(&p) {
                        // Nothing more of it is wanted from the changelog.
                        let mut done = TopicPartitionList::new();
                        done.add_partition(&r.topic, p);
                        let _ = self.restorer.pause(&done);
                        self.finish_partition(consumer, p, task)?;
                    }
                }
                Some(Err(e)) if is_fatal(&e) => return Err(LoopError::kafka("restoring", e)),
                Some(Err(e)) => tracing::warn!(error = %e, "changelog read error; retrying"),
            }
            self.health.beat();
            if r.partitions.is_empty() || Instant::now() >= slice_end {
                break;
            }
        }
        if r.last_log.elapsed() >= Duration::from_secs(10) {
            tracing::info!(records = r.records, remaining_partitions = r.partitions.len(), "restoring state");
            r.last_log = Instant::now();
        }
        Ok(())
    }

    /// A partition whose changelog was read: its state goes into the
    /// engine, its task runs and its inputs are resumed.
    fn finish_partition<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        p: i32,
        task: PartitionRestore<P::State>,
    ) -> Result<(), LoopError> {
        let label = PartitionLabel { partition: p };
        let took = task.started.elapsed();
        self.metrics.restore_duration.get_or_create(&label).set(took.as_secs_f64());
        self.metrics.restore_remaining.get_or_create(&label).set(0);
        PartitionRestored { partition: p, keys: task.state.len(), kind: task.kind, records: task.records, took }
            .emit(&self.metrics);
        self.engine.install(p, task.state);
        self.task(p, TaskState::Running)?;
        if let Some(lanes) = self.lanes.as_mut() {
            lanes.assign(p, Instant::now());
        }
        self.pause_inputs(consumer, [p], false)?;
        self.metrics.assigned_partitions.set(self.engine.owned().len() as i64);
        if self.tasks.in_state(TaskState::Restoring).is_empty() {
            self.all_running();
        }
        Ok(())
    }

    /// Pauses (or resumes) every input partition of these partition numbers
    /// on the group's consumer. A pause drops what was fetched ahead for
    /// them; a resume fetches from where the consumer's position is.
    pub(super) fn pause_inputs<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        partitions: impl IntoIterator<Item = i32>,
        pause: bool,
    ) -> Result<(), LoopError> {
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            for (_, physical) in &self.names.inputs {
                tpl.add_partition(physical, p);
            }
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        let result = if pause { consumer.pause(&tpl) } else { consumer.resume(&tpl) };
        result.map_err(|e| LoopError::kafka(if pause { "pausing inputs to restore" } else { "resuming inputs" }, e))
    }

    /// Drops a restore under way (its partitions were revoked, or the
    /// assignment is taken up again); their tasks close.
    pub(super) fn abandon_restore<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<(), LoopError> {
        let Some(r) = self.restoring.take() else { return Ok(()) };
        let _ = self.restorer.unassign();
        self.metrics.restoring_partitions.set(0);
        // Resumed so that no pause outlives the assignment it was made for.
        let _ = self.pause_inputs(consumer, r.partitions.keys().copied(), false);
        for p in r.partitions.keys() {
            self.metrics.restore_remaining.remove(&PartitionLabel { partition: *p });
            self.task(*p, TaskState::Closed)?;
        }
        tracing::info!(
            partitions = ?r.partitions.keys().collect::<Vec<_>>(),
            records = r.records,
            "restore abandoned: its partitions were revoked"
        );
        Ok(())
    }

    /// Reads the snapshots that check out for these partitions; a snapshot
    /// that does not read back whole is rejected like one that does not
    /// check out.
    fn load_snapshots(
        &mut self,
        topic: &str,
        marks: &BTreeMap<i32, (i64, i64)>,
        committed: &Committed,
    ) -> Result<HashMap<i32, Snapshot<P::State>>, LoopError> {
        let candidates = self.snapshot_candidates(topic, marks, committed);
        let verified = self.verify_anchors(topic, candidates)?;
        let mut loaded = HashMap::new();
        for (p, result) in super::snapshots::load::<P::State>(verified) {
            match result {
                Ok(state) => {
                    loaded.insert(p, state);
                }
                Err(e) => SnapshotRejected { partition: p, reason: &e.to_string() }.emit(&self.metrics),
            }
        }
        Ok(loaded)
    }
}
