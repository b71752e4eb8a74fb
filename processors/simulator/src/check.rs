//! The outcome checker: everything the load generator observes, folded per
//! booking, and the verdict (the escrow saga's acceptance, in code). Pure: the
//! Kafka loop feeds it events and DLQ headers.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use sagastream_contract::{Event, EventType, Payload, Record};
use sagastream_escrow_saga::money::Bps;

use crate::common::{percentile, DlqLedger, Position, ScenarioRow};
pub use crate::report::Report;
use crate::scenario::{expected, Booking, Outcome, Scenario};

/// What was seen of one booking.
#[derive(Debug, Default)]
struct Seen {
    terminal: Vec<Outcome>,
    /// Command type → distinct event ids.
    commands: BTreeMap<EventType, BTreeSet<String>>,
    held: i64,
    released: i64,
    refunded: i64,
    booking_completed: usize,
    started: Option<Instant>,
    ended: Option<Instant>,
    /// Every event type seen for the booking, in order: what a problem
    /// report shows for a booking that went wrong.
    trace: Vec<String>,
}

/// What an observed event meant to the load generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signal {
    Held,
    Ended,
    #[default]
    Other,
}

pub struct Checker {
    fee: Bps,
    bookings: Vec<Booking>,
    index: HashMap<String, usize>,
    seen: Vec<Seen>,
    ids: HashSet<String>,
    dlq: DlqLedger,
    pub duplicates: usize,
    /// Of those, the saga's own outputs (commands, saga facts) seen twice
    /// with one id: a record of an aborted transaction made visible.
    pub duplicate_outputs: usize,
}

const MAX_PROBLEMS: usize = 30;

impl Checker {
    pub fn new(bookings: Vec<Booking>, fee: Bps) -> Checker {
        let index = bookings.iter().enumerate().map(|(i, b)| (b.id.clone(), i)).collect();
        let seen = bookings.iter().map(|_| Seen::default()).collect();
        Checker {
            fee,
            bookings,
            index,
            seen,
            ids: HashSet::new(),
            dlq: DlqLedger::default(),
            duplicates: 0,
            duplicate_outputs: 0,
        }
    }

    pub fn bookings(&self) -> &[Booking] {
        &self.bookings
    }

    pub fn started(&mut self, booking: usize, at: Instant) {
        self.seen[booking].started = Some(at);
    }

    pub fn poison_sent(&mut self, position: Position) {
        self.dlq.sent(position);
    }

    pub fn index_of(&self, booking_id: &str) -> Option<usize> {
        self.index.get(booking_id).copied()
    }

    pub fn is_ended(&self, booking: usize) -> bool {
        self.seen[booking].ended.is_some()
    }

    /// Folds one event in; events of other runs and repeated ids are skipped.
    pub fn observe(&mut self, event: &Event, at: Instant) -> (Option<usize>, Signal) {
        self.observe_at(event, at, None)
    }

    /// [`Checker::observe`] with where the event was read, for the trace.
    pub fn observe_at(
        &mut self,
        event: &Event,
        at: Instant,
        from: Option<(&str, i32, i64)>,
    ) -> (Option<usize>, Signal) {
        let Some(i) = self.index_of(event.key()) else { return (None, Signal::Other) };
        let at_text = from.map_or_else(String::new, |(t, p, o)| format!(" @{t}:{p}:{o}"));
        if !self.ids.insert(event.id.clone()) {
            self.duplicates += 1;
            if event.source.strip_prefix("/sagastream/") == Some(sagastream_escrow_saga::saga::NAME) {
                self.duplicate_outputs += 1;
            }
            self.seen[i].trace.push(format!(
                "{} {} again{at_text}",
                event.event_type(),
                &event.id[..8.min(event.id.len())]
            ));
            return (Some(i), Signal::Other);
        }
        let s = &mut self.seen[i];
        s.trace.push(format!("{} {}{at_text}", event.event_type(), &event.id[..8.min(event.id.len())]));
        let mut signal = Signal::Other;
        let outcome = match &event.data {
            Payload::EscrowSagaCompleted(x) => Some(Outcome::Completed {
                payout: x.runner_payout_cents.get(),
                fee: x.platform_fee_cents.get(),
                refunded: x.refunded_cents.get(),
            }),
            Payload::EscrowSagaCancelled(x) => Some(Outcome::Cancelled { refunded: x.refunded_cents.get() }),
            Payload::EscrowSagaCompensated(x) => Some(Outcome::Compensated { refunded: x.refunded_cents.get() }),
            Payload::PaymentEscrowHeld(x) if event.source == crate::participants::SOURCE => {
                s.held += x.amount_cents.get();
                signal = Signal::Held;
                None
            }
            Payload::PaymentEscrowReleased(x) => {
                s.released += x.runner_payout_cents.get() + x.platform_fee_cents.get();
                None
            }
            Payload::PaymentEscrowRefunded(x) => {
                s.refunded += x.amount_cents.get();
                None
            }
            Payload::BookingCompleted(_) => {
                s.booking_completed += 1;
                None
            }
            Payload::PaymentEscrowHoldRequested(_)
            | Payload::PaymentEscrowReleaseRequested(_)
            | Payload::PaymentEscrowRefundRequested(_)
            | Payload::BookingCancelRequested(_) => {
                s.commands.entry(event.event_type()).or_default().insert(event.id.clone());
                None
            }
            _ => None,
        };
        if let Some(o) = outcome {
            s.terminal.push(o);
            if s.ended.is_none() {
                s.ended = Some(at);
                signal = Signal::Ended;
            }
        }
        (Some(i), signal)
    }

    /// Folds one DLQ record in (by its original position); other runs' are skipped.
    pub fn observe_dlq(&mut self, record: &Record) {
        let key = record.key.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
        if self.index_of(&key).is_none() {
            return;
        }
        self.dlq.found(record);
    }

    pub fn unfinished(&self) -> usize {
        self.seen.iter().filter(|s| s.ended.is_none()).count()
    }

    pub fn report(&self, elapsed: Duration, final_lag: Option<i64>) -> Report {
        let mut problems = Vec::new();
        let mut note = |p: String| {
            if problems.len() < MAX_PROBLEMS {
                problems.push(p);
            }
        };
        let mut rows: BTreeMap<Scenario, ScenarioRow> = BTreeMap::new();
        let mut money_conserved = true;
        let mut duplicate_commands = 0;
        let mut latencies = Vec::new();
        for (b, s) in self.bookings.iter().zip(&self.seen) {
            let row = rows.entry(b.scenario).or_insert_with(|| ScenarioRow {
                scenario: b.scenario.name().into(),
                bookings: 0,
                as_expected: 0,
                wrong: 0,
                unfinished: 0,
            });
            row.bookings += 1;
            let want = expected(b, self.fee);
            let mut right = true;
            match s.terminal.as_slice() {
                [] => {
                    row.unfinished += 1;
                    note(format!(
                        "{} ({}): no terminal fact; expected {want}; saw {}",
                        b.id,
                        b.scenario,
                        s.trace.join(", ")
                    ));
                    right = false;
                }
                [got] if *got == want => {}
                [got] => {
                    note(format!("{} ({}): {got}; expected {want}; saw {}", b.id, b.scenario, s.trace.join(", ")));
                    right = false;
                }
                many => {
                    note(format!("{} ({}): {} terminal facts {many:?}", b.id, b.scenario, many.len()));
                    right = false;
                }
            }
            // Money: whatever was held went back or to the runner, exactly.
            if s.released + s.refunded != s.held && s.ended.is_some() {
                money_conserved = false;
                right = false;
                note(format!(
                    "{}: held {} but released {} + refunded {} (money not conserved); saw {}",
                    b.id,
                    s.held,
                    s.released,
                    s.refunded,
                    s.trace.join(", ")
                ));
            }
            // Counted apart from the outcome: on a broker that leaks aborted
            // records, a command of a killed transaction can show next to the
            // re-run's (docs/simulator.md).
            for (t, ids) in &s.commands {
                if ids.len() > 1 {
                    duplicate_commands += ids.len() - 1;
                    note(format!(
                        "{}: {t} sent {} times with distinct ids; saw {}",
                        b.id,
                        ids.len(),
                        s.trace.join(", ")
                    ));
                }
            }
            let want_completed = usize::from(s.released > 0);
            if s.ended.is_some() && s.booking_completed != want_completed {
                right = false;
                note(format!("{}: {} booking.completed, expected {want_completed}", b.id, s.booking_completed));
            }
            if right {
                row.as_expected += 1;
            } else if !s.terminal.is_empty() {
                row.wrong += 1;
            }
            if let (Some(a), Some(z), false) = (s.started, s.ended, b.scenario.timed()) {
                latencies.push(z.saturating_duration_since(a));
            }
        }
        let dlq = self.dlq.summary("booking", &mut note);
        latencies.sort();
        let pct = |q: f64| percentile(&latencies, q);
        let finished = self.bookings.len() - self.unfinished();
        let scenarios: Vec<ScenarioRow> = rows.into_values().collect();
        let ok = scenarios.iter().all(|r| r.as_expected == r.bookings)
            && money_conserved
            && duplicate_commands == 0
            && self.duplicate_outputs == 0
            && dlq.missing == 0
            && dlq.unexpected == 0;
        Report {
            bookings: self.bookings.len(),
            finished,
            scenarios,
            money_conserved,
            duplicate_commands,
            duplicate_events_dropped: self.duplicates,
            duplicate_outputs_by_id: self.duplicate_outputs,
            dlq,
            elapsed_s: elapsed.as_secs_f64(),
            bookings_per_s: finished as f64 / elapsed.as_secs_f64().max(1e-9),
            latency_p50_ms: pct(0.50),
            latency_p99_ms: pct(0.99),
            final_lag,
            problems,
            orders: None,
            trips: None,
            ingest: None,
            ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::participants::{answer, Rates};
    use crate::scenario::plan;
    use sagastream_contract::decode;
    use sagastream_runtime::dlq;

    fn checker(scenarios: &[Scenario]) -> Checker {
        let bookings = scenarios.iter().enumerate().map(|(i, s)| Booking::new("t", i, *s)).collect();
        Checker::new(bookings, Bps::new(1_500).unwrap())
    }

    fn terminal(c: &mut Checker, payload: impl Into<Payload>) {
        c.observe(&Event::new("/saga", payload), Instant::now());
    }

    #[test]
    fn a_missing_outcome_or_a_wrong_one_fails_the_run() {
        use sagastream_contract::payloads::escrow_saga::EscrowSagaCancelled;
        let mut c = checker(&[Scenario::CancelBeforeHold, Scenario::CancelBeforeHold]);
        let b = c.bookings()[0].clone();
        terminal(
            &mut c,
            EscrowSagaCancelled {
                booking_id: b.id.clone(),
                owner_id: None,
                runner_id: None,
                refunded_cents: sagastream_contract::Cents::ZERO,
                currency: None,
                reason: "booking_cancelled".into(),
                occurred_at: chrono::Utc::now(),
            },
        );
        let r = c.report(Duration::from_secs(1), None);
        assert_eq!((r.finished, r.ok), (1, false));
        assert_eq!(r.scenarios[0].as_expected, 1);
        assert!(r.problems[0].contains("no terminal fact"), "{:?}", r.problems);
        assert!(r.table().contains("RESULT: FAILED"));
    }

    #[test]
    fn repeated_ids_count_once_and_distinct_command_ids_are_duplicates() {
        let mut c = checker(&[Scenario::Happy]);
        let b = c.bookings()[0].clone();
        let hold = |id: &str| {
            Event::new(
                "/saga",
                sagastream_contract::payloads::commands::PaymentEscrowHoldRequested {
                    booking_id: b.id.clone(),
                    booking_number: b.number.clone(),
                    owner_id: b.owner_id.clone(),
                    runner_id: b.runner_id.clone(),
                    amount_cents: sagastream_contract::Cents::new(b.price).unwrap(),
                    currency: sagastream_contract::Currency::new(b.currency.clone()).unwrap(),
                    occurred_at: chrono::Utc::now(),
                },
            )
            .with_id(id)
        };
        c.observe(&hold("a"), Instant::now());
        c.observe(&hold("a"), Instant::now());
        assert_eq!(c.duplicates, 1);
        assert_eq!(c.duplicate_outputs, 0, "not from the saga's source: an upstream redelivery");
        let mut twin = hold("t");
        twin.source = format!("/sagastream/{}", sagastream_escrow_saga::saga::NAME);
        c.observe(&twin, Instant::now());
        c.observe(&twin, Instant::now());
        assert_eq!((c.duplicates, c.duplicate_outputs), (2, 1), "a saga output seen twice by id");
        // The simulator's answers to the hold count as money held.
        for reply in answer(&hold("a"), Rates::default()) {
            c.observe(&reply.event, Instant::now());
        }
        c.observe(&hold("b"), Instant::now());
        let r = c.report(Duration::from_secs(1), None);
        assert_eq!(r.duplicate_commands, 2, "holds a, t and b: three ids for one step");
        assert_eq!(r.duplicate_outputs_by_id, 1);
        assert!(!r.ok);
    }

    #[test]
    fn dlq_must_hold_exactly_the_bad_records() {
        let mut c = checker(&[Scenario::BadInput]);
        let b = c.bookings()[0].clone();
        let poison: Vec<_> = plan(&b).into_iter().filter(|p| p.poison).collect();
        assert!(decode(&poison[1].record).is_err(), "the garbage really is undecodable");
        c.poison_sent(("booking.events".into(), 2, 10));
        c.poison_sent(("payment.events".into(), 2, 4));
        let dlq_record = |topic: &str, offset: i64| Record {
            key: Some(b.id.as_bytes().to_vec()),
            headers: vec![
                sagastream_contract::Header { name: dlq::TOPIC.into(), value: Some(topic.as_bytes().to_vec()) },
                sagastream_contract::Header { name: dlq::PARTITION.into(), value: Some(b"2".to_vec()) },
                sagastream_contract::Header { name: dlq::OFFSET.into(), value: Some(offset.to_string().into_bytes()) },
                sagastream_contract::Header { name: dlq::EXCEPTION.into(), value: Some(b"x".to_vec()) },
            ],
            ..Record::default()
        };
        c.observe_dlq(&dlq_record("booking.events", 10));
        c.observe_dlq(&dlq_record("booking.events", 10));
        let r = c.report(Duration::from_secs(1), None);
        assert_eq!((r.dlq.expected, r.dlq.found, r.dlq.missing, r.dlq.unexpected), (2, 1, 1, 0));
        c.observe_dlq(&dlq_record("payment.events", 4));
        c.observe_dlq(&dlq_record("payment.events", 5));
        let r = c.report(Duration::from_secs(1), None);
        assert_eq!((r.dlq.missing, r.dlq.unexpected), (0, 1));
    }
}
