//! Prometheus metrics of one processor instance (`sagastream_*`, base units).
//! One struct owns every family, so a metric cannot be emitted under two
//! names; `docs/runtime.md` lists them with their meaning.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: std::borrow::Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicPartitionLabel {
    pub topic: String,
    pub partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProcessedLabel {
    pub event_type: std::borrow::Cow<'static, str>,
    /// `applied`, `ignored`, `duplicate`, `rejected`, `failed` (DLQ from produce), `own_output`,
    /// and for a repartition source `repartitioned` or `not_repartitioned`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DlqLabel {
    pub stage: &'static str,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventTypeLabel {
    pub event_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestLabel {
    pub platform: &'static str,
    /// `translated`, or the DLQ class of a refused record.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabel {
    processor: String,
    version: String,
}

pub struct Metrics {
    registry: Registry,
    pub consumed: Family<TopicLabel, Counter>,
    pub produced: Family<TopicLabel, Counter>,
    pub processed: Family<ProcessedLabel, Counter>,
    pub dlq: Family<DlqLabel, Counter>,
    pub duplicates: Counter,
    pub transactions: Family<ResultLabel, Counter>,
    pub early_commits: Family<ReasonLabel, Counter>,
    pub held_records: Counter,
    pub transaction_duration: Histogram,
    pub transaction_records: Histogram,
    pub processing_duration: Histogram,
    pub end_to_end_latency: Histogram,
    pub lag: Family<TopicPartitionLabel, Gauge>,
    pub lag_seconds: Family<TopicPartitionLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub emitted: Family<EventTypeLabel, Counter>,
    pub ready: Gauge,
    pub sagas_active: Family<StateLabel, Gauge>,
    pub state_entries: Family<PartitionLabel, Gauge>,
    pub assigned_partitions: Gauge,
    pub restore_duration: Family<PartitionLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub restore_remaining: Family<PartitionLabel, Gauge>,
    pub restored_records: Counter,
    pub restore_skipped: Counter,
    pub restores: Family<KindLabel, Counter>,
    pub restoring_partitions: Gauge,
    pub assignment_ready: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub snapshots: Family<ResultLabel, Counter>,
    pub offsets_wait: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub timers_fired: Counter,
    pub timers_pending: Gauge,
    pub order_enforced: Family<KindLabel, Counter>,
    pub order_buffered: Gauge,
    pub errors: Family<KindLabel, Counter>,
    pub ingested: Family<IngestLabel, Counter>,
}

impl Metrics {
    pub fn new(processor: &str, version: &str) -> Metrics {
        let mut registry = Registry::default();
        registry.register(
            "sagastream_build",
            "Processor name and version",
            Info::new(BuildLabel { processor: processor.into(), version: version.into() }),
        );
        let m = Metrics {
            consumed: Family::default(),
            produced: Family::default(),
            processed: Family::default(),
            dlq: Family::default(),
            duplicates: Counter::default(),
            transactions: Family::default(),
            early_commits: Family::default(),
            held_records: Counter::default(),
            transaction_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            transaction_records: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            processing_duration: Histogram::new(exponential_buckets(0.000_001, 4.0, 12)),
            end_to_end_latency: Histogram::new(exponential_buckets(0.001, 2.0, 20)),
            lag: Family::default(),
            lag_seconds: Family::default(),
            emitted: Family::default(),
            ready: Gauge::default(),
            sagas_active: Family::default(),
            state_entries: Family::default(),
            assigned_partitions: Gauge::default(),
            restore_duration: Family::default(),
            restore_remaining: Family::default(),
            restored_records: Counter::default(),
            restore_skipped: Counter::default(),
            restores: Family::default(),
            restoring_partitions: Gauge::default(),
            assignment_ready: Gauge::default(),
            snapshots: Family::default(),
            offsets_wait: Gauge::default(),
            timers_fired: Counter::default(),
            timers_pending: Gauge::default(),
            order_enforced: Family::default(),
            order_buffered: Gauge::default(),
            errors: Family::default(),
            ingested: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("sagastream_records_consumed", "Input records consumed, per topic", m.consumed.clone());
        r.register(
            "sagastream_records_produced",
            "Records produced in committed transactions, per topic (outputs, DLQ, changelog)",
            m.produced.clone(),
        );
        r.register(
            "sagastream_events_processed",
            "Inputs and timers handled, per event type and outcome",
            m.processed.clone(),
        );
        r.register("sagastream_dlq_records", "Records sent to the DLQ, per stage and reason", m.dlq.clone());
        r.register(
            "sagastream_duplicates_dropped",
            "Inputs dropped because their CloudEvent id was already applied for the key",
            m.duplicates.clone(),
        );
        r.register("sagastream_transactions", "Transactions, per result (committed, aborted)", m.transactions.clone());
        r.register(
            "sagastream_early_commits",
            "Transactions committed before the commit interval because they wrote to an input of this \
             processor, per reason (held_back: records of another producer wait behind theirs; read_back: \
             the loop was idle with its own records to read back)",
            m.early_commits.clone(),
        );
        r.register(
            "sagastream_held_records",
            "Records produced while the previous transaction's commit was in flight, held in memory and sent \
             once it had committed",
            m.held_records.clone(),
        );
        r.register(
            "sagastream_transaction_duration_seconds",
            "Time from the first record of a transaction to its commit",
            m.transaction_duration.clone(),
        );
        r.register(
            "sagastream_transaction_records",
            "Input records and timers per committed transaction",
            m.transaction_records.clone(),
        );
        r.register(
            "sagastream_processing_duration_seconds",
            "Time to decode and process one input",
            m.processing_duration.clone(),
        );
        r.register(
            "sagastream_end_to_end_latency_seconds",
            "Processing time minus the input's CloudEvent time",
            m.end_to_end_latency.clone(),
        );
        r.register(
            "sagastream_consumer_lag_records",
            "Records between the position and the last stable offset, per input partition",
            m.lag.clone(),
        );
        r.register(
            "sagastream_consumer_lag_seconds",
            "Age of the oldest input not yet processed, per input partition (0 when caught up)",
            m.lag_seconds.clone(),
        );
        r.register(
            "sagastream_events_emitted",
            "Events the processor emitted in committed transactions, per event type",
            m.emitted.clone(),
        );
        r.register("sagastream_ready", "1 while /readyz answers ready, else 0", m.ready.clone());
        r.register(
            "sagastream_sagas_active",
            "Keys in committed state, per state label the processor gives (a saga's phase)",
            m.sagas_active.clone(),
        );
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let start_time = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        start_time.set(started.as_secs_f64());
        r.register("sagastream_start_time_seconds", "When the process started, in seconds since the epoch", start_time);
        r.register("sagastream_state_entries", "Keys held in state, per partition", m.state_entries.clone());
        r.register("sagastream_assigned_partitions", "Input partitions owned", m.assigned_partitions.clone());
        r.register(
            "sagastream_restore_duration_seconds",
            "Duration of the last state restore, per partition",
            m.restore_duration.clone(),
        );
        r.register(
            "sagastream_restore_remaining_records",
            "Changelog records still to read, per partition being restored",
            m.restore_remaining.clone(),
        );
        r.register("sagastream_restored_records", "Changelog records applied by restores", m.restored_records.clone());
        r.register(
            "sagastream_restore_skipped_records",
            "Changelog records skipped by restores because their transaction's offsets never committed",
            m.restore_skipped.clone(),
        );
        r.register(
            "sagastream_restores",
            "Partition assignments, per kind (restored from the changelog, from a local snapshot and the \
             changelog after it, or kept in memory)",
            m.restores.clone(),
        );
        r.register(
            "sagastream_restoring_partitions",
            "Partitions assigned whose state is still being read; their inputs wait, the others run",
            m.restoring_partitions.clone(),
        );
        r.register(
            "sagastream_assignment_ready_seconds",
            "Time from the last assignment to all its partitions running, restores included",
            m.assignment_ready.clone(),
        );
        r.register(
            "sagastream_state_snapshots",
            "Local state snapshots, per result (written at a clean stop, used, or rejected at a restore)",
            m.snapshots.clone(),
        );
        r.register(
            "sagastream_committed_offsets_wait_seconds",
            "How long the last assignment waited for the group's committed offsets, which another \
             producer's open transaction holds back until it ends",
            m.offsets_wait.clone(),
        );
        r.register("sagastream_timers_fired", "Timers fired", m.timers_fired.clone());
        r.register("sagastream_timers_pending", "Timers scheduled on owned partitions", m.timers_pending.clone());
        r.register(
            "sagastream_input_order_enforced",
            "Inputs processed before every other input partition of their partition number was known, \
             per kind (idle: one was silent for --max-task-idle; full: the order buffers were full)",
            m.order_enforced.clone(),
        );
        r.register(
            "sagastream_input_order_buffered_records",
            "Inputs read and waiting for their turn in event-time order",
            m.order_buffered.clone(),
        );
        r.register(
            "sagastream_errors",
            "Errors handled by the loop, per kind (transient retries, fatal)",
            m.errors.clone(),
        );
        r.register(
            "sagastream_ingest_records",
            "Records in another team's envelope, per platform and outcome (translated, or the DLQ class)",
            m.ingested.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn dlq_by(&self, stage: &'static str, reason: &str, n: u64) {
        self.dlq.get_or_create(&DlqLabel { stage, reason: reason.into() }).inc_by(n);
    }

    /// Creates the emitted-events series of these types at zero, so a query
    /// or an alert on one the processor has not emitted yet finds it.
    pub fn expect_emitted(&self, event_types: impl IntoIterator<Item = &'static str>) {
        for event_type in event_types {
            let _ = self.emitted.get_or_create(&EventTypeLabel { event_type });
        }
    }

    /// Counts one input; a static type name (every catalog type) costs no allocation.
    pub fn processed(&self, event_type: impl Into<std::borrow::Cow<'static, str>>, outcome: &'static str) {
        self.processed.get_or_create(&ProcessedLabel { event_type: event_type.into(), outcome }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_conventions() {
        let m = Metrics::new("probe", "0.1.0");
        m.consumed.get_or_create(&TopicLabel { topic: "runner.events".into() }).inc();
        m.dlq_by("decode", "not_cloudevent", 1);
        m.processing_duration.observe(0.001);
        let text = m.encode();
        assert!(text.contains("sagastream_records_consumed_total{topic=\"runner.events\"} 1"), "{text}");
        assert!(text.contains("sagastream_dlq_records_total{stage=\"decode\",reason=\"not_cloudevent\"} 1"));
        assert!(text.contains("sagastream_build_info{processor=\"probe\",version=\"0.1.0\"} 1"), "{text}");
        assert!(text.contains("sagastream_processing_duration_seconds_bucket"));
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            assert!(line.starts_with("# TYPE sagastream_"), "{line}");
        }
    }

    /// docs/runtime.md's metric table lists exactly the metrics the registry
    /// exports, each with its type, so the table cannot drift from the code.
    #[test]
    fn the_docs_metric_table_is_what_the_registry_exports() {
        // A family shows in the exposition once it has a sample: one each.
        let m = Metrics::new("probe", "0.1.0");
        let topic = || TopicLabel { topic: "t".into() };
        let partition = PartitionLabel { partition: 0 };
        m.consumed.get_or_create(&topic()).inc();
        m.produced.get_or_create(&topic()).inc();
        m.processed("t", "applied");
        m.dlq_by("decode", "r", 1);
        m.transactions.get_or_create(&ResultLabel { result: "committed" }).inc();
        m.early_commits.get_or_create(&ReasonLabel { reason: "held_back" }).inc();
        m.held_records.inc();
        m.lag.get_or_create(&TopicPartitionLabel { topic: "t".into(), partition: 0 }).set(0);
        m.lag_seconds.get_or_create(&TopicPartitionLabel { topic: "t".into(), partition: 0 }).set(0.0);
        m.expect_emitted(["a.b"]);
        m.sagas_active.get_or_create(&StateLabel { state: "held" }).set(1);
        m.state_entries.get_or_create(&partition).set(0);
        m.restore_duration.get_or_create(&partition).set(0.0);
        m.restore_remaining.get_or_create(&partition).set(0);
        m.restores.get_or_create(&KindLabel { kind: "restored" }).inc();
        m.restoring_partitions.set(0);
        m.assignment_ready.set(0.0);
        m.snapshots.get_or_create(&ResultLabel { result: "written" }).inc();
        m.errors.get_or_create(&KindLabel { kind: "transient" }).inc();
        m.order_enforced.get_or_create(&KindLabel { kind: "idle" }).inc();
        m.ingested.get_or_create(&IngestLabel { platform: "go4u", outcome: "translated" }).inc();
        let exported: std::collections::BTreeMap<String, String> = m
            .encode()
            .lines()
            .filter_map(|l| {
                let mut words = l.strip_prefix("# TYPE ")?.split(' ');
                let (family, kind) = (words.next()?, words.next()?);
                let sample = match kind {
                    "counter" => format!("{family}_total"),
                    "info" => format!("{family}_info"),
                    _ => family.to_owned(),
                };
                Some((sample, kind.to_owned()))
            })
            .collect();
        let doc = include_str!("../../../docs/runtime.md");
        let mut documented = std::collections::BTreeMap::new();
        for row in doc.lines().filter(|l| l.starts_with("| `sagastream_")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let names: Vec<&str> =
                cells[0].trim_start_matches("| ").split(" / ").map(|n| n.trim_matches('`')).collect();
            let kinds: Vec<&str> = cells[1].split(" / ").collect();
            for (i, name) in names.iter().enumerate() {
                let kind = kinds.get(i).or(kinds.last()).expect("a type cell");
                documented.insert(name.to_string(), kind.to_string());
            }
        }
        assert_eq!(
            documented, exported,
            "docs/runtime.md's metric table (left) differs from the registry (right): add, remove or retype its rows"
        );
    }
}
