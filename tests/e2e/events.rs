use std::time::Duration;

use sagastream_contract::{decode, encode, samples, ContentMode};
use sagastream_e2e::{apply_repo_topics, java_partition, settings};
use sagastream_kafka::io;

#[tokio::test(flavor = "multi_thread")]
async fn every_event_type_is_published_and_read_back_typed_in_both_modes() {
    let topics = apply_repo_topics().await;
    let s = settings("e2e-events");
    let producer = io::producer(&s).unwrap();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let events = samples::one_of_each(&tag[..12]);

    let mut sent = Vec::new();
    for mode in [ContentMode::Binary, ContentMode::Structured] {
        for event in &events {
            let topic = event.event_type().topic();
            let record = encode(event, mode).unwrap();
            let pos = io::send(&producer, topic, &record).await.unwrap();
            let partitions = topics.get(topic).unwrap().partitions;
            assert_eq!(
                pos.partition,
                java_partition(event.key().as_bytes(), partitions),
                "{}: key {} is not where a Java producer puts it",
                event.event_type(),
                event.key()
            );
            sent.push((pos, mode, event));
        }
    }
    let positions: Vec<_> = sent.iter().map(|(p, _, _)| *p).collect();
    let read = io::read_positions(&s, &positions, Duration::from_secs(30)).unwrap();
    assert_eq!(read.len(), 2 * sagastream_contract::EventType::ALL.len());
    for (pos, mode, event) in sent {
        let d = decode(&read[&pos]).unwrap_or_else(|e| panic!("{} {mode:?}: {e}", event.event_type()));
        assert_eq!(d.mode, mode);
        assert_eq!(&d.event, event, "{} {mode:?}", event.event_type());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_records_on_a_real_topic_decode_to_classified_errors() {
    apply_repo_topics().await;
    let s = settings("e2e-poison");
    let producer = io::producer(&s).unwrap();
    let good = encode(&samples::one_of_each("poison")[0], ContentMode::Binary).unwrap();
    let mut no_key = good.clone();
    no_key.key = None;
    let mut garbage = good.clone();
    garbage.value = Some(b"\xff\xfe not json".to_vec());
    let plain =
        sagastream_contract::Record { key: Some(b"k".to_vec()), value: Some(b"hello".to_vec()), headers: vec![] };
    let mut positions = Vec::new();
    for r in [&no_key, &garbage, &plain] {
        positions.push(io::send(&producer, "booking.events", r).await.unwrap());
    }
    let read = io::read_positions(&s, &positions, Duration::from_secs(30)).unwrap();
    let classes: Vec<&str> = positions.iter().map(|p| decode(&read[p]).unwrap_err().class()).collect();
    assert_eq!(classes, ["missing_key", "payload_invalid", "not_cloudevent"]);
}
