//! Why a foreign record is not translated. Each variant is a DLQ class (a
//! stable code, the `__streams.errors.exception` header and a metric label).
//! Messages name fields, never their values: values may be personal data.

use sagastream_runtime::Refusal;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// Not a JSON object, or an envelope field missing or mistyped: fix the producer.
    #[error("invalid {platform} envelope: {field}: {reason}")]
    InvalidEnvelope { platform: &'static str, field: &'static str, reason: String },
    /// A type the platform's catalog does not have: add it to the mapping or fix the producer.
    #[error("{platform} type {native:?} is not in its catalog (docs/ingest.md)")]
    UnknownType { platform: &'static str, native: String },
    /// A type of the platform's catalog that sagastream does not carry.
    #[error("{platform} type {native:?} has no sagastream counterpart (docs/ingest.md lists the mapped types)")]
    UnmappedType { platform: &'static str, native: String },
    /// A major version the mapping was not written for.
    #[error("{platform} type {native:?} version {version:?}: only major version 1 is translated")]
    UnsupportedVersion { platform: &'static str, native: String, version: String },
    /// A per-type topic carrying another type or version.
    #[error("{native:?} (major version {major}) does not belong on {topic}")]
    WrongTopic { native: String, major: u64, topic: String },
    /// The payload does not give a valid catalog event.
    #[error("{platform} {native} payload at {path}: {reason}")]
    PayloadInvalid { platform: &'static str, native: String, path: String, reason: String },
}

impl TranslateError {
    pub fn class(&self) -> &'static str {
        match self {
            TranslateError::InvalidEnvelope { .. } => "invalid_envelope",
            TranslateError::UnknownType { .. } => "unknown_type",
            TranslateError::UnmappedType { .. } => "unmapped_type",
            TranslateError::UnsupportedVersion { .. } => "unsupported_version",
            TranslateError::WrongTopic { .. } => "wrong_topic",
            TranslateError::PayloadInvalid { .. } => "payload_invalid",
        }
    }

    /// Every class, in the order docs/ingest.md lists them.
    pub const CLASSES: &'static [&'static str] =
        &["invalid_envelope", "unknown_type", "unmapped_type", "unsupported_version", "wrong_topic", "payload_invalid"];

    pub fn into_refusal(self, scrubbed: Option<Vec<u8>>) -> Refusal {
        Refusal { class: self.class(), message: self.to_string(), scrubbed }
    }
}
