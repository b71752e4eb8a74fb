//! The tracking and runner presence processors end to end, as processes
//! against the broker: 500 bookings, each accepted, driven along a known
//! path by its runner's GPS updates on `runner.events` (keyed by runner,
//! re-keyed by booking inside the tracking processor's transactions) and
//! delivered. Every booking gets exactly one `tracking.started` and one
//! `tracking.completed`, with its owner and the path's length computed here
//! independently; presence follows online, offline and silence.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use sagastream_contract::payloads::booking::BookingParties;
use sagastream_contract::payloads::runner::{RunnerLocationUpdate, RunnerOffline, RunnerOnline};
use sagastream_contract::{decode, encode, ContentMode, Event, Payload, Record};
use sagastream_e2e::apply_topics;
use sagastream_e2e::probe::{binary, free_port, prefix, produce, read_topic, Probe};

const BOOKINGS: usize = 500;
/// Fixes per trip: one every 2 s.
const FIXES: usize = 12;
/// Long enough for the three waves, short enough to wait for.
const SILENCE: &str = "30s";

fn record(event: Event) -> Record {
    encode(&event, ContentMode::Binary).unwrap()
}

/// Where booking `b`'s runner is at fix `i`: due north, 0.0005° (about 56 m,
/// 100 km/h at a fix every 2 s) a step.
fn position(b: usize, i: usize) -> (f64, f64) {
    (-6.3 + 0.0005 * i as f64, 106.7 + 0.0001 * b as f64)
}

/// The path's length, computed here on its own: the great-circle steps.
fn path_km(b: usize) -> f64 {
    let r = 6_371_008.8_f64;
    let mut metres = 0.0;
    for i in 1..FIXES {
        let ((la1, lo1), (la2, lo2)) = (position(b, i - 1), position(b, i));
        let (p1, p2) = (la1.to_radians(), la2.to_radians());
        let h = ((p2 - p1) / 2.0).sin().powi(2) + p1.cos() * p2.cos() * ((lo2 - lo1).to_radians() / 2.0).sin().powi(2);
        metres += 2.0 * r * h.sqrt().asin();
    }
    metres.round() / 1_000.0
}

#[test]
fn every_booking_gets_one_start_and_one_completion_with_the_paths_length() {
    let prefix = prefix("tracking");
    tokio::runtime::Runtime::new().unwrap().block_on(apply_topics(&prefix));
    let topic = |t: &str| format!("{prefix}{t}");
    let tracking = binary("sagastream-tracking", "sagastream-tracking");
    let flags = ["--commit-interval", "50ms", "--update-interval", "1ms", "--update-distance-m", "0"];
    let mut processor = Probe::start_with(&tracking, &prefix, "tracking-0", free_port(), &flags);
    let runner_bin = binary("sagastream-runner", "sagastream-runner");
    let mut presence = Probe::start_with(&runner_bin, &prefix, "runner-0", free_port(), &["--offline-after", SILENCE]);
    processor.wait_ready(Duration::from_secs(90));
    presence.wait_ready(Duration::from_secs(90));

    let runner = |b: usize| format!("rnr-{b:03}");
    let booking = |b: usize| format!("bk-{b:03}");
    let parties = |b: usize| BookingParties {
        booking_id: booking(b),
        booking_number: format!("BK-{b}"),
        owner_id: format!("own-{b:03}"),
        runner_id: runner(b),
    };
    let event =
        |source: &str, payload: Payload, at: chrono::DateTime<Utc>| record(Event::new(source, payload).with_time(at));
    // Three waves, each produced once the one before is processed: a
    // re-keyed update is ordered by when the processor re-keyed it, so a
    // wave at a time makes the order of acceptance, fixes and delivery
    // certain (docs/tracking.md).
    let t1 = Utc::now();
    let (mut bookings, mut runners) = (Vec::new(), Vec::new());
    for b in 0..BOOKINGS {
        let (lat, lon) = position(b, 0);
        let online = RunnerOnline { runner_id: runner(b), latitude: lat, longitude: lon, occurred_at: t1 };
        runners.push(event("/runner", online.into(), t1));
        bookings.push(event("/booking", parties(b).accepted(t1).into(), t1));
    }
    produce(&topic("runner.events"), &runners, None);
    produce(&topic("booking.events"), &bookings, None);
    read_topic(&topic("tracking.events"), true, BOOKINGS, Duration::from_secs(120));

    let t2 = Utc::now();
    let mut fixes = Vec::new();
    for b in 0..BOOKINGS {
        for i in 0..FIXES {
            let (lat, lon) = position(b, i);
            let at = t2 + TimeDelta::seconds(2 * i as i64);
            let fix = RunnerLocationUpdate {
                runner_id: runner(b),
                booking_id: Some(booking(b)),
                latitude: lat,
                longitude: lon,
                speed_kmh: 20.0,
                heading_degrees: 0.0,
                timestamp: at,
                occurred_at: at,
            };
            fixes.push(event("/runner", fix.into(), at));
        }
    }
    produce(&topic("runner.events"), &fixes, None);
    read_topic(&topic("tracking.events"), true, BOOKINGS * (1 + FIXES), Duration::from_secs(180));

    let t3 = t2 + TimeDelta::seconds(2 * FIXES as i64);
    let (mut deliveries, mut goodbyes) = (Vec::new(), Vec::new());
    for b in 0..BOOKINGS {
        deliveries.push(event("/booking", parties(b).confirmed(t3, t3).into(), t3));
        // Half the runners say goodbye; the others fall silent.
        if b % 2 == 0 {
            goodbyes.push(event("/runner", RunnerOffline { runner_id: runner(b), occurred_at: t3 }.into(), t3));
        }
    }
    produce(&topic("booking.events"), &deliveries, None);
    produce(&topic("runner.events"), &goodbyes, None);

    let facts = read_topic(&topic("tracking.events"), true, BOOKINGS * (2 + FIXES), Duration::from_secs(180));
    let mut started: BTreeMap<String, usize> = BTreeMap::new();
    let mut completed: BTreeMap<String, (f64, Option<String>)> = BTreeMap::new();
    let mut updates = 0;
    for f in &facts {
        match decode(&f.record).unwrap().event.data {
            Payload::TrackingStarted(s) => {
                assert_eq!(s.owner_id.as_deref(), Some(format!("own-{}", &s.booking_id[3..]).as_str()));
                *started.entry(s.booking_id).or_default() += 1;
            }
            Payload::TrackingCompleted(c) => {
                let previous = completed.insert(c.booking_id.clone(), (c.total_distance_km, c.owner_id));
                assert!(previous.is_none(), "{}: two tracking.completed", c.booking_id);
            }
            Payload::TrackingUpdated(_) => updates += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(started.len(), BOOKINGS, "one tracking.started per booking");
    assert!(started.values().all(|n| *n == 1), "no booking started twice: {started:?}");
    assert_eq!(completed.len(), BOOKINGS, "one tracking.completed per booking");
    for b in 0..BOOKINGS {
        let (km, owner) = &completed[&booking(b)];
        assert_eq!(*km, path_km(b), "{}: the distance along its path", booking(b));
        assert_eq!(owner.as_deref(), Some(format!("own-{b:03}").as_str()));
    }
    // The throttle is all but off in this run (1 ms, 0 m): one update per waypoint.
    assert_eq!(updates, BOOKINGS * FIXES, "tracking.updated per accepted waypoint");

    // Presence: each runner went online (once, by runner.online), then
    // offline: half said so, half fell silent.
    // The silent half goes offline SILENCE after its last fix.
    let changes = read_topic(&topic("runner.presence"), true, BOOKINGS * 2, Duration::from_secs(120));
    let mut last: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for c in &changes {
        let Payload::RunnerPresenceChanged(p) = decode(&c.record).unwrap().event.data else { panic!() };
        last.entry(p.runner_id).or_default().push((p.status, p.reason));
    }
    assert_eq!(last.len(), BOOKINGS);
    for b in 0..BOOKINGS {
        let seen = &last[&runner(b)];
        let end = if b % 2 == 0 { "offline" } else { "silent" };
        let expected = vec![("online".to_owned(), "online".to_owned()), ("offline".to_owned(), end.to_owned())];
        assert_eq!(seen, &expected, "{}", runner(b));
    }
    assert!(processor.terminate(Duration::from_secs(60)).success());
    assert!(presence.terminate(Duration::from_secs(60)).success());
}
