//! Partitions coming and going: the group's committed offsets (held back by
//! an open transaction), each task's lifecycle, giving partitions up on
//! revocation, and the lag gauge. Reading state back is `restore`'s.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::{Core, LoopError, PartitionStats, Suspended, TIMEOUT};
use crate::lifecycle::TaskState;
use crate::metrics::{KindLabel, TopicPartitionLabel};
use crate::processor::Processor;

impl<P: Processor> Core<P> {
    /// The group's committed offsets for an assignment. The broker holds
    /// them back while a transaction that carries offsets for these
    /// partitions is open: a previous owner's that crashed or hangs
    /// mid-transaction. Starting before it ends would process its inputs a
    /// second time; the broker aborts it within that producer's transaction
    /// timeout, and the wait is reported while it lasts.
    pub(super) fn committed_offsets<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: TopicPartitionList,
    ) -> Result<TopicPartitionList, LoopError> {
        const SLICE: Duration = Duration::from_secs(2);
        let started = Instant::now();
        let limit = self.producer.transaction_timeout() + TIMEOUT;
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
                        transaction_timeout_ms = self.producer.transaction_timeout().as_millis() as u64,
                        "waiting for the committed offsets: an open transaction holds them (a previous owner \
                         crashed or hangs mid-transaction); the broker aborts it within its transaction timeout"
                    );
                }
                Err(e) => return Err(LoopError::kafka("reading committed offsets", e)),
            }
        }
    }

    /// Revocation: commit what is in flight (or abort it when the
    /// assignment is lost), then give the partitions up, keeping their
    /// committed state aside in case they come straight back.
    pub(super) fn on_revoke<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        lost: bool,
    ) -> Result<(), LoopError> {
        self.health.set_ready(false);
        if let Some(t) = self.translator.as_mut() {
            // Records on their way for these partitions are read again by their next owner.
            t.forget();
        }
        self.abandon_restore(consumer)?;
        let mut keep = !lost;
        // An abort that fails for good (the producer cannot go on, and no
        // fresh one cures it) is reported after the partitions are released.
        let mut fatal = None;
        // A commit in flight that failed leaves its transaction open again,
        // while inputs processed after it wait with their records unsent:
        // committing it now would commit their offsets without them, so it
        // is aborted below instead.
        let settled = self.settle();
        if self.producer.open().is_some() {
            // A lost assignment is owned by another member already: its offsets cannot commit.
            let committed = match settled {
                _ if lost => Err("the assignment was lost".to_owned()),
                Err(e) => Err(format!("the commit in flight failed: {e}")),
                Ok(()) => self.commit(consumer).map_err(|e| e.to_string()),
            };
            if let Err(reason) = committed {
                tracing::warn!(%reason, lost, "could not commit before revocation; aborting");
                if let Err(e) = self.producer.abort() {
                    fatal = Some(e);
                }
                self.drop_uncommitted(true);
                keep = false;
            }
        }
        if keep {
            if let Some(topic) = self.names.changelog.clone() {
                // Best effort: a changelog end not read means a full restore later.
                let _ = self.refresh_changelog_leaders(&topic);
            }
        }
        for partition in self.engine.owned() {
            if let Some(lanes) = self.lanes.as_mut() {
                lanes.revoke(partition);
            }
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
                self.task(partition, TaskState::Suspended)?;
            } else {
                self.task(partition, TaskState::Closed)?;
            }
        }
        // Assigned but never taken up (its assignment kept failing).
        for partition in self.tasks.in_state(TaskState::Created) {
            self.task(partition, TaskState::Closed)?;
        }
        self.positions.clear();
        self.committed.clear();
        self.metrics.assigned_partitions.set(0);
        self.metrics.lag.clear();
        fatal.map_or(Ok(()), Err)
    }

    /// Moves a task in its lifecycle; an illegal move is a runtime bug and stops the instance.
    pub(super) fn task(&mut self, partition: i32, to: TaskState) -> Result<(), LoopError> {
        self.tasks.transition(partition, to).map_err(|e| LoopError::Setup(format!("internal: {e}")))
    }

    /// Asks any live broker who leads the changelog's partitions. The restore
    /// consumer is idle between assignments, so its metadata can still name
    /// a leader that died since (a broker failover): its offset requests then
    /// wait on a connection that never comes until librdkafka's periodic
    /// refresh, minutes later (seen: four minutes of 30 s timeouts).
    pub(super) fn refresh_changelog_leaders(&self, topic: &str) -> Result<(), LoopError> {
        self.restorer
            .fetch_metadata(Some(topic), TIMEOUT)
            .map(|_| ())
            .map_err(|e| LoopError::kafka(format!("reading the leaders of {topic}"), e))
    }

    pub(super) fn changelog_end(&self, partition: i32) -> Option<i64> {
        let topic = self.names.changelog.as_ref()?;
        // Short: on failure the partition is restored in full rather than kept,
        // and a revocation must not wait long on one partition.
        self.restorer.fetch_watermarks(topic, partition, Duration::from_secs(5)).ok().map(|(_, high)| high)
    }

    /// Assignment: take back suspended partitions whose changelog and
    /// offsets nobody moved meanwhile; begin restoring the others (they run
    /// once their state is read, the rest of the loop going on meanwhile).
    pub(super) fn assign<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        partitions: Vec<i32>,
        sources: &[(&'static str, i32)],
    ) -> Result<(), LoopError> {
        self.hooks.before_assignment()?;
        if let Some(t) = self.translator.as_mut() {
            // Assigned partitions start from their committed offsets.
            t.forget();
        }
        let started = Instant::now();
        for p in &partitions {
            // Suspended ones are decided below; Created ones are a retry;
            // any other state is a bug the next move reports.
            if self.tasks.state(*p) == TaskState::Closed {
                self.task(*p, TaskState::Created)?;
            }
        }
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
        let mut kept = Vec::new();
        for p in &partitions {
            let now: BTreeMap<&'static str, Option<i64>> =
                self.names.inputs.iter().map(|(t, _)| (*t, committed.get(&(*t, *p)).copied().flatten())).collect();
            match self.suspended.remove(p) {
                // Kept only when the changelog's end was read both times and
                // did not move (an end that could not be read proves nothing).
                Some(s)
                    if s.committed == now
                        && (self.names.changelog.is_none() || s.changelog_end.is_some())
                        && s.changelog_end == self.changelog_end(*p) =>
                {
                    self.metrics.restores.get_or_create(&KindLabel { kind: "kept" }).inc();
                    self.task(*p, TaskState::Running)?;
                    self.engine.install(*p, s.state);
                    kept.push(*p);
                }
                _ => {
                    self.task(*p, TaskState::Restoring)?;
                    to_restore.push(*p);
                }
            }
        }
        for (p, _) in std::mem::take(&mut self.suspended) {
            self.task(p, TaskState::Closed)?;
        }
        for (tp, offset) in &committed {
            if let Some(o) = offset {
                self.positions.insert(*tp, *o);
            }
            self.committed.insert(*tp, *offset);
        }
        if let Some(lanes) = self.lanes.as_mut() {
            for p in &kept {
                lanes.assign(*p, Instant::now());
            }
        }
        let begun = self
            .pause_inputs(consumer, kept.iter().copied(), false)
            .and_then(|()| self.begin_restore(consumer, &to_restore, &committed));
        if let Err(e) = begun {
            self.undo_assignment(consumer, &partitions)?;
            return Err(e);
        }
        self.metrics.assigned_partitions.set(self.engine.owned().len() as i64);
        let restoring = self.tasks.in_state(TaskState::Restoring);
        if restoring.is_empty() {
            self.all_running();
        }
        tracing::info!(
            partitions = ?partitions,
            kept = ?kept,
            restoring = ?restoring,
            took_ms = started.elapsed().as_millis() as u64,
            "partitions assigned; those restoring run once their state is read"
        );
        Ok(())
    }

    /// Every partition of the assignment runs: ready, and how long it took.
    pub(super) fn all_running(&mut self) {
        self.health.set_ready(true);
        if let Some(at) = self.assigned_at.take() {
            self.metrics.assignment_ready.set(at.elapsed().as_secs_f64());
        }
    }

    /// An assignment that could not be taken up is taken up again whole
    /// after the backoff: what was kept or restored of it meanwhile goes
    /// (restored again then: rare, and always correct), and its inputs wait
    /// paused.
    fn undo_assignment<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        partitions: &[i32],
    ) -> Result<(), LoopError> {
        if self.restoring.take().is_some() {
            let _ = self.restorer.unassign();
        }
        for p in partitions {
            if let Some(lanes) = self.lanes.as_mut() {
                lanes.revoke(*p);
            }
            self.engine.remove(*p);
            match self.tasks.state(*p) {
                TaskState::Running => {
                    self.task(*p, TaskState::Closed)?;
                    self.task(*p, TaskState::Created)?;
                }
                TaskState::Restoring => self.task(*p, TaskState::Created)?,
                _ => {}
            }
        }
        self.metrics.restoring_partitions.set(0);
        self.metrics.assigned_partitions.set(self.engine.owned().len() as i64);
        if self.names.changelog.is_some() {
            let _ = self.pause_inputs(consumer, partitions.iter().copied(), true);
        }
        Ok(())
    }

    /// Lag against the last stable offset, so transaction markers do not leave 1.
    /// Lag in records and in seconds (`crate::lag`) per owned input partition.
    pub(super) fn update_lag(&mut self, stats: &HashMap<(String, i32), PartitionStats>) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let owned = self.engine.owned();
        self.ends.retain(|(_, p), _| owned.contains(p));
        for (topic, physical) in &self.names.inputs {
            for &p in &owned {
                let Some(s) = stats.get(&(physical.clone(), p)) else { continue };
                if s.ls_offset < 0 {
                    continue;
                }
                let position = self.positions.get(&(*topic, p)).copied().unwrap_or(0).max(s.app_offset);
                let label = TopicPartitionLabel { topic: (*topic).into(), partition: p };
                self.metrics.lag.get_or_create(&label).set((s.ls_offset - position).max(0));
                let ends = self.ends.entry((*topic, p)).or_default();
                ends.record(now_ms, s.ls_offset);
                self.metrics.lag_seconds.get_or_create(&label).set(ends.lag_ms(now_ms, position) as f64 / 1000.0);
            }
        }
    }
}
