//! End-to-end tests against a real Kafka-protocol broker over TCP
//! (KAFKA_BOOTSTRAP_SERVERS, or the local broker started by scripts/broker.sh).

mod crash;
mod escrow;
mod events;
mod failover;
mod interop;
mod orders;
mod runtime;
mod topics;
