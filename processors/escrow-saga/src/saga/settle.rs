//! Timers, the commands the saga sends, and the end of every transition
//! (state-change facts, terminal facts, invariants).

use super::*;

impl<'a> Transition<'a> {
    // --- timers -----------------------------------------------------------

    /// Row 9.
    pub(super) fn hold_timed_out(&mut self) {
        if self.s.escrow.awaiting_hold() {
            self.fail_hold(Unwind::HoldTimeout);
        }
    }

    /// Row 14: Go4u's `confirmed_by: system`.
    pub(super) fn auto_confirm(&mut self) {
        if self.s.booking != Booking::InDelivery
            || !matches!(self.s.escrow, Escrow::Held) && !self.s.escrow.awaiting_hold()
        {
            return;
        }
        self.emit(EscrowSagaAutoConfirmed {
            booking_id: self.key(),
            owner_id: self.s.owner_id.as_deref().unwrap_or_default().to_owned(),
            runner_id: self.s.runner_id.as_deref().unwrap_or_default().to_owned(),
            in_delivery_since: self.s.in_delivery_since.unwrap_or(self.now()),
            occurred_at: self.now(),
        });
        self.confirm(ConfirmedBy::System);
    }

    /// Row 24: an alarm, never a resent money command (the payment service
    /// may still be working on the first).
    pub(super) fn settle_stuck(&mut self) {
        if !self.s.escrow.awaiting_settlement() {
            return;
        }
        let waiting_for = match (self.s.pending_release > 0, self.s.pending_refund > 0) {
            (true, true) => "payment.escrow_released and payment.escrow_refunded",
            (true, false) => "payment.escrow_released",
            _ => "payment.escrow_refunded",
        };
        self.emit(EscrowSagaStuck {
            booking_id: self.key(),
            owner_id: self.s.owner_id.as_deref().map(str::to_owned),
            runner_id: self.s.runner_id.as_deref().map(str::to_owned),
            state: self.s.phase().to_string(),
            waiting_for: waiting_for.into(),
            since: self.s.waiting_since.unwrap_or(self.now()),
            occurred_at: self.now(),
        });
        self.s.alarms += 1;
        let backoff = self.saga.config.stuck_after * 2i32.pow(self.s.alarms.min(MAX_ALARM_DOUBLINGS));
        self.set_timer(SETTLE_STUCK, backoff);
    }

    // --- commands ---------------------------------------------------------

    /// Rows 2, 4, 5: ask for the hold, or, when the payment service already
    /// created the escrow on its own, wait for it with the same timeout.
    pub(super) fn await_hold(&mut self) {
        match self.s.escrow {
            Escrow::Created => self.set_timer(HOLD_TIMEOUT, self.saga.config.hold_timeout),
            _ => self.request_hold(),
        }
    }

    pub(super) fn request_hold(&mut self) {
        self.s.escrow = Escrow::HoldRequested;
        self.emit(PaymentEscrowHoldRequested {
            booking_id: self.key(),
            booking_number: self.s.booking_number.as_deref().unwrap_or_default().to_owned(),
            owner_id: self.s.owner_id.as_deref().unwrap_or_default().to_owned(),
            runner_id: self.s.runner_id.as_deref().unwrap_or_default().to_owned(),
            amount_cents: cents(self.s.price_cents.unwrap_or_default()),
            currency: self.currency(),
            occurred_at: self.now(),
        });
        self.set_timer(HOLD_TIMEOUT, self.saga.config.hold_timeout);
    }

    /// Why the money goes to the runner, as docs/events.md spells it.
    pub(super) fn release_reason(&self) -> &'static str {
        match self.s.confirmed_by {
            Some(ConfirmedBy::System) => reason::AUTO_CONFIRMED,
            Some(ConfirmedBy::Dispute) => reason::DISPUTE,
            Some(ConfirmedBy::Owner) | None => reason::DELIVERED,
        }
    }

    pub(super) fn request_release(&mut self, amount: i64, reason: &str) {
        let r = money::release(amount, self.saga.config.fee);
        self.s.pending_release = r.amount;
        self.s.pending_payout = r.runner_payout;
        self.emit(PaymentEscrowReleaseRequested {
            booking_id: self.key(),
            payment_id: self.s.payment_id.as_deref().unwrap_or_default().to_owned(),
            runner_id: self.s.runner_id.as_deref().unwrap_or_default().to_owned(),
            amount_cents: cents(r.amount),
            runner_payout_cents: cents(r.runner_payout),
            platform_fee_cents: cents(r.platform_fee),
            currency: self.currency(),
            reason: reason.into(),
            occurred_at: self.now(),
        });
        self.await_settlement();
    }

    pub(super) fn request_refund(&mut self, amount: i64, reason: &str) {
        self.s.pending_refund = amount;
        self.s.refund_reason = Some(reason.into());
        self.emit(PaymentEscrowRefundRequested {
            booking_id: self.key(),
            payment_id: self.s.payment_id.as_deref().unwrap_or_default().to_owned(),
            owner_id: self.s.owner_id.as_deref().unwrap_or_default().to_owned(),
            amount_cents: cents(amount),
            currency: self.currency(),
            reason: reason.into(),
            occurred_at: self.now(),
        });
        self.await_settlement();
    }

    pub(super) fn await_settlement(&mut self) {
        if self.s.waiting_since.is_none() {
            self.s.waiting_since = Some(self.now());
            self.s.alarms = 0;
            self.set_timer(SETTLE_STUCK, self.saga.config.stuck_after);
        }
    }

    // --- the end of every transition ---------------------------------------

    /// `state_changed` when the phase moved, the terminal fact when the
    /// money is settled, then the kit's finish (invariants, keep or set).
    pub(super) fn finish(mut self) -> Outcome<Box<Saga>> {
        let old = self.before().map(Saga::phase);
        if old != Some(self.s.phase()) {
            self.emit(EscrowSagaStateChanged {
                booking_id: self.key(),
                owner_id: self.s.owner_id.as_deref().map(str::to_owned),
                runner_id: self.s.runner_id.as_deref().map(str::to_owned),
                from: old.map_or_else(|| "none".to_owned(), |p| p.to_string()),
                to: self.s.phase().to_string(),
                cause_event_id: self.cause.to_owned(),
                occurred_at: self.now(),
            });
        }
        if !self.s.done && self.s.is_terminal() {
            self.end();
        }
        self.w.finish(Class::InvariantViolated)
    }

    /// The terminal fact, then only the purge timer is left.
    pub(super) fn end(&mut self) {
        self.s.done = true;
        for t in [HOLD_TIMEOUT, AUTO_CONFIRM, SETTLE_STUCK, SETTLE_RETRY] {
            self.cancel_timer(t);
        }
        self.arm_purge(self.saga.config.purge_after);
        let l = &self.s.ledger;
        let (owner, runner) =
            (self.s.owner_id.as_deref().map(str::to_owned), self.s.runner_id.as_deref().map(str::to_owned));
        let refunded = cents(l.refunded);
        if l.released > 0 || self.s.unwind == Some(Unwind::Dispute) {
            let fee = l.released - self.s.paid_out;
            if l.released > 0 {
                self.emit(BookingCompleted {
                    booking_id: self.key(),
                    booking_number: self.s.booking_number.as_deref().unwrap_or_default().to_owned(),
                    runner_id: runner.clone().unwrap_or_default(),
                    owner_id: owner.clone().unwrap_or_default(),
                    final_price_cents: cents(l.released),
                    currency: self.currency(),
                    occurred_at: self.now(),
                });
            }
            self.emit(EscrowSagaCompleted {
                booking_id: self.key(),
                owner_id: owner.unwrap_or_default(),
                runner_id: runner.unwrap_or_default(),
                runner_payout_cents: cents(self.s.paid_out),
                platform_fee_cents: cents(fee),
                refunded_cents: refunded,
                currency: self.currency(),
                occurred_at: self.now(),
            });
            return;
        }
        let currency = self.s.ledger.currency.as_ref().map(|_| self.currency());
        match self.s.unwind {
            Some(why @ (Unwind::PaymentFailed | Unwind::HoldTimeout | Unwind::WrongAmount)) => {
                self.emit(EscrowSagaCompensated {
                    booking_id: self.key(),
                    owner_id: owner,
                    runner_id: runner,
                    refunded_cents: refunded,
                    currency,
                    reason: why.as_str().into(),
                    occurred_at: self.now(),
                })
            }
            _ => self.emit(EscrowSagaCancelled {
                booking_id: self.key(),
                owner_id: owner,
                runner_id: runner,
                refunded_cents: refunded,
                currency,
                reason: "booking_cancelled".into(),
                occurred_at: self.now(),
            }),
        }
    }
}
