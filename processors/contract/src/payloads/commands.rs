//! Commands the sagas send. The escrow saga: `payment.commands` (to the
//! payment service) and `booking.commands` (to the booking service), keyed by
//! `booking_id` like the facts they answer (docs/escrow-saga.md). The order
//! saga: `inventory.commands` keyed by `product_id`, and `payment.commands`
//! keyed by `order_id` (docs/order-saga.md).

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::values::{Cents, Currency, DecimalAmount};

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

/// Reserve stock for one order line (order saga, on `order.created`). Keyed
/// by `product_id`: the inventory service keeps stock per product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryReserveRequested {
    pub reservation_id: String,
    pub order_id: String,
    pub product_id: String,
    pub quantity: u32,
    pub location_id: String,
    pub expires_at: Timestamp,
    pub occurred_at: Timestamp,
}

/// Give a held reservation back to available stock (compensation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryReleaseRequested {
    pub reservation_id: String,
    pub order_id: String,
    pub product_id: String,
    pub quantity: u32,
    pub location_id: String,
    /// `order_cancelled`, `reservation_expired`, `payment_failed`,
    /// `out_of_stock` or `order_closed` (a reservation that arrived late).
    pub reason: String,
    pub occurred_at: Timestamp,
}

/// Turn a held reservation into a sale (on `payment.captured`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryConsumeRequested {
    pub reservation_id: String,
    pub order_id: String,
    pub product_id: String,
    pub quantity: u32,
    pub location_id: String,
    pub occurred_at: Timestamp,
}

/// Capture the order's amount (order saga, once every line is reserved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentCaptureRequested {
    pub order_id: String,
    pub customer_id: String,
    pub amount: DecimalAmount,
    pub currency: Currency,
    pub occurred_at: Timestamp,
}

/// Refund a captured order payment; the amount is exactly what was captured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefundRequested {
    pub order_id: String,
    pub payment_id: String,
    pub amount: DecimalAmount,
    pub currency: Currency,
    /// `customer_request`, or why the order was cancelled after capture.
    pub reason: String,
    pub occurred_at: Timestamp,
}
