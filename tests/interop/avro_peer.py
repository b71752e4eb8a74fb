"""confluent-kafka's Avro serializers as interoperability peers for our
Confluent wire format, through the same Schema Registry and, for produce
and consume, the same broker (KAFKA_BOOTSTRAP_SERVERS).

  avro_peer.py decode URL         stdin: [{"topic": T, "hex": H}, ...]; prints the
                                  records AvroDeserializer reads from those bytes
                                  (absent optional fields left out), in order
  avro_peer.py encode URL         stdin: [{"topic": T, "schema": S, "payload": P}, ...];
                                  prints the hex of what AvroSerializer writes for
                                  each, under TopicRecordNameStrategy subjects
  avro_peer.py produce URL TOPIC  stdin: [{"key": K, "attributes": A, "schema": S,
                                  "payload": P}, ...]; produces each to TOPIC as a
                                  binary-mode CloudEvent (ce_ headers from A,
                                  content-type application/avro, ce_dataschema
                                  naming the schema) whose value AvroSerializer
                                  writes; prints [{"partition", "offset"}, ...]
  avro_peer.py consume URL TOPIC N
                                  reads N committed records of TOPIC from the
                                  start; prints [{"key", "headers", "data"}, ...]
                                  with data as AvroDeserializer reads it

Output is one JSON list.
"""
import json
import os
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

DEADLINE_S = 60


def without_nulls(value):
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def serializer(client, schema):
    return AvroSerializer(
        client,
        schema,
        conf={"auto.register.schemas": True, "subject.name.strategy": topic_record_subject_name_strategy},
    )


def decode(client, url, items):
    deserializer = AvroDeserializer(client)
    out = []
    for item in items:
        ctx = SerializationContext(item["topic"], MessageField.VALUE)
        out.append(without_nulls(deserializer(bytes.fromhex(item["hex"]), ctx)))
    return out


def encode(client, url, items):
    out = []
    for item in items:
        ctx = SerializationContext(item["topic"], MessageField.VALUE)
        out.append(serializer(client, item["schema"])(item["payload"], ctx).hex())
    return out


def produce(client, url, topic, items):
    producer = Producer({
        "bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        # The Java clients' partitioner: a key lands where our processors expect it.
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
    })
    serializers = {}
    positions = [None] * len(items)
    failures = []

    def on_delivery(i):
        def report(err, msg):
            if err is not None:
                failures.append(str(err))
            else:
                positions[i] = {"partition": msg.partition(), "offset": msg.offset()}
        return report

    ctx = SerializationContext(topic, MessageField.VALUE)
    for i, item in enumerate(items):
        ser = serializers.setdefault(item["schema"], serializer(client, item["schema"]))
        value = ser(item["payload"], ctx)
        schema_id = int.from_bytes(value[1:5], "big")
        headers = [("ce_specversion", "1.0")]
        headers += [(f"ce_{name}", str(v)) for name, v in item["attributes"].items()]
        headers += [("ce_dataschema", f"{url}/schemas/ids/{schema_id}"), ("content-type", "application/avro")]
        producer.produce(topic, key=item["key"], value=value, headers=headers, on_delivery=on_delivery(i))
        producer.poll(0)
    if producer.flush(DEADLINE_S) != 0:
        raise SystemExit(f"records not delivered within {DEADLINE_S} s")
    if failures:
        raise SystemExit(f"delivery failed: {failures}")
    return positions


def consume(client, url, topic, count):
    count = int(count)
    deserializer = AvroDeserializer(client)
    consumer = Consumer({
        "bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        "group.id": f"avro-peer-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
    })
    consumer.subscribe([topic])
    out = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        while len(out) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"read {len(out)} of {count} records of {topic} within {DEADLINE_S} s")
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise SystemExit(f"consume error: {msg.error()}")
            ctx = SerializationContext(topic, MessageField.VALUE, msg.headers())
            out.append({
                "key": msg.key().decode(),
                "headers": {k: v.decode() for k, v in (msg.headers() or [])},
                "data": without_nulls(deserializer(msg.value(), ctx)),
            })
    finally:
        consumer.close()
    return out


def main(argv):
    commands = {"decode": (decode, 0), "encode": (encode, 0), "produce": (produce, 1), "consume": (consume, 2)}
    if len(argv) < 3 or argv[1] not in commands or len(argv) != 3 + commands[argv[1]][1]:
        raise SystemExit(__doc__)
    run, _ = commands[argv[1]]
    url = argv[2]
    # Without a timeout a request the registry never answers blocks for
    # ever; with one, the client retries it (max.retries, 3 by default).
    client = SchemaRegistryClient({"url": url, "timeout": 20})
    args = argv[3:]
    if run is not consume:
        args.append(json.load(sys.stdin))
    json.dump(run(client, url, *args), sys.stdout)


if __name__ == "__main__":
    main(sys.argv)
