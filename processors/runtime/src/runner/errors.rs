//! Why the loop stops or retries: the one error type of the loop, and
//! which Kafka errors end the instance (fencing, authorization, a fatal
//! producer) and which a retry cures.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Why the loop stopped or must retry.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// Abort the transaction, rewind, retry.
    #[error("{what}: {source}")]
    Transient {
        what: String,
        #[source]
        source: KafkaError,
    },
    /// A test hook's failure (built with the `test-hooks` feature only): abort, rewind, retry.
    #[cfg(feature = "test-hooks")]
    #[error(transparent)]
    Injected(#[from] crate::hooks::Injected),
    #[error("{0} produced record(s) not acknowledged within 30 s")]
    NotAcknowledged(i32),
    /// The Schema Registry did not answer: abort, rewind, retry.
    #[error("{0}")]
    Registry(String),
    /// Stop the instance.
    #[error("{what}: {source}")]
    Fatal {
        what: String,
        #[source]
        source: KafkaError,
    },
    #[error("{0}")]
    Setup(String),
}

impl LoopError {
    pub(super) fn kafka(what: impl Into<String>, source: KafkaError) -> LoopError {
        let what = what.into();
        if is_fatal(&source) {
            LoopError::Fatal { what, source }
        } else {
            LoopError::Transient { what, source }
        }
    }

    pub(super) fn is_fatal(&self) -> bool {
        matches!(self, LoopError::Fatal { .. } | LoopError::Setup(_))
    }

    /// The `kind` label a retried failure is counted under.
    pub(super) fn retried_kind(&self) -> &'static str {
        match self {
            LoopError::Registry(_) => "schema_registry",
            _ => "transient",
        }
    }
}

impl From<crate::engine::EngineError> for LoopError {
    fn from(e: crate::engine::EngineError) -> LoopError {
        match e {
            crate::engine::EngineError::RegistryUnavailable(_) => LoopError::Registry(e.to_string()),
            crate::engine::EngineError::NotOwned(_) => LoopError::Setup(format!("internal: {e}")),
        }
    }
}

#[cfg(not(feature = "test-hooks"))]
impl From<crate::hooks::Injected> for LoopError {
    fn from(never: crate::hooks::Injected) -> LoopError {
        match never {}
    }
}

pub(super) fn is_fatal(e: &KafkaError) -> bool {
    if let KafkaError::Transaction(rd) = e {
        if rd.is_fatal() {
            return true;
        }
    }
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::SaslAuthenticationFailed
        )
    )
}

pub(super) fn is_retriable(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(rd) if rd.is_retriable() && !rd.txn_requires_abort())
}
