//! The inventory service and the order payment service as the order saga
//! sees them (docs/simulator.md, "Orders"). Pure: the Kafka loop (`serve`)
//! only moves records.
//!
//! Stock comes from the product id, the way test customers come from the
//! owner id: `…@40` is a product with 40 units on hand when the service
//! first hears of it, and `…+silent` a product whose reservations are never
//! answered. A customer id ending in `+decline` has its capture declined,
//! one ending in `+slow` gets its capture answered late.

use std::collections::HashMap;

use chrono::Utc;
use sagastream_contract::payloads::inventory::{
    InventoryReleased, InventoryReservationFailed, InventoryReserved, InventoryUpdated,
};
use sagastream_contract::payloads::payment::{PaymentCaptureFailed, PaymentCaptured, PaymentRefunded};
use sagastream_contract::{DecimalAmount, Event, Payload};
use uuid::Uuid;

use crate::participants::{Reply, SOURCE};

/// Namespace of the shop's reply ids (UUID v5 of the command id and the
/// reply's type): a redelivered command gets byte-identical answers.
const NAMESPACE: Uuid = Uuid::from_u128(0x7c0f_3a61_52e4_4b1d_a9d0_3e8b_6f21_c4a5);

pub const SILENT_PRODUCT: &str = "+silent";
pub const DECLINE: &str = "+decline";
pub const SLOW: &str = "+slow";
/// A `+slow` customer's capture comes this many latency units late.
pub const SLOW_CAPTURE_AFTER: u32 = 100;

/// On hand when the service first hears of the product: the number after
/// the last `@` of its id, or 0.
pub fn initial_stock(product_id: &str) -> u32 {
    let tail = product_id.rsplit_once('@').map_or("", |(_, t)| t);
    let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResState {
    Held,
    /// With what was available then, so a repeated answer says the same.
    Refused(u32),
    Released,
    Consumed,
}

#[derive(Debug, Clone)]
struct Reservation {
    product: String,
    location: String,
    quantity: u32,
    state: ResState,
}

#[derive(Debug, Clone, Copy, Default)]
struct Stock {
    quantity: u32,
    reserved: u32,
}

/// What the shop holds: stock per product and location, reservations, and
/// captured order payments (never refunded twice or beyond the capture).
#[derive(Debug, Default)]
pub struct Shop {
    stock: HashMap<(String, String), Stock>,
    reservations: HashMap<String, Reservation>,
    captured: HashMap<String, (DecimalAmount, bool)>,
}

impl Shop {
    /// The answers to an order saga command, or why it is refused. Commands
    /// of other processors get no answer here.
    pub fn answer(&mut self, command: &Event) -> Result<Vec<Reply>, String> {
        let now = Utc::now();
        let mut out: Vec<(u32, Payload)> = Vec::new();
        match &command.data {
            Payload::InventoryReserveRequested(c) => {
                if c.product_id.ends_with(SILENT_PRODUCT) {
                    return Ok(Vec::new());
                }
                let key = (c.product_id.clone(), c.location_id.clone());
                if !self.stock.contains_key(&key) {
                    let quantity = initial_stock(&c.product_id);
                    self.stock.insert(key.clone(), Stock { quantity, reserved: 0 });
                    out.push((0, snapshot(&c.product_id, &c.location_id, Stock { quantity, reserved: 0 }, "restock")));
                }
                let state = match self.reservations.get(&c.reservation_id) {
                    Some(r) => r.state,
                    None => {
                        let stock = self.stock.get_mut(&key).expect("inserted above");
                        let available = stock.quantity - stock.reserved;
                        let state = if available >= c.quantity {
                            stock.reserved += c.quantity;
                            ResState::Held
                        } else {
                            ResState::Refused(available)
                        };
                        let r = Reservation {
                            product: c.product_id.clone(),
                            location: c.location_id.clone(),
                            quantity: c.quantity,
                            state,
                        };
                        self.reservations.insert(c.reservation_id.clone(), r);
                        state
                    }
                };
                out.push((
                    0,
                    match state {
                        ResState::Refused(available) => InventoryReservationFailed {
                            reservation_id: c.reservation_id.clone(),
                            product_id: c.product_id.clone(),
                            quantity: c.quantity,
                            location_id: c.location_id.clone(),
                            order_id: c.order_id.clone(),
                            available_quantity: available,
                            reason: "insufficient_stock".into(),
                        }
                        .into(),
                        // Held, or since released/consumed: the reservation was made.
                        _ => InventoryReserved {
                            reservation_id: c.reservation_id.clone(),
                            product_id: c.product_id.clone(),
                            quantity: c.quantity,
                            location_id: c.location_id.clone(),
                            order_id: c.order_id.clone(),
                            expires_at: c.expires_at,
                        }
                        .into(),
                    },
                ));
            }
            Payload::InventoryReleaseRequested(c) => {
                let r = self.reservations.get_mut(&c.reservation_id).ok_or("release of an unknown reservation")?;
                match r.state {
                    ResState::Held => {
                        let stock =
                            self.stock.get_mut(&(r.product.clone(), r.location.clone())).expect("reserved there");
                        stock.reserved -= r.quantity;
                        r.state = ResState::Released;
                    }
                    ResState::Released => {}
                    other => return Err(format!("release of a reservation that is {other:?}")),
                }
                out.push((
                    0,
                    InventoryReleased {
                        reservation_id: c.reservation_id.clone(),
                        product_id: c.product_id.clone(),
                        quantity: c.quantity,
                        location_id: c.location_id.clone(),
                        reason: c.reason.clone(),
                        order_id: Some(c.order_id.clone()),
                    }
                    .into(),
                ));
            }
            Payload::InventoryConsumeRequested(c) => {
                let r = self.reservations.get_mut(&c.reservation_id).ok_or("consume of an unknown reservation")?;
                match r.state {
                    ResState::Held => {
                        let key = (r.product.clone(), r.location.clone());
                        let stock = self.stock.get_mut(&key).expect("reserved there");
                        stock.reserved -= r.quantity;
                        stock.quantity -= r.quantity;
                        r.state = ResState::Consumed;
                        out.push((0, snapshot(&key.0, &key.1, *stock, "sale")));
                    }
                    // A redelivered command: the sale happened once.
                    ResState::Consumed => {}
                    other => return Err(format!("consume of a reservation that is {other:?}")),
                }
            }
            Payload::PaymentCaptureRequested(c) => {
                if c.customer_id.ends_with(DECLINE) {
                    out.push((
                        0,
                        PaymentCaptureFailed {
                            order_id: c.order_id.clone(),
                            reason: "card_declined".into(),
                            failed_at: now,
                        }
                        .into(),
                    ));
                } else {
                    self.captured.entry(c.order_id.clone()).or_insert((c.amount.clone(), false));
                    let after = if c.customer_id.ends_with(SLOW) { SLOW_CAPTURE_AFTER } else { 0 };
                    out.push((
                        after,
                        PaymentCaptured {
                            order_id: c.order_id.clone(),
                            payment_id: format!("pay-{}", c.order_id),
                            amount: c.amount.clone(),
                            currency: c.currency.clone(),
                            captured_at: now,
                        }
                        .into(),
                    ));
                }
            }
            Payload::PaymentRefundRequested(c) => {
                let (amount, refunded) =
                    self.captured.get_mut(&c.order_id).ok_or("refund of an order never captured")?;
                if *amount != c.amount {
                    return Err(format!("refund of {} for a capture of {}", c.amount.as_str(), amount.as_str()));
                }
                *refunded = true;
                out.push((
                    0,
                    PaymentRefunded {
                        order_id: c.order_id.clone(),
                        payment_id: c.payment_id.clone(),
                        refund_id: format!("ref-{}", c.order_id),
                        amount: c.amount.clone(),
                        currency: c.currency.clone(),
                        refund_method: "original_payment_method".into(),
                        processed_at: now,
                    }
                    .into(),
                ));
            }
            _ => {}
        }
        let order = |p: &Payload| -> Option<String> {
            match p {
                Payload::InventoryUpdated(_) => None,
                _ => Some(p.aggregate_id().to_owned()),
            }
        };
        Ok(out
            .into_iter()
            .map(|(after, payload)| {
                let name = format!("{}\n{}", command.id, payload.event_type());
                let id = Uuid::new_v5(&NAMESPACE, name.as_bytes());
                let correlation = command.correlationid.clone().or_else(|| order(&payload));
                let mut event = Event::new(SOURCE, payload).with_id(id.to_string());
                event.correlationid = correlation;
                Reply { after, event }
            })
            .collect())
    }
}

fn snapshot(product: &str, location: &str, s: Stock, update_type: &str) -> Payload {
    InventoryUpdated {
        product_id: product.to_owned(),
        location_id: location.to_owned(),
        quantity: s.quantity,
        reserved_quantity: s.reserved,
        available_quantity: s.quantity - s.reserved,
        update_type: update_type.to_owned(),
        source_event: match update_type {
            "sale" => "inventory.consume_requested".to_owned(),
            _ => "purchase_order_received".to_owned(),
        },
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagastream_contract::payloads::commands::*;
    use sagastream_contract::{Currency, EventType as T};

    fn cmd(p: impl Into<Payload>) -> Event {
        Event::new("/saga", p).with_correlation_id("order-1")
    }

    fn reserve(res: &str, product: &str, quantity: u32) -> Event {
        cmd(InventoryReserveRequested {
            reservation_id: res.into(),
            order_id: "order-1".into(),
            product_id: product.into(),
            quantity,
            location_id: "warehouse_main".into(),
            expires_at: Utc::now(),
            occurred_at: Utc::now(),
        })
    }

    fn release(res: &str, product: &str, quantity: u32) -> Event {
        cmd(InventoryReleaseRequested {
            reservation_id: res.into(),
            order_id: "order-1".into(),
            product_id: product.into(),
            quantity,
            location_id: "warehouse_main".into(),
            reason: "order_cancelled".into(),
            occurred_at: Utc::now(),
        })
    }

    fn consume(res: &str, product: &str, quantity: u32) -> Event {
        cmd(InventoryConsumeRequested {
            reservation_id: res.into(),
            order_id: "order-1".into(),
            product_id: product.into(),
            quantity,
            location_id: "warehouse_main".into(),
            occurred_at: Utc::now(),
        })
    }

    fn types(replies: &[Reply]) -> Vec<T> {
        replies.iter().map(|r| r.event.event_type()).collect()
    }

    #[test]
    fn stock_comes_from_the_product_id_and_is_never_oversold() {
        assert_eq!((initial_stock("r1-sku-7@40"), initial_stock("sku"), initial_stock("x@12+silent")), (40, 0, 12));
        let mut shop = Shop::default();
        let a = shop.answer(&reserve("r1", "p@5", 3)).unwrap();
        assert_eq!(types(&a), [T::InventoryUpdated, T::InventoryReserved], "a restock snapshot first");
        let Payload::InventoryUpdated(s) = &a[0].event.data else { unreachable!() };
        assert_eq!((s.quantity, s.available_quantity, s.update_type.as_str()), (5, 5, "restock"));
        let second = reserve("r2", "p@5", 3);
        let b = shop.answer(&second).unwrap();
        let Payload::InventoryReservationFailed(f) = &b[0].event.data else { panic!("{b:?}") };
        assert_eq!(f.available_quantity, 2);
        assert_eq!(types(&shop.answer(&release("r1", "p@5", 3)).unwrap()), [T::InventoryReleased]);
        // The same command again, after the stock changed: the same answer.
        let again = shop.answer(&second).unwrap();
        assert_eq!((&again[0].event.id, &again[0].event.data), (&b[0].event.id, &b[0].event.data));
        assert_eq!(types(&shop.answer(&reserve("r3", "p@5", 5)).unwrap()), [T::InventoryReserved]);
        let sale = shop.answer(&consume("r3", "p@5", 5)).unwrap();
        let Payload::InventoryUpdated(s) = &sale[0].event.data else { unreachable!() };
        assert_eq!((s.quantity, s.reserved_quantity, s.update_type.as_str()), (0, 0, "sale"));
        assert!(shop.answer(&consume("r3", "p@5", 5)).unwrap().is_empty(), "sold once");
        assert!(shop.answer(&release("r3", "p@5", 5)).is_err(), "a sold reservation is not released");
        assert!(shop.answer(&reserve("r9", "q@9+silent", 1)).unwrap().is_empty());
        assert_eq!(a[1].event.correlationid.as_deref(), Some("order-1"));
    }

    #[test]
    fn order_payments_follow_the_customer_and_refund_only_the_capture() {
        let mut shop = Shop::default();
        let capture = |customer: &str| {
            cmd(PaymentCaptureRequested {
                order_id: "order-1".into(),
                customer_id: customer.into(),
                amount: DecimalAmount::new("47.98").unwrap(),
                currency: Currency::new("USD").unwrap(),
                occurred_at: Utc::now(),
            })
        };
        assert_eq!(types(&shop.answer(&capture("c+decline")).unwrap()), [T::PaymentCaptureFailed]);
        let slow = shop.answer(&capture("c+slow")).unwrap();
        assert_eq!((types(&slow), slow[0].after), (vec![T::PaymentCaptured], SLOW_CAPTURE_AFTER));
        let refund = |amount: &str| {
            cmd(PaymentRefundRequested {
                order_id: "order-1".into(),
                payment_id: "pay-order-1".into(),
                amount: DecimalAmount::new(amount).unwrap(),
                currency: Currency::new("USD").unwrap(),
                reason: "customer_request".into(),
                occurred_at: Utc::now(),
            })
        };
        assert!(shop.answer(&refund("50.00")).is_err());
        assert_eq!(types(&shop.answer(&refund("47.98")).unwrap()), [T::PaymentRefunded]);
    }
}
