//! The processor API: a pure, synchronous state machine.
//!
//! Given the current state of one key, one input event (or one due timer) and
//! a [`Context`], a processor returns a [`Step`]: the new state, the events to
//! emit and the timers to set or cancel; or a [`Rejection`] that sends the
//! input to the dead-letter topic. It never sees Kafka, so it is unit-tested
//! with plain values.

use std::fmt;

pub use crate::rekey::KeyView;
use chrono::{DateTime, TimeZone, Utc};
use sagastream_contract::payloads::Timestamp;
use sagastream_contract::{Event, Payload, Record, TraceParent};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The topics a processor reads and writes, by their `topics.yaml` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Stable name: the default consumer group, the DLQ's processor header,
    /// the `source` of derived events and the namespace of their ids.
    pub name: &'static str,
    pub version: &'static str,
    /// Input topics; more than one must share a co-partitioning group.
    pub inputs: Vec<&'static str>,
    /// Topics the processor may emit to.
    pub outputs: Vec<&'static str>,
    /// Compacted changelog of the keyed state; `None` for a stateless processor.
    pub changelog: Option<&'static str>,
    pub dlq: &'static str,
    /// Topics read only to be re-keyed into one of `inputs` (docs/runtime.md).
    pub repartitions: Vec<Repartition>,
}

/// A topic keyed by another aggregate, joined by re-keying it: the runtime
/// reads `from`, and writes each record whose `key` gives a new key to the
/// internal topic `to` (one of the processor's inputs, co-partitioned with
/// the others) in the same transaction that commits the `from` offset. The
/// processor then sees the record on `to`, under the new key, exactly once.
#[derive(Debug, Clone, Copy)]
pub struct Repartition {
    pub from: &'static str,
    pub to: &'static str,
    /// The new key, or `None` to leave the record out (not this processor's).
    pub key: fn(&Event) -> Option<String>,
    /// The same key read from the record without decoding it (its type,
    /// correlation id and a member of its data: [`KeyView`]). A key found
    /// this way re-keys the record as it is, whose payload is then checked
    /// when the processor reads it back; `None` (or a record with no view)
    /// falls back to `key` on the decoded event, which also dead-letters a
    /// record that does not decode.
    pub quick_key: Option<fn(&KeyView<'_>) -> Option<String>>,
}

/// Two repartitions are the same step when they connect the same topics
/// (function pointers have no meaningful equality).
impl PartialEq for Repartition {
    fn eq(&self, other: &Repartition) -> bool {
        self.from == other.from && self.to == other.to
    }
}

impl Eq for Repartition {}

/// A keyed state machine run by the runtime.
pub trait Processor: Send + Sync + 'static {
    /// Per-key state, stored as JSON in the changelog. Use `()` when stateless.
    type State: Serialize + DeserializeOwned + Clone + fmt::Debug + Send;

    fn spec(&self) -> Spec;

    /// Handles one input event of `ctx.key`.
    fn process(&self, state: Option<&Self::State>, event: &Event, ctx: &Context<'_>) -> Outcome<Self::State>;

    /// The label `sagastream_sagas_active{state}` counts this state under (a
    /// saga's phase); `None` leaves it uncounted. A few fixed values: each
    /// is a time series.
    fn state_label(&self, state: &Self::State) -> Option<&'static str> {
        let _ = state;
        None
    }

    /// Whether the runtime drops an input whose CloudEvent `sequence` is at
    /// or below the highest one applied for its key (Go4u's idempotency by
    /// aggregate and sequence): counted as `stale_sequence`, never applied.
    /// Inputs without a sequence pass.
    fn sequence_guard(&self) -> bool {
        false
    }

    /// Reads an input that is not a CloudEvent: another team's own envelope.
    /// `None`, the default, decodes every input as a CloudEvent. A processor
    /// that translates (ingest) returns the event the record stands for, or
    /// why it cannot be one; the runtime counts either under the platform.
    fn translate(&self, record: &Record, topic: &str) -> Option<Translation> {
        let _ = (record, topic);
        None
    }

    /// Handles a due timer of `ctx.key`. The timer is already removed.
    fn on_timer(&self, state: Option<&Self::State>, timer: &Timer, ctx: &Context<'_>) -> Outcome<Self::State> {
        let _ = (state, timer, ctx);
        Ok(Step::keep())
    }
}

pub type Outcome<S> = Result<Step<S>, Rejection>;

/// What the processor sees besides state and input.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The record key: the aggregate id the state belongs to.
    pub key: &'a str,
    pub partition: i32,
    /// The event clock, not the wall clock, so a re-run after a crash makes
    /// the same decisions and byte-identical events: the input's CloudEvent
    /// `time` (else the record timestamp), or a timer's due time.
    pub now: DateTime<Utc>,
    /// The input topic (`topics.yaml` name); empty for a timer.
    pub topic: &'a str,
}

/// A timer that came due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub name: String,
    pub due: DateTime<Utc>,
}

/// A change to the key's state.
#[derive(Debug, Clone, PartialEq)]
pub enum StateChange<S> {
    Keep,
    Set(S),
    /// Forgets the key: state, timers and the ids remembered for de-duplication.
    Delete,
}

/// A record in a foreign envelope, read by [`Processor::translate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The envelope's platform, a metric label (`sagastream_ingest_records_total`).
    pub platform: &'static str,
    pub result: Result<Event, Refusal>,
}

/// Why a foreign record is no event: a DLQ record of this class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub class: &'static str,
    pub message: String,
    /// The value the DLQ record carries instead of the input's: the record
    /// with its personal data taken out, so the DLQ holds none either.
    pub scrubbed: Option<Vec<u8>>,
}

/// An event to emit. The runtime sets its id (deterministic), `source`,
/// `time` (the context clock) and trace context, unless the emit passes an
/// event on as it came ([`Emit::forward`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Emit {
    /// Boxed: a step's emits live in a `Vec`, and the largest catalog payload
    /// would make every element hundreds of bytes.
    pub payload: Box<Payload>,
    /// Defaults to the catalog topic of the event type.
    pub topic: Option<&'static str>,
    /// Defaults to the input's correlation id.
    pub correlation_id: Option<String>,
    /// The attributes of a forwarded event, written as they are.
    pub envelope: Option<Box<Envelope>>,
}

/// The attributes of an event besides its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub id: String,
    pub source: String,
    pub time: Option<Timestamp>,
    pub traceparent: Option<TraceParent>,
    pub correlationid: Option<String>,
    pub sequence: Option<u64>,
    pub extensions: std::collections::BTreeMap<String, String>,
}

impl Emit {
    pub fn new(payload: impl Into<Payload>) -> Emit {
        Emit { payload: Box::new(payload.into()), topic: None, correlation_id: None, envelope: None }
    }

    /// Writes the event with its own id, source, time and trace: a
    /// translation is the same event in another envelope, so consumers
    /// de-duplicate it by the producer's id.
    pub fn forward(event: Event) -> Emit {
        let Event { id, source, time, traceparent, correlationid, sequence, extensions, data } = event;
        Emit {
            payload: Box::new(data),
            topic: None,
            correlation_id: None,
            envelope: Some(Box::new(Envelope { id, source, time, traceparent, correlationid, sequence, extensions })),
        }
    }

    pub fn to_topic(mut self, topic: &'static str) -> Emit {
        self.topic = Some(topic);
        self
    }

    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Emit {
        self.correlation_id = Some(id.into());
        self
    }

    pub fn topic(&self) -> &'static str {
        self.topic.unwrap_or_else(|| self.payload.event_type().topic())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerCommand {
    /// Sets (or moves) the key's timer of this name.
    Set {
        name: String,
        due: DateTime<Utc>,
    },
    Cancel {
        name: String,
    },
}

/// The result of handling one input or timer.
#[derive(Debug, Clone, PartialEq)]
pub struct Step<S> {
    pub state: StateChange<S>,
    pub emits: Vec<Emit>,
    pub timers: Vec<TimerCommand>,
}

impl<S> Step<S> {
    pub fn keep() -> Step<S> {
        Step { state: StateChange::Keep, emits: Vec::new(), timers: Vec::new() }
    }

    pub fn set(state: S) -> Step<S> {
        Step { state: StateChange::Set(state), ..Step::keep() }
    }

    pub fn delete() -> Step<S> {
        Step { state: StateChange::Delete, ..Step::keep() }
    }

    /// Emits an event to its catalog topic with the input's correlation id.
    pub fn emit(self, payload: impl Into<Payload>) -> Step<S> {
        self.push(Emit::new(payload))
    }

    pub fn push(mut self, emit: Emit) -> Step<S> {
        self.emits.push(emit);
        self
    }

    pub fn set_timer(mut self, name: impl Into<String>, due: DateTime<Utc>) -> Step<S> {
        self.timers.push(TimerCommand::Set { name: name.into(), due });
        self
    }

    pub fn cancel_timer(mut self, name: impl Into<String>) -> Step<S> {
        self.timers.push(TimerCommand::Cancel { name: name.into() });
        self
    }
}

/// A classified refusal: the input goes to the DLQ and the state is untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Stable snake_case reason, e.g. `invalid_transition`; a metric label.
    pub class: &'static str,
    pub message: String,
}

impl Rejection {
    pub fn new(class: &'static str, message: impl Into<String>) -> Rejection {
        Rejection { class, message: message.into() }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

/// Milliseconds since the epoch as a UTC time (timers are stored in ms).
pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}
