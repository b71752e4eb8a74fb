//! `payment.events` (Kilat escrow): keyed by `booking_id` so the escrow saga
//! sees a booking's payment facts on the same partition as its booking facts.
//!
//! `owner_id` is optional on `escrow_held` and `failed`: the seed omits it
//! there (its "Known Gaps" table), we accept it when producers add it.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::values::{Cents, Currency};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentEscrowCreated {
    pub payment_id: String,
    pub booking_id: String,
    pub owner_id: String,
    pub amount_cents: Cents,
    pub currency: Currency,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentEscrowHeld {
    pub payment_id: String,
    pub booking_id: String,
    pub stripe_payment_id: String,
    pub amount_cents: Cents,
    pub currency: Currency,
    pub occurred_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentEscrowReleased {
    pub payment_id: String,
    pub booking_id: String,
    pub runner_id: String,
    pub runner_payout_cents: Cents,
    pub platform_fee_cents: Cents,
    pub currency: Currency,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentEscrowRefunded {
    pub payment_id: String,
    pub booking_id: String,
    pub owner_id: String,
    pub amount_cents: Cents,
    pub currency: Currency,
    pub refund_reason: String,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub payment_id: String,
    pub booking_id: String,
    pub reason: String,
    pub occurred_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
}
