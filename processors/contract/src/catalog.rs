//! The event catalog: every event type, its payload, the payload field that is
//! the aggregate id (and so the Kafka key), and the topic that carries it.
//! One table drives the enums below so a new event cannot be half-added.

use std::fmt;

use crate::payloads::{
    booking::*, commands::*, escrow_saga::*, inventory::*, order::*, payment::*, probe::*, runner::*, tracking::*,
};

/// A payload that failed to decode: where (JSON path, empty for the root) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    pub path: String,
    pub reason: String,
}

macro_rules! catalog {
    ($( $variant:ident($ty:ty) = $name:literal, key = $key:ident, topic = $topic:literal; )*) => {
        /// Canonical event type names (`domain.action`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($variant),* }

        impl EventType {
            /// Every event type, in catalog order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The CloudEvents `type` attribute we write.
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name),* }
            }

            /// The topic that carries this event.
            pub fn topic(self) -> &'static str {
                match self { $(EventType::$variant => $topic),* }
            }

            /// The payload field whose value is the aggregate id and Kafka key.
            pub fn key_field(self) -> &'static str {
                match self { $(EventType::$variant => stringify!($key)),* }
            }

            /// Canonical name or a legacy alias (see [`LEGACY_TYPE_NAMES`]).
            pub fn parse(name: &str) -> Option<EventType> {
                match name {
                    $($name => Some(EventType::$variant),)*
                    _ => LEGACY_TYPE_NAMES
                        .iter()
                        .find(|(legacy, _)| *legacy == name)
                        .map(|(_, t)| *t),
                }
            }
        }

        /// A typed event payload (the CloudEvent `data`).
        #[derive(Debug, Clone, PartialEq)]
        pub enum Payload { $($variant($ty)),* }

        impl Payload {
            pub fn event_type(&self) -> EventType {
                match self { $(Payload::$variant(_) => EventType::$variant),* }
            }

            /// The aggregate id: the Kafka record key and the CloudEvent `subject`.
            pub fn aggregate_id(&self) -> &str {
                match self { $(Payload::$variant(p) => &p.$key),* }
            }

            /// The payload as JSON (the binary-mode record value).
            pub fn to_json_value(&self) -> serde_json::Value {
                // Serialising plain structs of strings and numbers cannot fail.
                match self {
                    $(Payload::$variant(p) => serde_json::to_value(p).expect("payload serialises")),*
                }
            }

            /// The payload as JSON bytes, in field order: the binary-mode
            /// record value, without building a `Value` first.
            pub fn to_json_vec(&self) -> Vec<u8> {
                match self {
                    $(Payload::$variant(p) => serde_json::to_vec(p).expect("payload serialises")),*
                }
            }

            /// Decodes JSON `data` of the given type, reporting the failing field path.
            pub fn from_json(event_type: EventType, data: &[u8]) -> Result<Payload, PayloadError> {
                match event_type {
                    $(EventType::$variant => decode_json::<$ty>(data).map(Payload::$variant),)*
                }
            }
        }

        $(impl From<$ty> for Payload {
            fn from(p: $ty) -> Payload { Payload::$variant(p) }
        })*
    };
}

catalog! {
    BookingRequested(BookingRequested) = "booking.requested", key = booking_id, topic = "booking.events";
    BookingAccepted(BookingAccepted) = "booking.accepted", key = booking_id, topic = "booking.events";
    BookingPetPickedUp(BookingPetPickedUp) = "booking.pet_picked_up", key = booking_id, topic = "booking.events";
    BookingDeliveryInProgress(BookingDeliveryInProgress) = "booking.delivery_in_progress", key = booking_id, topic = "booking.events";
    BookingDeliveryConfirmed(BookingDeliveryConfirmed) = "booking.delivery_confirmed", key = booking_id, topic = "booking.events";
    BookingCompleted(BookingCompleted) = "booking.completed", key = booking_id, topic = "booking.events";
    BookingCancelled(BookingCancelled) = "booking.cancelled", key = booking_id, topic = "booking.events";
    PaymentEscrowCreated(PaymentEscrowCreated) = "payment.escrow_created", key = booking_id, topic = "payment.events";
    PaymentEscrowHeld(PaymentEscrowHeld) = "payment.escrow_held", key = booking_id, topic = "payment.events";
    PaymentEscrowReleased(PaymentEscrowReleased) = "payment.escrow_released", key = booking_id, topic = "payment.events";
    PaymentEscrowRefunded(PaymentEscrowRefunded) = "payment.escrow_refunded", key = booking_id, topic = "payment.events";
    PaymentFailed(PaymentFailed) = "payment.failed", key = booking_id, topic = "payment.events";
    RunnerOnline(RunnerOnline) = "runner.online", key = runner_id, topic = "runner.events";
    RunnerOffline(RunnerOffline) = "runner.offline", key = runner_id, topic = "runner.events";
    RunnerLocationUpdate(RunnerLocationUpdate) = "runner.location_update", key = runner_id, topic = "runner.events";
    RunnerAssigned(RunnerAssigned) = "runner.assigned", key = runner_id, topic = "runner.events";
    RunnerPresenceChanged(RunnerPresenceChanged) = "runner.presence_changed", key = runner_id, topic = "runner.presence";
    TrackingStarted(TrackingStarted) = "tracking.started", key = booking_id, topic = "tracking.events";
    TrackingUpdated(TrackingUpdated) = "tracking.updated", key = booking_id, topic = "tracking.events";
    TrackingCompleted(TrackingCompleted) = "tracking.completed", key = booking_id, topic = "tracking.events";
    OrderCreated(OrderCreated) = "order.created", key = order_id, topic = "order.events";
    OrderValidated(OrderValidated) = "order.validated", key = order_id, topic = "order.events";
    OrderCompleted(OrderCompleted) = "order.completed", key = order_id, topic = "order.events";
    OrderCancelled(OrderCancelled) = "order.cancelled", key = order_id, topic = "order.events";
    OrderRefunded(OrderRefunded) = "order.refunded", key = order_id, topic = "order.events";
    InventoryReserved(InventoryReserved) = "inventory.reserved", key = product_id, topic = "inventory.events";
    InventoryReleased(InventoryReleased) = "inventory.released", key = product_id, topic = "inventory.events";
    InventoryAdjusted(InventoryAdjusted) = "inventory.adjusted", key = product_id, topic = "inventory.events";
    InventoryLowStock(InventoryLowStock) = "inventory.low_stock", key = product_id, topic = "inventory.events";
    InventoryUpdated(InventoryUpdated) = "inventory.updated", key = product_id, topic = "inventory.events";
    ProductOutOfStock(ProductOutOfStock) = "product.out_of_stock", key = product_id, topic = "inventory.events";
    ProbeCounted(ProbeCounted) = "probe.counted", key = aggregate_id, topic = "probe.events";
    ProbeIdle(ProbeIdle) = "probe.idle", key = aggregate_id, topic = "probe.events";
    DisputeOpened(DisputeOpened) = "dispute.opened", key = booking_id, topic = "payment.events";
    DisputeResolved(DisputeResolved) = "dispute.resolved", key = booking_id, topic = "payment.events";
    PaymentEscrowHoldRequested(PaymentEscrowHoldRequested) = "payment.escrow_hold_requested", key = booking_id, topic = "payment.commands";
    PaymentEscrowReleaseRequested(PaymentEscrowReleaseRequested) = "payment.escrow_release_requested", key = booking_id, topic = "payment.commands";
    PaymentEscrowRefundRequested(PaymentEscrowRefundRequested) = "payment.escrow_refund_requested", key = booking_id, topic = "payment.commands";
    BookingCancelRequested(BookingCancelRequested) = "booking.cancel_requested", key = booking_id, topic = "booking.commands";
    EscrowSagaStarted(EscrowSagaStarted) = "escrow.saga.started", key = booking_id, topic = "escrow.saga.events";
    EscrowSagaStateChanged(EscrowSagaStateChanged) = "escrow.saga.state_changed", key = booking_id, topic = "escrow.saga.events";
    EscrowSagaCompleted(EscrowSagaCompleted) = "escrow.saga.completed", key = booking_id, topic = "escrow.saga.events";
    EscrowSagaCancelled(EscrowSagaCancelled) = "escrow.saga.cancelled", key = booking_id, topic = "escrow.saga.events";
    EscrowSagaCompensated(EscrowSagaCompensated) = "escrow.saga.compensated", key = booking_id, topic = "escrow.saga.events";
    EscrowSagaAutoConfirmed(EscrowSagaAutoConfirmed) = "escrow.saga.auto_confirmed", key = booking_id, topic = "escrow.saga.events";
    EscrowSagaStuck(EscrowSagaStuck) = "escrow.saga.stuck", key = booking_id, topic = "escrow.saga.events";
    OrderCancelRequested(OrderCancelRequested) = "order.cancel_requested", key = order_id, topic = "order.events";
    InventoryReservationFailed(InventoryReservationFailed) = "inventory.reservation_failed", key = product_id, topic = "inventory.events";
    InventoryReserveRequested(InventoryReserveRequested) = "inventory.reserve_requested", key = product_id, topic = "inventory.commands";
    InventoryReleaseRequested(InventoryReleaseRequested) = "inventory.release_requested", key = product_id, topic = "inventory.commands";
    InventoryConsumeRequested(InventoryConsumeRequested) = "inventory.consume_requested", key = product_id, topic = "inventory.commands";
    PaymentCaptureRequested(PaymentCaptureRequested) = "payment.capture_requested", key = order_id, topic = "payment.commands";
    PaymentRefundRequested(PaymentRefundRequested) = "payment.refund_requested", key = order_id, topic = "payment.commands";
    PaymentCaptured(PaymentCaptured) = "payment.captured", key = order_id, topic = "payment.events";
    PaymentCaptureFailed(PaymentCaptureFailed) = "payment.capture_failed", key = order_id, topic = "payment.events";
    PaymentRefunded(PaymentRefunded) = "payment.refunded", key = order_id, topic = "payment.events";
}

/// First Viscount's inventory service names its events after classes.
/// Accepted on input, always written back under the canonical name.
pub const LEGACY_TYPE_NAMES: &[(&str, EventType)] = &[
    ("InventoryReserved", EventType::InventoryReserved),
    ("InventoryReleased", EventType::InventoryReleased),
    ("InventoryAdjusted", EventType::InventoryAdjusted),
    ("LowStockAlert", EventType::InventoryLowStock),
    ("InventoryUpdated", EventType::InventoryUpdated),
];

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // pad, not write_str: tables align on `{:<30}`.
        f.pad(self.as_str())
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(data: &[u8]) -> Result<T, PayloadError> {
    // The fast path for the common case; tracking the path costs on every
    // field, so only a payload that fails is decoded again to say where.
    if let Ok(value) = serde_json::from_slice(data) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(data);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        PayloadError {
            // serde_path_to_error renders the root as ".", which reads badly in a header.
            path: if path == "." { String::new() } else { path },
            reason: e.into_inner().to_string(),
        }
    })?;
    de.end().map_err(|e| PayloadError { path: String::new(), reason: e.to_string() })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::ALL {
            assert!(seen.insert(t.as_str()), "duplicate name {t}");
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            let domain = t.as_str().split('.').next().unwrap();
            let on_foreign_topic = [EventType::ProductOutOfStock, EventType::DisputeOpened, EventType::DisputeResolved];
            assert!(t.topic().starts_with(domain) || on_foreign_topic.contains(t), "{t} on {}", t.topic());
        }
        assert_eq!(EventType::ALL.len(), 56, "the seeds' 55 and runner.presence_changed");
    }

    #[test]
    fn kilat_catalog_has_its_19_events() {
        let kilat = EventType::ALL
            .iter()
            .filter(|t| ["booking.events", "payment.events", "runner.events", "tracking.events"].contains(&t.topic()))
            .filter(|t| !t.as_str().starts_with("dispute."))
            .filter(|t| t.key_field() != "order_id") // order payments share payment.events
            .count();
        assert_eq!(kilat, 19);
    }

    #[test]
    fn legacy_names_map_to_canonical() {
        assert_eq!(EventType::parse("LowStockAlert"), Some(EventType::InventoryLowStock));
        assert_eq!(EventType::parse("InventoryReserved"), Some(EventType::InventoryReserved));
        assert_eq!(EventType::parse("inventoryreserved"), None, "aliases are exact");
        assert_eq!(EventType::parse("booking.unknown"), None);
    }

    #[test]
    fn payload_errors_name_the_field() {
        let err = Payload::from_json(
            EventType::OrderCreated,
            br#"{"order_id":"o1","customer_id":"c","total_amount":"1.00","currency":"USD","status":"pending",
               "items":[{"product_id":"p","quantity":-2,"unit_price":"1.00","total_price":"1.00"}],
               "shipping_address":{"street":"s","city":"c","state":"s","zip":"z","country":"US"},
               "billing_address":{"street":"s","city":"c","state":"s","zip":"z","country":"US"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.path, "items[0].quantity");

        let err = Payload::from_json(EventType::RunnerOffline, br#"{"runner_id":"r1"}"#).unwrap_err();
        assert!(err.reason.contains("occurred_at"), "{err:?}");

        let err = Payload::from_json(EventType::RunnerOffline, b"not json").unwrap_err();
        assert_eq!(err.path, "");

        let err = Payload::from_json(
            EventType::RunnerOffline,
            br#"{"runner_id":"r1","occurred_at":"2024-01-15T10:30:00Z"} trailing"#,
        )
        .unwrap_err();
        assert!(err.reason.contains("trailing"), "{err:?}");
    }
}
