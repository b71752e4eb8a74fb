//! A trip's state: a running summary, never a list of waypoints, so it
//! stays the same size however long the trip. Serialized as the changelog
//! entry: add fields with `#[serde(default)]`, never rename.

use chrono::{DateTime, Utc};
use sagastream_runtime::SagaState;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No acceptance seen: nothing is tracked.
    #[default]
    None,
    /// Accepted: waypoints count.
    Active,
    /// Delivered: `tracking.completed` is out.
    Completed,
    /// Cancelled before delivery: no trip to complete.
    Cancelled,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::None => "none",
            Phase::Active => "active",
            Phase::Completed => "completed",
            Phase::Cancelled => "cancelled",
        }
    }
}

/// One GPS fix: where, and when the device took it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub lat: f64,
    pub lon: f64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Trip {
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<Box<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<Box<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// The last waypoint counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Fix>,
    /// The waypoint of the last `tracking.updated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent: Option<Fix>,
    /// Along the waypoints, in metres.
    #[serde(default)]
    pub distance_m: f64,
    #[serde(default)]
    pub waypoints: u32,
}

impl SagaState for Trip {
    fn check_invariants(&self) -> Result<(), String> {
        if !self.distance_m.is_finite() || self.distance_m < 0.0 {
            return Err(format!("a distance of {} m", self.distance_m));
        }
        if matches!(self.phase, Phase::Active | Phase::Completed)
            && (self.runner_id.is_none() || self.started_at.is_none())
        {
            return Err(format!("{} without a runner or a start", self.phase.as_str()));
        }
        if self.waypoints > 0 && self.last.is_none() {
            return Err("waypoints counted without the last one".into());
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("{} waypoints={} distance_m={:.0}", self.phase.as_str(), self.waypoints, self.distance_m)
    }

    fn may_purge(&self) -> bool {
        matches!(self.phase, Phase::Completed | Phase::Cancelled)
    }
}
