//! The sagastream event contract: the public API other teams integrate with.
//!
//! - [`catalog`]: every event type, its payload, key field and topic;
//! - [`payloads`]: typed payloads with the seeds' field names;
//! - [`envelope`]: the CloudEvents 1.0 attributes we set;
//! - [`binding`]: the Kafka protocol binding (binary and structured modes) and
//!   a decoder that classifies every failure and never panics;
//! - [`samples`]: one realistic event of every type, for demos and tests.

pub mod binding;
pub mod catalog;
pub mod envelope;
pub mod payloads;
pub mod samples;
pub mod values;

pub use binding::{
    decode, decode_avro, decode_rekeyed, encode, encode_avro, encode_with_data, is_avro, ContentMode, DecodeError,
    Decoded, EncodeError, Header, Record, AVRO_CONTENT_TYPE,
};
pub use catalog::{EventType, Payload, LEGACY_TYPE_NAMES};
pub use envelope::{Event, TraceParent};
pub use values::{Cents, Currency, DecimalAmount};
