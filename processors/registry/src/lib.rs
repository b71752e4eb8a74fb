//! The Schema Registry side of `schemas/` (docs/schemas.md): which subject
//! each schema is registered under, registering them, and whether a changed
//! schema is BACKWARD compatible with the latest registered version, asked
//! of the registry and checked offline with apache-avro, which must agree.
//!
//! [`avro`] writes and reads payloads in the Confluent wire format;
//! [`records`], CloudEvents records with such a payload.
//!
//! Subjects follow TopicRecordNameStrategy (`<topic>-<record full name>`):
//! several event types share a topic, each its own subject per topic that
//! topics.yaml says carries it.

pub mod avro;
mod client;
mod compat;
mod embedded;
mod error;
pub mod records;
mod schemas;
mod subjects;

pub use client::{Latest, Registry};
pub use compat::{backward, catalog_rule, diff, FieldChange};
pub use error::RegistryError;
pub use schemas::{load_dir, SchemaFile};
pub use subjects::{plan, subject, Planned};
