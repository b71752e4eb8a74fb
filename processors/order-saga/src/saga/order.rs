//! The transitions on `order.events`: the order arrives or is cancelled.

use super::*;

impl Transition<'_> {
    pub(super) fn created(&mut self, e: &OrderCreated) -> Result<(), Rejection> {
        if self.before().is_some() && self.s.phase != Phase::AwaitingOrder {
            // Row 20: the same order again (a new id) is harmless when it agrees.
            let same = self.s.total.as_ref().is_some_and(|t| same_amount(t, &e.total_amount))
                && self.s.currency.as_ref() == Some(&e.currency)
                && (self.s.lines.len() == e.items.len() || self.s.lines.is_empty());
            return match same {
                true => Ok(()),
                false => Err(Class::ConflictingFact.reject("a second order.created that differs from the first")),
            };
        }
        validate(e)?;
        self.s.customer_id = Some(e.customer_id.as_str().into());
        self.s.currency = Some(e.currency.clone());
        self.s.total = Some(e.total_amount.clone());
        if let Some(c) = self.s.cancellation.clone() {
            // Row 17: cancelled before it arrived; nothing is reserved.
            self.cancel(&c.reason, &c.by);
            return Ok(());
        }
        // Row 1.
        let expires_at = self.now() + self.saga.config.reservation_ttl;
        for (i, item) in e.items.iter().enumerate() {
            let line = Line {
                product_id: item.product_id.as_str().into(),
                quantity: item.quantity,
                unit_price: item.unit_price.clone(),
                total_price: item.total_price.clone(),
                reservation_id: reservation_id(&e.order_id, i + 1).into(),
                status: LineStatus::Requested,
            };
            self.emit(InventoryReserveRequested {
                reservation_id: line.reservation_id.to_string(),
                order_id: e.order_id.clone(),
                product_id: item.product_id.clone(),
                quantity: item.quantity,
                location_id: self.saga.config.location_id.clone(),
                expires_at,
                occurred_at: self.now(),
            });
            self.s.lines.push(line);
        }
        self.s.phase = Phase::Reserving;
        self.set_timer_at(RESERVATION_EXPIRY, expires_at);
        Ok(())
    }

    pub(super) fn cancel_requested(&mut self, e: &OrderCancelRequested) -> Result<(), Rejection> {
        if self.before().is_none() {
            // Row 13.
            self.s.phase = Phase::AwaitingOrder;
            self.s.cancellation =
                Some(Cancellation { reason: e.reason.as_str().into(), by: e.requested_by.as_str().into() });
            return Ok(());
        }
        match self.s.phase {
            // Row 7.
            Phase::Reserving | Phase::Capturing => {
                self.release_held("order_cancelled");
                self.cancel(&e.reason, &e.requested_by);
            }
            // Row 10.
            Phase::Completed => {
                let (payment_id, amount) =
                    self.s.payment.captured().map(|(p, a)| (p.into(), a.clone())).expect("invariant 2");
                self.s.cancellation =
                    Some(Cancellation { reason: e.reason.as_str().into(), by: e.requested_by.as_str().into() });
                self.request_refund(payment_id, amount.clone(), &e.reason);
                self.s.phase = Phase::Refunding;
                self.emit(OrderCancelled {
                    order_id: self.order_id(),
                    cancellation_reason: e.reason.clone(),
                    cancelled_by: e.requested_by.clone(),
                    cancelled_at: self.now(),
                    refund_required: true,
                    refund_amount: amount,
                });
            }
            // Row 18 (and a repeated request awaiting its order).
            Phase::AwaitingOrder | Phase::Cancelled | Phase::Refunding | Phase::Refunded => {}
        }
        Ok(())
    }
}

/// Row 2: the lines and the total must add up, exactly.
fn validate(e: &OrderCreated) -> Result<(), Rejection> {
    let bad = |why: String| Err(Class::InvalidOrder.reject(why));
    if e.items.is_empty() {
        return bad("an order without lines".into());
    }
    let money = |r: Result<Dec, crate::money::MoneyError>| r.map_err(|e| Class::InvalidOrder.reject(e.to_string()));
    let mut sum: Option<Dec> = None;
    for (i, item) in e.items.iter().enumerate() {
        if item.quantity == 0 {
            return bad(format!("line {} has quantity 0", i + 1));
        }
        let line = money(Dec::parse(&item.unit_price).and_then(|u| u.times(item.quantity)))?;
        if line != money(Dec::parse(&item.total_price))? {
            return bad(format!(
                "line {}: {} × {} is not {}",
                i + 1,
                item.quantity,
                item.unit_price.as_str(),
                item.total_price.as_str()
            ));
        }
        sum = Some(match sum {
            None => line,
            Some(s) => money(s.plus(line))?,
        });
    }
    let total = money(Dec::parse(&e.total_amount))?;
    if sum.is_some_and(|s| total < s) {
        return bad(format!("total {} is below the sum of its lines", e.total_amount.as_str()));
    }
    Ok(())
}
