use chrono::{TimeZone, Utc};
use sagastream_contract::payloads::inventory::*;
use sagastream_contract::{EventType as T, Payload};
use sagastream_runtime::StateChange;

use super::*;

const P: &str = "prod_1";
const W: &str = "warehouse_main";

fn ctx() -> Context<'static> {
    Context {
        key: P,
        partition: 0,
        now: Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
        topic: "inventory.events",
    }
}

fn updated(quantity: u32, reserved: u32) -> Payload {
    InventoryUpdated {
        product_id: P.into(),
        location_id: W.into(),
        quantity,
        reserved_quantity: reserved,
        available_quantity: quantity - reserved,
        update_type: "restock".into(),
        source_event: "purchase_order_received".into(),
    }
    .into()
}

fn reserved(quantity: u32) -> Payload {
    InventoryReserved {
        reservation_id: "res_1".into(),
        product_id: P.into(),
        quantity,
        location_id: W.into(),
        order_id: "order_1".into(),
        expires_at: ctx().now,
    }
    .into()
}

fn released(quantity: u32) -> Payload {
    InventoryReleased {
        reservation_id: "res_1".into(),
        product_id: P.into(),
        quantity,
        location_id: W.into(),
        reason: "order_cancelled".into(),
        order_id: None,
    }
    .into()
}

fn adjusted(new_quantity: u32) -> Payload {
    InventoryAdjusted {
        product_id: P.into(),
        location_id: W.into(),
        old_quantity: 0,
        new_quantity,
        adjustment_type: "damage".into(),
        reason: "inspection".into(),
        reference_number: "ADJ-1".into(),
    }
    .into()
}

/// Feeds inputs; returns the state and what each input emitted.
struct Run {
    state: Option<Product>,
    inventory: Inventory,
}

impl Run {
    fn new() -> Run {
        Run { state: None, inventory: Inventory::default() }
    }

    fn feed(&mut self, p: Payload) -> Result<Vec<Payload>, Rejection> {
        let event = Event::new("/inventory-service", p);
        let step = self.inventory.process(self.state.as_ref(), &event, &ctx())?;
        if let StateChange::Set(s) = step.state {
            self.state = Some(s);
        }
        Ok(step.emits.into_iter().map(|e| *e.payload).collect())
    }

    fn ok(&mut self, p: Payload) -> Vec<(T, u32, Option<AlertLevel>)> {
        self.feed(p)
            .unwrap()
            .into_iter()
            .map(|p| match p {
                Payload::InventoryLowStock(a) => (T::InventoryLowStock, a.current_quantity, Some(a.alert_level)),
                Payload::ProductOutOfStock(o) => (T::ProductOutOfStock, o.last_stock_level, None),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    fn stock(&self) -> (u32, u32, u32) {
        let s = self.state.as_ref().unwrap().at(W).unwrap();
        (s.quantity, s.reserved, s.available())
    }

    fn refused(&mut self, p: Payload) -> &'static str {
        let before = self.state.clone();
        let class = self.feed(p).unwrap_err().class;
        assert_eq!(self.state, before, "a refusal changes nothing");
        class
    }
}

#[test]
fn quantity_reserved_and_available_follow_the_facts() {
    let mut r = Run::new();
    assert!(r.ok(updated(150, 5)).is_empty(), "a first snapshot crosses nothing");
    assert_eq!(r.stock(), (150, 5, 145));
    r.ok(reserved(20));
    assert_eq!(r.stock(), (150, 25, 125));
    r.ok(released(5));
    assert_eq!(r.stock(), (150, 20, 130));
    r.ok(adjusted(95));
    assert_eq!(r.stock(), (95, 20, 75));
    // A sale: the service's snapshot after consuming a reservation.
    r.ok(updated(80, 5));
    assert_eq!(r.stock(), (80, 5, 75));
}

#[test]
fn alerts_fire_once_per_downward_crossing() {
    let mut r = Run::new();
    r.ok(updated(20, 0));
    assert!(r.ok(reserved(8)).is_empty(), "12 available: above both");
    assert_eq!(r.ok(reserved(3)), [(T::InventoryLowStock, 9, Some(AlertLevel::Warning))]);
    assert!(r.ok(reserved(1)).is_empty(), "still below the warning: no second alert");
    assert_eq!(r.ok(reserved(6)), [(T::InventoryLowStock, 2, Some(AlertLevel::Critical))]);
    assert_eq!(r.ok(reserved(2)), [(T::ProductOutOfStock, 0, None)]);
    assert!(r.ok(released(20)).is_empty(), "rising crosses nothing downward");
    // Back above the thresholds, one step down through both: both alerts, and out of stock.
    assert_eq!(
        r.ok(reserved(20)),
        [
            (T::InventoryLowStock, 0, Some(AlertLevel::Warning)),
            (T::InventoryLowStock, 0, Some(AlertLevel::Critical)),
            (T::ProductOutOfStock, 0, None)
        ]
    );
}

#[test]
fn availability_never_goes_negative_without_a_dlq_record() {
    let mut r = Run::new();
    assert_eq!(r.refused(reserved(1)), Class::UnknownLocation.code());
    r.ok(updated(10, 4));
    assert_eq!(r.refused(reserved(7)), Class::NegativeAvailable.code());
    assert_eq!(r.refused(released(5)), Class::OverRelease.code());
    assert_eq!(r.refused(adjusted(3)), Class::NegativeAvailable.code());
    let bad = InventoryUpdated {
        product_id: P.into(),
        location_id: W.into(),
        quantity: 10,
        reserved_quantity: 2,
        available_quantity: 9,
        update_type: "restock".into(),
        source_event: "x".into(),
    };
    assert_eq!(r.refused(bad.into()), Class::InconsistentSnapshot.code());
    assert_eq!(r.stock(), (10, 4, 6));
}

#[test]
fn locations_are_kept_apart_and_the_state_round_trips() {
    let mut r = Run::new();
    r.ok(updated(10, 0));
    let Payload::InventoryUpdated(mut other) = updated(3, 0) else { unreachable!() };
    other.location_id = "store_2".into();
    r.ok(other.into());
    r.ok(reserved(4));
    let p = r.state.clone().unwrap();
    assert_eq!((p.at(W).unwrap().available(), p.at("store_2").unwrap().available()), (6, 3));
    let back: Product = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
    // Events without stock (a refusal, our own alerts) change nothing.
    let failed = sagastream_contract::samples::payload(T::InventoryReservationFailed, "x");
    assert!(r.ok(failed).is_empty());
    assert_eq!(r.state.unwrap(), p);
}
