//! The load generator's scenarios: what the booking service publishes for
//! each booking, which test customer pays, and the outcome the escrow saga
//! must reach (docs/simulator.md).

use std::fmt;
use std::str::FromStr;

use chrono::Utc;
use sagastream_contract::payloads::booking::*;
use sagastream_contract::payloads::payment::DisputeResolution;
use sagastream_contract::payloads::payment::PaymentEscrowHeld;
use sagastream_contract::{encode, Cents, ContentMode, Currency, Event, Header, Payload, Record};
use sagastream_escrow_saga::money::Bps;

use crate::participants::{TestCustomer, SPLIT_REQUESTER_BPS};
use crate::trips;

pub const SOURCE: &str = "/sagastream/load";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    Happy,
    CancelBeforeHold,
    CancelAfterHold,
    PaymentFailure,
    HoldTimeout,
    DisputeRefund,
    DisputeRelease,
    DisputeSplit,
    AutoConfirm,
    Duplicates,
    Reordered,
    BadInput,
}

impl Scenario {
    pub const ALL: [Scenario; 12] = [
        Scenario::Happy,
        Scenario::CancelBeforeHold,
        Scenario::CancelAfterHold,
        Scenario::PaymentFailure,
        Scenario::HoldTimeout,
        Scenario::DisputeRefund,
        Scenario::DisputeRelease,
        Scenario::DisputeSplit,
        Scenario::AutoConfirm,
        Scenario::Duplicates,
        Scenario::Reordered,
        Scenario::BadInput,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Happy => "happy",
            Scenario::CancelBeforeHold => "cancel_before_hold",
            Scenario::CancelAfterHold => "cancel_after_hold",
            Scenario::PaymentFailure => "payment_failure",
            Scenario::HoldTimeout => "hold_timeout",
            Scenario::DisputeRefund => "dispute_refund",
            Scenario::DisputeRelease => "dispute_release",
            Scenario::DisputeSplit => "dispute_split",
            Scenario::AutoConfirm => "auto_confirm",
            Scenario::Duplicates => "duplicates",
            Scenario::Reordered => "reordered",
            Scenario::BadInput => "bad_input",
        }
    }

    /// Ends by a timer (hold timeout, auto-confirm): its latency is the
    /// configured delay, not the pipeline's, so it is left out of p50/p99.
    pub fn timed(self) -> bool {
        matches!(self, Scenario::HoldTimeout | Scenario::AutoConfirm)
    }

    fn customer(self) -> Option<TestCustomer> {
        match self {
            Scenario::PaymentFailure => Some(TestCustomer::Decline),
            Scenario::HoldTimeout => Some(TestCustomer::Silent),
            Scenario::DisputeRefund => Some(TestCustomer::Dispute(DisputeResolution::RefundRequester)),
            Scenario::DisputeRelease => Some(TestCustomer::Dispute(DisputeResolution::ReleaseToAgent)),
            Scenario::DisputeSplit => Some(TestCustomer::Dispute(DisputeResolution::Split)),
            _ => None,
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Scenario, String> {
        Scenario::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            let names: Vec<_> = Scenario::ALL.iter().map(|c| c.name()).collect();
            format!("unknown scenario {s:?}; expected one of {}", names.join(", "))
        })
    }
}

/// A kind of scenario the load generator can mix: bookings or orders.
pub trait ScenarioKind: Copy + PartialEq + FromStr<Err = String> + 'static {
    const ALL: &'static [Self];
    /// Its weight in the default mix.
    fn default_weight(self) -> u32;
}

impl ScenarioKind for Scenario {
    const ALL: &'static [Scenario] = &Scenario::ALL;

    /// Every scenario, the happy path most.
    fn default_weight(self) -> u32 {
        if self == Scenario::Happy {
            23
        } else {
            7
        }
    }
}

/// Scenario weights, e.g. `happy=40,dispute_split=5`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix<S = Scenario>(pub Vec<(S, u32)>);

impl<S: ScenarioKind> Default for Mix<S> {
    fn default() -> Mix<S> {
        Mix(S::ALL.iter().map(|&s| (s, s.default_weight())).collect())
    }
}

impl<S: ScenarioKind> FromStr for Mix<S> {
    type Err = String;
    fn from_str(s: &str) -> Result<Mix<S>, String> {
        let mut mix = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) =
                part.split_once('=').ok_or_else(|| format!("{part:?}: expected scenario=weight, e.g. happy=40"))?;
            let weight: u32 =
                weight.trim().parse().map_err(|_| format!("{part:?}: weight {weight:?} is not a whole number"))?;
            mix.push((name.trim().parse()?, weight));
        }
        if mix.iter().all(|(_, w)| *w == 0) {
            return Err(format!("{s:?}: the mix needs at least one scenario with a weight above 0"));
        }
        Ok(Mix(mix))
    }
}

impl<S: ScenarioKind> Mix<S> {
    fn total(&self) -> u64 {
        self.0.iter().map(|(_, w)| *w as u64).sum()
    }

    /// The scenario of item `i`: exact proportions over every block of
    /// `total` items, spread out by a stride so neighbours differ.
    pub fn pick(&self, i: usize) -> S {
        let total = self.total();
        let stride = [7_919u64, 104_729, 1_299_709].into_iter().find(|p| !total.is_multiple_of(*p)).unwrap_or(1);
        let mut slot = (i as u64 % total) * stride % total;
        for (scenario, w) in &self.0 {
            if slot < *w as u64 {
                return *scenario;
            }
            slot -= *w as u64;
        }
        unreachable!("slot < total")
    }
}

/// One simulated booking.
#[derive(Debug, Clone, PartialEq)]
pub struct Booking {
    pub id: String,
    pub number: String,
    pub owner_id: String,
    pub runner_id: String,
    pub price: i64,
    pub currency: String,
    pub scenario: Scenario,
}

impl Booking {
    pub fn new(run: &str, i: usize, scenario: Scenario) -> Booking {
        let marker = scenario.customer().map_or("", TestCustomer::marker);
        Booking {
            id: format!("{run}-{i:06}"),
            number: format!("KLT-{i:06}"),
            owner_id: format!("own-{:05}{marker}", i % 10_007),
            runner_id: format!("run-{:03}", i % 97),
            // Odd amounts on purpose: fees and splits must round.
            price: 1_000 + (i as i64 * 7_919) % 99_001,
            currency: ["USD", "EUR", "IDR"][i % 3].to_owned(),
            scenario,
        }
    }
}

/// The outcome the saga must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Completed { payout: i64, fee: i64, refunded: i64 },
    Cancelled { refunded: i64 },
    Compensated { refunded: i64 },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Completed { payout, fee, refunded } => {
                write!(f, "completed (payout {payout}, fee {fee}, refunded {refunded})")
            }
            Outcome::Cancelled { refunded } => write!(f, "cancelled (refunded {refunded})"),
            Outcome::Compensated { refunded } => write!(f, "compensated (refunded {refunded})"),
        }
    }
}

/// The checker's own arithmetic for docs/escrow-saga.md's money rules,
/// written apart from the saga's `money` module on purpose: a rounding bug
/// there must show as a wrong payout here, not be reproduced. `share` is
/// `amount × bps / 10000` rounded down; a release pays the fee share to the
/// platform and the rest to the runner.
fn share(amount: i64, bps: u32) -> i64 {
    let exact = i128::from(amount) * i128::from(bps);
    i64::try_from(exact.div_euclid(10_000)).expect("a share is at most the amount")
}

/// (runner payout, platform fee) of releasing `amount`.
fn release_of(amount: i64, fee: Bps) -> (i64, i64) {
    let platform = share(amount, fee.get());
    (amount - platform, platform)
}

pub fn expected(b: &Booking, fee: Bps) -> Outcome {
    let (payout, platform) = release_of(b.price, fee);
    match b.scenario {
        Scenario::Happy
        | Scenario::AutoConfirm
        | Scenario::Duplicates
        | Scenario::Reordered
        | Scenario::DisputeRelease
        | Scenario::BadInput => Outcome::Completed { payout, fee: platform, refunded: 0 },
        Scenario::CancelBeforeHold => Outcome::Cancelled { refunded: 0 },
        Scenario::CancelAfterHold => Outcome::Cancelled { refunded: b.price },
        Scenario::PaymentFailure | Scenario::HoldTimeout => Outcome::Compensated { refunded: 0 },
        Scenario::DisputeRefund => Outcome::Completed { payout: 0, fee: 0, refunded: b.price },
        Scenario::DisputeSplit => {
            // The requester's share rounded down; the agent gets the rest
            // (the odd cent included), and the fee comes out of the agent's part.
            let refund = share(b.price, SPLIT_REQUESTER_BPS);
            let (payout, platform) = release_of(b.price - refund, fee);
            Outcome::Completed { payout, fee: platform, refunded: refund }
        }
    }
}

/// When the load generator sends a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// With the booking's start.
    Start,
    /// Once the load generator has seen `payment.escrow_held` for the booking.
    AfterHeld,
    /// Once it has seen the inventory service reserve every line of the order.
    AfterReserved,
    /// Once it has seen the payment service capture the order's payment.
    AfterCaptured,
    /// Once it has seen the tracking processor start the booking's trip.
    AfterTrackingStarted,
    /// Once it has seen the tracking processor place every fix of the trip.
    AfterTracked,
}

/// A record the load generator sends (topic by its `topics.yaml` name).
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub topic: &'static str,
    pub record: Record,
    pub when: When,
    /// Deliberately bad: must end in the DLQ.
    pub poison: bool,
}

fn event(b: &Booking, payload: impl Into<Payload>) -> Event {
    Event::new(SOURCE, payload).with_correlation_id(format!("corr-{}", b.id))
}

fn send(e: &Event) -> Planned {
    let record = encode(e, ContentMode::Binary).expect("catalog events encode");
    Planned { topic: e.event_type().topic(), record, when: When::Start, poison: false }
}

/// The booking service's facts for `b`, in the order it publishes them,
/// with the scenario's duplicates, reorderings and bad records.
pub fn plan(b: &Booking) -> Vec<Planned> {
    plan_trip(b, None)
}

/// [`plan`], with a happy booking driven as trip `trip` (the runner's
/// records, docs/simulator.md "Trips") when it is given.
pub fn plan_trip(b: &Booking, trip: Option<usize>) -> Vec<Planned> {
    let now = Utc::now();
    let currency = Currency::new(b.currency.clone()).expect("ISO codes");
    let requested = event(
        b,
        BookingRequested {
            booking_id: b.id.clone(),
            booking_number: b.number.clone(),
            owner_id: b.owner_id.clone(),
            pet_type: "dog".into(),
            pet_name: "Biscuit".into(),
            pickup_lat: -6.2,
            pickup_lng: 106.8,
            dropoff_lat: -6.25,
            dropoff_lng: 106.85,
            estimated_price_cents: Cents::new(b.price).expect("positive"),
            currency,
            occurred_at: now,
        },
    );
    let parties = BookingParties {
        booking_id: b.id.clone(),
        booking_number: b.number.clone(),
        owner_id: b.owner_id.clone(),
        runner_id: b.runner_id.clone(),
    };
    let accepted = event(b, parties.accepted(now));
    let picked_up = event(b, parties.picked_up(now));
    let in_delivery = || event(b, parties.in_delivery(now, now));
    let confirmed = event(b, parties.confirmed(now, now));
    let cancelled = event(
        b,
        BookingCancelled {
            booking_id: b.id.clone(),
            booking_number: b.number.clone(),
            cancelled_by: "owner".into(),
            reason: "changed plans".into(),
            occurred_at: now,
        },
    );
    let delivered =
        || vec![send(&requested), send(&accepted), send(&picked_up), send(&in_delivery()), send(&confirmed)];
    match b.scenario {
        Scenario::Happy if trip.is_some() => {
            // The runner drives the known path; the pickup and delivery wait
            // until every fix is placed, and come after the last one in time.
            let i = trip.expect("checked by the guard");
            let (fixes, goodbye) = trips::runner_records(i, b, now);
            let end = trips::fix_time(now, trips::FIXES);
            let later = |e: Event| Planned { when: When::AfterTracked, ..send(&e.with_time(end)) };
            let mut records = vec![fixes[0].clone(), send(&requested), send(&accepted)];
            records.extend(fixes.into_iter().skip(1));
            records.push(later(event(b, parties.picked_up(end))));
            records.push(later(event(b, parties.in_delivery(end, end))));
            records.push(later(event(b, parties.confirmed(end, end))));
            records.push(goodbye);
            records
        }
        Scenario::Happy => delivered(),
        Scenario::CancelBeforeHold => vec![send(&requested), send(&cancelled)],
        Scenario::CancelAfterHold => {
            vec![send(&requested), send(&accepted), Planned { when: When::AfterHeld, ..send(&cancelled) }]
        }
        Scenario::PaymentFailure | Scenario::HoldTimeout => vec![send(&requested), send(&accepted)],
        // Stops at pickup: the dispute, opened after the hold, decides.
        Scenario::DisputeRefund | Scenario::DisputeRelease | Scenario::DisputeSplit => {
            vec![send(&requested), send(&accepted), send(&picked_up)]
        }
        Scenario::AutoConfirm => vec![send(&requested), send(&accepted), send(&picked_up), send(&in_delivery())],
        Scenario::Duplicates => vec![
            send(&requested),
            send(&requested),
            send(&accepted),
            send(&accepted),
            send(&picked_up),
            send(&in_delivery()),
            // The same fact again under a new id (a producer retry without idempotence).
            send(&in_delivery()),
            send(&confirmed),
            send(&confirmed),
        ],
        Scenario::Reordered => {
            vec![send(&accepted), send(&requested), send(&in_delivery()), send(&picked_up), send(&confirmed)]
        }
        Scenario::BadInput => {
            let mut records = delivered();
            // Before the acceptance: a hold the saga never asked for, in the
            // wrong amount and currency.
            let wrong = Currency::new(if b.currency == "USD" { "EUR" } else { "USD" }).expect("ISO code");
            let bogus = event(
                b,
                PaymentEscrowHeld {
                    payment_id: format!("forged-{}", b.id),
                    booking_id: b.id.clone(),
                    stripe_payment_id: "pi_forged".into(),
                    amount_cents: Cents::new(b.price + 1).expect("positive"),
                    currency: wrong,
                    occurred_at: now,
                    owner_id: None,
                },
            );
            records.insert(1, Planned { poison: true, ..send(&bogus) });
            // Before the pickup: bytes that are not a CloudEvent.
            let garbage = Record {
                key: Some(b.id.as_bytes().to_vec()),
                value: Some(b"{\"this is\": not json".to_vec()),
                headers: vec![Header { name: "content-type".into(), value: Some(b"application/json".to_vec()) }],
            };
            records.insert(3, Planned { topic: "booking.events", record: garbage, when: When::Start, poison: true });
            records
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_picks_in_proportion() {
        let mix: Mix = "happy=3, dispute_split=1".parse().unwrap();
        let picks: Vec<_> = (0..400).map(|i| mix.pick(i)).collect();
        assert_eq!(picks.iter().filter(|s| **s == Scenario::Happy).count(), 300);
        assert!("happy".parse::<Mix>().unwrap_err().contains("scenario=weight"));
        assert!("sad=1".parse::<Mix>().unwrap_err().contains("unknown scenario"));
        assert!("happy=0".parse::<Mix>().unwrap_err().contains("at least one"));
        let default = Mix::<Scenario>::default();
        let n = default.total() as usize;
        for s in Scenario::ALL {
            assert!((0..n).any(|i| default.pick(i) == s), "{s} is in the default mix");
        }
    }

    #[test]
    fn bad_input_plans_exactly_two_poison_records() {
        let b = Booking::new("r", 5, Scenario::BadInput);
        let p = plan(&b);
        assert_eq!(p.iter().filter(|r| r.poison).count(), 2);
        assert_eq!(p.iter().filter(|r| !r.poison).count(), 5);
        for s in Scenario::ALL.into_iter().filter(|s| *s != Scenario::BadInput) {
            assert!(plan(&Booking::new("r", 1, s)).iter().all(|r| !r.poison), "{s}");
        }
    }

    /// Figures worked out by hand, so the checker's arithmetic is pinned to
    /// the documented rules and not to any code.
    #[test]
    fn the_checkers_money_matches_hand_worked_figures() {
        let fee = Bps::new(1_500).unwrap();
        // 15 % of 4,501 is 675.15: the fee rounds down to 675.
        assert_eq!(release_of(4_501, fee), (3_826, 675));
        assert_eq!(release_of(1, fee), (1, 0));
        assert_eq!(share(99_999, 10_000), 99_999);
        // A booking whose price is 1,000 + 10 × 7,919 = 80,190 (booking 10).
        let b = Booking::new("r", 10, Scenario::DisputeSplit);
        assert_eq!(b.price, 80_190);
        // 40 % to the requester: 32,076; the agent's 48,114 pays 15 %
        // (7,217.1, so 7,217) to the platform and 40,897 to the runner.
        assert_eq!(SPLIT_REQUESTER_BPS, 4_000);
        assert_eq!(expected(&b, fee), Outcome::Completed { payout: 40_897, fee: 7_217, refunded: 32_076 });
    }

    #[test]
    fn expectations_add_up_to_the_price() {
        let fee = Bps::new(1_500).unwrap();
        for s in Scenario::ALL {
            let b = Booking::new("r", 17, s);
            let total = match expected(&b, fee) {
                Outcome::Completed { payout, fee, refunded } => payout + fee + refunded,
                Outcome::Cancelled { refunded } | Outcome::Compensated { refunded } => refunded,
            };
            let price_involved =
                !matches!(s, Scenario::CancelBeforeHold | Scenario::PaymentFailure | Scenario::HoldTimeout);
            assert_eq!(total, if price_involved { b.price } else { 0 }, "{s}");
        }
        assert!(Booking::new("r", 3, Scenario::PaymentFailure).owner_id.ends_with("+decline"));
    }
}
