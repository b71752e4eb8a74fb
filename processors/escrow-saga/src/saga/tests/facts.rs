//! Repeated and conflicting facts, invariants, the state's encoding, and
//! the contract of the commands (their reason codes).

use super::*;

// --- repeated facts with new ids, conflicting facts ---------------------

#[test]
fn repeated_facts_that_agree_are_no_ops() {
    let mut run = delivery_run();
    for p in [requested(), accepted(), created(), held(), picked_up(), in_delivery()] {
        let before = run.state.clone();
        let what = p.event_type();
        assert_eq!(run.feed(p).unwrap(), vec![], "{what}");
        assert_eq!(run.state, before, "{what}");
    }
    run.feed(confirmed()).unwrap();
    run.feed(confirmed()).unwrap();
    run.feed(released(PAYOUT, FEE)).unwrap();
    run.feed(released(PAYOUT, FEE)).unwrap();
    assert_eq!(run.count(T::PaymentEscrowReleaseRequested), 1);
    assert_eq!(run.count(T::EscrowSagaCompleted), 1);
}

#[test]
fn conflicting_facts_are_rejected() {
    let mut run = held_run();
    assert_eq!(run.feed(accepted_by("run-2")).unwrap_err().class, Class::ConflictingFact.code());
    assert_eq!(run.feed(requested_for(PRICE + 1, "USD")).unwrap_err().class, Class::ConflictingFact.code());
    assert_eq!(run.feed(held_for(PRICE + 1, "USD")).unwrap_err().class, Class::AmountMismatch.code());
    let mut fresh = Run::feed_all([requested(), accepted()]);
    assert_eq!(fresh.feed(held_for(PRICE, "EUR")).unwrap_err().class, Class::CurrencyMismatch.code());
    let mut disputed = delivery_run();
    disputed.feed(opened()).unwrap();
    let split = resolved(DisputeResolution::Split, Some((5_000, 4_000)));
    assert_eq!(disputed.feed(split).unwrap_err().class, Class::InvalidRatios.code());
    assert_eq!(disputed.feed(resolved(DisputeResolution::Split, None)).unwrap_err().class, Class::InvalidRatios.code());
    assert_eq!(disputed.phase(), (B::InDelivery, E::Frozen), "rejections leave the state alone");
}

// --- invariants ---------------------------------------------------------

#[test]
fn invariant_violations_are_rejected_and_leave_the_state_alone() {
    // The payment service confirms a release or refund other than the one asked for.
    let mut run = delivery_run();
    run.feed(confirmed()).unwrap();
    assert_eq!(run.feed(released(PAYOUT + 1, FEE)).unwrap_err().class, Class::AmountMismatch.code());
    let mut run = held_run();
    run.feed(cancelled()).unwrap();
    assert_eq!(run.feed(refunded(PRICE + 1)).unwrap_err().class, Class::AmountMismatch.code());

    // States that break an invariant, as a corrupted changelog could hold:
    // the next transition is refused with the reason.
    let good = delivery_run().s().clone();
    let mut overdrawn = good.clone();
    overdrawn.ledger.released = PRICE;
    overdrawn.ledger.refunded = 1;
    let mut unconfirmed = good.clone();
    unconfirmed.escrow = E::ReleaseRequested;
    unconfirmed.pending_release = PRICE;
    let mut both = good.clone();
    both.confirmed_by = Some(ConfirmedBy::Owner);
    both.pending_release = PRICE;
    both.ledger.refunded = PRICE;
    let mut unsettled = good.clone();
    unsettled.done = true;
    unsettled.ledger.refunded = 1;
    let mut overpaid = good.clone();
    overpaid.paid_out = 10;
    for (bad, reason) in [
        (overdrawn, "would exceed held"),
        (unconfirmed, "without a delivery confirmation"),
        (both, "would exceed held"),
        (unsettled, "neither released nor refunded"),
        (overpaid, "payout"),
    ] {
        let mut run = Run { state: Some(Box::new(bad.clone())), ..Run::default() };
        let r = run.feed(picked_up()).unwrap_err();
        assert_eq!(r.class, Class::InvariantViolated.code(), "{reason}");
        assert!(r.message.contains(reason), "{r}");
        assert_eq!(run.state.as_deref(), Some(&bad));
    }
    let mut both_full = good;
    both_full.ledger.held = PRICE;
    both_full.confirmed_by = Some(ConfirmedBy::Owner);
    both_full.ledger.released = PRICE;
    both_full.pending_refund = 0;
    assert!(both_full.check_invariants().is_ok());
}

#[test]
fn every_invariant_has_a_reason() {
    let s = Saga {
        ledger: crate::money::Ledger { held: 10, released: 10, refunded: 10, currency: None },
        ..Saga::default()
    };
    assert!(s.check_invariants().unwrap_err().contains("exceed"));
    let s = Saga { pending_release: -1, ..Saga::default() };
    assert!(s.check_invariants().unwrap_err().contains("negative"));
}

#[test]
fn timers_without_state_or_unknown_names_are_rejected() {
    let ctx = Context { key: KEY, partition: 0, now: t0(), topic: "" };
    let t = Timer { name: HOLD_TIMEOUT.into(), due: t0() };
    assert_eq!(saga().on_timer(None, &t, &ctx).unwrap_err().class, Class::UnknownTimer.code());
    let s = Box::new(held_run().s().clone());
    let t = Timer { name: "nope".into(), due: t0() };
    assert_eq!(saga().on_timer(Some(&s), &t, &ctx).unwrap_err().class, Class::UnknownTimer.code());
}

#[test]
fn state_round_trips_through_json_and_stays_small() {
    let mut run = delivery_run();
    run.feed(confirmed()).unwrap();
    let json = serde_json::to_string(run.s()).unwrap();
    let back: Saga = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, run.s());
    assert!(json.len() < 400, "{} bytes: {json}", json.len());
}

// --- the contract: the reason codes the commands carry -------------------

/// The backticked values of a `reason` field as docs/events.md lists them
/// for `event`, and as its `.avsc` documents them.
fn documented_reasons(event: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let ticked = |text: &str| -> BTreeSet<String> { text.split('`').skip(1).step_by(2).map(str::to_owned).collect() };
    let events = include_str!("../../../../../docs/events.md");
    let row = events.lines().find(|l| l.starts_with(&format!("| `{event}` |"))).expect("a row in docs/events.md");
    let field = row.split("`reason` (string: ").nth(1).expect("documented reason values").split(')').next().unwrap();
    let schema = std::fs::read_to_string(format!("{}/../../schemas/{event}.avsc", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&schema).unwrap();
    let doc = schema["fields"].as_array().unwrap().iter().find(|f| f["name"] == "reason").unwrap()["doc"]
        .as_str()
        .unwrap()
        .to_owned();
    (ticked(field), ticked(&doc))
}

/// Every path that sends a money command or a cancel request, and the
/// reasons it used: each command's set must be exactly what is documented.
#[test]
fn command_reasons_are_exactly_the_documented_codes() {
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut note = |run: &Run| {
        for p in &run.emitted {
            let (event, reason) = match p {
                Payload::PaymentEscrowReleaseRequested(c) => ("payment.escrow_release_requested", &c.reason),
                Payload::PaymentEscrowRefundRequested(c) => ("payment.escrow_refund_requested", &c.reason),
                Payload::BookingCancelRequested(c) => ("booking.cancel_requested", &c.reason),
                _ => continue,
            };
            seen.entry(event).or_default().insert(reason.clone());
        }
    };
    let mut owner = delivery_run();
    owner.feed(confirmed()).unwrap();
    note(&owner);
    let mut system = delivery_run();
    system.fire(AUTO_CONFIRM).unwrap();
    note(&system);
    for resolution in [DisputeResolution::RefundRequester, DisputeResolution::ReleaseToAgent] {
        let mut disputed = held_run();
        disputed.feed(opened()).unwrap();
        disputed.feed(resolved(resolution, None)).unwrap();
        note(&disputed);
    }
    let mut cancelled_held = held_run();
    cancelled_held.feed(cancelled()).unwrap();
    note(&cancelled_held);
    let mut late_hold = Run::feed_all([requested(), accepted(), cancelled()]);
    late_hold.feed(held()).unwrap();
    note(&late_hold);
    let mut payment_failure = Run::feed_all([requested(), accepted()]);
    payment_failure.feed(failed()).unwrap();
    note(&payment_failure);
    let mut timeout = Run::feed_all([requested(), accepted()]);
    timeout.fire(HOLD_TIMEOUT).unwrap();
    note(&timeout);
    let mut wrong = Run::feed_all([requested(), accepted()]);
    wrong.feed(held_for(PRICE - 1, "USD")).unwrap();
    note(&wrong);
    for (event, reasons) in &seen {
        let (docs, avsc) = documented_reasons(event);
        assert_eq!(reasons, &docs, "{event}: the reasons sent (left) and docs/events.md's (right)");
        assert_eq!(reasons, &avsc, "{event}: the reasons sent (left) and schemas/{event}.avsc's doc (right)");
    }
    assert_eq!(seen.len(), 3, "all three commands were exercised: {seen:?}");
}
