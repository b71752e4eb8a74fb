//! The escrow saga's transitions. Every arm names its row of the transition
//! table in docs/escrow-saga.md; the unit tests walk the same rows.
//!
//! A transition works on a copy of the state. Only when it finished and the
//! invariants hold on the result does the copy become the new state, so a
//! rejected input leaves the saga exactly as it was.

use chrono::{DateTime, TimeDelta, Utc};
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
use sagastream_runtime::{Context, Emit, Outcome, Processor, Rejection, Spec, Step, Timer, TimerCommand};

use crate::money::{self, Bps, MoneyError};
use crate::state::{Booking, ConfirmedBy, Escrow, Saga, Unwind};

pub const HOLD_TIMEOUT: &str = "hold_timeout";
pub const AUTO_CONFIRM: &str = "auto_confirm";
pub const SETTLE_STUCK: &str = "settle_stuck";
pub const SETTLE_RETRY: &str = "settle_retry";
pub const PURGE: &str = "purge";

/// The stuck alarm backs off by doubling, up to this many doublings.
const MAX_ALARM_DOUBLINGS: u32 = 6;

/// DLQ classes (the `__streams.errors.exception` header and a metric label).
pub mod class {
    pub const INVALID_TRANSITION: &str = "invalid_transition";
    pub const INVARIANT_VIOLATED: &str = "invariant_violated";
    pub const CURRENCY_MISMATCH: &str = "currency_mismatch";
    pub const AMOUNT_MISMATCH: &str = "amount_mismatch";
    pub const CONFLICTING_FACT: &str = "conflicting_fact";
    pub const INVALID_RATIOS: &str = "invalid_ratios";
    pub const UNKNOWN_TIMER: &str = "unknown_timer";
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
        let cause = format!("timer:{}", timer.name);
        let mut t = Transition::new(self, state.map(|s| &**s), ctx, &cause);
        if state.is_none() {
            return Err(Rejection::new(class::UNKNOWN_TIMER, format!("timer {} without saga state", timer.name)));
        }
        match timer.name.as_str() {
            HOLD_TIMEOUT => t.hold_timed_out(),
            AUTO_CONFIRM => t.auto_confirm(),
            SETTLE_STUCK => t.settle_stuck(),
            SETTLE_RETRY => t.retry_settlement(),
            // Row 25.
            PURGE if t.s.done => return Ok(Step::delete()),
            PURGE => {}
            other => {
                return Err(Rejection::new(class::UNKNOWN_TIMER, format!("timer {other:?} is not an escrow timer")))
            }
        }
        t.finish()
    }
}

/// One transition in progress: a working copy of the state and what it emits.
struct Transition<'a> {
    saga: &'a EscrowSaga,
    before: Option<&'a Saga>,
    s: Saga,
    ctx: &'a Context<'a>,
    cause: &'a str,
    emits: Vec<Emit>,
    timers: Vec<TimerCommand>,
}

fn reject(class: &'static str, message: impl Into<String>) -> Rejection {
    Rejection::new(class, message)
}

fn invalid(s: &Saga, what: &str) -> Rejection {
    reject(class::INVALID_TRANSITION, format!("{what} is not allowed in {}", s.phase()))
}

fn money_error(e: MoneyError) -> Rejection {
    match e {
        MoneyError::CurrencyMismatch { .. } => reject(class::CURRENCY_MISMATCH, e.to_string()),
        MoneyError::HeldTwice(..) => reject(class::AMOUNT_MISMATCH, e.to_string()),
        MoneyError::RatiosDoNotAddUp { .. } | MoneyError::BpsOutOfRange(_) => {
            reject(class::INVALID_RATIOS, e.to_string())
        }
        MoneyError::Overdrawn { .. } | MoneyError::NothingHeld(_) => reject(class::INVARIANT_VIOLATED, e.to_string()),
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
            Err(reject(class::CONFLICTING_FACT, format!("{what} {value:?} differs from the saga's {known:?}")))
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
        Transition {
            saga,
            before,
            s: before.cloned().unwrap_or_default(),
            ctx,
            cause,
            emits: Vec::new(),
            timers: Vec::new(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.ctx.now
    }

    fn key(&self) -> String {
        self.ctx.key.to_owned()
    }

    fn emit(&mut self, payload: impl Into<Payload>) {
        self.emits.push(Emit::new(payload));
    }

    fn set_timer(&mut self, name: &str, after: TimeDelta) {
        let due = self.now() + after;
        self.timers.push(TimerCommand::Set { name: name.into(), due });
    }

    fn cancel_timer(&mut self, name: &str) {
        self.timers.push(TimerCommand::Cancel { name: name.into() });
    }

    fn currency(&self) -> Currency {
        let code = self.s.ledger.currency.clone().unwrap_or_default();
        Currency::new(code).unwrap_or_else(|_| Currency::new("XXX").expect("XXX is ISO 4217's 'no currency'"))
    }

    // --- booking.events ---------------------------------------------------

    fn requested(&mut self, e: &BookingRequested) -> Result<(), Rejection> {
        if let Some(price) = self.s.price_cents {
            // A second booking.requested (new id): harmless when it agrees.
            if price != e.estimated_price_cents.get() {
                return Err(reject(
                    class::CONFLICTING_FACT,
                    format!("booking.requested for {} cents, the saga has {price}", e.estimated_price_cents),
                ));
            }
            return self.s.ledger.check_currency(&e.currency).map_err(money_error);
        }
        if !matches!(self.s.escrow, Escrow::None | Escrow::Created) {
            return Err(invalid(&self.s, "booking.requested"));
        }
        self.s.ledger.check_currency(&e.currency).map_err(money_error)?;
        remember(&mut self.s.booking_number, &e.booking_number, "booking_number")?;
        remember(&mut self.s.owner_id, &e.owner_id, "owner_id")?;
        self.s.price_cents = Some(e.estimated_price_cents.get());
        self.emit(EscrowSagaStarted {
            booking_id: self.key(),
            booking_number: e.booking_number.clone(),
            owner_id: e.owner_id.clone(),
            amount_cents: e.estimated_price_cents,
            currency: e.currency.clone(),
            occurred_at: self.now(),
        });
        match self.s.booking {
            // Row 1.
            Booking::Unknown => self.s.booking = Booking::Requested,
            // Row 4: the price arrives after the acceptance; a cancelled
            // booking gets no hold.
            Booking::Cancelled => {}
            _ => self.await_hold(),
        }
        Ok(())
    }

    /// Rows 2, 3, 10-13: a step forward on the booking's happy path. A step
    /// the saga is already past is a reordered or repeated fact: a no-op.
    fn progress(&mut self, to: Booking, number: &str, owner: &str, runner: Option<&str>) -> Result<(), Rejection> {
        remember(&mut self.s.booking_number, number, "booking_number")?;
        remember(&mut self.s.owner_id, owner, "owner_id")?;
        if let Some(runner) = runner {
            remember(&mut self.s.runner_id, runner, "runner_id")?;
        }
        let (Some(from), Some(rank)) = (self.s.booking.rank(), to.rank()) else {
            // Cancelled wins over late progress facts (row 16's aftermath).
            return Ok(());
        };
        if rank <= from {
            return Ok(());
        }
        self.s.booking = to;
        // Row 2 / 3: the hold is asked for once accepted and the price is
        // known (row 5: or awaited, when the escrow was created unasked).
        if matches!(self.s.escrow, Escrow::None | Escrow::Created)
            && self.s.price_cents.is_some()
            && from < Booking::Accepted.rank().unwrap_or_default()
        {
            self.await_hold();
        }
        match to {
            Booking::InDelivery => {
                self.s.in_delivery_since = Some(self.now());
                if self.s.escrow == Escrow::Held || self.s.escrow.awaiting_hold() {
                    self.set_timer(AUTO_CONFIRM, self.saga.config.auto_confirm_after);
                }
            }
            Booking::Delivered => {
                self.cancel_timer(AUTO_CONFIRM);
                self.confirm(ConfirmedBy::Owner);
            }
            _ => {}
        }
        Ok(())
    }

    /// Rows 11-14: the delivery is confirmed; release now if the money is held.
    fn confirm(&mut self, by: ConfirmedBy) {
        self.s.booking = Booking::Delivered;
        if self.s.confirmed_by.is_none() {
            self.s.confirmed_by = Some(by);
        }
        if self.s.escrow == Escrow::Held {
            self.request_release(self.s.ledger.held, self.release_reason());
            self.s.escrow = Escrow::ReleaseRequested;
        }
    }

    fn cancelled(&mut self, e: &BookingCancelled) -> Result<(), Rejection> {
        match (self.s.booking, self.s.escrow) {
            (Booking::Cancelled, _) => return Ok(()),
            // The money already went to the runner, or is on its way.
            (_, Escrow::ReleaseRequested | Escrow::Released | Escrow::SettlementRequested) => {
                return Err(invalid(&self.s, "booking.cancelled"))
            }
            // Row 16: nothing held; the saga ends.
            (_, Escrow::None | Escrow::Failed) => {}
            // Row 17: the hold is in flight; refund it when it lands (row 7).
            (_, Escrow::HoldRequested | Escrow::Created) => {}
            // Row 18.
            (_, Escrow::Held) => {
                self.s.unwind = Some(Unwind::Cancelled);
                self.request_refund(self.s.ledger.held, reason::CANCELLED);
                self.s.escrow = Escrow::RefundRequested;
            }
            // A dispute is open or already sends the money back: its
            // resolution decides the money.
            (_, Escrow::Frozen | Escrow::RefundRequested | Escrow::Refunded) => {}
        }
        // A cancellation the saga asked for keeps its cause, also when it lands
        // before the saga's own record of asking (a re-run after a crash).
        let why = Unwind::from_cancel_reason(&e.reason).unwrap_or(Unwind::Cancelled);
        self.s.unwind.get_or_insert(why);
        self.s.booking = Booking::Cancelled;
        self.cancel_timer(AUTO_CONFIRM);
        Ok(())
    }

    // --- payment.events ---------------------------------------------------

    fn escrow_created(&mut self, e: &PaymentEscrowCreated) -> Result<(), Rejection> {
        match self.s.escrow {
            // Row 5: the payment service created the escrow before the saga
            // asked (the owner initiated the payment); once the booking is
            // accepted the saga waits for the hold instead of asking.
            Escrow::None if self.s.booking != Booking::Cancelled => {
                self.check_hold_amount(e.amount_cents, &e.currency)?;
                remember(&mut self.s.payment_id, &e.payment_id, "payment_id")?;
                self.s.escrow = Escrow::Created;
                let accepted = self.s.booking.rank() >= Booking::Accepted.rank();
                if accepted && self.s.price_cents.is_some() {
                    self.set_timer(HOLD_TIMEOUT, self.saga.config.hold_timeout);
                }
                Ok(())
            }
            // Row 5.
            Escrow::HoldRequested => {
                self.check_hold_amount(e.amount_cents, &e.currency)?;
                remember(&mut self.s.payment_id, &e.payment_id, "payment_id")?;
                self.s.escrow = Escrow::Created;
                Ok(())
            }
            // The hold timed out before the payment service answered: wait
            // for escrow_held (refund) or payment.failed.
            Escrow::Failed if self.s.ledger.held == 0 => remember(&mut self.s.payment_id, &e.payment_id, "payment_id"),
            Escrow::None => Err(invalid(&self.s, "payment.escrow_created")),
            // Already past it: a repeated fact.
            _ => remember(&mut self.s.payment_id, &e.payment_id, "payment_id"),
        }
    }

    fn check_hold_amount(&self, amount: Cents, currency: &Currency) -> Result<(), Rejection> {
        let mut ledger = self.s.ledger.clone();
        ledger.check_currency(currency).map_err(money_error)?;
        match self.s.price_cents {
            Some(price) if price != amount.get() => Err(reject(
                class::AMOUNT_MISMATCH,
                format!("escrow for {amount} cents, the booking's price is {price}"),
            )),
            _ => Ok(()),
        }
    }

    fn escrow_held(&mut self, e: &PaymentEscrowHeld) -> Result<(), Rejection> {
        match self.s.escrow {
            Escrow::HoldRequested | Escrow::Created | Escrow::Failed => {}
            Escrow::None => return Err(invalid(&self.s, "payment.escrow_held")),
            // A repeated fact: harmless when it agrees with the hold.
            _ => {
                return match self.s.ledger.held == e.amount_cents.get() {
                    true => remember(&mut self.s.payment_id, &e.payment_id, "payment_id"),
                    false => Err(reject(
                        class::AMOUNT_MISMATCH,
                        format!("escrow_held for {} cents, the saga holds {}", e.amount_cents, self.s.ledger.held),
                    )),
                }
            }
        }
        let failed = self.s.escrow == Escrow::Failed;
        let giving_up = failed || self.s.booking == Booking::Cancelled;
        // Money that is held must come back whatever its amount: only a hold
        // the saga still wants is checked against the price (row 28).
        let wrong_amount = match self.check_hold_amount(e.amount_cents, &e.currency) {
            Ok(()) => false,
            Err(r) if r.class == class::AMOUNT_MISMATCH => true,
            Err(r) => return Err(r),
        };
        remember(&mut self.s.payment_id, &e.payment_id, "payment_id")?;
        self.s.ledger.hold(e.amount_cents, &e.currency).map_err(money_error)?;
        self.cancel_timer(HOLD_TIMEOUT);
        self.s.escrow = Escrow::Held;
        if self.s.done {
            // The saga had ended with nothing held (cancelled, hold timed
            // out); the late hold reopens it until the refund is confirmed.
            self.s.done = false;
            self.cancel_timer(PURGE);
        }
        if giving_up {
            // Row 7 (and 9's aftermath): the booking is cancelled or being
            // cancelled; the money goes straight back.
            self.s.unwind.get_or_insert(Unwind::Cancelled);
            self.request_refund(self.s.ledger.held, reason::HOLD_AFTER_CANCEL);
            self.s.escrow = Escrow::RefundRequested;
        } else if wrong_amount {
            // Row 28: another amount than asked is held. Exactly that goes
            // back, and the booking cannot go on without its escrow.
            self.s.unwind = Some(Unwind::WrongAmount);
            self.request_refund(self.s.ledger.held, reason::WRONG_AMOUNT);
            self.s.escrow = Escrow::RefundRequested;
            self.ask_to_cancel(Unwind::PaymentFailed);
        } else if self.s.booking == Booking::Delivered {
            // Row 6 → 11: the delivery was confirmed before the hold landed.
            self.request_release(self.s.ledger.held, self.release_reason());
            self.s.escrow = Escrow::ReleaseRequested;
        }
        Ok(())
    }

    /// The payment service's own reason stays on its `payment.failed`; the
    /// cancel request carries the documented code.
    fn payment_failed(&mut self, _: &PaymentFailed) -> Result<(), Rejection> {
        match self.s.escrow {
            // Row 8.
            Escrow::HoldRequested | Escrow::Created => {
                self.cancel_timer(HOLD_TIMEOUT);
                self.fail_hold(Unwind::PaymentFailed);
                Ok(())
            }
            Escrow::Failed if self.s.ledger.held == 0 => Ok(()),
            // Rows 29 and 31: the payment service failed the release or
            // refund it was asked for. The money is still held: ask again
            // after a backoff, then call an operator; never drop it.
            Escrow::ReleaseRequested | Escrow::RefundRequested | Escrow::SettlementRequested => {
                self.s.settle_failures += 1;
                let n = self.s.settle_failures;
                if n <= self.saga.config.settle_retries {
                    let backoff = self.saga.config.settle_retry_after * 2i32.pow((n - 1).min(MAX_ALARM_DOUBLINGS));
                    self.set_timer(SETTLE_RETRY, backoff);
                } else {
                    self.cancel_timer(SETTLE_RETRY);
                    self.emit(EscrowSagaStuck {
                        booking_id: self.key(),
                        owner_id: self.s.owner_id.as_deref().map(str::to_owned),
                        runner_id: self.s.runner_id.as_deref().map(str::to_owned),
                        state: self.s.phase().to_string(),
                        waiting_for: format!(
                            "an operator: the payment service failed the {} {n} times",
                            self.pending_commands()
                        ),
                        since: self.s.waiting_since.unwrap_or(self.now()),
                        occurred_at: self.now(),
                    });
                }
                Ok(())
            }
            _ => Err(invalid(&self.s, "payment.failed")),
        }
    }

    /// What is awaited: `release`, `refund`, or `release and refund`.
    fn pending_commands(&self) -> &'static str {
        match (self.s.pending_release > 0, self.s.pending_refund > 0) {
            (true, true) => "release and refund",
            (true, false) => "release",
            _ => "refund",
        }
    }

    /// Row 30: the failed release or refund, asked for again with the same
    /// amounts and reason (a new command id: it is a new attempt).
    fn retry_settlement(&mut self) {
        if !self.s.escrow.awaiting_settlement() {
            return;
        }
        if self.s.pending_release > 0 {
            self.request_release(self.s.pending_release, self.release_reason());
        }
        if self.s.pending_refund > 0 {
            let reason = self.s.refund_reason.clone().unwrap_or_else(|| reason::CANCELLED.into());
            self.request_refund(self.s.pending_refund, &reason);
        }
    }

    /// Rows 8, 9: no money will be held; cancel the booking unless it already is.
    fn fail_hold(&mut self, why: Unwind) {
        self.s.escrow = Escrow::Failed;
        if self.s.booking != Booking::Cancelled {
            self.s.unwind = Some(why);
            self.ask_to_cancel(why);
        }
    }

    /// `booking.cancel_requested` with the documented code of `why`, unless
    /// the booking is cancelled already.
    fn ask_to_cancel(&mut self, why: Unwind) {
        if self.s.booking == Booking::Cancelled {
            return;
        }
        self.emit(BookingCancelRequested {
            booking_id: self.key(),
            booking_number: self.s.booking_number.as_deref().unwrap_or_default().to_owned(),
            reason: why.as_str().into(),
            occurred_at: self.now(),
        });
    }

    fn escrow_released(&mut self, e: &PaymentEscrowReleased) -> Result<(), Rejection> {
        let amount = e.runner_payout_cents.get() + e.platform_fee_cents.get();
        match self.s.escrow {
            // Row 15.
            Escrow::ReleaseRequested | Escrow::SettlementRequested if self.s.pending_release > 0 => {
                self.s.ledger.check_currency(&e.currency).map_err(money_error)?;
                if amount != self.s.pending_release || e.runner_payout_cents.get() != self.s.pending_payout {
                    return Err(reject(
                        class::AMOUNT_MISMATCH,
                        format!(
                            "escrow_released pays {} + fee {}, the saga asked for {} + fee {}",
                            e.runner_payout_cents,
                            e.platform_fee_cents,
                            self.s.pending_payout,
                            self.s.pending_release - self.s.pending_payout
                        ),
                    ));
                }
                self.s.ledger.released(amount).map_err(money_error)?;
                self.s.paid_out += self.s.pending_payout;
                self.s.pending_release = 0;
                self.s.pending_payout = 0;
                self.after_settlement_step(Escrow::Released);
                Ok(())
            }
            // A repeated confirmation (also of one half of a split).
            _ if self.s.pending_release == 0 && amount > 0 && self.s.ledger.released == amount => Ok(()),
            _ => Err(invalid(&self.s, "payment.escrow_released")),
        }
    }

    fn escrow_refunded(&mut self, e: &PaymentEscrowRefunded) -> Result<(), Rejection> {
        match self.s.escrow {
            // Row 19.
            Escrow::RefundRequested | Escrow::SettlementRequested if self.s.pending_refund > 0 => {
                self.s.ledger.check_currency(&e.currency).map_err(money_error)?;
                if e.amount_cents.get() != self.s.pending_refund {
                    return Err(reject(
                        class::AMOUNT_MISMATCH,
                        format!("escrow_refunded for {}, the saga asked for {}", e.amount_cents, self.s.pending_refund),
                    ));
                }
                self.s.ledger.refunded(e.amount_cents.get()).map_err(money_error)?;
                self.s.pending_refund = 0;
                self.after_settlement_step(Escrow::Refunded);
                Ok(())
            }
            _ if self.s.pending_refund == 0
                && e.amount_cents.get() > 0
                && self.s.ledger.refunded == e.amount_cents.get() =>
            {
                Ok(())
            }
            _ => Err(invalid(&self.s, "payment.escrow_refunded")),
        }
    }

    /// A release or refund was confirmed: either the other half of a split
    /// is still awaited, or the saga is settled.
    fn after_settlement_step(&mut self, done: Escrow) {
        if self.s.pending_release > 0 || self.s.pending_refund > 0 {
            return;
        }
        self.s.escrow = if self.s.ledger.released > 0 { Escrow::Released } else { done };
        self.cancel_timer(SETTLE_STUCK);
        self.s.waiting_since = None;
        self.s.alarms = 0;
    }

    fn dispute_opened(&mut self, e: &DisputeOpened) -> Result<(), Rejection> {
        match self.s.escrow {
            // Row 20.
            Escrow::Held => {
                self.s.dispute_id = Some(e.dispute_id.as_str().into());
                self.s.escrow = Escrow::Frozen;
                self.cancel_timer(AUTO_CONFIRM);
                Ok(())
            }
            Escrow::Frozen if self.s.dispute_id.as_deref() == Some(&e.dispute_id) => Ok(()),
            _ => Err(invalid(&self.s, "dispute.opened")),
        }
    }

    fn dispute_resolved(&mut self, e: &DisputeResolved) -> Result<(), Rejection> {
        if self.s.escrow != Escrow::Frozen {
            // A repeated resolution of the dispute already acted on is a no-op.
            let acted_on = self.s.confirmed_by == Some(ConfirmedBy::Dispute) || self.s.unwind == Some(Unwind::Dispute);
            return match acted_on && self.s.dispute_id.as_deref() == Some(&e.dispute_id) {
                true => Ok(()),
                false => Err(invalid(&self.s, "dispute.resolved")),
            };
        }
        if self.s.dispute_id.as_deref() != Some(&e.dispute_id) {
            return Err(reject(
                class::CONFLICTING_FACT,
                format!("dispute {} resolved, the open one is {:?}", e.dispute_id, self.s.dispute_id),
            ));
        }
        let held = self.s.ledger.held;
        let (refund, release) = match e.resolution {
            // Row 21.
            DisputeResolution::RefundRequester => (held, 0),
            // Row 22.
            DisputeResolution::ReleaseToAgent => (0, held),
            // Row 23.
            DisputeResolution::Split => {
                let (Some(r), Some(a)) = (e.ratio_requester_bps, e.ratio_agent_bps) else {
                    return Err(reject(class::INVALID_RATIOS, "a split resolution needs both ratios"));
                };
                let requester = Bps::new(r).map_err(money_error)?;
                let agent = Bps::new(a).map_err(money_error)?;
                let split = money::split(held, requester, agent, self.saga.config.fee).map_err(money_error)?;
                (split.refund, split.release.amount)
            }
        };
        self.cancel_timer(AUTO_CONFIRM);
        if release > 0 {
            self.s.confirmed_by = Some(ConfirmedBy::Dispute);
            self.request_release(release, reason::DISPUTE);
        }
        if refund > 0 {
            self.s.unwind = Some(Unwind::Dispute);
            self.request_refund(refund, reason::DISPUTE);
        }
        self.s.escrow = match (release > 0, refund > 0) {
            (true, true) => Escrow::SettlementRequested,
            (true, false) => Escrow::ReleaseRequested,
            _ => Escrow::RefundRequested,
        };
        Ok(())
    }

    // --- timers -----------------------------------------------------------

    /// Row 9.
    fn hold_timed_out(&mut self) {
        if self.s.escrow.awaiting_hold() {
            self.fail_hold(Unwind::HoldTimeout);
        }
    }

    /// Row 14: Go4u's `confirmed_by: system`.
    fn auto_confirm(&mut self) {
        if self.s.booking != Booking::InDelivery
            || !matches!(self.s.escrow, Escrow::Held) && !self.s.escrow.awaiting_hold()
        {
            return;
        }
        self.emit(EscrowSagaAutoConfirmed {
            booking_id: self.key(),
            owner_id: self.s.owner_id.as_deref().unwrap_or_default().to_owned(),
            runner_id: self.s.runner_id.as_deref().unwrap_or_default().to_owned(),
            in_delivery_since: self.s.in_delivery_since.unwrap_or(self.now()),
            occurred_at: self.now(),
        });
        self.confirm(ConfirmedBy::System);
    }

    /// Row 24: an alarm, never a resent money command (the payment service
    /// may still be working on the first).
    fn settle_stuck(&mut self) {
        if !self.s.escrow.awaiting_settlement() {
            return;
        }
        let waiting_for = match (self.s.pending_release > 0, self.s.pending_refund > 0) {
            (true, true) => "payment.escrow_released and payment.escrow_refunded",
            (true, false) => "payment.escrow_released",
            _ => "payment.escrow_refunded",
        };
        self.emit(EscrowSagaStuck {
            booking_id: self.key(),
            owner_id: self.s.owner_id.as_deref().map(str::to_owned),
            runner_id: self.s.runner_id.as_deref().map(str::to_owned),
            state: self.s.phase().to_string(),
            waiting_for: waiting_for.into(),
            since: self.s.waiting_since.unwrap_or(self.now()),
            occurred_at: self.now(),
        });
        self.s.alarms += 1;
        let backoff = self.saga.config.stuck_after * 2i32.pow(self.s.alarms.min(MAX_ALARM_DOUBLINGS));
        self.set_timer(SETTLE_STUCK, backoff);
    }

    // --- commands ---------------------------------------------------------

    /// Rows 2, 4, 5: ask for the hold, or, when the payment service already
    /// created the escrow on its own, wait for it with the same timeout.
    fn await_hold(&mut self) {
        match self.s.escrow {
            Escrow::Created => self.set_timer(HOLD_TIMEOUT, self.saga.config.hold_timeout),
            _ => self.request_hold(),
        }
    }

    fn request_hold(&mut self) {
        self.s.escrow = Escrow::HoldRequested;
        self.emit(PaymentEscrowHoldRequested {
            booking_id: self.key(),
            booking_number: self.s.booking_number.as_deref().unwrap_or_default().to_owned(),
            owner_id: self.s.owner_id.as_deref().unwrap_or_default().to_owned(),
            runner_id: self.s.runner_id.as_deref().unwrap_or_default().to_owned(),
            amount_cents: cents(self.s.price_cents.unwrap_or_default()),
            currency: self.currency(),
            occurred_at: self.now(),
        });
        self.set_timer(HOLD_TIMEOUT, self.saga.config.hold_timeout);
    }

    /// Why the money goes to the runner, as docs/events.md spells it.
    fn release_reason(&self) -> &'static str {
        match self.s.confirmed_by {
            Some(ConfirmedBy::System) => reason::AUTO_CONFIRMED,
            Some(ConfirmedBy::Dispute) => reason::DISPUTE,
            Some(ConfirmedBy::Owner) | None => reason::DELIVERED,
        }
    }

    fn request_release(&mut self, amount: i64, reason: &str) {
        let r = money::release(amount, self.saga.config.fee);
        self.s.pending_release = r.amount;
        self.s.pending_payout = r.runner_payout;
        self.emit(PaymentEscrowReleaseRequested {
            booking_id: self.key(),
            payment_id: self.s.payment_id.as_deref().unwrap_or_default().to_owned(),
            runner_id: self.s.runner_id.as_deref().unwrap_or_default().to_owned(),
            amount_cents: cents(r.amount),
            runner_payout_cents: cents(r.runner_payout),
            platform_fee_cents: cents(r.platform_fee),
            currency: self.currency(),
            reason: reason.into(),
            occurred_at: self.now(),
        });
        self.await_settlement();
    }

    fn request_refund(&mut self, amount: i64, reason: &str) {
        self.s.pending_refund = amount;
        self.s.refund_reason = Some(reason.into());
        self.emit(PaymentEscrowRefundRequested {
            booking_id: self.key(),
            payment_id: self.s.payment_id.as_deref().unwrap_or_default().to_owned(),
            owner_id: self.s.owner_id.as_deref().unwrap_or_default().to_owned(),
            amount_cents: cents(amount),
            currency: self.currency(),
            reason: reason.into(),
            occurred_at: self.now(),
        });
        self.await_settlement();
    }

    fn await_settlement(&mut self) {
        if self.s.waiting_since.is_none() {
            self.s.waiting_since = Some(self.now());
            self.s.alarms = 0;
            self.set_timer(SETTLE_STUCK, self.saga.config.stuck_after);
        }
    }

    // --- the end of every transition ---------------------------------------

    fn finish(mut self) -> Outcome<Box<Saga>> {
        check_invariants(&self.s).map_err(|reason| {
            reject(class::INVARIANT_VIOLATED, format!("{reason} (state would be {})", self.s.phase()))
        })?;
        let old = self.before.map(Saga::phase);
        if old != Some(self.s.phase()) {
            self.emit(EscrowSagaStateChanged {
                booking_id: self.key(),
                owner_id: self.s.owner_id.as_deref().map(str::to_owned),
                runner_id: self.s.runner_id.as_deref().map(str::to_owned),
                from: old.map_or_else(|| "none".to_owned(), |p| p.to_string()),
                to: self.s.phase().to_string(),
                cause_event_id: self.cause.to_owned(),
                occurred_at: self.now(),
            });
        }
        if !self.s.done && self.s.is_terminal() {
            self.end();
        }
        if self.before == Some(&self.s) && self.emits.is_empty() && self.timers.is_empty() {
            return Ok(Step::keep());
        }
        Ok(Step {
            state: sagastream_runtime::StateChange::Set(Box::new(self.s)),
            emits: self.emits,
            timers: self.timers,
        })
    }

    /// The terminal fact, then only the purge timer is left.
    fn end(&mut self) {
        self.s.done = true;
        for t in [HOLD_TIMEOUT, AUTO_CONFIRM, SETTLE_STUCK, SETTLE_RETRY] {
            self.cancel_timer(t);
        }
        self.set_timer(PURGE, self.saga.config.purge_after);
        let l = &self.s.ledger;
        let (owner, runner) =
            (self.s.owner_id.as_deref().map(str::to_owned), self.s.runner_id.as_deref().map(str::to_owned));
        let refunded = cents(l.refunded);
        if l.released > 0 || self.s.unwind == Some(Unwind::Dispute) {
            let fee = l.released - self.s.paid_out;
            if l.released > 0 {
                self.emit(BookingCompleted {
                    booking_id: self.key(),
                    booking_number: self.s.booking_number.as_deref().unwrap_or_default().to_owned(),
                    runner_id: runner.clone().unwrap_or_default(),
                    owner_id: owner.clone().unwrap_or_default(),
                    final_price_cents: cents(l.released),
                    currency: self.currency(),
                    occurred_at: self.now(),
                });
            }
            self.emit(EscrowSagaCompleted {
                booking_id: self.key(),
                owner_id: owner.unwrap_or_default(),
                runner_id: runner.unwrap_or_default(),
                runner_payout_cents: cents(self.s.paid_out),
                platform_fee_cents: cents(fee),
                refunded_cents: refunded,
                currency: self.currency(),
                occurred_at: self.now(),
            });
            return;
        }
        let currency = self.s.ledger.currency.as_ref().map(|_| self.currency());
        match self.s.unwind {
            Some(why @ (Unwind::PaymentFailed | Unwind::HoldTimeout | Unwind::WrongAmount)) => {
                self.emit(EscrowSagaCompensated {
                    booking_id: self.key(),
                    owner_id: owner,
                    runner_id: runner,
                    refunded_cents: refunded,
                    currency,
                    reason: why.as_str().into(),
                    occurred_at: self.now(),
                })
            }
            _ => self.emit(EscrowSagaCancelled {
                booking_id: self.key(),
                owner_id: owner,
                runner_id: runner,
                refunded_cents: refunded,
                currency,
                reason: "booking_cancelled".into(),
                occurred_at: self.now(),
            }),
        }
    }
}

/// Invariants that hold after every transition (issue 4, item 5); the
/// reason names the one that broke.
pub fn check_invariants(s: &Saga) -> Result<(), String> {
    let l = &s.ledger;
    if l.released < 0 || l.refunded < 0 || s.pending_release < 0 || s.pending_refund < 0 {
        return Err("a negative amount".into());
    }
    let committed = l.released + l.refunded + s.pending_release + s.pending_refund;
    if committed > l.held {
        return Err(format!(
            "released {} + refunded {} + requested {} would exceed held {}",
            l.released,
            l.refunded,
            s.pending_release + s.pending_refund,
            l.held
        ));
    }
    if l.held > 0 && (l.released + s.pending_release == l.held) && (l.refunded + s.pending_refund == l.held) {
        return Err("both a full release and a full refund".into());
    }
    if (l.released > 0 || s.pending_release > 0) && s.confirmed_by.is_none() {
        return Err("a release without a delivery confirmation, auto-confirm or dispute resolution".into());
    }
    if s.done && l.held > 0 && committed != l.held {
        return Err(format!(
            "the saga ended with {} of {} held cents neither released nor refunded",
            l.held - committed,
            l.held
        ));
    }
    if s.paid_out > l.released {
        return Err(format!("payout {} exceeds the released {}", s.paid_out, l.released));
    }
    Ok(())
}
