"""confluent-kafka's Avro serializers as interoperability peers for our
Confluent wire format, through the same Schema Registry.

  avro_peer.py decode URL   stdin: [{"topic": T, "hex": H}, ...]; prints the
                            records AvroDeserializer reads from those bytes
                            (absent optional fields left out), in order
  avro_peer.py encode URL   stdin: [{"topic": T, "schema": S, "payload": P}, ...];
                            prints the hex of what AvroSerializer writes for
                            each, under TopicRecordNameStrategy subjects

Output is one JSON list.
"""
import json
import sys

from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def without_nulls(value):
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def decode(client, items):
    deserializer = AvroDeserializer(client)
    out = []
    for item in items:
        ctx = SerializationContext(item["topic"], MessageField.VALUE)
        out.append(without_nulls(deserializer(bytes.fromhex(item["hex"]), ctx)))
    return out


def encode(client, items):
    out = []
    for item in items:
        serializer = AvroSerializer(
            client,
            item["schema"],
            conf={"auto.register.schemas": True, "subject.name.strategy": topic_record_subject_name_strategy},
        )
        ctx = SerializationContext(item["topic"], MessageField.VALUE)
        out.append(serializer(item["payload"], ctx).hex())
    return out


def main():
    command, url = sys.argv[1], sys.argv[2]
    client = SchemaRegistryClient({"url": url})
    items = json.load(sys.stdin)
    result = {"decode": decode, "encode": encode}[command](client, items)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
