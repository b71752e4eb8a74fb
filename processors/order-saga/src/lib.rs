//! The order saga (docs/order-saga.md): a keyed state machine over
//! `order.events`, order payments on `payment.events` and the inventory
//! answers re-keyed from `inventory.events`, which reserves stock, captures
//! the payment, and compensates (releases, refunds) when the order fails or
//! is cancelled. Pure: the runtime runs it under exactly-once.

pub mod cli;
pub mod money;
pub mod saga;
pub mod state;

pub use saga::{Config, OrderSaga};
pub use state::{LineStatus, Order, Payment, Phase};
