//! The sagas' world: a participant simulator (the booking, payment and
//! inventory services answering the sagas' commands) and a load generator
//! that starts bookings and orders across scenario mixes and checks every
//! outcome (docs/simulator.md).

pub mod check;
pub mod common;
pub mod load;
pub mod native;
pub mod order_check;
pub mod orders;
pub mod participants;
pub mod report;
pub mod scenario;
pub mod serve;
pub mod shop;
pub mod trips;
pub mod wire;
