//! The engine: everything the runtime does to a record except Kafka I/O.
//! It decodes, de-duplicates, calls the processor, builds derived and DLQ
//! records, keeps keyed state and timers with a committed version, the
//! changes of a transaction whose commit is in flight (sealed), and the
//! open transaction's (pending), and writes the changelog at commit.
//! The Kafka loop (`runner`) only moves records in and out, so everything
//! here is unit-tested without a broker.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use sagastream_contract::{ContentMode, Event, Record};
use sagastream_registry::avro::AvroCodec;

use crate::changelog::{Change, Entry};
use crate::dlq::{Failure, Stage};
use crate::events::{DuplicateDropped, InputHandled, InputRejected, InternalEvent, StaleSequenceDropped, TimerFired};
use crate::ids::{self, Cause};
use crate::metrics::{Metrics, PartitionLabel};
use crate::processor::{from_millis, Context, Processor, Spec, StateChange, Step, Timer, TimerCommand, Translation};
use crate::timers::TimerQueue;

/// Settings the engine needs besides the processor.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub group: String,
    /// Input ids remembered per key for de-duplication.
    pub dedup_window: usize,
    /// How every output topic is written (from `topics.yaml`); JSON in
    /// binary mode where none is given.
    pub output_formats: HashMap<&'static str, OutputFormat>,
    /// The Schema Registry's codec: reads Avro inputs and writes Avro
    /// outputs. Without one, an Avro input is dead-lettered as
    /// `no_schema_registry` (and no output may be Avro: checked at start).
    pub avro: Option<Arc<AvroCodec>>,
}

/// How an output topic's events are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFormat {
    /// JSON data in this CloudEvents content mode.
    Json(ContentMode),
    /// Avro in the Confluent wire format, binary mode; `subject_topic` is
    /// the topic's name on the cluster, which its subjects are named after.
    Avro { subject_topic: String },
}

/// The format of an output topic `topics.yaml` says nothing about.
static DEFAULT_FORMAT: OutputFormat = OutputFormat::Json(ContentMode::Binary);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutKind {
    Derived,
    Dlq,
    Changelog,
}

/// A record to produce, addressed by its `topics.yaml` topic name.
#[derive(Debug, Clone, PartialEq)]
pub struct Out {
    pub topic: &'static str,
    /// Set for changelog records (the input's partition); others go by key.
    pub partition: Option<i32>,
    pub record: Record,
    pub kind: OutKind,
    /// The type of an event the processor emitted (not of a re-keyed copy).
    pub event_type: Option<&'static str>,
}

/// One consumed record.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The `topics.yaml` name (what the processor sees).
    pub topic: &'static str,
    /// The cluster's name (with any prefix), for DLQ headers.
    pub source: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub record: &'a Record,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    #[error("partition {0} is not owned by this instance")]
    NotOwned(i32),
    /// The Schema Registry did not answer while reading or writing Avro:
    /// abort the transaction, back off, retry. Nothing is dead-lettered.
    #[error("the schema registry is unavailable: {0}")]
    RegistryUnavailable(String),
}

/// Why a step's records could not be made.
#[derive(Debug)]
enum StepError {
    /// The input (or timer) goes to the DLQ; the state stays as it was.
    Failed(Box<Failure>),
    /// The registry did not answer: the whole transaction is retried.
    RetryLater(String),
}

/// The records of a step and the key's new entry, or why the step failed.
type Applied<S> = Result<(Vec<Out>, Entry<S>), StepError>;

pub struct Engine<P: Processor> {
    /// Shared with a translation thread ahead of the loop (a stateless processor's).
    processor: Arc<P>,
    spec: Spec,
    source: String,
    config: EngineConfig,
    metrics: Arc<Metrics>,
    stores: BTreeMap<i32, PartitionStore<P::State>>,
    /// Every timer on owned partitions.
    timers: TimerQueue,
    census: census::Census,
    /// 1 + the number of times the current batch of inputs was aborted.
    pub attempt: u32,
}

impl<P: Processor> Engine<P> {
    pub fn new(processor: P, config: EngineConfig, metrics: Arc<Metrics>) -> Engine<P> {
        let spec = processor.spec();
        let source = format!("/sagastream/{}", spec.name);
        Engine {
            processor: Arc::new(processor),
            spec,
            source,
            config,
            metrics,
            stores: BTreeMap::new(),
            timers: TimerQueue::default(),
            census: census::Census::default(),
            attempt: 1,
        }
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn processor(&self) -> Arc<P> {
        self.processor.clone()
    }

    pub fn group(&self) -> &str {
        &self.config.group
    }

    pub fn is_stateful(&self) -> bool {
        self.spec.changelog.is_some()
    }

    pub fn owns(&self, partition: i32) -> bool {
        self.stores.contains_key(&partition)
    }

    pub fn owned(&self) -> Vec<i32> {
        self.stores.keys().copied().collect()
    }

    /// Takes ownership of a partition with its committed state.
    pub fn install(&mut self, partition: i32, committed: HashMap<String, Entry<P::State>>) {
        self.timers.install_partition(partition, timers_of(&committed));
        self.census.partition(&*self.processor, &committed, 1);
        self.stores.insert(partition, PartitionStore::new(committed));
        self.update_gauges(partition);
    }

    /// Gives a partition up and returns its committed state. Call after the
    /// transactions were committed or aborted: sealed and pending changes
    /// are dropped.
    pub fn remove(&mut self, partition: i32) -> Option<HashMap<String, Entry<P::State>>> {
        let store = self.stores.remove(&partition)?;
        self.census.partition(&*self.processor, &store.committed, -1);
        self.census.publish(&self.metrics);
        self.timers.clear_partition(partition);
        self.metrics.state_entries.remove(&PartitionLabel { partition });
        self.metrics.timers_pending.set(self.timers.len() as i64);
        Some(store.committed)
    }

    /// Folds one changelog record into a state being restored.
    pub fn restore_into(map: &mut HashMap<String, Entry<P::State>>, change: Change<P::State>) {
        match change.entry {
            Some(entry) => {
                map.insert(change.key, entry);
            }
            None => {
                map.remove(&change.key);
            }
        }
    }

    /// Whether any state change is not committed yet (the open
    /// transaction's, or one whose commit is in flight).
    pub fn has_pending(&self) -> bool {
        self.stores.values().any(|s| !s.pending.is_empty() || !s.sealed.is_empty())
    }

    /// Processes one input. Bad input becomes a DLQ record, never an error.
    pub fn process(&mut self, input: &Input<'_>) -> Result<Vec<Out>, EngineError> {
        self.process_translated(input, None)
    }

    /// [`Engine::process`] with the input's translation done ahead
    /// (`Some`: what [`Processor::translate`] gave for it).
    pub fn process_translated(
        &mut self,
        input: &Input<'_>,
        ahead: Option<Option<Translation>>,
    ) -> Result<Vec<Out>, EngineError> {
        if !self.stores.contains_key(&input.partition) {
            return Err(EngineError::NotOwned(input.partition));
        }
        let started = Instant::now();
        let outs = self.process_owned(input, ahead)?;
        self.metrics.processing_duration.observe(started.elapsed().as_secs_f64());
        Ok(outs)
    }

    fn process_owned(
        &mut self,
        input: &Input<'_>,
        ahead: Option<Option<Translation>>,
    ) -> Result<Vec<Out>, EngineError> {
        if let Some(event_type) = self.own_output(input.record) {
            // Our own output read back from an input topic (the escrow saga
            // writes booking.completed to booking.events): already applied
            // when it was emitted. Skipped before the costly decode.
            InputHandled { event_type: event_type.into(), outcome: "own_output" }.emit(&self.metrics);
            return Ok(Vec::new());
        }
        let (key, event) = match self.read(input, ahead)? {
            Ok(read) => read,
            Err(dead_letter) => return Ok(vec![dead_letter]),
        };
        let event_type = event.event_type().as_str();
        if let Some(time) = event.time {
            let latency = Utc::now().signed_duration_since(time).num_milliseconds().max(0);
            self.metrics.end_to_end_latency.observe(latency as f64 / 1000.0);
        }
        let store = self.stores.get(&input.partition).expect("ownership checked by the caller");
        let old = store.get(&key);
        if self.is_stateful() && old.is_some_and(|e| e.seen.contains(&event.id)) {
            DuplicateDropped { key: &key, event_id: &event.id, event_type }.emit(&self.metrics);
            return Ok(Vec::new());
        }
        let guard = self.is_stateful() && self.processor.sequence_guard();
        if let (true, Some(sequence), Some(last)) = (guard, event.sequence, old.and_then(|e| e.sequence)) {
            if sequence <= last {
                StaleSequenceDropped { key: &key, event_id: &event.id, event_type, sequence, last }.emit(&self.metrics);
                return Ok(Vec::new());
            }
        }
        let now = event.time.or_else(|| input.timestamp_ms.map(from_millis)).unwrap_or_else(|| from_millis(0));
        let ctx = Context { key: &key, partition: input.partition, now, topic: input.topic };
        let state = old.and_then(|e| e.state.as_ref());
        let step = match self.processor.process(state, &event, &ctx) {
            Ok(step) => step,
            Err(rejection) => {
                InputRejected {
                    key: &key,
                    event_id: &event.id,
                    event_type: event_type.into(),
                    class: rejection.class,
                    reason: &rejection.message,
                }
                .emit(&self.metrics);
                let mut failure = Failure::new(Stage::Process, rejection.class, rejection.message);
                failure.event_id = Some(event.id.clone());
                failure.state = state.and_then(|s| serde_json::to_string(s).ok());
                return Ok(vec![self.dead_letter(input, failure)]);
            }
        };
        let ignored = matches!(step.state, StateChange::Keep) && step.emits.is_empty() && step.timers.is_empty();
        let cause = Cause::Input { event_id: &event.id };
        match self.apply(old, step, cause, &ctx, Some(&event)) {
            Ok((outs, mut entry)) => {
                if self.is_stateful() && (entry.state.is_some() || !entry.timers.is_empty()) {
                    entry.seen.push(&event.id, self.config.dedup_window);
                    if guard {
                        entry.sequence = entry.sequence.max(event.sequence);
                    }
                }
                self.put(input.partition, &key, entry);
                InputHandled { event_type: event_type.into(), outcome: if ignored { "ignored" } else { "applied" } }
                    .emit(&self.metrics);
                Ok(outs)
            }
            Err(StepError::Failed(mut failure)) => {
                InputHandled { event_type: event_type.into(), outcome: "failed" }.emit(&self.metrics);
                failure.event_id = Some(event.id.clone());
                Ok(vec![self.dead_letter(input, *failure)])
            }
            Err(StepError::RetryLater(why)) => Err(EngineError::RegistryUnavailable(why)),
        }
    }

    /// The type of a binary-mode record this processor emitted, else `None`.
    fn own_output(&self, record: &Record) -> Option<&'static str> {
        let header = |name: &str| record.header(name).and_then(|v| std::str::from_utf8(v).ok());
        if header("ce_source")? != self.source {
            return None;
        }
        Some(header("ce_type").and_then(sagastream_contract::EventType::parse).map_or("unknown", |t| t.as_str()))
    }

    /// Turns a step into records and the key's new entry, or a failure that
    /// leaves the state as it was.
    fn apply(
        &self,
        old: Option<&Entry<P::State>>,
        step: Step<P::State>,
        cause: Cause<'_>,
        ctx: &Context<'_>,
        input: Option<&Event>,
    ) -> Applied<P::State> {
        // A delete starts from nothing, a new state without the old one.
        let mut entry = Entry::base_for(old, &step.state);
        if !self.is_stateful() && (!matches!(step.state, StateChange::Keep) || !step.timers.is_empty()) {
            return Err(StepError::Failed(Box::new(Failure::new(
                Stage::Process,
                "stateless_processor_kept_state",
                format!("{} declares no changelog but asked to keep state or timers", self.spec.name),
            ))));
        }
        if let StateChange::Set(s) = step.state {
            entry.state = Some(s);
        }
        for t in step.timers {
            match t {
                TimerCommand::Set { name, due } => {
                    entry.timers.insert(name, due.timestamp_millis());
                }
                TimerCommand::Cancel { name } => {
                    entry.timers.remove(&name);
                }
            }
        }
        let mut outs = Vec::with_capacity(step.emits.len());
        let seed = match cause {
            Cause::Input { event_id } => event_id.to_owned(),
            Cause::Timer { key, name, due_ms } => format!("{key}/{name}/{due_ms}"),
        };
        let mut step_ids = Vec::with_capacity(step.emits.len());
        for emit in step.emits {
            let topic = emit.topic();
            let Some(topic) = self.spec.outputs.iter().copied().find(|t| *t == topic) else {
                return Err(StepError::Failed(Box::new(Failure::new(
                    Stage::Produce,
                    "undeclared_output",
                    format!(
                        "{} emitted {} to {topic}, which is not among its outputs",
                        self.spec.name,
                        emit.payload.event_type()
                    ),
                ))));
            };
            let format = self.config.output_formats.get(topic).unwrap_or(&DEFAULT_FORMAT);
            let data = emit.payload.to_json_vec();
            let event_type = emit.payload.event_type().as_str();
            if let Some(envelope) = emit.envelope {
                let record = self.encode_forwarded(*envelope, *emit.payload, format, data, topic)?;
                outs.push(Out { topic, partition: None, record, kind: OutKind::Derived, event_type: Some(event_type) });
                continue;
            }
            let mut occurrence = 0;
            let mut id = ids::derived_id(self.spec.name, cause, event_type, &data, occurrence);
            while step_ids.contains(&id) {
                occurrence += 1;
                id = ids::derived_id(self.spec.name, cause, event_type, &data, occurrence);
            }
            step_ids.push(id);
            let event = Event {
                id: id.to_string(),
                source: self.source.clone(),
                time: Some(ctx.now),
                traceparent: Some(ids::child_traceparent(input.and_then(|e| e.traceparent.as_ref()), id, &seed)),
                correlationid: emit.correlation_id.or_else(|| input.and_then(|e| e.correlationid.clone())),
                sequence: None,
                extensions: BTreeMap::new(),
                data: *emit.payload,
            };
            let record = self.encode_for(&event, format, data, topic)?;
            outs.push(Out { topic, partition: None, record, kind: OutKind::Derived, event_type: Some(event_type) });
        }
        Ok((outs, entry))
    }

    fn put(&mut self, partition: i32, key: &str, entry: Entry<P::State>) {
        if !self.is_stateful() {
            return;
        }
        let store = self.stores.get_mut(&partition).expect("owned partition");
        let old = store.get(key);
        if let Some(old) = old {
            for (name, due) in &old.timers {
                self.timers.remove(partition, *due, key, name);
            }
        }
        let existed = old.is_some();
        if entry.is_vacant() {
            if existed {
                store.pending.insert(key.to_owned(), None);
            }
            return;
        }
        for (name, due) in &entry.timers {
            self.timers.insert(partition, *due, key, name);
        }
        store.pending.insert(key.to_owned(), Some(entry));
    }

    /// When the earliest timer is due (ms since the epoch).
    pub fn next_due(&self) -> Option<i64> {
        self.timers.heads().map(|(_, due)| due).min()
    }

    /// When the partition's earliest timer is due.
    pub fn next_due_in(&self, partition: i32) -> Option<i64> {
        self.timers.head_of(partition)
    }

    /// The earliest due time of each partition with timers.
    pub fn next_due_by_partition(&self) -> Vec<(i32, i64)> {
        self.timers.heads().collect()
    }

    /// Fires up to `limit` timers due at `now_ms`, earliest first per partition.
    pub fn fire_due(&mut self, now_ms: i64, limit: usize) -> Result<Vec<Out>, EngineError> {
        self.fire_due_by(&|_| now_ms, limit)
    }

    /// Fires up to `limit` timers, each partition's up to its own horizon
    /// (ms since the epoch): how far its inputs have been processed.
    /// A registry outage stops the firing: the caller aborts the
    /// transaction, which puts the timers back as they were committed.
    pub fn fire_due_by(&mut self, horizon: &dyn Fn(i32) -> i64, limit: usize) -> Result<Vec<Out>, EngineError> {
        let mut outs = Vec::new();
        let mut fired = 0;
        for (partition, _) in self.next_due_by_partition() {
            let upto = horizon(partition);
            while fired < limit {
                let Some((due_ms, key, name)) = self.timers.pop_due(partition, upto) else { break };
                fired += 1;
                self.fire_one(partition, due_ms, key, name, &mut outs)?;
            }
        }
        self.metrics.timers_pending.set(self.timers.len() as i64);
        Ok(outs)
    }

    fn fire_one(
        &mut self,
        partition: i32,
        due_ms: i64,
        key: String,
        name: String,
        outs: &mut Vec<Out>,
    ) -> Result<(), EngineError> {
        let Some(old) = self.stores.get(&partition).and_then(|s| s.get(&key)).cloned() else { return Ok(()) };
        if old.timers.get(&name) != Some(&due_ms) {
            return Ok(());
        }
        let mut entry = old;
        entry.timers.remove(&name);
        let timer = Timer { name: name.clone(), due: from_millis(due_ms) };
        let ctx = Context { key: &key, partition, now: timer.due, topic: "" };
        let cause = Cause::Timer { key: &key, name: &name, due_ms };
        let outcome = self.processor.on_timer(entry.state.as_ref(), &timer, &ctx);
        let result = match outcome {
            Ok(step) => self.apply(Some(&entry), step, cause, &ctx, None),
            Err(r) => Err(StepError::Failed(Box::new(Failure::new(Stage::Process, r.class, r.message)))),
        };
        match result {
            Ok((mut o, new_entry)) => {
                TimerFired { key: &key, name: &name, due_ms, outcome: "applied" }.emit(&self.metrics);
                self.put(partition, &key, new_entry);
                outs.append(&mut o);
            }
            Err(StepError::RetryLater(why)) => return Err(EngineError::RegistryUnavailable(why)),
            Err(StepError::Failed(mut failure)) => {
                TimerFired { key: &key, name: &name, due_ms, outcome: "rejected" }.emit(&self.metrics);
                failure.state = entry.state.as_ref().and_then(|s| serde_json::to_string(s).ok());
                failure.timer = Some(format!("{name}@{}", timer.due.to_rfc3339()));
                // The timer is consumed either way, or it would fail forever.
                self.put(partition, &key, entry);
                let original = Record { key: Some(key.clone().into_bytes()), value: None, headers: Vec::new() };
                let input = Input {
                    topic: self.spec.inputs.first().copied().unwrap_or(""),
                    source: "",
                    partition,
                    offset: -1,
                    timestamp_ms: Some(due_ms),
                    record: &original,
                };
                outs.push(self.dead_letter(&input, *failure));
            }
        }
        Ok(())
    }

    fn update_gauges(&self, partition: i32) {
        if let Some(store) = self.stores.get(&partition) {
            self.metrics.state_entries.get_or_create(&PartitionLabel { partition }).set(store.committed.len() as i64);
        }
        self.census.publish(&self.metrics);
        self.metrics.timers_pending.set(self.timers.len() as i64);
    }

    /// A partition's whole committed state (what a snapshot keeps).
    pub fn committed_partition(&self, partition: i32) -> Option<&HashMap<String, Entry<P::State>>> {
        self.stores.get(&partition).map(|s| &s.committed)
    }

    /// Committed state of a key (tests and diagnostics).
    pub fn committed_state(&self, partition: i32, key: &str) -> Option<&P::State> {
        self.stores.get(&partition)?.committed.get(key)?.state.as_ref()
    }
}

/// Every timer of a partition's state, as the timer index keeps them.
fn timers_of<S>(state: &HashMap<String, Entry<S>>) -> impl Iterator<Item = (i64, String, String)> + '_ {
    state.iter().flat_map(|(key, entry)| entry.timers.iter().map(move |(name, due)| (*due, key.clone(), name.clone())))
}

mod census;
mod outputs;
mod read;
mod repartition;
mod store;

use store::PartitionStore;

#[cfg(test)]
mod tests;
