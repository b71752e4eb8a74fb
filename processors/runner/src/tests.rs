//! The presence table of docs/runner.md, row by row.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sagastream_contract::payloads::booking::BookingAccepted;
use sagastream_contract::payloads::runner::{RunnerAssigned, RunnerLocationUpdate, RunnerOffline, RunnerOnline};
use sagastream_contract::{Event, Payload};
use sagastream_runtime::{Context, Processor, RejectionClass, StateChange, Step, Timer, TimerCommand};

use super::*;

const KEY: &str = "rnr-1";

fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap() + TimeDelta::seconds(secs)
}

fn online(secs: i64) -> Payload {
    RunnerOnline { runner_id: KEY.into(), latitude: -6.2, longitude: 106.8, occurred_at: at(secs) }.into()
}

fn offline(secs: i64) -> Payload {
    RunnerOffline { runner_id: KEY.into(), occurred_at: at(secs) }.into()
}

fn located(secs: i64, booking: Option<&str>, lat: f64) -> Payload {
    RunnerLocationUpdate {
        runner_id: KEY.into(),
        booking_id: booking.map(Into::into),
        latitude: lat,
        longitude: 106.8,
        speed_kmh: 10.0,
        heading_degrees: 0.0,
        timestamp: at(secs),
        occurred_at: at(secs),
    }
    .into()
}

struct Run {
    presence: RunnerPresence,
    state: Option<Box<Presence>>,
    changes: Vec<(String, String)>,
    silence_due: Option<DateTime<Utc>>,
}

impl Run {
    fn new() -> Run {
        Run { presence: RunnerPresence::default(), state: None, changes: Vec::new(), silence_due: None }
    }

    fn apply(&mut self, step: Step<Box<Presence>>) {
        match step.state {
            StateChange::Keep => {}
            StateChange::Set(s) => self.state = Some(s),
            StateChange::Delete => self.state = None,
        }
        for e in step.emits {
            let Payload::RunnerPresenceChanged(c) = *e.payload else { panic!("{e:?}") };
            self.changes.push((c.status, c.reason));
        }
        for t in step.timers {
            match t {
                TimerCommand::Set { due, .. } => self.silence_due = Some(due),
                TimerCommand::Cancel { .. } => self.silence_due = None,
            }
        }
    }

    fn feed(&mut self, secs: i64, payload: Payload) -> Result<(), String> {
        let event = Event::new("/t", payload);
        let ctx = Context { key: KEY, partition: 0, now: at(secs), topic: "runner.events" };
        let step = self.presence.process(self.state.as_ref(), &event, &ctx).map_err(|r| r.class.to_owned())?;
        self.apply(step);
        Ok(())
    }

    fn fire(&mut self) {
        let due = self.silence_due.take().expect("a silence timer");
        let ctx = Context { key: KEY, partition: 0, now: due, topic: "" };
        let timer = Timer { name: SILENCE.into(), due };
        let step = self.presence.on_timer(self.state.as_ref(), &timer, &ctx).unwrap();
        self.apply(step);
    }

    fn status(&self) -> Status {
        self.state.as_ref().map_or(Status::Unknown, |p| p.status)
    }

    fn last(&self) -> (&str, &str) {
        let (s, r) = self.changes.last().expect("a change");
        (s, r)
    }
}

#[test]
fn row_01_online_is_a_change_and_starts_the_silence_timer() {
    let mut r = Run::new();
    r.feed(0, online(0)).unwrap();
    assert_eq!((r.status(), r.last()), (Status::Online, ("online", "online")));
    assert_eq!(r.silence_due, Some(at(300)));
    r.feed(10, online(10)).unwrap();
    assert_eq!(r.changes.len(), 1, "online again is no change");
}

#[test]
fn row_02_offline_is_a_change_and_stops_the_timer() {
    let mut r = Run::new();
    r.feed(0, online(0)).unwrap();
    r.feed(20, offline(20)).unwrap();
    assert_eq!((r.status(), r.last()), (Status::Offline, ("offline", "offline")));
    assert_eq!(r.silence_due, None);
}

#[test]
fn row_03_a_location_keeps_the_runner_online_and_names_its_booking() {
    let mut r = Run::new();
    r.feed(0, located(0, Some("bk-1"), -6.2)).unwrap();
    assert_eq!(r.last(), ("online", "located"), "an update from a runner not known online");
    r.feed(30, located(30, Some("bk-1"), -6.21)).unwrap();
    let p = r.state.as_ref().unwrap();
    assert_eq!((p.booking_id.as_deref(), p.position, r.changes.len()), (Some("bk-1"), Some((-6.21, 106.8)), 1));
    assert_eq!(r.silence_due, Some(at(330)), "the silence starts again");
    r.feed(40, located(40, None, -6.22)).unwrap();
    assert_eq!(r.state.as_ref().unwrap().booking_id, None, "between bookings");
    assert_eq!(r.feed(50, located(50, None, 123.0)).unwrap_err(), Class::InvalidCoordinates.code());
}

#[test]
fn row_04_an_assignment_sets_the_current_booking() {
    let mut r = Run::new();
    r.feed(0, online(0)).unwrap();
    r.feed(5, RunnerAssigned { runner_id: KEY.into(), booking_id: "bk-9".into(), occurred_at: at(5) }.into()).unwrap();
    assert_eq!(r.state.as_ref().unwrap().booking_id.as_deref(), Some("bk-9"));
    assert_eq!(r.changes.len(), 1, "no presence change");
}

#[test]
fn rows_05_06_silence_marks_the_runner_offline_once() {
    let mut r = Run::new();
    r.feed(0, online(0)).unwrap();
    r.fire();
    assert_eq!((r.status(), r.last()), (Status::Offline, ("offline", "silent")));
    let p = r.state.clone().unwrap();
    let ctx = Context { key: KEY, partition: 0, now: at(900), topic: "" };
    let timer = Timer { name: SILENCE.into(), due: at(900) };
    let step = r.presence.on_timer(Some(&p), &timer, &ctx).unwrap();
    assert_eq!(step.state, StateChange::Keep, "offline already: nothing");
}

#[test]
fn row_07_a_late_record_moves_nothing() {
    let mut r = Run::new();
    r.feed(100, online(100)).unwrap();
    r.feed(50, offline(50)).unwrap();
    assert_eq!(r.status(), Status::Online);
}

#[test]
fn row_08_other_inputs_are_ignored() {
    let mut r = Run::new();
    let accepted = BookingAccepted {
        booking_id: "bk-1".into(),
        booking_number: "BK-1".into(),
        runner_id: KEY.into(),
        owner_id: "own-1".into(),
        occurred_at: at(0),
    };
    r.feed(0, accepted.into()).unwrap();
    assert!(r.state.is_none());
}

#[test]
fn unknown_timers_are_refused() {
    let r = Run::new();
    let ctx = Context { key: KEY, partition: 0, now: at(0), topic: "" };
    let timer = Timer { name: "nope".into(), due: at(0) };
    assert_eq!(r.presence.on_timer(None, &timer, &ctx).unwrap_err().class, Class::UnknownTimer.code());
}
