//! The saga's state: the booking lifecycle × the escrow lifecycle, plus the
//! data the commands need (docs/escrow-saga.md, "State"). Serialized as the
//! changelog entry, so field names are a storage format: add fields with
//! `#[serde(default)]`, never rename.

use std::fmt;

use chrono::{DateTime, Utc};
use sagastream_runtime::SagaState;
use serde::{Deserialize, Serialize};

use crate::money::Ledger;

/// The booking lifecycle as the booking service reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Booking {
    /// A payment fact or a later booking fact came first.
    Unknown,
    Requested,
    Accepted,
    PickedUp,
    InDelivery,
    Delivered,
    Cancelled,
}

impl Booking {
    /// Position on the happy path; `Cancelled` is off it.
    pub fn rank(self) -> Option<u8> {
        match self {
            Booking::Unknown => Some(0),
            Booking::Requested => Some(1),
            Booking::Accepted => Some(2),
            Booking::PickedUp => Some(3),
            Booking::InDelivery => Some(4),
            Booking::Delivered => Some(5),
            Booking::Cancelled => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Booking::Unknown => "unknown",
            Booking::Requested => "requested",
            Booking::Accepted => "accepted",
            Booking::PickedUp => "picked_up",
            Booking::InDelivery => "in_delivery",
            Booking::Delivered => "delivered",
            Booking::Cancelled => "cancelled",
        }
    }
}

/// The escrow lifecycle as the saga drives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Escrow {
    None,
    HoldRequested,
    Created,
    Held,
    ReleaseRequested,
    Released,
    RefundRequested,
    Refunded,
    /// A split dispute resolution: release and refund both requested.
    SettlementRequested,
    /// A dispute is open: no release until it is resolved.
    Frozen,
    /// The hold failed or timed out; the booking's cancellation was asked for.
    Failed,
}

impl Escrow {
    pub fn as_str(self) -> &'static str {
        match self {
            Escrow::None => "none",
            Escrow::HoldRequested => "hold_requested",
            Escrow::Created => "created",
            Escrow::Held => "held",
            Escrow::ReleaseRequested => "release_requested",
            Escrow::Released => "released",
            Escrow::RefundRequested => "refund_requested",
            Escrow::Refunded => "refunded",
            Escrow::SettlementRequested => "settlement_requested",
            Escrow::Frozen => "frozen",
            Escrow::Failed => "failed",
        }
    }

    /// Hold asked for, no answer yet.
    pub fn awaiting_hold(self) -> bool {
        matches!(self, Escrow::HoldRequested | Escrow::Created)
    }

    /// A release or refund asked for, not yet confirmed.
    pub fn awaiting_settlement(self) -> bool {
        matches!(self, Escrow::ReleaseRequested | Escrow::RefundRequested | Escrow::SettlementRequested)
    }
}

/// Who authorised the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmedBy {
    Owner,
    System,
    Dispute,
}

/// Why the saga is unwinding; decides which terminal fact it publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unwind {
    /// The booking service cancelled (owner, runner or operator).
    Cancelled,
    /// The saga asked for the cancellation: the hold failed.
    PaymentFailed,
    /// The saga asked for the cancellation: no hold in time.
    HoldTimeout,
    /// A dispute resolution sends money back.
    Dispute,
    /// The payment service held another amount than asked: all of it goes
    /// back and the saga asks for the cancellation.
    WrongAmount,
}

impl Unwind {
    /// The saga's own cancellation, recognised in a `booking.cancelled`
    /// reason that echoes the `booking.cancel_requested` one
    /// (`payment_failed: …`, `hold_timeout: …`).
    pub fn from_cancel_reason(reason: &str) -> Option<Unwind> {
        [Unwind::PaymentFailed, Unwind::HoldTimeout]
            .into_iter()
            .find(|u| reason.strip_prefix(u.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with(':')))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Unwind::Cancelled => "cancelled",
            Unwind::PaymentFailed => "payment_failed",
            Unwind::HoldTimeout => "hold_timeout",
            Unwind::Dispute => "dispute",
            Unwind::WrongAmount => "wrong_amount",
        }
    }
}

/// One escrow saga. Ids are `Box<str>` (16 bytes, not 24): millions of
/// sagas may be active, and each id is written once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saga {
    pub booking: Booking,
    pub escrow: Escrow,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_number: Option<Box<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<Box<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<Box<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<Box<str>>,
    /// The price from `booking.requested`: what the hold must be for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
    #[serde(default)]
    pub ledger: Ledger,
    /// Release and refund amounts asked for and not yet confirmed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pending_release: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pending_refund: i64,
    /// The runner's payout of the pending release (the rest is the fee).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pending_payout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub paid_out: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<ConfirmedBy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unwind: Option<Unwind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute_id: Option<Box<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_delivery_since: Option<DateTime<Utc>>,
    /// When the release or refund now awaited was asked for (stuck alarm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub alarms: u32,
    /// `payment.failed` answers to the pending release or refund so far.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub settle_failures: u32,
    /// The reason code of the pending refund, sent again with a retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<Box<str>>,
    /// The terminal fact was published; only the purge timer is left.
    #[serde(default, skip_serializing_if = "is_false")]
    pub done: bool,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

impl Default for Saga {
    fn default() -> Saga {
        Saga {
            booking: Booking::Unknown,
            escrow: Escrow::None,
            booking_number: None,
            owner_id: None,
            runner_id: None,
            payment_id: None,
            price_cents: None,
            ledger: Ledger::default(),
            pending_release: 0,
            pending_refund: 0,
            pending_payout: 0,
            paid_out: 0,
            confirmed_by: None,
            unwind: None,
            dispute_id: None,
            in_delivery_since: None,
            waiting_since: None,
            alarms: 0,
            settle_failures: 0,
            refund_reason: None,
            done: false,
        }
    }
}

impl Saga {
    /// `booking/escrow`, the form used in `escrow.saga.state_changed`.
    pub fn phase(&self) -> Phase {
        Phase(self.booking, self.escrow)
    }

    /// Nothing more can happen to the money: settled, or cancelled with nothing held.
    pub fn is_terminal(&self) -> bool {
        if self.ledger.held > 0 {
            return self.ledger.is_settled() && self.pending_release == 0 && self.pending_refund == 0;
        }
        self.booking == Booking::Cancelled && matches!(self.escrow, Escrow::None | Escrow::Failed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase(pub Booking, pub Escrow);

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.as_str(), self.1.as_str())
    }
}

impl SagaState for Saga {
    /// The invariants of docs/escrow-saga.md; the reason names the one that broke.
    fn check_invariants(&self) -> Result<(), String> {
        let s = self;
        let l = &s.ledger;
        if l.released < 0 || l.refunded < 0 || s.pending_release < 0 || s.pending_refund < 0 {
            return Err("a negative amount".into());
        }
        let committed = l.released + l.refunded + s.pending_release + s.pending_refund;
        if committed > l.held {
            return Err(format!(
                "released {} + refunded {} + requested {} would exceed held {}",
                l.released,
                l.refunded,
                s.pending_release + s.pending_refund,
                l.held
            ));
        }
        if l.held > 0 && (l.released + s.pending_release == l.held) && (l.refunded + s.pending_refund == l.held) {
            return Err("both a full release and a full refund".into());
        }
        if (l.released > 0 || s.pending_release > 0) && s.confirmed_by.is_none() {
            return Err("a release without a delivery confirmation, auto-confirm or dispute resolution".into());
        }
        if s.done && l.held > 0 && committed != l.held {
            return Err(format!(
                "the saga ended with {} of {} held cents neither released nor refunded",
                l.held - committed,
                l.held
            ));
        }
        if s.paid_out > l.released {
            return Err(format!("payout {} exceeds the released {}", s.paid_out, l.released));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.phase().to_string()
    }

    /// The terminal fact was published: nothing more can happen to the money.
    fn may_purge(&self) -> bool {
        self.done
    }
}
