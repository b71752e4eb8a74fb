//! `payment.events` (Kilat escrow): keyed by `booking_id` so the escrow saga
//! sees a booking's payment facts on the same partition as its booking facts.
//! Order payments (`payment.captured`, `capture_failed`, `refunded`) share the
//! topic, keyed by `order_id`: the topic is co-partitioned with both
//! `booking.events` and `order.events`.
//!
//! `owner_id` is optional on `escrow_held` and `failed`: the seed omits it
//! there (its "Known Gaps" table), we accept it when producers add it.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::values::{Cents, Currency, DecimalAmount};

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

/// Who or what opened a dispute (Go4u `opened_by`, KorrectNG).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisputeOpened {
    pub dispute_id: String,
    pub booking_id: String,
    /// `requester`, `agent` or `system`; kept open for new actors.
    pub opened_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub occurred_at: Timestamp,
}

/// How a dispute ends (Go4u `resolution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeResolution {
    RefundRequester,
    ReleaseToAgent,
    Split,
}

/// Go4u's decimal ratios arrive as basis points (0..=10000, summing to
/// 10000), so no float ever decides an amount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisputeResolved {
    pub dispute_id: String,
    pub booking_id: String,
    pub resolution: DisputeResolution,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_requester_bps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_agent_bps: Option<u32>,
    pub occurred_at: Timestamp,
}

/// `payment.captured` (new, order payments): the order's amount was captured.
/// Keyed by `order_id`, like every order payment event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub order_id: String,
    pub payment_id: String,
    pub amount: DecimalAmount,
    pub currency: Currency,
    pub captured_at: Timestamp,
}

/// `payment.capture_failed` (new): the capture was declined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentCaptureFailed {
    pub order_id: String,
    pub reason: String,
    pub failed_at: Timestamp,
}

/// `payment.refunded` (new): a captured order payment was refunded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub order_id: String,
    pub payment_id: String,
    pub refund_id: String,
    pub amount: DecimalAmount,
    pub currency: Currency,
    pub refund_method: String,
    pub processed_at: Timestamp,
}
