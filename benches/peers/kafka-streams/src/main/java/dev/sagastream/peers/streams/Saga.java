package dev.sagastream.peers.streams;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * One booking's escrow saga as the state store keeps it (JSON in the
 * changelog): the booking and escrow lifecycles, the facts the commands
 * need, the money, the recent input ids and the timers set.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public final class Saga {
    /** How many input ids a saga remembers to drop redelivered inputs (sagastream's dedup window). */
    static final int DEDUP_WINDOW = 32;

    public String booking = "unknown";
    public String escrow = "none";
    public String bookingNumber;
    public String ownerId;
    public String runnerId;
    public String paymentId;
    public Long priceCents;
    public String currency;
    public Long heldCents;
    public Long payoutCents;
    public Long feeCents;
    public String inDeliverySince;
    public boolean done;
    public ArrayDeque<String> seen = new ArrayDeque<>();
    /** Timer name to its due time in epoch milliseconds. */
    public Map<String, Long> timers = new HashMap<>();

    /** The phase as sagastream's {@code escrow.saga.state_changed} names it. */
    String phase() {
        return booking + "/" + escrow;
    }

    /** Remembers an input id; false if it was seen already (a duplicate). */
    boolean firstTime(String id) {
        if (seen.contains(id)) {
            return false;
        }
        seen.addLast(id);
        while (seen.size() > DEDUP_WINDOW) {
            seen.removeFirst();
        }
        return true;
    }

    static Serde<Saga> serde() {
        Serializer<Saga> ser = (topic, saga) -> {
            try {
                return saga == null ? null : CloudEvent.JSON.writeValueAsBytes(saga);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
        Deserializer<Saga> de = (topic, bytes) -> {
            try {
                return bytes == null ? null : CloudEvent.JSON.readValue(bytes, Saga.class);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
        return Serdes.serdeFrom(ser, de);
    }
}
