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

/// Derived by sagastream-runner (docs/runner.md), not in the Kilat catalog:
/// a runner went online or offline, as the presence processor sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerPresenceChanged {
    pub runner_id: String,
    /// `online` or `offline`.
    pub status: String,
    /// What changed it: `online` or `offline` (the runner said so),
    /// `located` (a location update from a runner thought offline), or
    /// `silent` (nothing heard for the configured silence).
    pub reason: String,
    /// The last known position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// The booking the runner is on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<String>,
    pub last_seen_at: Timestamp,
    pub occurred_at: Timestamp,
}
