//! The order checker: everything the load generator observes of its orders,
//! folded per order and per product, and the verdict (the order saga's
//! acceptance, in code). Pure: the Kafka loop feeds it events and DLQ records.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use sagastream_contract::{DecimalAmount, Event, Payload, Record};
use serde::Serialize;

use crate::common::{scenario_table, DlqLedger, DlqSummary, Position, ScenarioRow};
use crate::orders::{Order, OrderOutcome, OrderScenario};
use crate::shop::initial_stock;

/// What the load generator must do next for an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderSignal {
    /// The inventory service reserved every line.
    Reserved(usize),
    /// The payment service captured the payment.
    Captured(usize),
    Ended(usize),
    #[default]
    None,
}

#[derive(Debug, Default)]
struct ReservationSeen {
    /// Distinct ids of `inventory.reserve_requested`.
    requested: BTreeSet<String>,
    /// Distinct ids of `release_requested` and `consume_requested` together.
    settled: BTreeSet<String>,
    /// The inventory service set stock aside for it.
    held: bool,
}

#[derive(Debug, Default)]
struct Seen {
    validated: BTreeSet<String>,
    completed: Vec<DecimalAmount>,
    cancelled: Vec<(String, bool, DecimalAmount)>,
    refunded: Vec<DecimalAmount>,
    capture_requested: BTreeSet<String>,
    refund_requested: BTreeSet<String>,
    captured: Option<DecimalAmount>,
    capture_failed: bool,
    /// A line was refused for lack of stock.
    refused: bool,
    reservations: BTreeMap<String, ReservationSeen>,
    started: Option<Instant>,
    ended: Option<Instant>,
    trace: Vec<String>,
}

/// The stock of one product as the inventory service's facts tell it, and
/// the alerts the projector must have raised for it.
#[derive(Debug, Default)]
struct ProductFold {
    available: Option<u32>,
    quantity: u32,
    reserved: u32,
    /// Units consumed by this run's orders (`inventory.consume_requested`).
    sold: u32,
    expected_alerts: BTreeMap<&'static str, usize>,
    alerts: BTreeSet<(String, &'static str)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderReport {
    pub orders: usize,
    pub finished: usize,
    pub scenarios: Vec<ScenarioRow>,
    /// Orders that found a product sold out (and were cancelled for it).
    pub refused_for_stock: usize,
    pub money_right: bool,
    pub stock_conserved: bool,
    pub products_checked: usize,
    pub low_stock_alerts: usize,
    pub alerts_as_expected: bool,
    pub duplicate_commands: usize,
    pub duplicate_events_dropped: usize,
    pub dlq: DlqSummary,
    pub latency_p50_ms: Option<u64>,
    pub latency_p99_ms: Option<u64>,
    pub problems: Vec<String>,
    pub ok: bool,
}

pub struct OrderChecker {
    run: String,
    orders: Vec<Order>,
    index: HashMap<String, usize>,
    reservation_order: HashMap<String, usize>,
    seen: Vec<Seen>,
    ids: HashSet<String>,
    /// Ids of the stock facts folded (a record read twice must not fold twice).
    stock_ids: HashSet<String>,
    products: BTreeMap<String, ProductFold>,
    /// `--warning-below` and `--critical-below` of the inventory projector.
    thresholds: (u32, u32),
    dlq: DlqLedger,
    pub duplicates: usize,
}

const MAX_PROBLEMS: usize = 30;
const PROJECTOR_SOURCE: &str = "/sagastream/inventory";

impl OrderChecker {
    pub fn new(run: &str, orders: Vec<Order>, thresholds: (u32, u32)) -> OrderChecker {
        let index = orders.iter().enumerate().map(|(i, o)| (o.id.clone(), i)).collect();
        let seen = orders.iter().map(|_| Seen::default()).collect();
        OrderChecker {
            run: run.to_owned(),
            orders,
            index,
            reservation_order: HashMap::new(),
            seen,
            ids: HashSet::new(),
            stock_ids: HashSet::new(),
            products: BTreeMap::new(),
            thresholds,
            dlq: DlqLedger::default(),
            duplicates: 0,
        }
    }

    pub fn orders(&self) -> &[Order] {
        &self.orders
    }

    pub fn started(&mut self, order: usize, at: Instant) {
        self.seen[order].started = Some(at);
    }

    pub fn poison_sent(&mut self, position: Position) {
        self.dlq.sent(position);
    }

    pub fn unfinished(&self) -> usize {
        self.seen.iter().filter(|s| s.ended.is_none()).count()
    }

    fn ours(&self, product: &str) -> bool {
        product.starts_with(&format!("{}-sku-", self.run))
    }

    /// The order an event is about: its key for order facts and commands,
    /// the reservation's order for inventory answers.
    fn order_of(&self, event: &Event) -> Option<usize> {
        let id = match &event.data {
            Payload::InventoryReserved(e) => &e.order_id,
            Payload::InventoryReservationFailed(e) => &e.order_id,
            Payload::InventoryReleased(e) => return self.reservation_order.get(&e.reservation_id).copied(),
            Payload::InventoryReserveRequested(e) => &e.order_id,
            Payload::InventoryReleaseRequested(e) => &e.order_id,
            Payload::InventoryConsumeRequested(e) => &e.order_id,
            _ => event.key(),
        };
        self.index.get(id).copied()
    }

    /// Folds one event in; events of other runs and repeated ids are skipped.
    pub fn observe(&mut self, event: &Event, at: Instant, from: Option<(&str, i32, i64)>) -> OrderSignal {
        self.fold_stock(event);
        let Some(i) = self.order_of(event) else { return OrderSignal::None };
        if event.source == crate::scenario::SOURCE {
            return OrderSignal::None;
        }
        let at_text = from.map_or_else(String::new, |(t, p, o)| format!(" @{t}:{p}:{o}"));
        let short = &event.id[..8.min(event.id.len())];
        if !self.ids.insert(event.id.clone()) {
            self.duplicates += 1;
            self.seen[i].trace.push(format!("{} {short} again{at_text}", event.event_type()));
            return OrderSignal::None;
        }
        let s = &mut self.seen[i];
        s.trace.push(format!("{} {short}{at_text}", event.event_type()));
        let mut signal = OrderSignal::None;
        match &event.data {
            Payload::OrderValidated(_) => {
                s.validated.insert(event.id.clone());
            }
            Payload::OrderCompleted(e) => s.completed.push(e.final_amount.clone()),
            Payload::OrderCancelled(e) => {
                s.cancelled.push((e.cancellation_reason.clone(), e.refund_required, e.refund_amount.clone()))
            }
            Payload::OrderRefunded(e) => s.refunded.push(e.refund_amount.clone()),
            Payload::PaymentCaptureRequested(_) => {
                s.capture_requested.insert(event.id.clone());
            }
            Payload::PaymentRefundRequested(_) => {
                s.refund_requested.insert(event.id.clone());
            }
            Payload::PaymentCaptured(e) => {
                s.captured = Some(e.amount.clone());
                signal = OrderSignal::Captured(i);
            }
            Payload::PaymentCaptureFailed(_) => s.capture_failed = true,
            Payload::InventoryReserveRequested(e) => {
                self.reservation_order.insert(e.reservation_id.clone(), i);
                s.reservations.entry(e.reservation_id.clone()).or_default().requested.insert(event.id.clone());
            }
            Payload::InventoryReleaseRequested(e) => {
                s.reservations.entry(e.reservation_id.clone()).or_default().settled.insert(event.id.clone());
            }
            Payload::InventoryConsumeRequested(e) => {
                s.reservations.entry(e.reservation_id.clone()).or_default().settled.insert(event.id.clone());
                if let Some(p) = self.products.get_mut(&e.product_id) {
                    p.sold += e.quantity;
                }
            }
            Payload::InventoryReserved(e) => {
                s.reservations.entry(e.reservation_id.clone()).or_default().held = true;
                if s.reservations.values().filter(|r| r.held).count() == self.orders[i].lines.len() {
                    signal = OrderSignal::Reserved(i);
                }
            }
            Payload::InventoryReservationFailed(_) => s.refused = true,
            _ => {}
        }
        if self.seen[i].ended.is_none() && self.is_done(i) {
            self.seen[i].ended = Some(at);
            if signal == OrderSignal::None {
                signal = OrderSignal::Ended(i);
            }
        }
        signal
    }

    /// Whether the order reached its last fact: a refund, a completion that
    /// no cancel follows, or a cancellation with no capture left in flight.
    fn is_done(&self, i: usize) -> bool {
        let s = &self.seen[i];
        let o = &self.orders[i];
        if !s.refunded.is_empty() {
            return true;
        }
        if !s.completed.is_empty() {
            return o.scenario != OrderScenario::CancelAfterCapture;
        }
        !s.cancelled.is_empty() && (s.capture_requested.is_empty() || s.capture_failed)
    }

    pub fn is_ended(&self, order: usize) -> bool {
        self.seen[order].ended.is_some()
    }

    /// The inventory service's facts move the product's stock; the
    /// projector's alerts are counted against the crossings they imply.
    fn fold_stock(&mut self, event: &Event) {
        let product = event.key().to_owned();
        if !self.ours(&product) || !self.stock_ids.insert(event.id.clone()) {
            return;
        }
        let (warning, critical) = self.thresholds;
        let p = self.products.entry(product.clone()).or_default();
        let before = p.available;
        match &event.data {
            Payload::InventoryUpdated(e) => {
                p.quantity = e.quantity;
                p.reserved = e.reserved_quantity;
            }
            Payload::InventoryReserved(e) if event.source == crate::participants::SOURCE => p.reserved += e.quantity,
            Payload::InventoryReleased(e) if event.source == crate::participants::SOURCE => {
                p.reserved = p.reserved.saturating_sub(e.quantity)
            }
            Payload::InventoryLowStock(e) if event.source == PROJECTOR_SOURCE => {
                let level = match e.alert_level {
                    sagastream_contract::payloads::inventory::AlertLevel::Warning => "warning",
                    sagastream_contract::payloads::inventory::AlertLevel::Critical => "critical",
                };
                p.alerts.insert((event.id.clone(), level));
                return;
            }
            Payload::ProductOutOfStock(_) if event.source == PROJECTOR_SOURCE => {
                p.alerts.insert((event.id.clone(), "out_of_stock"));
                return;
            }
            _ => return,
        }
        let after = p.quantity.saturating_sub(p.reserved);
        p.available = Some(after);
        if let Some(before) = before {
            for (threshold, level) in [(warning, "warning"), (critical, "critical")] {
                if before >= threshold && after < threshold {
                    *p.expected_alerts.entry(level).or_default() += 1;
                }
            }
            if before > 0 && after == 0 {
                *p.expected_alerts.entry("out_of_stock").or_default() += 1;
            }
        }
    }

    /// Folds one record of the order saga's DLQ in (by original position).
    pub fn observe_dlq(&mut self, record: &Record) {
        let key = record.key.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
        if !key.starts_with(&format!("{}-order-", self.run)) {
            return;
        }
        self.dlq.found(record);
    }

    pub fn report(&self) -> OrderReport {
        let mut problems = Vec::new();
        let mut note = |p: String| {
            if problems.len() < MAX_PROBLEMS {
                problems.push(p);
            }
        };
        let mut rows: BTreeMap<OrderScenario, ScenarioRow> = BTreeMap::new();
        let (mut money_right, mut duplicate_commands, mut refused_for_stock) = (true, 0, 0);
        let mut latencies = Vec::new();
        for (o, s) in self.orders.iter().zip(&self.seen) {
            let row = rows.entry(o.scenario).or_insert_with(|| ScenarioRow {
                scenario: o.scenario.name().into(),
                bookings: 0,
                as_expected: 0,
                wrong: 0,
                unfinished: 0,
            });
            row.bookings += 1;
            let trace = || s.trace.join(", ");
            let refused = s.refused && o.scenario != OrderScenario::Reordered;
            refused_for_stock += usize::from(refused);
            let want = match o.scenario.expected() {
                _ if refused => OrderOutcome::Cancelled("out_of_stock"),
                OrderOutcome::Cancelled(r) if s.captured.is_some() => OrderOutcome::Refunded(r),
                other => other,
            };
            let got = match (s.completed.len(), s.cancelled.as_slice(), s.refunded.len()) {
                (_, [(reason, ..)], 1) => Some(format!("{}", OrderOutcome::Refunded(leak(reason)))),
                (0, [(reason, ..)], 0) => Some(format!("{}", OrderOutcome::Cancelled(leak(reason)))),
                (1, [], 0) => Some(format!("{}", OrderOutcome::Completed)),
                (0, [], 0) => None,
                _ => Some(format!(
                    "{} completed, {} cancelled, {} refunded",
                    s.completed.len(),
                    s.cancelled.len(),
                    s.refunded.len()
                )),
            };
            let mut right = got.as_deref() == Some(&want.to_string());
            match &got {
                None => {
                    row.unfinished += 1;
                    note(format!("{} ({}): no outcome; expected {want}; saw {}", o.id, o.scenario, trace()));
                }
                Some(g) if !right => note(format!("{} ({}): {g}; expected {want}; saw {}", o.id, o.scenario, trace())),
                _ => {}
            }
            // Money: the capture is the total; a refund is the capture.
            let total = o.total();
            let same = |a: &DecimalAmount| a.as_str() == total.as_str();
            let money = s.completed.iter().all(same)
                && s.refunded.iter().all(same)
                && s.captured.as_ref().is_none_or(same)
                && (s.refunded.is_empty() || s.captured.is_some());
            if !money {
                money_right = false;
                right = false;
                note(format!("{}: amounts differ from the total {}; saw {}", o.id, total.as_str(), trace()));
            }
            // Commands: at most once per step; every held reservation settled once.
            let mut dups = s.capture_requested.len().saturating_sub(1) + s.refund_requested.len().saturating_sub(1);
            for (id, r) in &s.reservations {
                dups += r.requested.len().saturating_sub(1) + r.settled.len().saturating_sub(1);
                if r.held && r.settled.is_empty() && s.ended.is_some() {
                    right = false;
                    note(format!("{}: reservation {id} held but never released or consumed; saw {}", o.id, trace()));
                }
            }
            if o.scenario == OrderScenario::Reordered && !s.reservations.is_empty() {
                right = false;
                note(format!("{}: cancelled before it arrived, yet stock was reserved", o.id));
            }
            if dups > 0 {
                duplicate_commands += dups;
                note(format!("{}: {dups} command(s) sent again with distinct ids; saw {}", o.id, trace()));
            }
            if right {
                row.as_expected += 1;
            } else if got.is_some() {
                row.wrong += 1;
            }
            if let (Some(a), Some(z), false) = (s.started, s.ended, o.scenario.timed()) {
                latencies.push(z.saturating_duration_since(a));
            }
        }
        // Stock: nothing left reserved once every order ended, and what is
        // on hand plus what the orders bought is what the product started with.
        let mut stock_conserved = true;
        let mut alerts_as_expected = true;
        let mut low_stock_alerts = 0;
        for (product, p) in &self.products {
            if p.available.is_none() {
                continue;
            }
            let initial = initial_stock(product);
            if p.reserved != 0 || p.quantity + p.sold != initial {
                stock_conserved = false;
                note(format!(
                    "{product}: started with {initial}, ends with {} on hand ({} reserved) after {} sold",
                    p.quantity, p.reserved, p.sold
                ));
            }
            let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
            for (_, level) in &p.alerts {
                *seen.entry(level).or_default() += 1;
            }
            low_stock_alerts += seen.iter().filter(|(l, _)| **l != "out_of_stock").map(|(_, n)| n).sum::<usize>();
            if seen != p.expected_alerts {
                alerts_as_expected = false;
                note(format!("{product}: alerts {seen:?}, expected one per downward crossing {:?}", p.expected_alerts));
            }
        }
        let dlq = self.dlq.summary("order", &mut note);
        latencies.sort();
        let pct = |q: f64| crate::common::percentile(&latencies, q);
        let scenarios: Vec<ScenarioRow> = rows.into_values().collect();
        let ok = scenarios.iter().all(|r| r.as_expected == r.bookings)
            && money_right
            && stock_conserved
            && alerts_as_expected
            && duplicate_commands == 0
            && dlq.missing == 0
            && dlq.unexpected == 0;
        OrderReport {
            orders: self.orders.len(),
            finished: self.orders.len() - self.unfinished(),
            scenarios,
            refused_for_stock,
            money_right,
            stock_conserved,
            products_checked: self.products.values().filter(|p| p.available.is_some()).count(),
            low_stock_alerts,
            alerts_as_expected,
            duplicate_commands,
            duplicate_events_dropped: self.duplicates,
            dlq,
            latency_p50_ms: pct(0.50),
            latency_p99_ms: pct(0.99),
            problems,
            ok,
        }
    }
}

/// The reasons the checker compares are few and static in practice; an
/// unknown one is kept as text for the report.
fn leak(reason: &str) -> &'static str {
    match reason {
        "out_of_stock" => "out_of_stock",
        "reservation_expired" => "reservation_expired",
        "payment_failed" => "payment_failed",
        "customer_request" => "customer_request",
        _ => "other",
    }
}

impl OrderReport {
    pub fn table(&self) -> String {
        let mut out = format!("\n{}", scenario_table(("order scenario", 28), ("orders", 7), &self.scenarios));
        let ms = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v} ms"));
        let yes = |b: bool| if b { "yes" } else { "NO" };
        let classes: Vec<String> = self.dlq.classes.iter().map(|(c, n)| format!("{c} {n}")).collect();
        out.push_str(&format!(
            "\norders finished     {}/{} ({} cancelled for a sold-out product)\n\
             amounts right       {}\nstock conserved     {} ({} products: initial = on hand + reserved + sold, nothing left reserved)\n\
             low-stock alerts    {} ({} once per downward crossing)\nduplicate commands  {}\n\
             order DLQ records   {} (expected {}, missing {}, unexpected {}){}\n\
             order latency       p50 {}, p99 {} (created → last fact; timer scenarios excluded)\n",
            self.finished,
            self.orders,
            self.refused_for_stock,
            yes(self.money_right),
            yes(self.stock_conserved),
            self.products_checked,
            self.low_stock_alerts,
            yes(self.alerts_as_expected),
            self.duplicate_commands,
            self.dlq.found,
            self.dlq.expected,
            self.dlq.missing,
            self.dlq.unexpected,
            if classes.is_empty() { String::new() } else { format!(": {}", classes.join(", ")) },
            ms(self.latency_p50_ms),
            ms(self.latency_p99_ms),
        ));
        for p in &self.problems {
            out.push_str(&format!("problem: {p}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::{decimal, orders, plan};
    use crate::scenario::Mix;
    use crate::shop::Shop;
    use sagastream_contract::decode;

    /// Plays one order through the real order saga's state machine and the
    /// simulated shop, feeding the checker what the topics would carry.
    fn play(scenario: &str) -> OrderReport {
        use sagastream_order_saga::OrderSaga;
        use sagastream_runtime::{Context, Processor, StateChange};
        let mix: Mix<OrderScenario> = format!("{scenario}=1").parse().unwrap();
        let (list, _) = orders("t", 1, |i| mix.pick(i));
        let o = list[0].clone();
        let mut c = OrderChecker::new("t", list, (10, 3));
        let mut shop = Shop::default();
        let saga = OrderSaga::default();
        let mut state = None;
        let mut queue: std::collections::VecDeque<Event> = plan(&o)
            .iter()
            .filter(|p| !p.poison && p.when == crate::scenario::When::Start)
            .filter_map(|p| decode(&p.record).ok().map(|d| d.event))
            .collect();
        let mut later: Vec<Event> = plan(&o)
            .iter()
            .filter(|p| p.when != crate::scenario::When::Start)
            .filter_map(|p| decode(&p.record).ok().map(|d| d.event))
            .collect();
        c.started(0, Instant::now());
        while let Some(input) = queue.pop_front() {
            if let OrderSignal::Reserved(_) | OrderSignal::Captured(_) = c.observe(&input, Instant::now(), None) {
                queue.extend(later.drain(..));
            }
            let ctx = Context { key: &o.id, partition: 0, now: chrono::Utc::now(), topic: "order.events" };
            let Ok(step) = saga.process(state.as_ref(), &input, &ctx) else { continue };
            if let StateChange::Set(s) = step.state {
                state = Some(s);
            }
            for e in step.emits {
                let out = Event::new("/sagastream/order-saga", *e.payload).with_correlation_id(o.id.clone());
                c.observe(&out, Instant::now(), None);
                for reply in shop.answer(&out).unwrap_or_default() {
                    queue.push_back(reply.event);
                }
            }
        }
        c.report()
    }

    #[test]
    fn every_order_scenario_checks_out_against_the_real_saga() {
        for s in OrderScenario::ALL {
            if s == OrderScenario::ReservationExpiry {
                continue; // needs the timer, which the end-to-end test runs
            }
            let r = play(s.name());
            assert!(r.problems.is_empty() && r.finished == 1, "{s}: {:#?}", r);
        }
    }

    #[test]
    fn a_wrong_outcome_or_a_leaked_reservation_fails_the_run() {
        let mix: Mix<OrderScenario> = "order_happy=1".parse().unwrap();
        let (list, _) = orders("t", 1, |i| mix.pick(i));
        let o = list[0].clone();
        let mut c = OrderChecker::new("t", list, (10, 3));
        let cancelled = sagastream_contract::payloads::order::OrderCancelled {
            order_id: o.id.clone(),
            cancellation_reason: "payment_failed".into(),
            cancelled_by: "system".into(),
            cancelled_at: chrono::Utc::now(),
            refund_required: false,
            refund_amount: decimal(0),
        };
        c.observe(&Event::new("/sagastream/order-saga", cancelled), Instant::now(), None);
        let r = c.report();
        assert!(!r.ok && r.problems[0].contains("expected completed"), "{:?}", r.problems);
    }
}
