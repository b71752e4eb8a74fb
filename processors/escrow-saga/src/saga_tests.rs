//! The transition table row by row, repeated facts, invariant violations and
//! every interleaving of each scenario (exhaustive search over the order in
//! which the booking topic, the payment topic and the timers deliver).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sagastream_contract::payloads::booking::*;
use sagastream_contract::payloads::payment::*;
use sagastream_contract::{Cents, Currency, Event, EventType, Payload};
use sagastream_runtime::{Context, Processor, Rejection, StateChange, Timer, TimerCommand};

use crate::money::Bps;
use crate::saga::{check_invariants, class, AUTO_CONFIRM, HOLD_TIMEOUT, PURGE, SETTLE_RETRY, SETTLE_STUCK};
use crate::state::{Booking as B, ConfirmedBy, Escrow as E, Saga};
use crate::{Config, EscrowSaga};

const KEY: &str = "bk-1";
const PRICE: i64 = 4_501;

fn saga() -> EscrowSaga {
    EscrowSaga {
        config: Config {
            fee: Bps::new(1_000).unwrap(),
            hold_timeout: TimeDelta::minutes(15),
            auto_confirm_after: TimeDelta::hours(24),
            stuck_after: TimeDelta::minutes(10),
            purge_after: TimeDelta::days(7),
            settle_retries: 2,
            settle_retry_after: TimeDelta::minutes(1),
        },
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fn usd() -> Currency {
    Currency::new("USD").unwrap()
}

fn c(v: i64) -> Cents {
    Cents::new(v).unwrap()
}

// --- inputs -------------------------------------------------------------

fn requested() -> Payload {
    requested_for(PRICE, "USD")
}

fn requested_for(price: i64, currency: &str) -> Payload {
    BookingRequested {
        booking_id: KEY.into(),
        booking_number: "KLT-1".into(),
        owner_id: "own-1".into(),
        pet_type: "cat".into(),
        pet_name: "Miso".into(),
        pickup_lat: 0.0,
        pickup_lng: 0.0,
        dropoff_lat: 0.0,
        dropoff_lng: 0.0,
        estimated_price_cents: c(price),
        currency: Currency::new(currency).unwrap(),
        occurred_at: t0(),
    }
    .into()
}

fn accepted() -> Payload {
    accepted_by("run-1")
}

fn accepted_by(runner: &str) -> Payload {
    BookingAccepted {
        booking_id: KEY.into(),
        booking_number: "KLT-1".into(),
        runner_id: runner.into(),
        owner_id: "own-1".into(),
        occurred_at: t0(),
    }
    .into()
}

fn picked_up() -> Payload {
    BookingPetPickedUp {
        booking_id: KEY.into(),
        booking_number: "KLT-1".into(),
        runner_id: "run-1".into(),
        owner_id: "own-1".into(),
        picked_up_at: t0(),
        occurred_at: t0(),
    }
    .into()
}

fn in_delivery() -> Payload {
    BookingDeliveryInProgress {
        booking_id: KEY.into(),
        booking_number: "KLT-1".into(),
        runner_id: "run-1".into(),
        owner_id: "own-1".into(),
        picked_up_at: t0(),
        occurred_at: t0(),
    }
    .into()
}

fn confirmed() -> Payload {
    BookingDeliveryConfirmed {
        booking_id: KEY.into(),
        booking_number: "KLT-1".into(),
        runner_id: "run-1".into(),
        owner_id: "own-1".into(),
        delivered_at: t0(),
        occurred_at: t0(),
    }
    .into()
}

fn cancelled() -> Payload {
    cancelled_because("changed plans")
}

fn cancelled_because(reason: &str) -> Payload {
    BookingCancelled {
        booking_id: KEY.into(),
        booking_number: "KLT-1".into(),
        cancelled_by: "owner".into(),
        reason: reason.into(),
        occurred_at: t0(),
    }
    .into()
}

fn completed() -> Payload {
    BookingCompleted {
        booking_id: KEY.into(),
        booking_number: "KLT-1".into(),
        runner_id: "run-1".into(),
        owner_id: "own-1".into(),
        final_price_cents: c(PRICE),
        currency: usd(),
        occurred_at: t0(),
    }
    .into()
}

fn created() -> Payload {
    PaymentEscrowCreated {
        payment_id: "pay-1".into(),
        booking_id: KEY.into(),
        owner_id: "own-1".into(),
        amount_cents: c(PRICE),
        currency: usd(),
        occurred_at: t0(),
    }
    .into()
}

fn held() -> Payload {
    held_for(PRICE, "USD")
}

fn held_for(amount: i64, currency: &str) -> Payload {
    PaymentEscrowHeld {
        payment_id: "pay-1".into(),
        booking_id: KEY.into(),
        stripe_payment_id: "pi_1".into(),
        amount_cents: c(amount),
        currency: Currency::new(currency).unwrap(),
        occurred_at: t0(),
        owner_id: None,
    }
    .into()
}

fn failed() -> Payload {
    PaymentFailed {
        payment_id: "pay-1".into(),
        booking_id: KEY.into(),
        reason: "card_declined".into(),
        occurred_at: t0(),
        owner_id: None,
    }
    .into()
}

fn released(payout: i64, fee: i64) -> Payload {
    PaymentEscrowReleased {
        payment_id: "pay-1".into(),
        booking_id: KEY.into(),
        runner_id: "run-1".into(),
        runner_payout_cents: c(payout),
        platform_fee_cents: c(fee),
        currency: usd(),
        occurred_at: t0(),
    }
    .into()
}

fn refunded(amount: i64) -> Payload {
    PaymentEscrowRefunded {
        payment_id: "pay-1".into(),
        booking_id: KEY.into(),
        owner_id: "own-1".into(),
        amount_cents: c(amount),
        currency: usd(),
        refund_reason: "requested".into(),
        occurred_at: t0(),
    }
    .into()
}

fn opened() -> Payload {
    DisputeOpened {
        dispute_id: "dsp-1".into(),
        booking_id: KEY.into(),
        opened_by: "own-1".into(),
        reason: None,
        occurred_at: t0(),
    }
    .into()
}

fn resolved(resolution: DisputeResolution, ratios: Option<(u32, u32)>) -> Payload {
    DisputeResolved {
        dispute_id: "dsp-1".into(),
        booking_id: KEY.into(),
        resolution,
        ratio_requester_bps: ratios.map(|r| r.0),
        ratio_agent_bps: ratios.map(|r| r.1),
        occurred_at: t0(),
    }
    .into()
}

// --- a tiny in-memory runtime -------------------------------------------

/// Applies steps the way the engine does: state, timers, emitted events.
#[derive(Debug, Clone, Default)]
struct Run {
    state: Option<Box<Saga>>,
    timers: BTreeMap<String, DateTime<Utc>>,
    emitted: Vec<Payload>,
    rejected: Vec<Rejection>,
    deleted: bool,
}

impl Run {
    fn feed_all(inputs: impl IntoIterator<Item = Payload>) -> Run {
        let mut run = Run::default();
        for p in inputs {
            run.feed(p).unwrap_or_else(|r| panic!("setup input rejected: {r}"));
        }
        run.emitted.clear();
        run
    }

    /// Feeds one input; returns what it emitted, or the rejection.
    fn feed(&mut self, payload: Payload) -> Result<Vec<EventType>, Rejection> {
        let event = Event::new("/test", payload).with_time(t0());
        let topic = event.event_type().topic();
        let ctx = Context { key: KEY, partition: 0, now: t0(), topic };
        let outcome = saga().process(self.state.as_ref(), &event, &ctx);
        self.apply(outcome)
    }

    fn fire(&mut self, name: &str) -> Result<Vec<EventType>, Rejection> {
        let due = self.timers.remove(name).unwrap_or_else(|| panic!("timer {name} is not set: {:?}", self.timers));
        let ctx = Context { key: KEY, partition: 0, now: due, topic: "" };
        let outcome = saga().on_timer(self.state.as_ref(), &Timer { name: name.into(), due }, &ctx);
        self.apply(outcome)
    }

    fn apply(&mut self, outcome: sagastream_runtime::Outcome<Box<Saga>>) -> Result<Vec<EventType>, Rejection> {
        let step = match outcome {
            Ok(step) => step,
            Err(r) => {
                self.rejected.push(r.clone());
                return Err(r);
            }
        };
        match step.state {
            StateChange::Keep => {}
            StateChange::Set(s) => {
                check_invariants(&s).expect("a step never yields a state breaking the invariants");
                self.state = Some(s)
            }
            StateChange::Delete => {
                self.state = None;
                self.timers.clear();
                self.deleted = true;
            }
        }
        for t in step.timers {
            match t {
                TimerCommand::Set { name, due } => {
                    self.timers.insert(name, due);
                }
                TimerCommand::Cancel { name } => {
                    self.timers.remove(&name);
                }
            }
        }
        let types = step.emits.iter().map(|e| e.payload.event_type()).collect();
        self.emitted.extend(step.emits.into_iter().map(|e| *e.payload));
        Ok(types)
    }

    fn s(&self) -> &Saga {
        self.state.as_deref().expect("saga state")
    }

    fn phase(&self) -> (B, E) {
        (self.s().booking, self.s().escrow)
    }

    fn count(&self, t: EventType) -> usize {
        self.emitted.iter().filter(|p| p.event_type() == t).count()
    }

    fn find<T>(&self, f: impl Fn(&Payload) -> Option<&T>) -> &T {
        self.emitted.iter().find_map(f).expect("emitted")
    }

    /// The latest emitted event `f` picks.
    fn last<T>(&self, f: impl Fn(&Payload) -> Option<&T>) -> &T {
        self.emitted.iter().rev().find_map(f).expect("emitted")
    }
}

use EventType as T;

/// The emitted types other than the state_changed bookkeeping.
fn main_types(types: Vec<EventType>) -> Vec<EventType> {
    types.into_iter().filter(|t| *t != T::EscrowSagaStateChanged).collect()
}

fn held_run() -> Run {
    Run::feed_all([requested(), accepted(), created(), held()])
}

fn delivery_run() -> Run {
    Run::feed_all([requested(), accepted(), created(), held(), picked_up(), in_delivery()])
}

// Fee 10 % of 4501 = 450 (rounded down), payout 4051.
const FEE: i64 = 450;
const PAYOUT: i64 = PRICE - FEE;

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
        assert_eq!(r.class, class::INVALID_TRANSITION, "{what}: {r}");
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
        check_invariants(run.s()).unwrap();
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
    assert_eq!(run.feed(accepted_by("run-2")).unwrap_err().class, class::CONFLICTING_FACT);
    assert_eq!(run.feed(requested_for(PRICE + 1, "USD")).unwrap_err().class, class::CONFLICTING_FACT);
    assert_eq!(run.feed(held_for(PRICE + 1, "USD")).unwrap_err().class, class::AMOUNT_MISMATCH);
    let mut fresh = Run::feed_all([requested(), accepted()]);
    assert_eq!(fresh.feed(held_for(PRICE, "EUR")).unwrap_err().class, class::CURRENCY_MISMATCH);
    let mut disputed = delivery_run();
    disputed.feed(opened()).unwrap();
    let split = resolved(DisputeResolution::Split, Some((5_000, 4_000)));
    assert_eq!(disputed.feed(split).unwrap_err().class, class::INVALID_RATIOS);
    assert_eq!(disputed.feed(resolved(DisputeResolution::Split, None)).unwrap_err().class, class::INVALID_RATIOS);
    assert_eq!(disputed.phase(), (B::InDelivery, E::Frozen), "rejections leave the state alone");
}

// --- invariants ---------------------------------------------------------

#[test]
fn invariant_violations_are_rejected_and_leave_the_state_alone() {
    // The payment service confirms a release or refund other than the one asked for.
    let mut run = delivery_run();
    run.feed(confirmed()).unwrap();
    assert_eq!(run.feed(released(PAYOUT + 1, FEE)).unwrap_err().class, class::AMOUNT_MISMATCH);
    let mut run = held_run();
    run.feed(cancelled()).unwrap();
    assert_eq!(run.feed(refunded(PRICE + 1)).unwrap_err().class, class::AMOUNT_MISMATCH);

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
        assert_eq!(r.class, class::INVARIANT_VIOLATED, "{reason}");
        assert!(r.message.contains(reason), "{r}");
        assert_eq!(run.state.as_deref(), Some(&bad));
    }
    let mut both_full = good;
    both_full.ledger.held = PRICE;
    both_full.confirmed_by = Some(ConfirmedBy::Owner);
    both_full.ledger.released = PRICE;
    both_full.pending_refund = 0;
    assert!(check_invariants(&both_full).is_ok());
}

#[test]
fn every_invariant_has_a_reason() {
    let s = Saga {
        ledger: crate::money::Ledger { held: 10, released: 10, refunded: 10, currency: None },
        ..Saga::default()
    };
    assert!(check_invariants(&s).unwrap_err().contains("exceed"));
    let s = Saga { pending_release: -1, ..Saga::default() };
    assert!(check_invariants(&s).unwrap_err().contains("negative"));
}

#[test]
fn timers_without_state_or_unknown_names_are_rejected() {
    let ctx = Context { key: KEY, partition: 0, now: t0(), topic: "" };
    let t = Timer { name: HOLD_TIMEOUT.into(), due: t0() };
    assert_eq!(saga().on_timer(None, &t, &ctx).unwrap_err().class, class::UNKNOWN_TIMER);
    let s = Box::new(held_run().s().clone());
    let t = Timer { name: "nope".into(), due: t0() };
    assert_eq!(saga().on_timer(Some(&s), &t, &ctx).unwrap_err().class, class::UNKNOWN_TIMER);
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

// --- every interleaving of every scenario -------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Happy,
    CancelBeforeHold,
    CancelAfterHold,
    PaymentFailure,
    HoldTimeout,
    DisputeRefund,
    DisputeRelease,
    DisputeSplit,
    AutoConfirm,
    Duplicates,
    Reordered,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Completed { payout: i64, fee: i64, refunded: i64 },
    Cancelled { refunded: i64 },
    Compensated { refunded: i64 },
}

impl Scenario {
    const ALL: [Scenario; 11] = [
        Scenario::Happy,
        Scenario::CancelBeforeHold,
        Scenario::CancelAfterHold,
        Scenario::PaymentFailure,
        Scenario::HoldTimeout,
        Scenario::DisputeRefund,
        Scenario::DisputeRelease,
        Scenario::DisputeSplit,
        Scenario::AutoConfirm,
        Scenario::Duplicates,
        Scenario::Reordered,
    ];

    /// What the booking service publishes, in order.
    fn booking_script(self) -> Vec<Payload> {
        use Scenario::*;
        match self {
            Happy => vec![requested(), accepted(), picked_up(), in_delivery(), confirmed()],
            CancelBeforeHold => vec![requested(), cancelled()],
            CancelAfterHold => vec![requested(), accepted(), cancelled()],
            PaymentFailure | HoldTimeout => vec![requested(), accepted(), picked_up()],
            DisputeRefund | DisputeRelease | DisputeSplit | AutoConfirm => {
                vec![requested(), accepted(), picked_up(), in_delivery()]
            }
            Duplicates => vec![
                requested(),
                requested(),
                accepted(),
                accepted(),
                picked_up(),
                in_delivery(),
                in_delivery(),
                confirmed(),
                confirmed(),
            ],
            Reordered => vec![accepted(), requested(), in_delivery(), picked_up(), confirmed()],
        }
    }

    fn expected(self) -> Outcome {
        use Scenario::*;
        match self {
            Happy | AutoConfirm | Duplicates | Reordered | DisputeRelease => {
                Outcome::Completed { payout: PAYOUT, fee: FEE, refunded: 0 }
            }
            CancelBeforeHold => Outcome::Cancelled { refunded: 0 },
            CancelAfterHold => Outcome::Cancelled { refunded: PRICE },
            PaymentFailure | HoldTimeout => Outcome::Compensated { refunded: 0 },
            DisputeRefund => Outcome::Completed { payout: 0, fee: 0, refunded: PRICE },
            // 50/50 of 4501: 2250 back, 2251 released, fee 225.
            DisputeSplit => Outcome::Completed { payout: 2_026, fee: 225, refunded: 2_250 },
        }
    }
}

/// The world around the saga: the booking service's script and the payment
/// service, which answers every command in order.
#[derive(Debug, Clone)]
struct World {
    scenario: Scenario,
    run: Run,
    booking: Vec<Payload>,
    payment: Vec<Payload>,
    answered: usize,
    stuck_fired: bool,
    /// The last fact delivered, which an at-least-once producer may send
    /// again with a new id (once per path, to keep the search finite).
    last: Option<Payload>,
    redelivered: bool,
}

impl World {
    fn new(scenario: Scenario) -> World {
        let mut booking = scenario.booking_script();
        booking.reverse();
        World {
            scenario,
            run: Run::default(),
            booking,
            payment: Vec::new(),
            answered: 0,
            stuck_fired: false,
            last: None,
            redelivered: false,
        }
    }

    /// The participants answer the commands emitted since the last call.
    fn answer(&mut self) {
        use Scenario::*;
        let new: Vec<Payload> = self.run.emitted[self.answered..].to_vec();
        self.answered = self.run.emitted.len();
        for p in new {
            let mut replies: Vec<Payload> = match (&p, self.scenario) {
                (Payload::PaymentEscrowHoldRequested(_), HoldTimeout) => vec![],
                (Payload::PaymentEscrowHoldRequested(_), PaymentFailure) => vec![created(), failed()],
                (Payload::PaymentEscrowHoldRequested(_), DisputeRefund) => {
                    vec![created(), held(), opened(), resolved(DisputeResolution::RefundRequester, None)]
                }
                (Payload::PaymentEscrowHoldRequested(_), DisputeRelease) => {
                    vec![created(), held(), opened(), resolved(DisputeResolution::ReleaseToAgent, None)]
                }
                (Payload::PaymentEscrowHoldRequested(_), DisputeSplit) => {
                    vec![created(), held(), opened(), resolved(DisputeResolution::Split, Some((5_000, 5_000)))]
                }
                (Payload::PaymentEscrowHoldRequested(_), _) => vec![created(), held()],
                (Payload::PaymentEscrowReleaseRequested(r), _) => {
                    vec![released(r.runner_payout_cents.get(), r.platform_fee_cents.get())]
                }
                (Payload::PaymentEscrowRefundRequested(r), _) => vec![refunded(r.amount_cents.get())],
                (Payload::BookingCancelRequested(_), _) => {
                    self.booking.insert(0, cancelled());
                    vec![]
                }
                _ => vec![],
            };
            replies.reverse();
            // The payment topic is in order; new replies queue behind the old.
            replies.extend(std::mem::take(&mut self.payment));
            self.payment = replies;
        }
    }

    /// The timers the scenario lets fire (wall-clock timers can come due
    /// between any two inputs).
    fn may_fire(&self, name: &str) -> bool {
        match name {
            HOLD_TIMEOUT => self.scenario == Scenario::HoldTimeout,
            AUTO_CONFIRM => self.scenario == Scenario::AutoConfirm,
            SETTLE_STUCK => !self.stuck_fired,
            _ => false,
        }
    }
}

impl sagastream_runtime::testing::World for World {
    fn check(&self, path: &[String]) {
        check_outcome(self, path);
    }

    fn choices(&self) -> Vec<usize> {
        let mut c = Vec::new();
        if !self.booking.is_empty() {
            c.push(0);
        }
        if !self.payment.is_empty() {
            c.push(1);
        }
        for (i, name) in [HOLD_TIMEOUT, AUTO_CONFIRM, SETTLE_STUCK].iter().enumerate() {
            if self.run.timers.contains_key(*name) && self.may_fire(name) {
                c.push(2 + i);
            }
        }
        if self.last.is_some() && !self.redelivered {
            c.push(5);
        }
        c
    }

    fn step(&mut self, choice: usize) -> String {
        let result = match choice {
            0 | 1 => {
                let p = if choice == 0 { self.booking.pop() } else { self.payment.pop() }.unwrap();
                self.last = Some(p.clone());
                (p.event_type().to_string(), self.run.feed(p))
            }
            5 => {
                self.redelivered = true;
                let p = self.last.clone().unwrap();
                (format!("{} again", p.event_type()), self.run.feed(p))
            }
            n => {
                let name = [HOLD_TIMEOUT, AUTO_CONFIRM, SETTLE_STUCK][n - 2];
                self.stuck_fired |= name == SETTLE_STUCK;
                (format!("timer {name}"), self.run.fire(name))
            }
        };
        if let (name, Err(r)) = &result {
            panic!("{:?}: {name} rejected: {r}", self.scenario);
        }
        self.answer();
        result.0
    }
}

fn check_outcome(world: &World, path: &[String]) {
    let run = &world.run;
    let s = run.s();
    let terminal: Vec<&Payload> = run
        .emitted
        .iter()
        .filter(|p| {
            matches!(
                p,
                Payload::EscrowSagaCompleted(_) | Payload::EscrowSagaCancelled(_) | Payload::EscrowSagaCompensated(_)
            )
        })
        .collect();
    assert_eq!(terminal.len(), 1, "{:?} {path:?}: one terminal fact, got {terminal:?}", world.scenario);
    let got = match terminal[0] {
        Payload::EscrowSagaCompleted(x) => Outcome::Completed {
            payout: x.runner_payout_cents.get(),
            fee: x.platform_fee_cents.get(),
            refunded: x.refunded_cents.get(),
        },
        Payload::EscrowSagaCancelled(x) => Outcome::Cancelled { refunded: x.refunded_cents.get() },
        Payload::EscrowSagaCompensated(x) => Outcome::Compensated { refunded: x.refunded_cents.get() },
        _ => unreachable!(),
    };
    assert_eq!(got, world.scenario.expected(), "{:?} {path:?}", world.scenario);
    // Money is conserved and every command was sent at most once.
    assert!(s.done, "{:?} {path:?}", world.scenario);
    assert_eq!(s.ledger.released + s.ledger.refunded, s.ledger.held, "{:?} {path:?}", world.scenario);
    for t in [
        T::PaymentEscrowHoldRequested,
        T::PaymentEscrowReleaseRequested,
        T::PaymentEscrowRefundRequested,
        T::BookingCancelRequested,
    ] {
        assert!(run.count(t) <= 1, "{:?} {path:?}: {t} sent {} times", world.scenario, run.count(t));
    }
    assert_eq!(run.count(T::BookingCompleted), usize::from(s.ledger.released > 0));
    assert_eq!(run.count(T::EscrowSagaStarted), 1);
    assert_eq!(run.timers.keys().collect::<Vec<_>>(), vec![PURGE], "{:?} {path:?}", world.scenario);
    for p in &run.emitted {
        if let Payload::EscrowSagaStateChanged(x) = p {
            assert_eq!(x.owner_id.as_deref(), Some("own-1"), "{:?} {path:?}: owner on every fact", world.scenario);
        }
    }
}

#[test]
fn every_interleaving_of_every_scenario_ends_in_its_outcome() {
    let mut total = 0;
    for scenario in Scenario::ALL {
        let paths = sagastream_runtime::testing::explore(World::new(scenario));
        assert!(paths > 1 || scenario == Scenario::CancelBeforeHold, "{scenario:?}: {paths} interleavings");
        total += paths;
    }
    assert!(total > 2_000, "{total} interleavings explored");
}

// --- the contract: the reason codes the commands carry -------------------

/// The backticked values of a `reason` field as docs/events.md lists them
/// for `event`, and as its `.avsc` documents them.
fn documented_reasons(event: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let ticked = |text: &str| -> BTreeSet<String> { text.split('`').skip(1).step_by(2).map(str::to_owned).collect() };
    let events = include_str!("../../../docs/events.md");
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
