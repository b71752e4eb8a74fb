//! The Avro interoperability peers against a real processor, through
//! Apache Kafka and the same registry: runner.online records that
//! confluent-kafka's Python AvroSerializer and kafkajs with
//! @kafkajs/confluent-schema-registry produce (binary-mode CloudEvents
//! with ce_ headers of their own making) are counted by the probe, and the
//! Avro the probe writes is consumed off its topic by both peers'
//! deserializers.

use sagastream_contract::{Payload, AVRO_CONTENT_TYPE};
use sagastream_e2e::peers::{avro_peer, Peer};
use sagastream_e2e::probe::{prefix, read_topic, sum_metric};
use sagastream_e2e::{apply_topics, repo_root, schema_registry};
use sagastream_registry::avro::{schema_id, AvroCodec};
use sagastream_registry::records;
use serde_json::{json, Value};

use crate::avro::{avro_probe, READ};
use crate::runtime::input_topic;

const PER_PEER: u64 = 10;

/// (aggregate, count, input id): what a probe.counted output says.
type Counted = (String, u64, String);

// Not a tokio test: the registry client blocks, which an async context forbids.
#[test]
fn avro_the_python_and_node_peers_produce_is_processed_and_they_consume_what_the_processor_writes() {
    let registry = schema_registry();
    let codec = AvroCodec::new(registry).unwrap();
    let prefix = prefix("avro-peers");
    tokio::runtime::Runtime::new().unwrap().block_on(apply_topics(&prefix));
    let input = input_topic(&prefix);
    let schema = std::fs::read_to_string(repo_root().join("schemas/runner.online.avsc")).unwrap();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut want: Vec<Counted> = Vec::new();
    for peer in Peer::ALL {
        let key = format!("runner-{peer:?}-{run}");
        let items: Vec<Value> = (1..=PER_PEER)
            .map(|i| {
                let id = format!("{peer:?}-{i}-{run}");
                want.push((key.clone(), i, id.clone()));
                json!({
                    "key": key,
                    "schema": schema,
                    "attributes": {
                        "id": id,
                        "type": "runner.online",
                        "source": format!("/interop/{peer:?}"),
                        "time": "2026-12-02T10:00:00.250Z",
                        "subject": key,
                    },
                    "payload": {"runner_id": key, "latitude": 1.5, "longitude": -2.25, "occurred_at": "2026-12-02T10:00:00Z"},
                })
            })
            .collect();
        let positions = avro_peer(peer, &["produce", registry, &input], Some(&Value::Array(items)));
        assert_eq!(positions.as_array().map(Vec::len), Some(PER_PEER as usize), "{peer:?}: {positions}");
    }
    want.sort();

    // Our side reads theirs: the probe counts every peer record once, in
    // the order each peer wrote them, and writes its outputs as Avro.
    let probe = avro_probe(&prefix, registry);
    let output = format!("{prefix}probe.events");
    let outputs = read_topic(&output, true, want.len(), READ);
    let mut ours: Vec<Counted> = outputs
        .iter()
        .map(|c| {
            assert_eq!(c.header("content-type").as_deref(), Some(AVRO_CONTENT_TYPE));
            // The dataschema the peers see names the schema in the bytes.
            let id = schema_id(c.record.value.as_deref().unwrap_or_default()).expect("the Confluent wire format");
            assert_eq!(c.header("ce_dataschema"), Some(codec.schema_url(id)));
            match records::read(Some(&codec), &c.record, false).unwrap().event.data {
                Payload::ProbeCounted(p) => {
                    assert_eq!(p.input_type, "runner.online");
                    (p.aggregate_id, p.count, p.input_id)
                }
                other => panic!("not a probe.counted: {other:?}"),
            }
        })
        .collect();
    ours.sort();
    assert_eq!(ours, want, "every record the peers wrote counted once, in their order");
    assert_eq!(sum_metric(&probe.metrics(), "sagastream_dlq_records_total"), 0.0, "nothing the peers wrote is refused");

    // Their side reads ours, off the topic, committed records only.
    for peer in Peer::ALL {
        let read = avro_peer(peer, &["consume", registry, &output, &want.len().to_string()], None);
        let read = read.as_array().unwrap_or_else(|| panic!("{peer:?}: {read}"));
        let mut theirs: Vec<Counted> = read
            .iter()
            .map(|r| {
                let headers = &r["headers"];
                assert_eq!(headers["content-type"], AVRO_CONTENT_TYPE, "{peer:?}: {r}");
                assert_eq!(headers["ce_type"], "probe.counted", "{peer:?}: {r}");
                let data = &r["data"];
                assert_eq!(r["key"], data["aggregate_id"], "{peer:?}: keyed by the aggregate");
                assert_eq!(data["input_type"], "runner.online", "{peer:?}: {r}");
                (
                    data["aggregate_id"].as_str().unwrap_or_else(|| panic!("{peer:?}: {r}")).to_owned(),
                    data["count"].as_u64().unwrap_or_else(|| panic!("{peer:?}: {r}")),
                    data["input_id"].as_str().unwrap_or_else(|| panic!("{peer:?}: {r}")).to_owned(),
                )
            })
            .collect();
        theirs.sort();
        assert_eq!(theirs, want, "the {peer:?} peer's deserializer reads what the probe wrote");
    }
}
