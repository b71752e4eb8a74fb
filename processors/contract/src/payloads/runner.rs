//! `runner.events` (Kilat): keyed by `runner_id`. Coordinates, speeds and
//! distances are measurements, not money, so they are floats.

use serde::{Deserialize, Serialize};

use super::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerOnline {
    pub runner_id: String,
    pub latitude: f64,
    pub longitude: f64,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerOffline {
    pub runner_id: String,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerLocationUpdate {
    pub runner_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<String>,
    pub latitude: f64,
    pub longitude: f64,
    pub speed_kmh: f64,
    pub heading_degrees: f64,
    /// When the device took the fix; `occurred_at` is when it was published.
    pub timestamp: Timestamp,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerAssigned {
    pub runner_id: String,
    pub booking_id: String,
    pub occurred_at: Timestamp,
}
