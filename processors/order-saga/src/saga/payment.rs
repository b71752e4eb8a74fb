//! The payment service's answers: the capture and the refund.

use super::*;

impl Transition<'_> {
    pub(super) fn captured(&mut self, e: &PaymentCaptured) -> Result<(), Rejection> {
        if self.before().is_none() {
            return Err(self.invalid("payment.captured"));
        }
        self.check_currency(&e.currency)?;
        if let Some((payment_id, amount)) = self.s.payment.captured() {
            // Row 20 / 21.
            return match payment_id == e.payment_id && same_amount(amount, &e.amount) {
                true => Ok(()),
                false => Err(Class::ConflictingFact.reject(format!(
                    "a second capture {} of {}; the order has {payment_id}",
                    e.payment_id,
                    e.amount.as_str()
                ))),
            };
        }
        match (self.s.phase, &self.s.payment) {
            // Row 8.
            (Phase::Capturing, Payment::CaptureRequested) => {
                let total = self.s.total.clone().expect("set with the lines");
                if !same_amount(&total, &e.amount) {
                    return Err(Class::AmountMismatch.reject(format!(
                        "captured {} of an order total {}",
                        e.amount.as_str(),
                        total.as_str()
                    )));
                }
                self.s.payment =
                    Payment::Captured { payment_id: e.payment_id.as_str().into(), amount: e.amount.clone() };
                for i in 0..self.s.lines.len() {
                    self.s.lines[i].status = LineStatus::Consumed;
                    let line = &self.s.lines[i];
                    let consume = InventoryConsumeRequested {
                        reservation_id: line.reservation_id.to_string(),
                        order_id: self.order_id(),
                        product_id: line.product_id.to_string(),
                        quantity: line.quantity,
                        location_id: self.saga.config.location_id.clone(),
                        occurred_at: self.now(),
                    };
                    self.emit(consume);
                }
                self.s.phase = Phase::Completed;
                self.emit(OrderCompleted {
                    order_id: self.order_id(),
                    completion_time: self.now(),
                    payment_id: e.payment_id.clone(),
                    fulfillment_id: None,
                    final_amount: e.amount.clone(),
                });
            }
            // Row 11: the capture was in flight when the order was cancelled.
            (Phase::Cancelled, Payment::CaptureRequested) => {
                let reason = self.s.cancellation.as_ref().map_or("order_cancelled", |c| &*c.reason).to_owned();
                self.request_refund(e.payment_id.as_str().into(), e.amount.clone(), &reason);
                self.s.phase = Phase::Refunding;
            }
            _ => return Err(self.invalid("payment.captured")),
        }
        Ok(())
    }

    pub(super) fn capture_failed(&mut self, _: &PaymentCaptureFailed) -> Result<(), Rejection> {
        match (self.s.phase, &self.s.payment) {
            // Row 9.
            (Phase::Capturing, Payment::CaptureRequested) => {
                self.s.payment = Payment::Failed;
                self.release_held("payment_failed");
                self.cancel("payment_failed", "system");
            }
            // Cancelled meanwhile: nothing was taken, nothing to give back.
            (Phase::Cancelled, Payment::CaptureRequested) => self.s.payment = Payment::Failed,
            (_, Payment::Failed) => {}
            _ => return Err(self.invalid("payment.capture_failed")),
        }
        Ok(())
    }

    pub(super) fn refunded(&mut self, e: &PaymentRefunded) -> Result<(), Rejection> {
        self.check_currency(&e.currency)?;
        match &self.s.payment {
            // Row 12.
            Payment::RefundRequested { payment_id, amount, refund } if self.s.phase == Phase::Refunding => {
                if !same_amount(refund, &e.amount) {
                    return Err(Class::AmountMismatch.reject(format!(
                        "refunded {} of a requested refund of {}",
                        e.amount.as_str(),
                        refund.as_str()
                    )));
                }
                let reason = self.s.cancellation.as_ref().map_or("order_cancelled", |c| &*c.reason).to_owned();
                self.s.payment = Payment::Refunded {
                    payment_id: payment_id.clone(),
                    amount: amount.clone(),
                    refund: refund.clone(),
                    refund_id: e.refund_id.as_str().into(),
                };
                self.s.phase = Phase::Refunded;
                self.emit(OrderRefunded {
                    order_id: self.order_id(),
                    refund_id: e.refund_id.clone(),
                    refund_amount: e.amount.clone(),
                    refund_reason: reason,
                    refund_method: e.refund_method.clone(),
                    processed_at: self.now(),
                });
            }
            // Row 20 / 21.
            Payment::Refunded { refund_id, .. } if **refund_id == *e.refund_id => {}
            Payment::Refunded { refund_id, .. } => {
                return Err(Class::ConflictingFact.reject(format!("a second refund; the order has {refund_id}")))
            }
            _ => return Err(self.invalid("payment.refunded")),
        }
        Ok(())
    }
}
