//! The order saga's state per order (docs/order-saga.md, "State").

use std::fmt;

use sagastream_contract::{Currency, DecimalAmount};
use sagastream_runtime::SagaState;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A cancel request arrived before its `order.created` (row 13).
    #[default]
    AwaitingOrder,
    Reserving,
    Capturing,
    Completed,
    Cancelled,
    Refunding,
    Refunded,
}

impl Phase {
    /// Closed: nothing more will be reserved or captured for the order.
    pub fn is_closed(self) -> bool {
        matches!(self, Phase::Completed | Phase::Cancelled | Phase::Refunding | Phase::Refunded)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::AwaitingOrder => "awaiting_order",
            Phase::Reserving => "reserving",
            Phase::Capturing => "capturing",
            Phase::Completed => "completed",
            Phase::Cancelled => "cancelled",
            Phase::Refunding => "refunding",
            Phase::Refunded => "refunded",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    Requested,
    Reserved,
    Failed,
    ReleaseRequested,
    Released,
    Consumed,
}

impl LineStatus {
    /// The reservation is held: stock is set aside for the line.
    pub fn is_held(self) -> bool {
        self == LineStatus::Reserved
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub product_id: Box<str>,
    pub quantity: u32,
    pub unit_price: DecimalAmount,
    pub total_price: DecimalAmount,
    pub reservation_id: Box<str>,
    pub status: LineStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Payment {
    #[default]
    None,
    CaptureRequested,
    Captured {
        payment_id: Box<str>,
        amount: DecimalAmount,
    },
    Failed,
    /// `amount` is the capture, `refund` what was asked back.
    RefundRequested {
        payment_id: Box<str>,
        amount: DecimalAmount,
        refund: DecimalAmount,
    },
    Refunded {
        payment_id: Box<str>,
        amount: DecimalAmount,
        refund: DecimalAmount,
        refund_id: Box<str>,
    },
}

impl Payment {
    /// The captured payment, whatever happened to it since.
    pub fn captured(&self) -> Option<(&str, &DecimalAmount)> {
        match self {
            Payment::Captured { payment_id, amount }
            | Payment::RefundRequested { payment_id, amount, .. }
            | Payment::Refunded { payment_id, amount, .. } => Some((payment_id, amount)),
            _ => None,
        }
    }
}

/// Why and by whom the order was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    pub reason: Box<str>,
    pub by: Box<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Order {
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Box<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<DecimalAmount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<Line>,
    #[serde(default)]
    pub payment: Payment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<Cancellation>,
}

impl Order {
    pub fn line_mut(&mut self, reservation_id: &str) -> Option<&mut Line> {
        self.lines.iter_mut().find(|l| &*l.reservation_id == reservation_id)
    }
}

impl SagaState for Order {
    /// The invariants of docs/order-saga.md, on a state a transition would produce.
    fn check_invariants(&self) -> Result<(), String> {
        let o = self;
        let all = |s: LineStatus| o.lines.iter().all(|l| l.status == s);
        // 1. Never validated with a missing line.
        if o.phase == Phase::Capturing && !all(LineStatus::Reserved) {
            return Err("capturing while a line is not reserved".into());
        }
        if o.phase == Phase::Completed && !all(LineStatus::Consumed) {
            return Err("completed while a line is not consumed".into());
        }
        // 2. Never completed, or refunded, without a capture.
        if matches!(o.phase, Phase::Completed | Phase::Refunding | Phase::Refunded) && o.payment.captured().is_none() {
            return Err(format!("{} without a captured payment", o.phase));
        }
        // 3. Nothing held once closed (consumed or released lines only).
        if o.phase.is_closed() && o.lines.iter().any(|l| l.status.is_held()) {
            return Err(format!("{} with a reservation still held", o.phase));
        }
        // 4. The refund is the capture.
        if let Payment::RefundRequested { amount, refund, .. } | Payment::Refunded { amount, refund, .. } = &o.payment {
            if !crate::money::same_amount(refund, amount) {
                return Err(format!("refund {} differs from capture {}", refund.as_str(), amount.as_str()));
            }
        }
        Ok(())
    }

    /// A compact description for DLQ reasons and logs.
    fn describe(&self) -> String {
        let lines =
            self.lines.iter().map(|l| format!("{}:{:?}", l.reservation_id, l.status)).collect::<Vec<_>>().join(",");
        format!("{} payment={:?} lines=[{lines}]", self.phase, self.payment)
    }

    /// Closed, or a cancel whose order never came: forgotten at the purge.
    fn may_purge(&self) -> bool {
        self.phase.is_closed() || self.phase == Phase::AwaitingOrder
    }
}
