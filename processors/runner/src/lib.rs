//! The runner presence processor (docs/runner.md): per runner, whether it
//! is online, when it was last heard of, its last position and the booking
//! it is on, from `runner.online`, `runner.offline`, `runner.location_update`
//! and `runner.assigned`. A change of presence is `runner.presence_changed`
//! on `runner.presence`; a runner silent for `--offline-after` is marked
//! offline by a durable timer. Every row of the table names its arm here.

pub mod cli;

use chrono::{DateTime, TimeDelta, Utc};
use sagastream_contract::payloads::runner::RunnerPresenceChanged;
use sagastream_contract::{Event, Payload};
use sagastream_runtime::{
    Context, Outcome, Processor, Rejection, RejectionClass, SagaState, Spec, Step, Timer, Working,
};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "runner";
/// The timer that marks a silent runner offline.
pub const SILENCE: &str = "silence";

sagastream_runtime::rejection_classes! {
    /// DLQ classes (the `__streams.errors.exception` header and a metric label).
    pub enum Class {
        InvalidCoordinates = "invalid_coordinates",
        InvariantViolated = "invariant_violated",
        UnknownTimer = "unknown_timer",
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// A runner not heard of for this long is marked offline.
    pub offline_after: TimeDelta,
}

impl Default for Config {
    fn default() -> Config {
        Config { offline_after: TimeDelta::minutes(5) }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunnerPresence {
    pub config: Config,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Unknown,
    Online,
    Offline,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Online => "online",
            Status::Offline => "offline",
        }
    }
}

/// One runner's presence. Serialized as the changelog entry: add fields
/// with `#[serde(default)]`, never rename.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Presence {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<(f64, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<Box<str>>,
}

impl SagaState for Presence {
    fn check_invariants(&self) -> Result<(), String> {
        match (self.status, self.last_seen) {
            (Status::Online | Status::Offline, None) => Err(format!("{} but never seen", self.status.as_str())),
            _ => Ok(()),
        }
    }

    fn describe(&self) -> String {
        format!("{} booking={}", self.status.as_str(), self.booking_id.as_deref().unwrap_or("none"))
    }

    /// A runner's presence is kept: the runners are a bounded population.
    fn may_purge(&self) -> bool {
        false
    }
}

impl Processor for RunnerPresence {
    type State = Box<Presence>;

    fn spec(&self) -> Spec {
        Spec {
            name: NAME,
            version: env!("CARGO_PKG_VERSION"),
            inputs: vec!["runner.events"],
            outputs: vec!["runner.presence"],
            changelog: Some("runner.presence.changelog"),
            dlq: "runner.presence.dlq",
            repartitions: Vec::new(),
        }
    }

    fn state_label(&self, p: &Box<Presence>) -> Option<&'static str> {
        Some(p.status.as_str())
    }

    fn process(&self, state: Option<&Box<Presence>>, event: &Event, ctx: &Context<'_>) -> Outcome<Box<Presence>> {
        let mut t = Transition { config: &self.config, w: Working::new(state.map(|s| &**s), ctx) };
        // Row 7: older than what is known moves nothing (a late record).
        if t.s.last_seen.is_some_and(|seen| ctx.now < seen) {
            return Ok(Step::keep());
        }
        match &event.data {
            // Row 1.
            Payload::RunnerOnline(e) => {
                t.seen(Some((e.latitude, e.longitude)))?;
                t.become_(Status::Online, "online");
            }
            // Row 2.
            Payload::RunnerOffline(_) => {
                t.s.last_seen = Some(ctx.now);
                t.cancel_timer(SILENCE);
                t.become_(Status::Offline, "offline");
            }
            // Row 3.
            Payload::RunnerLocationUpdate(e) => {
                t.seen(Some((e.latitude, e.longitude)))?;
                t.s.booking_id = e.booking_id.as_deref().map(Into::into);
                t.become_(Status::Online, "located");
            }
            // Row 4.
            Payload::RunnerAssigned(e) => {
                t.s.booking_id = Some(e.booking_id.as_str().into());
            }
            // Row 8.
            _ => return Ok(Step::keep()),
        }
        t.w.finish(Class::InvariantViolated)
    }

    fn on_timer(&self, state: Option<&Box<Presence>>, timer: &Timer, ctx: &Context<'_>) -> Outcome<Box<Presence>> {
        match (timer.name.as_str(), state) {
            // Row 5; row 6 when it is offline already. Every sign of life
            // moves the timer, so it fires only after a real silence.
            (SILENCE, Some(p)) => {
                let mut t = Transition { config: &self.config, w: Working::new(Some(&**p), ctx) };
                t.become_(Status::Offline, "silent");
                t.w.finish(Class::InvariantViolated)
            }
            (other, _) => Err(Class::UnknownTimer.reject(format!("timer {other:?} is not a presence timer"))),
        }
    }
}

struct Transition<'a> {
    config: &'a Config,
    w: Working<'a, Presence>,
}

sagastream_runtime::saga_transition!(Transition, Presence);

impl Transition<'_> {
    /// Heard of now, at `position`: the silence timer starts again.
    fn seen(&mut self, position: Option<(f64, f64)>) -> Result<(), Rejection> {
        if let Some((lat, lon)) = position {
            if !(lat.is_finite() && lon.is_finite() && (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
            {
                return Err(Class::InvalidCoordinates.reject(format!("coordinates ({lat}, {lon}) are off the globe")));
            }
            self.s.position = Some((lat, lon));
        }
        self.s.last_seen = Some(self.now());
        self.set_timer(SILENCE, self.config.offline_after);
        Ok(())
    }

    /// Moves to `status`; a change is published.
    fn become_(&mut self, status: Status, reason: &str) {
        if self.s.status == status {
            return;
        }
        self.s.status = status;
        let last_seen = self.s.last_seen.unwrap_or_else(|| self.now());
        self.emit(RunnerPresenceChanged {
            runner_id: self.key(),
            status: status.as_str().to_owned(),
            reason: reason.to_owned(),
            latitude: self.s.position.map(|p| p.0),
            longitude: self.s.position.map(|p| p.1),
            booking_id: self.s.booking_id.as_deref().map(str::to_owned),
            last_seen_at: last_seen,
            occurred_at: self.now(),
        });
    }
}

#[cfg(test)]
mod tests;
