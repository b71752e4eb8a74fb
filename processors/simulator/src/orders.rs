//! The load generator's order scenarios: what the order service publishes
//! for each order, which products and customer it uses, and the outcome the
//! order saga must reach (docs/simulator.md, "Orders").

use std::fmt;
use std::str::FromStr;

use chrono::Utc;
use sagastream_contract::payloads::order::{OrderCancelRequested, OrderCreated, OrderItem};
use sagastream_contract::{encode, ContentMode, Currency, DecimalAmount, Event, Header, Record};

use crate::scenario::{Planned, ScenarioKind, When, SOURCE};
use crate::shop::{DECLINE, SILENT_PRODUCT, SLOW};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrderScenario {
    Happy,
    OutOfStock,
    ReservationExpiry,
    PaymentFailure,
    CancelBeforeCapture,
    CancelAfterCapture,
    Duplicates,
    Reordered,
    BadInput,
}

impl OrderScenario {
    pub const ALL: [OrderScenario; 9] = [
        OrderScenario::Happy,
        OrderScenario::OutOfStock,
        OrderScenario::ReservationExpiry,
        OrderScenario::PaymentFailure,
        OrderScenario::CancelBeforeCapture,
        OrderScenario::CancelAfterCapture,
        OrderScenario::Duplicates,
        OrderScenario::Reordered,
        OrderScenario::BadInput,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OrderScenario::Happy => "order_happy",
            OrderScenario::OutOfStock => "order_out_of_stock",
            OrderScenario::ReservationExpiry => "order_reservation_expiry",
            OrderScenario::PaymentFailure => "order_payment_failure",
            OrderScenario::CancelBeforeCapture => "order_cancel_before_capture",
            OrderScenario::CancelAfterCapture => "order_cancel_after_capture",
            OrderScenario::Duplicates => "order_duplicates",
            OrderScenario::Reordered => "order_reordered",
            OrderScenario::BadInput => "order_bad_input",
        }
    }

    /// Buys for good: its lines count towards the demand stock is sized by.
    fn consumes(self) -> bool {
        matches!(self, OrderScenario::Happy | OrderScenario::Duplicates | OrderScenario::CancelAfterCapture)
    }

    /// Ends by the reservation timer: left out of the latency percentiles.
    pub fn timed(self) -> bool {
        matches!(self, OrderScenario::ReservationExpiry | OrderScenario::CancelBeforeCapture)
    }

    /// The outcome when every line could be reserved.
    pub fn expected(self) -> OrderOutcome {
        match self {
            OrderScenario::Happy | OrderScenario::Duplicates | OrderScenario::BadInput => OrderOutcome::Completed,
            OrderScenario::OutOfStock => OrderOutcome::Cancelled("out_of_stock"),
            OrderScenario::ReservationExpiry => OrderOutcome::Cancelled("reservation_expired"),
            OrderScenario::PaymentFailure => OrderOutcome::Cancelled("payment_failed"),
            // Cancelled while the (slow) capture is in flight, or before it
            // was asked for: the checker expects the refund exactly when a
            // capture happened.
            OrderScenario::CancelBeforeCapture => OrderOutcome::Cancelled("customer_request"),
            OrderScenario::CancelAfterCapture => OrderOutcome::Refunded("customer_request"),
            OrderScenario::Reordered => OrderOutcome::Cancelled("customer_request"),
        }
    }
}

impl fmt::Display for OrderScenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OrderScenario {
    type Err = String;
    fn from_str(s: &str) -> Result<OrderScenario, String> {
        OrderScenario::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            let names: Vec<_> = OrderScenario::ALL.iter().map(|c| c.name()).collect();
            format!("unknown order scenario {s:?}; expected one of {}", names.join(", "))
        })
    }
}

impl ScenarioKind for OrderScenario {
    const ALL: &'static [OrderScenario] = &OrderScenario::ALL;

    fn default_weight(self) -> u32 {
        match self {
            OrderScenario::Happy => 20,
            _ => 5,
        }
    }
}

/// How an order ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum OrderOutcome {
    Completed,
    Cancelled(&'static str),
    /// Cancelled after (or while) the payment was captured, then refunded.
    Refunded(&'static str),
}

impl fmt::Display for OrderOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderOutcome::Completed => f.write_str("completed"),
            OrderOutcome::Cancelled(r) => write!(f, "cancelled ({r})"),
            OrderOutcome::Refunded(r) => write!(f, "cancelled ({r}) and refunded"),
        }
    }
}

/// One order line: product, quantity, unit price in cents.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub product: String,
    pub quantity: u32,
    pub unit_cents: i64,
}

/// One simulated order.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: String,
    pub customer_id: String,
    pub lines: Vec<Line>,
    pub shipping_cents: i64,
    pub scenario: OrderScenario,
}

/// Cents as a decimal string ("1234" → "12.34").
pub fn decimal(cents: i64) -> DecimalAmount {
    DecimalAmount::new(format!("{}.{:02}", cents / 100, cents % 100)).expect("digits")
}

impl Order {
    pub fn total_cents(&self) -> i64 {
        self.lines.iter().map(|l| l.unit_cents * i64::from(l.quantity)).sum::<i64>() + self.shipping_cents
    }

    pub fn total(&self) -> DecimalAmount {
        decimal(self.total_cents())
    }
}

/// The run's products: `<run>-sku-NN@<stock>`. Stock is sized a little
/// below what the orders that buy for good want, so some orders near the
/// end of a run find a product sold out, as in a real shop.
pub struct Catalog {
    pub products: Vec<String>,
    pub sold_out: String,
    pub silent: String,
}

const PRODUCTS: usize = 12;
/// Stock as a share of the demand of the orders that buy for good.
const STOCK_PERCENT: u64 = 130;

/// Builds the run's orders and its catalog.
pub fn orders(run: &str, n: usize, pick: impl Fn(usize) -> OrderScenario) -> (Vec<Order>, Catalog) {
    let scenarios: Vec<OrderScenario> = (0..n).map(pick).collect();
    // (product index, quantity, unit cents) per line, before stock is known.
    let shapes: Vec<Vec<(usize, u32, i64)>> = (0..n)
        .map(|i| {
            let lines = 1 + i % 3;
            (0..lines)
                .map(|l| {
                    ((i * 7 + l * 5) % PRODUCTS, 1 + ((i + l) % 3) as u32, 199 + ((i * 31 + l * 17) % 4_800) as i64)
                })
                .collect()
        })
        .collect();
    let mut demand = [0u64; PRODUCTS];
    for (shape, s) in shapes.iter().zip(&scenarios) {
        if s.consumes() {
            for (p, q, _) in shape {
                demand[*p] += u64::from(*q);
            }
        }
    }
    let products: Vec<String> = demand
        .iter()
        .enumerate()
        .map(|(k, d)| format!("{run}-sku-{k:02}@{}", (d * STOCK_PERCENT / 100).max(20)))
        .collect();
    let catalog = Catalog {
        products,
        sold_out: format!("{run}-sku-soldout@0"),
        silent: format!("{run}-sku-held@1000{SILENT_PRODUCT}"),
    };
    let orders = shapes
        .into_iter()
        .zip(scenarios)
        .enumerate()
        .map(|(i, (shape, scenario))| {
            let mut lines: Vec<Line> = shape
                .into_iter()
                .map(|(p, quantity, unit_cents)| Line { product: catalog.products[p].clone(), quantity, unit_cents })
                .collect();
            match scenario {
                OrderScenario::OutOfStock => {
                    lines.push(Line { product: catalog.sold_out.clone(), quantity: 1, unit_cents: 999 })
                }
                OrderScenario::ReservationExpiry => {
                    lines.push(Line { product: catalog.silent.clone(), quantity: 1, unit_cents: 999 })
                }
                _ => {}
            }
            let marker = match scenario {
                OrderScenario::PaymentFailure => DECLINE,
                OrderScenario::CancelBeforeCapture => SLOW,
                _ => "",
            };
            Order {
                id: format!("{run}-order-{i:06}"),
                customer_id: format!("cust-{:05}{marker}", i % 10_007),
                lines,
                shipping_cents: if i % 2 == 0 { 499 } else { 0 },
                scenario,
            }
        })
        .collect();
    (orders, catalog)
}

fn created(o: &Order) -> OrderCreated {
    OrderCreated {
        order_id: o.id.clone(),
        customer_id: o.customer_id.clone(),
        total_amount: o.total(),
        currency: Currency::new("USD").expect("ISO code"),
        status: "pending".into(),
        items: o
            .lines
            .iter()
            .map(|l| OrderItem {
                product_id: l.product.clone(),
                quantity: l.quantity,
                unit_price: decimal(l.unit_cents),
                total_price: decimal(l.unit_cents * i64::from(l.quantity)),
            })
            .collect(),
        shipping_address: sagastream_contract::samples::address(),
        billing_address: sagastream_contract::samples::address(),
    }
}

fn send(o: &Order, payload: impl Into<sagastream_contract::Payload>, when: When) -> Planned {
    let event = Event::new(SOURCE, payload).with_correlation_id(o.id.clone());
    let record = encode(&event, ContentMode::Binary).expect("catalog events encode");
    Planned { topic: "order.events", record, when, poison: false }
}

/// The order service's records for `o`, with the scenario's duplicates,
/// reorderings, late cancellations and bad records.
pub fn plan(o: &Order) -> Vec<Planned> {
    let cancel = OrderCancelRequested {
        order_id: o.id.clone(),
        reason: "customer_request".into(),
        requested_by: "customer".into(),
        requested_at: Utc::now(),
    };
    match o.scenario {
        OrderScenario::Happy
        | OrderScenario::OutOfStock
        | OrderScenario::ReservationExpiry
        | OrderScenario::PaymentFailure => vec![send(o, created(o), When::Start)],
        OrderScenario::CancelBeforeCapture => {
            vec![send(o, created(o), When::Start), send(o, cancel, When::AfterReserved)]
        }
        OrderScenario::CancelAfterCapture => {
            vec![send(o, created(o), When::Start), send(o, cancel, When::AfterCaptured)]
        }
        // The same order again under a new id (a producer retry).
        OrderScenario::Duplicates => vec![send(o, created(o), When::Start), send(o, created(o), When::Start)],
        // The cancel overtakes its order upstream.
        OrderScenario::Reordered => vec![send(o, cancel, When::Start), send(o, created(o), When::Start)],
        OrderScenario::BadInput => {
            // Another order whose line price is not unit price × quantity,
            // and bytes that are not a CloudEvent, both keyed near this one.
            let mut bad = created(o);
            bad.order_id = format!("{}-bad", o.id);
            bad.items[0].total_price = decimal(o.lines[0].unit_cents * i64::from(o.lines[0].quantity) + 1);
            let garbage = Record {
                key: Some(o.id.as_bytes().to_vec()),
                value: Some(br#"{"order": oops"#.to_vec()),
                headers: vec![Header { name: "content-type".into(), value: Some(b"application/json".to_vec()) }],
            };
            vec![
                Planned { poison: true, ..send(o, bad, When::Start) },
                Planned { topic: "order.events", record: garbage, when: When::Start, poison: true },
                send(o, created(o), When::Start),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Mix;
    use crate::shop::initial_stock;
    use sagastream_contract::{decode, Payload};

    #[test]
    fn orders_add_up_and_stock_is_sized_below_demand() {
        let mix = Mix::<OrderScenario>::default();
        let (orders, catalog) = orders("r", 600, |i| mix.pick(i));
        for s in OrderScenario::ALL {
            assert!(orders.iter().any(|o| o.scenario == s), "{s} in the default mix");
        }
        let total_stock: u32 = catalog.products.iter().map(|p| initial_stock(p)).sum();
        let demand: u32 =
            orders.iter().filter(|o| o.scenario.consumes()).flat_map(|o| o.lines.iter().map(|l| l.quantity)).sum();
        assert!(total_stock <= demand * 14 / 10 && total_stock >= demand, "stock {total_stock} for demand {demand}");
        let o = orders.iter().find(|o| o.scenario == OrderScenario::OutOfStock).unwrap();
        assert!(o.lines.iter().any(|l| l.product == catalog.sold_out));
        let Payload::OrderCreated(c) = decode(&plan(o)[0].record).unwrap().event.data else { panic!() };
        assert_eq!(c.total_amount.as_str(), o.total().as_str());
        assert!(orders
            .iter()
            .find(|o| o.scenario == OrderScenario::PaymentFailure)
            .unwrap()
            .customer_id
            .ends_with("+decline"));
        assert_eq!(decimal(4_798).as_str(), "47.98");
        assert_eq!(decimal(5).as_str(), "0.05");
    }

    #[test]
    fn bad_input_plans_two_poison_records_and_a_good_order() {
        let mix: Mix<OrderScenario> = "order_bad_input=1".parse().unwrap();
        let (orders, _) = orders("r", 1, |i| mix.pick(i));
        let p = plan(&orders[0]);
        assert_eq!(p.iter().filter(|r| r.poison).count(), 2);
        assert!(decode(&p[1].record).is_err());
        let Payload::OrderCreated(bad) = decode(&p[0].record).unwrap().event.data else { panic!() };
        assert!(bad.order_id.ends_with("-bad"));
    }
}
