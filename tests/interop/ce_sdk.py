"""The CloudEvents Python SDK as an interoperability peer for our Kafka binding.

  ce_sdk.py read TOPIC PARTITION OFFSET   decode the record there with the SDK's
                                          Kafka binding; print attributes and data
  ce_sdk.py write TOPIC MODE EVENT_JSON    build a CloudEvent from EVENT_JSON
                                          ({"attributes": {...}, "data": {...}}),
                                          encode it with the SDK (MODE binary or
                                          structured), produce it with
                                          confluent-kafka; print partition and offset

The broker comes from KAFKA_BOOTSTRAP_SERVERS. Output is one JSON object.
"""
import json
import os
import sys

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from dateutil.parser import isoparse
from confluent_kafka import Consumer, Producer, TopicPartition


def bootstrap():
    return os.environ["KAFKA_BOOTSTRAP_SERVERS"]


def read(topic, partition, offset):
    consumer = Consumer({
        "bootstrap.servers": bootstrap(),
        "group.id": "ce-sdk-interop",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })
    consumer.assign([TopicPartition(topic, int(partition), int(offset))])
    try:
        for _ in range(150):  # 150 polls of 0.2 s: a 30 s deadline
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise SystemExit(f"consume error: {msg.error()}")
            if msg.offset() != int(offset):
                continue
            message = ce_kafka.KafkaMessage(
                headers={k: v for k, v in (msg.headers() or [])},
                key=msg.key(),
                value=msg.value(),
            )
            event = ce_kafka.from_kafka(message, JSONFormat())
            attributes = {
                k: (v.isoformat() if hasattr(v, "isoformat") else v)
                for k, v in event.get_attributes().items()
            }
            return {"attributes": attributes, "data": event.get_data(), "key": msg.key().decode()}
        raise SystemExit(f"no record at {topic}[{partition}]@{offset} within 30 s")
    finally:
        consumer.close()


def write(topic, mode, event_json):
    spec = json.loads(event_json)
    if "time" in spec["attributes"]:
        spec["attributes"]["time"] = isoparse(spec["attributes"]["time"])
    event = CloudEvent(attributes=spec["attributes"], data=spec["data"])
    if mode == "binary":
        message = ce_kafka.to_binary(event, JSONFormat())
    elif mode == "structured":
        message = ce_kafka.to_structured(event, JSONFormat())
    else:
        raise SystemExit(f"unknown mode {mode!r}: binary or structured")
    producer = Producer({
        "bootstrap.servers": bootstrap(),
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
    })
    delivered = {}

    def on_delivery(err, msg):
        if err is not None:
            raise SystemExit(f"delivery failed: {err}")
        delivered.update(partition=msg.partition(), offset=msg.offset())

    producer.produce(topic, key=message.key, value=message.value,
                     headers=list(message.headers.items()), on_delivery=on_delivery)
    if producer.flush(30) != 0 or not delivered:
        raise SystemExit("record not delivered within 30 s")
    return delivered


def main(argv):
    if len(argv) == 5 and argv[1] == "read":
        out = read(argv[2], argv[3], argv[4])
    elif len(argv) == 5 and argv[1] == "write":
        out = write(argv[2], argv[3], argv[4])
    else:
        raise SystemExit(__doc__)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main(sys.argv)
