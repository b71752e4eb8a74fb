//! The tracking processor (docs/tracking.md): a trip per booking, from
//! `booking.accepted` to `booking.delivery_confirmed`. The runner's GPS
//! updates (`runner.location_update` on `runner.events`, keyed by runner)
//! reach the booking's trip through the runtime's repartition step, add a
//! waypoint each and give a throttled `tracking.updated`; the delivery gives
//! `tracking.completed` with the distance along the waypoints. Every row of
//! the transition table names its arm here and its test.

pub mod cli;
pub mod geo;
pub mod state;

use chrono::TimeDelta;
use sagastream_contract::payloads::booking::{BookingAccepted, BookingDeliveryConfirmed};
use sagastream_contract::payloads::runner::{RunnerAssigned, RunnerLocationUpdate};
use sagastream_contract::payloads::tracking::{TrackingCompleted, TrackingStarted, TrackingUpdated};
use sagastream_contract::{Event, Payload};
use sagastream_runtime::saga::on_purge;
use sagastream_runtime::{
    Context, Outcome, Processor, Rejection, RejectionClass, Repartition, SagaState, Spec, Step, Timer, Working,
};

use crate::geo::Point;
use crate::state::{Fix, Phase, Trip};

pub use sagastream_runtime::PURGE;

pub const NAME: &str = "tracking";
/// The internal topic the runner's updates are re-keyed into, by booking.
pub const REPARTITION_TOPIC: &str = "tracking.runner.repartition";

sagastream_runtime::rejection_classes! {
    /// DLQ classes (the `__streams.errors.exception` header and a metric label).
    pub enum Class {
        InvalidCoordinates = "invalid_coordinates",
        ImpossibleSpeed = "impossible_speed",
        ConflictingFact = "conflicting_fact",
        InvalidTransition = "invalid_transition",
        InvariantViolated = "invariant_violated",
        UnknownTimer = "unknown_timer",
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// At most one `tracking.updated` per this long per booking...
    pub update_interval: TimeDelta,
    /// ...and per this many metres of movement.
    pub update_distance_m: f64,
    /// A fix implying a faster move than this from the last one is refused.
    pub max_speed_kmh: f64,
    /// A finished trip is forgotten after this long.
    pub purge_after: TimeDelta,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            update_interval: TimeDelta::seconds(10),
            update_distance_m: 50.0,
            max_speed_kmh: 250.0,
            purge_after: TimeDelta::days(1),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Tracking {
    pub config: Config,
}

/// The repartition key of a runner event: the booking a GPS update belongs
/// to. Presence events and updates between bookings belong to no trip.
pub fn booking_of(event: &Event) -> Option<String> {
    match &event.data {
        Payload::RunnerLocationUpdate(e) => e.booking_id.clone(),
        _ => None,
    }
}

/// The trip's id: derived from the booking, so a re-run names it alike.
pub fn track_id(booking_id: &str) -> String {
    format!("trk_{booking_id}")
}

impl Processor for Tracking {
    // Boxed like the sagas': the engine's hash map then holds a pointer.
    type State = Box<Trip>;

    fn spec(&self) -> Spec {
        Spec {
            name: NAME,
            version: env!("CARGO_PKG_VERSION"),
            inputs: vec!["booking.events", REPARTITION_TOPIC],
            outputs: vec!["tracking.events", "runner.events"],
            changelog: Some("tracking.changelog"),
            dlq: "tracking.dlq",
            // The decoded way: no profile has asked for the quick one here yet.
            repartitions: vec![Repartition {
                from: "runner.events",
                to: REPARTITION_TOPIC,
                key: booking_of,
                quick_key: None,
            }],
        }
    }

    fn state_label(&self, trip: &Box<Trip>) -> Option<&'static str> {
        Some(trip.phase.as_str())
    }

    fn process(&self, state: Option<&Box<Trip>>, event: &Event, ctx: &Context<'_>) -> Outcome<Box<Trip>> {
        let mut t = Transition { config: &self.config, w: Working::new(state.map(|s| &**s), ctx) };
        match &event.data {
            Payload::BookingAccepted(e) => t.accepted(e)?,
            Payload::RunnerLocationUpdate(e) => t.location(e)?,
            Payload::BookingDeliveryConfirmed(e) => t.delivered(e)?,
            // Row 11.
            Payload::BookingCancelled(_) => t.cancelled(),
            // Row 12: the rest of the booking lifecycle, and our own kind.
            _ => return Ok(Step::keep()),
        }
        t.finish()
    }

    fn on_timer(&self, state: Option<&Box<Trip>>, timer: &Timer, _: &Context<'_>) -> Outcome<Box<Trip>> {
        match (timer.name.as_str(), state) {
            // Row 13.
            (PURGE, Some(trip)) => Ok(on_purge(&**trip)),
            (other, _) => Err(Class::UnknownTimer.reject(format!("timer {other:?} is not a tracking timer"))),
        }
    }
}

struct Transition<'a> {
    config: &'a Config,
    w: Working<'a, Trip>,
}

sagastream_runtime::saga_transition!(Transition, Trip);

impl Transition<'_> {
    fn accepted(&mut self, e: &BookingAccepted) -> Result<(), Rejection> {
        match self.s.phase {
            // Row 1.
            Phase::None => {
                self.s.phase = Phase::Active;
                self.s.runner_id = Some(e.runner_id.as_str().into());
                self.s.owner_id = Some(e.owner_id.as_str().into());
                self.s.started_at = Some(self.now());
                self.emit(TrackingStarted {
                    track_id: track_id(self.ctx.key),
                    booking_id: self.key(),
                    runner_id: e.runner_id.clone(),
                    started_at: self.now(),
                    occurred_at: self.now(),
                    owner_id: Some(e.owner_id.clone()),
                });
                // The catalog's runner.assigned, never produced until now:
                // the runner's side of the acceptance, keyed by runner.
                self.emit(RunnerAssigned {
                    runner_id: e.runner_id.clone(),
                    booking_id: self.key(),
                    occurred_at: self.now(),
                });
                Ok(())
            }
            // Row 2: the same acceptance again.
            _ if self.s.runner_id.as_deref() == Some(e.runner_id.as_str()) => Ok(()),
            _ => Err(Class::ConflictingFact.reject(format!(
                "booking.accepted by runner {}, the trip's runner is {}",
                e.runner_id,
                self.s.runner_id.as_deref().unwrap_or("unknown")
            ))),
        }
    }

    fn location(&mut self, e: &RunnerLocationUpdate) -> Result<(), Rejection> {
        let point = Point::new(e.latitude, e.longitude).map_err(|why| Class::InvalidCoordinates.reject(why))?;
        match self.s.phase {
            // Row 3: before the acceptance there is no trip; row 10: after it ended.
            Phase::None | Phase::Completed | Phase::Cancelled => return Ok(()),
            Phase::Active => {}
        }
        if self.s.runner_id.as_deref() != Some(e.runner_id.as_str()) {
            return Err(Class::ConflictingFact.reject(format!(
                "a location of runner {} for a trip of runner {}",
                e.runner_id,
                self.s.runner_id.as_deref().unwrap_or("unknown")
            )));
        }
        let fix = Fix { lat: point.lat, lon: point.lon, at: e.timestamp };
        let Some(last) = self.s.last else {
            // Row 4: the first waypoint.
            self.waypoint(fix, 0.0, e.speed_kmh);
            return Ok(());
        };
        // Row 5: a fix no newer than the last one (late or repeated) moves nothing.
        if fix.at <= last.at {
            return Ok(());
        }
        let step_m = Point { lat: last.lat, lon: last.lon }.distance_m(point);
        let hours = (fix.at - last.at).num_milliseconds() as f64 / 3_600_000.0;
        let kmh = step_m / 1_000.0 / hours;
        if kmh > self.config.max_speed_kmh {
            // Row 7.
            return Err(Class::ImpossibleSpeed.reject(format!(
                "{:.0} m in {:.1} s is {kmh:.0} km/h, above {} km/h",
                step_m,
                hours * 3_600.0,
                self.config.max_speed_kmh
            )));
        }
        // Row 4.
        self.waypoint(fix, step_m, e.speed_kmh);
        Ok(())
    }

    /// Counts a waypoint and sends `tracking.updated` when the throttle allows.
    fn waypoint(&mut self, fix: Fix, step_m: f64, speed_kmh: f64) {
        self.s.distance_m += step_m;
        self.s.waypoints += 1;
        self.s.last = Some(fix);
        let due = match self.s.last_sent {
            None => true,
            Some(sent) => {
                let moved = Point { lat: sent.lat, lon: sent.lon }.distance_m(Point { lat: fix.lat, lon: fix.lon });
                fix.at - sent.at >= self.config.update_interval && moved >= self.config.update_distance_m
            }
        };
        if due {
            self.s.last_sent = Some(fix);
            self.emit(TrackingUpdated {
                track_id: track_id(self.ctx.key),
                booking_id: self.key(),
                runner_id: self.s.runner_id.as_deref().unwrap_or_default().to_owned(),
                latitude: fix.lat,
                longitude: fix.lon,
                speed_kmh,
                occurred_at: self.now(),
            });
        }
    }

    fn delivered(&mut self, e: &BookingDeliveryConfirmed) -> Result<(), Rejection> {
        match self.s.phase {
            // Row 8.
            Phase::Active => {
                self.s.phase = Phase::Completed;
                self.emit(TrackingCompleted {
                    track_id: track_id(self.ctx.key),
                    booking_id: self.key(),
                    runner_id: self.s.runner_id.as_deref().unwrap_or(&e.runner_id).to_owned(),
                    // Metres are the precision: a GPS fix is not better.
                    total_distance_km: (self.s.distance_m.round()) / 1_000.0,
                    completed_at: self.now(),
                    occurred_at: self.now(),
                    owner_id: self.s.owner_id.as_deref().map(str::to_owned),
                });
                Ok(())
            }
            // Row 9: delivered again.
            Phase::Completed => Ok(()),
            // Row 14.
            Phase::None | Phase::Cancelled => Err(Class::InvalidTransition
                .reject(format!("booking.delivery_confirmed for a trip that is {}", self.s.phase.as_str()))),
        }
    }

    fn cancelled(&mut self) {
        if self.s.phase == Phase::Active {
            self.s.phase = Phase::Cancelled;
        }
    }

    /// The purge once the trip ended, then the kit's finish.
    fn finish(mut self) -> Outcome<Box<Trip>> {
        if self.w.changed() && self.s.may_purge() {
            self.arm_purge(self.config.purge_after);
        }
        self.w.finish(Class::InvariantViolated)
    }
}

#[cfg(test)]
mod tests;
