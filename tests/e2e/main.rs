//! End-to-end tests against a real Kafka-protocol broker over TCP
//! (KAFKA_BOOTSTRAP_SERVERS, or the local Apache Kafka started by
//! scripts/broker.sh; the failover test starts a three-node cluster of its own).

mod avro;
mod avro_peers;
mod crash;
mod escrow;
mod events;
mod failover;
mod ingest;
mod interop;
mod monitoring;
mod orders;
mod replay;
mod restore;
mod runtime;
mod schemas;
mod topics;
mod tracking;
