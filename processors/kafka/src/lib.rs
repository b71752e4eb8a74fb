//! What every sagastream binary needs from Kafka: client settings with our
//! defaults, conversion between rdkafka messages and contract records, and
//! topic administration for `topics.yaml`.

pub mod admin;
pub mod io;
mod partition;
mod records;
mod settings;

pub use partition::{fetched, fetched_high_watermark, java_partition, Fetched};
pub use records::{base_record, base_record_with, record_from_message, to_owned_headers};
pub use settings::{parse_property, ClientSettings, Scope, BOOTSTRAP_ENV};

/// One error type for this crate's operations.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("no Kafka cluster configured: set {BOOTSTRAP_ENV} (e.g. 127.0.0.1:9092) or pass --bootstrap-servers; `scripts/broker.sh start` runs a local one")]
    NoBootstrap,
    #[error("{what}: {source}")]
    Client {
        what: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("creating topic {topic} failed: {code}")]
    CreateTopic { topic: String, code: rdkafka::types::RDKafkaErrorCode },
    #[error("the cluster has {brokers} broker(s) but {topic} wants replication_factor {wanted}\n  hint: pass --replication-factor {brokers} for a development cluster")]
    ReplicationTooHigh { topic: String, wanted: i32, brokers: usize },
    #[error("topics not ready after {waited_ms} ms (a partition without a leader, or a leader not serving it yet): {topics:?}; check that every broker is up and reachable (`scripts/broker.sh status` for the local one)")]
    NotReady { topics: Vec<String>, waited_ms: u128 },
    #[error("records not read back within {waited_ms} ms: {positions:?} (is a transaction still open on them?)")]
    NotReadBack { positions: Vec<String>, waited_ms: u128 },
    #[error("kafka property {0:?} is not key=value (e.g. -X security.protocol=SSL)")]
    BadProperty(String),
}

impl KafkaError {
    pub(crate) fn client(what: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> KafkaError {
        let what = what.into();
        move |source| KafkaError::Client { what, source }
    }
}
