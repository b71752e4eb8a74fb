//! The order saga's transitions. Every arm names its row of the transition
//! table in docs/order-saga.md; the unit tests walk the same rows.
//!
//! A transition works on the saga kit's copy of the state
//! ([`sagastream_runtime::Working`]): a rejected input leaves the order
//! exactly as it was. The rows live by the input they answer.

use chrono::TimeDelta;
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
use sagastream_contract::{Currency, DecimalAmount, Event, EventType, Payload};
use sagastream_runtime::saga::on_purge;
use sagastream_runtime::{
    Context, KeyView, Outcome, Processor, Rejection, RejectionClass, Repartition, SagaState, Spec, Step, Timer, Working,
};

/// The purge after the end (row 19) is the kit's.
pub use sagastream_runtime::PURGE;

use crate::money::{same_amount, Dec};
use crate::state::{Cancellation, Line, LineStatus, Order, Payment, Phase};

pub const NAME: &str = "order-saga";
pub const RESERVATION_EXPIRY: &str = "reservation_expiry";
/// The internal topic inventory events are re-keyed into.
pub const REPARTITION_TOPIC: &str = "order.saga.inventory.repartition";

sagastream_runtime::rejection_classes! {
    /// DLQ classes (the `__streams.errors.exception` header and a metric label).
    pub enum Class {
        InvalidOrder = "invalid_order",
        InvalidTransition = "invalid_transition",
        InvariantViolated = "invariant_violated",
        ConflictingFact = "conflicting_fact",
        AmountMismatch = "amount_mismatch",
        CurrencyMismatch = "currency_mismatch",
        UnknownReservation = "unknown_reservation",
        UnknownTimer = "unknown_timer",
    }
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

/// [`order_of`] read from the record without decoding it: the same key for
/// the three types that carry an order, `None` (the decoded way) for the
/// rest. Kept equal to `order_of` by a test.
pub fn order_of_record(view: &KeyView<'_>) -> Option<String> {
    match EventType::parse(view.event_type())? {
        EventType::InventoryReserved | EventType::InventoryReservationFailed => view.data_str("order_id"),
        EventType::InventoryReleased => view.data_str("order_id").or_else(|| view.correlationid().map(str::to_owned)),
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
            repartitions: vec![Repartition {
                from: "inventory.events",
                to: REPARTITION_TOPIC,
                key: order_of,
                quick_key: Some(order_of_record),
            }],
        }
    }

    fn state_label(&self, o: &Box<Order>) -> Option<&'static str> {
        Some(o.phase.as_str())
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
            return Err(Class::UnknownTimer.reject(format!("timer {} without order state", timer.name)));
        };
        let mut t = Transition::new(self, Some(state), ctx);
        match timer.name.as_str() {
            RESERVATION_EXPIRY => t.expired(),
            // Row 19.
            PURGE => return Ok(on_purge(&**state)),
            other => return Err(Class::UnknownTimer.reject(format!("timer {other:?} is not an order timer"))),
        }
        t.finish()
    }
}

/// One transition in progress: the kit's working copy and the saga's
/// configuration.
struct Transition<'a> {
    saga: &'a OrderSaga,
    w: Working<'a, Order>,
}

sagastream_runtime::saga_transition!(Transition, Order);

impl<'a> Transition<'a> {
    fn new(saga: &'a OrderSaga, before: Option<&'a Order>, ctx: &'a Context<'a>) -> Transition<'a> {
        // Every output carries the order id as correlation id, so the
        // services' answers (and the repartition step) can name the order.
        Transition { saga, w: Working::new(before, ctx).correlated_by_key() }
    }

    fn order_id(&self) -> String {
        self.key()
    }

    fn invalid(&self, what: &str) -> Rejection {
        match self.before() {
            None => Class::InvalidTransition.reject(format!("{what} for an order the saga does not know")),
            Some(_) => Class::InvalidTransition.reject(format!("{what} is not allowed in {}", self.s.phase)),
        }
    }

    fn currency(&self) -> Currency {
        self.s.currency.clone().unwrap_or_else(Currency::none)
    }

    fn check_currency(&self, currency: &Currency) -> Result<(), Rejection> {
        match &self.s.currency {
            Some(c) if c != currency => Err(Class::CurrencyMismatch.reject(format!("{currency} on an order in {c}"))),
            _ => Ok(()),
        }
    }

    /// Zero at the scale of the order total ("0.00").
    fn zero(&self) -> DecimalAmount {
        let scale = self.s.total.as_ref().and_then(|t| Dec::parse(t).ok()).map_or(2, Dec::scale);
        Dec::zero(scale).to_amount()
    }

    fn line(&mut self, reservation_id: &str, product_id: &str, quantity: u32) -> Result<&mut Line, Rejection> {
        if self.before().is_none() || self.s.phase == Phase::AwaitingOrder {
            return Err(self.invalid("an inventory answer"));
        }
        let phase = self.s.phase;
        let line = self.s.line_mut(reservation_id).ok_or_else(|| {
            Class::UnknownReservation
                .reject(format!("reservation {reservation_id} is not one of the order's ({phase})"))
        })?;
        if &*line.product_id != product_id || line.quantity != quantity {
            return Err(Class::ConflictingFact.reject(format!(
                "reservation {reservation_id} is for {} × {}, the answer says {quantity} × {product_id}",
                line.quantity, line.product_id
            )));
        }
        Ok(line)
    }

    /// The purge when the order is closed (or waits for an order that may
    /// never come), then the kit's finish (invariants, keep or set).
    fn finish(mut self) -> Outcome<Box<Order>> {
        // Ended (closed, or a cancel whose order may never come): forget it
        // after the retention, counted from its latest change. A repeated
        // fact changes nothing and does not push the purge back.
        if self.changed() && self.s.may_purge() {
            if self.s.phase.is_closed() {
                // The expiry is moot.
                self.cancel_timer(RESERVATION_EXPIRY);
            }
            self.arm_purge(self.saga.config.purge_after);
        }
        self.w.finish(Class::InvariantViolated)
    }
}

mod effects;
mod inventory;
mod order;
mod payment;

#[cfg(test)]
mod tests;
