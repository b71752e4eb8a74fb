//! `tracking.events` (Kilat): keyed by `booking_id` (a trip belongs to one
//! booking), co-partitioned with `booking.events`. `owner_id` is optional: the
//! seed lacks it on started/completed (its "Known Gaps" table).

use serde::{Deserialize, Serialize};

use super::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackingStarted {
    pub track_id: String,
    pub booking_id: String,
    pub runner_id: String,
    pub started_at: Timestamp,
    pub occurred_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackingUpdated {
    pub track_id: String,
    pub booking_id: String,
    pub runner_id: String,
    pub latitude: f64,
    pub longitude: f64,
    pub speed_kmh: f64,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackingCompleted {
    pub track_id: String,
    pub booking_id: String,
    pub runner_id: String,
    pub total_distance_km: f64,
    pub completed_at: Timestamp,
    pub occurred_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
}
