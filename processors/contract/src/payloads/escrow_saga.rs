//! `escrow.saga.events`: what the escrow saga decided, keyed by
//! `booking_id`. Every fact carries `owner_id` and `runner_id` once known, so
//! a downstream consumer (notifications) never skips one for a missing id,
//! the known gap of the Kilat catalog.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::values::{Cents, Currency};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscrowSagaStarted {
    pub booking_id: String,
    pub booking_number: String,
    pub owner_id: String,
    pub amount_cents: Cents,
    pub currency: Currency,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscrowSagaStateChanged {
    pub booking_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<String>,
    /// `<booking state>/<escrow state>` before, e.g. `accepted/hold_requested`.
    pub from: String,
    pub to: String,
    /// CloudEvent id of the input (or `timer:<name>`) that caused it.
    pub cause_event_id: String,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscrowSagaCompleted {
    pub booking_id: String,
    pub owner_id: String,
    pub runner_id: String,
    pub runner_payout_cents: Cents,
    pub platform_fee_cents: Cents,
    /// Refunded part of a split dispute resolution; 0 otherwise.
    pub refunded_cents: Cents,
    pub currency: Currency,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscrowSagaCancelled {
    pub booking_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<String>,
    pub refunded_cents: Cents,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    pub reason: String,
    pub occurred_at: Timestamp,
}

/// Ended by compensation after a failure (hold failed or timed out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscrowSagaCompensated {
    pub booking_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<String>,
    pub refunded_cents: Cents,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    pub reason: String,
    pub occurred_at: Timestamp,
}

/// Delivery confirmed by the system after the configured time in delivery
/// (Go4u `confirmed_by: system`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscrowSagaAutoConfirmed {
    pub booking_id: String,
    pub owner_id: String,
    pub runner_id: String,
    pub in_delivery_since: Timestamp,
    pub occurred_at: Timestamp,
}

/// A requested release or refund was not confirmed in time: an alarm, never a resend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscrowSagaStuck {
    pub booking_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<String>,
    /// `<booking state>/<escrow state>`.
    pub state: String,
    /// What the saga waits for, e.g. `payment.escrow_released`.
    pub waiting_for: String,
    pub since: Timestamp,
    pub occurred_at: Timestamp,
}
