//! The escrow saga (docs/escrow-saga.md): a keyed state machine over
//! `booking.events` and `payment.events` that orchestrates the payment and
//! booking services with commands and publishes its decisions on
//! `escrow.saga.events`. Pure: the runtime runs it under exactly-once.

pub mod cli;
pub mod money;
pub mod saga;
pub mod state;

pub use saga::{Config, EscrowSaga};
pub use state::{Booking, Escrow, Saga};
