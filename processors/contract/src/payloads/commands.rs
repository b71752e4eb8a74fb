//! Commands the escrow saga sends: `payment.commands` (to the payment
//! service) and `booking.commands` (to the booking service), keyed by
//! `booking_id` like the facts they answer. docs/escrow-saga.md says when
//! each is sent.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::values::{Cents, Currency};

/// Hold the booking's price in escrow (sent on `booking.accepted`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentEscrowHoldRequested {
    pub booking_id: String,
    pub booking_number: String,
    pub owner_id: String,
    pub runner_id: String,
    pub amount_cents: Cents,
    pub currency: Currency,
    pub occurred_at: Timestamp,
}

/// Release held funds to the runner; payout + fee = amount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentEscrowReleaseRequested {
    pub booking_id: String,
    pub payment_id: String,
    pub runner_id: String,
    pub amount_cents: Cents,
    pub runner_payout_cents: Cents,
    pub platform_fee_cents: Cents,
    pub currency: Currency,
    /// `delivered`, `auto_confirmed` or `dispute`.
    pub reason: String,
    pub occurred_at: Timestamp,
}

/// Return held funds to the owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentEscrowRefundRequested {
    pub booking_id: String,
    pub payment_id: String,
    pub owner_id: String,
    pub amount_cents: Cents,
    pub currency: Currency,
    /// `cancelled`, `dispute` or `hold_after_cancel`.
    pub reason: String,
    pub occurred_at: Timestamp,
}

/// Cancel a booking the saga cannot complete (compensation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingCancelRequested {
    pub booking_id: String,
    pub booking_number: String,
    /// `payment_failed` or `hold_timeout`.
    pub reason: String,
    pub occurred_at: Timestamp,
}
