//! `order.events` (First Viscount): keyed by `order_id`. Amounts are exact
//! decimal strings as in the seed.
//!
//! Addresses are personal data: they travel in the payload because the seed's
//! consumers need them, but sagastream never logs or prints a payload.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::values::{Currency, DecimalAmount};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_id: String,
    pub quantity: u32,
    pub unit_price: DecimalAmount,
    pub total_price: DecimalAmount,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub street: String,
    pub city: String,
    pub state: String,
    pub zip: String,
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: String,
    pub customer_id: String,
    pub total_amount: DecimalAmount,
    pub currency: Currency,
    pub status: String,
    pub items: Vec<OrderItem>,
    pub shipping_address: Address,
    pub billing_address: Address,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationResults {
    pub inventory_check: String,
    pub pricing_check: String,
    pub customer_check: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub product_id: String,
    pub reservation_id: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderValidated {
    pub order_id: String,
    pub validation_results: ValidationResults,
    pub reservations: Vec<Reservation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCompleted {
    pub order_id: String,
    pub completion_time: Timestamp,
    pub payment_id: String,
    /// Absent when no fulfillment step is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_id: Option<String>,
    pub final_amount: DecimalAmount,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: String,
    pub cancellation_reason: String,
    pub cancelled_by: String,
    pub cancelled_at: Timestamp,
    pub refund_required: bool,
    pub refund_amount: DecimalAmount,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRefunded {
    pub order_id: String,
    pub refund_id: String,
    pub refund_amount: DecimalAmount,
    pub refund_reason: String,
    pub refund_method: String,
    pub processed_at: Timestamp,
}

/// `order.cancel_requested` (new): the customer or the order service asks to
/// cancel an order. The order saga decides what that means: before capture
/// it releases the reservations; after capture it also refunds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCancelRequested {
    pub order_id: String,
    /// Free text code, e.g. `customer_request`.
    pub reason: String,
    /// `customer`, `support` or `system`.
    pub requested_by: String,
    pub requested_at: Timestamp,
}
