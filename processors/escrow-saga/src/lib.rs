//! The escrow saga (docs/escrow-saga.md). Built in steps: so far the money
//! rules every transition will use; the state machine and the binary follow.

pub mod money;
