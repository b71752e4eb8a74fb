//! The raw records of the ingest bench (`benches/ingest`), shared with the
//! translation micro-bench (`benches/translate.rs`): half First Viscount `order.created`
//! envelopes, half Go4u `dispute.resolved` envelopes, with their topics.

use sagastream_contract::Record;
use serde_json::json;

/// (raw topic, record), in the order they are produced.
pub type Inputs = Vec<(&'static str, Record)>;

pub fn inputs(n: usize) -> Inputs {
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
