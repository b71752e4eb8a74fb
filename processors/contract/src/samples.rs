//! One realistic payload of every event type, with every optional field set.
//! The demo publishes them, the schema test round-trips them and the
//! end-to-end tests read them back. `tag` makes the aggregate ids unique per run.

use chrono::{TimeZone, Utc};

use crate::catalog::{EventType, Payload};
use crate::envelope::Event;
use crate::payloads::{
    booking::*, commands::*, escrow_saga::*, inventory::*, order::*, payment::*, probe::*, runner::*, tracking::*,
    Timestamp,
};
use crate::values::{Cents, Currency, DecimalAmount};

fn at(minute: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2024, 1, 15, 10, minute, 0).single().expect("valid sample time")
}

fn usd() -> Currency {
    Currency::new("USD").expect("valid currency")
}

fn cents(v: i64) -> Cents {
    Cents::new(v).expect("non-negative")
}

fn dec(s: &str) -> DecimalAmount {
    DecimalAmount::new(s).expect("valid decimal")
}

/// A made-up postal address (the seed's example), for samples and tests.
pub fn address() -> Address {
    Address {
        street: "123 Main St".into(),
        city: "Anytown".into(),
        state: "CA".into(),
        zip: "12345".into(),
        country: "US".into(),
    }
}

fn parties(booking_id: String, booking_number: String, owner_id: String, runner_id: String) -> BookingParties {
    BookingParties { booking_id, booking_number, owner_id, runner_id }
}

/// The sample payload of one event type.
pub fn payload(event_type: EventType, tag: &str) -> Payload {
    let booking_id = format!("bk_{tag}");
    let booking_number = format!("KL-{tag}");
    let owner_id = format!("own_{tag}");
    let runner_id = format!("run_{tag}");
    let payment_id = format!("pay_{tag}");
    let track_id = format!("trk_{tag}");
    let order_id = format!("order_{tag}");
    let product_id = format!("prod_{tag}");
    let reservation_id = format!("res_{tag}");
    let warehouse = "warehouse_main".to_owned();
    match event_type {
        EventType::BookingRequested => BookingRequested {
            booking_id,
            booking_number,
            owner_id,
            pet_type: "dog".into(),
            pet_name: "Milo".into(),
            pickup_lat: -6.2088,
            pickup_lng: 106.8456,
            dropoff_lat: -6.1751,
            dropoff_lng: 106.865,
            estimated_price_cents: cents(4500),
            currency: usd(),
            occurred_at: at(0),
        }
        .into(),
        EventType::BookingAccepted => parties(booking_id, booking_number, owner_id, runner_id).accepted(at(1)).into(),
        EventType::BookingPetPickedUp => {
            parties(booking_id, booking_number, owner_id, runner_id).picked_up(at(10)).into()
        }
        EventType::BookingDeliveryInProgress => {
            parties(booking_id, booking_number, owner_id, runner_id).in_delivery(at(10), at(11)).into()
        }
        EventType::BookingDeliveryConfirmed => {
            parties(booking_id, booking_number, owner_id, runner_id).confirmed(at(40), at(41)).into()
        }
        EventType::BookingCompleted => BookingCompleted {
            booking_id,
            booking_number,
            runner_id,
            owner_id,
            final_price_cents: cents(4500),
            currency: usd(),
            occurred_at: at(42),
        }
        .into(),
        EventType::BookingCancelled => BookingCancelled {
            booking_id,
            booking_number,
            cancelled_by: "owner".into(),
            reason: "plans_changed".into(),
            occurred_at: at(5),
        }
        .into(),
        EventType::PaymentEscrowCreated => PaymentEscrowCreated {
            payment_id,
            booking_id,
            owner_id,
            amount_cents: cents(4500),
            currency: usd(),
            occurred_at: at(2),
        }
        .into(),
        EventType::PaymentEscrowHeld => PaymentEscrowHeld {
            payment_id,
            booking_id,
            stripe_payment_id: format!("pi_{tag}"),
            amount_cents: cents(4500),
            currency: usd(),
            occurred_at: at(3),
            owner_id: Some(owner_id),
        }
        .into(),
        EventType::PaymentEscrowReleased => PaymentEscrowReleased {
            payment_id,
            booking_id,
            runner_id,
            runner_payout_cents: cents(3825),
            platform_fee_cents: cents(675),
            currency: usd(),
            occurred_at: at(41),
        }
        .into(),
        EventType::PaymentEscrowRefunded => PaymentEscrowRefunded {
            payment_id,
            booking_id,
            owner_id,
            amount_cents: cents(4500),
            currency: usd(),
            refund_reason: "booking_cancelled".into(),
            occurred_at: at(6),
        }
        .into(),
        EventType::PaymentFailed => PaymentFailed {
            payment_id,
            booking_id,
            reason: "card_declined".into(),
            occurred_at: at(3),
            owner_id: Some(owner_id),
        }
        .into(),
        EventType::RunnerOnline => {
            RunnerOnline { runner_id, latitude: -6.2, longitude: 106.81, occurred_at: at(0) }.into()
        }
        EventType::RunnerOffline => RunnerOffline { runner_id, occurred_at: at(59) }.into(),
        EventType::RunnerLocationUpdate => RunnerLocationUpdate {
            runner_id,
            booking_id: Some(booking_id),
            latitude: -6.19,
            longitude: 106.85,
            speed_kmh: 23.5,
            heading_degrees: 271.25,
            timestamp: at(20),
            occurred_at: at(20),
        }
        .into(),
        EventType::RunnerAssigned => RunnerAssigned { runner_id, booking_id, occurred_at: at(1) }.into(),
        EventType::RunnerPresenceChanged => RunnerPresenceChanged {
            runner_id,
            status: "online".into(),
            reason: "online".into(),
            latitude: Some(-6.2),
            longitude: Some(106.81),
            booking_id: Some(booking_id),
            last_seen_at: at(0),
            occurred_at: at(0),
        }
        .into(),
        EventType::TrackingStarted => TrackingStarted {
            track_id,
            booking_id,
            runner_id,
            started_at: at(1),
            occurred_at: at(1),
            owner_id: Some(owner_id),
        }
        .into(),
        EventType::TrackingUpdated => TrackingUpdated {
            track_id,
            booking_id,
            runner_id,
            latitude: -6.19,
            longitude: 106.85,
            speed_kmh: 23.5,
            occurred_at: at(20),
        }
        .into(),
        EventType::TrackingCompleted => TrackingCompleted {
            track_id,
            booking_id,
            runner_id,
            total_distance_km: 7.25,
            completed_at: at(40),
            occurred_at: at(41),
            owner_id: Some(owner_id),
        }
        .into(),
        EventType::OrderCreated => OrderCreated {
            order_id,
            customer_id: format!("cust_{tag}"),
            total_amount: dec("47.98"),
            currency: usd(),
            status: "pending".into(),
            items: vec![OrderItem { product_id, quantity: 2, unit_price: dec("22.99"), total_price: dec("45.98") }],
            shipping_address: address(),
            billing_address: address(),
        }
        .into(),
        EventType::OrderValidated => OrderValidated {
            order_id,
            validation_results: ValidationResults {
                inventory_check: "passed".into(),
                pricing_check: "passed".into(),
                customer_check: "passed".into(),
            },
            reservations: vec![Reservation { product_id, reservation_id, quantity: 2 }],
        }
        .into(),
        EventType::OrderCompleted => OrderCompleted {
            order_id,
            completion_time: at(45),
            payment_id,
            fulfillment_id: Some(format!("ful_{tag}")),
            final_amount: dec("47.98"),
        }
        .into(),
        EventType::OrderCancelled => OrderCancelled {
            order_id,
            cancellation_reason: "customer_request".into(),
            cancelled_by: "customer".into(),
            cancelled_at: at(30),
            refund_required: true,
            refund_amount: dec("47.98"),
        }
        .into(),
        EventType::OrderRefunded => OrderRefunded {
            order_id,
            refund_id: format!("ref_{tag}"),
            refund_amount: dec("47.98"),
            refund_reason: "order_cancelled".into(),
            refund_method: "original_payment_method".into(),
            processed_at: at(50),
        }
        .into(),
        EventType::InventoryReserved => InventoryReserved {
            reservation_id,
            product_id,
            quantity: 2,
            location_id: warehouse,
            order_id,
            expires_at: at(15),
        }
        .into(),
        EventType::InventoryReleased => InventoryReleased {
            reservation_id,
            product_id,
            quantity: 2,
            location_id: warehouse,
            reason: "order_cancelled".into(),
            order_id: Some(order_id),
        }
        .into(),
        EventType::InventoryAdjusted => InventoryAdjusted {
            product_id,
            location_id: warehouse,
            old_quantity: 100,
            new_quantity: 95,
            adjustment_type: "damage".into(),
            reason: "5 units damaged during inspection".into(),
            reference_number: "ADJ-2024-001".into(),
        }
        .into(),
        EventType::InventoryLowStock => InventoryLowStock {
            product_id,
            location_id: warehouse,
            current_quantity: 8,
            threshold: 10,
            alert_level: AlertLevel::Warning,
        }
        .into(),
        EventType::InventoryUpdated => InventoryUpdated {
            product_id,
            location_id: warehouse,
            quantity: 150,
            reserved_quantity: 5,
            available_quantity: 145,
            update_type: "restock".into(),
            source_event: "purchase_order_received".into(),
        }
        .into(),
        EventType::ProductOutOfStock => {
            ProductOutOfStock { product_id, last_stock_level: 0, location_id: warehouse }.into()
        }
        EventType::ProbeCounted => ProbeCounted {
            aggregate_id: runner_id,
            count: 3,
            input_id: "4f1c2a9e-2d7b-4c5e-9a3f-0b8e6d1c7a21".into(),
            input_type: "runner.online".into(),
            occurred_at: at(0),
        }
        .into(),
        EventType::DisputeOpened => DisputeOpened {
            dispute_id: format!("dsp_{tag}"),
            booking_id,
            opened_by: "requester".into(),
            reason: Some("pet_arrived_late".into()),
            occurred_at: at(30),
        }
        .into(),
        EventType::DisputeResolved => DisputeResolved {
            dispute_id: format!("dsp_{tag}"),
            booking_id,
            resolution: DisputeResolution::Split,
            ratio_requester_bps: Some(5000),
            ratio_agent_bps: Some(5000),
            occurred_at: at(45),
        }
        .into(),
        EventType::PaymentEscrowHoldRequested => PaymentEscrowHoldRequested {
            booking_id,
            booking_number,
            owner_id,
            runner_id,
            amount_cents: cents(4500),
            currency: usd(),
            occurred_at: at(1),
        }
        .into(),
        EventType::PaymentEscrowReleaseRequested => PaymentEscrowReleaseRequested {
            booking_id,
            payment_id,
            runner_id,
            amount_cents: cents(4500),
            runner_payout_cents: cents(3825),
            platform_fee_cents: cents(675),
            currency: usd(),
            reason: "delivered".into(),
            occurred_at: at(31),
        }
        .into(),
        EventType::PaymentEscrowRefundRequested => PaymentEscrowRefundRequested {
            booking_id,
            payment_id,
            owner_id,
            amount_cents: cents(4500),
            currency: usd(),
            reason: "cancelled".into(),
            occurred_at: at(12),
        }
        .into(),
        EventType::BookingCancelRequested => {
            BookingCancelRequested { booking_id, booking_number, reason: "hold_timeout".into(), occurred_at: at(16) }
                .into()
        }
        EventType::EscrowSagaStarted => EscrowSagaStarted {
            booking_id,
            booking_number,
            owner_id,
            amount_cents: cents(4500),
            currency: usd(),
            occurred_at: at(0),
        }
        .into(),
        EventType::EscrowSagaStateChanged => EscrowSagaStateChanged {
            booking_id,
            owner_id: Some(owner_id),
            runner_id: Some(runner_id),
            from: "requested/none".into(),
            to: "accepted/hold_requested".into(),
            cause_event_id: "4f1c2a9e-2d7b-4c5e-9a3f-0b8e6d1c7a21".into(),
            occurred_at: at(1),
        }
        .into(),
        EventType::EscrowSagaCompleted => EscrowSagaCompleted {
            booking_id,
            owner_id,
            runner_id,
            runner_payout_cents: cents(3825),
            platform_fee_cents: cents(675),
            refunded_cents: cents(0),
            currency: usd(),
            occurred_at: at(32),
        }
        .into(),
        EventType::EscrowSagaCancelled => EscrowSagaCancelled {
            booking_id,
            owner_id: Some(owner_id),
            runner_id: Some(runner_id),
            refunded_cents: cents(4500),
            currency: Some(usd()),
            reason: "cancelled_by_owner".into(),
            occurred_at: at(13),
        }
        .into(),
        EventType::EscrowSagaCompensated => EscrowSagaCompensated {
            booking_id,
            owner_id: Some(owner_id),
            runner_id: Some(runner_id),
            refunded_cents: cents(0),
            currency: Some(usd()),
            reason: "hold_timeout".into(),
            occurred_at: at(17),
        }
        .into(),
        EventType::EscrowSagaAutoConfirmed => {
            EscrowSagaAutoConfirmed { booking_id, owner_id, runner_id, in_delivery_since: at(20), occurred_at: at(50) }
                .into()
        }
        EventType::EscrowSagaStuck => EscrowSagaStuck {
            booking_id,
            owner_id: Some(owner_id),
            runner_id: Some(runner_id),
            state: "delivered/release_requested".into(),
            waiting_for: "payment.escrow_released".into(),
            since: at(31),
            occurred_at: at(41),
        }
        .into(),
        EventType::ProbeIdle => {
            ProbeIdle { aggregate_id: runner_id, count: 3, last_seen_at: at(0), occurred_at: at(5) }.into()
        }
        EventType::OrderCancelRequested => OrderCancelRequested {
            order_id,
            reason: "customer_request".into(),
            requested_by: "customer".into(),
            requested_at: at(29),
        }
        .into(),
        EventType::InventoryReservationFailed => InventoryReservationFailed {
            reservation_id,
            product_id,
            quantity: 2,
            location_id: warehouse,
            order_id,
            available_quantity: 1,
            reason: "insufficient_stock".into(),
        }
        .into(),
        EventType::InventoryReserveRequested => InventoryReserveRequested {
            reservation_id,
            order_id,
            product_id,
            quantity: 2,
            location_id: warehouse,
            expires_at: at(15),
            occurred_at: at(0),
        }
        .into(),
        EventType::InventoryReleaseRequested => InventoryReleaseRequested {
            reservation_id,
            order_id,
            product_id,
            quantity: 2,
            location_id: warehouse,
            reason: "order_cancelled".into(),
            occurred_at: at(30),
        }
        .into(),
        EventType::InventoryConsumeRequested => InventoryConsumeRequested {
            reservation_id,
            order_id,
            product_id,
            quantity: 2,
            location_id: warehouse,
            occurred_at: at(45),
        }
        .into(),
        EventType::PaymentCaptureRequested => PaymentCaptureRequested {
            order_id,
            customer_id: format!("cust_{tag}"),
            amount: dec("47.98"),
            currency: usd(),
            occurred_at: at(5),
        }
        .into(),
        EventType::PaymentRefundRequested => PaymentRefundRequested {
            order_id,
            payment_id,
            amount: dec("47.98"),
            currency: usd(),
            reason: "customer_request".into(),
            occurred_at: at(30),
        }
        .into(),
        EventType::PaymentCaptured => {
            PaymentCaptured { order_id, payment_id, amount: dec("47.98"), currency: usd(), captured_at: at(44) }.into()
        }
        EventType::PaymentCaptureFailed => {
            PaymentCaptureFailed { order_id, reason: "card_declined".into(), failed_at: at(44) }.into()
        }
        EventType::PaymentRefunded => PaymentRefunded {
            order_id,
            payment_id,
            refund_id: format!("ref_{tag}"),
            amount: dec("47.98"),
            currency: usd(),
            refund_method: "original_payment_method".into(),
            processed_at: at(50),
        }
        .into(),
    }
}

/// One event of every type, in catalog order, from source `/sagastream/samples`.
pub fn one_of_each(tag: &str) -> Vec<Event> {
    EventType::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Event::new("/sagastream/samples", payload(*t, tag))
                .with_correlation_id(format!("corr_{tag}"))
                .with_sequence(i as u64 + 1)
        })
        .collect()
}
