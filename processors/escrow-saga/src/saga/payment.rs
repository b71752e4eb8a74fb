//! The transitions on `payment.events`: the escrow lifecycle `E` and disputes.

use super::*;

impl<'a> Transition<'a> {
    // --- payment.events ---------------------------------------------------

    pub(super) fn escrow_created(&mut self, e: &PaymentEscrowCreated) -> Result<(), Rejection> {
        match self.s.escrow {
            // Row 5: the payment service created the escrow before the saga
            // asked (the owner initiated the payment); once the booking is
            // accepted the saga waits for the hold instead of asking.
            Escrow::None if self.s.booking != Booking::Cancelled => {
                self.check_hold_amount(e.amount_cents, &e.currency)?;
                remember(&mut self.s.payment_id, &e.payment_id, "payment_id")?;
                self.s.escrow = Escrow::Created;
                let accepted = self.s.booking.rank() >= Booking::Accepted.rank();
                if accepted && self.s.price_cents.is_some() {
                    self.set_timer(HOLD_TIMEOUT, self.saga.config.hold_timeout);
                }
                Ok(())
            }
            // Row 5.
            Escrow::HoldRequested => {
                self.check_hold_amount(e.amount_cents, &e.currency)?;
                remember(&mut self.s.payment_id, &e.payment_id, "payment_id")?;
                self.s.escrow = Escrow::Created;
                Ok(())
            }
            // The hold timed out before the payment service answered: wait
            // for escrow_held (refund) or payment.failed.
            Escrow::Failed if self.s.ledger.held == 0 => remember(&mut self.s.payment_id, &e.payment_id, "payment_id"),
            Escrow::None => Err(invalid(&self.s, "payment.escrow_created")),
            // Already past it: a repeated fact.
            _ => remember(&mut self.s.payment_id, &e.payment_id, "payment_id"),
        }
    }

    pub(super) fn check_hold_amount(&self, amount: Cents, currency: &Currency) -> Result<(), Rejection> {
        let mut ledger = self.s.ledger.clone();
        ledger.check_currency(currency).map_err(money_error)?;
        match self.s.price_cents {
            Some(price) if price != amount.get() => {
                Err(Class::AmountMismatch.reject(format!("escrow for {amount} cents, the booking's price is {price}")))
            }
            _ => Ok(()),
        }
    }

    pub(super) fn escrow_held(&mut self, e: &PaymentEscrowHeld) -> Result<(), Rejection> {
        match self.s.escrow {
            Escrow::HoldRequested | Escrow::Created | Escrow::Failed => {}
            Escrow::None => return Err(invalid(&self.s, "payment.escrow_held")),
            // A repeated fact: harmless when it agrees with the hold.
            _ => {
                return match self.s.ledger.held == e.amount_cents.get() {
                    true => remember(&mut self.s.payment_id, &e.payment_id, "payment_id"),
                    false => Err(Class::AmountMismatch.reject(format!(
                        "escrow_held for {} cents, the saga holds {}",
                        e.amount_cents, self.s.ledger.held
                    ))),
                }
            }
        }
        let failed = self.s.escrow == Escrow::Failed;
        let giving_up = failed || self.s.booking == Booking::Cancelled;
        // Money that is held must come back whatever its amount: only a hold
        // the saga still wants is checked against the price (row 28).
        let wrong_amount = match self.check_hold_amount(e.amount_cents, &e.currency) {
            Ok(()) => false,
            Err(r) if r.class == Class::AmountMismatch.code() => true,
            Err(r) => return Err(r),
        };
        remember(&mut self.s.payment_id, &e.payment_id, "payment_id")?;
        self.s.ledger.hold(e.amount_cents, &e.currency).map_err(money_error)?;
        self.cancel_timer(HOLD_TIMEOUT);
        self.s.escrow = Escrow::Held;
        if self.s.done {
            // The saga had ended with nothing held (cancelled, hold timed
            // out); the late hold reopens it until the refund is confirmed.
            self.s.done = false;
            self.cancel_timer(PURGE);
        }
        if giving_up {
            // Row 7 (and 9's aftermath): the booking is cancelled or being
            // cancelled; the money goes straight back.
            self.s.unwind.get_or_insert(Unwind::Cancelled);
            self.request_refund(self.s.ledger.held, reason::HOLD_AFTER_CANCEL);
            self.s.escrow = Escrow::RefundRequested;
        } else if wrong_amount {
            // Row 28: another amount than asked is held. Exactly that goes
            // back, and the booking cannot go on without its escrow.
            self.s.unwind = Some(Unwind::WrongAmount);
            self.request_refund(self.s.ledger.held, reason::WRONG_AMOUNT);
            self.s.escrow = Escrow::RefundRequested;
            self.ask_to_cancel(Unwind::PaymentFailed);
        } else if self.s.booking == Booking::Delivered {
            // Row 6 → 11: the delivery was confirmed before the hold landed.
            self.request_release(self.s.ledger.held, self.release_reason());
            self.s.escrow = Escrow::ReleaseRequested;
        }
        Ok(())
    }

    /// The payment service's own reason stays on its `payment.failed`; the
    /// cancel request carries the documented code.
    pub(super) fn payment_failed(&mut self, _: &PaymentFailed) -> Result<(), Rejection> {
        match self.s.escrow {
            // Row 8.
            Escrow::HoldRequested | Escrow::Created => {
                self.cancel_timer(HOLD_TIMEOUT);
                self.fail_hold(Unwind::PaymentFailed);
                Ok(())
            }
            Escrow::Failed if self.s.ledger.held == 0 => Ok(()),
            // Rows 29 and 31: the payment service failed the release or
            // refund it was asked for. The money is still held: ask again
            // after a backoff, then call an operator; never drop it.
            Escrow::ReleaseRequested | Escrow::RefundRequested | Escrow::SettlementRequested => {
                self.s.settle_failures += 1;
                let n = self.s.settle_failures;
                if n <= self.saga.config.settle_retries {
                    let backoff = self.saga.config.settle_retry_after * 2i32.pow((n - 1).min(MAX_ALARM_DOUBLINGS));
                    self.set_timer(SETTLE_RETRY, backoff);
                } else {
                    self.cancel_timer(SETTLE_RETRY);
                    self.emit(EscrowSagaStuck {
                        booking_id: self.key(),
                        owner_id: self.s.owner_id.as_deref().map(str::to_owned),
                        runner_id: self.s.runner_id.as_deref().map(str::to_owned),
                        state: self.s.phase().to_string(),
                        waiting_for: format!(
                            "an operator: the payment service failed the {} {n} times",
                            self.pending_commands()
                        ),
                        since: self.s.waiting_since.unwrap_or(self.now()),
                        occurred_at: self.now(),
                    });
                }
                Ok(())
            }
            _ => Err(invalid(&self.s, "payment.failed")),
        }
    }

    /// What is awaited: `release`, `refund`, or `release and refund`.
    pub(super) fn pending_commands(&self) -> &'static str {
        match (self.s.pending_release > 0, self.s.pending_refund > 0) {
            (true, true) => "release and refund",
            (true, false) => "release",
            _ => "refund",
        }
    }

    /// Row 30: the failed release or refund, asked for again with the same
    /// amounts and reason (a new command id: it is a new attempt).
    pub(super) fn retry_settlement(&mut self) {
        if !self.s.escrow.awaiting_settlement() {
            return;
        }
        if self.s.pending_release > 0 {
            self.request_release(self.s.pending_release, self.release_reason());
        }
        if self.s.pending_refund > 0 {
            let reason = self.s.refund_reason.clone().unwrap_or_else(|| reason::CANCELLED.into());
            self.request_refund(self.s.pending_refund, &reason);
        }
    }

    /// Rows 8, 9: no money will be held; cancel the booking unless it already is.
    pub(super) fn fail_hold(&mut self, why: Unwind) {
        self.s.escrow = Escrow::Failed;
        if self.s.booking != Booking::Cancelled {
            self.s.unwind = Some(why);
            self.ask_to_cancel(why);
        }
    }

    /// `booking.cancel_requested` with the documented code of `why`, unless
    /// the booking is cancelled already.
    pub(super) fn ask_to_cancel(&mut self, why: Unwind) {
        if self.s.booking == Booking::Cancelled {
            return;
        }
        self.emit(BookingCancelRequested {
            booking_id: self.key(),
            booking_number: self.s.booking_number.as_deref().unwrap_or_default().to_owned(),
            reason: why.as_str().into(),
            occurred_at: self.now(),
        });
    }

    pub(super) fn escrow_released(&mut self, e: &PaymentEscrowReleased) -> Result<(), Rejection> {
        let amount = e.runner_payout_cents.get() + e.platform_fee_cents.get();
        match self.s.escrow {
            // Row 15.
            Escrow::ReleaseRequested | Escrow::SettlementRequested if self.s.pending_release > 0 => {
                self.s.ledger.check_currency(&e.currency).map_err(money_error)?;
                if amount != self.s.pending_release || e.runner_payout_cents.get() != self.s.pending_payout {
                    return Err(Class::AmountMismatch.reject(format!(
                        "escrow_released pays {} + fee {}, the saga asked for {} + fee {}",
                        e.runner_payout_cents,
                        e.platform_fee_cents,
                        self.s.pending_payout,
                        self.s.pending_release - self.s.pending_payout
                    )));
                }
                self.s.ledger.released(amount).map_err(money_error)?;
                self.s.paid_out += self.s.pending_payout;
                self.s.pending_release = 0;
                self.s.pending_payout = 0;
                self.after_settlement_step(Escrow::Released);
                Ok(())
            }
            // A repeated confirmation (also of one half of a split).
            _ if self.s.pending_release == 0 && amount > 0 && self.s.ledger.released == amount => Ok(()),
            _ => Err(invalid(&self.s, "payment.escrow_released")),
        }
    }

    pub(super) fn escrow_refunded(&mut self, e: &PaymentEscrowRefunded) -> Result<(), Rejection> {
        match self.s.escrow {
            // Row 19.
            Escrow::RefundRequested | Escrow::SettlementRequested if self.s.pending_refund > 0 => {
                self.s.ledger.check_currency(&e.currency).map_err(money_error)?;
                if e.amount_cents.get() != self.s.pending_refund {
                    return Err(Class::AmountMismatch.reject(format!(
                        "escrow_refunded for {}, the saga asked for {}",
                        e.amount_cents, self.s.pending_refund
                    )));
                }
                self.s.ledger.refunded(e.amount_cents.get()).map_err(money_error)?;
                self.s.pending_refund = 0;
                self.after_settlement_step(Escrow::Refunded);
                Ok(())
            }
            _ if self.s.pending_refund == 0
                && e.amount_cents.get() > 0
                && self.s.ledger.refunded == e.amount_cents.get() =>
            {
                Ok(())
            }
            _ => Err(invalid(&self.s, "payment.escrow_refunded")),
        }
    }

    /// A release or refund was confirmed: either the other half of a split
    /// is still awaited, or the saga is settled.
    pub(super) fn after_settlement_step(&mut self, done: Escrow) {
        if self.s.pending_release > 0 || self.s.pending_refund > 0 {
            return;
        }
        self.s.escrow = if self.s.ledger.released > 0 { Escrow::Released } else { done };
        self.cancel_timer(SETTLE_STUCK);
        self.s.waiting_since = None;
        self.s.alarms = 0;
    }

    pub(super) fn dispute_opened(&mut self, e: &DisputeOpened) -> Result<(), Rejection> {
        match self.s.escrow {
            // Row 20.
            Escrow::Held => {
                self.s.dispute_id = Some(e.dispute_id.as_str().into());
                self.s.escrow = Escrow::Frozen;
                self.cancel_timer(AUTO_CONFIRM);
                Ok(())
            }
            Escrow::Frozen if self.s.dispute_id.as_deref() == Some(&e.dispute_id) => Ok(()),
            _ => Err(invalid(&self.s, "dispute.opened")),
        }
    }

    pub(super) fn dispute_resolved(&mut self, e: &DisputeResolved) -> Result<(), Rejection> {
        if self.s.escrow != Escrow::Frozen {
            // A repeated resolution of the dispute already acted on is a no-op.
            let acted_on = self.s.confirmed_by == Some(ConfirmedBy::Dispute) || self.s.unwind == Some(Unwind::Dispute);
            return match acted_on && self.s.dispute_id.as_deref() == Some(&e.dispute_id) {
                true => Ok(()),
                false => Err(invalid(&self.s, "dispute.resolved")),
            };
        }
        if self.s.dispute_id.as_deref() != Some(&e.dispute_id) {
            return Err(Class::ConflictingFact
                .reject(format!("dispute {} resolved, the open one is {:?}", e.dispute_id, self.s.dispute_id)));
        }
        let held = self.s.ledger.held;
        let (refund, release) = match e.resolution {
            // Row 21.
            DisputeResolution::RefundRequester => (held, 0),
            // Row 22.
            DisputeResolution::ReleaseToAgent => (0, held),
            // Row 23.
            DisputeResolution::Split => {
                let (Some(r), Some(a)) = (e.ratio_requester_bps, e.ratio_agent_bps) else {
                    return Err(Class::InvalidRatios.reject("a split resolution needs both ratios"));
                };
                let requester = Bps::new(r).map_err(money_error)?;
                let agent = Bps::new(a).map_err(money_error)?;
                let split = money::split(held, requester, agent, self.saga.config.fee).map_err(money_error)?;
                (split.refund, split.release.amount)
            }
        };
        self.cancel_timer(AUTO_CONFIRM);
        if release > 0 {
            self.s.confirmed_by = Some(ConfirmedBy::Dispute);
            self.request_release(release, reason::DISPUTE);
        }
        if refund > 0 {
            self.s.unwind = Some(Unwind::Dispute);
            self.request_refund(refund, reason::DISPUTE);
        }
        self.s.escrow = match (release > 0, refund > 0) {
            (true, true) => Escrow::SettlementRequested,
            (true, false) => Escrow::ReleaseRequested,
            _ => Escrow::RefundRequested,
        };
        Ok(())
    }
}
