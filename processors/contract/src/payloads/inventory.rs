//! `inventory.events` (First Viscount): keyed by `product_id`, so every
//! location of a product is on one partition. Quantities are unsigned: a
//! negative stock level is invalid input, not a value.

use serde::{Deserialize, Serialize};

use super::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryReserved {
    pub reservation_id: String,
    pub product_id: String,
    pub quantity: u32,
    pub location_id: String,
    pub order_id: String,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryReleased {
    pub reservation_id: String,
    pub product_id: String,
    pub quantity: u32,
    pub location_id: String,
    pub reason: String,
    /// Added to the seed (optional, backward compatible): the order the
    /// reservation belonged to, so the release reaches the order saga.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryAdjusted {
    pub product_id: String,
    pub location_id: String,
    pub old_quantity: u32,
    pub new_quantity: u32,
    pub adjustment_type: String,
    pub reason: String,
    pub reference_number: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    Warning,
    Critical,
}

/// Canonical `inventory.low_stock`; First Viscount calls it `LowStockAlert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryLowStock {
    pub product_id: String,
    pub location_id: String,
    pub current_quantity: u32,
    pub threshold: u32,
    pub alert_level: AlertLevel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryUpdated {
    pub product_id: String,
    pub location_id: String,
    pub quantity: u32,
    pub reserved_quantity: u32,
    pub available_quantity: u32,
    pub update_type: String,
    pub source_event: String,
}

/// `product.out_of_stock`: emitted when a product's available stock at a
/// location reaches zero. Carried on `inventory.events` because the
/// inventory projector produces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductOutOfStock {
    pub product_id: String,
    pub last_stock_level: u32,
    pub location_id: String,
}

/// `inventory.reservation_failed` (new): a reservation could not be made,
/// typically for lack of available stock. Carries the order so the order
/// saga can compensate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryReservationFailed {
    pub reservation_id: String,
    pub product_id: String,
    pub quantity: u32,
    pub location_id: String,
    pub order_id: String,
    /// Available quantity when the request was refused.
    pub available_quantity: u32,
    /// `insufficient_stock` or `unknown_product`.
    pub reason: String,
}
