//! Typed payloads (the CloudEvent `data`) of every event in the catalog, with
//! the seeds' snake_case field names. Unknown fields are ignored on input so
//! producers can add fields without a version bump (First Viscount's
//! evolution rules); missing or mistyped known fields are rejected.

pub mod booking;
pub mod commands;
pub mod escrow_saga;
pub mod inventory;
pub mod order;
pub mod payment;
pub mod probe;
pub mod runner;
pub mod tracking;

/// RFC 3339 instant, always normalised to UTC when written.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
