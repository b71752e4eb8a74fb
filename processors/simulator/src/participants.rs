//! The booking service and the payment service as the escrow saga sees
//! them: each command gets the answers a real service would give, in order,
//! after a latency. Pure: the Kafka loop (`serve`) only moves records.
//!
//! What the payment service does with a hold is decided like a payment
//! provider's sandbox decides with test cards: by the customer. An
//! `owner_id` ending in one of the [`TestCustomer`] markers always gets that
//! behaviour; any other owner gets a hold, declined or disputed at the
//! configured random rates (deterministic per booking).

use chrono::Utc;
use sagastream_contract::payloads::booking::BookingCancelled;
use sagastream_contract::payloads::payment::{
    DisputeOpened, DisputeResolution, DisputeResolved, PaymentEscrowCreated, PaymentEscrowHeld, PaymentEscrowRefunded,
    PaymentEscrowReleased, PaymentFailed,
};
use sagastream_contract::{Event, Payload};
use uuid::Uuid;

/// Namespace of the simulator's reply ids: a redelivered command gets
/// byte-identical answers that the saga de-duplicates by id.
const NAMESPACE: Uuid = Uuid::from_u128(0x51a1_7e55_0c1d_4e0b_8b6e_93f1_0a2c_44d7);

pub const SOURCE: &str = "/sagastream/simulator";

/// What the payment service does with a hold request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestCustomer {
    /// Created, then held.
    Hold,
    /// Created, then `payment.failed` (card declined).
    Decline,
    /// Never answers (the saga's hold timeout compensates).
    Silent,
    /// Held, then the owner opens a dispute that is resolved this way.
    Dispute(DisputeResolution),
}

impl TestCustomer {
    pub const MARKERS: [(&'static str, TestCustomer); 5] = [
        ("+decline", TestCustomer::Decline),
        ("+silent", TestCustomer::Silent),
        ("+dispute-refund", TestCustomer::Dispute(DisputeResolution::RefundRequester)),
        ("+dispute-release", TestCustomer::Dispute(DisputeResolution::ReleaseToAgent)),
        ("+dispute-split", TestCustomer::Dispute(DisputeResolution::Split)),
    ];

    pub fn of(owner_id: &str) -> Option<TestCustomer> {
        Self::MARKERS.iter().find(|(m, _)| owner_id.ends_with(m)).map(|(_, c)| *c)
    }

    pub fn marker(self) -> &'static str {
        Self::MARKERS.iter().find(|(_, c)| *c == self).map_or("", |(m, _)| m)
    }
}

/// The requester's share of a simulated split, in basis points.
pub const SPLIT_REQUESTER_BPS: u32 = 4_000;

/// Random behaviour for owners without a marker.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rates {
    /// Fraction of holds declined, 0.0..=1.0.
    pub failure: f64,
    /// Fraction of held escrows disputed, 0.0..=1.0.
    pub dispute: f64,
}

/// What the payment service holds per booking: like a real payment provider,
/// it never releases or refunds more than it holds, whatever the commands
/// say. A command that would is refused (no answer) and reported.
#[derive(Debug, Default)]
pub struct PaymentBook {
    held: std::collections::HashMap<String, (i64, i64)>,
}

impl PaymentBook {
    /// Admits a command and books its effect, or says why it is refused.
    pub fn admit(&mut self, command: &Event, rates: Rates) -> Result<(), String> {
        match &command.data {
            Payload::PaymentEscrowHoldRequested(h) => {
                if matches!(
                    hold_behaviour(&h.owner_id, &h.booking_id, rates),
                    TestCustomer::Hold | TestCustomer::Dispute(_)
                ) {
                    self.held.entry(h.booking_id.clone()).or_insert((h.amount_cents.get(), 0));
                }
                Ok(())
            }
            Payload::PaymentEscrowReleaseRequested(r) => self.take(&r.booking_id, r.amount_cents.get(), "release"),
            Payload::PaymentEscrowRefundRequested(r) => self.take(&r.booking_id, r.amount_cents.get(), "refund"),
            _ => Ok(()),
        }
    }

    fn take(&mut self, booking: &str, amount: i64, what: &str) -> Result<(), String> {
        let Some((held, moved)) = self.held.get_mut(booking) else {
            return Err(format!("{what} of {amount} for {booking}: nothing held"));
        };
        if *moved + amount > *held {
            return Err(format!("{what} of {amount} for {booking}: only {} of {held} left", *held - *moved));
        }
        *moved += amount;
        Ok(())
    }
}

/// One answer: sent `after` latency units once the command is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub after: u32,
    pub event: Event,
}

/// A uniform draw in [0, 1) that depends only on the booking and the purpose.
fn draw(booking_id: &str, purpose: &str) -> f64 {
    let id = Uuid::new_v5(&NAMESPACE, format!("{purpose}\n{booking_id}").as_bytes());
    (id.as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

pub fn hold_behaviour(owner_id: &str, booking_id: &str, rates: Rates) -> TestCustomer {
    if let Some(c) = TestCustomer::of(owner_id) {
        return c;
    }
    if draw(booking_id, "failure") < rates.failure {
        return TestCustomer::Decline;
    }
    if draw(booking_id, "dispute") < rates.dispute {
        let r = match (draw(booking_id, "resolution") * 3.0) as u8 {
            0 => DisputeResolution::RefundRequester,
            1 => DisputeResolution::ReleaseToAgent,
            _ => DisputeResolution::Split,
        };
        return TestCustomer::Dispute(r);
    }
    TestCustomer::Hold
}

/// The answers to one command, with deterministic ids.
pub fn answer(command: &Event, rates: Rates) -> Vec<Reply> {
    let now = Utc::now();
    let payloads: Vec<(u32, Payload)> = match &command.data {
        Payload::PaymentEscrowHoldRequested(h) => {
            let payment_id = format!("pay-{}", h.booking_id);
            let created = PaymentEscrowCreated {
                payment_id: payment_id.clone(),
                booking_id: h.booking_id.clone(),
                owner_id: h.owner_id.clone(),
                amount_cents: h.amount_cents,
                currency: h.currency.clone(),
                occurred_at: now,
            };
            let held = PaymentEscrowHeld {
                payment_id: payment_id.clone(),
                booking_id: h.booking_id.clone(),
                stripe_payment_id: format!("pi_{}", h.booking_id),
                amount_cents: h.amount_cents,
                currency: h.currency.clone(),
                occurred_at: now,
                owner_id: Some(h.owner_id.clone()),
            };
            match hold_behaviour(&h.owner_id, &h.booking_id, rates) {
                TestCustomer::Silent => vec![],
                TestCustomer::Hold => vec![(0, created.into()), (1, held.into())],
                TestCustomer::Decline => vec![
                    (0, created.into()),
                    (
                        1,
                        PaymentFailed {
                            payment_id,
                            booking_id: h.booking_id.clone(),
                            reason: "card_declined".into(),
                            occurred_at: now,
                            owner_id: Some(h.owner_id.clone()),
                        }
                        .into(),
                    ),
                ],
                TestCustomer::Dispute(resolution) => {
                    let dispute_id = format!("dsp-{}", h.booking_id);
                    let split = resolution == DisputeResolution::Split;
                    vec![
                        (0, created.into()),
                        (1, held.into()),
                        (
                            2,
                            DisputeOpened {
                                dispute_id: dispute_id.clone(),
                                booking_id: h.booking_id.clone(),
                                opened_by: h.owner_id.clone(),
                                reason: Some("pet arrived late".into()),
                                occurred_at: now,
                            }
                            .into(),
                        ),
                        (
                            3,
                            DisputeResolved {
                                dispute_id,
                                booking_id: h.booking_id.clone(),
                                resolution,
                                ratio_requester_bps: split.then_some(SPLIT_REQUESTER_BPS),
                                ratio_agent_bps: split.then_some(10_000 - SPLIT_REQUESTER_BPS),
                                occurred_at: now,
                            }
                            .into(),
                        ),
                    ]
                }
            }
        }
        Payload::PaymentEscrowReleaseRequested(r) => vec![(
            0,
            PaymentEscrowReleased {
                payment_id: r.payment_id.clone(),
                booking_id: r.booking_id.clone(),
                runner_id: r.runner_id.clone(),
                runner_payout_cents: r.runner_payout_cents,
                platform_fee_cents: r.platform_fee_cents,
                currency: r.currency.clone(),
                occurred_at: now,
            }
            .into(),
        )],
        Payload::PaymentEscrowRefundRequested(r) => vec![(
            0,
            PaymentEscrowRefunded {
                payment_id: r.payment_id.clone(),
                booking_id: r.booking_id.clone(),
                owner_id: r.owner_id.clone(),
                amount_cents: r.amount_cents,
                currency: r.currency.clone(),
                refund_reason: r.reason.clone(),
                occurred_at: now,
            }
            .into(),
        )],
        Payload::BookingCancelRequested(c) => vec![(
            0,
            BookingCancelled {
                booking_id: c.booking_id.clone(),
                booking_number: c.booking_number.clone(),
                cancelled_by: "system".into(),
                reason: c.reason.clone(),
                occurred_at: now,
            }
            .into(),
        )],
        _ => vec![],
    };
    payloads
        .into_iter()
        .enumerate()
        .map(|(index, (after, payload))| {
            let id = Uuid::new_v5(&NAMESPACE, format!("{}\n{index}", command.id).as_bytes());
            let mut event = Event::new(SOURCE, payload).with_id(id.to_string());
            event.correlationid = command.correlationid.clone();
            Reply { after, event }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagastream_contract::payloads::commands::{BookingCancelRequested, PaymentEscrowHoldRequested};
    use sagastream_contract::{Cents, Currency, EventType};

    fn hold(owner: &str) -> Event {
        Event::new(
            "/t",
            PaymentEscrowHoldRequested {
                booking_id: "bk-1".into(),
                booking_number: "KLT-1".into(),
                owner_id: owner.into(),
                runner_id: "run-1".into(),
                amount_cents: Cents::new(100).unwrap(),
                currency: Currency::new("USD").unwrap(),
                occurred_at: Utc::now(),
            },
        )
        .with_correlation_id("corr-1")
    }

    fn types(replies: &[Reply]) -> Vec<EventType> {
        replies.iter().map(|r| r.event.event_type()).collect()
    }

    #[test]
    fn test_customers_decide_the_payment_outcome() {
        let none = Rates::default();
        assert_eq!(
            types(&answer(&hold("own-1"), none)),
            vec![EventType::PaymentEscrowCreated, EventType::PaymentEscrowHeld]
        );
        assert_eq!(
            types(&answer(&hold("own-1+decline"), none)),
            vec![EventType::PaymentEscrowCreated, EventType::PaymentFailed]
        );
        assert!(answer(&hold("own-1+silent"), none).is_empty());
        let dispute = answer(&hold("own-1+dispute-split"), none);
        assert_eq!(dispute.iter().map(|r| r.after).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        let Payload::DisputeResolved(r) = &dispute[3].event.data else { panic!() };
        assert_eq!((r.ratio_requester_bps, r.ratio_agent_bps), (Some(4_000), Some(6_000)));
        for (marker, customer) in TestCustomer::MARKERS {
            assert_eq!(TestCustomer::of(&format!("x{marker}")), Some(customer));
            assert_eq!(customer.marker(), marker);
        }
    }

    #[test]
    fn answers_are_deterministic_and_keep_the_correlation() {
        let cmd = hold("own-1");
        let a = answer(&cmd, Rates::default());
        let b = answer(&cmd, Rates::default());
        assert_eq!(
            a.iter().map(|r| &r.event.id).collect::<Vec<_>>(),
            b.iter().map(|r| &r.event.id).collect::<Vec<_>>()
        );
        assert_ne!(a[0].event.id, a[1].event.id);
        assert_eq!(a[0].event.correlationid.as_deref(), Some("corr-1"));
        let cancel = Event::new(
            "/t",
            BookingCancelRequested {
                booking_id: "bk-1".into(),
                booking_number: "KLT-1".into(),
                reason: "payment_failed".into(),
                occurred_at: Utc::now(),
            },
        );
        assert_eq!(types(&answer(&cancel, Rates::default())), vec![EventType::BookingCancelled]);
    }

    #[test]
    fn the_payment_service_never_pays_out_more_than_it_holds() {
        use sagastream_contract::payloads::commands::PaymentEscrowRefundRequested;
        let mut book = PaymentBook::default();
        let refund = || {
            Event::new(
                "/t",
                PaymentEscrowRefundRequested {
                    booking_id: "bk-1".into(),
                    payment_id: "pay-bk-1".into(),
                    owner_id: "own-1".into(),
                    amount_cents: Cents::new(100).unwrap(),
                    currency: Currency::new("USD").unwrap(),
                    reason: "booking_cancelled".into(),
                    occurred_at: Utc::now(),
                },
            )
        };
        assert!(book.admit(&refund(), Rates::default()).unwrap_err().contains("nothing held"));
        book.admit(&hold("own-1"), Rates::default()).unwrap();
        book.admit(&refund(), Rates::default()).unwrap();
        assert!(book.admit(&refund(), Rates::default()).unwrap_err().contains("only 0 of 100 left"));
        let mut declined = PaymentBook::default();
        declined.admit(&hold("own-1+decline"), Rates::default()).unwrap();
        assert!(declined.admit(&refund(), Rates::default()).is_err(), "a declined hold holds nothing");
    }

    #[test]
    fn random_rates_are_roughly_honoured_and_stable() {
        let rates = Rates { failure: 0.2, dispute: 0.1 };
        let n = 10_000;
        let declined =
            (0..n).filter(|i| hold_behaviour("own", &format!("bk-{i}"), rates) == TestCustomer::Decline).count();
        assert!((1_700..2_300).contains(&declined), "{declined}");
        let disputed = (0..n)
            .filter(|i| matches!(hold_behaviour("own", &format!("bk-{i}"), rates), TestCustomer::Dispute(_)))
            .count();
        assert!((600..1_000).contains(&disputed), "{disputed}");
        assert_eq!(hold_behaviour("own", "bk-7", rates), hold_behaviour("own", "bk-7", rates));
        assert_eq!(hold_behaviour("own", "bk-7", Rates::default()), TestCustomer::Hold);
    }
}
