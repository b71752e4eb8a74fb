//! Observable events of the runtime, one struct each, after Vector's
//! `internal_events`: `emit` writes the log line and updates the metric
//! together, so no code path can count without logging or log without
//! counting, and the fields of both come from one place.

use std::borrow::Cow;

use crate::metrics::{KindLabel, Metrics};

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
    fn emit(self, metrics: &Metrics) {
        tracing::warn!(
            topic = self.topic,
            partition = self.partition,
            offset = self.offset,
            stage = self.stage,
            class = self.class,
            reason = self.reason,
            "record sent to the DLQ"
        );
        metrics.dlq(self.stage, self.class);
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
        InputRejected { key: "k", event_id: "i", event_type: "a.b".into(), class: "c", reason: "r" }.emit(&m);
        DeadLettered { topic: "t", partition: 0, offset: 1, stage: "process", class: "c", reason: "r" }.emit(&m);
        InputOrderEnforced { topic: "t", partition: 0, kind: "idle" }.emit(&m);
        TimerFired { key: "k", name: "hold_timeout", due_ms: 1, outcome: "applied" }.emit(&m);
        assert_eq!(sum("sagastream_events_processed_total{event_type=\"a.b\",outcome=\"applied\"}"), 1.0);
        assert_eq!(sum("sagastream_events_processed_total{event_type=\"a.b\",outcome=\"duplicate\"}"), 1.0);
        assert_eq!(sum("sagastream_events_processed_total{event_type=\"a.b\",outcome=\"rejected\"}"), 1.0);
        assert_eq!(sum("sagastream_duplicates_dropped_total"), 1.0);
        assert_eq!(sum("sagastream_dlq_records_total{stage=\"process\",reason=\"c\"}"), 1.0);
        assert_eq!(sum("sagastream_input_order_enforced_total{kind=\"idle\"}"), 1.0);
        assert_eq!(sum("sagastream_timers_fired_total"), 1.0);
        assert_eq!(
            sum("sagastream_events_processed_total{event_type=\"timer:hold_timeout\",outcome=\"applied\"}"),
            1.0
        );
    }
}
