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

/// Who a booking is between: what every step of the booking service's story
/// repeats. The simulator, the benchmarks and the tests tell that story with
/// it, so the steps cannot drift apart from each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingParties {
    pub booking_id: String,
    pub booking_number: String,
    pub owner_id: String,
    pub runner_id: String,
}

impl BookingParties {
    pub fn accepted(&self, at: Timestamp) -> BookingAccepted {
        BookingAccepted {
            booking_id: self.booking_id.clone(),
            booking_number: self.booking_number.clone(),
            runner_id: self.runner_id.clone(),
            owner_id: self.owner_id.clone(),
            occurred_at: at,
        }
    }

    pub fn picked_up(&self, at: Timestamp) -> BookingPetPickedUp {
        BookingPetPickedUp {
            booking_id: self.booking_id.clone(),
            booking_number: self.booking_number.clone(),
            runner_id: self.runner_id.clone(),
            owner_id: self.owner_id.clone(),
            picked_up_at: at,
            occurred_at: at,
        }
    }

    /// On the way, since `picked_up_at`.
    pub fn in_delivery(&self, picked_up_at: Timestamp, at: Timestamp) -> BookingDeliveryInProgress {
        let BookingPetPickedUp { booking_id, booking_number, runner_id, owner_id, .. } = self.picked_up(at);
        BookingDeliveryInProgress { booking_id, booking_number, runner_id, owner_id, picked_up_at, occurred_at: at }
    }

    /// The owner confirmed the delivery made at `delivered_at`.
    pub fn confirmed(&self, delivered_at: Timestamp, at: Timestamp) -> BookingDeliveryConfirmed {
        let BookingPetPickedUp { booking_id, booking_number, runner_id, owner_id, .. } = self.picked_up(at);
        BookingDeliveryConfirmed { booking_id, booking_number, runner_id, owner_id, delivered_at, occurred_at: at }
    }
}
