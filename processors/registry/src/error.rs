use std::path::PathBuf;

/// What went wrong, named after what fixes it.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A schema file must be fixed: it is not a readable Avro record schema
    /// with its `sagastream.event_type`.
    #[error("{path}: {reason}")]
    FixSchemaFile { path: PathBuf, reason: String },
    /// The registry did not answer: start it (`scripts/registry.sh start`)
    /// or point `SCHEMA_REGISTRY_URL` at one; the call may be retried.
    #[error("the schema registry at {url} did not answer ({reason}); start it with scripts/registry.sh start or set SCHEMA_REGISTRY_URL")]
    Unreachable { url: String, reason: String },
    /// The registry refused the call (an incompatible schema, a subject it
    /// does not know): the message says which.
    #[error("the schema registry refused {what}: {reason}")]
    Refused { what: String, reason: String },
}
