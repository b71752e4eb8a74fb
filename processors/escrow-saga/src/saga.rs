//! The escrow saga's transitions. Every arm names its row of the transition
//! table in docs/escrow-saga.md; the unit tests walk the same rows.
//!
//! A transition works on the saga kit's copy of the state
//! ([`sagastream_runtime::Working`]): a rejected input leaves the saga
//! exactly as it was.

use chrono::TimeDelta;
use sagastream_contract::payloads::booking::{BookingCancelled, BookingCompleted, BookingRequested};
use sagastream_contract::payloads::commands::{
    BookingCancelRequested, PaymentEscrowHoldRequested, PaymentEscrowRefundRequested, PaymentEscrowReleaseRequested,
};
use sagastream_contract::payloads::escrow_saga::{
    EscrowSagaAutoConfirmed, EscrowSagaCancelled, EscrowSagaCompensated, EscrowSagaCompleted, EscrowSagaStarted,
    EscrowSagaStateChanged, EscrowSagaStuck,
};
use sagastream_contract::payloads::payment::{
    DisputeOpened, DisputeResolution, DisputeResolved, PaymentEscrowCreated, PaymentEscrowHeld, PaymentEscrowRefunded,
    PaymentEscrowReleased, PaymentFailed,
};
use sagastream_contract::{Cents, Currency, Event, Payload};
use sagastream_runtime::saga::on_purge;
use sagastream_runtime::{Context, Outcome, Processor, Rejection, RejectionClass, Spec, Step, Timer, Working};

/// The purge after the end (row 25) is the kit's.
pub use sagastream_runtime::PURGE;

use crate::money::{self, Bps, MoneyError};
use crate::state::{Booking, ConfirmedBy, Escrow, Saga, Unwind};

// The transitions, by the input they answer; each file reads as its rows.
mod booking;
mod payment;
mod settle;

pub const HOLD_TIMEOUT: &str = "hold_timeout";
pub const AUTO_CONFIRM: &str = "auto_confirm";
pub const SETTLE_STUCK: &str = "settle_stuck";
pub const SETTLE_RETRY: &str = "settle_retry";

/// The stuck alarm backs off by doubling, up to this many doublings.
const MAX_ALARM_DOUBLINGS: u32 = 6;

sagastream_runtime::rejection_classes! {
    /// DLQ classes (the `__streams.errors.exception` header and a metric label).
    pub enum Class {
        InvalidTransition = "invalid_transition",
        InvariantViolated = "invariant_violated",
        CurrencyMismatch = "currency_mismatch",
        AmountMismatch = "amount_mismatch",
        ConflictingFact = "conflicting_fact",
        InvalidRatios = "invalid_ratios",
        UnknownTimer = "unknown_timer",
    }
}

/// The `reason` of the money commands, exactly as docs/events.md and the
/// `.avsc` docs list them (a test compares them), so a payment provider can
/// tell an owner's confirmation from the system's.
pub mod reason {
    /// Release: the owner confirmed the delivery.
    pub const DELIVERED: &str = "delivered";
    /// Release: the auto-confirm timer confirmed it.
    pub const AUTO_CONFIRMED: &str = "auto_confirmed";
    /// Release or refund: a dispute resolution decided the money.
    pub const DISPUTE: &str = "dispute";
    /// Refund: the booking was cancelled while the money was held.
    pub const CANCELLED: &str = "cancelled";
    /// Refund: a hold landed after the booking was cancelled or gave up on it.
    pub const HOLD_AFTER_CANCEL: &str = "hold_after_cancel";
    /// Refund: the payment service held another amount than the saga asked for.
    pub const WRONG_AMOUNT: &str = "wrong_amount";
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Platform fee on a release, in basis points of the released amount.
    pub fee: Bps,
    pub hold_timeout: TimeDelta,
    pub auto_confirm_after: TimeDelta,
    /// First stuck alarm after this long; later ones back off by doubling.
    pub stuck_after: TimeDelta,
    /// A finished saga's state is forgotten after this long.
    pub purge_after: TimeDelta,
    /// How often a release or refund the payment service failed is asked
    /// for again before an operator is called.
    pub settle_retries: u32,
    /// The first retry's delay; later ones back off by doubling.
    pub settle_retry_after: TimeDelta,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            fee: Bps::new(1_500).expect("15 % is a valid fee"),
            hold_timeout: TimeDelta::minutes(15),
            auto_confirm_after: TimeDelta::hours(24),
            stuck_after: TimeDelta::minutes(10),
            purge_after: TimeDelta::days(7),
            settle_retries: 3,
            settle_retry_after: TimeDelta::minutes(1),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct EscrowSaga {
    pub config: Config,
}

pub const NAME: &str = "escrow-saga";

impl Processor for EscrowSaga {
    // Boxed: the runtime keeps one state per key in a hash map, and a
    // pointer wastes far less than a 256-byte value in its empty slots.
    type State = Box<Saga>;

    fn spec(&self) -> Spec {
        Spec {
            name: NAME,
            version: env!("CARGO_PKG_VERSION"),
            inputs: vec!["booking.events", "payment.events"],
            outputs: vec!["payment.commands", "booking.commands", "escrow.saga.events", "booking.events"],
            changelog: Some("escrow.saga.changelog"),
            dlq: "escrow.saga.dlq",
            repartitions: Vec::new(),
        }
    }

    /// The escrow lifecycle, or `ended` once the terminal fact is out.
    fn state_label(&self, s: &Box<Saga>) -> Option<&'static str> {
        Some(if s.done { "ended" } else { s.escrow.as_str() })
    }

    fn process(&self, state: Option<&Box<Saga>>, event: &Event, ctx: &Context<'_>) -> Outcome<Box<Saga>> {
        let mut t = Transition::new(self, state.map(|s| &**s), ctx, &event.id);
        match &event.data {
            Payload::BookingRequested(e) => t.requested(e)?,
            Payload::BookingAccepted(e) => {
                t.progress(Booking::Accepted, &e.booking_number, &e.owner_id, Some(&e.runner_id))?
            }
            Payload::BookingPetPickedUp(e) => {
                t.progress(Booking::PickedUp, &e.booking_number, &e.owner_id, Some(&e.runner_id))?
            }
            Payload::BookingDeliveryInProgress(e) => {
                t.progress(Booking::InDelivery, &e.booking_number, &e.owner_id, Some(&e.runner_id))?
            }
            Payload::BookingDeliveryConfirmed(e) => {
                t.progress(Booking::Delivered, &e.booking_number, &e.owner_id, Some(&e.runner_id))?
            }
            Payload::BookingCancelled(e) => t.cancelled(e)?,
            Payload::PaymentEscrowCreated(e) => t.escrow_created(e)?,
            Payload::PaymentEscrowHeld(e) => t.escrow_held(e)?,
            Payload::PaymentFailed(e) => t.payment_failed(e)?,
            Payload::PaymentEscrowReleased(e) => t.escrow_released(e)?,
            Payload::PaymentEscrowRefunded(e) => t.escrow_refunded(e)?,
            Payload::DisputeOpened(e) => t.dispute_opened(e)?,
            Payload::DisputeResolved(e) => t.dispute_resolved(e)?,
            // Row 27: our own booking.completed read back from booking.events.
            Payload::BookingCompleted(_) => return Ok(Step::keep()),
            // A type the saga has no use for (added to an input topic later).
            _ => return Ok(Step::keep()),
        }
        t.finish()
    }

    fn on_timer(&self, state: Option<&Box<Saga>>, timer: &Timer, ctx: &Context<'_>) -> Outcome<Box<Saga>> {
        let Some(state) = state else {
            return Err(Class::UnknownTimer.reject(format!("timer {} without saga state", timer.name)));
        };
        let cause = format!("timer:{}", timer.name);
        let mut t = Transition::new(self, Some(state), ctx, &cause);
        match timer.name.as_str() {
            HOLD_TIMEOUT => t.hold_timed_out(),
            AUTO_CONFIRM => t.auto_confirm(),
            SETTLE_STUCK => t.settle_stuck(),
            SETTLE_RETRY => t.retry_settlement(),
            // Row 25.
            PURGE => return Ok(on_purge(&**state)),
            other => return Err(Class::UnknownTimer.reject(format!("timer {other:?} is not an escrow timer"))),
        }
        t.finish()
    }
}

/// One transition in progress: the kit's working copy, the saga's
/// configuration, and the input or timer that caused it.
struct Transition<'a> {
    saga: &'a EscrowSaga,
    w: Working<'a, Saga>,
    cause: &'a str,
}

sagastream_runtime::saga_transition!(Transition, Saga);

fn invalid(s: &Saga, what: &str) -> Rejection {
    Class::InvalidTransition.reject(format!("{what} is not allowed in {}", s.phase()))
}

fn money_error(e: MoneyError) -> Rejection {
    match e {
        MoneyError::CurrencyMismatch { .. } => Class::CurrencyMismatch.reject(e.to_string()),
        MoneyError::HeldTwice(..) => Class::AmountMismatch.reject(e.to_string()),
        MoneyError::RatiosDoNotAddUp { .. } | MoneyError::BpsOutOfRange(_) => {
            Class::InvalidRatios.reject(e.to_string())
        }
        MoneyError::Overdrawn { .. } | MoneyError::NothingHeld(_) => Class::InvariantViolated.reject(e.to_string()),
    }
}

fn cents(v: i64) -> Cents {
    // Every amount here is a difference of non-negative amounts the ledger
    // keeps ordered; a negative one is a bug the invariants report first.
    Cents::new(v.max(0)).expect("clamped to zero")
}

/// Fills a remembered id, or checks it agrees with the one already known.
fn remember(slot: &mut Option<Box<str>>, value: &str, what: &str) -> Result<(), Rejection> {
    match slot {
        Some(known) if &**known != value => {
            Err(Class::ConflictingFact.reject(format!("{what} {value:?} differs from the saga's {known:?}")))
        }
        Some(_) => Ok(()),
        None => {
            *slot = Some(value.into());
            Ok(())
        }
    }
}

impl<'a> Transition<'a> {
    fn new(saga: &'a EscrowSaga, before: Option<&'a Saga>, ctx: &'a Context<'a>, cause: &'a str) -> Transition<'a> {
        Transition { saga, w: Working::new(before, ctx), cause }
    }

    fn currency(&self) -> Currency {
        Currency::or_none(self.s.ledger.currency.as_deref())
    }
}

#[cfg(test)]
mod tests;
