//! `probe.events`: the runtime canary. `sagastream-probe` counts the events
//! of every aggregate it reads and reports each count, and reports an
//! aggregate that went quiet. Operators run it to prove a deployment
//! end to end (consume, state, changelog, timers, transactions); the
//! runtime's end-to-end tests use it as their processor.

use serde::{Deserialize, Serialize};

use super::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeCounted {
    /// The key of the counted input: its aggregate id.
    pub aggregate_id: String,
    /// How many distinct inputs of this aggregate have been applied, this one included.
    pub count: u64,
    /// CloudEvent `id` of the input this count is for.
    pub input_id: String,
    /// CloudEvent `type` of that input.
    pub input_type: String,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeIdle {
    pub aggregate_id: String,
    /// The count when the aggregate went quiet.
    pub count: u64,
    /// Time of the last input seen for the aggregate.
    pub last_seen_at: Timestamp,
    pub occurred_at: Timestamp,
}
