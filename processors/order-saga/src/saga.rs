//! The order saga's transitions. Every arm names its row of the transition
//! table in docs/order-saga.md; the unit tests walk the same rows.
//!
//! A transition works on a copy of the state. Only when it finished and the
//! invariants hold on the result does the copy become the new state, so a
//! rejected input leaves the order exactly as it was.

use chrono::{DateTime, TimeDelta, Utc};
use sagastream_contract::payloads::commands::{
    InventoryConsumeRequested, InventoryReleaseRequested, InventoryReserveRequested, PaymentCaptureRequested,
    PaymentRefundRequested,
};
use sagastream_contract::payloads::inventory::{InventoryReleased, InventoryReservationFailed, InventoryReserved};
use sagastream_contract::payloads::order::{
    OrderCancelRequested, OrderCancelled, OrderCompleted, OrderCreated, OrderRefunded, OrderValidated, Reservation,
    ValidationResults,
};
use sagastream_contract::payloads::payment::{PaymentCaptureFailed, PaymentCaptured, PaymentRefunded};
use sagastream_contract::{Currency, DecimalAmount, Event, Payload};
use sagastream_runtime::{Context, Emit, Outcome, Processor, Rejection, Repartition, Spec, Step, Timer, TimerCommand};

use crate::money::{same_amount, Dec};
use crate::state::{check_invariants, Cancellation, Line, LineStatus, Order, Payment, Phase};

pub const NAME: &str = "order-saga";
pub const RESERVATION_EXPIRY: &str = "reservation_expiry";
pub const PURGE: &str = "purge";
/// The internal topic inventory events are re-keyed into.
pub const REPARTITION_TOPIC: &str = "order.saga.inventory.repartition";

/// DLQ classes (the `__streams.errors.exception` header and a metric label).
pub mod class {
    pub const INVALID_ORDER: &str = "invalid_order";
    pub const INVALID_TRANSITION: &str = "invalid_transition";
    pub const INVARIANT_VIOLATED: &str = "invariant_violated";
    pub const CONFLICTING_FACT: &str = "conflicting_fact";
    pub const AMOUNT_MISMATCH: &str = "amount_mismatch";
    pub const CURRENCY_MISMATCH: &str = "currency_mismatch";
    pub const UNKNOWN_RESERVATION: &str = "unknown_reservation";
    pub const UNKNOWN_TIMER: &str = "unknown_timer";
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where reservations are made.
    pub location_id: String,
    /// A reservation's life; the order is cancelled if not captured by then.
    pub reservation_ttl: TimeDelta,
    /// A closed order's state is forgotten after this long.
    pub purge_after: TimeDelta,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            location_id: "warehouse_main".into(),
            reservation_ttl: TimeDelta::minutes(15),
            purge_after: TimeDelta::days(7),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct OrderSaga {
    pub config: Config,
}

/// The repartition key of an inventory event: the order it belongs to. The
/// seed's `inventory.released` has no `order_id`; its correlation id names
/// the order. Stock-level events belong to no order.
pub fn order_of(event: &Event) -> Option<String> {
    match &event.data {
        Payload::InventoryReserved(e) => Some(e.order_id.clone()),
        Payload::InventoryReservationFailed(e) => Some(e.order_id.clone()),
        Payload::InventoryReleased(e) => e.order_id.clone().or_else(|| event.correlationid.clone()),
        _ => None,
    }
}

/// The reservation id of line `n` (from 1): deterministic, so a re-run
/// after a crash asks for the same reservations.
pub fn reservation_id(order_id: &str, n: usize) -> String {
    format!("res_{order_id}_{n}")
}

impl Processor for OrderSaga {
    // Boxed like the escrow saga's: the engine's hash map then holds a pointer.
    type State = Box<Order>;

    fn spec(&self) -> Spec {
        Spec {
            name: NAME,
            version: env!("CARGO_PKG_VERSION"),
            inputs: vec!["order.events", "payment.events", REPARTITION_TOPIC],
            outputs: vec!["inventory.commands", "payment.commands", "order.events"],
            changelog: Some("order.saga.changelog"),
            dlq: "order.saga.dlq",
            repartitions: vec![Repartition { from: "inventory.events", to: REPARTITION_TOPIC, key: order_of }],
        }
    }

    fn process(&self, state: Option<&Box<Order>>, event: &Event, ctx: &Context<'_>) -> Outcome<Box<Order>> {
        let mut t = Transition::new(self, state.map(|s| &**s), ctx);
        match &event.data {
            Payload::OrderCreated(e) => t.created(e)?,
            Payload::OrderCancelRequested(e) => t.cancel_requested(e)?,
            Payload::InventoryReserved(e) => t.reserved(e)?,
            Payload::InventoryReservationFailed(e) => t.reservation_failed(e)?,
            Payload::InventoryReleased(e) => t.released(e)?,
            Payload::PaymentCaptured(e) => t.captured(e)?,
            Payload::PaymentCaptureFailed(e) => t.capture_failed(e)?,
            Payload::PaymentRefunded(e) => t.refunded(e)?,
            // Escrow payments on payment.events, our own order facts read
            // back, and any type added to an input topic later.
            _ => return Ok(Step::keep()),
        }
        t.finish()
    }

    fn on_timer(&self, state: Option<&Box<Order>>, timer: &Timer, ctx: &Context<'_>) -> Outcome<Box<Order>> {
        let Some(state) = state else {
            return Err(Rejection::new(class::UNKNOWN_TIMER, format!("timer {} without order state", timer.name)));
        };
        let mut t = Transition::new(self, Some(state), ctx);
        match timer.name.as_str() {
            RESERVATION_EXPIRY => t.expired(),
            // Row 19.
            PURGE if t.o.phase.is_closed() => return Ok(Step::delete()),
            PURGE => {}
            other => {
                return Err(Rejection::new(class::UNKNOWN_TIMER, format!("timer {other:?} is not an order timer")))
            }
        }
        t.finish()
    }
}

fn reject(class: &'static str, message: impl Into<String>) -> Rejection {
    Rejection::new(class, message)
}

/// One transition in progress: a working copy of the state and what it emits.
struct Transition<'a> {
    saga: &'a OrderSaga,
    before: Option<&'a Order>,
    o: Order,
    ctx: &'a Context<'a>,
    emits: Vec<Emit>,
    timers: Vec<TimerCommand>,
}

impl<'a> Transition<'a> {
    fn new(saga: &'a OrderSaga, before: Option<&'a Order>, ctx: &'a Context<'a>) -> Transition<'a> {
        Transition { saga, before, o: before.cloned().unwrap_or_default(), ctx, emits: Vec::new(), timers: Vec::new() }
    }

    fn now(&self) -> DateTime<Utc> {
        self.ctx.now
    }

    fn order_id(&self) -> String {
        self.ctx.key.to_owned()
    }

    /// Every output carries the order id as correlation id, so the services'
    /// answers (and the repartition step) can name the order.
    fn emit(&mut self, payload: impl Into<Payload>) {
        self.emits.push(Emit::new(payload).with_correlation_id(self.ctx.key));
    }

    fn invalid(&self, what: &str) -> Rejection {
        match self.before {
            None => reject(class::INVALID_TRANSITION, format!("{what} for an order the saga does not know")),
            Some(_) => reject(class::INVALID_TRANSITION, format!("{what} is not allowed in {}", self.o.phase)),
        }
    }

    fn currency(&self) -> Currency {
        self.o.currency.clone().unwrap_or_else(|| Currency::new("XXX").expect("XXX is ISO 4217's 'no currency'"))
    }

    fn check_currency(&self, currency: &Currency) -> Result<(), Rejection> {
        match &self.o.currency {
            Some(c) if c != currency => Err(reject(class::CURRENCY_MISMATCH, format!("{currency} on an order in {c}"))),
            _ => Ok(()),
        }
    }

    /// Zero at the scale of the order total ("0.00").
    fn zero(&self) -> DecimalAmount {
        let scale = self.o.total.as_ref().and_then(|t| Dec::parse(t).ok()).map_or(2, Dec::scale);
        Dec::zero(scale).to_amount()
    }

    fn line(&mut self, reservation_id: &str, product_id: &str, quantity: u32) -> Result<&mut Line, Rejection> {
        if self.before.is_none() || self.o.phase == Phase::AwaitingOrder {
            return Err(self.invalid("an inventory answer"));
        }
        let phase = self.o.phase;
        let line = self.o.line_mut(reservation_id).ok_or_else(|| {
            reject(
                class::UNKNOWN_RESERVATION,
                format!("reservation {reservation_id} is not one of the order's ({phase})"),
            )
        })?;
        if &*line.product_id != product_id || line.quantity != quantity {
            return Err(reject(
                class::CONFLICTING_FACT,
                format!(
                    "reservation {reservation_id} is for {} × {}, the answer says {quantity} × {product_id}",
                    line.quantity, line.product_id
                ),
            ));
        }
        Ok(line)
    }

    // --- order.events -----------------------------------------------------

    fn created(&mut self, e: &OrderCreated) -> Result<(), Rejection> {
        if self.before.is_some() && self.o.phase != Phase::AwaitingOrder {
            // Row 20: the same order again (a new id) is harmless when it agrees.
            let same = self.o.total.as_ref().is_some_and(|t| same_amount(t, &e.total_amount))
                && self.o.currency.as_ref() == Some(&e.currency)
                && (self.o.lines.len() == e.items.len() || self.o.lines.is_empty());
            return match same {
                true => Ok(()),
                false => Err(reject(class::CONFLICTING_FACT, "a second order.created that differs from the first")),
            };
        }
        validate(e)?;
        self.o.customer_id = Some(e.customer_id.as_str().into());
        self.o.currency = Some(e.currency.clone());
        self.o.total = Some(e.total_amount.clone());
        if let Some(c) = self.o.cancellation.clone() {
            // Row 17: cancelled before it arrived; nothing is reserved.
            self.cancel(&c.reason, &c.by);
            return Ok(());
        }
        // Row 1.
        let expires_at = self.now() + self.saga.config.reservation_ttl;
        for (i, item) in e.items.iter().enumerate() {
            let line = Line {
                product_id: item.product_id.as_str().into(),
                quantity: item.quantity,
                unit_price: item.unit_price.clone(),
                total_price: item.total_price.clone(),
                reservation_id: reservation_id(&e.order_id, i + 1).into(),
                status: LineStatus::Requested,
            };
            self.emit(InventoryReserveRequested {
                reservation_id: line.reservation_id.to_string(),
                order_id: e.order_id.clone(),
                product_id: item.product_id.clone(),
                quantity: item.quantity,
                location_id: self.saga.config.location_id.clone(),
                expires_at,
                occurred_at: self.now(),
            });
            self.o.lines.push(line);
        }
        self.o.phase = Phase::Reserving;
        self.timers.push(TimerCommand::Set { name: RESERVATION_EXPIRY.into(), due: expires_at });
        Ok(())
    }

    fn cancel_requested(&mut self, e: &OrderCancelRequested) -> Result<(), Rejection> {
        if self.before.is_none() {
            // Row 13.
            self.o.phase = Phase::AwaitingOrder;
            self.o.cancellation =
                Some(Cancellation { reason: e.reason.as_str().into(), by: e.requested_by.as_str().into() });
            return Ok(());
        }
        match self.o.phase {
            // Row 7.
            Phase::Reserving | Phase::Capturing => {
                self.release_held("order_cancelled");
                self.cancel(&e.reason, &e.requested_by);
            }
            // Row 10.
            Phase::Completed => {
                let (payment_id, amount) =
                    self.o.payment.captured().map(|(p, a)| (p.into(), a.clone())).expect("invariant 2");
                self.o.cancellation =
                    Some(Cancellation { reason: e.reason.as_str().into(), by: e.requested_by.as_str().into() });
                self.request_refund(payment_id, amount.clone(), &e.reason);
                self.o.phase = Phase::Refunding;
                self.emit(OrderCancelled {
                    order_id: self.order_id(),
                    cancellation_reason: e.reason.clone(),
                    cancelled_by: e.requested_by.clone(),
                    cancelled_at: self.now(),
                    refund_required: true,
                    refund_amount: amount,
                });
            }
            // Row 18 (and a repeated request awaiting its order).
            Phase::AwaitingOrder | Phase::Cancelled | Phase::Refunding | Phase::Refunded => {}
        }
        Ok(())
    }

    // --- the inventory service (re-keyed) ---------------------------------------

    fn reserved(&mut self, e: &InventoryReserved) -> Result<(), Rejection> {
        let phase = self.o.phase;
        let line = self.line(&e.reservation_id, &e.product_id, e.quantity)?;
        match (phase, line.status) {
            // Row 3 / 4.
            (Phase::Reserving, LineStatus::Requested) => {
                line.status = LineStatus::Reserved;
                if self.o.lines.iter().all(|l| l.status == LineStatus::Reserved) {
                    self.validated();
                }
            }
            // Row 14: the order closed while this reservation was on its way.
            (p, LineStatus::Requested) if p.is_closed() => {
                line.status = LineStatus::Reserved;
                self.release_held("order_closed");
            }
            // Row 20: already known.
            (_, LineStatus::Reserved | LineStatus::ReleaseRequested | LineStatus::Released | LineStatus::Consumed) => {}
            (_, LineStatus::Failed) => {
                return Err(reject(
                    class::CONFLICTING_FACT,
                    format!("reservation {} was refused before", e.reservation_id),
                ))
            }
            _ => return Err(self.invalid("inventory.reserved")),
        }
        Ok(())
    }

    fn reservation_failed(&mut self, e: &InventoryReservationFailed) -> Result<(), Rejection> {
        let phase = self.o.phase;
        let line = self.line(&e.reservation_id, &e.product_id, e.quantity)?;
        match (phase, line.status) {
            // Row 5.
            (Phase::Reserving, LineStatus::Requested) => {
                line.status = LineStatus::Failed;
                self.release_held("out_of_stock");
                self.cancel("out_of_stock", "system");
            }
            // Row 16.
            (p, LineStatus::Requested) if p.is_closed() => line.status = LineStatus::Failed,
            // Row 20.
            (_, LineStatus::Failed) => {}
            (_, status) => {
                return Err(reject(
                    class::CONFLICTING_FACT,
                    format!("reservation {} refused, but it is {status:?}", e.reservation_id),
                ))
            }
        }
        Ok(())
    }

    fn released(&mut self, e: &InventoryReleased) -> Result<(), Rejection> {
        let line = self.line(&e.reservation_id, &e.product_id, e.quantity)?;
        match line.status {
            // Row 15.
            LineStatus::ReleaseRequested => line.status = LineStatus::Released,
            LineStatus::Released => {}
            status => {
                return Err(reject(
                    class::CONFLICTING_FACT,
                    format!("reservation {} released without a request (it is {status:?})", e.reservation_id),
                ))
            }
        }
        Ok(())
    }

    // --- the payment service -----------------------------------------------

    fn captured(&mut self, e: &PaymentCaptured) -> Result<(), Rejection> {
        if self.before.is_none() {
            return Err(self.invalid("payment.captured"));
        }
        self.check_currency(&e.currency)?;
        if let Some((payment_id, amount)) = self.o.payment.captured() {
            // Row 20 / 21.
            return match payment_id == e.payment_id && same_amount(amount, &e.amount) {
                true => Ok(()),
                false => Err(reject(
                    class::CONFLICTING_FACT,
                    format!("a second capture {} of {}; the order has {payment_id}", e.payment_id, e.amount.as_str()),
                )),
            };
        }
        match (self.o.phase, &self.o.payment) {
            // Row 8.
            (Phase::Capturing, Payment::CaptureRequested) => {
                let total = self.o.total.clone().expect("set with the lines");
                if !same_amount(&total, &e.amount) {
                    return Err(reject(
                        class::AMOUNT_MISMATCH,
                        format!("captured {} of an order total {}", e.amount.as_str(), total.as_str()),
                    ));
                }
                self.o.payment =
                    Payment::Captured { payment_id: e.payment_id.as_str().into(), amount: e.amount.clone() };
                for i in 0..self.o.lines.len() {
                    self.o.lines[i].status = LineStatus::Consumed;
                    let line = &self.o.lines[i];
                    let consume = InventoryConsumeRequested {
                        reservation_id: line.reservation_id.to_string(),
                        order_id: self.order_id(),
                        product_id: line.product_id.to_string(),
                        quantity: line.quantity,
                        location_id: self.saga.config.location_id.clone(),
                        occurred_at: self.now(),
                    };
                    self.emit(consume);
                }
                self.o.phase = Phase::Completed;
                self.emit(OrderCompleted {
                    order_id: self.order_id(),
                    completion_time: self.now(),
                    payment_id: e.payment_id.clone(),
                    fulfillment_id: None,
                    final_amount: e.amount.clone(),
                });
            }
            // Row 11: the capture was in flight when the order was cancelled.
            (Phase::Cancelled, Payment::CaptureRequested) => {
                let reason = self.o.cancellation.as_ref().map_or("order_cancelled", |c| &*c.reason).to_owned();
                self.request_refund(e.payment_id.as_str().into(), e.amount.clone(), &reason);
                self.o.phase = Phase::Refunding;
            }
            _ => return Err(self.invalid("payment.captured")),
        }
        Ok(())
    }

    fn capture_failed(&mut self, _: &PaymentCaptureFailed) -> Result<(), Rejection> {
        match (self.o.phase, &self.o.payment) {
            // Row 9.
            (Phase::Capturing, Payment::CaptureRequested) => {
                self.o.payment = Payment::Failed;
                self.release_held("payment_failed");
                self.cancel("payment_failed", "system");
            }
            // Cancelled meanwhile: nothing was taken, nothing to give back.
            (Phase::Cancelled, Payment::CaptureRequested) => self.o.payment = Payment::Failed,
            (_, Payment::Failed) => {}
            _ => return Err(self.invalid("payment.capture_failed")),
        }
        Ok(())
    }

    fn refunded(&mut self, e: &PaymentRefunded) -> Result<(), Rejection> {
        self.check_currency(&e.currency)?;
        match &self.o.payment {
            // Row 12.
            Payment::RefundRequested { payment_id, amount, refund } if self.o.phase == Phase::Refunding => {
                if !same_amount(refund, &e.amount) {
                    return Err(reject(
                        class::AMOUNT_MISMATCH,
                        format!("refunded {} of a requested refund of {}", e.amount.as_str(), refund.as_str()),
                    ));
                }
                let reason = self.o.cancellation.as_ref().map_or("order_cancelled", |c| &*c.reason).to_owned();
                self.o.payment = Payment::Refunded {
                    payment_id: payment_id.clone(),
                    amount: amount.clone(),
                    refund: refund.clone(),
                    refund_id: e.refund_id.as_str().into(),
                };
                self.o.phase = Phase::Refunded;
                self.emit(OrderRefunded {
                    order_id: self.order_id(),
                    refund_id: e.refund_id.clone(),
                    refund_amount: e.amount.clone(),
                    refund_reason: reason,
                    refund_method: e.refund_method.clone(),
                    processed_at: self.now(),
                });
            }
            // Row 20 / 21.
            Payment::Refunded { refund_id, .. } if **refund_id == *e.refund_id => {}
            Payment::Refunded { refund_id, .. } => {
                return Err(reject(class::CONFLICTING_FACT, format!("a second refund; the order has {refund_id}")))
            }
            _ => return Err(self.invalid("payment.refunded")),
        }
        Ok(())
    }

    // --- timers -------------------------------------------------------------

    fn expired(&mut self) {
        // Row 6; in any other phase the timer is stale.
        if matches!(self.o.phase, Phase::Reserving | Phase::Capturing) {
            self.release_held("reservation_expired");
            self.cancel("reservation_expired", "system");
        }
    }

    // --- effects ------------------------------------------------------------

    /// Rows 4: every line is reserved.
    fn validated(&mut self) {
        let reservations = self
            .o
            .lines
            .iter()
            .map(|l| Reservation {
                product_id: l.product_id.to_string(),
                reservation_id: l.reservation_id.to_string(),
                quantity: l.quantity,
            })
            .collect();
        let passed = || "passed".to_owned();
        self.emit(OrderValidated {
            order_id: self.order_id(),
            validation_results: ValidationResults {
                inventory_check: passed(),
                pricing_check: passed(),
                customer_check: passed(),
            },
            reservations,
        });
        self.emit(PaymentCaptureRequested {
            order_id: self.order_id(),
            customer_id: self.o.customer_id.as_deref().unwrap_or_default().to_owned(),
            amount: self.o.total.clone().expect("set with the lines"),
            currency: self.currency(),
            occurred_at: self.now(),
        });
        self.o.payment = Payment::CaptureRequested;
        self.o.phase = Phase::Capturing;
    }

    /// One release per held reservation; each line is released once.
    fn release_held(&mut self, reason: &str) {
        for i in 0..self.o.lines.len() {
            if !self.o.lines[i].status.is_held() {
                continue;
            }
            self.o.lines[i].status = LineStatus::ReleaseRequested;
            let line = &self.o.lines[i];
            let release = InventoryReleaseRequested {
                reservation_id: line.reservation_id.to_string(),
                order_id: self.order_id(),
                product_id: line.product_id.to_string(),
                quantity: line.quantity,
                location_id: self.saga.config.location_id.clone(),
                reason: reason.to_owned(),
                occurred_at: self.now(),
            };
            self.emit(release);
        }
    }

    /// `order.cancelled` without a refund (nothing was captured, or the
    /// capture is still unknown: row 11 refunds it when it comes).
    fn cancel(&mut self, reason: &str, by: &str) {
        self.o.phase = Phase::Cancelled;
        self.o.cancellation = Some(Cancellation { reason: reason.into(), by: by.into() });
        self.emit(OrderCancelled {
            order_id: self.order_id(),
            cancellation_reason: reason.to_owned(),
            cancelled_by: by.to_owned(),
            cancelled_at: self.now(),
            refund_required: false,
            refund_amount: self.zero(),
        });
    }

    fn request_refund(&mut self, payment_id: Box<str>, amount: DecimalAmount, reason: &str) {
        self.emit(PaymentRefundRequested {
            order_id: self.order_id(),
            payment_id: payment_id.to_string(),
            amount: amount.clone(),
            currency: self.currency(),
            reason: reason.to_owned(),
            occurred_at: self.now(),
        });
        self.o.payment = Payment::RefundRequested { payment_id, refund: amount.clone(), amount };
    }

    fn finish(mut self) -> Outcome<Box<Order>> {
        check_invariants(&self.o).map_err(|reason| {
            reject(class::INVARIANT_VIOLATED, format!("{reason} (the order would be {})", self.o.describe()))
        })?;
        if self.before == Some(&self.o) && self.emits.is_empty() && self.timers.is_empty() {
            return Ok(Step::keep());
        }
        if self.o.phase.is_closed() {
            // Closed: the expiry is moot; forget the order after the retention,
            // counted from its latest change.
            self.timers.push(TimerCommand::Cancel { name: RESERVATION_EXPIRY.into() });
            self.timers.push(TimerCommand::Set { name: PURGE.into(), due: self.now() + self.saga.config.purge_after });
        } else if self.o.phase == Phase::AwaitingOrder {
            // A cancel for an order that never comes is forgotten too.
            self.timers.push(TimerCommand::Set { name: PURGE.into(), due: self.now() + self.saga.config.purge_after });
        }
        Ok(Step {
            state: sagastream_runtime::StateChange::Set(Box::new(self.o)),
            emits: self.emits,
            timers: self.timers,
        })
    }
}

/// Row 2: the lines and the total must add up, exactly.
fn validate(e: &OrderCreated) -> Result<(), Rejection> {
    let bad = |why: String| Err(reject(class::INVALID_ORDER, why));
    if e.items.is_empty() {
        return bad("an order without lines".into());
    }
    let money = |r: Result<Dec, crate::money::MoneyError>| r.map_err(|e| reject(class::INVALID_ORDER, e.to_string()));
    let mut sum: Option<Dec> = None;
    for (i, item) in e.items.iter().enumerate() {
        if item.quantity == 0 {
            return bad(format!("line {} has quantity 0", i + 1));
        }
        let line = money(Dec::parse(&item.unit_price).and_then(|u| u.times(item.quantity)))?;
        if line != money(Dec::parse(&item.total_price))? {
            return bad(format!(
                "line {}: {} × {} is not {}",
                i + 1,
                item.quantity,
                item.unit_price.as_str(),
                item.total_price.as_str()
            ));
        }
        sum = Some(match sum {
            None => line,
            Some(s) => money(s.plus(line))?,
        });
    }
    let total = money(Dec::parse(&e.total_amount))?;
    if sum.is_some_and(|s| total < s) {
        return bad(format!("total {} is below the sum of its lines", e.total_amount.as_str()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
