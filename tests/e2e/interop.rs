//! Our binding against the CloudEvents Python SDK's Kafka binding, through the broker.

use std::time::Duration;

use sagastream_contract::{decode, encode, samples, ContentMode, EventType, Payload};
use sagastream_e2e::{apply_repo_topics, python_peer, settings};
use sagastream_kafka::io;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn events_we_write_are_read_by_the_python_sdk() {
    apply_repo_topics().await;
    let producer = io::producer(&settings("e2e-interop-out")).unwrap();
    let tag = format!("py{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let event = samples::one_of_each(&tag).into_iter().find(|e| e.event_type() == EventType::BookingAccepted).unwrap();
    for mode in [ContentMode::Binary, ContentMode::Structured] {
        let pos = io::send(&producer, "booking.events", &encode(&event, mode).unwrap()).await.unwrap();
        let got = python_peer(&["read", pos.topic, &pos.partition.to_string(), &pos.offset.to_string()]);
        let a = &got["attributes"];
        assert_eq!(a["specversion"], "1.0", "{mode:?}: {got}");
        assert_eq!(a["id"], event.id.as_str());
        assert_eq!(a["source"], "/sagastream/samples");
        assert_eq!(a["type"], "booking.accepted");
        assert_eq!(a["subject"], event.key());
        assert_eq!(a["partitionkey"], event.key());
        assert_eq!(a["datacontenttype"], "application/json");
        assert_eq!(a["traceparent"], event.traceparent.as_ref().unwrap().as_str());
        assert_eq!(a["correlationid"], format!("corr_{tag}"));
        assert_eq!(a["sequence"], "2");
        let time = chrono::DateTime::parse_from_rfc3339(a["time"].as_str().unwrap()).unwrap();
        assert_eq!(time, event.time.unwrap());
        assert_eq!(got["key"], event.key());
        assert_eq!(got["data"], event.data.to_json_value(), "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_the_python_sdk_writes_are_decoded_typed() {
    apply_repo_topics().await;
    let s = settings("e2e-interop-in");
    let tag = format!("sdk{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let payload = samples::payload(EventType::PaymentEscrowHeld, &tag);
    let key = payload.aggregate_id().to_owned();
    for mode in ["binary", "structured"] {
        let id = format!("{tag}-{mode}");
        let spec = json!({
            "attributes": {
                "id": id,
                "type": "payment.escrow_held",
                "source": "/kilat/service-payment",
                "time": "2024-01-15T10:03:00.250Z",
                "subject": key,
                "partitionkey": key,
                "datacontenttype": "application/json",
                "correlationid": format!("corr_{tag}"),
                "sequence": "5",
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            },
            "data": payload.to_json_value(),
        });
        let written = python_peer(&["write", "payment.events", mode, &spec.to_string()]);
        let pos = io::Position {
            topic: "payment.events",
            partition: written["partition"].as_i64().unwrap() as i32,
            offset: written["offset"].as_i64().unwrap(),
        };
        let read = io::read_positions(&s, &[pos], Duration::from_secs(30)).unwrap();
        let d = decode(&read[&pos]).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(d.mode.as_str(), mode);
        assert_eq!(d.key, key);
        assert_eq!(d.event.id, id);
        assert_eq!(d.event.source, "/kilat/service-payment");
        assert_eq!(d.event.sequence, Some(5));
        assert_eq!(d.event.correlationid.as_deref(), Some(format!("corr_{tag}").as_str()));
        assert_eq!(d.event.time.unwrap().to_rfc3339(), "2024-01-15T10:03:00.250+00:00");
        assert_eq!(d.event.data, payload, "{mode}");
        let Payload::PaymentEscrowHeld(p) = &d.event.data else { panic!("wrong type") };
        assert_eq!(p.amount_cents.get(), 4500);
    }
}
