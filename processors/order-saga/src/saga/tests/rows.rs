//! The transition table (docs/order-saga.md), row by row, and the inputs
//! the saga ignores or refuses.

use super::*;

// --- the table, row by row ---------------------------------------------

#[test]
fn row_01_created_reserves_every_line_and_sets_the_expiry() {
    let r = reserving();
    assert_eq!(r.o().phase, P::Reserving);
    assert_eq!(r.since(0), [T::InventoryReserveRequested, T::InventoryReserveRequested]);
    let Payload::InventoryReserveRequested(c) = &r.emitted[1] else { unreachable!() };
    assert_eq!((c.reservation_id.as_str(), c.product_id.as_str(), c.quantity), ("res_order_1_2", "prod_b", 1));
    assert_eq!((c.location_id.as_str(), c.expires_at), ("warehouse_main", t0() + TimeDelta::minutes(15)));
    assert_eq!(r.timers.get(RESERVATION_EXPIRY), Some(&(t0() + TimeDelta::minutes(15))));
    assert_eq!(r.statuses(), [L::Requested, L::Requested]);
}

#[test]
fn row_02_orders_that_do_not_add_up_are_refused() {
    for (bad, why) in [
        (created_with(vec![], "1.00"), "without lines"),
        (created_with(vec![("p", 0, "1.00", "0.00")], "1.00"), "quantity 0"),
        (created_with(vec![("p", 2, "11.99", "23.99")], "30.00"), "is not 23.99"),
        (created_with(vec![("p", 2, "11.99", "23.98")], "23.97"), "below the sum"),
    ] {
        let mut r = Run::default();
        let e = r.rejected(bad);
        assert_eq!(e.class, Class::InvalidOrder.code());
        assert!(e.message.contains(why), "{e}");
        assert!(r.state.is_none());
    }
    // The seed's own example: the total may exceed the lines (shipping).
    run(vec![created_with(vec![("p", 2, "22.99", "45.98")], "47.98")]);
    // Exact decimals: 3 × 0.10 is 0.30, and "0.3" equals it.
    run(vec![created_with(vec![("p", 3, "0.10", "0.3")], "0.30")]);
}

#[test]
fn rows_03_04_the_last_reservation_validates_and_asks_for_the_capture() {
    let mut r = reserving();
    r.feed(reserved(2)).unwrap();
    assert_eq!((r.o().phase, r.since(2)), (P::Reserving, vec![]));
    r.feed(reserved(1)).unwrap();
    assert_eq!(r.o().phase, P::Capturing);
    assert_eq!(r.since(2), [T::OrderValidated, T::PaymentCaptureRequested]);
    let Payload::OrderValidated(v) = &r.emitted[2] else { unreachable!() };
    assert_eq!(v.reservations.len(), 2);
    assert_eq!(v.validation_results.inventory_check, "passed");
    let Payload::PaymentCaptureRequested(c) = &r.emitted[3] else { unreachable!() };
    assert_eq!((c.amount.as_str(), c.customer_id.as_str()), (TOTAL, "cust_1"));
    assert_eq!(r.o().payment, Payment::CaptureRequested);
}

#[test]
fn row_05_a_refused_line_releases_the_held_ones_and_cancels() {
    let mut r = run(vec![created(), reserved(1)]);
    r.feed(reservation_failed(2)).unwrap();
    assert_eq!(r.o().phase, P::Cancelled);
    assert_eq!(r.since(2), [T::InventoryReleaseRequested, T::OrderCancelled]);
    let Payload::InventoryReleaseRequested(x) = &r.emitted[2] else { unreachable!() };
    assert_eq!((x.reservation_id.as_str(), x.reason.as_str()), ("res_order_1_1", "out_of_stock"));
    let Payload::OrderCancelled(c) = &r.emitted[3] else { unreachable!() };
    assert_eq!((c.cancellation_reason.as_str(), c.cancelled_by.as_str()), ("out_of_stock", "system"));
    assert_eq!((c.refund_required, c.refund_amount.as_str()), (false, "0.00"));
    assert_eq!(r.statuses(), [L::ReleaseRequested, L::Failed]);
    assert!(r.timers.contains_key(PURGE) && !r.timers.contains_key(RESERVATION_EXPIRY));
}

#[test]
fn row_06_expiry_releases_and_cancels_while_reserving_or_capturing() {
    let mut r = run(vec![created(), reserved(1)]);
    r.fire(RESERVATION_EXPIRY).unwrap();
    assert_eq!(r.since(2), [T::InventoryReleaseRequested, T::OrderCancelled]);
    assert_eq!(r.statuses(), [L::ReleaseRequested, L::Requested]);
    let mut r = capturing();
    r.fire(RESERVATION_EXPIRY).unwrap();
    assert_eq!(r.since(4), [T::InventoryReleaseRequested, T::InventoryReleaseRequested, T::OrderCancelled]);
    assert_eq!(r.o().payment, Payment::CaptureRequested, "the capture may still come (row 11)");
}

#[test]
fn row_07_a_cancel_request_before_capture_releases_and_cancels() {
    let mut r = run(vec![created(), reserved(1)]);
    r.feed(cancel_requested()).unwrap();
    assert_eq!(r.since(2), [T::InventoryReleaseRequested, T::OrderCancelled]);
    let Payload::OrderCancelled(c) = &r.emitted[3] else { unreachable!() };
    assert_eq!((c.cancellation_reason.as_str(), c.cancelled_by.as_str()), ("customer_request", "customer"));
    let mut r = capturing();
    r.feed(cancel_requested()).unwrap();
    assert_eq!(r.o().phase, P::Cancelled);
}

#[test]
fn row_08_the_capture_consumes_the_reservations_and_completes() {
    let r = completed();
    assert_eq!(r.o().phase, P::Completed);
    assert_eq!(r.since(4), [T::InventoryConsumeRequested, T::InventoryConsumeRequested, T::OrderCompleted]);
    let Payload::OrderCompleted(c) = &r.emitted[6] else { unreachable!() };
    assert_eq!((c.payment_id.as_str(), c.final_amount.as_str(), c.fulfillment_id.as_deref()), ("pay_1", TOTAL, None));
    assert_eq!(r.statuses(), [L::Consumed, L::Consumed]);
    let mut r = capturing();
    assert_eq!(r.rejected(captured("47.97")).class, Class::AmountMismatch.code());
    let other = PaymentCaptured {
        order_id: KEY.into(),
        payment_id: "pay_1".into(),
        amount: dec(TOTAL),
        currency: Currency::new("EUR").unwrap(),
        captured_at: t0(),
    };
    assert_eq!(r.rejected(other.into()).class, Class::CurrencyMismatch.code());
}

#[test]
fn row_09_a_failed_capture_releases_and_cancels() {
    let mut r = capturing();
    r.feed(capture_failed()).unwrap();
    assert_eq!(r.since(4), [T::InventoryReleaseRequested, T::InventoryReleaseRequested, T::OrderCancelled]);
    assert_eq!((r.o().phase, &r.o().payment), (P::Cancelled, &Payment::Failed));
}

#[test]
fn rows_10_12_a_cancel_after_completion_refunds_the_capture() {
    let mut r = completed();
    r.feed(cancel_requested()).unwrap();
    assert_eq!(r.o().phase, P::Refunding);
    assert_eq!(r.since(7), [T::PaymentRefundRequested, T::OrderCancelled]);
    let Payload::PaymentRefundRequested(x) = &r.emitted[7] else { unreachable!() };
    assert_eq!((x.amount.as_str(), x.payment_id.as_str()), (TOTAL, "pay_1"));
    let Payload::OrderCancelled(c) = &r.emitted[8] else { unreachable!() };
    assert_eq!((c.refund_required, c.refund_amount.as_str()), (true, TOTAL));
    assert_eq!(r.rejected(refunded("40.00")).class, Class::AmountMismatch.code());
    r.feed(refunded(TOTAL)).unwrap();
    assert_eq!(r.o().phase, P::Refunded);
    let Payload::OrderRefunded(x) = &r.emitted[9] else { unreachable!() };
    assert_eq!(
        (x.refund_id.as_str(), x.refund_amount.as_str(), x.refund_reason.as_str()),
        ("ref_1", TOTAL, "customer_request")
    );
    assert_eq!(r.statuses(), [L::Consumed, L::Consumed], "sold stock is not put back");
}

#[test]
fn row_11_a_capture_after_the_cancel_is_refunded() {
    let mut r = capturing();
    r.feed(cancel_requested()).unwrap();
    let n = r.emitted.len();
    r.feed(captured(TOTAL)).unwrap();
    assert_eq!(r.since(n), [T::PaymentRefundRequested]);
    assert_eq!(r.o().phase, P::Refunding);
    r.feed(refunded(TOTAL)).unwrap();
    assert_eq!(r.since(n), [T::PaymentRefundRequested, T::OrderRefunded]);
    // A capture that failed after the cancel needs nothing.
    let mut r = capturing();
    r.feed(cancel_requested()).unwrap();
    let n = r.emitted.len();
    r.feed(capture_failed()).unwrap();
    assert_eq!((r.since(n), &r.o().payment), (vec![], &Payment::Failed));
}

#[test]
fn rows_13_17_a_cancel_before_its_order_cancels_it_on_arrival() {
    let mut r = run(vec![cancel_requested()]);
    assert_eq!((r.o().phase, r.emitted.len()), (P::AwaitingOrder, 0));
    assert!(r.timers.contains_key(PURGE), "a cancel whose order never comes is forgotten");
    r.feed(created()).unwrap();
    assert_eq!(r.since(0), [T::OrderCancelled], "nothing is reserved");
    assert_eq!(r.o().phase, P::Cancelled);
}

#[test]
fn rows_14_16_late_inventory_answers_after_the_order_closed() {
    let mut r = run(vec![created(), reserved(1), cancel_requested()]);
    let n = r.emitted.len();
    r.feed(reserved(2)).unwrap();
    assert_eq!(r.since(n), [T::InventoryReleaseRequested]);
    let Payload::InventoryReleaseRequested(x) = &r.emitted[n] else { unreachable!() };
    assert_eq!((x.reservation_id.as_str(), x.reason.as_str()), ("res_order_1_2", "order_closed"));
    let mut r = run(vec![created(), reserved(1), cancel_requested()]);
    r.feed(reservation_failed(2)).unwrap();
    assert_eq!(r.statuses(), [L::ReleaseRequested, L::Failed]);
}

#[test]
fn row_15_releases_are_confirmed() {
    let mut r = run(vec![created(), reserved(1), cancel_requested(), released(1)]);
    assert_eq!(r.statuses()[0], L::Released);
    r.feed(released(1)).unwrap();
    assert_eq!(r.rejected(released(2)).class, Class::ConflictingFact.code(), "released without a request");
}

#[test]
fn row_18_a_cancel_is_idempotent() {
    for mut r in [run(vec![created(), cancel_requested()]), run(vec![cancel_requested()])] {
        let before = (r.state.clone(), r.emitted.len());
        r.feed(cancel_requested()).unwrap();
        assert_eq!((r.state.clone(), r.emitted.len()), before);
    }
}

#[test]
fn row_19_purge_forgets_a_closed_order_or_a_cancel_whose_order_never_came() {
    let mut r = run(vec![created(), cancel_requested()]);
    r.fire(PURGE).unwrap();
    assert!(r.state.is_none());
    let mut r = run(vec![cancel_requested()]);
    r.fire(PURGE).unwrap();
    assert!(r.state.is_none(), "the cancel waited its retention for an order");
    let mut r = reserving();
    r.timers.insert(PURGE.into(), t0());
    r.fire(PURGE).unwrap();
    assert!(r.state.is_some(), "an open order is kept");
    let mut r = reserving();
    r.timers.insert("nonsense".into(), t0());
    assert_eq!(r.fire("nonsense").unwrap_err().class, Class::UnknownTimer.code());
}

#[test]
fn row_20_repeated_facts_that_agree_change_nothing() {
    for (mut r, again) in [
        (reserving(), created()),
        (run(vec![created(), reserved(1)]), reserved(1)),
        (run(vec![created(), reservation_failed(1)]), reservation_failed(1)),
        (completed(), captured(TOTAL)),
        (
            run(vec![created(), reserved(1), reserved(2), captured(TOTAL), cancel_requested(), refunded(TOTAL)]),
            refunded(TOTAL),
        ),
        (capturing(), reserved(2)),
    ] {
        let before = (r.state.clone(), r.emitted.len(), r.timers.clone());
        r.feed(again).unwrap();
        assert_eq!((r.state.clone(), r.emitted.len(), r.timers.clone()), before);
    }
}

#[test]
fn row_21_contradicting_facts_go_to_the_dlq() {
    let mut r = run(vec![created(), reservation_failed(1)]);
    assert_eq!(r.rejected(reserved(1)).class, Class::ConflictingFact.code());
    let mut r = run(vec![created(), reserved(1)]);
    assert_eq!(r.rejected(reservation_failed(1)).class, Class::ConflictingFact.code());
    let mut r = reserving();
    let Payload::InventoryReserved(mut other) = reserved(1) else { unreachable!() };
    other.reservation_id = "res_other".into();
    assert_eq!(r.rejected(other.clone().into()).class, Class::UnknownReservation.code());
    other.reservation_id = reservation_id(KEY, 1);
    other.quantity = 5;
    assert_eq!(r.rejected(other.into()).class, Class::ConflictingFact.code());
    let mut r = completed();
    let Payload::PaymentCaptured(mut again) = captured(TOTAL) else { unreachable!() };
    again.payment_id = "pay_2".into();
    assert_eq!(r.rejected(again.into()).class, Class::ConflictingFact.code());
    let mut r = reserving();
    assert_eq!(r.rejected(created_with(vec![("p", 1, "1.00", "1.00")], "1.00")).class, Class::ConflictingFact.code());
}

#[test]
fn row_22_inputs_that_make_no_sense_go_to_the_dlq() {
    let mut r = reserving();
    assert_eq!(r.rejected(captured(TOTAL)).class, Class::InvalidTransition.code());
    assert_eq!(r.rejected(refunded(TOTAL)).class, Class::InvalidTransition.code());
    assert_eq!(r.rejected(capture_failed()).class, Class::InvalidTransition.code());
    let mut r = Run::default();
    let e = r.rejected(reserved(1));
    assert!(e.class == Class::InvalidTransition.code() && e.message.contains("does not know"), "{e}");
    assert_eq!(r.rejected(captured(TOTAL)).class, Class::InvalidTransition.code());
    let mut r = run(vec![cancel_requested()]);
    assert_eq!(r.rejected(reserved(1)).class, Class::InvalidTransition.code());
}

#[test]
fn other_events_on_the_inputs_are_ignored() {
    let mut r = reserving();
    let before = (r.state.clone(), r.emitted.len());
    let escrow = sagastream_contract::samples::payload(T::PaymentEscrowHeld, "x");
    r.feed(escrow).unwrap();
    r.feed(sagastream_contract::samples::payload(T::OrderValidated, "x")).unwrap();
    assert_eq!((r.state.clone(), r.emitted.len()), before);
}

#[test]
fn the_repartition_key_is_the_order() {
    let event = |p: Payload| Event::new("/inv", p);
    assert_eq!(order_of(&event(reserved(1))).as_deref(), Some(KEY));
    assert_eq!(order_of(&event(reservation_failed(1))).as_deref(), Some(KEY));
    let Payload::InventoryReleased(mut seed) = released(1) else { unreachable!() };
    seed.order_id = None;
    assert_eq!(order_of(&event(seed.clone().into())), None);
    assert_eq!(order_of(&event(seed.into()).with_correlation_id("order_9")).as_deref(), Some("order_9"));
    let updated = sagastream_contract::samples::payload(T::InventoryUpdated, "x");
    assert_eq!(order_of(&event(updated).with_correlation_id("update_1")), None, "stock levels belong to no order");
}

/// The key read without decoding is the decoded key wherever it gives one,
/// and gives one for every type that carries an order.
#[test]
fn the_quick_repartition_key_is_the_decoded_one() {
    use sagastream_contract::{encode, ContentMode};
    use sagastream_runtime::KeyView;
    let Payload::InventoryReleased(mut unnamed) = released(1) else { unreachable!() };
    unnamed.order_id = None;
    let mut events: Vec<Event> = T::ALL
        .iter()
        .filter(|t| t.as_str().starts_with("inventory."))
        .map(|t| Event::new("/inv", sagastream_contract::samples::payload(*t, "x")))
        .collect();
    events.push(Event::new("/inv", Payload::InventoryReleased(unnamed.clone())));
    events.push(Event::new("/inv", Payload::InventoryReleased(unnamed)).with_correlation_id("order_9"));
    events.push(Event::new("/inv", reserved(1)).with_correlation_id("not_this"));
    let mut quick = 0;
    for e in &events {
        let record = encode(e, ContentMode::Binary).unwrap();
        let view = KeyView::of(&record).expect("binary JSON");
        let carries_order =
            matches!(e.event_type(), T::InventoryReserved | T::InventoryReservationFailed | T::InventoryReleased);
        match crate::saga::order_of_record(&view) {
            Some(key) => {
                quick += 1;
                assert_eq!(Some(key), order_of(e), "{}", e.event_type().as_str());
            }
            None => assert!(order_of(e).is_none() || !carries_order, "{}: no quick key", e.event_type().as_str()),
        }
    }
    assert!(quick >= 5, "the order-carrying types are re-keyed the quick way ({quick})");
}

// --- invariants -----------------------------------------------------------

#[test]
fn every_invariant_violation_is_reported() {
    let corrupt = |f: &dyn Fn(&mut Order)| {
        let mut o = completed().o().clone();
        f(&mut o);
        o.check_invariants().unwrap_err()
    };
    let e = corrupt(&|o| {
        o.phase = P::Capturing;
        o.lines[1].status = L::Requested;
    });
    assert!(e.contains("capturing while a line is not reserved"), "{e}");
    let e = corrupt(&|o| o.lines[0].status = L::ReleaseRequested);
    assert!(e.contains("completed while a line is not consumed"), "{e}");
    let e = corrupt(&|o| o.payment = Payment::CaptureRequested);
    assert!(e.contains("without a captured payment"), "{e}");
    let e = corrupt(&|o| {
        o.phase = P::Cancelled;
        o.lines[0].status = L::Reserved;
    });
    assert!(e.contains("still held"), "{e}");
    let e = corrupt(&|o| {
        o.phase = P::Refunding;
        o.payment = Payment::RefundRequested { payment_id: "pay_1".into(), amount: dec(TOTAL), refund: dec("1.00") };
    });
    assert!(e.contains("refund 1.00 differs from capture 47.98"), "{e}");
}

#[test]
fn a_transition_that_would_break_an_invariant_is_refused_and_changes_nothing() {
    // Corrupted state: completed with a reservation still held. The refund
    // of row 10 would close the order with stock set aside forever.
    let mut r = completed();
    let mut o = r.o().clone();
    o.lines[1].status = L::Reserved;
    r.state = Some(Box::new(o));
    let e = r.rejected(cancel_requested());
    assert_eq!(e.class, Class::InvariantViolated.code());
    assert!(e.message.contains("still held") && e.message.contains("res_order_1_2:Reserved"), "{e}");
}

#[test]
fn the_state_survives_the_changelog() {
    let r = run(vec![created(), reserved(1), reserved(2), captured(TOTAL), cancel_requested()]);
    let json = serde_json::to_string(r.o()).unwrap();
    let back: Order = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, r.o());
    assert!(json.len() < 1_000, "{} bytes: {json}", json.len());
}
