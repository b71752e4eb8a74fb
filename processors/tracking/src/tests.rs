//! The transition table of docs/tracking.md, row by row.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sagastream_contract::payloads::booking::{BookingAccepted, BookingCancelled, BookingDeliveryConfirmed};
use sagastream_contract::payloads::runner::{RunnerLocationUpdate, RunnerOnline};
use sagastream_contract::{Event, Payload};
use sagastream_runtime::{Context, Processor, RejectionClass, StateChange, Timer};

use super::*;

const KEY: &str = "bk-1";
const RUNNER: &str = "rnr-1";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}

fn accepted(runner: &str) -> Payload {
    BookingAccepted {
        booking_id: KEY.into(),
        booking_number: "BK-1".into(),
        runner_id: runner.into(),
        owner_id: "own-1".into(),
        occurred_at: t0(),
    }
    .into()
}

fn delivered() -> Payload {
    BookingDeliveryConfirmed {
        booking_id: KEY.into(),
        booking_number: "BK-1".into(),
        runner_id: RUNNER.into(),
        owner_id: "own-1".into(),
        delivered_at: t0(),
        occurred_at: t0(),
    }
    .into()
}

fn cancelled() -> Payload {
    BookingCancelled {
        booking_id: KEY.into(),
        booking_number: "BK-1".into(),
        cancelled_by: "owner".into(),
        reason: "changed_plans".into(),
        occurred_at: t0(),
    }
    .into()
}

/// A fix `secs` after t0 at `(lat, lon)`.
fn fix(runner: &str, secs: i64, lat: f64, lon: f64) -> Payload {
    RunnerLocationUpdate {
        runner_id: runner.into(),
        booking_id: Some(KEY.into()),
        latitude: lat,
        longitude: lon,
        speed_kmh: 20.0,
        heading_degrees: 90.0,
        timestamp: t0() + TimeDelta::seconds(secs),
        occurred_at: t0() + TimeDelta::seconds(secs),
    }
    .into()
}

/// A trip driven through the processor as the runtime would: state,
/// emitted event types and the purge timer.
struct Run {
    tracking: Tracking,
    state: Option<Box<Trip>>,
    emitted: Vec<Payload>,
    purge_at: Option<DateTime<Utc>>,
}

impl Run {
    fn new() -> Run {
        Run { tracking: Tracking::default(), state: None, emitted: Vec::new(), purge_at: None }
    }

    fn feed(&mut self, payload: Payload) -> Result<(), String> {
        let event = Event::new("/test", payload);
        let now = match &event.data {
            Payload::RunnerLocationUpdate(e) => e.occurred_at,
            _ => t0(),
        };
        let ctx = Context { key: KEY, partition: 0, now, topic: "booking.events" };
        let step = self.tracking.process(self.state.as_ref(), &event, &ctx).map_err(|r| r.class.to_owned())?;
        self.apply(step);
        Ok(())
    }

    fn apply(&mut self, step: sagastream_runtime::Step<Box<Trip>>) {
        match step.state {
            StateChange::Keep => {}
            StateChange::Set(s) => self.state = Some(s),
            StateChange::Delete => self.state = None,
        }
        self.emitted.extend(step.emits.into_iter().map(|e| *e.payload));
        for t in step.timers {
            if let sagastream_runtime::TimerCommand::Set { name, due } = t {
                assert_eq!(name, PURGE);
                self.purge_at = Some(due);
            }
        }
    }

    fn trip(&self) -> &Trip {
        self.state.as_deref().expect("a trip")
    }

    fn updates(&self) -> usize {
        self.emitted.iter().filter(|p| matches!(p, Payload::TrackingUpdated(_))).count()
    }
}

fn active() -> Run {
    let mut r = Run::new();
    r.feed(accepted(RUNNER)).unwrap();
    r
}

#[test]
fn row_01_acceptance_starts_the_trip_with_its_owner() {
    let r = active();
    assert_eq!(r.trip().phase, Phase::Active);
    let [Payload::TrackingStarted(s), Payload::RunnerAssigned(a)] = &r.emitted[..] else { panic!("{:?}", r.emitted) };
    assert_eq!((s.track_id.as_str(), s.runner_id.as_str()), ("trk_bk-1", RUNNER));
    assert_eq!(s.owner_id.as_deref(), Some("own-1"), "the catalog's gap: owner_id is on the event");
    assert_eq!((a.runner_id.as_str(), a.booking_id.as_str()), (RUNNER, KEY), "runner.assigned, keyed by runner");
}

#[test]
fn row_02_the_same_acceptance_again_changes_nothing_another_runner_is_refused() {
    let mut r = active();
    r.feed(accepted(RUNNER)).unwrap();
    assert_eq!(r.emitted.len(), 2);
    assert_eq!(r.feed(accepted("rnr-2")).unwrap_err(), Class::ConflictingFact.code());
}

#[test]
fn row_03_a_location_before_the_acceptance_tracks_nothing() {
    let mut r = Run::new();
    r.feed(fix(RUNNER, 1, -6.2, 106.8)).unwrap();
    assert!(r.state.is_none() && r.emitted.is_empty());
}

#[test]
fn row_04_waypoints_add_up_and_updates_are_throttled() {
    let mut r = active();
    // Due east along the equator-ish latitude, 0.001° (about 110 m) every 5 s.
    for i in 0..13 {
        r.feed(fix(RUNNER, 5 * i, -6.2, 106.8 + 0.001 * i as f64)).unwrap();
    }
    let trip = r.trip();
    assert_eq!(trip.waypoints, 13);
    let expected = geo::Point::new(-6.2, 106.8).unwrap().distance_m(geo::Point::new(-6.2, 106.812).unwrap());
    assert!((trip.distance_m - expected).abs() < 0.01, "{} vs {expected}", trip.distance_m);
    // The first waypoint, then one per 10 s (every second fix): 0, 10, 20, ..., 60 s.
    assert_eq!(r.updates(), 7);
}

#[test]
fn row_04_a_runner_standing_still_sends_no_updates() {
    let mut r = active();
    for i in 0..20 {
        r.feed(fix(RUNNER, 10 * i, -6.2, 106.8)).unwrap();
    }
    assert_eq!((r.updates(), r.trip().distance_m), (1, 0.0), "under 50 m moved: the first waypoint only");
}

#[test]
fn row_05_a_late_or_repeated_fix_moves_nothing() {
    let mut r = active();
    r.feed(fix(RUNNER, 10, -6.2, 106.8)).unwrap();
    r.feed(fix(RUNNER, 20, -6.2, 106.801)).unwrap();
    let before = r.trip().clone();
    r.feed(fix(RUNNER, 15, -6.3, 106.9)).unwrap();
    r.feed(fix(RUNNER, 20, -6.2, 106.801)).unwrap();
    assert_eq!(r.trip(), &before);
}

#[test]
fn row_06_impossible_coordinates_go_to_the_dlq() {
    let mut r = active();
    assert_eq!(r.feed(fix(RUNNER, 1, 95.0, 106.8)).unwrap_err(), Class::InvalidCoordinates.code());
    assert_eq!(r.feed(fix(RUNNER, 1, -6.2, f64::NAN)).unwrap_err(), Class::InvalidCoordinates.code());
    assert_eq!(r.trip().waypoints, 0, "the trip is untouched");
}

#[test]
fn row_07_an_impossible_speed_goes_to_the_dlq() {
    let mut r = active();
    r.feed(fix(RUNNER, 0, -6.2, 106.8)).unwrap();
    // One degree of longitude (about 110 km) in a minute.
    assert_eq!(r.feed(fix(RUNNER, 60, -6.2, 107.8)).unwrap_err(), Class::ImpossibleSpeed.code());
    r.feed(fix(RUNNER, 120, -6.2, 106.801)).unwrap();
    assert_eq!(r.trip().waypoints, 2, "the next plausible fix counts");
}

#[test]
fn row_08_delivery_completes_with_the_distance_and_the_owner() {
    let mut r = active();
    r.feed(fix(RUNNER, 0, -6.2, 106.8)).unwrap();
    r.feed(fix(RUNNER, 60, -6.2, 106.81)).unwrap();
    r.feed(delivered()).unwrap();
    let Some(Payload::TrackingCompleted(c)) = r.emitted.last() else { panic!("{:?}", r.emitted) };
    let metres = geo::Point::new(-6.2, 106.8).unwrap().distance_m(geo::Point::new(-6.2, 106.81).unwrap());
    assert_eq!(c.total_distance_km, metres.round() / 1_000.0);
    assert_eq!(c.owner_id.as_deref(), Some("own-1"));
    assert_eq!(r.trip().phase, Phase::Completed);
    assert!(r.purge_at.is_some(), "a finished trip is forgotten later");
}

#[test]
fn row_09_delivered_again_changes_nothing() {
    let mut r = active();
    r.feed(delivered()).unwrap();
    let n = r.emitted.len();
    r.feed(delivered()).unwrap();
    assert_eq!(r.emitted.len(), n);
}

#[test]
fn row_10_a_location_after_the_end_tracks_nothing() {
    let mut r = active();
    r.feed(delivered()).unwrap();
    let before = r.trip().clone();
    r.feed(fix(RUNNER, 30, -6.2, 106.9)).unwrap();
    assert_eq!(r.trip(), &before);
}

#[test]
fn row_11_a_cancelled_booking_ends_the_trip_without_completion() {
    let mut r = active();
    r.feed(cancelled()).unwrap();
    assert_eq!(r.trip().phase, Phase::Cancelled);
    assert!(!r.emitted.iter().any(|p| matches!(p, Payload::TrackingCompleted(_))));
    assert!(r.purge_at.is_some());
    let mut r = Run::new();
    r.feed(cancelled()).unwrap();
    assert!(r.state.is_none(), "nothing to cancel without a trip");
}

#[test]
fn row_12_other_inputs_are_ignored() {
    let mut r = active();
    let online = RunnerOnline { runner_id: RUNNER.into(), latitude: 0.0, longitude: 0.0, occurred_at: t0() };
    r.feed(online.into()).unwrap();
    assert_eq!(r.emitted.len(), 2);
}

#[test]
fn row_13_the_purge_forgets_an_ended_trip_only() {
    let tracking = Tracking::default();
    let ctx = Context { key: KEY, partition: 0, now: t0(), topic: "" };
    let timer = Timer { name: PURGE.into(), due: t0() };
    let ended = Box::new(Trip { phase: Phase::Completed, ..active().trip().clone() });
    assert_eq!(tracking.on_timer(Some(&ended), &timer, &ctx).unwrap().state, StateChange::Delete);
    let open = Box::new(active().trip().clone());
    assert_eq!(tracking.on_timer(Some(&open), &timer, &ctx).unwrap().state, StateChange::Keep);
    let other = Timer { name: "other".into(), due: t0() };
    assert_eq!(tracking.on_timer(Some(&open), &other, &ctx).unwrap_err().class, Class::UnknownTimer.code());
}

#[test]
fn row_14_a_delivery_without_a_trip_goes_to_the_dlq() {
    let mut r = Run::new();
    assert_eq!(r.feed(delivered()).unwrap_err(), Class::InvalidTransition.code());
}

#[test]
fn updates_are_re_keyed_by_their_booking() {
    let with = Event::new("/t", fix(RUNNER, 0, 0.0, 0.0));
    assert_eq!(booking_of(&with).as_deref(), Some(KEY));
    let online = RunnerOnline { runner_id: RUNNER.into(), latitude: 0.0, longitude: 0.0, occurred_at: t0() };
    assert_eq!(booking_of(&Event::new("/t", online)), None);
}
