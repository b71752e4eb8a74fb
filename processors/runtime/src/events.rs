//! Observable events of the runtime, one struct each, after Vector's
//! `internal_events`: `emit` writes the log line and updates the metric
//! together, so no code path can count without logging or log without
//! counting, and the fields of both come from one place.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::metrics::{EventTypeLabel, IngestLabel, KindLabel, Metrics, ResultLabel, TopicLabel};

/// Something the runtime reports.
pub trait InternalEvent {
    fn emit(self, metrics: &Metrics);
}

/// An input handled without a DLQ record: `applied`, `ignored` (no state
/// change, no output), `own_output` (our own record read back),
/// `repartitioned`, `not_repartitioned`. Counted, not logged: one per input.
pub struct InputHandled {
    pub event_type: Cow<'static, str>,
    pub outcome: &'static str,
}

impl InternalEvent for InputHandled {
    fn emit(self, metrics: &Metrics) {
        metrics.processed(self.event_type, self.outcome);
    }
}

/// A record in another team's envelope was read: `translated` into a
/// CloudEvent, or refused with a DLQ class (the DLQ record logs the reason).
/// Counted per platform, First Viscount's "schema validation failures".
pub struct RecordTranslated {
    pub platform: &'static str,
    pub outcome: &'static str,
}

impl InternalEvent for RecordTranslated {
    fn emit(self, metrics: &Metrics) {
        tracing::trace!(platform = self.platform, outcome = self.outcome, "foreign record read");
        metrics.ingested.get_or_create(&IngestLabel { platform: self.platform, outcome: self.outcome }).inc();
    }
}

/// An input whose CloudEvent id was already applied for its key.
pub struct DuplicateDropped<'a> {
    pub key: &'a str,
    pub event_id: &'a str,
    pub event_type: &'static str,
}

impl InternalEvent for DuplicateDropped<'_> {
    fn emit(self, metrics: &Metrics) {
        tracing::debug!(key = self.key, event_id = self.event_id, "duplicate input dropped");
        metrics.duplicates.inc();
        metrics.processed(self.event_type, "duplicate");
    }
}

/// An input whose `sequence` is not above the last one applied for its key
/// (the sequence guard): dropped, like a duplicate.
pub struct StaleSequenceDropped<'a> {
    pub key: &'a str,
    pub event_id: &'a str,
    pub event_type: &'static str,
    pub sequence: u64,
    pub last: u64,
}

impl InternalEvent for StaleSequenceDropped<'_> {
    fn emit(self, metrics: &Metrics) {
        tracing::debug!(
            key = self.key,
            event_id = self.event_id,
            sequence = self.sequence,
            last = self.last,
            "stale sequence dropped"
        );
        metrics.processed(self.event_type, "stale_sequence");
    }
}

/// An input the processor refused (it goes to the DLQ: see [`DeadLettered`]).
pub struct InputRejected<'a> {
    pub key: &'a str,
    pub event_id: &'a str,
    pub event_type: Cow<'static, str>,
    pub class: &'a str,
    pub reason: &'a str,
}

impl InternalEvent for InputRejected<'_> {
    fn emit(self, metrics: &Metrics) {
        tracing::warn!(
            key = self.key,
            event_id = self.event_id,
            class = self.class,
            reason = self.reason,
            "input rejected"
        );
        metrics.processed(self.event_type, "rejected");
    }
}

/// A record written to the DLQ topic instead of being processed.
pub struct DeadLettered<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub stage: &'static str,
    pub class: &'a str,
    pub reason: &'a str,
}

impl InternalEvent for DeadLettered<'_> {
    fn emit(self, _: &Metrics) {
        tracing::warn!(
            topic = self.topic,
            partition = self.partition,
            offset = self.offset,
            stage = self.stage,
            class = self.class,
            reason = self.reason,
            "record sent to the DLQ"
        );
        // Counted when its transaction commits (`TransactionCommitted`): a
        // transaction that aborts and is retried sends it again.
    }
}

/// A timer that came due was handed to the processor: `applied`, or
/// `rejected` (its DLQ record follows).
pub struct TimerFired<'a> {
    pub key: &'a str,
    pub name: &'a str,
    pub due_ms: i64,
    pub outcome: &'static str,
}

impl InternalEvent for TimerFired<'_> {
    fn emit(self, metrics: &Metrics) {
        tracing::debug!(key = self.key, timer = self.name, due_ms = self.due_ms, outcome = self.outcome, "timer fired");
        metrics.timers_fired.inc();
        metrics.processed(format!("timer:{}", self.name), self.outcome);
    }
}

/// An input let go before every other input partition of its task was known.
pub struct InputOrderEnforced {
    pub topic: &'static str,
    pub partition: i32,
    /// `idle` or `full`.
    pub kind: &'static str,
}

impl InternalEvent for InputOrderEnforced {
    fn emit(self, metrics: &Metrics) {
        tracing::debug!(topic = self.topic, partition = self.partition, kind = self.kind, "input let go out of order");
        metrics.order_enforced.get_or_create(&KindLabel { kind: self.kind }).inc();
    }
}

/// The open transaction is committed before its interval is up: it wrote
/// to one of the processor's own inputs, where it holds reads back.
pub struct EarlyCommit {
    /// `held_back` or `read_back`.
    pub reason: &'static str,
    pub age: Duration,
}

impl InternalEvent for EarlyCommit {
    fn emit(self, metrics: &Metrics) {
        tracing::trace!(reason = self.reason, age_ms = self.age.as_millis() as u64, "committing early");
        metrics.early_commits.get_or_create(&crate::metrics::ReasonLabel { reason: self.reason }).inc();
    }
}

/// The records of a transaction opened while the previous one's commit was
/// in flight went to the broker once that commit had gone through.
pub struct HeldRecordsSent {
    pub records: usize,
}

impl InternalEvent for HeldRecordsSent {
    fn emit(self, metrics: &Metrics) {
        tracing::trace!(records = self.records, "sending the records held while a commit was in flight");
        metrics.held_records.inc_by(self.records as u64);
    }
}

/// A transaction committed: its inputs' effects are visible, once.
pub struct TransactionCommitted<'a> {
    pub inputs: usize,
    pub outputs: usize,
    /// Records produced, per topic (`topics.yaml` names).
    pub produced: &'a BTreeMap<&'static str, u64>,
    /// Events the processor emitted, per type.
    pub emitted: &'a BTreeMap<&'static str, u64>,
    /// DLQ records, per stage and class.
    pub dead: &'a BTreeMap<(&'static str, String), u64>,
    pub open_for: Duration,
    /// How long sending the consumed offsets took, and the whole commit.
    pub offsets_ms: u64,
    pub commit_ms: u64,
}

impl InternalEvent for TransactionCommitted<'_> {
    fn emit(self, metrics: &Metrics) {
        tracing::debug!(
            inputs = self.inputs,
            outputs = self.outputs,
            offsets_ms = self.offsets_ms,
            commit_ms = self.commit_ms,
            "transaction committed"
        );
        metrics.transactions.get_or_create(&ResultLabel { result: "committed" }).inc();
        metrics.transaction_duration.observe(self.open_for.as_secs_f64());
        metrics.transaction_records.observe(self.inputs as f64);
        for (topic, n) in self.produced {
            metrics.produced.get_or_create(&TopicLabel { topic: (*topic).into() }).inc_by(*n);
        }
        for (event_type, n) in self.emitted {
            metrics.emitted.get_or_create(&EventTypeLabel { event_type }).inc_by(*n);
        }
        for ((stage, class), n) in self.dead {
            metrics.dlq_by(stage, class, *n);
        }
    }
}

/// A transaction ended without a commit: none of its records is ever read
/// by a `read_committed` consumer, and its inputs are attempted again.
pub struct TransactionAborted {
    pub open_for: Duration,
}

impl InternalEvent for TransactionAborted {
    fn emit(self, metrics: &Metrics) {
        tracing::info!(open_for_ms = self.open_for.as_millis() as u64, "transaction aborted");
        metrics.transactions.get_or_create(&ResultLabel { result: "aborted" }).inc();
    }
}

/// The broker ended this producer's transaction and the producer could not
/// go on: a fresh one with the same transactional.id took its place.
pub struct ProducerRenewed<'a> {
    pub code: rdkafka::types::RDKafkaErrorCode,
    pub reason: &'a str,
    /// How long the ended transaction had been open, if one was.
    pub open_for: Option<Duration>,
    pub transaction_timeout: Duration,
}

impl InternalEvent for ProducerRenewed<'_> {
    fn emit(self, metrics: &Metrics) {
        tracing::warn!(
            code = %self.code,
            reason = self.reason,
            open_for_ms = self.open_for.map(|d| d.as_millis() as u64),
            transaction_timeout_ms = self.transaction_timeout.as_millis() as u64,
            "the broker ended this producer's transaction (it outlived the transaction timeout: a paused process, \
             or a broker failure that held its records back) and the producer cannot go on; started a fresh producer"
        );
        metrics.errors.get_or_create(&KindLabel { kind: "producer_renewed" }).inc();
    }
}

/// A changelog record left out of a restore: its input offsets never
/// committed (a zombie's write), or it cannot be read (`error`).
pub struct ChangelogRecordSkipped<'a> {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a str>,
    pub error: Option<&'a str>,
}

impl InternalEvent for ChangelogRecordSkipped<'_> {
    fn emit(self, metrics: &Metrics) {
        match self.error {
            None => tracing::info!(
                partition = self.partition,
                offset = self.offset,
                key = self.key,
                "skipped a changelog record whose input offsets never committed"
            ),
            Some(error) => tracing::error!(
                partition = self.partition,
                offset = self.offset,
                error,
                "unreadable changelog record skipped"
            ),
        }
        metrics.restore_skipped.inc();
    }
}

/// A state partition read back from its changelog and installed.
pub struct PartitionRestored {
    pub partition: i32,
    pub keys: usize,
    /// `restored` (the changelog from its beginning) or `snapshot` (a local
    /// snapshot and the changelog after it).
    pub kind: &'static str,
    /// Changelog records read for it.
    pub records: u64,
    pub took: Duration,
}

impl InternalEvent for PartitionRestored {
    fn emit(self, metrics: &Metrics) {
        tracing::info!(
            partition = self.partition,
            keys = self.keys,
            from = self.kind,
            changelog_records = self.records,
            took_ms = self.took.as_millis() as u64,
            "state restored"
        );
        metrics.restores.get_or_create(&KindLabel { kind: self.kind }).inc();
        if self.kind == "snapshot" {
            metrics.snapshots.get_or_create(&ResultLabel { result: "used" }).inc();
        }
    }
}

/// A local snapshot that could not stand in for the changelog: the
/// partition is restored from the changelog's beginning instead.
pub struct SnapshotRejected<'a> {
    pub partition: i32,
    pub reason: &'a str,
}

impl InternalEvent for SnapshotRejected<'_> {
    fn emit(self, metrics: &Metrics) {
        tracing::warn!(
            partition = self.partition,
            reason = self.reason,
            "state snapshot not used; restoring the partition from the changelog"
        );
        metrics.snapshots.get_or_create(&ResultLabel { result: "rejected" }).inc();
    }
}

/// The loop runs: every 30 s, with what it holds. Logged only; the
/// metrics say the same continuously.
pub struct LoopAlive {
    pub owned: usize,
    pub buffered: usize,
    pub open_transaction_ms: Option<u64>,
    pub outputs_total: usize,
}

impl InternalEvent for LoopAlive {
    fn emit(self, _: &Metrics) {
        tracing::info!(
            owned_partitions = self.owned,
            buffered_inputs = self.buffered,
            open_transaction_ms = self.open_transaction_ms,
            outputs_total = self.outputs_total,
            "loop alive"
        );
    }
}

/// The loop has not come round for a while: a call that does not return
/// (the phase names it). Logged only; `/healthz` fails after 60 s.
pub struct LoopStalled {
    pub phase: &'static str,
    pub silent: Duration,
}

impl InternalEvent for LoopStalled {
    fn emit(self, _: &Metrics) {
        tracing::warn!(
            phase = self.phase,
            silent_ms = self.silent.as_millis() as u64,
            "the processing loop has not come round; it is still in this phase"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_moves_its_metric() {
        let m = Metrics::new("t", "0");
        let sum = |series: &str| {
            let text = m.encode();
            text.lines()
                .filter(|l| l.starts_with(series))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        };
        InputHandled { event_type: "a.b".into(), outcome: "applied" }.emit(&m);
        DuplicateDropped { key: "k", event_id: "i", event_type: "a.b" }.emit(&m);
        StaleSequenceDropped { key: "k", event_id: "i", event_type: "a.b", sequence: 3, last: 4 }.emit(&m);
        InputRejected { key: "k", event_id: "i", event_type: "a.b".into(), class: "c", reason: "r" }.emit(&m);
        DeadLettered { topic: "t", partition: 0, offset: 1, stage: "process", class: "c", reason: "r" }.emit(&m);
        InputOrderEnforced { topic: "t", partition: 0, kind: "idle" }.emit(&m);
        TimerFired { key: "k", name: "hold_timeout", due_ms: 1, outcome: "applied" }.emit(&m);
        RecordTranslated { platform: "go4u", outcome: "translated" }.emit(&m);
        let produced = BTreeMap::from([("a.events", 3), ("b.dlq", 1)]);
        let emitted = BTreeMap::from([("escrow.saga.completed", 2)]);
        let open_for = Duration::from_millis(20);
        let dead = BTreeMap::from([(("process", "c".to_owned()), 1)]);
        let (produced, emitted, dead) = (&produced, &emitted, &dead);
        assert_eq!(sum("sagastream_dlq_records_total"), 0.0, "a DLQ record sent is not counted before its commit");
        TransactionCommitted { inputs: 2, outputs: 4, produced, emitted, dead, open_for, offsets_ms: 1, commit_ms: 3 }
            .emit(&m);
        TransactionAborted { open_for }.emit(&m);
        ChangelogRecordSkipped { partition: 0, offset: 1, key: Some("k"), error: None }.emit(&m);
        PartitionRestored { partition: 0, keys: 2, kind: "snapshot", records: 3, took: Duration::ZERO }.emit(&m);
        SnapshotRejected { partition: 1, reason: "r" }.emit(&m);
        let code = rdkafka::types::RDKafkaErrorCode::InvalidTransactionalState;
        ProducerRenewed { code, reason: "r", open_for: None, transaction_timeout: open_for }.emit(&m);
        assert_eq!(sum("sagastream_events_processed_total{event_type=\"a.b\",outcome=\"applied\"}"), 1.0);
        assert_eq!(sum("sagastream_events_processed_total{event_type=\"a.b\",outcome=\"duplicate\"}"), 1.0);
        assert_eq!(sum("sagastream_events_processed_total{event_type=\"a.b\",outcome=\"rejected\"}"), 1.0);
        assert_eq!(sum("sagastream_duplicates_dropped_total"), 1.0);
        assert_eq!(sum("sagastream_events_processed_total{event_type=\"a.b\",outcome=\"stale_sequence\"}"), 1.0);
        assert_eq!(sum("sagastream_dlq_records_total{stage=\"process\",reason=\"c\"}"), 1.0);
        assert_eq!(sum("sagastream_input_order_enforced_total{kind=\"idle\"}"), 1.0);
        assert_eq!(sum("sagastream_timers_fired_total"), 1.0);
        assert_eq!(sum("sagastream_ingest_records_total{platform=\"go4u\",outcome=\"translated\"}"), 1.0);
        assert_eq!(
            sum("sagastream_events_processed_total{event_type=\"timer:hold_timeout\",outcome=\"applied\"}"),
            1.0
        );
        assert_eq!(sum("sagastream_transactions_total{result=\"committed\"}"), 1.0);
        assert_eq!(sum("sagastream_restores_total{kind=\"snapshot\"}"), 1.0);
        assert_eq!(sum("sagastream_state_snapshots_total{result=\"used\"}"), 1.0);
        assert_eq!(sum("sagastream_state_snapshots_total{result=\"rejected\"}"), 1.0);
        assert_eq!(sum("sagastream_transactions_total{result=\"aborted\"}"), 1.0);
        assert_eq!(sum("sagastream_records_produced_total{topic=\"a.events\"}"), 3.0);
        assert_eq!(sum("sagastream_transaction_records_count"), 1.0);
        assert_eq!(sum("sagastream_events_emitted_total{event_type=\"escrow.saga.completed\"}"), 2.0);
        assert_eq!(sum("sagastream_errors_total{kind=\"producer_renewed\"}"), 1.0);
        assert_eq!(sum("sagastream_restore_skipped_records_total"), 1.0);
        assert_eq!(
            sum("sagastream_restores_total{kind=\"restored\"}"),
            0.0,
            "a snapshot's restore is not counted twice"
        );
    }
}
