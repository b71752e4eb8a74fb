//! The order saga in the same bench run: its events/s under exactly-once,
//! repartition step included, against the transactional copy loop over the
//! same input records.
//!
//! `SAGASTREAM_BENCH_ORDERS` (default 40000) orders of two lines, in three
//! phases that each answer the previous one (what the shop would send):
//! A `order.created`; B `inventory.reserved` per line on `inventory.events`
//! (re-keyed by the saga); C `payment.captured`. Each phase is produced once
//! the previous one is processed and timed from its first record to the
//! last applied.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{TimeDelta, Utc};
use sagastream_contract::payloads::inventory::InventoryReserved;
use sagastream_contract::payloads::order::{OrderCreated, OrderItem};
use sagastream_contract::payloads::payment::PaymentCaptured;
use sagastream_contract::{encode, ContentMode, Currency, DecimalAmount, Event, Payload};
use sagastream_kafka::{ClientSettings, BOOTSTRAP_ENV};

use crate::{copy_loop, cpu_seconds, metric, produce, wait, Guard, Inputs};

pub struct OrderRun {
    pub inputs: usize,
    pub phases: [Duration; 3],
    /// The saga process's CPU seconds per 1,000 of each phase's inputs.
    pub cpu_per_1000: [f64; 3],
    pub ceiling: f64,
}

impl OrderRun {
    pub fn rate(&self) -> f64 {
        self.inputs as f64 / self.phases.iter().sum::<Duration>().as_secs_f64()
    }
}

/// The order saga, built by cargo with the bench (this crate's `bench-order-saga`).
fn binary() -> anyhow::Result<std::path::PathBuf> {
    Ok(env!("CARGO_BIN_EXE_bench-order-saga").into())
}

fn inputs(orders: usize) -> [Inputs; 3] {
    let now = Utc::now();
    let rec = |p: Payload, corr: &str| {
        encode(&Event::new("/bench", p).with_time(now).with_correlation_id(corr), ContentMode::Binary).expect("encodes")
    };
    let dec = |s: &str| DecimalAmount::new(s).expect("decimal");
    let usd = Currency::new("USD").expect("ISO");
    let address = sagastream_contract::samples::address();
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..orders {
        let id = format!("order-{i:07}");
        let lines = [(format!("prod-{}", i % 50), 2u32), (format!("prod-{}", 50 + i % 50), 1u32)];
        let created = OrderCreated {
            order_id: id.clone(),
            customer_id: format!("cust-{i}"),
            total_amount: dec("35.97"),
            currency: usd.clone(),
            status: "pending".into(),
            items: lines
                .iter()
                .map(|(p, q)| OrderItem {
                    product_id: p.clone(),
                    quantity: *q,
                    unit_price: dec("11.99"),
                    total_price: dec(if *q == 2 { "23.98" } else { "11.99" }),
                })
                .collect(),
            shipping_address: address.clone(),
            billing_address: address.clone(),
        };
        a.push(("order.events", rec(created.into(), &id)));
        for (n, (product, quantity)) in lines.iter().enumerate() {
            let reserved = InventoryReserved {
                reservation_id: sagastream_order_saga::saga::reservation_id(&id, n + 1),
                product_id: product.clone(),
                quantity: *quantity,
                location_id: "warehouse_main".into(),
                order_id: id.clone(),
                expires_at: now + TimeDelta::minutes(15),
            };
            b.push(("inventory.events", rec(reserved.into(), &id)));
        }
        let captured = PaymentCaptured {
            order_id: id.clone(),
            payment_id: format!("pay-{id}"),
            amount: dec("35.97"),
            currency: usd.clone(),
            captured_at: now,
        };
        c.push(("payment.events", rec(captured.into(), &id)));
    }
    [a, b, c]
}

pub fn run(settings: &ClientSettings, root: &Path, prefix: &str, orders: usize) -> anyhow::Result<OrderRun> {
    let name = |t: &str| format!("{prefix}{t}");
    let phases = inputs(orders);
    let inputs: usize = phases.iter().map(Vec::len).sum();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = std::fs::File::create(root.join(".local/bench/order-saga.log"))?;
    let mut saga = Guard(
        Command::new(binary()?)
            .args(["--instance-id", "bench-0", "--topic-prefix", prefix])
            .args(["--group-id", &format!("{prefix}order-saga"), "--metrics-addr", &format!("127.0.0.1:{port}")])
            .env(BOOTSTRAP_ENV, &settings.bootstrap_servers)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting sagastream-order-saga")?,
    );
    let metrics = |path: &str| sagastream_testkit::get(&format!("127.0.0.1:{port}"), path);
    wait(Duration::from_secs(120), "the order saga to be ready", || {
        metrics("/readyz").is_some_and(|r| r.status == 200)
    })?;
    let applied = |event_type: &str| {
        let text = metrics("/metrics").map(|r| r.body).unwrap_or_default();
        metric(&text, &format!("sagastream_events_processed_total{{event_type=\"{event_type}\",outcome=\"applied\""))
    };
    let mut times = [Duration::ZERO; 3];
    let mut cpu_per_1000 = [0.0; 3];
    for (i, (records, (event_type, want))) in phases
        .iter()
        .zip([("order.created", orders), ("inventory.reserved", 2 * orders), ("payment.captured", orders)])
        .enumerate()
    {
        let start = Instant::now();
        let cpu = cpu_seconds(saga.0.id())?;
        produce(settings, &name, records)?;
        wait(Duration::from_secs(600), event_type, || applied(event_type) >= want as f64)?;
        times[i] = start.elapsed();
        cpu_per_1000[i] = (cpu_seconds(saga.0.id())? - cpu) / records.len() as f64 * 1000.0;
    }
    let text = metrics("/metrics").map(|r| r.body).unwrap_or_default();
    let dlq = metric(&text, "sagastream_dlq_records_total");
    saga.stop();
    if dlq > 0.0 {
        bail!("the order saga run was not clean: {dlq} DLQ records");
    }
    let copied = [name("order.events"), name("inventory.events"), name("payment.events")];
    let copy = copy_loop(settings, &name("ceiling-copy"), &copied, &name("probe.events"), inputs)?;
    Ok(OrderRun { inputs, phases: times, cpu_per_1000, ceiling: inputs as f64 / copy.as_secs_f64() })
}
