//! The mapping table (docs/ingest.md "Types"): every type of the three
//! platforms' catalogs, and the catalog event it becomes, if any. One row
//! per native name; the docs table is checked against this one.

use std::borrow::Cow;

use chrono::SecondsFormat;
use sagastream_contract::{Event, EventType, Payload};
use sagastream_topics::Envelope;
use serde_json::{Map, Value};

use crate::envelope::{platform_name, traceparent, Native};
use crate::error::TranslateError;
use crate::exact::{minor_units, ratio_bps};

/// What a native type becomes.
#[derive(Clone, Copy)]
pub enum Target {
    /// This catalog event, its payload taken as it is.
    Same(EventType),
    /// This catalog event, its payload built by the function.
    Carried(EventType, fn(&Native) -> Result<Map<String, Value>, TranslateError>),
    /// Nothing sagastream carries: a DLQ record of class `unmapped_type`.
    NotCarried,
}

#[derive(Clone, Copy)]
pub struct Row {
    pub platform: Envelope,
    pub native: &'static str,
    pub target: Target,
}

const fn carried(
    platform: Envelope,
    native: &'static str,
    event_type: EventType,
    payload: fn(&Native) -> Result<Map<String, Value>, TranslateError>,
) -> Row {
    Row { platform, native, target: Target::Carried(event_type, payload) }
}

const fn same(platform: Envelope, native: &'static str, event_type: EventType) -> Row {
    Row { platform, native, target: Target::Same(event_type) }
}

impl Target {
    /// The catalog event type, unless not carried.
    pub fn event_type(self) -> Option<EventType> {
        match self {
            Target::Same(t) | Target::Carried(t, _) => Some(t),
            Target::NotCarried => None,
        }
    }
}

const fn not_carried(platform: Envelope, native: &'static str) -> Row {
    Row { platform, native, target: Target::NotCarried }
}

use Envelope::{FirstViscount as FV, Go4u as G4, Korrectng as KN};
use EventType as T;

pub const TABLE: &[Row] = &[
    // First Viscount (seed 004): snake_case payloads, decimal strings for money.
    not_carried(FV, "product.created"),
    not_carried(FV, "product.updated"),
    not_carried(FV, "product.deleted"),
    not_carried(FV, "product.price_changed"),
    same(FV, "product.out_of_stock", T::ProductOutOfStock),
    same(FV, "InventoryReserved", T::InventoryReserved),
    same(FV, "inventory.reserved", T::InventoryReserved),
    same(FV, "InventoryReleased", T::InventoryReleased),
    same(FV, "inventory.released", T::InventoryReleased),
    same(FV, "InventoryAdjusted", T::InventoryAdjusted),
    same(FV, "inventory.adjusted", T::InventoryAdjusted),
    same(FV, "LowStockAlert", T::InventoryLowStock),
    same(FV, "inventory.low_stock", T::InventoryLowStock),
    same(FV, "InventoryUpdated", T::InventoryUpdated),
    same(FV, "inventory.updated", T::InventoryUpdated),
    same(FV, "order.created", T::OrderCreated),
    same(FV, "order.validated", T::OrderValidated),
    same(FV, "order.completed", T::OrderCompleted),
    same(FV, "order.cancelled", T::OrderCancelled),
    same(FV, "order.refunded", T::OrderRefunded),
    // Go4u (seed 000): a task is the escrowed unit, our booking.
    not_carried(G4, "user.registered"),
    not_carried(G4, "user.kyc.submitted"),
    not_carried(G4, "user.kyc.verified"),
    not_carried(G4, "user.login"),
    not_carried(G4, "task.created"),
    not_carried(G4, "task.updated"),
    not_carried(G4, "task.deleted"),
    not_carried(G4, "task.deal.initiated"),
    not_carried(G4, "task.deal.confirmed"),
    not_carried(G4, "task.started"),
    not_carried(G4, "task.done.requested"),
    not_carried(G4, "task.done.confirmed"),
    not_carried(G4, "task.cancel.requested"),
    not_carried(G4, "task.cancelled"),
    not_carried(G4, "chat.message.sent"),
    not_carried(G4, "chat.deal.clicked"),
    not_carried(G4, "live.session.started"),
    not_carried(G4, "live.session.ended"),
    not_carried(G4, "contract.generated"),
    not_carried(G4, "certificate.issued"),
    not_carried(G4, "payment.checkout.succeeded"),
    not_carried(G4, "wallet.escrow.hold"),
    not_carried(G4, "wallet.escrow.released"),
    not_carried(G4, "wallet.refund.processed"),
    not_carried(G4, "payout.requested"),
    not_carried(G4, "payout.completed"),
    not_carried(G4, "referral.accepted"),
    not_carried(G4, "referral.qualified"),
    not_carried(G4, "referral.reward.activated"),
    not_carried(G4, "risk.flag.raised"),
    carried(G4, "dispute.opened", T::DisputeOpened, go4u_dispute_opened),
    carried(G4, "dispute.resolved", T::DisputeResolved, go4u_dispute_resolved),
    not_carried(G4, "notification.sent"),
    not_carried(G4, "system.health.ping"),
    // KorrectNG (seed 001): camelCase payloads; a contract is the escrowed unit.
    not_carried(KN, "user.created"),
    not_carried(KN, "user.updated"),
    not_carried(KN, "user.deleted"),
    not_carried(KN, "user.email_verified"),
    not_carried(KN, "booking.created"),
    not_carried(KN, "booking.confirmed"),
    not_carried(KN, "booking.cancelled"),
    not_carried(KN, "review.created"),
    not_carried(KN, "payment.received"),
    not_carried(KN, "payment.failed"),
    not_carried(KN, "escrow.funded"),
    not_carried(KN, "escrow.released"),
    not_carried(KN, "escrow.refunded"),
    carried(KN, "dispute.opened", T::DisputeOpened, korrectng_dispute_opened),
    carried(KN, "dispute.resolved", T::DisputeResolved, korrectng_dispute_resolved),
    not_carried(KN, "dispute.escalated"),
    not_carried(KN, "verification.submitted"),
    not_carried(KN, "verification.approved"),
    not_carried(KN, "verification.rejected"),
    not_carried(KN, "message.sent"),
    not_carried(KN, "notification.send"),
];

pub fn row(platform: Envelope, native: &str) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.platform == platform && r.native == native)
}

/// The `domain.action` a First Viscount type stands for, legacy class names
/// included: what its per-type topic is named after.
fn dotted(row: &Row) -> &'static str {
    row.target.event_type().map_or(row.native, EventType::as_str)
}

/// The catalog event a native record stands for.
pub fn translate(native: &Native, topic: &str) -> Result<Event, TranslateError> {
    let platform = platform_name(native.platform);
    let row = row(native.platform, &native.native_type)
        .ok_or_else(|| TranslateError::UnknownType { platform, native: native.native_type.clone() })?;
    if native.major != 1 {
        return Err(TranslateError::UnsupportedVersion {
            platform,
            native: native.native_type.clone(),
            version: native.version.clone(),
        });
    }
    if native.platform == Envelope::FirstViscount {
        // `{service}.{domain}.{action}.v{major}`; the major is 1, checked above.
        let belongs = topic.rsplit_once('.').is_some_and(|(rest, version)| {
            version == "v1" && rest.strip_suffix(dotted(row)).is_some_and(|service| service.ends_with('.'))
        });
        if !belongs {
            return Err(TranslateError::WrongTopic {
                native: native.native_type.clone(),
                major: native.major,
                topic: topic.to_owned(),
            });
        }
    }
    let invalid = |path: String, reason: String| TranslateError::PayloadInvalid {
        platform,
        native: native.native_type.clone(),
        path,
        reason,
    };
    let object = |map: Map<String, Value>| serde_json::to_vec(&Value::Object(map)).expect("a JSON object serialises");
    let (event_type, data) = match row.target {
        Target::NotCarried => {
            return Err(TranslateError::UnmappedType { platform, native: native.native_type.clone() })
        }
        Target::Same(t) => match &native.raw_payload {
            Some(raw) => (t, Cow::Borrowed(raw.as_bytes())),
            None => (t, Cow::Owned(object(native.payload.clone()))),
        },
        Target::Carried(t, build) => (t, Cow::Owned(object(build(native)?))),
    };
    let payload = Payload::from_json(event_type, &data).map_err(|e| invalid(e.path, e.reason))?;
    if payload.aggregate_id().trim().is_empty() {
        return Err(invalid(event_type.key_field().into(), "the aggregate id is empty".into()));
    }
    Ok(Event {
        id: native.id.clone(),
        source: format!("/{}/{}", source_prefix(native.platform), native.producer),
        time: Some(native.time),
        traceparent: Some(traceparent(native)),
        correlationid: native.correlation_id.clone(),
        sequence: native.sequence,
        extensions: Default::default(),
        data: payload,
    })
}

/// The first segment of a translated event's `source`, like `/kilat/...`.
pub fn source_prefix(platform: Envelope) -> &'static str {
    match platform {
        Envelope::FirstViscount => "first-viscount",
        Envelope::Go4u => "go4u",
        Envelope::Korrectng => "korrectng",
    }
}

fn payload_error(native: &Native, path: &str, reason: &str) -> TranslateError {
    TranslateError::PayloadInvalid {
        platform: platform_name(native.platform),
        native: native.native_type.clone(),
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

fn time_text(native: &Native) -> Value {
    Value::String(native.time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Copies `from` as `to`; a missing field is named as the producer wrote it.
fn moved(native: &Native, out: &mut Map<String, Value>, from: &str, to: &str) -> Result<(), TranslateError> {
    match native.payload.get(from) {
        Some(v) if !v.is_null() => {
            out.insert(to.to_owned(), v.clone());
            Ok(())
        }
        _ => Err(payload_error(native, from, "missing field")),
    }
}

/// A number as its decimal text, whether sent as a JSON number or a string.
fn number_text(native: &Native, field: &str) -> Option<String> {
    native.numbers.get(field).cloned().or_else(|| native.payload.get(field)?.as_str().map(str::to_owned))
}

fn go4u_dispute_opened(native: &Native) -> Result<Map<String, Value>, TranslateError> {
    let mut out = Map::new();
    moved(native, &mut out, "dispute_id", "dispute_id")?;
    moved(native, &mut out, "task_id", "booking_id")?;
    moved(native, &mut out, "opened_by", "opened_by")?;
    moved(native, &mut out, "at", "occurred_at")?;
    Ok(out)
}

fn go4u_dispute_resolved(native: &Native) -> Result<Map<String, Value>, TranslateError> {
    let mut out = Map::new();
    moved(native, &mut out, "dispute_id", "dispute_id")?;
    moved(native, &mut out, "task_id", "booking_id")?;
    moved(native, &mut out, "resolution", "resolution")?;
    moved(native, &mut out, "resolved_at", "occurred_at")?;
    for (from, to) in [("ratio_requester", "ratio_requester_bps"), ("ratio_agent", "ratio_agent_bps")] {
        if native.payload.get(from).is_none_or(Value::is_null) {
            continue;
        }
        let text = number_text(native, from).ok_or_else(|| payload_error(native, from, "is not a number"))?;
        let bps = ratio_bps(&text).map_err(|e| payload_error(native, from, &e.to_string()))?;
        out.insert(to.to_owned(), Value::from(bps));
    }
    Ok(out)
}

fn korrectng_dispute_opened(native: &Native) -> Result<Map<String, Value>, TranslateError> {
    let mut out = Map::new();
    moved(native, &mut out, "disputeId", "dispute_id")?;
    moved(native, &mut out, "contractId", "booking_id")?;
    // Event<T> does not say who opened it; an `openedBy` is honoured.
    let opened_by = match native.payload.get("openedBy").and_then(Value::as_str) {
        Some("customer") => "requester",
        Some("artisan") => "agent",
        Some("system") | Some("admin") => "system",
        _ => "unknown",
    };
    out.insert("opened_by".into(), opened_by.into());
    if let Some(reason) = native.payload.get("reason").filter(|v| !v.is_null()) {
        out.insert("reason".into(), reason.clone());
    }
    out.insert("occurred_at".into(), time_text(native));
    Ok(out)
}

fn korrectng_dispute_resolved(native: &Native) -> Result<Map<String, Value>, TranslateError> {
    let mut out = Map::new();
    moved(native, &mut out, "disputeId", "dispute_id")?;
    moved(native, &mut out, "contractId", "booking_id")?;
    let decision = native.payload.get("decision").and_then(Value::as_str).unwrap_or_default();
    let resolution = match decision {
        "refund" | "refund_customer" | "customer" => "refund_requester",
        "release" | "release_to_artisan" | "artisan" | "pay_artisan" => "release_to_agent",
        "split" | "partial" => "split",
        _ => return Err(payload_error(native, "decision", "is not refund_customer, release_to_artisan or split")),
    };
    out.insert("resolution".into(), resolution.into());
    if resolution == "split" {
        // Amounts in naira (2 decimals), exact; the split must be whole basis points.
        let amount = |field: &str| -> Result<u128, TranslateError> {
            let text = number_text(native, field).ok_or_else(|| payload_error(native, field, "a split needs it"))?;
            minor_units(&text, 2).map(u128::from).map_err(|e| payload_error(native, field, &e.to_string()))
        };
        let (refund, payment) = (amount("customerRefund")?, amount("artisanPayment")?);
        let total = refund + payment;
        if total == 0 || (refund * 10_000) % total != 0 {
            return Err(payload_error(
                native,
                "customerRefund",
                "with artisanPayment it does not split into whole basis points",
            ));
        }
        let requester = (refund * 10_000 / total) as u32;
        out.insert("ratio_requester_bps".into(), requester.into());
        out.insert("ratio_agent_bps".into(), (10_000 - requester).into());
    }
    out.insert("occurred_at".into(), time_text(native));
    Ok(out)
}
