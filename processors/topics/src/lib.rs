//! `topics.yaml`, the single source of truth for every topic sagastream
//! reads or writes: the model, validation that reports every problem with its
//! line, field and a hint, and a pure plan against what a cluster has.

mod error;
mod locate;
mod model;
mod plan;
mod retention;

pub use error::{Problem, TopicsError};
pub use model::{CleanupPolicy, ContentType, Envelope, Topic, TopicKind, Topics};
pub use plan::{plan, Action, Drift, ObservedTopic, Plan};
pub use retention::{format_retention, parse_retention};
