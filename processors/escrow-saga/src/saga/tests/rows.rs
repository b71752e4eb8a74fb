//! The transition table (docs/escrow-saga.md), one test per row at least.

use super::*;

// --- the table, row by row ---------------------------------------------

#[test]
fn row_01_requested_starts_the_saga() {
    let mut run = Run::default();
    assert_eq!(main_types(run.feed(requested()).unwrap()), vec![T::EscrowSagaStarted]);
    assert_eq!(run.phase(), (B::Requested, E::None));
    assert_eq!(run.s().price_cents, Some(PRICE));
    assert!(run
        .emitted
        .iter()
        .any(|p| matches!(p, Payload::EscrowSagaStateChanged(s) if s.from == "none" && s.to == "requested/none")));
}

#[test]
fn row_02_accepted_requests_the_hold_and_arms_its_timeout() {
    let mut run = Run::feed_all([requested()]);
    assert_eq!(main_types(run.feed(accepted()).unwrap()), vec![T::PaymentEscrowHoldRequested]);
    assert_eq!(run.phase(), (B::Accepted, E::HoldRequested));
    let Payload::PaymentEscrowHoldRequested(h) = &run.emitted[0] else { panic!() };
    assert_eq!((h.amount_cents.get(), h.runner_id.as_str(), h.owner_id.as_str()), (PRICE, "run-1", "own-1"));
    assert_eq!(run.timers[HOLD_TIMEOUT], t0() + TimeDelta::minutes(15));
}

#[test]
fn row_03_accepted_before_requested_waits_for_the_price() {
    let mut run = Run::default();
    assert_eq!(main_types(run.feed(accepted()).unwrap()), vec![]);
    assert_eq!(run.phase(), (B::Accepted, E::None));
    assert_eq!(run.s().runner_id.as_deref(), Some("run-1"));
}

#[test]
fn row_04_a_late_requested_starts_and_requests_the_hold() {
    let mut run = Run::feed_all([accepted()]);
    assert_eq!(main_types(run.feed(requested()).unwrap()), vec![T::EscrowSagaStarted, T::PaymentEscrowHoldRequested]);
    assert_eq!(run.phase(), (B::Accepted, E::HoldRequested));
}

#[test]
fn row_05_escrow_created_records_the_payment() {
    let mut run = Run::feed_all([requested(), accepted()]);
    run.feed(created()).unwrap();
    assert_eq!(run.phase(), (B::Accepted, E::Created));
    assert_eq!(run.s().payment_id.as_deref(), Some("pay-1"));
}

/// Row 5 with `E = none`: Kilat's payment service creates the escrow when
/// the owner initiates the payment, before or after the booking facts; the
/// saga then waits for the hold (with its timeout) instead of asking.
#[test]
fn row_05_an_escrow_created_unasked_is_awaited_not_requested_again() {
    // Each order, and whether the saga asks for the hold: only when it was
    // accepted, with the price known, before the escrow existed.
    for (order, asks) in [
        (vec![created(), requested(), accepted()], 0),
        (vec![requested(), created(), accepted()], 0),
        (vec![requested(), accepted(), created()], 1),
        (vec![accepted(), created(), requested()], 0),
    ] {
        let mut run = Run::default();
        let mut emitted = Vec::new();
        for p in order.clone() {
            emitted.extend(main_types(run.feed(p).unwrap()));
        }
        let holds = emitted.iter().filter(|t| **t == T::PaymentEscrowHoldRequested).count();
        assert_eq!(holds, asks, "{order:?}");
        assert_eq!(run.phase().0, B::Accepted, "{order:?}");
        assert!(matches!(run.phase().1, E::Created), "{order:?}");
        assert_eq!(run.timers[HOLD_TIMEOUT], t0() + TimeDelta::minutes(15), "{order:?}");
        // The rest of the happy path as usual.
        run.feed(held()).unwrap();
        run.feed(confirmed()).unwrap();
        assert_eq!(
            main_types(run.feed(released(PAYOUT, FEE)).unwrap()),
            vec![T::BookingCompleted, T::EscrowSagaCompleted]
        );
    }
}

#[test]
fn row_05_an_unasked_escrow_for_another_amount_is_refused() {
    let mut run = Run::feed_all([requested()]);
    let wrong = PaymentEscrowCreated {
        payment_id: "pay-1".into(),
        booking_id: KEY.into(),
        owner_id: "own-1".into(),
        amount_cents: c(PRICE + 1),
        currency: usd(),
        occurred_at: t0(),
    };
    let err = run.feed(wrong.into()).unwrap_err();
    assert_eq!(err.class, "amount_mismatch", "{err:?}");
    assert_eq!(run.phase(), (B::Requested, E::None));
}

#[test]
fn row_06_escrow_held_holds_and_disarms_the_timeout() {
    for prefix in [vec![requested(), accepted()], vec![requested(), accepted(), created()]] {
        let mut run = Run::feed_all(prefix);
        assert_eq!(main_types(run.feed(held()).unwrap()), vec![]);
        assert_eq!(run.phase(), (B::Accepted, E::Held));
        assert_eq!(run.s().ledger.held, PRICE);
        assert!(!run.timers.contains_key(HOLD_TIMEOUT));
    }
}

#[test]
fn row_07_a_hold_landing_after_the_cancel_is_refunded() {
    let mut run = Run::feed_all([requested(), accepted(), cancelled()]);
    assert_eq!(main_types(run.feed(held()).unwrap()), vec![T::PaymentEscrowRefundRequested]);
    assert_eq!(run.phase(), (B::Cancelled, E::RefundRequested));
    assert_eq!(main_types(run.feed(refunded(PRICE)).unwrap()), vec![T::EscrowSagaCancelled]);
    assert_eq!(
        run.find(|p| if let Payload::EscrowSagaCancelled(x) = p { Some(x) } else { None }).refunded_cents.get(),
        PRICE
    );
}

#[test]
fn row_08_payment_failed_asks_the_booking_service_to_cancel() {
    let mut run = Run::feed_all([requested(), accepted(), created()]);
    assert_eq!(main_types(run.feed(failed()).unwrap()), vec![T::BookingCancelRequested]);
    assert_eq!(run.phase(), (B::Accepted, E::Failed));
    assert!(!run.timers.contains_key(HOLD_TIMEOUT));
    assert_eq!(main_types(run.feed(cancelled()).unwrap()), vec![T::EscrowSagaCompensated]);
    let comp = run.find(|p| if let Payload::EscrowSagaCompensated(x) = p { Some(x) } else { None });
    assert_eq!((comp.reason.as_str(), comp.refunded_cents.get()), ("payment_failed", 0));
    assert_eq!(comp.owner_id.as_deref(), Some("own-1"));
}

#[test]
fn a_cancellation_echoing_the_sagas_reason_compensates_in_any_order() {
    // After a crash, the booking service's answer to the saga's (uncommitted)
    // cancel request can arrive before the saga re-reads payment.failed.
    let echo = |reason: &str| -> Payload {
        BookingCancelled {
            booking_id: KEY.into(),
            booking_number: "KLT-1".into(),
            cancelled_by: "system".into(),
            reason: reason.into(),
            occurred_at: t0(),
        }
        .into()
    };
    let mut run = Run::feed_all([requested(), accepted(), created(), echo("payment_failed: card_declined")]);
    assert_eq!(main_types(run.feed(failed()).unwrap()), vec![T::EscrowSagaCompensated]);
    let comp = run.find(|p| if let Payload::EscrowSagaCompensated(x) = p { Some(x) } else { None });
    assert_eq!(comp.reason, "payment_failed");
    assert_eq!(crate::state::Unwind::from_cancel_reason("hold_timeout"), Some(crate::state::Unwind::HoldTimeout));
    assert_eq!(crate::state::Unwind::from_cancel_reason("payment_failedx"), None);
    assert_eq!(crate::state::Unwind::from_cancel_reason("changed plans"), None);
}

#[test]
fn row_09_hold_timeout_compensates() {
    let mut run = Run::feed_all([requested(), accepted()]);
    assert_eq!(main_types(run.fire(HOLD_TIMEOUT).unwrap()), vec![T::BookingCancelRequested]);
    assert_eq!(run.phase(), (B::Accepted, E::Failed));
    // The payment service answers late: the money goes straight back.
    assert_eq!(main_types(run.feed(held()).unwrap()), vec![T::PaymentEscrowRefundRequested]);
    run.feed(cancelled()).unwrap();
    assert_eq!(main_types(run.feed(refunded(PRICE)).unwrap()), vec![T::EscrowSagaCompensated]);
    assert!(run.s().ledger.is_settled());
}

#[test]
fn row_10_pickup_and_delivery_progress_and_arm_auto_confirm() {
    let mut run = held_run();
    run.feed(picked_up()).unwrap();
    assert_eq!(run.phase(), (B::PickedUp, E::Held));
    run.feed(in_delivery()).unwrap();
    assert_eq!(run.phase(), (B::InDelivery, E::Held));
    assert_eq!(run.timers[AUTO_CONFIRM], t0() + TimeDelta::hours(24));
}

#[test]
fn row_11_confirmed_delivery_releases_payout_plus_fee() {
    let mut run = delivery_run();
    assert_eq!(main_types(run.feed(confirmed()).unwrap()), vec![T::PaymentEscrowReleaseRequested]);
    assert_eq!(run.phase(), (B::Delivered, E::ReleaseRequested));
    let Payload::PaymentEscrowReleaseRequested(r) = &run.emitted[0] else { panic!() };
    assert_eq!((r.runner_payout_cents.get(), r.platform_fee_cents.get(), r.amount_cents.get()), (PAYOUT, FEE, PRICE));
    assert!(!run.timers.contains_key(AUTO_CONFIRM));
    assert!(run.timers.contains_key(SETTLE_STUCK));
    assert_eq!(run.s().confirmed_by, Some(ConfirmedBy::Owner));
}

#[test]
fn row_12_confirmed_before_the_hold_releases_when_held() {
    let mut run = Run::feed_all([requested(), accepted(), picked_up(), in_delivery()]);
    assert_eq!(main_types(run.feed(confirmed()).unwrap()), vec![]);
    assert_eq!(run.phase(), (B::Delivered, E::HoldRequested));
    assert_eq!(main_types(run.feed(held()).unwrap()), vec![T::PaymentEscrowReleaseRequested]);
    assert_eq!(run.phase(), (B::Delivered, E::ReleaseRequested));
}

#[test]
fn row_13_confirmed_while_disputed_does_not_release() {
    let mut run = delivery_run();
    run.feed(opened()).unwrap();
    assert_eq!(main_types(run.feed(confirmed()).unwrap()), vec![]);
    assert_eq!(run.phase(), (B::Delivered, E::Frozen));
}

#[test]
fn row_14_auto_confirm_releases_as_system() {
    let mut run = delivery_run();
    assert_eq!(
        main_types(run.fire(AUTO_CONFIRM).unwrap()),
        vec![T::EscrowSagaAutoConfirmed, T::PaymentEscrowReleaseRequested]
    );
    assert_eq!(run.phase(), (B::Delivered, E::ReleaseRequested));
    assert_eq!(run.s().confirmed_by, Some(ConfirmedBy::System));
}

/// Row 14 while the hold is still on its way: confirmed as `system` now,
/// released when the hold lands (row 6 → 11).
#[test]
fn row_14_auto_confirm_with_the_hold_pending_releases_when_held() {
    let mut run = Run::feed_all([requested(), accepted(), picked_up(), in_delivery()]);
    assert_eq!(main_types(run.fire(AUTO_CONFIRM).unwrap()), vec![T::EscrowSagaAutoConfirmed]);
    assert_eq!(run.phase(), (B::Delivered, E::HoldRequested));
    assert_eq!(run.s().confirmed_by, Some(ConfirmedBy::System));
    assert_eq!(main_types(run.feed(held()).unwrap()), vec![T::PaymentEscrowReleaseRequested]);
    assert_eq!(run.phase(), (B::Delivered, E::ReleaseRequested));
}

#[test]
fn row_15_released_completes_the_booking() {
    let mut run = delivery_run();
    run.feed(confirmed()).unwrap();
    assert_eq!(main_types(run.feed(released(PAYOUT, FEE)).unwrap()), vec![T::BookingCompleted, T::EscrowSagaCompleted]);
    assert_eq!(run.phase(), (B::Delivered, E::Released));
    let done = run.find(|p| if let Payload::BookingCompleted(x) = p { Some(x) } else { None });
    assert_eq!(
        (done.final_price_cents.get(), done.owner_id.as_str(), done.runner_id.as_str()),
        (PRICE, "own-1", "run-1")
    );
    let fact = run.find(|p| if let Payload::EscrowSagaCompleted(x) = p { Some(x) } else { None });
    assert_eq!(
        (fact.runner_payout_cents.get(), fact.platform_fee_cents.get(), fact.refunded_cents.get()),
        (PAYOUT, FEE, 0)
    );
    assert_eq!(run.timers.keys().collect::<Vec<_>>(), vec![PURGE]);
}

#[test]
fn row_16_cancel_with_nothing_held_ends_the_saga() {
    let mut run = Run::feed_all([requested()]);
    assert_eq!(main_types(run.feed(cancelled()).unwrap()), vec![T::EscrowSagaCancelled]);
    assert_eq!(run.phase(), (B::Cancelled, E::None));
    assert!(run.s().done);
}

/// Row 16 after a failure the saga answered by asking for the cancellation:
/// compensated, not cancelled.
#[test]
fn row_16_cancel_after_a_failed_hold_is_compensated() {
    let mut run = Run::feed_all([requested(), accepted()]);
    run.fire(HOLD_TIMEOUT).unwrap();
    assert_eq!(run.phase(), (B::Accepted, E::Failed));
    assert_eq!(main_types(run.feed(cancelled()).unwrap()), vec![T::EscrowSagaCompensated]);
    let comp = run.find(|p| if let Payload::EscrowSagaCompensated(x) = p { Some(x) } else { None });
    assert_eq!((comp.reason.as_str(), comp.refunded_cents.get()), ("hold_timeout", 0));
    assert!(run.s().done);
}

#[test]
fn row_17_cancel_while_the_hold_is_in_flight_waits() {
    let mut run = Run::feed_all([requested(), accepted()]);
    assert_eq!(main_types(run.feed(cancelled()).unwrap()), vec![]);
    assert_eq!(run.phase(), (B::Cancelled, E::HoldRequested));
    // The payment service declines: nothing to refund, the saga ends cancelled.
    assert_eq!(main_types(run.feed(failed()).unwrap()), vec![T::EscrowSagaCancelled]);
}

#[test]
fn row_18_cancel_after_the_hold_refunds_in_full() {
    let mut run = held_run();
    assert_eq!(main_types(run.feed(cancelled()).unwrap()), vec![T::PaymentEscrowRefundRequested]);
    assert_eq!(run.phase(), (B::Cancelled, E::RefundRequested));
}

#[test]
fn row_19_refunded_ends_cancelled() {
    let mut run = held_run();
    run.feed(cancelled()).unwrap();
    assert_eq!(main_types(run.feed(refunded(PRICE)).unwrap()), vec![T::EscrowSagaCancelled]);
    assert_eq!(run.phase(), (B::Cancelled, E::Refunded));
}

#[test]
fn row_20_dispute_freezes_and_disarms_auto_confirm() {
    let mut run = delivery_run();
    run.feed(opened()).unwrap();
    assert_eq!(run.phase(), (B::InDelivery, E::Frozen));
    assert!(!run.timers.contains_key(AUTO_CONFIRM));
}

#[test]
fn row_21_dispute_refund_to_the_requester() {
    let mut run = delivery_run();
    run.feed(opened()).unwrap();
    let types = run.feed(resolved(DisputeResolution::RefundRequester, None)).unwrap();
    assert_eq!(main_types(types), vec![T::PaymentEscrowRefundRequested]);
    assert_eq!(main_types(run.feed(refunded(PRICE)).unwrap()), vec![T::EscrowSagaCompleted]);
    let fact = run.find(|p| if let Payload::EscrowSagaCompleted(x) = p { Some(x) } else { None });
    assert_eq!((fact.refunded_cents.get(), fact.runner_payout_cents.get()), (PRICE, 0));
    assert_eq!(run.count(T::BookingCompleted), 0);
}

#[test]
fn row_22_dispute_release_to_the_agent() {
    let mut run = delivery_run();
    run.feed(opened()).unwrap();
    let types = run.feed(resolved(DisputeResolution::ReleaseToAgent, None)).unwrap();
    assert_eq!(main_types(types), vec![T::PaymentEscrowReleaseRequested]);
    assert_eq!(run.s().confirmed_by, Some(ConfirmedBy::Dispute));
    run.feed(released(PAYOUT, FEE)).unwrap();
    assert_eq!((run.count(T::BookingCompleted), run.count(T::EscrowSagaCompleted)), (1, 1));
}

#[test]
fn row_23_dispute_split_adds_up_to_the_held_amount() {
    let mut run = delivery_run();
    run.feed(opened()).unwrap();
    let types = run.feed(resolved(DisputeResolution::Split, Some((3_333, 6_667)))).unwrap();
    assert_eq!(main_types(types), vec![T::PaymentEscrowReleaseRequested, T::PaymentEscrowRefundRequested]);
    assert_eq!(run.phase(), (B::InDelivery, E::SettlementRequested));
    // 33.33 % of 4501 = 1500.18 → 1500 refunded; 3001 released, fee 300.
    let rel = run.find(|p| if let Payload::PaymentEscrowReleaseRequested(x) = p { Some(x) } else { None });
    let refund = run.find(|p| if let Payload::PaymentEscrowRefundRequested(x) = p { Some(x) } else { None });
    assert_eq!((refund.amount_cents.get(), rel.amount_cents.get()), (1_500, 3_001));
    assert_eq!((rel.runner_payout_cents.get(), rel.platform_fee_cents.get()), (2_701, 300));
    assert_eq!(main_types(run.feed(refunded(1_500)).unwrap()), vec![]);
    assert_eq!(run.phase(), (B::InDelivery, E::SettlementRequested));
    assert_eq!(main_types(run.feed(released(2_701, 300)).unwrap()), vec![T::BookingCompleted, T::EscrowSagaCompleted]);
    let l = &run.s().ledger;
    assert_eq!((l.released, l.refunded, l.held), (3_001, 1_500, PRICE));
}

#[test]
fn row_24_stuck_alarm_backs_off_and_never_resends_money() {
    let mut run = delivery_run();
    run.feed(confirmed()).unwrap();
    let first = run.timers[SETTLE_STUCK];
    assert_eq!(main_types(run.fire(SETTLE_STUCK).unwrap()), vec![T::EscrowSagaStuck]);
    assert_eq!(run.timers[SETTLE_STUCK], first + TimeDelta::minutes(20));
    run.fire(SETTLE_STUCK).unwrap();
    assert_eq!(run.count(T::PaymentEscrowReleaseRequested), 1);
    let stuck = run.find(|p| if let Payload::EscrowSagaStuck(x) = p { Some(x) } else { None });
    assert_eq!(
        (stuck.state.as_str(), stuck.waiting_for.as_str()),
        ("delivered/release_requested", "payment.escrow_released")
    );
    // Confirmation disarms it.
    run.feed(released(PAYOUT, FEE)).unwrap();
    assert!(!run.timers.contains_key(SETTLE_STUCK));
}

#[test]
fn row_25_purge_forgets_a_finished_saga_only() {
    let mut run = Run::feed_all([requested()]);
    run.feed(cancelled()).unwrap();
    run.fire(PURGE).unwrap();
    assert!(run.deleted && run.state.is_none());
    // A purge timer on a live saga (e.g. a reopened one) does nothing.
    let mut live = held_run();
    live.timers.insert(PURGE.into(), t0());
    live.fire(PURGE).unwrap();
    assert!(!live.deleted);
}

#[test]
fn row_26_impossible_transitions_go_to_the_dlq_with_the_state_unchanged() {
    let cases: Vec<(Run, Payload)> = vec![
        (Run::default(), held()),
        (Run::feed_all([requested()]), released(PAYOUT, FEE)),
        (held_run(), refunded(PRICE)),
        (Run::feed_all([requested(), accepted()]), opened()),
        (held_run(), resolved(DisputeResolution::RefundRequester, None)),
        (
            {
                let mut r = delivery_run();
                r.feed(confirmed()).unwrap();
                r
            },
            cancelled(),
        ),
        (held_run(), failed()),
    ];
    for (mut run, input) in cases {
        let before = run.state.clone();
        let what = input.event_type();
        let r = run.feed(input).unwrap_err();
        assert_eq!(r.class, Class::InvalidTransition.code(), "{what}: {r}");
        assert_eq!(run.state, before, "{what} left the state alone");
    }
}

/// Row 28: a first hold of another amount than asked is money held all the
/// same. Exactly that amount is refunded, the booking is asked to cancel,
/// and the saga ends compensated with what came back.
#[test]
fn row_28_a_hold_of_the_wrong_amount_is_refunded_exactly_and_compensated() {
    for prefix in [vec![requested(), accepted()], vec![requested(), accepted(), created()]] {
        let mut run = Run::feed_all(prefix);
        assert_eq!(
            main_types(run.feed(held_for(PRICE - 1, "USD")).unwrap()),
            vec![T::PaymentEscrowRefundRequested, T::BookingCancelRequested]
        );
        assert_eq!(run.phase(), (B::Accepted, E::RefundRequested));
        assert!(!run.timers.contains_key(HOLD_TIMEOUT));
        let refund = run.find(|p| if let Payload::PaymentEscrowRefundRequested(x) = p { Some(x) } else { None });
        assert_eq!((refund.amount_cents.get(), refund.reason.as_str()), (PRICE - 1, "wrong_amount"));
        let cancel = run.find(|p| if let Payload::BookingCancelRequested(x) = p { Some(x) } else { None });
        assert_eq!(cancel.reason, "payment_failed");
        run.feed(cancelled_because("payment_failed")).unwrap();
        assert_eq!(main_types(run.feed(refunded(PRICE - 1)).unwrap()), vec![T::EscrowSagaCompensated]);
        let comp = run.find(|p| if let Payload::EscrowSagaCompensated(x) = p { Some(x) } else { None });
        assert_eq!((comp.reason.as_str(), comp.refunded_cents.get()), ("wrong_amount", PRICE - 1));
        assert!(run.s().done);
        run.s().check_invariants().unwrap();
    }
    // A late hold after the saga gave up comes back whatever its amount (row 7).
    let mut late = Run::feed_all([requested(), accepted()]);
    late.fire(HOLD_TIMEOUT).unwrap();
    assert_eq!(main_types(late.feed(held_for(PRICE + 5, "USD")).unwrap()), vec![T::PaymentEscrowRefundRequested]);
    let refund = late.find(|p| if let Payload::PaymentEscrowRefundRequested(x) = p { Some(x) } else { None });
    assert_eq!((refund.amount_cents.get(), refund.reason.as_str()), (PRICE + 5, "hold_after_cancel"));
}

/// Rows 29-31: `payment.failed` answering a release (or refund): the money
/// is still held, so the command is sent again after a doubling backoff,
/// with the same amounts and reason and a new id; after the configured
/// retries (2 here) an operator is called with `escrow.saga.stuck`, and a
/// late confirmation still completes the saga.
#[test]
fn rows_29_30_31_a_failed_release_is_retried_then_an_operator_is_called() {
    let mut run = delivery_run();
    run.feed(confirmed()).unwrap();
    let first = run.find(|p| if let Payload::PaymentEscrowReleaseRequested(x) = p { Some(x) } else { None }).clone();
    // Row 29: the first failure arms the retry in 1 min, the second in 2 min.
    for (n, delay) in [(1, 1), (2, 2)] {
        assert_eq!(main_types(run.feed(failed()).unwrap()), vec![], "failure {n}");
        assert_eq!(run.timers[SETTLE_RETRY], t0() + TimeDelta::minutes(delay), "failure {n}");
        assert_eq!(run.phase(), (B::Delivered, E::ReleaseRequested));
        // Row 30: the same release again.
        assert_eq!(main_types(run.fire(SETTLE_RETRY).unwrap()), vec![T::PaymentEscrowReleaseRequested]);
        let again = run.last(|p| if let Payload::PaymentEscrowReleaseRequested(x) = p { Some(x) } else { None });
        assert_eq!(
            (again.amount_cents, again.runner_payout_cents, again.platform_fee_cents, again.reason.as_str()),
            (first.amount_cents, first.runner_payout_cents, first.platform_fee_cents, "delivered")
        );
    }
    // Row 31: retries used up: an operator is called, no further command.
    assert_eq!(main_types(run.feed(failed()).unwrap()), vec![T::EscrowSagaStuck]);
    let stuck = run.find(|p| if let Payload::EscrowSagaStuck(x) = p { Some(x) } else { None });
    assert!(stuck.waiting_for.starts_with("an operator"), "{}", stuck.waiting_for);
    assert!(!run.timers.contains_key(SETTLE_RETRY));
    assert_eq!(run.count(T::PaymentEscrowReleaseRequested), 3, "one request and two retries in all");
    // The payment service (or an operator through it) finally releases.
    assert_eq!(main_types(run.feed(released(PAYOUT, FEE)).unwrap()), vec![T::BookingCompleted, T::EscrowSagaCompleted]);
    assert!(run.s().done);

    // A failed refund is retried with its own reason.
    let mut refund = held_run();
    refund.feed(cancelled()).unwrap();
    refund.feed(failed()).unwrap();
    assert_eq!(main_types(refund.fire(SETTLE_RETRY).unwrap()), vec![T::PaymentEscrowRefundRequested]);
    assert_eq!(refund.count(T::PaymentEscrowRefundRequested), 2);
    let again = refund.last(|p| if let Payload::PaymentEscrowRefundRequested(x) = p { Some(x) } else { None });
    assert_eq!((again.amount_cents.get(), again.reason.as_str()), (PRICE, "cancelled"));
}

#[test]
fn row_27_our_own_booking_completed_is_ignored() {
    let mut run = held_run();
    let before = run.state.clone();
    assert_eq!(run.feed(completed()).unwrap(), vec![]);
    assert_eq!(run.state, before);
}
