//! The escrow saga's world: a participant simulator (the booking and payment
//! services answering the saga's commands) and a load generator that starts
//! bookings across a scenario mix and checks every outcome
//! (docs/simulator.md).

pub mod check;
pub mod load;
pub mod participants;
pub mod scenario;
pub mod serve;
