//! `booking.events` (Kilat): keyed by `booking_id`.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use crate::values::{Cents, Currency};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingRequested {
    pub booking_id: String,
    pub booking_number: String,
    pub owner_id: String,
    pub pet_type: String,
    pub pet_name: String,
    pub pickup_lat: f64,
    pub pickup_lng: f64,
    pub dropoff_lat: f64,
    pub dropoff_lng: f64,
    pub estimated_price_cents: Cents,
    pub currency: Currency,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingAccepted {
    pub booking_id: String,
    pub booking_number: String,
    pub runner_id: String,
    pub owner_id: String,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingPetPickedUp {
    pub booking_id: String,
    pub booking_number: String,
    pub runner_id: String,
    pub owner_id: String,
    pub picked_up_at: Timestamp,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingDeliveryInProgress {
    pub booking_id: String,
    pub booking_number: String,
    pub runner_id: String,
    pub owner_id: String,
    pub picked_up_at: Timestamp,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingDeliveryConfirmed {
    pub booking_id: String,
    pub booking_number: String,
    pub runner_id: String,
    pub owner_id: String,
    pub delivered_at: Timestamp,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingCompleted {
    pub booking_id: String,
    pub booking_number: String,
    pub runner_id: String,
    pub owner_id: String,
    pub final_price_cents: Cents,
    pub currency: Currency,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingCancelled {
    pub booking_id: String,
    pub booking_number: String,
    /// `owner`, `runner` or `system`; kept open so producers can add actors.
    pub cancelled_by: String,
    pub reason: String,
    pub occurred_at: Timestamp,
}
