//! The order saga's repartition step end to end: the real
//! `sagastream-order-saga` re-keys `inventory.events` into its internal
//! repartition topic; a test hook aborts the transaction right after a
//! re-keyed record was written and flushed, and the test shows that every
//! inventory answer still reaches the saga's state exactly once. On a broker
//! with Apache Kafka's semantics (`SAGASTREAM_E2E_STRICT_BROKER=1`) the
//! aborted copies are never read; tansu, the old local broker, shows them to
//! read_committed readers (docs/broker.md, appendix), and there the test checks
//! that they are byte-identical twins that de-duplication drops.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use sagastream_contract::payloads::inventory::{InventoryReserved, InventoryUpdated};
use sagastream_contract::payloads::order::{OrderCreated, OrderItem};
use sagastream_contract::{
    decode, decode_rekeyed, encode, ContentMode, Currency, DecimalAmount, Event, Payload, Record,
};
use sagastream_e2e::java_partition;
use sagastream_e2e::probe::{binary, free_port, prefix, produce, read_topic, Consumed, Probe};
use sagastream_e2e::{apply_topics, strict_broker};

const ORDERS: usize = 40;
/// The transaction that writes the 7th re-keyed record is aborted.
const FAIL_AT: &str = "7";

fn order(i: usize) -> OrderCreated {
    let dec = |s: &str| DecimalAmount::new(s).unwrap();
    OrderCreated {
        order_id: format!("order_{i}"),
        customer_id: format!("cust_{i}"),
        total_amount: dec("35.97"),
        currency: Currency::new("USD").unwrap(),
        status: "pending".into(),
        items: vec![
            OrderItem {
                product_id: format!("prod_{}", i % 4),
                quantity: 2,
                unit_price: dec("11.99"),
                total_price: dec("23.98"),
            },
            OrderItem {
                product_id: format!("prod_{}", 4 + i % 3),
                quantity: 1,
                unit_price: dec("11.99"),
                total_price: dec("11.99"),
            },
        ],
        shipping_address: sagastream_contract::samples::address(),
        billing_address: sagastream_contract::samples::address(),
    }
}

/// Records by CloudEvent id; two records with one id must be byte-identical.
fn twins_are_identical(records: &[Consumed]) -> BTreeMap<String, Record> {
    let mut by_id: BTreeMap<String, Record> = BTreeMap::new();
    for c in records {
        let id = c.header("ce_id").expect("a CloudEvent");
        if let Some(twin) = by_id.insert(id.clone(), c.record.clone()) {
            assert_eq!(twin, c.record, "{id}: two different records share an id");
        }
    }
    by_id
}

fn record(event: Event) -> Record {
    encode(&event, ContentMode::Binary).unwrap()
}

#[test]
fn repartition_is_exactly_once_across_an_aborted_transaction() {
    let prefix = prefix("orders-repartition");
    tokio::runtime::Runtime::new().unwrap().block_on(apply_topics(&prefix));
    let topic = |t: &str| format!("{prefix}{t}");
    let bin = binary("sagastream-order-saga", "sagastream-order-saga");
    let mut saga =
        Probe::start_with(&bin, &prefix, "order-0", free_port(), &["--test-fail-after-repartition", FAIL_AT]);
    saga.wait_ready(Duration::from_secs(90));

    // The order service: ORDERS orders of two lines each.
    let orders: Vec<_> = (0..ORDERS).map(|i| record(Event::new("/oms", order(i)).with_time(Utc::now()))).collect();
    produce(&topic("order.events"), &orders, None);

    // The inventory service: one reservation per command, keyed by product,
    // plus stock snapshots that belong to no order.
    let commands = read_topic(&topic("inventory.commands"), true, 2 * ORDERS, Duration::from_secs(120));
    let mut answers = Vec::new();
    for c in &commands {
        let Payload::InventoryReserveRequested(r) = decode(&c.record).unwrap().event.data else { continue };
        let reserved = InventoryReserved {
            reservation_id: r.reservation_id,
            product_id: r.product_id,
            quantity: r.quantity,
            location_id: r.location_id,
            order_id: r.order_id.clone(),
            expires_at: r.expires_at,
        };
        answers.push(record(Event::new("/inventory-service", reserved).with_correlation_id(r.order_id)));
    }
    assert_eq!(answers.len(), 2 * ORDERS, "one reserve command per line");
    let snapshots: Vec<_> = (0..3)
        .map(|p| {
            let updated = InventoryUpdated {
                product_id: format!("prod_{p}"),
                location_id: "warehouse_main".into(),
                quantity: 100,
                reserved_quantity: 0,
                available_quantity: 100,
                update_type: "restock".into(),
                source_event: "purchase_order_received".into(),
            };
            record(Event::new("/inventory-service", updated))
        })
        .collect();
    produce(&topic("inventory.events"), &snapshots, None);
    produce(&topic("inventory.events"), &answers, None);

    saga.wait_metrics("every order validated", Duration::from_secs(120), |m| {
        sagastream_e2e::probe::sum_metric(
            m,
            "sagastream_events_processed_total{event_type=\"inventory.reserved\",outcome=\"applied\"",
        ) >= (2 * ORDERS) as f64
    });
    let m = saga.metrics();
    let sum = |series: &str| sagastream_e2e::probe::sum_metric(&m, series);

    // The hook fired: a transaction with a re-keyed record in it was aborted.
    assert!(sum("sagastream_transactions_total{result=\"aborted\"") >= 1.0, "no transaction was aborted:\n{m}");
    assert!(saga.log_text().contains(&format!("injected failure after re-keyed record {FAIL_AT}")));

    // The aborted transaction's re-keyed records reached the log before the
    // abort (flushed by the hook): read_uncommitted sees them, twins of the
    // retry's records, byte for byte.
    let repartition = topic("order.saga.inventory.repartition");
    let all = read_topic(&repartition, false, 2 * ORDERS + 1, Duration::from_secs(60));
    assert!(all.len() > 2 * ORDERS, "the aborted copies are in the log ({} records)", all.len());
    let unique = twins_are_identical(&all);
    assert_eq!(unique.len(), 2 * ORDERS);
    for (id, r) in &unique {
        let d = decode_rekeyed(r).unwrap();
        let Payload::InventoryReserved(x) = &d.event.data else { panic!("{id}: {:?}", d.event.event_type()) };
        assert_eq!(d.key, x.order_id, "re-keyed by its order");
        let partition = all.iter().find(|c| &c.record == r).unwrap().partition;
        assert_eq!(partition, java_partition(d.key.as_bytes(), 6), "co-partitioned with order.events");
    }

    // Each answer was applied exactly once. On a broker with Apache Kafka's
    // semantics read_committed never shows the aborted copies, so the saga
    // never sees one twice; tansu shows them (docs/broker.md, appendix),
    // and the saga's de-duplication drops exactly those twins.
    let committed = read_topic(&repartition, true, 2 * ORDERS, Duration::from_secs(60));
    assert_eq!(twins_are_identical(&committed).len(), 2 * ORDERS);
    let twins = (committed.len() - 2 * ORDERS) as f64;
    if strict_broker() {
        assert_eq!(twins, 0.0, "read_committed shows an aborted record");
    }
    assert_eq!(
        sum("sagastream_events_processed_total{event_type=\"inventory.reserved\",outcome=\"applied\""),
        (2 * ORDERS) as f64
    );
    assert_eq!(sum("sagastream_events_processed_total{event_type=\"inventory.reserved\",outcome=\"duplicate\""), twins);
    assert_eq!(
        sum("sagastream_events_processed_total{event_type=\"inventory.updated\",outcome=\"not_repartitioned\""),
        3.0
    );
    assert_eq!(sum("sagastream_dlq_records_total"), 0.0, "{m}");

    // And the saga acted once per order: validated, then one capture request
    // (counted by event id: twins of an aborted transaction are one event).
    let once_per_order = |topic: &str, min: usize, pick: fn(Payload) -> Option<String>| {
        let records = read_topic(topic, true, min, Duration::from_secs(60));
        let mut by_order: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, r) in twins_are_identical(&records) {
            if let Some(order) = decode(&r).ok().and_then(|d| pick(d.event.data)) {
                by_order.entry(order).or_default().insert(id);
            }
        }
        assert_eq!(by_order.len(), ORDERS, "{topic}");
        assert!(by_order.values().all(|ids| ids.len() == 1), "{topic}: {by_order:?}");
    };
    once_per_order(&topic("order.events"), 2 * ORDERS, |p| match p {
        Payload::OrderValidated(v) => Some(v.order_id),
        _ => None,
    });
    once_per_order(&topic("payment.commands"), ORDERS, |p| match p {
        Payload::PaymentCaptureRequested(c) => Some(c.order_id),
        _ => None,
    });
    let status = saga.terminate(Duration::from_secs(60));
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
}

/// The reservation TTL must outlast a restart (it runs on event time, so an
/// order in flight during the restart would otherwise expire, correctly).
const SAGA_FLAGS: &[&str] = &["--reservation-ttl", "30s", "--commit-interval", "50ms"];

/// The order saga, the inventory projector and the simulated services
/// (inventory and order payments) as processes; the load generator starts
/// 2,000 orders across the order scenarios and checks every outcome, the
/// money, the stock of every product, the low-stock alerts and the DLQ.
/// Twice on the same topics: undisturbed, then with a SIGTERM restart of the
/// order saga in the middle of the run.
#[test]
fn orders_reach_their_outcomes_undisturbed_and_across_a_restart() {
    use sagastream_e2e::sim::{log_file, sim, wait};
    let prefix = prefix("orders");
    tokio::runtime::Runtime::new().unwrap().block_on(apply_topics(&prefix));
    let saga_bin = binary("sagastream-order-saga", "sagastream-order-saga");
    let port = free_port();
    let mut saga = Probe::start_with(&saga_bin, &prefix, "order-0", port, SAGA_FLAGS);
    let mut projector = Probe::start_with(
        &binary("sagastream-inventory", "sagastream-inventory"),
        &prefix,
        "inventory-0",
        free_port(),
        &[],
    );
    saga.wait_ready(Duration::from_secs(90));
    projector.wait_ready(Duration::from_secs(90));
    let (_participants, sim_log) = sim(&prefix, &["serve", "--latency", "10ms", "--group", "e2e-sim"], "sim");
    let metrics = format!("http://127.0.0.1:{port}/metrics");

    for (phase, restart) in [("clean", false), ("sigterm", true)] {
        let (_, report) = log_file(&prefix, &format!("orders-{phase}-report"));
        let report = report.with_extension("json");
        let processed_before = saga.metric("sagastream_events_processed_total");
        let args = [
            "load",
            "-n",
            "0",
            "--orders",
            "2000",
            "--run-id",
            phase,
            "--max-in-flight",
            "400",
            "--settle-timeout",
            "120s",
            "--saga-metrics",
            &metrics,
            "--report",
            report.to_str().unwrap(),
            "--quiet",
        ];
        let (mut load, load_log) = sim(&prefix, &args, &format!("orders-{phase}-load"));
        if restart {
            // Mid-run: a quarter of the phase's ~12,000 inputs processed.
            saga.wait_metrics("a quarter of the phase processed", Duration::from_secs(180), |m| {
                sagastream_e2e::probe::sum_metric(m, "sagastream_events_processed_total") >= processed_before + 3_000.0
            });
            let status = saga.terminate(Duration::from_secs(60));
            assert!(status.success(), "SIGTERM exits cleanly: {status}");
            saga = Probe::start_with(&saga_bin, &prefix, "order-0", port, SAGA_FLAGS);
            saga.wait_ready(Duration::from_secs(90));
        }
        let status = wait(&mut load.0, Duration::from_secs(400), &load_log);
        let text = std::fs::read_to_string(&load_log).unwrap_or_default();
        println!("---- orders {phase}\n{text}");
        let r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{phase}: no report ({e}); log:\n{text}")),
        )
        .unwrap();
        let o = &r["orders"];
        let n = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("{phase}: not a number: {v}"));
        let context = || format!("{phase}:\n{text}\nsimulator log: {}", sim_log.display());
        assert_eq!((n(&o["orders"]), n(&o["finished"])), (2_000, 2_000), "{}", context());
        let scenarios = o["scenarios"].as_array().unwrap();
        assert_eq!(scenarios.len(), 9, "every order scenario ran; {}", context());
        for row in scenarios {
            assert!(n(&row["bookings"]) > 0);
            assert_eq!(row["as_expected"], row["bookings"], "{}: {}", row["scenario"], context());
        }
        assert_eq!(o["money_right"], true, "{}", context());
        assert_eq!(o["stock_conserved"], true, "{}", context());
        assert!(n(&o["products_checked"]) >= 12, "{}", context());
        assert_eq!(o["alerts_as_expected"], true, "{}", context());
        assert!(n(&o["low_stock_alerts"]) > 0, "stock ran low somewhere; {}", context());
        assert_eq!(n(&o["duplicate_commands"]), 0, "no step commanded twice; {}", context());
        let dlq = &o["dlq"];
        assert!(n(&dlq["expected"]) >= 2 * 100, "the mix sent bad records; {}", context());
        assert_eq!((n(&dlq["missing"]), n(&dlq["unexpected"])), (0, 0), "{}", context());
        assert_eq!(r["ok"], true, "{}", context());
        assert!(status.success(), "{phase}: the load generator's verdict is a failure:\n{text}");
    }
    assert_eq!(projector.metric("sagastream_dlq_records_total"), 0.0, "the projector never saw stock go negative");
    assert!(saga.terminate(Duration::from_secs(60)).success());
    assert!(projector.terminate(Duration::from_secs(60)).success());
}
