package dev.sagastream.peers.streams;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.UUID;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;

/**
 * A CloudEvent in Kafka's binary content mode with JSON data, as the
 * sagastream processors read and write them: {@code ce_*} headers and the
 * payload as the record value.
 */
final class CloudEvent {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String SOURCE = "/sagastream/peers/kafka-streams";

    final String id;
    final String type;
    final ObjectNode data;

    private CloudEvent(String id, String type, ObjectNode data) {
        this.id = id;
        this.type = type;
        this.data = data;
    }

    /** Thrown for a record that is not a binary-mode CloudEvent with a JSON object as data. */
    static final class NotACloudEvent extends Exception {
        NotACloudEvent(String why) {
            super(why);
        }
    }

    static CloudEvent read(Headers headers, byte[] value) throws NotACloudEvent {
        String spec = header(headers, "ce_specversion");
        String id = header(headers, "ce_id");
        String type = header(headers, "ce_type");
        if (!"1.0".equals(spec) || id == null || type == null) {
            throw new NotACloudEvent("no ce_specversion 1.0, ce_id and ce_type headers");
        }
        if (value == null) {
            throw new NotACloudEvent("no data");
        }
        try {
            if (JSON.readTree(value) instanceof ObjectNode data) {
                return new CloudEvent(id, type, data);
            }
        } catch (java.io.IOException e) {
            throw new NotACloudEvent("data is not JSON: " + e.getMessage());
        }
        throw new NotACloudEvent("data is not a JSON object");
    }

    static String header(Headers headers, String name) {
        Header h = headers.lastHeader(name);
        return h == null || h.value() == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }

    /**
     * The headers of an event this processor emits: its id derived from
     * what caused it, so a replay after a crash writes the same ids.
     */
    static Headers headers(String type, String key, String cause, int occurrence, Instant now) {
        String name = "escrow-peer\n" + cause + "\n" + type + "\n" + occurrence;
        RecordHeaders h = new RecordHeaders();
        add(h, "ce_specversion", "1.0");
        add(h, "ce_id", UUID.nameUUIDFromBytes(name.getBytes(StandardCharsets.UTF_8)).toString());
        add(h, "ce_source", SOURCE);
        add(h, "ce_type", type);
        add(h, "ce_time", now.toString());
        add(h, "ce_subject", key);
        add(h, "ce_partitionkey", key);
        add(h, "content-type", "application/json");
        return h;
    }

    private static void add(RecordHeaders h, String name, String value) {
        h.add(name, value.getBytes(StandardCharsets.UTF_8));
    }
}
