//! The ingest processor in the same bench run: foreign records translated
//! per second under exactly-once, against the transactional copy loop over
//! the same raw records. Stateless, so its target is close to the ceiling.
//!
//! `SAGASTREAM_BENCH_INGEST` (default 40000) records, half First Viscount
//! `order.created` envelopes on `order-management.order.created.v1`, half
//! Go4u `dispute.resolved` envelopes (a decimal ratio to turn into basis
//! points, an IP to scrub) on `go4u.events`, produced before ingest starts;
//! timed from its first translated record to its last, like the copy loop.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use sagastream_contract::Record;
use sagastream_kafka::{ClientSettings, BOOTSTRAP_ENV};
use serde_json::json;

use crate::{copy_loop, metric, produce, wait, Guard, Inputs};

pub struct IngestRun {
    pub records: usize,
    pub elapsed: Duration,
    pub ceiling: f64,
}

impl IngestRun {
    pub fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

fn binary() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_bench-ingest").into()
}

fn inputs(n: usize) -> Inputs {
    let record = |key: &str, value: serde_json::Value| Record {
        key: Some(key.as_bytes().to_vec()),
        value: Some(serde_json::to_vec(&value).expect("JSON")),
        headers: Vec::new(),
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if i % 2 == 0 {
            let id = format!("order-{i:07}");
            let value = json!({
                "event_id": format!("00000000-0000-4000-8000-{i:012}"),
                "correlation_id": format!("10000000-0000-4000-8000-{i:012}"),
                "timestamp": "2024-01-15T12:00:00Z",
                "source_service": "order-management-service",
                "event_version": "1.0",
                "event_type": "order.created",
                "data": {
                    "order_id": id, "customer_id": format!("cust_{i}"), "total_amount": "47.98",
                    "currency": "USD", "status": "pending",
                    "items": [{"product_id": "prod_123456789", "quantity": 2, "unit_price": "23.99", "total_price": "47.98"}],
                    "shipping_address": {"street": "123 Main St", "city": "Anytown", "state": "CA", "zip": "12345", "country": "US"},
                    "billing_address": {"street": "123 Main St", "city": "Anytown", "state": "CA", "zip": "12345", "country": "US"}
                }
            });
            out.push(("order-management.order.created.v1", record(&id, value)));
        } else {
            let task = format!("tsk_{i:07}");
            let value = json!({
                "event_id": format!("01JGQW{i:020}"),
                "event_name": "dispute.resolved",
                "event_version": 1,
                "occurred_at": "2025-09-25T15:00:00Z",
                "producer": "admin-service",
                "payload": {"dispute_id": format!("dsp_{i}"), "task_id": task, "resolution": "split",
                            "ratio_requester": 0.5, "ratio_agent": 0.5, "resolved_at": "2025-09-25T15:00:00Z"},
                "metadata": {"trace_id": "a3f2", "sequence": i, "ip": "203.0.113.7", "locale": "en"}
            });
            out.push(("go4u.events", record(&task, value)));
        }
    }
    out
}

pub fn run(settings: &ClientSettings, root: &Path, prefix: &str, n: usize) -> anyhow::Result<IngestRun> {
    let name = |t: &str| format!("{prefix}{t}");
    produce(settings, &name, &inputs(n))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = std::fs::File::create(root.join(".local/bench/ingest.log"))?;
    let mut ingest = Guard(
        Command::new(binary())
            .args(["--instance-id", "bench-0", "--topic-prefix", prefix])
            .args(["--group-id", &format!("{prefix}ingest"), "--metrics-addr", &format!("127.0.0.1:{port}")])
            .env(BOOTSTRAP_ENV, &settings.bootstrap_servers)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting sagastream-ingest")?,
    );
    let metrics =
        || sagastream_testkit::get(&format!("127.0.0.1:{port}"), "/metrics").map(|r| r.body).unwrap_or_default();
    let mut started = None;
    wait(Duration::from_secs(600), "ingest to translate every record", || {
        let all = metric(&metrics(), "sagastream_ingest_records_total{");
        if all > 0.0 && started.is_none() {
            started = Some(Instant::now());
        }
        all >= n as f64
    })?;
    let elapsed = started.map_or(Duration::ZERO, |s| s.elapsed());
    let text = metrics();
    let translated = ["first_viscount", "go4u"]
        .iter()
        .map(|p| metric(&text, &format!("sagastream_ingest_records_total{{platform=\"{p}\",outcome=\"translated\"")))
        .sum::<f64>();
    ingest.stop();
    if translated < n as f64 {
        bail!("the ingest run was not clean: {translated} of {n} records translated");
    }
    let raw = [name("order-management.order.created.v1"), name("go4u.events")];
    let copy = copy_loop(settings, &name("ceiling-copy"), &raw, &name("probe.events"), n)?;
    Ok(IngestRun { records: n, elapsed, ceiling: n as f64 / copy.as_secs_f64() })
}
