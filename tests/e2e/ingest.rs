//! The ingest processor end to end, as a process against the broker: every
//! example event of seeds 000 (Go4u), 001 (KorrectNG) and 004 (First
//! Viscount), in its platform's own envelope on its raw topic, ends as a
//! typed CloudEvent on its domain topic or as a DLQ record with its reason;
//! a second run on fresh topics writes the same bytes; and no output record
//! or log line holds the personal values the inputs carry.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sagastream_contract::{decode, Payload, Record};
use sagastream_e2e::apply_topics;
use sagastream_e2e::probe::{
    binary, free_port, prefix, produce, produce_at, read_topic, tail, wait_group_caught_up, Consumed, Probe,
};
use sagastream_e2e::seeds::{self, Example, RAW_PII};

const OUTPUTS: [&str; 4] = ["inventory.events", "order.events", "payment.events", "ingest.dlq"];

/// What each example must become, decided here from the seeds and
/// docs/ingest.md, not from the processor's table: (canonical type, topic,
/// the payload field of the native record that is the key), or `None` for a
/// type sagastream does not carry.
fn expected(e: &Example) -> Option<(&'static str, &'static str, &'static str)> {
    match (e.platform, e.native_type.as_str()) {
        ("first_viscount", "product.out_of_stock") => Some(("product.out_of_stock", "inventory.events", "product_id")),
        ("first_viscount", "InventoryReserved") => Some(("inventory.reserved", "inventory.events", "product_id")),
        ("first_viscount", "InventoryReleased") => Some(("inventory.released", "inventory.events", "product_id")),
        ("first_viscount", "InventoryAdjusted") => Some(("inventory.adjusted", "inventory.events", "product_id")),
        ("first_viscount", "LowStockAlert") => Some(("inventory.low_stock", "inventory.events", "product_id")),
        ("first_viscount", "InventoryUpdated") => Some(("inventory.updated", "inventory.events", "product_id")),
        ("first_viscount", t) if t.starts_with("order.") => {
            let t = ["order.created", "order.validated", "order.completed", "order.cancelled", "order.refunded"]
                .into_iter()
                .find(|o| *o == t)
                .expect("a seed 004 order type");
            Some((t, "order.events", "order_id"))
        }
        ("go4u", "dispute.opened") => Some(("dispute.opened", "payment.events", "task_id")),
        ("go4u", "dispute.resolved") => Some(("dispute.resolved", "payment.events", "task_id")),
        ("korrectng", "dispute.opened") => Some(("dispute.opened", "payment.events", "contractId")),
        ("korrectng", "dispute.resolved") => Some(("dispute.resolved", "payment.events", "contractId")),
        _ => None,
    }
}

fn event_id(e: &Example) -> &str {
    e.value.get("event_id").or_else(|| e.value.get("id")).and_then(|v| v.as_str()).expect("an event id")
}

fn payload(e: &Example) -> &serde_json::Value {
    e.value.get("data").or_else(|| e.value.get("payload")).expect("a payload")
}

struct Run {
    prefix: String,
    /// Per output topic (unprefixed), its records.
    outputs: BTreeMap<&'static str, Vec<Consumed>>,
    log: String,
}

fn run(tag: &str, examples: &[Example]) -> Run {
    let prefix = prefix(tag);
    tokio::runtime::Runtime::new().unwrap().block_on(apply_topics(&prefix));
    let bin = binary("sagastream-ingest", "sagastream-ingest");
    let mut ingest = Probe::start_with(&bin, &prefix, "ingest-0", free_port(), &["--commit-interval", "50ms"]);
    ingest.wait_ready(Duration::from_secs(90));
    let mut by_topic: BTreeMap<&str, Vec<Record>> = BTreeMap::new();
    for e in examples {
        let value = serde_json::to_vec(&e.value).unwrap();
        let record = Record { key: Some(event_id(e).as_bytes().to_vec()), value: Some(value), headers: Vec::new() };
        by_topic.entry(e.topic.as_str()).or_default().push(record);
    }
    for (topic, records) in &by_topic {
        // The seeds' day: a DLQ record names its input's timestamp.
        produce_at(&format!("{prefix}{topic}"), records, 1_759_309_200_000);
    }
    let typed = examples.iter().filter(|e| expected(e).is_some()).count();
    let platforms = ["first_viscount", "go4u", "korrectng"];
    ingest.wait_metrics("every example read", Duration::from_secs(120), |m| {
        let total: f64 = platforms
            .iter()
            .map(|p| sagastream_testkit::sum_metric(m, &format!("sagastream_ingest_records_total{{platform=\"{p}\"")))
            .sum();
        total >= examples.len() as f64
            && sagastream_testkit::sum_metric(m, "sagastream_transactions_total{result=\"committed\"}") > 0.0
    });
    let metrics = ingest.metrics();
    let translated: f64 = platforms
        .iter()
        .map(|p| {
            sagastream_testkit::sum_metric(
                &metrics,
                &format!("sagastream_ingest_records_total{{platform=\"{p}\",outcome=\"translated\"}}"),
            )
        })
        .sum();
    assert_eq!(translated, typed as f64, "translated records, per the metric");
    let mut outputs = BTreeMap::new();
    for topic in OUTPUTS {
        let want = match topic {
            "ingest.dlq" => examples.len() - typed,
            t => examples.iter().filter(|e| expected(e).is_some_and(|x| x.1 == t)).count(),
        };
        let got = read_topic(&format!("{prefix}{topic}"), true, want, Duration::from_secs(60));
        assert_eq!(got.len(), want, "{topic}: one record per example that goes there");
        outputs.insert(topic, got);
    }
    drop(ingest);
    let log = std::fs::read_to_string(sagastream_e2e::repo_root().join(format!(".local/e2e/{prefix}ingest-0.log")))
        .unwrap_or_default();
    Run { prefix, outputs, log }
}

fn header(c: &Consumed, name: &str) -> String {
    c.header(name).unwrap_or_else(|| panic!("no {name} header: {:?}", c.record.headers))
}

/// A record as bytes with the run's topic prefix taken out of its headers
/// (a DLQ record names the raw topic it came from), for comparing runs.
type Bytes = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Vec<u8>)>);

fn normalised(c: &Consumed, prefix: &str) -> Bytes {
    let headers = c
        .record
        .headers
        .iter()
        .map(|h| {
            let v = h.value.clone().unwrap_or_default();
            let v = String::from_utf8(v.clone()).map(|s| s.replace(prefix, "").into_bytes()).unwrap_or(v);
            (h.name.to_string(), v)
        })
        .collect();
    (c.record.key.clone(), c.record.value.clone(), headers)
}

#[test]
fn every_seed_example_is_translated_or_dead_lettered_the_same_on_a_rerun_with_no_personal_data() {
    let examples = seeds::all();
    assert_eq!(examples.len(), 70, "15 First Viscount, 34 Go4u and 21 KorrectNG examples");
    let first = run("ingest-a", &examples);

    // Typed CloudEvents: the producer's id, the canonical type, the key.
    let mut seen = BTreeSet::new();
    for e in examples.iter() {
        let id = event_id(e);
        match expected(e) {
            Some((event_type, topic, key_field)) => {
                let out = first.outputs[topic]
                    .iter()
                    .find(|c| c.header("ce_id").as_deref() == Some(id))
                    .unwrap_or_else(|| panic!("{} {}: no CloudEvent {id} on {topic}", e.platform, e.native_type));
                let decoded = decode(&out.record).unwrap_or_else(|err| panic!("{id}: {err}"));
                assert_eq!(decoded.event.event_type().as_str(), event_type, "{id}");
                let key = payload(e)[key_field].as_str().unwrap();
                assert_eq!(decoded.key, key, "{id}: keyed by the aggregate");
                assert_eq!(header(out, "ce_subject"), key);
                assert!(header(out, "ce_source").starts_with(&format!("/{}/", e.platform.replace('_', "-"))), "{id}");
                match (&decoded.event.data, e.platform) {
                    (Payload::DisputeResolved(d), "go4u") => {
                        // The seed's 0.5 / 0.5, in basis points.
                        assert_eq!((d.ratio_requester_bps, d.ratio_agent_bps), (Some(5000), Some(5000)));
                    }
                    (Payload::DisputeResolved(d), "korrectng") => {
                        // customerRefund 1500, artisanPayment 1500: half each.
                        assert_eq!((d.ratio_requester_bps, d.ratio_agent_bps), (Some(5000), Some(5000)));
                    }
                    (Payload::OrderCreated(o), _) => assert_eq!(o.total_amount.as_str(), "47.98"),
                    _ => {}
                }
                assert!(seen.insert(id.to_owned()), "{id} translated once");
            }
            None => {
                let dlq = first.outputs["ingest.dlq"]
                    .iter()
                    .find(|c| {
                        c.header("__streams.errors.topic").as_deref() == Some(&format!("{}{}", first.prefix, e.topic))
                            && c.record.value.as_deref().is_some_and(|v| String::from_utf8_lossy(v).contains(id))
                    })
                    .unwrap_or_else(|| panic!("{} {}: no DLQ record", e.platform, e.native_type));
                assert_eq!(header(dlq, "__streams.errors.exception"), "unmapped_type", "{id}");
                assert!(header(dlq, "__streams.errors.message").contains(&e.native_type), "{id}: the reason names it");
            }
        }
    }

    // No personal value in any record or log line.
    for (topic, records) in &first.outputs {
        for c in records {
            let mut bytes = c.record.value.clone().unwrap_or_default();
            bytes.extend(c.record.key.clone().unwrap_or_default());
            for h in &c.record.headers {
                bytes.extend(h.value.clone().unwrap_or_default());
            }
            let text = String::from_utf8_lossy(&bytes);
            for raw in RAW_PII {
                assert!(!text.contains(raw), "{topic} holds {raw:?}: {text}");
            }
        }
    }
    assert!(first.log.contains("serving /metrics"), "the log was read");
    for raw in RAW_PII {
        assert!(!first.log.contains(raw), "the log holds {raw:?}");
    }
    let hashed = first.outputs["ingest.dlq"].iter().any(|c| {
        c.record.value.as_deref().is_some_and(|v| String::from_utf8_lossy(v).contains("\"email_hash\":\"sha256:"))
    });
    assert!(hashed, "KorrectNG's user emails became sha256 references");

    // A second run on fresh topics: the same bytes.
    let second = run("ingest-b", &examples);
    for topic in OUTPUTS {
        let norm = |r: &Run| {
            let mut v: Vec<_> = r.outputs[topic].iter().map(|c| normalised(c, &r.prefix)).collect();
            v.sort();
            v
        };
        assert_eq!(norm(&first), norm(&second), "{topic}: the rerun wrote other bytes");
    }
}

/// `n` raw records, half First Viscount `order.created` on its per-type
/// topic, half Go4u `dispute.resolved` on `go4u.events`: (raw topic, event
/// id, the domain topic it must reach, record).
fn bulk(n: usize) -> Vec<(&'static str, String, &'static str, Record)> {
    (0..n)
        .map(|i| {
            let (topic, id, to, key, value) = if i % 2 == 0 {
                let (id, order) = (format!("00000000-0000-4000-8000-{i:012}"), format!("order-{i:06}"));
                let value = serde_json::json!({
                    "event_id": id, "correlation_id": format!("10000000-0000-4000-8000-{i:012}"),
                    "timestamp": "2024-01-15T12:00:00Z", "source_service": "order-management-service",
                    "event_version": "1.0", "event_type": "order.created",
                    "data": {"order_id": order, "customer_id": format!("cust_{i}"), "total_amount": "47.98",
                             "currency": "USD", "status": "pending",
                             "items": [{"product_id": "prod_1", "quantity": 2, "unit_price": "23.99", "total_price": "47.98"}],
                             "shipping_address": {"street": "1 Main St", "city": "Anytown", "state": "CA", "zip": "12345", "country": "US"},
                             "billing_address": {"street": "1 Main St", "city": "Anytown", "state": "CA", "zip": "12345", "country": "US"}}
                });
                ("order-management.order.created.v1", id, "order.events", order, value)
            } else {
                let (id, task) = (format!("01JGQW{i:020}"), format!("tsk_{i:06}"));
                let value = serde_json::json!({
                    "event_id": id, "event_name": "dispute.resolved", "event_version": 1,
                    "occurred_at": "2025-09-25T15:00:00Z", "producer": "admin-service",
                    "payload": {"dispute_id": format!("dsp_{i}"), "task_id": task, "resolution": "split",
                                "ratio_requester": 0.5, "ratio_agent": 0.5, "resolved_at": "2025-09-25T15:00:00Z"},
                    "metadata": {"trace_id": "a3f2", "sequence": i, "ip": "203.0.113.7"}
                });
                ("go4u.events", id, "payment.events", task, value)
            };
            let record =
                Record { key: Some(key.into_bytes()), value: Some(serde_json::to_vec(&value).unwrap()), headers: Vec::new() };
            (topic, id, to, record)
        })
        .collect()
}

/// A stateless processor commits in the background while its next
/// transaction fills, and translates ahead of its loop. Through every fourth
/// commit failing just before EndTxn (the offsets sent, the records
/// written, the next transaction's records held back, more on their way to
/// translation), a kill -9 with a transaction open and a rebalance, every input is
/// on its domain topic exactly once for a read_committed consumer, and none
/// is lost.
#[test]
fn background_commits_stay_exactly_once_through_failed_commits_a_kill_and_a_rebalance() {
    const N: usize = 6000;
    let prefix = prefix("ingest-eos");
    tokio::runtime::Runtime::new().unwrap().block_on(apply_topics(&prefix));
    let inputs = bulk(N);
    let send = |part: &[(&str, String, &str, Record)]| {
        let mut by_topic: BTreeMap<&str, Vec<Record>> = BTreeMap::new();
        for (topic, _, _, record) in part {
            by_topic.entry(topic).or_default().push(record.clone());
        }
        for (topic, records) in &by_topic {
            // Stamped now: records stamped a year back would fall to the topics' retention mid-test.
            produce(&format!("{prefix}{topic}"), records, None);
        }
    };
    send(&inputs[..N / 2]);
    let bin = binary("sagastream-ingest", "sagastream-ingest");
    // Short transactions, so that many commits overlap the next one's records.
    // Commits by count too, so that however slow the machine, many commit (and fail) before the hang.
    let flags = [
        "--commit-interval",
        "10ms",
        "--commit-max-records",
        "100",
        "--test-fail-every-commit",
        "4",
        "--test-hang-after-outputs",
        "2500",
    ];
    let mut first = Probe::start_with(&bin, &prefix, "ingest-0", free_port(), &flags);
    first.wait_log("test hook: hanging", Duration::from_secs(120));
    let metrics = first.metrics();
    let metric = |series: &str| sagastream_testkit::sum_metric(&metrics, series);
    assert!(metric("sagastream_transactions_total{result=\"aborted\"}") >= 2.0, "the injected failures aborted");
    assert!(metric("sagastream_transactions_total{result=\"committed\"}") >= 3.0, "commits went through between them");
    first.kill9();
    let log = first.log_text();
    let failed = log.matches("injected failure before ending commit").count();
    assert!(failed >= 2, "{failed} injected failures: {}", tail(&log, 40));

    // The successor fences it; a second member joins, and the other half
    // arrives while partitions move between them (revoked with a commit in flight).
    let mut second = Probe::start_with(&bin, &prefix, "ingest-0", free_port(), &["--commit-interval", "10ms"]);
    second.wait_ready(Duration::from_secs(90));
    let mut third = Probe::start_with(&bin, &prefix, "ingest-1", free_port(), &["--commit-interval", "10ms"]);
    send(&inputs[N / 2..]);
    third.wait_ready(Duration::from_secs(90));
    for topic in ["order-management.order.created.v1", "go4u.events"] {
        wait_group_caught_up(&format!("{prefix}ingest"), &format!("{prefix}{topic}"), Duration::from_secs(180));
    }
    for member in [&mut second, &mut third] {
        let refused =
            member.metric("sagastream_ingest_records_total{platform=\"first_viscount\",outcome=\"payload_invalid\"}");
        assert_eq!(refused, 0.0, "the inputs are valid");
        assert!(member.terminate(Duration::from_secs(30)).success());
    }
    for to in ["order.events", "payment.events"] {
        let want: BTreeSet<&str> = inputs.iter().filter(|i| i.2 == to).map(|i| i.1.as_str()).collect();
        let got = read_topic(&format!("{prefix}{to}"), true, want.len(), Duration::from_secs(60));
        let ids: Vec<String> = got.iter().map(|c| header(c, "ce_id")).collect();
        let unique: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(ids.len(), unique.len(), "{to}: {} duplicate(s) read_committed", ids.len() - unique.len());
        let lost: Vec<&&str> = want.difference(&unique).take(5).collect();
        let stray: Vec<&&str> = unique.difference(&want).take(5).collect();
        assert!(
            lost.is_empty() && stray.is_empty(),
            "{to}: {} of {} read; lost {lost:?}…, stray {stray:?}…",
            unique.len(),
            want.len()
        );
    }
}
