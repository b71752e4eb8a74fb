//! What both benches feed the saga: the booking service's five facts of a
//! delivered booking (requested, accepted, picked up, in delivery,
//! confirmed). Each bench chooses its own ids and price.

use chrono::{DateTime, Utc};
use sagastream_contract::payloads::booking::*;
use sagastream_contract::{Cents, Currency, Payload};

pub struct Booking {
    pub id: String,
    pub number: String,
    pub owner: String,
    pub runner: String,
    pub price: i64,
}

impl Booking {
    /// The `i`th booking of a throughput run: ids from the number, a
    /// price spread over 10.00 to 1,000.00. (The memory bench keeps ids of
    /// one length instead.)
    #[allow(dead_code)]
    pub fn nth(i: usize) -> Booking {
        Booking {
            id: format!("bk-{i:07}"),
            number: format!("KLT-{i}"),
            owner: format!("own-{i}"),
            runner: format!("run-{}", i % 97),
            price: 1_000 + (i as i64 * 7_919) % 99_001,
        }
    }
}

pub fn delivery(b: &Booking, now: DateTime<Utc>) -> [Payload; 5] {
    let parties = BookingParties {
        booking_id: b.id.clone(),
        booking_number: b.number.clone(),
        owner_id: b.owner.clone(),
        runner_id: b.runner.clone(),
    };
    [
        BookingRequested {
            booking_id: b.id.clone(),
            booking_number: b.number.clone(),
            owner_id: b.owner.clone(),
            pet_type: "dog".into(),
            pet_name: "Biscuit".into(),
            pickup_lat: 0.0,
            pickup_lng: 0.0,
            dropoff_lat: 0.0,
            dropoff_lng: 0.0,
            estimated_price_cents: Cents::new(b.price).expect("positive"),
            currency: Currency::new("USD").expect("ISO code"),
            occurred_at: now,
        }
        .into(),
        parties.accepted(now).into(),
        parties.picked_up(now).into(),
        parties.in_delivery(now, now).into(),
        parties.confirmed(now, now).into(),
    ]
}
