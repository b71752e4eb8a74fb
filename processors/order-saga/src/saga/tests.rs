//! The transition table row by row, repeated and contradicting facts,
//! invariant violations, and every interleaving of each scenario
//! (exhaustive search over the order in which the order topic, the
//! re-keyed inventory answers, the payment answers and the expiry timer
//! reach the saga).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sagastream_contract::payloads::inventory::*;
use sagastream_contract::payloads::order::*;
use sagastream_contract::payloads::payment::*;
use sagastream_contract::{Currency, DecimalAmount, Event, EventType as T, Payload};
use sagastream_runtime::{Context, Processor, Rejection, RejectionClass, SagaState, StateChange, Timer};

use crate::saga::{order_of, reservation_id, Class, PURGE, RESERVATION_EXPIRY};
use crate::state::{LineStatus as L, Order, Payment, Phase as P};
use crate::{Config, OrderSaga};

const KEY: &str = "order_1";
const TOTAL: &str = "47.98";

fn saga() -> OrderSaga {
    OrderSaga { config: Config::default() }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fn dec(s: &str) -> DecimalAmount {
    DecimalAmount::new(s).unwrap()
}

fn usd() -> Currency {
    Currency::new("USD").unwrap()
}

// --- inputs -------------------------------------------------------------

/// Two lines: 2 × 11.99 of prod_a and 1 × 22.00 of prod_b, plus 2.00 shipping.
fn created() -> Payload {
    created_with(vec![("prod_a", 2, "11.99", "23.98"), ("prod_b", 1, "22.00", "22.00")], TOTAL)
}

fn created_with(lines: Vec<(&str, u32, &str, &str)>, total: &str) -> Payload {
    OrderCreated {
        order_id: KEY.into(),
        customer_id: "cust_1".into(),
        total_amount: dec(total),
        currency: usd(),
        status: "pending".into(),
        items: lines
            .into_iter()
            .map(|(p, q, u, t)| OrderItem {
                product_id: p.into(),
                quantity: q,
                unit_price: dec(u),
                total_price: dec(t),
            })
            .collect(),
        shipping_address: sagastream_contract::samples::address(),
        billing_address: sagastream_contract::samples::address(),
    }
    .into()
}

fn cancel_requested() -> Payload {
    OrderCancelRequested {
        order_id: KEY.into(),
        reason: "customer_request".into(),
        requested_by: "customer".into(),
        requested_at: t0(),
    }
    .into()
}

fn line(n: usize) -> (String, &'static str, u32) {
    let (product, quantity) = [("prod_a", 2), ("prod_b", 1)][n - 1];
    (reservation_id(KEY, n), product, quantity)
}

fn reserved(n: usize) -> Payload {
    let (reservation_id, product, quantity) = line(n);
    InventoryReserved {
        reservation_id,
        product_id: product.into(),
        quantity,
        location_id: "warehouse_main".into(),
        order_id: KEY.into(),
        expires_at: t0() + TimeDelta::minutes(15),
    }
    .into()
}

fn reservation_failed(n: usize) -> Payload {
    let (reservation_id, product, quantity) = line(n);
    InventoryReservationFailed {
        reservation_id,
        product_id: product.into(),
        quantity,
        location_id: "warehouse_main".into(),
        order_id: KEY.into(),
        available_quantity: 0,
        reason: "insufficient_stock".into(),
    }
    .into()
}

fn released(n: usize) -> Payload {
    let (reservation_id, product, quantity) = line(n);
    InventoryReleased {
        reservation_id,
        product_id: product.into(),
        quantity,
        location_id: "warehouse_main".into(),
        reason: "order_cancelled".into(),
        order_id: Some(KEY.into()),
    }
    .into()
}

fn captured(amount: &str) -> Payload {
    PaymentCaptured {
        order_id: KEY.into(),
        payment_id: "pay_1".into(),
        amount: dec(amount),
        currency: usd(),
        captured_at: t0(),
    }
    .into()
}

fn capture_failed() -> Payload {
    PaymentCaptureFailed { order_id: KEY.into(), reason: "card_declined".into(), failed_at: t0() }.into()
}

fn refunded(amount: &str) -> Payload {
    PaymentRefunded {
        order_id: KEY.into(),
        payment_id: "pay_1".into(),
        refund_id: "ref_1".into(),
        amount: dec(amount),
        currency: usd(),
        refund_method: "original_payment_method".into(),
        processed_at: t0(),
    }
    .into()
}

// --- a saga run without Kafka ---------------------------------------------

/// The saga's state, everything it emitted and its timers, as the runtime
/// would keep them.
#[derive(Debug, Clone, Default)]
struct Run {
    state: Option<Box<Order>>,
    emitted: Vec<Payload>,
    timers: BTreeMap<String, DateTime<Utc>>,
    inputs: usize,
}

impl Run {
    fn ctx(&self) -> Context<'static> {
        Context { key: KEY, partition: 0, now: t0(), topic: "order.events" }
    }

    fn apply(&mut self, outcome: Result<sagastream_runtime::Step<Box<Order>>, Rejection>) -> Result<(), Rejection> {
        let step = outcome?;
        match step.state {
            StateChange::Keep => {}
            StateChange::Set(s) => self.state = Some(s),
            StateChange::Delete => {
                self.state = None;
                self.timers.clear();
            }
        }
        for e in step.emits {
            assert_eq!(e.correlation_id.as_deref(), Some(KEY), "every output names the order");
            self.emitted.push(*e.payload);
        }
        sagastream_runtime::testing::apply_timers(&mut self.timers, step.timers);
        Ok(())
    }

    fn feed(&mut self, payload: Payload) -> Result<(), Rejection> {
        self.inputs += 1;
        let event = Event::new("/test", payload).with_id(format!("in-{}", self.inputs));
        let outcome = saga().process(self.state.as_ref(), &event, &self.ctx());
        self.apply(outcome)
    }

    fn fire(&mut self, name: &str) -> Result<(), Rejection> {
        let due = self.timers.remove(name).expect("timer set");
        let outcome = saga().on_timer(self.state.as_ref(), &Timer { name: name.into(), due }, &self.ctx());
        self.apply(outcome)
    }

    fn o(&self) -> &Order {
        self.state.as_deref().expect("order state")
    }

    fn count(&self, t: T) -> usize {
        self.emitted.iter().filter(|p| p.event_type() == t).count()
    }

    /// Emitted since `from`.
    fn since(&self, from: usize) -> Vec<T> {
        self.emitted[from..].iter().map(Payload::event_type).collect()
    }

    fn statuses(&self) -> Vec<L> {
        self.o().lines.iter().map(|l| l.status).collect()
    }

    fn rejected(&mut self, payload: Payload) -> Rejection {
        let before = (self.state.clone(), self.emitted.len(), self.timers.clone());
        let r = self.feed(payload).expect_err("rejected");
        assert_eq!(
            (self.state.clone(), self.emitted.len(), self.timers.clone()),
            before,
            "a rejection changes nothing"
        );
        r
    }
}

fn run(inputs: Vec<Payload>) -> Run {
    let mut r = Run::default();
    for p in inputs {
        let name = p.event_type();
        r.feed(p).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    r
}

fn reserving() -> Run {
    run(vec![created()])
}

fn capturing() -> Run {
    run(vec![created(), reserved(1), reserved(2)])
}

fn completed() -> Run {
    run(vec![created(), reserved(1), reserved(2), captured(TOTAL)])
}

mod interleavings;
mod rows;
