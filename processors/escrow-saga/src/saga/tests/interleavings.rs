//! Every order in which the topics, the timers and redeliveries can reach
//! the saga, for each scenario: each ends in its outcome.

use super::*;

// --- every interleaving of every scenario -------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
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
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Completed { payout: i64, fee: i64, refunded: i64 },
    Cancelled { refunded: i64 },
    Compensated { refunded: i64 },
}

impl Scenario {
    const ALL: [Scenario; 11] = [
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
    ];

    /// What the booking service publishes, in order.
    fn booking_script(self) -> Vec<Payload> {
        use Scenario::*;
        match self {
            Happy => vec![requested(), accepted(), picked_up(), in_delivery(), confirmed()],
            CancelBeforeHold => vec![requested(), cancelled()],
            CancelAfterHold => vec![requested(), accepted(), cancelled()],
            PaymentFailure | HoldTimeout => vec![requested(), accepted(), picked_up()],
            DisputeRefund | DisputeRelease | DisputeSplit | AutoConfirm => {
                vec![requested(), accepted(), picked_up(), in_delivery()]
            }
            Duplicates => vec![
                requested(),
                requested(),
                accepted(),
                accepted(),
                picked_up(),
                in_delivery(),
                in_delivery(),
                confirmed(),
                confirmed(),
            ],
            Reordered => vec![accepted(), requested(), in_delivery(), picked_up(), confirmed()],
        }
    }

    fn expected(self) -> Outcome {
        use Scenario::*;
        match self {
            Happy | AutoConfirm | Duplicates | Reordered | DisputeRelease => {
                Outcome::Completed { payout: PAYOUT, fee: FEE, refunded: 0 }
            }
            CancelBeforeHold => Outcome::Cancelled { refunded: 0 },
            CancelAfterHold => Outcome::Cancelled { refunded: PRICE },
            PaymentFailure | HoldTimeout => Outcome::Compensated { refunded: 0 },
            DisputeRefund => Outcome::Completed { payout: 0, fee: 0, refunded: PRICE },
            // 50/50 of 4501: 2250 back, 2251 released, fee 225.
            DisputeSplit => Outcome::Completed { payout: 2_026, fee: 225, refunded: 2_250 },
        }
    }
}

/// The world around the saga: the booking service's script and the payment
/// service, which answers every command in order.
#[derive(Debug, Clone)]
struct World {
    scenario: Scenario,
    run: Run,
    booking: Vec<Payload>,
    payment: Vec<Payload>,
    answered: usize,
    stuck_fired: bool,
    /// The last fact delivered, which an at-least-once producer may send
    /// again with a new id (once per path, to keep the search finite).
    last: Option<Payload>,
    redelivered: bool,
}

impl World {
    fn new(scenario: Scenario) -> World {
        let mut booking = scenario.booking_script();
        booking.reverse();
        World {
            scenario,
            run: Run::default(),
            booking,
            payment: Vec::new(),
            answered: 0,
            stuck_fired: false,
            last: None,
            redelivered: false,
        }
    }

    /// The participants answer the commands emitted since the last call.
    fn answer(&mut self) {
        use Scenario::*;
        let new: Vec<Payload> = self.run.emitted[self.answered..].to_vec();
        self.answered = self.run.emitted.len();
        for p in new {
            let mut replies: Vec<Payload> = match (&p, self.scenario) {
                (Payload::PaymentEscrowHoldRequested(_), HoldTimeout) => vec![],
                (Payload::PaymentEscrowHoldRequested(_), PaymentFailure) => vec![created(), failed()],
                (Payload::PaymentEscrowHoldRequested(_), DisputeRefund) => {
                    vec![created(), held(), opened(), resolved(DisputeResolution::RefundRequester, None)]
                }
                (Payload::PaymentEscrowHoldRequested(_), DisputeRelease) => {
                    vec![created(), held(), opened(), resolved(DisputeResolution::ReleaseToAgent, None)]
                }
                (Payload::PaymentEscrowHoldRequested(_), DisputeSplit) => {
                    vec![created(), held(), opened(), resolved(DisputeResolution::Split, Some((5_000, 5_000)))]
                }
                (Payload::PaymentEscrowHoldRequested(_), _) => vec![created(), held()],
                (Payload::PaymentEscrowReleaseRequested(r), _) => {
                    vec![released(r.runner_payout_cents.get(), r.platform_fee_cents.get())]
                }
                (Payload::PaymentEscrowRefundRequested(r), _) => vec![refunded(r.amount_cents.get())],
                (Payload::BookingCancelRequested(_), _) => {
                    self.booking.insert(0, cancelled());
                    vec![]
                }
                _ => vec![],
            };
            replies.reverse();
            // The payment topic is in order; new replies queue behind the old.
            replies.extend(std::mem::take(&mut self.payment));
            self.payment = replies;
        }
    }

    /// The timers the scenario lets fire (wall-clock timers can come due
    /// between any two inputs).
    fn may_fire(&self, name: &str) -> bool {
        match name {
            HOLD_TIMEOUT => self.scenario == Scenario::HoldTimeout,
            AUTO_CONFIRM => self.scenario == Scenario::AutoConfirm,
            SETTLE_STUCK => !self.stuck_fired,
            _ => false,
        }
    }
}

impl sagastream_runtime::testing::World for World {
    fn check(&self, path: &[String]) {
        check_outcome(self, path);
    }

    fn choices(&self) -> Vec<usize> {
        let mut c = Vec::new();
        if !self.booking.is_empty() {
            c.push(0);
        }
        if !self.payment.is_empty() {
            c.push(1);
        }
        for (i, name) in [HOLD_TIMEOUT, AUTO_CONFIRM, SETTLE_STUCK].iter().enumerate() {
            if self.run.timers.contains_key(*name) && self.may_fire(name) {
                c.push(2 + i);
            }
        }
        if self.last.is_some() && !self.redelivered {
            c.push(5);
        }
        c
    }

    fn step(&mut self, choice: usize) -> String {
        let result = match choice {
            0 | 1 => {
                let p = if choice == 0 { self.booking.pop() } else { self.payment.pop() }.unwrap();
                self.last = Some(p.clone());
                (p.event_type().to_string(), self.run.feed(p))
            }
            5 => {
                self.redelivered = true;
                let p = self.last.clone().unwrap();
                (format!("{} again", p.event_type()), self.run.feed(p))
            }
            n => {
                let name = [HOLD_TIMEOUT, AUTO_CONFIRM, SETTLE_STUCK][n - 2];
                self.stuck_fired |= name == SETTLE_STUCK;
                (format!("timer {name}"), self.run.fire(name))
            }
        };
        if let (name, Err(r)) = &result {
            panic!("{:?}: {name} rejected: {r}", self.scenario);
        }
        self.answer();
        result.0
    }
}

fn check_outcome(world: &World, path: &[String]) {
    let run = &world.run;
    let s = run.s();
    let terminal: Vec<&Payload> = run
        .emitted
        .iter()
        .filter(|p| {
            matches!(
                p,
                Payload::EscrowSagaCompleted(_) | Payload::EscrowSagaCancelled(_) | Payload::EscrowSagaCompensated(_)
            )
        })
        .collect();
    assert_eq!(terminal.len(), 1, "{:?} {path:?}: one terminal fact, got {terminal:?}", world.scenario);
    let got = match terminal[0] {
        Payload::EscrowSagaCompleted(x) => Outcome::Completed {
            payout: x.runner_payout_cents.get(),
            fee: x.platform_fee_cents.get(),
            refunded: x.refunded_cents.get(),
        },
        Payload::EscrowSagaCancelled(x) => Outcome::Cancelled { refunded: x.refunded_cents.get() },
        Payload::EscrowSagaCompensated(x) => Outcome::Compensated { refunded: x.refunded_cents.get() },
        _ => unreachable!(),
    };
    assert_eq!(got, world.scenario.expected(), "{:?} {path:?}", world.scenario);
    // Money is conserved and every command was sent at most once.
    assert!(s.done, "{:?} {path:?}", world.scenario);
    assert_eq!(s.ledger.released + s.ledger.refunded, s.ledger.held, "{:?} {path:?}", world.scenario);
    for t in [
        T::PaymentEscrowHoldRequested,
        T::PaymentEscrowReleaseRequested,
        T::PaymentEscrowRefundRequested,
        T::BookingCancelRequested,
    ] {
        assert!(run.count(t) <= 1, "{:?} {path:?}: {t} sent {} times", world.scenario, run.count(t));
    }
    assert_eq!(run.count(T::BookingCompleted), usize::from(s.ledger.released > 0));
    assert_eq!(run.count(T::EscrowSagaStarted), 1);
    assert_eq!(run.timers.keys().collect::<Vec<_>>(), vec![PURGE], "{:?} {path:?}", world.scenario);
    for p in &run.emitted {
        if let Payload::EscrowSagaStateChanged(x) = p {
            assert_eq!(x.owner_id.as_deref(), Some("own-1"), "{:?} {path:?}: owner on every fact", world.scenario);
        }
    }
}

#[test]
fn every_interleaving_of_every_scenario_ends_in_its_outcome() {
    let mut total = 0;
    for scenario in Scenario::ALL {
        let paths = sagastream_runtime::testing::explore(World::new(scenario));
        assert!(paths > 1 || scenario == Scenario::CancelBeforeHold, "{scenario:?}: {paths} interleavings");
        total += paths;
    }
    assert!(total > 2_000, "{total} interleavings explored");
}
