//! The transitions on `booking.events`: the booking lifecycle `B`.

use super::*;

impl<'a> Transition<'a> {
    // --- booking.events ---------------------------------------------------

    pub(super) fn requested(&mut self, e: &BookingRequested) -> Result<(), Rejection> {
        if let Some(price) = self.s.price_cents {
            // A second booking.requested (new id): harmless when it agrees.
            if price != e.estimated_price_cents.get() {
                return Err(Class::ConflictingFact
                    .reject(format!("booking.requested for {} cents, the saga has {price}", e.estimated_price_cents)));
            }
            return self.s.ledger.check_currency(&e.currency).map_err(money_error);
        }
        if !matches!(self.s.escrow, Escrow::None | Escrow::Created) {
            return Err(invalid(&self.s, "booking.requested"));
        }
        self.s.ledger.check_currency(&e.currency).map_err(money_error)?;
        remember(&mut self.s.booking_number, &e.booking_number, "booking_number")?;
        remember(&mut self.s.owner_id, &e.owner_id, "owner_id")?;
        self.s.price_cents = Some(e.estimated_price_cents.get());
        self.emit(EscrowSagaStarted {
            booking_id: self.key(),
            booking_number: e.booking_number.clone(),
            owner_id: e.owner_id.clone(),
            amount_cents: e.estimated_price_cents,
            currency: e.currency.clone(),
            occurred_at: self.now(),
        });
        match self.s.booking {
            // Row 1.
            Booking::Unknown => self.s.booking = Booking::Requested,
            // Row 4: the price arrives after the acceptance; a cancelled
            // booking gets no hold.
            Booking::Cancelled => {}
            _ => self.await_hold(),
        }
        Ok(())
    }

    /// Rows 2, 3, 10-13: a step forward on the booking's happy path. A step
    /// the saga is already past is a reordered or repeated fact: a no-op.
    pub(super) fn progress(
        &mut self,
        to: Booking,
        number: &str,
        owner: &str,
        runner: Option<&str>,
    ) -> Result<(), Rejection> {
        remember(&mut self.s.booking_number, number, "booking_number")?;
        remember(&mut self.s.owner_id, owner, "owner_id")?;
        if let Some(runner) = runner {
            remember(&mut self.s.runner_id, runner, "runner_id")?;
        }
        let (Some(from), Some(rank)) = (self.s.booking.rank(), to.rank()) else {
            // Cancelled wins over late progress facts (row 16's aftermath).
            return Ok(());
        };
        if rank <= from {
            return Ok(());
        }
        self.s.booking = to;
        // Row 2 / 3: the hold is asked for once accepted and the price is
        // known (row 5: or awaited, when the escrow was created unasked).
        if matches!(self.s.escrow, Escrow::None | Escrow::Created)
            && self.s.price_cents.is_some()
            && from < Booking::Accepted.rank().unwrap_or_default()
        {
            self.await_hold();
        }
        match to {
            Booking::InDelivery => {
                self.s.in_delivery_since = Some(self.now());
                if self.s.escrow == Escrow::Held || self.s.escrow.awaiting_hold() {
                    self.set_timer(AUTO_CONFIRM, self.saga.config.auto_confirm_after);
                }
            }
            Booking::Delivered => {
                self.cancel_timer(AUTO_CONFIRM);
                self.confirm(ConfirmedBy::Owner);
            }
            _ => {}
        }
        Ok(())
    }

    /// Rows 11-14: the delivery is confirmed; release now if the money is held.
    pub(super) fn confirm(&mut self, by: ConfirmedBy) {
        self.s.booking = Booking::Delivered;
        if self.s.confirmed_by.is_none() {
            self.s.confirmed_by = Some(by);
        }
        if self.s.escrow == Escrow::Held {
            self.request_release(self.s.ledger.held, self.release_reason());
            self.s.escrow = Escrow::ReleaseRequested;
        }
    }

    pub(super) fn cancelled(&mut self, e: &BookingCancelled) -> Result<(), Rejection> {
        match (self.s.booking, self.s.escrow) {
            (Booking::Cancelled, _) => return Ok(()),
            // The money already went to the runner, or is on its way.
            (_, Escrow::ReleaseRequested | Escrow::Released | Escrow::SettlementRequested) => {
                return Err(invalid(&self.s, "booking.cancelled"))
            }
            // Row 16: nothing held; the saga ends.
            (_, Escrow::None | Escrow::Failed) => {}
            // Row 17: the hold is in flight; refund it when it lands (row 7).
            (_, Escrow::HoldRequested | Escrow::Created) => {}
            // Row 18.
            (_, Escrow::Held) => {
                self.s.unwind = Some(Unwind::Cancelled);
                self.request_refund(self.s.ledger.held, reason::CANCELLED);
                self.s.escrow = Escrow::RefundRequested;
            }
            // A dispute is open or already sends the money back: its
            // resolution decides the money.
            (_, Escrow::Frozen | Escrow::RefundRequested | Escrow::Refunded) => {}
        }
        // A cancellation the saga asked for keeps its cause, also when it lands
        // before the saga's own record of asking (a re-run after a crash).
        let why = Unwind::from_cancel_reason(&e.reason).unwrap_or(Unwind::Cancelled);
        self.s.unwind.get_or_insert(why);
        self.s.booking = Booking::Cancelled;
        self.cancel_timer(AUTO_CONFIRM);
        Ok(())
    }
}
