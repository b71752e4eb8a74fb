//! Runners on the road (docs/simulator.md, "Trips"): with `--trips`, a happy
//! booking's runner goes online, sends GPS fixes along a known path once the
//! tracking processor has started the trip (a fix before the acceptance
//! belongs to no trip), and the delivery waits until it has placed every
//! fix; the runner then says goodbye. The checker compares each
//! booking's `tracking.completed` distance with the path's length computed
//! here, on its own, and counts the presence changes.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use sagastream_contract::payloads::runner::{RunnerLocationUpdate, RunnerOffline, RunnerOnline};
use sagastream_contract::{encode, ContentMode, Event, Payload};
use serde::Serialize;

use crate::scenario::{Booking, Planned, When, SOURCE};

/// Fixes per trip, one a second.
pub const FIXES: usize = 8;

/// Where booking `i`'s runner is at fix `k`: due north, 0.0002° (about 22 m,
/// 80 km/h at a fix a second) a step, each booking on its own meridian.
pub fn position(i: usize, k: usize) -> (f64, f64) {
    (-6.2 + 0.0002 * k as f64, 106.8 + 0.00001 * (i % 5_000) as f64)
}

/// The path's length in km to the metre: great-circle steps, mean Earth radius.
pub fn path_km(i: usize) -> f64 {
    let r = 6_371_008.8_f64;
    let mut metres = 0.0;
    for k in 1..FIXES {
        let ((la1, lo1), (la2, lo2)) = (position(i, k - 1), position(i, k));
        let (p1, p2) = (la1.to_radians(), la2.to_radians());
        let h = ((p2 - p1) / 2.0).sin().powi(2) + p1.cos() * p2.cos() * ((lo2 - lo1).to_radians() / 2.0).sin().powi(2);
        metres += 2.0 * r * h.sqrt().asin();
    }
    metres.round() / 1_000.0
}

/// When fix `k` is taken; the delivery comes a second after the last.
pub fn fix_time(start: DateTime<Utc>, k: usize) -> DateTime<Utc> {
    start + TimeDelta::seconds(1 + k as i64)
}

fn planned(event: Event, when: When) -> Planned {
    let record = encode(&event, ContentMode::Binary).expect("catalog events encode");
    Planned { topic: event.event_type().topic(), record, when, poison: false }
}

/// The runner's records of a trip: online with the booking's start, the
/// fixes after it, offline with the delivery.
pub fn runner_records(i: usize, b: &Booking, start: DateTime<Utc>) -> (Vec<Planned>, Planned) {
    let (lat, lon) = position(i, 0);
    let online = RunnerOnline { runner_id: b.runner_id.clone(), latitude: lat, longitude: lon, occurred_at: start };
    let mut now = vec![planned(Event::new(SOURCE, online).with_time(start), When::Start)];
    for k in 0..FIXES {
        let (latitude, longitude) = position(i, k);
        let at = fix_time(start, k);
        let fix = RunnerLocationUpdate {
            runner_id: b.runner_id.clone(),
            booking_id: Some(b.id.clone()),
            latitude,
            longitude,
            speed_kmh: 80.0,
            heading_degrees: 0.0,
            timestamp: at,
            occurred_at: at,
        };
        now.push(planned(Event::new(SOURCE, fix).with_time(at), When::AfterTrackingStarted));
    }
    let end = fix_time(start, FIXES);
    let offline = RunnerOffline { runner_id: b.runner_id.clone(), occurred_at: end };
    (now, planned(Event::new(SOURCE, offline).with_time(end), When::AfterTracked))
}

#[derive(Debug, Default)]
struct Trip {
    started: usize,
    updates: usize,
    completed: Vec<f64>,
    owner_ok: bool,
}

/// What the tracking and presence processors wrote for this run's trips.
#[derive(Debug, Default)]
pub struct TripChecker {
    index: HashMap<String, usize>,
    trips: BTreeMap<usize, Trip>,
    owners: HashMap<usize, String>,
    runners: HashMap<String, ()>,
    presence: BTreeMap<String, u64>,
}

impl TripChecker {
    pub fn new(bookings: &[(usize, &Booking)]) -> TripChecker {
        let mut c = TripChecker::default();
        for (i, b) in bookings {
            c.index.insert(b.id.clone(), *i);
            c.trips.insert(*i, Trip::default());
            c.owners.insert(*i, b.owner_id.clone());
            c.runners.insert(b.runner_id.clone(), ());
        }
        c
    }

    /// Feeds one event; the booking whose trip just started or whose every
    /// fix is now placed, with the records it makes due.
    pub fn observe(&mut self, event: &Event) -> Option<(usize, When)> {
        match &event.data {
            Payload::TrackingStarted(p) => {
                let (i, t) = self.trip(&p.booking_id)?;
                t.started += 1;
                (t.started == 1).then_some((i, When::AfterTrackingStarted))
            }
            Payload::TrackingUpdated(p) => {
                let (i, t) = self.trip(&p.booking_id)?;
                t.updates += 1;
                (t.updates == FIXES).then_some((i, When::AfterTracked))
            }
            Payload::TrackingCompleted(p) => {
                let owner = p.owner_id.clone();
                let (i, _) = self.trip(&p.booking_id)?;
                let owner_ok = owner.as_deref() == self.owners.get(&i).map(String::as_str);
                let t = self.trips.get_mut(&i).expect("indexed");
                t.completed.push(p.total_distance_km);
                t.owner_ok = owner_ok;
                None
            }
            Payload::RunnerPresenceChanged(p) if self.runners.contains_key(&p.runner_id) => {
                *self.presence.entry(format!("{} ({})", p.status, p.reason)).or_default() += 1;
                None
            }
            _ => None,
        }
    }

    fn trip(&mut self, booking: &str) -> Option<(usize, &mut Trip)> {
        let i = *self.index.get(booking)?;
        Some((i, self.trips.get_mut(&i)?))
    }

    pub fn report(&self) -> TripReport {
        let mut r = TripReport { trips: self.trips.len(), presence: self.presence.clone(), ..TripReport::default() };
        for (i, t) in &self.trips {
            r.started_once += usize::from(t.started == 1);
            r.completed_once += usize::from(t.completed.len() == 1);
            if let [km] = t.completed[..] {
                let error_m = ((km - path_km(*i)) * 1_000.0).abs();
                r.max_distance_error_m = r.max_distance_error_m.max(error_m);
                r.total_km += km;
                r.with_owner += usize::from(t.owner_ok);
            }
        }
        r.ok = r.started_once == r.trips
            && r.completed_once == r.trips
            && r.with_owner == r.trips
            && r.max_distance_error_m < 0.5;
        r
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TripReport {
    pub trips: usize,
    pub started_once: usize,
    pub completed_once: usize,
    pub with_owner: usize,
    pub total_km: f64,
    /// Largest |tracking.completed's distance − the path's length|, in metres.
    pub max_distance_error_m: f64,
    /// runner.presence_changed of this run's runners, by status and reason.
    pub presence: BTreeMap<String, u64>,
    pub ok: bool,
}

impl TripReport {
    pub fn table(&self) -> String {
        let presence: Vec<String> = self.presence.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(
            "\ntrips               {} (started once {}, completed once {}, with the owner {})\n\
             trip distance       {:.3} km in all; largest error against the path {:.1} m\n\
             runner presence     {}\n",
            self.trips,
            self.started_once,
            self.completed_once,
            self.with_owner,
            self.total_km,
            self.max_distance_error_m,
            if presence.is_empty() { "none seen".to_owned() } else { presence.join(", ") },
        )
    }
}
