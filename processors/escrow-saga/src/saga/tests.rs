//! The transition table row by row, repeated facts, invariant violations and
//! every interleaving of each scenario (exhaustive search over the order in
//! which the booking topic, the payment topic and the timers deliver).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sagastream_contract::payloads::booking::*;
use sagastream_contract::payloads::payment::*;
use sagastream_contract::{Cents, Currency, Event, EventType, Payload};
use sagastream_runtime::{Context, Processor, Rejection, RejectionClass, SagaState, StateChange, Timer};

use crate::money::Bps;
use crate::saga::{Class, AUTO_CONFIRM, HOLD_TIMEOUT, PURGE, SETTLE_RETRY, SETTLE_STUCK};
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

fn parties(runner: &str) -> BookingParties {
    BookingParties {
        booking_id: KEY.into(),
        booking_number: "KLT-1".into(),
        owner_id: "own-1".into(),
        runner_id: runner.into(),
    }
}

fn accepted_by(runner: &str) -> Payload {
    parties(runner).accepted(t0()).into()
}

fn picked_up() -> Payload {
    parties("run-1").picked_up(t0()).into()
}

fn in_delivery() -> Payload {
    parties("run-1").in_delivery(t0(), t0()).into()
}

fn confirmed() -> Payload {
    parties("run-1").confirmed(t0(), t0()).into()
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
                s.check_invariants().expect("a step never yields a state breaking the invariants");
                self.state = Some(s)
            }
            StateChange::Delete => {
                self.state = None;
                self.timers.clear();
                self.deleted = true;
            }
        }
        sagastream_runtime::testing::apply_timers(&mut self.timers, step.timers);
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

mod facts;
mod interleavings;
mod rows;
