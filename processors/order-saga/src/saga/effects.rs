//! The reservation timer and the effects the rows share: validation,
//! releases, the cancellation and the refund request.

use super::*;

impl Transition<'_> {
    // --- timers -------------------------------------------------------------

    pub(super) fn expired(&mut self) {
        // Row 6; in any other phase the timer is stale.
        if matches!(self.s.phase, Phase::Reserving | Phase::Capturing) {
            self.release_held("reservation_expired");
            self.cancel("reservation_expired", "system");
        }
    }

    // --- effects ------------------------------------------------------------

    /// Row 4: every line is reserved.
    pub(super) fn validated(&mut self) {
        let reservations = self
            .s
            .lines
            .iter()
            .map(|l| Reservation {
                product_id: l.product_id.to_string(),
                reservation_id: l.reservation_id.to_string(),
                quantity: l.quantity,
            })
            .collect();
        let passed = || "passed".to_owned();
        self.emit(OrderValidated {
            order_id: self.order_id(),
            validation_results: ValidationResults {
                inventory_check: passed(),
                pricing_check: passed(),
                customer_check: passed(),
            },
            reservations,
        });
        self.emit(PaymentCaptureRequested {
            order_id: self.order_id(),
            customer_id: self.s.customer_id.as_deref().unwrap_or_default().to_owned(),
            amount: self.s.total.clone().expect("set with the lines"),
            currency: self.currency(),
            occurred_at: self.now(),
        });
        self.s.payment = Payment::CaptureRequested;
        self.s.phase = Phase::Capturing;
    }

    /// One release per held reservation; each line is released once.
    pub(super) fn release_held(&mut self, reason: &str) {
        for i in 0..self.s.lines.len() {
            if !self.s.lines[i].status.is_held() {
                continue;
            }
            self.s.lines[i].status = LineStatus::ReleaseRequested;
            let line = &self.s.lines[i];
            let release = InventoryReleaseRequested {
                reservation_id: line.reservation_id.to_string(),
                order_id: self.order_id(),
                product_id: line.product_id.to_string(),
                quantity: line.quantity,
                location_id: self.saga.config.location_id.clone(),
                reason: reason.to_owned(),
                occurred_at: self.now(),
            };
            self.emit(release);
        }
    }

    /// `order.cancelled` without a refund (nothing was captured, or the
    /// capture is still unknown: row 11 refunds it when it comes).
    pub(super) fn cancel(&mut self, reason: &str, by: &str) {
        self.s.phase = Phase::Cancelled;
        self.s.cancellation = Some(Cancellation { reason: reason.into(), by: by.into() });
        self.emit(OrderCancelled {
            order_id: self.order_id(),
            cancellation_reason: reason.to_owned(),
            cancelled_by: by.to_owned(),
            cancelled_at: self.now(),
            refund_required: false,
            refund_amount: self.zero(),
        });
    }

    pub(super) fn request_refund(&mut self, payment_id: Box<str>, amount: DecimalAmount, reason: &str) {
        self.emit(PaymentRefundRequested {
            order_id: self.order_id(),
            payment_id: payment_id.to_string(),
            amount: amount.clone(),
            currency: self.currency(),
            reason: reason.to_owned(),
            occurred_at: self.now(),
        });
        self.s.payment = Payment::RefundRequested { payment_id, refund: amount.clone(), amount };
    }
}
