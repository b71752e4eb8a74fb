//! Every order in which the inputs can reach the saga, for each scenario:
//! each ends in its outcome.

use super::*;

// --- every interleaving -----------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Happy,
    OutOfStock,
    Expiry,
    PaymentFailure,
    /// The cancel request is on the order topic right behind the order.
    CancelBeforeCapture,
    /// The customer cancels after seeing `order.completed`.
    CancelAfterCapture,
    /// The cancel request overtakes its order upstream.
    Reordered,
    /// Happy, with duplicates: every scenario's search redelivers one fact
    /// (with a new id) at every point, this one also the order twice.
    Duplicates,
}

impl Scenario {
    const ALL: [Scenario; 8] = [
        Scenario::Happy,
        Scenario::OutOfStock,
        Scenario::Expiry,
        Scenario::PaymentFailure,
        Scenario::CancelBeforeCapture,
        Scenario::CancelAfterCapture,
        Scenario::Reordered,
        Scenario::Duplicates,
    ];

    fn order_script(self) -> Vec<Payload> {
        match self {
            Scenario::CancelBeforeCapture => vec![created(), cancel_requested()],
            Scenario::Reordered => vec![cancel_requested(), created()],
            Scenario::Duplicates => vec![created(), created()],
            _ => vec![created()],
        }
    }
}

/// The world around the saga: the order service's script, the inventory
/// service (answers per product, so in any order across lines) and the
/// payment service (answers in order).
#[derive(Debug, Clone)]
struct World {
    scenario: Scenario,
    run: Run,
    orders: Vec<Payload>,
    inventory: Vec<Payload>,
    payments: Vec<Payload>,
    answered: usize,
    /// Lines the inventory service set stock aside for.
    held: [bool; 2],
    last: Option<Payload>,
    redelivered: bool,
}

impl World {
    fn new(scenario: Scenario) -> World {
        let mut orders = scenario.order_script();
        orders.reverse();
        World {
            scenario,
            run: Run::default(),
            orders,
            inventory: Vec::new(),
            payments: Vec::new(),
            answered: 0,
            held: [false; 2],
            last: None,
            redelivered: false,
        }
    }

    fn answer(&mut self) {
        let new: Vec<Payload> = self.run.emitted[self.answered..].to_vec();
        self.answered = self.run.emitted.len();
        for p in new {
            let n = |id: &str| if id.ends_with("_1") { 1 } else { 2 };
            match (&p, self.scenario) {
                (Payload::InventoryReserveRequested(c), Scenario::OutOfStock) if n(&c.reservation_id) == 2 => {
                    self.inventory.push(reservation_failed(2))
                }
                (Payload::InventoryReserveRequested(c), Scenario::Expiry) if n(&c.reservation_id) == 2 => {}
                (Payload::InventoryReserveRequested(c), _) => {
                    self.held[n(&c.reservation_id) - 1] = true;
                    self.inventory.push(reserved(n(&c.reservation_id)));
                }
                (Payload::InventoryReleaseRequested(c), _) => {
                    assert!(self.held[n(&c.reservation_id) - 1], "released a reservation never held: {c:?}");
                    self.held[n(&c.reservation_id) - 1] = false;
                    self.inventory.push(released(n(&c.reservation_id)));
                }
                (Payload::InventoryConsumeRequested(c), _) => {
                    assert!(self.held[n(&c.reservation_id) - 1], "consumed a reservation never held: {c:?}");
                    self.held[n(&c.reservation_id) - 1] = false;
                }
                (Payload::PaymentCaptureRequested(c), Scenario::PaymentFailure) => {
                    let _ = c;
                    self.payments.insert(0, capture_failed())
                }
                (Payload::PaymentCaptureRequested(c), _) => self.payments.insert(0, captured(c.amount.as_str())),
                (Payload::PaymentRefundRequested(c), _) => self.payments.insert(0, refunded(c.amount.as_str())),
                (Payload::OrderCompleted(_), Scenario::CancelAfterCapture) => self.orders.insert(0, cancel_requested()),
                _ => {}
            }
        }
    }
}

impl sagastream_runtime::testing::World for World {
    fn check(&self, path: &[String]) {
        check_outcome(self, path);
    }

    /// 0: order topic; 1+i: inventory answer i (any order); 100: payment;
    /// 200: the expiry timer; 300: a redelivery.
    fn choices(&self) -> Vec<usize> {
        let mut c = Vec::new();
        if !self.orders.is_empty() {
            c.push(0);
        }
        c.extend((0..self.inventory.len()).map(|i| 1 + i));
        if !self.payments.is_empty() {
            c.push(100);
        }
        // Only the expiry scenario lets 15 minutes pass.
        if self.scenario == Scenario::Expiry && self.run.timers.contains_key(RESERVATION_EXPIRY) {
            c.push(200);
        }
        if self.last.is_some() && !self.redelivered {
            c.push(300);
        }
        c
    }

    fn step(&mut self, choice: usize) -> String {
        let (name, result) = match choice {
            200 => (format!("timer {RESERVATION_EXPIRY}"), self.run.fire(RESERVATION_EXPIRY)),
            300 => {
                self.redelivered = true;
                let p = self.last.clone().unwrap();
                (format!("{} again", p.event_type()), self.run.feed(p))
            }
            _ => {
                let p = match choice {
                    0 => self.orders.pop().unwrap(),
                    100 => self.payments.pop().unwrap(),
                    i => self.inventory.remove(i - 1),
                };
                self.last = Some(p.clone());
                (p.event_type().to_string(), self.run.feed(p))
            }
        };
        if let Err(r) = &result {
            panic!("{:?}: {name} rejected: {r}", self.scenario);
        }
        self.answer();
        name
    }
}

fn check_outcome(w: &World, path: &[String]) {
    let r = &w.run;
    let o = r.o();
    let at = || format!("{:?} {path:?}", w.scenario);
    // Stock is conserved: nothing is left held at the inventory service.
    assert_eq!(w.held, [false, false], "{}: a reservation was neither released nor consumed", at());
    for t in [T::OrderValidated, T::PaymentCaptureRequested, T::PaymentRefundRequested, T::OrderRefunded] {
        assert!(r.count(t) <= 1, "{}: {t} sent {} times", at(), r.count(t));
    }
    assert!(r.count(T::InventoryReleaseRequested) + r.count(T::InventoryConsumeRequested) <= 2, "{}", at());
    // The refund, if any, is the capture.
    if let Payment::Refunded { amount, refund, .. } = &o.payment {
        assert_eq!((amount.as_str(), refund.as_str()), (TOTAL, TOTAL), "{}", at());
    }
    let cancelled = |reason: &str| {
        let c: Vec<&OrderCancelled> =
            r.emitted.iter().filter_map(|p| if let Payload::OrderCancelled(c) = p { Some(c) } else { None }).collect();
        assert_eq!(c.len(), 1, "{}: one order.cancelled", at());
        assert_eq!(c[0].cancellation_reason, reason, "{}", at());
    };
    match w.scenario {
        Scenario::Happy | Scenario::Duplicates => {
            assert_eq!(
                (o.phase, r.count(T::OrderCompleted), r.count(T::InventoryConsumeRequested)),
                (P::Completed, 1, 2),
                "{}",
                at()
            );
        }
        Scenario::OutOfStock => {
            assert_eq!(o.phase, P::Cancelled, "{}", at());
            cancelled("out_of_stock");
            assert_eq!(r.count(T::PaymentCaptureRequested), 0, "{}", at());
        }
        Scenario::Expiry => {
            assert_eq!(o.phase, P::Cancelled, "{}", at());
            cancelled("reservation_expired");
        }
        Scenario::PaymentFailure => {
            assert_eq!(o.phase, P::Cancelled, "{}", at());
            cancelled("payment_failed");
            assert_eq!(r.count(T::InventoryReleaseRequested), 2, "{}", at());
        }
        Scenario::CancelBeforeCapture => {
            cancelled("customer_request");
            // Cancelled before the capture was asked for, or refunded after it.
            match r.count(T::PaymentCaptureRequested) {
                0 => assert_eq!(o.phase, P::Cancelled, "{}", at()),
                _ => assert_eq!((o.phase, r.count(T::OrderRefunded)), (P::Refunded, 1), "{}", at()),
            }
        }
        Scenario::CancelAfterCapture => {
            assert_eq!(
                (o.phase, r.count(T::OrderCompleted), r.count(T::OrderRefunded)),
                (P::Refunded, 1, 1),
                "{}",
                at()
            );
            cancelled("customer_request");
        }
        Scenario::Reordered => {
            cancelled("customer_request");
            assert_eq!((o.phase, r.emitted.len()), (P::Cancelled, 1), "{}: nothing reserved", at());
        }
    }
    assert_eq!(r.timers.keys().collect::<Vec<_>>(), [PURGE], "{}", at());
}

#[test]
fn every_interleaving_of_every_scenario_ends_in_its_outcome() {
    let mut total = 0;
    for scenario in Scenario::ALL {
        let paths = sagastream_runtime::testing::explore(World::new(scenario));
        assert!(paths > 1, "{scenario:?}: {paths} interleavings");
        total += paths;
    }
    assert!(total > 300, "{total} interleavings explored");
}
